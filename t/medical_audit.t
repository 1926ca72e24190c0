# The tamper-evident audit trail: core's background task seals new
# audit_logs rows (sql/migrations/0005), scripts/audit-verify reports OK on
# an untouched log and names the place of an UPDATE, a DELETE or an INSERT
# made behind its back; two sealing passes racing each other keep one
# linear chain with every row sealed once.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IPC::Open3 qw(open3);
use Symbol qw(gensym);
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

my $VERIFY = "$ENV{BL_SRC_DIR}/scripts/audit-verify";

sub verify {
    my @cmd = ($VERIFY, @_);
    my $pid = open3(my $in, my $out, undef, @cmd);
    close $in;
    local $/;
    my $text = <$out> // '';
    waitpid $pid, 0;
    return ($? >> 8, $text);
}

sub unsealed {
    bl_psql_value(q{SELECT count(*) FROM audit_logs a WHERE NOT EXISTS (SELECT 1 FROM audit_seal_rows s
                    WHERE s.audit_id = a.id AND s.audit_created_at = a.created_at)});
}

sub wait_sealed {
    my $until = time + 20;
    while (time < $until) {
        return 1 if unsealed() == 0;
        sleep 0.5;
    }
    return 0;
}

# Some record activity to seal.
my $owner = med_user();
my ($res, $d) = med_upload($owner, med_pdf(2000, 'AUDIT;'), title => 'Audit me');
my $id = $d->{data}{id};
bl_request(GET => "/api/v1/medical-records/$id", token => $owner->{token}) for 1 .. 3;
ok wait_sealed(), 'the background task seals new audit rows within seconds';
cmp_ok bl_psql_value('SELECT count(*) FROM audit_seals'), '>=', 1, 'seals exist';

my ($rc, $out) = verify();
is $rc, 0, 'audit-verify on an untouched log: exit 0';
like $out, qr/^OK: \d+ seals, \d+ rows verified/m, 'reports OK';
my ($latest) = $out =~ /latest seal (\d+:[0-9a-f]{64})/;
ok $latest, 'and names the latest seal';
($rc) = verify('--expect', $latest);
is $rc, 0, 'the recorded latest seal matches';

# Two sealing passes racing: one chain, each row once.
bl_psql(q{INSERT INTO audit_logs (action, outcome, resource_type, resource_id)
          SELECT 'test.race', 'success', 'medical_record', g::text FROM generate_series(1, 300) g});
my @pids;
for (1 .. 2) {
    my $pid = open3(my $in, my $o, undef, 'psql', '-X', '-qAt', '-c', 'SELECT audit_seal_batch(1000)');
    close $in;
    push @pids, [$pid, $o];
}
my $sum = 0;
for my $p (@pids) { my $fh = $p->[1]; local $/; my $v = <$fh> // 0; waitpid $p->[0], 0; $sum += $v; }
ok wait_sealed(), 'after the race every row is sealed';
is bl_psql_value(q{SELECT count(*) FROM (SELECT audit_id FROM audit_seal_rows GROUP BY 1, audit_created_at HAVING count(*) > 1) x}), 0,
   'no row sealed twice';
is bl_psql_value(q{SELECT count(*) FROM audit_seal_rows s JOIN audit_logs a ON a.id = s.audit_id WHERE a.action = 'test.race'}), 300,
   'all 300 raced rows sealed';
($rc, $out) = verify();
is $rc, 0, 'the chain still verifies' or diag $out;

# An UPDATE behind its back (past the append-only trigger, as maintenance may).
my ($victim, $vat) = @{ (bl_psql(q{SELECT id, created_at FROM audit_logs WHERE resource_id = $1
                                   AND action = 'medical.record.read' ORDER BY created_at LIMIT 1}, $id))[0] };
my $seal = bl_psql_value(q{SELECT seal_seq FROM audit_seal_rows WHERE audit_id = $1}, $victim);
bl_psql(q{BEGIN; SET LOCAL bl.partition_maintenance = 'on';
          UPDATE audit_logs SET outcome = 'denied' WHERE id = $1; COMMIT}, $victim);
($rc, $out) = verify();
is $rc, 1, 'after an UPDATE: exit 1';
like $out, qr/^CHANGED\s+seal=$seal row=$victim .*field=id\/created_at\/action/m, 'names the seal and the row';
bl_psql(q{BEGIN; SET LOCAL bl.partition_maintenance = 'on';
          UPDATE audit_logs SET outcome = 'success' WHERE id = $1; COMMIT}, $victim);
($rc) = verify();
is $rc, 0, 'put back: OK again';
bl_psql(q{BEGIN; SET LOCAL bl.partition_maintenance = 'on';
          UPDATE audit_logs SET details = '{"access":"forged"}' WHERE id = $1; COMMIT}, $victim);
($rc, $out) = verify();
like $out, qr/^CHANGED\s+seal=$seal row=$victim .*field=details/m, 'a changed detail is named too';
bl_psql(q{BEGIN; SET LOCAL bl.partition_maintenance = 'on';
          UPDATE audit_logs SET details = '{"access":"owner"}' WHERE id = $1; COMMIT}, $victim);

# A redaction the append-only policy allows is no tampering.
bl_psql(q{UPDATE audit_logs SET user_agent = NULL WHERE id = $1}, $victim);
($rc, $out) = verify();
is $rc, 0, 'user agent cleared (erasure): still OK' or diag $out;
like $out, qr/^REDACTED\s+seal=$seal row=$victim field=user_agent/m, 'reported as a redaction';
bl_psql(q{BEGIN; SET LOCAL bl.partition_maintenance = 'on';
          UPDATE audit_logs SET user_id = NULL WHERE id = $1; COMMIT}, $victim);
($rc, $out) = verify();
like $out, qr/^CHANGED\s+seal=$seal row=$victim .*field=user_id/m, 'user_id cleared while the account exists: CHANGED';

# A DELETE behind its back.
my $copy = bl_psql_value(q{SELECT row_to_json(a)::text FROM audit_logs a WHERE id = $1}, $victim);
bl_psql(q{BEGIN; SET LOCAL bl.partition_maintenance = 'on'; DELETE FROM audit_logs WHERE id = $1; COMMIT}, $victim);
($rc, $out) = verify();
is $rc, 1, 'after a DELETE: exit 1';
like $out, qr/^DELETED\s+seal=$seal row=$victim created_at=/m, 'names the deleted row and its seal';

# A row slipped in afterwards, dated back among sealed rows.
bl_psql(q{INSERT INTO audit_logs (created_at, action, outcome, resource_type, resource_id)
          VALUES (now() - interval '3 hours', 'medical.record.read', 'success', 'medical_record', $1)}, $id);
my $forged = bl_psql_value(q{SELECT id FROM audit_logs WHERE created_at < now() - interval '2 hours' AND resource_id = $1}, $id);
sleep 6;    # a sealing pass goes by: the row stays outside every seal
($rc, $out) = verify();
like $out, qr/^INSERTED\s+row=$forged created_at=/m, 'names the inserted row';
like $out, qr/^FAILED: \d+ problem/m, 'and fails';

# A seal row rewritten: the chain breaks at that seal.
bl_psql(q{UPDATE audit_seal_rows SET core_hash = sha256('x'::bytea) WHERE seal_seq = $1 AND audit_id <> $2
          AND audit_id = (SELECT audit_id FROM audit_seal_rows WHERE seal_seq = $1 AND audit_id <> $2 LIMIT 1)}, $seal, $victim);
($rc, $out) = verify();
like $out, qr/^BROKEN\s+seal=$seal /m, 'a rewritten seal row breaks its seal';

done_testing;

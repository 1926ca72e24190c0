# Core's database helpers through the test handler: prepared statements on
# mod_dbd's pool, audit rows, transactions and SQL errors mapped to statuses.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $ECHO = '/api/v1/core-test/echo';

sub run_db {
    my ($mode, $rid) = @_;
    return bl_request(GET => "$ECHO?db=$mode", headers => { 'X-Request-ID' => $rid });
}
sub audit_rows {
    my $rid = shift;
    return bl_psql('SELECT user_id, action, resource_type, resource_id, outcome, '
                 . 'host(ip_address), user_agent, request_id, details::text FROM audit_logs '
                 . 'WHERE action = $1', $rid);
}

my $rid = 'core-db-audit-' . $$;
my ($res, $data) = run_db(audit => $rid);
is $res->code, 200, 'bl_audit outside a transaction';
my @rows = audit_rows($rid);
is scalar @rows, 1, 'one audit row';
is_deeply $rows[0], [undef, $rid, 'echo', '1', 'success', '127.0.0.1', 'bl-test/1', $rid, '{"k": "v"}'],
    'with action, resource, outcome, ip, request id and details';

for my $case (['commit', 1], ['rollback', 0], ['leave', 0]) {
    my ($mode, $n) = @$case;
    my $id = "core-db-$mode-$$";
    ($res) = run_db($mode => $id);
    is $res->code, 200, "transaction $mode answered";
    is scalar(audit_rows($id)), $n, "transaction $mode: $n row(s)";
}
# a connection that had a transaction left open is clean for the next one
$rid = "core-db-after-leave-$$";
($res) = run_db(audit => $rid) for 1 .. 3;
is scalar(audit_rows($rid)), 3, 'later requests write normally';

($res, $data) = run_db(fk => "core-db-fk-$$");
is $res->code, 400, 'foreign key violation: 400';
is $data->{error}{code}, 'VALIDATION_ERROR', 'as a validation error';
($res, $data) = run_db(badid => "core-db-badid-$$");
is $res->code, 400, 'malformed uuid: 400, not 500';
is $data->{error}{code}, 'VALIDATION_ERROR', 'as a validation error';

# a deferred constraint fails at COMMIT: mapped as an INSERT's would be
($res, $data) = run_db('deferred-unique' => "core-db-deferred-unique-$$");
is $res->code, 409, 'deferred unique violation at COMMIT: 409';
is $data->{error}{code}, 'CONFLICT', 'as a conflict';
($res, $data) = run_db('deferred-fk' => "core-db-deferred-fk-$$");
is $res->code, 400, 'deferred foreign key violation at COMMIT: 400';
is $data->{error}{code}, 'VALIDATION_ERROR', 'as a validation error';
# a quiet statement (bl_audit) fails inside a transaction and the handler
# commits: commit answers 503 in the envelope, not an empty 200
$rid = "core-db-quiet-fail-$$";
($res, $data) = run_db('quiet-fail' => $rid);
is $res->code, 503, 'quiet failure then commit: 503';
like $res->header('Content-Type') // '', qr{^application/json}, 'quiet failure: JSON';
is $data && $data->{error}{code}, 'SERVICE_UNAVAILABLE', 'quiet failure: in the envelope';
ok defined $res->header('Retry-After'), 'quiet failure: Retry-After';
is scalar(audit_rows($rid)), 0, 'quiet failure: nothing written';

$rid = "core-db-after-deferred-$$";
($res) = run_db(audit => $rid) for 1 .. 3;
is scalar(audit_rows($rid)), 3, 'connections are clean after a failed COMMIT';

# the error log names the statement and SQLSTATE, never the values
my $log = Apache::Test::vars('serverroot') . '/logs/error_log';
open my $fh, '<', $log or die "$log: $!";
my @lines = grep { /core_outbox_insert/ } <$fh>;
ok scalar(grep { /SQLSTATE 23503/ } @lines), 'FK failure logged with its SQLSTATE';
ok !scalar(grep { /not-a-uuid|00000000-0000-4000/ } @lines), 'no argument values in the log';
seek $fh, 0, 0;
ok scalar(grep { /statement COMMIT failed \(SQLSTATE 23505\)/ } <$fh>),
    'a failed COMMIT logged with its SQLSTATE';

done_testing();

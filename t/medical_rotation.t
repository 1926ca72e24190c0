# scripts/rotate-storage-key: a new master key version added, every live
# record's data key re-wrapped to it without touching the stored files,
# httpd reloaded with both keys: every file still reads, none is wrapped
# by the old version, and new uploads use the new one.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IPC::Open3 qw(open3);
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

my $ROTATE = "$ENV{BL_SRC_DIR}/scripts/rotate-storage-key";
my $new_key = "$ENV{BL_STATE_DIR}/keys/storage-2.key";

sub run {
    my $pid = open3(my $in, my $out, undef, @_);
    close $in;
    local $/;
    my $text = <$out> // '';
    waitpid $pid, 0;
    return ($? >> 8, $text);
}

my $owner = med_user();
my (%data, %blob);
for my $n (1 .. 3) {
    my $d = med_pdf(1500 * $n, "ROT$n;");
    my ($res, $j) = med_upload($owner, $d, title => "Record $n");
    $data{ $j->{data}{id} } = $d;
}
my ($gone) = keys %data;
bl_request(DELETE => "/api/v1/medical-records/$gone", token => $owner->{token});
delete $data{$gone};
$blob{$_} = med_read_file(med_blob_path($_)) for keys %data;
my %wrapped_before = map { ($_->[0] => $_->[1]) }
    bl_psql(q{SELECT id, encode(wrapped_key, 'hex') FROM medical_records WHERE deleted_at IS NULL});
ok bl_psql_value(q{SELECT count(*) FROM medical_records WHERE deleted_at IS NULL AND key_version = 1}) >= 2,
   'records wrapped by version 1';

open my $fh, '>:raw', $new_key or die "$new_key: $!";
chmod 0600, $new_key;
print $fh join '', map { chr int rand 256 } 1 .. 32;
close $fh;

my ($rc, $out) = run($ROTATE, '--key', "2:$new_key");
is $rc, 1, 'without the old key: fails';
like $out, qr/uses version 1, not given/, 'and says which version is missing';
($rc, $out) = run($ROTATE, '--key', "1:$ENV{BL_STORAGE_KEY}", '--key', "2:$new_key", '--dry-run');
like $out, qr/^would re-wrap \d+ data key/m, 'dry run counts';
is bl_psql_value(q{SELECT count(*) FROM medical_records WHERE deleted_at IS NULL AND key_version = 2}), 0, 'and changes nothing';
($rc, $out) = run($ROTATE, '--key', "1:$ENV{BL_STORAGE_KEY}", '--key', "2:$new_key", '--batch', '2');
is $rc, 0, 'rotation: exit 0' or diag $out;
like $out, qr/re-wrapped \d+ data key\(s\) to version 2; 0 failed; 0 live record\(s\) on older versions/, 'reports';
is bl_psql_value(q{SELECT count(*) FROM medical_records WHERE deleted_at IS NULL AND key_version <> 2}), 0,
   'no live data key wrapped by the old version';
my %wrapped_after = map { ($_->[0] => $_->[1]) }
    bl_psql(q{SELECT id, encode(wrapped_key, 'hex') FROM medical_records WHERE deleted_at IS NULL});
ok !(grep { $wrapped_before{$_} eq ($wrapped_after{$_} // '') } keys %wrapped_before), 'every wrapped key is new';
ok !(grep { med_read_file(med_blob_path($_)) ne $blob{$_} } keys %blob), 'no file re-encrypted';
is bl_psql_value(q{SELECT count(*) FROM medical_records WHERE id = $1 AND wrapped_key IS NULL}, $gone), 1,
   'the deleted record stays without a key';

# httpd reloaded (graceful) with both keys, as an operator would.
my $pidfile = Apache::Test::vars('t_logs') . '/httpd.pid';
my $pid = med_read_file($pidfile);
chomp $pid;
ok kill('USR1', $pid), 'graceful restart';
my ($version, $until) = (0, time + 30);
while (time < $until) {
    sleep 0.5;
    my ($res, $j) = med_upload($owner, med_pdf(100, 'NEW;'), title => 'After rotation');
    next unless $res->code == 201;
    $version = bl_psql_value(q{SELECT key_version FROM medical_records WHERE id = $1}, $j->{data}{id});
    last if $version == 2;
}
is $version, 2, 'new uploads are wrapped by version 2';
for my $id (sort keys %data) {
    my $res = bl_request(GET => "/api/v1/medical-records/$id/download", token => $owner->{token});
    ok $res->code == 200 && $res->content eq $data{$id}, "record $id still reads";
}
($rc, $out) = run($ROTATE, '--key', "1:$ENV{BL_STORAGE_KEY}", '--key', "2:$new_key");
like $out, qr/re-wrapped 0 data key/, 'a second run has nothing to do';

done_testing;

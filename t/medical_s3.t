# mod_beautiful_medical on S3-compatible storage: a virtual host
# (t/conf/test.d/medical.conf) stores records in t/tools/s3_fake.py, which
# recomputes every request's AWS Signature Version 4 with botocore. Round
# trips (one PUT, or a multipart upload past 8 MiB), ranges, ciphertext
# at rest, tampering, refused uploads leaving no object and no pending
# multipart upload, and the storage being away.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

my $CHUNK = 1024;
my $BASE = "http://127.0.0.1:$ENV{BL_MEDICAL_S3_PORT}";
my $dir = tempdir(CLEANUP => 1);
my @fake = ('/usr/bin/python3', "$FindBin::Bin/tools/s3_fake.py", $ENV{BL_MEDICAL_S3_FAKE_PORT}, $dir,
            'AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'us-east-1');
my $fake_pid;
sub start_fake {
    unlink "$dir/pid";
    $fake_pid = fork // die "fork: $!";
    if (!$fake_pid) { exec @fake or die "exec: $!" }
    my $until = time + 10;
    sleep 0.1 while !-s "$dir/pid" && time < $until;
    my $until2 = time + 5;
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{BL_MEDICAL_S3_FAKE_PORT}, Timeout => 1)) {
        last if time > $until2;
        sleep 0.1;
    }
}
sub stop_fake { if ($fake_pid) { kill 'TERM', $fake_pid; waitpid $fake_pid, 0; $fake_pid = undef } }
END { stop_fake() }
sub stats { my $t = med_read_file("$dir/stats.json") // '{}'; return decode_json($t) }
sub objects {
    opendir my $d, "$dir/objects/bl-records" or return ();
    my @f = sort grep { !/^\./ } readdir $d;
    return @f;
}
sub pending { opendir my $d, "$dir/uploads" or return (); return grep { !/^\./ } readdir $d }

start_fake();
ok -s "$dir/pid", 'the loopback S3 runs';
my $owner = med_user();
my $canary = 'S3-CANARY-' . bl_uuid() . ';';

for my $raw (0, 1) {
    my $how = $raw ? 'raw' : 'multipart';
    for my $len (0, 1, $CHUNK - 1, $CHUNK, $CHUNK + 1, 10 * 1024 * 1024) {
        my $data = $len >= 9 ? med_pdf($len, $canary) : 'b' x $len;
        my ($res, $d) = med_upload($owner, $data, raw => $raw, base => $BASE);
        is $res->code, 201, "S3 $how upload of $len bytes: 201" or diag $res->content;
        my $id = $d->{data}{id} // '';
        my $obj = med_read_file("$dir/objects/bl-records/$id.enc") // '';
        is length($obj), $len + 16 * (int($len / $CHUNK) + 1), "S3 $how $len: the object holds the ciphertext";
        ok index($obj, $canary) < 0, "S3 $how $len: no plaintext canary in the bucket" if $len > 100;
        ok !-e med_storage_dir() . "/$id.enc", "S3 $how $len: nothing in the local directory";
        my $dl = bl_request(GET => "$BASE/api/v1/medical-records/$id/download", token => $owner->{token}, timeout => 120);
        ok $dl->code == 200 && $dl->content eq $data, "S3 $how $len: same bytes back";
    }
}
my $s = stats();
is $s->{signature_failures}, 0, 'botocore verified every signature' or diag $s->{last_failure};
cmp_ok $s->{ops}{complete_multipart} // 0, '>=', 2, 'the 10 MB files went as multipart uploads';
cmp_ok $s->{ops}{put} // 0, '>=', 10, 'the small ones as one PUT';
is scalar(pending()), 0, 'no multipart upload left pending';

# Range through S3.
{
    my $data = med_pdf(10 * 1024 * 1024, $canary);
    my ($res, $d) = med_upload($owner, $data, raw => 1, base => $BASE);
    my $id = $d->{data}{id};
    $res = bl_request(GET => "$BASE/api/v1/medical-records/$id/download", token => $owner->{token},
                      headers => { Range => 'bytes=9000000-9000999' });
    ok $res->code == 206 && $res->content eq substr($data, 9000000, 1000), 'a range read from the middle of an object';
    # Tampering in the bucket.
    my $path = "$dir/objects/bl-records/$id.enc";
    my $obj = med_read_file($path);
    substr($obj, 5_000_000, 1) ^= "\x20";
    med_write_file($path, $obj);
    ($res, $d) = bl_request(GET => "$BASE/api/v1/medical-records/$id/download", token => $owner->{token});
    is $res->code, 500, 'a flipped byte in the bucket: 500';
    is $d->{error}{code}, 'STORAGE_INTEGRITY_ERROR', 'integrity error, nothing sent';
    $res = bl_request(DELETE => "$BASE/api/v1/medical-records/$id", token => $owner->{token});
    is $res->code, 204, 'delete';
    ok !-e $path, 'the object is deleted from the bucket';
}

# The fake is no pushover: a wrong signature is refused.
{
    my $before = stats()->{signature_failures};
    my $res = bl_request(GET => "http://127.0.0.1:$ENV{BL_MEDICAL_S3_FAKE_PORT}/bl-records/x.enc",
        headers => { 'x-amz-date' => strftime_now(), 'x-amz-content-sha256' => 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
                     Authorization => 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/' . substr(strftime_now(), 0, 8)
                                     . '/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=' . ('0' x 64) });
    is $res->code, 403, 'the fake refuses a wrong signature';
    is stats()->{signature_failures}, $before + 1, 'and counts it';
}
sub strftime_now { require POSIX; return POSIX::strftime('%Y%m%dT%H%M%SZ', gmtime) }

# Refusals after a part went up: the multipart upload is aborted.
my @before = objects();
my $rows = bl_psql_value('SELECT count(*) FROM medical_records WHERE owner_id = $1', $owner->{id});
{
    my $text = ('line of plain text ' x 50 . "\n") x 9500;    # ~9 MB of text ...
    my ($res) = med_upload($owner, $text . "\xff", raw => 1, base => $BASE);   # ... then not text
    is $res->code, 415, 'invalid text after the first part: 415';
    ($res) = med_upload($owner, med_pdf(12 * 1024 * 1024 + 10, 'x'), base => $BASE);
    is $res->code, 413, 'over the limit: 413';
}
sleep 0.5;
is scalar(pending()), 0, 'the multipart uploads were aborted';
is_deeply [objects()], \@before, 'no object left';
is bl_psql_value('SELECT count(*) FROM medical_records WHERE owner_id = $1', $owner->{id}), $rows, 'no row';
cmp_ok stats()->{ops}{abort_multipart} // 0, '>=', 1, 'an AbortMultipartUpload was sent';

# The storage away.
stop_fake();
{
    my ($res, $d) = med_upload($owner, med_pdf(2000, 'x'), base => $BASE);
    is $res->code, 503, 'upload with the storage away: 503';
    is $d->{error}{code}, 'SERVICE_UNAVAILABLE', 'SERVICE_UNAVAILABLE';
    is bl_psql_value('SELECT count(*) FROM medical_records WHERE owner_id = $1', $owner->{id}), $rows, 'no row';
    my ($id) = map { $_->[0] } bl_psql(q{SELECT id FROM medical_records WHERE owner_id = $1 AND deleted_at IS NULL LIMIT 1}, $owner->{id});
    ($res, $d) = bl_request(GET => "$BASE/api/v1/medical-records/$id/download", token => $owner->{token});
    is $res->code, 503, 'download with the storage away: 503';
}
start_fake();
{
    my ($res) = med_upload($owner, med_pdf(2000, 'x'), base => $BASE);
    is $res->code, 201, 'storage back: uploads again';
}

done_testing;

# mod_beautiful_medical: upload, list, read, update, delete and download of
# encrypted records on the local backend — round trips at chunk edges by
# multipart and raw body, ciphertext at rest, tampering detected, Range,
# and uploads that fail leaving nothing behind.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

my $CHUNK = 1024;    # t/conf/test.d/medical.conf
my $owner = med_user();
my $canary = 'CANARY-' . bl_uuid() . ';';

sub rows_of { bl_psql_value('SELECT count(*) FROM medical_records WHERE owner_id = $1', $_[0]{id}) }

# ---------------------------------------------------------------- round trips
my %made;
for my $raw (0, 1) {
    my $how = $raw ? 'raw body' : 'multipart';
    for my $len (0, 1, $CHUNK - 1, $CHUNK, $CHUNK + 1, 10 * 1024 * 1024) {
        my $data = $len >= 9 ? med_pdf($len, $canary) : 'a' x $len;
        my ($res, $d) = med_upload($owner, $data, raw => $raw, filename => "r\x{e9}sultat $len.pdf",
                                   fields => { record_type => 'lab_result', record_date => '2026-11-02' });
        is $res->code, 201, "$how upload of $len bytes: 201" or diag $res->content;
        my $rec = $d->{data} || {};
        is $rec->{size_bytes}, $len, "$how $len: size";
        is $rec->{sha256}, sha256_hex($data), "$how $len: SHA-256 of the plaintext";
        is $rec->{content_type}, ($len >= 9 ? 'application/pdf' : 'text/plain'), "$how $len: type from the bytes";
        is $rec->{access}, 'owner', "$how $len: access owner";
        is $rec->{owner}{id}, $owner->{id}, "$how $len: owner";
        my $stored = med_read_file(med_blob_path($rec->{id})) // '';
        is length($stored), $len + 16 * (int($len / $CHUNK) + 1), "$how $len: ciphertext of the expected size";
        ok index($stored, $canary) < 0, "$how $len: no plaintext canary at rest" if $len > 100;
        my $dl = bl_request(GET => "/api/v1/medical-records/$rec->{id}/download",
                            token => $owner->{token}, timeout => 120);
        is $dl->code, 200, "$how $len: download 200";
        ok $dl->content eq $data, "$how $len: same bytes back";
        $made{"$raw/$len"} = $rec;
    }
}

my $small = $made{"0/" . ($CHUNK + 1)};
{
    my $dl = bl_request(GET => "/api/v1/medical-records/$small->{id}/download", token => $owner->{token});
    is $dl->header('X-Content-Type-Options'), 'nosniff', 'nosniff';
    like $dl->header('Cache-Control') // '', qr/no-store/, 'Cache-Control: no-store';
    is $dl->header('Content-Type'), 'application/pdf', 'stored type';
    is $dl->header('Content-Disposition'),
        q{attachment; filename="r_sultat 1025.pdf"; filename*=UTF-8''r%C3%A9sultat%201025.pdf},
        'Content-Disposition per RFC 6266 (ASCII fallback and UTF-8 name)';
    is $dl->header('Accept-Ranges'), 'bytes', 'Accept-Ranges';
}
{
    my $first = med_read_file(med_blob_path($made{"0/$CHUNK"}{id}));
    my $second = med_read_file(med_blob_path($made{"1/$CHUNK"}{id}));
    isnt $first, $second, 'the same file uploaded twice: different ciphertext';
    my ($k1, $k2) = map { $_->[0] } bl_psql('SELECT encode(wrapped_key, $$hex$$) FROM medical_records WHERE id IN ($1, $2)',
                                          $made{"0/$CHUNK"}{id}, $made{"1/$CHUNK"}{id});
    isnt $k1, $k2, 'and a different wrapped data key';
}

# ---------------------------------------------------------------- range
{
    my $rec = $made{"1/" . 10 * 1024 * 1024};
    my $data = med_pdf(10 * 1024 * 1024, $canary);
    my $res = bl_request(GET => "/api/v1/medical-records/$rec->{id}/download", token => $owner->{token},
                         headers => { Range => 'bytes=5000-7100' });
    is $res->code, 206, 'Range: 206';
    is $res->header('Content-Range'), 'bytes 5000-7100/' . length($data), 'Content-Range';
    ok $res->content eq substr($data, 5000, 2101), 'the bytes of the range';
    $res = bl_request(GET => "/api/v1/medical-records/$rec->{id}/download", token => $owner->{token},
                      headers => { Range => 'bytes=-10' });
    is $res->code, 206, 'suffix range: 206';
    ok $res->content eq substr($data, -10), 'the last 10 bytes';
    $res = bl_request(GET => "/api/v1/medical-records/$small->{id}/download", token => $owner->{token},
                      headers => { Range => 'bytes=1020-' });
    ok $res->code == 206 && $res->content eq substr(med_pdf($CHUNK + 1, $canary), 1020), 'open range across a chunk edge';
    $res = bl_request(GET => "/api/v1/medical-records/$small->{id}/download", token => $owner->{token},
                      headers => { Range => 'bytes=99999-' });
    is $res->code, 416, 'unsatisfiable range: 416';
    is $res->header('Content-Range'), 'bytes */' . ($CHUNK + 1), 'with the size';
}

# ---------------------------------------------------------------- tampering
{
    my ($res, $d) = med_upload($owner, med_pdf(3 * $CHUNK + 100, $canary), title => 'Tamper target');
    my $id = $d->{data}{id};
    my $path = med_blob_path($id);
    my $orig = med_read_file($path);
    my $piece = $CHUNK + 16;
    my %cases = (
        'one flipped byte' => do { my $c = $orig; substr($c, $piece + 10, 1) ^= "\x01"; $c },
        'two chunks swapped' => substr($orig, $piece, $piece) . substr($orig, 0, $piece) . substr($orig, 2 * $piece),
        'a cut-off tail' => substr($orig, 0, length($orig) - 50),
        'cut at a chunk edge' => substr($orig, 0, 3 * $piece),
        'bytes appended' => $orig . ("\0" x 40),
    );
    for my $case (sort keys %cases) {
        med_write_file($path, $cases{$case});
        my $r = bl_request(GET => "/api/v1/medical-records/$id/download", token => $owner->{token});
        is $r->code, 500, "$case: download fails";
        my $j = bl_json($r->content);
        is $j && $j->{error}{code}, 'STORAGE_INTEGRITY_ERROR', "$case: a clear error";
        ok index($r->content, '%PDF') < 0 && index($r->content, 'CANARY') < 0, "$case: no plaintext sent";
    }
    med_write_file($path, $orig);
    my $r = bl_request(GET => "/api/v1/medical-records/$id/download", token => $owner->{token});
    is $r->code, 200, 'restored: downloads again';
    bl_psql(q{UPDATE medical_records SET sha256 = sha256('other'::bytea) WHERE id = $1}, $id);
    $r = bl_request(GET => "/api/v1/medical-records/$id/download", token => $owner->{token});
    is $r->code, 500, 'stored SHA-256 mismatch: download fails';
    is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND action = 'medical.record.download'
                       AND outcome = 'failure'}, $id), 6, 'each failed download audited';
}

# ---------------------------------------------------------------- refusals leave nothing
my $before_rows = rows_of($owner);
my @before_files = med_storage_files();
{
    my ($res, $d) = med_upload($owner, "\x7fELF\x02\x01\x01" . ("\0" x 600));
    is $res->code, 415, 'an executable: 415';
    is $d->{error}{code}, 'UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_MEDIA_TYPE';
    ($res, $d) = med_upload($owner, ('plain text ' x 100) . "\xff\xfe", raw => 1);
    is $res->code, 415, 'text turning invalid after the first bytes: 415';
    ($res, $d) = med_upload($owner, "%PDF-1.4", raw => 1, title => '');
    is $res->code, 400, 'no title: 400';
    is $d->{error}{details}, 'field: title', 'names the field';
    ($res, $d) = med_upload($owner, "%PDF-1.4 x", fields => { record_type => 'horoscope' });
    is $res->code, 400, 'unknown record_type: 400';
    ($res, $d) = med_upload($owner, "%PDF-1.4 x", fields => { colour => 'red' });
    is $res->code, 400, 'unknown field: 400';
    ($res, $d) = med_upload($owner, "%PDF-1.4 x", fields => { record_date => '2026-02-30' });
    is $res->code, 400, 'impossible record_date: 400';
    my ($body, $ct) = med_multipart(fields => { title => 'x' });
    ($res, $d) = bl_request(POST => '/api/v1/medical-records', token => $owner->{token}, body => $body, content_type => $ct);
    is $res->code, 400, 'multipart without a file part: 400';
    ($res, $d) = bl_request(POST => '/api/v1/medical-records', token => $owner->{token},
                            body => "--zz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n%PDF-1.4 and then nothing",
                            content_type => 'multipart/form-data; boundary=zz');
    is $res->code, 400, 'truncated multipart body: 400';
    like $d->{error}{message}, qr/missing final boundary/, 'says why';
    ($res, $d) = med_upload($owner, med_pdf(12 * 1024 * 1024 + 1, 'x'), raw => 1);
    is $res->code, 413, 'over the limit (Content-Length): 413';
    is $d->{error}{code}, 'PAYLOAD_TOO_LARGE', 'PAYLOAD_TOO_LARGE';
}
# Over the limit without a Content-Length (chunked), and a client that goes
# away mid-upload: raw sockets.
sub raw_upload {
    my ($headers, @pieces) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{BL_HTTP_PORT} // Apache::Test::vars('port'),
                                  Timeout => 30) or die "connect: $!";
    binmode $s;
    print $s "POST /api/v1/medical-records?title=Chunked HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           . "Authorization: Bearer $owner->{token}\r\n$headers\r\n";
    for my $p (@pieces) { print $s $p; }
    return $s;
}
{
    my $piece = med_pdf(1024 * 1024, 'y');
    my $chunked = '';
    $chunked .= sprintf("%x\r\n%s\r\n", length $piece, $piece) for 1 .. 13;
    my $s = raw_upload("Transfer-Encoding: chunked\r\nContent-Type: application/pdf\r\nConnection: close\r\n",
                       $chunked, "0\r\n\r\n");
    local $/;
    local $SIG{PIPE} = 'IGNORE';
    my $answer = <$s> // '';
    close $s;
    like $answer, qr{^HTTP/1\.1 413}, 'chunked body over the limit: 413 mid-stream';
    $s = raw_upload("Content-Length: 5000000\r\nContent-Type: application/pdf\r\n",
                    med_pdf(400_000, 'z'));
    sleep 0.5;
    close $s;
    sleep 1.5;
}
is rows_of($owner), $before_rows, 'no row from any refused or interrupted upload';
is_deeply [med_storage_files()], \@before_files, 'and no blob or temporary file left';

# ---------------------------------------------------------------- list, get, update, delete
{
    my ($res, $d) = bl_request(GET => '/api/v1/medical-records', token => $owner->{token},
                               query => { per_page => 5, record_type => 'lab_result' });
    is $res->code, 200, 'list 200';
    is scalar @{ $d->{data} }, 5, 'a page of 5';
    is $d->{meta}{total}, 12, 'total of the filtered list';
    ($res, $d) = bl_request(GET => '/api/v1/medical-records', token => $owner->{token},
                            query => { from => '2026-11-03' });
    is $d->{meta}{total}, 0, 'from after every record_date: none';
    ($res, $d) = bl_request(GET => '/api/v1/medical-records', token => $owner->{token},
                            query => { record_type => 'horoscope' });
    is $res->code, 400, 'unknown record_type filter: 400';

    my $id = $small->{id};
    ($res, $d) = bl_request(PUT => "/api/v1/medical-records/$id", token => $owner->{token},
                            json => { title => 'CBC, November', description => 'fasting', record_type => 'imaging' });
    is $res->code, 200, 'update 200';
    is $d->{data}{title}, 'CBC, November', 'title changed';
    is $d->{data}{record_type}, 'imaging', 'type changed';
    ($res, $d) = bl_request(PUT => "/api/v1/medical-records/$id", token => $owner->{token},
                            json => { description => undef, record_date => undef });
    ok !defined $d->{data}{description} && !defined $d->{data}{record_date}, 'null clears';
    ($res, $d) = bl_request(PUT => "/api/v1/medical-records/$id", token => $owner->{token},
                            json => { storage_key => '../x' });
    is $res->code, 400, 'unknown field in update: 400';
    ($res, $d) = bl_request(GET => "/api/v1/medical-records/$id", token => $owner->{token});
    is $d->{data}{title}, 'CBC, November', 'read back';
    ($res, $d) = bl_request(GET => '/api/v1/medical-records/not-a-uuid', token => $owner->{token});
    is $res->code, 404, 'malformed id: 404';

    my $path = med_blob_path($id);
    ok -f $path, 'blob there before delete';
    $res = bl_request(DELETE => "/api/v1/medical-records/$id", token => $owner->{token});
    is $res->code, 204, 'delete 204';
    ok !-e $path, 'blob removed';
    my ($row) = bl_psql('SELECT wrapped_key IS NULL, deleted_at IS NOT NULL, title, original_filename FROM medical_records WHERE id = $1', $id);
    is_deeply $row, ['t', 't', 'deleted record', undef], 'data key destroyed, metadata scrubbed, row kept for the audit';
    $res = bl_request(GET => "/api/v1/medical-records/$id/download", token => $owner->{token});
    is $res->code, 404, 'deleted: download 404';
    $res = bl_request(DELETE => "/api/v1/medical-records/$id", token => $owner->{token});
    is $res->code, 404, 'deleted twice: 404';
    my @actions = map { $_->[0] } bl_psql(q{SELECT action FROM audit_logs WHERE resource_id = $1 ORDER BY created_at}, $id);
    ok((grep { $_ eq 'medical.record.create' } @actions) && (grep { $_ eq 'medical.record.download' } @actions)
       && (grep { $_ eq 'medical.record.update' } @actions) && (grep { $_ eq 'medical.record.delete' } @actions)
       && (grep { $_ eq 'medical.record.read' } @actions), 'create, read, download, update and delete audited');
}
is bl_error_log_crashes(0), 0, 'no httpd child crashed';

done_testing;

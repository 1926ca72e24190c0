# The JSON envelope of mod_beautiful_core: success, every error class
# (handler-made and httpd-made), body limits, content types, bad JSON.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $TS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

sub is_error_envelope {
    my ($res, $data, $status, $code, $name) = @_;
    is $res->code, $status, "$name: status $status";
    like $res->header('Content-Type') // '', qr{^application/json; charset=utf-8$}i,
        "$name: JSON content type";
    ok $data && ref $data eq 'HASH', "$name: body is JSON" or return;
    ok defined $data->{success} && !$data->{success}, "$name: success false";
    is $data->{error}{code}, $code, "$name: code $code";
    ok length($data->{error}{message} // ''), "$name: has a message";
    like $data->{timestamp} // '', $TS, "$name: RFC 3339 UTC timestamp";
    is length($res->content), $res->header('Content-Length'),
        "$name: Content-Length matches" if defined $res->header('Content-Length');
}

# success
my ($res, $data) = bl_request(POST => '/api/v1/core-test/echo',
                              json => { hello => 'world', n => 1 });
is $res->code, 201, 'echo POST 201';
like $res->header('Content-Type'), qr{^application/json; charset=utf-8$}, 'JSON type';
ok $data->{success}, 'success true';
is $data->{message}, 'echo', 'message';
is_deeply $data->{data}{body}, { hello => 'world', n => 1 }, 'data echoed';
ok !defined $data->{data}{user}, 'no user without a token';
like $data->{timestamp}, $TS, 'timestamp';
is $res->header('Cache-Control'), 'no-store', 'no-store on API responses';

# unknown route: 401 unauthenticated, 404 authenticated
($res, $data) = bl_request(GET => '/api/v1/no/such/route');
is_error_envelope($res, $data, 401, 'UNAUTHORIZED', 'unknown route, no token');
my $uid = bl_uuid();
my ($tok, $claims) = bl_mint_jwt(sub => $uid);
ok bl_session_create($claims->{sid}, $uid), 'session created';
($res, $data) = bl_request(GET => '/api/v1/no/such/route', token => $tok);
is_error_envelope($res, $data, 404, 'NOT_FOUND', 'unknown route, authenticated');

# httpd's own errors of every class, through the error filter
for my $case ([400, 'BAD_REQUEST'], [403, 'FORBIDDEN'], [404, 'NOT_FOUND'],
              [405, 'METHOD_NOT_ALLOWED'], [413, 'PAYLOAD_TOO_LARGE'],
              [429, 'RATE_LIMITED'], [500, 'INTERNAL_ERROR'],
              [501, 'NOT_IMPLEMENTED'], [503, 'SERVICE_UNAVAILABLE']) {
    my ($st, $code) = @$case;
    ($res, $data) = bl_request(GET => "/api/v1/core-test/echo?status=$st");
    is_error_envelope($res, $data, $st, $code, "httpd error $st");
    unlike $res->content, qr/<html|DOCTYPE/i, "httpd error $st: no HTML";
}
($res, $data) = bl_request(DELETE => '/api/v1/core-test/echo');
is_error_envelope($res, $data, 405, 'METHOD_NOT_ALLOWED', 'DELETE refused');

# 413: declared too large (refused before reading) and chunked too large
($res, $data) = bl_request(POST => '/api/v1/core-test/echo',
                           body => '{"a":"' . ('x' x (1024 * 1024 + 10)) . '"}',
                           content_type => 'application/json');
is_error_envelope($res, $data, 413, 'PAYLOAD_TOO_LARGE', 'body over 1 MiB');
{
    require IO::Socket::INET;
    my $sock = IO::Socket::INET->new(PeerAddr => Apache::TestRequest::hostport(),
                                     Timeout => 10);
    my $chunk = 'x' x 65536;
    my $req = "POST /api/v1/core-test/echo HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            . "Connection: close\r\n\r\n";
    print $sock $req;
    for (1 .. 20) {
        last unless print $sock sprintf("%x\r\n%s\r\n", length $chunk, $chunk);
    }
    print $sock "0\r\n\r\n";
    local $/;
    my $raw = <$sock> // '';
    like $raw, qr{^HTTP/1\.1 413 }, 'chunked body over the limit: 413';
    like $raw, qr{"code":"PAYLOAD_TOO_LARGE"}, 'chunked 413 in the envelope';
}

# 415
($res, $data) = bl_request(POST => '/api/v1/core-test/echo', body => '{"a":1}',
                           content_type => 'text/plain');
is_error_envelope($res, $data, 415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain body');
($res, $data) = bl_request(POST => '/api/v1/core-test/echo', body => '{"a":1}');
is_error_envelope($res, $data, 415, 'UNSUPPORTED_MEDIA_TYPE', 'no content type');
($res, $data) = bl_request(POST => '/api/v1/core-test/echo', body => '{"a":1}',
                           content_type => 'application/json; charset=latin1');
is_error_envelope($res, $data, 415, 'UNSUPPORTED_MEDIA_TYPE', 'latin1 charset');
($res, $data) = bl_request(POST => '/api/v1/core-test/echo', body => '{"a":1}',
                           content_type => 'application/json; charset=UTF-8');
is $res->code, 201, 'charset=UTF-8 accepted';

# malformed JSON names the problem
for my $case (['{"a":', 'truncated'], ['{"a":1} x', 'trailing garbage'],
              ['[1,2]', 'not an object'], ["{\"a\":\"\xff\"}", 'invalid UTF-8'],
              ['{"a":' x 40 . '1' . '}' x 40, 'too deep'], ['', 'empty']) {
    my ($body, $name) = @$case;
    ($res, $data) = bl_request(POST => '/api/v1/core-test/echo', body => $body,
                               content_type => 'application/json');
    is_error_envelope($res, $data, 400, 'MALFORMED_JSON', "malformed: $name");
    ok length($data->{error}{details} // ''), "malformed: $name: details say why";
}

# URIs httpd refuses before any <Location> applies (a bad %-escape, %00):
# still the envelope and the security headers under /api/v1 and /health.
# A raw request, so no client library tidies the URI first.
sub raw_get {
    my $path = shift;
    require IO::Socket::INET;
    require HTTP::Response;
    my $sock = IO::Socket::INET->new(PeerAddr => Apache::TestRequest::hostport(),
                                     Timeout => 10) or die "connect: $!";
    print $sock "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    local $/;
    my $raw = <$sock> // '';
    close $sock;
    my $r = HTTP::Response->parse($raw);
    my $ct = $r->header('Content-Type') // '';
    return ($r, $ct =~ /json/i ? bl_json($r->content) : undef);
}
my %SECURITY = (
    'X-Content-Type-Options'  => 'nosniff',
    'X-Frame-Options'         => 'DENY',
    'Referrer-Policy'         => 'no-referrer',
    'Content-Security-Policy' => "default-src 'none'; frame-ancestors 'none'",
    'Cache-Control'           => 'no-store',
);
for my $case (['/api/v1/auth/verify-email/%zz', 400, 'BAD_REQUEST'],
              ['/api/v1/auth/verify-email/%00', 404, 'NOT_FOUND'],
              ['/health/%zz', 400, 'BAD_REQUEST']) {
    my ($path, $st, $code) = @$case;
    ($res, $data) = raw_get($path);
    is_error_envelope($res, $data, $st, $code, "early error $path");
    unlike $res->content, qr/<html|DOCTYPE/i, "early error $path: no HTML";
    is $res->header($_), $SECURITY{$_}, "early error $path: $_" for sort keys %SECURITY;
    like $res->header('X-Request-ID') // '', qr/^[A-Za-z0-9._-]+$/,
        "early error $path: X-Request-ID";
}
# outside the API httpd's own page stays
($res, $data) = raw_get('/not-api/%zz');
is $res->code, 400, 'early error outside the API: 400';
ok !$data, 'early error outside the API: not the envelope';

done_testing();

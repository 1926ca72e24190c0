# Security headers, request ids and CORS on API responses, errors included.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my %SECURITY = (
    'X-Content-Type-Options'       => 'nosniff',
    'X-Frame-Options'              => 'DENY',
    'Referrer-Policy'              => 'no-referrer',
    'Content-Security-Policy'      => "default-src 'none'; frame-ancestors 'none'",
    'Cross-Origin-Resource-Policy' => 'same-origin',
    'Cache-Control'                => 'no-store',
);
my ($allowed) = split ' ', ($ENV{BL_CORS_ORIGINS} || 'http://localhost:3000');
my $refused = 'https://evil.example';

my $uid = bl_uuid();
my ($tok, $claims) = bl_mint_jwt(sub => $uid);
bl_session_create($claims->{sid}, $uid);

# every kind of response in an API location: success, handler error,
# httpd error before and after authentication, 404, 405, 500, 503
my @cases = (
    [GET => '/api/v1/core-test/echo', {}, 200],
    [POST => '/api/v1/core-test/echo', { body => 'nope', content_type => 'text/plain' }, 415],
    [GET => '/api/v1/no/such/route', {}, 401],
    [GET => '/api/v1/no/such/route', { token => $tok }, 404],
    [GET => '/api/v1/core-test/admin', { token => $tok }, 403],
    [DELETE => '/api/v1/core-test/echo', {}, 405],
    [GET => '/api/v1/core-test/echo?status=500', {}, 500],
    [GET => '/api/v1/core-test/echo?status=503', {}, 503],
    [GET => '/health', {}, undef],
);
for my $c (@cases) {
    my ($m, $path, $opt, $status) = @$c;
    my ($res) = bl_request($m => $path, %$opt);
    my $name = "$m $path" . ($opt->{token} ? ' (token)' : '');
    is $res->code, $status, "$name: $status" if defined $status;
    for my $h (sort keys %SECURITY) {
        is $res->header($h), $SECURITY{$h}, "$name: $h";
    }
    ok !defined $res->header('Strict-Transport-Security'), "$name: no HSTS over plain HTTP";
    like $res->header('X-Request-ID') // '', qr/^[0-9a-f-]{36}$/, "$name: request id generated";
}

# request ids: a well-formed inbound one is echoed, a bad one replaced
my ($res) = bl_request(GET => '/api/v1/core-test/echo',
                       headers => { 'X-Request-ID' => 'client-req.42_A' });
is $res->header('X-Request-ID'), 'client-req.42_A', 'inbound request id echoed';
($res) = bl_request(GET => '/api/v1/no/such', headers => { 'X-Request-ID' => 'abc-401' });
is $res->header('X-Request-ID'), 'abc-401', 'request id echoed on a 401';
for my $bad ('a b', 'x' x 65, 'id;drop', "\x{e9}t\x{e9}", '') {
    ($res) = bl_request(GET => '/api/v1/core-test/echo', headers => { 'X-Request-ID' => $bad });
    my $got = $res->header('X-Request-ID') // '';
    isnt $got, $bad, "bad request id '" . substr($bad, 0, 10) . "' not echoed";
    like $got, qr/^[0-9a-f-]{36}$/, 'a fresh one instead';
}
# the id is in the access log line of its request
($res) = bl_request(GET => '/api/v1/core-test/echo', headers => { 'X-Request-ID' => 'log-check-7' });
my $log = Apache::Test::vars('serverroot') . '/logs/access_log';
my $found = 0;
for (1 .. 20) {
    open my $fh, '<', $log or last;
    $found = grep { /"log-check-7"/ } <$fh>;
    last if $found;
    select undef, undef, undef, 0.1;
}
ok $found, 'request id written in the access log';

# CORS: allowed origin echoed with credentials; refused origin gets nothing
($res) = bl_request(GET => '/api/v1/core-test/echo', headers => { Origin => $allowed });
is $res->header('Access-Control-Allow-Origin'), $allowed, 'allowed origin echoed';
is $res->header('Access-Control-Allow-Credentials'), 'true', 'credentials allowed';
like $res->header('Vary') // '', qr/\bOrigin\b/, 'Vary: Origin';
($res) = bl_request(GET => '/api/v1/no/such/route', headers => { Origin => $allowed });
is $res->code, 401, 'error from an allowed origin';
is $res->header('Access-Control-Allow-Origin'), $allowed, 'ACAO on errors too';
($res) = bl_request(GET => '/api/v1/core-test/echo', headers => { Origin => $refused });
is $res->code, 200, 'a refused origin still gets its answer (the browser hides it)';
ok !defined $res->header('Access-Control-Allow-Origin'), 'no ACAO for a refused origin';
ok !defined $res->header('Access-Control-Allow-Credentials'), 'no ACAC for a refused origin';
($res) = bl_request(GET => '/api/v1/core-test/echo', headers => { Origin => "$allowed.evil.example" });
ok !defined $res->header('Access-Control-Allow-Origin'), 'prefix of an allowed origin refused';

# preflight, answered before authentication (/private requires a user)
my %pre = ('Access-Control-Request-Method' => 'POST',
           'Access-Control-Request-Headers' => 'content-type, authorization');
($res) = bl_request(OPTIONS => '/api/v1/core-test/private',
                    headers => { Origin => $allowed, %pre });
is $res->code, 204, 'preflight from an allowed origin: 204';
is $res->header('Access-Control-Allow-Origin'), $allowed, 'preflight ACAO';
is $res->header('Access-Control-Allow-Credentials'), 'true', 'preflight credentials';
like $res->header('Access-Control-Allow-Methods') // '', qr/\bPOST\b/, 'methods listed';
like $res->header('Access-Control-Allow-Headers') // '', qr/\bAuthorization\b/i, 'Authorization allowed';
like $res->header('Access-Control-Allow-Headers') // '', qr/\bContent-Type\b/i, 'Content-Type allowed';
like $res->header('Access-Control-Max-Age') // '', qr/^\d+$/, 'max age';
is $res->header('X-Content-Type-Options'), 'nosniff', 'security headers on the preflight';
is length($res->content), 0, 'no body';

my $data;
($res, $data) = bl_request(OPTIONS => '/api/v1/core-test/private',
                           headers => { Origin => $refused, %pre });
is $res->code, 403, 'preflight from a refused origin: 403';
is $data->{error}{code}, 'FORBIDDEN', 'in the envelope';
ok !defined $res->header('Access-Control-Allow-Origin'), 'no ACAO';
ok !defined $res->header('Access-Control-Allow-Methods'), 'no methods';

done_testing();

# HSTS on a real TLS connection: the TLS virtual host of
# t/conf/test.d/core_tls.conf, with the throw-away certificate of
# scripts/lib/stack.sh. Its absence over plain HTTP is checked in
# t/core_headers.t (every response kind), X-Forwarded-Proto in t/core_proxy.t.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;
plan skip_all => 'LWP::Protocol::https missing (Debian package liblwp-protocol-https-perl)'
    unless eval { require LWP::Protocol::https; 1 };

# What modules/core/headers.c sends: two years, subdomains included.
my $HSTS = 'max-age=63072000; includeSubDomains';

# the connection is TLS, verified against the test certificate
my ($res, $data) = bl_request(GET => bl_tls_url('/health'));
is $res->code, 200, 'GET /health over TLS: 200' or diag $res->status_line;
ok $res->header('Client-SSL-Cipher'), 'answered over TLS (' . ($res->header('Client-SSL-Cipher') // 'no cipher') . ')';
like $res->header('Client-SSL-Cert-Subject') // '', qr/CN\s*=\s*127\.0\.0\.1/, 'by the test certificate';
is $res->header('Strict-Transport-Security'), $HSTS, 'GET /health over TLS: HSTS';
is $res->header('X-Content-Type-Options'), 'nosniff', 'the other security headers too';

# an error from httpd's authentication, before any handler: still HSTS
($res, $data) = bl_request(GET => bl_tls_url('/api/v1/unknown'));
is $res->code, 401, 'GET /api/v1/unknown without a token over TLS: 401';
is $data && $data->{error}{code}, 'UNAUTHORIZED', 'in the envelope';
is $res->header('Strict-Transport-Security'), $HSTS, '401 over TLS: HSTS';

# a handler's success and a handler's error in an API location
($res) = bl_request(GET => bl_tls_url('/api/v1/core-test/echo'));
is $res->code, 200, 'API location over TLS: 200';
is $res->header('Strict-Transport-Security'), $HSTS, 'API success over TLS: HSTS';
($res) = bl_request(GET => bl_tls_url('/api/v1/core-test/echo?status=500'));
is $res->code, 500, 'API error over TLS: 500';
is $res->header('Strict-Transport-Security'), $HSTS, 'API error over TLS: HSTS';

# the same server over plain HTTP, for contrast (every case in core_headers.t)
($res) = bl_request(GET => '/health');
ok !defined $res->header('Strict-Transport-Security'), 'GET /health over plain HTTP: no HSTS';

# a client that does not trust the certificate is refused, not downgraded
($res) = bl_request(GET => bl_tls_url('/health'), ssl_opts => { verify_hostname => 1 });
isnt $res->code, 200, 'the certificate is verified: not trusted without the test CA';
like $res->status_line, qr/certificate verify failed/i, 'refused by certificate verification'
    or diag $res->status_line;

done_testing();

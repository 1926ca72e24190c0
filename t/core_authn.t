# AuthType Beautiful and Require bl-role: which access tokens get in.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use MIME::Base64 qw(encode_base64 decode_base64);
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $PRIVATE = '/api/v1/core-test/private';
my ($allowed) = split ' ', ($ENV{BL_CORS_ORIGINS} || 'http://localhost:3000');

# A token with a live session for a fresh user, and its claims;
# %claims override the defaults.
sub token_and_claims {
    my %claims = @_;
    my $uid = $claims{sub} // bl_uuid();
    my ($tok, $c) = bl_mint_jwt(sub => $uid, %claims);
    bl_session_create($c->{sid}, $uid) if defined $c->{sid};
    return ($tok, $c);
}
sub token_for { return (token_and_claims(@_))[0] }

sub refused {
    my ($name, %opt) = @_;
    my $path = delete $opt{path} // $PRIVATE;
    my ($res, $data) = bl_request(GET => $path, %opt);
    is $res->code, 401, "$name: 401";
    is $data && $data->{error}{code}, 'UNAUTHORIZED', "$name: envelope";
    ok $data && !$data->{success}, "$name: success false";
    like $res->header('WWW-Authenticate') // '', qr/^Bearer realm="beautiful"/,
        "$name: WWW-Authenticate";
    return $res;
}

# accepted, by header and by cookie
my ($tok, $c) = token_and_claims(role => 'patient');
my ($res, $data) = bl_request(GET => $PRIVATE, token => $tok);
is $res->code, 200, 'dev-key token accepted';
is $data->{data}{user}{id}, $c->{sub}, 'the user is the token subject';
is $data->{data}{user}{role}, 'patient', 'with its role';
($res, $data) = bl_request(GET => $PRIVATE, cookie => "__Host-bl_at=$tok");
is $res->code, 200, 'token in the access cookie accepted';
($res, $data) = bl_request(GET => $PRIVATE, token => token_for(exp => time - 10));
is $res->code, 200, 'expired 10 s ago: within the leeway';

# refused
$res = refused('no token');
unlike $res->header('WWW-Authenticate'), qr/error=/, 'no error code without a token';
$res = refused('expired', token => token_for(exp => time - 3600));
like $res->header('WWW-Authenticate'), qr/error="invalid_token"/, 'invalid_token';
refused('not yet valid', token => token_for(nbf => time + 3600));
refused('wrong iss', token => token_for(iss => 'https://evil.example'));
refused('wrong aud', token => token_for(aud => 'someone-else'));
refused('alg none', token => token_for(alg => 'none'));
{
    open my $fh, '<', $ENV{BL_JWT_PUBLIC_KEY} or die "public key: $!";
    local $/;
    my $pem = <$fh>;
    refused('HS256 signed with the public key', token => token_for(alg => 'HS256', key => $pem));
}
{
    my $t = token_for(role => 'patient');
    my ($h, $p, $s) = split /\./, $t;
    (my $b64 = $p) =~ tr{-_}{+/};
    my $json = decode_base64($b64 . '=' x ((4 - length($b64) % 4) % 4));
    $json =~ s/"patient"/"admin"/ or die 'no role to tamper with';
    (my $p2 = encode_base64($json, '')) =~ tr{+/}{-_};
    $p2 =~ s/=+$//;
    refused('tampered payload', token => "$h.$p2.$s");
}
refused('unknown kid', token => token_for(kid => 'no-such-key'));
refused('refresh-type token', token => token_for(typ => 'JWT'));
refused('garbage', token => 'not.a.token');
{
    my $uid = bl_uuid();
    my ($t, $cl) = bl_mint_jwt(sub => $uid);
    refused('no session', token => $t);
    bl_session_create($cl->{sid}, bl_uuid());
    refused('session of another user', token => $t);
    bl_session_create($cl->{sid}, $uid);
    ($res) = bl_request(GET => $PRIVATE, token => $t);
    is $res->code, 200, 'session restored: accepted';
    bl_redis(DEL => "bl:sess:$cl->{sid}");
    refused('revoked session', token => $t);
}
refused('token in the query string', path => "$PRIVATE?access_token=$tok");
refused('query token next to a good header', path => "$PRIVATE?access_token=$tok", token => $tok);
refused('Basic credentials', headers => { Authorization => 'Basic dXNlcjpwYXNz' });

# optional authentication on a public route
($res, $data) = bl_request(GET => '/api/v1/core-test/echo', token => $tok);
is $data->{data}{user}{id}, $c->{sub}, 'public route sees a valid token';
($res, $data) = bl_request(GET => '/api/v1/core-test/echo', token => 'bad.token.here');
is $res->code, 200, 'public route with a bad token still answers';
ok !defined $data->{data}{user}, 'as nobody';

# Require bl-role
($res, $data) = bl_request(GET => '/api/v1/core-test/admin', token => $tok);
is $res->code, 403, 'patient on an admin route: 403';
is $data->{error}{code}, 'FORBIDDEN', 'in the envelope';
($res) = bl_request(GET => '/api/v1/core-test/admin', token => token_for(role => 'admin'));
is $res->code, 200, 'admin on the admin route';
($res) = bl_request(GET => '/api/v1/core-test/staff', token => token_for(role => 'doctor'));
is $res->code, 200, 'doctor where doctor or admin may go';
($res) = bl_request(GET => '/api/v1/core-test/staff', token => token_for(role => 'caregiver'));
is $res->code, 403, 'caregiver refused there';
($res) = bl_request(GET => '/api/v1/core-test/admin');
is $res->code, 401, 'no token on a role route: 401, not 403';

# CSRF: cookie-authenticated state changes need a known origin
my $cookie = "__Host-bl_at=$tok";
($res, $data) = bl_request(POST => $PRIVATE, json => { a => 1 }, cookie => $cookie,
                           headers => { Origin => 'https://evil.example' });
is $res->code, 403, 'cookie POST from a foreign origin: 403';
is $data->{error}{code}, 'FORBIDDEN', 'in the envelope';
($res) = bl_request(POST => $PRIVATE, json => { a => 1 }, cookie => $cookie);
is $res->code, 403, 'cookie POST without Origin or Referer: 403';
($res) = bl_request(POST => $PRIVATE, json => { a => 1 }, cookie => $cookie,
                    headers => { Referer => 'https://evil.example/page' });
is $res->code, 403, 'cookie POST with a foreign Referer: 403';
($res) = bl_request(POST => $PRIVATE, json => { a => 1 }, cookie => $cookie,
                    headers => { Origin => $allowed });
is $res->code, 201, 'cookie POST from an allowed origin';
($res) = bl_request(POST => $PRIVATE, json => { a => 1 }, cookie => $cookie,
                    headers => { Origin => $ENV{BL_PUBLIC_URL} });
is $res->code, 201, 'cookie POST from our own origin';
($res) = bl_request(POST => $PRIVATE, json => { a => 1 }, token => $tok,
                    headers => { Origin => 'https://evil.example' });
is $res->code, 201, 'Bearer POST is not subject to the origin check';
($res) = bl_request(GET => $PRIVATE, cookie => $cookie,
                    headers => { Origin => 'https://evil.example' });
is $res->code, 200, 'cookie GET from anywhere (safe method)';

# Redis down: 503 with Retry-After; back up: accepted again without a restart
SKIP: {
    skip 'no stack helper', 5 unless $ENV{BL_STACK};
    ok bl_stack('redis-stop'), 'Redis stopped';
    ($res, $data) = bl_request(GET => $PRIVATE, token => $tok);
    is $res->code, 503, 'Redis down: 503';
    ok $res->header('Retry-After'), 'with Retry-After';
    ok bl_stack('redis-start'), 'Redis started';
    bl_session_create($c->{sid}, $c->{sub});
    my $code;
    for (1 .. 30) {
        ($res) = bl_request(GET => $PRIVATE, token => $tok);
        $code = $res->code;
        last if $code == 200;
        select undef, undef, undef, 0.2;
    }
    is $code, 200, 'Redis back: accepted again';
}

done_testing();

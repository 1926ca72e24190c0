# mod_beautiful_auth: tokens seen from outside — the JWKS read by a client
# nobody here wrote (PyJWT), password reset and email verification links
# (single use, expiry), and no secret in any response body or log line.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IPC::Open3 qw(open3);
use BL::Test;
require "$FindBin::Bin/auth_helpers.pl";

plan skip_all => 'mod_beautiful_auth not loaded' unless auth_loaded();
our $PASSWORD;
my @secrets;          # every password, token and hash this suite handled
my @bodies;           # every response body except login/refresh

sub req {
    my ($res, $data) = bl_request(@_);
    push @bodies, $res->content;
    return ($res, $data);
}

# ---------------------------------------------------------------- JWKS + PyJWT
my ($res, $data) = bl_request(GET => '/.well-known/jwks.json');
is $res->code, 200, 'JWKS 200';
like $res->header('Content-Type'), qr{application/json}, 'JSON';
my $jwks = bl_json($res->content);
ok $jwks && @{ $jwks->{keys} } >= 1, 'keys listed';
ok !grep({ exists $_->{d} || exists $_->{p} } @{ $jwks->{keys} }), 'no private parts';
ok !grep({ !$_->{kid} } @{ $jwks->{keys} }), 'every key has a kid';

my $u = new_user();
push @secrets, $PASSWORD, $u->{access}, $u->{refresh};

my $PY = <<'PY';
import json, sys, urllib.request
import jwt
from jwt.algorithms import RSAAlgorithm
url, token, aud, iss = sys.argv[1:5]
jwks = json.load(urllib.request.urlopen(url))
kid = jwt.get_unverified_header(token)["kid"]
key = RSAAlgorithm.from_jwk(json.dumps([k for k in jwks["keys"] if k["kid"] == kid][0]))
try:
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=aud, issuer=iss)
    print("OK " + claims["sub"])
except jwt.ExpiredSignatureError:
    print("EXPIRED")
except Exception as e:
    print("FAIL " + type(e).__name__)
PY
sub pyjwt {
    my ($token, $aud, $iss) = @_;
    my $pid = open3(my $in, my $out, undef, '/usr/bin/python3', '-c', $PY,
                    bl_url('/.well-known/jwks.json'), $token,
                    $aud // $ENV{BL_JWT_AUDIENCE}, $iss // $ENV{BL_JWT_ISSUER});
    close $in;
    local $/;
    my $r = <$out> // '';
    waitpid $pid, 0;
    $r =~ s/\s+\z//;
    return $r;
}
is pyjwt($u->{access}), "OK $u->{id}", 'PyJWT verifies our access token via the JWKS (iss, aud, exp)';
like pyjwt($u->{access}, 'someone-else'), qr/^FAIL/, 'PyJWT refuses another audience';
like pyjwt($u->{access}, undef, 'https://evil.example'), qr/^FAIL/, 'PyJWT refuses another issuer';
my $expired = bl_mint_jwt(sub => $u->{id}, exp => time - 600, iat => time - 1500,
                          nbf => time - 1500);
is pyjwt($expired), 'EXPIRED', 'PyJWT refuses an expired token';
my ($h) = split /\./, $u->{access};
my $hdr = bl_json(do { (my $b = $h) =~ tr{-_}{+/}; require MIME::Base64;
                       MIME::Base64::decode_base64($b) });
is $hdr->{typ}, 'at+jwt', 'typ at+jwt';

# ---------------------------------------------------------------- forgot/reset
($res, $data) = req(POST => '/api/v1/auth/forgot-password', json => { email => new_email() });
is $res->code, 202, 'forgot for an unknown address: 202';
my $unknown_body = $data; delete $unknown_body->{timestamp};
($res, $data) = req(POST => '/api/v1/auth/forgot-password', json => { email => $u->{email} });
is $res->code, 202, 'forgot for a known address: 202';
delete $data->{timestamp};
is_deeply $data, $unknown_body, 'same answer either way';
my $mail = mail_for($u->{email}, qr/reset/i);
my $rtoken = token_from_mail($mail);
ok $rtoken, 'reset link emailed';
push @secrets, $rtoken;
like $mail, qr{/reset-password#token=}, 'link to the reset page, token in the fragment';
unlike $mail, qr{[?&]token=}, 'no token in a query string (Referer, access logs)';
my ($r2) = login($u->{email});   # a second session, to see it end
my $new_pw = 'another long passphrase 7';
push @secrets, $new_pw;
($res, $data) = req(POST => '/api/v1/auth/reset-password',
                    json => { token => $rtoken, password => 'short' });
is $res->code, 400, 'policy applies to the new password';
($res, $data) = req(POST => '/api/v1/auth/reset-password',
                    json => { token => $rtoken, password => $new_pw });
is $res->code, 200, 'password reset' or diag $res->content;
($res) = req(GET => '/api/v1/users/profile', token => $u->{access});
is $res->code, 401, 'every session revoked after a reset';
($res, $data) = req(POST => '/api/v1/auth/reset-password',
                    json => { token => $rtoken, password => 'yet another passphrase' });
is $res->code, 400, 'reused reset token 400';
is $data->{error}{code}, 'TOKEN_USED', 'TOKEN_USED';
($res) = login($u->{email}, $new_pw);
is $res->code, 200, 'new password logs in';
($res) = login($u->{email}, $PASSWORD);
is $res->code, 401, 'old one does not';

# Expired reset token.
my $seen = mails_to($u->{email}, qr/reset/i);
bl_request(POST => '/api/v1/auth/forgot-password', json => { email => $u->{email} });
my $etoken = token_from_mail(new_mail_to($u->{email}, qr/reset/i, $seen));
push @secrets, $etoken;
bl_psql(q{UPDATE password_reset_tokens SET expires_at = now() - interval '1 minute'
          WHERE token_hash = encode(sha256($1::bytea), 'hex')}, $etoken);
($res, $data) = req(POST => '/api/v1/auth/reset-password',
                    json => { token => $etoken, password => 'yet another passphrase' });
is $data->{error}{code}, 'TOKEN_EXPIRED', 'expired reset token 400 TOKEN_EXPIRED';
($res, $data) = req(POST => '/api/v1/auth/reset-password',
                    json => { token => 'made-up', password => 'yet another passphrase' });
is $data->{error}{code}, 'INVALID_TOKEN', 'unknown reset token 400 INVALID_TOKEN';

# A deactivated account's reset link answers as an unknown one.
my $gone = new_user();
bl_request(POST => '/api/v1/auth/forgot-password', json => { email => $gone->{email} });
my $gtoken = token_from_mail(mail_for($gone->{email}, qr/reset/i));
push @secrets, $gtoken if $gtoken;
bl_psql(q{UPDATE users SET is_active = false WHERE id = $1}, $gone->{id});
($res, $data) = req(POST => '/api/v1/auth/reset-password',
                    json => { token => $gtoken // 'none', password => 'yet another passphrase' });
is $res->code, 400, 'reset link of a deactivated account 400';
is $data->{error}{code}, 'INVALID_TOKEN', 'INVALID_TOKEN, as for an unknown link';
is bl_psql_value(q{SELECT count(*) FROM password_reset_tokens WHERE user_id = $1
                   AND used_at IS NOT NULL}, $gone->{id}), 0, 'and the link is not spent';

# ---------------------------------------------------------------- verification
my ($rr, $rd, $vemail) = register_user();
my $vtoken = token_from_mail(mail_for($vemail, qr/confirm/i));
push @secrets, $vtoken;
my $vseen = mails_to($vemail, qr/confirm/i);
($res, $data) = req(POST => '/api/v1/auth/resend-verification', json => { email => $vemail });
is $res->code, 202, 'resend 202';
($res, $data) = req(GET => "/api/v1/auth/verify-email/$vtoken");
is $data->{error}{code}, 'TOKEN_EXPIRED', 'a resend retires the older link';
my $v2 = token_from_mail(new_mail_to($vemail, qr/confirm/i, $vseen));
push @secrets, $v2 if $v2;
($res, $data) = req(GET => "/api/v1/auth/verify-email/$v2");
is $res->code, 200, 'newest link verifies';
($res, $data) = req(GET => "/api/v1/auth/verify-email/$v2");
is $data->{error}{code}, 'TOKEN_USED', 'reused verification link 400 TOKEN_USED';
my ($er, $ed, $e2) = register_user();
my $vt2 = token_from_mail(mail_for($e2, qr/confirm/i));
push @secrets, $vt2;
bl_psql(q{UPDATE email_verification_tokens SET expires_at = now() - interval '1 second'
          WHERE token_hash = encode(sha256($1::bytea), 'hex')}, $vt2);
($res, $data) = req(GET => "/api/v1/auth/verify-email/$vt2");
is $res->code, 400, 'expired verification link 400';
is $data->{error}{code}, 'TOKEN_EXPIRED', 'TOKEN_EXPIRED';

# ---------------------------------------------------------------- log forging
# mod_beautiful_auth writes no client text to a log line (only ids it made
# itself), so the test uses a line httpd writes about an auth route: a
# refused admin path, decoded, in mod_authz_core's AH01631 line.
{
    my $u2 = new_user();
    my $tag = 'forged-' . bl_uuid();
    my $mark = bl_error_log_mark();
    ($res) = req(GET => "/api/v1/admin/users/x%0d%0a%5Bnotice%5D%20$tag",
                 token => $u2->{access});
    is $res->code, 403, 'non-admin refused on an admin path carrying CR LF';
    my $log = bl_error_log_since($mark);
    like $log, qr{authorization failure for "/api/v1/admin/users/x\\r\\n\[notice\] \Q$tag\E"},
        "httpd's authz_core error line (not auth's own) has the CR LF escaped";
    unlike $log, qr/^\[notice\] \Q$tag\E/m, 'and no forged line';
}

# ---------------------------------------------------------------- no secrets
my @hashes = map { $_->[0] } bl_psql(q{SELECT password_hash FROM users});
push @secrets, grep { defined && length } @hashes;
push @secrets, map { $_->[0] } bl_psql(q{SELECT token_hash FROM refresh_tokens});
my $body_text = join "\n", @bodies;
my @in_bodies = grep { index($body_text, $_) >= 0 } @secrets;
is scalar(@in_bodies), 0, 'no password, hash or token in any response body';

my $logs = '';
for my $f ("$ENV{BL_SRC_DIR}/t/logs/bl_access_log", "$ENV{BL_SRC_DIR}/t/logs/access_log",
           bl_error_log_path()) {
    next unless defined $f && -r $f;
    open my $fh, '<', $f or next;
    local $/;
    $logs .= <$fh>;
}
ok length $logs, 'logs read';
my @in_logs = grep { index($logs, $_) >= 0 } @secrets;
is scalar(@in_logs), 0, 'no password, hash or token in the access and error logs'
    or diag scalar(@in_logs) . ' found';
unlike $logs, qr/^\[notice\] forged/m, 'no forged log line';
like $logs, qr{verify-email/\[redacted\]}, 'verification path redacted in the access log';

done_testing;

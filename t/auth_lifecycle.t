# mod_beautiful_auth: the whole life cycle of an account, as a user sees it:
# register -> verification email in the sink -> verify -> login -> profile
# read and update -> refresh -> logout -> the old token refused.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/auth_helpers.pl";

plan skip_all => 'mod_beautiful_auth not loaded' unless auth_loaded();

my ($res, $data, $email) = register_user(
    email => '  Life-' . bl_uuid() . '@Example.TEST ',
    role => 'caregiver',
    profile => { first_name => 'Ada', last_name => 'Lovelace', gender => 'female',
                 date_of_birth => '1980-02-29', treatment_stage => 'in_treatment',
                 location => { city => 'Pune', country => 'India' }, is_public => \1 });
is $res->code, 201, 'register 201' or diag $res->content;
$email = lc($email); $email =~ s/^\s+|\s+$//g;
my $user = $data->{data};
is $user->{email}, $email, 'email trimmed and lower-cased';
is $user->{role}, 'caregiver', 'role kept';
is $user->{profile}{first_name}, 'Ada', 'profile stored';
is $user->{profile}{location}{city}, 'Pune', 'location stored';
is $user->{profile}{date_of_birth}, '1980-02-29', 'date of birth stored';
ok !$user->{email_verified}, 'not verified yet';
unlike $res->content, qr/argon2|password/i, 'no hash or password in the answer';
is $res->header('Cache-Control'), 'no-store', 'no-store on personal data';

# The verification email, delivered through the outbox.
my $mail = mail_for($email, qr/confirm/i);
ok $mail, 'verification email delivered' or BAIL_OUT('no email');
my $vtoken = token_from_mail($mail);
ok $vtoken, 'link with a token in the email';
like $mail, qr{\Q$ENV{BL_PUBLIC_URL}\E/verify-email#token=}, 'link to the site, token in the fragment';
unlike $mail, qr{[?&]token=}, 'no token in a query string (Referer, access logs)';
is bl_psql_value(q{SELECT count(*) FROM email_verification_tokens
                   WHERE user_id = $1 AND token_hash = encode(sha256($2::bytea), 'hex')},
                 $user->{id}, $vtoken), 1, 'token stored hashed';

($res, $data) = bl_request(GET => "/api/v1/auth/verify-email/$vtoken");
is $res->code, 200, 'verify 200' or diag $res->content;
ok bl_psql_value(q{SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1},
                 $user->{id}) eq 't', 'email_verified_at set';

# Login: tokens in the body and as cookies.
($res, $data) = login($email);
is $res->code, 200, 'login 200' or diag $res->content;
my $access = $data->{data}{access_token};
my $refresh = $data->{data}{refresh_token};
ok $access && $refresh, 'access and refresh tokens in the body';
is $data->{data}{token_type}, 'Bearer', 'token type';
is $data->{data}{expires_in}, 900, 'expires in 15 minutes';
is $data->{data}{user}{id}, $user->{id}, 'user in the body';
ok $data->{data}{user}{email_verified}, 'user is verified';
is $res->header('Cache-Control'), 'no-store', 'login not cached';
my $c = cookies_of($res);
for my $name ('__Host-bl_at', '__Host-bl_rt') {
    ok $c->{$name}, "$name cookie set" or next;
    my %a = map { lc($_) => 1 } map { (split /=/)[0] } @{ $c->{$name}{attrs} };
    ok $a{secure} && $a{httponly}, "$name Secure HttpOnly";
    like $c->{$name}{raw}, qr/Path=\/(;|$)/, "$name Path=/";
    like $c->{$name}{raw}, qr/SameSite=(Lax|Strict)/, "$name SameSite";
    unlike $c->{$name}{raw}, qr/Domain=/i, "$name without Domain";
}
is $c->{'__Host-bl_at'}{value}, $access, 'access cookie carries the access token';
ok bl_psql_value(q{SELECT last_active_at IS NOT NULL FROM users WHERE id = $1},
                 $user->{id}) eq 't', 'last_active_at set at login';

# Profile read and update, with the bearer token and with the cookie.
($res, $data) = bl_request(GET => '/api/v1/users/profile', token => $access);
is $res->code, 200, 'profile 200';
is $data->{data}{email}, $email, 'own profile';
is $res->header('Cache-Control'), 'no-store', 'profile not cached';
unlike $res->content, qr/password|argon2/i, 'no hash in the profile';
($res, $data) = bl_request(GET => '/api/v1/users/profile',
                           cookie => "__Host-bl_at=$access");
is $res->code, 200, 'profile with the cookie';

($res, $data) = bl_request(PUT => '/api/v1/users/profile', token => $access,
    json => { bio => 'Knitting and long walks.', cancer_type => 'breast',
              last_name => undef, location => { city => 'Mumbai' } });
is $res->code, 200, 'profile update 200' or diag $res->content;
is $data->{data}{profile}{bio}, 'Knitting and long walks.', 'bio set';
is $data->{data}{profile}{cancer_type}, 'breast', 'cancer type set';
ok !defined $data->{data}{profile}{last_name}, 'null clears last_name';
is $data->{data}{profile}{first_name}, 'Ada', 'untouched field kept';
is $data->{data}{profile}{location}{city}, 'Mumbai', 'city changed';

($res, $data) = bl_request(PUT => '/api/v1/users/profile', token => $access,
                           json => { gender => 'robot' });
is $res->code, 400, 'invalid enum 400';
is $data->{error}{details}, 'field: gender', 'names the field';
($res, $data) = bl_request(PUT => '/api/v1/users/profile', token => $access,
                           json => { date_of_birth => '2999-01-01' });
is $res->code, 400, 'future birth date 400';
($res, $data) = bl_request(PUT => '/api/v1/users/profile', token => $access,
                           json => { email => 'x@example.test' });
is $res->code, 400, 'unknown field refused';
($res, $data) = bl_request(PUT => '/api/v1/users/profile', token => $access,
                           json => { is_public => 'yes' });
is $res->code, 400, 'is_public must be boolean';

# Refresh rotates; the new access token works.
($res, $data) = bl_request(POST => '/api/v1/auth/refresh',
                           json => { refresh_token => $refresh });
is $res->code, 200, 'refresh 200' or diag $res->content;
my $access2 = $data->{data}{access_token};
my $refresh2 = $data->{data}{refresh_token};
ok $access2 && $refresh2 && $refresh2 ne $refresh, 'new tokens';
($res) = bl_request(GET => '/api/v1/users/profile', token => $access2);
is $res->code, 200, 'new access token works';

# Refresh with the cookie (browsers).
($res, $data) = bl_request(POST => '/api/v1/auth/refresh',
                           cookie => "__Host-bl_rt=$refresh2");
is $res->code, 200, 'refresh from the cookie' or diag $res->content;
my $refresh3 = $data->{data}{refresh_token};
my $access3 = $data->{data}{access_token};
ok cookies_of($res)->{'__Host-bl_rt'}, 'refresh cookie rotated';

# Logout: the same access token is refused at once.
($res, $data) = bl_request(POST => '/api/v1/auth/logout', token => $access3);
is $res->code, 200, 'logout 200' or diag $res->content;
like join(' ', $res->header('Set-Cookie')), qr/__Host-bl_at=;.*Max-Age=0/, 'cookie cleared';
($res, $data) = bl_request(GET => '/api/v1/users/profile', token => $access3);
is $res->code, 401, 'old access token refused after logout';
($res, $data) = bl_request(GET => '/api/v1/users/profile', token => $access2);
is $res->code, 401, 'earlier access token of the session refused too';
($res, $data) = bl_request(POST => '/api/v1/auth/refresh',
                           json => { refresh_token => $refresh3 });
is $res->code, 401, 'refresh of an ended session refused';
is bl_psql_value(q{SELECT revoke_reason FROM sessions WHERE user_id = $1
                   ORDER BY created_at DESC LIMIT 1}, $user->{id}), 'logout',
    'session marked revoked';
($res) = bl_request(POST => '/api/v1/auth/logout');
is $res->code, 401, 'logout without a token 401';

# logout-all ends every session.
my ($r1, $d1) = login($email);
my ($r2, $d2) = login($email);
($res) = bl_request(POST => '/api/v1/auth/logout-all', token => $d1->{data}{access_token});
is $res->code, 200, 'logout-all 200';
($res) = bl_request(GET => '/api/v1/users/profile', token => $d2->{data}{access_token});
is $res->code, 401, 'the other session ended too';
is bl_psql_value(q{SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL},
                 $user->{id}), 0, 'no live session left';

# Audit rows were written.
ok bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE user_id = $1
                   AND action = 'auth.login' AND outcome = 'success'}, $user->{id}) >= 3,
    'logins audited';
ok bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE user_id = $1
                   AND action = 'auth.register'}, $user->{id}) == 1, 'registration audited';

done_testing;

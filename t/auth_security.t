# mod_beautiful_auth: the unhappy paths — registration refusals, login
# answering alike for unknown email and wrong password, throttling,
# deactivated accounts, refresh-token reuse, token kinds, CSRF, admin and
# private-profile refusals, avatars, account deletion, create-admin.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(time sleep);
use BL::Test;
require "$FindBin::Bin/auth_helpers.pl";

plan skip_all => 'mod_beautiful_auth not loaded' unless auth_loaded();
our $PASSWORD;

# ---------------------------------------------------------------- register
my ($res, $data, $email) = register_user();
is $res->code, 201, 'register';
($res, $data) = register_user(email => uc $email);
is $res->code, 409, 'duplicate email in another case: 409';
is $data->{error}{code}, 'EMAIL_TAKEN', 'EMAIL_TAKEN';
($res, $data) = register_user(password => 'short pw 1');
is $res->code, 400, 'short password 400';
is $data->{error}{code}, 'WEAK_PASSWORD', 'WEAK_PASSWORD';
($res, $data) = register_user(password => 'x' x 129);
is $res->code, 400, 'password over 128 characters 400';
($res, $data) = register_user(password => 'qwertyuiopasdfgh');
($res, $data) = register_user(password => '1qaz2wsx3edc');
is $res->code, 400, 'common password 400';
like $data->{error}{message}, qr/common/, 'says why';
($res, $data) = register_user(password => 'QAZWSXEDCRFV');
is $res->code, 400, 'common password in another case 400';
my $local = 'marigold' . int(rand(1e6));
($res, $data) = register_user(email => "$local\@example.test",
                              password => "my $local secret");
is $res->code, 400, 'password containing the email local part 400';
($res, $data) = register_user(email => 'not-an-email');
is $res->code, 400, 'malformed email 400';
is $data->{error}{details}, 'field: email', 'names email';
($res, $data) = register_user(role => 'admin');
is $res->code, 400, 'admin cannot be self-assigned';
($res, $data) = bl_request(POST => '/api/v1/auth/register',
    json => { email => new_email(), password => $PASSWORD, role => undef });
is $res->code, 400, '"role": null refused, not taken as absent';
is $data->{error}{details}, 'field: role', 'names role';
($res, $data) = bl_request(POST => '/api/v1/auth/register',
    json => { email => new_email(), password => $PASSWORD, extra => 1 });
is $res->code, 400, 'unknown field refused';
($res, $data) = bl_request(POST => '/api/v1/auth/register', body => 'email=x',
                           content_type => 'application/x-www-form-urlencoded');
is $res->code, 415, 'non-JSON body 415';

# ---------------------------------------------------------------- login alike
my ($res1, $d1) = login($email, 'wrong password here!');
my ($res2, $d2) = login(new_email(), 'wrong password here!');
is $res1->code, 401, 'wrong password 401';
is $res2->code, 401, 'unknown email 401';
delete $_->{timestamp} for $d1, $d2;
is_deeply $d1, $d2, 'identical bodies for wrong password and unknown email';
# Near-equal timing: both run one argon2 verification.
my (@known, @unknown);
for (1 .. 3) {
    my $t = time; login($email, "wrong password $_ !!"); push @known, time - $t;
    $t = time; login(new_email(), "wrong password $_ !!"); push @unknown, time - $t;
}
my ($mk) = sort { $a <=> $b } @known;
my ($mu) = sort { $a <=> $b } @unknown;
ok $mu > $mk * 0.5 && $mu < $mk * 2, sprintf('near-equal timing (%.1f ms vs %.1f ms)',
                                            $mk * 1000, $mu * 1000);
ok bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'auth.login'
                   AND outcome = 'failure' AND details->>'reason' = 'unknown_email'}) > 0,
    'failures audited';

# No truncation: a password differing only after byte 72.
my $long = 'L' x 80;
my $u72 = new_user(password => $long . 'A');
($res) = login($u72->{email}, $long . 'B');
is $res->code, 401, 'password differing after byte 72 does not log in';

# ---------------------------------------------------------------- throttling
# Per-account limit 5 in t/conf/test.d/auth.conf; only failures fill it.
my $owner = new_user();
my @ok = map { (login($owner->{email}))[0]->code } 1 .. 6;
is_deeply \@ok, [(200) x 6], 'successful logins do not fill the account bucket';

my $victim = new_user();
my $failures = sub {
    bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE user_id = $1
                    AND action = 'auth.login' AND outcome = 'failure'}, $victim->{id});
};
my (@codes, @argon2);
for (1 .. 5) {
    my $t = time;
    push @codes, (login($victim->{email}, "guess number $_ !!"))[0]->code;
    push @argon2, time - $t;
}
is_deeply \@codes, [(401) x 5], 'first failures answered 401';
is $failures->(), 5, 'each failure audited';
my ($one_hash) = sort { $a <=> $b } @argon2;   # a 401 costs one argon2 run
my $t0 = time;
($res) = login($victim->{email}, 'guess number 6 !!');
my $throttled_time = time - $t0;
is $res->code, 429, 'then 429 per account';
ok $res->header('Retry-After'), '429 carries Retry-After';
is $failures->(), 5, 'the refused attempt wrote no failure row';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE user_id = $1
                   AND action = 'auth.login' AND outcome = 'denied'
                   AND details->>'reason' = 'throttled'
                   AND details->>'limit' = 'account'}, $victim->{id}), 1,
    'but a denied/throttled row';
$t0 = time;
($res) = login($victim->{email});
$throttled_time = time - $t0 if time - $t0 < $throttled_time;
is $res->code, 429,
    'the right password waits out the window too (the documented trade-off)';
ok $throttled_time < $one_hash / 2,
    sprintf('throttled before argon2: 429 in %.1f ms, a 401 in %.1f ms',
            $throttled_time * 1000, $one_hash * 1000);

# Per IP: core's bl_rate_limit, limit 1000/60 s in the test conf so that
# every suite can log in from 127.0.0.1. Rather than a thousand requests,
# the bucket of a second address (127.0.0.2) is filled in Redis; the next
# login from there is refused, from 127.0.0.1 it is not. A retry covers a
# window rolling over between the two steps.
{
    require Digest::SHA;
    my $ip = '127.0.0.2';
    my $hash = Digest::SHA::sha256_hex($ip);
    my $code = 0;
    for (1 .. 3) {
        bl_request(POST => '/api/v1/auth/login', local_address => $ip,
                   json => { email => new_email(), password => 'any password at all' });
        my ($key) = grep { /^bl:rl:auth_login_ip:([0-9a-f]+):/ && index($hash, $1) == 0 }
                    bl_redis(KEYS => 'bl:rl:auth_login_ip:*');
        next unless $key;
        bl_redis(SET => $key, 100000, 'KEEPTTL');
        ($res) = bl_request(POST => '/api/v1/auth/login', local_address => $ip,
                            json => { email => new_email(), password => 'any password at all' });
        $code = $res->code;
        last if $code == 429;
    }
    is $code, 429, 'per-IP limit: 429 for the address over it';
    ($res) = login(new_email(), 'any password at all');
    is $res->code, 401, 'another address is not affected';
    ok bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'auth.login'
                       AND outcome = 'denied' AND details->>'limit' = 'ip'
                       AND ip_address = '127.0.0.2'}) >= 1, 'IP throttling audited';
}

# ---------------------------------------------------------------- last active
# At most one write a minute: after one update, requests a few seconds
# apart leave last_active_at alone (written after the response: polled).
{
    my $act = new_user();
    my $stamp = sub { bl_psql_value(q{SELECT last_active_at::text FROM users WHERE id = $1},
                                    $act->{id}) };
    bl_psql(q{UPDATE users SET last_active_at = now() - interval '2 minutes' WHERE id = $1},
            $act->{id});
    my $old = $stamp->();
    bl_request(GET => '/api/v1/users/profile', token => $act->{access});
    my $new = $old;
    for (1 .. 50) { last if ($new = $stamp->()) ne $old; sleep 0.1 }
    isnt $new, $old, 'an authenticated request updates an old last_active_at';
    sleep 2;
    bl_request(GET => '/api/v1/users/profile', token => $act->{access}) for 1 .. 3;
    sleep 1;
    is $stamp->(), $new, 'requests seconds later leave it unchanged';
}

# ---------------------------------------------------------------- deactivated
my $deact = new_user();
bl_psql(q{UPDATE users SET is_active = false WHERE id = $1}, $deact->{id});
($res, $data) = login($deact->{email});
is $res->code, 403, 'deactivated account cannot log in';
is $data->{error}{code}, 'ACCOUNT_DISABLED', 'ACCOUNT_DISABLED';
($res, $data) = login($deact->{email}, 'not the password!!');
is $res->code, 401, 'wrong password on a deactivated account still just 401';

# ---------------------------------------------------------------- refresh reuse
my $u = new_user();
($res, $data) = bl_request(POST => '/api/v1/auth/refresh', json => { refresh_token => $u->{refresh} });
is $res->code, 200, 'legitimate refresh';
my $new_access = $data->{data}{access_token};
my $new_refresh = $data->{data}{refresh_token};
($res, $data) = bl_request(POST => '/api/v1/auth/refresh', json => { refresh_token => $u->{refresh} });
is $res->code, 401, 'reused refresh token refused';
is $data->{error}{code}, 'REFRESH_TOKEN_REUSED', 'REFRESH_TOKEN_REUSED';
($res) = bl_request(POST => '/api/v1/auth/refresh', json => { refresh_token => $new_refresh });
is $res->code, 401, 'the newest refresh token of the family is dead too';
($res) = bl_request(GET => '/api/v1/users/profile', token => $new_access);
is $res->code, 401, 'and so is the access token of the family';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE user_id = $1
                   AND action = 'auth.refresh_reuse'}, $u->{id}), 1, 'reuse audited';
($res) = bl_request(POST => '/api/v1/auth/refresh', json => { refresh_token => 'nonsense' });
is $res->code, 401, 'unknown refresh token 401';

# ---------------------------------------------------------------- token kinds
$u = new_user();
($res) = bl_request(GET => '/api/v1/users/profile', token => $u->{refresh});
is $res->code, 401, 'refresh token as bearer refused';
my ($mail_user) = new_user();
($res) = bl_request(GET => '/api/v1/users/profile', query => { access_token => $u->{access} });
is $res->code, 401, 'token in the query string refused';
my $vt = bl_mint_jwt(sub => $u->{id}, typ => 'JWT');
($res) = bl_request(GET => '/api/v1/users/profile', token => $vt);
is $res->code, 401, 'a JWT without typ at+jwt refused';

# CSRF: cookie-authenticated state change from a foreign origin.
($res) = bl_request(PUT => '/api/v1/users/profile', json => { bio => 'x' },
                    cookie => "__Host-bl_at=$u->{access}",
                    headers => { Origin => 'https://evil.example' });
is $res->code, 403, 'cross-origin cookie request refused (CSRF)';
($res) = bl_request(PUT => '/api/v1/users/profile', json => { bio => 'x' },
                    cookie => "__Host-bl_at=$u->{access}",
                    headers => { Origin => (split /\s+/, $ENV{BL_CORS_ORIGINS})[0] });
is $res->code, 200, 'same request from an allowed origin passes';

# ---------------------------------------------------------------- profiles
my $private = new_user();
my $public = new_user(public => 1);
($res) = bl_request(GET => "/api/v1/users/profile/$private->{id}");
is $res->code, 404, 'private profile 404 anonymously';
($res) = bl_request(GET => "/api/v1/users/profile/$private->{id}", token => $u->{access});
is $res->code, 404, 'private profile 404 to another user';
($res, $data) = bl_request(GET => "/api/v1/users/profile/$private->{id}",
                           token => $private->{access});
is $res->code, 200, 'own private profile visible';
($res, $data) = bl_request(GET => "/api/v1/users/profile/$public->{id}");
is $res->code, 200, 'public profile visible without login';
ok !exists $data->{data}{email}, 'public view has no email';
ok !exists $data->{data}{profile}{date_of_birth}, 'nor birth date';
is $res->header('Cache-Control'), 'no-store', 'no-store';
($res) = bl_request(GET => '/api/v1/users/profile/not-a-uuid');
is $res->code, 404, 'malformed id 404';
($res) = bl_request(GET => '/api/v1/users/profile');
is $res->code, 401, 'own profile needs a login';

# ---------------------------------------------------------------- avatar
sub multipart {
    my ($field, $bytes, $type) = @_;
    my $b = 'XbLbOuNdArY' . int(rand(1e9));
    my $body = "--$b\r\nContent-Disposition: form-data; name=\"$field\"; filename=\"a.png\"\r\n"
             . "Content-Type: $type\r\n\r\n$bytes\r\n--$b--\r\n";
    return (body => $body, content_type => "multipart/form-data; boundary=$b");
}
my $png = "\x89PNG\r\n\x1a\n" . ("\0" x 100);
($res, $data) = bl_request(POST => '/api/v1/users/upload-avatar', token => $u->{access},
                           multipart('avatar', $png, 'image/png'));
is $res->code, 200, 'PNG avatar accepted' or diag $res->content;
my $url = $data->{data}{avatar_url} // '';
like $url, qr{/uploads/avatars/[0-9a-f-]{36}\.png$}, 'stored under a generated name';
my ($name) = $url =~ m{([^/]+)$};
ok -f "$ENV{BL_UPLOAD_DIR}/avatars/$name", 'file on disk';
($res, $data) = bl_request(POST => '/api/v1/users/upload-avatar', token => $u->{access},
                           multipart('avatar', "<?php echo 1; ?>" . ("x" x 50), 'image/png'));
is $res->code, 415, 'not an image (despite its Content-Type) 415';
($res, $data) = bl_request(POST => '/api/v1/users/upload-avatar', token => $u->{access},
                           multipart('avatar', $png . ("\0" x 70000), 'image/png'));
is $res->code, 413, 'over the size limit 413';
($res) = bl_request(POST => '/api/v1/users/upload-avatar', token => $u->{access},
                    json => { avatar => 'x' });
is $res->code, 415, 'JSON instead of multipart 415';
($res, $data) = bl_request(POST => '/api/v1/users/upload-avatar', token => $u->{access},
                           multipart('avatar', "\xff\xd8\xff" . ("\0" x 50), 'text/plain'));
is $res->code, 200, 'JPEG recognised from its bytes';
ok !-f "$ENV{BL_UPLOAD_DIR}/avatars/$name", 'previous avatar file removed';

# ---------------------------------------------------------------- password change
my $pc = new_user();
my ($r_other, $d_other) = login($pc->{email});
($res, $data) = bl_request(PUT => '/api/v1/users/password', token => $pc->{access},
    json => { current_password => 'wrong password !!', new_password => 'a brand new passphrase' });
is $res->code, 403, 'wrong current password 403';
($res, $data) = bl_request(PUT => '/api/v1/users/password', token => $pc->{access},
    json => { current_password => $PASSWORD, new_password => '1qaz2wsx3edc' });
is $res->code, 400, 'common new password 400';
($res, $data) = bl_request(PUT => '/api/v1/users/password', token => $pc->{access},
    json => { current_password => $PASSWORD, new_password => 'a brand new passphrase' });
is $res->code, 200, 'password changed' or diag $res->content;
($res) = bl_request(GET => '/api/v1/users/profile', token => $d_other->{data}{access_token});
is $res->code, 401, 'other sessions ended';
($res) = bl_request(GET => '/api/v1/users/profile', token => $pc->{access});
is $res->code, 200, 'this session continues';
($res) = login($pc->{email}, 'a brand new passphrase');
is $res->code, 200, 'new password logs in';

# ---------------------------------------------------------------- admin
my $admin = new_user(admin => 1);
($res, $data) = bl_request(GET => '/api/v1/admin/users', token => $u->{access});
is $res->code, 403, 'non-admin on /admin 403';
($res, $data) = bl_request(GET => '/api/v1/admin/users', token => $admin->{access},
                           query => { role => 'admin', per_page => 1 });
is $res->code, 200, 'admin list' or diag $res->content;
is $data->{meta}{per_page}, 1, 'paginated';
ok $data->{meta}{total} >= 1, 'total';
ok !grep({ $_->{role} ne 'admin' } @{ $data->{data} }), 'role filter';
($res, $data) = bl_request(GET => '/api/v1/admin/users', token => $admin->{access},
                           query => { email => substr($u->{email}, 0, 20) });
is scalar(@{ $data->{data} }), 1, 'email prefix filter';
($res, $data) = bl_request(GET => '/api/v1/admin/users', token => $admin->{access},
                           query => { active => 'maybe' });
is $res->code, 400, 'bad filter 400';
($res) = bl_request(GET => '/api/v1/admin/users', token => $admin->{access},
                    query => { active => 'false', verified => 'false' });
is $res->code, 200, 'active and verified filters';
($res, $data) = bl_request(GET => '/api/v1/admin/users?role=admin&role=patient',
                           token => $admin->{access});
is $res->code, 400, 'a parameter given twice 400';
is $data->{error}{details}, 'field: role', 'names it';
($res) = bl_request(GET => '/api/v1/admin/users?email=user%00x', token => $admin->{access});
is $res->code, 400, 'a NUL in a value 400';

my $target = new_user();
($res, $data) = bl_request(PUT => "/api/v1/admin/users/$target->{id}", token => $admin->{access},
                           json => { role => 'doctor' });
is $res->code, 200, 'role changed' or diag $res->content;
is $data->{data}{role}, 'doctor', 'now a doctor';
($res) = bl_request(GET => '/api/v1/users/profile', token => $target->{access});
is $res->code, 401, 'the demoted/changed user\'s token stops at once';
my ($tr, $td) = login($target->{email});
($res) = bl_request(PUT => "/api/v1/admin/users/$target->{id}", token => $admin->{access},
                    json => { is_active => \0 });
is $res->code, 200, 'deactivated';
($res) = bl_request(GET => '/api/v1/users/profile', token => $td->{data}{access_token});
is $res->code, 401, 'deactivated user\'s live session ends at once';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'admin.user_update'
                   AND resource_id = $1}, $target->{id}), 2, 'admin changes audited';
($res) = bl_request(PUT => "/api/v1/admin/users/$admin->{id}", token => $admin->{access},
                    json => { role => 'patient' });
is $res->code, 409, 'an admin cannot demote themself';
($res) = bl_request(PUT => '/api/v1/admin/users/' . bl_uuid(), token => $admin->{access},
                    json => { is_active => \1 });
is $res->code, 404, 'unknown user 404';

# ---------------------------------------------------------------- deletion
my $del = new_user();
bl_request(POST => '/api/v1/users/upload-avatar', token => $del->{access},
           multipart('avatar', $png, 'image/png'));
($res) = bl_request(DELETE => '/api/v1/users/account', token => $del->{access},
                    json => { password => 'not my password!' });
is $res->code, 403, 'deletion needs the password';
($res) = bl_request(DELETE => '/api/v1/users/account', token => $del->{access},
                    json => { password => $PASSWORD });
is $res->code, 200, 'account deleted' or diag $res->content;
is bl_psql_value(q{SELECT count(*) FROM users WHERE id = $1}, $del->{id}), 0, 'row gone';
is bl_psql_value(q{SELECT count(*) FROM sessions WHERE user_id = $1}, $del->{id}), 0,
    'sessions gone';
($res) = bl_request(GET => '/api/v1/users/profile', token => $del->{access});
is $res->code, 401, 'token refused at once';
ok bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'account.deleted'
                   AND resource_id = $1 AND user_id IS NULL AND ip_address IS NULL},
                 $del->{id}) == 1, 'deletion audited, detached and scrubbed';
($res) = login($del->{email});
is $res->code, 401, 'cannot log in any more';

# ---------------------------------------------------------------- create-admin
{
    my $hasher = $ENV{BL_HASH_PASSWORD} // '';
    ok -x $hasher, 'bl-hash-password was built' or diag "BL_HASH_PASSWORD=$hasher";
    my $ae = new_email();
    local $ENV{BL_ADMIN_PASSWORD} = 'first admin passphrase';
    my $out = `$ENV{BL_SRC_DIR}/scripts/create-admin --email $ae --hasher $hasher 2>&1`;
    is $?, 0, 'create-admin ran' or diag $out;
    ($res, $data) = login($ae, 'first admin passphrase');
    is $data->{data}{user}{role}, 'admin', 'the new admin logs in as admin';
    $out = `$ENV{BL_SRC_DIR}/scripts/create-admin --email $ae --hasher $hasher 2>&1`;
    isnt $?, 0, 'an existing address is refused';
}

done_testing;

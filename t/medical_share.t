# mod_beautiful_medical: sharing with a person, break-glass and share
# links — each with its refusals, audit rows and notifications.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

sub in_hours { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600 * $_[0])) }

my $owner = med_user(first_name => 'Paula');
my $carer = med_user(role => 'caregiver');
my $doctor = med_user(role => 'doctor');
my $stranger = med_user();
my $other = med_user();
my $data = med_pdf(3000, 'SHARED-SCAN;');
my ($res, $d) = med_upload($owner, $data, title => 'MRI report');
my $id = $d->{data}{id};
my $base = "/api/v1/medical-records/$id";

# ---------------------------------------------------------------- shares
($res, $d) = bl_request(POST => "$base/share", token => $owner->{token},
                        json => { email => uc $carer->{email}, access_level => 'view',
                                  expires_at => in_hours(24), note => 'for the appointment' });
is $res->code, 201, 'share by email (any case): 201';
my $share = $d->{data};
is $share->{shared_with}{id}, $carer->{id}, 'the grantee';
is $share->{access_level}, 'view', 'view';
ok $share->{active}, 'active';
is bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND type = 'medical.shared'}, $carer->{id}), 2,
   'the grantee is notified (in-app and email outbox rows)';
($res, $d) = bl_request(GET => "$base/download", token => $carer->{token});
is $res->code, 403, 'view share: download 403';
($res, $d) = bl_request(POST => "$base/share", token => $owner->{token},
                        json => { user_id => $carer->{id}, access_level => 'download', expires_at => in_hours(48) });
is $res->code, 200, 're-sharing updates the live share: 200';
is $d->{data}{id}, $share->{id}, 'the same share';
is $d->{data}{access_level}, 'download', 'now download';
$res = bl_request(GET => "$base/download", token => $carer->{token});
ok $res->code == 200 && $res->content eq $data, 'download share: the file';
($res, $d) = bl_request(GET => "$base/shares", token => $owner->{token});
is $res->code, 200, 'owner lists shares';
is scalar @{ $d->{data} }, 1, 'one share';
for my $bad ([{ email => $carer->{email}, access_level => 'edit', expires_at => in_hours(1) }, 'access_level'],
             [{ email => $carer->{email}, access_level => 'view', expires_at => in_hours(-1) }, 'expires_at'],
             [{ email => $carer->{email}, access_level => 'view', expires_at => in_hours(24 * 400) }, 'expires_at'],
             [{ email => $carer->{email}, access_level => 'view', expires_at => 'tomorrow' }, 'expires_at'],
             [{ access_level => 'view', expires_at => in_hours(1) }, 'user_id'],
             [{ user_id => $owner->{id}, access_level => 'view', expires_at => in_hours(1) }, 'user_id'],
             [{ email => $carer->{email}, access_level => 'view', expires_at => in_hours(1), x => 1 }, 'x']) {
    ($res, $d) = bl_request(POST => "$base/share", token => $owner->{token}, json => $bad->[0]);
    is $res->code, 400, "bad share ($bad->[1]): 400";
    is $d->{error}{details}, "field: $bad->[1]", "names $bad->[1]";
}
($res, $d) = bl_request(POST => "$base/share", token => $owner->{token},
                        json => { email => 'nobody-' . bl_uuid() . '@example.test', access_level => 'view', expires_at => in_hours(1) });
is $res->code, 404, 'unknown grantee: 404';
for my $u ([$stranger, 404], [$doctor, 404], [$carer, 403]) {
    ($res, $d) = bl_request(POST => "$base/share", token => $u->[0]{token},
                            json => { user_id => $other->{id}, access_level => 'download', expires_at => in_hours(1) });
    is $res->code, $u->[1], "$u->[0]{role} not the owner: share $u->[1]";
    ($res, $d) = bl_request(GET => "$base/shares", token => $u->[0]{token});
    is $res->code, $u->[1], "$u->[0]{role} not the owner: list shares $u->[1]";
    $res = bl_request(DELETE => "$base/shares/$share->{id}", token => $u->[0]{token});
    is $res->code, $u->[1], "$u->[0]{role} not the owner: revoke $u->[1]";
}
is bl_psql_value(q{SELECT count(*) FROM medical_record_shares WHERE record_id = $1}, $id), 1, 'nothing shared by them';
$res = bl_request(DELETE => "$base/shares/$share->{id}", token => $owner->{token});
is $res->code, 204, 'owner revokes: 204';
$res = bl_request(GET => $base, token => $carer->{token});
is $res->code, 404, 'revoked at once: the grantee gets 404';
$res = bl_request(DELETE => "$base/shares/$share->{id}", token => $owner->{token});
is $res->code, 404, 'revoking twice: 404';

# ---------------------------------------------------------------- break-glass
($res, $d) = bl_request(POST => "$base/emergency-access", token => $stranger->{token},
                        json => { reason => 'I would like to see it please' });
is $res->code, 403, 'a patient cannot break the glass';
($res, $d) = bl_request(POST => "$base/emergency-access", token => $doctor->{token}, json => { reason => 'short' });
is $res->code, 400, 'a reason of at least 10 characters';
($res, $d) = bl_request(POST => '/api/v1/medical-records/' . bl_uuid() . '/emergency-access', token => $doctor->{token},
                        json => { reason => 'Unconscious patient in the emergency room' });
is $res->code, 404, 'unknown record: 404';
$res = bl_request(GET => $base, token => $doctor->{token});
is $res->code, 404, 'doctor before break-glass: 404';
($res, $d) = bl_request(POST => "$base/emergency-access", token => $doctor->{token},
                        json => { reason => 'Unconscious patient in the emergency room' });
is $res->code, 201, 'doctor breaks the glass: 201';
like $d->{data}{expires_at}, qr/^\d{4}-/, 'time-limited';
my $minutes = bl_psql_value(q{SELECT round(extract(epoch FROM expires_at - granted_at) / 60) FROM medical_record_emergency_access WHERE id = $1}, $d->{data}{id});
is $minutes, 60, 'for BeautifulMedicalEmergencyMinutes (60)';
($res, $d) = bl_request(GET => $base, token => $doctor->{token});
is $d->{data}{access}, 'emergency', 'reads with access emergency';
$res = bl_request(GET => "$base/download", token => $doctor->{token});
ok $res->code == 200 && $res->content eq $data, 'and downloads';
$res = bl_request(PUT => $base, token => $doctor->{token}, json => { title => 'x' });
is $res->code, 403, 'but cannot change it';
is bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND type = 'medical.emergency_access'}, $owner->{id}), 2,
   'the owner is notified at once';
like bl_psql_value(q{SELECT details->>'reason' FROM audit_logs WHERE resource_id = $1 AND action = 'medical.record.emergency_access' AND outcome = 'success'}, $id),
     qr/Unconscious/, 'audited with the reason';
($res, $d) = bl_request(GET => "$base/access-log", token => $owner->{token}, query => { per_page => 100 });
ok((grep { $_->{action} eq 'medical.record.emergency_access' && $_->{actor}{id} eq $doctor->{id} } @{ $d->{data} }),
   'the owner sees the break-glass in the access log');
ok((grep { $_->{action} eq 'medical.record.share' } @{ $d->{data} }), 'and the share');
bl_psql(q{UPDATE medical_record_emergency_access SET granted_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE doctor_id = $1}, $doctor->{id});
$res = bl_request(GET => $base, token => $doctor->{token});
is $res->code, 404, 'expired grant: 404';

# Ending a grant early: the owner or an admin; nobody else.
my $admin = med_user(role => 'admin');
my $doctor2 = med_user(role => 'doctor');
my $glass = sub {
    my ($res, $d) = bl_request(POST => "$base/emergency-access", token => $doctor->{token},
                               json => { reason => 'Unconscious patient in the emergency room' });
    is $res->code, 201, 'doctor breaks the glass again: 201';
    return $d->{data}{id};
};
my $live = sub {
    bl_psql_value(q{SELECT count(*) FROM medical_record_emergency_access WHERE id = $1 AND revoked_at IS NULL}, $_[0]);
};
my $grant = $glass->();
is bl_psql_value(q{SELECT details->>'grant_id' FROM audit_logs WHERE resource_id = $1 AND action = 'medical.record.emergency_access' AND outcome = 'success' ORDER BY created_at DESC, id DESC LIMIT 1}, $id),
   $grant, 'the grant id is in the break-glass audit row (the owner finds it in the access log)';
is bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND type = 'medical.emergency_access' AND data->>'grant_id' = $2}, $owner->{id}, $grant), 1,
   'and in the owner\'s in-app notification';
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $stranger->{token});
is $res->code, 404, 'a stranger cannot end the grant: 404';
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $doctor2->{token});
is $res->code, 404, 'another doctor cannot: 404';
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $doctor->{token});
is $res->code, 403, 'the doctor holding it (who can see the record) cannot either: 403';
my (undef, $od) = med_upload($stranger, med_pdf(100, 'OTHER;'), title => 'Not yours');
my $other_id = $od->{data}{id};
$res = bl_request(DELETE => "/api/v1/medical-records/$other_id/emergency-access/$grant", token => $stranger->{token});
is $res->code, 404, 'the grant named under another owner\'s record: 404';
is $live->($grant), 1, 'the grant is still live after the refusals';
$res = bl_request(GET => $base, token => $doctor->{token});
is $res->code, 200, 'and the doctor still reads';
$res = bl_request(DELETE => "$base/emergency-access/" . bl_uuid(), token => $owner->{token});
is $res->code, 404, 'owner, unknown grant: 404';
$res = bl_request(DELETE => "$base/emergency-access/not-a-uuid", token => $owner->{token});
is $res->code, 404, 'owner, malformed grant id: 404';
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $owner->{token});
is $res->code, 204, 'the owner ends the grant early: 204';
is $live->($grant), 0, 'revoked in the database';
$res = bl_request(GET => $base, token => $doctor->{token});
is $res->code, 404, 'the doctor\'s next read is refused: 404';
$res = bl_request(GET => "$base/download", token => $doctor->{token});
is $res->code, 404, 'and the download: 404';
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $owner->{token});
is $res->code, 404, 'ending it twice: 404';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND action = 'medical.record.emergency_access.end' AND outcome = 'success' AND user_id = $2 AND details->>'grant_id' = $3}, $id, $owner->{id}, $grant), 1,
   'audited once, in the owner\'s name';
($res, $d) = bl_request(GET => "$base/access-log", token => $owner->{token}, query => { per_page => 100 });
ok((grep { $_->{action} eq 'medical.record.emergency_access.end' } @{ $d->{data} }), 'and shown in the access log');
$grant = $glass->();
$res = bl_request(GET => $base, token => $admin->{token});
is $res->code, 404, 'an admin does not read the record';
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $admin->{token});
is $res->code, 204, 'but ends a grant: 204';
$res = bl_request(GET => $base, token => $doctor->{token});
is $res->code, 404, 'the doctor is refused at once';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND action = 'medical.record.emergency_access.end' AND user_id = $2}, $id, $admin->{id}), 1,
   'audited in the admin\'s name';
$grant = $glass->();
bl_psql(q{UPDATE medical_record_emergency_access SET granted_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE id = $1}, $grant);
$res = bl_request(DELETE => "$base/emergency-access/$grant", token => $owner->{token});
is $res->code, 404, 'an expired grant cannot be ended: 404';

# ---------------------------------------------------------------- share links
($res, $d) = bl_request(POST => "$base/share-links", token => $owner->{token},
                        json => { expires_at => in_hours(2), max_uses => 2 });
is $res->code, 201, 'share link: 201';
my $link = $d->{data};
like $link->{url}, qr{/api/v1/share-links/[A-Za-z0-9_-]{43}$}, 'a URL with a random token';
is bl_psql_value(q{SELECT count(*) FROM medical_share_links WHERE token_hash = $1}, sha256_hex($link->{token})), 1,
   'the token is stored hashed';
is bl_psql_value(q{SELECT count(*) FROM medical_share_links WHERE token_hash = $1}, $link->{token}), 0, 'not in clear';
my $lpath = "/api/v1/share-links/$link->{token}";
($res, $d) = bl_request(GET => $lpath);
is $res->code, 200, 'metadata without an account';
is $d->{data}{record}{title}, 'MRI report', 'the record';
for my $n (1, 2) {
    $res = bl_request(GET => "$lpath/download");
    ok $res->code == 200 && $res->content eq $data, "download $n of 2";
}
($res, $d) = bl_request(GET => "$lpath/download");
is $res->code, 410, 'max_uses reached: 410';
is $d->{error}{code}, 'SHARE_LINK_GONE', 'SHARE_LINK_GONE';
$res = bl_request(GET => '/api/v1/share-links/' . 'A' x 43);
is $res->code, 404, 'unknown token: 404';
($res, $d) = bl_request(POST => "$base/share-links", token => $carer->{token}, json => { expires_at => in_hours(2) });
is $res->code, 404, 'not the owner (share revoked): 404';
($res, $d) = bl_request(POST => "$base/share-links", token => $owner->{token}, json => { expires_at => in_hours(-2) });
is $res->code, 400, 'expiry in the past: 400';

# Expiry.
($res, $d) = bl_request(POST => "$base/share-links", token => $owner->{token}, json => { expires_at => in_hours(1) });
my $exp = $d->{data};
bl_psql(q{UPDATE medical_share_links SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 minute' WHERE id = $1}, $exp->{id});
$res = bl_request(GET => "/api/v1/share-links/$exp->{token}");
is $res->code, 410, 'expired link: 410';

# Passcode: required, wrong five times and the link dies.
($res, $d) = bl_request(POST => "$base/share-links", token => $owner->{token},
                        json => { expires_at => in_hours(1), passcode => '4711-blue' });
my $pl = $d->{data};
ok $pl->{has_passcode}, 'link with a passcode';
unlike bl_psql_value(q{SELECT passcode_hash FROM medical_share_links WHERE id = $1}, $pl->{id}), qr/4711/, 'passcode stored hashed';
my $ppath = "/api/v1/share-links/$pl->{token}";
($res, $d) = bl_request(GET => $ppath);
is $res->code, 401, 'no passcode: 401';
is $d->{error}{code}, 'PASSCODE_REQUIRED', 'PASSCODE_REQUIRED';
$res = bl_request(GET => "$ppath/download", headers => { 'X-Share-Passcode' => '4711-blue' });
ok $res->code == 200 && $res->content eq $data, 'right passcode: the file';
for my $n (1 .. 4) {
    ($res, $d) = bl_request(GET => $ppath, headers => { 'X-Share-Passcode' => "wrong-$n" });
    is $res->code, 403, "wrong passcode $n: 403";
    is $d->{error}{details}, 'attempts left: ' . (5 - $n), 'attempts left';
}
($res, $d) = bl_request(GET => $ppath, headers => { 'X-Share-Passcode' => 'wrong-5' });
is $res->code, 410, 'fifth wrong passcode: the link dies';
$res = bl_request(GET => "$ppath/download", headers => { 'X-Share-Passcode' => '4711-blue' });
is $res->code, 410, 'even with the right passcode afterwards';
is bl_psql_value(q{SELECT revoke_reason FROM medical_share_links WHERE id = $1}, $pl->{id}), 'passcode', 'revoked for the passcode';

# Revocation by the owner.
($res, $d) = bl_request(POST => "$base/share-links", token => $owner->{token}, json => { expires_at => in_hours(1) });
my $rl = $d->{data};
$res = bl_request(DELETE => "$base/share-links/$rl->{id}", token => $stranger->{token});
is $res->code, 404, 'a stranger cannot revoke it';
$res = bl_request(DELETE => "$base/share-links/$rl->{id}", token => $owner->{token});
is $res->code, 204, 'owner revokes: 204';
$res = bl_request(GET => "/api/v1/share-links/$rl->{token}");
is $res->code, 410, 'revoked at once: 410';

my $uses = bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND action LIKE 'medical.share_link.%'}, $id);
is $uses, 14, 'every use of a link is audited, refusals included';
my $log = med_read_file(bl_access_log_path()) // '';
ok index($log, $link->{token}) < 0 && index($log, $pl->{token}) < 0, 'no token in the access log';
like $log, qr{/api/v1/share-links/\[redacted\]}, 'redacted there';

done_testing;

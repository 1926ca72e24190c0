# mod_beautiful_notify: the /notifications routes against the test server —
# the in-app list, read and delete (and another user's id: 404, nothing
# changed), preferences and their validation, the device registry, the
# admin dead letters and their audited retry.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/notify_helpers.pl";

plan skip_all => 'mod_beautiful_notify not loaded' unless notify_loaded();
plan tests => 74;

my $alice = notify_user();
my $bob = notify_user();

sub api {
    my ($method, $path, $user, %opt) = @_;
    return bl_request($method, "/api/v1$path", token => $user ? $user->{token} : undef, %opt);
}

# ---------------------------------------------------------------- list

my @ids = map { notify_add(user => $alice->{id}, title => "Note $_",
                           type => $_ == 3 ? 'chat.message' : 'reminder.due') } 1 .. 3;
my $email_row = notify_add(user => $alice->{id}, channel => 'email', title => 'mail');
my $bobs = notify_add(user => $bob->{id}, title => "Bob's");
is(notify_wait($_, 10)->{status}, 'sent', 'in-app row delivered by being stored') for @ids[0, 2];
notify_wait($ids[1], 10);
notify_wait($bobs, 10);

my ($res, $d) = api(GET => '/notifications', $alice);
is($res->code, 200, 'GET /notifications: 200');
is_deeply([map { $_->{title} } @{ $d->{data} }], ['Note 3', 'Note 2', 'Note 1'],
          'own in-app rows, newest first (no email row, no one else\'s)');
is($d->{meta}{unread_count}, 3, 'meta.unread_count');
is($d->{meta}{total}, 3, 'meta.total');
ok(!$d->{data}[0]{read} && exists $d->{data}[0]{created_at}, 'item shape: read flag, created_at');
is($res->header('Cache-Control'), 'no-store', 'personal data is not cached');
ok(notify_conforms($res, 'GET', '/notifications'), '... the answer matches docs/openapi.yaml');

($res, $d) = api(GET => '/notifications', $alice, query => { type => 'chat.message' });
is(scalar @{ $d->{data} }, 1, 'type= filters');
($res, $d) = api(GET => '/notifications', $alice, query => { per_page => 2, page => 2 });
is_deeply([map { $_->{title} } @{ $d->{data} }], ['Note 1'], 'pagination');
($res, $d) = api(GET => '/notifications', $alice, query => { unread => 'maybe' });
is($res->code, 400, 'unread=maybe: 400');
is($d->{error}{details}, 'field: unread', '... naming the field');
($res, $d) = api(GET => '/notifications', $alice, query => { type => 'no.such' });
is($res->code, 400, 'unknown type filter: 400');
($res, $d) = api(GET => '/notifications', $alice, query => { colour => 'red' });
is($res->code, 400, 'unknown parameter: 400');
($res, $d) = api(GET => '/notifications', undef);
is($res->code, 401, 'no token: 401');

# ---------------------------------------------------------------- read / delete

($res, $d) = api(PUT => "/notifications/$ids[0]/read", $alice);
is($res->code, 200, 'PUT /notifications/:id/read: 200');
ok($d->{data}{read} && $d->{data}{read_at}, '... read with read_at');
ok(notify_conforms($res, 'PUT', '/notifications/{id}/read'), '... as documented');
($res, $d) = api(GET => '/notifications', $alice, query => { unread => 'true' });
is_deeply([sort map { $_->{title} } @{ $d->{data} }], ['Note 2', 'Note 3'], 'unread=true filters');
is($d->{meta}{unread_count}, 2, 'unread_count went down');

($res, $d) = api(PUT => "/notifications/$bobs/read", $alice);
is($res->code, 404, "BOLA: reading Bob's notification is 404");
is(bl_psql_value(q{SELECT read_at IS NULL FROM notifications WHERE id = $1}, $bobs), 't',
   '... and it stays unread');
($res, $d) = api(DELETE => "/notifications/$bobs", $alice);
is($res->code, 404, "BOLA: deleting Bob's notification is 404");
is(bl_psql_value(q{SELECT count(*) FROM notifications WHERE id = $1}, $bobs), 1,
   '... and it is still there');
($res, $d) = api(PUT => "/notifications/$email_row/read", $alice);
is($res->code, 404, 'an email row is not an in-app notification: 404');
($res, $d) = api(PUT => '/notifications/not-a-uuid/read', $alice);
is($res->code, 404, 'malformed id: 404');
($res, $d) = api(PUT => '/notifications/' . bl_uuid() . '/read', $alice);
is($res->code, 404, 'unknown id: 404');

($res, $d) = api(PUT => '/notifications/read-all', $alice);
is($res->code, 200, 'PUT /notifications/read-all: 200');
is($d->{data}{updated}, 2, '... two rows marked');
is(bl_psql_value(q{SELECT read_at IS NULL FROM notifications WHERE id = $1}, $bobs), 't',
   "read-all leaves Bob's rows alone");

($res) = api(DELETE => "/notifications/$ids[1]", $alice);
is($res->code, 204, 'DELETE own: 204');
($res) = api(DELETE => "/notifications/$ids[1]", $alice);
is($res->code, 404, 'DELETE again: 404');

# ---------------------------------------------------------------- preferences

($res, $d) = api(GET => '/notifications/preferences', $alice);
is($res->code, 200, 'GET preferences: 200');
is_deeply(unbool($d->{data}), { channels => { email => 1, sms => 1, push => 1, in_app => 1 },
                        types => {}, quiet_hours => undef, phone => undef },
          'defaults: every channel on, no quiet hours, no phone');

($res, $d) = api(PUT => '/notifications/preferences', $alice, json => {
    channels => { sms => \0 },
    types => { 'reminder.due' => ['push', 'in_app', 'push'] },
    quiet_hours => { start => '22:00', end => '07:00', timezone => 'Asia/Kolkata' },
    phone => '+919812345678' });
is($res->code, 200, 'PUT preferences: 200');
ok(notify_conforms($res, 'PUT', '/notifications/preferences'), '... as documented');
is_deeply(unbool($d->{data}), { channels => { email => 1, sms => 0, push => 1, in_app => 1 },
                        types => { 'reminder.due' => ['push', 'in_app'] },
                        quiet_hours => { start => '22:00', end => '07:00',
                                         timezone => 'Asia/Kolkata' },
                        phone => '+919812345678' },
          '... the whole stored set comes back');
($res, $d) = api(PUT => '/notifications/preferences', $alice,
                 json => { channels => { email => \0 }, types => { 'reminder.due' => undef } });
is_deeply(unbool([$d->{data}{channels}{sms}, $d->{data}{channels}{email}, $d->{data}{phone},
           $d->{data}{types}]), [0, 0, '+919812345678', {}],
          'partial update keeps the rest; a type set to null goes back to the default');

my $before = bl_psql_value(q{SELECT updated_at FROM notification_preferences WHERE user_id = $1},
                           $alice->{id});
for my $case (
    [{ phone => '9812345678' }, 'phone', 'phone without +'],
    [{ phone => '+0123456789' }, 'phone', 'phone starting with 0'],
    [{ phone => 12345 }, 'phone', 'phone as a number'],
    [{ quiet_hours => { start => '25:00', end => '07:00' } }, 'quiet_hours.start', 'hour 25'],
    [{ quiet_hours => { start => '22:00', end => '7:00' } }, 'quiet_hours.end', 'H:MM'],
    [{ quiet_hours => { start => '22:00', end => '22:00' } }, 'quiet_hours.end', 'empty window'],
    [{ quiet_hours => { start => '22:00', end => '07:00', timezone => 'Mars/Olympus' } },
     'quiet_hours.timezone', 'unknown zone'],
    [{ quiet_hours => { start => '22:00', end => '07:00', timezone => 'IST' } },
     'quiet_hours.timezone', 'abbreviation'],
    [{ channels => { fax => \1 } }, 'channels.fax', 'unknown channel'],
    [{ channels => { sms => 'no' } }, 'channels.sms', 'channel not boolean'],
    [{ types => { 'reminder.due' => ['pigeon'] } }, 'types.reminder.due', 'unknown channel in a type'],
    [{ types => { 'no.such' => ['push'] } }, 'types.no.such', 'unknown type'],
    [{ colour => 'red' }, 'colour', 'unknown field'],
) {
    my ($body, $field, $what) = @$case;
    ($res, $d) = api(PUT => '/notifications/preferences', $alice, json => $body);
    ok($res->code == 400 && $d->{error}{details} eq "field: $field",
       "PUT preferences, $what: 400 naming $field")
        or diag($res->code . ' ' . $res->content);
}
is(bl_psql_value(q{SELECT updated_at FROM notification_preferences WHERE user_id = $1},
                 $alice->{id}), $before, 'refused updates changed nothing');
($res, $d) = api(PUT => '/notifications/preferences', $alice, json => { quiet_hours => undef,
                                                                         phone => undef });
ok(!defined $d->{data}{quiet_hours} && !defined $d->{data}{phone}, 'null clears quiet hours and phone');

# ---------------------------------------------------------------- devices

($res, $d) = api(POST => '/notifications/devices', $alice,
                 json => { platform => 'android', token => 'tok-alice-1' });
is($res->code, 201, 'POST device: 201');
ok(notify_conforms($res, 'POST', '/notifications/devices'), '... as documented');
my $dev = $d->{data}{id};
($res, $d) = api(POST => '/notifications/devices', $alice,
                 json => { platform => 'android', token => 'tok-alice-1' });
ok($res->code == 200 && $d->{data}{id} eq $dev, 'the same token again: the same row');
is(bl_psql_value(q{SELECT count(*) FROM push_devices WHERE token = 'tok-alice-1'}), 1,
   '... one row');
($res, $d) = api(POST => '/notifications/devices', $alice, json => { platform => 'nokia', token => 'x' });
is($res->code, 400, 'unknown platform: 400');
($res, $d) = api(POST => '/notifications/devices', $alice, json => { platform => 'ios' });
is($d->{error}{details}, 'field: token', 'missing token: 400 naming token');
($res) = api(DELETE => "/notifications/devices/$dev", $bob);
is($res->code, 404, "BOLA: Bob cannot delete Alice's device");
($res) = api(DELETE => "/notifications/devices/$dev", $alice);
is($res->code, 204, 'DELETE own device: 204');

# ---------------------------------------------------------------- admin

my $admin = notify_user(role => 'admin');
my $dead = notify_add(user => $bob->{id}, channel => 'email', title => 'secret title');
bl_psql(q{UPDATE notifications SET status = 'failed', attempts = 5, last_error = 'smtp 550'
          WHERE id = $1}, $dead);
($res, $d) = api(GET => '/admin/notifications', $alice, query => { status => 'failed' });
is($res->code, 403, 'a patient: 403');
($res, $d) = api(GET => '/admin/notifications', $admin, query => { status => 'failed', per_page => 100 });
is($res->code, 200, 'admin list: 200');
ok(notify_conforms($res, 'GET', '/admin/notifications'), '... as documented');
my ($item) = grep { $_->{id} eq $dead } @{ $d->{data} };
ok($item && $item->{last_error} eq 'smtp 550', 'the dead letter is listed with its error');
ok($item && !exists $item->{title} && !exists $item->{body}, '... never its title or body');
($res, $d) = api(GET => '/admin/notifications', $admin, query => { status => 'lost' });
is($res->code, 400, 'unknown status: 400');
ok(notify_conforms($res, 'GET', '/admin/notifications'), '... in the documented envelope');
($res, $d) = api(POST => "/admin/notifications/$dead/retry", $admin);
is($res->code, 200, 'retry: 200');
is(notify_row($dead)->{status} =~ /^(pending|sending|sent)$/ ? 1 : 0, 1, '... queued again');
is(bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'admin.notification_retry'
                   AND resource_id = $1}, $dead), 1, '... and audited');
($res, $d) = api(POST => "/admin/notifications/$ids[0]/retry", $admin);
is($res->code, 409, 'retrying a sent row: 409');
($res, $d) = api(POST => '/admin/notifications/' . bl_uuid() . '/retry', $admin);
is($res->code, 404, 'unknown id: 404');

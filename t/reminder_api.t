# mod_beautiful_reminder: the /reminders routes — create, read, list,
# update, pause, delete — with their validation and object-level access
# (another user's reminder is 404; a caregiver reads but never writes).
use strict;
use warnings FATAL => 'all';

use FindBin;
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use BL::Test;
require "$FindBin::Bin/reminder_helpers.pl";

plan skip_all => 'mod_beautiful_reminder not loaded' unless reminder_loaded();
plan tests => 84;

my $mark = bl_error_log_mark();
my $NOW = '2026-12-01T10:00:00Z';    # a Tuesday
rm_set_clock($NOW);

my $alice = rm_user();
my $bob = rm_user();

my %med = (
    type => 'medication', title => 'Ondansetron',
    medication => { name => 'Ondansetron', dosage => '8 mg' },
    schedule => { times => ['08:00', '20:00'], timezone => 'America/New_York',
                  starts_at => '2026-12-01T00:00:00Z' },
    channels => ['push', 'in_app'],
    nag => { after_minutes => 10, max_times => 3 },
    supply => { quantity => 30, per_dose => 1, refill_at => 5 },
);

# ---------------------------------------------------------------- create
my $r = rm_create($alice, \%med);
ok($r->{id}, 'created with an id');
is($r->{schedule}{rrule}, 'FREQ=DAILY;BYSECOND=0;BYMINUTE=0;BYHOUR=8,20',
   'the simple form becomes an RFC 5545 rule');
is_deeply($r->{schedule}{times}, ['08:00', '20:00'], 'the simple form is kept');
is($r->{schedule}{timezone}, 'America/New_York', 'zone kept');
# 10:00Z is 05:00 in New York: the next is 08:00 EST = 13:00Z
is($r->{next_fire_at}, '2026-12-01T13:00:00Z', 'next_fire_at is the next local 08:00');
is_deeply($r->{medication}, { name => 'Ondansetron', dosage => '8 mg' }, 'medication');
is_deeply($r->{nag}, { after_minutes => 10, max_times => 3 }, 'nag');
is($r->{supply}{quantity}, 30, 'supply');
is_deeply($r->{channels}, ['push', 'in_app'], 'channels');
ok($r->{is_active}, 'active');

my $appt = rm_create($alice, {
    type => 'appointment', title => 'Oncology review', location => 'Ward 4',
    schedule => { rrule => 'RRULE:FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=30;BYSECOND=0',
                  timezone => 'Europe/London', starts_at => '2026-12-01T00:00:00Z',
                  ends_at => '2027-01-31T00:00:00Z' },
});
is($appt->{schedule}{rrule}, 'FREQ=WEEKLY;BYSECOND=0;BYMINUTE=30;BYHOUR=9;BYDAY=FR',
   'an RRULE is stored in libical\'s canonical form');
is($appt->{next_fire_at}, '2026-12-04T09:30:00Z', 'Friday 09:30 London (GMT)');
is_deeply($appt->{channels}, ['push', 'in_app'], 'default channels');

# ---------------------------------------------------------------- validation
sub bad {
    my ($body, $field, $name) = @_;
    my ($res, $data) = rm_api(POST => '/reminders', $alice, json => $body);
    is($res->code, 400, "$name: 400");
    is($data->{error}{details}, "field: $field", "$name: names $field");
}
my %base = (type => 'other', title => 'x',
            schedule => { rrule => 'FREQ=DAILY', timezone => 'UTC' });
bad({ %base, schedule => { rrule => 'FREQ=SOMETIMES', timezone => 'UTC' } },
    'schedule.rrule', 'invalid RRULE');
bad({ %base, schedule => { rrule => 'FREQ=DAILY;BYHOUR=25', timezone => 'UTC' } },
    'schedule.rrule', 'RRULE out of range');
bad({ %base, schedule => { rrule => 'FREQ=DAILY', timezone => 'Mars/Olympus' } },
    'schedule.timezone', 'unknown zone');
bad({ %base, schedule => { rrule => 'FREQ=DAILY', timezone => 'UTC',
                           starts_at => '2026-12-05T00:00:00Z', ends_at => '2026-12-04T00:00:00Z' } },
    'schedule.ends_at', 'ends_at before starts_at');
bad({ %base, schedule => { rrule => 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30', timezone => 'UTC' } },
    'schedule.rrule', 'a rule that never fires');
bad({ %base, schedule => { times => ['25:00'], timezone => 'UTC' } },
    'schedule.times', 'invalid time');
bad({ %base, schedule => { times => ['08:00'], days => ['XX'], timezone => 'UTC' } },
    'schedule.days', 'invalid day');
bad({ %base, schedule => { rrule => 'FREQ=DAILY', timezone => 'UTC', starts_at => 'yesterday' } },
    'schedule.starts_at', 'starts_at not a time');
bad({ %base, type => 'potion' }, 'type', 'bad type');
bad({ %base, channels => ['pigeon'] }, 'channels', 'bad channel');
bad({ %base, nag => { after_minutes => 0, max_times => 3 } }, 'nag.after_minutes', 'nag range');
bad({ %base, supply => { quantity => 10, per_dose => 0 } }, 'supply.per_dose', 'per_dose 0');
bad({ %base, colour => 'red' }, 'colour', 'unknown field');
bad({ %base, title => '   ' }, 'title', 'blank title');
is(bl_psql_value(q{SELECT count(*) FROM reminders WHERE user_id = $1}, $alice->{id}), 2,
   'nothing was stored by the refused bodies');

# ---------------------------------------------------------------- read, list
my ($res, $data) = rm_api(GET => "/reminders/$r->{id}", $alice);
is($res->code, 200, 'GET own');
is($data->{data}{title}, 'Ondansetron', 'GET body');
($res, $data) = rm_api(GET => "/reminders/$r->{id}", $bob);
is($res->code, 404, "another user's reminder is 404");
($res) = rm_api(GET => '/reminders/not-a-uuid', $alice);
is($res->code, 404, 'malformed id is 404');
($res) = rm_api(GET => "/reminders/$r->{id}", undef);
is($res->code, 401, 'anonymous is 401');

($res, $data) = rm_api(GET => '/reminders', $alice, query => { type => 'medication' });
is($res->code, 200, 'list');
is(scalar @{ $data->{data} }, 1, 'filtered by type');
is($data->{meta}{total}, 1, 'meta total');
($res, $data) = rm_api(GET => '/reminders', $alice, query => { per_page => 1 });
is($data->{meta}{total}, 2, 'paginated total');
is(scalar @{ $data->{data} }, 1, 'one per page');
($res, $data) = rm_api(GET => '/reminders', $bob);
is(scalar @{ $data->{data} }, 0, "bob sees none of alice's");
($res) = rm_api(GET => '/reminders', $alice, query => { active => 'maybe' });
is($res->code, 400, 'bad active filter');

# ---------------------------------------------------------------- update
($res, $data) = rm_api(PUT => "/reminders/$r->{id}", $alice, json => {
    schedule => { times => ['09:15'], timezone => 'Asia/Kolkata', starts_at => '2026-12-01T00:00:00Z' } });
is($res->code, 200, 'schedule edited');
# 10:00Z is 15:30 in Kolkata: the next 09:15 IST is tomorrow 03:45Z
is($data->{data}{next_fire_at}, '2026-12-02T03:45:00Z', 'editing recomputes next_fire_at');
is($data->{data}{title}, 'Ondansetron', 'other fields kept');
($res, $data) = rm_api(PUT => "/reminders/$r->{id}", $alice, json => { is_active => JSON::PP::false() });
is($res->code, 200, 'paused');
ok(!$data->{data}{is_active}, 'is_active false');
($res, $data) = rm_api(PUT => "/reminders/$r->{id}", $alice,
                       json => { is_active => JSON::PP::true() }, now => '2026-12-03T00:00:00Z');
is($data->{data}{next_fire_at}, '2026-12-03T03:45:00Z', 'resuming starts from now, not the pause');
($res) = rm_api(PUT => "/reminders/$r->{id}", $bob, json => { title => 'mine' });
is($res->code, 404, "PUT another user's reminder is 404");
($res, $data) = rm_api(PUT => "/reminders/$r->{id}", $alice,
                       json => { schedule => { rrule => 'FREQ=NEVER', timezone => 'UTC' } });
is($res->code, 400, 'PUT with an invalid rule is 400');
is($data->{error}{details}, 'field: schedule.rrule', 'names the field');

# ---------------------------------------------------------------- caregiver
my $carer = rm_user(role => 'caregiver');
($res, $data) = rm_api(POST => '/reminders/care-circle', $alice, json => { email => $carer->{email} });
is($res->code, 201, 'caregiver invited');
my $member = $data->{data}{id};
is(bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1
                   AND type = 'reminder.care_circle_invite'}, $carer->{id}), 2,
   'the invitee is notified (in_app and email)');
($res) = rm_api(POST => "/reminders/care-circle/$member/accept", $bob);
is($res->code, 404, 'someone else cannot accept the invitation');
($res) = rm_api(GET => "/reminders/$r->{id}", $carer);
is($res->code, 404, 'before accepting the caregiver sees nothing');
($res, $data) = rm_api(POST => "/reminders/care-circle/$member/accept", $carer);
is($res->code, 200, 'accepted');
is($data->{data}{status}, 'accepted', 'status accepted');
($res, $data) = rm_api(GET => "/reminders/$r->{id}", $carer);
is($res->code, 200, 'the caregiver reads the reminder');
($res, $data) = rm_api(GET => '/reminders', $carer, query => { patient_id => $alice->{id} });
is(scalar @{ $data->{data} }, 2, "the caregiver lists the patient's reminders");
($res, $data) = rm_api(PUT => "/reminders/$r->{id}", $carer, json => { title => 'changed' });
is($res->code, 403, 'a caregiver writing is 403');
($res) = rm_api(DELETE => "/reminders/$r->{id}", $carer);
is($res->code, 403, 'a caregiver deleting is 403');
($res) = rm_api(POST => "/reminders/$r->{id}/snooze", $carer, json => { minutes => 5 });
is($res->code, 403, 'a caregiver snoozing is 403');
is(bl_psql_value(q{SELECT title FROM reminders WHERE id = $1}, $r->{id}), 'Ondansetron',
   'nothing changed');

# ---------------------------------------------------------------- snooze range
($res, $data) = rm_api(POST => "/reminders/$r->{id}/snooze", $alice, json => { minutes => 0 });
is($res->code, 400, 'snooze 0 minutes is 400');
($res) = rm_api(POST => "/reminders/$r->{id}/snooze", $alice, json => { minutes => 241 });
is($res->code, 400, 'snooze 241 minutes is 400');
($res) = rm_api(POST => "/reminders/$r->{id}/snooze", $alice, json => { minutes => 5 });
is($res->code, 409, 'nothing to snooze yet is 409');

# ---------------------------------------------------------------- delete
($res) = rm_api(DELETE => "/reminders/$appt->{id}", $bob);
is($res->code, 404, "deleting another user's reminder is 404");
($res) = rm_api(DELETE => "/reminders/$appt->{id}", $alice);
is($res->code, 204, 'deleted');
($res) = rm_api(GET => "/reminders/$appt->{id}", $alice);
is($res->code, 404, 'gone');

($res) = rm_api(DELETE => "/reminders/care-circle/$member", $carer);
is($res->code, 204, 'the caregiver leaves the circle');
($res) = rm_api(GET => "/reminders/$r->{id}", $carer);
is($res->code, 404, 'and no longer sees the reminder');

rm_clear_clock();
is(bl_error_log_crashes($mark), 0, 'no httpd child crashed');

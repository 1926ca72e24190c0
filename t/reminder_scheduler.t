# mod_beautiful_reminder: the scheduler task, driven by the test clock
# (BeautifulTestClock, t/conf/test.d/reminder.conf): firing with one outbox
# row per channel, DST in America/New_York, catch-up after downtime, the
# nag sequence and its stop, supply and refill, pausing, and exactly-once
# with two httpd instances racing on the same rows.
use strict;
use warnings FATAL => 'all';

use FindBin;
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use BL::Test;
require "$FindBin::Bin/reminder_helpers.pl";

plan skip_all => 'mod_beautiful_reminder not loaded' unless reminder_loaded();
plan tests => 86;

my $mark = bl_error_log_mark();
my $user = rm_user(first_name => 'Meera');
END { rm_clear_clock() }

# Moves the clock, then waits for the occurrence's log row (or a pass).
sub at {
    my ($t) = @_;
    rm_set_clock($t);
}
sub status_of {
    my ($rid, $occ, $secs) = @_;
    return rm_wait_log($rid, $occ, $secs // 8);
}
sub next_fire {
    my ($rid) = @_;
    return bl_psql_value(q{SELECT to_char(next_fire_at AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM reminders WHERE id = $1}, $rid);
}
sub count_type {
    my ($rid, $type) = @_;
    return scalar grep { $_->[0] eq $type } rm_outbox($rid);
}
# Gives the scheduler a few passes (it runs every 300 ms).
sub passes { Time::HiRes::sleep(1.2) }

# ---------------------------------------------------------------- DST, spring
at('2026-03-06T12:00:00Z');
my $daily = rm_create($user, {
    type => 'other', title => 'Morning check-in', channels => ['push', 'in_app', 'sms'],
    schedule => { times => ['08:00'], timezone => 'America/New_York',
                  starts_at => '2026-03-06T00:00:00Z' } }, now => '2026-03-06T12:00:00Z');
my $gap = rm_create($user, {
    type => 'other', title => 'Night dose', channels => ['in_app'],
    schedule => { rrule => 'FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0',
                  timezone => 'America/New_York', starts_at => '2026-03-06T00:00:00Z' } },
    now => '2026-03-06T12:00:00Z');
is($daily->{next_fire_at}, '2026-03-06T13:00:00Z', '08:00 EST is 13:00Z');

at('2026-03-06T13:00:02Z');
is(status_of($daily->{id}, '2026-03-06T13:00:00Z'), 'fired', 'fires at its time');
is(count_type($daily->{id}, 'reminder.due'), 3, 'one reminder.due outbox row per channel');
is_deeply([sort map { $_->[1] } rm_outbox($daily->{id})], [qw(in_app push sms)],
          'to the channels of the reminder');
is((rm_outbox($daily->{id}))[0][2], $user->{id}, 'to the owner');
is(next_fire($daily->{id}), '2026-03-07T13:00:00Z', 'next_fire_at: tomorrow 08:00 EST');

at('2026-03-07T13:00:01Z');
is(status_of($daily->{id}, '2026-03-07T13:00:00Z'), 'fired', 'the day before the change: 13:00Z');
is(next_fire($daily->{id}), '2026-03-08T12:00:00Z', 'on the change day 08:00 EDT is 12:00Z');
is(next_fire($gap->{id}), '2026-03-08T07:00:00Z',
   '02:30 does not exist on 8 March: the first valid instant after it, 03:00 EDT');
at('2026-03-08T07:00:01Z');
is(status_of($gap->{id}, '2026-03-08T07:00:00Z'), 'fired', 'the nonexistent time fires at 03:00 EDT');
at('2026-03-08T12:00:01Z');
is(status_of($daily->{id}, '2026-03-08T12:00:00Z'), 'fired', '08:00 EDT after the change');
is(next_fire($daily->{id}), '2026-03-09T12:00:00Z', 'and 08:00 EDT the day after');
is(next_fire($gap->{id}), '2026-03-09T06:30:00Z', 'the 02:30 reminder is back to 02:30 EDT');
is(scalar(rm_logs($daily->{id})), 3, 'one log row per day, no extra');

# ---------------------------------------------------------------- DST, fall
at('2026-10-31T12:00:00Z');
my $amb = rm_create($user, {
    type => 'other', title => 'Late dose', channels => ['in_app'],
    schedule => { rrule => 'FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0',
                  timezone => 'America/New_York', starts_at => '2026-10-31T00:00:00Z' } },
    now => '2026-10-31T12:00:00Z');
is($amb->{next_fire_at}, '2026-11-01T05:30:00Z', '01:30 on 1 November happens twice: the first');
# the daily 08:00 catches up (logged missed) and fires on the day
at('2026-11-01T05:30:01Z');
is(status_of($amb->{id}, '2026-11-01T05:30:00Z'), 'fired', 'the ambiguous time fires');
at('2026-11-01T06:30:01Z');
passes();
is(scalar(rm_logs($amb->{id})), 1, 'and only once: not again at 01:30 EST');
is(next_fire($amb->{id}), '2026-11-02T06:30:00Z', 'next: 01:30 EST the day after');
at('2026-11-01T13:00:01Z');
is(status_of($daily->{id}, '2026-11-01T13:00:00Z'), 'fired', '08:00 EST on the change day');
is(next_fire($daily->{id}), '2026-11-02T13:00:00Z', 'and 08:00 EST after it');

# ---------------------------------------------------------------- catch-up
at('2026-11-04T23:59:00Z');
my $hourly = rm_create($user, {
    type => 'other', title => 'Hydrate', channels => ['push', 'in_app'],
    schedule => { rrule => 'FREQ=HOURLY;BYMINUTE=0;BYSECOND=0', timezone => 'UTC',
                  starts_at => '2026-11-05T00:00:00Z' } }, now => '2026-11-04T23:59:00Z');
is($hourly->{next_fire_at}, '2026-11-05T00:00:00Z', 'first occurrence at midnight');
# the scheduler was away from before midnight until 03:30
at('2026-11-05T03:30:00Z');
status_of($hourly->{id}, '2026-11-05T03:00:00Z');
is_deeply([map { "$_->[0] $_->[1]" } rm_logs($hourly->{id})],
          ['2026-11-05T00:00:00Z missed', '2026-11-05T01:00:00Z missed',
           '2026-11-05T02:00:00Z missed', '2026-11-05T03:00:00Z fired'],
          'after a gap: older than the catch-up window logged missed, newer fired');
is(count_type($hourly->{id}, 'reminder.due'), 2, 'only the recent one notified (2 channels): no burst');
is(next_fire($hourly->{id}), '2026-11-05T04:00:00Z', 'and the schedule goes on');
bl_psql(q{UPDATE reminders SET is_active = false WHERE id = $1}, $hourly->{id});

# ---------------------------------------------------------------- nag
my $carer = rm_user(role => 'caregiver');
bl_psql(q{INSERT INTO care_circle_members (patient_id, caregiver_email, caregiver_id, status,
          accepted_at) VALUES ($1, $2, $3, 'accepted', now())}, $user->{id}, $carer->{email},
        $carer->{id});
at('2026-12-01T08:00:00Z');
my $med = rm_create($user, {
    type => 'medication', title => 'Dexamethasone', medication => { name => 'Dexamethasone', dosage => '4 mg' },
    channels => ['push', 'in_app'], nag => { after_minutes => 10, max_times => 2 },
    schedule => { times => ['09:00'], timezone => 'UTC', starts_at => '2026-12-01T00:00:00Z' } },
    now => '2026-12-01T08:00:00Z');
at('2026-12-01T09:00:01Z');
is(status_of($med->{id}, '2026-12-01T09:00:00Z'), 'fired', 'the dose fires');
is(count_type($med->{id}, 'reminder.due'), 2, 'due, per channel');
like(bl_psql_value(q{SELECT body FROM notifications WHERE data->>'reminder_id' = $1 LIMIT 1},
                   $med->{id}), qr/Dexamethasone 4 mg/, 'the body names the medicine and dose');
at('2026-12-01T09:05:00Z');
passes();
is(count_type($med->{id}, 'reminder.nag'), 0, 'no nag before after_minutes');
at('2026-12-01T09:10:01Z');
ok(rm_wait(sub { count_type($med->{id}, 'reminder.nag') == 2 }), 'first nag after 10 minutes');
at('2026-12-01T09:20:01Z');
ok(rm_wait(sub { count_type($med->{id}, 'reminder.nag') == 4 }), 'second nag after 20 minutes');
is((rm_logs($med->{id}))[0][2], 2, 'nag_count 2');
at('2026-12-01T09:30:01Z');
is(status_of($med->{id}, '2026-12-01T09:00:00Z') && rm_wait(sub {
       (rm_logs($med->{id}))[0][1] eq 'missed' }) && 'missed', 'missed', 'after max_times: missed');
is(count_type($med->{id}, 'reminder.nag'), 4, 'no third nag');
my @alerts = grep { $_->[0] eq 'reminder.missed' } rm_outbox($med->{id});
is(scalar @alerts, 2, 'the care circle is alerted (per channel)');
is($alerts[0][2], $carer->{id}, 'the alert goes to the caregiver');
like(bl_psql_value(q{SELECT body FROM notifications WHERE type = 'reminder.missed'
                     AND data->>'reminder_id' = $1 LIMIT 1}, $med->{id}),
     qr/^Meera has not confirmed Dexamethasone/, 'the alert says who and what');

# completion stops the nagging at once
at('2026-12-02T09:00:01Z');
is(status_of($med->{id}, '2026-12-02T09:00:00Z'), 'fired', 'the next day fires');
at('2026-12-02T09:10:01Z');
ok(rm_wait(sub { count_type($med->{id}, 'reminder.nag') == 6 }), 'nagged once');
my ($res, $data) = rm_api(POST => "/reminders/$med->{id}/complete", $user,
                          json => { notes => 'with breakfast' });
is($res->code, 200, 'completed');
is($data->{data}{status}, 'taken', 'taken');
is($data->{data}{occurrence}, '2026-12-02T09:00:00Z', 'the latest due occurrence by default');
($res) = rm_api(POST => "/reminders/$med->{id}/complete", $user,
                json => { occurrence => '2026-12-02T09:00:00Z' });
is($res->code, 409, 'completing it twice is 409');
at('2026-12-02T09:40:01Z');
passes();
is(count_type($med->{id}, 'reminder.nag'), 6, 'no nag after the completion');
is(scalar(grep { $_->[0] eq 'reminder.missed' } rm_outbox($med->{id})), 2, 'and no missed alert');

# ---------------------------------------------------------------- supply and refill
at('2026-12-03T07:00:00Z');
my $pills = rm_create($user, {
    type => 'medication', title => 'Ondansetron', channels => ['in_app', 'email'],
    supply => { quantity => 3, per_dose => 1, refill_at => 1 },
    schedule => { times => ['08:00', '12:00', '16:00', '20:00'], timezone => 'UTC',
                  starts_at => '2026-12-03T00:00:00Z' } }, now => '2026-12-03T07:00:00Z');
for my $occ ('2026-12-03T08:00:00Z', '2026-12-03T12:00:00Z') {
    ($res) = rm_api(POST => "/reminders/$pills->{id}/complete", $user, json => { occurrence => $occ });
    is($res->code, 200, "dose $occ taken ahead");
}
is(bl_psql_value(q{SELECT supply_quantity::float8 FROM reminders WHERE id = $1}, $pills->{id}), 1,
   'each dose lowers the quantity');
is(count_type($pills->{id}, 'reminder.refill'), 2, 'reaching refill_at sends one refill notice per channel');
($res) = rm_api(POST => "/reminders/$pills->{id}/complete", $user,
                json => { occurrence => '2026-12-03T16:00:00Z' });
is(count_type($pills->{id}, 'reminder.refill'), 2, 'only once');
($res) = rm_api(POST => "/reminders/$pills->{id}/complete", $user,
                json => { occurrence => '2026-12-03T16:30:00Z' });
is($res->code, 400, 'a time that is not an occurrence is 400');
at('2026-12-03T08:00:01Z');
passes();
is_deeply([map { $_->[1] } rm_logs($pills->{id})], [qw(taken taken taken)],
          'a dose taken ahead is not fired later');
is(count_type($pills->{id}, 'reminder.due'), 0, 'no reminder.due for it');

# skip ahead, then pause: nothing fires
($res, $data) = rm_api(POST => "/reminders/$pills->{id}/skip", $user,
                       json => { occurrence => '2026-12-03T20:00:00Z', reason => 'nausea' });
is($res->code, 200, 'a coming occurrence skipped');
is($data->{data}{status}, 'skipped', 'skipped');
at('2026-12-03T20:00:01Z');
passes();
is(count_type($pills->{id}, 'reminder.due'), 0, 'the skipped occurrence does not fire');

at('2026-12-04T08:00:01Z');
is(status_of($pills->{id}, '2026-12-04T08:00:00Z'), 'fired', 'the next one fires');
($res) = rm_api(PUT => "/reminders/$pills->{id}", $user, json => { is_active => JSON::PP::false() });
is($res->code, 200, 'paused');
at('2026-12-04T09:30:01Z');
passes();
is((grep { $_->[0] eq '2026-12-04T08:00:00Z' } rm_logs($pills->{id}))[0][1], 'fired',
   'pausing stops the nag in flight (not marked missed)');
at('2026-12-04T12:00:01Z');
passes();
is(scalar(grep { $_->[1] eq 'fired' } rm_logs($pills->{id})), 1, 'a paused reminder does not fire');

# ---------------------------------------------------------------- exactly once
# An occurrence another host logged already: notified by nobody else.
at('2026-12-05T09:00:00Z');
my $once = rm_create($user, {
    type => 'other', title => 'Once', channels => ['in_app'],
    schedule => { times => ['10:00'], timezone => 'UTC', starts_at => '2026-12-05T00:00:00Z' } },
    now => '2026-12-05T09:00:00Z');
bl_psql(q{INSERT INTO reminder_logs (reminder_id, scheduled_for, status)
          VALUES ($1, '2026-12-05T10:00:00Z', 'fired')}, $once->{id});
at('2026-12-05T10:00:01Z');
ok(rm_wait(sub { next_fire($once->{id}) eq '2026-12-06T10:00:00Z' }), 'the schedule moves on');
is(count_type($once->{id}, 'reminder.due'), 0, 'an occurrence logged already is not notified again');

# Two httpd instances on one database, both schedulers claiming the same
# 600 due reminders.
at('2026-12-06T10:00:00Z');
my $second = rm_second_httpd_start();
ok($second, 'a second httpd (another host) is up');
my $batch_user = rm_user();
bl_psql(q{INSERT INTO reminders (user_id, type, title, rrule, timezone, starts_at, next_fire_at, channels)
          SELECT $1, 'other', 'race ' || g, 'FREQ=DAILY;BYHOUR=11;BYMINUTE=0;BYSECOND=0', 'UTC',
                 '2026-12-06T00:00:00Z', '2026-12-06T11:00:00Z', '{push,in_app}'
          FROM generate_series(1, 600) g}, $batch_user->{id});
at('2026-12-06T11:00:01Z');
ok(rm_wait(sub { !bl_psql_value(q{SELECT count(*) FROM reminders WHERE user_id = $1
                                 AND next_fire_at <= '2026-12-06T11:00:00Z'}, $batch_user->{id}) }, 30),
   'every due reminder was claimed');
is(bl_psql_value(q{SELECT count(*) FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id
                   WHERE r.user_id = $1}, $batch_user->{id}), 600, 'one log row per reminder');
is(bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1}, $batch_user->{id}), 1200,
   'exactly one outbox row per channel: nothing fired twice');
is(bl_psql_value(q{SELECT count(*) FROM (SELECT data->>'log_id', channel FROM notifications
                   WHERE user_id = $1 GROUP BY 1, 2 HAVING count(*) > 1) d}, $batch_user->{id}), 0,
   'no occurrence notified twice on a channel');
my $second_log = do { local $/; open my $f, '<', "$second->{dir}/error_log"; <$f> // '' };
rm_second_httpd_stop($second);
unlike($second_log, qr/exit signal|Segmentation/, 'the second host did not crash');
bl_psql(q{UPDATE reminders SET is_active = false WHERE user_id = $1}, $batch_user->{id});

# ---------------------------------------------------------------- catch-up alerts the circle
# Doses the scheduler was down for: the caregiver is told once per reminder
# (per channel), with how many and from when to when, not once per dose.
at('2026-12-10T07:00:00Z');
my $steroid = rm_create($user, {
    type => 'medication', title => 'Prednisone', medication => { name => 'Prednisone' },
    channels => ['push', 'in_app'],
    schedule => { rrule => 'FREQ=HOURLY;BYMINUTE=0;BYSECOND=0', timezone => 'UTC',
                  starts_at => '2026-12-10T08:00:00Z' } }, now => '2026-12-10T07:00:00Z');
at('2026-12-10T11:30:00Z');
status_of($steroid->{id}, '2026-12-10T11:00:00Z');
is_deeply([map { "$_->[0] $_->[1]" } rm_logs($steroid->{id})],
          ['2026-12-10T08:00:00Z missed', '2026-12-10T09:00:00Z missed',
           '2026-12-10T10:00:00Z missed', '2026-12-10T11:00:00Z fired'],
          'a medication after a gap: three doses logged missed, the recent one fired');
my @gap_alerts = bl_psql(q{SELECT user_id, channel::text, title, body, data->>'missed_count',
                           data->>'first_occurrence', data->>'occurrence', data->>'cause',
                           data->>'patient_id'
                           FROM notifications WHERE type = 'reminder.missed'
                           AND data->>'reminder_id' = $1 ORDER BY channel}, $steroid->{id});
is(scalar @gap_alerts, 2, 'one missed-dose alert per channel, not one per missed dose');
is_deeply([map { $_->[0] } @gap_alerts], [$carer->{id}, $carer->{id}], 'to the caregiver');
is_deeply([@{ $gap_alerts[0] }[2, 4 .. 8]],
          ['Missed dose: Prednisone', 3, '2026-12-10T08:00:00Z', '2026-12-10T10:00:00Z',
           'catch_up', $user->{id}],
          'naming the reminder, how many doses, the first and last, and the patient');
is($gap_alerts[0][3],
   'Meera was not reminded of Prednisone 3 times from 2026-12-10T08:00:00Z to 2026-12-10T10:00:00Z',
   'the alert says who, what and when');
is(count_type($steroid->{id}, 'reminder.due'), 2, 'the patient is reminded of the recent dose only');
passes();
is(scalar(grep { $_->[0] eq 'reminder.missed' } rm_outbox($steroid->{id})), 2,
   'later passes alert nobody again');
bl_psql(q{UPDATE reminders SET is_active = false WHERE id = $1}, $steroid->{id});
is(scalar(grep { $_->[0] eq 'reminder.missed' } rm_outbox($hourly->{id})), 0,
   'a reminder that is not a medication alerts nobody when caught up');

# ---------------------------------------------------------------- deactivated and deleted owners
# An account deactivated (users.is_active false, as the admin route sets
# it) or marked deleted gets no reminder, no nag and no missed alert; its
# reminders move on silently and fire again once it is active.
my $ravi = rm_user(first_name => 'Ravi');
bl_psql(q{INSERT INTO care_circle_members (patient_id, caregiver_email, caregiver_id, status,
          accepted_at) VALUES ($1, $2, $3, 'accepted', now())}, $ravi->{id}, $carer->{email},
        $carer->{id});
at('2026-12-11T09:00:00Z');
my $ondan = rm_create($ravi, {
    type => 'medication', title => 'Ondansetron', channels => ['push', 'in_app'],
    nag => { after_minutes => 10, max_times => 1 },
    schedule => { times => ['10:00'], timezone => 'UTC', starts_at => '2026-12-11T00:00:00Z' } },
    now => '2026-12-11T09:00:00Z');
at('2026-12-11T10:00:01Z');
is(status_of($ondan->{id}, '2026-12-11T10:00:00Z'), 'fired', 'fires while the account is active');
bl_psql(q{UPDATE users SET is_active = false WHERE id = $1}, $ravi->{id});
my $before = bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 OR
                             data->>'patient_id' = $1}, $ravi->{id});
at('2026-12-11T10:10:01Z');
ok(rm_wait(sub { !defined bl_psql_value(q{SELECT next_nag_at FROM reminder_logs
                 WHERE reminder_id = $1}, $ondan->{id}) }), 'its nag in flight is dropped');
at('2026-12-11T11:30:01Z');
passes();
is((rm_logs($ondan->{id}))[0][1], 'fired', 'and the dose is not marked missed');
at('2026-12-12T10:00:01Z');
ok(rm_wait(sub { next_fire($ondan->{id}) eq '2026-12-13T10:00:00Z' }),
   'the next occurrence passes: next_fire_at moves on');
is(scalar(rm_logs($ondan->{id})), 1, 'without a log row');
is(bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 OR
                   data->>'patient_id' = $1}, $ravi->{id}), $before,
   'no reminder, nag or missed alert for a deactivated account');
bl_psql(q{UPDATE users SET is_active = true WHERE id = $1}, $ravi->{id});
at('2026-12-13T10:00:01Z');
is(status_of($ondan->{id}, '2026-12-13T10:00:00Z'), 'fired', 'active again: it fires again');
bl_psql(q{UPDATE users SET deleted_at = now() WHERE id = $1}, $ravi->{id});
$before = bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1}, $ravi->{id});
at('2026-12-14T10:00:01Z');
ok(rm_wait(sub { next_fire($ondan->{id}) eq '2026-12-15T10:00:00Z' }),
   'marked deleted: the occurrence passes');
is(bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1}, $ravi->{id}), $before,
   'and nothing is sent');
# Deleting the account deletes the users row: its reminders go with it.
bl_psql(q{DELETE FROM users WHERE id = $1}, $ravi->{id});
is(bl_psql_value(q{SELECT count(*) FROM reminders WHERE user_id = $1}, $ravi->{id}), 0,
   'a deleted account has no reminders left to fire');

rm_clear_clock();
is(bl_error_log_crashes($mark), 0, 'no httpd child crashed');

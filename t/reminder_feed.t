# mod_beautiful_reminder: the RFC 5545 calendar feed (read back by an
# independent reader, python3-icalendar, and matched against /upcoming),
# the token and its rotation; snooze; the occurrence history and adherence,
# as the patient and as a caregiver.
use strict;
use warnings FATAL => 'all';

use FindBin;
use IPC::Open2;
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use BL::Test;
require "$FindBin::Bin/reminder_helpers.pl";

plan skip_all => 'mod_beautiful_reminder not loaded' unless reminder_loaded();
plan tests => 45;

my $mark = bl_error_log_mark();
END { rm_clear_clock() }
my $NOW = '2026-12-08T00:00:00Z';
rm_set_clock($NOW);
my $user = rm_user();

my $a = rm_create($user, {
    type => 'medication', title => 'Morning, evening; with food',
    notes => "line one\nline two, with a comma",
    schedule => { times => ['08:00', '20:30'], timezone => 'America/New_York',
                  starts_at => '2026-12-01T00:00:00Z' } });
my $b = rm_create($user, {
    type => 'appointment', title => 'Infusion', location => 'Day unit, floor 2',
    schedule => { rrule => 'FREQ=WEEKLY;BYDAY=TU,WE;BYHOUR=10;BYMINUTE=15;BYSECOND=0',
                  timezone => 'Asia/Kolkata', starts_at => '2026-12-01T00:00:00Z' } });
my $c = rm_create($user, {
    type => 'other', title => 'Walk',
    schedule => { rrule => 'FREQ=HOURLY;INTERVAL=6;BYMINUTE=0;BYSECOND=0', timezone => 'UTC',
                  starts_at => '2026-12-07T00:00:00Z', ends_at => '2026-12-09T00:00:00Z' } });

# ---------------------------------------------------------------- upcoming
my ($res, $data) = rm_api(GET => '/reminders/upcoming', $user, query => { hours => 48 });
is($res->code, 200, 'upcoming');
my @up = @{ $data->{data} };
my @times = map { $_->{at_utc} } @up;
is_deeply(\@times, [sort @times], 'soonest first');
my ($first_a) = grep { $_->{reminder_id} eq $a->{id} } @up;
is($first_a->{at_utc}, '2026-12-08T01:30:00Z', '20:30 New York on 7 December is 01:30Z');
is($first_a->{at_local}, '2026-12-07T20:30:00-05:00', 'and in local time with its offset');
is($first_a->{timezone}, 'America/New_York', 'with the zone');
my ($first_b) = grep { $_->{reminder_id} eq $b->{id} } @up;
is($first_b->{at_local}, '2026-12-08T10:15:00+05:30', 'Kolkata local time');
is(scalar(grep { $_->{reminder_id} eq $c->{id} } @up), 5, 'ends_at bounds the occurrences (inclusive, as UNTIL)');
($res) = rm_api(GET => '/reminders/upcoming', $user, query => { hours => 0 });
is($res->code, 400, 'hours 0 is 400');
($res) = rm_api(GET => '/reminders/upcoming', $user, query => { hours => 169 });
is($res->code, 400, 'hours 169 is 400');

# ---------------------------------------------------------------- the feed
($res) = bl_request(GET => '/api/v1/reminders/calendar.ics', query => { token => 'x' x 43 });
is($res->code, 401, 'an unknown token is 401');
($res) = bl_request(GET => '/api/v1/reminders/calendar.ics');
is($res->code, 401, 'no token is 401');
($res, $data) = rm_api(POST => '/reminders/calendar-token', $user);
is($res->code, 201, 'token made');
my $token = $data->{data}{token};
like($data->{data}{url}, qr{/api/v1/reminders/calendar\.ics\?token=\Q$token\E$}, 'the feed URL');
($res) = bl_request(GET => '/api/v1/reminders/calendar.ics', query => { token => $token });
is($res->code, 200, 'the feed, without a login');
like($res->header('Content-Type'), qr{^text/calendar}, 'text/calendar');
my $ics = $res->content;
like($ics, qr/\ABEGIN:VCALENDAR\r\n/, 'CRLF lines');
ok(!grep({ length($_) > 75 } split /\r\n/, $ics), 'lines folded at 75 octets');

sub expand {
    my ($text, $from, $to) = @_;
    my $pid = open2(my $out, my $in, '/usr/bin/python3',
                    "$FindBin::Bin/tools/reminder_ics_expand.py", $from, $to);
    print $in $text;
    close $in;
    local $/;
    my $json = <$out>;
    waitpid $pid, 0;
    return $? == 0 ? bl_json($json) : undef;
}
my $parsed = expand($ics, $NOW, '2026-12-10T00:00:00Z');
ok($parsed, 'python3-icalendar reads the feed');
is_deeply($parsed->{problems}, [], 'every TZID has its VTIMEZONE, every event its RRULE');
is_deeply($parsed->{zones}, ['America/New_York', 'Asia/Kolkata'], 'one VTIMEZONE per zone, by IANA name');
my %feed = map { ("$_->{uid} $_->{at_utc}" => 1) } @{ $parsed->{occurrences} };
my %api = map { ("$_->{reminder_id}\@reminders.beautiful-life $_->{at_utc}" => 1) } @up;
is_deeply([sort keys %feed], [sort keys %api], 'the feed expands to exactly the occurrences of /upcoming');
my ($summary) = map { $_->{summary} } grep { $_->{uid} =~ /^\Q$a->{id}\E/ } @{ $parsed->{occurrences} };
is($summary, 'Morning, evening; with food', 'text escaped and read back');

# the access log never holds the token
my $log = do { local $/; open my $f, '<', bl_access_log_path() or die; <$f> };
unlike($log, qr/\Q$token\E/, 'the feed token is not in the access log');

($res, $data) = rm_api(POST => '/reminders/calendar-token', $user);
my $new = $data->{data}{token};
($res) = bl_request(GET => '/api/v1/reminders/calendar.ics', query => { token => $token });
is($res->code, 401, 'rotating the token kills the old URL');
($res) = bl_request(GET => '/api/v1/reminders/calendar.ics', query => { token => $new });
is($res->code, 200, 'the new one works');

# ---------------------------------------------------------------- snooze
rm_set_clock('2026-12-08T01:30:01Z');
is(rm_wait_log($a->{id}, '2026-12-08T01:30:00Z'), 'fired', 'the evening dose fired');
($res, $data) = rm_api(POST => "/reminders/$a->{id}/snooze", $user, json => { minutes => 15 });
is($res->code, 200, 'snoozed');
is($data->{data}{status}, 'snoozed', 'status snoozed');
my $dues = sub { scalar grep { $_->[0] eq 'reminder.due' } rm_outbox($a->{id}) };
my $before = $dues->();
rm_set_clock('2026-12-08T01:40:00Z');
Time::HiRes::sleep(1.2);
is($dues->(), $before, 'not before the snooze ends');
rm_set_clock('2026-12-08T01:45:01Z');
ok(rm_wait(sub { $dues->() > $before }), 'notified again when the snooze ends');
is((grep { $_->[0] eq '2026-12-08T01:30:00Z' } rm_logs($a->{id}))[0][1], 'fired',
   'and unanswered again');

# ---------------------------------------------------------------- logs and adherence
my $med = rm_create($user, {
    type => 'medication', title => 'Capecitabine',
    schedule => { times => ['09:00'], timezone => 'UTC', starts_at => '2026-11-01T00:00:00Z' } });
bl_psql(q{UPDATE reminders SET is_active = false WHERE id = $1}, $med->{id});
bl_psql(q{INSERT INTO reminder_logs (reminder_id, scheduled_for, fired_at, status, taken_at) VALUES
          ($1, '2026-11-01T09:00:00Z', '2026-11-01T09:00:00Z', 'taken', '2026-11-01T09:20:00Z'),
          ($1, '2026-11-02T09:00:00Z', '2026-11-02T09:00:00Z', 'taken', '2026-11-02T12:00:00Z'),
          ($1, '2026-11-03T09:00:00Z', '2026-11-03T09:00:00Z', 'missed', NULL),
          ($1, '2026-11-04T09:00:00Z', '2026-11-04T09:00:00Z', 'skipped', NULL),
          ($1, '2026-11-05T09:00:00Z', '2026-11-05T09:00:00Z', 'taken', '2026-11-05T09:01:00Z')},
        $med->{id});
($res, $data) = rm_api(GET => "/reminders/$med->{id}/logs", $user, query => { per_page => 2 });
is($res->code, 200, 'logs');
is($data->{meta}{total}, 5, 'all occurrences counted');
is_deeply([map { $_->{occurrence} } @{ $data->{data} }],
          ['2026-11-05T09:00:00Z', '2026-11-04T09:00:00Z'], 'newest first, paginated');
($res) = rm_api(GET => "/reminders/$med->{id}/logs", rm_user());
is($res->code, 404, "another user's logs are 404");

my %range = (from => '2026-11-01T00:00:00Z', to => '2026-11-06T00:00:00Z');
($res, $data) = rm_api(GET => '/reminders/adherence', $user, query => \%range);
is($res->code, 200, 'adherence');
my ($row) = grep { $_->{reminder_id} eq $med->{id} } @{ $data->{data}{reminders} };
is_deeply({ map { $_ => $row->{$_} } qw(due taken_on_time taken_late missed skipped percentage) },
          { due => 4, taken_on_time => 2, taken_late => 1, missed => 1, skipped => 1, percentage => 75 },
          'due (skips excluded), on time (within an hour), late, missed, percentage');
is($data->{data}{overall}{due}, 4, 'overall');
($res) = rm_api(GET => '/reminders/adherence', $user, query => { from => 'x' });
is($res->code, 400, 'bad from is 400');
($res) = rm_api(GET => '/reminders/adherence', $user,
                query => { from => '2026-11-06T00:00:00Z', to => '2026-11-01T00:00:00Z' });
is($res->code, 400, 'to before from is 400');

my $carer = rm_user(role => 'caregiver');
my $stranger = rm_user();
bl_psql(q{INSERT INTO care_circle_members (patient_id, caregiver_email, caregiver_id, status, accepted_at)
          VALUES ($1, $2, $3, 'accepted', now())}, $user->{id}, $carer->{email}, $carer->{id});
($res, $data) = rm_api(GET => '/reminders/adherence', $carer,
                       query => { %range, patient_id => $user->{id} });
($row) = grep { $_->{reminder_id} eq $med->{id} } @{ $data->{data}{reminders} };
is($row && $row->{missed}, 1, "the caregiver reads the patient's adherence");
($res, $data) = rm_api(GET => '/reminders/adherence', $stranger,
                       query => { %range, patient_id => $user->{id} });
is(scalar @{ $data->{data}{reminders} }, 0, 'someone outside the circle sees nothing');
($res) = rm_api(GET => "/reminders/$med->{id}/logs", $carer);
is($res->code, 200, 'the caregiver reads the logs');
($res, $data) = rm_api(GET => '/reminders/care-circle', $carer);
is($data->{data}{patients}[0]{patient_id}, $user->{id}, 'the caregiver sees the circle they are in');

rm_clear_clock();
is(bl_error_log_crashes($mark), 0, 'no httpd child crashed');

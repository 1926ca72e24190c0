# mod_beautiful_notify: SMS, push and in-app delivery on the test server
# (file sinks: no Twilio or FCM configured), and the preferences applied at
# delivery time — disabled channel or type: skipped, nothing sent; quiet
# hours: deferred to their end, then delivered; urgent types: neither.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/notify_helpers.pl";

plan skip_all => 'mod_beautiful_notify not loaded' unless notify_loaded();
plan tests => 42;

my $mark = bl_error_log_mark();
my $sms_dir = "$ENV{BL_STATE_DIR}/sms";
my $push_dir = "$ENV{BL_STATE_DIR}/push";
my $phone = '+919812345601';

sub prefs {
    my ($user, $body) = @_;
    my ($res, $d) = bl_request(PUT => '/api/v1/notifications/preferences',
                               token => $user->{token}, json => $body);
    die 'preferences: ' . $res->code . ' ' . $res->content unless $res->code == 200;
    return $d->{data};
}

sub slurp_json {
    my $file = shift;
    open(my $fh, '<:raw', $file) or return undef;
    local $/;
    return bl_json(scalar <$fh>);
}

# ---------------------------------------------------------------- sinks

my $u = notify_user();
prefs($u, { phone => $phone });
my $sms = notify_add(user => $u->{id}, channel => 'sms', title => 'Refill due',
                     body => 'Your prescription runs out in 3 days');
my $row = notify_wait($sms, 10);
is($row->{status}, 'sent', 'sms: sent');
my $msg = slurp_json("$sms_dir/$sms.json");
is($msg && $msg->{to}, $phone, '... to the phone of the preferences');
is($msg && $msg->{body}, "Refill due\nYour prescription runs out in 3 days", '... title and body');
is((stat "$sms_dir/$sms.json")[2] & 0777, 0640, '... sink file mode 0640');

my $nophone = notify_user();
my $sms2 = notify_add(user => $nophone->{id}, channel => 'sms');
$row = notify_wait($sms2, 10);
is($row->{status}, 'skipped', 'sms without a phone: skipped');
is($row->{skip_reason}, 'no phone number in the preferences', '... with the reason');
ok(!-e "$sms_dir/$sms2.json", '... nothing sent');

my $push0 = notify_add(user => $u->{id}, channel => 'push');
$row = notify_wait($push0, 10);
is($row->{status}, 'skipped', 'push without a device: skipped');
is($row->{skip_reason}, 'no registered device', '... with the reason');

my ($res) = bl_request(POST => '/api/v1/notifications/devices', token => $u->{token},
                       json => { platform => 'ios', token => 'device-token-u-1' });
is($res->code, 201, 'device registered');
my $push = notify_add(user => $u->{id}, channel => 'push', title => 'Time for your dose');
is(notify_wait($push, 10)->{status}, 'sent', 'push: sent');
$msg = slurp_json("$push_dir/$push.json");
is_deeply($msg && $msg->{tokens}, ['device-token-u-1'], '... to the registered device');
is($msg && $msg->{message}{notification}{title}, 'Time for your dose', '... with the title');
is($msg && $msg->{message}{data}{notification_id}, $push, '... and the id in data');

# ---------------------------------------------------------------- opt-outs

prefs($u, { channels => { sms => \0 }, types => { 'community.comment_reply' => ['in_app'] } });
my $off = notify_add(user => $u->{id}, channel => 'sms', type => 'reminder.due');
$row = notify_wait($off, 10);
is($row->{status}, 'skipped', 'disabled channel: skipped');
is($row->{skip_reason}, 'channel sms disabled', '... with the reason');
ok(!-e "$sms_dir/$off.json", '... nothing sent');
my $typed = notify_add(user => $u->{id}, channel => 'push', type => 'community.comment_reply');
$row = notify_wait($typed, 10);
is($row->{status}, 'skipped', 'type limited to other channels: skipped');
is($row->{skip_reason}, 'type disabled on channel push', '... with the reason');
my $typed_ok = notify_add(user => $u->{id}, channel => 'in_app', type => 'community.comment_reply');
is(notify_wait($typed_ok, 10)->{status}, 'sent', '... on its own channel it is delivered');
my $urgent = notify_add(user => $u->{id}, channel => 'sms', type => 'security.new_login');
is(notify_wait($urgent, 10)->{status}, 'sent', 'urgent type ignores a disabled channel');
ok(-f "$sms_dir/$urgent.json", '... and is sent');
my $emerg = notify_add(user => $u->{id}, channel => 'sms', type => 'medical.emergency_access');
is(notify_wait($emerg, 10)->{status}, 'sent', 'medical.emergency_access too');
prefs($u, { channels => { email => \0 } });
my $reset = notify_add(user => $u->{id}, channel => 'email', type => 'auth.password_reset');
my $promo = notify_add(user => $u->{id}, channel => 'email', type => 'payment.receipt');
is(notify_wait($reset, 10)->{status}, 'sent', 'email off: a password-reset mail is still sent');
is(notify_wait($promo, 10)->{status}, 'skipped', '... a receipt is not');

my $v = notify_user();
prefs($v, { channels => { in_app => \0 } });
my $hidden = notify_add(user => $v->{id}, channel => 'in_app');
is(notify_wait($hidden, 10)->{status}, 'skipped', 'in-app disabled: skipped');
my ($r2, $list) = bl_request(GET => '/api/v1/notifications', token => $v->{token});
is(scalar @{ $list->{data} }, 0, '... and not in the list');

# ---------------------------------------------------------------- quiet hours

# A window around now in UTC: from an hour ago to two hours ahead.
my $w = notify_user();
my $start = strftime('%H:%M', gmtime(time - 3600));
my $end = strftime('%H:%M', gmtime(time + 7200));
prefs($w, { phone => $phone, quiet_hours => { start => $start, end => $end, timezone => 'UTC' } });
my $quiet = notify_add(user => $w->{id}, channel => 'sms', type => 'reminder.due');
my $quiet_urgent = notify_add(user => $w->{id}, channel => 'sms', type => 'security.password_changed');
my $quiet_in_app = notify_add(user => $w->{id}, channel => 'in_app', type => 'reminder.due');
is(notify_wait($quiet_urgent, 10)->{status}, 'sent', 'quiet hours: an urgent type is not deferred');
is(notify_wait($quiet_in_app, 10)->{status}, 'sent', 'quiet hours: in-app is not held back');
sleep 1;
$row = notify_row($quiet);
is($row->{status}, 'pending', 'quiet hours: the sms waits');
my $expected_end = bl_psql_value(
    q{SELECT extract(epoch FROM (date_trunc('day', now() AT TIME ZONE 'UTC')
      + $1::time + CASE WHEN $1::time <= (now() AT TIME ZONE 'UTC')::time
                        THEN interval '1 day' ELSE interval '0' END) AT TIME ZONE 'UTC')::bigint},
    $end);
is($row->{next_attempt_at}, $expected_end, '... until the quiet hours end');
ok(!-e "$sms_dir/$quiet.json", '... nothing sent yet');
is($row->{attempts}, 0, '... no attempt spent');
# The clock passing the window's end: the window moves away, the row is due.
my $past = strftime('%H:%M', gmtime(time - 7200));
my $past_end = strftime('%H:%M', gmtime(time - 3600));
prefs($w, { quiet_hours => { start => $past, end => $past_end } });
bl_psql(q{UPDATE notifications SET next_attempt_at = now() WHERE id = $1}, $quiet);
is(notify_wait($quiet, 10)->{status}, 'sent', 'after the quiet hours it is delivered');
ok(-f "$sms_dir/$quiet.json", '... into the sink');

# ---------------------------------------------------------------- metrics

sub metric {
    my ($text, $name, %labels) = @_;
    my $want = join(',', map { qq{$_="$labels{$_}"} } sort keys %labels);
    return $text =~ /^\Q$name\E\{\Q$want\E\} (\d+)$/m ? $1 : undef;
}
my ($mres) = bl_request(GET => '/metrics');
my $text = $mres->content;
ok((metric($text, 'beautiful_notifications_total', channel => 'sms', outcome => 'sent') // 0) >= 4,
   'metrics: sms sent counted');
ok((metric($text, 'beautiful_notifications_total', channel => 'sms', outcome => 'skipped') // 0) >= 2,
   'metrics: sms skipped counted');
ok((metric($text, 'beautiful_notifications_total', channel => 'in_app', outcome => 'sent') // 0) >= 2,
   'metrics: in-app sent counted');
ok(defined metric($text, 'beautiful_notifications_queued', channel => 'push', status => 'pending'),
   'metrics: queue depth by channel and status');

# ---------------------------------------------------------------- privacy

my $log = bl_error_log_since($mark);
unlike($log, qr/\Q$phone\E|9812345601/, 'no phone number in the error log');
unlike($log, qr/device-token-u-1/, 'no device token in the error log');
unlike($log, qr/Time for your dose|Refill due|prescription/, 'no title or body in the error log');

# mod_beautiful_notify against loopback Twilio and FCM servers that check
# what they receive (t/tools/twilio_fake.py, t/tools/fcm_fake.py, which
# also plays Google's OAuth 2.0 token endpoint and verifies the RS256
# assertion with the service account's public key).
#
# Twilio and FCM are server-wide settings and the shared test server uses
# the file sinks, so this suite runs its own small httpd on its own
# database, like t/notify_smtp.t.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use BL::Test;
use JSON::PP ();
require "$FindBin::Bin/notify_helpers.pl";

plan skip_all => 'mod_beautiful_notify not loaded' unless notify_loaded();
plan tests => 37;

my $fake = $ENV{BL_FAKE_PORT_BASE} or die 'BL_FAKE_PORT_BASE is not set';
my ($twilio_port, $fcm_port, $http_port) = ($fake + 0, $fake + 1, $fake + 2);
my $dir = tempdir(CLEANUP => 1);
my $db = "notify_providers_$$";
my $httpd = Apache::Test::vars('httpd');
my $moddir = `apxs -q LIBEXECDIR 2>/dev/null` || '/usr/lib/apache2/modules';
chomp $moddir;
my $sid = 'AC' . ('0123456789abcdef' x 2);
my $auth_token = 'twilio-secret-' . bl_uuid();
my $from = '+15005550006';
my $client_email = 'push@bl-test.iam.gserviceaccount.com';
my $token_ttl = 62;   # the cache asks again a minute before expiry: ~2 s of reuse
my (@pids, @hosts, $started);

# ---------------------------------------------------------------- helpers

sub psql_admin {
    my $sql = shift;
    system('psql', '-X', '-q', '-U', 'postgres', '-d', 'postgres',
           '-v', 'ON_ERROR_STOP=1', '-c', $sql) == 0 or die "psql: $sql";
}

sub q1 { local $ENV{PGDATABASE} = $db; return bl_psql_value(@_) }
sub qall { local $ENV{PGDATABASE} = $db; return bl_psql(@_) }

sub spawn {
    my ($pidfile, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) { exec(@cmd) or die "exec: $!" }
    push @pids, $pid;
    my $until = time + 10;
    sleep 0.1 until -s $pidfile || time > $until;
    return -s $pidfile;
}

sub log_lines {
    my $file = shift;
    open(my $fh, '<', $file) or return ();
    return map { bl_json($_) } grep { /\S/ } <$fh>;
}

sub user_with_phone {
    my $phone = shift;
    my $id = q1(q{INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id},
                'p-' . bl_uuid() . '@example.test');
    q1(q{INSERT INTO notification_preferences (user_id, phone) VALUES ($1, $2) RETURNING 1},
       $id, $phone) if $phone;
    return $id;
}

sub add_row {
    my ($uid, $channel, $title) = @_;
    return q1(q{INSERT INTO notifications (user_id, channel, type, title, body)
                VALUES ($1, $2::notification_channel, 'reminder.due', $3, 'Take 1 tablet')
                RETURNING id}, $uid, $channel, $title // 'Your dose');
}

sub row {
    my $id = shift;
    my ($r) = qall(q{SELECT status, attempts, coalesce(last_error, ''), coalesce(provider_id, ''),
                            coalesce(skip_reason, '') FROM notifications WHERE id = $1}, $id);
    return { status => $r->[0], attempts => $r->[1], last_error => $r->[2],
             provider_id => $r->[3], skip_reason => $r->[4] };
}

sub settled {
    my ($id, $secs) = @_;
    my $until = time + ($secs // 15);
    my $r;
    while (time < $until) {
        $r = row($id);
        return $r if $r->{status} =~ /^(sent|failed|skipped)$/;
        sleep 0.1;
    }
    return $r;
}

END {
    for my $root (@hosts) {
        system($httpd, '-f', "$root/httpd.conf", '-k', 'stop');
        my $until = time + 10;
        sleep 0.1 while -e "$root/httpd.pid" && time < $until;
    }
    for my $pid (@pids) { kill 'TERM', $pid; waitpid $pid, 0 }
    eval { psql_admin(qq{DROP DATABASE IF EXISTS "$db" WITH (FORCE)}) };
}

# ---------------------------------------------------------------- setup

psql_admin(qq{CREATE DATABASE "$db" OWNER beautiful TEMPLATE template0});
system("$ENV{BL_SRC_DIR}/scripts/migrate", '-q', '--dsn',
       "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$db user=beautiful") == 0
    or die 'migrate failed';

# The service account: a fresh RSA key, its JSON file as Google issues it.
system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $dir/sa.pem 2>/dev/null") == 0
    or die 'openssl genpkey';
system("openssl pkey -in $dir/sa.pem -pubout -out $dir/sa.pub 2>/dev/null") == 0 or die 'pubout';
my $pem = do { local $/; open(my $fh, '<', "$dir/sa.pem") or die; <$fh> };
{
    open(my $fh, '>', "$dir/sa.json") or die;
    print $fh JSON::PP->new->canonical->encode({
        type => 'service_account', project_id => 'bl-test', private_key_id => 'key-1',
        private_key => $pem, client_email => $client_email,
        token_uri => "http://127.0.0.1:$fcm_port/token" });
    close $fh;
}

ok(spawn("$dir/twilio.pid", '/usr/bin/python3', "$FindBin::Bin/tools/twilio_fake.py",
         $twilio_port, $sid, $auth_token, "$dir/twilio.log", "$dir/twilio.pid"),
   'Twilio fake listening');
ok(spawn("$dir/fcm.pid", '/usr/bin/python3', "$FindBin::Bin/tools/fcm_fake.py",
         $fcm_port, "$dir/sa.pub", $client_email, 'bl-test', $token_ttl, "$dir/fcm.log",
         "$dir/fcm.pid"), 'FCM fake listening');

# One host's httpd: its own root, port and logs; the shared database.
sub start_host {
    my ($root, $port, $batch) = @_;
    mkdir $root;
    mkdir "$root/mail";
    open(my $conf, '>', "$root/httpd.conf") or die;
    print $conf <<"CONF";
ServerRoot "$root"
Listen 127.0.0.1:$port
ServerName 127.0.0.1
PidFile "$root/httpd.pid"
DefaultRuntimeDir "$root"
Mutex file:$root default
ErrorLog "$root/error_log"
LogLevel notice
LoadModule mpm_event_module "$moddir/mod_mpm_event.so"
LoadModule authz_core_module "$moddir/mod_authz_core.so"
LoadModule dbd_module "$moddir/mod_dbd.so"
LoadModule beautiful_core_module "$ENV{BL_MODULES_DIR}/mod_beautiful_core.so"
LoadModule beautiful_notify_module "$ENV{BL_MODULES_DIR}/mod_beautiful_notify.so"
StartServers 1
DBDriver pgsql
DBDParams "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$db user=beautiful"
BeautifulNotifyInterval 200ms
BeautifulNotifyBatchSize $batch
BeautifulNotifyBackoff 1s 1s
BeautifulNotifyMaxAttempts 3
BeautifulMailDir "$root/mail"
BeautifulSMSDir "$root/sms"
BeautifulPushDir "$root/push"
BeautifulTwilioURL http://127.0.0.1:$twilio_port/
BeautifulTwilioAccountSID $sid
BeautifulTwilioAuthToken $auth_token
BeautifulTwilioFrom "$from"
BeautifulFCMURL http://127.0.0.1:$fcm_port
BeautifulFCMCredentials "$dir/sa.json"
CONF
    close $conf;
    push @hosts, $root;
    system($httpd, '-f', "$root/httpd.conf", '-k', 'start') == 0 or return 0;
    my $until = time + 10;
    sleep 0.1 until -s "$root/httpd.pid" || time > $until;
    return -s "$root/httpd.pid";
}

$started = start_host($dir, $http_port, 20);
ok($started && -s "$dir/httpd.pid", 'worker httpd started with Twilio and FCM configured');

# ---------------------------------------------------------------- Twilio

my $ok_user = user_with_phone('+15005550006');
my $sms = add_row($ok_user, 'sms', 'Refill due');
my $r = settled($sms);
is($r->{status}, 'sent', 'sms: sent through Twilio');
my @tw = grep { $_->{form}{To} eq '+15005550006' } log_lines("$dir/twilio.log");
is(scalar @tw, 1, '... one request');
ok($tw[0]{auth_ok}, '... with Basic AccountSid:AuthToken');
like($tw[0]{content_type}, qr{^application/x-www-form-urlencoded}, '... form-encoded');
is_deeply([@{ $tw[0]{form} }{qw(To From Body)}], ['+15005550006', $from, "Refill due\nTake 1 tablet"],
          '... To, From and Body');
is($r->{provider_id}, $tw[0]{sid}, 'the stored sid is the one Twilio returned');

my $flaky_user = user_with_phone('+15005550001');
my $flaky = add_row($flaky_user, 'sms');
$r = settled($flaky);
is($r->{status}, 'sent', 'a 500 then 201: sent');
my @fl = grep { $_->{form}{To} eq '+15005550001' } log_lines("$dir/twilio.log");
is_deeply([map { $_->{status} } @fl], [500, 201], '... retried once, sent once');
is($r->{attempts}, 2, '... on the second attempt');

my $bad_user = user_with_phone('+15005550009');
my $bad = add_row($bad_user, 'sms');
$r = settled($bad);
is($r->{status}, 'failed', '400 with code 21211: failed');
is($r->{attempts}, 1, '... at once, no retry');
is($r->{last_error}, 'twilio refused the message: error 21211', '... last_error names the code');
unlike($r->{last_error}, qr/5550009/, '... never the number');
my $unsub = add_row(user_with_phone('+15005550010'), 'sms');
is(settled($unsub)->{status}, 'failed', '21610 (unsubscribed): failed');

# ---------------------------------------------------------------- FCM

my $pusher = user_with_phone(undef);
q1(q{INSERT INTO push_devices (user_id, platform, token) VALUES ($1, 'android', 'live-tok-1'),
     ($1, 'ios', 'dead-tok-2') RETURNING 1}, $pusher);
my $push = add_row($pusher, 'push', 'Time for your dose');
$r = settled($push);
is($r->{status}, 'sent', 'push: sent when one device took it');
my @fcm = log_lines("$dir/fcm.log");
my @tokens = grep { $_->{kind} eq 'token' } @fcm;
is(scalar @tokens, 1, 'one token request');
ok($tokens[0]{ok}, '... the fake verified the RS256 assertion with the public key')
    or diag(explain($tokens[0]));
is_deeply([@{ $tokens[0]{claims} }{qw(iss scope aud)}],
          [$client_email, 'https://www.googleapis.com/auth/firebase.messaging',
           "http://127.0.0.1:$fcm_port/token"], '... claims iss, scope, aud = token_uri');
ok($tokens[0]{claims}{exp} - $tokens[0]{claims}{iat} <= 3600, '... exp within the hour');
is($tokens[0]{header}{kid}, 'key-1', '... kid = private_key_id');
my @sends = grep { $_->{kind} eq 'send' } @fcm;
is_deeply([sort map { $_->{device} } @sends], ['dead-tok-2', 'live-tok-1'],
          'one message per registered device');
ok(!grep({ ($_->{bearer} // '') ne $tokens[0]{access_token} } @sends),
   '... each with the Bearer token');
is(q1(q{SELECT string_agg(token, ',' ORDER BY token) FROM push_devices WHERE user_id = $1},
      $pusher), 'live-tok-1', 'UNREGISTERED removed that device, kept the other');
like($r->{provider_id}, qr{^projects/bl-test/messages/\d+$}, 'the message name is stored');

my $push2 = add_row($pusher, 'push');
is(settled($push2)->{status}, 'sent', 'a second push: sent');
@tokens = grep { $_->{kind} eq 'token' } log_lines("$dir/fcm.log");
is(scalar @tokens, 1, '... with the cached access token');

sleep 3;   # past the token's expiry minus the minute of margin
my $push3 = add_row($pusher, 'push');
is(settled($push3)->{status}, 'sent', 'a push after the token expired: sent');
@tokens = grep { $_->{kind} eq 'token' } log_lines("$dir/fcm.log");
is(scalar @tokens, 2, '... after asking for a new token');

my $gone_user = user_with_phone(undef);
q1(q{INSERT INTO push_devices (user_id, platform, token) VALUES ($1, 'web', 'dead-tok-3')
     RETURNING 1}, $gone_user);
$r = settled(add_row($gone_user, 'push'));
is($r->{status}, 'skipped', 'every device unregistered: skipped');

# ---------------------------------------------------------------- two hosts

# A second host on the same database: the two workers race for the same
# rows; each message still goes out exactly once.
ok(start_host("$dir/host2", $fake + 3, 3), 'a second host started on the same database');
my @race = map { add_row($ok_user, 'sms', "race $_") } 1 .. 30;
my @settled = map { settled($_, 30)->{status} } @race;
is(scalar(grep { $_ eq 'sent' } @settled), 30, 'two racing workers: all 30 sent');
my %bodies;
$bodies{ $_->{form}{Body} }++
    for grep { ($_->{form}{Body} // '') =~ /^race \d+\n/ } log_lines("$dir/twilio.log");
is(scalar(keys %bodies), 30, '... Twilio got each of them');
is(scalar(grep { $_ != 1 } values %bodies), 0, '... exactly once');
my $host2_log = '';
if (open(my $fh, '<', "$dir/host2/error_log")) { local $/; $host2_log = <$fh> }

my $log = '';
if (open(my $fh, '<', "$dir/error_log")) { local $/; $log = <$fh> }
unlike($log . $host2_log, qr/5550006|5550009|live-tok|dead-tok|ya29|Refill due|$auth_token/,
       'no number, device token, access token, title or secret in the error log');

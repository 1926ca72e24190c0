# mod_beautiful_payment without Razorpay keys: every payment route answers
# 503 PAYMENTS_NOT_CONFIGURED and nothing else breaks.
#
# The keys are server-wide and the shared test server has them, so this
# suite runs its own small httpd (mpm, mod_dbd, mod_beautiful_core and
# mod_beautiful_payment with the shipped confs and no BL_RAZORPAY_*
# Define) on BL_FAKE_PORT_BASE + 7, against the test database and Redis.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use File::Temp qw(tempdir);
use FindBin ();
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/payment_helpers.pl";

plan skip_all => 'mod_beautiful_payment not loaded' unless payment_loaded();
plan tests => 17;
failures_to_stderr();

my $port = ($ENV{BL_FAKE_PORT_BASE} or die 'BL_FAKE_PORT_BASE is not set') + 7;
my $dir = tempdir(CLEANUP => 1);
my $httpd = Apache::Test::vars('httpd');
my $moddir = `apxs -q LIBEXECDIR 2>/dev/null` || '/usr/lib/apache2/modules';
chomp $moddir;
my $conf_dir = "$ENV{BL_SRC_DIR}/conf/mods-available";

open(my $fh, '>', "$dir/httpd.conf") or die "$dir/httpd.conf: $!";
print $fh <<"CONF";
ServerRoot "$dir"
Listen 127.0.0.1:$port
ServerName 127.0.0.1
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
Mutex file:$dir default
ErrorLog "$dir/error_log"
LogLevel notice
LoadModule mpm_event_module "$moddir/mod_mpm_event.so"
LoadModule authn_core_module "$moddir/mod_authn_core.so"
LoadModule authz_core_module "$moddir/mod_authz_core.so"
LoadModule authz_user_module "$moddir/mod_authz_user.so"
LoadModule authz_host_module "$moddir/mod_authz_host.so"
LoadModule dbd_module "$moddir/mod_dbd.so"
LoadModule beautiful_core_module "$ENV{BL_MODULES_DIR}/mod_beautiful_core.so"
LoadModule beautiful_payment_module "$ENV{BL_MODULES_DIR}/mod_beautiful_payment.so"
StartServers 1
Define BL_DB_PARAMS "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$ENV{PGDATABASE} user=$ENV{PGUSER}"
Define BL_REDIS_HOST "$ENV{BL_REDIS_HOST}"
Define BL_REDIS_PORT "$ENV{BL_REDIS_PORT}"
Define BL_JWT_KEY "$ENV{BL_JWT_KEY}"
Define BL_JWT_ISSUER "$ENV{BL_JWT_ISSUER}"
Define BL_JWT_AUDIENCE "$ENV{BL_JWT_AUDIENCE}"
Define BL_STATE_DIR "$dir"
Define BL_DATA_DIR "$ENV{BL_DATA_DIR}"
Include "$conf_dir/beautiful_core.conf"
Include "$conf_dir/beautiful_payment.conf"
CONF
close $fh;

unlink "$dir/httpd.pid";
system($httpd, '-f', "$dir/httpd.conf", '-k', 'start') == 0 or die 'httpd did not start';
my $until = time + 15;
sleep 0.1 until (-s "$dir/httpd.pid" && bl_request(GET => "http://127.0.0.1:$port/health")->code == 200)
    || time > $until;

END {
    if (-s "$dir/httpd.pid") {
        system($httpd, '-f', "$dir/httpd.conf", '-k', 'stop');
        my $t = time + 10;
        sleep 0.1 while -e "$dir/httpd.pid" && time < $t;
    }
}

my $base = "http://127.0.0.1:$port/api/v1/payments";
my $u = pay_user();

my ($res, $data) = bl_request(GET => "$base/plans");
is $res->code, 503, 'GET /payments/plans: 503';
is $data->{error}{code}, 'PAYMENTS_NOT_CONFIGURED', '... PAYMENTS_NOT_CONFIGURED';
for my $r (['POST', '/create-order', { plan => 'premium_month' }],
           ['POST', '/verify-payment', { razorpay_order_id => 'order_x', razorpay_payment_id => 'pay_x',
                                         razorpay_signature => 'a' x 64 }],
           ['GET', '/history'],
           ['POST', '/subscriptions', { plan => 'premium_monthly' }],
           ['GET', '/subscriptions/current'],
           ['POST', '/subscriptions/cancel', { at_period_end => JSON::PP::true }]) {
    my ($m, $p, $j) = @$r;
    ($res, $data) = bl_request($m => "$base$p", token => $u->{token}, ($j ? (json => $j) : ()));
    is $data && $data->{error}{code}, 'PAYMENTS_NOT_CONFIGURED', "$m $p: PAYMENTS_NOT_CONFIGURED";
}
($res, $data) = bl_request(GET => "$base/" . bl_uuid(), token => $u->{token});
is $res->code, 503, 'GET /payments/:id: 503';
my $raw = '{"event":"payment.captured"}';
($res, $data) = bl_request(POST => "$base/webhook", body => $raw, content_type => 'application/json',
                           headers => { 'X-Razorpay-Signature' => sign_webhook($raw),
                                        'X-Razorpay-Event-Id' => 'evtUnconfigured1' });
is $res->code, 503, 'the webhook: 503';
is $data->{error}{code}, 'PAYMENTS_NOT_CONFIGURED', '... PAYMENTS_NOT_CONFIGURED';
is bl_psql_value(q{SELECT count(*) FROM payment_webhook_events WHERE event_id = 'evtUnconfigured1'}), 0,
    '... and nothing stored';
($res) = bl_request(POST => "$base/create-order", json => { plan => 'premium_month' });
is $res->code, 401, 'the routes still need a user';
($res) = bl_request(GET => "http://127.0.0.1:$port/health");
is $res->code, 200, 'the rest of the server answers';
($res) = bl_request(GET => "http://127.0.0.1:$port/health/ready");
is $res->code, 200, '... and is ready';

open(my $log, '<', "$dir/error_log") or die;
my $text = do { local $/; <$log> };
like $text, qr/no Razorpay keys/, 'the start-up log says why';
unlike $text, qr/exit signal|Segmentation/, 'no child crashed';

# Shared helpers of the t/payment_*.t suites (mod_beautiful_payment),
# loaded with
#   require "$FindBin::Bin/payment_helpers.pl";
# The loopback Razorpay (t/tools/razorpay_fake.py) listens on
# $BL_RAZORPAY_FAKE_PORT with the keys of t/conf/test.d/payment.conf.
use strict;
use warnings;
use FindBin ();
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use Digest::SHA qw(hmac_sha256_hex);
use POSIX ();
use Time::HiRes qw(sleep time);
use BL::Test;

our $KEY_ID = 'rzp_test_BLtestKey01';
our $KEY_SECRET = 'bl-test-razorpay-key-secret';
our $WEBHOOK_SECRET = 'bl-test-razorpay-webhook-secret';
our $SUB_PLAN_ID = 'plan_BLpremiumMonthly';
our $WEBHOOK_PATH = '/api/v1/payments/webhook';

my $FAKE_JSON = JSON::PP->new->utf8->canonical;
my $fake_pid;

# After plan: failures named on stderr, where a non-verbose harness still
# shows them (Apache::Test's plan sends them to stdout).
sub failures_to_stderr { Test::More->builder->failure_output(\*STDERR) }

sub payment_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / payment /;
}

sub fake_port { return $ENV{BL_RAZORPAY_FAKE_PORT} || die 'BL_RAZORPAY_FAKE_PORT is not set' }

# Starts the loopback Razorpay; returns once it answers.
sub fake_start {
    my $pidfile = "/tmp/bl-razorpay-fake-$$.pid";
    unlink $pidfile;
    $fake_pid = fork // die "fork: $!";
    if (!$fake_pid) {
        exec('/usr/bin/python3', "$FindBin::Bin/tools/razorpay_fake.py",
             '--port', fake_port(), '--key-id', $KEY_ID, '--key-secret', $KEY_SECRET,
             '--webhook-secret', $WEBHOOK_SECRET, '--plan', "$SUB_PLAN_ID:39900",
             '--pidfile', $pidfile) or POSIX::_exit(127);
    }
    my $until = time + 15;
    sleep 0.05 until -s $pidfile || time > $until;
    unlink $pidfile;
    die 'the Razorpay fake did not start' unless fake_up();
    return $fake_pid;
}

sub fake_up {
    my $ua = LWP::UserAgent->new(timeout => 2);
    return $ua->get('http://127.0.0.1:' . fake_port() . '/_fake/state')->is_success;
}

sub fake_stop {
    return unless $fake_pid;
    local $?;    # from END: waitpid must not become the test's exit status
    kill 'TERM', $fake_pid;
    waitpid $fake_pid, 0;
    $fake_pid = undef;
}

END { fake_stop() }

# A control call to the fake: returns the decoded answer (dies on non-200).
sub fake {
    my ($method, $path, $body) = @_;
    my $ua = LWP::UserAgent->new(timeout => 30);
    my $req = HTTP::Request->new($method => 'http://127.0.0.1:' . fake_port() . $path);
    if ($body) {
        $req->content($FAKE_JSON->encode($body));
        $req->header('Content-Type' => 'application/json');
    }
    my $res = $ua->request($req);
    die "fake $method $path: " . $res->status_line . ' ' . $res->content
        unless $res->code == 200;
    return $FAKE_JSON->decode($res->content);
}

# What the fake's API routes received (method, path, auth_ok, body ...).
sub fake_requests { return @{ fake(GET => '/_fake/requests') } }

# A user with a session, made directly (no argon2): { id, email, token }.
sub pay_user {
    my $email = 'payer-' . bl_uuid() . '@example.test';
    my $id = bl_psql_value(
        q{INSERT INTO users (email, password_hash, email_verified_at)
          VALUES ($1, 'x', now()) RETURNING id}, $email);
    my $sid = bl_uuid();
    bl_session_create($sid, $id, 3600);
    my $token = bl_mint_jwt(sub => $id, sid => $sid, exp => int(time) + 3600);
    return { id => $id, email => $email, token => $token };
}

sub api {
    my ($method, $path, $user, %opt) = @_;
    return bl_request($method, "/api/v1/payments$path",
                      ($user ? (token => $user->{token}) : ()), %opt);
}

# create-order for $plan; returns the checkout data (dies unless 201).
sub new_order {
    my ($user, $plan, %opt) = @_;
    my ($res, $data) = api(POST => '/create-order', $user, json => { plan => $plan // 'premium_month' },
                           %opt);
    die 'create-order: ' . $res->code . ' ' . $res->content unless $res->code == 201;
    return $data->{data};
}

sub checkout { my ($order_id, %o) = @_; return fake(POST => '/_fake/checkout', { order_id => $order_id, %o }) }

sub verify {
    my ($user, $proof) = @_;
    return api(POST => '/verify-payment', $user, json => $proof);
}

sub tier_of {
    my $uid = shift;
    my ($row) = bl_psql(
        q{SELECT subscription_tier,
                 extract(epoch FROM subscription_tier_until - now())::int
          FROM users WHERE id = $1}, $uid);
    return ($row->[0], $row->[1]);
}

sub payment_row {
    my $id = shift;
    my ($r) = bl_psql(q{SELECT status, razorpay_payment_id, signature_verified, paid_at IS NOT NULL
                        FROM payments WHERE id = $1}, $id);
    return $r ? { status => $r->[0], razorpay_payment_id => $r->[1],
                  verified => $r->[2] eq 't', paid => $r->[3] eq 't' } : undef;
}

sub outbox_count {
    my ($uid, $type) = @_;
    return bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND type = $2},
                         $uid, $type);
}

sub audit_count {
    my ($id, $action) = @_;
    return bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND action = $2},
                         $id, $action);
}

# Has the fake send a signed webhook for the event to our server; returns
# the fake's report { status, body, event_id, raw }.
sub webhook {
    my (%ev) = @_;
    return fake(POST => '/_fake/webhook', { url => bl_url($WEBHOOK_PATH), %ev });
}

sub redeliver {
    my ($sent) = @_;
    return fake(POST => '/_fake/redeliver',
                { url => bl_url($WEBHOOK_PATH), raw => $sent->{raw}, event_id => $sent->{event_id} });
}

# Sends a raw body to the webhook route with the given headers.
sub raw_webhook {
    my ($raw, %h) = @_;
    return bl_request(POST => $WEBHOOK_PATH, body => $raw, content_type => 'application/json',
                      headers => \%h);
}

sub sign_webhook { return hmac_sha256_hex($_[0], $WEBHOOK_SECRET) }

# Waits until $cond->() is true (at most $secs); returns its last value.
sub wait_until {
    my ($cond, $secs) = @_;
    my $until = time + ($secs // 15);
    my $v;
    while (time < $until) {
        return $v if ($v = $cond->());
        sleep 0.2;
    }
    return $v;
}

1;

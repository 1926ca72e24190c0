# mod_beautiful_payment: the subscription life cycle — create at Razorpay,
# checkout, verify, then renewals, pending, halts and cancellation by
# webhook, cancel from the app, and the task that ends tiers whose period
# is over (also two passes at once).
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/payment_helpers.pl";
our ($KEY_ID, $KEY_SECRET, $WEBHOOK_SECRET, $SUB_PLAN_ID, $WEBHOOK_PATH);

plan skip_all => 'mod_beautiful_payment not loaded' unless payment_loaded();
plan tests => 73;
failures_to_stderr();

fake_start();
my $log_mark = bl_error_log_mark();
my $user = pay_user();
my $other = pay_user();

sub sub_status {
    my $id = shift;
    return bl_psql_value(q{SELECT status FROM subscriptions WHERE id = $1}, $id);
}

sub result_of { my $sent = shift; my $d = bl_json($sent->{body}); return $d && $d->{data}{result} }

# ---------------------------------------------------------------- create
my ($sub, $rzp);
{
    my ($res, $data) = api(POST => '/subscriptions', $user, json => { plan => 'premium_month' });
    is $res->code, 400, 'a one-time product is not a subscription plan';
    ($res, $data) = api(POST => '/subscriptions', $user, json => { plan => 'premium_monthly', amount => 1 });
    is $res->code, 400, 'an amount is refused here too';
    ($res) = api(POST => '/subscriptions/cancel', $user, json => { at_period_end => JSON::PP::true });
    is $res->code, 404, 'cancel without a subscription: 404';
    ($res) = api(GET => '/subscriptions/current', $user);
    is $res->code, 404, 'no current subscription yet: 404';

    fake(POST => '/_fake/reset');
    ($res, $data) = api(POST => '/subscriptions', $user, json => { plan => 'premium_monthly' });
    is $res->code, 201, 'subscription created';
    $sub = $data->{data};
    $rzp = $sub->{razorpay_subscription_id};
    like $rzp, qr/^sub_/, '... with the Razorpay subscription id';
    is_deeply [ @$sub{qw(amount currency key_id status)} ], [ 39900, 'INR', $KEY_ID, 'created' ],
        '... and what Checkout needs';
    my ($req) = grep { $_->{path} eq '/v1/subscriptions' } fake_requests();
    ok $req->{auth_ok}, 'Razorpay saw Basic auth';
    is_deeply [ @{ $req->{body} }{qw(plan_id total_count quantity customer_notify)} ],
        [ $SUB_PLAN_ID, 12, 1, 1 ], '... the plan id and billing cycles';
    is $req->{body}{notes}{subscription_id}, $sub->{subscription_id}, '... and our id in notes';
    ($res, $data) = api(GET => '/subscriptions/current', $user);
    is $data->{data}{subscription}{status}, 'created', 'current: created';
}

# ---------------------------------------------------------------- checkout and verify
{
    my $proof = fake(POST => '/_fake/subscription_checkout', { subscription_id => $rzp });
    my ($res, $data) = verify($user, { %$proof, razorpay_signature => 'a' x 64 });
    is $res->code, 400, 'a forged subscription signature: 400';
    is $data->{error}{code}, 'INVALID_SIGNATURE', '... INVALID_SIGNATURE';
    # The order scheme (subscription_id|payment_id) is not the subscription's.
    my $wrong = hmac_sha256_hex("$rzp|$proof->{razorpay_payment_id}", $KEY_SECRET);
    ($res) = verify($user, { %$proof, razorpay_signature => $wrong });
    is $res->code, 400, 'the signature over subscription_id|payment_id is refused';
    ($res) = verify($other, $proof);
    is $res->code, 404, "someone else's subscription: 404";
    is sub_status($sub->{subscription_id}), 'created', 'nothing changed';

    ($res, $data) = verify($user, $proof);
    is $res->code, 200, 'verify-payment with payment_id|subscription_id';
    is $data->{data}{status}, 'active', '... the subscription is active';
    my ($tier, $left) = tier_of($user->{id});
    is $tier, 'premium', '... the plan tier is granted';
    ok $left > 29 * 86400 && $left <= 30 * 86400, '... to the end of the period';

    ($res, $data) = api(POST => '/subscriptions', $user, json => { plan => 'premium_monthly' });
    is $res->code, 409, 'a second live subscription: 409';
    is $data->{error}{code}, 'SUBSCRIPTION_EXISTS', '... SUBSCRIPTION_EXISTS';

    my $sent = webhook(event => 'subscription.activated', subscription_id => $rzp);
    is $sent->{status}, 200, 'subscription.activated after verify: 200';
    is result_of($sent), 'ignored', '... nothing new';
}

# ---------------------------------------------------------------- renewals by webhook
{
    my $receipts = outbox_count($user->{id}, 'payment.receipt');
    fake(POST => '/_fake/subscription_state', { subscription_id => $rzp, renew => 1 });
    my $sent = webhook(event => 'subscription.charged', subscription_id => $rzp);
    is result_of($sent), 'applied', 'subscription.charged: applied';
    my (undef, $left) = tier_of($user->{id});
    ok $left > 59 * 86400 && $left <= 60 * 86400, '... the tier runs to the new period end';
    is outbox_count($user->{id}, 'payment.receipt'), $receipts + 1, '... with a receipt';
    my ($res, $data) = api(GET => '/history', $user);
    my @charges = grep { $_->{subscription_id} && $_->{subscription_id} eq $sub->{subscription_id} } @{ $data->{data} };
    is scalar(@charges), 1, 'the charge is in my history';
    is_deeply [ @{ $charges[0] }{qw(amount status)} ], [ 39900, 'captured' ], '... captured, in paise';

    my $again = redeliver($sent);
    is result_of($again), 'duplicate', 'its redelivery: duplicate';
    my $same = webhook(event => 'subscription.charged', subscription_id => $rzp);
    is $same->{status}, 200, 'the same charge under another event id: 200';
    is bl_psql_value(q{SELECT count(*) FROM payments WHERE subscription_id = $1}, $sub->{subscription_id}), 1,
        '... still one payment';
    is outbox_count($user->{id}, 'payment.receipt'), $receipts + 1, '... and one receipt';
}

# ---------------------------------------------------------------- pending, late events, halted
{
    my $t = time;
    fake(POST => '/_fake/subscription_state', { subscription_id => $rzp, status => 'pending' });
    my $sent = webhook(event => 'subscription.pending', subscription_id => $rzp, created_at => int($t) + 10);
    is result_of($sent), 'applied', 'subscription.pending: applied';
    is sub_status($sub->{subscription_id}), 'pending', '... pending';
    my ($tier) = tier_of($user->{id});
    is $tier, 'premium', '... the tier stays while Razorpay retries';
    ok outbox_count($user->{id}, 'payment.subscription') >= 2, 'the user is told (payment.subscription)';

    fake(POST => '/_fake/subscription_state', { subscription_id => $rzp, status => 'active' });
    $sent = webhook(event => 'subscription.activated', subscription_id => $rzp, created_at => int($t) - 3600);
    is result_of($sent), 'ignored', 'an older event arriving late: ignored';
    is sub_status($sub->{subscription_id}), 'pending', '... still pending';

    fake(POST => '/_fake/subscription_state', { subscription_id => $rzp, status => 'halted' });
    $sent = webhook(event => 'subscription.halted', subscription_id => $rzp, created_at => int($t) + 20);
    is result_of($sent), 'applied', 'subscription.halted: applied';
    is sub_status($sub->{subscription_id}), 'halted', '... halted';
    ($tier) = tier_of($user->{id});
    is $tier, 'free', '... and the tier ends at once';

    fake(POST => '/_fake/subscription_state', { subscription_id => $rzp, renew => 1 });
    $sent = webhook(event => 'subscription.charged', subscription_id => $rzp, created_at => int($t) + 30);
    is sub_status($sub->{subscription_id}), 'active', 'charged again after the halt: active';
    ($tier) = tier_of($user->{id});
    is $tier, 'premium', '... with the tier back';
}

# ---------------------------------------------------------------- cancel
{
    fake(POST => '/_fake/reset');
    my ($res, $data) = api(POST => '/subscriptions/cancel', $user, json => {});
    is $res->code, 400, 'cancel needs at_period_end';
    ($res, $data) = api(POST => '/subscriptions/cancel', $user, json => { at_period_end => 'yes' });
    is $res->code, 400, '... a boolean';
    ($res, $data) = api(POST => '/subscriptions/cancel', $other, json => { at_period_end => JSON::PP::true });
    is $res->code, 404, "cancelling someone else's subscription is not possible (404)";

    ($res, $data) = api(POST => '/subscriptions/cancel', $user, json => { at_period_end => JSON::PP::true });
    is $res->code, 200, 'cancel at the period end';
    ok $data->{data}{cancel_at_period_end}, '... flagged';
    is $data->{data}{status}, 'active', '... still active';
    my ($req) = grep { $_->{path} eq "/v1/subscriptions/$rzp/cancel" } fake_requests();
    is_deeply $req && $req->{body}, { cancel_at_cycle_end => 1 }, 'Razorpay was asked to cancel at cycle end';

    ($res, $data) = api(POST => '/subscriptions/cancel', $user, json => { at_period_end => JSON::PP::false });
    is $res->code, 200, 'cancel now';
    is $data->{data}{status}, 'cancelled', '... cancelled';
    my ($tier, $left) = tier_of($user->{id});
    ok $tier eq 'premium' && $left > 0, '... what was paid for stays until the period ends';
    my $sent = webhook(event => 'subscription.activated', subscription_id => $rzp, created_at => int(time) + 60);
    is result_of($sent), 'ignored', 'nothing brings a cancelled subscription back';
    ($res, $data) = api(GET => '/subscriptions/current', $user);
    is $data->{data}{subscription}{status}, 'cancelled', 'current: the cancelled one';

    ($res, $data) = api(POST => '/subscriptions', $user, json => { plan => 'premium_monthly' });
    is $res->code, 201, 'after a cancellation a new subscription can start';
}

# ---------------------------------------------------------------- expiry
{
    bl_psql(q{UPDATE users SET subscription_tier_until = now() - interval '1 second' WHERE id = $1}, $user->{id});
    ok wait_until(sub { (tier_of($user->{id}))[0] eq 'free' }, 10), 'a tier whose period is over ends';
    is bl_psql_value(q{SELECT subscription_tier_until FROM users WHERE id = $1}, $user->{id}), undef,
        '... with no end date';
    is audit_count($user->{id}, 'subscription.tier_expired'), 1, '... audited';

    my @users = map { pay_user() } 1 .. 5;
    bl_psql(q{UPDATE users SET subscription_tier = 'premium', subscription_tier_until = now() - interval '1 second'
              WHERE id IN ($1, $2, $3, $4, $5)}, map { $_->{id} } @users);
    my @kids;
    for (1 .. 2) {
        my $pid = fork // die "fork: $!";
        if (!$pid) { bl_psql(q{SELECT payment_expire_tiers(500)}); POSIX::_exit(0) }
        push @kids, $pid;
    }
    waitpid $_, 0 for @kids;
    ok wait_until(sub { !grep { (tier_of($_->{id}))[0] ne 'free' } @users }, 10), 'two expiry passes at once end every tier';
    is scalar(grep { audit_count($_->{id}, 'subscription.tier_expired') == 1 } @users), 5, '... each exactly once';
}

# ---------------------------------------------------------------- Razorpay down
{
    my $u = pay_user();
    fake_stop();
    my ($res, $data) = api(POST => '/subscriptions', $u, json => { plan => 'premium_monthly' });
    is $res->code, 503, 'Razorpay down: subscriptions 503';
    is $data->{error}{code}, 'PAYMENT_PROVIDER_UNAVAILABLE', '... PAYMENT_PROVIDER_UNAVAILABLE';
    is bl_psql_value(q{SELECT count(*) FROM subscriptions WHERE user_id = $1}, $u->{id}), 0, '... nothing written';
    fake_start();
}

# ---------------------------------------------------------------- account deletion
SKIP: {
    skip 'mod_beautiful_auth not loaded', 7
        unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / auth /;
    my $password = 'correct horse battery staple 42';
    my $email = 'leaving-' . bl_uuid() . '@example.test';
    my ($res, $data) = bl_request(POST => '/api/v1/auth/register',
                                  json => { email => $email, password => $password });
    my $uid = $data->{data}{id};
    ($res, $data) = bl_request(POST => '/api/v1/auth/login', json => { email => $email, password => $password });
    my $leaving = { id => $uid, token => $data->{data}{access_token} };
    ($res, $data) = api(POST => '/subscriptions', $leaving, json => { plan => 'premium_monthly' });
    my $s = $data->{data};
    my $proof = fake(POST => '/_fake/subscription_checkout', { subscription_id => $s->{razorpay_subscription_id} });
    ($res) = verify($leaving, $proof);
    is $res->code, 200, 'a subscriber';

    fake_stop();
    ($res) = bl_request(DELETE => '/api/v1/users/account', token => $leaving->{token},
                        json => { password => $password });
    is $res->code, 503, 'deleting the account while Razorpay is down: 503';
    is bl_psql_value(q{SELECT count(*) FROM users WHERE id = $1}, $uid), 1, '... the account stays';
    fake_start();
    ($res, $data) = bl_request(POST => '/api/v1/auth/login', json => { email => $email, password => $password });
    $leaving->{token} = $data->{data}{access_token};
    ($res) = bl_request(DELETE => '/api/v1/users/account', token => $leaving->{token},
                        json => { password => $password });
    ok $res->code == 200 || $res->code == 204, 'deleting the account';
    my ($req) = grep { $_->{path} eq "/v1/subscriptions/$s->{razorpay_subscription_id}/cancel" } fake_requests();
    is_deeply $req && $req->{body}, { cancel_at_cycle_end => 0 }, '... cancels the subscription at Razorpay first';
    my ($row) = bl_psql(q{SELECT status, user_id FROM subscriptions WHERE id = $1}, $s->{subscription_id});
    is $row->[0], 'cancelled', '... the subscription is kept, cancelled';
    is $row->[1], undef, '... and detached from the account';
}

is_deeply [ bl_error_log_crashes($log_mark) ], [], 'no httpd child crashed';

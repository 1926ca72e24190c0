# mod_beautiful_payment: plans, create-order, verify-payment, history —
# against the loopback Razorpay (t/tools/razorpay_fake.py), which checks
# Basic auth and request bodies and plays the browser's Checkout.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/payment_helpers.pl";
our ($KEY_ID, $KEY_SECRET, $WEBHOOK_SECRET, $SUB_PLAN_ID);

plan skip_all => 'mod_beautiful_payment not loaded' unless payment_loaded();
plan tests => 91;
failures_to_stderr();

fake_start();
my $log_mark = bl_error_log_mark();

# ---------------------------------------------------------------- plans
{
    my ($res, $data) = bl_request(GET => '/api/v1/payments/plans');
    is $res->code, 200, 'plans are public';
    my %plans = map { $_->{code} => $_ } @{ $data->{data} };
    is_deeply [ @{ $plans{premium_month} }{qw(amount currency kind tier days)} ],
        [ 49900, 'INR', 'one_time', 'premium', 30 ], 'a one-time product, in paise';
    is $plans{premium_monthly}{kind}, 'subscription', 'a monthly subscription plan';
    unlike $res->content, qr/plan_BL|secret/i, 'no Razorpay plan id or key in the list';
}

my $alice = pay_user();
my $bob = pay_user();

# ---------------------------------------------------------------- refusals before Razorpay
{
    fake(POST => '/_fake/reset');
    my ($res, $data) = api(POST => '/create-order', $alice, json => { plan => 'premium_month', amount => 100 });
    is $res->code, 400, 'an amount in the body is refused';
    is $data->{error}{code}, 'VALIDATION_ERROR', '... as a validation error';
    like $data->{error}{message}, qr/amount is set by the server/, '... saying prices live on the server';
    ($res, $data) = api(POST => '/create-order', $alice, json => { plan => 'premium_month', amount_paise => 1 });
    is $res->code, 400, 'amount_paise too';
    ($res, $data) = api(POST => '/create-order', $alice, json => { plan => 'no_such_plan' });
    is $res->code, 400, 'an unknown plan is refused';
    is $data->{error}{details}, 'field: plan', '... naming the field';
    ($res) = api(POST => '/create-order', $alice, json => { plan => 'premium_monthly' });
    is $res->code, 400, 'a subscription plan is not a one-time order';
    ($res) = api(POST => '/create-order', $alice, json => { plan => 49900 });
    is $res->code, 400, 'plan must be a string';
    ($res) = api(POST => '/create-order', undef, json => { plan => 'premium_month' });
    is $res->code, 401, 'create-order needs a user';
    ($res) = api(POST => '/create-order', $alice, body => 'plan=premium_month',
                 content_type => 'application/x-www-form-urlencoded');
    is $res->code, 415, 'JSON only';
    is scalar(fake_requests()), 0, 'none of these reached Razorpay';
    is bl_psql_value(q{SELECT count(*) FROM payments WHERE user_id = $1}, $alice->{id}), 0,
        '... and nothing was written';
}

# ---------------------------------------------------------------- happy path
my $order;
{
    fake(POST => '/_fake/reset');
    $order = new_order($alice, 'premium_month');
    is $order->{amount}, 49900, 'the order is for the plan amount';
    is $order->{currency}, 'INR', '... in its currency';
    is $order->{key_id}, $KEY_ID, 'Checkout gets the key id';
    like $order->{order_id}, qr/^order_/, '... and the Razorpay order id';
    my ($req) = grep { $_->{path} eq '/v1/orders' } fake_requests();
    ok $req->{auth_ok}, 'Razorpay saw HTTP Basic key_id:key_secret';
    is $req->{content_type}, 'application/json', '... and JSON';
    is_deeply [ @{ $req->{body} }{qw(amount currency receipt)} ], [ 49900, 'INR', $order->{payment_id} ],
        '... amount, currency and our payment id as receipt';
    is_deeply $req->{body}{notes}, { payment_id => $order->{payment_id}, user_id => $alice->{id},
                                     plan => 'premium_month' }, '... and notes with our ids';
    like $req->{traceparent} // '', qr/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, '... and a traceparent';
    is payment_row($order->{payment_id})->{status}, 'created', 'the payment is created';

    my $proof = checkout($order->{order_id});
    my ($res, $data) = verify($alice, $proof);
    is $res->code, 200, 'verify-payment accepts a real checkout';
    is $data->{data}{payment}{status}, 'captured', '... the payment is captured';
    is $data->{data}{account}{subscription_tier}, 'premium', '... and the tier is upgraded';
    my $row = payment_row($order->{payment_id});
    ok $row->{paid} && $row->{verified}, 'paid_at set, signature verified';
    is $row->{razorpay_payment_id}, $proof->{razorpay_payment_id}, 'the Razorpay payment id is kept';
    my ($tier, $left) = tier_of($alice->{id});
    is $tier, 'premium', 'users.subscription_tier is the plan tier';
    ok $left > 29 * 86400 && $left <= 30 * 86400, 'for the 30 days bought';
    is outbox_count($alice->{id}, 'payment.receipt'), 1, 'one receipt in the outbox';
    my $mail = wait_until(sub {
        (grep { $_->{content} =~ /\Q$alice->{email}\E/ && $_->{content} =~ /499\.00/ } bl_mail_messages())[0]
    }, 15);
    ok $mail, 'the receipt email arrived in the mail sink';
    like $mail->{content} // '', qr/Payment received/, '... with its subject';
    is audit_count($order->{payment_id}, 'payment.captured'), 1, 'the capture is audited';
    my ($fetch) = grep { $_->{path} eq "/v1/payments/$proof->{razorpay_payment_id}" } fake_requests();
    ok $fetch && $fetch->{auth_ok}, 'the payment was fetched from Razorpay before it counted';

    ($res, $data) = verify($alice, $proof);
    is $res->code, 200, 'verifying again is harmless';
    is outbox_count($alice->{id}, 'payment.receipt'), 1, '... no second receipt';
    (undef, my $left2) = tier_of($alice->{id});
    ok $left2 <= $left, '... and no second month';
}

# ---------------------------------------------------------------- refused verifications
{
    my $o = new_order($alice, 'premium_month');
    my $proof = checkout($o->{order_id});
    my ($tier0, $left0) = tier_of($alice->{id});
    my $receipts0 = outbox_count($alice->{id}, 'payment.receipt');

    my %forged = (%$proof, razorpay_signature => 'f' x 64);
    my ($res, $data) = verify($alice, \%forged);
    is $res->code, 400, 'a forged signature is refused';
    is $data->{error}{code}, 'INVALID_SIGNATURE', '... as INVALID_SIGNATURE';

    my $other = new_order($alice, 'premium_month');
    my %swapped = (%$proof, razorpay_order_id => $other->{order_id});
    ($res, $data) = verify($alice, \%swapped);
    is $res->code, 400, 'a signature made for another order is refused';
    is $data->{error}{code}, 'INVALID_SIGNATURE', '... as INVALID_SIGNATURE';

    ($res, $data) = verify($bob, $proof);
    is $res->code, 404, 'another user verifying my order: 404';
    is $data->{error}{code}, 'NOT_FOUND', '... as NOT_FOUND';

    ($res) = verify($alice, { %$proof, razorpay_signature => 'zz' });
    is $res->code, 400, 'a malformed signature is refused';
    ($res) = verify($alice, { %$proof, amount => 1 });
    is $res->code, 400, 'an amount in the verification is refused';
    ($res) = verify($alice, { razorpay_payment_id => $proof->{razorpay_payment_id},
                              razorpay_signature => $proof->{razorpay_signature} });
    is $res->code, 400, 'no order id: refused';

    my $cheap = new_order($alice, 'premium_month');
    my $short = checkout($cheap->{order_id}, amount => 100);
    ($res, $data) = verify($alice, $short);
    is $res->code, 400, 'a payment whose fetched amount differs is refused';
    is $data->{error}{code}, 'PAYMENT_VERIFICATION_FAILED', '... as PAYMENT_VERIFICATION_FAILED';

    my $failed = new_order($alice, 'premium_month');
    my $declined = checkout($failed->{order_id}, status => 'failed');
    ($res, $data) = verify($alice, $declined);
    is $res->code, 400, 'a failed payment with a valid signature is refused';

    is payment_row($o->{payment_id})->{status}, 'created', 'after all that the order is still open';
    is payment_row($cheap->{payment_id})->{status}, 'created', '... so is the short-paid one';
    my ($tier1, $left1) = tier_of($alice->{id});
    ok $tier1 eq $tier0 && abs($left1 - $left0) < 5, '... the tier did not move';
    is outbox_count($alice->{id}, 'payment.receipt'), $receipts0, '... and no receipt went out';
    ok bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'payment.verify'
                       AND outcome = 'denied' AND resource_id = $1}, $o->{payment_id}) >= 2,
        'the refusals are audited';
    my ($tierb) = tier_of($bob->{id});
    is $tierb, 'free', 'bob got nothing from trying';

    # The authorized-only payment (no automatic capture): verified, then captured.
    my $auth = new_order($bob, 'premium_month');
    my $authorized = checkout($auth->{order_id}, status => 'authorized');
    ($res, $data) = verify($bob, $authorized);
    is $res->code, 200, 'an authorized payment is captured by verify-payment';
    my ($cap) = grep { $_->{path} eq "/v1/payments/$authorized->{razorpay_payment_id}/capture" } fake_requests();
    is_deeply $cap && $cap->{body}, { amount => 49900, currency => 'INR' }, '... capturing the order amount';
}

# ---------------------------------------------------------------- idempotency
{
    fake(POST => '/_fake/reset');
    my $key = 'retry-' . bl_uuid();
    my ($res1, $d1) = api(POST => '/create-order', $bob, json => { plan => 'premium_month' },
                          headers => { 'Idempotency-Key' => $key });
    my ($res2, $d2) = api(POST => '/create-order', $bob, json => { plan => 'premium_month' },
                          headers => { 'Idempotency-Key' => $key });
    is $res1->code, 201, 'first request with an Idempotency-Key: 201';
    is $res2->code, 200, 'the retry: 200';
    is $d2->{data}{order_id}, $d1->{data}{order_id}, '... with the same order';
    is $d2->{data}{payment_id}, $d1->{data}{payment_id}, '... and the same payment';
    is scalar(grep { $_->{path} eq '/v1/orders' } fake_requests()), 1, 'Razorpay saw one order';
    my ($res3, $d3) = api(POST => '/create-order', $bob, json => { plan => 'premium_year' },
                          headers => { 'Idempotency-Key' => $key });
    is $res3->code, 409, 'the same key for another plan: 409';
    is $d3->{error}{code}, 'IDEMPOTENCY_KEY_REUSED', '... IDEMPOTENCY_KEY_REUSED';
    my ($res4, $d4) = api(POST => '/create-order', $alice, json => { plan => 'premium_month' },
                          headers => { 'Idempotency-Key' => $key });
    is $res4->code, 201, 'keys are per user';
    isnt $d4->{data}{order_id}, $d1->{data}{order_id}, '... another user gets another order';
    my ($res5) = api(POST => '/create-order', $bob, json => { plan => 'premium_month' },
                     headers => { 'Idempotency-Key' => "bad\x01key" });
    is $res5->code, 400, 'a control character in the key is refused';
}

# ---------------------------------------------------------------- Razorpay down
{
    my $before = bl_psql_value(q{SELECT count(*) FROM payments WHERE user_id = $1}, $bob->{id});
    fake(POST => '/_fake/fail', { count => 4, status => 503 });
    my ($res, $data) = api(POST => '/create-order', $bob, json => { plan => 'premium_month' });
    is $res->code, 503, 'Razorpay answering 503: create-order 503';
    is $data->{error}{code}, 'PAYMENT_PROVIDER_UNAVAILABLE', '... PAYMENT_PROVIDER_UNAVAILABLE';
    ok $res->header('Retry-After'), '... with Retry-After';
    fake(POST => '/_fake/fail', { count => 0 });
    fake_stop();
    my $t0 = time;
    ($res, $data) = api(POST => '/create-order', $bob, json => { plan => 'premium_month' });
    is $res->code, 503, 'Razorpay not listening: 503';
    ok time - $t0 < 10, '... within the timeouts';
    is bl_psql_value(q{SELECT count(*) FROM payments WHERE user_id = $1}, $bob->{id}), $before,
        'nothing half-written';
    fake_start();
}

# ---------------------------------------------------------------- history
{
    my $carol = pay_user();
    my @made = map { new_order($carol, 'premium_month') } 1 .. 3;
    my ($res, $data) = api(GET => '/history', $carol, query => { per_page => 2 });
    is $res->code, 200, 'history';
    is $data->{meta}{total}, 3, '... counts my payments';
    is scalar(@{ $data->{data} }), 2, '... a page at a time';
    is $data->{data}[0]{id}, $made[2]{payment_id}, '... newest first';
    ($res, $data) = api(GET => '/history', $carol, query => { page => 2, per_page => 2 });
    is $data->{data}[0]{id}, $made[0]{payment_id}, 'page 2 has the oldest';
    ($res, $data) = api(GET => '/history', $carol, query => { per_page => 500 });
    is $res->code, 400, 'per_page above 100: 400';
    ($res, $data) = api(GET => "/$made[0]{payment_id}", $carol);
    is $res->code, 200, 'one of mine';
    is_deeply [ @{ $data->{data} }{qw(amount currency status plan)} ], [ 49900, 'INR', 'created', 'premium_month' ],
        '... as integer paise with its status';
    ($res) = api(GET => "/$made[0]{payment_id}", $alice);
    is $res->code, 404, "someone else's payment: 404";
    ($res) = api(GET => '/not-a-uuid', $carol);
    is $res->code, 404, 'a malformed id: 404';
}

# ---------------------------------------------------------------- logs
{
    my $log = bl_error_log_since($log_mark);
    unlike $log, qr/\Q$KEY_SECRET\E|\Q$WEBHOOK_SECRET\E/, 'no key secret in the error log';
    unlike $log, qr/[0-9a-f]{64}/, 'no signature in the error log';
    is_deeply [ bl_error_log_crashes($log_mark) ], [], 'no httpd child crashed';
}

# ---------------------------------------------------------------- trace context
{
    # One trace from the caller to Razorpay: the client's trace id travels
    # on, under a span of the request's own.
    fake(POST => '/_fake/reset');
    my $trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    new_order($alice, 'premium_month',
              headers => { traceparent => "00-$trace-00f067aa0ba902b7-01" });
    my ($traced) = grep { $_->{path} eq '/v1/orders' } fake_requests();
    like $traced->{traceparent} // '', qr/^00-$trace-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/,
        "the incoming request's trace id reaches Razorpay, with the request's span as parent";
}

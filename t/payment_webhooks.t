# mod_beautiful_payment: the Razorpay webhook (raw-body signature,
# deduplication by event id, forward-only statuses), verify-payment racing
# payment.captured, refunds, and reconciliation of orders whose webhook
# never came. The loopback Razorpay signs its webhooks with the real scheme.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use File::Temp qw(tempfile);
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/payment_helpers.pl";
our ($KEY_ID, $KEY_SECRET, $WEBHOOK_SECRET, $SUB_PLAN_ID, $WEBHOOK_PATH);

plan skip_all => 'mod_beautiful_payment not loaded' unless payment_loaded();
plan tests => 65;
failures_to_stderr();

fake_start();
my $log_mark = bl_error_log_mark();
my $user = pay_user();

sub event_rows {
    my $id = shift;
    return bl_psql_value(q{SELECT count(*) FROM payment_webhook_events WHERE event_id = $1}, $id);
}

# ---------------------------------------------------------------- signatures
my $order = new_order($user);
my $paid = checkout($order->{order_id});
{
    my $sent = webhook(event => 'payment.captured', order_id => $order->{order_id}, forge => 1);
    is $sent->{status}, 400, 'a webhook signed with another secret: 400';
    is bl_json($sent->{body})->{error}{code}, 'INVALID_SIGNATURE', '... INVALID_SIGNATURE';
    is event_rows($sent->{event_id}), 0, '... nothing stored';
    is payment_row($order->{payment_id})->{status}, 'created', '... nothing changed';

    my ($res, $data) = raw_webhook($sent->{raw}, 'X-Razorpay-Event-Id' => $sent->{event_id});
    is $res->code, 400, 'no signature header: 400';
    (my $tampered = $sent->{raw}) =~ s/"amount":49900/"amount":100/;
    ($res) = raw_webhook($tampered, 'X-Razorpay-Event-Id' => $sent->{event_id},
                         'X-Razorpay-Signature' => sign_webhook($sent->{raw}));
    is $res->code, 400, 'a body changed after signing: 400';
    ($res) = raw_webhook($sent->{raw}, 'X-Razorpay-Event-Id' => $sent->{event_id},
                         'X-Razorpay-Signature' => uc sign_webhook($sent->{raw}));
    is $res->code, 400, 'the signature is lower-case hex, compared exactly';
    ($res) = raw_webhook($sent->{raw}, 'X-Razorpay-Signature' => sign_webhook($sent->{raw}));
    is $res->code, 400, 'a signed delivery without an event id: 400';
    my $bad = '{"event": "payment.captured", ';
    ($res, $data) = raw_webhook($bad, 'X-Razorpay-Event-Id' => 'evtMalformed1',
                                'X-Razorpay-Signature' => sign_webhook($bad));
    is $res->code, 400, 'signed but not JSON: 400';
    is $data->{error}{code}, 'MALFORMED_JSON', '... MALFORMED_JSON';
    is event_rows('evtMalformed1'), 0, '... not stored';
    is payment_row($order->{payment_id})->{status}, 'created', 'still nothing changed';
}

# ---------------------------------------------------------------- a real delivery, twice
{
    my $sent = webhook(event => 'payment.captured', order_id => $order->{order_id});
    is $sent->{status}, 200, 'a signed payment.captured: 200';
    is bl_json($sent->{body})->{data}{result}, 'applied', '... applied';
    my $row = payment_row($order->{payment_id});
    is $row->{status}, 'captured', 'the payment is captured';
    is $row->{razorpay_payment_id}, $paid->{razorpay_payment_id}, '... by its Razorpay payment';
    my ($tier, $left) = tier_of($user->{id});
    is $tier, 'premium', 'the tier is upgraded';
    is outbox_count($user->{id}, 'payment.receipt'), 1, 'one receipt';
    is bl_psql_value(q{SELECT processed_at IS NOT NULL FROM payment_webhook_events WHERE event_id = $1},
                     $sent->{event_id}), 't', 'the event is stored as processed';

    my $again = redeliver($sent);
    is $again->{status}, 200, 'a redelivery: 200';
    is bl_json($again->{body})->{data}{result}, 'duplicate', '... recognised as a duplicate';
    is event_rows($sent->{event_id}), 1, '... stored once';
    is outbox_count($user->{id}, 'payment.receipt'), 1, '... no second receipt';
    is audit_count($order->{payment_id}, 'payment.captured'), 1, '... one capture audited';
    (undef, my $left2) = tier_of($user->{id});
    ok abs($left2 - $left) < 5, '... and no second month';

    # A new event about the same payment (another id): nothing to change.
    my $other = webhook(event => 'order.paid', order_id => $order->{order_id});
    is bl_json($other->{body})->{data}{result}, 'ignored', 'order.paid after the capture: ignored';
}

# ---------------------------------------------------------------- out of order
{
    my $late_fail = checkout($order->{order_id}, status => 'failed');
    my $sent = webhook(event => 'payment.failed', payment_id => $late_fail->{razorpay_payment_id});
    is $sent->{status}, 200, 'a late payment.failed: 200';
    is bl_json($sent->{body})->{data}{result}, 'ignored', '... ignored';
    is payment_row($order->{payment_id})->{status}, 'captured', '... the payment stays captured';
    $sent = webhook(event => 'payment.authorized', payment_id => $paid->{razorpay_payment_id});
    is payment_row($order->{payment_id})->{status}, 'captured', 'a late payment.authorized changes nothing';

    # Failed first, then paid on a second attempt: failed -> captured.
    my $o2 = new_order($user);
    my $declined = checkout($o2->{order_id}, status => 'failed');
    webhook(event => 'payment.failed', payment_id => $declined->{razorpay_payment_id});
    is payment_row($o2->{payment_id})->{status}, 'failed', 'payment.failed: failed';
    is bl_psql_value(q{SELECT failure_reason FROM payments WHERE id = $1}, $o2->{payment_id}),
        'Payment failed because the card was declined', '... with the reason';
    my $retry = checkout($o2->{order_id});
    webhook(event => 'payment.authorized', payment_id => $retry->{razorpay_payment_id});
    is payment_row($o2->{payment_id})->{status}, 'authorized', 'a second attempt: authorized';
    webhook(event => 'payment.captured', payment_id => $retry->{razorpay_payment_id});
    is payment_row($o2->{payment_id})->{status}, 'captured', '... then captured';

    # Captured before authorized arrives.
    my $o3 = new_order($user);
    my $p3 = checkout($o3->{order_id});
    webhook(event => 'payment.captured', payment_id => $p3->{razorpay_payment_id});
    webhook(event => 'payment.authorized', payment_id => $p3->{razorpay_payment_id});
    is payment_row($o3->{payment_id})->{status}, 'captured', 'authorized arriving after captured: still captured';

    # A payment whose amount is not the order's is not taken.
    my $o4 = new_order($user);
    my $short = checkout($o4->{order_id}, amount => 100);
    $sent = webhook(event => 'payment.captured', payment_id => $short->{razorpay_payment_id});
    is bl_json($sent->{body})->{data}{result}, 'ignored', 'a short payment.captured: ignored';
    is payment_row($o4->{payment_id})->{status}, 'created', '... not captured';
    is audit_count($o4->{payment_id}, 'payment.webhook_mismatch'), 1, '... and audited';
}

# ---------------------------------------------------------------- unknown events
{
    my $sent = webhook(event => 'invoice.paid', payload => { invoice => { entity => { id => 'inv_1' } } });
    is $sent->{status}, 200, 'an unknown event: 200';
    is bl_json($sent->{body})->{data}{result}, 'ignored', '... ignored';
    is bl_psql_value(q{SELECT event_type FROM payment_webhook_events WHERE event_id = $1}, $sent->{event_id}),
        'invoice.paid', '... and stored';
}

# ---------------------------------------------------------------- verify racing the webhook
{
    my $racer = pay_user();
    my @orders = map { my $o = new_order($racer); [ $o, checkout($o->{order_id}) ] } 1 .. 3;
    my @kids;
    for my $pair (@orders) {
        my ($o, $proof) = @$pair;
        for my $side (0, 1) {
            my $pid = fork // die "fork: $!";
            if (!$pid) {
                if ($side) { verify($racer, $proof) }
                else { webhook(event => 'payment.captured', payment_id => $proof->{razorpay_payment_id}) }
                POSIX::_exit(0);
            }
            push @kids, $pid;
        }
    }
    waitpid $_, 0 for @kids;
    my $captures = 0;
    $captures += audit_count($_->[0]{payment_id}, 'payment.captured') for @orders;
    is $captures, 3, 'verify-payment racing payment.captured: exactly one capture each';
    is outbox_count($racer->{id}, 'payment.receipt'), 3, '... one receipt each';
    my (undef, $left) = tier_of($racer->{id});
    ok $left > 89 * 86400 && $left <= 90 * 86400, '... and three months, not six';
    my ($res, $data) = verify($racer, $orders[0][1]);
    is $res->code, 200, 'verifying after the race: 200';
    is $data->{data}{payment}{status}, 'captured', '... captured';
}

# ---------------------------------------------------------------- refunds
{
    my $refunded = pay_user();
    my $o = new_order($refunded);
    my $p = checkout($o->{order_id});
    verify($refunded, $p);
    my $sent = webhook(event => 'refund.processed', payment_id => $p->{razorpay_payment_id}, amount => 100);
    is payment_row($o->{payment_id})->{status}, 'captured', 'a partial refund leaves the purchase';
    $sent = webhook(event => 'refund.processed', payment_id => $p->{razorpay_payment_id});
    is bl_json($sent->{body})->{data}{result}, 'applied', 'a full refund.processed: applied';
    is payment_row($o->{payment_id})->{status}, 'refunded', '... refunded';
    my ($tier) = tier_of($refunded->{id});
    is $tier, 'free', '... and the days bought are taken back';
    $sent = webhook(event => 'payment.captured', payment_id => $p->{razorpay_payment_id});
    is payment_row($o->{payment_id})->{status}, 'refunded', 'a late payment.captured does not undo a refund';
}

# ---------------------------------------------------------------- reconciliation
{
    my $closed = pay_user();
    my $o = new_order($closed);
    my $p = checkout($o->{order_id});           # paid, but the browser closed
    my $f = new_order($closed);
    checkout($f->{order_id}, status => 'failed');
    my $n = new_order($closed);                 # never paid at all
    my $young = new_order($closed);
    checkout($young->{order_id});               # paid a moment ago: not looked at yet
    bl_psql(q{UPDATE payments SET created_at = now() - interval '20 minutes' WHERE id IN ($1, $2, $3)},
            $o->{payment_id}, $f->{payment_id}, $n->{payment_id});
    my $st = wait_until(sub { payment_row($o->{payment_id})->{status} eq 'captured' && 'captured' }, 15);
    is $st, 'captured', 'reconciliation captured an order whose webhook never came';
    is payment_row($o->{payment_id})->{razorpay_payment_id}, $p->{razorpay_payment_id}, '... with its payment';
    my ($tier) = tier_of($closed->{id});
    is $tier, 'premium', '... and the tier';
    ok wait_until(sub { outbox_count($closed->{id}, 'payment.receipt') == 1 }, 5), '... and one receipt';
    is bl_psql_value(q{SELECT details->>'source' FROM audit_logs WHERE resource_id = $1
                       AND action = 'payment.captured'}, $o->{payment_id}), 'reconcile', '... audited as reconcile';
    ok wait_until(sub { payment_row($f->{payment_id})->{status} eq 'failed' }, 10), 'an order with only a failed payment: failed';
    ok wait_until(sub { bl_psql_value(q{SELECT reconcile_checked_at IS NOT NULL FROM payments WHERE id = $1},
                                      $n->{payment_id}) eq 't' }, 10), 'an unpaid order was looked at';
    is payment_row($n->{payment_id})->{status}, 'created', '... and stays created';
    is payment_row($young->{payment_id})->{status}, 'created', 'a young order is left to its webhook';
    my @looked = grep { $_->{path} eq "/v1/orders/$o->{order_id}/payments" } fake_requests();
    ok @looked && $looked[0]{auth_ok}, 'reconciliation asked Razorpay with Basic auth';
}

# ---------------------------------------------------------------- two passes at once
{
    my $u = pay_user();
    my @ids = map { new_order($u)->{payment_id} } 1 .. 6;
    my @files;
    my @kids;
    for my $k (1 .. 2) {
        my ($fh, $file) = tempfile(UNLINK => 1);
        close $fh;
        push @files, $file;
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my @rows = bl_psql(q{SELECT id FROM payment_reconcile_claim(0, 3600, 100)});
            open my $out, '>', $file or POSIX::_exit(1);
            print $out "$_->[0]\n" for @rows;
            close $out;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid $_, 0 for @kids;
    my (%seen, $twice);
    for my $file (@files) {
        open my $in, '<', $file or die;
        while (my $id = <$in>) { chomp $id; $twice++ if $seen{$id}++ }
    }
    ok !$twice, 'two reconciliation passes at once never claim the same order';
    is scalar(grep { $seen{$_} } @ids), 6, '... and between them claim every open order';
}

my $log = bl_error_log_since($log_mark);
unlike $log, qr/\Q$WEBHOOK_SECRET\E|\Q$KEY_SECRET\E|[0-9a-f]{64}/, 'no secret or signature in the error log';
is_deeply [ bl_error_log_crashes($log_mark) ], [], 'no httpd child crashed';

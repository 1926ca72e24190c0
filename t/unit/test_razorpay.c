/* The pure parts of mod_beautiful_payment: Razorpay signature checks
 * (vectors computed with Python's hmac module) and the webhook payload
 * reader (modules/payment/webhook_event.c). */
#include <string.h>

#include "razorpay_signature.h"
#include "webhook_event.h"
#include "unit.h"

#define KEY_SECRET "bl-test-razorpay-key-secret"

START_TEST(checkout_signature)
{
    static const char msg[] = "order_9A33XWu170gUtm|pay_29QQoUBi66xm2f";
    static const char sig[] = "f567c649caffa10efa921ceb52aaf74f5de5de602033bbabfd272fe2b5ae1b78";

    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg), sig), 1);
    /* Another secret, another message, a changed digit: refused. */
    ck_assert_int_eq(payment_signature_ok("other", msg, strlen(msg), sig), 0);
    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg) - 1, sig), 0);
    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg),
        "f567c649caffa10efa921ceb52aaf74f5de5de602033bbabfd272fe2b5ae1b79"), 0);
}
END_TEST

START_TEST(subscription_signature)
{
    static const char msg[] = "pay_29QQoUBi66xm2f|sub_00000000000001";

    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg),
        "d5a91e3e43708b9afe55538e7be14798e38867de8b3ce46e1ba20b5193be4a37"), 1);
}
END_TEST

START_TEST(webhook_signature_over_raw_bytes)
{
    static const char body[] = "{\"event\":\"payment.captured\"}";

    ck_assert_int_eq(payment_signature_ok("bl-test-webhook-secret", body, strlen(body),
        "912ca73fa65fb1ff5cc99ca035e7033b7327fdf287aa8b15ffbc8f3d3d810ced"), 1);
}
END_TEST

START_TEST(malformed_signatures)
{
    static const char msg[] = "order_9A33XWu170gUtm|pay_29QQoUBi66xm2f";
    static const char upper[] = "F567C649CAFFA10EFA921CEB52AAF74F5DE5DE602033BBABFD272FE2B5AE1B78";

    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg), upper), 0);
    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg), ""), 0);
    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg), "f567"), 0);
    ck_assert_int_eq(payment_signature_ok(KEY_SECRET, msg, strlen(msg), NULL), 0);
    ck_assert_int_eq(payment_signature_ok(NULL, msg, strlen(msg), upper), 0);
}
END_TEST

START_TEST(payment_event)
{
    static const char body[] =
        "{\"entity\":\"event\",\"event\":\"payment.captured\",\"created_at\":1767225600,"
        "\"payload\":{\"payment\":{\"entity\":{\"id\":\"pay_29QQoUBi66xm2f\",\"amount\":49900,"
        "\"currency\":\"INR\",\"status\":\"captured\",\"order_id\":\"order_9A33XWu170gUtm\","
        "\"error_description\":null}}}}";
    bl_webhook_event ev;
    const char *err = NULL;

    ck_assert_int_eq(bl_webhook_event_parse(pool, body, strlen(body), &ev, &err), 0);
    ck_assert_str_eq(ev.event, "payment.captured");
    ck_assert_int_eq(ev.created_at, 1767225600);
    ck_assert_str_eq(ev.payment_id, "pay_29QQoUBi66xm2f");
    ck_assert_str_eq(ev.payment_order_id, "order_9A33XWu170gUtm");
    ck_assert_str_eq(ev.payment_status, "captured");
    ck_assert_str_eq(ev.payment_currency, "INR");
    ck_assert_int_eq(ev.payment_amount, 49900);
    ck_assert_ptr_null(ev.payment_error);
    ck_assert_ptr_null(ev.subscription_id);
    ck_assert_int_eq(ev.refund_amount, -1);
}
END_TEST

START_TEST(subscription_and_refund_events)
{
    static const char sub[] =
        "{\"event\":\"subscription.charged\",\"payload\":{\"subscription\":{\"entity\":"
        "{\"id\":\"sub_1\",\"status\":\"active\",\"current_start\":10,\"current_end\":20}}}}";
    static const char refund[] =
        "{\"event\":\"refund.processed\",\"payload\":{\"refund\":{\"entity\":"
        "{\"payment_id\":\"pay_a\",\"amount\":100}}}}";
    bl_webhook_event ev;
    const char *err = NULL;

    ck_assert_int_eq(bl_webhook_event_parse(pool, sub, strlen(sub), &ev, &err), 0);
    ck_assert_str_eq(ev.subscription_id, "sub_1");
    ck_assert_str_eq(ev.subscription_status, "active");
    ck_assert_int_eq(ev.subscription_start, 10);
    ck_assert_int_eq(ev.subscription_end, 20);
    ck_assert_int_eq(ev.created_at, -1);
    ck_assert_int_eq(bl_webhook_event_parse(pool, refund, strlen(refund), &ev, &err), 0);
    ck_assert_str_eq(ev.refund_payment_id, "pay_a");
    ck_assert_int_eq(ev.refund_amount, 100);
}
END_TEST

START_TEST(hostile_fields_are_absent)
{
    static const char body[] =
        "{\"event\":\"payment.captured\",\"payload\":{\"payment\":{\"entity\":"
        "{\"id\":\"pay_<script>\",\"order_id\":12,\"amount\":\"49900\",\"currency\":\"INRR\"}}}}";
    bl_webhook_event ev;
    const char *err = NULL;

    ck_assert_int_eq(bl_webhook_event_parse(pool, body, strlen(body), &ev, &err), 0);
    ck_assert_ptr_null(ev.payment_id);
    ck_assert_ptr_null(ev.payment_order_id);
    ck_assert_ptr_null(ev.payment_currency);
    ck_assert_int_eq(ev.payment_amount, -1);
}
END_TEST

START_TEST(refused_payloads)
{
    static const char *const bad[] = {
        "", "[]", "{}", "{\"event\":\"\"}", "{\"event\":42}", "{\"event\":\"x\"", "null",
        NULL
    };
    bl_webhook_event ev;
    const char *err;
    int i;

    for (i = 0; bad[i]; i++) {
        err = NULL;
        ck_assert_int_eq(bl_webhook_event_parse(pool, bad[i], strlen(bad[i]), &ev, &err), -1);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("razorpay");
    TCase *tc = unit_tcase("core");

    tcase_add_test(tc, checkout_signature);
    tcase_add_test(tc, subscription_signature);
    tcase_add_test(tc, webhook_signature_over_raw_bytes);
    tcase_add_test(tc, malformed_signatures);
    tcase_add_test(tc, payment_event);
    tcase_add_test(tc, subscription_and_refund_events);
    tcase_add_test(tc, hostile_fields_are_absent);
    tcase_add_test(tc, refused_payloads);
    suite_add_tcase(s, tc);
    return s;
}

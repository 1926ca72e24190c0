/* Reading a Razorpay webhook payload: {"event", "created_at", "payload":
 * {"payment": {"entity": {...}}, "order": ..., "refund": ...,
 * "subscription": ...}}. Anything mistyped is treated as absent; the
 * handler decides what an absent field means for each event. */
#include "webhook_event.h"
#include "json.h"

#include <string.h>

static json_object *member(json_object *o, const char *name)
{
    json_object *v = NULL;

    if (!o || !json_object_is_type(o, json_type_object)
        || !json_object_object_get_ex(o, name, &v))
        return NULL;
    return v;
}

/* payload.<name>.entity, or NULL. */
static json_object *entity(json_object *root, const char *name)
{
    json_object *e = member(member(member(root, "payload"), name), "entity");

    return e && json_object_is_type(e, json_type_object) ? e : NULL;
}

static const char *text(json_object *o, const char *name, size_t max)
{
    json_object *v = member(o, name);
    const char *s;

    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    s = json_object_get_string(v);
    if (!s || !*s || strlen(s) > max || strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

static int id_chars(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '_'))
            return 0;
    return 1;
}

static const char *id(json_object *o, const char *name)
{
    const char *s = text(o, name, 100);

    return s && id_chars(s) ? s : NULL;
}

static int64_t integer(json_object *o, const char *name)
{
    json_object *v = member(o, name);
    int64_t n;

    if (!v || !json_object_is_type(v, json_type_int))
        return -1;
    n = json_object_get_int64(v);
    return n >= 0 ? n : -1;
}

int bl_webhook_event_parse(apr_pool_t *p, const char *body, size_t len,
                           bl_webhook_event *ev, const char **err)
{
    json_object *root, *payment, *order, *refund, *sub;

    memset(ev, 0, sizeof(*ev));
    root = bl_json_parse_object(p, body, len, BL_JSON_DEFAULT_MAX_DEPTH, err);
    if (!root)
        return -1;
    ev->event = text(root, "event", 100);
    if (!ev->event) {
        *err = "event must be a string of 1 to 100 characters";
        return -1;
    }
    ev->created_at = integer(root, "created_at");
    payment = entity(root, "payment");
    ev->payment_id = id(payment, "id");
    ev->payment_order_id = id(payment, "order_id");
    ev->payment_status = text(payment, "status", 50);
    ev->payment_currency = text(payment, "currency", 3);
    ev->payment_error = text(payment, "error_description", 500);
    ev->payment_amount = integer(payment, "amount");
    order = entity(root, "order");
    ev->order_id = id(order, "id");
    refund = entity(root, "refund");
    ev->refund_payment_id = id(refund, "payment_id");
    ev->refund_amount = integer(refund, "amount");
    sub = entity(root, "subscription");
    ev->subscription_id = id(sub, "id");
    ev->subscription_status = text(sub, "status", 50);
    ev->subscription_start = integer(sub, "current_start");
    ev->subscription_end = integer(sub, "current_end");
    return 0;
}

/* GET and PUT /notifications/preferences: channels on or off, the channels
 * of each type, quiet hours in the user's zone, the phone number for SMS.
 * Applied by the worker at delivery time (delivery.c); urgent types
 * (security.*, medical.emergency_access, community.report_self_harm and
 * the account mails) ignore them. PUT is partial: what is absent stays. */
#include "notify_private.h"
#include "json.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <ctype.h>
#include <string.h>

static const char *const channels[] = {"email", "sms", "push", "in_app", NULL};

static const char *const known_types[] = {
    "auth.verify_email", "auth.password_reset",
    "reminder.due", "reminder.nag", "reminder.missed", "reminder.refill",
    "reminder.care_circle_invite",
    "community.invitation", "community.join_request", "community.join_approved",
    "community.report_self_harm", "community.post_removed", "community.author_warned",
    "community.comment_reply",
    "chat.message", "video.reminder", "video.changed", "video.cancelled",
    "medical.shared", "medical.emergency_access",
    "payment.receipt", "payment.subscription", NULL
};

int notify_known_type(const char *type)
{
    const char *p;

    if (bl_valid_enum(type, known_types))
        return 1;
    if (strncmp(type, "security.", 9) != 0 || !type[9] || strlen(type) > 100)
        return 0;
    for (p = type + 9; *p; p++)
        if (!islower((unsigned char)*p) && *p != '_' && *p != '.')
            return 0;
    return 1;
}

#define SQL_GET \
    "SELECT json_build_object(" \
    " 'channels', json_build_object(" \
    "  'email', COALESCE((p.channels->>'email')::boolean, true)," \
    "  'sms', COALESCE((p.channels->>'sms')::boolean, true)," \
    "  'push', COALESCE((p.channels->>'push')::boolean, true)," \
    "  'in_app', COALESCE((p.channels->>'in_app')::boolean, true))," \
    " 'types', COALESCE(p.types, '{}'::jsonb)," \
    " 'quiet_hours', CASE WHEN p.quiet_start IS NOT NULL THEN json_build_object(" \
    "  'start', to_char(p.quiet_start, 'HH24:MI'), 'end', to_char(p.quiet_end, 'HH24:MI')," \
    "  'timezone', p.timezone) END," \
    " 'phone', p.phone)::text" \
    " FROM (SELECT %s::uuid AS uid) a LEFT JOIN notification_preferences p ON p.user_id = a.uid"

/* Modes: 'keep' (absent), 'clear' (null), 'set'. A type mapped to null
 * goes back to the default (every channel). */
#define SQL_PUT \
    "WITH a AS (SELECT %s::uuid AS uid, %s::jsonb AS channels, %s::jsonb AS types," \
    " %s::text AS quiet_mode, %s::time AS qs, %s::time AS qe, %s::text AS tz," \
    " %s::text AS phone_mode, %s::text AS phone)" \
    " INSERT INTO notification_preferences AS p" \
    "  (user_id, channels, types, quiet_start, quiet_end, timezone, phone)" \
    " SELECT uid, COALESCE(channels, '{}'), jsonb_strip_nulls(COALESCE(types, '{}'))," \
    "  CASE WHEN quiet_mode = 'set' THEN qs END, CASE WHEN quiet_mode = 'set' THEN qe END," \
    "  COALESCE(tz, 'UTC'), CASE WHEN phone_mode = 'set' THEN phone END FROM a" \
    " ON CONFLICT (user_id) DO UPDATE SET" \
    "  channels = p.channels || COALESCE((SELECT channels FROM a), '{}')," \
    "  types = jsonb_strip_nulls(p.types || COALESCE((SELECT types FROM a), '{}'))," \
    "  quiet_start = CASE (SELECT quiet_mode FROM a) WHEN 'set' THEN (SELECT qs FROM a)" \
    "   WHEN 'clear' THEN NULL ELSE p.quiet_start END," \
    "  quiet_end = CASE (SELECT quiet_mode FROM a) WHEN 'set' THEN (SELECT qe FROM a)" \
    "   WHEN 'clear' THEN NULL ELSE p.quiet_end END," \
    "  timezone = COALESCE((SELECT tz FROM a), p.timezone)," \
    "  phone = CASE (SELECT phone_mode FROM a) WHEN 'set' THEN (SELECT phone FROM a)" \
    "   WHEN 'clear' THEN NULL ELSE p.phone END"

#define SQL_VALID_ZONE "SELECT CASE WHEN is_valid_timezone(%s) THEN 't' ELSE 'f' END"

const bl_statement notify_preference_statements[] = {
    {"notify_prefs_get", SQL_GET},
    {"notify_prefs_put", SQL_PUT},
    {"notify_valid_zone", SQL_VALID_ZONE},
    {NULL, NULL}
};

int notify_get_preferences(request_rec *r, apr_table_t *params)
{
    const char *args[1] = {bl_current_user(r)->id}, *json = NULL;
    ap_dbd_t *db = bl_db(r);

    if (!db || bl_db_value(r, db, "notify_prefs_get", 1, args, &json) != APR_SUCCESS)
        return OK;
    return bl_send_data(r, HTTP_OK, NULL, json, NULL);
}

/* ---------------------------------------------------------------- validation */

typedef struct {
    const char *channels;      /* JSON text or NULL */
    const char *types;
    const char *quiet_mode;    /* keep | clear | set */
    const char *quiet_start, *quiet_end, *timezone;
    const char *phone_mode;
    const char *phone;
} pref_change;

static int read_channels(request_rec *r, json_object *v, pref_change *ch)
{
    json_object *out;

    if (!json_object_is_type(v, json_type_object))
        return bl_send_validation_error(r, "channels", "channels must be an object"), -1;
    out = json_object_new_object();
    json_object_object_foreach(v, key, val) {
        const char *field = apr_pstrcat(r->pool, "channels.", key, NULL);

        if (!bl_valid_enum(key, channels))
            return bl_send_validation_error(r, field,
                                            apr_pstrcat(r->pool, "unknown channel: ", key,
                                                        " (email, sms, push, in_app)", NULL)),
                   json_object_put(out), -1;
        if (!json_object_is_type(val, json_type_boolean))
            return bl_send_validation_error(r, field,
                                            apr_pstrcat(r->pool, field, " must be true or false",
                                                        NULL)), json_object_put(out), -1;
        json_object_object_add(out, key, json_object_new_boolean(json_object_get_boolean(val)));
    }
    ch->channels = bl_json_to_string(r->pool, out);
    json_object_put(out);
    return 0;
}

/* One type's channel list: an array of distinct known channels. */
static json_object *read_type_channels(request_rec *r, const char *field, json_object *val)
{
    json_object *out;
    size_t i, j, n;

    if (json_object_is_type(val, json_type_null))
        return NULL;   /* back to the default */
    if (!json_object_is_type(val, json_type_array))
        return bl_send_validation_error(r, field,
                                        apr_pstrcat(r->pool, field,
                                                    " must be a list of channels or null", NULL)),
               (json_object *)-1;
    n = json_object_array_length(val);
    out = json_object_new_array();
    for (i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(val, i);
        const char *name = json_object_is_type(c, json_type_string) ? json_object_get_string(c)
                                                                   : NULL;
        if (!name || !bl_valid_enum(name, channels)) {
            json_object_put(out);
            return bl_send_validation_error(r, field,
                                            apr_pstrcat(r->pool, field, ": unknown channel",
                                                        " (email, sms, push, in_app)", NULL)),
                   (json_object *)-1;
        }
        for (j = 0; j < i; j++)
            if (strcmp(name, json_object_get_string(json_object_array_get_idx(val, j))) == 0)
                break;
        if (j == i)
            json_object_array_add(out, json_object_new_string(name));
    }
    return out;
}

static int read_types(request_rec *r, json_object *v, pref_change *ch)
{
    json_object *out;

    if (!json_object_is_type(v, json_type_object))
        return bl_send_validation_error(r, "types", "types must be an object"), -1;
    out = json_object_new_object();
    json_object_object_foreach(v, key, val) {
        const char *field = apr_pstrcat(r->pool, "types.", key, NULL);
        json_object *list;

        if (!notify_known_type(key))
            return bl_send_validation_error(r, field,
                                            apr_pstrcat(r->pool, "unknown notification type: ",
                                                        key, NULL)), json_object_put(out), -1;
        list = read_type_channels(r, field, val);
        if (list == (json_object *)-1)
            return json_object_put(out), -1;
        json_object_object_add(out, key, list);   /* NULL: JSON null */
    }
    ch->types = bl_json_to_string(r->pool, out);
    json_object_put(out);
    return 0;
}

/* "HH:MM", 00:00 to 23:59. */
static int valid_hhmm(const char *s)
{
    return strlen(s) == 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1])
           && s[2] == ':' && isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4])
           && (s[0] - '0') * 10 + (s[1] - '0') < 24 && s[3] < '6';
}

static int valid_zone(request_rec *r, const char *tz)
{
    const char *args[1] = {tz}, *ok = NULL;
    ap_dbd_t *db = bl_db(r);

    if (!db || bl_db_value(r, db, "notify_valid_zone", 1, args, &ok) != APR_SUCCESS)
        return -1;
    if (!ok || strcmp(ok, "t") != 0)
        return bl_send_validation_error(r, "quiet_hours.timezone",
                                        "quiet_hours.timezone must be an IANA time zone "
                                        "such as Asia/Kolkata"), -1;
    return 0;
}

static int read_quiet_hours(request_rec *r, json_object *v, pref_change *ch)
{
    static const char *const allowed[] = {"start", "end", "timezone", NULL};
    const char *err = NULL;

    if (json_object_is_type(v, json_type_null)) {
        ch->quiet_mode = "clear";
        return 0;
    }
    if (!json_object_is_type(v, json_type_object))
        return bl_send_validation_error(r, "quiet_hours", "quiet_hours must be an object or null"),
               -1;
    if (notify_refuse_unknown(r, v, allowed, "quiet_hours.") != 0)
        return -1;
    if (bl_json_get_string(r->pool, v, "start", BL_REQUIRED, 1, 5, &ch->quiet_start, &err)
            != BL_FIELD_OK)
        return bl_send_validation_error(r, "quiet_hours.start",
                                        apr_pstrcat(r->pool, "quiet_hours.", err, NULL)), -1;
    if (!valid_hhmm(ch->quiet_start))
        return bl_send_validation_error(r, "quiet_hours.start",
                                        "quiet_hours.start must be HH:MM (00:00 to 23:59)"), -1;
    if (bl_json_get_string(r->pool, v, "end", BL_REQUIRED, 1, 5, &ch->quiet_end, &err)
            != BL_FIELD_OK)
        return bl_send_validation_error(r, "quiet_hours.end",
                                        apr_pstrcat(r->pool, "quiet_hours.", err, NULL)), -1;
    if (!valid_hhmm(ch->quiet_end))
        return bl_send_validation_error(r, "quiet_hours.end",
                                        "quiet_hours.end must be HH:MM (00:00 to 23:59)"), -1;
    if (strcmp(ch->quiet_start, ch->quiet_end) == 0)
        return bl_send_validation_error(r, "quiet_hours.end",
                                        "quiet_hours.start and end must differ"), -1;
    if (bl_json_get_string(r->pool, v, "timezone", BL_OPTIONAL, 1, 64, &ch->timezone, &err)
            == BL_FIELD_INVALID)
        return bl_send_validation_error(r, "quiet_hours.timezone",
                                        apr_pstrcat(r->pool, "quiet_hours.", err, NULL)), -1;
    if (ch->timezone && valid_zone(r, ch->timezone) != 0)
        return -1;
    ch->quiet_mode = "set";
    return 0;
}

/* E.164: "+" then 8 to 15 digits, the first not 0. */
static int valid_e164(const char *s)
{
    size_t n = strlen(s);

    return n >= 9 && n <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9'
           && strspn(s + 1, "0123456789") == n - 1;
}

static int read_phone(request_rec *r, json_object *v, pref_change *ch)
{
    if (json_object_is_type(v, json_type_null)) {
        ch->phone_mode = "clear";
        return 0;
    }
    if (!json_object_is_type(v, json_type_string) || !valid_e164(json_object_get_string(v)))
        return bl_send_validation_error(r, "phone",
                                        "phone must be an E.164 number such as +919812345678"),
               -1;
    ch->phone = apr_pstrdup(r->pool, json_object_get_string(v));
    ch->phone_mode = "set";
    return 0;
}

static int read_change(request_rec *r, pref_change *ch)
{
    static const char *const allowed[] = {"channels", "types", "quiet_hours", "phone", NULL};
    json_object *body = bl_read_json(r), *v;

    memset(ch, 0, sizeof(*ch));
    ch->quiet_mode = "keep";
    ch->phone_mode = "keep";
    if (!body || notify_refuse_unknown(r, body, allowed, NULL) != 0)
        return -1;
    if (json_object_object_get_ex(body, "channels", &v) && read_channels(r, v, ch) != 0)
        return -1;
    if (json_object_object_get_ex(body, "types", &v) && read_types(r, v, ch) != 0)
        return -1;
    if (json_object_object_get_ex(body, "quiet_hours", &v) && read_quiet_hours(r, v, ch) != 0)
        return -1;
    if (json_object_object_get_ex(body, "phone", &v) && read_phone(r, v, ch) != 0)
        return -1;
    return 0;
}

int notify_put_preferences(request_rec *r, apr_table_t *params)
{
    pref_change ch;
    const char *args[9];
    ap_dbd_t *db;

    if (read_change(r, &ch) != 0 || !(db = bl_db(r)))
        return OK;
    args[0] = bl_current_user(r)->id;
    args[1] = ch.channels;
    args[2] = ch.types;
    args[3] = ch.quiet_mode;
    args[4] = ch.quiet_start;
    args[5] = ch.quiet_end;
    args[6] = ch.timezone;
    args[7] = ch.phone_mode;
    args[8] = ch.phone;
    if (bl_db_exec(r, db, "notify_prefs_put", 9, args) < 0)
        return OK;
    return notify_get_preferences(r, params);
}

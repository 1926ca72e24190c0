/* POST /ai/analyze-symptoms and POST /ai/medication-check: structured
 * answers. The model is asked for JSON that fits a schema (response_format
 * json_schema, strict); what comes back is validated here before anyone
 * sees it. An answer that does not fit is asked for once more, then a
 * safe generic answer is given instead. Triage runs first, as for chat. */
#include "ai_private.h"
#include "json.h"
#include "validate.h"

#include <http_protocol.h>
#include <apr_strings.h>

#include <string.h>

#define ATTEMPTS 2

/* ---------------------------------------------------------------- schemas */

static const char symptoms_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"urgency\",\"possible_causes\",\"self_care\",\"when_to_call\",\"disclaimer\"],"
    "\"properties\":{"
    "\"urgency\":{\"type\":\"string\",\"enum\":[\"emergency\",\"urgent\",\"soon\",\"routine\"]},"
    "\"possible_causes\":{\"type\":\"array\",\"maxItems\":8,\"items\":{\"type\":\"string\"}},"
    "\"self_care\":{\"type\":\"array\",\"maxItems\":8,\"items\":{\"type\":\"string\"}},"
    "\"when_to_call\":{\"type\":\"string\"},"
    "\"disclaimer\":{\"type\":\"string\"}}}";

static const char medication_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"interactions\",\"ask_your_pharmacist\",\"disclaimer\"],"
    "\"properties\":{"
    "\"interactions\":{\"type\":\"array\",\"maxItems\":20,\"items\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"between\",\"severity\",\"explanation\"],"
    "\"properties\":{\"between\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":10,"
    "\"items\":{\"type\":\"string\"}},"
    "\"severity\":{\"type\":\"string\",\"enum\":[\"none\",\"minor\",\"moderate\",\"major\"]},"
    "\"explanation\":{\"type\":\"string\"}}}},"
    "\"ask_your_pharmacist\":{\"type\":\"string\"},"
    "\"disclaimer\":{\"type\":\"string\"}}}";

static const char *const urgencies[] = {"emergency", "urgent", "soon", "routine", NULL};
static const char *const severities[] = {"none", "minor", "moderate", "major", NULL};

/* ---------------------------------------------------------------- validation */

static int valid_text(json_object *v, size_t max_chars)
{
    const char *s;
    size_t len;

    if (!v || !json_object_is_type(v, json_type_string))
        return 0;
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    return len > 0 && strlen(s) == len && bl_valid_utf8(s, len) && bl_utf8_chars(s, len) <= max_chars;
}

static int valid_texts(json_object *v, size_t min, size_t max, size_t max_chars)
{
    size_t i, n;

    if (!v || !json_object_is_type(v, json_type_array))
        return 0;
    n = json_object_array_length(v);
    if (n < min || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if (!valid_text(json_object_array_get_idx(v, i), max_chars))
            return 0;
    return 1;
}

static int valid_enum(json_object *v, const char *const *allowed)
{
    return valid_text(v, 32) && bl_valid_enum(json_object_get_string(v), allowed);
}

/* Exactly the keys named (no more, none missing). */
static int has_exactly(json_object *o, const char *const *keys)
{
    int n = 0;

    if (!o || !json_object_is_type(o, json_type_object))
        return 0;
    for (; keys[n]; n++)
        if (!json_object_object_get_ex(o, keys[n], NULL))
            return 0;
    return json_object_object_length(o) == n;
}

static int valid_symptoms(json_object *o)
{
    static const char *const keys[] = {"urgency", "possible_causes", "self_care", "when_to_call",
                                       "disclaimer", NULL};

    return has_exactly(o, keys) && valid_enum(json_object_object_get(o, "urgency"), urgencies)
        && valid_texts(json_object_object_get(o, "possible_causes"), 0, 8, 500)
        && valid_texts(json_object_object_get(o, "self_care"), 0, 8, 500)
        && valid_text(json_object_object_get(o, "when_to_call"), 2000)
        && valid_text(json_object_object_get(o, "disclaimer"), 2000);
}

static int valid_medication(json_object *o)
{
    static const char *const keys[] = {"interactions", "ask_your_pharmacist", "disclaimer", NULL};
    static const char *const item_keys[] = {"between", "severity", "explanation", NULL};
    json_object *list;
    size_t i, n;

    if (!has_exactly(o, keys) || !valid_text(json_object_object_get(o, "ask_your_pharmacist"), 2000)
        || !valid_text(json_object_object_get(o, "disclaimer"), 2000))
        return 0;
    list = json_object_object_get(o, "interactions");
    if (!list || !json_object_is_type(list, json_type_array) || (n = json_object_array_length(list)) > 20)
        return 0;
    for (i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(list, i);
        if (!has_exactly(it, item_keys)
            || !valid_texts(json_object_object_get(it, "between"), 2, 10, 200)
            || !valid_enum(json_object_object_get(it, "severity"), severities)
            || !valid_text(json_object_object_get(it, "explanation"), 2000))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- the call */

typedef struct {
    const char *kind;                 /* ledger kind */
    const char *schema_name;
    const char *schema;
    const char *task;                 /* appended to the system prompt */
    int (*valid)(json_object *);
    json_object *(*fallback)(void);
} structured_task;

static json_object *symptoms_fallback(void)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "urgency", json_object_new_string("soon"));
    json_object_object_add(o, "possible_causes", json_object_new_array());
    json_object_object_add(o, "self_care", json_object_new_array());
    json_object_object_add(o, "when_to_call", json_object_new_string(
        "We could not prepare a reliable answer. Please contact your care team today to describe "
        "these symptoms, and call your local emergency number at once if they get worse or you "
        "feel very unwell."));
    return o;
}

static json_object *medication_fallback(void)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "interactions", json_object_new_array());
    json_object_object_add(o, "ask_your_pharmacist", json_object_new_string(
        "We could not check these medicines reliably. Please ask your pharmacist or oncology team "
        "before taking them together."));
    return o;
}

static const structured_task symptoms_task = {
    "symptom_analysis", "symptom_assessment", symptoms_schema,
    "Task: assess the symptoms the person describes. Answer only with a JSON object that fits "
    "the given schema: urgency (emergency, urgent, soon or routine), possible_causes, self_care, "
    "when_to_call and a disclaimer that you are not a clinician.",
    valid_symptoms, symptoms_fallback
};

static const structured_task medication_task = {
    "medication_check", "medication_interactions", medication_schema,
    "Task: check the listed medicines for interactions with each other and answer the person's "
    "question. Answer only with a JSON object that fits the given schema: interactions (each "
    "between two or more of the medicines, with a severity of none, minor, moderate or major, "
    "and an explanation), ask_your_pharmacist and a disclaimer that you are not a pharmacist.",
    valid_medication, medication_fallback
};

/* Sends data with the server's disclaimer and where the answer came from. */
static int send_structured(request_rec *r, json_object *data, const char *source)
{
    json_object_object_add(data, "disclaimer", json_object_new_string(ai_disclaimer));
    json_object_object_add(data, "source", json_object_new_string(source));
    return ai_send_object(r, HTTP_OK, NULL, data);
}

/* Quota, then up to ATTEMPTS calls until one answer validates; each call
 * leaves its ledger row. */
static int run_task(request_rec *r, ap_dbd_t *db, const bl_user *user, const ai_person *who,
                    const structured_task *task, const char *prompt)
{
    const ai_conf *c = ai_config(r);
    const char *tier, *sent = ai_redact(r, who, prompt);
    json_object *messages;
    int attempt;

    if (!ai_configured(c))
        return ai_send_not_configured(r);
    if (ai_breaker_check(r) != 0 || ai_quota_take(r, db, user->id, &tier) != 0)
        return OK;
    messages = json_object_new_array();
    {
        json_object *sys = json_object_new_object(), *u = json_object_new_object();
        json_object_object_add(sys, "role", json_object_new_string("system"));
        json_object_object_add(sys, "content", json_object_new_string(
            apr_pstrcat(r->pool, ai_system_prompt, "\n\n", task->task, NULL)));
        json_object_object_add(u, "role", json_object_new_string("user"));
        json_object_object_add(u, "content", json_object_new_string(sent));
        json_object_array_add(messages, sys);
        json_object_array_add(messages, u);
    }
    for (attempt = 1; attempt <= ATTEMPTS; attempt++) {
        ai_answer answer;
        ai_ledger_entry entry = {task->kind, sent, NULL, c->model, NULL, "none", &answer};
        json_object *parsed = NULL;
        const char *err = NULL;

        ai_complete(r, messages, task->schema_name, task->schema, NULL, NULL, &answer);
        if (answer.content) {
            parsed = bl_json_parse_object(r->pool, answer.content, strlen(answer.content), 0, &err);
            if (!parsed || !task->valid(parsed)) {
                parsed = NULL;
                answer.error = "answer does not fit the schema";
            }
        }
        entry.response = answer.content;
        if (ai_ledger_write(r, db, user->id, &entry) != 0) {
            json_object_put(messages);
            return OK;
        }
        if (parsed) {
            json_object_put(messages);
            return send_structured(r, json_object_get(parsed), "model");
        }
        if (!answer.content) {
            /* The provider failed (already retried): nothing to validate. */
            json_object_put(messages);
            ai_quota_give_back(r, user->id);
            return ai_send_unavailable(r, &answer);
        }
    }
    json_object_put(messages);
    return send_structured(r, task->fallback(), "fallback");
}

/* A red flag: the emergency guidance in the route's own shape. */
static int send_triaged(request_rec *r, ap_dbd_t *db, const bl_user *user, const ai_person *who,
                        const char *kind, const char *prompt, const ai_rule *rule,
                        json_object *data, const char *guidance_field)
{
    json_object *triage = ai_triage_json(r, rule, who->country), *line;
    const char *text = rule->guidance;
    ai_ledger_entry entry = {kind, ai_redact(r, who, prompt), NULL, NULL, NULL, rule->id, NULL};

    if (json_object_object_get_ex(triage, "crisis_line", &line))
        text = apr_pstrcat(r->pool, text, "\n\n", json_object_get_string(line), NULL);
    entry.response = text;
    if (ai_ledger_write(r, db, user->id, &entry) != 0) {
        json_object_put(triage);
        json_object_put(data);
        return OK;
    }
    json_object_object_add(data, "urgency", json_object_new_string("emergency"));
    json_object_object_add(data, guidance_field, json_object_new_string(text));
    json_object_object_add(data, "triage", triage);
    return send_structured(r, data, "triage");
}

/* ---------------------------------------------------------------- routes */

int ai_analyze_symptoms(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"symptoms", "description", "duration", "temperature_c",
                                          NULL};
    const ai_conf *c = ai_config(r);
    const bl_user *user;
    json_object *body, *temp;
    const char **symptoms, *description = NULL, *duration = NULL, *err = NULL, *prompt;
    double temperature = -1;
    int n, i;
    ap_dbd_t *db;
    ai_person who;
    const ai_rule *rule;

    if (!(user = bl_require_user(r)) || !(body = bl_read_json(r)) || ai_refuse_unknown(r, body, allowed))
        return OK;
    if ((n = ai_read_string_array(r, body, "symptoms", 20, 200, &symptoms)) < 0)
        return OK;
    if (n == 0)
        return bl_send_validation_error(r, "symptoms", "symptoms is required");
    if (bl_json_get_string(r->pool, body, "description", BL_OPTIONAL, 0, 4000, &description, &err)
            == BL_FIELD_INVALID
        || bl_json_get_string(r->pool, body, "duration", BL_OPTIONAL, 0, 100, &duration, &err)
            == BL_FIELD_INVALID)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, err, NULL);
    if (json_object_object_get_ex(body, "temperature_c", &temp) && temp) {
        if (!json_object_is_type(temp, json_type_double) && !json_object_is_type(temp, json_type_int))
            return bl_send_validation_error(r, "temperature_c", "temperature_c must be a number");
        temperature = json_object_get_double(temp);
        if (temperature < 30 || temperature > 45)
            return bl_send_validation_error(r, "temperature_c",
                                            "temperature_c must be between 30 and 45");
    }
    prompt = apr_pstrcat(r->pool, "Symptoms: ", symptoms[0], NULL);
    for (i = 1; i < n; i++)
        prompt = apr_pstrcat(r->pool, prompt, "; ", symptoms[i], NULL);
    if (description && *description)
        prompt = apr_pstrcat(r->pool, prompt, "\nDescription: ", description, NULL);
    if (duration && *duration)
        prompt = apr_pstrcat(r->pool, prompt, "\nDuration: ", duration, NULL);
    if (temperature >= 0)
        prompt = apr_psprintf(r->pool, "%s\nTemperature: %.1f °C", prompt, temperature);
    if (!(db = bl_db(r)) || ai_load_person(r, db, user->id, &who) != 0)
        return OK;
    if ((rule = ai_triage(r->pool, c->rules, prompt, temperature))) {
        json_object *data = json_object_new_object();
        json_object_object_add(data, "possible_causes", json_object_new_array());
        json_object_object_add(data, "self_care", json_object_new_array());
        return send_triaged(r, db, user, &who, "symptom_analysis", prompt, rule, data,
                            "when_to_call");
    }
    return run_task(r, db, user, &who, &symptoms_task, prompt);
}

/* The medication names of the caller's active reminders. */
static int my_medications(request_rec *r, ap_dbd_t *db, const char *user_id, const char ***out)
{
    const char *args[1] = {user_id};
    apr_dbd_results_t *res = bl_db_select(r, db, AI_SQL_MEDICATIONS, 1, args);
    apr_array_header_t *list;
    apr_dbd_row_t *row = NULL;

    if (!res)
        return -1;
    list = apr_array_make(r->pool, 8, sizeof(const char *));
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0)
        /* Copied: reading past the last row frees the result. */
        APR_ARRAY_PUSH(list, const char *) = apr_pstrdup(r->pool, bl_db_get(r, db, row, 0));
    APR_ARRAY_PUSH(list, const char *) = NULL;
    *out = (const char **)list->elts;
    return list->nelts - 1;
}

int ai_medication_check(request_rec *r, apr_table_t *params)
{
    static const char *const allowed[] = {"medications", "question", "use_my_data", NULL};
    const ai_conf *c = ai_config(r);
    const bl_user *user;
    json_object *body;
    const char **meds, *question = NULL, *err = NULL, *prompt;
    int n, i, use_my_data = 0;
    ap_dbd_t *db;
    ai_person who;
    const ai_rule *rule;

    if (!(user = bl_require_user(r)) || !(body = bl_read_json(r)) || ai_refuse_unknown(r, body, allowed))
        return OK;
    if ((n = ai_read_string_array(r, body, "medications", 30, 200, &meds)) < 0)
        return OK;
    if (bl_json_get_string(r->pool, body, "question", BL_OPTIONAL, 0, 2000, &question, &err)
            == BL_FIELD_INVALID
        || bl_json_get_bool(r->pool, body, "use_my_data", BL_OPTIONAL, &use_my_data, &err)
            == BL_FIELD_INVALID)
        return bl_send_error(r, HTTP_BAD_REQUEST, BL_ERR_VALIDATION, err, NULL);
    question = question ? apr_pstrdup(r->pool, question) : NULL;
    if (!(db = bl_db(r)) || ai_load_person(r, db, user->id, &who) != 0)
        return OK;
    if (question && (rule = ai_triage(r->pool, c->rules, question, -1))) {
        json_object *data = json_object_new_object();
        json_object_object_add(data, "interactions", json_object_new_array());
        return send_triaged(r, db, user, &who, "medication_check", question, rule, data,
                            "ask_your_pharmacist");
    }
    if (n == 0) {
        /* My reminders' medicines are my data: only with use_my_data. */
        if (!use_my_data)
            return bl_send_validation_error(r, "medications", "medications is required unless "
                                            "use_my_data is true (then your reminders' medicines "
                                            "are checked)");
        if ((n = my_medications(r, db, user->id, &meds)) < 0)
            return OK;
        if (n == 0)
            return bl_send_validation_error(r, "medications", "no medicines in your reminders: "
                                            "list them in medications");
    }
    prompt = apr_pstrcat(r->pool, "Medicines: ", meds[0], NULL);
    for (i = 1; i < n; i++)
        prompt = apr_pstrcat(r->pool, prompt, "; ", meds[i], NULL);
    if (question && *question)
        prompt = apr_pstrcat(r->pool, prompt, "\nQuestion: ", question, NULL);
    return run_task(r, db, user, &who, &medication_task, prompt);
}

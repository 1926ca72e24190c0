/* Internal interfaces between the files of mod_beautiful_ai.
 * Only the module structure is exported from the .so (Makefile.inc). */
#ifndef BL_AI_PRIVATE_H
#define BL_AI_PRIVATE_H

#include "beautiful.h"
#include <apr_hash.h>
#include <apr_tables.h>
#include <ap_regex.h>

extern module AP_MODULE_DECLARE_DATA beautiful_ai_module;

/* Error codes of this module (docs/openapi.yaml). */
#define AI_ERR_NOT_CONFIGURED  "AI_NOT_CONFIGURED"
#define AI_ERR_UNAVAILABLE     "AI_UNAVAILABLE"
#define AI_ERR_QUOTA           "AI_QUOTA_EXCEEDED"

/* ---------------------------------------------------------------- triage */

/* One red-flag rule (BeautifulAITriageRules, data/ai-triage-rules.json):
 * it fires when every group has a matching pattern, no "unless" pattern
 * matches and, when min_temperature_c is set, a temperature at least that
 * high is given. */
typedef struct {
    const char *id;
    const char *guidance;
    int crisis_line;                  /* add the country's crisis line */
    double min_temperature_c;         /* 0: none needed */
    apr_array_header_t *groups;       /* of apr_array_header_t * of ap_regex_t * */
    apr_array_header_t *unless;       /* of ap_regex_t * */
} ai_rule;

typedef struct {
    apr_array_header_t *rules;        /* of ai_rule, in file order */
} ai_rules;

/* Loads and compiles the rules file; NULL and *err on failure. */
ai_rules *ai_rules_load(apr_pool_t *p, const char *path, const char **err);

/* The first rule that fires for text (any case), with temperature_c a
 * measured temperature (< 0: none given; the text is searched too), or
 * NULL. */
const ai_rule *ai_triage(apr_pool_t *p, const ai_rules *rules, const char *text,
                         double temperature_c);

/* ---------------------------------------------------------------- config */

typedef struct {
    const char *model;
    double input_per_million;
    double output_per_million;
} ai_price;

typedef struct {
    const char *url;                  /* BeautifulAIURL: base; "" = explicitly none */
    const char *api_key;              /* BeautifulAIKey */
    const char *model;                /* BeautifulAIModel */
    apr_interval_time_t connect_timeout, timeout;  /* BeautifulAITimeout */
    apr_interval_time_t deadline;     /* BeautifulAIDeadline: all attempts */
    int max_attempts;                 /* BeautifulAIAttempts */
    apr_hash_t *quotas;               /* BeautifulAIQuota: tier -> int * */
    apr_array_header_t *prices;       /* BeautifulAIPrice: of ai_price */
    ai_rules *rules;                  /* BeautifulAITriageRules */
    apr_hash_t *crisis_lines;         /* BeautifulAICrisisLine: lower-cased country -> text */
    int history_tokens;               /* BeautifulAIHistoryTokens */
    int max_tokens;                   /* BeautifulAIMaxTokens: per answer */
    int breaker_failures;             /* BeautifulAIBreaker failures window open */
    int breaker_window;
    int breaker_open;
    int settings_set;                 /* a timeout or attempts directive was given */
} ai_conf;

const ai_conf *ai_config(const request_rec *r);
/* True when URL and model are set: the routes that need the model work. */
int ai_configured(const ai_conf *c);
/* The server's disclaimer, carried by every answer. */
extern const char ai_disclaimer[];

/* ---------------------------------------------------------------- routes */

typedef int ai_route_fn(request_rec *r, apr_table_t *params);

ai_route_fn ai_chat, ai_list_conversations, ai_get_conversation, ai_delete_conversation,
    ai_analyze_symptoms, ai_medication_check, ai_insights, ai_usage;

/* ---------------------------------------------------------------- SQL */

extern const bl_statement ai_statements[];

#define AI_SQL_PROFILE            "ai_profile"
#define AI_SQL_TIER               "ai_tier"
#define AI_SQL_CONVERSATION_OWNED "ai_conversation_owned"
#define AI_SQL_CONVERSATION_UPSERT "ai_conversation_upsert"
#define AI_SQL_MESSAGE_INSERT     "ai_message_insert"
#define AI_SQL_HISTORY            "ai_history"
#define AI_SQL_CONVERSATIONS      "ai_conversations"
#define AI_SQL_CONVERSATION_JSON  "ai_conversation_json"
#define AI_SQL_CONVERSATION_DELETE "ai_conversation_delete"
#define AI_SQL_LEDGER_INSERT      "ai_ledger_insert"
#define AI_SQL_USAGE              "ai_usage"
#define AI_SQL_MEDICATIONS        "ai_medications"
#define AI_SQL_INSIGHTS           "ai_insights"
#define AI_SQL_CONTEXT            "ai_context"

/* The first row of a random-access result, or NULL. */
apr_dbd_row_t *ai_first_row(request_rec *r, ap_dbd_t *db, apr_dbd_results_t *res);

/* ---------------------------------------------------------------- the caller */

/* What the model may be told about the caller, and what to redact. */
typedef struct {
    const char *first_name, *last_name, *email, *date_of_birth, *country;
    const char *const *names;         /* for bl_redact */
} ai_person;

/* Loads the caller's profile (for redaction and the crisis line). Returns
 * 0, or -1 after answering. */
int ai_load_person(request_rec *r, ap_dbd_t *db, const char *user_id, ai_person *out);
/* text with the caller's identifiers and any email, phone or date of
 * birth removed. */
const char *ai_redact(request_rec *r, const ai_person *who, const char *text);

/* ---------------------------------------------------------------- limits */

/* Takes one request of the caller's daily quota (Redis, atomic). Returns
 * 0, or answers (429 AI_QUOTA_EXCEEDED with the reset time, 503) and
 * returns -1. *tier is set. */
int ai_quota_take(request_rec *r, ap_dbd_t *db, const char *user_id, const char **tier);
/* Gives back a request that never reached the model's answer. */
void ai_quota_give_back(request_rec *r, const char *user_id);
/* The caller's tier, daily limit and use today (for /ai/usage). */
int ai_quota_status(request_rec *r, ap_dbd_t *db, const char *user_id, const char **tier,
                    int *limit, long *used, const char **resets_at);

/* The circuit breaker (shared in Redis): 0 when calls may go out, else
 * answers 503 AI_UNAVAILABLE with Retry-After and returns -1. */
int ai_breaker_check(request_rec *r);
void ai_breaker_record(request_rec *r, int failed);

/* ---------------------------------------------------------------- provider */

typedef struct {
    const char *content;              /* the answer's text */
    long prompt_tokens, completion_tokens;   /* -1 when the provider did not say */
    apr_interval_time_t latency;
    const char *error;                /* short reason when it failed, else NULL */
    int unavailable;                  /* failed on the provider's side (breaker, 503) */
    int cancelled;                    /* the client went away (streaming) */
    int streamed;                     /* tokens reached the client */
    apr_interval_time_t retry_after;
} ai_answer;

/* Called with each piece of streamed text; non-zero stops the call. */
typedef int ai_token_fn(void *ctx, const char *text, apr_size_t len);

/* Asks the model: messages is a json-c array of {role, content};
 * schema_name/schema (JSON text) request structured output; on_token
 * streams. Fills *out; returns 0 when an answer came. */
int ai_complete(request_rec *r, json_object *messages, const char *schema_name,
                const char *schema, ai_token_fn *on_token, void *token_ctx, ai_answer *out);

/* The cost of a call in US dollars (BeautifulAIPrice), or a negative value
 * when no price is configured for the model. */
double ai_cost(const ai_conf *c, const char *model, long prompt_tokens, long completion_tokens);

/* ---------------------------------------------------------------- ledger */

typedef struct {
    const char *kind;                 /* chat | symptom_analysis | medication_check | insight */
    const char *prompt;               /* what was (or would have been) sent */
    const char *response;             /* may be NULL */
    const char *model;                /* NULL for a triaged answer */
    const char *conversation_id;      /* may be NULL */
    const char *triage;               /* "none" or the rule id */
    const ai_answer *answer;          /* NULL for a triaged answer */
} ai_ledger_entry;

/* Writes the ai_interactions row (on db, inside the caller's transaction
 * when there is one). Returns 0, or -1 after answering. */
int ai_ledger_write(request_rec *r, ap_dbd_t *db, const char *user_id,
                    const ai_ledger_entry *e);

/* Shows the ledger's series on /metrics (at 0) from the child's start. */
void ai_metrics_init(void);

/* ---------------------------------------------------------------- helpers */

/* The system prompt of the assistant (the server's own). */
extern const char ai_system_prompt[];
/* The crisis-line text for the caller's country (or the default). */
const char *ai_crisis_line(const ai_conf *c, const char *country);
/* The triage answer as a JSON object {rule, urgency, guidance,
 * crisis_line?}. */
json_object *ai_triage_json(request_rec *r, const ai_rule *rule, const char *country);
/* Answers 400 naming the first unknown field; returns -1, or 0 when none. */
int ai_refuse_unknown(request_rec *r, json_object *obj, const char *const *allowed);
/* Reads an optional array of 1..max strings of 1..max_chars characters;
 * returns the count (0 when absent) or -1 after answering 400. */
int ai_read_string_array(request_rec *r, json_object *body, const char *field, int max,
                         size_t max_chars, const char ***out);
/* Sends err as 503 AI_UNAVAILABLE with Retry-After. */
int ai_send_unavailable(request_rec *r, const ai_answer *a);
/* bl_send_object, then drops the caller's reference to data. */
int ai_send_object(request_rec *r, int status, const char *message, json_object *data);
/* Sends 503 AI_NOT_CONFIGURED. */
int ai_send_not_configured(request_rec *r);
/* Reads the boolean query parameter name; -1 after answering 400. */
int ai_query_bool(request_rec *r, const char *name, int *out);

#endif

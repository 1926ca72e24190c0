/* AWS Signature Version 4: canonical request, string to sign, the derived
 * signing key and the signature (docs.aws.amazon.com, "Signature Version 4
 * signing process"). HMAC-SHA256 and SHA-256 from hmac.c. */
#include "sigv4.h"
#include "hmac.h"

#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/crypto.h>

const char *bl_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, 3 * strlen(s) + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
            || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

const char *bl_sigv4_amz_date(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t e;
    char buf[32];
    apr_size_t len;

    apr_time_exp_gmt(&e, t);
    apr_strftime(buf, &len, sizeof buf, "%Y%m%dT%H%M%SZ", &e);
    return apr_pstrdup(p, buf);
}

/* Percent-decodes a query component (a '+' stays a '+': S3 clients send
 * spaces as %20). */
static const char *uri_decode(apr_pool_t *p, const char *s, size_t len)
{
    char *out = apr_palloc(p, len + 1), *o = out;
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && strchr("0123456789abcdefABCDEF", s[i + 1])
            && strchr("0123456789abcdefABCDEF", s[i + 2])) {
            char pair[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtoul(pair, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

typedef struct {
    const char *key, *value;
} kv;

static int kv_compare(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c ? c : strcmp(x->value, y->value);
}

/* name=value pairs, each side decoded then encoded, sorted by name. */
static const char *canonical_query(apr_pool_t *p, const char *query)
{
    apr_array_header_t *pairs = apr_array_make(p, 4, sizeof(kv));
    const char *s = query;
    char *out;
    int i;

    if (!query || !*query)
        return "";
    while (*s) {
        size_t n = strcspn(s, "&");
        const char *eq = memchr(s, '=', n);
        kv *e = apr_array_push(pairs);
        if (eq) {
            e->key = bl_sigv4_uri_encode(p, uri_decode(p, s, (size_t)(eq - s)), 0);
            e->value = bl_sigv4_uri_encode(p, uri_decode(p, eq + 1, n - (size_t)(eq + 1 - s)), 0);
        } else {
            e->key = bl_sigv4_uri_encode(p, uri_decode(p, s, n), 0);
            e->value = "";
        }
        s += n;
        if (*s == '&')
            s++;
    }
    qsort(pairs->elts, (size_t)pairs->nelts, sizeof(kv), kv_compare);
    out = "";
    for (i = 0; i < pairs->nelts; i++) {
        const kv *e = &((const kv *)pairs->elts)[i];
        out = apr_pstrcat(p, out, i ? "&" : "", e->key, "=", e->value, NULL);
    }
    return out;
}

/* Lower-cased name; value trimmed, inner runs of spaces made one. */
static kv canonical_header(apr_pool_t *p, const bl_sigv4_header *h)
{
    kv e;
    char *name = apr_pstrdup(p, h->name), *c, *value, *o;
    const char *v = h->value;

    for (c = name; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    while (*v == ' ' || *v == '\t')
        v++;
    value = o = apr_palloc(p, strlen(v) + 1);
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            if (o > value && o[-1] != ' ')
                *o++ = ' ';
        } else {
            *o++ = *v;
        }
    }
    while (o > value && o[-1] == ' ')
        o--;
    *o = '\0';
    e.key = name;
    e.value = value;
    return e;
}

static int hmac(const unsigned char *key, size_t key_len, const char *msg, unsigned char *out)
{
    return bl_hmac_sha256(key, key_len, msg, strlen(msg), out);
}

const char *bl_sigv4_authorization(apr_pool_t *p, const bl_sigv4_request *req,
                                   const char **canonical)
{
    kv *headers;
    const char *signed_names = "", *header_block = "", *creq, *scope, *sts, *date;
    unsigned char k_date[BL_SHA256_LEN], k_region[BL_SHA256_LEN], k_service[BL_SHA256_LEN];
    unsigned char k_signing[BL_SHA256_LEN], sig[BL_SHA256_LEN], digest[BL_SHA256_LEN];
    const char *secret;
    int i, ok;

    if (!req->amz_date || strlen(req->amz_date) != 16 || !req->path || !req->method
        || !req->secret_access_key || !req->access_key_id || !req->region || !req->service
        || !req->payload_sha256 || req->nheaders <= 0)
        return NULL;
    headers = apr_palloc(p, sizeof(kv) * (size_t)req->nheaders);
    for (i = 0; i < req->nheaders; i++)
        headers[i] = canonical_header(p, &req->headers[i]);
    qsort(headers, (size_t)req->nheaders, sizeof(kv), kv_compare);
    for (i = 0; i < req->nheaders; i++) {
        header_block = apr_pstrcat(p, header_block, headers[i].key, ":", headers[i].value, "\n",
                                   NULL);
        signed_names = apr_pstrcat(p, signed_names, i ? ";" : "", headers[i].key, NULL);
    }
    creq = apr_pstrcat(p, req->method, "\n", req->path, "\n", canonical_query(p, req->query),
                       "\n", header_block, "\n", signed_names, "\n", req->payload_sha256, NULL);
    if (canonical)
        *canonical = creq;
    date = apr_pstrmemdup(p, req->amz_date, 8);
    scope = apr_pstrcat(p, date, "/", req->region, "/", req->service, "/aws4_request", NULL);
    if (!bl_sha256(creq, strlen(creq), digest))
        return NULL;
    sts = apr_pstrcat(p, "AWS4-HMAC-SHA256\n", req->amz_date, "\n", scope, "\n",
                      bl_hex(p, digest, sizeof digest), NULL);
    secret = apr_pstrcat(p, "AWS4", req->secret_access_key, NULL);
    ok = hmac((const unsigned char *)secret, strlen(secret), date, k_date)
         && hmac(k_date, sizeof k_date, req->region, k_region)
         && hmac(k_region, sizeof k_region, req->service, k_service)
         && hmac(k_service, sizeof k_service, "aws4_request", k_signing)
         && hmac(k_signing, sizeof k_signing, sts, sig);
    OPENSSL_cleanse(k_signing, sizeof k_signing);
    OPENSSL_cleanse(k_date, sizeof k_date);
    if (!ok)
        return NULL;
    return apr_pstrcat(p, "AWS4-HMAC-SHA256 Credential=", req->access_key_id, "/", scope,
                       ", SignedHeaders=", signed_names, ", Signature=",
                       bl_hex(p, sig, sizeof sig), NULL);
}

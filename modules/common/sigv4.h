/* AWS Signature Version 4 (header form) for S3-compatible object storage
 * and any other SigV4 service. */
#ifndef BL_SIGV4_H
#define BL_SIGV4_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct {
    const char *name;            /* any case; signed lower-cased */
    const char *value;
} bl_sigv4_header;

typedef struct {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;          /* "us-east-1" */
    const char *service;         /* "s3" */
    const char *method;          /* "GET", "PUT" ... */
    const char *path;            /* URI path as sent, already percent-encoded */
    const char *query;           /* raw query string without '?', or NULL */
    /* Every header to sign, host and x-amz-date included; nheaders of them. */
    const bl_sigv4_header *headers;
    int nheaders;
    const char *payload_sha256;  /* lower-case hex, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;        /* YYYYMMDD'T'HHMMSS'Z', the x-amz-date value */
} bl_sigv4_request;

/* The Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=..."); NULL on a malformed request. When
 * canonical is not NULL it receives the canonical request (for tests and
 * debugging; it holds no secret). */
const char *bl_sigv4_authorization(apr_pool_t *p, const bl_sigv4_request *req,
                                   const char **canonical);

/* x-amz-date for a time: "20130524T000000Z". */
const char *bl_sigv4_amz_date(apr_pool_t *p, apr_time_t t);

/* RFC 3986 percent-encoding as SigV4 wants it (unreserved characters
 * kept; '/' kept when keep_slash). */
const char *bl_sigv4_uri_encode(apr_pool_t *p, const char *s, int keep_slash);

#endif

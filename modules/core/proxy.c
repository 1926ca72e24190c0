/* proxy.c — BeautifulTrustedProxy: the client behind trusted reverse proxies.
 *
 * X-Forwarded-For and X-Forwarded-Proto are believed only when the direct
 * peer (the TCP connection) is a trusted proxy; from anyone else they are
 * whatever the client wrote and are ignored. X-Forwarded-For is walked right
 * to left, each proxy having appended the address it saw: trusted addresses
 * are our own proxies and are skipped, the first untrusted one is the
 * client. A malformed entry ends the walk at the last trusted hop, since
 * nothing to the left of it can be vouched for.
 *
 * The client replaces r->useragent_ip / useragent_addr in post_read_request,
 * before access control, rate limits, audit rows and logs read it — unless
 * mod_remoteip got there first, whose answer is then kept. */
#include "core_hooks.h"

#include <http_log.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <arpa/inet.h>

APLOG_USE_MODULE(beautiful_core);

/* ---------------------------------------------------------------- directive */

/* A full numeric address of the family, never a name (no DNS). */
static int ip_literal(const char *s, int family)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(family, s, buf) == 1;
}

static const char *trusted_proxy_error(cmd_parms *cmd, const char *arg, const char *why)
{
    return apr_psprintf(cmd->pool, "BeautifulTrustedProxy: '%s' %s (expected an IPv4 or "
                        "IPv6 address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32)",
                        arg, why);
}

const char *bl_cmd_trusted_proxy(cmd_parms *cmd, void *dummy, const char *arg)
{
    bl_server_conf *sc = bl_core_server_conf(cmd->server);
    char *ip = apr_pstrdup(cmd->temp_pool, arg);
    char *bits = strchr(ip, '/');
    apr_ipsubnet_t *subnet;
    apr_status_t rv;

    if (bits)
        *bits++ = '\0';
    if (!ip_literal(ip, AF_INET) && !ip_literal(ip, AF_INET6))
        return trusted_proxy_error(cmd, arg, "is not an IP address");
    if (bits && (!*bits || strspn(bits, "0123456789") != strlen(bits)))
        return trusted_proxy_error(cmd, arg, "has a prefix length that is not a number");
    rv = apr_ipsubnet_create(&subnet, ip, bits, cmd->pool);
    if (rv == APR_EBADMASK)
        return trusted_proxy_error(cmd, arg, "has a prefix length out of range "
                                   "(1-32 for IPv4, 1-128 for IPv6)");
    if (rv != APR_SUCCESS)
        return trusted_proxy_error(cmd, arg, "cannot be parsed");
    if (!sc->trusted_proxies)
        sc->trusted_proxies = apr_array_make(cmd->pool, 4, sizeof(apr_ipsubnet_t *));
    APR_ARRAY_PUSH(sc->trusted_proxies, apr_ipsubnet_t *) = subnet;
    return NULL;
}

/* ---------------------------------------------------------------- trust */

static int address_trusted(const apr_array_header_t *trusted, apr_sockaddr_t *sa)
{
    int i;

    for (i = 0; trusted && i < trusted->nelts; i++) {
        if (apr_ipsubnet_test(APR_ARRAY_IDX(trusted, i, apr_ipsubnet_t *), sa))
            return 1;
    }
    return 0;
}

static int peer_trusted(request_rec *r)
{
    const apr_array_header_t *trusted = bl_core_server_conf(r->server)->trusted_proxies;
    return trusted && trusted->nelts > 0 && address_trusted(trusted, r->connection->client_addr);
}

/* ---------------------------------------------------------------- X-Forwarded-For */

/* The comma-separated entries of a header, trimmed; empty ones kept so
 * that they count as malformed. */
static apr_array_header_t *header_entries(apr_pool_t *p, const char *value)
{
    apr_array_header_t *list = apr_array_make(p, 4, sizeof(char *));
    char *copy = apr_pstrdup(p, value), *entry = copy, *comma;

    do {
        char *end;
        comma = strchr(entry, ',');
        if (comma)
            *comma = '\0';
        while (apr_isspace(*entry))
            entry++;
        end = entry + strlen(entry);
        while (end > entry && apr_isspace(end[-1]))
            *--end = '\0';
        APR_ARRAY_PUSH(list, char *) = entry;
        entry = comma + 1;
    } while (comma);
    return list;
}

/* A forwarded address, or NULL when the entry is not a bare IP (ports,
 * names, "unknown" and garbage included). port is the peer's, as
 * mod_remoteip does, so the connection's port stays in the logs. */
static apr_sockaddr_t *forwarded_address(request_rec *r, const char *entry)
{
    apr_sockaddr_t *sa = NULL;
    int family;

    if (ip_literal(entry, AF_INET))
        family = APR_INET;
    else if (ip_literal(entry, AF_INET6))
        family = APR_INET6;
    else
        return NULL;
    if (apr_sockaddr_info_get(&sa, entry, family, r->connection->client_addr->port, 0,
                              r->pool) != APR_SUCCESS)
        return NULL;
    return sa;
}

/* The client per X-Forwarded-For, or NULL when the header names none. */
static apr_sockaddr_t *forwarded_client(request_rec *r, const apr_array_header_t *trusted,
                                        const char *xff)
{
    apr_array_header_t *entries = header_entries(r->pool, xff);
    apr_sockaddr_t *client = NULL;
    int i;

    for (i = entries->nelts - 1; i >= 0; i--) {
        apr_sockaddr_t *sa = forwarded_address(r, APR_ARRAY_IDX(entries, i, char *));
        if (!sa)
            break;                      /* malformed: keep the last trusted hop */
        client = sa;
        if (!address_trusted(trusted, sa))
            break;                      /* the first untrusted address */
    }
    return client;
}

int bl_proxy_post_read_request(request_rec *r)
{
    conn_rec *c = r->connection;
    const char *xff;
    apr_sockaddr_t *client;

    /* mod_remoteip (or an internal redirect's copy) already decided */
    if (!r->useragent_ip || strcmp(r->useragent_ip, c->client_ip) || !peer_trusted(r))
        return DECLINED;
    xff = apr_table_get(r->headers_in, "X-Forwarded-For");
    if (!xff)
        return DECLINED;
    client = forwarded_client(r, bl_core_server_conf(r->server)->trusted_proxies, xff);
    if (!client)
        return DECLINED;
    r->useragent_addr = client;
    apr_sockaddr_ip_get(&r->useragent_ip, client);
    return DECLINED;
}

/* ---------------------------------------------------------------- X-Forwarded-Proto */

/* The scheme the client used, per a trusted proxy: the header's first
 * value, as the edge proxy wrote it. */
int bl_proxy_forwarded_https(request_rec *r)
{
    const char *proto = apr_table_get(r->headers_in, "X-Forwarded-Proto");
    apr_array_header_t *entries;

    if (!proto || !peer_trusted(r))
        return 0;
    entries = header_entries(r->pool, proto);
    return !strcasecmp(APR_ARRAY_IDX(entries, 0, char *), "https");
}

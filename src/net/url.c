/* Parsing and formatting of etcd-style listen and endpoint URLs. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

static const struct {
    const char *name;
    enum net_scheme scheme;
    bool tls;
    bool is_unix;
} schemes[] = {
    {"http", NET_SCHEME_HTTP, false, false},
    {"https", NET_SCHEME_HTTPS, true, false},
    {"unix", NET_SCHEME_UNIX, false, true},
    {"unixs", NET_SCHEME_UNIXS, true, true},
};

static int bad(struct cairn_errmsg *msg, const char *text, const char *why)
{
    if (msg)
        cairn_errmsg_setf(msg, "%s: %s", why, text);
    return CAIRN_EINVAL;
}

static int parse_port(const char *p, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return CAIRN_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return CAIRN_EINVAL;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return CAIRN_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int net_url_parse(const char *text, struct net_url *url,
                  struct cairn_errmsg *msg)
{
    memset(url, 0, sizeof(*url));
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    const char *sep = strstr(text, "://");
    if (sep == NULL || (size_t)(sep - text) >= len)
        return bad(msg, text, "URL has no scheme");
    size_t slen = (size_t)(sep - text);
    size_t i;
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strlen(schemes[i].name) == slen &&
            strncasecmp(text, schemes[i].name, slen) == 0)
            break;
    if (i == sizeof(schemes) / sizeof(schemes[0]))
        return bad(msg, text, "URL scheme must be http, https, unix, or unixs");
    url->scheme = schemes[i].scheme;
    url->tls = schemes[i].tls;
    url->is_unix = schemes[i].is_unix;
    const char *rest = sep + 3;
    size_t rlen = len - slen - 3;

    if (url->is_unix) {
        /* etcd listens on host + path of the URL */
        if (rlen == 0)
            return bad(msg, text, "unix URL has no socket path");
        if (rlen > NET_UNIX_PATH_MAX)
            return bad(msg, text, "unix socket path too long");
        memcpy(url->host, rest, rlen);
        url->host[rlen] = '\0';
        return 0;
    }

    if (rlen > 0 && rest[rlen - 1] == '/')
        rlen--;
    if (memchr(rest, '/', rlen) || memchr(rest, '?', rlen) ||
        memchr(rest, '#', rlen))
        return bad(msg, text, "URL must not contain a path");
    const char *host = rest, *colon;
    size_t hlen;
    if (rlen > 0 && rest[0] == '[') {
        const char *close = memchr(rest, ']', rlen);
        if (close == NULL)
            return bad(msg, text, "URL has an unclosed IPv6 bracket");
        host = rest + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (colon >= rest + rlen || *colon != ':')
            return bad(msg, text,
                       "URL address does not have the form \"host:port\"");
    } else {
        colon = NULL;
        for (size_t k = rlen; k > 0; k--)
            if (rest[k - 1] == ':') {
                colon = rest + k - 1;
                break;
            }
        if (colon == NULL)
            return bad(msg, text,
                       "URL address does not have the form \"host:port\"");
        hlen = (size_t)(colon - rest);
        if (memchr(rest, ':', hlen))
            return bad(msg, text, "IPv6 address must be in brackets");
    }
    if (hlen >= NET_HOST_MAX)
        return bad(msg, text, "URL host too long");
    if (parse_port(colon + 1, (size_t)(rest + rlen - colon - 1), &url->port))
        return bad(msg, text, "URL has an invalid port");
    memcpy(url->host, host, hlen);
    url->host[hlen] = '\0';
    return 0;
}

int net_url_format(const struct net_url *url, char *out, size_t size)
{
    const char *name = "http";
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (schemes[i].scheme == url->scheme)
            name = schemes[i].name;
    if (url->is_unix)
        return snprintf(out, size, "%s://%s", name, url->host);
    if (strchr(url->host, ':'))
        return snprintf(out, size, "%s://[%s]:%u", name, url->host,
                        (unsigned)url->port);
    return snprintf(out, size, "%s://%s:%u", name, url->host,
                    (unsigned)url->port);
}

/* gRPC wire details that need no connection: status code names,
 * grpc-timeout values, percent-encoding of grpc-message, HTTP status
 * mapping. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rpc/rpc_int.h"

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *rpc_code_name(int code)
{
    if (code < 0 || code >= (int)(sizeof(code_names) / sizeof(code_names[0])))
        return "UNKNOWN";
    return code_names[code];
}

int rpc_timeout_parse(const char *text, int64_t *ms)
{
    /* TimeoutValue is at most 8 digits, then one unit letter. */
    size_t n = strlen(text);
    if (n < 2 || n > 9)
        return CAIRN_EMALFORMED;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (!isdigit((unsigned char)text[i]))
            return CAIRN_EMALFORMED;
        v = v * 10 + (text[i] - '0');
    }
    switch (text[n - 1]) {
    case 'H':
        *ms = v * 3600 * 1000;
        break;
    case 'M':
        *ms = v * 60 * 1000;
        break;
    case 'S':
        *ms = v * 1000;
        break;
    case 'm':
        *ms = v;
        break;
    case 'u':
        *ms = (v + 999) / 1000;
        break;
    case 'n':
        *ms = (v + 999999) / 1000000;
        break;
    default:
        return CAIRN_EMALFORMED;
    }
    return 0;
}

void rpc_timeout_format(int64_t ms, char *out, size_t size)
{
    if (ms < 0)
        ms = 0;
    /* Pick the finest unit that fits in 8 digits. */
    if (ms < 100000000)
        snprintf(out, size, "%lldm", (long long)ms);
    else if (ms / 1000 < 100000000)
        snprintf(out, size, "%lldS", (long long)((ms + 999) / 1000));
    else if (ms / 60000 < 100000000)
        snprintf(out, size, "%lldM", (long long)((ms + 59999) / 60000));
    else
        snprintf(out, size, "%lldH", 99999999LL);
}

size_t rpc_percent_encode(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0, written = 0;
    bool full = size == 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = *p >= 0x20 && *p <= 0x7e && *p != '%';
        size_t need = plain ? 1 : 3;
        if (!full && n + need < size) {
            if (plain) {
                out[n] = (char)*p;
            } else {
                out[n] = '%';
                out[n + 1] = hex[*p >> 4];
                out[n + 2] = hex[*p & 15];
            }
            written = n + need;
        } else {
            full = true;
        }
        n += need;
    }
    if (size > 0)
        out[written] = '\0';
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void rpc_percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 &&
            (lo = hexval(r[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int rpc__code_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return RPC_INTERNAL;
    case 401:
        return RPC_UNAUTHENTICATED;
    case 403:
        return RPC_PERMISSION_DENIED;
    case 404:
        return RPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return RPC_UNAVAILABLE;
    default:
        return RPC_UNKNOWN;
    }
}

/* json: the bits of Go's encoding/json that etcd's v2 answers go through:
 * string escaping, RFC 3339 times, and v2error's error bodies. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "v2/v2_int.h"

static const char hex[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int v2_json_string(struct buf *out, const void *s, size_t len)
{
    const uint8_t *p = s;
    int rv = buf_append_u8(out, '"');
    for (size_t i = 0; i < len && rv == 0;) {
        uint32_t cp;
        size_t k = utf8_len(p + i, len - i, &cp);
        if (k == 0) {
            rv = buf_append(out, "\\ufffd", 6); /* Go: invalid UTF-8 */
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            char e[2] = {'\\', (char)cp};
            rv = buf_append(out, e, 2);
        } else if (cp == '\n') {
            rv = buf_append(out, "\\n", 2);
        } else if (cp == '\r') {
            rv = buf_append(out, "\\r", 2);
        } else if (cp == '\t') {
            rv = buf_append(out, "\\t", 2);
        } else if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&' ||
                   cp == 0x2028 || cp == 0x2029) {
            /* Go escapes HTML characters and the JS line separators too */
            char e[6] = {'\\',
                         'u',
                         hex[(cp >> 12) & 15],
                         hex[(cp >> 8) & 15],
                         hex[(cp >> 4) & 15],
                         hex[cp & 15]};
            rv = buf_append(out, e, 6);
        } else {
            rv = buf_append(out, p + i, k);
        }
        i += k;
    }
    if (rv == 0)
        rv = buf_append_u8(out, '"');
    return rv;
}

int v2__appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CAIRN_EINVAL;
    uint8_t *p = buf_extend(b, (size_t)n + 1);
    if (p == NULL)
        return CAIRN_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len--; /* drop the NUL */
    return 0;
}

int v2__time_rfc3339(struct buf *out, int64_t ns)
{
    /* Go's time.RFC3339Nano in UTC: fraction without trailing zeros */
    time_t sec = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    char t[64];
    size_t k = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    int rv = buf_append(out, t, k);
    if (frac > 0) {
        char f[16];
        snprintf(f, sizeof f, ".%09ld", frac);
        size_t fl = strlen(f);
        while (f[fl - 1] == '0')
            fl--;
        rv |= buf_append(out, f, fl);
    }
    rv |= buf_append_u8(out, 'Z');
    return rv != 0 ? CAIRN_ENOMEM : 0;
}

static const struct {
    int code;
    const char *text;
} messages[] = {
    {V2_E_KEY_NOT_FOUND, "Key not found"},
    {V2_E_TEST_FAILED, "Compare failed"},
    {V2_E_NOT_FILE, "Not a file"},
    {V2_E_NOT_DIR, "Not a directory"},
    {V2_E_NODE_EXIST, "Key already exists"},
    {V2_E_ROOT_RONLY, "Root is read only"},
    {V2_E_DIR_NOT_EMPTY, "Directory not empty"},
    {V2_E_PREV_VALUE_REQUIRED, "PrevValue is Required in POST form"},
    {V2_E_TTL_NAN, "The given TTL in POST form is not a number"},
    {V2_E_INDEX_NAN, "The given index in POST form is not a number"},
    {V2_E_INVALID_FIELD, "Invalid field"},
    {V2_E_INVALID_FORM, "Invalid POST form"},
    {V2_E_REFRESH_VALUE, "Value provided on refresh"},
    {V2_E_REFRESH_TTL_REQUIRED, "A TTL must be provided on refresh"},
    {V2_E_RAFT_INTERNAL, "Raft Internal Error"},
    {V2_E_LEADER_ELECT, "During Leader Election"},
    {V2_E_EVENT_INDEX_CLEARED,
     "The event in requested index is outdated and cleared"},
};

/* v2error's errorStatus table; anything else is 400. */
static int status_of(int code)
{
    switch (code) {
    case V2_E_KEY_NOT_FOUND:
        return 404;
    case V2_E_NOT_FILE:
    case V2_E_DIR_NOT_EMPTY:
        return 403;
    case V2_E_TEST_FAILED:
    case V2_E_NODE_EXIST:
        return 412;
    case V2_E_RAFT_INTERNAL:
    case V2_E_LEADER_ELECT:
        return 500;
    default:
        return 400;
    }
}

int v2_error_json(struct buf *out, int code, const char *cause,
                  size_t cause_len, uint64_t index)
{
    const char *text = "";
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (messages[i].code == code)
            text = messages[i].text;
    int rv = v2__appendf(out, "{\"errorCode\":%d,\"message\":", code);
    rv |= v2_json_string(out, text, strlen(text));
    if (cause_len > 0) {
        rv |= buf_append(out, ",\"cause\":", 9);
        rv |= v2_json_string(out, cause, cause_len);
    }
    rv |= v2__appendf(out, ",\"index\":%" PRIu64 "}\n", index);
    if (rv != 0)
        return CAIRN_ENOMEM;
    return status_of(code);
}

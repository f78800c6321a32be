/* gateway_json: JSON to and from any protobuf-c message, as grpc-gateway's
 * JSONPb marshaler (OrigName, no defaults emitted) reads and writes etcd's
 * messages: field names as in the .proto (lowerCamelCase accepted on
 * input), 64-bit integers as decimal strings, bytes as base64, enums by
 * name, fields at their default value left out, unknown input fields
 * skipped. Driven by the descriptors protobuf-c generates, so every
 * message of proto/ is covered without per-message code. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gateway.h"

#define JSON_DEPTH_MAX 64
#define JSON_REPEATED_MAX ((size_t)1 << 20)

/* ---- base64 (RFC 4648; std on output, std or URL-safe on input) ---- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_append(struct buf *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                     i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        if (buf_append(out, q, 4) != 0)
            return CAIRN_ENOMEM;
    }
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes s (len bytes, '=' padding optional) into out (room for len). */
static bool b64_decode(const char *s, size_t len, uint8_t *out, size_t *n)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    uint32_t acc = 0;
    int bits = 0;
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[(*n)++] = (uint8_t)(acc >> bits);
        }
    }
    return bits < 6; /* a lone trailing character is not base64 */
}

/* ---- reading ---- */

struct jr {
    const uint8_t *p, *end;
    struct api_arena *arena;
    char *err;
    size_t err_len;
    int depth;
};

static int jr_fail(struct jr *r, const char *what)
{
    if (r->err[0] == 0)
        snprintf(r->err, r->err_len, "%s", what);
    return CAIRN_EMALFORMED;
}

static void ws(struct jr *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool eat(struct jr *r, char c)
{
    ws(r);
    if (r->p < r->end && *r->p == (uint8_t)c) {
        r->p++;
        return true;
    }
    return false;
}

static bool eat_word(struct jr *r, const char *w)
{
    ws(r);
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, w, n) == 0) {
        r->p += n;
        return true;
    }
    return false;
}

static int hex4(const uint8_t *p, uint32_t *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return -1;
        *out = (*out << 4) | (uint32_t)v;
    }
    return 0;
}

static size_t utf8_put(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* A JSON string, unescaped into the arena (NUL-terminated). */
static int read_string(struct jr *r, char **out, size_t *out_len)
{
    if (!eat(r, '"'))
        return jr_fail(r, "expected a string");
    /* the unescaped text is never longer than the escaped one */
    const uint8_t *q = r->p;
    while (q < r->end && *q != '"')
        q += *q == '\\' && q + 1 < r->end ? 2 : 1;
    if (q >= r->end)
        return jr_fail(r, "unexpected end of JSON input");
    uint8_t *o = api_arena_alloc(r->arena, (size_t)(q - r->p) + 1);
    if (o == NULL)
        return CAIRN_ENOMEM;
    size_t n = 0;
    while (r->p < q) {
        uint8_t c = *r->p++;
        if (c != '\\') {
            if (c < 0x20)
                return jr_fail(r, "invalid character in string literal");
            o[n++] = c;
            continue;
        }
        c = *r->p++;
        uint32_t cp;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            o[n++] = c;
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u':
            if (q - r->p < 4 || hex4(r->p, &cp) != 0)
                return jr_fail(r, "invalid escape in string literal");
            r->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && q - r->p >= 6 &&
                r->p[0] == '\\' && r->p[1] == 'u') {
                uint32_t lo;
                if (hex4(r->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    r->p += 6;
                }
            }
            if (cp >= 0xd800 && cp < 0xe000)
                cp = 0xfffd; /* a lone surrogate, as Go decodes it */
            n += utf8_put(o + n, cp);
            break;
        default:
            return jr_fail(r, "invalid escape in string literal");
        }
    }
    r->p = q + 1;
    o[n] = 0;
    *out = (char *)o;
    *out_len = n;
    return 0;
}

/* A number's text (or a quoted one's: jsonpb takes both for integers). */
static int read_number_text(struct jr *r, char *out, size_t cap)
{
    ws(r);
    if (r->p < r->end && *r->p == '"') {
        char *s = NULL;
        size_t n = 0;
        int rv = read_string(r, &s, &n);
        if (rv != 0)
            return rv;
        if (n == 0 || n >= cap)
            return jr_fail(r, "invalid number");
        memcpy(out, s, n + 1);
        return 0;
    }
    size_t n = 0;
    while (r->p < r->end && n + 1 < cap &&
           (isdigit(*r->p) || *r->p == '-' || *r->p == '+' || *r->p == '.' ||
            *r->p == 'e' || *r->p == 'E'))
        out[n++] = (char)*r->p++;
    out[n] = 0;
    return n == 0 ? jr_fail(r, "invalid number") : 0;
}

static int skip_value(struct jr *r);

static int skip_container(struct jr *r, char close, bool keys)
{
    if (++r->depth > JSON_DEPTH_MAX)
        return jr_fail(r, "JSON nested too deeply");
    if (eat(r, close)) {
        r->depth--;
        return 0;
    }
    for (;;) {
        int rv;
        if (keys) {
            char *k;
            size_t kl;
            if ((rv = read_string(r, &k, &kl)) != 0)
                return rv;
            if (!eat(r, ':'))
                return jr_fail(r, "expected ':' after object key");
        }
        if ((rv = skip_value(r)) != 0)
            return rv;
        if (eat(r, close))
            break;
        if (!eat(r, ','))
            return jr_fail(r, "expected ',' or end of container");
    }
    r->depth--;
    return 0;
}

static int skip_value(struct jr *r)
{
    ws(r);
    if (r->p >= r->end)
        return jr_fail(r, "unexpected end of JSON input");
    char num[64];
    switch (*r->p) {
    case '{':
        r->p++;
        return skip_container(r, '}', true);
    case '[':
        r->p++;
        return skip_container(r, ']', false);
    case '"': {
        char *s = NULL;
        size_t n = 0;
        return read_string(r, &s, &n);
    }
    default:
        if (eat_word(r, "true") || eat_word(r, "false") || eat_word(r, "null"))
            return 0;
        return read_number_text(r, num, sizeof(num));
    }
}

/* A field of d named name: the .proto name or its lowerCamelCase. */
static const ProtobufCFieldDescriptor *
field_named(const ProtobufCMessageDescriptor *d, const char *name)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *f = d->fields[i].name;
        if (strcmp(f, name) == 0)
            return &d->fields[i];
        /* lowerCamelCase: "_x" becomes "X" */
        const char *a = f, *b = name;
        while (*a != 0 && *b != 0) {
            if (*a == '_' && a[1] != 0) {
                if (toupper((unsigned char)a[1]) != *b)
                    break;
                a += 2;
            } else if (*a != *b) {
                break;
            } else {
                a++;
            }
            b++;
        }
        if (*a == 0 && *b == 0)
            return &d->fields[i];
    }
    return NULL;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default: /* 32-bit integers and enums */
        return sizeof(int32_t);
    }
}

static int read_message(struct jr *r, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out);

static int read_integer(struct jr *r, const ProtobufCFieldDescriptor *f,
                        void *dst)
{
    char t[64];
    int rv = read_number_text(r, t, sizeof(t));
    if (rv != 0)
        return rv;
    char *endp;
    errno = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = strtoull(t, &endp, 10);
        if (*endp != 0 || errno != 0 || t[0] == '-')
            return jr_fail(r, "invalid unsigned integer");
        memcpy(dst, &v, sizeof(v));
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint64_t v = strtoull(t, &endp, 10);
        if (*endp != 0 || errno != 0 || t[0] == '-' || v > UINT32_MAX)
            return jr_fail(r, "invalid unsigned integer");
        uint32_t w = (uint32_t)v;
        memcpy(dst, &w, sizeof(w));
        return 0;
    }
    default: {
        int64_t v = strtoll(t, &endp, 10);
        if (*endp != 0 || errno != 0)
            return jr_fail(r, "invalid integer");
        if (elem_size(f->type) == sizeof(int64_t)) {
            memcpy(dst, &v, sizeof(v));
        } else {
            if (v < INT32_MIN || v > INT32_MAX)
                return jr_fail(r, "integer out of range");
            int32_t w = (int32_t)v;
            memcpy(dst, &w, sizeof(w));
        }
        return 0;
    }
    }
}

static int read_enum(struct jr *r, const ProtobufCFieldDescriptor *f, void *dst)
{
    ws(r);
    int32_t v;
    if (r->p < r->end && *r->p == '"') {
        char *s = NULL;
        size_t n = 0;
        int rv = read_string(r, &s, &n);
        if (rv != 0)
            return rv;
        const ProtobufCEnumDescriptor *e = f->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        for (unsigned i = 0; i < e->n_values; i++)
            if (strcmp(e->values[i].name, s) == 0)
                ev = &e->values[i];
        if (ev == NULL)
            return jr_fail(r, "unknown enum value");
        v = ev->value;
    } else {
        int rv = read_integer(r, f, &v);
        if (rv != 0)
            return rv;
    }
    memcpy(dst, &v, sizeof(v));
    return 0;
}

/* One value of field f's type into dst (an element's memory). */
static int read_one(struct jr *r, const ProtobufCFieldDescriptor *f, void *dst)
{
    int rv;
    char t[64];
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b;
        if (eat_word(r, "true"))
            b = 1;
        else if (eat_word(r, "false"))
            b = 0;
        else
            return jr_fail(r, "expected true or false");
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM:
        return read_enum(r, f, dst);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        if ((rv = read_number_text(r, t, sizeof(t))) != 0)
            return rv;
        char *endp;
        double v = strtod(t, &endp);
        if (*endp != 0)
            return jr_fail(r, "invalid number");
        if (f->type == PROTOBUF_C_TYPE_FLOAT) {
            float w = (float)v;
            memcpy(dst, &w, sizeof(w));
        } else {
            memcpy(dst, &v, sizeof(v));
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = NULL;
        size_t n = 0;
        if ((rv = read_string(r, &s, &n)) != 0)
            return rv;
        memcpy(dst, &s, sizeof(s));
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        char *s = NULL;
        size_t n = 0;
        if ((rv = read_string(r, &s, &n)) != 0)
            return rv;
        ProtobufCBinaryData b = {0, (uint8_t *)s};
        /* decoded in place: never longer than its text */
        if (!b64_decode(s, n, b.data, &b.len))
            return jr_fail(r, "illegal base64 data");
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = NULL;
        if ((rv = read_message(r, f->descriptor, &m)) != 0)
            return rv;
        memcpy(dst, &m, sizeof(m));
        return 0;
    }
    default:
        return read_integer(r, f, dst);
    }
}

static int read_repeated(struct jr *r, const ProtobufCFieldDescriptor *f,
                         uint8_t *msg)
{
    if (!eat(r, '['))
        return jr_fail(r, "expected an array");
    size_t es = elem_size(f->type), n = 0, cap = 0;
    uint8_t *elems = NULL;
    int rv = 0;
    if (!eat(r, ']')) {
        for (;;) {
            if (n == cap) {
                size_t ncap = cap == 0 ? 8 : cap * 2;
                uint8_t *ne = ncap > JSON_REPEATED_MAX
                                  ? NULL
                                  : api_arena_alloc(r->arena, ncap * es);
                if (ne == NULL)
                    return CAIRN_ENOMEM;
                if (n > 0)
                    memcpy(ne, elems, n * es);
                elems = ne;
                cap = ncap;
            }
            if ((rv = read_one(r, f, elems + n * es)) != 0)
                return rv;
            n++;
            if (eat(r, ']'))
                break;
            if (!eat(r, ','))
                return jr_fail(r, "expected ',' or ']' in array");
        }
    }
    memcpy(msg + f->quantifier_offset, &n, sizeof(n));
    memcpy(msg + f->offset, &elems, sizeof(elems));
    return 0;
}

static int read_field(struct jr *r, const ProtobufCFieldDescriptor *f,
                      uint8_t *msg)
{
    if (eat_word(r, "null"))
        return 0; /* the default */
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return read_repeated(r, f, msg);
    int rv = read_one(r, f, msg + f->offset);
    if (rv != 0)
        return rv;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
        uint32_t id = f->id;
        memcpy(msg + f->quantifier_offset, &id, sizeof(id));
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
               f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        protobuf_c_boolean has = 1;
        memcpy(msg + f->quantifier_offset, &has, sizeof(has));
    }
    return 0;
}

static int read_message(struct jr *r, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out)
{
    if (!eat(r, '{'))
        return jr_fail(r, "expected a JSON object");
    if (++r->depth > JSON_DEPTH_MAX)
        return jr_fail(r, "JSON nested too deeply");
    uint8_t *msg = api_arena_alloc(r->arena, d->sizeof_message);
    if (msg == NULL)
        return CAIRN_ENOMEM;
    d->message_init((ProtobufCMessage *)msg);
    if (!eat(r, '}')) {
        for (;;) {
            char *k;
            size_t kl;
            int rv = read_string(r, &k, &kl);
            if (rv != 0)
                return rv;
            if (!eat(r, ':'))
                return jr_fail(r, "expected ':' after object key");
            const ProtobufCFieldDescriptor *f = field_named(d, k);
            /* unknown fields are skipped, as etcd's gateway does */
            rv = f != NULL ? read_field(r, f, msg) : skip_value(r);
            if (rv != 0)
                return rv;
            if (eat(r, '}'))
                break;
            if (!eat(r, ','))
                return jr_fail(r, "expected ',' or '}' in object");
        }
    }
    r->depth--;
    *out = (ProtobufCMessage *)msg;
    return 0;
}

int api__json_read(const ProtobufCMessageDescriptor *d, const uint8_t *json,
                   size_t len, size_t *used, struct api_arena *arena,
                   ProtobufCMessage **out, char *err, size_t err_len)
{
    struct jr r = {json, json + len, arena, err, err_len, 0};
    err[0] = 0;
    ws(&r);
    if (r.p == r.end) {
        *used = len;
        return CAIRN_EAGAIN; /* nothing (more) there */
    }
    int rv = read_message(&r, d, out);
    *used = (size_t)(r.p - json);
    return rv;
}

/* ---- writing ---- */

static int put_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* A JSON string as Go's encoding/json writes it (HTML-safe). */
static int put_quoted(struct buf *b, const uint8_t *s, size_t n)
{
    if (buf_append_u8(b, '"') != 0)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        char esc[8];
        const char *e = NULL;
        if (c == '"')
            e = "\\\"";
        else if (c == '\\')
            e = "\\\\";
        else if (c == '\n')
            e = "\\n";
        else if (c == '\r')
            e = "\\r";
        else if (c == '\t')
            e = "\\t";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            e = esc;
        }
        int rv = e != NULL ? put_str(b, e) : buf_append_u8(b, c);
        if (rv != 0)
            return CAIRN_ENOMEM;
    }
    return buf_append_u8(b, '"') != 0 ? CAIRN_ENOMEM : 0;
}

static int write_message(struct buf *b, const ProtobufCMessage *m);

static int write_one(struct buf *b, const ProtobufCFieldDescriptor *f,
                     const void *p)
{
    char t[48];
    int64_t i64;
    uint64_t u64;
    int32_t i32;
    uint32_t u32;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        memcpy(&i64, p, sizeof(i64));
        snprintf(t, sizeof(t), "\"%" PRId64 "\"", i64);
        return put_str(b, t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        memcpy(&u64, p, sizeof(u64));
        snprintf(t, sizeof(t), "\"%" PRIu64 "\"", u64);
        return put_str(b, t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        memcpy(&u32, p, sizeof(u32));
        snprintf(t, sizeof(t), "%" PRIu32, u32);
        return put_str(b, t);
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v;
        memcpy(&v, p, sizeof(v));
        return put_str(b, v ? "true" : "false");
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v;
        memcpy(&v, p, sizeof(v));
        snprintf(t, sizeof(t), "%g", (double)v);
        return put_str(b, t);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof(v));
        snprintf(t, sizeof(t), "%g", v);
        return put_str(b, t);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        memcpy(&i32, p, sizeof(i32));
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, i32);
        if (ev != NULL)
            return put_quoted(b, (const uint8_t *)ev->name, strlen(ev->name));
        snprintf(t, sizeof(t), "%" PRId32, i32);
        return put_str(b, t);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return put_quoted(b, (const uint8_t *)s, s != NULL ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData d;
        memcpy(&d, p, sizeof(d));
        if (buf_append_u8(b, '"') != 0 || b64_append(b, d.data, d.len) != 0 ||
            buf_append_u8(b, '"') != 0)
            return CAIRN_ENOMEM;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m;
        memcpy(&m, p, sizeof(m));
        return write_message(b, m);
    }
    default:
        memcpy(&i32, p, sizeof(i32));
        snprintf(t, sizeof(t), "%" PRId32, i32);
        return put_str(b, t);
    }
}

/* Whether a singular field is at its default (then left out). */
static bool is_default(const ProtobufCFieldDescriptor *f, const uint8_t *p)
{
    size_t es = elem_size(f->type);
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return s == NULL || s[0] == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData d;
        memcpy(&d, p, sizeof(d));
        return d.len == 0;
    }
    default: {
        /* numbers, bools, enums and message pointers: all-zero bytes */
        for (size_t i = 0; i < es; i++)
            if (p[i] != 0)
                return false;
        return true;
    }
    }
}

static int write_message(struct buf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const uint8_t *msg = (const uint8_t *)m;
    if (buf_append_u8(b, '{') != 0)
        return CAIRN_ENOMEM;
    bool first = true;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const uint8_t *p = msg + f->offset;
        size_t n = 1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            memcpy(&n, msg + f->quantifier_offset, sizeof(n));
            if (n == 0)
                continue;
        } else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
            uint32_t which;
            memcpy(&which, msg + f->quantifier_offset, sizeof(which));
            if (which != f->id)
                continue; /* a set oneof member shows even at 0 */
        } else if (is_default(f, p)) {
            continue;
        }
        if ((!first && buf_append_u8(b, ',') != 0) ||
            put_quoted(b, (const uint8_t *)f->name, strlen(f->name)) != 0 ||
            buf_append_u8(b, ':') != 0)
            return CAIRN_ENOMEM;
        first = false;
        int rv;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            rv = write_one(b, f, p);
        } else {
            const uint8_t *elems;
            memcpy(&elems, p, sizeof(elems));
            size_t es = elem_size(f->type);
            rv = buf_append_u8(b, '[') != 0 ? CAIRN_ENOMEM : 0;
            for (size_t k = 0; rv == 0 && k < n; k++) {
                if (k > 0 && buf_append_u8(b, ',') != 0)
                    return CAIRN_ENOMEM;
                rv = write_one(b, f, elems + k * es);
            }
            if (rv == 0 && buf_append_u8(b, ']') != 0)
                rv = CAIRN_ENOMEM;
        }
        if (rv != 0)
            return rv;
    }
    return buf_append_u8(b, '}') != 0 ? CAIRN_ENOMEM : 0;
}

int api__json_write(const ProtobufCMessage *m, struct buf *out)
{
    return write_message(out, m);
}

int api__json_quote(struct buf *out, const char *s)
{
    return put_quoted(out, (const uint8_t *)s, strlen(s));
}

/* The growable byte buffer of buf.h. */
#include "util/buf.h"

#include <string.h>

#include "util/assert.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/mem.h"

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    cairn_free(b->data);
    buf_init(b);
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return CAIRN_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = cairn_realloc(b->data, cap);
    if (!p)
        return CAIRN_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

uint8_t *buf_extend(struct buf *b, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return NULL;
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *dst = buf_extend(b, n);
    if (!dst)
        return CAIRN_ENOMEM;
    memcpy(dst, p, n);
    return 0;
}

int buf_append_u8(struct buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

int buf_append_u32(struct buf *b, uint32_t v)
{
    uint8_t *p = buf_extend(b, 4);
    if (!p)
        return CAIRN_ENOMEM;
    codec_put_u32(p, v);
    return 0;
}

int buf_append_u64(struct buf *b, uint64_t v)
{
    uint8_t *p = buf_extend(b, 8);
    if (!p)
        return CAIRN_ENOMEM;
    codec_put_u64(p, v);
    return 0;
}

int buf_append_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[CAIRN_VARINT_MAX];
    return buf_append(b, tmp, varint_put(tmp, v));
}

int buf_append_zeros(struct buf *b, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *p = buf_extend(b, n);
    if (!p)
        return CAIRN_ENOMEM;
    memset(p, 0, n);
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    CAIRN_ASSERT(n <= b->len);
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

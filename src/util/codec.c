/* Varints and the bounds-checked reader of codec.h. */
#include "util/codec.h"

size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t varint_get(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < CAIRN_VARINT_MAX; i++) {
        uint64_t b = p[i];
        if (i == CAIRN_VARINT_MAX - 1 && b > 1)
            return 0; /* more than 64 bits */
        x |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static const uint8_t *reader_take(struct codec_reader *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint8_t codec_read_u8(struct codec_reader *r)
{
    const uint8_t *p = reader_take(r, 1);
    return p ? p[0] : 0;
}

uint16_t codec_read_u16(struct codec_reader *r)
{
    const uint8_t *p = reader_take(r, 2);
    return p ? codec_get_u16(p) : 0;
}

uint32_t codec_read_u32(struct codec_reader *r)
{
    const uint8_t *p = reader_take(r, 4);
    return p ? codec_get_u32(p) : 0;
}

uint64_t codec_read_u64(struct codec_reader *r)
{
    const uint8_t *p = reader_take(r, 8);
    return p ? codec_get_u64(p) : 0;
}

uint64_t codec_read_varint(struct codec_reader *r)
{
    if (r->bad)
        return 0;
    uint64_t v;
    size_t n = varint_get(r->p + r->off, r->len - r->off, &v);
    if (n == 0) {
        r->bad = true;
        return 0;
    }
    r->off += n;
    return v;
}

const uint8_t *codec_read_bytes(struct codec_reader *r, size_t n)
{
    return reader_take(r, n);
}

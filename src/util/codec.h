/* Byte codec: little-endian fixed-width integers, unsigned LEB128 varints
 * (the protobuf encoding, at most 10 bytes for 64 bits) and a bounds-checked
 * reader for decoding untrusted input without crashing. */
#ifndef CAIRN_UTIL_CODEC_H
#define CAIRN_UTIL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CAIRN_VARINT_MAX 10

static inline void codec_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void codec_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void codec_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t codec_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t codec_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t codec_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Writes v as a varint at p (room for CAIRN_VARINT_MAX bytes); returns the
 * number of bytes written. */
size_t varint_put(uint8_t *p, uint64_t v);
/* Bytes varint_put would write for v. */
size_t varint_size(uint64_t v);
/* Reads a varint from at most len bytes; returns bytes consumed, or 0 if the
 * input is truncated, longer than 10 bytes or overflows 64 bits. */
size_t varint_get(const uint8_t *p, size_t len, uint64_t *v);
/* Zig-zag mapping of signed values, so small negatives encode short. */
static inline uint64_t zigzag_encode(int64_t v)
{
    return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}
static inline int64_t zigzag_decode(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A reader over untrusted bytes. Every get checks bounds; the first failure
 * sets `bad` and later gets return zeros, so a decoder may read a whole record
 * and check `bad` once at the end. The bytes are borrowed: they must outlive
 * the reader and any pointer codec_get_bytes returned. */
struct codec_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
    bool bad;
};

static inline void codec_reader_init(struct codec_reader *r, const void *p,
                                     size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->bad = false;
}
static inline size_t codec_reader_left(const struct codec_reader *r)
{
    return r->bad ? 0 : r->len - r->off;
}
uint8_t codec_read_u8(struct codec_reader *r);
uint16_t codec_read_u16(struct codec_reader *r);
uint32_t codec_read_u32(struct codec_reader *r);
uint64_t codec_read_u64(struct codec_reader *r);
uint64_t codec_read_varint(struct codec_reader *r);
/* A pointer to the next n bytes (borrowed from the input), or NULL and bad. */
const uint8_t *codec_read_bytes(struct codec_reader *r, size_t n);

#endif

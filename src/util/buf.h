/* Growable byte buffer: owned bytes with a length and a capacity. Appends
 * grow it geometrically; a failed growth leaves the buffer as it was and
 * returns CAIRN_ENOMEM. Not thread-safe; one owner at a time. */
#ifndef CAIRN_UTIL_BUF_H
#define CAIRN_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data; /* NULL while cap == 0 */
    size_t len;
    size_t cap;
};

#define BUF_INIT   \
    {              \
        NULL, 0, 0 \
    }

void buf_init(struct buf *b);
/* Frees the bytes; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Makes room for at least `extra` more bytes past len. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_u8(struct buf *b, uint8_t v);
int buf_append_u32(struct buf *b, uint32_t v); /* little-endian */
int buf_append_u64(struct buf *b, uint64_t v); /* little-endian */
int buf_append_varint(struct buf *b, uint64_t v);
/* Appends n zero bytes. */
int buf_append_zeros(struct buf *b, size_t n);
/* Reserves n bytes past len and returns a pointer to them, len grown by n;
 * NULL when out of memory. The pointer is valid until the next growth. */
uint8_t *buf_extend(struct buf *b, size_t n);
/* Drops the first n bytes (n <= len), keeping the rest. */
void buf_consume(struct buf *b, size_t n);
/* Sets len to 0, keeping the capacity. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

#endif

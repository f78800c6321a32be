/* CRC-32C: slicing-by-8 tables built once, and the SSE4.2 instruction path. */
#include "util/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY_REFLECTED : 0);
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_table_once, crc_table_build);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c; /* little-endian: the low 32 bits meet the running crc */
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* The crc32 instruction has a latency of three cycles and a throughput of
 * one, so one dependent chain runs at a third of the unit's speed. Inputs
 * are therefore cut into blocks of three lanes computed in parallel and
 * joined with the linearity of the CRC register:
 *   reg(s, A||B) = shift(reg(s, A)) ^ reg(0, B)
 * where shift(x) is the register after feeding a lane's length of zero
 * bytes from x, a linear map tabulated once per lane length. Long lanes
 * take most of a long input; short ones the rest, so that a WAL record of
 * a few hundred bytes or the tail of a 4 KiB one is not left to one
 * chain (it was a third of a 4 KiB record's time). */
#define CRC_LANE_LONG 512
#define CRC_LANE_SHORT 64

struct crc_shift {
    uint32_t t[4][256];
};
static struct crc_shift crc_shift_long, crc_shift_short;
static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

static uint32_t crc_zeros_raw(uint32_t reg, size_t n)
{
    while (n--)
        reg = crc_table[0][reg & 0xff] ^ (reg >> 8);
    return reg;
}

static void crc_shift_fill(struct crc_shift *s, size_t lane)
{
    uint32_t basis[32];
    for (int i = 0; i < 32; i++)
        basis[i] = crc_zeros_raw(1u << i, lane);
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++) {
                if (b & (1u << j))
                    v ^= basis[8 * k + j];
            }
            s->t[k][b] = v;
        }
    }
}

static void crc_shift_build(void)
{
    pthread_once(&crc_table_once, crc_table_build);
    crc_shift_fill(&crc_shift_long, CRC_LANE_LONG);
    crc_shift_fill(&crc_shift_short, CRC_LANE_SHORT);
}

static inline uint32_t crc_lane_shift(const struct crc_shift *s, uint32_t reg)
{
    return s->t[0][reg & 0xff] ^ s->t[1][(reg >> 8) & 0xff] ^
           s->t[2][(reg >> 16) & 0xff] ^ s->t[3][reg >> 24];
}

/* Feeds `blocks` blocks of three `lane`-byte lanes from *p into c, also
 * copying them to *dst when dst is not NULL; advances both. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
crc_hw_blocks(uint64_t c, uint8_t **dst, const uint8_t **p, size_t blocks,
              size_t lane, const struct crc_shift *s)
{
    const uint8_t *q = *p;
    uint8_t *o = dst ? *dst : NULL;
    for (size_t n = 0; n < blocks; n++) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < lane; i += 8) {
            uint64_t wa, wb, wd;
            memcpy(&wa, q + i, 8);
            memcpy(&wb, q + lane + i, 8);
            memcpy(&wd, q + 2 * lane + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            d = _mm_crc32_u64(d, wd);
            if (o) {
                memcpy(o + i, &wa, 8);
                memcpy(o + lane + i, &wb, 8);
                memcpy(o + 2 * lane + i, &wd, 8);
            }
        }
        uint32_t ab = crc_lane_shift(s, (uint32_t)a) ^ (uint32_t)b;
        c = crc_lane_shift(s, ab) ^ (uint32_t)d;
        q += 3 * lane;
        if (o)
            o += 3 * lane;
    }
    *p = q;
    if (dst)
        *dst = o;
    return c;
}

/* crc32c_hw, copying the bytes to dst on the way when dst is not NULL
 * (inlined twice, so the plain path carries no copy). */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
crc_hw(uint32_t crc, uint8_t *dst, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        if (dst)
            *dst++ = *p;
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    if (len >= 3 * CRC_LANE_SHORT) {
        pthread_once(&crc_shift_once, crc_shift_build);
        size_t n = len / (3 * CRC_LANE_LONG);
        c = crc_hw_blocks(c, dst ? &dst : NULL, &p, n, CRC_LANE_LONG,
                          &crc_shift_long);
        len -= n * 3 * CRC_LANE_LONG;
        n = len / (3 * CRC_LANE_SHORT);
        c = crc_hw_blocks(c, dst ? &dst : NULL, &p, n, CRC_LANE_SHORT,
                          &crc_shift_short);
        len -= n * 3 * CRC_LANE_SHORT;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (dst) {
            memcpy(dst, &w, 8);
            dst += 8;
        }
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--) {
        if (dst)
            *dst++ = *p;
        c = _mm_crc32_u8((uint32_t)c, *p++);
    }
    return ~(uint32_t)c;
}

__attribute__((target("sse4.2"))) uint32_t
crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return crc_hw(crc, NULL, data, len);
}

__attribute__((target("sse4.2"))) uint32_t
crc32c_hw_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
    return crc_hw(crc, dst, src, len);
}

bool crc32c_hw_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return crc32c_sw(crc, data, len);
}

uint32_t crc32c_hw_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
    if (len)
        memcpy(dst, src, len);
    return crc32c_sw(crc, dst, len);
}

bool crc32c_hw_available(void)
{
    return false;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn crc_impl;
static pthread_once_t crc_impl_once = PTHREAD_ONCE_INIT;

static void crc_impl_pick(void)
{
    crc_impl = crc32c_hw_available() ? crc32c_hw : crc32c_sw;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_impl_once, crc_impl_pick);
    return crc_impl(crc, data, len);
}

uint32_t crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
    pthread_once(&crc_impl_once, crc_impl_pick);
    if (crc_impl != crc32c_sw)
        return crc32c_hw_copy(crc, dst, src, len);
    if (len)
        memcpy(dst, src, len);
    return crc32c_sw(crc, dst, len);
}

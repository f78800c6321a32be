/* CRC-32C: slicing-by-8 tables built once, the SSE4.2 instruction path, and
 * carry-less-multiply folding for long inputs (AVX-512 VPCLMULQDQ). */
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
#include <immintrin.h>

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

/* Long inputs where the CPU has 512-bit carry-less multiplication: the
 * crc32 instruction takes one 8-byte word per cycle; folding takes 64
 * bytes per pair of vector multiplies (1 MiB, hot in cache, on the build
 * machine's EPYC: 35 us with crc32, 17 us folding). The input is read as
 * 128-bit chunks A(x) = L(x) x^64 + H(x) (L the earlier 8 bytes, reflected); a
 * chunk moved D bytes further on is L (x^(64+8D) mod P) + H (x^(8D) mod P), a
 * 96-bit value added into the chunk found there. 32 chunks (eight
 * vectors: fewer would wait on the multiply's latency) are carried at a
 * time; at the end they fold into one chunk V,
 * and reg(0, V) (two crc32 instructions) is the register of the whole
 * input, the starting register having been added into its first 4 bytes.
 * The constants are reduced powers of x in the register's bit order; each
 * is one bit lower than the power because a carry-less multiply of two
 * reflected values comes out one place short. */
#define CRC_FOLD_BLOCK 512
#define CRC_FOLD_MIN 1024

static uint64_t crc_fold_k[5][2]; /* distance 512, 64, 48, 32, 16 bytes */
static bool crc_fold_ok;
static pthread_once_t crc_fold_once = PTHREAD_ONCE_INIT;

/* x^n mod P, as the crc register holds a polynomial (bit i: x^(31-i)). */
static uint32_t crc_xpow(unsigned n)
{
    uint32_t r = 0x80000000u;
    while (n--)
        r = (r >> 1) ^ ((r & 1) ? CRC32C_POLY_REFLECTED : 0);
    return r;
}

static void crc_fold_build(void)
{
    static const unsigned dist[5] = {512, 64, 48, 32, 16};
    for (int i = 0; i < 5; i++) {
        crc_fold_k[i][0] = crc_xpow(8 * dist[i] + 64 - 33);
        crc_fold_k[i][1] = crc_xpow(8 * dist[i] - 33);
    }
    __builtin_cpu_init();
    crc_fold_ok = __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("vpclmulqdq") &&
                  __builtin_cpu_supports("pclmul") &&
                  __builtin_cpu_supports("sse4.2");
}

#define CRC_FOLD_TARGET "avx512f,vpclmulqdq,pclmul,sse4.2"

__attribute__((target(CRC_FOLD_TARGET))) static inline __m512i
crc_fold512(__m512i x, __m512i k, __m512i next)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11), next,
                                     0x96);
}

__attribute__((target(CRC_FOLD_TARGET))) static inline __m128i
crc_fold128(__m128i x, int dist_i, __m128i next)
{
    __m128i k = _mm_loadu_si128((const __m128i *)crc_fold_k[dist_i]);
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
                                       _mm_clmulepi64_si128(x, k, 0x11)),
                         next);
}

/* The register after `blocks` * CRC_FOLD_BLOCK bytes at p (blocks >= 1)
 * from register c, also copying them to dst when it is not NULL. */
__attribute__((target(CRC_FOLD_TARGET))) static uint64_t
crc_fold(uint64_t c, uint8_t *dst, const uint8_t *p, size_t blocks)
{
    __m512i x[8];
    for (int i = 0; i < 8; i++) {
        x[i] = _mm512_loadu_si512(p + 64 * i);
        if (dst)
            _mm512_storeu_si512(dst + 64 * i, x[i]);
    }
    x[0] = _mm512_xor_si512(
        x[0], _mm512_castsi128_si512(_mm_cvtsi32_si128((int)(uint32_t)c)));
    __m512i k =
        _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)crc_fold_k[0]));
    for (size_t n = 1; n < blocks; n++) {
        p += CRC_FOLD_BLOCK;
        if (dst)
            dst += CRC_FOLD_BLOCK;
        for (int i = 0; i < 8; i++) {
            __m512i in = _mm512_loadu_si512(p + 64 * i);
            if (dst)
                _mm512_storeu_si512(dst + 64 * i, in);
            x[i] = crc_fold512(x[i], k, in);
        }
    }
    k = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)crc_fold_k[1]));
    for (int i = 1; i < 8; i++)
        x[i] = crc_fold512(x[i - 1], k, x[i]);
    __m128i v = _mm512_extracti32x4_epi32(x[7], 3);
    v = crc_fold128(_mm512_extracti32x4_epi32(x[7], 2), 4, v);
    v = crc_fold128(_mm512_extracti32x4_epi32(x[7], 1), 3, v);
    v = crc_fold128(_mm512_castsi512_si128(x[7]), 2, v);
    uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(v));
    return _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(v, 1));
}

/* crc32c_hw, copying the bytes to dst on the way when dst is not NULL
 * (inlined twice, so the plain path carries no copy). */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
crc_hw(uint32_t crc, uint8_t *dst, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    /* No byte steps to align p: unaligned loads cost nothing measurable,
     * and a WAL record's checksum starts 4 bytes off alignment. */
    if (len >= CRC_FOLD_MIN) {
        pthread_once(&crc_fold_once, crc_fold_build);
        if (crc_fold_ok) {
            size_t n = len / CRC_FOLD_BLOCK;
            c = crc_fold(c, dst, p, n);
            p += n * CRC_FOLD_BLOCK;
            if (dst)
                dst += n * CRC_FOLD_BLOCK;
            len -= n * CRC_FOLD_BLOCK;
        }
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

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
 * one, so one dependent chain runs at a third of the unit's speed. Long
 * inputs are therefore cut into three lanes of CRC_LANE bytes computed in
 * parallel and joined with the linearity of the CRC register:
 *   reg(s, A||B) = shift(reg(s, A)) ^ reg(0, B)
 * where shift(x) is the register after feeding CRC_LANE zero bytes from x,
 * a linear map tabulated once (crc_shift). */
#define CRC_LANE 512

static uint32_t crc_shift[4][256];
static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

static uint32_t crc_zeros_raw(uint32_t reg, size_t n)
{
    while (n--)
        reg = crc_table[0][reg & 0xff] ^ (reg >> 8);
    return reg;
}

static void crc_shift_build(void)
{
    pthread_once(&crc_table_once, crc_table_build);
    uint32_t basis[32];
    for (int i = 0; i < 32; i++)
        basis[i] = crc_zeros_raw(1u << i, CRC_LANE);
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++) {
                if (b & (1u << j))
                    v ^= basis[8 * k + j];
            }
            crc_shift[k][b] = v;
        }
    }
}

static inline uint32_t crc_lane_shift(uint32_t reg)
{
    return crc_shift[0][reg & 0xff] ^ crc_shift[1][(reg >> 8) & 0xff] ^
           crc_shift[2][(reg >> 16) & 0xff] ^ crc_shift[3][reg >> 24];
}

__attribute__((target("sse4.2"))) uint32_t
crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    if (len >= 3 * CRC_LANE) {
        pthread_once(&crc_shift_once, crc_shift_build);
        do {
            uint64_t a = c, b = 0, d = 0;
            for (size_t i = 0; i < CRC_LANE; i += 8) {
                uint64_t wa, wb, wd;
                memcpy(&wa, p + i, 8);
                memcpy(&wb, p + CRC_LANE + i, 8);
                memcpy(&wd, p + 2 * CRC_LANE + i, 8);
                a = _mm_crc32_u64(a, wa);
                b = _mm_crc32_u64(b, wb);
                d = _mm_crc32_u64(d, wd);
            }
            uint32_t ab = crc_lane_shift((uint32_t)a) ^ (uint32_t)b;
            c = crc_lane_shift(ab) ^ (uint32_t)d;
            p += 3 * CRC_LANE;
            len -= 3 * CRC_LANE;
        } while (len >= 3 * CRC_LANE);
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
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

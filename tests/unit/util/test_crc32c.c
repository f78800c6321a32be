/* CRC-32C: known check values, the hardware and table paths agreeing on
 * every length 0..4096 at every alignment, and the copying variant. */
#include <string.h>

#include "tests.h"
#include "util/util.h"

static void crc_check_value(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    /* 32 zero bytes: RFC 3720 B.4 test vector. */
    uint8_t zeros[32] = {0};
    assert_int_equal(crc32c(0, zeros, sizeof zeros), 0x8A9136AAu);
    uint8_t ones[32];
    memset(ones, 0xff, sizeof ones);
    assert_int_equal(crc32c(0, ones, sizeof ones), 0x62A8AB43u);
}

static void crc_extends(void **state)
{
    (void)state;
    const char *s = "the quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = crc32c(0, s, n);
    for (size_t cut = 0; cut <= n; cut++)
        assert_int_equal(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
}

static void crc_paths_agree(void **state)
{
    (void)state;
    if (!crc32c_hw_available())
        skip();
    enum { MAXLEN = 4096, ALIGN = 8 };
    static uint8_t data[MAXLEN + ALIGN];
    struct prng r;
    prng_seed(&r, 42);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)prng_next(&r);
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t off = 0; off < ALIGN; off++) {
            uint32_t seed = (uint32_t)prng_next(&r);
            uint32_t hw = crc32c_hw(seed, data + off, len);
            uint32_t sw = crc32c_sw(seed, data + off, len);
            if (hw != sw)
                fail_msg("len %zu off %zu: hw %08x sw %08x", len, off, hw, sw);
        }
    }
}

/* Long inputs go through the folding path where the CPU has it (many
 * blocks, then the lanes and the tail); both entry points agree with the
 * table path around every multiple of the block size up to 70 KB. */
static void crc_long_paths_agree(void **state)
{
    (void)state;
    if (!crc32c_hw_available())
        skip();
    enum { MAXLEN = 70000, ALIGN = 8 };
    static uint8_t data[MAXLEN + ALIGN], out[MAXLEN + ALIGN];
    struct prng r;
    prng_seed(&r, 11);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)prng_next(&r);
    static const int around[] = {-9, -1, 0, 1, 8, 200};
    for (size_t k = 1; k * 256 < MAXLEN; k++) {
        for (size_t a = 0; a < sizeof around / sizeof around[0]; a++) {
            size_t len = (size_t)((int)(k * 256) + around[a]);
            size_t off = k % ALIGN;
            if (len > MAXLEN)
                continue;
            uint32_t seed = (uint32_t)prng_next(&r);
            uint32_t sw = crc32c_sw(seed, data + off, len);
            uint32_t hw = crc32c_hw(seed, data + off, len);
            uint32_t cp =
                crc32c_copy(seed, out + (len % ALIGN), data + off, len);
            if (hw != sw || cp != sw)
                fail_msg("len %zu off %zu: hw %08x copy %08x sw %08x", len, off,
                         hw, cp, sw);
            if (memcmp(out + (len % ALIGN), data + off, len) != 0)
                fail_msg("len %zu: copied bytes differ", len);
        }
    }
}

/* crc32c_copy gives crc32c's value and copies exactly the bytes, at every
 * length (both lane sizes and the tails) and alignment of both sides. */
static void crc_copy_agrees(void **state)
{
    (void)state;
    enum { MAXLEN = 4200, ALIGN = 8 };
    static uint8_t data[MAXLEN + ALIGN], out[MAXLEN + 2 * ALIGN];
    struct prng r;
    prng_seed(&r, 7);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)prng_next(&r);
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t off = 0; off < ALIGN; off++) {
            size_t doff = (off * 3 + len) % ALIGN;
            memset(out, 0xA5, sizeof out);
            uint32_t seed = (uint32_t)prng_next(&r);
            uint32_t got = crc32c_copy(seed, out + doff, data + off, len);
            uint32_t want = crc32c_sw(seed, data + off, len);
            if (got != want)
                fail_msg("len %zu off %zu: copy %08x sw %08x", len, off, got,
                         want);
            if (memcmp(out + doff, data + off, len) != 0)
                fail_msg("len %zu off %zu: bytes differ", len, off);
            for (size_t i = 0; i < sizeof out; i++)
                if ((i < doff || i >= doff + len) && out[i] != 0xA5)
                    fail_msg("len %zu: wrote outside at %zu", len, i);
        }
    }
}

int test_crc32c_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc_check_value),
        cmocka_unit_test(crc_extends),
        cmocka_unit_test(crc_paths_agree),
        cmocka_unit_test(crc_long_paths_agree),
        cmocka_unit_test(crc_copy_agrees),
    };
    return cmocka_run_group_tests_name("crc32c", tests, NULL, NULL);
}

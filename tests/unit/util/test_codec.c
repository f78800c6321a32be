/* Varints, fixed-width integers and the bounds-checked reader. */
#include <string.h>

#include "tests.h"
#include "util/util.h"

static void varint_round_trip(void **state)
{
    (void)state;
    const uint64_t vals[] = {0,
                             1,
                             127,
                             128,
                             255,
                             300,
                             16383,
                             16384,
                             (1ull << 32) - 1,
                             1ull << 32,
                             (1ull << 63),
                             UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[CAIRN_VARINT_MAX];
        size_t n = varint_put(b, vals[i]);
        assert_int_equal(n, varint_size(vals[i]));
        uint64_t v = 0;
        assert_int_equal(varint_get(b, n, &v), n);
        assert_true(v == vals[i]);
        /* every truncation is refused */
        for (size_t k = 0; k < n; k++)
            assert_int_equal(varint_get(b, k, &v), 0);
    }
    uint8_t b[CAIRN_VARINT_MAX];
    assert_int_equal(varint_put(b, UINT64_MAX), 10);
    assert_int_equal(varint_put(b, 300), 2);
    assert_int_equal(b[0], 0xac);
    assert_int_equal(b[1], 0x02);
}

static void varint_random(void **state)
{
    (void)state;
    struct prng r;
    prng_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t x = prng_next(&r) >> prng_below(&r, 64);
        uint8_t b[CAIRN_VARINT_MAX];
        size_t n = varint_put(b, x);
        uint64_t y;
        assert_int_equal(varint_get(b, n, &y), n);
        assert_true(x == y);
    }
}

static void varint_rejects_malformed(void **state)
{
    (void)state;
    uint64_t v;
    uint8_t eleven[11];
    memset(eleven, 0x80, sizeof eleven);
    assert_int_equal(varint_get(eleven, sizeof eleven, &v), 0);
    /* ten bytes whose last carries more than the 64th bit */
    uint8_t over[10];
    memset(over, 0xff, 9);
    over[9] = 0x02;
    assert_int_equal(varint_get(over, sizeof over, &v), 0);
}

static void zigzag(void **state)
{
    (void)state;
    assert_true(zigzag_encode(0) == 0);
    assert_true(zigzag_encode(-1) == 1);
    assert_true(zigzag_encode(1) == 2);
    assert_true(zigzag_encode(INT64_MIN) == UINT64_MAX);
    const int64_t vals[] = {0, -1, 1, 1000, -1000, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < 7; i++)
        assert_true(zigzag_decode(zigzag_encode(vals[i])) == vals[i]);
}

static void fixed_width(void **state)
{
    (void)state;
    uint8_t b[8];
    codec_put_u32(b, 0x11223344u);
    assert_int_equal(b[0], 0x44);
    assert_int_equal(codec_get_u32(b), 0x11223344u);
    codec_put_u64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 0x08);
    assert_true(codec_get_u64(b) == 0x0102030405060708ull);
    codec_put_u16(b, 0xbeef);
    assert_int_equal(codec_get_u16(b), 0xbeef);
}

static void reader_bounds(void **state)
{
    (void)state;
    uint8_t in[] = {1, 2, 3, 4, 5, 0xac, 0x02};
    struct codec_reader r;
    codec_reader_init(&r, in, sizeof in);
    assert_int_equal(codec_read_u8(&r), 1);
    assert_int_equal(codec_read_u32(&r), 0x05040302u);
    assert_true(codec_read_varint(&r) == 300);
    assert_false(r.bad);
    assert_int_equal(codec_reader_left(&r), 0);
    assert_int_equal(codec_read_u8(&r), 0);
    assert_true(r.bad);
    assert_null(codec_read_bytes(&r, 0));

    codec_reader_init(&r, in, 3);
    assert_true(codec_read_u64(&r) == 0);
    assert_true(r.bad);
}

int test_codec_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_round_trip),
        cmocka_unit_test(varint_random),
        cmocka_unit_test(varint_rejects_malformed),
        cmocka_unit_test(zigzag),
        cmocka_unit_test(fixed_width),
        cmocka_unit_test(reader_bounds),
    };
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}

/* The growable buffer: appends, growth, consume, and failure on ENOMEM. */
#include <string.h>

#include "tests.h"
#include "util/util.h"

static void buf_appends(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_append_u8(&b, 'd'), 0);
    assert_int_equal(buf_append_u32(&b, 0x01020304u), 0);
    assert_int_equal(buf_append_varint(&b, 300), 0);
    assert_int_equal(buf_append_u64(&b, 7), 0);
    assert_int_equal(buf_append_zeros(&b, 3), 0);
    assert_int_equal(b.len, 3 + 1 + 4 + 2 + 8 + 3);
    assert_memory_equal(b.data, "abcd", 4);
    assert_int_equal(codec_get_u32(b.data + 4), 0x01020304u);
    assert_int_equal(b.data[8], 0xac);
    assert_true(codec_get_u64(b.data + 10) == 7);
    assert_int_equal(b.data[18] | b.data[19] | b.data[20], 0);
    buf_consume(&b, 4);
    assert_int_equal(b.len, 17);
    assert_int_equal(codec_get_u32(b.data), 0x01020304u);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    assert_null(b.data);
}

static void buf_grows_large(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(buf_append_u32(&b, (uint32_t)i), 0);
    assert_int_equal(b.len, 400000);
    for (int i = 0; i < 100000; i += 997)
        assert_int_equal(codec_get_u32(b.data + 4 * i), (uint32_t)i);
    assert_true(b.cap >= b.len);
    buf_free(&b);
}

static void buf_enomem_leaves_it_intact(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    cairn_mem_fault_set(0, 1);
    char big[4096] = {0};
    assert_int_equal(buf_append(&b, big, sizeof big), CAIRN_ENOMEM);
    cairn_mem_fault_set(-1, 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "hello", 5);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), CAIRN_ETOOBIG);
    buf_free(&b);
}

int test_buf_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_appends),
        cmocka_unit_test(buf_grows_large),
        cmocka_unit_test(buf_enomem_leaves_it_intact),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}

/* Wire helpers: grpc-timeout values, percent-encoding of grpc-message, and
 * status code names. */
#include <string.h>

#include "fixture.h"

static void timeout_parse(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(rpc_timeout_parse("100m", &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(rpc_timeout_parse("5S", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(rpc_timeout_parse("2M", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(rpc_timeout_parse("1H", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(rpc_timeout_parse("1500u", &ms), 0);
    assert_int_equal(ms, 2); /* rounded up */
    assert_int_equal(rpc_timeout_parse("1n", &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(rpc_timeout_parse("0m", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(rpc_timeout_parse("99999999S", &ms), 0);
    assert_int_equal(ms, 99999999000LL);
    assert_int_equal(rpc_timeout_parse("123456789S", &ms), CAIRN_EMALFORMED);
    assert_int_equal(rpc_timeout_parse("10", &ms), CAIRN_EMALFORMED);
    assert_int_equal(rpc_timeout_parse("m", &ms), CAIRN_EMALFORMED);
    assert_int_equal(rpc_timeout_parse("1x", &ms), CAIRN_EMALFORMED);
    assert_int_equal(rpc_timeout_parse("-1S", &ms), CAIRN_EMALFORMED);
    assert_int_equal(rpc_timeout_parse("", &ms), CAIRN_EMALFORMED);
}

static void timeout_format(void **state)
{
    (void)state;
    char b[32];
    int64_t ms;
    rpc_timeout_format(250, b, sizeof(b));
    assert_string_equal(b, "250m");
    rpc_timeout_format(200000000, b, sizeof(b));
    assert_string_equal(b, "200000S");
    /* whatever is formatted parses back to at least the value */
    const int64_t v[] = {
        0, 1, 99999999, 100000000, 123456789012LL, (int64_t)1 << 50};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        rpc_timeout_format(v[i], b, sizeof(b));
        assert_int_equal(rpc_timeout_parse(b, &ms), 0);
        assert_true(ms >= v[i] || v[i] > 99999999LL * 3600000);
    }
}

static void percent_coding(void **state)
{
    (void)state;
    char out[64];
    const char *in = "a 100% \n\xc3\xa9~";
    size_t n = rpc_percent_encode(in, out, sizeof(out));
    assert_string_equal(out, "a 100%25 %0A%C3%A9~");
    assert_int_equal(n, strlen(out));
    rpc_percent_decode(out);
    assert_string_equal(out, in);
    /* too small: cut at a whole escape, never half of one */
    char tiny[8];
    n = rpc_percent_encode("abcd\n\n", tiny, sizeof(tiny));
    assert_int_equal(n, 10);
    assert_string_equal(tiny, "abcd%0A");
    /* malformed escapes stay as they are */
    char bad[] = "50%zz%4";
    rpc_percent_decode(bad);
    assert_string_equal(bad, "50%zz%4");
}

static void code_names(void **state)
{
    (void)state;
    assert_string_equal(rpc_code_name(RPC_OK), "OK");
    assert_string_equal(rpc_code_name(RPC_DEADLINE_EXCEEDED),
                        "DEADLINE_EXCEEDED");
    assert_string_equal(rpc_code_name(RPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(rpc_code_name(17), "UNKNOWN");
    assert_string_equal(rpc_code_name(-1), "UNKNOWN");
}

int test_wire_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timeout_parse),
        cmocka_unit_test(timeout_format),
        cmocka_unit_test(percent_coding),
        cmocka_unit_test(code_names),
    };
    return cmocka_run_group_tests_name("rpc wire", tests, NULL, NULL);
}

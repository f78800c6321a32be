/* The error table: codes are distinct and negative, texts and names resolve,
 * errno maps, and messages prefix layer by layer without overflowing. */
#include <errno.h>
#include <string.h>

#include "tests.h"
#include "util/util.h"

static void err_table(void **state)
{
    (void)state;
    assert_int_equal(CAIRN_ENOMEM, -1);
    assert_int_equal(CAIRN_EINVAL, -2);
    assert_string_equal(cairn_strerror(CAIRN_ENOSPC),
                        "no space left on device");
    assert_string_equal(cairn_errname(CAIRN_ECORRUPT), "CORRUPT");
    assert_string_equal(cairn_errname(0), "OK");
    assert_string_equal(cairn_strerror(1), "unknown error");
    assert_string_equal(cairn_strerror(-100000), "unknown error");
    for (int c = -1; c > -CAIRN__ERR_COUNT; c--) {
        assert_non_null(cairn_strerror(c));
        assert_string_not_equal(cairn_strerror(c), "unknown error");
        for (int d = c - 1; d > -CAIRN__ERR_COUNT; d--)
            assert_string_not_equal(cairn_errname(c), cairn_errname(d));
    }
}

static void err_errno(void **state)
{
    (void)state;
    assert_int_equal(cairn_err_from_errno(ENOSPC), CAIRN_ENOSPC);
    assert_int_equal(cairn_err_from_errno(ENOMEM), CAIRN_ENOMEM);
    assert_int_equal(cairn_err_from_errno(EIO), CAIRN_EIO);
    assert_int_equal(cairn_err_from_errno(EPIPE), CAIRN_EIO);
    assert_int_equal(cairn_err_from_errno(0), 0);
}

static void err_messages_prefix(void **state)
{
    (void)state;
    struct cairn_errmsg m;
    int rv = cairn_errmsg_code(&m, CAIRN_ENOSPC, "open %s", "0001.wal");
    assert_int_equal(rv, CAIRN_ENOSPC);
    cairn_errmsg_prefixf(&m, "persist metadata");
    assert_string_equal(m.text, "persist metadata: open 0001.wal: no space "
                                "left on device");
    cairn_errmsg_setf(&m, "%s", "");
    cairn_errmsg_prefixf(&m, "alone");
    assert_string_equal(m.text, "alone");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cairn_errmsg_setf(&m, "%s", big);
    cairn_errmsg_prefixf(&m, "%s", big);
    assert_int_equal(strlen(m.text), CAIRN_ERRMSG_SIZE - 1);
}

int test_err_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(err_table),
        cmocka_unit_test(err_errno),
        cmocka_unit_test(err_messages_prefix),
    };
    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}

/* The node unit test program: runs every group of tests_node.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "tests_node.h"

uint64_t node_test_seed(uint64_t dflt)
{
    const char *s = getenv("CAIRN_TEST_SEED");
    return s != NULL && *s != 0 ? strtoull(s, NULL, 0) : dflt;
}

int main(void)
{
    int failed = 0;
    failed += node_test_codec();
    failed += node_test_member();
    failed += node_test_ops();
    failed += node_test_compact();
    failed += node_test_random();
    failed += node_test_auth();
    failed += node_test_reconfig();
    return failed == 0 ? 0 : 1;
}

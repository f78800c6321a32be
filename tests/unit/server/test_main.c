/* The server unit test program: runs every group and fails if any fails. */
#include "tests.h"

int main(void)
{
    int failed = 0;
    failed += test_config_run();
    failed += test_flags_run();
    failed += test_server_run();
    failed += test_wake_run();
    return failed != 0;
}

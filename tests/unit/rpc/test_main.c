/* Runs every rpc test group; the exit status counts failed tests. */
#include "fixture.h"

int main(void)
{
    int failed = 0;
    failed += test_wire_group();
    failed += test_calls_group();
    failed += test_bad_group();
    failed += test_etcdctl_group();
    return failed ? 1 : 0;
}

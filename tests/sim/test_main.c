/* Runs the simulator's own test groups; the exit status counts failures. */
#include "sim_tests.h"

int main(void)
{
    int failed = 0;
    failed += test_lincheck_group();
    failed += test_world_group();
    failed += test_cluster_group();
    failed += test_member_group();
    return failed ? 1 : 0;
}

/* Runs every mvcc test group; the exit status counts failed groups. */
#include "tests.h"

int main(void)
{
    int failed = 0;
    failed += test_kv_group();
    failed += test_longkeys_group();
    failed += test_maint_group();
    failed += test_watch_group();
    failed += test_faults_group();
    failed += test_threads_group();
    failed += test_tree_group();
    failed += test_model_group();
    return failed ? 1 : 0;
}

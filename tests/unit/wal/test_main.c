/* Runs every wal test group; the exit status counts failed tests. */
#include "tests.h"

int main(void)
{
    int failed = 0;
    failed += test_wal_basic_group();
    failed += test_wal_damage_group();
    failed += test_wal_rotation_group();
    failed += test_wal_faults_group();
    failed += test_wal_snap_group();
    failed += test_wal_model_group();
    failed += test_wal_posix_group();
    return failed ? 1 : 0;
}

/* Runs every raft test group; the exit status counts failed tests. */
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>

uint64_t test_seed(void)
{
    const char *s = getenv("CAIRN_TEST_SEED");
    return s != NULL ? strtoull(s, NULL, 0) : 20261129u;
}

int test_scale(int base)
{
    const char *s = getenv("CAIRN_TEST_LONG");
    return s != NULL ? base * atoi(s) : base;
}

int main(void)
{
    int failed = 0;
    printf("raft tests, seed %llu\n", (unsigned long long)test_seed());
    failed += test_quorum_group();
    failed += test_codec_group();
    failed += test_log_group();
    failed += test_election_group();
    failed += test_replication_group();
    failed += test_snapshot_group();
    failed += test_read_group();
    failed += test_transfer_group();
    failed += test_membership_group();
    failed += test_safety_group();
    failed += test_faults_group();
    failed += test_script_group();
    failed += test_corner_group();
    return failed ? 1 : 0;
}

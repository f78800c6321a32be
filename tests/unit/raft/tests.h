/* The raft test groups; each test_*.c defines one. */
#ifndef CAIRN_TEST_RAFT_TESTS_H
#define CAIRN_TEST_RAFT_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "harness.h"

/* Seed for randomized tests: CAIRN_TEST_SEED or a constant. */
uint64_t test_seed(void);
/* Iterations for randomized tests: CAIRN_TEST_LONG multiplies them. */
int test_scale(int base);

int test_quorum_group(void);
int test_codec_group(void);
int test_log_group(void);
int test_election_group(void);
int test_replication_group(void);
int test_snapshot_group(void);
int test_read_group(void);
int test_transfer_group(void);
int test_membership_group(void);
int test_safety_group(void);
int test_faults_group(void);
int test_script_group(void);
int test_corner_group(void);

#endif

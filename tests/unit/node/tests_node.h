/* The node test program's groups, one per concept, run from main.c. */
#ifndef CAIRN_TESTS_NODE_H
#define CAIRN_TESTS_NODE_H

#include <stdint.h>

/* The seed for randomized tests: CAIRN_TEST_SEED, else dflt. */
uint64_t node_test_seed(uint64_t dflt);

int node_test_codec(void);
int node_test_member(void);
int node_test_ops(void);
int node_test_compact(void);
int node_test_random(void);
int node_test_auth(void);
int node_test_reconfig(void);

#endif

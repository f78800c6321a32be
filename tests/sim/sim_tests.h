/* The simulator's test groups; each test_*.c defines one. */
#ifndef CAIRN_SIM_TESTS_H
#define CAIRN_SIM_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "cluster.h"

int test_lincheck_group(void);
int test_world_group(void);
int test_cluster_group(void);
int test_member_group(void);

/* sim_cluster_run or sim_members_run. */
typedef int (*sim_run_fn)(const struct sim_options *opt, struct sim_result *res,
                          FILE *trace_out);

/* Runs seed twice: it passes, both runs agree (trace hash, events,
 * operations) and it did some work. */
void sim_expect_replay(sim_run_fn run, uint64_t seed, struct sim_result *a,
                       struct sim_result *b);
/* Two seeds give different traces. */
void sim_expect_seeds_differ(sim_run_fn run, uint64_t s1, uint64_t s2);

#endif

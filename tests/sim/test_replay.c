/* Replay checks shared by the raft-only and whole-member test groups. */
#include <stdio.h>
#include <stdlib.h>

#include "sim_tests.h"

void sim_expect_replay(sim_run_fn run, uint64_t seed, struct sim_result *a,
                       struct sim_result *b)
{
    struct sim_options o = {.seed = seed};
    assert_int_equal(run(&o, a, NULL), 0);
    assert_int_equal(run(&o, b, NULL), 0);
    if (a->verdict != SIM_PASS)
        fprintf(stderr, "seed %llu: %s: %s\n", (unsigned long long)seed,
                sim_verdict_name(a->verdict), a->reason);
    assert_int_equal(a->verdict, SIM_PASS);
    assert_true(a->trace_hash == b->trace_hash);
    assert_true(a->events == b->events);
    assert_true(a->ops_ok == b->ops_ok);
    assert_true(a->ops_ok > 0);
    assert_true(a->committed > 1);
}

void sim_expect_seeds_differ(sim_run_fn run, uint64_t s1, uint64_t s2)
{
    struct sim_options o1 = {.seed = s1}, o2 = {.seed = s2};
    struct sim_result a, b;
    assert_int_equal(run(&o1, &a, NULL), 0);
    assert_int_equal(run(&o2, &b, NULL), 0);
    assert_true(a.trace_hash != b.trace_hash);
}

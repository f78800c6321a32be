/* Whole simulated runs: a seed replays byte for byte (same trace hash),
 * different seeds differ, and with a core fault switch or a host fault on
 * the checks fail and leave a trace. */
#include <stdio.h>
#include <stdlib.h>

#include "cluster.h"
#include "sim_tests.h"

static void same_seed_same_run(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed <= 13; seed++) {
        struct sim_result a, b;
        sim_expect_replay(sim_cluster_run, seed, &a, &b);
        assert_true(a.sim_time_us == b.sim_time_us);
    }
}

static void different_seeds_differ(void **state)
{
    (void)state;
    sim_expect_seeds_differ(sim_cluster_run, 21, 22);
}

/* With a broken core, some seed fails, names a reason and dumps a trace. */
static void broken_core_is_caught(void **state)
{
    (void)state;
    if (!sim_core_faults_available()) {
        /* Production builds have no switches: the option is refused. */
        assert_int_equal(sim_core_fault_parse("vote_before_persist"),
                         SIM_FAULT_VOTE_BEFORE_PERSIST);
        assert_int_equal(sim_core_fault_parse("no_such_fault"), -1);
        return;
    }
    bool caught = false;
    for (uint64_t seed = 1; seed <= 50 && !caught; seed++) {
        char *mem = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&mem, &len);
        assert_non_null(f);
        struct sim_options o = {.seed = seed,
                                .core_fault = SIM_FAULT_SKIP_UP_TO_DATE_CHECK};
        struct sim_result r;
        assert_int_equal(sim_cluster_run(&o, &r, f), 0);
        fclose(f);
        if (r.verdict != SIM_PASS) {
            caught = true;
            assert_true(strlen(r.reason) > 0);
            assert_non_null(strstr(mem, "FAIL"));
            assert_true(len > 1000);
        }
        free(mem);
    }
    assert_true(caught);
}

/* A host that reads its own state without ReadIndex serves stale reads,
 * which only the linearizability checker sees. Any build. */
static void stale_reads_are_caught(void **state)
{
    (void)state;
    bool caught = false;
    for (uint64_t seed = 1; seed <= 20 && !caught; seed++) {
        struct sim_options o = {.seed = seed,
                                .core_fault = SIM_FAULT_LOCAL_READS};
        struct sim_result r;
        assert_int_equal(sim_cluster_run(&o, &r, NULL), 0);
        if (r.verdict != SIM_PASS) {
            assert_int_equal(r.verdict, SIM_NONLINEAR);
            assert_non_null(strstr(r.reason, "read()"));
            caught = true;
        }
    }
    assert_true(caught);
}

int test_cluster_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_run),
        cmocka_unit_test(different_seeds_differ),
        cmocka_unit_test(broken_core_is_caught),
        cmocka_unit_test(stale_reads_are_caught),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}

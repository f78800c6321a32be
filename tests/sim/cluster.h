/* One simulated run of a cluster of 3 to 7 Raft cores: the seed picks the
 * cluster, its options and a fault mix (swarm testing); members run over the
 * simulated network and disks of world.h under crashes, pauses, partitions,
 * tick skew, membership changes, leadership transfers and compaction, while
 * clients write, read (ReadIndex) and compare-and-set a few registers.
 * Invariants are checked after every event; at the end the client history
 * must be linearizable and, once all faults have healed, the cluster must
 * elect a leader and finish every pending operation within stated bounds
 * (docs/sim.md).
 *
 * Threads: single-threaded; one run owns everything it allocates. */
#ifndef CAIRN_SIM_CLUSTER_H
#define CAIRN_SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Faults that break the protocol on purpose, to show the checks catch them:
 * the core's test-only switches (raft.h's struct raft_faults; only in builds
 * with CAIRN_FAULTS), and host faults of the simulator itself (any build). */
enum sim_core_fault {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_COMMIT_EARLIER_TERMS,
    SIM_FAULT_VOTE_BEFORE_PERSIST,
    SIM_FAULT_SKIP_UP_TO_DATE_CHECK,
    SIM_FAULT_SKIP_APPEND_CONFLICT_CHECK,
    /* host: a member answers reads from its own state, without ReadIndex
     * (etcd #741): stale reads the linearizability checker must reject */
    SIM_FAULT_LOCAL_READS,
    SIM_FAULT_COUNT,
};

/* "commit_earlier_terms", ...; NULL past the end. */
const char *sim_core_fault_name(int fault);
/* The fault of that name, or -1. */
int sim_core_fault_parse(const char *name);
/* Whether this build has the core's fault switches. */
bool sim_core_faults_available(void);
/* Whether fault is one of the simulator's own (available in every build). */
bool sim_fault_is_host(int fault);

struct sim_options {
    uint64_t seed;
    int core_fault;     /* enum sim_core_fault */
    FILE *echo;         /* if set, every trace line is printed here */
    size_t trace_lines; /* lines kept for the failure trace (0: 4000) */
};

enum sim_verdict {
    SIM_PASS = 0,
    SIM_SAFETY = 1,    /* an invariant broke during the run */
    SIM_NONLINEAR = 2, /* the client history is not linearizable */
    SIM_LIVENESS = 3,  /* no progress within the bounds after healing */
    SIM_ERROR = 4,     /* the core refused to start or ran out of memory */
};

const char *sim_verdict_name(int verdict);

struct sim_result {
    enum sim_verdict verdict;
    char reason[512];
    uint64_t events;
    uint64_t sim_time_us;
    uint64_t trace_hash;
    uint64_t ops_ok, ops_failed, ops_unknown;
    uint64_t max_term;
    uint64_t committed; /* length of the committed sequence */
    /* --members: how often pauses, LMDB sync failures and full LMDB maps
     * were injected */
    uint64_t pauses, store_sync_failures, store_full_failures;
    /* --members: of those full maps, how many hit compaction, a snapshot
     * restore or a defragmentation; crashes between the unlinks of a WAL
     * release (after at least one unlink) */
    uint64_t store_full_maint, release_crashes;
    char mix[288]; /* the cluster and fault mix the seed chose */
};

/* Runs one seed. On a failure, if trace_out is set, the kept trace lines are
 * written to it. Returns 0, or CAIRN_ENOMEM. */
int sim_cluster_run(const struct sim_options *opt, struct sim_result *res,
                    FILE *trace_out);

#endif

/* The whole-member simulation (issue 11): clusters of 3 to 5 cairn members
 * running the production node/, wal/, mvcc/ and lease/ code in one process,
 * with only the environment replaced by the simulated world of world.h:
 * node over the simulated network and clock, the WAL over the faulty
 * in-memory file system (util/fs.h), mvcc on LMDB in a per-member temporary
 * directory whose crash rolls it back to its last explicit sync, leases on
 * the simulated clock. The seed picks the cluster and a fault mix; clients
 * put, delete, compare-and-set, read (linearizable and serializable), watch
 * and hold leases while members crash (also between any two actions),
 * disks fail, clocks drift and jump, and the network splits. The checks are
 * docs/sim.md's "Whole members".
 *
 * Threads: single-threaded; one run owns everything it allocates (and its
 * temporary directory, removed at the end). */
#ifndef CAIRN_SIM_MEMBER_H
#define CAIRN_SIM_MEMBER_H

#include <stdbool.h>
#include <stdio.h>

#include "cluster.h"

/* The node's and mvcc's test-only switches (CAIRN_FAULTS builds): each must
 * be caught by the simulation's checks. */
enum sim_member_fault {
    SIM_MF_NONE = 0,
    SIM_MF_ACK_BEFORE_PERSIST,
    SIM_MF_READ_BEFORE_APPLIED,
    SIM_MF_REUSE_READ_INDEX,
    SIM_MF_EXPIRE_LEASES_ON_FOLLOWER,
    SIM_MF_WATCH_DELIVER_TWICE,
    SIM_MF_COUNT,
};

/* "ack_before_persist", ...; NULL past the end. */
const char *sim_member_fault_name(int fault);
/* The fault of that name, or -1. */
int sim_member_fault_parse(const char *name);

/* Runs one seed with opt->core_fault an enum sim_member_fault. On a
 * failure, if trace_out is set, the kept trace lines are written to it.
 * Returns 0, or CAIRN_ENOMEM / CAIRN_EIO (no temporary directory). */
int sim_members_run(const struct sim_options *opt, struct sim_result *res,
                    FILE *trace_out);

#endif

/* Linearizability checker for client histories of a register store: a
 * Wing–Gong/Lowe search, partitioned per key and memoising visited
 * (linearized set, register value) states, as Porcupine does.
 *
 * Model: every key is an independent register holding an int64, initially
 * `initial`. Operations are write(v), read() -> v and cas(expect, v) -> ok.
 * Outcomes:
 *  - ok: the operation took effect once, somewhere between its invoke and
 *    its completion, with the recorded result;
 *  - failed: the operation certainly did not take effect (dropped);
 *  - unknown: the client could not learn its fate: it may have taken effect
 *    at any point after its invoke, or never. Unknown reads constrain nothing
 *    and are dropped.
 *
 * Times are any monotonic counter (the simulator uses simulated time or its
 * event sequence); equal invoke and completion times count as concurrent.
 *
 * Ownership: a history owns its array (cairn_malloc). Not thread-safe; one
 * owner. lin_check only reads the ops it is given. */
#ifndef CAIRN_SIM_LINCHECK_H
#define CAIRN_SIM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lin_kind {
    LIN_WRITE = 0,
    LIN_READ = 1,
    LIN_CAS = 2,
};

enum lin_outcome {
    LIN_PENDING = 0, /* invoked, not completed yet: checked as unknown */
    LIN_OK = 1,
    LIN_FAILED = 2,
    LIN_UNKNOWN = 3,
};

struct lin_op {
    uint32_t key;
    uint32_t client;
    enum lin_kind kind;
    enum lin_outcome outcome;
    int64_t value;     /* write and cas: the value written; read: the value
                          read (meaningful when ok) */
    int64_t expect;    /* cas: the expected value */
    bool cas_swapped;  /* cas, when ok: whether it swapped */
    uint64_t invoke;   /* time of the invocation */
    uint64_t complete; /* time of the completion; unused unless ok/failed */
};

struct lin_history {
    struct lin_op *ops;
    size_t len;
    size_t cap;
    size_t len_max; /* the bound; lin_history_invoke refuses past it */
};

/* An empty history that holds at most len_max operations. */
void lin_history_init(struct lin_history *h, size_t len_max);
void lin_history_free(struct lin_history *h);

/* Records an invocation; returns its index through *id. CAIRN_EFULL past
 * len_max, CAIRN_ENOMEM. */
int lin_history_invoke(struct lin_history *h, uint32_t client, uint32_t key,
                       enum lin_kind kind, int64_t value, int64_t expect,
                       uint64_t time, size_t *id);
/* Completes operation id: outcome ok with the read value (reads) or whether
 * the cas swapped (cas), failed, or unknown. */
void lin_history_complete(struct lin_history *h, size_t id,
                          enum lin_outcome outcome, int64_t read_value,
                          bool cas_swapped, uint64_t time);

enum lin_result {
    LIN_LINEARIZABLE = 0,
    LIN_VIOLATION = 1,
    LIN_GAVE_UP = 2, /* the step budget ran out for some key */
};

struct lin_report {
    enum lin_result result;
    uint32_t key;        /* the key that failed or gave up */
    size_t key_ops;      /* its number of checked operations */
    size_t deepest;      /* longest linearized prefix found for it */
    size_t blocking_op;  /* index (in the given array) of the first op that
                            could not be placed at the deepest point */
    uint64_t steps;      /* search steps over all keys */
    size_t keys_checked; /* distinct keys */
};

/* Checks ops[0..n) against the register model, key by key, stopping at the
 * first key that is not linearizable. step_budget bounds the search steps per
 * key (0: a default of 10 million). Returns 0 and fills *rep, or
 * CAIRN_ENOMEM. */
int lin_check(const struct lin_op *ops, size_t n, int64_t initial,
              uint64_t step_budget, struct lin_report *rep);

/* One line describing op (for failure reports), into out[0..size). */
void lin_op_format(const struct lin_op *op, char *out, size_t size);

#endif

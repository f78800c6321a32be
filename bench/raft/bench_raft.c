/* bench-raft: three raft cores in one process, in-memory storage, messages
 * passed through the wire codec in memory, 128-byte proposals batched as a
 * host batches them; prints entries committed per second, allocations per
 * entry (cairn_mem_alloc_count) and wire bytes per entry. */
#include "raft/raft.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bench_util.h"

#define NODES 3
#define BATCH 256
#define PAYLOAD 128
#define QUEUE_MAX 4096

struct qmsg {
    raft_id to;
    struct buf bytes;
};

struct bench {
    struct raft *r[NODES + 1];
    struct raft_memory_storage *ms[NODES + 1];
    /* A ring of encoded messages; buffers are reused, so the steady state
     * does not allocate for queueing. */
    struct qmsg q[QUEUE_MAX];
    size_t head;
    size_t len;
    /* The configuration as of each member's applied index (for its
     * snapshots), from update.conf_state. */
    struct raft_conf_state conf[NODES + 1];
    uint64_t wire_bytes;
    uint64_t committed; /* entries applied by the leader */
};

static void die(const char *what, int rv)
{
    fprintf(stderr, "bench-raft: %s: %s\n", what, cairn_strerror(rv));
    exit(1);
}

static void handle(struct bench *b, raft_id id, const struct raft_update *up);

static void step(struct bench *b, raft_id id, const struct raft_event *ev)
{
    struct raft_update up;
    int rv = raft_step(b->r[id], ev, &up);
    if (rv != 0 && rv != CAIRN_EPROPOSALDROPPED)
        die("step", rv);
    handle(b, id, &up);
}

/* Carries an update out as a host would, the disk being memory. */
static void handle(struct bench *b, raft_id id, const struct raft_update *up)
{
    int rv;
    if (up->n_entries > 0) {
        rv = raft_memory_storage_append(b->ms[id], up->entries, up->n_entries);
        if (rv != 0)
            die("append", rv);
    }
    if (up->hard_state_changed)
        raft_memory_storage_set_hard_state(b->ms[id], &up->hard_state);
    if (id == 1)
        b->committed += up->n_committed;
    if (up->conf_changed)
        b->conf[id] = up->conf_state;
    for (size_t i = 0; i < up->n_messages; i++) {
        if (b->len == QUEUE_MAX)
            die("queue", CAIRN_EFULL);
        struct qmsg *q = &b->q[(b->head + b->len) % QUEUE_MAX];
        b->len++;
        q->to = up->messages[i].to;
        buf_reset(&q->bytes);
        rv = raft_message_encode(&up->messages[i], &q->bytes);
        if (rv != 0)
            die("encode", rv);
        b->wire_bytes += q->bytes.len;
    }
    if (up->n_entries > 0) {
        /* The write is durable (it is memory): report it. */
        const struct raft_entry *last = &up->entries[up->n_entries - 1];
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED,
                                .u.persisted = {last->index, last->term}};
        step(b, id, &ev);
    }
}

static void drain(struct bench *b)
{
    /* Bounded by the queue's capacity per round of deliveries. */
    while (b->len > 0) {
        struct qmsg *q = &b->q[b->head];
        b->head = (b->head + 1) % QUEUE_MAX;
        b->len--;
        struct raft_message m;
        int rv = raft_message_decode(q->bytes.data, q->bytes.len, &m);
        if (rv != 0)
            die("decode", rv);
        struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &m};
        step(b, q->to, &ev);
        raft_message_decoded_free(&m);
    }
}

static void run(struct bench *b, uint64_t entries)
{
    static uint8_t payload[BATCH][PAYLOAD];
    struct raft_proposal props[BATCH];
    for (int i = 0; i < BATCH; i++) {
        memset(payload[i], 'a' + i % 26, PAYLOAD);
        props[i].data = payload[i];
        props[i].len = PAYLOAD;
    }
    uint64_t target = b->committed + entries;
    uint64_t rounds = 0;
    while (b->committed < target && rounds < entries) {
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                                .u.propose = {.items = props, .n = BATCH}};
        step(b, 1, &ev);
        drain(b);
        rounds++;
        if ((rounds & 63) == 0) {
            /* Heartbeats keep the followers' leases fresh. */
            for (raft_id id = 1; id <= NODES; id++) {
                struct raft_event t = {.type = RAFT_EVENT_TICK};
                step(b, id, &t);
            }
            drain(b);
            /* Compaction as a host does it, so memory stays bounded. */
            for (raft_id id = 1; id <= NODES; id++) {
                struct raft_status st;
                raft_status_get(b->r[id], &st);
                if (st.applied > 1024) {
                    /* Snapshot (no data: the bench has no state machine),
                     * then compact what it covers. */
                    raft_index at = st.applied - 512;
                    if (raft_memory_storage_create_snapshot(
                            b->ms[id], at, &b->conf[id], NULL, 0) == 0)
                        raft_memory_storage_compact(b->ms[id], at);
                }
            }
        }
    }
}

int main(int argc, char **argv)
{
    uint64_t entries = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    struct bench *b = cairn_calloc(1, sizeof(*b));
    if (b == NULL)
        die("calloc", CAIRN_ENOMEM);
    struct raft_conf_state cs = {.n_voters = NODES, .voters = {1, 2, 3}};
    for (raft_id id = 1; id <= NODES; id++) {
        b->conf[id] = cs;
        int rv = raft_memory_storage_new(&b->ms[id]);
        if (rv == 0)
            rv = raft_memory_storage_bootstrap(b->ms[id], &cs);
        struct raft_config c = {
            .id = id,
            .election_ticks = 10,
            .heartbeat_ticks = 1,
            .storage = raft_memory_storage_iface(b->ms[id]),
            .max_size_per_msg = 1 << 20,
            .max_inflight_msgs = 256,
            .seed = id,
        };
        if (rv == 0)
            rv = raft_new(&c, &b->r[id]);
        if (rv != 0)
            die("init", rv);
    }
    struct raft_event camp = {.type = RAFT_EVENT_CAMPAIGN};
    step(b, 1, &camp);
    drain(b);
    /* Warm up: buffers, arenas and vectors reach their steady size. */
    run(b, entries / 10 + BATCH);
    uint64_t allocs0 = cairn_mem_alloc_count();
    uint64_t wire0 = b->wire_bytes;
    uint64_t c0 = b->committed;
    double t0 = bench_now_s();
    run(b, entries);
    double dt = bench_now_s() - t0;
    uint64_t n = b->committed - c0;
    uint64_t allocs = cairn_mem_alloc_count() - allocs0;
    printf("RESULT raft entries_per_s=%.0f allocs_per_entry=%.2f "
           "bytes_per_entry=%.1f entries=%" PRIu64 " payload_bytes=%d "
           "batch=%d\n",
           (double)n / dt, (double)allocs / (double)n,
           (double)(b->wire_bytes - wire0) / (double)n, n, PAYLOAD, BATCH);
    for (raft_id id = 1; id <= NODES; id++) {
        raft_free(b->r[id]);
        raft_memory_storage_free(b->ms[id]);
    }
    for (size_t i = 0; i < QUEUE_MAX; i++)
        buf_free(&b->q[i].bytes);
    cairn_free(b);
    return 0;
}

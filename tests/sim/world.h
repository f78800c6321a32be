/* The simulated world shared by every simulation: one seeded generator, a
 * discrete event queue on simulated time, a trace (a bounded ring of readable
 * lines plus a running hash of every line, for replay checks), a simulated
 * network and a simulated disk per member.
 *
 * Nothing here knows Raft: the raft-core cluster (cluster.c) and, later, the
 * whole-member simulation drive the same world. Everything is single-threaded
 * and deterministic: the only source of choice is the world's prng, and two
 * events at the same simulated time run in the order they were scheduled.
 *
 * Ownership: the world, network and disks are owned by their creator, each
 * init/close. Payloads handed to sim_net_send and sim_disk_* are copied.
 * Pointers to bytes given to callbacks are borrowed for the callback only. */
#ifndef CAIRN_SIM_WORLD_H
#define CAIRN_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

/* ---------------------------------------------------------------- world */

struct sim_world;

/* An event: runs at its time with its argument and two words. */
typedef void (*sim_event_cb)(struct sim_world *w, void *arg, uint64_t a,
                             uint64_t b);
/* Frees an event's argument when the world closes with the event pending. */
typedef void (*sim_dispose_cb)(void *arg);

struct sim_event {
    uint64_t time_us;
    uint64_t seq; /* schedule order: ties run first-scheduled first */
    sim_event_cb fn;
    sim_dispose_cb dispose; /* may be NULL */
    void *arg;
    uint64_t a, b;
};

#define SIM_TRACE_LINE 200

struct sim_trace {
    char *ring;       /* lines_max lines of SIM_TRACE_LINE bytes */
    size_t lines_max; /* the ring's size; older lines are overwritten */
    uint64_t lines;   /* lines ever written */
    uint64_t hash;    /* FNV-1a over every line ever written */
    FILE *echo;       /* if set, every line is also printed here */
};

struct sim_world {
    struct prng rng;
    uint64_t seed;
    uint64_t now_us;
    uint64_t seq;
    uint64_t events_run;
    struct sim_event *heap; /* a binary min-heap on (time_us, seq) */
    size_t len;
    size_t cap;
    size_t len_max; /* the queue's bound; scheduling past it asserts */
    struct sim_trace trace;
};

/* A world at time 0 whose every choice derives from seed; its queue holds at
 * most events_max events and its trace keeps the last trace_lines lines. */
int sim_world_init(struct sim_world *w, uint64_t seed, size_t events_max,
                   size_t trace_lines);
/* Disposes of pending events and frees everything. */
void sim_world_close(struct sim_world *w);

/* Schedules fn(w, arg, a, b) delay_us after now. The queue is bounded: a
 * full queue is a bug in the simulation (assertion). */
void sim_world_schedule(struct sim_world *w, uint64_t delay_us, sim_event_cb fn,
                        sim_dispose_cb dispose, void *arg, uint64_t a,
                        uint64_t b);
/* Runs the earliest event, advancing the clock; false when none is left or
 * the next one lies after until_us. */
bool sim_world_step(struct sim_world *w, uint64_t until_us);

/* Appends one line to the trace: "<time> <text>". Every line feeds the
 * running hash, which is what replay checks compare. */
void sim_tracef(struct sim_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes the kept lines, oldest first, to out. */
void sim_trace_dump(const struct sim_world *w, FILE *out);

/* ---------------------------------------------------------------- network */

#define SIM_NODES_MAX 16

/* Each directed link's behaviour. Latency is uniform in [min, max], with a
 * tail: with probability tail_p, tail_us more. Without reorder, a link is
 * FIFO (a message never overtakes an earlier one on the same link). */
struct sim_link {
    uint64_t latency_us_min;
    uint64_t latency_us_max;
    double tail_p;
    uint64_t tail_us;
    double loss_p;
    double dup_p;
    bool reorder;
    bool blocked; /* partitioned: messages are dropped at send and at
                     delivery */
    uint64_t last_delivery_us;
};

/* Delivers one message's bytes (borrowed for the call) to `to`. */
typedef void (*sim_net_deliver_cb)(void *arg, int from, int to,
                                   const uint8_t *bytes, size_t len);

struct sim_net {
    struct sim_world *w;
    int nodes;
    struct sim_link link[SIM_NODES_MAX][SIM_NODES_MAX];
    size_t in_flight;
    size_t in_flight_max; /* bound: sends past it are dropped (and traced) */
    sim_net_deliver_cb deliver;
    sim_net_deliver_cb lost; /* optional: told of every dropped message */
    void *deliver_arg;
    uint64_t sent, delivered, dropped, duplicated;
};

/* A network of `nodes` endpoints, every link with the given defaults. */
void sim_net_init(struct sim_net *net, struct sim_world *w, int nodes,
                  const struct sim_link *defaults, size_t in_flight_max,
                  sim_net_deliver_cb deliver, void *deliver_arg);
/* Also tells `lost` (with the deliver callback's argument) of every message
 * the network drops, as a transport learns of failed sends. */
void sim_net_on_lost(struct sim_net *net, sim_net_deliver_cb lost);
/* Copies bytes and schedules their delivery from -> to (or drops them). */
void sim_net_send(struct sim_net *net, int from, int to, const void *bytes,
                  size_t len);
/* Cuts a -> b (and b -> a unless one_way). */
void sim_net_cut(struct sim_net *net, int a, int b, bool one_way);
/* Cuts node off from every other node, both ways. */
void sim_net_isolate(struct sim_net *net, int node);
/* Splits nodes into the set in `side` (bitmask) and the rest. */
void sim_net_split(struct sim_net *net, uint32_t side);
/* Heals every cut. */
void sim_net_heal(struct sim_net *net);
/* Whether any link is cut. */
bool sim_net_has_cuts(const struct sim_net *net);

/* ---------------------------------------------------------------- disk */

/* A per-member disk: named files whose written bytes become durable only at
 * sync. A crash keeps what was synced; with a torn write, a file that was
 * only appended to since its last sync keeps a random part of the unsynced
 * tail (so the last record may be cut anywhere). Optional injected failures
 * (EIO on sync, ENOSPC on write) serve the whole-member simulation. */
#define SIM_DISK_FILES_MAX 64
#define SIM_DISK_NAME_MAX 64

struct sim_file {
    char name[SIM_DISK_NAME_MAX];
    struct buf cur;   /* what reads see */
    struct buf dur;   /* what survives a crash */
    bool append_only; /* only appends since the last sync */
    bool dirty;
};

struct sim_disk {
    struct sim_file files[SIM_DISK_FILES_MAX];
    int nfiles;
    size_t size_bytes_max; /* ENOSPC past this total (0: no limit) */
    bool fail_sync;        /* the next sync fails with CAIRN_EIO */
    uint64_t writes, syncs, crashes, torn;
};

void sim_disk_init(struct sim_disk *d, size_t size_bytes_max);
void sim_disk_close(struct sim_disk *d);
/* Appends len bytes to the file, creating it. CAIRN_ENOSPC, CAIRN_ENOMEM,
 * CAIRN_EFULL (too many files). */
int sim_disk_append(struct sim_disk *d, const char *name, const void *bytes,
                    size_t len);
/* Replaces the file's whole content (not append-only). */
int sim_disk_replace(struct sim_disk *d, const char *name, const void *bytes,
                     size_t len);
/* Cuts the file to len bytes (len <= its size). */
int sim_disk_truncate(struct sim_disk *d, const char *name, size_t len);
/* Makes the file's current content durable. CAIRN_EIO when a failure was
 * injected (the failure is consumed; data stays unsynced). */
int sim_disk_sync(struct sim_disk *d, const char *name);
/* Deletes the file (durably at once, like an unlink followed by a directory
 * sync). */
void sim_disk_remove(struct sim_disk *d, const char *name);
/* The file's current content, or NULL when it does not exist. Valid until
 * the next change to the disk. */
const struct buf *sim_disk_read(const struct sim_disk *d, const char *name);
/* A crash: every file falls back to its durable content; with probability
 * torn_p an append-only file keeps a random prefix of its unsynced tail. */
void sim_disk_crash(struct sim_disk *d, struct prng *rng, double torn_p);
/* Bytes written but not yet synced, over all files. */
size_t sim_disk_unsynced(const struct sim_disk *d);

/* Length-prefixed, checksummed records in an append-only file:
 * u32 length | u32 crc32c(payload) | payload. */
int sim_rec_append(struct sim_disk *d, const char *name, const void *payload,
                   size_t len);
/* Calls fn for each intact record in order; stops at the first torn or
 * corrupt one and returns the offset where the intact prefix ends (a host
 * truncates there). */
typedef void (*sim_rec_cb)(void *arg, const uint8_t *payload, size_t len);
size_t sim_rec_scan(const struct sim_disk *d, const char *name, void *arg,
                    sim_rec_cb fn);

#endif

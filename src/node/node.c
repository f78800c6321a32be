/* The member's logic on the loop thread: drives the raft core, orders
 * persist -> send -> apply, keeps proposal and ReadIndex waiters, decides
 * lease expiry, snapshots and log compaction, and answers requests
 * (node.h). */
#include "node/node_int.h"

#include <stdint.h>
#include <string.h>

#define WAITER_BUCKETS 4096
/* Leases revoked per second at most (etcd's leaseRevokeRate). */
#define LEASE_REVOKE_RATE 1000
/* A proposed revoke is proposed again if still expired after this long
 * (etcd's expiredLeaseRetryInterval). */
#define LEASE_REVOKE_RETRY_MS 3000
#define LEASE_REVOKING_MAX 4096
/* Lease expiry pauses while apply lags commit by more than this (PITFALLS:
 * etcd #15247, a slow disk revoking every lease). */
#define LEASE_EXPIRY_MAX_LAG 1000
#define MEMBERS_MAX RAFT_CONF_MAX
#define CLEARS_MAX 64

#ifdef CAIRN_FAULTS
#define FAULT(n, name) ((n)->cfg.faults.name)
#else
#define FAULT(n, name) false
#endif

enum waiter_kind {
    W_PROPOSAL = 1, /* completed by an apply result with its id */
    W_READ,         /* linearizable range: ReadIndex, then applied */
    W_RENEW,        /* lease keep-alive: ReadIndex, then applied */
    W_LOCAL,        /* defragment / export: completed by its batch */
    W_MOVE_LEADER,  /* completed when the leader is the target */
    W_PHYSICAL,     /* applied compaction waiting for its history to go */
};

enum read_phase { R_PENDING = 0, R_ROUND, R_INDEX };

struct waiter {
    uint64_t id;
    uint8_t kind;
    uint8_t type; /* enum node_req_type */
    void *arg;
    node_done_cb cb;
    int64_t deadline_ms;
    /* W_READ */
    uint8_t phase;
    uint64_t round;
    raft_index wait_index;
    struct mvcc_range_req range;
    uint8_t *range_bytes; /* owned copies of key and end */
    /* W_RENEW */
    int64_t lease_id;
    /* W_MOVE_LEADER */
    uint64_t target;
    /* W_PROPOSAL: crc32c of the proposed request bytes */
    uint32_t crc;
    /* W_PROPOSAL of a compaction asked with physical; W_PHYSICAL: the
     * applied result's revision */
    bool physical;
    mvcc_rev revision;
    struct waiter *hnext;       /* hash chain */
    struct waiter *prev, *next; /* all waiters, oldest first */
};

struct persist_rec {
    struct node_persist p;
    /* Only with a snapshot: the meta is over 1 KiB, and inline it made
     * every persist a large zeroed allocation outside malloc's caches. */
    struct raft_snapshot_meta *snap;
    struct raft_hard_state hs;
    struct raft_entry *entries;
    uint8_t *data;
    char *image_path;
    struct persist_rec *next;
};

struct pending_prop {
    size_t len;
    uint64_t id; /* its waiter's */
};

/* A gathered batch goes to raft once it holds this many proposals or
 * bytes, without waiting for the end of the loop turn. */
#define PROPS_BATCH_MAX 1024
#define PROPS_BYTES_MAX (1024 * 1024)

struct deferred_msg {
    uint64_t after_seq;
    /* A message with no entries or snapshot (acknowledgements, votes) is
     * kept as it is; others are encoded, as their pointers are borrowed. */
    bool plain;
    struct raft_message msg;
    struct buf bytes; /* raft_message_encode, unless plain */
    struct deferred_msg *next;
};

struct revoking {
    int64_t id;
    int64_t at_ms;
};

/* A client callback to run once the node's state is consistent. */
struct completion {
    struct waiter *w;
    struct node_result res;
};

struct node {
    struct node_config cfg;
    struct node_env env;
    struct raft_memory_storage *ms;
    struct raft *r;
    int stop_err;
    unsigned round_ticks;

    /* raft's view */
    uint64_t lead;
    struct raft_hard_state hs;
    struct raft_conf_state conf;         /* latest handed out */
    struct raft_conf_state applied_conf; /* in force at applied */
    raft_index removed_at; /* the entry removing this member, 0: none */

    /* persist pipeline */
    uint64_t persist_seq;   /* last issued */
    uint64_t persisted_seq; /* last completed */
    struct persist_rec *p_head, *p_tail;
    struct deferred_msg *d_head, *d_tail;
    /* The hard state last handed to persist, and whether n->hs is ahead of
     * it in its commit index only: such a change waits for the next
     * persist (or a tick) instead of costing one of its own. */
    struct raft_hard_state hs_issued;
    bool hs_owed;

    /* apply pipeline: batches not yet issued (a restore waits for its
     * persist, later batches wait behind it), then batches out */
    struct node_apply_batch *q_head, *q_tail;
    uint64_t restore_wait_seq; /* q_head is a restore waiting for this */
    size_t batches_out;
    bool compact_out;      /* a compaction-step batch is queued or out */
    raft_index dispatched; /* last index handed to apply */
    raft_index applied;

    /* snapshots */
    uint64_t trim_at; /* log cache bytes that make trim_log_cache look */
    raft_index snap_index;
    raft_index snap_requested;
    struct raft_conf_state snap_conf;

    /* waiters */
    struct waiter *buckets[WAITER_BUCKETS];
    struct waiter *w_head, *w_tail;
    size_t n_waiters;
    size_t n_read_waiters; /* W_READ and W_RENEW: the walks below skip
                            * the list when there are none */
    /* So that a request arriving while thousands of reads or keep-alives
     * wait costs O(1), not a walk of them all (10,000 keep-alives on a
     * leader spent 70% of its loop in such walks, in turns of 0.5 s):
     * no reader's wait_index is below reads_ready_at (R_INDEX ones), and
     * no reader is R_PENDING while reads_pending is false. */
    raft_index reads_ready_at;
    bool reads_pending;
    uint64_t read_walk_steps; /* waiters visited by those walks (tests) */
    uint64_t id_prefix, id_next;

    /* ReadIndex rounds: one at a time */
    uint64_t round_ctx; /* last ctx used (a request id: unique) */

    /* leases */
    struct revoking revoking[LEASE_REVOKING_MAX];
    size_t n_revoking;
    raft_index fake_persisted_index; /* faults: ack_before_persist */
    raft_term fake_persisted_term;
    raft_index last_read_index;    /* faults: reuse_read_index */
    int64_t clear_ids[CLEARS_MAX]; /* checkpoints of 0 to propose */
    size_t n_clear;

    /* completions collected while stepping; run at the end */
    struct completion *done;
    size_t n_done, cap_done;

    struct mvcc_arena read_arena;
    struct buf enc;

    /* Proposals gathered until node_flush_proposals (only when the env
     * has proposals_queued): their encoded requests back to back, and
     * each one's length and waiter id. */
    struct buf prop_bytes;
    struct pending_prop *props;
    size_t n_props, cap_props;
    bool flushing_props;
    /* The last commit_unsent given to the env. */
    bool commit_unsent;

    uint8_t role;
    bool stopped;
    bool restore_out;
    bool snap_in_flight;
    bool round_out;
    bool draining;
};

static int handle_update(struct node *n, const struct raft_update *u);
static void flush_props(struct node *n);

static int64_t now_ms(struct node *n)
{
    return n->env.now_ms(n->env.ctx);
}

/* ------------------------------------------------------------------------ */
/* Waiters                                                                   */

static size_t bucket_of(uint64_t id)
{
    uint64_t x = id;
    return (size_t)(splitmix64(&x) & (WAITER_BUCKETS - 1));
}

static struct waiter *waiter_find(struct node *n, uint64_t id)
{
    for (struct waiter *w = n->buckets[bucket_of(id)]; w; w = w->hnext)
        if (w->id == id)
            return w;
    return NULL;
}

static uint64_t next_req_id(struct node *n)
{
    /* etcd's idutil: the member's low 16 bits, then a counter started from
     * the clock, so ids differ across members and restarts. */
    n->id_next = (n->id_next + 1) & ((1ULL << 48) - 1);
    if (n->id_next == 0)
        n->id_next = 1;
    return n->id_prefix | n->id_next;
}

static struct waiter *waiter_new(struct node *n, uint8_t kind, uint8_t type,
                                 void *arg, node_done_cb cb)
{
    /* Room for this waiter's completion is made now, so that completing
     * never allocates: every waiter alive or queued has a slot. */
    size_t need = n->n_done + n->n_waiters + 1;
    if (need > n->cap_done) {
        size_t cap = n->cap_done ? 2 * n->cap_done : 64;
        while (cap < need)
            cap *= 2;
        struct completion *d = cairn_realloc(n->done, cap * sizeof(*d));
        if (d == NULL)
            return NULL;
        n->done = d;
        n->cap_done = cap;
    }
    struct waiter *w = cairn_calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->id = next_req_id(n);
    w->kind = kind;
    w->type = type;
    w->arg = arg;
    w->cb = cb;
    w->deadline_ms = now_ms(n) + (int64_t)n->cfg.request_timeout_ms;
    size_t b = bucket_of(w->id);
    w->hnext = n->buckets[b];
    n->buckets[b] = w;
    w->prev = n->w_tail;
    if (n->w_tail)
        n->w_tail->next = w;
    else
        n->w_head = w;
    n->w_tail = w;
    n->n_waiters++;
    if (kind == W_READ || kind == W_RENEW)
        n->n_read_waiters++;
    return w;
}

static void waiter_unlink(struct node *n, struct waiter *w)
{
    struct waiter **pp = &n->buckets[bucket_of(w->id)];
    while (*pp != w)
        pp = &(*pp)->hnext;
    *pp = w->hnext;
    if (w->prev)
        w->prev->next = w->next;
    else
        n->w_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        n->w_tail = w->prev;
    n->n_waiters--;
    if (w->kind == W_READ || w->kind == W_RENEW)
        n->n_read_waiters--;
}

static void waiter_free(struct waiter *w)
{
    cairn_free(w->range_bytes);
    cairn_free(w);
}

/* w (a read or keep-alive) joins the next round. */
static void set_pending(struct node *n, struct waiter *w)
{
    w->phase = R_PENDING;
    n->reads_pending = true;
}

/* w waits until index is applied. */
static void set_index(struct node *n, struct waiter *w, raft_index index)
{
    w->phase = R_INDEX;
    w->wait_index = index;
    if (index < n->reads_ready_at)
        n->reads_ready_at = index;
}

/* Unlinks w and queues its callback with res (copied; pointers in res must
 * stay valid until the completions run). */
static void complete(struct node *n, struct waiter *w,
                     const struct node_result *res)
{
    waiter_unlink(n, w);
    CAIRN_ASSERT(n->n_done < n->cap_done); /* reserved by waiter_new */
    n->done[n->n_done].w = w;
    n->done[n->n_done].res = *res;
    n->n_done++;
}

/* etcd fills a header's revision with the store's current one when the
 * request itself produced none (v3rpc's header filler): lease, maintenance
 * and auth answers carry one. Its Cluster service builds its own header,
 * without a revision, so member answers carry none. */
static void fill_revision(struct node *n, struct node_result *r)
{
    bool member =
        r->type == NODE_REQ_MEMBER_ADD || r->type == NODE_REQ_MEMBER_REMOVE ||
        r->type == NODE_REQ_MEMBER_UPDATE || r->type == NODE_REQ_MEMBER_LIST ||
        r->type == NODE_REQ_MEMBER_PROMOTE;
    if (member)
        r->revision = 0;
    else if (r->revision == 0 && n->cfg.store != NULL)
        r->revision = mvcc_current_rev(n->cfg.store);
}

static void fill_header(struct node *n, struct node_result *r, uint8_t type)
{
    r->type = type;
    r->cluster_id = n->cfg.cluster_id;
    r->member_id = n->cfg.id;
    r->raft_term = n->hs.term;
    fill_revision(n, r);
}

static void complete_err(struct node *n, struct waiter *w, int err)
{
    struct node_result r;
    memset(&r, 0, sizeof(r));
    fill_header(n, &r, w->type);
    r.err = err;
    complete(n, w, &r);
}

static void settle(struct node *n);

/* Settles the node (serves what became servable, starts the next read
 * round) and runs queued callbacks, until neither has more to do.
 * Callbacks may call node functions: their work is picked up by this same
 * loop, never by a nested one. Called at the end of every public entry
 * point, never while a raft update is being handled. */
static void drain(struct node *n)
{
    if (n->draining)
        return;
    n->draining = true;
    for (int rounds = 0; rounds < 1000; rounds++) {
        settle(n);
        if (n->n_done == 0)
            break;
        for (size_t i = 0; i < n->n_done && i < (1u << 30); i++) {
            struct completion c = n->done[i];
            c.w->cb(c.w->arg, &c.res);
            waiter_free(c.w);
        }
        n->n_done = 0;
    }
    n->draining = false;
    mvcc_arena_reset(&n->read_arena);
}

static void fail_all(struct node *n, int err)
{
    struct waiter *w = n->w_head;
    while (w != NULL) {
        struct waiter *next = w->next;
        complete_err(n, w, err);
        w = next;
    }
}

static void node_stop(struct node *n, int err)
{
    if (n->stopped)
        return;
    n->stopped = true;
    n->stop_err = err;
    cairn_errorf(n->env.log, "node", "member %llx stops: %s",
                 (unsigned long long)n->cfg.id, cairn_strerror(err));
    fail_all(n, CAIRN_ESTOPPED);
}

/* ------------------------------------------------------------------------ */
/* Driving the core                                                          */

static int step(struct node *n, const struct raft_event *ev)
{
    /* Proposals keep their order: gathered ones go before any other. */
    if (n->n_props > 0 && !n->flushing_props &&
        (ev->type == RAFT_EVENT_PROPOSE ||
         ev->type == RAFT_EVENT_PROPOSE_CONF_CHANGE))
        flush_props(n);
    struct raft_update u;
    int rc = raft_step(n->r, ev, &u);
    int rc2 = handle_update(n, &u);
    if (rc == CAIRN_ENOMEM) {
        node_stop(n, rc);
        return rc;
    }
    return rc != 0 ? rc : rc2;
}

/* ---- sending ---- */

static void send_now(struct node *n, const struct raft_message *m, size_t k)
{
    if (k > 0)
        n->env.send(n->env.ctx, m, k);
}

static int defer_msg(struct node *n, const struct raft_message *m, uint64_t seq)
{
    struct deferred_msg *d = cairn_calloc(1, sizeof(*d));
    if (d == NULL)
        return CAIRN_ENOMEM;
    d->after_seq = seq;
    buf_init(&d->bytes);
    d->plain = m->n_entries == 0 && m->snapshot == NULL;
    if (d->plain) {
        d->msg = *m;
        d->msg.entries = NULL;
    } else if (raft_message_encode(m, &d->bytes) != 0) {
        buf_free(&d->bytes);
        cairn_free(d);
        return CAIRN_ENOMEM;
    }
    if (n->d_tail)
        n->d_tail->next = d;
    else
        n->d_head = d;
    n->d_tail = d;
    return 0;
}

static void flush_deferred(struct node *n)
{
    while (n->d_head && n->d_head->after_seq <= n->persisted_seq) {
        struct deferred_msg *d = n->d_head;
        n->d_head = d->next;
        if (n->d_head == NULL)
            n->d_tail = NULL;
        struct raft_message m;
        if (d->plain) {
            m = d->msg;
            m.after_persist = false;
            if (!n->stopped)
                n->env.send(n->env.ctx, &m, 1);
        } else if (raft_message_decode(d->bytes.data, d->bytes.len, &m) == 0) {
            m.after_persist = false;
            if (!n->stopped)
                n->env.send(n->env.ctx, &m, 1);
            raft_message_decoded_free(&m);
        }
        buf_free(&d->bytes);
        cairn_free(d);
    }
}

/* ---- persisting ---- */

static int copy_entries(const struct raft_entry *src, size_t k,
                        struct raft_entry **out, uint8_t **data)
{
    size_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += src[i].len;
    *out = cairn_malloc(k * sizeof(**out));
    *data = total ? cairn_malloc(total) : NULL;
    if (*out == NULL || (total && *data == NULL)) {
        cairn_free(*out);
        cairn_free(*data);
        *out = NULL;
        *data = NULL;
        return CAIRN_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < k; i++) {
        (*out)[i] = src[i];
        if (src[i].len > 0 && *data != NULL) {
            memcpy(*data + off, src[i].data, src[i].len);
            (*out)[i].data = *data + off;
            off += src[i].len;
        } else {
            (*out)[i].data = NULL;
        }
    }
    return 0;
}

static int issue_persist(struct node *n, const struct raft_update *u)
{
    struct persist_rec *p = cairn_calloc(1, sizeof(*p));
    if (p == NULL)
        return CAIRN_ENOMEM;
    if (u->n_entries &&
        copy_entries(u->entries, u->n_entries, &p->entries, &p->data) != 0) {
        cairn_free(p);
        return CAIRN_ENOMEM;
    }
    p->p.seq = ++n->persist_seq;
    if (u->snapshot) {
        p->snap = cairn_malloc(sizeof(*p->snap));
        if (u->snapshot->len > 0 && p->snap != NULL)
            p->image_path = cairn_malloc(u->snapshot->len + 1);
        if (p->snap == NULL ||
            (u->snapshot->len > 0 && p->image_path == NULL)) {
            cairn_free(p->snap);
            cairn_free(p->entries);
            cairn_free(p->data);
            cairn_free(p);
            return CAIRN_ENOMEM;
        }
        *p->snap = u->snapshot->meta;
        p->p.snap = p->snap;
        if (u->snapshot->len > 0) {
            memcpy(p->image_path, u->snapshot->data, u->snapshot->len);
            p->image_path[u->snapshot->len] = 0;
        }
        p->p.snap_image_path = p->image_path;
    }
    p->p.entries = p->entries;
    p->p.n_entries = u->n_entries;
    if (u->hard_state_changed || n->hs_owed) {
        p->hs = u->hard_state_changed ? u->hard_state : n->hs;
        p->p.hard_state = &p->hs;
        n->hs_issued = p->hs;
        n->hs_owed = false;
    }
    if (n->p_tail)
        n->p_tail->next = p;
    else
        n->p_head = p;
    n->p_tail = p;
    n->env.persist(n->env.ctx, &p->p);
    return 0;
}

/* ---- applying ---- */

static struct node_apply_batch *batch_new(struct node *n, uint8_t kind)
{
    struct node_apply_batch *b = cairn_calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->kind = kind;
    b->term = n->hs.term;
    b->member_id = n->cfg.id;
    b->cluster_id = n->cfg.cluster_id;
    b->now_ms = now_ms(n);
    b->fd = -1;
    mvcc_arena_init(&b->arena);
    return b;
}

/* Issues queued batches in order; a restore waits until its snapshot is
 * durable, and everything behind it waits too. */
static void issue_batches(struct node *n)
{
    while (n->q_head && !n->stopped) {
        struct node_apply_batch *b = n->q_head;
        if (b->kind == NODE__BATCH_RESTORE &&
            n->persisted_seq < n->restore_wait_seq)
            return;
        n->q_head = b->next;
        if (n->q_head == NULL)
            n->q_tail = NULL;
        b->next = NULL;
        if (b->kind == NODE__BATCH_RESTORE)
            n->restore_out = true;
        n->batches_out++;
        n->env.apply(n->env.ctx, b);
    }
}

static void queue_batch(struct node *n, struct node_apply_batch *b)
{
    if (n->q_tail)
        n->q_tail->next = b;
    else
        n->q_head = b;
    n->q_tail = b;
    issue_batches(n);
}

/* Answers the physical compactions once no history is left to drop. */
static void complete_physical(struct node *n)
{
    for (struct waiter *w = n->w_head, *next; w; w = next) {
        next = w->next;
        if (w->kind != W_PHYSICAL)
            continue;
        struct node_result r;
        memset(&r, 0, sizeof(r));
        fill_header(n, &r, w->type);
        r.revision = w->revision;
        complete(n, w, &r);
    }
}

/* Scheduled compaction goes on in bounded steps, one batch at a time,
 * queued behind whatever is waiting, so writes interleave with it. */
static void queue_compact_step(struct node *n)
{
    if (n->compact_out || n->stopped)
        return;
    struct node_apply_batch *b = batch_new(n, NODE__BATCH_COMPACT);
    if (b == NULL)
        return; /* the next entries batch asks again */
    n->compact_out = true;
    queue_batch(n, b);
}

/* ---- leadership ---- */

static struct lessor *lessor_of(struct node *n)
{
    return n->restore_out ? NULL : node_applier_lessor(n->cfg.applier);
}

static bool is_conf_change(uint8_t type)
{
    return type == NODE_REQ_MEMBER_ADD || type == NODE_REQ_MEMBER_REMOVE ||
           type == NODE_REQ_MEMBER_PROMOTE;
}

static void leader_changed(struct node *n, uint64_t old_lead, uint8_t old_role)
{
    cairn_infof(n->env.log, "node", "member %llx: leader %llx -> %llx (%s)",
                (unsigned long long)n->cfg.id, (unsigned long long)old_lead,
                (unsigned long long)n->lead, raft_role_name(n->role));
    /* Proposals made under the old leader may be lost or overwritten: fail
     * them now rather than let them hang (the write may still apply).
     * Configuration changes wait for their apply or their deadline, as
     * etcd's configure does: removing the leader changes the leader by
     * design, and the client must learn that the removal took effect. */
    if (old_lead != n->lead) {
        for (struct waiter *w = n->w_head, *next; w; w = next) {
            next = w->next;
            if ((w->kind == W_PROPOSAL && !is_conf_change(w->type)) ||
                w->kind == W_RENEW)
                complete_err(n, w, CAIRN_ELEADERCHANGED);
            else if (w->kind == W_READ && w->phase == R_ROUND)
                set_pending(n, w); /* ask again, with a fresh ctx */
            else if (w->kind == W_MOVE_LEADER && w->target == n->lead) {
                struct node_result r;
                memset(&r, 0, sizeof(r));
                fill_header(n, &r, w->type);
                complete(n, w, &r);
            }
        }
        n->round_out = false;
    }
    struct lessor *l = lessor_of(n);
    bool leader = n->role == RAFT_LEADER ||
                  (FAULT(n, expire_leases_on_follower) && n->lead != RAFT_NONE);
    bool was =
        old_role == RAFT_LEADER || (FAULT(n, expire_leases_on_follower) &&
                                    l != NULL && lease_is_primary(l));
    if (l != NULL && leader && !was) {
        /* etcd's Promote: every lease gets its remaining TTL plus an
         * election timeout from now, so a leader change never expires a
         * lease its holder kept alive. */
        lease_promote(l, now_ms(n),
                      (int64_t)n->cfg.election_ticks * n->cfg.tick_ms);
        n->n_revoking = 0;
    } else if (l != NULL && !leader && was) {
        lease_demote(l);
    }
}

/* ---- reads ---- */

static void serve_read(struct node *n, struct waiter *w)
{
    struct node_result r;
    memset(&r, 0, sizeof(r));
    fill_header(n, &r, NODE_REQ_RANGE);
    r.err = mvcc_range(n->cfg.store, &w->range, &n->read_arena, &r.u.range);
    r.revision = r.u.range.header_rev;
    complete(n, w, &r);
}

static void serve_renew(struct node *n, struct waiter *w);

/* Reads and renewals whose index is applied are served; the walk also
 * finds the lowest index the others wait for. */
static void serve_applied(struct node *n)
{
    if (n->n_read_waiters == 0 || n->applied < n->reads_ready_at)
        return;
    raft_index lowest = UINT64_MAX;
    for (struct waiter *w = n->w_head, *next; w; w = next) {
        next = w->next;
        n->read_walk_steps++;
        if ((w->kind != W_READ && w->kind != W_RENEW) || w->phase != R_INDEX)
            continue;
        if (w->wait_index > n->applied) {
            if (w->wait_index < lowest)
                lowest = w->wait_index;
        } else if (w->kind == W_READ) {
            serve_read(n, w);
        } else {
            serve_renew(n, w);
        }
    }
    n->reads_ready_at = lowest;
}

/* Reads and keep-alives go through ReadIndex rounds. */
static bool in_rounds(const struct waiter *w)
{
    return w->kind == W_READ || w->kind == W_RENEW;
}

/* One ReadIndex round for every read and keep-alive pending now; later
 * ones wait for the next round (PITFALLS: an answer is used once, by the
 * reads waiting when it was asked). */
static bool start_round(struct node *n)
{
    if (n->round_out || n->stopped || n->lead == RAFT_NONE ||
        n->n_read_waiters == 0 || !n->reads_pending)
        return false;
    bool any = false;
    for (struct waiter *w = n->w_head; w && !any; w = w->next) {
        n->read_walk_steps++;
        any = in_rounds(w) && w->phase == R_PENDING;
    }
    n->reads_pending = any;
    if (!any)
        return false;
    /* Unique across this member's lives, as its request ids are (etcd
     * uses its request id generator too): an answer to a round of an
     * earlier life, still in flight, must not match a new one. */
    uint64_t ctx = next_req_id(n);
    n->round_ctx = ctx;
    struct raft_event ev = {.type = RAFT_EVENT_READ_INDEX};
    ev.u.read_ctx = ctx;
    struct raft_update u;
    int rc = raft_step(n->r, &ev, &u);
    if (rc == 0) {
        n->round_out = true;
        n->round_ticks = 0;
        n->reads_pending = false;
        for (struct waiter *w = n->w_head; w; w = w->next)
            if (in_rounds(w) && w->phase == R_PENDING) {
                w->phase = R_ROUND;
                w->round = ctx;
            }
    }
    handle_update(n, &u);
    return rc == 0;
}

static void propose_clears(struct node *n);
static void promote_caught_up(struct node *n);

static void settle(struct node *n)
{
    if (FAULT(n, ack_before_persist) && n->fake_persisted_index != 0 &&
        !n->stopped) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = n->fake_persisted_index;
        ev.u.persisted.term = n->fake_persisted_term;
        n->fake_persisted_index = 0;
        step(n, &ev);
    }
    if (FAULT(n, reuse_read_index) && n->last_read_index != 0)
        for (struct waiter *w = n->w_head; w; w = w->next)
            if (w->kind == W_READ && w->phase == R_PENDING)
                set_index(n, w, n->last_read_index);
    for (int i = 0; i < 64 && !n->stopped; i++) {
        serve_applied(n);
        propose_clears(n);
        if (!start_round(n))
            break;
    }
}

static void read_states(struct node *n, const struct raft_read_state *rs,
                        size_t k)
{
    for (size_t i = 0; i < k; i++) {
        if (!n->round_out || rs[i].ctx != n->round_ctx)
            continue; /* an abandoned round's answer: never reused */
        for (struct waiter *w = n->w_head; w; w = w->next)
            if (w->kind == W_READ && w->phase == R_ROUND &&
                w->round == rs[i].ctx) {
                set_index(n, w,
                          FAULT(n, read_before_applied) ? 0 : rs[i].index);
            } else if (w->kind == W_RENEW && w->phase == R_ROUND &&
                       w->round == rs[i].ctx) {
                /* A quorum still follows this leader (etcd's
                 * ensureLeadership): the renewal may go ahead. */
                set_index(n, w,
                          rs[i].index > w->wait_index ? rs[i].index
                                                      : w->wait_index);
            }
        n->round_out = false;
        n->last_read_index = rs[i].index;
    }
    /* Serving and the next round wait for settle(): no raft step may run
     * while an update is being handled. */
}

/* ---- the update ---- */

static bool conf_has(const struct raft_conf_state *cs, uint64_t id)
{
    for (uint32_t i = 0; i < cs->n_voters; i++)
        if (cs->voters[i] == id)
            return true;
    for (uint32_t i = 0; i < cs->n_learners; i++)
        if (cs->learners[i] == id)
            return true;
    for (uint32_t i = 0; i < cs->n_voters_outgoing; i++)
        if (cs->voters_outgoing[i] == id)
            return true;
    return false;
}

static int handle_update(struct node *n, const struct raft_update *u)
{
    int rc = 0;
    if (u->hard_state_changed)
        n->hs = u->hard_state;
    /* 1. persist: the log cache first (the core reads it at once; the
     * leader sends from it while its write is in flight), then the WAL. */
    if (u->snapshot) {
        struct raft_snapshot s = *u->snapshot;
        rc = raft_memory_storage_apply_snapshot(n->ms, &s);
        if (rc != 0 && rc != CAIRN_ESNAPOUTOFDATE)
            goto fatal;
    }
    if (u->n_entries) {
        rc = raft_memory_storage_append(n->ms, u->entries, u->n_entries);
        if (rc != 0)
            goto fatal;
    }
    if (u->hard_state_changed)
        raft_memory_storage_set_hard_state(n->ms, &u->hard_state);
    /* A move of the commit index alone needs no write of its own (etcd
     * does not sync it either: raft raises a lagging commit to the applied
     * index on restart): it goes with the next persist, or a tick's. */
    bool hs_new =
        u->hard_state_changed && (u->hard_state.term != n->hs_issued.term ||
                                  u->hard_state.vote != n->hs_issued.vote);
    if (u->hard_state_changed && !hs_new)
        n->hs_owed = true;
    if (u->snapshot || u->n_entries || hs_new) {
        if ((rc = issue_persist(n, u)) != 0)
            goto fatal;
        if (FAULT(n, ack_before_persist) && u->n_entries) {
            n->fake_persisted_index = u->entries[u->n_entries - 1].index;
            n->fake_persisted_term = u->entries[u->n_entries - 1].term;
        }
    }
    /* A received snapshot is restored only once its metadata is durable. */
    if (u->snapshot) {
        struct node_apply_batch *b = batch_new(n, NODE__BATCH_RESTORE);
        if (b == NULL) {
            rc = CAIRN_ENOMEM;
            goto fatal;
        }
        b->snap = u->snapshot->meta;
        if (u->snapshot->len > 0) {
            b->restore_path = cairn_malloc(u->snapshot->len + 1);
            if (b->restore_path == NULL) {
                node__batch_free(b);
                rc = CAIRN_ENOMEM;
                goto fatal;
            }
            memcpy(b->restore_path, u->snapshot->data, u->snapshot->len);
            b->restore_path[u->snapshot->len] = 0;
        }
        n->restore_wait_seq = n->persist_seq;
        n->dispatched = u->snapshot->meta.index;
        n->snap_conf = u->snapshot->meta.conf;
        queue_batch(n, b);
    }
    /* 2. send: at once unless the message waits for durability. */
    size_t run = 0;
    for (size_t i = 0; i < u->n_messages; i++) {
        const struct raft_message *m = &u->messages[i];
        if (!m->after_persist || n->persisted_seq == n->persist_seq ||
            FAULT(n, ack_before_persist)) {
            run++;
            continue;
        }
        send_now(n, &u->messages[i - run], run);
        run = 0;
        if ((rc = defer_msg(n, m, n->persist_seq)) != 0)
            goto fatal;
    }
    send_now(n, &u->messages[u->n_messages - run], run);
    /* 3. apply: committed entries are locally durable already. */
    /* conf_state is always filled: the configuration as of the last entry
     * handed out for applying, what a snapshot at the applied index must
     * record. Taking it from every update also picks up, after a restart,
     * the changes the core replayed from the log past the snapshot. */
    n->conf = u->conf_state;
    if (u->n_committed) {
        struct node_apply_batch *b = batch_new(n, NODE__BATCH_ENTRIES);
        if (b == NULL || copy_entries(u->committed, u->n_committed, &b->entries,
                                      &b->data) != 0) {
            node__batch_free(b);
            rc = CAIRN_ENOMEM;
            goto fatal;
        }
        b->n_entries = u->n_committed;
        b->snap = (struct raft_snapshot_meta){.conf = n->conf};
        n->dispatched = u->committed[u->n_committed - 1].index;
        queue_batch(n, b);
    }
    /* 4. leadership and reads. */
    if (u->soft_state_changed &&
        (u->soft_state.lead != n->lead || u->soft_state.role != n->role)) {
        uint64_t old_lead = n->lead;
        uint8_t old_role = n->role;
        n->lead = u->soft_state.lead;
        n->role = u->soft_state.role;
        leader_changed(n, old_lead, old_role);
    }
    if (u->n_read_states)
        read_states(n, u->read_states, u->n_read_states);
    if (n->env.commit_unsent != NULL && u->commit_unsent != n->commit_unsent) {
        n->commit_unsent = u->commit_unsent;
        n->env.commit_unsent(n->env.ctx, n->commit_unsent);
    }
    /* Removed: etcd's member stops once it applies its own removal; the
     * removal entry is recorded here and the stop happens in
     * node_applied. A snapshot's older configuration (a joining member)
     * does not count. */
    for (size_t i = 0; i < u->n_committed; i++) {
        const struct raft_entry *e = &u->committed[i];
        struct raft_conf_change cc;
        if ((e->type != RAFT_ENTRY_CONF_CHANGE &&
             e->type != RAFT_ENTRY_CONF_CHANGE_V2) ||
            raft_conf_change_decode(e->data, e->len, &cc) != 0)
            continue;
        for (uint32_t j = 0; j < cc.n_changes; j++)
            if (cc.changes[j].type == RAFT_CC_REMOVE_NODE &&
                cc.changes[j].node == n->cfg.id &&
                !conf_has(&n->conf, n->cfg.id))
                n->removed_at = e->index;
    }
    return 0;

fatal:
    node_stop(n, rc);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */

static int bootstrap(struct node *n)
{
    struct raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    if (n->cfg.n_initial_members > RAFT_CONF_MAX)
        return CAIRN_EINVAL;
    for (size_t i = 0; i < n->cfg.n_initial_members; i++) {
        const struct node_member *m = &n->cfg.initial_members[i];
        if (m->id == 0)
            return CAIRN_EINVAL;
        if (m->is_learner)
            cs.learners[cs.n_learners++] = m->id;
        else
            cs.voters[cs.n_voters++] = m->id;
    }
    int rc = raft_memory_storage_bootstrap(n->ms, &cs);
    if (rc != 0)
        return rc;
    /* One entry per member records it in every member's mvcc. */
    size_t k = n->cfg.n_initial_members;
    struct raft_entry *ents = cairn_calloc(k, sizeof(*ents));
    struct buf *bufs = cairn_calloc(k, sizeof(*bufs));
    if (ents == NULL || bufs == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < k && rc == 0; i++) {
        struct node__req q = {.type = NODE__E_MEMBER_UPDATE};
        q.u.member = (struct node_member *)&n->cfg.initial_members[i];
        rc = node__req_encode(&q, &bufs[i]);
        ents[i] = (struct raft_entry){.term = 1,
                                      .index = 2 + i,
                                      .type = RAFT_ENTRY_NORMAL,
                                      .data = bufs[i].data,
                                      .len = bufs[i].len};
    }
    if (rc == 0)
        rc = raft_memory_storage_append(n->ms, ents, k);
    if (rc == 0) {
        struct raft_hard_state hs = {.term = 1, .commit = 1 + k};
        raft_memory_storage_set_hard_state(n->ms, &hs);
        struct raft_snapshot snap = {
            .meta = {.index = 1, .term = 1, .conf = cs}};
        struct raft_update u;
        memset(&u, 0, sizeof(u));
        u.snapshot = &snap;
        u.entries = ents;
        u.n_entries = k;
        u.hard_state_changed = true;
        u.hard_state = hs;
        n->hs = hs;
        rc = issue_persist(n, &u);
    }
    n->snap_index = 1;
    n->snap_conf = cs;
out:
    for (size_t i = 0; bufs && i < k; i++)
        buf_free(&bufs[i]);
    cairn_free(bufs);
    cairn_free(ents);
    return rc;
}

/* Loads the snapshot, the first n_entries recovered entries and the hard
 * state into the raft core's storage. */
static int recover(struct node *n, const struct wal_recovery *rec,
                   size_t n_entries)
{
    int rc = 0;
    if (rec->has_snap) {
        struct raft_snapshot s = {.meta = rec->snap};
        rc = raft_memory_storage_apply_snapshot(n->ms, &s);
        n->snap_index = rec->snap.index;
        n->snap_conf = rec->snap.conf;
    }
    if (rc == 0 && n_entries)
        rc = raft_memory_storage_append(n->ms, rec->entries, n_entries);
    if (rc == 0)
        raft_memory_storage_set_hard_state(n->ms, &rec->hard_state);
    n->hs = rec->hard_state;
    n->hs_issued = rec->hard_state;
    /* Request ids restart above those this member already put in its log
     * (the clock may not have moved since the last incarnation). */
    for (size_t i = 0; i < rec->n_entries; i++) {
        const struct raft_entry *e = &rec->entries[i];
        struct codec_reader r;
        if (e->type != RAFT_ENTRY_NORMAL || e->len < 3)
            continue;
        codec_reader_init(&r, e->data, e->len);
        (void)codec_read_u8(&r);
        (void)codec_read_u8(&r);
        uint64_t id = codec_read_varint(&r);
        if (!r.bad && (id >> 48) == (n->id_prefix >> 48) &&
            (id & ((1ULL << 48) - 1)) > n->id_next)
            n->id_next = id & ((1ULL << 48) - 1);
    }
    return rc;
}

/* --force-new-cluster: recovers the committed log, then appends the
 * changes leaving this member alone and takes them as committed (etcd's
 * restartAsStandaloneNode); they are persisted with the new commit. */
static int recover_standalone(struct node *n, const struct wal_recovery *rec,
                              uint64_t applied)
{
    struct node_member *list = cairn_calloc(MEMBERS_MAX, sizeof(*list));
    if (list == NULL)
        return CAIRN_ENOMEM;
    const struct node_member *self = NULL;
    size_t k = node_members(n, list, MEMBERS_MAX);
    for (size_t i = 0; i < k && self == NULL; i++)
        if (list[i].id == n->cfg.id)
            self = &list[i];
    struct node__forced f;
    int rc = node__force_plan(rec, n->cfg.id, applied, self, &f);
    cairn_free(list);
    if (rc != 0)
        return rc;
    rc = recover(n, rec, f.n_keep);
    if (rc == 0 && f.n_ents)
        rc = raft_memory_storage_append(n->ms, f.ents, f.n_ents);
    if (rc == 0) {
        struct raft_hard_state hs = rec->hard_state;
        hs.commit = f.commit;
        raft_memory_storage_set_hard_state(n->ms, &hs);
        n->hs = hs;
        struct raft_update u;
        memset(&u, 0, sizeof(u));
        u.entries = f.ents;
        u.n_entries = f.n_ents;
        u.hard_state_changed = true;
        u.hard_state = hs;
        rc = issue_persist(n, &u);
    }
    if (rc == 0)
        cairn_warnf(n->env.log, "node",
                    "forcing restart of member %016llx in cluster "
                    "%016llx at commit index %llu: discarded %zu "
                    "uncommitted WAL entries, removing %zu other members",
                    (unsigned long long)n->cfg.id,
                    (unsigned long long)n->cfg.cluster_id,
                    (unsigned long long)f.commit, f.n_dropped, f.n_removed);
    node__force_plan_free(&f);
    return rc;
}

int node_new(const struct node_config *config, const struct node_env *env,
             struct node **out)
{
    if (config->id == 0 || config->store == NULL || config->applier == NULL ||
        env->now_ms == NULL || env->send == NULL || env->persist == NULL ||
        env->apply == NULL || env->snapshot == NULL ||
        config->election_ticks < 2 || config->tick_ms == 0)
        return CAIRN_EINVAL;
    struct node *n = cairn_calloc(1, sizeof(*n));
    if (n == NULL)
        return CAIRN_ENOMEM;
    n->cfg = *config;
    n->env = *env;
    if (n->cfg.snapshot_count == 0)
        n->cfg.snapshot_count = NODE_SNAPSHOT_COUNT_DEFAULT;
    if (n->cfg.snapshot_catchup_entries == 0)
        n->cfg.snapshot_catchup_entries = NODE_SNAPSHOT_CATCHUP_ENTRIES;
    if (n->cfg.log_cache_bytes == 0)
        n->cfg.log_cache_bytes = NODE_LOG_CACHE_BYTES_DEFAULT;
    n->trim_at = n->cfg.log_cache_bytes / 4;
    if (n->cfg.max_request_bytes == 0)
        n->cfg.max_request_bytes = NODE_MAX_REQUEST_BYTES_DEFAULT;
    if (n->cfg.request_timeout_ms == 0)
        n->cfg.request_timeout_ms =
            5000 + 2ull * n->cfg.election_ticks * n->cfg.tick_ms;
    if (n->cfg.max_pending_requests == 0)
        n->cfg.max_pending_requests = 100000;
    n->cfg.recovery = NULL;
    n->cfg.initial_members = NULL;
    n->id_prefix = (config->id & 0xffff) << 48;
    n->reads_ready_at = UINT64_MAX;
    n->id_next = ((uint64_t)env->now_ms(env->ctx) << 8) & ((1ULL << 48) - 1);
    mvcc_arena_init(&n->read_arena);
    buf_init(&n->enc);
    buf_init(&n->prop_bytes);
    int rc = raft_memory_storage_new(&n->ms);
    if (rc != 0)
        goto err_free;
    const struct wal_recovery *rec = config->recovery;
    bool restart = rec != NULL && (rec->has_snap || rec->n_entries > 0);
    if (restart && config->force_new_cluster)
        rc = recover_standalone(n, rec, config->applied_index);
    else if (restart)
        rc = recover(n, rec, rec->n_entries);
    else if (config->n_initial_members > 0) {
        n->cfg.initial_members = config->initial_members;
        rc = bootstrap(n);
        n->cfg.initial_members = NULL;
    }
    if (rc != 0)
        goto err_storage;
    raft_index first = 0;
    raft_memory_storage_iface(n->ms)->first_index(n->ms, &first);
    n->applied = config->applied_index;
    if (n->applied < first - 1)
        n->applied = first - 1;
    raft_index last = 0;
    raft_memory_storage_iface(n->ms)->last_index(n->ms, &last);
    if (n->applied > last)
        n->applied = last; /* mvcc ahead of a log cut short: replay none */
    n->dispatched = n->applied;
    n->applied_conf = n->snap_conf;
    n->conf = n->snap_conf;
    struct raft_config rcfg = {
        .id = config->id,
        .election_ticks = config->election_ticks,
        .heartbeat_ticks = 1,
        .storage = raft_memory_storage_iface(n->ms),
        .applied = n->applied,
        .max_size_per_msg = 1024 * 1024,
        .max_committed_size_per_update = 16 * 1024 * 1024,
        .max_uncommitted_entries_size = 64 * 1024 * 1024,
        .max_inflight_msgs = 256,
        .check_quorum = true,
        .pre_vote = config->pre_vote,
        .lazy_commit = env->commit_unsent != NULL,
        .read_only = RAFT_READ_ONLY_SAFE,
        .seed = config->seed,
        .log = env->log,
    };
    rc = raft_new(&rcfg, &n->r);
    if (rc != 0)
        goto err_storage;
    /* A store ahead of the WAL's snapshot applied the configuration
     * entries between them: a snapshot taken before the next entry
     * applies must record that configuration, not the older snapshot's
     * (a restart from it would bring removed voters back). */
    raft_applied_conf(n->r, &n->applied_conf);
    n->conf = n->applied_conf;
    *out = n;
    return 0;

err_storage:
    /* A bootstrap persist already handed out stays owned by the record. */
    while (n->p_head) {
        struct persist_rec *p = n->p_head;
        n->p_head = p->next;
        cairn_free(p->entries);
        cairn_free(p->data);
        cairn_free(p->image_path);
        cairn_free(p->snap);
        cairn_free(p);
    }
    raft_memory_storage_free(n->ms);
err_free:
    mvcc_arena_free(&n->read_arena);
    cairn_free(n);
    return rc;
}

void node_free(struct node *n)
{
    if (n == NULL)
        return;
    fail_all(n, CAIRN_ESTOPPED);
    drain(n);
    while (n->p_head) {
        struct persist_rec *p = n->p_head;
        n->p_head = p->next;
        cairn_free(p->entries);
        cairn_free(p->data);
        cairn_free(p->image_path);
        cairn_free(p->snap);
        cairn_free(p);
    }
    while (n->d_head) {
        struct deferred_msg *d = n->d_head;
        n->d_head = d->next;
        buf_free(&d->bytes);
        cairn_free(d);
    }
    while (n->q_head) {
        struct node_apply_batch *b = n->q_head;
        n->q_head = b->next;
        node__batch_free(b);
    }
    raft_free(n->r);
    raft_memory_storage_free(n->ms);
    cairn_free(n->done);
    mvcc_arena_free(&n->read_arena);
    buf_free(&n->enc);
    buf_free(&n->prop_bytes);
    cairn_free(n->props);
    cairn_free(n);
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

static void lease_tick(struct node *n)
{
    struct lessor *l = lessor_of(n);
    if (l == NULL || !lease_is_primary(l) ||
        (n->role != RAFT_LEADER && !FAULT(n, expire_leases_on_follower)))
        return;
    if (n->hs.commit > n->applied + LEASE_EXPIRY_MAX_LAG)
        return;
    int64_t now = now_ms(n);
    /* Revokes: at most LEASE_REVOKE_RATE per second. */
    int64_t ids[256];
    size_t budget =
        (size_t)(LEASE_REVOKE_RATE * (int64_t)n->cfg.tick_ms / 1000);
    if (budget == 0)
        budget = 1;
    if (budget > 256)
        budget = 256;
    size_t k = lease_expired(l, now, ids, budget);
    for (size_t i = 0; i < k; i++) {
        size_t j = 0;
        while (j < n->n_revoking && n->revoking[j].id != ids[i])
            j++;
        if (j < n->n_revoking &&
            now - n->revoking[j].at_ms < LEASE_REVOKE_RETRY_MS)
            continue;
        if (j == n->n_revoking) {
            if (n->n_revoking == LEASE_REVOKING_MAX)
                continue;
            n->n_revoking++;
        }
        n->revoking[j].id = ids[i];
        n->revoking[j].at_ms = now;
        struct node__req q = {.type = NODE__E_LEASE_REVOKE};
        q.u.revoke_id = ids[i];
        buf_reset(&n->enc);
        if (node__req_encode(&q, &n->enc) != 0)
            return;
        struct raft_proposal p = {n->enc.data, n->enc.len};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
        ev.u.propose.items = &p;
        ev.u.propose.n = 1;
        step(n, &ev);
        if (n->stopped)
            return;
    }
    /* Forget revokes whose lease is gone. */
    for (size_t j = 0; j < n->n_revoking;) {
        if (!lease_exists(l, n->revoking[j].id))
            n->revoking[j] = n->revoking[--n->n_revoking];
        else
            j++;
    }
    /* Checkpoints of the remaining TTL, one entry for all due. */
    int64_t cids[128], rem[128];
    size_t c = lease_checkpoints_due(l, now, cids, rem, 128);
    if (c > 0) {
        struct node__req q = {.type = NODE__E_LEASE_CHECKPOINT};
        q.u.checkpoint.ids = cids;
        q.u.checkpoint.remaining_s = rem;
        q.u.checkpoint.n = c;
        buf_reset(&n->enc);
        if (node__req_encode(&q, &n->enc) == 0) {
            struct raft_proposal p = {n->enc.data, n->enc.len};
            struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
            ev.u.propose.items = &p;
            ev.u.propose.n = 1;
            step(n, &ev);
        }
    }
}

uint64_t node__read_walk_steps(const struct node *n)
{
    return n->read_walk_steps;
}

int node_tick(struct node *n)
{
    if (n->stopped)
        return n->stop_err ? CAIRN_ESTOPPED : 0;
    struct raft_event ev = {.type = RAFT_EVENT_TICK};
    int rc = step(n, &ev);
    /* A commit index still owed to the WAL is written once the pipeline
     * is idle, so an idle member's log records where it got to. */
    if (rc == 0 && n->hs_owed && !n->stopped &&
        n->persisted_seq == n->persist_seq) {
        struct raft_update none;
        memset(&none, 0, sizeof(none));
        if ((rc = issue_persist(n, &none)) != 0)
            node_stop(n, rc);
    }
    /* A round unanswered for an election timeout is abandoned; its reads
     * ask again with a fresh ctx and the late answer is ignored. */
    if (n->round_out && ++n->round_ticks >= n->cfg.election_ticks) {
        n->round_out = false;
        for (struct waiter *w = n->w_head; w; w = w->next)
            if (in_rounds(w) && w->phase == R_ROUND)
                set_pending(n, w);
    }
    if (!n->stopped)
        lease_tick(n);
    promote_caught_up(n);
    /* Waiters are in creation order with one timeout, so deadlines only
     * grow along the list: stop at the first one not due. */
    int64_t now = now_ms(n);
    for (struct waiter *w = n->w_head, *next; w; w = next) {
        next = w->next;
        /* A physical compaction was applied: it ends when its steps do. */
        if (w->kind == W_LOCAL || w->kind == W_PHYSICAL)
            continue;
        if (w->deadline_ms > now)
            break;
        complete_err(n, w, CAIRN_ETIMEOUT);
    }
    drain(n);
    return rc;
}

int node_receive(struct node *n, const struct raft_message *m)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE};
    ev.u.message = m;
    int rc = step(n, &ev);
    drain(n);
    return rc;
}

int node_persisted(struct node *n, uint64_t seq, int status)
{
    if (status != 0) {
        node_stop(n, status);
        drain(n);
        return 0;
    }
    CAIRN_ASSERT(seq > n->persisted_seq && seq <= n->persist_seq);
    /* Persists complete in order, so one report of the newest entries
     * covers the older ones (log matching): one step, one update, and the
     * entries it commits go to the applier as one batch. */
    raft_index index = 0;
    raft_term term = 0;
    while (n->p_head && n->p_head->p.seq <= seq) {
        struct persist_rec *p = n->p_head;
        n->p_head = p->next;
        if (n->p_head == NULL)
            n->p_tail = NULL;
        n->persisted_seq = p->p.seq;
        if (p->p.n_entries) {
            index = p->entries[p->p.n_entries - 1].index;
            term = p->entries[p->p.n_entries - 1].term;
        }
        cairn_free(p->entries);
        cairn_free(p->data);
        cairn_free(p->image_path);
        cairn_free(p->snap);
        cairn_free(p);
    }
    if (index != 0 && !n->stopped) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = index;
        ev.u.persisted.term = term;
        step(n, &ev);
    }
    n->persisted_seq = seq;
    flush_deferred(n);
    issue_batches(n);
    drain(n);
    return 0;
}

static void maybe_snapshot(struct node *n)
{
    if (n->snap_in_flight || n->stopped ||
        n->applied < n->snap_index + n->cfg.snapshot_count)
        return;
    raft_term t;
    if (raft_memory_storage_iface(n->ms)->term(n->ms, n->applied, &t) != 0)
        return;
    struct raft_snapshot_meta meta = {
        .index = n->applied, .term = t, .conf = n->applied_conf};
    n->snap_in_flight = true;
    n->snap_requested = n->applied;
    n->snap_conf = n->applied_conf;
    n->env.snapshot(n->env.ctx, &meta);
}

static struct raft_status *leader_status(struct node *n);

/* Where a bounded log cache may be compacted to: the catch-up window
 * behind applied, lowered to what a live follower still needs, but keeping
 * at most half the bound for the window and the whole bound for live
 * followers. */
static raft_index trim_point(struct node *n)
{
    uint64_t bound = n->cfg.log_cache_bytes;
    raft_index k = n->applied > n->cfg.snapshot_catchup_entries
                       ? n->applied - n->cfg.snapshot_catchup_entries
                       : 0;
    raft_index half = raft_memory_storage_keep_bytes(n->ms, bound / 2);
    if (k < half)
        k = half;
    struct raft_status *st = leader_status(n);
    for (uint32_t i = 0; st != NULL && i < st->n_progress; i++) {
        const struct raft_progress_status *p = &st->progress[i];
        if (p->id == n->cfg.id || !p->recent_active)
            continue;
        /* A follower being sent a snapshot resumes after it. */
        raft_index need =
            p->state == RAFT_PROGRESS_SNAPSHOT && p->pending_snapshot > p->match
                ? p->pending_snapshot
                : p->match;
        if (need < k)
            k = need;
    }
    cairn_free(st);
    raft_index full = raft_memory_storage_keep_bytes(n->ms, bound);
    if (k < full)
        k = full;
    return k < n->applied ? k : n->applied;
}

/* Bounds the log cache by bytes, not only by the snapshot count: entries
 * up to applied are dropped from memory (the WAL keeps them until a
 * durable snapshot) behind an in-memory snapshot at applied, the one a
 * follower that needs them gets (its image is the live store anyway, see
 * "Snapshots and compaction" in docs/node.md). Looks again after a
 * quarter of the bound more than what it kept, not only at the bound: what
 * the cache holds past the catch-up window and the live followers' needs
 * serves no one, and waiting for the bound kept up to 8 MiB of it on every
 * member. A quarter, so that a cache held up by unapplied entries or a
 * live follower is not walked on every batch. */
static void trim_log_cache(struct node *n)
{
    uint64_t bound = n->cfg.log_cache_bytes;
    if (raft_memory_storage_bytes(n->ms) <= n->trim_at)
        return;
    raft_index k = trim_point(n);
    int rc = 0;
    if (k >= raft_memory_storage_first_index(n->ms)) {
        rc = raft_memory_storage_create_snapshot(n->ms, n->applied,
                                                 &n->applied_conf, NULL, 0);
        if (rc == 0 || rc == CAIRN_ESNAPOUTOFDATE)
            rc = raft_memory_storage_compact(n->ms, k);
    }
    if (rc != 0 && rc != CAIRN_ECOMPACTED)
        cairn_warnf(n->env.log, "node", "log cache trim to %llu: %s",
                    (unsigned long long)k, cairn_strerror(rc));
    uint64_t left = raft_memory_storage_bytes(n->ms);
    n->trim_at = left + bound / 4;
}

static void complete_results(struct node *n, struct node_apply_batch *b)
{
    for (size_t i = 0; i < b->n_results; i++) {
        struct waiter *w = waiter_find(n, b->results[i].id);
        if (w == NULL || w->kind != W_PROPOSAL || w->crc != b->results[i].crc)
            continue;
        struct node_result *r = &b->results[i].res;
        r->type = w->type;
        if (w->physical && r->err == 0) {
            /* etcd's physical compaction: answered once the local store
             * dropped the history (complete_physical). */
            w->kind = W_PHYSICAL;
            w->revision = r->revision;
            continue;
        }
        if (w->type >= NODE_REQ_MEMBER_ADD &&
            w->type <= NODE_REQ_MEMBER_PROMOTE && r->err == 0) {
            /* The list after the change, as etcd answers. */
            struct node_member *list =
                mvcc_arena_alloc(&b->arena, MEMBERS_MAX * sizeof(*list));
            if (list != NULL) {
                size_t k = node_members(n, list, MEMBERS_MAX);
                r->u.members.list = list;
                r->u.members.n = k < MEMBERS_MAX ? k : MEMBERS_MAX;
            }
        }
        complete(n, w, r);
    }
}

int node_applied(struct node *n, struct node_apply_batch *b)
{
    CAIRN_ASSERT(n->batches_out > 0);
    n->batches_out--;
    int rc = 0;
    switch (b->kind) {
    case NODE__BATCH_ENTRIES:
        if (b->status != 0) {
            node_stop(n, b->status);
            break;
        }
        if (b->n_entries && b->entries[b->n_entries - 1].index > n->applied) {
            n->applied = b->entries[b->n_entries - 1].index;
            n->applied_conf = b->snap.conf;
        }
        complete_results(n, b);
        trim_log_cache(n);
        break;
    case NODE__BATCH_RESTORE: {
        n->restore_out = false;
        if (b->status != 0) {
            node_stop(n, b->status);
            break;
        }
        if (b->snap.index > n->applied) {
            n->applied = b->snap.index;
            n->applied_conf = b->snap.conf;
        }
        if (b->snap.index > n->snap_index)
            n->snap_index = b->snap.index;
        struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_INSTALLED};
        ev.u.snapshot_index = b->snap.index;
        step(n, &ev);
        /* The reopened lessor is not primary yet. */
        struct lessor *l = lessor_of(n);
        if (l != NULL && n->role == RAFT_LEADER && !lease_is_primary(l))
            lease_promote(l, now_ms(n),
                          (int64_t)n->cfg.election_ticks * n->cfg.tick_ms);
        break;
    }
    case NODE__BATCH_COMPACT:
        n->compact_out = false;
        if (b->status != 0)
            node_stop(n, b->status);
        break;
    case NODE__BATCH_DEFRAG:
    case NODE__BATCH_EXPORT: {
        struct waiter *w = waiter_find(n, b->local_req);
        if (w != NULL) {
            struct node_result r;
            memset(&r, 0, sizeof(r));
            fill_header(n, &r, w->type);
            r.err = b->status;
            complete(n, w, &r);
        }
        break;
    }
    default:
        CAIRN_UNREACHABLE();
    }
    if (n->removed_at != 0 && n->applied >= n->removed_at)
        node_stop(n, CAIRN_EREMOVED);
    if (b->compact_pending)
        queue_compact_step(n);
    else if (b->kind == NODE__BATCH_ENTRIES || b->kind == NODE__BATCH_COMPACT)
        complete_physical(n);
    maybe_snapshot(n);
    issue_batches(n);
    /* Results point into b's arena: run the callbacks, then free it. */
    drain(n);
    node__batch_free(b);
    return rc;
}

int node_snapshot_done(struct node *n, raft_index index, int status)
{
    CAIRN_ASSERT(n->snap_in_flight && index == n->snap_requested);
    n->snap_in_flight = false;
    if (status != 0) {
        node_stop(n, status);
        drain(n);
        return 0;
    }
    /* The log cache gets the snapshot (its image is the live store, which
     * the transport streams) and keeps a tail for slow followers. */
    int rc = raft_memory_storage_create_snapshot(n->ms, index, &n->snap_conf,
                                                 NULL, 0);
    if (rc == 0 || rc == CAIRN_ESNAPOUTOFDATE) {
        n->snap_index = index > n->snap_index ? index : n->snap_index;
        if (index > n->cfg.snapshot_catchup_entries) {
            rc = raft_memory_storage_compact(
                n->ms, index - n->cfg.snapshot_catchup_entries);
            if (rc == CAIRN_ECOMPACTED)
                rc = 0;
        } else {
            rc = 0;
        }
    }
    if (rc != 0 && rc != CAIRN_ESNAPOUTOFDATE)
        cairn_warnf(n->env.log, "node", "snapshot %llu: %s",
                    (unsigned long long)index, cairn_strerror(rc));
    maybe_snapshot(n);
    drain(n);
    return 0;
}

int node_report_unreachable(struct node *n, uint64_t peer)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct raft_event ev = {.type = RAFT_EVENT_REPORT_UNREACHABLE};
    ev.u.unreachable = peer;
    int rc = step(n, &ev);
    drain(n);
    return rc;
}

int node_report_snapshot(struct node *n, uint64_t peer, bool failed)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct raft_event ev = {.type = RAFT_EVENT_REPORT_SNAPSHOT};
    ev.u.snapshot_report.id = peer;
    ev.u.snapshot_report.failed = failed;
    int rc = step(n, &ev);
    drain(n);
    return rc;
}

int node_report_removed(struct node *n)
{
    node_stop(n, CAIRN_EREMOVED);
    drain(n);
    return 0;
}

int node_campaign(struct node *n)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    int rc = step(n, &ev);
    drain(n);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

/* Refusals common to everything that goes through raft. */
static int admit(struct node *n)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    if (n->lead == RAFT_NONE)
        return CAIRN_ENOLEADER;
    if (n->hs.commit > n->applied + NODE_MAX_APPLY_LAG)
        return CAIRN_ETOOMANYREQUESTS;
    if (n->n_waiters >= n->cfg.max_pending_requests)
        return CAIRN_ETOOMANYREQUESTS;
    return 0;
}

/* After handing w's request to the core: if refused, w goes without a
 * callback (negative return), unless stepping already completed it (a
 * leader change, a stop): then its callback runs and the request counts
 * as accepted. */
static int refused_or_queued(struct node *n, struct waiter *w, int rc)
{
    if (rc != 0 && waiter_find(n, w->id) == w) {
        waiter_unlink(n, w);
        waiter_free(w);
    } else {
        rc = 0;
    }
    drain(n);
    return rc;
}

/* Hands the gathered proposals to raft as one event: one entry batch, one
 * persist and one append per follower for all of them. A refusal fails
 * each of their waiters, as it would have failed each alone. */
static void flush_props(struct node *n)
{
    if (n->n_props == 0)
        return;
    struct raft_proposal stack[64];
    struct raft_proposal *items = stack;
    if (n->n_props > 64)
        items = cairn_malloc(n->n_props * sizeof(*items));
    int rc = CAIRN_ENOMEM;
    if (items != NULL) {
        size_t off = 0;
        for (size_t i = 0; i < n->n_props; i++) {
            items[i] = (struct raft_proposal){n->prop_bytes.data + off,
                                              n->props[i].len};
            off += n->props[i].len;
        }
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
        ev.u.propose.items = items;
        ev.u.propose.n = n->n_props;
        n->flushing_props = true;
        rc = step(n, &ev);
        n->flushing_props = false;
    }
    if (items != stack)
        cairn_free(items);
    for (size_t i = 0; rc != 0 && i < n->n_props; i++) {
        struct waiter *w = waiter_find(n, n->props[i].id);
        if (w != NULL && w->kind == W_PROPOSAL)
            complete_err(n, w, rc);
    }
    n->n_props = 0;
    buf_reset(&n->prop_bytes);
}

/* Adds the request in n->enc to the gathered proposals; the env hears of
 * the first, so that it calls node_flush_proposals before the loop
 * waits again. */
static int gather_prop(struct node *n, uint64_t id)
{
    if (n->n_props == n->cap_props) {
        size_t cap = n->cap_props ? n->cap_props * 2 : 64;
        struct pending_prop *p = cairn_realloc(n->props, cap * sizeof(*p));
        if (p == NULL)
            return CAIRN_ENOMEM;
        n->props = p;
        n->cap_props = cap;
    }
    if (buf_append(&n->prop_bytes, n->enc.data, n->enc.len) != 0)
        return CAIRN_ENOMEM;
    n->props[n->n_props++] = (struct pending_prop){n->enc.len, id};
    if (n->n_props == 1)
        n->env.proposals_queued(n->env.ctx);
    if (n->n_props >= PROPS_BATCH_MAX || n->prop_bytes.len >= PROPS_BYTES_MAX)
        flush_props(n);
    return 0;
}

int node_flush_proposals(struct node *n)
{
    flush_props(n);
    drain(n);
    return 0;
}

int node_send_commit(struct node *n)
{
    if (n->stopped)
        return n->stop_err ? CAIRN_ESTOPPED : 0;
    struct raft_event ev = {.type = RAFT_EVENT_SEND_COMMIT};
    int rc = step(n, &ev);
    drain(n);
    return rc;
}

/* Proposes q (its id set from a new waiter) and waits for its result. */
static int propose_req(struct node *n, struct node__req *q, uint8_t type,
                       void *arg, node_done_cb cb)
{
    int rc = admit(n);
    if (rc != 0)
        return rc;
    struct waiter *w = waiter_new(n, W_PROPOSAL, type, arg, cb);
    if (w == NULL)
        return CAIRN_ENOMEM;
    q->id = w->id;
    buf_reset(&n->enc);
    rc = node__req_encode(q, &n->enc);
    if (rc == 0)
        w->crc = crc32c(0, n->enc.data, n->enc.len);
    if (rc == 0 && n->enc.len > n->cfg.max_request_bytes)
        rc = CAIRN_ETOOBIG;
    if (rc == 0 && n->env.proposals_queued != NULL)
        return refused_or_queued(n, w, gather_prop(n, w->id));
    if (rc == 0) {
        struct raft_proposal p = {n->enc.data, n->enc.len};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
        ev.u.propose.items = &p;
        ev.u.propose.n = 1;
        rc = step(n, &ev);
    }
    return refused_or_queued(n, w, rc);
}

/* Answers at once: res is complete; cb runs before the function returns. */
static int answer_now(struct node *n, uint8_t type, struct node_result *res,
                      void *arg, node_done_cb cb)
{
    res->type = type;
    res->cluster_id = n->cfg.cluster_id;
    res->member_id = n->cfg.id;
    res->raft_term = n->hs.term;
    fill_revision(n, res);
    cb(arg, res);
    /* Queued results may point into the read arena too. */
    if (!n->draining && n->n_done == 0)
        mvcc_arena_reset(&n->read_arena);
    return 0;
}

static int txn_depth_ok(const struct mvcc_txn_req *t, int depth)
{
    if (depth > NODE__TXN_DEPTH_MAX)
        return 0;
    for (int side = 0; side < 2; side++) {
        const struct mvcc_op *ops = side ? t->failure : t->success;
        size_t k = side ? t->n_failure : t->n_success;
        for (size_t i = 0; i < k; i++)
            if (ops[i].type == MVCC_OP_TXN &&
                !txn_depth_ok(ops[i].u.txn, depth + 1))
                return 0;
    }
    return 1;
}

int node_range(struct node *n, const struct mvcc_range_req *req,
               bool serializable, void *arg, node_done_cb cb)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    if (serializable) {
        struct node_result r;
        memset(&r, 0, sizeof(r));
        r.err = mvcc_range(n->cfg.store, req, &n->read_arena, &r.u.range);
        r.revision = r.u.range.header_rev;
        return answer_now(n, NODE_REQ_RANGE, &r, arg, cb);
    }
    int rc = admit(n);
    if (rc != 0)
        return rc;
    if (req->key_len + req->end_len > n->cfg.max_request_bytes)
        return CAIRN_ETOOBIG;
    struct waiter *w = waiter_new(n, W_READ, NODE_REQ_RANGE, arg, cb);
    if (w == NULL)
        return CAIRN_ENOMEM;
    w->range = *req;
    size_t len = req->key_len + req->end_len;
    if (len > 0) {
        w->range_bytes = cairn_malloc(len);
        if (w->range_bytes == NULL) {
            waiter_unlink(n, w);
            waiter_free(w);
            return CAIRN_ENOMEM;
        }
        if (req->key_len)
            memcpy(w->range_bytes, req->key, req->key_len);
        if (req->end_len)
            memcpy(w->range_bytes + req->key_len, req->end, req->end_len);
        w->range.key = req->key_len ? w->range_bytes : NULL;
        w->range.end = req->end_len ? w->range_bytes + req->key_len : NULL;
    }
    set_pending(n, w);
    drain(n); /* starts a round unless one is out */
    return 0;
}

static int quota_check(struct node *n, size_t cost)
{
    if (mvcc_quota_ok(n->cfg.store, cost))
        return 0;
    /* etcd raises the NOSPACE alarm for this member and refuses. */
    struct node__req q = {.type = NODE__E_ALARM};
    q.u.alarm.action = NODE_ALARM_ACTIVATE;
    q.u.alarm.type = NODE_ALARM_NOSPACE;
    q.u.alarm.member = n->cfg.id;
    buf_reset(&n->enc);
    if (n->lead != RAFT_NONE && node__req_encode(&q, &n->enc) == 0) {
        struct raft_proposal p = {n->enc.data, n->enc.len};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
        ev.u.propose.items = &p;
        ev.u.propose.n = 1;
        step(n, &ev);
    }
    return CAIRN_EQUOTA;
}

int node_put(struct node *n, const struct mvcc_put_req *req, void *arg,
             node_done_cb cb)
{
    int rc = admit(n);
    if (rc == 0)
        rc = quota_check(n, mvcc_put_cost(req));
    if (rc != 0)
        return rc;
    struct node__req q = {.type = NODE__E_PUT};
    q.u.put = *req;
    return propose_req(n, &q, NODE_REQ_PUT, arg, cb);
}

int node_delete_range(struct node *n, const struct mvcc_delete_req *req,
                      void *arg, node_done_cb cb)
{
    struct node__req q = {.type = NODE__E_DELETE};
    q.u.del = *req;
    return propose_req(n, &q, NODE_REQ_DELETE, arg, cb);
}

int node_txn(struct node *n, const struct mvcc_txn_req *req, void *arg,
             node_done_cb cb)
{
    if (!txn_depth_ok(req, 1))
        return CAIRN_EINVAL;
    int rc =
        mvcc_txn_validate(req, SIZE_MAX); /* the api applies --max-txn-ops */
    if (rc == 0)
        rc = admit(n);
    if (rc == 0 && mvcc_txn_cost(req) > 0)
        rc = quota_check(n, mvcc_txn_cost(req));
    if (rc != 0)
        return rc;
    struct node__req q = {.type = NODE__E_TXN};
    q.u.txn = *req;
    return propose_req(n, &q, NODE_REQ_TXN, arg, cb);
}

int node_compact(struct node *n, mvcc_rev rev, bool physical, void *arg,
                 node_done_cb cb)
{
    struct node__req q = {.type = NODE__E_COMPACT};
    q.u.compact.rev = rev;
    q.u.compact.physical = physical;
    int rc = propose_req(n, &q, NODE_REQ_COMPACT, arg, cb);
    struct waiter *w = rc == 0 && physical ? waiter_find(n, q.id) : NULL;
    if (w != NULL && w->kind == W_PROPOSAL)
        w->physical = true;
    return rc;
}

int node_lease_grant(struct node *n, int64_t id, int64_t ttl_s, void *arg,
                     node_done_cb cb)
{
    if (ttl_s > LEASE_TTL_MAX)
        return CAIRN_ELEASETTLTOOLARGE;
    int rc = admit(n);
    if (rc == 0)
        rc = quota_check(n, 64);
    if (rc != 0)
        return rc;
    struct node__req q = {.type = NODE__E_LEASE_GRANT};
    q.u.grant.id = id;
    q.u.grant.ttl_s = ttl_s;
    return propose_req(n, &q, NODE_REQ_LEASE_GRANT, arg, cb);
}

int node_lease_revoke(struct node *n, int64_t id, void *arg, node_done_cb cb)
{
    struct node__req q = {.type = NODE__E_LEASE_REVOKE};
    q.u.revoke_id = id;
    return propose_req(n, &q, NODE_REQ_LEASE_REVOKE, arg, cb);
}

static void serve_renew(struct node *n, struct waiter *w)
{
    struct node_result r;
    memset(&r, 0, sizeof(r));
    fill_header(n, &r, NODE_REQ_LEASE_KEEPALIVE);
    struct lessor *l = lessor_of(n);
    if (l == NULL || n->role != RAFT_LEADER) {
        r.err = CAIRN_ENOTLEADER;
        complete(n, w, &r);
        return;
    }
    bool clear = false;
    r.err = lease_renew(l, w->lease_id, now_ms(n), &r.u.lease_keepalive.ttl_s,
                        &clear);
    r.u.lease_keepalive.id = w->lease_id;
    /* A recorded remaining TTL is cleared by a checkpoint of 0 (etcd),
     * proposed by settle() outside this walk of the waiters. */
    if (r.err == 0 && clear && n->n_clear < CLEARS_MAX)
        n->clear_ids[n->n_clear++] = w->lease_id;
    complete(n, w, &r);
}

static void propose_clears(struct node *n)
{
    if (n->n_clear == 0)
        return;
    int64_t rem[CLEARS_MAX] = {0};
    struct node__req q = {.type = NODE__E_LEASE_CHECKPOINT};
    q.u.checkpoint.ids = n->clear_ids;
    q.u.checkpoint.remaining_s = rem;
    q.u.checkpoint.n = n->n_clear;
    buf_reset(&n->enc);
    if (node__req_encode(&q, &n->enc) == 0) {
        struct raft_proposal p = {n->enc.data, n->enc.len};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
        ev.u.propose.items = &p;
        ev.u.propose.n = 1;
        step(n, &ev);
    }
    n->n_clear = 0;
}

int node_lease_keepalive(struct node *n, int64_t id, void *arg, node_done_cb cb)
{
    int rc = admit(n);
    if (rc != 0)
        return rc;
    if (n->role != RAFT_LEADER)
        return CAIRN_ENOTLEADER;
    /* A quorum must confirm the leadership first, by a ReadIndex round
     * (etcd's ensureLeadership, etcd issue 15247): a leader stuck or cut
     * off while the others elected a new one would renew by its stale
     * lessor, and the new leader expire the lease the client believes
     * kept alive. Then, as etcd, it waits until everything committed is
     * applied, so a lease granted a moment ago is known. */
    struct waiter *w =
        waiter_new(n, W_RENEW, NODE_REQ_LEASE_KEEPALIVE, arg, cb);
    if (w == NULL)
        return CAIRN_ENOMEM;
    w->lease_id = id;
    set_pending(n, w);
    w->wait_index = n->hs.commit;
    drain(n);
    return 0;
}

struct key_collect {
    struct mvcc_arena *a;
    const uint8_t **keys;
    size_t *lens;
    size_t n, max;
};

static int collect_key(void *arg, const uint8_t *key, size_t key_len)
{
    struct key_collect *c = arg;
    if (c->n == c->max)
        return 1;
    uint8_t *p = mvcc_arena_alloc(c->a, key_len ? key_len : 1);
    if (p == NULL)
        return CAIRN_ENOMEM;
    memcpy(p, key, key_len);
    c->keys[c->n] = p;
    c->lens[c->n] = key_len;
    c->n++;
    return 0;
}

int node_lease_ttl(struct node *n, int64_t id, bool keys, void *arg,
                   node_done_cb cb)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct lessor *l = lessor_of(n);
    if (l == NULL)
        return CAIRN_EAGAIN;
    struct node_result r;
    memset(&r, 0, sizeof(r));
    size_t max = keys ? 10000 : 0;
    struct key_collect c = {.a = &n->read_arena, .max = max};
    if (max) {
        c.keys = mvcc_arena_alloc(&n->read_arena, max * sizeof(*c.keys));
        c.lens = mvcc_arena_alloc(&n->read_arena, max * sizeof(*c.lens));
        if (c.keys == NULL || c.lens == NULL)
            return CAIRN_ENOMEM;
    }
    r.err = lease_time_to_live(l, id, now_ms(n), &r.u.lease_ttl.info, max, &c,
                               collect_key);
    r.u.lease_ttl.keys = c.keys;
    r.u.lease_ttl.key_lens = c.lens;
    r.u.lease_ttl.n_keys = c.n;
    return answer_now(n, NODE_REQ_LEASE_TTL, &r, arg, cb);
}

int node_lease_list(struct node *n, void *arg, node_done_cb cb)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct lessor *l = lessor_of(n);
    if (l == NULL)
        return CAIRN_EAGAIN;
    struct node_result r;
    memset(&r, 0, sizeof(r));
    size_t total = lease_list(l, NULL, 0);
    int64_t *ids =
        mvcc_arena_alloc(&n->read_arena, (total ? total : 1) * sizeof(*ids));
    if (ids == NULL)
        return CAIRN_ENOMEM;
    r.u.lease_list.n = lease_list(l, ids, total);
    if (r.u.lease_list.n > total)
        r.u.lease_list.n = total;
    r.u.lease_list.ids = ids;
    return answer_now(n, NODE_REQ_LEASE_LIST, &r, arg, cb);
}

/* ---- membership ---- */

struct member_scan {
    struct node_member *list;
    size_t max, n;
};

static int member_scan_cb(void *arg, const uint8_t *key, size_t key_len,
                          const uint8_t *val, size_t val_len)
{
    (void)key;
    (void)key_len;
    struct member_scan *s = arg;
    struct node_member m;
    uint64_t req;
    if (node__member_decode(val, val_len, &req, &m) != 0)
        return 0;
    if (s->n < s->max)
        s->list[s->n] = m;
    s->n++;
    return 0;
}

size_t node_store_members(struct mvcc_store *store, struct node_member *list,
                          size_t max)
{
    struct member_scan s = {list, max, 0};
    if (mvcc_ext_scan(store, NODE__TABLE_MEMBER, &s, member_scan_cb) != 0)
        return 0;
    return s.n;
}

struct removed_scan {
    uint64_t *ids;
    size_t max, n;
    uint64_t want; /* non-zero: stop at this id */
};

static int removed_scan_cb(void *arg, const uint8_t *key, size_t key_len,
                           const uint8_t *val, size_t val_len)
{
    (void)val;
    (void)val_len;
    struct removed_scan *s = arg;
    if (key_len != 8)
        return 0;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | key[i];
    if (s->want != 0)
        return id == s->want ? 1 : 0;
    if (s->n < s->max)
        s->ids[s->n] = id;
    s->n++;
    return 0;
}

size_t node_store_removed(struct mvcc_store *store, uint64_t *ids, size_t max)
{
    struct removed_scan s = {ids, max, 0, 0};
    if (mvcc_ext_scan(store, NODE__TABLE_REMOVED, &s, removed_scan_cb) != 0)
        return 0;
    return s.n;
}

size_t node_removed(struct node *n, uint64_t *ids, size_t max)
{
    return node_store_removed(n->cfg.store, ids, max);
}

bool node_is_removed(struct node *n, uint64_t id)
{
    struct removed_scan s = {NULL, 0, 0, id};
    return id != 0 && mvcc_ext_scan(n->cfg.store, NODE__TABLE_REMOVED, &s,
                                    removed_scan_cb) == 1;
}

size_t node_members(struct node *n, struct node_member *list, size_t max)
{
    return node_store_members(n->cfg.store, list, max);
}

static bool find_member(struct node *n, uint64_t id, struct node_member *out)
{
    struct node_member list[MEMBERS_MAX];
    size_t k = node_members(n, list, MEMBERS_MAX);
    for (size_t i = 0; i < k && i < MEMBERS_MAX; i++)
        if (list[i].id == id) {
            *out = list[i];
            return true;
        }
    return false;
}

/* ---- membership checks (etcd's mayAddMember, mayRemoveMember,
 * mayPromoteMember with --strict-reconfig-check) ---- */

/* The leader's progress table; NULL on a follower, which cannot tell who
 * is connected (it admits, as before), or when out of memory. */
static struct raft_status *leader_status(struct node *n)
{
    if (n->role != RAFT_LEADER)
        return NULL;
    struct raft_status *st = cairn_malloc(sizeof(*st));
    if (st != NULL)
        raft_status_get(n->r, st);
    return st;
}

static const struct raft_progress_status *
progress_of(const struct raft_status *st, uint64_t id)
{
    for (uint32_t i = 0; st != NULL && i < st->n_progress; i++)
        if (st->progress[i].id == id)
            return &st->progress[i];
    return NULL;
}

/* etcd's "connected since HealthInterval": the leader heard from it
 * within an election timeout and it acknowledged entries (raft gives a
 * new member recent_active until the next check; a member never started
 * has match 0). We are always connected to ourselves. */
static bool member_active(struct node *n, const struct raft_status *st,
                          uint64_t id)
{
    if (id == n->cfg.id || st == NULL)
        return true;
    const struct raft_progress_status *p = progress_of(st, id);
    return p != NULL && p->recent_active && p->match > 0;
}

/* The voting members of the member table (etcd's VotingMembers) except
 * `skip`: how many, how many started (published a name: etcd's
 * IsStarted), how many active. Learners awaiting promotion count as the
 * voters the table says they are. */
struct voter_count {
    size_t n, started, active;
};

static struct voter_count
count_voters(struct node *n, const struct raft_status *st, uint64_t skip)
{
    struct voter_count v = {0, 0, 0};
    struct node_member list[MEMBERS_MAX];
    size_t k = node_members(n, list, MEMBERS_MAX);
    for (size_t i = 0; i < k && i < MEMBERS_MAX; i++) {
        if (list[i].is_learner || list[i].id == skip)
            continue;
        v.n++;
        v.started += list[i].name[0] != 0;
        v.active += member_active(n, st, list[i].id);
    }
    return v;
}

/* etcd's IsReadyToAddVotingMember (a started quorum after the add, with
 * its special case: one started member may add a second, to restore a
 * cluster from one member's data), then every voter connected. */
static int check_add(struct node *n, bool learner)
{
    if (!n->cfg.strict_reconfig_check)
        return 0;
    struct raft_status *st = leader_status(n);
    struct voter_count v = count_voters(n, st, 0);
    cairn_free(st);
    size_t after = v.n + 1;
    if (!learner && !(v.started == 1 && after == 2) &&
        v.started < after / 2 + 1)
        return CAIRN_ENOTENOUGHSTARTED;
    return v.active == v.n ? 0 : CAIRN_EUNHEALTHYCLUSTER;
}

/* etcd's mayRemoveMember: a learner goes freely; otherwise a started
 * quorum must remain, and removing a connected voter must leave a quorum
 * of the current voters connected. */
static int check_remove(struct node *n, const struct node_member *m)
{
    if (!n->cfg.strict_reconfig_check || m->is_learner)
        return 0;
    struct raft_status *st = leader_status(n);
    struct voter_count rest = count_voters(n, st, m->id);
    struct voter_count all = count_voters(n, st, 0);
    bool down = !member_active(n, st, m->id);
    cairn_free(st);
    if (rest.started < rest.n / 2 + 1)
        return CAIRN_ENOTENOUGHSTARTED;
    if (down)
        return 0;
    return all.active - 1 >= 1 + (all.n - 1) / 2 ? 0 : CAIRN_EUNHEALTHYCLUSTER;
}

/* etcd's isLearnerReady: the learner's match at least 90% of the
 * leader's (readyPercent). */
static bool learner_ready(const struct raft_status *st,
                          const struct raft_progress_status *p)
{
    return p != NULL && (double)p->match >= 0.9 * (double)st->last_index;
}

/* ---- membership changes ---- */

/* Steps a one-change configuration proposal whose context is member
 * record m with request id req (0: internal, nobody waits). */
static int step_conf(struct node *n, uint8_t cc_type, uint64_t req,
                     const struct node_member *m, uint32_t *crc)
{
    struct buf ctx = BUF_INIT;
    int rc = node__member_encode(req, m, &ctx);
    if (rc == 0) {
        *crc = crc32c(0, ctx.data, ctx.len);
        struct raft_conf_change cc;
        memset(&cc, 0, sizeof(cc));
        cc.transition = RAFT_CC_TRANSITION_AUTO;
        cc.n_changes = 1;
        cc.changes[0].type = cc_type;
        cc.changes[0].node = m->id;
        cc.context = ctx.data;
        cc.context_len = ctx.len;
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE_CONF_CHANGE};
        ev.u.conf_change = &cc;
        rc = step(n, &ev);
    }
    buf_free(&ctx);
    return rc;
}

static int propose_conf(struct node *n, uint8_t cc_type,
                        const struct node_member *m, uint8_t type, void *arg,
                        node_done_cb cb)
{
    int rc = admit(n);
    if (rc != 0)
        return rc;
    struct waiter *w = waiter_new(n, W_PROPOSAL, type, arg, cb);
    if (w == NULL)
        return CAIRN_ENOMEM;
    rc = step_conf(n, cc_type, w->id, m, &w->crc);
    return refused_or_queued(n, w, rc);
}

/* Thesis §4.2.1: a voter added through the API enters raft as a learner
 * whose record says voter, and the leader promotes it once it has caught
 * up. What awaits promotion is read from replicated state only (the
 * applied member table says voter, raft's configuration says learner), so
 * a new leader, or one restarted, carries on where the last one stopped.
 * One proposal at a time; raft refuses another while one is pending. */
static void promote_caught_up(struct node *n)
{
    if (n->stopped || n->role != RAFT_LEADER || n->conf.n_learners == 0)
        return;
    struct raft_status *st = leader_status(n);
    for (uint32_t i = 0; st != NULL && i < st->n_progress; i++) {
        const struct raft_progress_status *p = &st->progress[i];
        struct node_member m;
        if (!p->learner || !p->recent_active || !learner_ready(st, p) ||
            !find_member(n, p->id, &m) || m.is_learner)
            continue;
        uint32_t crc;
        int rc = step_conf(n, RAFT_CC_ADD_NODE, 0, &m, &crc);
        if (rc == 0)
            cairn_infof(n->env.log, "node",
                        "member %llx caught up: promoting it to voter",
                        (unsigned long long)p->id);
        break;
    }
    cairn_free(st);
}

int node_member_add(struct node *n, const struct node_member *m, void *arg,
                    node_done_cb cb)
{
    if (m->n_peer_urls == 0 || m->n_peer_urls > NODE_MEMBER_URLS_MAX)
        return CAIRN_EINVAL;
    struct node_member list[MEMBERS_MAX];
    size_t k = node_members(n, list, MEMBERS_MAX);
    if (k >= MEMBERS_MAX)
        return CAIRN_EFULL;
    for (size_t i = 0; i < k; i++)
        for (uint32_t a = 0; a < list[i].n_peer_urls; a++)
            for (uint32_t b = 0; b < m->n_peer_urls; b++)
                if (strcmp(list[i].peer_urls[a], m->peer_urls[b]) == 0)
                    return CAIRN_EPEERURLEXISTS;
    int rc = check_add(n, m->is_learner);
    if (rc != 0)
        return rc;
    /* etcd's maxLearners (checked when applied there, after the strict
     * checks): one learner at a time, counted on the member table (a
     * voter being caught up is no learner there) */
    for (size_t i = 0; m->is_learner && i < k; i++)
        if (list[i].is_learner)
            return CAIRN_ETOOMANYLEARNERS;
    /* etcd derives the id from the peer URLs, the cluster and the time. */
    struct node_member nm = *m;
    uint64_t h = n->cfg.cluster_id ^ (uint64_t)now_ms(n);
    for (uint32_t i = 0; i < m->n_peer_urls; i++)
        h = splitmix64(&h) ^
            crc32c(0, m->peer_urls[i], strlen(m->peer_urls[i]));
    /* etcd refuses a removed id (ErrIDRemoved): draw another. */
    do
        nm.id = splitmix64(&h);
    while (nm.id == 0 || node_is_removed(n, nm.id));
    nm.name[0] = 0;
    nm.n_client_urls = 0;
    /* A voter too enters raft as a learner (its record says voter, as
     * etcd lists it at once): promote_caught_up makes it vote. */
    return propose_conf(n, RAFT_CC_ADD_LEARNER, &nm, NODE_REQ_MEMBER_ADD, arg,
                        cb);
}

/* Why id is no member: removed for good (etcd's ErrIDRemoved, which the
 * v2 API answers 410 and v3 as "member not found") or never one. */
static int member_missing(struct node *n, uint64_t id)
{
    return node_is_removed(n, id) ? CAIRN_EREMOVED : CAIRN_EMEMBERNOTFOUND;
}

int node_member_remove(struct node *n, uint64_t id, void *arg, node_done_cb cb)
{
    struct node_member m;
    if (!find_member(n, id, &m))
        return member_missing(n, id);
    int rc = check_remove(n, &m);
    if (rc != 0)
        return rc;
    return propose_conf(n, RAFT_CC_REMOVE_NODE, &m, NODE_REQ_MEMBER_REMOVE, arg,
                        cb);
}

int node_member_update(struct node *n, const struct node_member *m, void *arg,
                       node_done_cb cb)
{
    struct node_member cur;
    if (!find_member(n, m->id, &cur))
        return member_missing(n, m->id);
    if (m->n_peer_urls > NODE_MEMBER_URLS_MAX ||
        m->n_client_urls > NODE_MEMBER_URLS_MAX)
        return CAIRN_EINVAL;
    /* Peer URLs replaced; a name or client URLs given are published too
     * (etcd's publish uses the same record). */
    if (m->n_peer_urls > 0) {
        cur.n_peer_urls = m->n_peer_urls;
        memcpy(cur.peer_urls, m->peer_urls, sizeof(cur.peer_urls));
    }
    if (m->name[0])
        memcpy(cur.name, m->name, sizeof(cur.name));
    if (m->n_client_urls > 0) {
        cur.n_client_urls = m->n_client_urls;
        memcpy(cur.client_urls, m->client_urls, sizeof(cur.client_urls));
    }
    struct node__req q = {.type = NODE__E_MEMBER_UPDATE};
    q.u.member = &cur;
    return propose_req(n, &q, NODE_REQ_MEMBER_UPDATE, arg, cb);
}

int node_member_promote(struct node *n, uint64_t id, void *arg, node_done_cb cb)
{
    struct node_member m;
    if (!find_member(n, id, &m))
        return CAIRN_EMEMBERNOTFOUND;
    if (!m.is_learner)
        return CAIRN_EMEMBERNOTLEARNER;
    /* Only the leader knows whether the learner caught up (etcd's
     * followers forward the request to it; ours answer ENOTLEADER). */
    struct raft_status *st = leader_status(n);
    if (st == NULL)
        return n->role == RAFT_LEADER ? CAIRN_ENOMEM : CAIRN_ENOTLEADER;
    bool ready = learner_ready(st, progress_of(st, id));
    struct voter_count v = count_voters(n, st, 0);
    cairn_free(st);
    if (!ready)
        return CAIRN_ELEARNERNOTREADY;
    /* etcd's IsReadyToPromoteMember: the learner counts as started. */
    if (n->cfg.strict_reconfig_check && v.started + 1 < (v.n + 1) / 2 + 1)
        return CAIRN_ENOTENOUGHSTARTED;
    m.is_learner = false;
    return propose_conf(n, RAFT_CC_ADD_NODE, &m, NODE_REQ_MEMBER_PROMOTE, arg,
                        cb);
}

int node_member_list(struct node *n, void *arg, node_done_cb cb)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct node_member *list =
        mvcc_arena_alloc(&n->read_arena, MEMBERS_MAX * sizeof(*list));
    if (list == NULL)
        return CAIRN_ENOMEM;
    struct node_result r;
    memset(&r, 0, sizeof(r));
    size_t k = node_members(n, list, MEMBERS_MAX);
    r.u.members.list = list;
    r.u.members.n = k < MEMBERS_MAX ? k : MEMBERS_MAX;
    return answer_now(n, NODE_REQ_MEMBER_LIST, &r, arg, cb);
}

/* ---- maintenance ---- */

void node_status_get(struct node *n, struct node_status *st)
{
    memset(st, 0, sizeof(*st));
    st->member_id = n->cfg.id;
    st->leader = n->lead;
    raft_index last = 0;
    raft_memory_storage_iface(n->ms)->last_index(n->ms, &last);
    st->raft_index = last;
    st->raft_term = n->hs.term;
    st->applied_index = n->applied;
    st->commit_index = n->hs.commit;
    struct mvcc_status ms;
    if (mvcc_status_get(n->cfg.store, &ms) == 0) {
        st->db_bytes = ms.db_bytes;
        st->db_in_use_bytes = ms.in_use_bytes;
    }
    for (uint32_t i = 0; i < n->conf.n_learners; i++)
        if (n->conf.learners[i] == n->cfg.id)
            st->is_learner = true;
}

int node_status(struct node *n, void *arg, node_done_cb cb)
{
    struct node_result r;
    memset(&r, 0, sizeof(r));
    node_status_get(n, &r.u.status);
    struct mvcc_status ms;
    if (mvcc_status_get(n->cfg.store, &ms) == 0)
        r.revision = ms.rev;
    return answer_now(n, NODE_REQ_STATUS, &r, arg, cb);
}

int node_hash(struct node *n, void *arg, node_done_cb cb)
{
    struct node_result r;
    memset(&r, 0, sizeof(r));
    r.err = mvcc_hash(n->cfg.store, &r.u.hash.hash, &r.revision);
    return answer_now(n, NODE_REQ_HASH, &r, arg, cb);
}

int node_hash_kv(struct node *n, mvcc_rev rev, void *arg, node_done_cb cb)
{
    struct node_result r;
    memset(&r, 0, sizeof(r));
    r.err = mvcc_hash_kv(n->cfg.store, rev, &r.u.hash.hash,
                         &r.u.hash.compact_rev, &r.revision);
    return answer_now(n, NODE_REQ_HASH_KV, &r, arg, cb);
}

int node_move_leader(struct node *n, uint64_t target, void *arg,
                     node_done_cb cb)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    if (n->role != RAFT_LEADER)
        return CAIRN_ENOTLEADER;
    bool voter = false;
    for (uint32_t i = 0; i < n->conf.n_voters; i++)
        voter |= n->conf.voters[i] == target;
    if (!voter) /* etcd: not a member, or a learner */
        return CAIRN_EBADLEADERTRANSFEREE;
    if (target == n->cfg.id) {
        struct node_result r;
        memset(&r, 0, sizeof(r));
        return answer_now(n, NODE_REQ_MOVE_LEADER, &r, arg, cb);
    }
    struct waiter *w =
        waiter_new(n, W_MOVE_LEADER, NODE_REQ_MOVE_LEADER, arg, cb);
    if (w == NULL)
        return CAIRN_ENOMEM;
    w->target = target;
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER_LEADERSHIP};
    ev.u.transferee = target;
    return refused_or_queued(n, w, step(n, &ev));
}

static int local_op(struct node *n, uint8_t kind, uint8_t type, int fd,
                    void *arg, node_done_cb cb)
{
    if (n->stopped)
        return CAIRN_ESTOPPED;
    struct node_apply_batch *b = batch_new(n, kind);
    if (b == NULL)
        return CAIRN_ENOMEM;
    struct waiter *w = waiter_new(n, W_LOCAL, type, arg, cb);
    if (w == NULL) {
        node__batch_free(b);
        return CAIRN_ENOMEM;
    }
    b->local_req = w->id;
    b->fd = fd;
    queue_batch(n, b);
    return 0;
}

int node_defragment(struct node *n, void *arg, node_done_cb cb)
{
    return local_op(n, NODE__BATCH_DEFRAG, NODE_REQ_DEFRAGMENT, -1, arg, cb);
}

int node_snapshot_export(struct node *n, int fd, void *arg, node_done_cb cb)
{
    return local_op(n, NODE__BATCH_EXPORT, NODE_REQ_SNAPSHOT_EXPORT, fd, arg,
                    cb);
}

struct alarm_scan {
    struct node_alarm *list;
    size_t n;
};

static int alarm_scan_cb(void *arg, const uint8_t *key, size_t key_len,
                         const uint8_t *val, size_t val_len)
{
    (void)val;
    (void)val_len;
    struct alarm_scan *s = arg;
    if (key_len != 9 || s->n == NODE_ALARMS_MAX)
        return 0;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | key[i];
    s->list[s->n].member_id = id;
    s->list[s->n].type = key[8];
    s->n++;
    return 0;
}

int node_alarm(struct node *n, uint8_t action, uint64_t member_id, uint8_t type,
               void *arg, node_done_cb cb)
{
    if (action == NODE_ALARM_GET) {
        if (n->stopped)
            return CAIRN_ESTOPPED;
        struct node_alarm *list =
            mvcc_arena_alloc(&n->read_arena, NODE_ALARMS_MAX * sizeof(*list));
        if (list == NULL)
            return CAIRN_ENOMEM;
        struct alarm_scan s = {list, 0};
        struct node_result r;
        memset(&r, 0, sizeof(r));
        r.err =
            mvcc_ext_scan(n->cfg.store, NODE__TABLE_ALARM, &s, alarm_scan_cb);
        r.u.alarms.alarms = list;
        r.u.alarms.n = s.n;
        return answer_now(n, NODE_REQ_ALARM, &r, arg, cb);
    }
    if (action > NODE_ALARM_DEACTIVATE || type == NODE_ALARM_NONE ||
        type > NODE_ALARM_CORRUPT)
        return CAIRN_EINVAL;
    struct node__req q = {.type = NODE__E_ALARM};
    q.u.alarm.action = action;
    q.u.alarm.type = type;
    q.u.alarm.member = member_id;
    return propose_req(n, &q, NODE_REQ_ALARM, arg, cb);
}

/* ---- auth ---- */

int node_auth(struct node *n, const struct auth_req *req, void *arg,
              node_done_cb cb)
{
    int rc = auth_req_check(req);
    if (rc != 0)
        return rc;
    struct node__req q = {.type = NODE__E_AUTH};
    q.u.auth = *req;
    return propose_req(n, &q, NODE_REQ_AUTH, arg, cb);
}

/* ---- v2 ---- */

int node_v2(struct node *n, const struct v2_req *req, void *arg,
            node_done_cb cb)
{
    int rc = v2_req_check(req);
    if (rc != 0 || req->op == V2_OP_SYNC)
        return rc != 0 ? rc : CAIRN_EINVAL;
    if (req->op == V2_OP_GET && !req->quorum) {
        /* etcd's GET without quorum: the local store, at once */
        if (n->stopped)
            return CAIRN_ESTOPPED;
        struct node_result r;
        memset(&r, 0, sizeof(r));
        r.err = v2_read(n->cfg.store, req, &n->read_arena, &r.u.v2);
        r.u.v2.raft_index = n->applied;
        return answer_now(n, NODE_REQ_V2, &r, arg, cb);
    }
    if (req->op == V2_OP_PUT || req->op == V2_OP_POST) {
        /* v2 records share LMDB with mvcc: the same quota (the node
         * record, its history copy as JSON, index records) */
        rc = admit(n);
        if (rc == 0)
            rc = quota_check(n, 2 * (req->path_len + req->value_len) + 256);
        if (rc != 0)
            return rc;
    }
    struct node__req q = {.type = NODE__E_V2};
    q.u.v2 = *req;
    return propose_req(n, &q, NODE_REQ_V2, arg, cb);
}

int node_v2_sync(struct node *n, int64_t now_ns)
{
    if (n->stopped || n->role != RAFT_LEADER || !v2_has_ttl_keys(n->cfg.store))
        return 0;
    struct node__req q = {.type = NODE__E_V2};
    q.u.v2.op = V2_OP_SYNC;
    q.u.v2.now_ns = now_ns;
    buf_reset(&n->enc);
    int rc = node__req_encode(&q, &n->enc);
    if (rc != 0)
        return rc;
    struct raft_proposal p = {n->enc.data, n->enc.len};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    ev.u.propose.items = &p;
    ev.u.propose.n = 1;
    rc = step(n, &ev);
    drain(n);
    return rc;
}

/* ---- introspection ---- */

bool node_waits_on_persist(const struct node *n)
{
    if (n->persisted_seq == n->persist_seq)
        return false; /* nothing in flight */
    if (n->stopped || n->d_head != NULL ||
        (n->q_head != NULL && n->q_head->kind == NODE__BATCH_RESTORE))
        return true;
    return raft_waits_on_persist(n->r);
}

bool node_is_leader(const struct node *n)
{
    return n->role == RAFT_LEADER;
}

uint64_t node_leader(const struct node *n)
{
    return n->lead;
}

raft_term node_term(const struct node *n)
{
    return n->hs.term;
}

raft_index node_applied_index(const struct node *n)
{
    return n->applied;
}

uint64_t node_log_cache_bytes(const struct node *n)
{
    return raft_memory_storage_bytes(n->ms);
}

bool node_stopped(const struct node *n, int *err)
{
    if (err != NULL)
        *err = n->stop_err;
    return n->stopped;
}

const struct raft *node_raft(const struct node *n)
{
    return n->r;
}

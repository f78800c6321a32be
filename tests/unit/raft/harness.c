/* The in-process test cluster of harness.h. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

void h_default_config(struct raft_config *c)
{
    memset(c, 0, sizeof(*c));
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->max_size_per_msg = UINT64_MAX;
    c->max_inflight_msgs = 256;
}

void h_init(struct h_net *net, int n, int voters, const struct raft_config *cfg)
{
    memset(net, 0, sizeof(*net));
    assert_true(n <= H_MAX_NODES && voters <= n);
    net->n = n;
    if (cfg != NULL)
        net->base = *cfg;
    else
        h_default_config(&net->base);
    struct raft_conf_state cs = {0};
    for (int i = 1; i <= voters; i++)
        cs.voters[cs.n_voters++] = (raft_id)i;
    for (int i = voters + 1; i <= n; i++)
        cs.learners[cs.n_learners++] = (raft_id)i;
    for (int i = 1; i <= n; i++) {
        struct h_node *nd = &net->nodes[i];
        nd->id = (raft_id)i;
        assert_int_equal(raft_memory_storage_new(&nd->ms), 0);
        assert_int_equal(raft_memory_storage_bootstrap(nd->ms, &cs), 0);
        nd->known[1] = true;
        nd->chain[1] = 1;
        nd->applied_to = 1;
        h_start(net, (raft_id)i);
    }
}

void h_add_empty(struct h_net *net, raft_id id)
{
    assert_true(id <= H_MAX_NODES);
    if ((int)id > net->n)
        net->n = (int)id;
    struct h_node *nd = &net->nodes[id];
    memset(nd, 0, sizeof(*nd));
    nd->id = id;
    assert_int_equal(raft_memory_storage_new(&nd->ms), 0);
    h_start(net, id);
}

static void drop_pending(struct h_node *nd);

void h_start(struct h_net *net, raft_id id)
{
    struct h_node *nd = &net->nodes[id];
    struct raft_config c = net->base;
    c.id = id;
    c.seed = net->base.seed * 31 + id;
    c.storage = raft_memory_storage_iface(nd->ms);
    /* The state machine (the chain) survives a crash; what it applied was
     * durable locally, though the hard state's commit may lag it. */
    c.applied = nd->applied_to;
    const struct raft_storage *st = c.storage;
    raft_index first, last;
    st->first_index(st->ctx, &first);
    st->last_index(st->ctx, &last);
    if (c.applied < first - 1)
        c.applied = first - 1;
    assert_true(c.applied <= last);
    nd->applied_to = c.applied;
    assert_int_equal(raft_new(&c, &nd->r), 0);
    nd->up = true;
    struct raft_hard_state ignored;
    st->initial_state(st->ctx, &ignored, &nd->conf);
}

void h_crash(struct h_net *net, raft_id id)
{
    struct h_node *nd = &net->nodes[id];
    drop_pending(nd);
    nd->install_deferred = 0; /* a restart finds the snapshot in storage */
    raft_free(nd->r);
    nd->r = NULL;
    nd->up = false;
}

void h_close(struct h_net *net)
{
    for (int i = 1; i <= net->n; i++) {
        raft_free(net->nodes[i].r);
        raft_memory_storage_free(net->nodes[i].ms);
        drop_pending(&net->nodes[i]);
        cairn_free(net->nodes[i].pending);
    }
    for (size_t i = 0; i < net->nq; i++)
        buf_free(&net->q[i].bytes);
    cairn_free(net->q);
    memset(net, 0, sizeof(*net));
}

static uint64_t mix(uint64_t h, const struct raft_entry *e)
{
    uint64_t s = h ^ (e->term * 0x9e3779b97f4a7c15ull) ^ e->index ^
                 ((uint64_t)e->type << 56);
    for (size_t i = 0; i < e->len; i++)
        s = (s ^ e->data[i]) * 0x100000001b3ull;
    return splitmix64(&s);
}

static void queue_msg(struct h_net *net, const struct raft_message *m)
{
    if (net->nq == net->cap) {
        net->cap = net->cap ? net->cap * 2 : 64;
        net->q = cairn_realloc(net->q, net->cap * sizeof(*net->q));
        assert_non_null(net->q);
    }
    struct h_msg *q = &net->q[net->nq++];
    q->from = m->from;
    q->to = m->to;
    q->type = m->type;
    buf_init(&q->bytes);
    assert_int_equal(raft_message_encode(m, &q->bytes), 0);
}

static void check_leader(struct h_net *net, struct h_node *nd)
{
    if (nd->r->role != RAFT_LEADER)
        return;
    raft_term t = nd->r->term;
    if (t < 4096) {
        if (net->leader_of_term[t] != RAFT_NONE)
            assert_int_equal(net->leader_of_term[t], nd->id);
        net->leader_of_term[t] = nd->id;
    }
}

/* Carries out one update as a host would (persist at once), and returns the
 * follow-up events in evs. */
static void pend(struct h_node *nd, int kind, const struct raft_message *m,
                 const struct raft_hard_state *hs)
{
    if (nd->n_pending == nd->cap_pending) {
        nd->cap_pending = nd->cap_pending ? nd->cap_pending * 2 : 16;
        nd->pending =
            cairn_realloc(nd->pending, nd->cap_pending * sizeof(*nd->pending));
        assert_non_null(nd->pending);
    }
    struct h_pending *p = &nd->pending[nd->n_pending++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    buf_init(&p->bytes);
    if (hs != NULL)
        p->hs = *hs;
    if (m != NULL) {
        p->to = m->to;
        assert_int_equal(raft_message_encode(m, &p->bytes), 0);
    }
}

static void drop_pending(struct h_node *nd)
{
    for (size_t i = 0; i < nd->n_pending; i++)
        buf_free(&nd->pending[i].bytes);
    nd->n_pending = 0;
}

static void record_applied(struct h_net *net, struct h_node *nd,
                           const struct raft_update *up)
{
    for (size_t i = 0; i < up->n_committed; i++) {
        const struct raft_entry *e = &up->committed[i];
        assert_true(e->index < H_MAX_APPLIED);
        /* Applied in order, without gaps. */
        assert_int_equal(e->index, nd->applied_to + 1);
        assert_true(nd->known[e->index - 1]);
        uint64_t h = mix(nd->chain[e->index - 1], e);
        if (nd->known[e->index])
            assert_true(nd->chain[e->index] == h);
        nd->chain[e->index] = h;
        nd->known[e->index] = true;
        nd->applied_to = e->index;
        /* Committed entries never change (state machine safety). */
        if (net->committed_term[e->index] != 0)
            assert_int_equal(net->committed_term[e->index], e->term);
        net->committed_term[e->index] = e->term;
        if (net->committed_by[e->index] == 0 ||
            nd->r->term < net->committed_by[e->index])
            net->committed_by[e->index] = nd->r->term;
    }
    if (up->conf_changed)
        nd->conf = up->conf_state;
    for (size_t i = 0; i < up->n_read_states; i++) {
        assert_true(nd->n_reads < 256);
        nd->reads[nd->n_reads++] = up->read_states[i];
    }
}

static int persist_snapshot(struct h_node *nd, const struct raft_snapshot *s,
                            struct raft_event *ev)
{
    int rv = raft_memory_storage_apply_snapshot(nd->ms, s);
    assert_int_equal(rv, 0);
    raft_index si = s->meta.index;
    assert_true(si < H_MAX_APPLIED);
    /* The bootstrap snapshot has no data; ours carry the chain. */
    uint64_t h = 1;
    if (s->len == 0)
        assert_int_equal(si, 1);
    else
        h = codec_get_u64(s->data);
    if (nd->known[si])
        assert_true(nd->chain[si] == h);
    nd->chain[si] = h;
    nd->known[si] = true;
    if (nd->applied_to < si)
        nd->applied_to = si;
    ev->type = RAFT_EVENT_SNAPSHOT_INSTALLED;
    ev->u.snapshot_index = si;
    return 1;
}

/* Lazy disk: queue the writes and the messages that wait for them. */
static void carry_out_lazy(struct h_net *net, struct h_node *nd,
                           const struct raft_update *up)
{
    if (up->snapshot != NULL) {
        struct raft_message m = {.type = RAFT_MSG_SNAP,
                                 .snapshot = up->snapshot};
        pend(nd, H_PEND_SNAP, &m, NULL);
    }
    if (up->n_entries > 0) {
        struct raft_message m = {.type = RAFT_MSG_APP,
                                 .entries = up->entries,
                                 .n_entries = up->n_entries};
        pend(nd, H_PEND_ENTRIES, &m, NULL);
    }
    if (up->hard_state_changed)
        pend(nd, H_PEND_HS, NULL, &up->hard_state);
    record_applied(net, nd, up);
    for (size_t i = 0; i < up->n_messages; i++) {
        const struct raft_message *m = &up->messages[i];
        assert_int_equal(m->from, nd->id);
        if (m->after_persist && nd->n_pending > 0)
            pend(nd, H_PEND_MSG, m, NULL);
        else
            queue_msg(net, m);
    }
    check_leader(net, nd);
}

void h_sync(struct h_net *net, raft_id id)
{
    struct h_node *nd = &net->nodes[id];
    if (nd->up && nd->install_deferred != 0) {
        struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_INSTALLED,
                                .u.snapshot_index = nd->install_deferred};
        nd->install_deferred = 0;
        struct raft_update up;
        assert_int_equal(raft_step(nd->r, &ev, &up), 0);
        carry_out_lazy(net, nd, &up);
    }
    /* Completions are reported after the sync; each may cause more
     * writes, synced in the next round (bounded). */
    for (int round = 0; round < 16 && nd->up && nd->n_pending > 0; round++) {
        struct raft_event evs[64];
        struct raft_event persisted = {.type = RAFT_EVENT_TICK};
        int nev = 0;
        size_t n = nd->n_pending;
        struct h_pending *items = nd->pending;
        nd->pending = NULL;
        nd->n_pending = 0;
        nd->cap_pending = 0;
        for (size_t i = 0; i < n; i++) {
            struct h_pending *p = &items[i];
            struct raft_message m;
            switch (p->kind) {
            case H_PEND_SNAP:
                assert_int_equal(
                    raft_message_decode(p->bytes.data, p->bytes.len, &m), 0);
                nev += persist_snapshot(nd, m.snapshot, &evs[nev]);
                raft_message_decoded_free(&m);
                break;
            case H_PEND_ENTRIES: {
                assert_int_equal(
                    raft_message_decode(p->bytes.data, p->bytes.len, &m), 0);
                assert_int_equal(
                    raft_memory_storage_append(nd->ms, m.entries, m.n_entries),
                    0);
                /* One report for the whole sync: the last entry written. */
                const struct raft_entry *last = &m.entries[m.n_entries - 1];
                persisted.type = RAFT_EVENT_PERSISTED;
                persisted.u.persisted.index = last->index;
                persisted.u.persisted.term = last->term;
                raft_message_decoded_free(&m);
                break;
            }
            case H_PEND_HS:
                raft_memory_storage_set_hard_state(nd->ms, &p->hs);
                break;
            default:
                assert_int_equal(
                    raft_message_decode(p->bytes.data, p->bytes.len, &m), 0);
                queue_msg(net, &m);
                raft_message_decoded_free(&m);
                break;
            }
            assert_true(nev < 60);
            buf_free(&p->bytes);
        }
        cairn_free(items);
        if (persisted.type == RAFT_EVENT_PERSISTED) {
            if (nd->entries_first) {
                /* The entries first; a lazy member's installation waits
                 * for the next sync (only the latest snapshot counts, the
                 * core has replaced any older one). */
                int kept = 0;
                for (int i = 0; i < nev; i++) {
                    if (nd->lazy &&
                        evs[i].type == RAFT_EVENT_SNAPSHOT_INSTALLED)
                        nd->install_deferred = evs[i].u.snapshot_index;
                    else
                        evs[kept++] = evs[i];
                }
                nev = kept;
                memmove(evs + 1, evs, (size_t)nev * sizeof(*evs));
                evs[0] = persisted;
                nev++;
            } else {
                evs[nev++] = persisted;
            }
        }
        for (int i = 0; i < nev; i++) {
            struct raft_update up;
            assert_int_equal(raft_step(nd->r, &evs[i], &up), 0);
            carry_out_lazy(net, nd, &up);
        }
    }
}

static int carry_out(struct h_net *net, struct h_node *nd,
                     const struct raft_update *up, struct raft_event *evs)
{
    nd->commit_unsent = up->commit_unsent;
    if (nd->lazy) {
        carry_out_lazy(net, nd, up);
        return 0;
    }
    int nev = 0;
    if (up->snapshot != NULL)
        nev += persist_snapshot(nd, up->snapshot, &evs[nev]);
    if (up->n_entries > 0) {
        int rv = raft_memory_storage_append(nd->ms, up->entries, up->n_entries);
        assert_int_equal(rv, 0);
        const struct raft_entry *last = &up->entries[up->n_entries - 1];
        evs[nev].type = RAFT_EVENT_PERSISTED;
        evs[nev].u.persisted.index = last->index;
        evs[nev].u.persisted.term = last->term;
        nev++;
    }
    if (nev == 2 && nd->entries_first) {
        struct raft_event t = evs[0];
        evs[0] = evs[1];
        evs[1] = t;
    }
    if (up->hard_state_changed)
        raft_memory_storage_set_hard_state(nd->ms, &up->hard_state);
    record_applied(net, nd, up);
    for (size_t i = 0; i < up->n_messages; i++) {
        const struct raft_message *m = &up->messages[i];
        assert_int_equal(m->from, nd->id);
        assert_true(m->to != nd->id && m->to != RAFT_NONE);
        queue_msg(net, m);
    }
    check_leader(net, nd);
    return nev;
}

int h_step(struct h_net *net, raft_id id, const struct raft_event *ev)
{
    struct h_node *nd = &net->nodes[id];
    assert_true(nd->up);
    struct raft_update up;
    int rv = raft_step(nd->r, ev, &up);
    struct raft_event evs[4];
    int nev = carry_out(net, nd, &up, evs);
    /* Follow-ups cause at most a few more rounds each. */
    for (int round = 0; nev > 0 && round < 16; round++) {
        struct raft_event next[8];
        int nnext = 0;
        for (int i = 0; i < nev; i++) {
            int srv = raft_step(nd->r, &evs[i], &up);
            assert_int_equal(srv, 0);
            nnext += carry_out(net, nd, &up, next + nnext);
        }
        memcpy(evs, next, (size_t)nnext * sizeof(*evs));
        nev = nnext;
    }
    assert_int_equal(nev, 0);
    return rv;
}

int h_tick(struct h_net *net, raft_id id, int n)
{
    int rv = 0;
    for (int i = 0; i < n && rv == 0; i++) {
        struct raft_event ev = {.type = RAFT_EVENT_TICK};
        rv = h_step(net, id, &ev);
    }
    return rv;
}

int h_campaign(struct h_net *net, raft_id id)
{
    struct raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    return h_step(net, id, &ev);
}

int h_propose(struct h_net *net, raft_id id, const char *text)
{
    struct raft_proposal p = {.data = (const uint8_t *)text,
                              .len = strlen(text)};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                            .u.propose = {.items = &p, .n = 1}};
    return h_step(net, id, &ev);
}

int h_read(struct h_net *net, raft_id id, uint64_t ctx)
{
    struct raft_event ev = {.type = RAFT_EVENT_READ_INDEX, .u.read_ctx = ctx};
    return h_step(net, id, &ev);
}

int h_transfer(struct h_net *net, raft_id id, raft_id to)
{
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER_LEADERSHIP,
                            .u.transferee = to};
    return h_step(net, id, &ev);
}

int h_conf(struct h_net *net, raft_id id, uint8_t transition, int n, ...)
{
    struct raft_conf_change cc = {.transition = transition};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        cc.changes[i].type = (uint8_t)va_arg(ap, int);
        cc.changes[i].node = (raft_id)va_arg(ap, int);
    }
    va_end(ap);
    cc.n_changes = (uint32_t)n;
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE_CONF_CHANGE,
                            .u.conf_change = &cc};
    return h_step(net, id, &ev);
}

bool h_deliver_one(struct h_net *net)
{
    if (net->nq == 0)
        return false;
    h_deliver_at(net, 0, false);
    return true;
}

/* The host's duty: tell the leader what became of a snapshot it sent. */
static void report_snapshot(struct h_net *net, const struct h_msg *q,
                            bool failed)
{
    if (q->type != RAFT_MSG_SNAP || !net->nodes[q->from].up)
        return;
    struct raft_event ev = {
        .type = RAFT_EVENT_REPORT_SNAPSHOT,
        .u.snapshot_report = {.id = q->to, .failed = failed}};
    h_step(net, q->from, &ev);
}

void h_drop_at(struct h_net *net, size_t i)
{
    struct h_msg q = net->q[i];
    memmove(net->q + i, net->q + i + 1, (net->nq - i - 1) * sizeof(*net->q));
    net->nq--;
    report_snapshot(net, &q, true);
    buf_free(&q.bytes);
}

void h_deliver_at(struct h_net *net, size_t i, bool duplicate)
{
    struct h_msg q = net->q[i];
    if (duplicate) {
        buf_init(&net->q[i].bytes);
        assert_int_equal(
            buf_append(&net->q[i].bytes, q.bytes.data, q.bytes.len), 0);
    } else {
        memmove(net->q + i, net->q + i + 1,
                (net->nq - i - 1) * sizeof(*net->q));
        net->nq--;
    }
    struct h_node *to = &net->nodes[q.to];
    if (q.to <= (raft_id)net->n && to->up && !net->cut[q.from][q.to]) {
        struct raft_message m;
        assert_int_equal(raft_message_decode(q.bytes.data, q.bytes.len, &m), 0);
        struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &m};
        h_step(net, q.to, &ev);
        raft_message_decoded_free(&m);
        net->delivered++;
        report_snapshot(net, &q, false);
    } else {
        report_snapshot(net, &q, true);
    }
    buf_free(&q.bytes);
}

int h_deliver(struct h_net *net, int max)
{
    int n = 0;
    while (n < max && h_deliver_one(net))
        n++;
    return n;
}

void h_drop_queue(struct h_net *net)
{
    /* Bounded: each round removes one message (reports cause none). */
    while (net->nq > 0)
        h_drop_at(net, net->nq - 1);
}

void h_isolate(struct h_net *net, raft_id id)
{
    for (int i = 1; i <= H_MAX_NODES; i++) {
        net->cut[id][i] = true;
        net->cut[i][id] = true;
    }
}

void h_cut(struct h_net *net, raft_id a, raft_id b)
{
    net->cut[a][b] = true;
    net->cut[b][a] = true;
}

void h_heal(struct h_net *net)
{
    memset(net->cut, 0, sizeof(net->cut));
}

size_t h_render_msg(const struct raft_message *m, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%llu->%llu %s term=%llu",
                     (unsigned long long)m->from, (unsigned long long)m->to,
                     raft_msg_type_name(m->type), (unsigned long long)m->term);
    size_t off = n > 0 ? (size_t)n : 0;
#define H_ADD(...)                                                \
    do {                                                          \
        if (off < size) {                                         \
            int k = snprintf(buf + off, size - off, __VA_ARGS__); \
            off += k > 0 ? (size_t)k : 0;                         \
        }                                                         \
    } while (0)
    switch (m->type) {
    case RAFT_MSG_APP:
        H_ADD(" logterm=%llu index=%llu commit=%llu entries=[",
              (unsigned long long)m->log_term, (unsigned long long)m->index,
              (unsigned long long)m->commit);
        for (size_t i = 0; i < m->n_entries; i++)
            H_ADD("%s%llu/%llu", i ? " " : "",
                  (unsigned long long)m->entries[i].term,
                  (unsigned long long)m->entries[i].index);
        H_ADD("]");
        break;
    case RAFT_MSG_APP_RESP:
        H_ADD(" index=%llu", (unsigned long long)m->index);
        if (m->reject)
            H_ADD(" reject hint=%llu/%llu", (unsigned long long)m->log_term,
                  (unsigned long long)m->reject_hint);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PRE_VOTE:
        H_ADD(" logterm=%llu index=%llu%s", (unsigned long long)m->log_term,
              (unsigned long long)m->index, m->transfer ? " transfer" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP:
        if (m->reject)
            H_ADD(" reject");
        break;
    case RAFT_MSG_HEARTBEAT:
        H_ADD(" commit=%llu", (unsigned long long)m->commit);
        if (m->ctx)
            H_ADD(" ctx=%llu", (unsigned long long)m->ctx);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        if (m->ctx)
            H_ADD(" ctx=%llu", (unsigned long long)m->ctx);
        break;
    case RAFT_MSG_SNAP:
        H_ADD(" snap=%llu/%llu", (unsigned long long)m->snapshot->meta.term,
              (unsigned long long)m->snapshot->meta.index);
        break;
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_READ_INDEX_RESP:
        H_ADD(" ctx=%llu index=%llu", (unsigned long long)m->ctx,
              (unsigned long long)m->index);
        break;
    case RAFT_MSG_PROP:
        H_ADD(" entries=%zu", m->n_entries);
        break;
    default:
        break;
    }
#undef H_ADD
    return off;
}

const char *h_render_queue(struct h_net *net, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < net->nq && off + 1 < size; i++) {
        struct raft_message m;
        assert_int_equal(
            raft_message_decode(net->q[i].bytes.data, net->q[i].bytes.len, &m),
            0);
        off += h_render_msg(&m, buf + off, size - off);
        raft_message_decoded_free(&m);
        if (off + 1 < size) {
            buf[off++] = '\n';
            buf[off] = '\0';
        }
    }
    if (off >= size)
        buf[size - 1] = '\0';
    return buf;
}

struct raft *h_r(struct h_net *net, raft_id id)
{
    return net->nodes[id].r;
}

uint8_t h_role(struct h_net *net, raft_id id)
{
    return net->nodes[id].r->role;
}

raft_term h_term(struct h_net *net, raft_id id)
{
    return net->nodes[id].r->term;
}

raft_index h_commit(struct h_net *net, raft_id id)
{
    return net->nodes[id].r->log.committed;
}

raft_index h_last(struct h_net *net, raft_id id)
{
    return raft__log_last_index(&net->nodes[id].r->log);
}

raft_id h_leader(struct h_net *net)
{
    raft_id best = RAFT_NONE;
    raft_term bt = 0;
    for (int i = 1; i <= net->n; i++) {
        struct h_node *nd = &net->nodes[i];
        if (nd->up && nd->r->role == RAFT_LEADER && nd->r->term >= bt) {
            best = nd->id;
            bt = nd->r->term;
        }
    }
    return best;
}

raft_id h_elect(struct h_net *net, int max_rounds)
{
    for (int round = 0; round < max_rounds; round++) {
        for (int i = 1; i <= net->n; i++)
            if (net->nodes[i].up)
                h_tick(net, (raft_id)i, 1);
        h_deliver(net, 100000);
        raft_id l = h_leader(net);
        if (l != RAFT_NONE) {
            /* Let the empty entry commit everywhere reachable. */
            h_deliver(net, 100000);
            return l;
        }
    }
    return RAFT_NONE;
}

void h_compact(struct h_net *net, raft_id id)
{
    struct h_node *nd = &net->nodes[id];
    raft_index i = nd->applied_to;
    assert_true(nd->known[i]);
    uint8_t data[8];
    codec_put_u64(data, nd->chain[i]);
    /* The configuration as of the applied index, as the host was told. */
    int rv = raft_memory_storage_create_snapshot(nd->ms, i,
                                                 &nd->r->applied_conf, data, 8);
    if (rv == CAIRN_ESNAPOUTOFDATE)
        return;
    assert_int_equal(rv, 0);
    assert_int_equal(raft_memory_storage_compact(nd->ms, i), 0);
}

void h_check_safety(struct h_net *net)
{
    /* State machine safety: wherever two members applied the same index,
     * the whole applied history up to it is the same. */
    for (int a = 1; a <= net->n; a++) {
        for (int b = a + 1; b <= net->n; b++) {
            struct h_node *na = &net->nodes[a], *nb = &net->nodes[b];
            raft_index top = na->applied_to < nb->applied_to ? na->applied_to
                                                             : nb->applied_to;
            for (raft_index i = 1; i <= top; i++)
                if (na->known[i] && nb->known[i])
                    assert_true(na->chain[i] == nb->chain[i]);
        }
    }
    /* Log matching: two up members whose entries at i share a term agree
     * on all terms before (checked on what both logs hold). */
    for (int a = 1; a <= net->n; a++) {
        for (int b = a + 1; b <= net->n; b++) {
            struct h_node *na = &net->nodes[a], *nb = &net->nodes[b];
            if (!na->up || !nb->up)
                continue;
            raft_index la = raft__log_last_index(&na->r->log);
            raft_index lb = raft__log_last_index(&nb->r->log);
            raft_index top = la < lb ? la : lb;
            raft_index fa = raft__log_first_index(&na->r->log);
            raft_index fb = raft__log_first_index(&nb->r->log);
            raft_index lo = fa > fb ? fa : fb;
            bool matched = false;
            for (raft_index i = top; i >= lo && i > 0; i--) {
                raft_term ta = raft__log_term_or_zero(&na->r->log, i);
                raft_term tb = raft__log_term_or_zero(&nb->r->log, i);
                if (matched)
                    assert_int_equal(ta, tb);
                else if (ta == tb)
                    matched = true;
            }
        }
    }
}

/* The fake environment of node tests (harness.h). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "harness.h"

#define GROW(arr, n, cap)                                   \
    do {                                                    \
        if ((n) == (cap)) {                                 \
            (cap) = (cap) ? 2 * (cap) : 16;                 \
            (arr) = realloc((arr), (cap) * sizeof(*(arr))); \
            assert_non_null(arr);                           \
        }                                                   \
    } while (0)

static int64_t env_now(void *ctx)
{
    struct h_member *m = ctx;
    return m->c->now_ms;
}

static void env_send(void *ctx, const struct raft_message *msgs, size_t n)
{
    struct h_member *m = ctx;
    struct h_cluster *c = m->c;
    for (size_t i = 0; i < n; i++) {
        const struct raft_message *x = &msgs[i];
        assert_true(x->type <= RAFT_MSG_TYPE_MAX);
        m->sent_by_type[x->type]++;
        GROW(c->msgs, c->n_msgs, c->cap_msgs);
        struct h_msg *q = &c->msgs[c->n_msgs++];
        memset(q, 0, sizeof(*q));
        q->from = x->from;
        q->to = x->to;
        buf_init(&q->bytes);
        assert_int_equal(raft_message_encode(x, &q->bytes), 0);
        if (x->type == RAFT_MSG_SNAP) {
            /* The transport streams the sender's store image. */
            char path[256];
            snprintf(path, sizeof(path), "%s/image-%llu", c->root,
                     (unsigned long long)++c->images);
            int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
            assert_true(fd >= 0);
            struct cairn_errmsg em = {{0}};
            assert_int_equal(mvcc_snapshot_write(m->s, fd, &em), 0);
            close(fd);
            q->image = strdup(path);
        }
    }
}

static void env_persist(void *ctx, const struct node_persist *p)
{
    struct h_member *m = ctx;
    GROW(m->persists, m->n_persists, m->cap_persists);
    m->persists[m->n_persists++] = p;
    m->entries_persisted += p->n_entries;
    m->persists_issued++;
    if (p->hard_state != NULL) {
        m->last_persisted_commit = p->hard_state->commit;
        m->hs_only_persists += p->n_entries == 0 && p->snap == NULL;
    }
}

static void env_proposals_queued(void *ctx)
{
    struct h_member *m = ctx;
    m->proposals_queued++;
}

#define H_WAL_DIR "/member/wal"
#define H_SNAP_DIR "/member/snap"

/* What the server's WAL thread does with one persist. */
static void wal_persist(struct h_member *m, const struct node_persist *p)
{
    struct cairn_errmsg em = {{0}};
    if (p->snap != NULL) {
        assert_int_equal(wal_snap_save(&m->fs, H_SNAP_DIR, p->snap, &em), 0);
        assert_int_equal(wal_snapshot(m->w, p->snap->index, p->snap->term, &em),
                         0);
    }
    if (p->n_entries > 0 || p->hard_state != NULL)
        assert_int_equal(
            wal_append(m->w, p->hard_state, p->entries, p->n_entries, &em), 0);
}

static struct wal_options wal_opts(struct h_member *m)
{
    struct wal_options o = {.fs = &m->fs,
                            .dir = H_WAL_DIR,
                            .segment_size_bytes = 64 * 1024,
                            .no_zero_fill = true};
    return o;
}

void h_member_use_wal(struct h_member *m)
{
    m->use_wal = true;
    prng_seed(&m->rng, 77 + m->id);
    assert_int_equal(cairn_fs_mem_init(&m->fs, &m->rng), 0);
    struct wal_options o = wal_opts(m);
    struct wal_metadata meta = {.member_id = m->id, .cluster_id = 0xc1};
    struct cairn_errmsg em = {{0}};
    assert_int_equal(wal_create(&o, &meta, &m->w, &em), 0);
}

static void env_apply(void *ctx, struct node_apply_batch *b)
{
    struct h_member *m = ctx;
    GROW(m->batches, m->n_batches, m->cap_batches);
    m->batches[m->n_batches++] = b;
}

static void env_snapshot(void *ctx, const struct raft_snapshot_meta *meta)
{
    struct h_member *m = ctx;
    assert_true(m->n_snaps < 8);
    m->snaps[m->n_snaps++] = *meta;
}

static void member_open(struct h_member *m)
{
    snprintf(m->dir, sizeof(m->dir), "%s/m%llu", m->c->root,
             (unsigned long long)m->id);
    struct mvcc_options o = {.dir = m->dir,
                             .quota_bytes = m->c->opts.quota_bytes
                                                ? m->c->opts.quota_bytes
                                                : 64u << 20,
                             .fault = m->c->opts.fault,
                             .fault_arg = m->c->opts.fault_arg};
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &m->s, &em), 0);
    struct lease_options lo = {.min_ttl_s = 1,
                               .checkpoint_interval_ms =
                                   m->c->opts.checkpoint_interval_ms};
    struct lessor *l;
    assert_int_equal(lease_open(m->s, &lo, &l), 0);
    assert_int_equal(node_applier_new(m->s, l, &lo, NULL, &m->ap), 0);
}

void h_member_start(struct h_member *m, bool bootstrap)
{
    struct h_cluster *c = m->c;
    struct node_member members[H_MEMBERS_MAX];
    memset(members, 0, sizeof(members));
    for (size_t i = 0; i < c->n; i++) {
        members[i].id = c->m[i].id;
        snprintf(members[i].name, sizeof(members[i].name), "m%llu",
                 (unsigned long long)c->m[i].id);
        members[i].n_peer_urls = 1;
        snprintf(members[i].peer_urls[0], NODE_URL_MAX, "http://127.0.0.1:%llu",
                 2380 + 10 * (unsigned long long)c->m[i].id);
    }
    struct node_config cfg = c->base;
    cfg.id = m->id;
    cfg.cluster_id = 0xc1;
    cfg.tick_ms = c->tick_ms;
    cfg.election_ticks = 10;
    cfg.pre_vote = true;
    cfg.seed = 1000 + m->id;
    cfg.store = m->s;
    cfg.applier = m->ap;
    if (bootstrap) {
        cfg.initial_members = members;
        cfg.n_initial_members = c->n;
    }
    struct wal_recovery rec;
    memset(&rec, 0, sizeof(rec));
    if (m->use_wal && m->w == NULL) {
        struct wal_options o = wal_opts(m);
        struct cairn_errmsg em = {{0}};
        assert_int_equal(wal_recover(&o, H_SNAP_DIR, &m->w, &rec, &em), 0);
        /* Recovery starts from the newest snapshot the node asked for (or
         * the bootstrap one; a joining member may have none yet). */
        assert_true(rec.has_snap || m->last_snapshot_index == 0);
        assert_true(rec.snap.index >= m->last_snapshot_index);
        struct mvcc_status st;
        assert_int_equal(mvcc_status_get(m->s, &st), 0);
        cfg.recovery = &rec;
        cfg.applied_index = st.consistent_index;
        cfg.initial_members = NULL;
        cfg.n_initial_members = 0;
    }
    struct node_env env = {.ctx = m,
                           .now_ms = env_now,
                           .send = env_send,
                           .persist = env_persist,
                           .apply = env_apply,
                           .snapshot = env_snapshot};
    if (m->c->opts.gather_proposals)
        env.proposals_queued = env_proposals_queued;
    assert_int_equal(node_new(&cfg, &env, &m->n), 0);
    wal_recovery_free(&rec);
    m->started = true;
}

void h_cluster_init(struct h_cluster *c, size_t n,
                    const struct node_config *base)
{
    h_cluster_init_wal(c, n, base, false);
}

void h_cluster_init_wal(struct h_cluster *c, size_t n,
                        const struct node_config *base, bool wal)
{
    h_cluster_init_opts(c, n, base, wal, NULL);
}

void h_cluster_init_opts(struct h_cluster *c, size_t n,
                         const struct node_config *base, bool wal,
                         const struct h_opts *o)
{
    memset(c, 0, sizeof(*c));
    if (o != NULL)
        c->opts = *o;
    strcpy(c->root, "/tmp/cairn-node-XXXXXX");
    assert_non_null(mkdtemp(c->root));
    c->tick_ms = 100;
    c->now_ms = 1000000;
    if (base)
        c->base = *base;
    assert_true(n <= H_MEMBERS_MAX);
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        c->m[i].c = c;
        c->m[i].id = i + 1;
        member_open(&c->m[i]);
        if (wal)
            h_member_use_wal(&c->m[i]);
    }
    for (size_t i = 0; i < n; i++)
        h_member_start(&c->m[i], true);
}

struct h_member *h_member_add(struct h_cluster *c, uint64_t id)
{
    assert_true(c->n < H_MEMBERS_MAX);
    struct h_member *m = &c->m[c->n++];
    memset(m, 0, sizeof(*m));
    m->c = c;
    m->id = id;
    member_open(m);
    return m;
}

void h_member_restart(struct h_member *m)
{
    assert_true(m->use_wal);
    /* Let the member's threads finish, as a graceful stop does. */
    h_run(m->c);
    assert_int_equal(m->n_batches, 0);
    assert_int_equal(m->n_persists, 0);
    node_free(m->n);
    m->n = NULL;
    m->started = false;
    m->n_snaps = 0;
    m->hold_snap = false;
    node_applier_free(m->ap);
    mvcc_close(m->s);
    wal_close(m->w);
    m->w = NULL;
    /* Anything not synced is lost (nothing should be). */
    cairn_fs_mem_crash(&m->fs, false);
    member_open(m);
    h_member_start(m, false);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void h_cluster_free(struct h_cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct h_member *m = &c->m[i];
        if (m->n) {
            /* Batches lent out are run and handed back, as a server
             * draining its apply queue at shutdown would. */
            for (size_t j = 0; j < m->n_batches; j++) {
                node_applier_apply(m->ap, m->batches[j]);
                node_applied(m->n, m->batches[j]);
            }
            node_free(m->n);
        }
        node_applier_free(m->ap);
        mvcc_close(m->s);
        if (m->use_wal) {
            wal_close(m->w);
            cairn_fs_mem_close(&m->fs);
        }
        free(m->persists);
        free(m->batches);
    }
    for (size_t i = 0; i < c->n_msgs; i++) {
        buf_free(&c->msgs[i].bytes);
        free(c->msgs[i].image);
    }
    free(c->msgs);
    nftw(c->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct h_member *by_id(struct h_cluster *c, uint64_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].id == id)
            return &c->m[i];
    return NULL;
}

static bool alive(struct h_member *m)
{
    return m != NULL && m->started && !node_stopped(m->n, NULL);
}

/* Runs one member's pending actions, in the order the threads would:
 * WAL completions, apply batches, snapshots. */
static size_t run_member(struct h_member *m)
{
    size_t k = 0;
    if (!m->started)
        return 0;
    if (!m->hold_persist && m->n_persists > 0) {
        uint64_t seq = m->persists[m->n_persists - 1]->seq;
        for (size_t i = 0; m->use_wal && i < m->n_persists; i++)
            wal_persist(m, m->persists[i]);
        m->n_persists = 0;
        assert_int_equal(node_persisted(m->n, seq, 0), 0);
        k++;
    }
    while (!m->hold_apply && m->n_batches > 0) {
        struct node_apply_batch *b = m->batches[0];
        memmove(m->batches, m->batches + 1,
                (m->n_batches - 1) * sizeof(*m->batches));
        m->n_batches--;
        int rc = node_applier_apply(m->ap, b);
        if (!m->c->tolerate_apply_errors)
            assert_int_equal(rc, 0);
        node_applied(m->n, b);
        k++;
    }
    while (!m->hold_snap && m->n_snaps > 0) {
        struct raft_snapshot_meta meta = m->snaps[0];
        memmove(m->snaps, m->snaps + 1, (m->n_snaps - 1) * sizeof(meta));
        m->n_snaps--;
        assert_int_equal(node_applier_sync(m->ap), 0);
        if (m->use_wal) {
            struct cairn_errmsg em = {{0}};
            assert_int_equal(wal_snap_save(&m->fs, H_SNAP_DIR, &meta, &em), 0);
            assert_int_equal(wal_snapshot(m->w, meta.index, meta.term, &em), 0);
            assert_int_equal(wal_snap_purge(&m->fs, H_SNAP_DIR, 5, &em), 0);
            assert_int_equal(wal_release(m->w, meta.index, &em), 0);
        }
        m->snapshots_done++;
        m->last_snapshot_index = meta.index;
        node_snapshot_done(m->n, meta.index, 0);
        k++;
    }
    return k;
}

static size_t deliver(struct h_cluster *c)
{
    size_t k = c->n_msgs;
    struct h_msg *msgs = c->msgs;
    c->msgs = NULL;
    c->n_msgs = c->cap_msgs = 0;
    for (size_t i = 0; i < k; i++) {
        struct h_msg *q = &msgs[i];
        struct h_member *from = by_id(c, q->from), *to = by_id(c, q->to);
        struct raft_message m;
        assert_int_equal(raft_message_decode(q->bytes.data, q->bytes.len, &m),
                         0);
        bool ok = alive(to) && alive(from) && !to->cut && !from->cut;
        struct raft_snapshot snap;
        const struct raft_snapshot *decoded_snap = m.snapshot;
        if (ok && m.type == RAFT_MSG_SNAP) {
            snap = *m.snapshot;
            snap.data = (const uint8_t *)q->image;
            snap.len = strlen(q->image);
            m.snapshot = &snap;
        }
        if (ok)
            node_receive(to->n, &m);
        if (m.type == RAFT_MSG_SNAP && alive(from))
            node_report_snapshot(from->n, q->to, !ok);
        m.snapshot = decoded_snap;
        raft_message_decoded_free(&m);
        buf_free(&q->bytes);
        free(q->image);
    }
    free(msgs);
    return k;
}

size_t h_run(struct h_cluster *c)
{
    size_t total = 0;
    for (int round = 0; round < 10000; round++) {
        size_t k = 0;
        for (size_t i = 0; i < c->n; i++)
            k += run_member(&c->m[i]);
        k += deliver(c);
        total += k;
        if (k == 0)
            return total;
    }
    fail_msg("h_run: no quiescence");
    return total;
}

void h_tick(struct h_cluster *c, unsigned ticks)
{
    for (unsigned t = 0; t < ticks; t++) {
        c->now_ms += c->tick_ms;
        for (size_t i = 0; i < c->n; i++)
            if (alive(&c->m[i]))
                node_tick(c->m[i].n);
        h_run(c);
    }
}

struct h_member *h_leader(struct h_cluster *c)
{
    for (int t = 0; t < 200; t++) {
        for (size_t i = 0; i < c->n; i++)
            if (alive(&c->m[i]) && !c->m[i].cut && node_is_leader(c->m[i].n))
                return &c->m[i];
        h_tick(c, 1);
    }
    return NULL;
}

struct h_member *h_elect(struct h_cluster *c, uint64_t id)
{
    struct h_member *m = by_id(c, id);
    h_run(c);
    assert_int_equal(node_campaign(m->n), 0);
    h_run(c);
    /* The leader applies its first entry before it serves reads. */
    h_tick(c, 2);
    assert_true(node_is_leader(m->n));
    return m;
}

void h_done(void *arg, const struct node_result *r)
{
    struct h_result *h = arg;
    h->calls++;
    h->err = r->err;
    h->rev = r->revision;
    if (r->err != 0)
        return;
    switch (r->type) {
    case NODE_REQ_RANGE:
        h->count = r->u.range.count;
        h->value[0] = 0;
        if (r->u.range.n_kvs > 0) {
            size_t n = r->u.range.kvs[0].value_len;
            n = n < sizeof(h->value) - 1 ? n : sizeof(h->value) - 1;
            memcpy(h->value, r->u.range.kvs[0].value, n);
            h->value[n] = 0;
        }
        break;
    case NODE_REQ_TXN:
        h->succeeded = r->u.txn.succeeded;
        break;
    case NODE_REQ_LEASE_GRANT:
        h->lease_id = r->u.lease_grant.id;
        break;
    case NODE_REQ_MEMBER_ADD:
    case NODE_REQ_MEMBER_REMOVE:
    case NODE_REQ_MEMBER_LIST:
    case NODE_REQ_MEMBER_PROMOTE:
    case NODE_REQ_MEMBER_UPDATE:
        h->n_members = r->u.members.n;
        if (r->u.members.member) {
            h->member_id = r->u.members.member->id;
            h->is_learner = r->u.members.member->is_learner;
        }
        break;
    case NODE_REQ_HASH_KV:
    case NODE_REQ_HASH:
        h->hash = r->u.hash.hash;
        break;
    case NODE_REQ_LEASE_KEEPALIVE:
        h->ttl_s = r->u.lease_keepalive.ttl_s;
        break;
    case NODE_REQ_LEASE_TTL:
        h->ttl_s = r->u.lease_ttl.info.ttl_s;
        h->n_keys = r->u.lease_ttl.n_keys;
        break;
    case NODE_REQ_LEASE_LIST:
        h->count = (int64_t)r->u.lease_list.n;
        break;
    case NODE_REQ_ALARM:
        h->n_alarms = r->u.alarms.n;
        break;
    default:
        break;
    }
}

int h_put(struct h_member *m, const char *k, const char *v,
          struct h_result *res)
{
    struct mvcc_put_req p = {.key = (const uint8_t *)k,
                             .key_len = strlen(k),
                             .value = (const uint8_t *)v,
                             .value_len = strlen(v)};
    memset(res, 0, sizeof(*res));
    return node_put(m->n, &p, res, h_done);
}

int h_get(struct h_member *m, const char *k, bool serializable,
          struct h_result *res)
{
    struct mvcc_range_req q = {.key = (const uint8_t *)k, .key_len = strlen(k)};
    memset(res, 0, sizeof(*res));
    return node_range(m->n, &q, serializable, res, h_done);
}

uint32_t h_hash_kv(struct h_member *m)
{
    struct h_result r = {0};
    assert_int_equal(node_hash_kv(m->n, 0, &r, h_done), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, 0);
    return r.hash;
}

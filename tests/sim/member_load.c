/* The whole-member simulation's load and faults: register clients (put,
 * delete, compare-and-set, linearizable and serializable reads) through the
 * node's request interface, lease holders (grant, attach a key, keep alive,
 * then revoke or let expire), and the nemesis (crashes, crashes at chosen
 * points between actions, partitions, fsync failures, a full disk, clock
 * jumps, leader transfers, compaction, defragmentation) until the run
 * heals. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "member_int.h"

static uint64_t election_us(const struct ms_run *r)
{
    return (uint64_t)r->p.tick_ms * r->p.election_ticks * 1000;
}

/* Clients start no new operation after this, so the cluster settles. */
static bool accepting(const struct ms_run *r)
{
    return !r->failed && !r->closing &&
           r->w.now_us < r->heal_us + 20 * election_us(r);
}

static struct ms_member *random_pick(struct ms_run *r, bool paused_too)
{
    int n = 0;
    struct ms_member *pick[MS_SLOTS_MAX];
    for (int i = 0; i < r->p.members; i++)
        if (ms_usable(&r->m[i]) && (paused_too || !ms_paused(&r->m[i])))
            pick[n++] = &r->m[i];
    return n ? pick[prng_below(&r->w.rng, (uint64_t)n)] : NULL;
}

/* A member for a client: a paused one would not answer. */
static struct ms_member *random_usable(struct ms_run *r)
{
    return random_pick(r, false);
}

/* ------------------------------------------------------------ registers */

static void client_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b);

static void client_later(struct ms_run *r, struct ms_client *c, uint64_t lo,
                         uint64_t hi)
{
    sim_world_schedule(&r->w, prng_range(&r->w.rng, lo, hi), client_fire, NULL,
                       c, (uint64_t)(uintptr_t)r, 0);
}

static const char *const op_names[] = {"put", "delete", "cas", "read", "sread"};

static void ack_add(struct ms_run *r, int key, bool del, mvcc_rev rev,
                    int64_t val)
{
    r->acks = ms_grow(r->acks, &r->cap_acks, r->n_acks + 1, sizeof(*r->acks));
    r->acks[r->n_acks++] = (struct ms_ack){key, del, rev, val};
}

static void sread_done(struct ms_run *r, struct ms_client *c,
                       const struct node_result *res, int64_t val)
{
    struct ms_member *m = &r->m[c->slot];
    if (c->srev_inc[c->slot] == m->inc && res->revision < c->srev[c->slot])
        ms_fail(r, SIM_NONLINEAR,
                "serializable reads on m%d went back from revision %" PRId64
                " to %" PRId64,
                c->slot + 1, c->srev[c->slot], res->revision);
    c->srev[c->slot] = res->revision;
    c->srev_inc[c->slot] = m->inc;
    r->sreads =
        ms_grow(r->sreads, &r->cap_sreads, r->n_sreads + 1, sizeof(*r->sreads));
    r->sreads[r->n_sreads++] =
        (struct ms_sread){c->key, c->slot, res->revision, val};
}

static int64_t range_val(const struct node_result *res)
{
    if (res->u.range.n_kvs == 0)
        return 0;
    const struct mvcc_kv *kv = &res->u.range.kvs[0];
    return ms_parse_val(kv->value, kv->value_len);
}

static void client_done(void *arg, const struct node_result *res)
{
    struct ms_client *c = arg;
    struct ms_run *r =
        (struct ms_run *)((char *)(c - c->idx) - offsetof(struct ms_run, cl));
    uint64_t now = r->w.now_us;
    c->busy = false;
    client_later(r, c, 0, 5000);
    sim_tracef(&r->w, "c%d %s k%d: %s rev %" PRId64, c->idx, op_names[c->kind],
               c->key, res->err ? cairn_errname(res->err) : "ok",
               res->revision);
    if (res->err != 0) {
        if (c->kind != MS_SREAD)
            lin_history_complete(&r->hist, c->hist, LIN_UNKNOWN, 0, false, now);
        return;
    }
    bool wrote = false;
    switch (c->kind) {
    case MS_PUT:
        ack_add(r, c->key, false, res->revision, c->val);
        c->known[c->key] = c->val;
        wrote = true;
        lin_history_complete(&r->hist, c->hist, LIN_OK, 0, false, now);
        break;
    case MS_DELETE:
        if (res->u.del.deleted > 0)
            ack_add(r, c->key, true, res->revision, 0);
        c->known[c->key] = 0;
        wrote = true;
        lin_history_complete(&r->hist, c->hist, LIN_OK, 0, false, now);
        break;
    case MS_CAS:
        if (res->u.txn.succeeded)
            ack_add(r, c->key, false, res->revision, c->val);
        wrote = res->u.txn.succeeded;
        lin_history_complete(&r->hist, c->hist, LIN_OK, 0, res->u.txn.succeeded,
                             now);
        break;
    case MS_LREAD:
        c->known[c->key] = range_val(res);
        lin_history_complete(&r->hist, c->hist, LIN_OK, c->known[c->key], false,
                             now);
        break;
    default:
        sread_done(r, c, res, range_val(res));
        break;
    }
    (void)wrote;
    if (r->healed && c->invoked_us >= r->heal_us)
        r->ok_after_heal++;
}

static int client_call(struct ms_client *c, struct ms_member *m)
{
    char key[MS_KEY_LEN], val[24], exp[24];
    ms_key_name(c->key, key);
    snprintf(val, sizeof(val), "%" PRId64, c->val);
    snprintf(exp, sizeof(exp), "%" PRId64, c->expect);
    const uint8_t *k = (const uint8_t *)key;
    size_t kl = strlen(key);
    switch (c->kind) {
    case MS_PUT: {
        struct mvcc_put_req p = {.key = k,
                                 .key_len = kl,
                                 .value = (const uint8_t *)val,
                                 .value_len = strlen(val)};
        return node_put(m->n, &p, c, client_done);
    }
    case MS_DELETE: {
        struct mvcc_delete_req d = {.key = k, .key_len = kl};
        return node_delete_range(m->n, &d, c, client_done);
    }
    case MS_CAS: {
        struct mvcc_compare cmp = {.result = MVCC_CMP_EQUAL,
                                   .target = MVCC_CMP_VALUE,
                                   .key = k,
                                   .key_len = kl,
                                   .value = (const uint8_t *)exp,
                                   .value_len = strlen(exp)};
        if (c->expect == 0) /* absent: a value compare would never hold */
            cmp = (struct mvcc_compare){.result = MVCC_CMP_EQUAL,
                                        .target = MVCC_CMP_VERSION,
                                        .key = k,
                                        .key_len = kl};
        struct mvcc_op op = {.type = MVCC_OP_PUT,
                             .u.put = {.key = k,
                                       .key_len = kl,
                                       .value = (const uint8_t *)val,
                                       .value_len = strlen(val)}};
        struct mvcc_txn_req t = {
            .compares = &cmp, .n_compares = 1, .success = &op, .n_success = 1};
        return node_txn(m->n, &t, c, client_done);
    }
    default: {
        struct mvcc_range_req q = {.key = k, .key_len = kl};
        return node_range(m->n, &q, c->kind == MS_SREAD, c, client_done);
    }
    }
}

static const enum lin_kind lin_of[] = {LIN_WRITE, LIN_WRITE, LIN_CAS, LIN_READ,
                                       LIN_READ};

static void client_start(struct ms_run *r, struct ms_client *c)
{
    struct ms_member *m = random_usable(r);
    if (m == NULL) {
        client_later(r, c, 5000, 20000);
        return;
    }
    uint64_t x = prng_below(&r->w.rng, 100);
    c->kind = x < 30   ? MS_PUT
              : x < 38 ? MS_DELETE
              : x < 55 ? MS_CAS
              : x < 85 ? MS_LREAD
                       : MS_SREAD;
    c->key = (int)prng_below(&r->w.rng, MS_KEYS);
    c->slot = m->slot;
    c->val = c->kind == MS_DELETE
                 ? 0
                 : (int64_t)(c->idx + 1) * 1000000000 + ++c->seq;
    c->expect = c->known[c->key];
    if (c->kind != MS_SREAD &&
        lin_history_invoke(&r->hist, (uint32_t)c->idx, (uint32_t)c->key,
                           lin_of[c->kind], c->val, c->expect, r->w.now_us,
                           &c->hist) != 0) {
        ms_fail(r, SIM_ERROR, "history full");
        return;
    }
    c->busy = true;
    c->invoked_us = r->w.now_us;
    sim_tracef(&r->w, "c%d %s k%d %" PRId64 " on m%d", c->idx,
               op_names[c->kind], c->key, c->val, m->slot + 1);
    int rc = client_call(c, m);
    if (rc != 0) {
        c->busy = false;
        if (c->kind != MS_SREAD)
            lin_history_complete(&r->hist, c->hist, LIN_FAILED, 0, false,
                                 r->w.now_us);
        client_later(r, c, 1000, 20000);
    }
}

static void client_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)b;
    struct ms_run *r = (struct ms_run *)(uintptr_t)a;
    if (accepting(r))
        client_start(r, arg);
}

/* ------------------------------------------------------------ leases */

static void leaser_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b);

static struct ms_run *leaser_run(struct ms_leaser *l)
{
    return (struct ms_run *)((char *)(l - l->idx) -
                             offsetof(struct ms_run, ls));
}

static void leaser_later(struct ms_leaser *l, uint64_t lo, uint64_t hi)
{
    struct ms_run *r = leaser_run(l);
    sim_world_schedule(&r->w, prng_range(&r->w.rng, lo, hi), leaser_fire, NULL,
                       l, 0, 0);
}

/* The slowest a member's clock runs relative to simulated time. */
#define MS_DRIFT_MAX 1.1

static void lease_alive(struct ms_leaser *l, uint64_t sent_us, int64_t ttl_s)
{
    uint64_t until = sent_us + (uint64_t)((double)ttl_s * 1e6 / MS_DRIFT_MAX);
    if (until > l->alive_until_us)
        l->alive_until_us = until;
}

static const char *lease_state_name(int st)
{
    static const char *names[] = {"idle", "grant", "put", "held", "released"};
    return st >= 0 && st <= MS_L_RELEASED ? names[st] : "?";
}

static void lease_done(void *arg, const struct node_result *res)
{
    struct ms_leaser *l = arg;
    struct ms_run *r = leaser_run(l);
    l->busy = false;
    uint64_t e = election_us(r);
    int64_t ttl = res->type == NODE_REQ_LEASE_GRANT ? res->u.lease_grant.ttl_s
                  : res->type == NODE_REQ_LEASE_KEEPALIVE
                      ? res->u.lease_keepalive.ttl_s
                      : 0;
    sim_tracef(&r->w,
               "leaser %d %s of lease %" PRIx64 " (key %s): %s, ttl %" PRId64
               " s, rev %" PRId64,
               l->idx, lease_state_name(l->state),
               res->type == NODE_REQ_LEASE_GRANT ? res->u.lease_grant.id
                                                 : l->id,
               l->key, res->err ? cairn_strerror(res->err) : "ok", ttl,
               (int64_t)res->revision);
    if (l->state == MS_L_GRANTING) {
        if (res->err != 0) {
            l->state = MS_L_IDLE;
        } else {
            l->id = res->u.lease_grant.id;
            l->ttl_s = res->u.lease_grant.ttl_s;
            lease_alive(l, l->renew_sent_us, l->ttl_s);
            l->state = MS_L_PUTTING;
        }
    } else if (l->state == MS_L_PUTTING) {
        if (res->err != 0) {
            l->state = MS_L_IDLE; /* maybe attached: it goes with the lease */
        } else {
            l->state = MS_L_HELD;
            l->put_rev = res->revision;
            l->renewals_left = (int)prng_range(&r->w.rng, 0, 8);
        }
    } else if (l->state == MS_L_HELD && res->type == NODE_REQ_LEASE_KEEPALIVE) {
        if (res->err == 0 && res->u.lease_keepalive.ttl_s > 0)
            lease_alive(l, l->renew_sent_us, res->u.lease_keepalive.ttl_s);
        if (res->err == 0)
            l->renewals_left--;
    } else if (l->state == MS_L_HELD && res->type == NODE_REQ_LEASE_REVOKE) {
        if (res->err == 0)
            l->revoked_us = r->w.now_us;
    }
    leaser_later(l, e / 10, e);
}

static void lease_record(struct ms_run *r, struct ms_leaser *l)
{
    r->leases =
        ms_grow(r->leases, &r->cap_leases, r->n_leases + 1, sizeof(*r->leases));
    struct ms_lease_rec *x = &r->leases[r->n_leases++];
    memset(x, 0, sizeof(*x));
    memcpy(x->key, l->key, sizeof(x->key));
    x->put_rev = l->put_rev;
    x->alive_until_us = l->alive_until_us;
    x->released_us = r->w.now_us;
    x->revoked_us = l->revoked_us;
    x->revoke_sent = l->revoke_sent;
    x->ttl_s = l->ttl_s;
}

/* The member that holds itself leader, even a paused one: a client's
 * keep-alive sent to a stuck leader is taken when it resumes (etcd issue
 * 15247), which is what pauses are for. */
static struct ms_member *leader_even_paused(struct ms_run *r)
{
    for (int i = 0; i < r->p.members; i++)
        if (ms_usable(&r->m[i]) && node_is_leader(r->m[i].n))
            return &r->m[i];
    return NULL;
}

/* A keep-alive reaches member slot (life inc): at once, or when it
 * resumes. */
static void renew_fire(struct sim_world *w, void *arg, uint64_t slot,
                       uint64_t inc)
{
    struct ms_leaser *l = arg;
    struct ms_run *r = leaser_run(l);
    struct ms_member *m = &r->m[slot];
    int rc = -1;
    if (ms_paused(m) && m->inc == inc) {
        sim_world_schedule(w, m->paused_until_us - w->now_us, renew_fire, NULL,
                           l, slot, inc);
        return;
    }
    if (m->inc == inc && ms_usable(m) && !r->failed)
        rc = node_lease_keepalive(m->n, l->id, l, lease_done);
    if (rc != 0) {
        l->busy = false;
        uint64_t e = election_us(r);
        leaser_later(l, e / 10, e);
    }
}

static int leaser_step(struct ms_run *r, struct ms_leaser *l)
{
    struct ms_member *m = random_usable(r);
    if (m == NULL)
        return -1;
    l->renew_sent_us = r->w.now_us;
    if (l->state == MS_L_IDLE || l->state == MS_L_PUTTING)
        sim_tracef(&r->w, "leaser %d asks m%d to %s", l->idx, m->slot + 1,
                   l->state == MS_L_IDLE ? "grant a lease" : "put its key");
    switch (l->state) {
    case MS_L_IDLE:
        l->seq++;
        snprintf(l->key, sizeof(l->key), "l%d-%" PRIu64, l->idx, l->seq);
        l->alive_until_us = 0;
        l->revoked_us = 0;
        l->revoke_sent = false;
        l->put_rev = 0;
        l->state = MS_L_GRANTING;
        return node_lease_grant(m->n, 0, (int64_t)prng_range(&r->w.rng, 1, 2),
                                l, lease_done);
    case MS_L_GRANTING:
        l->state = MS_L_IDLE; /* a refused grant: start over */
        return -1;
    case MS_L_PUTTING: {
        struct mvcc_put_req p = {.key = (const uint8_t *)l->key,
                                 .key_len = strlen(l->key),
                                 .value = (const uint8_t *)"1",
                                 .value_len = 1,
                                 .lease = l->id};
        return node_put(m->n, &p, l, lease_done);
    }
    default:
        break;
    }
    if (l->renewals_left > 0 && l->revoked_us == 0) {
        struct ms_member *lead = leader_even_paused(r);
        if (lead == NULL)
            return -1;
        sim_tracef(&r->w, "leaser %d renews lease %" PRIx64 " on m%d%s", l->idx,
                   l->id, lead->slot + 1,
                   ms_paused(lead) ? " (paused: waits)" : "");
        renew_fire(&r->w, l, (uint64_t)lead->slot, lead->inc);
        return 0;
    }
    if (l->revoked_us == 0 && prng_chance(&r->w.rng, 0.3) &&
        l->renewals_left == 0) {
        l->renewals_left = -1; /* revoke once */
        l->revoke_sent = true;
        sim_tracef(&r->w, "leaser %d revokes lease %" PRIx64 " on m%d", l->idx,
                   l->id, m->slot + 1);
        return node_lease_revoke(m->n, l->id, l, lease_done);
    }
    /* Stop renewing: the key must go within the lease's time. */
    sim_tracef(&r->w,
               "leaser %d releases lease %" PRIx64 " (key %s, ttl %" PRId64
               " s, kept alive until %" PRIu64 " ms%s)",
               l->idx, l->id, l->key, l->ttl_s, l->alive_until_us / 1000,
               l->revoked_us ? ", revoked" : "");
    lease_record(r, l);
    l->state = MS_L_IDLE;
    return -1;
}

static void leaser_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)a;
    (void)b;
    struct ms_leaser *l = arg;
    struct ms_run *r = leaser_run(l);
    if (!accepting(r) || l->busy)
        return;
    l->busy = true;
    if (leaser_step(r, l) != 0) {
        l->busy = false;
        uint64_t e = election_us(r);
        leaser_later(l, e / 10, e);
    }
}

void ms_clients_start(struct ms_run *r)
{
    for (int i = 0; i < r->p.clients; i++) {
        r->cl[i].idx = i;
        client_later(r, &r->cl[i], 1000, 50000);
    }
    for (int i = 0; i < r->p.leasers; i++) {
        r->ls[i].idx = i;
        leaser_later(&r->ls[i], 1000, 200000);
    }
}

/* ------------------------------------------------------------ nemesis */

static void noop_done(void *arg, const struct node_result *res)
{
    (void)arg;
    (void)res;
}

static void defrag_done(void *arg, const struct node_result *res)
{
    struct ms_member *m = arg;
    if (res->err == 0 && m->up)
        ms_lmdb_synced(m); /* the defragmented copy replaced the file whole */
    if (res->err == 0 || !m->up || m->n == NULL)
        return;
    /* A failed defragmentation left the store as it was: the member goes
     * on (node.h), unlike a failed batch; the checks that follow read the
     * same store. */
    sim_tracef(&m->r->w, "m%d defragmentation fails: %s%s", m->slot + 1,
               cairn_strerror(res->err),
               node_stopped(m->n, NULL) ? " (member stopped)" : "");
}

static void net_heal_fire(struct sim_world *w, void *arg, uint64_t a,
                          uint64_t b)
{
    (void)w;
    (void)a;
    (void)b;
    struct ms_run *r = arg;
    sim_net_heal(&r->net);
    sim_tracef(&r->w, "network healed");
}

static void crash_now(struct ms_run *r, struct ms_member *m)
{
    ms_crash(m, "(nemesis)");
    ms_restart_later(m, prng_range(&r->w.rng, 10000, r->p.down_us_max));
}

static void partition(struct ms_run *r)
{
    if (prng_chance(&r->w.rng, 0.5)) {
        int s = (int)prng_below(&r->w.rng, (uint64_t)r->p.members);
        sim_net_isolate(&r->net, s);
        sim_tracef(&r->w, "m%d isolated", s + 1);
    } else {
        uint32_t side = (uint32_t)prng_below(&r->w.rng, 1u << r->p.members);
        sim_net_split(&r->net, side);
        sim_tracef(&r->w, "network split %#x", side);
    }
    sim_world_schedule(&r->w, prng_range(&r->w.rng, 50000, 1000000),
                       net_heal_fire, NULL, r, 0, 0);
}

static void disk_fault(struct ms_run *r, struct ms_member *m, bool nospace)
{
    int after = (int)prng_below(&r->w.rng, 4);
    if (nospace)
        cairn_fs_mem_fault(&m->fs,
                           prng_chance(&r->w.rng, 0.5) ? CAIRN_FS_MEM_WRITE
                                                       : CAIRN_FS_MEM_ALLOC,
                           after, 1000, CAIRN_ENOSPC, true);
    else
        cairn_fs_mem_fault(&m->fs, CAIRN_FS_MEM_SYNC, after, 1, CAIRN_EIO,
                           false);
    sim_tracef(&r->w, "m%d: %s after %d more", m->slot + 1,
               nospace ? "disk full" : "fsync fails", after);
}

static void leader_action(struct ms_run *r, int what);

/* Arms a full LMDB map at one of mvcc's write paths: record writes half
 * the time, else compaction deletes, a snapshot restore or a
 * defragmentation (a compaction or defragmentation is started here, so
 * that it meets the full map). */
static void arm_store_full(struct ms_run *r, struct ms_member *m)
{
    static const int sites[] = {MVCC_FAULT_WRITE,   MVCC_FAULT_WRITE,
                                MVCC_FAULT_WRITE,   MVCC_FAULT_COMPACT,
                                MVCC_FAULT_RESTORE, MVCC_FAULT_DEFRAG};
    m->store_full = sites[prng_below(&r->w.rng, 6)];
    sim_tracef(&r->w, "m%d: LMDB map full at its next %s", m->slot + 1,
               m->store_full == MVCC_FAULT_WRITE     ? "record write"
               : m->store_full == MVCC_FAULT_COMPACT ? "compaction delete"
               : m->store_full == MVCC_FAULT_RESTORE ? "snapshot restore"
                                                     : "defragmentation");
    if (m->store_full == MVCC_FAULT_DEFRAG) {
        sim_tracef(&r->w, "m%d defragments", m->slot + 1);
        (void)node_defragment(m->n, m, defrag_done);
    }
    if (m->store_full == MVCC_FAULT_COMPACT && r->p.compaction)
        leader_action(r, 1);
}

static void leader_action(struct ms_run *r, int what)
{
    struct ms_member *l = ms_leader(r);
    if (l == NULL)
        return;
    if (what == 0) {
        struct ms_member *t =
            &r->m[prng_below(&r->w.rng, (uint64_t)r->p.members)];
        if (t != l) {
            sim_tracef(&r->w, "transfer leadership m%d -> m%d", l->slot + 1,
                       t->slot + 1);
            (void)node_move_leader(l->n, t->id, NULL, noop_done);
        }
        return;
    }
    struct mvcc_status st;
    if (mvcc_status_get(l->s, &st) != 0 || st.rev < 3)
        return;
    mvcc_rev rev = st.rev - (mvcc_rev)prng_below(&r->w.rng, 8);
    if (rev <= st.compact_rev)
        return;
    sim_tracef(&r->w, "compact at %" PRId64, rev);
    (void)node_compact(l->n, rev, false, NULL, noop_done);
}

/* ------------------------------------------------------------ membership */

static void change_done(void *arg, const struct node_result *res)
{
    struct ms_member *m = arg;
    struct ms_run *r = m->r;
    r->change_out = false;
    sim_tracef(&r->w, "membership change about m%d: %s", m->slot + 1,
               res->err ? cairn_errname(res->err) : "ok");
    if (res->err != 0)
        return;
    if (res->type == NODE_REQ_MEMBER_ADD) {
        if (ms_join(m, res->u.members.member->id) != 0)
            ms_fail(r, SIM_ERROR, "m%d could not join", m->slot + 1);
    } else if (res->type == NODE_REQ_MEMBER_PROMOTE) {
        m->learner = false;
    }
}

/* One step of a membership change, one at a time: promote a joined
 * learner, else add a new member (as a learner) into a slot whose member
 * was removed, else remove a member other than the leader while at least
 * three remain. */
static void membership_change(struct ms_run *r)
{
    struct ms_member *l = ms_leader(r);
    if (r->change_out || l == NULL)
        return;
    int members = 0;
    struct ms_member *add = NULL, *promote = NULL;
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *m = &r->m[i];
        members += !m->removed;
        if (m->removed && !m->up)
            add = m;
        if (!m->removed && m->joiner && m->learner && m->up)
            promote = m;
    }
    int rc;
    struct ms_member *about;
    if (promote != NULL) {
        about = promote;
        rc = node_member_promote(l->n, promote->id, promote, change_done);
    } else if (add != NULL) {
        about = add;
        struct node_member nm = {.n_peer_urls = 1, .is_learner = true};
        snprintf(nm.peer_urls[0], NODE_URL_MAX, "http://sim-%d-%d:2380",
                 add->slot + 1, add->generation + 1);
        rc = node_member_add(l->n, &nm, add, change_done);
    } else {
        about = &r->m[prng_below(&r->w.rng, (uint64_t)r->p.members)];
        if (members < 3 || about == l || about->removed)
            return;
        rc = node_member_remove(l->n, about->id, about, change_done);
    }
    sim_tracef(&r->w, "membership: %s m%d%s",
               about == promote ? "promote"
               : about == add   ? "add"
                                : "remove",
               about->slot + 1, rc ? " refused" : "");
    r->change_out = rc == 0;
}

static void nemesis_act(struct ms_run *r)
{
    struct prng *g = &r->w.rng;
    if (r->p.membership && prng_chance(g, 0.3))
        membership_change(r);
    struct ms_member *m = random_pick(r, true);
    switch (prng_below(g, 10)) {
    case 0:
        if (r->p.crashes && m != NULL)
            crash_now(r, m);
        break;
    case 1:
        if (r->p.crash_points && m != NULL)
            m->crash_point = 1 + (int)prng_below(g, MS_CP_COUNT - 1);
        break;
    case 2:
        if (r->p.partitions)
            partition(r);
        break;
    case 3:
        if (r->p.store_full && m != NULL && prng_chance(g, 0.3)) {
            arm_store_full(r, m);
        } else if (r->p.store_sync_fail && m != NULL && prng_chance(g, 0.5)) {
            m->store_sync_fails = true;
            sim_tracef(&r->w, "m%d: its next LMDB sync fails", m->slot + 1);
        } else if ((r->p.fsync_fail || r->p.enospc) && m != NULL)
            disk_fault(
                r, m, !r->p.fsync_fail || (r->p.enospc && prng_chance(g, 0.5)));
        break;
    case 4:
        if (r->p.jumps && m != NULL) {
            m->jump_ms += (int64_t)prng_range(g, 100, 2000);
            sim_tracef(&r->w, "m%d clock jumps to %" PRId64, m->slot + 1,
                       ms_now_ms(m));
        }
        break;
    case 5:
        if (r->p.transfers)
            leader_action(r, 0);
        break;
    case 6:
        if (r->p.compaction)
            leader_action(r, 1);
        break;
    case 7:
        if (r->p.defrag && m != NULL) {
            sim_tracef(&r->w, "m%d defragments", m->slot + 1);
            (void)node_defragment(m->n, m, defrag_done);
        }
        break;
    case 8:
        if (r->p.membership)
            membership_change(r);
        break;
    default:
        if (r->p.crashes && m != NULL && prng_chance(g, 0.3))
            crash_now(r, m);
        else if (r->p.pauses && m != NULL && prng_chance(g, 0.6))
            ms_pause(m, prng_range(g, 20000, 1000000));
        break;
    }
}

static void nemesis_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct ms_run *r = arg;
    if (r->failed || w->now_us >= r->heal_us)
        return;
    nemesis_act(r);
    sim_world_schedule(w, prng_range(&w->rng, 1000, r->p.nemesis_gap_us_max),
                       nemesis_fire, NULL, r, 0, 0);
}

static void heal_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)a;
    (void)b;
    ms_heal(arg);
}

void ms_heal(struct ms_run *r)
{
    sim_tracef(&r->w, "heal: network, disks, members");
    sim_net_heal(&r->net);
    for (int i = 0; i < r->p.members; i++)
        for (int j = 0; j < r->p.members; j++) {
            r->net.link[i][j].loss_p = 0;
            r->net.link[i][j].dup_p = 0;
        }
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *m = &r->m[i];
        for (int op = 0; op < CAIRN_FS_MEM_OP_COUNT; op++)
            cairn_fs_mem_fault(&m->fs, (enum cairn_fs_mem_op)op, -1, 0, 0,
                               false);
        m->crash_point = MS_CP_NONE;
        m->store_sync_fails = false;
        m->store_full = 0;
        if (!ms_usable(m) && !m->removed)
            ms_restart_later(m, prng_range(&r->w.rng, 0, 10000));
    }
    r->healed = true;
}

void ms_nemesis_start(struct ms_run *r)
{
    sim_world_schedule(&r->w, prng_range(&r->w.rng, 1000, 300000), nemesis_fire,
                       NULL, r, 0, 0);
    sim_world_schedule(&r->w, r->heal_us, heal_fire, NULL, r, 0, 0);
}

/* ------------------------------------------------------------ lease trace */

/* Writes into the trace what a member's lessor decides about the leasers'
 * leases: when it becomes or stops being primary (or is replaced by a
 * snapshot restore), the remaining TTL it then gives each, and the first
 * time it holds one as expired (its loop then proposes the revoke).
 * Read-only: no decision of the run depends on it. */
void ms_lease_trace(struct ms_member *m)
{
    struct ms_run *r = m->r;
    struct lessor *l = m->ap != NULL ? node_applier_lessor(m->ap) : NULL;
    bool prim = l != NULL && lease_is_primary(l);
    int64_t now = ms_now_ms(m);
    int64_t ids[16];
    uint64_t gen = l != NULL ? m->l_gen : 0;
    if (gen != m->l_gen_seen || prim != m->l_primary) {
        sim_tracef(&r->w, "m%d lessor %s%s at local %" PRId64 " ms",
                   m->slot + 1, prim ? "primary" : "not primary",
                   gen != m->l_gen_seen ? " (opened)" : "", now);
        size_t n = l != NULL ? lease_list(l, ids, 16) : 0;
        for (size_t i = 0; prim && i < n && i < 16; i++) {
            struct lease_info in;
            if (lease_time_to_live(l, ids[i], now, &in, 0, NULL, NULL) == 0)
                sim_tracef(&r->w,
                           "m%d lease %" PRIx64 " remaining %" PRId64
                           " s (granted %" PRId64 " s)",
                           m->slot + 1, in.id, in.ttl_s, in.granted_ttl_s);
        }
        m->l_gen_seen = gen;
        m->l_primary = prim;
        memset(m->l_expired, 0, sizeof(m->l_expired));
    }
    if (!prim)
        return;
    size_t k = lease_expired(l, now, ids, 16);
    for (size_t j = 0; j < k; j++) {
        bool seen = false;
        for (int i = 0; i < MS_LEASE_TRACED; i++)
            seen |= m->l_expired[i] == ids[j];
        if (seen)
            continue;
        memmove(m->l_expired + 1, m->l_expired,
                (MS_LEASE_TRACED - 1) * sizeof(*m->l_expired));
        m->l_expired[0] = ids[j];
        sim_tracef(&r->w,
                   "m%d holds lease %" PRIx64 " expired at local %" PRId64
                   " ms",
                   m->slot + 1, ids[j], now);
    }
}

/* ------------------------------------------------------------ lease checks */

/* The last leadership change at or before t (0: none). */
static uint64_t last_leader_change(const struct ms_run *r, uint64_t t)
{
    uint64_t last = 0;
    for (size_t i = 0; i < r->n_leader_changes; i++)
        if (r->leader_changes_us[i] <= t)
            last = r->leader_changes_us[i];
    return last;
}

/* Each lease key: gone before its lease could have expired (kept alive)?
 * Still there well after it must have expired (once the run healed)? */
void ms_lease_final(struct ms_run *r)
{
    uint64_t e = election_us(r);
    mvcc_rev top = (mvcc_rev)r->revs_cap - 1;
    for (size_t i = 0; i < r->n_leases && !r->failed; i++) {
        const struct ms_lease_rec *x = &r->leases[i];
        if (x->put_rev == 0)
            continue;
        uint64_t gone_us = 0;
        bool unknown = false;
        for (mvcc_rev v = x->put_rev + 1; v <= top && gone_us == 0; v++) {
            const struct ms_rev *rv = &r->revs[v];
            unknown |= !rv->known;
            for (uint32_t k = 0; k < rv->n; k++)
                if (rv->evs[k].del && strcmp(rv->evs[k].key, x->key) == 0)
                    gone_us = rv->at_us;
        }
        if (gone_us != 0 && !r->p.jumps && gone_us < x->alive_until_us &&
            !x->revoke_sent)
            ms_fail(r, SIM_SAFETY,
                    "lease key %s deleted at %" PRIu64 " ms while its lease "
                    "was kept alive until %" PRIu64 " ms",
                    x->key, gone_us / 1000, x->alive_until_us / 1000);
        /* Its expiry: its TTL after the last renewal (at the latest the
         * release) or after a later leadership change (the new leader
         * gives every lease its TTL again, plus an election timeout); etcd
         * revokes within an election timeout of the expiry; a few ticks
         * to commit and apply. */
        uint64_t from = x->released_us;
        uint64_t lc = last_leader_change(r, gone_us ? gone_us : r->w.now_us);
        if (lc > from)
            from = lc + e;
        uint64_t due = from + (uint64_t)x->ttl_s * 1000000 * 10 / 9 + e +
                       5 * 1000 * r->p.tick_ms;
        if (x->revoked_us != 0)
            due = x->revoked_us;
        if (!unknown && x->released_us >= r->heal_us && due < r->w.now_us &&
            (gone_us == 0 || gone_us > due))
            ms_fail(r, SIM_SAFETY,
                    "lease key %s outlived its lease: due to go by %" PRIu64
                    " ms, %s",
                    x->key, due / 1000, gone_us ? "went later" : "still there");
    }
}

/* The applier: runs committed entries against mvcc and lease on the apply
 * thread, one mvcc batch per apply batch with the consistent index stored in
 * it, and records per-request results keyed by request id. Deterministic:
 * every member applying the same entries reaches the same state. */
#include "node/node_int.h"

#include <string.h>

struct node_applier {
    struct mvcc_store *s;
    struct lessor *l;
    struct lease_options lo;
    const struct cairn_log *log;
    /* The first failure that stops the member (a batch, a compaction
     * step, a restore, a sync): every later batch is refused with it, as
     * etcd panics. Batches handed over after a failed one would store a
     * consistent index past the entries the failed one lost, and a
     * restart replays only past that index. */
    int failed;
};

int node_applier_new(struct mvcc_store *store, struct lessor *lessor,
                     const struct lease_options *lease_opts,
                     const struct cairn_log *log, struct node_applier **out)
{
    CAIRN_ASSERT(store != NULL && lessor != NULL && lease_opts != NULL);
    struct node_applier *a = cairn_calloc(1, sizeof(*a));
    if (a == NULL)
        return CAIRN_ENOMEM;
    a->s = store;
    a->l = lessor;
    a->lo = *lease_opts;
    a->log = log;
    *out = a;
    return 0;
}

void node_applier_free(struct node_applier *a)
{
    if (a == NULL)
        return;
    if (a->l != NULL)
        lease_close(a->l);
    cairn_free(a);
}

struct lessor *node_applier_lessor(const struct node_applier *a)
{
    return a->l;
}

int node_applier_sync(struct node_applier *a)
{
    if (a->failed != 0)
        return a->failed;
    int rc = mvcc_sync(a->s);
    if (rc != 0)
        a->failed = rc;
    return rc;
}

raft_index node_apply_batch_last_index(const struct node_apply_batch *b)
{
    if (b->kind == NODE__BATCH_RESTORE)
        return b->snap.index;
    return b->n_entries ? b->entries[b->n_entries - 1].index : 0;
}

const char *node_apply_batch_restore_path(const struct node_apply_batch *b)
{
    return b->kind == NODE__BATCH_RESTORE ? b->restore_path : NULL;
}

bool node_apply_batch_light(const struct node_apply_batch *b)
{
    if (b->kind != NODE__BATCH_ENTRIES ||
        b->n_entries > NODE_APPLY_LIGHT_ENTRIES_MAX)
        return false;
    size_t bytes = 0;
    for (size_t i = 0; i < b->n_entries; i++) {
        const struct raft_entry *e = &b->entries[i];
        if (e->type != RAFT_ENTRY_NORMAL)
            return false;
        if (e->len == 0)
            continue;
        /* entry = 0xC1 type ... (docs/node.md, "Entry encoding") */
        if (e->len < 2 || e->data[1] != NODE__E_PUT)
            return false;
        bytes += e->len;
    }
    return bytes <= NODE_APPLY_LIGHT_BYTES_MAX;
}

bool node_apply_batch_failure_harmless(const struct node_apply_batch *b)
{
    return b->kind == NODE__BATCH_DEFRAG || b->kind == NODE__BATCH_EXPORT;
}

void node_apply_batch_free(struct node_apply_batch *b)
{
    node__batch_free(b);
}

void node__batch_free(struct node_apply_batch *b)
{
    if (b == NULL)
        return;
    cairn_free(b->entries);
    cairn_free(b->data);
    cairn_free(b->restore_path);
    cairn_free(b->results);
    mvcc_arena_free(&b->arena);
    cairn_free(b);
}

/* A result slot for request id (0: internal, none). NULL when out of
 * memory: the result is lost, the waiter times out. */
static struct node_result *add_result(struct node_apply_batch *b, uint64_t id,
                                      uint8_t type)
{
    if (id == 0)
        return NULL;
    if (b->n_results == b->cap_results) {
        size_t cap = b->cap_results ? 2 * b->cap_results : 8;
        struct node__result *r = cairn_realloc(b->results, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        b->results = r;
        b->cap_results = cap;
    }
    struct node__result *r = &b->results[b->n_results++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->crc = b->cur_crc;
    r->res.type = type;
    r->res.cluster_id = b->cluster_id;
    r->res.member_id = b->member_id;
    r->res.raft_term = b->term;
    return &r->res;
}

static void member_key(uint64_t id, uint8_t k[8])
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(id >> (56 - 8 * i));
}

static int member_put(struct node_applier *a, const struct node_member *m)
{
    struct buf v = BUF_INIT;
    uint8_t k[8];
    member_key(m->id, k);
    int rc = node__member_encode(0, m, &v);
    if (rc == 0)
        rc = mvcc_ext_put(a->s, NODE__TABLE_MEMBER, k, 8, v.data, v.len);
    buf_free(&v);
    /* etcd writes its member records to its v2 store too (/0/members):
     * the v2 index counts them, so v2 indexes start where etcd's do */
    if (rc == 0)
        rc = v2_bump_index(a->s);
    return rc;
}

static int unpublished_cb(void *arg, const uint8_t *key, size_t key_len,
                          const uint8_t *val, size_t val_len)
{
    (void)key;
    (void)key_len;
    bool *all = arg;
    uint64_t req;
    struct node_member m;
    if (node__member_decode(val, val_len, &req, &m) != 0)
        return CAIRN_ECORRUPT;
    if (m.name[0] == 0) {
        *all = false;
        return 1; /* stop */
    }
    return 0;
}

/* etcd's leader sets the cluster version once every member published
 * (a v2 write to /0/version): the applied publish that completes the
 * table counts it, once, on every member alike. */
static int count_cluster_version(struct node_applier *a)
{
    bool all = true;
    int rc = mvcc_ext_scan_prefix_batch(a->s, NODE__TABLE_MEMBER, NULL, 0, &all,
                                        unpublished_cb);
    if (rc < 0)
        return rc;
    return all ? v2_cluster_version_set(a->s) : 0;
}

/* The member record after an add or promotion of m->id. An add as raft
 * learner keeps the record's own flag: a learner, or a voter that the
 * leader promotes once it caught up (node.c, promote_caught_up). A raft
 * voter is a voter; promoting a member already recorded keeps the record
 * as applied (a name or URLs published after the promotion was proposed
 * are not lost to the proposal's older copy). */
static int member_follow(struct node_applier *a, uint8_t cc_type,
                         struct node_member *m)
{
    if (cc_type == RAFT_CC_ADD_NODE) {
        uint8_t k[8];
        member_key(m->id, k);
        const uint8_t *v;
        size_t len;
        uint64_t req;
        struct node_member cur;
        if (mvcc_ext_get_batch(a->s, NODE__TABLE_MEMBER, k, 8, &v, &len) == 0 &&
            node__member_decode(v, len, &req, &cur) == 0)
            *m = cur;
        m->is_learner = false;
    }
    return member_put(a, m);
}

/* Applies one configuration change entry: the raft core has already
 * changed the configuration; here the member records follow it. */
static int apply_conf_change(struct node_applier *a, struct node_apply_batch *b,
                             const struct raft_entry *e)
{
    struct raft_conf_change cc;
    if (raft_conf_change_decode(e->data, e->len, &cc) != 0) {
        cairn_errorf(a->log, "node", "apply %llu: malformed conf change",
                     (unsigned long long)e->index);
        return 0;
    }
    uint64_t req = 0;
    struct node_member m;
    memset(&m, 0, sizeof(m));
    b->cur_crc = crc32c(0, cc.context, cc.context_len);
    bool have_member =
        cc.context_len > 0 &&
        node__member_decode(cc.context, cc.context_len, &req, &m) == 0;
    for (uint32_t i = 0; i < cc.n_changes; i++) {
        const struct raft_conf_change_item *it = &cc.changes[i];
        uint8_t k[8];
        member_key(it->node, k);
        int rc = 0;
        if (it->type == RAFT_CC_REMOVE_NODE) {
            rc = mvcc_ext_del(a->s, NODE__TABLE_MEMBER, k, 8);
            if (rc == CAIRN_ENOTFOUND)
                rc = 0;
            /* In the same batch as the record's deletion: no restart can
             * see the member gone but not refused. */
            if (rc == 0)
                rc = mvcc_ext_put(a->s, NODE__TABLE_REMOVED, k, 8, "", 0);
            if (rc == 0)
                rc = v2_bump_index(a->s);
        } else if (have_member && m.id == it->node) {
            rc = member_follow(a, it->type, &m);
        }
        /* Otherwise a change without a record (proposed by someone other
         * than node, e.g. by a test): the configuration changes, the
         * member records stay. */
        if (rc != 0)
            return rc;
    }
    struct node_result *r = add_result(b, req, 0);
    if (r != NULL) {
        r->type = NODE_REQ_MEMBER_ADD; /* the node fills the list */
        struct node_member *copy = mvcc_arena_alloc(&b->arena, sizeof(*copy));
        if (copy != NULL) {
            *copy = m;
            r->u.members.member = copy;
        }
    }
    return 0;
}

static int nospace_cb(void *arg, const uint8_t *key, size_t key_len,
                      const uint8_t *val, size_t val_len)
{
    (void)arg;
    (void)val;
    (void)val_len;
    return key_len == 9 && key[8] == NODE_ALARM_NOSPACE ? 1 : 0;
}

/* etcd's applierV3backend.Alarm: the answer lists the alarm raised (new
 * or already there) or the one cleared (none if it was not raised), and
 * writes stay capped while any member's NOSPACE alarm remains. */
static int apply_alarm(struct node_applier *a, struct node_apply_batch *b,
                       const struct node__req *q, struct node_result *r)
{
    uint8_t k[9];
    member_key(q->u.alarm.member, k);
    k[8] = q->u.alarm.type;
    bool nospace = q->u.alarm.type == NODE_ALARM_NOSPACE;
    bool listed = true;
    int rc;
    if (q->u.alarm.action == NODE_ALARM_ACTIVATE) {
        rc = mvcc_ext_put(a->s, NODE__TABLE_ALARM, k, 9, "", 0);
        if (rc == 0 && nospace)
            rc = mvcc_alarm_set(a->s, true);
    } else {
        rc = mvcc_ext_del(a->s, NODE__TABLE_ALARM, k, 9);
        if (rc == CAIRN_ENOTFOUND) {
            listed = false;
            rc = 0;
        }
        if (rc == 0 && nospace && listed) {
            rc = mvcc_ext_scan_batch(a->s, NODE__TABLE_ALARM, NULL, nospace_cb);
            if (rc == 0)
                rc = mvcc_alarm_set(a->s, false);
            else if (rc == 1)
                rc = 0; /* another member's NOSPACE alarm remains */
        }
    }
    if (rc == 0 && listed) {
        struct node_alarm *m = mvcc_arena_alloc(&b->arena, sizeof(*m));
        if (m == NULL)
            return CAIRN_ENOMEM;
        m->member_id = q->u.alarm.member;
        m->type = q->u.alarm.type;
        r->u.alarms.alarms = m;
        r->u.alarms.n = 1;
    }
    return rc;
}

/* Runs one decoded request. Returns a fatal error only (the batch failed:
 * mvcc said so by CAIRN_EIO after a partial write); request errors go into
 * the result. */
static int apply_req(struct node_applier *a, struct node_apply_batch *b,
                     const struct node__req *q, bool *compacted)
{
    struct node_result scratch;
    memset(&scratch, 0, sizeof(scratch));
    struct node_result *r;
    int rc = 0;
    switch (q->type) {
    case NODE__E_PUT:
        r = add_result(b, q->id, NODE_REQ_PUT);
        r = r ? r : &scratch;
        rc = mvcc_put(a->s, &q->u.put, &b->arena, &r->u.put);
        r->revision = r->u.put.header_rev;
        break;
    case NODE__E_DELETE:
        r = add_result(b, q->id, NODE_REQ_DELETE);
        r = r ? r : &scratch;
        rc = mvcc_delete_range(a->s, &q->u.del, &b->arena, &r->u.del);
        r->revision = r->u.del.header_rev;
        break;
    case NODE__E_TXN:
        r = add_result(b, q->id, NODE_REQ_TXN);
        r = r ? r : &scratch;
        rc = mvcc_txn(a->s, &q->u.txn, &b->arena, &r->u.txn);
        r->revision = r->u.txn.header_rev;
        break;
    case NODE__E_COMPACT:
        r = add_result(b, q->id, NODE_REQ_COMPACT);
        r = r ? r : &scratch;
        rc = mvcc_compact(a->s, q->u.compact.rev, &r->revision);
        if (rc == 0)
            *compacted = true;
        break;
    case NODE__E_LEASE_GRANT:
        r = add_result(b, q->id, NODE_REQ_LEASE_GRANT);
        r = r ? r : &scratch;
        rc = lease_grant(a->l, q->u.grant.id, q->u.grant.ttl_s, b->now_ms,
                         &r->u.lease_grant.id, &r->u.lease_grant.ttl_s);
        break;
    case NODE__E_LEASE_REVOKE:
        r = add_result(b, q->id, NODE_REQ_LEASE_REVOKE);
        r = r ? r : &scratch;
        rc = lease_revoke(a->l, q->u.revoke_id);
        break;
    case NODE__E_LEASE_CHECKPOINT:
        r = &scratch;
        for (size_t i = 0; rc == 0 && i < q->u.checkpoint.n; i++)
            rc = lease_checkpoint(a->l, q->u.checkpoint.ids[i],
                                  q->u.checkpoint.remaining_s[i]);
        break;
    case NODE__E_ALARM:
        r = add_result(b, q->id, NODE_REQ_ALARM);
        r = r ? r : &scratch;
        rc = apply_alarm(a, b, q, r);
        break;
    case NODE__E_MEMBER_UPDATE:
        r = add_result(b, q->id, NODE_REQ_MEMBER_UPDATE);
        r = r ? r : &scratch;
        rc = member_put(a, q->u.member);
        if (rc == 0)
            rc = count_cluster_version(a);
        r->u.members.member = q->u.member;
        break;
    case NODE__E_AUTH:
        r = add_result(b, q->id, NODE_REQ_AUTH);
        r = r ? r : &scratch;
        rc = auth_apply(a->s, &q->u.auth, &b->arena, &r->u.auth);
        break;
    case NODE__E_V2:
        r = add_result(b, q->id, NODE_REQ_V2);
        r = r ? r : &scratch;
        /* under the NOSPACE alarm v2 writes are refused as puts are;
         * deletes, expiry and reads go on */
        if ((q->u.v2.op == V2_OP_PUT || q->u.v2.op == V2_OP_POST) &&
            mvcc_alarm_active(a->s))
            rc = CAIRN_EQUOTA;
        else
            rc = v2_apply(a->s, &q->u.v2, &b->arena, &r->u.v2);
        r->u.v2.raft_index = b->cur_index;
        break;
    default:
        CAIRN_UNREACHABLE();
    }
    r->err = rc;
    if (r->revision == 0) /* the committed revision, without a read txn */
        r->revision = mvcc_current_rev(a->s);
    /* A failure after a partial write fails the whole batch (mvcc.h); a
     * full map (CAIRN_ENOSPC) too, at once, so that the member stops
     * saying so rather than with the next request's CAIRN_EIO. */
    if (rc == CAIRN_EIO || rc == CAIRN_ENOMEM || rc == CAIRN_ESYNC ||
        rc == CAIRN_ENOSPC)
        return rc;
    return 0;
}

/* Whether scheduled compaction has history left to drop: the node then
 * issues compaction batches, one bounded step each, queued with the write
 * batches so that a large compaction never stalls writers for longer than
 * one step (etcd: batches of 1,000 with pauses). Checked after every
 * entries batch, so a compaction a restart interrupted resumes too. */
static bool compact_pending(struct node_applier *a, bool compacted)
{
    return compacted || mvcc_compact_pending(a->s);
}

static int apply_compact_step(struct node_applier *a,
                              struct node_apply_batch *b)
{
    bool done = false;
    int rc = mvcc_compact_step(a->s, NODE__COMPACT_STEP_RECORDS, &done);
    b->compact_pending = rc == 0 && !done;
    return rc;
}

static int apply_entries(struct node_applier *a, struct node_apply_batch *b)
{
    /* Only the stored consistent index is needed: an atomic, where
     * mvcc_status_get would open a read transaction and size the file. */
    uint64_t applied = mvcc_consistent_index(a->s);
    b->last_index = node_apply_batch_last_index(b);
    if (b->last_index <= applied)
        return 0; /* all applied before a restart or in a restored image */
    int rc;
    if ((rc = mvcc_batch_begin(a->s)) != 0)
        return rc;
    bool compacted = false;
    for (size_t i = 0; i < b->n_entries; i++) {
        const struct raft_entry *e = &b->entries[i];
        if (e->index <= applied)
            continue;
        if (e->type == RAFT_ENTRY_CONF_CHANGE ||
            e->type == RAFT_ENTRY_CONF_CHANGE_V2) {
            rc = apply_conf_change(a, b, e);
        } else if (e->len > 0) {
            struct node__req q;
            b->cur_crc = crc32c(0, e->data, e->len);
            b->cur_index = e->index;
            rc = node__req_decode(e->data, e->len, &b->arena, &q);
            if (rc == CAIRN_EMALFORMED) {
                /* Every member decodes the same bytes the same way, so
                 * skipping keeps them equal; it means a bug, say so. */
                cairn_errorf(a->log, "node",
                             "apply %llu: malformed entry skipped",
                             (unsigned long long)e->index);
                rc = 0;
                continue;
            }
            if (rc == 0)
                rc = apply_req(a, b, &q, &compacted);
        }
        if (rc != 0)
            goto err_abort;
    }
    if ((rc = mvcc_batch_commit(a->s, b->last_index)) != 0)
        return rc;
    b->compact_pending = compact_pending(a, compacted);
    return 0;

err_abort:
    mvcc_batch_abort(a->s);
    return rc;
}

static int apply_restore(struct node_applier *a, struct node_apply_batch *b)
{
    struct cairn_errmsg em = {{0}};
    b->last_index = b->snap.index;
    if (b->restore_path == NULL)
        return 0; /* the bootstrap snapshot: no image */
    int rc = mvcc_snapshot_restore(a->s, b->restore_path, &em);
    if (rc != 0) {
        cairn_errorf(a->log, "node", "restore snapshot %llu: %s",
                     (unsigned long long)b->snap.index, em.text);
        return rc;
    }
    /* The lessor reloads what the image holds (mvcc.h). */
    lease_close(a->l);
    a->l = NULL;
    rc = lease_open(a->s, &a->lo, &a->l);
    if (rc != 0)
        cairn_errorf(a->log, "node", "reopen lessor after restore: %s",
                     cairn_strerror(rc));
    return rc;
}

int node_applier_apply(struct node_applier *a, struct node_apply_batch *b)
{
    struct cairn_errmsg em = {{0}};
    int rc = 0;
    if (a->failed != 0) {
        b->status = a->failed;
        return a->failed;
    }
    switch (b->kind) {
    case NODE__BATCH_ENTRIES:
        rc = apply_entries(a, b);
        break;
    case NODE__BATCH_RESTORE:
        rc = apply_restore(a, b);
        break;
    case NODE__BATCH_DEFRAG:
        rc = mvcc_defrag(a->s, &em);
        break;
    case NODE__BATCH_EXPORT:
        rc = mvcc_snapshot_write(a->s, b->fd, &em);
        break;
    case NODE__BATCH_COMPACT:
        rc = apply_compact_step(a, b);
        break;
    default:
        CAIRN_UNREACHABLE();
    }
    /* A failed defragmentation or export leaves the store as it was;
     * the member goes on. */
    if (rc != 0 && !node_apply_batch_failure_harmless(b))
        a->failed = rc;
    b->status = rc;
    return rc;
}

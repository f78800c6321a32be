/* The api tests' fake member and fixture (see fake.h). */
#include "fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->rev = 1;
    f->term = 2;
    f->leader = 0x1111;
    f->n_members = 1;
    f->members[0].id = 0xa1;
    snprintf(f->members[0].name, sizeof(f->members[0].name), "default");
    f->members[0].n_peer_urls = 1;
    snprintf(f->members[0].peer_urls[0], NODE_URL_MAX, "http://127.0.0.1:2380");
    f->members[0].n_client_urls = 1;
    snprintf(f->members[0].client_urls[0], NODE_URL_MAX,
             "http://127.0.0.1:2379");
    api_arena_init(&f->arena);
}

void fake_free(struct fake *f)
{
    api_arena_free(&f->arena);
    if (f->auth_store != NULL) {
        mvcc_close(f->auth_store);
        mvcc_arena_free(&f->auth_arena);
        char p[128];
        snprintf(p, sizeof(p), "%s/data.mdb", f->auth_dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/lock.mdb", f->auth_dir);
        unlink(p);
        rmdir(f->auth_dir);
    }
}

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static bool in_range(const struct fake_kv *kv, const uint8_t *key,
                     size_t key_len, const uint8_t *end, size_t end_len)
{
    if (end_len == 0)
        return keycmp(kv->key, kv->key_len, key, key_len) == 0;
    if (keycmp(kv->key, kv->key_len, key, key_len) < 0)
        return false;
    if (end_len == 1 && end[0] == 0)
        return true;
    return keycmp(kv->key, kv->key_len, end, end_len) < 0;
}

static void kv_out(const struct fake_kv *in, struct mvcc_kv *out,
                   bool keys_only)
{
    *out = (struct mvcc_kv){in->key,
                            in->key_len,
                            keys_only ? NULL : in->value,
                            keys_only ? 0 : in->value_len,
                            in->create_rev,
                            in->mod_rev,
                            in->version,
                            in->lease};
}

static struct mvcc_kv *kv_copy(struct fake *f, const struct fake_kv *in)
{
    struct mvcc_kv *kv = api_arena_alloc(&f->arena, sizeof(*kv));
    assert_non_null(kv);
    uint8_t *k = api_arena_alloc(&f->arena, in->key_len + in->value_len + 1);
    assert_non_null(k);
    memcpy(k, in->key, in->key_len);
    memcpy(k + in->key_len, in->value, in->value_len);
    *kv = (struct mvcc_kv){k,
                           in->key_len,
                           k + in->key_len,
                           in->value_len,
                           in->create_rev,
                           in->mod_rev,
                           in->version,
                           in->lease};
    return kv;
}

/* Sorted by create revision (the lock and election recipes' reads), with
 * the create revision bounds, then the limit. */
static int do_range_by_create(struct fake *f, const struct mvcc_range_req *r,
                              struct mvcc_range_resp *out)
{
    bool desc = r->sort_order == MVCC_SORT_DESCEND;
    for (size_t i = 0; i < f->n; i++) {
        const struct fake_kv *kv = &f->kvs[i];
        if (!in_range(kv, r->key, r->key_len, r->end, r->end_len) ||
            (r->max_create_rev > 0 && kv->create_rev > r->max_create_rev) ||
            (r->min_create_rev > 0 && kv->create_rev < r->min_create_rev))
            continue;
        out->count++;
        size_t k = out->n_kvs++;
        /* insertion: keep kvs ordered as asked */
        while (k > 0 && (desc ? out->kvs[k - 1].create_rev < kv->create_rev
                              : out->kvs[k - 1].create_rev > kv->create_rev)) {
            out->kvs[k] = out->kvs[k - 1];
            k--;
        }
        kv_out(kv, &out->kvs[k], r->keys_only);
    }
    if (r->limit > 0 && (int64_t)out->n_kvs > r->limit) {
        out->n_kvs = (size_t)r->limit;
        out->more = true;
    }
    return 0;
}

static int do_range(struct fake *f, const struct mvcc_range_req *r,
                    struct mvcc_range_resp *out)
{
    if (r->revision > 0 && r->revision <= f->compact_rev)
        return CAIRN_EREVCOMPACTED;
    if (r->revision > f->rev)
        return CAIRN_EFUTUREREV;
    memset(out, 0, sizeof(*out));
    out->header_rev = f->rev;
    out->kvs = api_arena_alloc(&f->arena, FAKE_KEYS_MAX * sizeof(*out->kvs));
    assert_non_null(out->kvs);
    if (r->sort_target == MVCC_SORT_CREATE && r->sort_order != MVCC_SORT_NONE)
        return do_range_by_create(f, r, out);
    for (size_t i = 0; i < f->n; i++) {
        if (!in_range(&f->kvs[i], r->key, r->key_len, r->end, r->end_len))
            continue;
        out->count++;
        if (r->count_only)
            continue;
        if (r->limit > 0 && (int64_t)out->n_kvs >= r->limit) {
            out->more = true;
            continue;
        }
        kv_out(&f->kvs[i], &out->kvs[out->n_kvs++], r->keys_only);
    }
    if (r->sort_order == MVCC_SORT_DESCEND)
        for (size_t i = 0; i < out->n_kvs / 2; i++) {
            struct mvcc_kv t = out->kvs[i];
            out->kvs[i] = out->kvs[out->n_kvs - 1 - i];
            out->kvs[out->n_kvs - 1 - i] = t;
        }
    return 0;
}

/* rev: the revision this write makes (one per request, even in a txn). */
static int do_put(struct fake *f, const struct mvcc_put_req *r, int64_t rev,
                  struct mvcc_put_resp *out)
{
    assert_true(r->key_len <= sizeof(f->kvs[0].key));
    assert_true(r->value_len <= sizeof(f->kvs[0].value));
    size_t i = 0;
    while (i < f->n &&
           keycmp(f->kvs[i].key, f->kvs[i].key_len, r->key, r->key_len) < 0)
        i++;
    bool exists = i < f->n && keycmp(f->kvs[i].key, f->kvs[i].key_len, r->key,
                                     r->key_len) == 0;
    if ((r->ignore_value || r->ignore_lease) && !exists)
        return CAIRN_EKEYNOTFOUND;
    memset(out, 0, sizeof(*out));
    if (exists && r->prev_kv)
        out->prev_kv = kv_copy(f, &f->kvs[i]);
    struct fake_event *ev = NULL;
    if (f->n_events < 64) {
        ev = &f->events[f->n_events++];
        memset(ev, 0, sizeof(*ev));
        ev->rev = rev;
        ev->has_prev = exists;
        if (exists)
            ev->prev = f->kvs[i];
    }
    if (!exists) {
        assert_true(f->n < FAKE_KEYS_MAX);
        memmove(&f->kvs[i + 1], &f->kvs[i], (f->n - i) * sizeof(f->kvs[0]));
        f->n++;
        memset(&f->kvs[i], 0, sizeof(f->kvs[i]));
        memcpy(f->kvs[i].key, r->key, r->key_len);
        f->kvs[i].key_len = r->key_len;
        f->kvs[i].create_rev = rev;
    }
    struct fake_kv *kv = &f->kvs[i];
    if (!r->ignore_value) {
        if (r->value_len > 0)
            memcpy(kv->value, r->value, r->value_len);
        kv->value_len = r->value_len;
    }
    if (!r->ignore_lease)
        kv->lease = r->lease;
    kv->mod_rev = rev;
    kv->version++;
    out->header_rev = rev;
    if (ev != NULL)
        ev->kv = *kv;
    return 0;
}

static int do_delete(struct fake *f, const struct mvcc_delete_req *r,
                     int64_t rev, struct mvcc_delete_resp *out)
{
    memset(out, 0, sizeof(*out));
    out->prev_kvs =
        api_arena_alloc(&f->arena, FAKE_KEYS_MAX * sizeof(*out->prev_kvs));
    assert_non_null(out->prev_kvs);
    size_t w = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (in_range(&f->kvs[i], r->key, r->key_len, r->end, r->end_len)) {
            out->deleted++;
            if (f->n_events < 64) {
                struct fake_event *ev = &f->events[f->n_events++];
                memset(ev, 0, sizeof(*ev));
                ev->rev = rev;
                ev->is_delete = true;
                ev->kv = f->kvs[i];
                ev->kv.mod_rev = rev;
                ev->kv.value_len = 0;
                ev->prev = f->kvs[i];
                ev->has_prev = true;
            }
            if (r->prev_kv)
                out->prev_kvs[out->n_prev_kvs++] = *kv_copy(f, &f->kvs[i]);
            continue;
        }
        f->kvs[w++] = f->kvs[i];
    }
    f->n = w;
    out->header_rev = out->deleted > 0 ? rev : f->rev;
    return 0;
}

static bool compare_one(struct fake *f, const struct mvcc_compare *c)
{
    struct fake_kv none = {0};
    const struct fake_kv *kv = &none;
    for (size_t i = 0; i < f->n; i++)
        if (keycmp(f->kvs[i].key, f->kvs[i].key_len, c->key, c->key_len) == 0)
            kv = &f->kvs[i];
    int cmp;
    switch (c->target) {
    case MVCC_CMP_VALUE:
        if (kv == &none)
            return false;
        cmp = keycmp(kv->value, kv->value_len, c->value, c->value_len);
        break;
    case MVCC_CMP_VERSION:
        cmp = (kv->version > c->number) - (kv->version < c->number);
        break;
    case MVCC_CMP_CREATE:
        cmp = (kv->create_rev > c->number) - (kv->create_rev < c->number);
        break;
    case MVCC_CMP_MOD:
        cmp = (kv->mod_rev > c->number) - (kv->mod_rev < c->number);
        break;
    default:
        cmp = (kv->lease > c->number) - (kv->lease < c->number);
    }
    switch (c->result) {
    case MVCC_CMP_EQUAL:
        return cmp == 0;
    case MVCC_CMP_GREATER:
        return cmp > 0;
    case MVCC_CMP_LESS:
        return cmp < 0;
    default:
        return cmp != 0;
    }
}

static int do_txn(struct fake *f, const struct mvcc_txn_req *r, int64_t rev,
                  bool *wrote, struct mvcc_txn_resp *out)
{
    memset(out, 0, sizeof(*out));
    out->succeeded = true;
    for (size_t i = 0; i < r->n_compares; i++)
        if (!compare_one(f, &r->compares[i]))
            out->succeeded = false;
    const struct mvcc_op *ops = out->succeeded ? r->success : r->failure;
    size_t n = out->succeeded ? r->n_success : r->n_failure;
    out->responses =
        api_arena_alloc(&f->arena, (n + 1) * sizeof(*out->responses));
    assert_non_null(out->responses);
    out->n_responses = n;
    for (size_t i = 0; i < n; i++) {
        struct mvcc_op_resp *o = &out->responses[i];
        o->type = ops[i].type;
        int rv = 0;
        switch (ops[i].type) {
        case MVCC_OP_RANGE:
            rv = do_range(f, &ops[i].u.range, &o->u.range);
            break;
        case MVCC_OP_PUT:
            rv = do_put(f, &ops[i].u.put, rev, &o->u.put);
            *wrote = true;
            break;
        case MVCC_OP_DELETE:
            rv = do_delete(f, &ops[i].u.del, rev, &o->u.del);
            *wrote = *wrote || o->u.del.deleted > 0;
            break;
        case MVCC_OP_TXN:
            o->u.txn = api_arena_alloc(&f->arena, sizeof(*o->u.txn));
            assert_non_null(o->u.txn);
            rv = do_txn(f, ops[i].u.txn, rev, wrote, o->u.txn);
            break;
        }
        if (rv != 0)
            return rv;
    }
    return 0;
}

static struct node_result result_new(struct fake *f, uint8_t type, int err)
{
    return (struct node_result){.type = type,
                                .err = err,
                                .cluster_id = 0xc1,
                                .member_id = 0xa1,
                                .revision = f->rev,
                                .raft_term = f->term};
}

static int take_failure(struct fake *f)
{
    int rv = f->fail_next;
    f->fail_next = 0;
    return rv;
}

static int range(void *arg, const struct mvcc_range_req *req, bool serializable,
                 void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    if (f->refuse_next != 0) {
        int rv = f->refuse_next;
        f->refuse_next = 0;
        return rv;
    }
    if (serializable)
        f->serializable_reads++;
    f->reads++;
    int rv = take_failure(f);
    struct node_result res = result_new(f, NODE_REQ_RANGE, rv);
    if (rv == 0)
        res.err = do_range(f, req, &res.u.range);
    cb(ctx, &res);
    return 0;
}

static void put_now(struct fake *f, const struct mvcc_put_req *req, void *ctx,
                    node_done_cb cb)
{
    int rv = take_failure(f);
    struct node_result res = result_new(f, NODE_REQ_PUT, rv);
    if (rv == 0) {
        res.err = do_put(f, req, f->rev + 1, &res.u.put);
        if (res.err == 0)
            res.revision = ++f->rev;
    }
    cb(ctx, &res);
}

static int put(void *arg, const struct mvcc_put_req *req, void *ctx,
               node_done_cb cb)
{
    struct fake *f = arg;
    if (f->refuse_next != 0) {
        int rv = f->refuse_next;
        f->refuse_next = 0;
        return rv;
    }
    if (f->hold) {
        assert_true(f->n_held < FAKE_HELD_MAX);
        /* the request is borrowed: keep a copy, as a member proposing it
         * would */
        typeof(f->held[0]) *hd = &f->held[f->n_held++];
        hd->ctx = ctx;
        hd->cb = cb;
        hd->req = *req;
        memcpy(hd->key, req->key, req->key_len);
        if (req->value_len > 0)
            memcpy(hd->value, req->value, req->value_len);
        hd->req.key = hd->key;
        hd->req.value = hd->value;
        return 0;
    }
    put_now(f, req, ctx, cb);
    return 0;
}

void fake_release(struct fake *f)
{
    size_t n = f->n_held;
    f->n_held = 0;
    f->hold = false;
    for (size_t i = 0; i < n; i++)
        put_now(f, &f->held[i].req, f->held[i].ctx, f->held[i].cb);
}

static int delete_range(void *arg, const struct mvcc_delete_req *req, void *ctx,
                        node_done_cb cb)
{
    struct fake *f = arg;
    int rv = take_failure(f);
    struct node_result res = result_new(f, NODE_REQ_DELETE, rv);
    if (rv == 0) {
        res.err = do_delete(f, req, f->rev + 1, &res.u.del);
        if (res.err == 0 && res.u.del.deleted > 0)
            res.revision = ++f->rev;
    }
    cb(ctx, &res);
    return 0;
}

static int txn(void *arg, const struct mvcc_txn_req *req, void *ctx,
               node_done_cb cb)
{
    struct fake *f = arg;
    bool wrote = false;
    int rv = take_failure(f);
    struct node_result res = result_new(f, NODE_REQ_TXN, rv);
    if (rv == 0)
        res.err = do_txn(f, req, f->rev + 1, &wrote, &res.u.txn);
    if (res.err == 0 && wrote)
        f->rev++;
    res.revision = f->rev;
    res.u.txn.header_rev = f->rev;
    cb(ctx, &res);
    return 0;
}

static int compact(void *arg, mvcc_rev revision, bool physical, void *ctx,
                   node_done_cb cb)
{
    (void)physical;
    struct fake *f = arg;
    int rv = take_failure(f);
    if (rv == 0 && revision <= f->compact_rev)
        rv = CAIRN_EREVCOMPACTED;
    else if (rv == 0 && revision > f->rev)
        rv = CAIRN_EFUTUREREV;
    if (rv == 0)
        f->compact_rev = revision;
    struct node_result res = result_new(f, NODE_REQ_COMPACT, rv);
    cb(ctx, &res);
    return 0;
}

static int status(void *arg, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    if (f->refuse_status)
        return CAIRN_ESTOPPED;
    struct node_result res = result_new(f, NODE_REQ_STATUS, take_failure(f));
    res.u.status = (struct node_status){
        .member_id = 0xa1,
        .leader = f->leader,
        .raft_index = 40,
        .raft_term = f->term,
        .applied_index = 39,
        .commit_index = 40,
        .db_bytes = 20480,
        .db_in_use_bytes = 16384,
    };
    cb(ctx, &res);
    return 0;
}

static int fk_alarm(void *arg, uint8_t action, uint64_t member_id, uint8_t type,
                    void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    if (action == NODE_ALARM_ACTIVATE && type == NODE_ALARM_NOSPACE)
        f->nospace_alarm = true;
    else if (action == NODE_ALARM_DEACTIVATE && type == NODE_ALARM_NOSPACE)
        f->nospace_alarm = false;
    (void)member_id;
    static const struct node_alarm nospace = {0xa1, NODE_ALARM_NOSPACE};
    struct node_result res = result_new(f, NODE_REQ_ALARM, 0);
    res.u.alarms.alarms = f->nospace_alarm ? &nospace : NULL;
    res.u.alarms.n = f->nospace_alarm ? 1 : 0;
    cb(ctx, &res);
    return 0;
}

static int hash(void *arg, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    struct node_result res = result_new(f, NODE_REQ_HASH, 0);
    res.u.hash.hash = 0xabc0u + (uint32_t)f->rev;
    cb(ctx, &res);
    return 0;
}

static int hash_kv(void *arg, mvcc_rev rev, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    struct node_result res =
        result_new(f, NODE_REQ_HASH_KV,
                   rev > 0 && rev <= f->compact_rev ? CAIRN_EREVCOMPACTED : 0);
    res.u.hash.hash = 0xdef0u + (uint32_t)(rev > 0 ? rev : f->rev);
    res.u.hash.compact_rev = f->compact_rev > 0 ? f->compact_rev : -1;
    cb(ctx, &res);
    return 0;
}

static int defragment(void *arg, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    f->defrags++;
    struct node_result res = result_new(f, NODE_REQ_DEFRAGMENT, 0);
    cb(ctx, &res);
    return 0;
}

static int snapshot_export(void *arg, int fd, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    /* an image of 100,000 bytes (not a multiple of 512) with a pattern */
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    int err = 0;
    for (int i = 0; i < 100 && err == 0; i++)
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            err = CAIRN_EIO;
    struct node_result res = result_new(f, NODE_REQ_SNAPSHOT_EXPORT, err);
    cb(ctx, &res);
    return 0;
}

static int member_find(struct fake *f, uint64_t id)
{
    for (size_t i = 0; i < f->n_members; i++)
        if (f->members[i].id == id)
            return (int)i;
    return -1;
}

static int move_leader(void *arg, uint64_t target, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    int i = member_find(f, target);
    struct node_result res = result_new(f, NODE_REQ_MOVE_LEADER,
                                        i < 0 ? CAIRN_EBADLEADERTRANSFEREE : 0);
    if (i >= 0)
        f->leader = target;
    cb(ctx, &res);
    return 0;
}

static void members_result(struct fake *f, uint8_t type, int err,
                           const struct node_member *m, void *ctx,
                           node_done_cb cb)
{
    struct node_result res = result_new(f, type, err);
    res.u.members.member = m;
    res.u.members.list = f->members;
    res.u.members.n = f->n_members;
    cb(ctx, &res);
}

static int member_add(void *arg, const struct node_member *m, void *ctx,
                      node_done_cb cb)
{
    struct fake *f = arg;
    for (size_t i = 0; i < f->n_members; i++)
        if (strcmp(f->members[i].peer_urls[0], m->peer_urls[0]) == 0) {
            members_result(f, NODE_REQ_MEMBER_ADD, CAIRN_EPEERURLEXISTS, NULL,
                           ctx, cb);
            return 0;
        }
    assert_true(f->n_members < 4);
    struct node_member *n = &f->members[f->n_members++];
    *n = *m;
    n->id = 0x10u + f->n_members; /* below the first member: lists sort */
    members_result(f, NODE_REQ_MEMBER_ADD, 0, n, ctx, cb);
    return 0;
}

static int member_remove(void *arg, uint64_t id, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    int fail = take_failure(f);
    if (fail != 0) {
        members_result(f, NODE_REQ_MEMBER_REMOVE, fail, NULL, ctx, cb);
        return 0;
    }
    int i = member_find(f, id);
    if (i >= 0)
        f->members[i] = f->members[--f->n_members];
    members_result(f, NODE_REQ_MEMBER_REMOVE, i < 0 ? CAIRN_EMEMBERNOTFOUND : 0,
                   NULL, ctx, cb);
    return 0;
}

static int member_update(void *arg, const struct node_member *m, void *ctx,
                         node_done_cb cb)
{
    struct fake *f = arg;
    int i = member_find(f, m->id);
    if (i >= 0) {
        f->members[i].n_peer_urls = m->n_peer_urls;
        memcpy(f->members[i].peer_urls, m->peer_urls, sizeof(m->peer_urls));
    }
    members_result(f, NODE_REQ_MEMBER_UPDATE, i < 0 ? CAIRN_EMEMBERNOTFOUND : 0,
                   NULL, ctx, cb);
    return 0;
}

static int member_promote(void *arg, uint64_t id, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    int i = member_find(f, id);
    int err = i < 0                       ? CAIRN_EMEMBERNOTFOUND
              : !f->members[i].is_learner ? CAIRN_EMEMBERNOTLEARNER
                                          : 0;
    if (err == 0)
        f->members[i].is_learner = false;
    members_result(f, NODE_REQ_MEMBER_PROMOTE, err, NULL, ctx, cb);
    return 0;
}

static int member_list(void *arg, void *ctx, node_done_cb cb)
{
    members_result(arg, NODE_REQ_MEMBER_LIST, 0, NULL, ctx, cb);
    return 0;
}

static int lease_find(struct fake *f, int64_t id)
{
    for (size_t i = 0; i < f->n_leases; i++)
        if (f->leases[i].id == id)
            return (int)i;
    return -1;
}

static int fk_lease_grant(void *arg, int64_t id, int64_t ttl_s, void *ctx,
                          node_done_cb cb)
{
    struct fake *f = arg;
    int rv = 0;
    if (id == 0)
        id = ++f->next_lease + 0x7000;
    if (lease_find(f, id) >= 0)
        rv = CAIRN_ELEASEEXISTS;
    else if (ttl_s > LEASE_TTL_MAX)
        rv = CAIRN_ELEASETTLTOOLARGE;
    struct node_result res = result_new(f, NODE_REQ_LEASE_GRANT, rv);
    if (rv == 0) {
        assert_true(f->n_leases < 16);
        f->leases[f->n_leases].id = id;
        f->leases[f->n_leases].ttl_s = ttl_s;
        f->n_leases++;
        res.u.lease_grant.id = id;
        res.u.lease_grant.ttl_s = ttl_s;
    }
    cb(ctx, &res);
    return 0;
}

/* A delete of kv at rev in the history (watchers see it). */
static void delete_event(struct fake *f, const struct fake_kv *kv, int64_t rev)
{
    if (f->n_events >= 64)
        return;
    struct fake_event *ev = &f->events[f->n_events++];
    memset(ev, 0, sizeof(*ev));
    ev->rev = rev;
    ev->is_delete = true;
    ev->kv = *kv;
    ev->kv.mod_rev = rev;
    ev->kv.value_len = 0;
    ev->prev = *kv;
    ev->has_prev = true;
}

static int fk_lease_revoke(void *arg, int64_t id, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    int i = lease_find(f, id);
    struct node_result res =
        result_new(f, NODE_REQ_LEASE_REVOKE, i < 0 ? CAIRN_ELEASENOTFOUND : 0);
    if (i >= 0) {
        f->leases[i] = f->leases[--f->n_leases];
        size_t w = 0;
        for (size_t k = 0; k < f->n; k++) {
            if (f->kvs[k].lease != id)
                f->kvs[w++] = f->kvs[k];
            else
                delete_event(f, &f->kvs[k], f->rev + 1);
        }
        if (w != f->n)
            res.revision = ++f->rev;
        f->n = w;
    }
    cb(ctx, &res);
    return 0;
}

static int fk_lease_keepalive(void *arg, int64_t id, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    if (f->refuse_next != 0) {
        int rv = f->refuse_next;
        f->refuse_next = 0;
        return rv;
    }
    f->keepalives++;
    int i = lease_find(f, id);
    struct node_result res =
        result_new(f, NODE_REQ_LEASE_KEEPALIVE,
                   i < 0 ? CAIRN_ELEASENOTFOUND : take_failure(f));
    if (res.err == 0) {
        res.u.lease_keepalive.id = id;
        res.u.lease_keepalive.ttl_s = f->leases[i].ttl_s;
    }
    cb(ctx, &res);
    return 0;
}

static int fk_lease_ttl(void *arg, int64_t id, bool keys, void *ctx,
                        node_done_cb cb)
{
    struct fake *f = arg;
    int i = lease_find(f, id);
    struct node_result res =
        result_new(f, NODE_REQ_LEASE_TTL, i < 0 ? CAIRN_ELEASENOTFOUND : 0);
    const uint8_t *kp[FAKE_KEYS_MAX];
    size_t kl[FAKE_KEYS_MAX];
    if (i >= 0) {
        res.u.lease_ttl.info =
            (struct lease_info){id, f->leases[i].ttl_s, f->leases[i].ttl_s - 1};
        size_t n = 0;
        for (size_t k = 0; keys && k < f->n; k++)
            if (f->kvs[k].lease == id) {
                kp[n] = f->kvs[k].key;
                kl[n++] = f->kvs[k].key_len;
            }
        res.u.lease_ttl.keys = kp;
        res.u.lease_ttl.key_lens = kl;
        res.u.lease_ttl.n_keys = n;
    }
    cb(ctx, &res);
    return 0;
}

static int fk_lease_list(void *arg, void *ctx, node_done_cb cb)
{
    struct fake *f = arg;
    int64_t ids[16];
    for (size_t i = 0; i < f->n_leases; i++)
        ids[i] = f->leases[i].id;
    struct node_result res = result_new(f, NODE_REQ_LEASE_LIST, 0);
    res.u.lease_list.ids = ids;
    res.u.lease_list.n = f->n_leases;
    cb(ctx, &res);
    return 0;
}

/* ---- a watch hub over the history ---- */

struct fake_watcher {
    bool used, paused;
    int64_t id;
    struct mvcc_watch_req req;
    uint8_t key[64], end[64];
    int64_t next_rev;
};

struct fake_hub {
    struct fake *f;
    void *ctx;
    mvcc_watch_cb cb;
    struct fake_watcher w[16];
};

static int watch_open(void *arg, void *ctx, mvcc_watch_cb cb, void **hub)
{
    struct fake *f = arg;
    assert_true(f->n_hubs < 8);
    struct fake_hub *h = cairn_calloc(1, sizeof(*h));
    assert_non_null(h);
    h->f = f;
    h->ctx = ctx;
    h->cb = cb;
    f->hubs[f->n_hubs++] = h;
    *hub = h;
    return 0;
}

static void watch_close(void *arg, void *hub)
{
    struct fake *f = arg;
    for (size_t i = 0; i < f->n_hubs; i++)
        if (f->hubs[i] == hub) {
            f->hubs[i] = f->hubs[--f->n_hubs];
            break;
        }
    f->hubs_closed++;
    cairn_free(hub);
}

static int watch_create(void *arg, void *hub, const struct mvcc_watch_req *req,
                        int64_t *id)
{
    struct fake *f = arg;
    struct fake_hub *h = hub;
    if (*id >= 0) {
        for (int i = 0; i < 16; i++)
            if (h->w[i].used && h->w[i].id == *id)
                return CAIRN_EEXISTS;
    } else {
        /* the lowest free id, as mvcc's hub */
        int64_t cand = 0;
        for (bool taken = true; taken; cand += taken) {
            taken = false;
            for (int i = 0; i < 16; i++)
                if (h->w[i].used && h->w[i].id == cand)
                    taken = true;
        }
        *id = cand;
    }
    for (int i = 0; i < 16; i++) {
        struct fake_watcher *w = &h->w[i];
        if (w->used)
            continue;
        memset(w, 0, sizeof(*w));
        w->used = true;
        w->id = *id;
        w->req = *req;
        assert_true(req->key_len <= 64 && req->end_len <= 64);
        memcpy(w->key, req->key, req->key_len);
        if (req->end_len > 0)
            memcpy(w->end, req->end, req->end_len);
        w->req.key = w->key;
        w->req.end = w->end;
        w->next_rev = req->start_rev > 0 ? req->start_rev : f->rev + 1;
        return 0;
    }
    return CAIRN_EFULL;
}

static struct fake_watcher *watcher_find(struct fake_hub *h, int64_t id)
{
    for (int i = 0; i < 16; i++)
        if (h->w[i].used && h->w[i].id == id)
            return &h->w[i];
    return NULL;
}

static int watch_cancel(void *arg, void *hub, int64_t id)
{
    (void)arg;
    struct fake_watcher *w = watcher_find(hub, id);
    if (w == NULL)
        return CAIRN_ENOTFOUND;
    w->used = false;
    return 0;
}

static int watch_progress(void *arg, void *hub, int64_t id)
{
    struct fake *f = arg;
    struct fake_hub *h = hub;
    struct fake_watcher *w = watcher_find(h, id);
    if (w == NULL)
        return CAIRN_ENOTFOUND;
    if (w->next_rev <= f->rev)
        return CAIRN_EAGAIN;
    struct mvcc_watch_resp r = {.watch_id = id, .header_rev = f->rev};
    h->cb(h->ctx, &r);
    return 0;
}

static int watch_resume(void *arg, void *hub, int64_t id)
{
    (void)arg;
    struct fake_watcher *w = watcher_find(hub, id);
    if (w == NULL)
        return CAIRN_ENOTFOUND;
    w->paused = false;
    return 0;
}

static void watch_header(void *arg, struct api_header *h)
{
    struct fake *f = arg;
    *h = (struct api_header){0xc1, 0xa1, f->rev, f->term};
}

static void fake_to_mvcc(const struct fake_kv *in, struct mvcc_kv *out)
{
    *out = (struct mvcc_kv){in->key,       in->key_len,    in->value,
                            in->value_len, in->create_rev, in->mod_rev,
                            in->version,   in->lease};
}

static void poll_watcher(struct fake *f, struct fake_hub *h,
                         struct fake_watcher *w)
{
    if (w->next_rev <= f->compact_rev) {
        struct mvcc_watch_resp r = {.watch_id = w->id,
                                    .header_rev = f->rev,
                                    .compact_rev = f->compact_rev,
                                    .canceled = true};
        w->used = false;
        h->cb(h->ctx, &r);
        return;
    }
    struct mvcc_event evs[64];
    struct mvcc_kv prevs[64];
    size_t n = 0;
    for (size_t i = 0; i < f->n_events; i++) {
        const struct fake_event *e = &f->events[i];
        if (e->rev < w->next_rev ||
            !in_range(&e->kv, w->req.key, w->req.key_len, w->req.end,
                      w->req.end_len))
            continue;
        if ((e->is_delete && w->req.no_delete) ||
            (!e->is_delete && w->req.no_put))
            continue;
        evs[n].is_delete = e->is_delete;
        fake_to_mvcc(&e->kv, &evs[n].kv);
        evs[n].prev_kv = NULL;
        if (w->req.prev_kv && e->has_prev) {
            fake_to_mvcc(&e->prev, &prevs[n]);
            evs[n].prev_kv = &prevs[n];
        }
        n++;
    }
    if (n == 0) {
        w->next_rev = f->rev + 1;
        return;
    }
    struct mvcc_watch_resp r = {
        .watch_id = w->id, .header_rev = f->rev, .events = evs, .n_events = n};
    if (h->cb(h->ctx, &r) == CAIRN_EAGAIN) {
        w->paused = true;
        return;
    }
    w->next_rev = f->rev + 1;
}

void fake_watch_poll(struct fake *f)
{
    for (size_t i = 0; i < f->n_hubs; i++)
        for (int k = 0; k < 16; k++) {
            struct fake_watcher *w = &f->hubs[i]->w[k];
            if (w->used && !w->paused)
                poll_watcher(f, f->hubs[i], w);
        }
}

static void real_store(struct fake *f)
{
    if (f->auth_store == NULL) {
        strcpy(f->auth_dir, "/tmp/cairn-api-auth-XXXXXX");
        assert_non_null(mkdtemp(f->auth_dir));
        struct mvcc_options o = {.dir = f->auth_dir, .quota_bytes = 64u << 20};
        struct cairn_errmsg em = {{0}};
        assert_int_equal(mvcc_open(&o, &f->auth_store, &em), 0);
        mvcc_arena_init(&f->auth_arena);
    }
}

/* v2: each request one batch of the real store, answered at once; then
 * the waiting watches are woken (the member's next applied batch). */
static int fk_v2(void *arg, const struct v2_req *req, void *ctx,
                 node_done_cb cb)
{
    struct fake *f = arg;
    f->v2_calls++;
    int rv = take_failure(f);
    if (rv == 0 && (rv = v2_req_check(req)) != 0)
        return rv;
    real_store(f);
    struct node_result r = result_new(f, NODE_REQ_V2, rv);
    if (rv == 0) {
        assert_int_equal(mvcc_batch_begin(f->auth_store), 0);
        assert_int_equal(v2_apply(f->auth_store, req, &f->auth_arena, &r.u.v2),
                         0);
        assert_int_equal(mvcc_batch_commit(f->auth_store, ++f->auth_ci), 0);
        r.u.v2.raft_index = f->auth_ci;
    }
    cb(ctx, &r);
    mvcc_arena_reset(&f->auth_arena);
    for (size_t i = 0; i < 8; i++)
        if (f->v2w[i].cb != NULL) {
            void (*wake)(void *) = f->v2w[i].cb;
            f->v2w[i].cb = NULL;
            wake(f->v2w[i].ctx);
        }
    return 0;
}

static int fk_v2_scan(void *arg, const char *path, size_t len, bool recursive,
                      bool live, uint64_t since, struct buf *out,
                      struct v2_scan_pos *pos)
{
    struct fake *f = arg;
    real_store(f);
    int rc = v2_history_scan(f->auth_store, path, len, recursive, live, since,
                             out, pos);
    pos->raft_index = f->v2_raft_index;
    return rc;
}

static int fk_v2_wait(void *arg, void *ctx, void (*cb)(void *ctx),
                      void **handle)
{
    struct fake *f = arg;
    for (size_t i = 0; i < 8; i++)
        if (f->v2w[i].cb == NULL) {
            f->v2w[i].ctx = ctx;
            f->v2w[i].cb = cb;
            *handle = &f->v2w[i];
            return 0;
        }
    return CAIRN_EFULL;
}

static void fk_v2_wait_cancel(void *arg, void *handle)
{
    (void)arg;
    struct fake *f = arg;
    for (size_t i = 0; i < 8; i++)
        if (handle == &f->v2w[i])
            f->v2w[i].cb = NULL;
}

/* Auth: each request one batch of the real store, answered at once. */
static int fk_auth(void *arg, const struct auth_req *req, void *ctx,
                   node_done_cb cb)
{
    struct fake *f = arg;
    f->auth_calls++;
    int rv = take_failure(f);
    if (rv == 0 && (rv = auth_req_check(req)) != 0)
        return rv; /* refused, as node_auth refuses */
    real_store(f);
    struct node_result r = result_new(f, NODE_REQ_AUTH, rv);
    if (rv == 0) {
        assert_int_equal(mvcc_batch_begin(f->auth_store), 0);
        r.err = auth_apply(f->auth_store, req, &f->auth_arena, &r.u.auth);
        assert_int_equal(mvcc_batch_commit(f->auth_store, ++f->auth_ci), 0);
    }
    cb(ctx, &r);
    mvcc_arena_reset(&f->auth_arena);
    return 0;
}

static void metrics(void *arg, struct api_metrics *m)
{
    (void)arg;
    memset(m, 0, sizeof *m);
    m->leader_changes_seen = 1;
    m->proposals_committed = 40;
    m->proposals_applied = 39;
    m->proposals_pending = 1;
    m->proposals_failed = 3;
}

static void fk_close(void *arg)
{
    ((struct fake *)arg)->closes++;
}

struct api_backend fake_backend(struct fake *f)
{
    return (struct api_backend){
        .arg = f,
        .range = range,
        .put = put,
        .delete_range = delete_range,
        .txn = txn,
        .compact = compact,
        .status = status,
        .alarm = fk_alarm,
        .auth = fk_auth,
        .v2 = fk_v2,
        .v2_scan = fk_v2_scan,
        .v2_wait = fk_v2_wait,
        .v2_wait_cancel = fk_v2_wait_cancel,
        .metrics = metrics,
        .lease_grant = fk_lease_grant,
        .lease_revoke = fk_lease_revoke,
        .lease_keepalive = fk_lease_keepalive,
        .lease_ttl = fk_lease_ttl,
        .lease_list = fk_lease_list,
        .hash = hash,
        .hash_kv = hash_kv,
        .defragment = defragment,
        .snapshot_export = snapshot_export,
        .move_leader = move_leader,
        .member_add = member_add,
        .member_remove = member_remove,
        .member_update = member_update,
        .member_promote = member_promote,
        .member_list = member_list,
        .watch_open = watch_open,
        .watch_close = watch_close,
        .watch_create = watch_create,
        .watch_cancel = watch_cancel,
        .watch_progress = watch_progress,
        .watch_resume = watch_resume,
        .watch_header = watch_header,
        .close = fk_close,
    };
}

/* ---- fixture ---- */

struct connect_wait {
    int done, status;
    struct rpc_client *cl;
};
static void on_connect(void *arg, int status, struct rpc_client *cl)
{
    struct connect_wait *w = arg;
    w->done = 1;
    w->status = status;
    w->cl = cl;
}

void fx_open(struct fx *f, const struct api_config *cfg)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fake_init(&f->fake);
    struct api_backend be = fake_backend(&f->fake);
    assert_int_equal(api_open(&f->loop, &be, cfg, NULL, &f->api), 0);
    struct cairn_errmsg m = {{0}};
    assert_int_equal(api_listen(f->api, "http://127.0.0.1:0", &f->port, &m), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)f->port);
    assert_int_equal(net_url_parse(url, &f->url, &m), 0);
    struct connect_wait w = {0, 0, NULL};
    assert_int_equal(
        rpc_client_connect(&f->loop, &f->url, NULL, NULL, &w, on_connect), 0);
    RUN_UNTIL(f, w.done);
    assert_int_equal(w.status, 0);
    f->cl = w.cl;
}

void fx_close(struct fx *f)
{
    rpc_client_close(f->cl);
    api_close(f->api);
    /* the backend's close entry runs once, in api_close */
    assert_int_equal(f->fake.closes, 1);
    LOOP_DRAIN(&f->loop);
    assert_int_equal(f->fake.closes, 1);
    assert_int_equal(ru_loop_close(&f->loop), 0);
    fake_free(&f->fake);
}

static void res_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                    size_t n)
{
    (void)call;
    struct result *r = arg;
    r->n_msgs++;
    buf_reset(&r->last);
    assert_int_equal(buf_append(&r->last, d, n), 0);
}
static void res_done(void *arg, struct rpc_call *call, int code,
                     const char *msg)
{
    (void)call;
    struct result *r = arg;
    r->done++;
    r->code = code;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
}
static const struct rpc_call_cbs result_cbs = {NULL, res_msg, NULL, NULL,
                                               res_done};

void fx_call_start(struct fx *f, const char *path, const void *data, size_t len,
                   struct result *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->last);
    r->code = -1;
    assert_int_equal(
        rpc_client_call(f->cl, path, -1, NULL, &result_cbs, r, &r->call), 0);
    if (data != NULL)
        assert_int_equal(rpc_call_send(r->call, data, len), 0);
    rpc_call_close_send(r->call);
}

void fx_stream_start(struct fx *f, const char *path, struct result *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->last);
    r->code = -1;
    assert_int_equal(
        rpc_client_call(f->cl, path, -1, NULL, &result_cbs, r, &r->call), 0);
}

void fx_unary_raw(struct fx *f, const char *path, const void *data, size_t len,
                  struct result *r)
{
    fx_call_start(f, path, data, len, r);
    RUN_UNTIL(f, r->done == 1);
}

void fx_unary(struct fx *f, const char *path, const ProtobufCMessage *msg,
              struct result *r)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *p = cairn_malloc(n + 1);
    assert_non_null(p);
    protobuf_c_message_pack(msg, p);
    fx_unary_raw(f, path, p, n, r);
    cairn_free(p);
}

void result_free(struct result *r)
{
    buf_free(&r->last);
}

struct http_wait {
    struct net_conn *conn;
    struct buf *out;
    int connected, closed;
};
static void http_read(void *arg, struct net_conn *c, const uint8_t *d, size_t n)
{
    (void)c;
    struct http_wait *w = arg;
    assert_int_equal(buf_append(w->out, d, n), 0);
}
static void http_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    (void)status;
    struct http_wait *w = arg;
    w->closed = 1;
}
static const struct net_conn_cbs http_cbs = {http_read, NULL, http_closed};
static void http_connected(void *arg, int status, struct net_conn *c)
{
    struct http_wait *w = arg;
    assert_int_equal(status, 0);
    w->conn = c;
    w->connected = 1;
    net_conn_start(c, &http_cbs, w);
}

void fx_raw(struct fx *f, const void *bytes, size_t len, struct buf *out)
{
    struct http_wait w = {NULL, out, 0, 0};
    assert_int_equal(net_connect(&f->loop, &f->url, NULL, &w, http_connected),
                     0);
    RUN_UNTIL(f, w.connected);
    assert_int_equal(net_conn_write(w.conn, bytes, len), 0);
    RUN_UNTIL(f, w.closed);
    assert_int_equal(buf_append_u8(out, 0), 0);
    out->len--;
}

void fx_http_get(struct fx *f, const char *path, struct buf *out)
{
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    fx_raw(f, req, (size_t)n, out);
}

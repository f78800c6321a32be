/* lock: etcd's v3lockpb.Lock service (etcdserver/api/v3lock), which runs
 * clientv3/concurrency's Mutex inside the server: Lock puts name/<lease in
 * hex> under the caller's lease (a fresh 60 s lease when none is given)
 * and answers once every key of name/ created before it is gone; Unlock
 * deletes the key it was given. */
#include <string.h>

#include "api/conc.h"

/* The call went away (or the wait failed): etcd's Mutex unlocks. */
static void lock_cleanup_done(struct api__conc *c,
                              const struct node_result *res)
{
    (void)res;
    api__conc_end(c);
}

static void lock_cleanup(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    struct api_backend *be = &c->api->be;
    struct mvcc_delete_req q = {.key = c->key, .key_len = c->key_len};
    c->pending = true;
    c->next = lock_cleanup_done;
    api__conc_submitted(c, be->delete_range(be->arg, &q, c, api__conc_done));
}

static void lock_answer(struct api__conc *c, const struct api_header *h)
{
    V3lockpb__LockResponse out;
    v3lockpb__lock_response__init(&out);
    out.header = api__conc_header_pb(c, h);
    if (out.header == NULL) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    out.key = (ProtobufCBinaryData){c->key_len, c->key};
    c->cleanup = NULL; /* the lock is the client's now */
    api__conc_reply(c, &out.base);
}

static void lock_acquired(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    lock_answer(c, &c->wait_hdr);
}

/* Mutex.Lock's txn answered: ours is the oldest key, or we wait. */
static void lock_txn_done(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    const struct mvcc_txn_resp *t = &res->u.txn;
    CAIRN_ASSERT(t->n_responses == 2);
    struct api_header h = api_header_of(res);
    c->rev = h.revision;
    if (!t->succeeded) {
        const struct mvcc_range_resp *own = &t->responses[0].u.range;
        if (own->n_kvs == 0) {
            /* deleted between the compare and the read: cannot happen in
             * one txn, so the member broke its contract */
            api__conc_fail(c, CAIRN_ECORRUPT);
            return;
        }
        c->rev = own->kvs[0].create_rev;
    }
    const struct mvcc_range_resp *owner = &t->responses[1].u.range;
    if (owner->n_kvs == 0 || owner->kvs[0].create_rev == c->rev) {
        lock_answer(c, &h);
        return;
    }
    c->cleanup_on_fail = true;
    api__conc_wait_deletes(c, c->rev - 1, lock_acquired);
}

static void lock_txn(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    if (!api__conc_set_key(c)) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    /* if key absent: put it, read the owner; else read it and the owner */
    struct mvcc_compare cmp = {.result = MVCC_CMP_EQUAL,
                               .target = MVCC_CMP_CREATE,
                               .key = c->key,
                               .key_len = c->key_len};
    struct mvcc_range_req owner = api__conc_prefix_top(c, MVCC_SORT_ASCEND);
    struct mvcc_op then[2] = {{.type = MVCC_OP_PUT,
                               .u.put = {.key = c->key,
                                         .key_len = c->key_len,
                                         .value = (const uint8_t *)"",
                                         .lease = c->lease}},
                              {.type = MVCC_OP_RANGE, .u.range = owner}};
    struct mvcc_op otherwise[2] = {
        {.type = MVCC_OP_RANGE,
         .u.range = {.key = c->key, .key_len = c->key_len}},
        {.type = MVCC_OP_RANGE, .u.range = owner}};
    struct mvcc_txn_req txn = {.compares = &cmp,
                               .n_compares = 1,
                               .success = then,
                               .n_success = 2,
                               .failure = otherwise,
                               .n_failure = 2};
    struct api_backend *be = &c->api->be;
    c->cleanup = lock_cleanup;
    c->pending = true;
    c->next = lock_txn_done;
    api__conc_submitted(c, be->txn(be->arg, &txn, c, api__conc_done));
}

void api__lock_lock(struct api_req *r, const uint8_t *data, size_t len)
{
    V3lockpb__LockRequest *in;
    UNPACK(r, v3lockpb__lock_request, data, len, in);
    struct api__conc *c = api__conc_new(r);
    if (c == NULL) {
        v3lockpb__lock_request__free_unpacked(in, NULL);
        return;
    }
    bool ok = api__conc_set_name(c, &in->name);
    c->lease = in->lease;
    v3lockpb__lock_request__free_unpacked(in, NULL);
    if (!ok)
        api__conc_fail(c, CAIRN_ENOMEM);
    else if (c->lease == 0)
        api__conc_grant(c, lock_txn); /* concurrency.NewSession */
    else
        lock_txn(c, NULL);
}

/* ---- Unlock: a plain delete of the key ---- */

static void unlock_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    V3lockpb__UnlockResponse out;
    v3lockpb__unlock_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    api__req_reply(r, &out.base);
}

void api__lock_unlock(struct api_req *r, const uint8_t *data, size_t len)
{
    V3lockpb__UnlockRequest *in;
    UNPACK(r, v3lockpb__unlock_request, data, len, in);
    uint8_t *key = api_arena_alloc(&r->arena, in->key.len + 1);
    if (key == NULL) {
        v3lockpb__unlock_request__free_unpacked(in, NULL);
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    if (in->key.len > 0)
        memcpy(key, in->key.data, in->key.len);
    /* clientv3's Delete of an empty key reaches the server's check */
    struct mvcc_delete_req q = {.key = key, .key_len = in->key.len};
    v3lockpb__unlock_request__free_unpacked(in, NULL);
    if (q.key_len == 0) {
        api__req_fail(r, CAIRN_EEMPTYKEY);
        return;
    }
    r->pending = true;
    api__req_submitted(
        r, r->api->be.delete_range(r->api->be.arg, &q, r, unlock_done));
}

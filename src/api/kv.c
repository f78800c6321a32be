/* kv: etcd's KV service (Range, Put, DeleteRange, Txn, Compact): each
 * request checked and converted, handed to the member, answered from its
 * result. */
#include "api/api_int.h"

/* ---- KV ---- */

static void range_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__RangeResponse out;
    int rv = api_range_to_pb(&h, &res->u.range, &r->arena, &out);
    if (rv != 0) {
        api__req_fail(r, rv);
        return;
    }
    api__req_reply(r, &out.base);
}

void api__kv_range(struct api_req *r, const uint8_t *data, size_t len)
{
    Etcdserverpb__RangeRequest *in;
    UNPACK(r, etcdserverpb__range_request, data, len, in);
    struct mvcc_range_req req;
    int rv = api_range_from_pb(in, &req);
    if (rv != 0) {
        api__req_fail(r, rv);
    } else {
        r->pending = true;
        api__req_submitted(r,
                           r->api->be.range(r->api->be.arg, &req,
                                            in->serializable, r, range_done));
    }
    etcdserverpb__range_request__free_unpacked(in, NULL);
}

static void put_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__PutResponse out;
    int rv = api_put_to_pb(&h, &res->u.put, &r->arena, &out);
    if (rv != 0) {
        api__req_fail(r, rv);
        return;
    }
    api__req_reply(r, &out.base);
}

void api__kv_put(struct api_req *r, const uint8_t *data, size_t len)
{
    Etcdserverpb__PutRequest *in;
    UNPACK(r, etcdserverpb__put_request, data, len, in);
    struct mvcc_put_req req;
    int rv = api_put_from_pb(in, &req);
    if (rv != 0) {
        api__req_fail(r, rv);
    } else {
        r->pending = true;
        api__req_submitted(r,
                           r->api->be.put(r->api->be.arg, &req, r, put_done));
    }
    etcdserverpb__put_request__free_unpacked(in, NULL);
}

static void delete_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__DeleteRangeResponse out;
    int rv = api_delete_to_pb(&h, &res->u.del, &r->arena, &out);
    if (rv != 0) {
        api__req_fail(r, rv);
        return;
    }
    api__req_reply(r, &out.base);
}

void api__kv_delete(struct api_req *r, const uint8_t *data, size_t len)
{
    Etcdserverpb__DeleteRangeRequest *in;
    UNPACK(r, etcdserverpb__delete_range_request, data, len, in);
    struct mvcc_delete_req req;
    int rv = api_delete_from_pb(in, &req);
    if (rv != 0) {
        api__req_fail(r, rv);
    } else {
        r->pending = true;
        api__req_submitted(
            r, r->api->be.delete_range(r->api->be.arg, &req, r, delete_done));
    }
    etcdserverpb__delete_range_request__free_unpacked(in, NULL);
}

static void txn_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__TxnResponse out;
    int rv = api_txn_to_pb(&h, &res->u.txn, &r->arena, &out);
    if (rv != 0) {
        api__req_fail(r, rv);
        return;
    }
    api__req_reply(r, &out.base);
}

void api__kv_txn(struct api_req *r, const uint8_t *data, size_t len)
{
    Etcdserverpb__TxnRequest *in;
    UNPACK(r, etcdserverpb__txn_request, data, len, in);
    struct mvcc_txn_req req;
    int rv = api_txn_from_pb(in, r->api->max_txn_ops, &r->arena, &req);
    if (rv != 0) {
        api__req_fail(r, rv);
    } else {
        r->pending = true;
        api__req_submitted(r,
                           r->api->be.txn(r->api->be.arg, &req, r, txn_done));
    }
    etcdserverpb__txn_request__free_unpacked(in, NULL);
}

static void compact_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__CompactionResponse out;
    etcdserverpb__compaction_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    api__req_reply(r, &out.base);
}

void api__kv_compact(struct api_req *r, const uint8_t *data, size_t len)
{
    Etcdserverpb__CompactionRequest *in;
    UNPACK(r, etcdserverpb__compaction_request, data, len, in);
    r->pending = true;
    api__req_submitted(r, r->api->be.compact(r->api->be.arg, in->revision,
                                             in->physical, r, compact_done));
    etcdserverpb__compaction_request__free_unpacked(in, NULL);
}

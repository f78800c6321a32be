/* convert: etcd's wire messages (proto/) to and from the request and
 * response types of mvcc/mvcc.h, with etcd's v3rpc request checks
 * (etcdserver/api/v3rpc/key.go), and the bump allocator both use. */
#include <string.h>

#include "api/api.h"

/* ---- arena ---- */

#define API__CHUNK_MIN 4096

struct api__chunk {
    struct api__chunk *next;
    size_t used, cap;
    _Alignas(16) uint8_t data[];
};

void api_arena_init(struct api_arena *a)
{
    a->head = NULL;
}

void api_arena_free(struct api_arena *a)
{
    while (a->head != NULL) {
        struct api__chunk *c = a->head;
        a->head = c->next;
        cairn_free(c);
    }
}

void *api_arena_alloc(struct api_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct api__chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > API__CHUNK_MIN ? n : API__CHUNK_MIN;
        c = cairn_malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* ---- requests ---- */

int api_range_from_pb(const Etcdserverpb__RangeRequest *in,
                      struct mvcc_range_req *out)
{
    if (in->key.len == 0)
        return CAIRN_EEMPTYKEY;
    *out = (struct mvcc_range_req){
        .key = in->key.data,
        .key_len = in->key.len,
        .end = in->range_end.data,
        .end_len = in->range_end.len,
        .limit = in->limit,
        .revision = in->revision,
        .keys_only = in->keys_only,
        .count_only = in->count_only,
        .min_mod_rev = in->min_mod_revision,
        .max_mod_rev = in->max_mod_revision,
        .min_create_rev = in->min_create_revision,
        .max_create_rev = in->max_create_revision,
    };
    /* etcd treats enum values it does not know as the default ones */
    switch ((int)in->sort_order) {
    case ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND:
        out->sort_order = MVCC_SORT_ASCEND;
        break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND:
        out->sort_order = MVCC_SORT_DESCEND;
        break;
    default:
        out->sort_order = MVCC_SORT_NONE;
    }
    switch ((int)in->sort_target) {
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION:
        out->sort_target = MVCC_SORT_VERSION;
        break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE:
        out->sort_target = MVCC_SORT_CREATE;
        break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD:
        out->sort_target = MVCC_SORT_MOD;
        break;
    case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE:
        out->sort_target = MVCC_SORT_VALUE;
        break;
    default:
        out->sort_target = MVCC_SORT_KEY;
    }
    return 0;
}

int api_put_from_pb(const Etcdserverpb__PutRequest *in,
                    struct mvcc_put_req *out)
{
    if (in->key.len == 0)
        return CAIRN_EEMPTYKEY;
    if (in->ignore_value && in->value.len != 0)
        return CAIRN_EVALUEPROVIDED;
    if (in->ignore_lease && in->lease != 0)
        return CAIRN_ELEASEPROVIDED;
    *out = (struct mvcc_put_req){
        .key = in->key.data,
        .key_len = in->key.len,
        .value = in->value.data,
        .value_len = in->value.len,
        .lease = in->lease,
        .prev_kv = in->prev_kv,
        .ignore_value = in->ignore_value,
        .ignore_lease = in->ignore_lease,
    };
    return 0;
}

int api_delete_from_pb(const Etcdserverpb__DeleteRangeRequest *in,
                       struct mvcc_delete_req *out)
{
    if (in->key.len == 0)
        return CAIRN_EEMPTYKEY;
    *out = (struct mvcc_delete_req){
        .key = in->key.data,
        .key_len = in->key.len,
        .end = in->range_end.data,
        .end_len = in->range_end.len,
        .prev_kv = in->prev_kv,
    };
    return 0;
}

/* Nested txns are bounded by the request size; this bounds the recursion
 * as well, far above anything a client sends. */
#define API__TXN_DEPTH_MAX 64

static int txn_from_pb(const Etcdserverpb__TxnRequest *in, unsigned max_ops,
                       struct api_arena *arena, struct mvcc_txn_req *out,
                       int depth);

static int ops_from_pb(Etcdserverpb__RequestOp *const *in, size_t n,
                       unsigned max_ops, struct api_arena *arena,
                       const struct mvcc_op **out, int depth)
{
    *out = NULL;
    if (n == 0)
        return 0;
    struct mvcc_op *ops = api_arena_alloc(arena, n * sizeof(*ops));
    if (ops == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__RequestOp *op = in[i];
        int rv;
        switch (op->request_case) {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
            ops[i].type = MVCC_OP_RANGE;
            rv = api_range_from_pb(op->request_range, &ops[i].u.range);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
            ops[i].type = MVCC_OP_PUT;
            rv = api_put_from_pb(op->request_put, &ops[i].u.put);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
            ops[i].type = MVCC_OP_DELETE;
            rv = api_delete_from_pb(op->request_delete_range, &ops[i].u.del);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN: {
            struct mvcc_txn_req *sub = api_arena_alloc(arena, sizeof(*sub));
            if (sub == NULL)
                return CAIRN_ENOMEM;
            ops[i].type = MVCC_OP_TXN;
            ops[i].u.txn = sub;
            rv = txn_from_pb(op->request_txn, max_ops, arena, sub, depth + 1);
            break;
        }
        default:
            /* etcd's checkRequestOp: an empty op is "key not found" */
            rv = CAIRN_EKEYNOTFOUND;
        }
        if (rv != 0)
            return rv;
    }
    *out = ops;
    return 0;
}

static int txn_from_pb(const Etcdserverpb__TxnRequest *in, unsigned max_ops,
                       struct api_arena *arena, struct mvcc_txn_req *out,
                       int depth)
{
    if (depth > API__TXN_DEPTH_MAX)
        return CAIRN_ETOOBIG;
    if (in->n_compare > max_ops || in->n_success > max_ops ||
        in->n_failure > max_ops)
        return CAIRN_ETOOMANYOPS;
    memset(out, 0, sizeof(*out));
    if (in->n_compare > 0) {
        struct mvcc_compare *c =
            api_arena_alloc(arena, in->n_compare * sizeof(*c));
        if (c == NULL)
            return CAIRN_ENOMEM;
        for (size_t i = 0; i < in->n_compare; i++) {
            const Etcdserverpb__Compare *pc = in->compare[i];
            c[i] = (struct mvcc_compare){
                .result = (enum mvcc_cmp_result)pc->result,
                .target = (enum mvcc_cmp_target)pc->target,
                .key = pc->key.data,
                .key_len = pc->key.len,
                .end = pc->range_end.data,
                .end_len = pc->range_end.len,
            };
            if ((unsigned)pc->result > MVCC_CMP_NOT_EQUAL ||
                (unsigned)pc->target > MVCC_CMP_LEASE)
                return CAIRN_EINVAL;
            /* the number or value is read from the field of the oneof
             * that was sent; another one counts as zero, as in etcd */
            switch (pc->target_union_case) {
            case ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION:
                c[i].number = pc->version;
                break;
            case ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION:
                c[i].number = pc->create_revision;
                break;
            case ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION:
                c[i].number = pc->mod_revision;
                break;
            case ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE:
                c[i].number = pc->lease;
                break;
            case ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE:
                c[i].value = pc->value.data;
                c[i].value_len = pc->value.len;
                break;
            default:
                break;
            }
        }
        out->compares = c;
        out->n_compares = in->n_compare;
    }
    int rv = ops_from_pb(in->success, in->n_success, max_ops, arena,
                         &out->success, depth);
    if (rv != 0)
        return rv;
    out->n_success = in->n_success;
    rv = ops_from_pb(in->failure, in->n_failure, max_ops, arena, &out->failure,
                     depth);
    if (rv != 0)
        return rv;
    out->n_failure = in->n_failure;
    return 0;
}

int api_txn_from_pb(const Etcdserverpb__TxnRequest *in, unsigned max_txn_ops,
                    struct api_arena *arena, struct mvcc_txn_req *out)
{
    return txn_from_pb(in, max_txn_ops == 0 ? 128 : max_txn_ops, arena, out, 0);
}

/* ---- responses ---- */

static Etcdserverpb__ResponseHeader *header_new(struct api_arena *arena,
                                                const struct api_header *h,
                                                int64_t revision)
{
    Etcdserverpb__ResponseHeader *ph = api_arena_alloc(arena, sizeof(*ph));
    if (ph == NULL)
        return NULL;
    etcdserverpb__response_header__init(ph);
    if (h != NULL) {
        ph->cluster_id = h->cluster_id;
        ph->member_id = h->member_id;
        ph->raft_term = h->raft_term;
    }
    ph->revision = revision;
    return ph;
}

static Mvccpb__KeyValue *kv_new(struct api_arena *arena,
                                const struct mvcc_kv *kv)
{
    Mvccpb__KeyValue *p = api_arena_alloc(arena, sizeof(*p));
    if (p == NULL)
        return NULL;
    mvccpb__key_value__init(p);
    p->key.data = (uint8_t *)kv->key;
    p->key.len = kv->key_len;
    p->value.data = (uint8_t *)kv->value;
    p->value.len = kv->value_len;
    p->create_revision = kv->create_rev;
    p->mod_revision = kv->mod_rev;
    p->version = kv->version;
    p->lease = kv->lease;
    return p;
}

static int kvs_new(struct api_arena *arena, const struct mvcc_kv *kvs, size_t n,
                   Mvccpb__KeyValue ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    Mvccpb__KeyValue **v = api_arena_alloc(arena, n * sizeof(*v));
    if (v == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = kv_new(arena, &kvs[i]);
        if (v[i] == NULL)
            return CAIRN_ENOMEM;
    }
    *out = v;
    return 0;
}

/* Inside a txn, etcd's sub-responses carry a header with the revision only
 * (apply.go); the outer one is full. h NULL builds an inner one. */
int api_range_to_pb(const struct api_header *h,
                    const struct mvcc_range_resp *in, struct api_arena *arena,
                    Etcdserverpb__RangeResponse *out)
{
    etcdserverpb__range_response__init(out);
    out->header =
        header_new(arena, h, h != NULL ? h->revision : in->header_rev);
    if (out->header == NULL)
        return CAIRN_ENOMEM;
    int rv = kvs_new(arena, in->kvs, in->n_kvs, &out->kvs);
    if (rv != 0)
        return rv;
    out->n_kvs = in->n_kvs;
    out->more = in->more;
    out->count = in->count;
    return 0;
}

int api_put_to_pb(const struct api_header *h, const struct mvcc_put_resp *in,
                  struct api_arena *arena, Etcdserverpb__PutResponse *out)
{
    etcdserverpb__put_response__init(out);
    out->header =
        header_new(arena, h, h != NULL ? h->revision : in->header_rev);
    if (out->header == NULL)
        return CAIRN_ENOMEM;
    if (in->prev_kv != NULL) {
        out->prev_kv = kv_new(arena, in->prev_kv);
        if (out->prev_kv == NULL)
            return CAIRN_ENOMEM;
    }
    return 0;
}

int api_delete_to_pb(const struct api_header *h,
                     const struct mvcc_delete_resp *in, struct api_arena *arena,
                     Etcdserverpb__DeleteRangeResponse *out)
{
    etcdserverpb__delete_range_response__init(out);
    out->header =
        header_new(arena, h, h != NULL ? h->revision : in->header_rev);
    if (out->header == NULL)
        return CAIRN_ENOMEM;
    out->deleted = in->deleted;
    int rv = kvs_new(arena, in->prev_kvs, in->n_prev_kvs, &out->prev_kvs);
    if (rv != 0)
        return rv;
    out->n_prev_kvs = in->n_prev_kvs;
    return 0;
}

static int txn_to_pb(const struct api_header *h, const struct mvcc_txn_resp *in,
                     struct api_arena *arena, Etcdserverpb__TxnResponse *out,
                     int depth)
{
    if (depth > API__TXN_DEPTH_MAX)
        return CAIRN_ETOOBIG;
    etcdserverpb__txn_response__init(out);
    out->header =
        header_new(arena, h, h != NULL ? h->revision : in->header_rev);
    if (out->header == NULL)
        return CAIRN_ENOMEM;
    out->succeeded = in->succeeded;
    if (in->n_responses == 0)
        return 0;
    Etcdserverpb__ResponseOp **v =
        api_arena_alloc(arena, in->n_responses * sizeof(*v));
    if (v == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < in->n_responses; i++) {
        const struct mvcc_op_resp *r = &in->responses[i];
        Etcdserverpb__ResponseOp *op = api_arena_alloc(arena, sizeof(*op));
        if (op == NULL)
            return CAIRN_ENOMEM;
        etcdserverpb__response_op__init(op);
        int rv;
        switch (r->type) {
        case MVCC_OP_RANGE:
            op->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
            op->response_range =
                api_arena_alloc(arena, sizeof(*op->response_range));
            rv = op->response_range == NULL
                     ? CAIRN_ENOMEM
                     : api_range_to_pb(NULL, &r->u.range, arena,
                                       op->response_range);
            break;
        case MVCC_OP_PUT:
            op->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
            op->response_put =
                api_arena_alloc(arena, sizeof(*op->response_put));
            rv = op->response_put == NULL
                     ? CAIRN_ENOMEM
                     : api_put_to_pb(NULL, &r->u.put, arena, op->response_put);
            break;
        case MVCC_OP_DELETE:
            op->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
            op->response_delete_range =
                api_arena_alloc(arena, sizeof(*op->response_delete_range));
            rv = op->response_delete_range == NULL
                     ? CAIRN_ENOMEM
                     : api_delete_to_pb(NULL, &r->u.del, arena,
                                        op->response_delete_range);
            break;
        case MVCC_OP_TXN:
            op->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
            op->response_txn =
                api_arena_alloc(arena, sizeof(*op->response_txn));
            rv = op->response_txn == NULL
                     ? CAIRN_ENOMEM
                     : txn_to_pb(NULL, r->u.txn, arena, op->response_txn,
                                 depth + 1);
            break;
        default:
            CAIRN_ASSERT(!"unknown mvcc op type");
            rv = CAIRN_EINVAL;
        }
        if (rv != 0)
            return rv;
        v[i] = op;
    }
    out->responses = v;
    out->n_responses = in->n_responses;
    return 0;
}

int api_txn_to_pb(const struct api_header *h, const struct mvcc_txn_resp *in,
                  struct api_arena *arena, Etcdserverpb__TxnResponse *out)
{
    return txn_to_pb(h, in, arena, out, 0);
}

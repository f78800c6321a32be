/* maint: etcd's Maintenance service. */
#include <inttypes.h>
#include <stdio.h>

#include "api/api_int.h"

/* ---- Maintenance.Status: the status, then the alarms ---- */

static void status_alarms_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    const struct node_status *st = &r->status;
    Etcdserverpb__StatusResponse out;
    etcdserverpb__status_response__init(&out);
    out.header = api__header_pb(r, &r->header);
    size_t n_alarms = res->u.alarms.n;
    char **errors = api_arena_alloc(&r->arena, (n_alarms + 1) * sizeof(char *));
    if (out.header == NULL || errors == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    out.version = (char *)API_ETCD_VERSION;
    out.dbsize = (int64_t)st->db_bytes;
    out.dbsizeinuse = (int64_t)st->db_in_use_bytes;
    out.leader = st->leader;
    out.raftindex = st->raft_index;
    out.raftterm = st->raft_term;
    out.raftappliedindex = st->applied_index;
    out.islearner = st->is_learner;
    /* etcd lists "no leader" and each alarm in AlarmMember's text form */
    size_t n = 0;
    if (st->leader == 0)
        errors[n++] = (char *)"etcdserver: no leader";
    for (size_t i = 0; i < n_alarms; i++) {
        const struct node_alarm *a = &res->u.alarms.alarms[i];
        char *text = api_arena_alloc(&r->arena, 96);
        if (text == NULL) {
            api__req_fail(r, CAIRN_ENOMEM);
            return;
        }
        snprintf(text, 96, "memberID:%" PRIu64 " alarm:%s ", a->member_id,
                 a->type == NODE_ALARM_NOSPACE   ? "NOSPACE"
                 : a->type == NODE_ALARM_CORRUPT ? "CORRUPT"
                                                 : "NONE");
        errors[n++] = text;
    }
    out.n_errors = n;
    out.errors = n > 0 ? errors : NULL;
    api__req_reply(r, &out.base);
}

static void status_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    r->status = res->u.status;
    r->header = api_header_of(res);
    r->pending = true;
    api__req_submitted(r, r->api->be.alarm(r->api->be.arg, NODE_ALARM_GET, 0,
                                           NODE_ALARM_NONE, r,
                                           status_alarms_done));
}

void api__maint_status(struct api_req *r, const uint8_t *data, size_t len)
{
    if (!api__unpacks(r, &etcdserverpb__status_request__descriptor, data, len))
        return;
    r->pending = true;
    api__req_submitted(r, r->api->be.status(r->api->be.arg, r, status_done));
}

/* ---- Alarm, Hash, HashKV, Defragment, MoveLeader ---- */

static void alarm_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__AlarmResponse out;
    etcdserverpb__alarm_response__init(&out);
    out.header = api__header_pb(r, &h);
    size_t n = res->u.alarms.n;
    Etcdserverpb__AlarmMember **v =
        n > 0 ? api_arena_alloc(&r->arena, n * sizeof(*v)) : NULL;
    Etcdserverpb__AlarmMember *m =
        n > 0 ? api_arena_alloc(&r->arena, n * sizeof(*m)) : NULL;
    if (out.header == NULL || (n > 0 && (v == NULL || m == NULL))) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        etcdserverpb__alarm_member__init(&m[i]);
        m[i].memberid = res->u.alarms.alarms[i].member_id;
        m[i].alarm = (Etcdserverpb__AlarmType)res->u.alarms.alarms[i].type;
        v[i] = &m[i];
    }
    out.n_alarms = n;
    out.alarms = v;
    api__req_reply(r, &out.base);
}

static void alarm_empty_reply(struct api_req *r, const struct api_header *h)
{
    Etcdserverpb__AlarmResponse out;
    etcdserverpb__alarm_response__init(&out);
    out.header = api__header_pb(r, h);
    if (out.header == NULL)
        api__req_fail(r, CAIRN_ENOMEM);
    else
        api__req_reply(r, &out.base);
}

API__HANDLER(api__maint_alarm)
{
    Etcdserverpb__AlarmRequest *in;
    UNPACK(r, etcdserverpb__alarm_request, data, len, in);
    uint8_t action = (uint8_t)in->action, type = (uint8_t)in->alarm;
    uint64_t member = in->memberid;
    etcdserverpb__alarm_request__free_unpacked(in, NULL);
    if (action > NODE_ALARM_DEACTIVATE) {
        /* etcd's apply does nothing for an action it does not know and
         * answers an empty response */
        api__req_with_header(r, alarm_empty_reply);
        return;
    }
    r->pending = true;
    api__req_submitted(r, r->api->be.alarm(r->api->be.arg, action, member, type,
                                           r, alarm_done));
}

static void hash_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__HashResponse out;
    etcdserverpb__hash_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    out.hash = res->u.hash.hash;
    api__req_reply(r, &out.base);
}

API__HANDLER(api__maint_hash)
{
    if (!api__unpacks(r, &etcdserverpb__hash_request__descriptor, data, len))
        return;
    r->pending = true;
    api__req_submitted(r, r->api->be.hash(r->api->be.arg, r, hash_done));
}

static void hash_kv_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__HashKVResponse out;
    etcdserverpb__hash_kvresponse__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    out.hash = res->u.hash.hash;
    out.compact_revision = res->u.hash.compact_rev;
    api__req_reply(r, &out.base);
}

API__HANDLER(api__maint_hash_kv)
{
    Etcdserverpb__HashKVRequest *in;
    UNPACK(r, etcdserverpb__hash_kvrequest, data, len, in);
    mvcc_rev rev = in->revision;
    etcdserverpb__hash_kvrequest__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(
        r, r->api->be.hash_kv(r->api->be.arg, rev, r, hash_kv_done));
}

static void header_only_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    /* DefragmentResponse and MoveLeaderResponse are a header (field 1)
     * and nothing else: one message gives both their bytes */
    Etcdserverpb__DefragmentResponse out;
    etcdserverpb__defragment_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    api__req_reply(r, &out.base);
}

API__HANDLER(api__maint_defragment)
{
    if (!api__unpacks(r, &etcdserverpb__defragment_request__descriptor, data,
                      len))
        return;
    r->pending = true;
    api__req_submitted(
        r, r->api->be.defragment(r->api->be.arg, r, header_only_done));
}

API__HANDLER(api__maint_move_leader)
{
    Etcdserverpb__MoveLeaderRequest *in;
    UNPACK(r, etcdserverpb__move_leader_request, data, len, in);
    uint64_t target = in->targetid;
    etcdserverpb__move_leader_request__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(
        r, r->api->be.move_leader(r->api->be.arg, target, r, header_only_done));
}

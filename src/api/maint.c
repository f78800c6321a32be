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

/* methods: the table of etcd 3.4 methods the client calls, and etcd's error
 * texts mapped back to cairn codes (rpctypes/error.go's texts). */
#include <string.h>

#include "client/client_int.h"

#define D(x) (&etcdserverpb__##x##__descriptor)

static const struct client__method methods[CLIENT_METHOD_COUNT] = {
    [CLIENT_KV_RANGE] = {"/etcdserverpb.KV/Range", D(range_request),
                         D(range_response), false, true},
    [CLIENT_KV_PUT] = {"/etcdserverpb.KV/Put", D(put_request), D(put_response),
                       false, false},
    [CLIENT_KV_DELETE_RANGE] = {"/etcdserverpb.KV/DeleteRange",
                                D(delete_range_request),
                                D(delete_range_response), false, false},
    [CLIENT_KV_TXN] = {"/etcdserverpb.KV/Txn", D(txn_request), D(txn_response),
                       false, false},
    [CLIENT_KV_COMPACT] = {"/etcdserverpb.KV/Compact", D(compaction_request),
                           D(compaction_response), false, false},
    [CLIENT_LEASE_GRANT] = {"/etcdserverpb.Lease/LeaseGrant",
                            D(lease_grant_request), D(lease_grant_response),
                            false, false},
    [CLIENT_LEASE_REVOKE] = {"/etcdserverpb.Lease/LeaseRevoke",
                             D(lease_revoke_request), D(lease_revoke_response),
                             false, false},
    [CLIENT_LEASE_TIME_TO_LIVE] = {"/etcdserverpb.Lease/LeaseTimeToLive",
                                   D(lease_time_to_live_request),
                                   D(lease_time_to_live_response), false, true},
    [CLIENT_LEASE_LEASES] = {"/etcdserverpb.Lease/LeaseLeases",
                             D(lease_leases_request), D(lease_leases_response),
                             false, true},
    [CLIENT_CLUSTER_MEMBER_LIST] = {"/etcdserverpb.Cluster/MemberList",
                                    D(member_list_request),
                                    D(member_list_response), false, true},
    [CLIENT_CLUSTER_MEMBER_ADD] = {"/etcdserverpb.Cluster/MemberAdd",
                                   D(member_add_request),
                                   D(member_add_response), false, false},
    [CLIENT_CLUSTER_MEMBER_REMOVE] = {"/etcdserverpb.Cluster/MemberRemove",
                                      D(member_remove_request),
                                      D(member_remove_response), false, false},
    [CLIENT_CLUSTER_MEMBER_UPDATE] = {"/etcdserverpb.Cluster/MemberUpdate",
                                      D(member_update_request),
                                      D(member_update_response), false, false},
    [CLIENT_CLUSTER_MEMBER_PROMOTE] = {"/etcdserverpb.Cluster/MemberPromote",
                                       D(member_promote_request),
                                       D(member_promote_response), false,
                                       false},
    [CLIENT_MAINT_STATUS] = {"/etcdserverpb.Maintenance/Status",
                             D(status_request), D(status_response), false,
                             true},
    [CLIENT_MAINT_HASH_KV] = {"/etcdserverpb.Maintenance/HashKV",
                              D(hash_kvrequest), D(hash_kvresponse), false,
                              true},
    [CLIENT_MAINT_ALARM] = {"/etcdserverpb.Maintenance/Alarm", D(alarm_request),
                            D(alarm_response), false, false},
    [CLIENT_MAINT_DEFRAGMENT] = {"/etcdserverpb.Maintenance/Defragment",
                                 D(defragment_request), D(defragment_response),
                                 false, true},
    [CLIENT_MAINT_MOVE_LEADER] = {"/etcdserverpb.Maintenance/MoveLeader",
                                  D(move_leader_request),
                                  D(move_leader_response), false, false},
    [CLIENT_WATCH] = {"/etcdserverpb.Watch/Watch", D(watch_request),
                      D(watch_response), true, false},
    [CLIENT_LEASE_KEEP_ALIVE] = {"/etcdserverpb.Lease/LeaseKeepAlive",
                                 D(lease_keep_alive_request),
                                 D(lease_keep_alive_response), true, false},
    [CLIENT_MAINT_SNAPSHOT] = {"/etcdserverpb.Maintenance/Snapshot",
                               D(snapshot_request), D(snapshot_response), true,
                               false},
};

const struct client__method *client__method(enum client_method m)
{
    CAIRN_ASSERT((unsigned)m < CLIENT_METHOD_COUNT);
    return &methods[m];
}

const char *client_method_path(enum client_method m)
{
    return client__method(m)->path;
}

/* etcd's texts for the errors a caller may want to tell apart. */
static const struct {
    const char *text;
    int code;
} texts[] = {
    {"etcdserver: key is not provided", CAIRN_EEMPTYKEY},
    {"etcdserver: key not found", CAIRN_EKEYNOTFOUND},
    {"etcdserver: value is provided", CAIRN_EVALUEPROVIDED},
    {"etcdserver: lease is provided", CAIRN_ELEASEPROVIDED},
    {"etcdserver: too many operations in txn request", CAIRN_ETOOMANYOPS},
    {"etcdserver: duplicate key given in txn request", CAIRN_EDUPLICATEKEY},
    {"etcdserver: mvcc: required revision has been compacted",
     CAIRN_EREVCOMPACTED},
    {"etcdserver: mvcc: required revision is a future revision",
     CAIRN_EFUTUREREV},
    {"etcdserver: mvcc: database space exceeded", CAIRN_EQUOTA},
    {"etcdserver: requested lease not found", CAIRN_ELEASENOTFOUND},
    {"etcdserver: lease already exists", CAIRN_ELEASEEXISTS},
    {"etcdserver: too large lease TTL", CAIRN_ELEASETTLTOOLARGE},
    {"etcdserver: watch canceled", CAIRN_EWATCHCANCELED},
    {"etcdserver: member ID already exist", CAIRN_EMEMBEREXISTS},
    {"etcdserver: Peer URLs already exists", CAIRN_EPEERURLEXISTS},
    {"etcdserver: member not found", CAIRN_EMEMBERNOTFOUND},
    {"etcdserver: can only promote a learner member", CAIRN_EMEMBERNOTLEARNER},
    {"etcdserver: can only promote a learner member which is in sync with "
     "leader",
     CAIRN_ELEARNERNOTREADY},
    {"etcdserver: request is too large", CAIRN_ETOOBIG},
    {"etcdserver: too many requests", CAIRN_ETOOMANYREQUESTS},
    {"etcdserver: not leader", CAIRN_ENOTLEADER},
    {"etcdserver: no leader", CAIRN_ENOLEADER},
    {"etcdserver: leader changed", CAIRN_ELEADERCHANGED},
    {"etcdserver: server stopped", CAIRN_ESTOPPED},
    {"etcdserver: unhealthy cluster", CAIRN_EUNHEALTHYCLUSTER},
};

int client__err_from_text(const char *text)
{
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (strcmp(text, texts[i].text) == 0)
            return texts[i].code;
    return 0;
}

bool client__is_leader_error(int grpc_code, const char *text)
{
    (void)grpc_code;
    int c = client__err_from_text(text);
    return c == CAIRN_ENOTLEADER || c == CAIRN_ENOLEADER ||
           c == CAIRN_ELEADERCHANGED;
}

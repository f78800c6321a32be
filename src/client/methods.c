/* methods: the table of etcd 3.4 methods the client calls, and etcd's error
 * texts mapped back to cairn codes (rpctypes/error.go's texts). */
#include <string.h>

#include "client/client_int.h"

#define D(x) (&etcdserverpb__##x##__descriptor)
#define L(x) (&v3lockpb__##x##__descriptor)
#define E(x) (&v3electionpb__##x##__descriptor)
/* Auth/<Name> with etcd's Auth<Name>Request and Auth<Name>Response */
#define AUTH(m, name, x, idem)                                       \
    [CLIENT_AUTH_##m] = {"/etcdserverpb.Auth/" name, D(x##_request), \
                         D(x##_response), false, idem}

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
    [CLIENT_LOCK_LOCK] = {"/v3lockpb.Lock/Lock", L(lock_request),
                          L(lock_response), false, false, true},
    [CLIENT_LOCK_UNLOCK] = {"/v3lockpb.Lock/Unlock", L(unlock_request),
                            L(unlock_response), false, false},
    [CLIENT_ELECTION_CAMPAIGN] = {"/v3electionpb.Election/Campaign",
                                  E(campaign_request), E(campaign_response),
                                  false, false, true},
    [CLIENT_ELECTION_PROCLAIM] = {"/v3electionpb.Election/Proclaim",
                                  E(proclaim_request), E(proclaim_response),
                                  false, false},
    [CLIENT_ELECTION_LEADER] = {"/v3electionpb.Election/Leader",
                                E(leader_request), E(leader_response), false,
                                true},
    [CLIENT_ELECTION_RESIGN] = {"/v3electionpb.Election/Resign",
                                E(resign_request), E(resign_response), false,
                                false},
    [CLIENT_ELECTION_OBSERVE] = {"/v3electionpb.Election/Observe",
                                 E(leader_request), E(leader_response), true,
                                 false},
    AUTH(ENABLE, "AuthEnable", auth_enable, false),
    AUTH(DISABLE, "AuthDisable", auth_disable, false),
    AUTH(AUTHENTICATE, "Authenticate", authenticate, true),
    AUTH(USER_ADD, "UserAdd", auth_user_add, false),
    AUTH(USER_GET, "UserGet", auth_user_get, true),
    AUTH(USER_LIST, "UserList", auth_user_list, true),
    AUTH(USER_DELETE, "UserDelete", auth_user_delete, false),
    AUTH(USER_CHANGE_PASSWORD, "UserChangePassword", auth_user_change_password,
         false),
    AUTH(USER_GRANT_ROLE, "UserGrantRole", auth_user_grant_role, false),
    AUTH(USER_REVOKE_ROLE, "UserRevokeRole", auth_user_revoke_role, false),
    AUTH(ROLE_ADD, "RoleAdd", auth_role_add, false),
    AUTH(ROLE_GET, "RoleGet", auth_role_get, true),
    AUTH(ROLE_LIST, "RoleList", auth_role_list, true),
    AUTH(ROLE_DELETE, "RoleDelete", auth_role_delete, false),
    AUTH(ROLE_GRANT_PERMISSION, "RoleGrantPermission",
         auth_role_grant_permission, false),
    AUTH(ROLE_REVOKE_PERMISSION, "RoleRevokePermission",
         auth_role_revoke_permission, false),
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
    {"etcdserver: re-configuration failed due to not enough started members",
     CAIRN_ENOTENOUGHSTARTED},
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

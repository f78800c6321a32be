/* errors: the one table mapping cairn's error codes to the gRPC codes and
 * texts etcd 3.4 answers with (etcdserver/api/v3rpc/rpctypes/error.go,
 * v3rpc/util.go's toGRPCErrorMap); clients match on the text. */
#include <string.h>

#include "api/api_int.h"

/* X(cairn code name, gRPC code, etcd's text) */
#define API_ERROR_TABLE(X)                                                   \
    X(EMPTYKEY, RPC_INVALID_ARGUMENT, "etcdserver: key is not provided")     \
    X(KEYNOTFOUND, RPC_INVALID_ARGUMENT, "etcdserver: key not found")        \
    X(VALUEPROVIDED, RPC_INVALID_ARGUMENT, "etcdserver: value is provided")  \
    X(LEASEPROVIDED, RPC_INVALID_ARGUMENT, "etcdserver: lease is provided")  \
    X(TOOMANYOPS, RPC_INVALID_ARGUMENT,                                      \
      "etcdserver: too many operations in txn request")                      \
    X(DUPLICATEKEY, RPC_INVALID_ARGUMENT,                                    \
      "etcdserver: duplicate key given in txn request")                      \
    X(REVCOMPACTED, RPC_OUT_OF_RANGE,                                        \
      "etcdserver: mvcc: required revision has been compacted")              \
    X(FUTUREREV, RPC_OUT_OF_RANGE,                                           \
      "etcdserver: mvcc: required revision is a future revision")            \
    X(QUOTA, RPC_RESOURCE_EXHAUSTED,                                         \
      "etcdserver: mvcc: database space exceeded")                           \
    X(LEASENOTFOUND, RPC_NOT_FOUND, "etcdserver: requested lease not found") \
    X(LEASEEXISTS, RPC_FAILED_PRECONDITION,                                  \
      "etcdserver: lease already exists")                                    \
    X(LEASETTLTOOLARGE, RPC_OUT_OF_RANGE, "etcdserver: too large lease TTL") \
    X(WATCHCANCELED, RPC_CANCELLED, "etcdserver: watch canceled")            \
    X(TOOBIG, RPC_INVALID_ARGUMENT, "etcdserver: request is too large")      \
    X(TOOMANYREQUESTS, RPC_RESOURCE_EXHAUSTED,                               \
      "etcdserver: too many requests")                                       \
    X(NOLEADER, RPC_UNAVAILABLE, "etcdserver: no leader")                    \
    X(NOTLEADER, RPC_FAILED_PRECONDITION, "etcdserver: not leader")          \
    X(STEPPEDDOWN, RPC_UNAVAILABLE, "etcdserver: leader changed")            \
    X(TRANSFERRING, RPC_UNAVAILABLE, "etcdserver: leader changed")           \
    X(SHUTDOWN, RPC_UNAVAILABLE, "etcdserver: server stopped")               \
    X(TIMEOUT, RPC_UNAVAILABLE, "etcdserver: request timed out")             \
    X(CONFCHANGEPENDING, RPC_UNAVAILABLE, "etcdserver: unhealthy cluster")   \
    X(CORRUPT, RPC_DATA_LOSS, "etcdserver: corrupt cluster")                 \
    X(REMOVED, RPC_NOT_FOUND, "etcdserver: member not found")                \
    X(LEADERCHANGED, RPC_UNAVAILABLE, "etcdserver: leader changed")          \
    X(STOPPED, RPC_UNAVAILABLE, "etcdserver: server stopped")                \
    X(UNHEALTHYCLUSTER, RPC_UNAVAILABLE, "etcdserver: unhealthy cluster")    \
    X(NOTENOUGHSTARTED, RPC_FAILED_PRECONDITION,                             \
      "etcdserver: re-configuration failed due to not enough started "       \
      "members")                                                             \
    X(MEMBERNOTFOUND, RPC_NOT_FOUND, "etcdserver: member not found")         \
    X(MEMBEREXISTS, RPC_FAILED_PRECONDITION,                                 \
      "etcdserver: member ID already exist")                                 \
    X(PEERURLEXISTS, RPC_FAILED_PRECONDITION,                                \
      "etcdserver: Peer URLs already exists")                                \
    X(MEMBERNOTLEARNER, RPC_FAILED_PRECONDITION,                             \
      "etcdserver: can only promote a learner member")                       \
    X(LEARNERNOTREADY, RPC_FAILED_PRECONDITION,                              \
      "etcdserver: can only promote a learner member which is in sync with " \
      "leader")                                                              \
    X(TOOMANYLEARNERS, RPC_FAILED_PRECONDITION,                              \
      "etcdserver: too many learner members in cluster")                     \
    X(BADLEADERTRANSFEREE, RPC_FAILED_PRECONDITION,                          \
      "etcdserver: bad leader transferee")                                   \
    X(CANCELED, RPC_CANCELLED, "context canceled")                           \
    X(DEADLINE, RPC_DEADLINE_EXCEEDED, "context deadline exceeded")          \
    X(UNIMPLEMENTED, RPC_UNIMPLEMENTED, "etcdserver: unknown method")        \
    X(USEREMPTY, RPC_INVALID_ARGUMENT, "etcdserver: user name is empty")     \
    X(USEREXISTS, RPC_FAILED_PRECONDITION,                                   \
      "etcdserver: user name already exists")                                \
    X(USERNOTFOUND, RPC_FAILED_PRECONDITION,                                 \
      "etcdserver: user name not found")                                     \
    X(ROLEEMPTY, RPC_INVALID_ARGUMENT, "etcdserver: role name is empty")     \
    X(ROLEEXISTS, RPC_FAILED_PRECONDITION,                                   \
      "etcdserver: role name already exists")                                \
    X(ROLENOTFOUND, RPC_FAILED_PRECONDITION,                                 \
      "etcdserver: role name not found")                                     \
    X(ROLENOTGRANTED, RPC_FAILED_PRECONDITION,                               \
      "etcdserver: role is not granted to the user")                         \
    X(PERMNOTGRANTED, RPC_FAILED_PRECONDITION,                               \
      "etcdserver: permission is not granted to the role")                   \
    X(ROOTUSERNOTEXIST, RPC_FAILED_PRECONDITION,                             \
      "etcdserver: root user does not exist")                                \
    X(ROOTROLENOTEXIST, RPC_FAILED_PRECONDITION,                             \
      "etcdserver: root user does not have root role")                       \
    X(AUTHNOTENABLED, RPC_FAILED_PRECONDITION,                               \
      "etcdserver: authentication is not enabled")                           \
    X(AUTHFAILED, RPC_INVALID_ARGUMENT,                                      \
      "etcdserver: authentication failed, invalid user ID or password")      \
    X(PERMDENIED, RPC_PERMISSION_DENIED, "etcdserver: permission denied")    \
    X(INVALIDAUTHMGMT, RPC_INVALID_ARGUMENT,                                 \
      "etcdserver: invalid auth management")                                 \
    /* a request that does not unmarshal: grpc-go's answer (server.go) */    \
    X(MALFORMED, RPC_INTERNAL,                                               \
      "grpc: error unmarshalling request: unexpected EOF")

struct api_status api_status_from_err(int err)
{
    switch (err) {
    case 0:
        return (struct api_status){RPC_OK, ""};
#define API__ROW(name, code, text) \
    case CAIRN_E##name:            \
        return (struct api_status){code, text};
        /* Rows may share etcd's answer: several of our codes are one of
         * etcd's errors. */
        API_ERROR_TABLE(API__ROW) // NOLINT(bugprone-branch-clone)
#undef API__ROW
    default:
        /* as togRPCError: an error etcd has no row for goes out as
         * UNKNOWN with its own text */
        return (struct api_status){RPC_UNKNOWN, cairn_strerror(err)};
    }
}

int api_err_from_status(int code, const char *message)
{
#define API__ROW(name, c, text)                                       \
    if (code == (c) && message != NULL && strcmp(message, text) == 0) \
        return CAIRN_E##name;
    API_ERROR_TABLE(API__ROW)
#undef API__ROW
    return CAIRN_ENOTLEADER;
}

struct api_status api__status_etcd(enum api__etcd_err e)
{
    switch (e) {
#define API__ROW(name, code, text) \
    case API__E_##name:            \
        return (struct api_status){code, text};
        API__ETCD_ONLY_ERRORS(API__ROW)
#undef API__ROW
    }
    CAIRN_ASSERT(!"unknown etcd error");
    return (struct api_status){RPC_UNKNOWN, "unknown"};
}

/* Error codes: the one table of every code cairn's modules return, with names
 * and texts.
 *
 * Convention (all modules):
 *  - A function that can fail returns int: 0 on success or a negative
 *    CAIRN_E* code from the table below. Nothing else is returned as an error.
 *  - Operating errors (I/O, bad input, resource limits, protocol refusals) are
 *    returned; programmer errors (a broken invariant, a misuse of an API) are
 *    CAIRN_ASSERT failures that abort. Cheap invariant checks stay on in
 *    release builds.
 *  - Where a caller needs more than the code, the callee fills a struct
 *    cairn_errmsg, and each layer prefixes what it was doing:
 *      "wal: open segment 0000000000000001-0000000000000001.wal: No space left
 * on device"
 *  - Only api/ maps these codes to gRPC codes and etcd's error texts.
 *  - New codes are added here, in the group of their module, never elsewhere.
 */
#ifndef CAIRN_UTIL_ERR_H
#define CAIRN_UTIL_ERR_H

#include <stddef.h>

/* X(NAME, text). Codes are numbered from -1 downwards in table order. */
#define CAIRN_ERRORS(X)                                                 \
    /* general */                                                       \
    X(NOMEM, "out of memory")                                           \
    X(INVAL, "invalid argument")                                        \
    X(IO, "input/output error")                                         \
    X(NOSPC, "no space left on device")                                 \
    X(CORRUPT, "data is corrupt")                                       \
    X(NOTFOUND, "not found")                                            \
    X(EXISTS, "already exists")                                         \
    X(BUSY, "resource busy")                                            \
    X(AGAIN, "try again")                                               \
    X(TOOBIG, "too large")                                              \
    X(RANGE, "value out of range")                                      \
    X(SHUTDOWN, "shutting down")                                        \
    X(TIMEOUT, "timed out")                                             \
    X(CANCELED, "canceled")                                             \
    X(UNSUPPORTED, "not supported")                                     \
    X(MALFORMED, "malformed input")                                     \
    X(FULL, "queue is full")                                            \
    X(SYNC, "fdatasync failed; data may be lost")                       \
    /* raft */                                                          \
    X(NOTLEADER, "not the leader")                                      \
    X(NOLEADER, "no leader")                                            \
    X(PROPOSALDROPPED, "proposal dropped")                              \
    X(TRANSFERRING, "leadership transfer in progress")                  \
    X(CONFCHANGEPENDING, "a configuration change is pending")           \
    X(COMPACTED, "requested index is compacted")                        \
    X(UNAVAILABLE, "requested entry is unavailable")                    \
    X(SNAPOUTOFDATE, "snapshot is older than the existing one")         \
    X(STEPPEDDOWN, "leader stepped down")                               \
    X(REMOVED, "member has been removed")                               \
    /* wal and snapshots */                                             \
    X(WALTORN, "torn record at the tail of the log")                    \
    X(WALGAP, "log has a gap")                                          \
    X(NOSNAP, "no usable snapshot")                                     \
    /* mvcc and lease */                                                \
    X(REVCOMPACTED, "required revision has been compacted")             \
    X(FUTUREREV, "required revision is a future revision")              \
    X(KEYNOTFOUND, "key not found")                                     \
    X(DUPLICATEKEY, "duplicate key given in txn request")               \
    X(LEASENOTFOUND, "requested lease not found")                       \
    X(LEASEEXISTS, "lease already exists")                              \
    X(LEASETTLTOOLARGE, "too large lease TTL")                          \
    X(WATCHCANCELED, "watch canceled")                                  \
    X(QUOTA, "database space exceeded")                                 \
    X(EMPTYKEY, "key is not provided")                                  \
    X(VALUEPROVIDED, "value is provided")                               \
    X(LEASEPROVIDED, "lease is provided")                               \
    X(TOOMANYOPS, "too many operations in txn request")                 \
    /* rpc and api */                                                   \
    X(PROTOCOL, "protocol error")                                       \
    X(UNIMPLEMENTED, "method not implemented")                          \
    X(DEADLINE, "deadline exceeded")                                    \
    X(TOOMANYREQUESTS, "too many requests")                             \
    /* node */                                                          \
    X(LEADERCHANGED, "leader changed")                                  \
    X(STOPPED, "server stopped")                                        \
    X(UNHEALTHYCLUSTER, "unhealthy cluster")                            \
    X(NOTENOUGHSTARTED,                                                 \
      "re-configuration failed due to not enough started members")      \
    X(MEMBERNOTFOUND, "member not found")                               \
    X(MEMBEREXISTS, "member ID already exist")                          \
    X(PEERURLEXISTS, "Peer URLs already exists")                        \
    X(MEMBERNOTLEARNER, "can only promote a learner member")            \
    X(LEARNERNOTREADY,                                                  \
      "can only promote a learner member which is in sync with leader") \
    X(TOOMANYLEARNERS, "too many learner members in cluster")           \
    X(BADLEADERTRANSFEREE, "bad leader transferee")                     \
    /* client */                                                        \
    X(NOENDPOINT, "no endpoint answered")                               \
    X(RPCSTATUS, "call failed with a gRPC status")                      \
    /* net */                                                           \
    X(TLS, "TLS handshake failed")                                      \
    /* auth */                                                          \
    X(USEREMPTY, "user name is empty")                                  \
    X(USEREXISTS, "user name already exists")                           \
    X(USERNOTFOUND, "user name not found")                              \
    X(ROLEEMPTY, "role name is empty")                                  \
    X(ROLEEXISTS, "role name already exists")                           \
    X(ROLENOTFOUND, "role name not found")                              \
    X(ROLENOTGRANTED, "role is not granted to the user")                \
    X(PERMNOTGRANTED, "permission is not granted to the role")          \
    X(ROOTUSERNOTEXIST, "root user does not exist")                     \
    X(ROOTROLENOTEXIST, "root user does not have root role")            \
    X(AUTHNOTENABLED, "authentication is not enabled")                  \
    X(AUTHFAILED, "authentication failed, invalid user ID or password") \
    X(PERMDENIED, "permission denied")                                  \
    X(INVALIDAUTHMGMT, "invalid auth management")

/* Codes are negative: CAIRN_ENOMEM == -1, CAIRN_EINVAL == -2, ... in table
 * order. CAIRN__ERR_COUNT - 1 is how many codes there are. */
enum cairn__err_position {
    CAIRN__POS_OK = 0,
#define CAIRN__ERR_POS(name, text) CAIRN__POS_##name,
    CAIRN_ERRORS(CAIRN__ERR_POS)
#undef CAIRN__ERR_POS
        CAIRN__ERR_COUNT
};

enum cairn_err {
    CAIRN_OK = 0,
#define CAIRN__ERR_NEG(name, text) CAIRN_E##name = -CAIRN__POS_##name,
    CAIRN_ERRORS(CAIRN__ERR_NEG)
#undef CAIRN__ERR_NEG
};

/* The text for a code: "out of memory". Unknown codes give "unknown error". */
const char *cairn_strerror(int code);
/* The name of a code without prefix: "NOMEM"; "OK" for 0. */
const char *cairn_errname(int code);
/* The cairn code for an errno value (ENOSPC -> CAIRN_ENOSPC, otherwise
 * CAIRN_EIO, ENOMEM -> CAIRN_ENOMEM, EINVAL -> CAIRN_EINVAL...). */
int cairn_err_from_errno(int errnum);

/* A message that each layer prefixes with what it was doing. Always
 * NUL-terminated; text that does not fit is cut, never overflowed. */
#define CAIRN_ERRMSG_SIZE 512
struct cairn_errmsg {
    char text[CAIRN_ERRMSG_SIZE];
};

/* Replace the message with a formatted one. */
void cairn_errmsg_setf(struct cairn_errmsg *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the message: "<formatted>: <previous>". An empty previous message
 * leaves just the prefix. */
void cairn_errmsg_prefixf(struct cairn_errmsg *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Set the message to "<formatted>: <text of code>" and return code, so that
 * `return cairn_errmsg_code(m, rv, "open %s", path);` reads naturally. */
int cairn_errmsg_code(struct cairn_errmsg *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/* client: the C client library for the etcd v3 gRPC API (cairn or etcd
 * itself), over rpc/: a client over several endpoints with failover and
 * leader discovery, unary calls of the KV, Lease, Cluster, Maintenance,
 * Auth, Lock and Election services, Watch, LeaseKeepAlive and Observe
 * streams, and Maintenance/Snapshot saved to a file.
 *
 * Messages are protobuf-c's etcd types from proto/proto.h: a request is
 * given as the matching Etcdserverpb__*Request (borrowed, packed before the
 * call returns) and the answer comes back unpacked as the matching
 * Etcdserverpb__*Response.
 *
 * Two ways to use it:
 *  - asynchronous, on the caller's libuv loop (client_init with a loop):
 *    client_call starts a call and its callback runs on that loop later;
 *    this is what load generators use, many calls in flight at once.
 *    Callbacks run from a zero-delay timer of the client's; a caller that
 *    drives its loop with UV_RUN_ONCE until a callback has run should
 *    uv_stop the loop in that callback, or the run may wait in poll.
 *  - blocking (client_init with loop NULL): the client runs a private loop
 *    inside each client_*_sync function until the answer is there.
 *    Streams on a blocking client are driven by client_poll.
 *
 * Failover (as etcd's clientv3 balancer, simplified): the client holds one
 * HTTP/2 connection at a time, to its current endpoint. A connection that
 * fails, dies or says GOAWAY, and a call answered "etcdserver: not leader",
 * "etcdserver: no leader" or "etcdserver: leader changed", move the client
 * to the next endpoint and the call is tried again there, at most
 * CLIENT_RETRIES_PER_ENDPOINT times per endpoint. A call that was sent and
 * then lost with its connection is retried only when the method is
 * read-only (Range, Status, ...): a Put or Txn may have been applied, so
 * the caller gets CAIRN_ENOENDPOINT and decides. client_leader_sync asks
 * every endpoint's Maintenance/Status and moves to the leader.
 *
 * Threading: every function is called on the loop's thread (blocking
 * clients: the caller's thread); nothing here is thread-safe. One client
 * per thread for parallel blocking use.
 *
 * Ownership: struct client, struct client_stream are handles allocated
 * here. Response messages passed to callbacks are owned by the callback's
 * receiver (free them with client_msg_free) unless said otherwise. */
#ifndef CAIRN_CLIENT_CLIENT_H
#define CAIRN_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/proto.h"
#include "util/util.h"

/* The methods the client knows: etcd 3.4's KV, Lease, Cluster,
 * Maintenance, Auth, Lock and Election services. The request and response
 * types are those of the method's name ("CLIENT_KV_RANGE":
 * Etcdserverpb__RangeRequest and Etcdserverpb__RangeResponse;
 * "CLIENT_LOCK_LOCK": V3lockpb__LockRequest and V3lockpb__LockResponse). */
enum client_method {
    CLIENT_KV_RANGE,
    CLIENT_KV_PUT,
    CLIENT_KV_DELETE_RANGE,
    CLIENT_KV_TXN,
    CLIENT_KV_COMPACT,
    CLIENT_LEASE_GRANT,
    CLIENT_LEASE_REVOKE,
    CLIENT_LEASE_TIME_TO_LIVE,
    CLIENT_LEASE_LEASES,
    CLIENT_CLUSTER_MEMBER_LIST,
    CLIENT_CLUSTER_MEMBER_ADD,
    CLIENT_CLUSTER_MEMBER_REMOVE,
    CLIENT_CLUSTER_MEMBER_UPDATE,
    CLIENT_CLUSTER_MEMBER_PROMOTE,
    CLIENT_MAINT_STATUS,
    CLIENT_MAINT_HASH_KV,
    CLIENT_MAINT_ALARM,
    CLIENT_MAINT_DEFRAGMENT,
    CLIENT_MAINT_MOVE_LEADER,
    /* streams (client_stream_open only) */
    CLIENT_WATCH,            /* WatchRequest / WatchResponse */
    CLIENT_LEASE_KEEP_ALIVE, /* LeaseKeepAliveRequest / ...Response */
    CLIENT_MAINT_SNAPSHOT,   /* SnapshotRequest / SnapshotResponse */
    /* v3lockpb.Lock: V3lockpb__LockRequest / V3lockpb__LockResponse, ...
     * Lock answers once the lock is held: it has no deadline. */
    CLIENT_LOCK_LOCK,
    CLIENT_LOCK_UNLOCK,
    /* v3electionpb.Election: V3electionpb__CampaignRequest / ...Response;
     * Leader and Observe take a LeaderRequest and answer LeaderResponse.
     * Campaign answers once elected: it has no deadline. */
    CLIENT_ELECTION_CAMPAIGN,
    CLIENT_ELECTION_PROCLAIM,
    CLIENT_ELECTION_LEADER,
    CLIENT_ELECTION_RESIGN,
    CLIENT_ELECTION_OBSERVE, /* stream: LeaderRequest / LeaderResponse */
    /* etcdserverpb.Auth (AuthEnableRequest / AuthEnableResponse, ...) */
    CLIENT_AUTH_ENABLE,
    CLIENT_AUTH_DISABLE,
    CLIENT_AUTH_AUTHENTICATE,
    CLIENT_AUTH_USER_ADD,
    CLIENT_AUTH_USER_GET,
    CLIENT_AUTH_USER_LIST,
    CLIENT_AUTH_USER_DELETE,
    CLIENT_AUTH_USER_CHANGE_PASSWORD,
    CLIENT_AUTH_USER_GRANT_ROLE,
    CLIENT_AUTH_USER_REVOKE_ROLE,
    CLIENT_AUTH_ROLE_ADD,
    CLIENT_AUTH_ROLE_GET,
    CLIENT_AUTH_ROLE_LIST,
    CLIENT_AUTH_ROLE_DELETE,
    CLIENT_AUTH_ROLE_GRANT_PERMISSION,
    CLIENT_AUTH_ROLE_REVOKE_PERMISSION,
    CLIENT_METHOD_COUNT
};

/* "/etcdserverpb.KV/Range" and the like. */
const char *client_method_path(enum client_method m);

#define CLIENT_ENDPOINTS_MAX 16
#define CLIENT_RETRIES_PER_ENDPOINT 2

struct net_tls; /* net/net.h */

struct client_config {
    /* Endpoints as etcd takes them ("http://127.0.0.1:2379",
     * "unix://path"); borrowed during client_init only. At least one. */
    const char *const *endpoints;
    size_t n_endpoints;
    /* Deadline of each unary call, sent as grpc-timeout. 0: 10 s;
     * negative: none. */
    int64_t timeout_ms;
    /* Calls waiting for a connection at once; more fail with CAIRN_EFULL.
     * 0: 65536. */
    size_t max_pending;
    /* Start at this endpoint (index into endpoints); as --target-leader. */
    size_t first_endpoint;
    struct cairn_log *log; /* may be NULL */
    /* TLS context for https/unixs endpoints (net_tls_open with etcdctl's
     * --cacert/--cert/--key as trusted_ca_file/cert_file/key_file); NULL
     * refuses them. Borrowed: must outlive the client. */
    struct net_tls *tls;
};

struct client;

/* Creates a client. loop NULL: a blocking client with a private loop.
 * Nothing is connected until the first call. Returns 0, CAIRN_EINVAL (no
 * endpoint, too many, or one that does not parse; reason in msg, which may
 * be NULL), CAIRN_ENOMEM. */
int client_init(struct client **out, uv_loop_t *loop,
                const struct client_config *config, struct cairn_errmsg *msg);
/* Ends every call and stream (their callbacks run with CAIRN_ECANCELED) and
 * closes the connection. An asynchronous client's memory is released by
 * its loop once the connection has closed; a blocking client returns when
 * everything is released. cl is invalid afterwards. */
void client_close(struct client *cl);

/* etcd's auth token (from Auth/Authenticate's answer) sent as the "token"
 * header of every call and stream started from now on; NULL or "" stops
 * sending it. Copied. 0, CAIRN_EINVAL (longer than CLIENT_TOKEN_MAX). */
#define CLIENT_TOKEN_MAX 256
int client_token_set(struct client *cl, const char *token);
/* Convenience on a blocking client: Authenticate(name, password) and, when
 * it answers, client_token_set with its token. 0 or the call's error. */
int client_authenticate_sync(struct client *cl, const char *name,
                             const char *password);

/* The endpoint calls go to now (index and text). */
size_t client_endpoint_current(const struct client *cl);
const char *client_endpoint_text(const struct client *cl, size_t i);
size_t client_endpoint_count(const struct client *cl);
/* Makes endpoint i the current one (closing the connection to another). */
void client_endpoint_use(struct client *cl, size_t i);

/* What a call ended with. status: 0, or a cairn code: the etcd error text
 * mapped back (CAIRN_EREVCOMPACTED for "etcdserver: mvcc: required revision
 * has been compacted", ...), CAIRN_ENOENDPOINT (no endpoint answered),
 * CAIRN_EDEADLINE, CAIRN_ECANCELED, CAIRN_EUNIMPLEMENTED (the server does
 * not offer the method), CAIRN_EPROTOCOL (an answer that does
 * not unpack), CAIRN_ERPCSTATUS (another gRPC error: see grpc_code).
 * grpc_code and message are the server's status (message borrowed for the
 * callback, never NULL). */
struct client_status {
    int status;
    int grpc_code;
    const char *message;
};

/* A unary call's end. resp is the unpacked response when status is 0 (owned
 * by the callback: client_msg_free), NULL otherwise. */
typedef void (*client_call_cb)(void *arg, const struct client_status *st,
                               ProtobufCMessage *resp);

/* Starts a unary call: req must be the method's request type (packed now;
 * borrowed only during the call). cb runs later from the loop, exactly once
 * (also on failure to start: never from inside client_call). Returns 0, or
 * CAIRN_EINVAL (a stream method), CAIRN_EFULL, CAIRN_ENOMEM,
 * CAIRN_ESHUTDOWN (client closing) without calling cb. */
int client_call(struct client *cl, enum client_method m,
                const ProtobufCMessage *req, void *arg, client_call_cb cb);
/* Blocking client only: the same call, waiting for its end. On 0, *resp
 * (owned by the caller) holds the answer; otherwise *resp is NULL and st
 * (may be NULL) tells more; st->message then points into the client and
 * is valid until the next call on it. */
int client_call_sync(struct client *cl, enum client_method m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp,
                     struct client_status *st);
/* Frees a response message (NULL is fine). */
void client_msg_free(ProtobufCMessage *msg);

/* Convenience on a blocking client: put, get one key (*resp owned by the
 * caller), delete a key. */
int client_put_sync(struct client *cl, const void *key, size_t key_len,
                    const void *val, size_t val_len, int64_t lease,
                    int64_t *revision);
int client_get_sync(struct client *cl, const void *key, size_t key_len,
                    Etcdserverpb__RangeResponse **resp);
int client_delete_sync(struct client *cl, const void *key, size_t key_len,
                       int64_t *deleted);
/* Asks each endpoint's Maintenance/Status which member leads and makes the
 * leader's endpoint the current one. Returns 0 and its index in *index
 * (may be NULL), CAIRN_ENOLEADER when no endpoint named itself the leader,
 * or the last call's error when none answered. */
int client_leader_sync(struct client *cl, size_t *index);
/* Streams Maintenance/Snapshot into path (written to path + ".part",
 * fdatasync'd and renamed). Returns 0 and the bytes written in *size (may
 * be NULL), a call's error, or CAIRN_EIO with the reason in msg. */
int client_snapshot_sync(struct client *cl, const char *path, uint64_t *size,
                         struct cairn_errmsg *msg);

/* ---- streams (Watch, LeaseKeepAlive, Snapshot) ---- */

struct client_stream;

struct client_stream_cbs {
    /* One message of the method's response type, borrowed for the
     * callback. May be NULL. */
    void (*message)(void *arg, struct client_stream *s,
                    const ProtobufCMessage *resp);
    /* The stream ended (server's status, connection loss, cancel, client
     * close); s is freed when this returns. Streams are not re-opened on
     * another endpoint by the client: the caller re-opens (and re-creates
     * its watches from the last revision it saw), as it alone knows
     * what it needs. Required. */
    void (*done)(void *arg, struct client_stream *s,
                 const struct client_status *st);
};

/* Opens a stream of method m on the current endpoint (connecting first if
 * needed). cbs is borrowed and must outlive the stream. Sends may be made
 * at once (they are held until the stream is open). Returns 0, CAIRN_EINVAL
 * (a unary method), CAIRN_ENOMEM, CAIRN_ESHUTDOWN, CAIRN_EFULL. */
int client_stream_open(struct client *cl, enum client_method m,
                       const struct client_stream_cbs *cbs, void *arg,
                       struct client_stream **out);
/* Sends one request of the method's type (packed now). Returns 0,
 * CAIRN_EFULL (the stream's send queue is full, or the messages held
 * before the stream opened reached their bound), CAIRN_ESHUTDOWN (ended),
 * CAIRN_ENOMEM. */
int client_stream_send(struct client_stream *s, const ProtobufCMessage *req);
/* No more requests (half-close). */
void client_stream_close_send(struct client_stream *s);
/* Ends the stream; done follows (from the loop) with CAIRN_ECANCELED. */
void client_stream_cancel(struct client_stream *s);

/* Blocking client only: runs the private loop until a stream callback ran
 * or timeout_ms passed (0: only what is ready now). Returns how many
 * stream callbacks ran. */
int client_poll(struct client *cl, int64_t timeout_ms);

#endif

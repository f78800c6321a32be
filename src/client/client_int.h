/* client_int: the client module's private types, shared by its files. */
#ifndef CAIRN_CLIENT_CLIENT_INT_H
#define CAIRN_CLIENT_CLIENT_INT_H

#include "client/client.h"
#include "net/net.h"
#include "rpc/rpc.h"

struct client__method {
    const char *path;
    const ProtobufCMessageDescriptor *req;
    const ProtobufCMessageDescriptor *resp;
    bool stream;
    /* safe to send again after it may have reached the server */
    bool idempotent;
    /* answers when something happens (Lock, Campaign): no deadline */
    bool waits;
};
const struct client__method *client__method(enum client_method m);
/* etcd's error text back to a cairn code; 0 when it is not one of them. */
int client__err_from_text(const char *text);
/* Whether an answer means "ask another member" (not leader, no leader,
 * leader changed). */
bool client__is_leader_error(int grpc_code, const char *text);

/* One connection to one endpoint. Calls in flight keep a retired
 * connection open until they end. */
struct client__conn {
    struct client *cl;
    struct rpc_client *rc; /* NULL while connecting */
    size_t ep;
    size_t n_active;
    bool retired;
    struct client__conn *next; /* in cl->conns */
};

#define CLIENT__HELD_MAX 4096
#define CLIENT__MSG_MAX 512

/* A call: unary or stream (the public struct client_stream). */
struct client_stream {
    struct client *cl;
    struct client_stream *prev, *next; /* in pending, active or done */
    enum client_method m;
    int list; /* which list it is in: 0 none, 1 pending, 2 active, 3 done */
    struct client__conn *conn;
    struct rpc_call *call;
    int tries;
    /* unary */
    uint8_t *body;
    size_t len;
    void *arg;
    client_call_cb cb;
    ProtobufCMessage *resp;
    /* stream */
    const struct client_stream_cbs *scbs;
    uint8_t **held;
    size_t *held_len;
    size_t n_held, held_cap;
    bool close_send_wanted;
    bool canceled;
    /* the end */
    struct client_status st;
    char msg[CLIENT__MSG_MAX];
};

struct client__list {
    struct client_stream *head, *tail;
    size_t n;
};

struct client {
    uv_loop_t *loop;
    uv_loop_t private_loop;
    bool blocking;
    struct net_url eps[CLIENT_ENDPOINTS_MAX];
    char ep_text[CLIENT_ENDPOINTS_MAX][NET_HOST_MAX + 32];
    size_t n_eps;
    size_t cur;
    int64_t timeout_ms;
    size_t max_pending;
    struct cairn_log *log;
    struct net_tls *tls; /* borrowed, may be NULL */
    struct client__conn *conns;
    struct client__conn *up; /* the current connection, when connected */
    bool connecting;
    int connect_fails;
    struct client__list pending, active, done;
    uv_timer_t defer;
    bool closing;
    bool drained;
    uint64_t stream_events; /* stream callbacks run, for client_poll */
    char last_msg[CLIENT__MSG_MAX];
    char token[CLIENT_TOKEN_MAX + 1]; /* "" : none */
};

#endif

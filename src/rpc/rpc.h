/* rpc: gRPC over HTTP/2 (nghttp2), server and client sides, knowing no etcd
 * service. It frames messages (5-byte prefix: compressed flag, big-endian
 * length), carries status in grpc-status/grpc-message trailers, enforces
 * grpc-timeout deadlines, a maximum received message size and HTTP/2 flow
 * control both ways, and routes calls through a dispatch table of full
 * method names ("/etcdserverpb.KV/Range"). Messages are opaque bytes here;
 * api/ and client/ (un)pack them with proto/.
 *
 * A server port speaks HTTP/2 with prior knowledge (what etcd's clients send
 * in cleartext) and also HTTP/1.1: a connection whose first bytes are not the
 * HTTP/2 preface but an HTTP/1.1 request line is handed to the HTTP/1.1 hook
 * (etcd serves /health, /version and /metrics on the client port); anything
 * else is garbage and the connection is closed.
 *
 * Threading: one libuv loop thread. Every function here is called on that
 * thread and every callback runs on it; nothing blocks.
 *
 * Ownership and lifetimes:
 *  - struct rpc_server and struct rpc_client are handles allocated here; the
 *    caller closes them (rpc_server_close, rpc_client_close) and the memory
 *    is released by the loop afterwards.
 *  - struct rpc_call is one stream. It is valid from the start callback
 *    (server) or rpc_client_call (client) until its done callback returns;
 *    done is called exactly once for every call, whatever ends it (finish,
 *    peer reset, deadline, connection loss, close of server or client).
 *    done may run inside an rpc_* function (sending can end a stream, an
 *    allocation failure can end a call), so the memory is released only
 *    after control returns to the loop: until then the rpc_call_* functions
 *    may still be given the pointer and do nothing (send says
 *    CAIRN_ESHUTDOWN, also for a NULL call: a handler's cleared pointer).
 *  - Message bytes passed to callbacks are borrowed for the duration of the
 *    callback. Bytes passed to rpc_call_send are copied.
 *
 * Back-pressure: each call has a bounded send queue. rpc_call_send returns
 * CAIRN_EFULL when it is full (a message is always accepted into an empty
 * queue); the writable callback then says when to send again. Bytes go from
 * the queue to the socket only as the peer's HTTP/2 window and the
 * connection's bounded write queue allow, so a peer that does not read costs
 * a bounded amount of memory. Receiving can be paused per call
 * (rpc_call_recv_pause): the call's HTTP/2 window is then not reopened, so
 * its peer stops sending once the window is used up. */
#ifndef CAIRN_RPC_RPC_H
#define CAIRN_RPC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/net.h"
#include "util/util.h"

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum rpc_code {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_ABORTED = 10,
    RPC_OUT_OF_RANGE = 11,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_DATA_LOSS = 15,
    RPC_UNAUTHENTICATED = 16,
};

/* "OK", "DEADLINE_EXCEEDED", ...; "UNKNOWN" for codes outside the table. */
const char *rpc_code_name(int code);

struct rpc_call;

/* Callbacks of one call. Server side: given per method in the dispatch
 * table. Client side: given to rpc_client_call. Any may be NULL except done.
 * `arg` is the method's arg (server) or the one given to rpc_client_call. */
struct rpc_call_cbs {
    /* Server only: a call to this method arrived (request headers read).
     * The handler may set its per-call state with rpc_call_set_user. */
    void (*start)(void *arg, struct rpc_call *call);
    /* One complete message. On the server, neither this nor half_close
     * comes after rpc_call_finish: what the client still sends is dropped. */
    void (*message)(void *arg, struct rpc_call *call, const uint8_t *data,
                    size_t len);
    /* Server only: the client has finished sending (half-close). A unary
     * handler may answer here, or already on its message. */
    void (*half_close)(void *arg, struct rpc_call *call);
    /* The send queue has room again after rpc_call_send said CAIRN_EFULL. */
    void (*writable)(void *arg, struct rpc_call *call);
    /* The call is over; `code` is its gRPC status and `message` its text
     * (borrowed, never NULL). Server side: the code finished with, or
     * RPC_CANCELLED when the client reset the stream or went away, or
     * RPC_DEADLINE_EXCEEDED. Client side: the status the server sent, or the
     * local reason (deadline, cancel, connection lost). The call is freed
     * when this returns. */
    void (*done)(void *arg, struct rpc_call *call, int code,
                 const char *message);
};

/* Queues one message (copied, framed with the 5-byte prefix). Returns 0,
 * CAIRN_EFULL (queue full: wait for writable), CAIRN_ESHUTDOWN (the call
 * finished or its stream is closed for sending), CAIRN_ENOMEM. */
int rpc_call_send(struct rpc_call *call, const void *data, size_t len);
/* Server: ends the call with a status and message (percent-encoded on the
 * wire; may be NULL). Queued messages go first, then the trailers. Further
 * sends are refused; done follows once the stream closes. A call that has
 * already ended (e.g. rpc ended it for an oversized message) ignores it. */
void rpc_call_finish(struct rpc_call *call, int code, const char *message);
/* Client: no more messages from this side (HTTP/2 END_STREAM after what is
 * queued). */
void rpc_call_close_send(struct rpc_call *call);
/* Either side: abandon the call (RST_STREAM CANCEL); done follows with
 * RPC_CANCELLED. Harmless after the call has finished. */
void rpc_call_cancel(struct rpc_call *call);
/* Pauses (true) or resumes delivering messages; while paused, received
 * bytes stay unacknowledged so the peer's window closes. */
void rpc_call_recv_pause(struct rpc_call *call, bool paused);
/* Per-call state of the handler. */
void rpc_call_set_user(struct rpc_call *call, void *user);
void *rpc_call_user(const struct rpc_call *call);
/* The full method name, "/etcdserverpb.KV/Range". Valid for the call. */
const char *rpc_call_method(const struct rpc_call *call);
/* Server: a request metadata value by lower-case name ("token"), or NULL.
 * Valid for the call's lifetime. */
const char *rpc_call_metadata(const struct rpc_call *call, const char *name);
/* The peer's address ("127.0.0.1:52344", "[::1]:2379", "unix"), for log
 * lines; "" once the connection is gone. */
const char *rpc_call_peer(const struct rpc_call *call);
/* Milliseconds left before the call's deadline; -1 when it has none. */
int64_t rpc_call_deadline_left_ms(const struct rpc_call *call);
/* Bytes waiting in the call's send queue. */
size_t rpc_call_send_queued_bytes(const struct rpc_call *call);

/* ---- server ---- */

/* One row of the dispatch table. */
struct rpc_method {
    const char *path; /* "/package.Service/Method"; borrowed, outlives */
    const struct rpc_call_cbs *cbs; /* borrowed, outlives the server */
    void *arg;
};

/* An HTTP/1.1 request on the gRPC port. `method`, `path` and `body` are
 * valid until rpc_http1_respond is called or cancel runs. */
struct rpc_http1_request {
    const char *method; /* "GET" */
    const char *path;   /* "/health", query string included */
    const uint8_t *body;
    size_t body_len;
};
struct rpc_http1_handler {
    /* Must eventually call rpc_http1_respond, or rpc_http1_stream_begin
     * and later rpc_http1_stream_end (now or later) for req. */
    void (*request)(void *arg, struct rpc_http1_request *req);
    /* The connection went away before the response was complete; req is
     * then invalid. May be NULL when request always answers at once. */
    void (*cancel)(void *arg, struct rpc_http1_request *req);
    /* A streamed response has room again after rpc_http1_stream_write said
     * CAIRN_EFULL. May be NULL. */
    void (*writable)(void *arg, struct rpc_http1_request *req);
    void *arg;
};
/* A request header's value by name (any case: "authorization"), leading
 * blanks skipped, or NULL; valid as long as req. */
const char *rpc_http1_header(const struct rpc_http1_request *req,
                             const char *name);
/* Sends the response (Content-Length, Connection: close; the body is
 * copied, of any size: it goes out as the client reads) and closes the
 * connection once it is written; req is invalid afterwards. */
void rpc_http1_respond(struct rpc_http1_request *req, int http_status,
                       const char *content_type, const void *body, size_t len);
/* The same with more header lines (headers: "Name: value\r\n"..., under
 * ~800 bytes; NULL or "" for none). */
void rpc_http1_respond_hdrs(struct rpc_http1_request *req, int http_status,
                            const char *content_type, const char *headers,
                            const void *body, size_t len);
/* A streamed response (chunked transfer coding), as grpc-gateway streams
 * etcd's /v3/watch: begin sends the status and headers; each write sends
 * one chunk (copied) and returns 0, CAIRN_EFULL when the connection's
 * queue has no room (nothing is sent; writable follows), CAIRN_ESHUTDOWN or
 * CAIRN_ENOMEM; a chunk larger than the whole queue is taken when nothing
 * is queued and goes out as the client reads, later writes waiting for it; end
 * sends the last chunk and closes the connection once written, and req is
 * invalid afterwards. cancel may still come at any time before end. */
int rpc_http1_stream_begin(struct rpc_http1_request *req, int http_status,
                           const char *content_type);
/* The same with more header lines (as rpc_http1_respond_hdrs'). */
int rpc_http1_stream_begin_hdrs(struct rpc_http1_request *req, int http_status,
                                const char *content_type, const char *headers);
int rpc_http1_stream_write(struct rpc_http1_request *req, const void *data,
                           size_t len);
void rpc_http1_stream_end(struct rpc_http1_request *req);

struct rpc_server_config {
    /* Largest message accepted; larger ones end the call with
     * RESOURCE_EXHAUSTED. 0: RPC_MAX_RECV_DEFAULT (etcd's 1.5 MiB request
     * limit plus grpc overhead, as etcd configures grpc). */
    size_t max_recv_msg_bytes;
    /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. 0: 1000000. */
    uint32_t max_concurrent_streams;
    /* Bound of each call's send queue. 0: RPC_SEND_QUEUE_DEFAULT. */
    size_t send_queue_max_bytes;
    /* Initial HTTP/2 window of each stream we receive on. 0: 1 MiB. */
    uint32_t stream_window_bytes;
    /* Connections open at once; more are closed on accept. 0: 10000. */
    uint32_t max_connections;
    /* A new connection must show its HTTP/2 preface or a whole HTTP/1.1
     * request within this, or it is closed (half-open and silent peers).
     * 0: 10 s. */
    uint32_t handshake_timeout_ms;
    /* HTTP/2 keepalive, as etcd's --grpc-keepalive-interval/-timeout: a
     * PING every interval; no answer within timeout closes the
     * connection. 0: 2 h and 20 s. */
    uint32_t keepalive_interval_ms;
    uint32_t keepalive_timeout_ms;
    /* Largest HTTP/1.1 request body (Content-Length); larger ones get 413.
     * 0: 2 MiB. */
    size_t http1_body_max_bytes;
    /* Per connection; a write queue below 512 KiB is raised to it. */
    struct net_conn_config net;
};
#define RPC_MAX_RECV_DEFAULT ((size_t)(3u << 19) + (512u << 10))
#define RPC_SEND_QUEUE_DEFAULT ((size_t)1u << 20)

struct rpc_server;

/* Creates a server. `methods` (n of them) is copied, but the strings and
 * cbs it points to are borrowed; `http1` (may be NULL: every HTTP/1.1
 * request gets 404) is copied; config may be NULL for defaults; log may be
 * NULL. Returns 0, CAIRN_EINVAL (duplicate path), CAIRN_ENOMEM. */
int rpc_server_init(struct rpc_server **out, uv_loop_t *loop,
                    const struct rpc_server_config *config,
                    const struct rpc_method *methods, size_t n,
                    const struct rpc_http1_handler *http1,
                    struct cairn_log *log);
/* Listens on one more URL; *port (may be NULL) receives the bound port. A
 * URL naming the address of one already served (the other scheme, as
 * "http://h:p,https://h:p") shares its listener, which then tells TLS from
 * plaintext by each connection's first byte (net_listener_add_scheme). */
int rpc_server_listen(struct rpc_server *srv, const struct net_url *url,
                      uint16_t *port, struct cairn_errmsg *msg);
/* Socket writes the server's gRPC connections issued since it started:
 * replies are gathered per connection and written once per loop turn. */
uint64_t rpc_server_write_count(const struct rpc_server *srv);
/* Connections currently open (gRPC and HTTP/1.1). */
size_t rpc_server_conn_count(const struct rpc_server *srv);
/* Calls currently open. */
size_t rpc_server_call_count(const struct rpc_server *srv);
/* Streams nghttp2 holds over every HTTP/2 connection, open or closed
 * (for tests: walks every stream id a connection has seen). */
size_t rpc_server_stream_count(const struct rpc_server *srv);
/* Bytes the server holds for sending, over every call and connection:
 * for tests and metrics. */
size_t rpc_server_queued_bytes(const struct rpc_server *srv);
/* Graceful stop, as grpc's GracefulStop: stops listening, tells every
 * HTTP/2 client GOAWAY (calls already begun go on; new ones are refused
 * and clients retry elsewhere), closes connections that carry no request,
 * and closes each HTTP/2 connection once its last call has ended. Follow
 * with rpc_server_close (at once, or after a grace period) to end what is
 * left. */
void rpc_server_drain(struct rpc_server *srv);
/* Stops listening and closes every connection; every open call gets done
 * with RPC_CANCELLED and every pending HTTP/1.1 request its cancel. The
 * memory is released by the loop once all handles have closed. */
void rpc_server_close(struct rpc_server *srv);

/* ---- client ---- */

struct rpc_client_config {
    size_t max_recv_msg_bytes;    /* 0: 4 MiB, as grpc-go clients */
    size_t send_queue_max_bytes;  /* 0: RPC_SEND_QUEUE_DEFAULT */
    uint32_t stream_window_bytes; /* 0: 1 MiB */
    /* Keepalive PINGs (etcd clients' --keepalive-time/-timeout): one every
     * interval, none answered within timeout closes the connection and its
     * calls end UNAVAILABLE. Interval 0: no PINGs; timeout 0: 20 s. */
    uint32_t keepalive_interval_ms;
    uint32_t keepalive_timeout_ms;
    /* Per connection; a write queue below 512 KiB is raised to it. */
    struct net_conn_config net;
};

struct rpc_client;

/* The connection is up (status 0, client usable) or failed (negative code,
 * client NULL). */
typedef void (*rpc_client_connect_cb)(void *arg, int status,
                                      struct rpc_client *client);
/* Connects to url (see net_connect for what hosts are accepted) and sends
 * the HTTP/2 preface. cb runs later from the loop. */
int rpc_client_connect(uv_loop_t *loop, const struct net_url *url,
                       const struct rpc_client_config *config,
                       struct cairn_log *log, void *arg,
                       rpc_client_connect_cb cb);
/* Starts a call to `path` (copied). timeout_ms < 0: no deadline; otherwise
 * sent as grpc-timeout and enforced locally. `metadata` (may be NULL) is a
 * NULL-terminated list of lower-case name, value pairs sent as headers
 * (etcd's "token"), at most RPC_METADATA_MAX pairs, copied. `cbs` is
 * borrowed and must outlive the call. Returns 0 and the call in *out,
 * CAIRN_ESHUTDOWN when the connection is gone or going, CAIRN_EINVAL (odd or
 * too long metadata list), CAIRN_ENOMEM. */
#define RPC_METADATA_MAX 16
int rpc_client_call(struct rpc_client *cl, const char *path, int64_t timeout_ms,
                    const char *const *metadata, const struct rpc_call_cbs *cbs,
                    void *arg, struct rpc_call **out);
/* Whether the connection takes new calls: false once it is closed or
 * closing, or the server said GOAWAY (calls already begun may go on). */
bool rpc_client_alive(const struct rpc_client *cl);
/* Socket writes the client's connection issued: what a loop turn sends
 * (calls started, messages, cancels) is written once, before the loop
 * polls. */
uint64_t rpc_client_write_count(const struct rpc_client *cl);
/* Closes the connection; open calls get done with RPC_UNAVAILABLE (or their
 * earlier outcome). The client stays allocated until this is called, even
 * after its connection died (rpc_client_alive says so); call it once. */
void rpc_client_close(struct rpc_client *cl);

/* ---- wire helpers (exposed for tests and for api/) ---- */

/* Parses a grpc-timeout value ("100m", "5S", "1H"): 0 and *ms (rounded up to
 * whole milliseconds, capped at INT64_MAX/2), or CAIRN_EMALFORMED. */
int rpc_timeout_parse(const char *text, int64_t *ms);
/* Formats ms as a grpc-timeout value into out (at least 16 bytes). */
void rpc_timeout_format(int64_t ms, char *out, size_t size);
/* Percent-encodes a grpc-message (bytes outside 0x20..0x7e and '%') into
 * out, always NUL-terminated; returns the length needed. */
size_t rpc_percent_encode(const char *in, char *out, size_t size);
/* Decodes in place; malformed escapes are kept as they are. */
void rpc_percent_decode(char *s);

#endif

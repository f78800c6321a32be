/* The rpc tests' fixture: one loop, a test server on 127.0.0.1 port 0 with
 * a handful of methods, clients, and a raw connection for speaking bytes. */
#ifndef CAIRN_TEST_RPC_FIXTURE_H
#define CAIRN_TEST_RPC_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "rpc/rpc.h"
#include "run_until.h"

#define FX_HELD_MAX 4096

struct fx {
    uv_loop_t loop;
    struct rpc_server *srv;
    uint16_t port;
    struct net_url url;
    /* what the server's handlers saw */
    int srv_started;
    int srv_done;
    int srv_done_code[8]; /* count per code, for codes < 8 */
    int srv_last_code;
    int srv_efull; /* sends refused with CAIRN_EFULL */
    struct rpc_call *held[FX_HELD_MAX];
    size_t n_held;
    size_t held_max;
    int first_msgs;   /* messages the First method saw */
    int first_halves; /* half-closes it saw */
    int http1_requests;
    int http1_cancels;
    struct rpc_http1_request *http1_slow; /* "/slow", "/stream" wait here */
    struct rpc_http1_request *flood;      /* "/flood" streams from here */
    size_t flood_sent;
    size_t flood_chunk;
    int flood_efull;
};

/* What a client call saw. */
struct result {
    int done;
    int code;
    char msg[512];
    int n_msgs;
    size_t bytes;
    struct buf last;
    bool in_order; /* messages carried 0, 1, 2, ... as first 4 bytes */
    struct rpc_call *call;
};

/* Runs f's loop to its end (bounded) and closes it. */
void fx_loop_close(struct fx *f);

/* Starts the server with config (NULL: defaults, plus an HTTP/1.1 hook). */
void fx_open(struct fx *f, const struct rpc_server_config *cfg, bool http1);
/* Closes a handle and runs the loop until it is closed, so that a handle
 * on the stack may go out of scope afterwards. */
void fx_close_handle(struct fx *f, uv_handle_t *h);
/* Closes everything and checks the loop ends with no live handles. */
void fx_close(struct fx *f);
struct rpc_client *fx_connect(struct fx *f,
                              const struct rpc_client_config *cfg);

void result_init(struct result *r);
void result_free(struct result *r);
extern const struct rpc_call_cbs result_cbs;
/* Starts a call, sends the messages given (n of them, all `msg`), and
 * half-closes when close_send. */
void fx_call(struct rpc_client *cl, const char *path, int64_t timeout_ms,
             struct result *r, const void *msg, size_t len, int n,
             bool close_send);

/* A raw TCP connection to the server for hand-made bytes. */
struct raw {
    struct net_conn *conn;
    struct buf got;
    int closed;
    int connects;
};
void raw_connect(struct fx *f, struct raw *r);
void raw_send(struct raw *r, const void *p, size_t n);
/* HTTP/2 frame helpers: appends a frame header + payload to b. */
void h2_frame(struct buf *b, uint8_t type, uint8_t flags, uint32_t stream,
              const void *payload, size_t len);
/* A request HEADERS block (HPACK literals, no Huffman) for path, with a
 * grpc-timeout header when timeout is not NULL. */
void h2_request_headers(struct buf *b, uint32_t stream, const char *path,
                        const char *timeout, bool end_stream);
/* Finds in raw bytes from the server (after its preface-less start) the
 * grpc-status of stream `stream`; -1 when none. Also reports whether a
 * GOAWAY and a PING ACK were seen. */
int h2_scan(const struct buf *got, uint32_t stream, bool *goaway,
            bool *ping_ack, uint32_t *data_bytes);

int test_wire_group(void);
int test_calls_group(void);
int test_bad_group(void);
int test_etcdctl_group(void);
int test_faults_group(void);
int test_random_group(void);
int test_etcd_group(void);

#endif

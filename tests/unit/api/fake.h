/* The api tests' fixture: a fake member behind struct api_backend (an
 * in-memory key space with etcd's semantics for what the tests use), one
 * loop, an api listening on 127.0.0.1 port 0 and our rpc client. */
#ifndef CAIRN_TEST_API_FAKE_H
#define CAIRN_TEST_API_FAKE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "api/api.h"
#include "run_until.h"

#define FAKE_KEYS_MAX 256
#define FAKE_HELD_MAX 16

struct fake_kv {
    uint8_t key[64];
    size_t key_len;
    uint8_t value[256];
    size_t value_len;
    int64_t create_rev, mod_rev, version, lease;
};

struct fake {
    struct fake_kv kvs[FAKE_KEYS_MAX]; /* sorted by key */
    size_t n;
    int64_t rev;
    int64_t compact_rev;
    uint64_t term;
    uint64_t leader;
    bool nospace_alarm;
    int fail_next;   /* a cairn code the next request completes with */
    int refuse_next; /* a cairn code the next range or put is refused with */
    bool refuse_status;
    int reads;
    /* hold: put completions wait in held[] until fake_release */
    bool hold;
    struct {
        void *ctx;
        node_done_cb cb;
        struct mvcc_put_req req;
        uint8_t key[64], value[256];
    } held[FAKE_HELD_MAX];
    size_t n_held;
    int serializable_reads;
    struct {
        int64_t id, ttl_s;
    } leases[16];
    size_t n_leases;
    int64_t next_lease;
    int keepalives;
    int closes; /* the table's close entry (api_close) */
    struct node_member members[4];
    size_t n_members;
    int defrags;
    /* history for watchers: every change, in revision order */
    struct fake_event {
        int64_t rev;
        bool is_delete;
        struct fake_kv kv, prev;
        bool has_prev;
    } events[64];
    size_t n_events;
    struct fake_hub *hubs[8];
    size_t n_hubs;
    int hubs_closed;
    struct api_arena arena;
    /* Auth: the real store (auth_apply) on an mvcc store in auth_dir,
     * opened at the first Auth request; passwords stored as given. */
    struct mvcc_store *auth_store;
    char auth_dir[64];
    uint64_t auth_ci;
    struct mvcc_arena auth_arena;
    int auth_calls;
    /* v2: the real store (v2_apply) on the same mvcc store; watches wait
     * in v2w[] until the next v2 write */
    int v2_calls;
    uint64_t v2_raft_index; /* the applied index v2_scan reports */
    struct {
        void *ctx;
        void (*cb)(void *ctx);
    } v2w[8];
};

void fake_init(struct fake *f);
void fake_free(struct fake *f);
struct api_backend fake_backend(struct fake *f);
/* Delivers pending events to every hub's watchers (the member's poll). */
void fake_watch_poll(struct fake *f);
/* Completes the held puts. */
void fake_release(struct fake *f);

/* A loop, an api over a fake, a client. */
struct fx {
    uv_loop_t loop;
    struct fake fake;
    struct api *api;
    uint16_t port;
    struct net_url url;
    struct rpc_client *cl;
};

void fx_open(struct fx *f, const struct api_config *cfg);
void fx_close(struct fx *f);

/* One finished client call. */
struct result {
    int done;
    int code;
    char msg[512];
    int n_msgs;
    struct buf last;
    struct rpc_call *call;
};
/* Sends one message (packed from msg; NULL sends raw bytes) to path, waits
 * for the end, and leaves the answer in r (result_free after). */
void fx_unary(struct fx *f, const char *path, const ProtobufCMessage *msg,
              struct result *r);
void fx_unary_raw(struct fx *f, const char *path, const void *data, size_t len,
                  struct result *r);
/* Starts the same call without waiting for it. */
void fx_call_start(struct fx *f, const char *path, const void *data, size_t len,
                   struct result *r);
void result_free(struct result *r);
/* Starts a streaming call: nothing sent, nothing closed. */
void fx_stream_start(struct fx *f, const char *path, struct result *r);
/* An HTTP/1.1 GET on a raw connection; the whole answer in out
 * (NUL-terminated). */
void fx_http_get(struct fx *f, const char *path, struct buf *out);
/* Sends raw bytes on a new connection and waits until the server closes
 * it; what came back in out. */
void fx_raw(struct fx *f, const void *bytes, size_t len, struct buf *out);

int test_errors_group(void);
int test_convert_group(void);
int test_http_group(void);
int test_kv_group(void);
int test_lease_group(void);
int test_cluster_group(void);
int test_watch_group(void);
int test_lock_group(void);
int test_gateway_group(void);
int test_auth_group(void);

#endif

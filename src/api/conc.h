/* conc: what lock.c and election.c share: one long request that runs
 * etcd's client-side concurrency recipes (clientv3/concurrency: a session
 * lease, a key named prefix/lease-id, waiting for the deletion of every key
 * of the prefix created before ours) as a chain of backend requests and
 * watches on the loop, never blocking it. Private to api/. */
#ifndef CAIRN_API_CONC_H
#define CAIRN_API_CONC_H

#include "api/api_int.h"

struct api__conc;
/* A step: runs with the completion of the backend request it waited on
 * (res), or with NULL when it was deferred (api__conc_defer). */
typedef void (*api__conc_fn)(struct api__conc *c,
                             const struct node_result *res);
/* Sees a response of the watcher (inside the hub's callback: it may only
 * look, api__conc_defer or return CAIRN_EAGAIN to pause the watcher). */
typedef int (*api__conc_watch_fn)(struct api__conc *c,
                                  const struct mvcc_watch_resp *resp);

struct api__conc {
    struct api *api;
    struct api_req *r;      /* a unary call's request; NULL once answered */
    struct rpc_call *call;  /* Observe's stream; NULL once it ended */
    struct api__slot *slot; /* Observe's method */
    struct api_arena arena; /* the names, keys and answers below */
    uv_timer_t timer;       /* runs deferred steps outside the hub's cb */
    void *hub;              /* opened at the first wait */
    int64_t watch_id;
    bool watching, paused;
    bool pending;           /* a backend completion is owed */
    bool cancelled;         /* the client went away */
    bool ended;             /* no step runs any more */
    bool timer_closed;      /* the memory goes once this and !pending */
    bool cleanup_on_fail;   /* etcd's Mutex unlocks when its wait fails */
    bool got_msg;           /* Observe: its one request arrived */
    bool in_cleanup;        /* the cleanup's own requests are running */
    api__conc_fn next;      /* continues the pending request */
    api__conc_fn deferred;  /* runs from the timer */
    api__conc_fn cleanup;   /* when the client goes away: remove our key */
    api__conc_fn wait_done; /* after waitDeletes found nothing older */
    api__conc_watch_fn on_watch;
    int wait_err; /* the watcher was cancelled (compacted) */
    /* the recipe's state */
    uint8_t *name, *pfx, *end, *key, *value, *wkey;
    size_t name_len, pfx_len, end_len, key_len, value_len, wkey_len;
    int64_t lease, rev, wait_max_rev;
    struct api_header hdr, wait_hdr;
};

/* A long unary request: takes r over until it answers (the call's going
 * away is then noticed). NULL when out of memory (r answered). */
struct api__conc *api__conc_new(struct api_req *r);
/* A server stream's state (Observe). NULL when out of memory. */
struct api__conc *api__conc_new_stream(struct api__slot *slot,
                                       struct rpc_call *call);
/* Copies bytes into c's arena (NUL-terminated); false when out of memory. */
bool api__conc_copy(struct api__conc *c, uint8_t **out, size_t *out_len,
                    const void *data, size_t len);
/* name + "/" as pfx, its prefix range end as end. false: out of memory. */
bool api__conc_set_name(struct api__conc *c, const ProtobufCBinaryData *name);
/* key = pfx + lease in lowercase hex (Go's %x). false: out of memory. */
bool api__conc_set_key(struct api__conc *c);

/* The backend request was handed over with rv (0: next runs with its
 * completion; else refused: c fails with rv). Use as
 *   c->pending = true; c->next = step;
 *   api__conc_submitted(c, be.x(..., c, api__conc_done)); */
void api__conc_submitted(struct api__conc *c, int rv);
void api__conc_done(void *ctx, const struct node_result *res);
/* Grants the session lease (etcd's NewSession with no lease: TTL 60 s),
 * then next. */
void api__conc_grant(struct api__conc *c, api__conc_fn next);
/* Runs fn from the loop soon (outside any callback). */
void api__conc_defer(struct api__conc *c, api__conc_fn fn);
/* Watches [key, end) from start_rev, replacing the current watcher. */
int api__conc_watch(struct api__conc *c, const uint8_t *key, size_t key_len,
                    const uint8_t *end, size_t end_len, int64_t start_rev,
                    api__conc_watch_fn on_watch);
/* etcd's waitDeletes: until no key of the prefix with a create revision
 * <= max_rev remains (each time waiting on the newest such key's
 * deletion); then done with c->wait_hdr the last range's header. */
void api__conc_wait_deletes(struct api__conc *c, int64_t max_rev,
                            api__conc_fn done);

/* Answers (the message built in c->arena) and ends c. */
void api__conc_reply(struct api__conc *c, const ProtobufCMessage *msg);
/* Answers with an error, runs the cleanup when cleanup_on_fail, ends c. */
void api__conc_fail_status(struct api__conc *c, struct api_status st);
void api__conc_fail(struct api__conc *c, int err);
/* No more steps: stops the watch, closes the timer; freed when nothing is
 * owed any more. */
void api__conc_end(struct api__conc *c);

/* The wire header of h and a KeyValue of kv, in c's arena (NULL: out of
 * memory). */
Etcdserverpb__ResponseHeader *api__conc_header_pb(struct api__conc *c,
                                                  const struct api_header *h);
Mvccpb__KeyValue *api__conc_kv_pb(struct api__conc *c,
                                  const struct mvcc_kv *kv);
/* A range of the prefix sorted by create revision (etcd's WithFirstCreate
 * when ascending, WithLastCreate when descending: limit 1). */
struct mvcc_range_req api__conc_prefix_top(const struct api__conc *c,
                                           enum mvcc_sort_order order);

#endif

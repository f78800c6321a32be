/* cairn-bench: a load generator for the etcd v3 gRPC API (cairn or etcd),
 * modelled on etcd's own benchmark tool: put, range, txn-put, watch and
 * lease-keepalive workloads from many clients over a few connections, on
 * one libuv loop through the client library's asynchronous interface. It
 * prints requests/s, the latency distribution, errors by kind, and a last
 * line "RESULT <workload> qps=... p50_ms=... p99_ms=... errors=...". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "hist.h"
#include "net/net.h"

#define MAX_CLIENTS 100000
#define MAX_CONNS 1000
#define MAX_KINDS 16

enum workload { W_PUT, W_RANGE, W_TXN_PUT, W_WATCH, W_LEASE_KEEPALIVE };
static const char *const workload_names[] = {"put", "range", "txn-put", "watch",
                                             "lease-keepalive"};

struct opts {
    /* etcdctl's --cacert, --cert, --key for https endpoints */
    const char *cacert_file, *cert_file, *key_file;
    const char *endpoints[CLIENT_ENDPOINTS_MAX];
    size_t n_endpoints;
    char endpoint_buf[CLIENT_ENDPOINTS_MAX][300];
    unsigned conns, clients;
    uint64_t total;
    double duration_s;
    bool target_leader;
    double rate;
    enum workload w;
    unsigned key_size, val_size;
    uint64_t key_space;
    bool sequential;
    const char *key;
    const char *range_end;
    bool prefix;
    bool serializable;
    unsigned txn_ops;
    unsigned watchers, streams;
    uint64_t puts;
    int64_t lease_ttl;
    uint64_t seed;
    int64_t timeout_ms;
};

struct worker;

struct bench {
    struct opts o;
    uv_loop_t loop;
    struct client *conns[MAX_CONNS];
    struct worker *workers;
    uint8_t *val;
    uint64_t issued, completed, errors;
    uint64_t key_seq;
    uint64_t rng;
    uint64_t start_ns, end_ns;
    bool stopping;
    struct hist lat;
    struct {
        char text[120];
        uint64_t n;
    } kinds[MAX_KINDS];
    unsigned n_kinds;
    uint64_t other_errors;
    uv_timer_t tick; /* rate, duration and progress */
    uint64_t last_progress_ns;
    bool tty;
    /* workers waiting for the rate limiter: a stack, at most clients */
    unsigned *waiting;
    unsigned n_waiting;
    int active_workers;
    /* watch */
    struct client_stream **wstreams;
    uint64_t created, expected_events, events;
    struct {
        int64_t rev;
        uint64_t resp_ns;
    } * puts_done;
    uint64_t n_puts_done;
    uint64_t early; /* events that came before their put's answer */
    uint64_t put_sent_ns;
    bool put_outstanding;
    uint64_t drain_deadline_ns;
    /* lease grants before a keep-alive run */
    unsigned grant_next, grant_inflight, grant_done, grant_failed;
};

struct worker {
    struct bench *b;
    unsigned id;
    uint64_t sent_ns;
    int64_t lease;
    int grant_tries;
    struct client_stream *ka;
};

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static uint64_t rnd(struct bench *b)
{
    /* splitmix64: seeded from --seed, so runs are repeatable */
    uint64_t z = (b->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void record_error(struct bench *b, const struct client_status *st)
{
    b->errors++;
    char text[120];
    snprintf(text, sizeof(text), "%s: %s", cairn_errname(st->status),
             st->message);
    for (unsigned i = 0; i < b->n_kinds; i++) {
        if (strcmp(b->kinds[i].text, text) == 0) {
            b->kinds[i].n++;
            return;
        }
    }
    if (b->n_kinds == MAX_KINDS) {
        b->other_errors++;
        return;
    }
    snprintf(b->kinds[b->n_kinds].text, sizeof(b->kinds[0].text), "%s", text);
    b->kinds[b->n_kinds++].n = 1;
}

/* The next key number: sequential or uniformly random in the key space. */
static uint64_t next_key(struct bench *b)
{
    return b->o.sequential ? b->key_seq++ % b->o.key_space
                           : rnd(b) % b->o.key_space;
}

static void format_key(struct bench *b, uint64_t k, uint8_t *key)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%" PRIu64, k);
    /* zero-padded decimal, cut from the left when the key is short */
    memset(key, '0', b->o.key_size);
    if ((unsigned)n <= b->o.key_size)
        memcpy(key + b->o.key_size - (unsigned)n, digits, (size_t)n);
    else
        memcpy(key, digits + (unsigned)n - b->o.key_size, b->o.key_size);
}

static void make_key(struct bench *b, uint8_t *key)
{
    format_key(b, next_key(b), key);
}

/* Whether the run wants more requests. */
static bool want_more(struct bench *b)
{
    if (b->stopping)
        return false;
    if (b->o.duration_s > 0)
        return now_ns() < b->end_ns;
    return b->issued < b->o.total;
}

/* Whether the rate limiter lets one more request go now. */
static bool rate_ok(struct bench *b)
{
    if (b->o.rate <= 0)
        return true;
    double allowed = (double)(now_ns() - b->start_ns) / 1e9 * b->o.rate + 1;
    return (double)b->issued < allowed;
}

static void issue(struct worker *w);

static void call_cb(void *arg, const struct client_status *st,
                    ProtobufCMessage *resp)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    b->completed++;
    if (st->status == 0)
        hist_add(&b->lat, (now_ns() - w->sent_ns) / 1000);
    else
        record_error(b, st);
    client_msg_free(resp);
    issue(w);
}

static void ka_message(void *arg, struct client_stream *s,
                       const ProtobufCMessage *m)
{
    (void)s;
    struct worker *w = arg;
    struct bench *b = w->b;
    const Etcdserverpb__LeaseKeepAliveResponse *r =
        (const Etcdserverpb__LeaseKeepAliveResponse *)m;
    b->completed++;
    if (r->ttl <= 0) {
        struct client_status st = {CAIRN_ELEASENOTFOUND, 5,
                                   "lease expired or not found"};
        record_error(b, &st);
    } else {
        hist_add(&b->lat, (now_ns() - w->sent_ns) / 1000);
    }
    issue(w);
}

/* A worker has nothing more to send; the last one ends the run (the
 * connections would keep the loop going). */
static void worker_gone(struct bench *b)
{
    if (--b->active_workers == 0)
        uv_stop(&b->loop);
}

static void ka_done(void *arg, struct client_stream *s,
                    const struct client_status *st)
{
    (void)s;
    struct worker *w = arg;
    struct bench *b = w->b;
    bool waiting = w->sent_ns != 0;
    w->ka = NULL;
    if (st->status != 0 && st->status != CAIRN_ECANCELED) {
        if (waiting)
            b->completed++;
        record_error(b, st);
    }
    if (w->b->active_workers > 0 && w->lease >= 0) {
        w->lease = -1; /* this worker is finished */
        worker_gone(b);
    }
}

static const struct client_stream_cbs ka_cbs = {ka_message, ka_done};

static void worker_finish(struct worker *w)
{
    struct bench *b = w->b;
    if (b->o.w == W_LEASE_KEEPALIVE) {
        if (w->ka) {
            client_stream_cancel(w->ka);
            return; /* ka_done counts it */
        }
        if (w->lease < 0)
            return;
        w->lease = -1;
    }
    worker_gone(b);
}

static void issue(struct worker *w)
{
    struct bench *b = w->b;
    w->sent_ns = 0;
    if (!want_more(b)) {
        worker_finish(w);
        return;
    }
    if (!rate_ok(b)) {
        b->waiting[b->n_waiting++] = w->id;
        return;
    }
    struct client *cl = b->conns[w->id % b->o.conns];
    uint8_t key[4096];
    int rv = 0;
    b->issued++;
    w->sent_ns = now_ns();
    switch (b->o.w) {
    case W_PUT: {
        Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
        make_key(b, key);
        p.key.data = key;
        p.key.len = b->o.key_size;
        p.value.data = b->val;
        p.value.len = b->o.val_size;
        rv = client_call(cl, CLIENT_KV_PUT, &p.base, w, call_cb);
        break;
    }
    case W_RANGE: {
        Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
        size_t kl = strlen(b->o.key);
        r.key.data = (uint8_t *)b->o.key;
        r.key.len = kl;
        if (b->o.prefix) {
            /* the prefix's end: its last byte below 0xff plus one */
            memcpy(key, b->o.key, kl);
            size_t n = kl;
            while (n > 0 && key[n - 1] == 0xff)
                n--;
            if (n == 0) {
                key[0] = 0;
                n = 1;
            } else {
                key[n - 1]++;
            }
            r.range_end.data = key;
            r.range_end.len = n;
        } else if (b->o.range_end) {
            r.range_end.data = (uint8_t *)b->o.range_end;
            r.range_end.len = strlen(b->o.range_end);
        }
        r.serializable = b->o.serializable;
        rv = client_call(cl, CLIENT_KV_RANGE, &r.base, w, call_cb);
        break;
    }
    case W_TXN_PUT: {
        Etcdserverpb__PutRequest p[64];
        Etcdserverpb__RequestOp op[64];
        Etcdserverpb__RequestOp *ops[64];
        uint8_t keys[64][64];
        /* consecutive keys from a chosen one: a txn may not put one key
         * twice */
        uint64_t first = next_key(b);
        for (unsigned i = 0; i < b->o.txn_ops; i++) {
            Etcdserverpb__PutRequest pi = ETCDSERVERPB__PUT_REQUEST__INIT;
            Etcdserverpb__RequestOp oi = ETCDSERVERPB__REQUEST_OP__INIT;
            p[i] = pi;
            op[i] = oi;
            format_key(b, (first + i) % b->o.key_space, keys[i]);
            p[i].key.data = keys[i];
            p[i].key.len = b->o.key_size;
            p[i].value.data = b->val;
            p[i].value.len = b->o.val_size;
            op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            op[i].request_put = &p[i];
            ops[i] = &op[i];
        }
        Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
        t.n_success = b->o.txn_ops;
        t.success = ops;
        rv = client_call(cl, CLIENT_KV_TXN, &t.base, w, call_cb);
        break;
    }
    case W_LEASE_KEEPALIVE: {
        if (!w->ka) {
            rv = client_stream_open(cl, CLIENT_LEASE_KEEP_ALIVE, &ka_cbs, w,
                                    &w->ka);
            if (rv != 0)
                break;
        }
        Etcdserverpb__LeaseKeepAliveRequest k =
            ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
        k.id = w->lease;
        rv = client_stream_send(w->ka, &k.base);
        break;
    }
    case W_WATCH:
        CAIRN_ASSERT(!"watch has its own driver");
    }
    if (rv != 0) {
        /* not started: counted as an error, and this worker stops (the
         * library refused, so trying at once again would spin) */
        struct client_status st = {rv, 0, cairn_strerror(rv)};
        b->completed++;
        record_error(b, &st);
        worker_finish(w);
    }
}

static void progress(struct bench *b, bool last)
{
    if (!b->tty)
        return;
    double frac;
    if (b->o.duration_s > 0)
        frac = (double)(now_ns() - b->start_ns) / 1e9 / b->o.duration_s;
    else if (b->o.w == W_WATCH)
        frac = b->expected_events
                   ? (double)b->events / (double)b->expected_events
                   : 0;
    else
        frac = b->o.total ? (double)b->completed / (double)b->o.total : 1;
    if (frac > 1 || last)
        frac = last ? 1 : frac > 1 ? 1 : frac;
    char bar[41];
    int n = (int)(frac * 40);
    for (int i = 0; i < 40; i++)
        bar[i] = i < n ? '=' : ' ';
    bar[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %" PRIu64 " done, %" PRIu64 " errors%s", bar,
            (int)(frac * 100), b->o.w == W_WATCH ? b->events : b->completed,
            b->errors, last ? "\n" : "");
}

static void tick_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    /* release rate-limited workers whose slot has come */
    while (b->n_waiting > 0 && (rate_ok(b) || !want_more(b))) {
        unsigned id = b->waiting[--b->n_waiting];
        issue(&b->workers[id]);
    }
    uint64_t now = now_ns();
    if (now - b->last_progress_ns > 200000000ull) {
        b->last_progress_ns = now;
        progress(b, false);
    }
    if (b->active_workers <= 0)
        uv_timer_stop(t);
}

/* ---- lease setup: one lease per client ---- */

/* Grants in flight at once: etcd refuses a burst of 10,000 proposals with
 * "too many requests" (its applied index may trail the committed one by at
 * most 5,000). */
#define GRANT_WINDOW 100
#define GRANT_TRIES 100

static void grant_cb(void *arg, const struct client_status *st,
                     ProtobufCMessage *resp);

/* The grant phase waits in uv_run; the stop flag ends that wait when the
 * last grant is answered (a callback run from the timer phase would
 * otherwise leave the loop blocked in poll). */
static void grant_check(struct bench *b)
{
    if (b->grant_done == b->o.clients)
        uv_stop(&b->loop);
}

static void grant_one(struct bench *b, struct worker *w)
{
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = b->o.lease_ttl;
    b->grant_inflight++;
    int rv = client_call(b->conns[w->id % b->o.conns], CLIENT_LEASE_GRANT,
                         &g.base, w, grant_cb);
    if (rv != 0) {
        b->grant_inflight--;
        fprintf(stderr, "cairn-bench: lease grant: %s\n", cairn_strerror(rv));
        b->grant_failed++;
        b->grant_done++;
    }
    grant_check(b);
}

static void grant_more(struct bench *b)
{
    while (b->grant_inflight < GRANT_WINDOW && b->grant_next < b->o.clients)
        grant_one(b, &b->workers[b->grant_next++]);
}

static void grant_cb(void *arg, const struct client_status *st,
                     ProtobufCMessage *resp)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    b->grant_inflight--;
    if (st->status == 0) {
        w->lease = ((Etcdserverpb__LeaseGrantResponse *)resp)->id;
        b->grant_done++;
    } else if (st->status == CAIRN_ETOOMANYREQUESTS &&
               ++w->grant_tries < GRANT_TRIES) {
        grant_one(b, w);
    } else {
        fprintf(stderr, "cairn-bench: lease grant: %s: %s\n",
                cairn_errname(st->status), st->message);
        b->grant_failed++;
        b->grant_done++;
    }
    client_msg_free(resp);
    grant_check(b);
    grant_more(b);
}

/* ---- watch ---- */

static void watch_record(struct bench *b, int64_t rev, uint64_t now)
{
    b->events++;
    /* the put's answer time, by binary search over increasing revisions */
    uint64_t lo = 0, hi = b->n_puts_done;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (b->puts_done[mid].rev < rev)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < b->n_puts_done && b->puts_done[lo].rev == rev) {
        uint64_t t = b->puts_done[lo].resp_ns;
        hist_add(&b->lat, now > t ? (now - t) / 1000 : 0);
    } else {
        /* ahead of its put's answer: latency 0 from that answer */
        b->early++;
        hist_add(&b->lat, 0);
    }
}

static void watch_message(void *arg, struct client_stream *s,
                          const ProtobufCMessage *m)
{
    (void)s;
    struct bench *b = arg;
    const Etcdserverpb__WatchResponse *r =
        (const Etcdserverpb__WatchResponse *)m;
    if (r->created && ++b->created == b->o.watchers)
        uv_stop(&b->loop); /* the creation phase waits in uv_run */
    uint64_t now = now_ns();
    for (size_t i = 0; i < r->n_events; i++)
        watch_record(b, r->events[i]->kv->mod_revision, now);
}

static void watch_done(void *arg, struct client_stream *s,
                       const struct client_status *st)
{
    struct bench *b = arg;
    for (unsigned i = 0; i < b->o.streams; i++)
        if (b->wstreams[i] == s)
            b->wstreams[i] = NULL;
    if (st->status != 0 && st->status != CAIRN_ECANCELED)
        record_error(b, st);
    uv_stop(&b->loop); /* the creation phase checks the streams left */
}

static const struct client_stream_cbs watch_cbs = {watch_message, watch_done};

static void watch_put(struct bench *b);

static void watch_put_cb(void *arg, const struct client_status *st,
                         ProtobufCMessage *resp)
{
    struct bench *b = arg;
    b->put_outstanding = false;
    b->completed++;
    if (st->status == 0) {
        int64_t rev = ((Etcdserverpb__PutResponse *)resp)->header->revision;
        b->puts_done[b->n_puts_done].rev = rev;
        b->puts_done[b->n_puts_done].resp_ns = now_ns();
        b->n_puts_done++;
    } else {
        record_error(b, st);
        b->expected_events -= b->o.watchers;
    }
    client_msg_free(resp);
    watch_put(b);
}

static void watch_put(struct bench *b)
{
    if (b->issued >= b->o.puts || b->stopping)
        return;
    if (!rate_ok(b))
        return; /* the tick comes back */
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)b->o.key;
    p.key.len = strlen(b->o.key);
    p.value.data = b->val;
    p.value.len = b->o.val_size;
    b->issued++;
    b->put_outstanding = true;
    int rv = client_call(b->conns[0], CLIENT_KV_PUT, &p.base, b, watch_put_cb);
    if (rv != 0) {
        b->put_outstanding = false;
        struct client_status st = {rv, 0, cairn_strerror(rv)};
        record_error(b, &st);
        b->stopping = true;
    }
}

static void watch_tick(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now = now_ns();
    if (!b->put_outstanding)
        watch_put(b);
    if (now - b->last_progress_ns > 200000000ull) {
        b->last_progress_ns = now;
        progress(b, false);
    }
    bool puts_over =
        b->stopping || (b->issued >= b->o.puts && !b->put_outstanding);
    if (puts_over && b->drain_deadline_ns == 0)
        b->drain_deadline_ns = now + 5000000000ull;
    if (puts_over &&
        (b->events >= b->expected_events || now > b->drain_deadline_ns)) {
        uv_timer_stop(t);
        for (unsigned i = 0; i < b->o.streams; i++)
            if (b->wstreams[i])
                client_stream_cancel(b->wstreams[i]);
        uv_stop(&b->loop);
    }
}

static int run_watch(struct bench *b)
{
    b->wstreams = cairn_calloc(b->o.streams, sizeof(*b->wstreams));
    b->puts_done = cairn_calloc(b->o.puts + 1, sizeof(*b->puts_done));
    if (!b->wstreams || !b->puts_done)
        return CAIRN_ENOMEM;
    for (unsigned i = 0; i < b->o.streams; i++) {
        int rv = client_stream_open(b->conns[i % b->o.conns], CLIENT_WATCH,
                                    &watch_cbs, b, &b->wstreams[i]);
        if (rv != 0)
            return rv;
    }
    Etcdserverpb__WatchCreateRequest c =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key.data = (uint8_t *)b->o.key;
    c.key.len = strlen(b->o.key);
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    wr.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &c;
    for (unsigned i = 0; i < b->o.watchers; i++) {
        struct client_stream *s = b->wstreams[i % b->o.streams];
        int rv = s ? client_stream_send(s, &wr.base) : CAIRN_ESHUTDOWN;
        if (rv != 0) {
            fprintf(stderr, "cairn-bench: watch create: %s\n",
                    cairn_strerror(rv));
            return rv;
        }
    }
    /* every watcher created before the first put (bounded: streams that
     * fail end the wait) */
    for (long i = 0; i < 100000000 && b->created < b->o.watchers; i++) {
        bool any = false;
        for (unsigned j = 0; j < b->o.streams; j++)
            any |= b->wstreams[j] != NULL;
        if (!any)
            break;
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    if (b->created < b->o.watchers) {
        fprintf(stderr, "cairn-bench: only %" PRIu64 " of %u watchers made\n",
                b->created, b->o.watchers);
        return CAIRN_EIO;
    }
    b->expected_events = (uint64_t)b->o.watchers * b->o.puts;
    b->start_ns = now_ns();
    uv_timer_init(&b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, watch_tick, 0, 1);
    watch_put(b);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    return 0;
}

/* ---- options ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: cairn-bench [options] <put|range|txn-put|watch|"
            "lease-keepalive> [options]\n"
            "  --endpoints=a,b,c   client URLs (default 127.0.0.1:2379)\n"
            "  --cacert, --cert, --key  TLS files for https endpoints, as "
            "etcdctl's\n"
            "  --conns=N           gRPC connections (1)\n"
            "  --clients=N         concurrent clients (1)\n"
            "  --total=N           requests (10000)\n"
            "  --duration=S        run for S seconds instead of --total\n"
            "  --target-leader     send everything to the leader\n"
            "  --rate=R            at most R requests/s (0: no limit)\n"
            "  --seed=N            key choice seed (1)\n"
            " put, txn-put: --key-size=8 --val-size=8 --key-space-size=1\n"
            "               --sequential-keys --txn-ops=1 (txn-put)\n"
            " range: K [E] | K --end=E | K --prefix, --consistency=l|s\n"
            " watch: [K] --watchers=100 --streams=10 --puts=100\n"
            " lease-keepalive: one lease per client, --total keep-alives\n");
}

static bool flag(const char *arg, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '=') {
        *val = arg + n + 1;
        return true;
    }
    if (arg[n] == '\0') {
        *val = NULL;
        return true;
    }
    return false;
}

static int parse(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->conns = 1;
    o->clients = 1;
    o->total = 10000;
    o->w = (enum workload) - 1;
    o->key_size = 8;
    o->val_size = 8;
    o->key_space = 1;
    o->key = NULL;
    o->txn_ops = 1;
    o->watchers = 100;
    o->streams = 10;
    o->puts = 100;
    o->lease_ttl = 600;
    o->seed = 1;
    o->timeout_ms = 10000;
    const char *eps = "127.0.0.1:2379";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        /* "--name value" as well as "--name=value" */
#define VAL()                                                          \
    do {                                                               \
        if (!v) {                                                      \
            if (i + 1 >= argc) {                                       \
                fprintf(stderr, "cairn-bench: %s needs a value\n", a); \
                return -1;                                             \
            }                                                          \
            v = argv[++i];                                             \
        }                                                              \
    } while (0)
        if (flag(a, "--endpoints", &v)) {
            VAL();
            eps = v;
        } else if (flag(a, "--cacert", &v)) {
            VAL();
            o->cacert_file = v;
        } else if (flag(a, "--cert", &v)) {
            VAL();
            o->cert_file = v;
        } else if (flag(a, "--key", &v)) {
            VAL();
            o->key_file = v;
        } else if (flag(a, "--conns", &v)) {
            VAL();
            o->conns = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--clients", &v)) {
            VAL();
            o->clients = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--total", &v)) {
            VAL();
            o->total = strtoull(v, NULL, 10);
        } else if (flag(a, "--duration", &v)) {
            VAL();
            o->duration_s = strtod(v, NULL);
        } else if (flag(a, "--target-leader", &v)) {
            o->target_leader = true;
        } else if (flag(a, "--rate", &v)) {
            VAL();
            o->rate = strtod(v, NULL);
        } else if (flag(a, "--seed", &v)) {
            VAL();
            o->seed = strtoull(v, NULL, 10);
        } else if (flag(a, "--key-size", &v)) {
            VAL();
            o->key_size = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--val-size", &v)) {
            VAL();
            o->val_size = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--key-space-size", &v)) {
            VAL();
            o->key_space = strtoull(v, NULL, 10);
        } else if (flag(a, "--sequential-keys", &v)) {
            o->sequential = true;
        } else if (flag(a, "--txn-ops", &v)) {
            VAL();
            o->txn_ops = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--end", &v)) {
            VAL();
            o->range_end = v;
        } else if (flag(a, "--prefix", &v)) {
            o->prefix = true;
        } else if (flag(a, "--consistency", &v)) {
            VAL();
            if (strcmp(v, "s") != 0 && strcmp(v, "l") != 0) {
                fprintf(stderr, "cairn-bench: --consistency is l or s\n");
                return -1;
            }
            o->serializable = v[0] == 's';
        } else if (flag(a, "--watchers", &v)) {
            VAL();
            o->watchers = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--streams", &v)) {
            VAL();
            o->streams = (unsigned)strtoul(v, NULL, 10);
        } else if (flag(a, "--puts", &v)) {
            VAL();
            o->puts = strtoull(v, NULL, 10);
        } else if (flag(a, "--timeout-ms", &v)) {
            VAL();
            o->timeout_ms = strtoll(v, NULL, 10);
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return -1;
        } else if (a[0] != '-' && (int)o->w == -1) {
            for (int w = 0; w <= W_LEASE_KEEPALIVE; w++)
                if (strcmp(a, workload_names[w]) == 0)
                    o->w = (enum workload)w;
            if ((int)o->w == -1) {
                fprintf(stderr, "cairn-bench: unknown workload %s\n", a);
                return -1;
            }
        } else if (a[0] != '-' && (o->w == W_RANGE || o->w == W_WATCH) &&
                   !o->key) {
            /* as etcd's "benchmark range key [end]"; --key is the TLS key */
            o->key = a;
        } else if (a[0] != '-' && o->w == W_RANGE && !o->range_end) {
            o->range_end = a;
        } else {
            fprintf(stderr, "cairn-bench: unknown argument %s\n", a);
            return -1;
        }
#undef VAL
    }
    if ((int)o->w == -1) {
        fprintf(stderr, "cairn-bench: no workload given\n");
        return -1;
    }
    if (!o->key)
        o->key = o->w == W_WATCH ? "watchkey" : "foo";
    if (o->conns == 0 || o->conns > MAX_CONNS || o->clients == 0 ||
        o->clients > MAX_CLIENTS || o->key_size == 0 || o->key_size > 4096 ||
        (o->w == W_TXN_PUT && o->key_size > 64) || o->key_space == 0 ||
        o->txn_ops == 0 || o->txn_ops > 64 ||
        (o->w == W_TXN_PUT && o->key_space < o->txn_ops) || o->streams == 0 ||
        o->watchers == 0 || o->val_size > (64u << 20)) {
        fprintf(stderr, "cairn-bench: an option is out of range\n");
        return -1;
    }
    /* endpoints: "host:port" gets http:// as etcd's tools add it */
    const char *p = eps;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (o->n_endpoints == CLIENT_ENDPOINTS_MAX || n >= 250) {
            fprintf(stderr, "cairn-bench: too many or too long endpoints\n");
            return -1;
        }
        char *buf = o->endpoint_buf[o->n_endpoints];
        const char *sep = strstr(p, "://");
        bool scheme = sep && (size_t)(sep - p) < n;
        snprintf(buf, 300, "%s%.*s", scheme ? "" : "http://", (int)n, p);
        o->endpoints[o->n_endpoints++] = buf;
        p += n;
        if (*p == ',')
            p++;
    }
    if (o->n_endpoints == 0) {
        fprintf(stderr, "cairn-bench: no endpoint\n");
        return -1;
    }
    return 0;
}

static void report(struct bench *b)
{
    double secs = (double)(now_ns() - b->start_ns) / 1e9;
    uint64_t ok = b->lat.count;
    double qps = secs > 0 ? (double)ok / secs : 0;
    const char *name = workload_names[b->o.w];
    printf("\nSummary (%s):\n", name);
    printf("  Total:\t%.4f secs.\n", secs);
    if (b->o.w == W_WATCH)
        printf("  Events:\t%" PRIu64 " of %" PRIu64 " (%" PRIu64
               " ahead of their put's answer)\n",
               b->events, b->expected_events, b->early);
    printf("  Requests:\t%" PRIu64 " (%" PRIu64 " errors)\n",
           b->o.w == W_WATCH ? b->events : b->completed, b->errors);
    printf("  Requests/sec:\t%.1f\n", qps);
    printf("  Latency ms:\taverage %.3f p50 %.3f p90 %.3f p99 %.3f "
           "p99.9 %.3f max %.3f\n",
           ok ? b->lat.sum_us / (double)ok / 1000 : 0,
           hist_quantile(&b->lat, 0.5) / 1000,
           hist_quantile(&b->lat, 0.9) / 1000,
           hist_quantile(&b->lat, 0.99) / 1000,
           hist_quantile(&b->lat, 0.999) / 1000, (double)b->lat.max_us / 1000);
    if (b->errors) {
        printf("Errors:\n");
        for (unsigned i = 0; i < b->n_kinds; i++)
            printf("  %" PRIu64 "\t%s\n", b->kinds[i].n, b->kinds[i].text);
        if (b->other_errors)
            printf("  %" PRIu64 "\t(other kinds)\n", b->other_errors);
    }
    printf("RESULT %s qps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%" PRIu64 "\n",
           name, qps, hist_quantile(&b->lat, 0.5) / 1000,
           hist_quantile(&b->lat, 0.99) / 1000, b->errors);
}

int main(int argc, char **argv)
{
    static struct bench bench;
    struct bench *b = &bench;
    if (parse(&b->o, argc, argv) != 0) {
        usage();
        return 2;
    }
    struct opts *o = &b->o;
    b->rng = o->seed;
    b->tty = isatty(2);
    b->val = cairn_calloc(1, o->val_size ? o->val_size : 1);
    b->workers = cairn_calloc(o->clients, sizeof(*b->workers));
    b->waiting = cairn_calloc(o->clients, sizeof(*b->waiting));
    if (!b->val || !b->workers || !b->waiting) {
        fprintf(stderr, "cairn-bench: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < o->val_size; i++)
        b->val[i] = (uint8_t)('a' + rnd(b) % 26);

    size_t first = 0;
    struct client_config cfg = {.endpoints = o->endpoints,
                                .n_endpoints = o->n_endpoints,
                                .timeout_ms = o->timeout_ms};
    struct cairn_errmsg msg;
    struct net_tls *tls = NULL;
    if (o->cacert_file || o->cert_file || o->key_file) {
        struct net_tls_config tc = {.trusted_ca_file = o->cacert_file,
                                    .cert_file = o->cert_file,
                                    .key_file = o->key_file};
        if (net_tls_open(&tc, NULL, &tls, &msg) != 0) {
            fprintf(stderr, "cairn-bench: %s\n", msg.text);
            return 2;
        }
        cfg.tls = tls;
    }
    if (o->target_leader) {
        struct client *probe;
        if (client_init(&probe, NULL, &cfg, &msg) != 0) {
            fprintf(stderr, "cairn-bench: %s\n", msg.text);
            return 1;
        }
        int rv = client_leader_sync(probe, &first);
        client_close(probe);
        if (rv != 0) {
            fprintf(stderr, "cairn-bench: finding the leader: %s\n",
                    cairn_strerror(rv));
            return 1;
        }
        fprintf(stderr, "cairn-bench: leader at %s\n", o->endpoints[first]);
    }
    if (uv_loop_init(&b->loop) != 0)
        return 1;
    for (unsigned i = 0; i < o->conns; i++) {
        /* --target-leader: every connection to the leader; otherwise the
         * connections spread over the endpoints */
        cfg.first_endpoint = o->target_leader ? first : i % o->n_endpoints;
        cfg.max_pending = o->clients + 16;
        if (client_init(&b->conns[i], &b->loop, &cfg, &msg) != 0) {
            fprintf(stderr, "cairn-bench: %s\n", msg.text);
            return 1;
        }
    }
    for (unsigned i = 0; i < o->clients; i++) {
        b->workers[i].b = b;
        b->workers[i].id = i;
    }

    int rv = 0;
    if (o->w == W_WATCH) {
        rv = run_watch(b);
    } else {
        if (o->w == W_LEASE_KEEPALIVE) {
            /* one lease per client, before the clock starts */
            grant_more(b);
            for (long i = 0; i < 100000000 && b->grant_done < o->clients; i++)
                uv_run(&b->loop, UV_RUN_ONCE);
            if (b->grant_failed || b->grant_done < o->clients) {
                fprintf(stderr, "cairn-bench: %u of %u lease grants failed\n",
                        b->grant_failed, o->clients);
                return 1;
            }
        }
        b->start_ns = now_ns();
        b->last_progress_ns = b->start_ns;
        b->end_ns = b->start_ns + (uint64_t)(o->duration_s * 1e9);
        uv_timer_init(&b->loop, &b->tick);
        b->tick.data = b;
        uv_timer_start(&b->tick, tick_cb, 1, 1);
        b->active_workers = (int)o->clients;
        for (unsigned i = 0; i < o->clients; i++)
            issue(&b->workers[i]);
        uv_run(&b->loop, UV_RUN_DEFAULT);
    }
    progress(b, true);
    if (rv == 0)
        report(b);
    for (unsigned i = 0; i < o->conns; i++)
        client_close(b->conns[i]);
    if (uv_is_active((uv_handle_t *)&b->tick) || b->tick.data)
        uv_close((uv_handle_t *)&b->tick, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    cairn_free(b->val);
    cairn_free(b->workers);
    cairn_free(b->waiting);
    cairn_free(b->wstreams);
    cairn_free(b->puts_done);
    net_tls_close(tls);
    return rv == 0 ? 0 : 1;
}

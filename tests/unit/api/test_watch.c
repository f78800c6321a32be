/* The Watch service through rpc against the fake member's hub: created,
 * events, prev_kv and filters, explicit and duplicate ids, cancel,
 * progress, compaction, and a half-closed client still served. */
#include <string.h>

#include "api/api_int.h"
#include "fake.h"
#include "util/prng.h"

#define WATCH "/etcdserverpb.Watch/Watch"
#define BIN(s) ((ProtobufCBinaryData){sizeof(s) - 1, (uint8_t *)(s)})

static void send_req(struct result *r, const Etcdserverpb__WatchRequest *q)
{
    uint8_t buf[256];
    size_t n = etcdserverpb__watch_request__get_packed_size(q);
    assert_true(n <= sizeof(buf));
    etcdserverpb__watch_request__pack(q, buf);
    assert_int_equal(rpc_call_send(r->call, buf, n), 0);
}

static void create(struct result *r, Etcdserverpb__WatchCreateRequest *c)
{
    Etcdserverpb__WatchRequest q = ETCDSERVERPB__WATCH_REQUEST__INIT;
    q.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    q.create_request = c;
    send_req(r, &q);
}

static Etcdserverpb__WatchResponse *next(struct fx *f, struct result *r, int n)
{
    RUN_UNTIL(f, r->n_msgs == n);
    Etcdserverpb__WatchResponse *w =
        etcdserverpb__watch_response__unpack(NULL, r->last.len, r->last.data);
    assert_non_null(w);
    return w;
}

static void put(struct fx *f, const char *k, const char *v)
{
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = (ProtobufCBinaryData){strlen(k), (uint8_t *)k};
    p.value = (ProtobufCBinaryData){strlen(v), (uint8_t *)v};
    struct result r;
    fx_unary(f, "/etcdserverpb.KV/Put", &p.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
}

static void test_watch_stream(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    put(&f, "a0", "old");
    struct result r;
    fx_stream_start(&f, WATCH, &r);
    Etcdserverpb__WatchCreateRequest c =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key = BIN("a");
    c.range_end = BIN("b");
    c.prev_kv = 1;
    create(&r, &c);
    Etcdserverpb__WatchResponse *w = next(&f, &r, 1);
    assert_true(w->created);
    assert_false(w->canceled);
    assert_int_equal(w->watch_id, 0);
    assert_int_equal(w->header->revision, 2);
    assert_int_equal(w->header->member_id, 0xa1);
    etcdserverpb__watch_response__free_unpacked(w, NULL);

    put(&f, "a0", "new");
    put(&f, "b", "out of range");
    fake_watch_poll(&f.fake);
    w = next(&f, &r, 2);
    assert_int_equal(w->watch_id, 0);
    assert_int_equal(w->n_events, 1);
    assert_int_equal(w->events[0]->type, MVCCPB__EVENT__EVENT_TYPE__PUT);
    assert_memory_equal(w->events[0]->kv->value.data, "new", 3);
    assert_int_equal(w->events[0]->kv->mod_revision, 3);
    assert_non_null(w->events[0]->prev_kv);
    assert_memory_equal(w->events[0]->prev_kv->value.data, "old", 3);
    assert_int_equal(w->header->revision, 4);
    etcdserverpb__watch_response__free_unpacked(w, NULL);

    /* an explicit id, then the same id again */
    Etcdserverpb__WatchCreateRequest c7 =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c7.key = BIN("a0");
    c7.watch_id = 7;
    Etcdserverpb__WatchCreateRequest__FilterType noput =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
    c7.n_filters = 1;
    c7.filters = &noput;
    create(&r, &c7);
    w = next(&f, &r, 3);
    assert_true(w->created);
    assert_int_equal(w->watch_id, 7);
    etcdserverpb__watch_response__free_unpacked(w, NULL);
    create(&r, &c7);
    w = next(&f, &r, 4);
    assert_true(w->created);
    assert_true(w->canceled);
    assert_int_equal(w->watch_id, -1);
    assert_string_equal(w->cancel_reason,
                        "mvcc: duplicate watch ID provided on the WatchStream");
    etcdserverpb__watch_response__free_unpacked(w, NULL);

    /* a delete: watcher 0 sees it with prev_kv, watcher 7 (no puts) too */
    Etcdserverpb__DeleteRangeRequest d =
        ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    d.key = BIN("a0");
    struct result dr;
    fx_unary(&f, "/etcdserverpb.KV/DeleteRange", &d.base, &dr);
    assert_int_equal(dr.code, RPC_OK);
    result_free(&dr);
    put(&f, "a0", "again");
    fake_watch_poll(&f.fake);
    RUN_UNTIL(&f, r.n_msgs == 6);
    /* the last is watcher 7's: only the delete */
    w = next(&f, &r, 6);
    assert_int_equal(w->watch_id, 7);
    assert_int_equal(w->n_events, 1);
    assert_int_equal(w->events[0]->type, MVCCPB__EVENT__EVENT_TYPE__DELETE);
    assert_int_equal(w->events[0]->kv->mod_revision, 5);
    etcdserverpb__watch_response__free_unpacked(w, NULL);

    /* cancel 7; an unknown id gets no answer */
    Etcdserverpb__WatchCancelRequest cr =
        ETCDSERVERPB__WATCH_CANCEL_REQUEST__INIT;
    Etcdserverpb__WatchRequest q = ETCDSERVERPB__WATCH_REQUEST__INIT;
    q.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
    q.cancel_request = &cr;
    cr.watch_id = 99;
    send_req(&r, &q);
    cr.watch_id = 7;
    send_req(&r, &q);
    w = next(&f, &r, 7);
    assert_int_equal(w->watch_id, 7);
    assert_true(w->canceled);
    assert_false(w->created);
    assert_int_equal(w->header->revision, 6);
    etcdserverpb__watch_response__free_unpacked(w, NULL);

    /* progress: the caught-up watcher 0 gets a notification at rev 6 */
    Etcdserverpb__WatchProgressRequest pr =
        ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
    q.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    q.progress_request = &pr;
    send_req(&r, &q);
    w = next(&f, &r, 8);
    assert_int_equal(w->watch_id, 0);
    assert_int_equal(w->n_events, 0);
    assert_false(w->created || w->canceled);
    assert_int_equal(w->header->revision, 6);
    etcdserverpb__watch_response__free_unpacked(w, NULL);

    /* the client half-closes: the stream still delivers */
    rpc_call_close_send(r.call);
    put(&f, "a1", "x");
    fake_watch_poll(&f.fake);
    w = next(&f, &r, 9);
    assert_int_equal(w->n_events, 1);
    assert_memory_equal(w->events[0]->kv->key.data, "a1", 2);
    etcdserverpb__watch_response__free_unpacked(w, NULL);
    assert_int_equal(r.done, 0);
    rpc_call_cancel(r.call);
    RUN_UNTIL(&f, f.fake.hubs_closed == 1);
    result_free(&r);
    fx_close(&f);
}

static void test_watch_compacted(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    put(&f, "k", "1");
    put(&f, "k", "2");
    f.fake.compact_rev = 2;
    struct result r;
    fx_stream_start(&f, WATCH, &r);
    Etcdserverpb__WatchCreateRequest c =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key = BIN("k");
    c.start_revision = 1;
    create(&r, &c);
    Etcdserverpb__WatchResponse *w = next(&f, &r, 1);
    assert_true(w->created);
    etcdserverpb__watch_response__free_unpacked(w, NULL);
    fake_watch_poll(&f.fake);
    w = next(&f, &r, 2);
    assert_true(w->canceled);
    assert_int_equal(w->compact_revision, 2);
    etcdserverpb__watch_response__free_unpacked(w, NULL);
    /* a progress request with no watcher left: etcd's answer, id -1 */
    Etcdserverpb__WatchProgressRequest pr =
        ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
    Etcdserverpb__WatchRequest q = ETCDSERVERPB__WATCH_REQUEST__INIT;
    q.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    q.progress_request = &pr;
    send_req(&r, &q);
    w = next(&f, &r, 3);
    assert_int_equal(w->watch_id, -1);
    assert_int_equal(w->header->revision, 3);
    etcdserverpb__watch_response__free_unpacked(w, NULL);
    /* garbage ends the stream */
    static const uint8_t bad[] = {0x0a, 0x40};
    assert_int_equal(rpc_call_send(r.call, bad, sizeof(bad)), 0);
    RUN_UNTIL(&f, r.done == 1);
    assert_int_equal(r.code, RPC_INTERNAL);
    RUN_UNTIL(&f, f.fake.hubs_closed == 1);
    result_free(&r);
    fx_close(&f);
}

/* The same response packed by protobuf-c. */
static size_t pb_pack(const struct api_header *h,
                      const struct mvcc_watch_resp *r, uint8_t *out)
{
    Etcdserverpb__ResponseHeader ph = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    ph.cluster_id = h->cluster_id;
    ph.member_id = h->member_id;
    ph.revision = h->revision;
    ph.raft_term = h->raft_term;
    Etcdserverpb__WatchResponse w = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    w.header = &ph;
    w.watch_id = r->watch_id;
    w.canceled = r->canceled;
    w.compact_revision = r->compact_rev;
    w.fragment = r->fragment;
    Mvccpb__Event ev[8], *pev[8];
    Mvccpb__KeyValue kv[8], prev[8];
    assert_true(r->n_events <= 8);
    for (size_t i = 0; i < r->n_events; i++) {
        const struct mvcc_event *e = &r->events[i];
        const struct mvcc_kv *src[2] = {&e->kv, e->prev_kv};
        Mvccpb__KeyValue *dst[2] = {&kv[i], &prev[i]};
        for (int k = 0; k < 2; k++) {
            if (src[k] == NULL)
                continue;
            mvccpb__key_value__init(dst[k]);
            dst[k]->key =
                (ProtobufCBinaryData){src[k]->key_len, (uint8_t *)src[k]->key};
            dst[k]->value = (ProtobufCBinaryData){src[k]->value_len,
                                                  (uint8_t *)src[k]->value};
            dst[k]->create_revision = src[k]->create_rev;
            dst[k]->mod_revision = src[k]->mod_rev;
            dst[k]->version = src[k]->version;
            dst[k]->lease = src[k]->lease;
        }
        mvccpb__event__init(&ev[i]);
        ev[i].type = e->is_delete ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                                  : MVCCPB__EVENT__EVENT_TYPE__PUT;
        ev[i].kv = &kv[i];
        ev[i].prev_kv = e->prev_kv ? &prev[i] : NULL;
        pev[i] = &ev[i];
    }
    w.n_events = r->n_events;
    w.events = pev;
    return etcdserverpb__watch_response__pack(&w, out);
}

/* A value that is zero, small, large or negative. */
static int64_t any_int(struct prng *g)
{
    switch (prng_next(g) % 4) {
    case 0:
        return 0;
    case 1:
        return (int64_t)(prng_next(g) % 300);
    case 2:
        return (int64_t)(prng_next(g) >> 2);
    default:
        return -(int64_t)(prng_next(g) % 1000) - 1;
    }
}

static void random_kv(struct prng *g, struct mvcc_kv *kv, uint8_t *key,
                      uint8_t *val)
{
    kv->key_len = prng_next(g) % 4 == 0 ? 0 : 1 + prng_next(g) % 40;
    for (size_t i = 0; i < kv->key_len; i++)
        key[i] = (uint8_t)('a' + prng_next(g) % 3);
    kv->key = key;
    kv->value_len = prng_next(g) % 3 == 0 ? 0 : prng_next(g) % 200;
    for (size_t i = 0; i < kv->value_len; i++)
        val[i] = (uint8_t)prng_next(g);
    kv->value = kv->value_len ? val : NULL;
    kv->create_rev = any_int(g);
    kv->mod_rev = prng_next(g) % 4; /* few: lists often look alike */
    kv->version = any_int(g);
    kv->lease = any_int(g);
}

/* The hand-built responses equal protobuf-c's packing byte for byte,
 * whether the encoder reuses its last events (the same list again, for
 * another watcher) or must see that a list in the same memory changed. */
static void test_watch_encoding(void **state)
{
    (void)state;
    struct prng g;
    prng_seed(&g, 20261130);
    struct api__wenc e;
    api__wenc_init(&e);
    static uint8_t keys[8][2][48], vals[8][2][256], want[16384];
    struct mvcc_event evs[8];
    struct mvcc_kv prevs[8];
    size_t n = 0;
    for (int round = 0; round < 20000; round++) {
        int what = (int)(prng_next(&g) % 4);
        if (round == 0 || what == 0) {
            n = prng_next(&g) % 5;
            for (size_t i = 0; i < n; i++) {
                random_kv(&g, &evs[i].kv, keys[i][0], vals[i][0]);
                evs[i].is_delete = prng_next(&g) % 3 == 0;
                evs[i].prev_kv = NULL;
                if (prng_next(&g) % 2) {
                    random_kv(&g, &prevs[i], keys[i][1], vals[i][1]);
                    evs[i].prev_kv = &prevs[i];
                }
            }
        } else if (what == 1 && n > 0) {
            /* one detail of one event changes in place */
            size_t i = prng_next(&g) % n;
            switch (prng_next(&g) % 4) {
            case 0:
                if (evs[i].kv.key_len > 0)
                    keys[i][0][prng_next(&g) % evs[i].kv.key_len] ^= 1;
                break;
            case 1:
                evs[i].kv.mod_rev++;
                break;
            case 2:
                evs[i].is_delete = !evs[i].is_delete;
                break;
            default:
                evs[i].prev_kv = evs[i].prev_kv ? NULL : &prevs[i];
                if (evs[i].prev_kv)
                    random_kv(&g, &prevs[i], keys[i][1], vals[i][1]);
                break;
            }
        }
        /* what == 2, 3: the same list for another watcher */
        struct api_header h = {(uint64_t)any_int(&g), (uint64_t)any_int(&g),
                               any_int(&g), (uint64_t)any_int(&g)};
        struct mvcc_watch_resp r = {
            .watch_id = any_int(&g),
            .header_rev = h.revision,
            .compact_rev = prng_next(&g) % 8 == 0 ? any_int(&g) : 0,
            .canceled = prng_next(&g) % 8 == 0,
            .fragment = prng_next(&g) % 8 == 0,
            .events = evs,
            .n_events = n,
        };
        const uint8_t *got;
        size_t got_len;
        assert_int_equal(api__wenc_response(&e, &h, &r, &got, &got_len), 0);
        size_t want_len = pb_pack(&h, &r, want);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
    }
    api__wenc_free(&e);
}

int test_watch_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_stream),
        cmocka_unit_test(test_watch_compacted),
        cmocka_unit_test(test_watch_encoding),
    };
    return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}

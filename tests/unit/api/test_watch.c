/* The Watch service through rpc against the fake member's hub: created,
 * events, prev_kv and filters, explicit and duplicate ids, cancel,
 * progress, compaction, and a half-closed client still served. */
#include <string.h>

#include "fake.h"

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

int test_watch_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_stream),
        cmocka_unit_test(test_watch_compacted),
    };
    return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}

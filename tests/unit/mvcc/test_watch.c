/* Watch hub cases: cancellation of a compacted start revision with the
 * compact revision, progress notifications as bookmarks, fragmentation of
 * large responses, a slow watcher that never blocks writers and catches up
 * from the store, and the id rules. */
#include <fcntl.h>

#include "helpers.h"
#include "tests.h"

struct rec {
    int64_t id;
    int responses;
    int events;
    int fragments;
    bool canceled;
    mvcc_rev compact_rev;
    mvcc_rev last_header;
    mvcc_rev last_event_rev;
    bool refuse;
    int progress;
};

static int cb(void *arg, const struct mvcc_watch_resp *r)
{
    /* arg is an array of 8 records indexed by watch id. */
    assert_true(r->watch_id >= 0 && r->watch_id < 8);
    struct rec *x = (struct rec *)arg + r->watch_id;
    if (x->refuse && r->n_events > 0)
        return CAIRN_EAGAIN;
    x->id = r->watch_id;
    x->responses++;
    x->events += (int)r->n_events;
    x->fragments += r->fragment;
    if (r->canceled) {
        x->canceled = true;
        x->compact_rev = r->compact_rev;
    }
    if (r->n_events == 0 && !r->canceled)
        x->progress++;
    assert_true(r->header_rev >= x->last_header);
    x->last_header = r->header_rev;
    for (size_t i = 0; i < r->n_events; i++) {
        /* ordered and unique */
        assert_true(r->events[i].kv.mod_rev > x->last_event_rev ||
                    (r->events[i].kv.mod_rev == x->last_event_rev &&
                     r->events[i].is_delete));
        x->last_event_rev = r->events[i].kv.mod_rev;
    }
    return 0;
}

#ifdef CAIRN_FAULTS
/* Like cb but counts a response at or below the last seen revision as a
 * repeat (in .progress) instead of failing. */
static int dup_cb(void *arg, const struct mvcc_watch_resp *r)
{
    struct rec *x = (struct rec *)arg + r->watch_id;
    x->events += (int)r->n_events;
    if (r->n_events > 0 && r->events[0].kv.mod_rev <= x->last_event_rev)
        x->progress++;
    for (size_t i = 0; i < r->n_events; i++)
        if (r->events[i].kv.mod_rev > x->last_event_rev)
            x->last_event_rev = r->events[i].kv.mod_rev;
    return 0;
}
#endif

static void puts_n(struct mvcc_store *s, int n, size_t vlen, uint64_t *ci)
{
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint8_t *v = calloc(1, vlen + 1);
    assert_int_equal(mvcc_batch_begin(s), 0);
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof(k), "w%04d", i % 50);
        struct mvcc_put_req q = {.key = (const uint8_t *)k,
                                 .key_len = strlen(k),
                                 .value = v,
                                 .value_len = vlen};
        struct mvcc_put_resp r;
        assert_int_equal(mvcc_put(s, &q, &a, &r), 0);
        mvcc_arena_reset(&a);
    }
    assert_int_equal(mvcc_batch_commit(s, ++*ci), 0);
    free(v);
    mvcc_arena_free(&a);
}

static void drain(struct mvcc_watch_hub *h)
{
    bool more = true;
    for (int i = 0; i < 100000 && more; i++)
        assert_int_equal(mvcc_watch_hub_poll(h, &more), 0);
    assert_false(more);
}

static const uint8_t Z = 0;
#define ALL .key = &Z, .key_len = 1, .end = &Z, .end_len = 1

static void count_commit(void *arg, mvcc_rev rev)
{
    mvcc_rev *last = arg;
    assert_true(rev >= *last);
    *last = rev;
}

static void test_watch_cases(void **state)
{
    (void)state;
    char *d = tmp_dir();
    mvcc_rev notified = 0;
    struct mvcc_options so = {.dir = d,
                              .quota_bytes = 64u << 20,
                              .on_commit = count_commit,
                              .on_commit_arg = &notified};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&so, &s, &em), 0);
    uint64_t ci = 0;
    puts_n(s, 20, 4, &ci);          /* revisions 2..21 */
    assert_int_equal(notified, 21); /* the loop would be woken now */
    mvcc_rev hdr;
    assert_int_equal(mvcc_batch_begin(s), 0);
    assert_int_equal(mvcc_compact(s, 10, &hdr), 0);
    assert_int_equal(mvcc_batch_commit(s, ++ci), 0);

    struct rec xs[8] = {0};
    struct rec *xp = &xs[0];
    struct mvcc_watch_hub *h;
    struct mvcc_watch_hub_options o = {
        .max_revs_per_poll = 7, .fragment_bytes = 300, .max_watchers = 2};
    assert_int_equal(mvcc_watch_hub_init(s, &o, xs, cb, &h), 0);
    /* Compacted start revision: canceled with the compact revision. */
    struct mvcc_watch_req w = {ALL, .start_rev = 5};
    int64_t id = -1;
    assert_int_equal(mvcc_watch_create(h, &w, &id), 0);
    assert_int_equal(id, 0);
    drain(h);
    assert_true(xp->canceled);
    assert_int_equal(xp->compact_rev, 10);
    assert_int_equal(xp->events, 0);
    assert_int_equal(mvcc_watch_cancel(h, id), CAIRN_ENOTFOUND);

    /* From the compact revision itself: everything from 10 on. */
    xp = &xs[5];
    w.start_rev = 10;
    id = 5;
    assert_int_equal(mvcc_watch_create(h, &w, &id), 0);
    int64_t dup = 5;
    assert_int_equal(mvcc_watch_create(h, &w, &dup), CAIRN_EEXISTS);
    assert_int_equal(mvcc_watch_progress(h, 5), CAIRN_EAGAIN); /* behind */
    drain(h);
    assert_false(xp->canceled);
    assert_int_equal(xp->events, 12); /* revisions 10..21 */
    assert_int_equal(xp->last_event_rev, 21);
    /* Synced: a progress notification bookmarks revision 21. */
    assert_int_equal(mvcc_watch_progress(h, 5), 0);
    assert_int_equal(xp->progress, 1);
    assert_int_equal(xp->last_header, 21);

    /* A slow watcher: refuses everything while writers go on. */
    xp->refuse = true;
    for (int i = 0; i < 10; i++) {
        puts_n(s, 30, 4, &ci);
        bool more;
        assert_int_equal(mvcc_watch_hub_poll(h, &more), 0);
    }
    assert_int_equal(xp->events, 12);
    assert_int_equal(mvcc_watch_progress(h, 5), CAIRN_EAGAIN);
    xp->refuse = false;
    assert_int_equal(mvcc_watch_resume(h, 5), 0);
    drain(h);
    assert_int_equal(xp->events, 12 + 300);
    assert_int_equal(xp->last_event_rev, 321);

    /* Fragmentation: 8 events of ~100 bytes in one revision-range,
     * fragment_bytes 300. */
    int64_t id2 = -1;
    assert_int_equal(mvcc_watch_cancel(h, 5), 0);
    mvcc_watch_hub_close(h);
    memset(xs, 0, sizeof(xs));
    assert_int_equal(mvcc_watch_hub_init(s, &o, xs, cb, &h), 0);
    struct mvcc_watch_req wf = {ALL, .fragment = true, .prev_kv = true,
                                .no_delete = true};
    assert_int_equal(mvcc_watch_create(h, &wf, &id2), 0);
    struct mvcc_watch_req wn = {ALL};
    int64_t id3 = -1;
    assert_int_equal(mvcc_watch_create(h, &wn, &id3), 0);
    int64_t id4 = -1;
    assert_int_equal(mvcc_watch_create(h, &wn, &id4), CAIRN_EFULL);
    puts_n(s, 7, 60, &ci);
    drain(h);
    /* Both watchers saw 7 events; the fragmenting one in several pieces
     * (prev_kv doubles its size), the other in one response per poll. */
    assert_int_equal(xs[id2].events, 7);
    assert_true(xs[id2].fragments >= 2);
    assert_int_equal(xs[id3].events, 7);
    assert_int_equal(xs[id3].fragments, 0);
    mvcc_watch_hub_close(h);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

/* A follower's store replaced by the leader's snapshot mid-watch: its
 * watchers continue from where they were, with no revision twice or
 * missing, and an older snapshot is refused (no going back in time). */
static void test_snapshot_restore_mid_watch(void **state)
{
    (void)state;
    char *da = tmp_dir(), *db = tmp_dir();
    struct mvcc_store *a = store_open(da), *b = store_open(db);
    uint64_t cia = 0, cib = 0;
    puts_n(a, 50, 8, &cia); /* revisions 2..51 */
    mvcc_rev hdr;
    assert_int_equal(mvcc_batch_begin(a), 0);
    assert_int_equal(mvcc_compact(a, 8, &hdr), 0);
    assert_int_equal(mvcc_batch_commit(a, ++cia), 0);
    bool done = false;
    while (!done)
        assert_int_equal(mvcc_compact_step(a, 100, &done), 0);
    puts_n(b, 10, 8, &cib); /* the same first 10: revisions 2..11 */

    struct rec xs[8] = {0};
    struct mvcc_watch_hub *h;
    assert_int_equal(mvcc_watch_hub_init(b, NULL, xs, cb, &h), 0);
    struct mvcc_watch_req w = {ALL, .start_rev = 5, .prev_kv = true};
    int64_t id = -1;
    assert_int_equal(mvcc_watch_create(h, &w, &id), 0);
    drain(h);
    assert_int_equal(xs[id].events, 7);
    assert_int_equal(xs[id].last_event_rev, 11);

    char snap[512];
    snprintf(snap, sizeof(snap), "%s/snap.tmp", db);
    int fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_snapshot_write(a, fd, &em), 0);
    close(fd);
    assert_int_equal(mvcc_snapshot_restore(b, snap, &em), 0);
    drain(h);
    assert_false(xs[id].canceled);
    assert_int_equal(xs[id].events, 7 + 40);
    assert_int_equal(xs[id].last_event_rev, 51);
    uint32_t ha, hb;
    mvcc_rev ca, cbr, ra, rb;
    assert_int_equal(mvcc_hash_kv(a, 0, &ha, &ca, &ra), 0);
    assert_int_equal(mvcc_hash_kv(b, 0, &hb, &cbr, &rb), 0);
    assert_int_equal(ha, hb);
    assert_int_equal(cbr, 8);

    /* An older snapshot (a's state before more writes to b) is refused. */
    puts_n(b, 5, 8, &cib);
    fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(mvcc_snapshot_write(a, fd, &em), 0);
    close(fd);
    assert_int_equal(mvcc_snapshot_restore(b, snap, &em), CAIRN_EINVAL);
    unlink(snap);
    struct mvcc_status st;
    assert_int_equal(mvcc_status_get(b, &st), 0);
    assert_int_equal(st.rev, 56);
    mvcc_watch_hub_close(h);
    mvcc_close(a);
    mvcc_close(b);
    rm_dir(da);
    rm_dir(db);
    free(da);
    free(db);
}

/* A watcher replaying a long history does not delay a synced one. */
static void test_laggard_does_not_delay_synced(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_store *s = store_open(d);
    uint64_t ci = 0;
    puts_n(s, 500, 4, &ci); /* revisions 2..501 */
    struct rec xs[8] = {0};
    struct mvcc_watch_hub *h;
    struct mvcc_watch_hub_options o = {.max_revs_per_poll = 50};
    assert_int_equal(mvcc_watch_hub_init(s, &o, xs, cb, &h), 0);
    struct mvcc_watch_req old = {ALL, .start_rev = 2};
    struct mvcc_watch_req now = {ALL};
    int64_t id_old = -1, id_now = -1;
    assert_int_equal(mvcc_watch_create(h, &old, &id_old), 0);
    assert_int_equal(mvcc_watch_create(h, &now, &id_now), 0);
    puts_n(s, 1, 4, &ci); /* revision 502 */
    bool more;
    assert_int_equal(mvcc_watch_hub_poll(h, &more), 0);
    assert_true(more);
    assert_int_equal(xs[id_now].events, 1);
    assert_int_equal(xs[id_now].last_event_rev, 502);
    assert_int_equal(xs[id_old].events, 50);
    drain(h);
    assert_int_equal(xs[id_old].events, 501);
    assert_int_equal(xs[id_now].events, 1);
    mvcc_watch_hub_close(h);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

/* A single-key watch as the API builds it: no range end at all (NULL, 0). */
static void test_point_watch_without_end(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_options so = {.dir = d, .quota_bytes = 64u << 20};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&so, &s, &em), 0);
    struct rec xs[8] = {0};
    struct mvcc_watch_hub *h;
    struct mvcc_watch_hub_options o = {0};
    assert_int_equal(mvcc_watch_hub_init(s, &o, xs, cb, &h), 0);
    static const uint8_t key[] = "w0001";
    struct mvcc_watch_req w = {
        .key = key, .key_len = 5, .end = NULL, .end_len = 0};
    int64_t id = 1;
    assert_int_equal(mvcc_watch_create(h, &w, &id), 0);
    uint64_t ci = 0;
    puts_n(s, 3, 4, &ci); /* w0000, w0001, w0002 */
    drain(h);
    assert_int_equal(xs[1].events, 1);
    assert_false(xs[1].canceled);
    mvcc_watch_hub_close(h);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

#ifdef CAIRN_FAULTS
/* The fault switch breaks uniqueness: with it, a response starting at a
 * revision that is a multiple of 5 arrives twice; without it, never. */
static void run_deliver_twice(bool fault, int *events, int *dups)
{
    char *d = tmp_dir();
    struct mvcc_options so = {.dir = d, .quota_bytes = 64u << 20};
    struct mvcc_store *s;
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&so, &s, &em), 0);
    struct rec xs[8] = {0};
    struct mvcc_watch_hub *h;
    struct mvcc_watch_hub_options o = {.max_revs_per_poll = 1,
                                       .fault_deliver_twice = fault};
    assert_int_equal(mvcc_watch_hub_init(s, &o, xs, dup_cb, &h), 0);
    struct mvcc_watch_req w = {ALL, .start_rev = 1};
    int64_t id = 0;
    assert_int_equal(mvcc_watch_create(h, &w, &id), 0);
    uint64_t ci = 0;
    puts_n(s, 12, 4, &ci); /* revisions 2..13 */
    drain(h);
    *events = xs[0].events;
    *dups = xs[0].progress; /* dup_cb counts repeats here */
    mvcc_watch_hub_close(h);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

static void test_fault_deliver_twice(void **state)
{
    (void)state;
    int events, dups;
    run_deliver_twice(false, &events, &dups);
    assert_int_equal(events, 12);
    assert_int_equal(dups, 0);
    run_deliver_twice(true, &events, &dups);
    assert_int_equal(events, 12 + 2); /* revisions 5 and 10 again */
    assert_int_equal(dups, 2);
}
#endif

/* Many range watchers in the hub's interval index: random ranges (prefix,
 * arbitrary, unbounded, empty and inverted ones) created and canceled at
 * random; every event reaches exactly the watchers whose range holds its
 * key, checked against a plain scan. */
#define RW_N 400
struct rw_counts {
    int64_t events[RW_N];
};

static int rw_cb(void *arg, const struct mvcc_watch_resp *r)
{
    struct rw_counts *c = arg;
    assert_true(r->watch_id >= 0 && r->watch_id < RW_N);
    c->events[r->watch_id] += (int64_t)r->n_events;
    return 0;
}

static void rw_key(struct prng *p, char *k)
{
    size_t n = 1 + prng_below(p, 3);
    for (size_t i = 0; i < n; i++)
        k[i] = (char)('a' + prng_below(p, 5));
    k[n] = 0;
}

static bool rw_in(const char *k, const char *e, const char *key)
{
    if (e[0] == 0)
        return strcmp(k, key) == 0;
    if (strcmp(key, k) < 0)
        return false;
    if (strcmp(e, "\x01") == 0) /* stands for the unbounded "\0" end */
        return true;
    return strcmp(key, e) < 0;
}

static void test_many_range_watchers(void **state)
{
    (void)state;
    char *d = tmp_dir();
    struct mvcc_store *s = store_open(d);
    struct rw_counts got = {{0}};
    int64_t want[RW_N] = {0};
    char ks[RW_N][8], es[RW_N][8];
    bool live[RW_N] = {false};
    struct mvcc_watch_hub_options o = {.max_watchers = RW_N};
    struct mvcc_watch_hub *h;
    assert_int_equal(mvcc_watch_hub_init(s, &o, &got, rw_cb, &h), 0);
    struct prng p;
    prng_seed(&p, 77);
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    uint64_t ci = 0;
    for (int round = 0; round < 20; round++) {
        /* Create or cancel about a quarter of the slots. */
        for (int i = 0; i < RW_N; i++) {
            if (!prng_chance(&p, 0.25))
                continue;
            if (live[i]) {
                assert_int_equal(mvcc_watch_cancel(h, i), 0);
                live[i] = false;
                continue;
            }
            rw_key(&p, ks[i]);
            switch (prng_below(&p, 4)) {
            case 0: /* prefix */
                strcpy(es[i], ks[i]);
                es[i][strlen(es[i]) - 1]++;
                break;
            case 1: /* unbounded */
                strcpy(es[i], "\x01");
                break;
            case 2: /* a point watcher, in the other index */
                es[i][0] = 0;
                break;
            default: /* arbitrary, maybe empty or inverted */
                rw_key(&p, es[i]);
            }
            static const uint8_t z = 0;
            bool unb = strcmp(es[i], "\x01") == 0;
            struct mvcc_watch_req q = {
                .key = (const uint8_t *)ks[i],
                .key_len = strlen(ks[i]),
                .end = unb ? &z : (const uint8_t *)es[i],
                .end_len = unb ? 1 : strlen(es[i]),
            };
            int64_t id = i;
            assert_int_equal(mvcc_watch_create(h, &q, &id), 0);
            live[i] = true;
        }
        assert_int_equal(mvcc_batch_begin(s), 0);
        for (int j = 0; j < 30; j++) {
            char k[8];
            rw_key(&p, k);
            struct mvcc_put_req q = {.key = (const uint8_t *)k,
                                     .key_len = strlen(k),
                                     .value = (const uint8_t *)"v",
                                     .value_len = 1};
            struct mvcc_put_resp r;
            assert_int_equal(mvcc_put(s, &q, &a, &r), 0);
            for (int i = 0; i < RW_N; i++)
                if (live[i] && rw_in(ks[i], es[i], k))
                    want[i]++;
        }
        assert_int_equal(mvcc_batch_commit(s, ++ci), 0);
        bool more = true;
        while (more)
            assert_int_equal(mvcc_watch_hub_poll(h, &more), 0);
        for (int i = 0; i < RW_N; i++)
            assert_int_equal(got.events[i], want[i]);
    }
    mvcc_watch_hub_close(h);
    mvcc_arena_free(&a);
    mvcc_close(s);
    rm_dir(d);
    free(d);
}

int test_watch_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_cases),
        cmocka_unit_test(test_snapshot_restore_mid_watch),
        cmocka_unit_test(test_laggard_does_not_delay_synced),
        cmocka_unit_test(test_point_watch_without_end),
        cmocka_unit_test(test_many_range_watchers),
#ifdef CAIRN_FAULTS
        cmocka_unit_test(test_fault_deliver_twice),
#endif
    };
    return cmocka_run_group_tests_name("mvcc_watch", tests, NULL, NULL);
}

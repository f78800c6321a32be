/* Snapshots: several MiB streamed in chunks on their own connection while
 * heartbeats keep flowing, received byte for byte into a fsynced file in
 * the host's directory; the outcome reported to the sender; a stream cut by
 * remove_peer or by closing leaves no partial file and no stuck state. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "tests.h"

#define SNAP_BYTES ((size_t)6 << 20)

static void write_body(struct fixture *f, const char *name, size_t n,
                       uint64_t seed, char *path, size_t path_size)
{
    snprintf(path, path_size, "%s/%s", f->root, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    struct prng r;
    prng_seed(&r, seed);
    uint8_t block[4096];
    for (size_t done = 0; done < n; done += sizeof(block)) {
        size_t k = n - done < sizeof(block) ? n - done : sizeof(block);
        for (size_t i = 0; i < k; i++)
            block[i] = (uint8_t)prng_next(&r);
        assert_int_equal(fwrite(block, 1, k, fp), k);
    }
    assert_int_equal(fclose(fp), 0);
}

static void assert_files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb");
    FILE *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    uint8_t x[4096], y[4096];
    size_t total = 0;
    for (;;) {
        size_t na = fread(x, 1, sizeof(x), fa);
        size_t nb = fread(y, 1, sizeof(y), fb);
        assert_int_equal(na, nb);
        assert_memory_equal(x, y, na);
        total += na;
        if (na == 0)
            break;
    }
    fclose(fa);
    fclose(fb);
    assert_true(total > 0);
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l >= s && strcmp(e->d_name + l - s, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int send_snap(struct fixture *f, int i, int j, raft_index index,
                     const char *path)
{
    struct raft_snapshot snap = {.meta = {.index = index, .term = 2},
                                 .data = (const uint8_t *)"desc",
                                 .len = 4};
    snap.meta.conf.n_voters = 2;
    snap.meta.conf.voters[0] = 1;
    snap.meta.conf.voters[1] = 2;
    struct raft_message m = {.type = RAFT_MSG_SNAP,
                             .from = f->m[i].id,
                             .to = f->m[j].id,
                             .term = 2,
                             .snapshot = &snap};
    struct cairn_errmsg msg;
    return transport_send_snapshot(f->m[i].t, &m, path, &msg);
}

/* Heartbeats every few milliseconds while a snapshot is under way. */
struct beat {
    struct fixture *f;
    uv_timer_t timer;
    size_t sent;
};

static void on_beat(uv_timer_t *h)
{
    struct beat *b = h->data;
    if (fx_send_heartbeat(b->f, 0, 1) == 0)
        b->sent++;
}

static bool status_heard(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[0].n_snap_status > 0;
}

static void on_beat_closed(uv_handle_t *h)
{
    (void)h;
}

static void streamed_while_heartbeats_flow(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    fx_wait_connected(&f, 0, 1);
    char path[PATH_MAX];
    write_body(&f, "body", SNAP_BYTES, 99, path, sizeof(path));

    struct beat b = {.f = &f};
    uv_timer_init(&f.loop, &b.timer);
    b.timer.data = &b;
    uv_timer_start(&b.timer, on_beat, 1, 1);
    assert_int_equal(send_snap(&f, 0, 1, 77, path), 0);
    /* One at a time per peer. */
    assert_int_equal(send_snap(&f, 0, 1, 78, path), CAIRN_EBUSY);
    fx_run_until(&f, status_heard, NULL);
    uv_timer_stop(&b.timer);
    uv_close((uv_handle_t *)&b.timer, on_beat_closed);

    assert_int_equal(f.m[0].n_snap_status, 1);
    assert_int_equal(f.m[0].snap_status, 0);
    assert_int_equal(f.m[0].snap_status_index, 77);
    assert_int_equal(f.m[1].n_snaps, 1);
    assert_int_equal(f.m[1].snap_index, 77);
    assert_string_equal(f.m[1].snap_desc, "desc");
    assert_files_equal(path, f.m[1].snap_path);
    /* In the host's directory, and nothing half-written beside it. */
    assert_int_equal(
        strncmp(f.m[1].snap_path, f.m[1].snap_dir, strlen(f.m[1].snap_dir)), 0);
    assert_int_equal(count_files(f.m[1].snap_dir, ".part"), 0);
    /* The stream did not hold the message connection up. */
    assert_true(f.m[1].heartbeats_at_snap > 0);
    struct transport_peer_status st = fx_status(&f, 0, 1);
    assert_int_equal(st.snapshots_sent, 1);
    assert_true(st.bytes_sent > SNAP_BYTES);
    struct transport_status ts;
    transport_status(f.m[1].t, &ts);
    assert_int_equal(ts.snapshots_received, 1);
    assert_int_equal(ts.snapshots_receive_failed, 0);

    /* A second one, empty, right after. */
    char empty[PATH_MAX];
    write_body(&f, "empty", 0, 1, empty, sizeof(empty));
    assert_int_equal(send_snap(&f, 0, 1, 80, empty), 0);
    f.m[0].n_snap_status = 0;
    fx_run_until(&f, status_heard, NULL);
    assert_int_equal(f.m[0].snap_status, 0);
    assert_int_equal(f.m[1].n_snaps, 2);
    assert_int_equal(f.m[1].snap_index, 80);

    /* Errors that never start a stream, and report nothing. */
    assert_int_equal(send_snap(&f, 0, 1, 81, "/nonexistent/body"),
                     CAIRN_ENOTFOUND);
    struct raft_message hb = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2};
    assert_int_equal(transport_send(f.m[0].t, &hb), CAIRN_EINVAL);
    fx_fini(&f);
}

/* Member 2 has received over 1 MiB from the sender (arg: its index). */
static bool stream_under_way(struct fixture *f, void *arg)
{
    int from = arg == NULL ? 0 : *(int *)arg;
    return fx_status(f, 1, from).bytes_received > (1u << 20);
}

static bool status_heard_3(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[2].n_snap_status > 0;
}

static bool receive_failed(struct fixture *f, void *arg)
{
    (void)arg;
    struct transport_status ts;
    transport_status(f->m[1].t, &ts);
    return ts.snapshots_receive_failed > 0 && ts.inbound_conns <= 1;
}

static bool got_one(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[2].n_got >= 1;
}

static void remove_peer_during_stream(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    f.cfg.snap_chunk_bytes = 16 << 10;
    for (int i = 0; i < 3; i++)
        fx_open(&f, i, 0);
    fx_mesh(&f, 3);
    fx_wait_connected(&f, 0, 1);
    char path[PATH_MAX];
    write_body(&f, "big", (size_t)12 << 20, 5, path, sizeof(path));
    assert_int_equal(send_snap(&f, 0, 1, 9, path), 0);
    fx_run_until(&f, stream_under_way, NULL);
    assert_int_equal(f.m[0].n_snap_status, 0);
    /* The sender drops the receiver mid-stream: reported canceled at once,
     * exactly once. */
    assert_int_equal(transport_remove_peer(f.m[0].t, 2), 0);
    assert_int_equal(f.m[0].n_snap_status, 1);
    assert_int_equal(f.m[0].snap_status, CAIRN_ECANCELED);
    assert_int_equal(f.m[0].snap_status_index, 9);
    /* The receiver sees the stream cut, keeps no file and delivers
     * nothing. */
    fx_run_until(&f, receive_failed, NULL);
    assert_int_equal(f.m[1].n_snaps, 0);
    assert_int_equal(count_files(f.m[1].snap_dir, ".part"), 0);
    assert_int_equal(count_files(f.m[1].snap_dir, ".body"), 0);
    /* The sender keeps serving its other peer. */
    fx_wait_connected(&f, 0, 2);
    assert_int_equal(fx_send_app(&f, 0, 2, 0, 10), 0);
    fx_run_until(&f, got_one, NULL);
    assert_int_equal(f.m[0].n_snap_status, 1);

    /* Now the receiver side cuts: member 2 removes member 3 while member 3
     * streams to it; member 3 hears a failure. */
    f.m[2].n_snap_status = 0;
    assert_int_equal(send_snap(&f, 2, 1, 10, path), 0);
    int sender = 2;
    fx_run_until(&f, stream_under_way, &sender);
    assert_int_equal(transport_remove_peer(f.m[1].t, 3), 0);
    fx_run_until(&f, status_heard_3, NULL);
    assert_true(f.m[2].snap_status < 0);
    assert_int_equal(f.m[1].n_snaps, 0);
    fx_fini(&f);
}

static bool closing_status(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[0].n_snap_status > 0;
}

static void close_during_stream(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    f.cfg.snap_chunk_bytes = 16 << 10;
    fx_open(&f, 0, 0);
    fx_open(&f, 1, 0);
    fx_mesh(&f, 2);
    fx_wait_connected(&f, 0, 1);
    char path[PATH_MAX];
    write_body(&f, "big", (size_t)8 << 20, 6, path, sizeof(path));
    assert_int_equal(send_snap(&f, 0, 1, 3, path), 0);
    fx_run_until(&f, stream_under_way, NULL);
    /* Closing reports the stream canceled, then nothing more. */
    fx_close(&f, 0);
    assert_true(closing_status(&f, NULL));
    assert_int_equal(f.m[0].snap_status, CAIRN_ECANCELED);
    fx_close(&f, 1);
    fx_fini(&f);
    assert_int_equal(f.m[0].n_snap_status, 1);
    assert_int_equal(f.m[1].n_snaps, 0);
}

static void stalled_stream_times_out(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    f.cfg.snap_stall_ms = 300;
    fx_open(&f, 0, 0);
    /* Member 2's address answers nothing, not even the handshake. */
    struct fx_mute mute;
    fx_mute_open(&f, &mute);
    const char *urls[1] = {mute.url};
    assert_int_equal(transport_add_peer(f.m[0].t, 2, urls, 1, NULL), 0);
    char path[PATH_MAX];
    write_body(&f, "body", 1000, 3, path, sizeof(path));
    assert_int_equal(send_snap(&f, 0, 1, 4, path), 0);
    fx_run_until(&f, status_heard, NULL);
    assert_int_equal(f.m[0].snap_status, CAIRN_ETIMEOUT);
    assert_int_equal(fx_status(&f, 0, 1).snapshots_failed, 1);
    /* The slot is free again. */
    assert_int_equal(send_snap(&f, 0, 1, 5, path), 0);
    fx_close(&f, 0);
    assert_int_equal(f.m[0].n_snap_status, 2);
    assert_int_equal(f.m[0].snap_status, CAIRN_ECANCELED);
    fx_mute_close(&f, &mute);
    fx_fini(&f);
}

static bool got_3(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[1].n_got >= 3;
}

static void over_unix_sockets(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    for (int i = 0; i < 2; i++) {
        char url[300];
        snprintf(url, sizeof(url), "unix://%s/m%d.sock", f.root, i + 1);
        fx_open_url(&f, i, url);
    }
    fx_mesh(&f, 2);
    for (uint64_t s = 0; s < 3; s++)
        assert_int_equal(fx_send_app(&f, 0, 1, s, 1000), 0);
    fx_run_until(&f, got_3, NULL);
    for (uint64_t s = 0; s < 3; s++) {
        assert_int_equal(f.m[1].got[s].index, s);
        assert_int_equal(f.m[1].got[s].data_crc, fx_app_crc(s, 1000));
    }
    char path[PATH_MAX];
    write_body(&f, "body", (size_t)1 << 20, 8, path, sizeof(path));
    assert_int_equal(send_snap(&f, 0, 1, 12, path), 0);
    fx_run_until(&f, status_heard, NULL);
    assert_int_equal(f.m[0].snap_status, 0);
    assert_files_equal(path, f.m[1].snap_path);
    fx_fini(&f);
}

int test_snapshot_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(streamed_while_heartbeats_flow),
        cmocka_unit_test(remove_peer_during_stream),
        cmocka_unit_test(close_during_stream),
        cmocka_unit_test(stalled_stream_times_out),
        cmocka_unit_test(over_unix_sockets),
    };
    return cmocka_run_group_tests_name("transport_snapshot", tests, NULL, NULL);
}

/* A property test against a plain list: random batches, overwrites of
 * uncommitted suffixes, snapshots and releases, injected write and sync
 * failures, crashes (some tearing the last write) and recoveries. After
 * every recovery the log must be the acknowledged list, or that list with a
 * prefix of the one unacknowledged batch written over it; nothing
 * acknowledged is ever lost. Seed: CAIRN_TEST_SEED; length:
 * CAIRN_WAL_MODEL_STEPS steps (default 3000) for each of
 * CAIRN_WAL_MODEL_SEEDS seeds (default 8) from CAIRN_TEST_SEED on;
 * CAIRN_WAL_MODEL_TRACE=1 prints every step and the WAL's log lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define MODEL_CAP 100000

static const struct wal_metadata META = {0xabc, 0xdef};

struct model {
    raft_term term[MODEL_CAP];
    size_t len[MODEL_CAP];
    raft_index last;
    raft_index commit;
    raft_index snap;
    raft_term snap_term;
    /* A snapshot whose file save failed: it may be found or not. */
    bool alt;
    raft_index alt_snap;
    raft_term alt_term;
    struct raft_hard_state hs;
    /* The batch whose append failed, if any: it may be on disk in part. */
    bool pending;
    raft_index p_first;
    size_t p_n;
    raft_term p_term;
    size_t p_len[16];
    bool p_has_hs;
    struct raft_hard_state p_hs;
};

static bool matches_model(const struct model *md, const struct wal_recovery *r)
{
    raft_index base = r->snap.index;
    if (base + r->n_entries != md->last)
        return false;
    for (size_t i = 0; i < r->n_entries; i++) {
        raft_index idx = base + 1 + i;
        if (!tw_entry_ok(&r->entries[i], idx, md->term[idx], md->len[idx]))
            return false;
    }
    return true;
}

static bool matches_pending(const struct model *md,
                            const struct wal_recovery *r)
{
    if (!md->pending)
        return false;
    raft_index base = r->snap.index;
    raft_index rlast = base + r->n_entries;
    if (rlast < md->p_first || rlast >= md->p_first + md->p_n)
        return false;
    for (size_t i = 0; i < r->n_entries; i++) {
        raft_index idx = base + 1 + i;
        bool ok;
        if (idx < md->p_first)
            ok = tw_entry_ok(&r->entries[i], idx, md->term[idx], md->len[idx]);
        else
            ok = tw_entry_ok(&r->entries[i], idx, md->p_term,
                             md->p_len[idx - md->p_first]);
        if (!ok)
            return false;
    }
    return true;
}

static bool hs_equal(const struct raft_hard_state *a,
                     const struct raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

static void dump_snaps(struct cairn_fs *fs, const char *when)
{
    const char *dirs[] = {TW_SNAP_DIR, TW_WAL_DIR};
    for (int d = 0; d < 2; d++) {
        struct cairn_fs_names names;
        if (fs->list(fs, dirs[d], &names) != 0)
            continue;
        for (size_t i = 0; i < names.count; i++)
            fprintf(stderr, "%s: %s\n", when, names.names[i]);
        cairn_fs_names_free(&names);
    }
}

/* Recovers and checks; the model adopts what was recovered. */
static struct wal *recover(struct tw *t, struct model *md, uint64_t seed,
                           int step)
{
    struct cairn_errmsg m;
    struct wal *w;
    struct wal_recovery r;
    if (getenv("CAIRN_WAL_MODEL_TRACE"))
        dump_snaps(&t->fs, "recover");
    int rv = wal_recover(&t->o, TW_SNAP_DIR, &w, &r, &m);
    if (rv != 0)
        fail_msg("seed %llu step %d: recover: %s", (unsigned long long)seed,
                 step, m.text);
    bool snap_ok = (r.snap.index == md->snap && r.snap.term == md->snap_term) ||
                   (md->alt && r.snap.index == md->alt_snap &&
                    r.snap.term == md->alt_term);
    if (!snap_ok)
        fail_msg("seed %llu step %d: snapshot %llu, expected %llu",
                 (unsigned long long)seed, step,
                 (unsigned long long)r.snap.index,
                 (unsigned long long)md->snap);
    bool as_model = matches_model(md, &r);
    bool as_pending = !as_model && matches_pending(md, &r);
    if (!as_model && !as_pending)
        fail_msg("seed %llu step %d: recovered log (%zu entries after %llu) "
                 "is neither the acknowledged one (last %llu) nor it with "
                 "part of the failed batch",
                 (unsigned long long)seed, step, r.n_entries,
                 (unsigned long long)md->snap, (unsigned long long)md->last);
    bool hs_ok =
        hs_equal(&r.hard_state, &md->hs) ||
        (md->pending && md->p_has_hs && hs_equal(&r.hard_state, &md->p_hs));
    if (!hs_ok)
        fail_msg("seed %llu step %d: hard state commit %llu term %llu is "
                 "unexpected",
                 (unsigned long long)seed, step,
                 (unsigned long long)r.hard_state.commit,
                 (unsigned long long)r.hard_state.term);
    /* A recovered commit index never points past the recovered log. */
    assert_true(r.hard_state.commit <= r.snap.index + r.n_entries);
    md->snap = r.snap.index;
    md->snap_term = r.snap.term;
    md->alt = false;
    for (size_t i = 0; i < r.n_entries; i++) {
        raft_index idx = md->snap + 1 + i;
        md->term[idx] = r.entries[i].term;
        md->len[idx] = r.entries[i].len;
    }
    md->last = md->snap + r.n_entries;
    md->hs = r.hard_state;
    if (md->hs.commit > md->commit)
        md->commit = md->hs.commit;
    md->pending = false;
    assert_int_equal(wal_last_index(w), md->last);
    wal_recovery_free(&r);
    return w;
}

/* Entry lengths from a draw below 400: the draw itself, but one in 20
 * becomes 1 KiB to 2 KiB, so that batches mix entries checksummed with
 * their record and entries checksummed as they are copied
 * (WAL_COPY_CRC_MIN). */
#define MODEL_LEN_MAX 2048
static size_t model_len(uint64_t draw)
{
    return draw < 380 ? (size_t)draw : 1024 + (size_t)(draw - 380) * 50;
}

static void run_model(uint64_t seed, int steps)
{
    struct tw t;
    tw_init(&t, seed, 4096);
    struct model *md = calloc(1, sizeof *md);
    struct prng *rng = &t.rng;
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    raft_term term = 1;
    int crashes = 0, overwrites = 0, failures = 0, snaps = 0;
    for (int step = 0; step < steps; step++) {
        uint64_t dice = prng_below(rng, 100);
        if (getenv("CAIRN_WAL_MODEL_TRACE"))
            fprintf(
                stderr,
                "step %d unsynced %llu dice %llu last %llu commit %llu snap "
                "%llu\n",
                step, (unsigned long long)cairn_fs_mem_unsynced_bytes(&t.fs),
                (unsigned long long)dice, (unsigned long long)md->last,
                (unsigned long long)md->commit, (unsigned long long)md->snap);
        if (dice < 60) {
            /* A batch, sometimes over an uncommitted suffix. */
            raft_index lo = (md->commit > md->snap ? md->commit : md->snap) + 1;
            raft_index first = md->last + 1;
            if (md->last >= lo && prng_chance(rng, 0.2)) {
                first = prng_range(rng, lo, md->last);
                term++;
                overwrites++;
            }
            size_t n = (size_t)prng_range(rng, 0, 8);
            if (first + n >= MODEL_CAP)
                break;
            size_t lens[16];
            struct raft_entry ents[16];
            static uint8_t store[16][MODEL_LEN_MAX];
            for (size_t i = 0; i < n; i++) {
                lens[i] = model_len(prng_below(rng, 400));
                tw_entry(&ents[i], store[i], first + i, term, lens[i]);
            }
            struct raft_hard_state hs = md->hs;
            bool with_hs = n == 0 || prng_chance(rng, 0.5);
            if (with_hs) {
                hs.term = term;
                hs.vote = prng_below(rng, 5);
                raft_index top = n ? first + n - 1 : md->last;
                if (top > hs.commit)
                    hs.commit = prng_range(rng, hs.commit, top);
            }
            bool fault = prng_chance(rng, 0.04);
            if (fault) {
                uint64_t kind = prng_below(rng, 3);
                cairn_fs_mem_fault(
                    &t.fs, kind == 0 ? CAIRN_FS_MEM_SYNC : CAIRN_FS_MEM_WRITE,
                    0, 1, kind == 1 ? CAIRN_ENOSPC : CAIRN_EIO, kind == 2);
            }
            int rv = wal_append(w, with_hs ? &hs : NULL, ents, n, &m);
            if (getenv("CAIRN_WAL_MODEL_TRACE"))
                fprintf(stderr,
                        "append first %llu n %zu hs %d fault %d rv %d unsynced "
                        "%llu\n",
                        (unsigned long long)first, n, with_hs, fault, rv,
                        (unsigned long long)cairn_fs_mem_unsynced_bytes(&t.fs));
            if (rv == 0) {
                for (size_t i = 0; i < n; i++) {
                    md->term[first + i] = term;
                    md->len[first + i] = lens[i];
                }
                if (n)
                    md->last = first + n - 1;
                md->hs = hs;
                md->commit = hs.commit;
            } else {
                assert_true(fault);
                failures++;
                for (int op = 0; op < CAIRN_FS_MEM_OP_COUNT; op++)
                    cairn_fs_mem_fault(&t.fs, op, -1, 0, 0, false);
                if (wal_fatal_error(w) != 0) {
                    md->pending = n > 0 || with_hs;
                    md->p_first = n ? first : md->last + 1;
                    md->p_n = n;
                    md->p_term = term;
                    memcpy(md->p_len, lens, n * sizeof lens[0]);
                    md->p_has_hs = with_hs;
                    md->p_hs = hs;
                    /* A stopped WAL is reopened, maybe after power loss. */
                    wal_close(w);
                    if (prng_chance(rng, 0.5)) {
                        cairn_fs_mem_crash(&t.fs, prng_chance(rng, 0.5));
                        crashes++;
                    }
                    w = recover(&t, md, seed, step);
                }
            }
        } else if (dice < 70) {
            /* Snapshot at the commit index, then release and purge, with
             * a crash or a failure at some point on the way. */
            if (md->commit > md->snap && md->commit <= md->last) {
                raft_index si = md->commit;
                raft_term st = md->term[si];
                uint64_t cp = prng_below(rng, 10);
                assert_int_equal(wal_snapshot(w, si, st, &m), 0);
                if (cp == 0) {
                    wal_close(w);
                    cairn_fs_mem_crash(&t.fs, prng_chance(rng, 0.5));
                    crashes++;
                    w = recover(&t, md, seed, step);
                    continue;
                }
                struct raft_snapshot_meta s;
                memset(&s, 0, sizeof s);
                s.index = si;
                s.term = st;
                s.conf.n_voters = 1;
                s.conf.voters[0] = 1;
                if (cp == 1)
                    cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC,
                                       (int)prng_below(rng, 3), 1, CAIRN_EIO,
                                       false);
                int rv = wal_snap_save(&t.fs, TW_SNAP_DIR, &s, &m);
                cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, -1, 0, 0, false);
                if (rv != 0) {
                    assert_true(cp == 1);
                    failures++;
                    md->alt = true;
                    md->alt_snap = si;
                    md->alt_term = st;
                    wal_close(w);
                    if (prng_chance(rng, 0.5)) {
                        cairn_fs_mem_crash(&t.fs, false);
                        crashes++;
                    }
                    w = recover(&t, md, seed, step);
                    continue;
                }
                md->snap = si;
                md->snap_term = st;
                snaps++;
                if (cp == 2) {
                    wal_close(w);
                    cairn_fs_mem_crash(&t.fs, prng_chance(rng, 0.5));
                    crashes++;
                    w = recover(&t, md, seed, step);
                    continue;
                }
                if (cp == 3)
                    cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_META, 0, 1,
                                       CAIRN_EIO, false);
                if (prng_chance(rng, 0.7)) {
                    rv = wal_release(w, si, &m);
                    assert_true(rv == 0 || (cp == 3 && rv == CAIRN_EIO));
                }
                cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_META, -1, 0, 0, false);
                assert_int_equal(wal_snap_purge(&t.fs, TW_SNAP_DIR, 3, &m), 0);
            }
        } else if (dice < 80) {
            wal_close(w);
            bool tear = prng_chance(rng, 0.5);
            if (getenv("CAIRN_WAL_MODEL_TRACE"))
                fprintf(stderr, "crash tear=%d unsynced=%llu\n", tear,
                        (unsigned long long)cairn_fs_mem_unsynced_bytes(&t.fs));
            if (getenv("CAIRN_WAL_MODEL_TRACE"))
                dump_snaps(&t.fs, "before");
            cairn_fs_mem_crash(&t.fs, tear);
            if (getenv("CAIRN_WAL_MODEL_TRACE"))
                dump_snaps(&t.fs, "after");
            crashes++;
            w = recover(&t, md, seed, step);
        } else if (dice < 85) {
            wal_close(w);
            w = recover(&t, md, seed, step);
        } else {
            struct cairn_errmsg pm;
            assert_int_equal(wal_prepare(w, &pm), 0);
        }
    }
    wal_close(w);
    w = recover(&t, md, seed, steps);
    wal_close(w);
    assert_int_equal(cairn_fs_mem_open_handles(&t.fs), 0);
    assert_true(crashes > 0 && overwrites > 0 && snaps > 0);
    (void)failures;
    free(md);
    tw_close(&t);
}

static void wal_model_property(void **state)
{
    (void)state;
    const char *s = getenv("CAIRN_WAL_MODEL_STEPS");
    int steps = s && *s ? atoi(s) : 3000;
    const char *n = getenv("CAIRN_WAL_MODEL_SEEDS");
    uint64_t seeds = n && *n ? strtoull(n, NULL, 0) : 8;
    uint64_t base = tw_seed(1000);
    for (uint64_t k = 0; k < seeds; k++)
        run_model(base + k, steps);
}

int test_wal_model_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_model_property),
    };
    return cmocka_run_group_tests_name("wal_model", tests, NULL, NULL);
}

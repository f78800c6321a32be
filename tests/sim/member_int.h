/* Internals of the whole-member simulation, shared by member.c (the
 * binding: environment, lifecycle, network, clock), member_load.c (clients,
 * leases, nemesis) and member_check.c (the checks). */
#ifndef CAIRN_SIM_MEMBER_INT_H
#define CAIRN_SIM_MEMBER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lincheck.h"
#include "member.h"
#include "node/node.h"
#include "world.h"

#define MS_SLOTS_MAX 5
#define MS_KEYS 3
#define MS_CLIENTS_MAX 5
#define MS_LEASERS_MAX 2
#define MS_LEASE_TRACED 8
#define MS_KEY_LEN 16
#define MS_HISTORY_MAX 100000
#define MS_EVENTS_MAX (1u << 20)

/* Where an armed member crashes: between two of its actions. */
enum ms_crash_point {
    MS_CP_NONE = 0,
    MS_CP_AFTER_PERSIST, /* WAL synced, node not told: nothing sent */
    MS_CP_AFTER_APPLY,  /* batch applied to LMDB, not synced, not handed back */
    MS_CP_MID_SNAPSHOT, /* LMDB synced, the snapshot's file not saved */
    MS_CP_SNAP_FILE,    /* the snapshot's file saved, not in the WAL */
    MS_CP_MID_RELEASE,  /* snapshot recorded, crash between two unlinks */
    MS_CP_COUNT,
};

/* One item of a member's apply thread: a batch, or a snapshot request. */
struct ms_work {
    struct node_apply_batch *b; /* NULL: the snapshot at meta */
    struct raft_snapshot_meta meta;
};

/* One durable log entry as the checks see it. */
struct ms_ent {
    raft_term term;
    uint32_t crc;
};

struct ms_run;

struct ms_member {
    struct ms_run *r;
    int slot;
    uint64_t id;
    uint64_t inc; /* incarnation: events of an earlier life are void */
    bool up;
    bool removed;   /* its removal was applied: it stays down */
    bool joiner;    /* added mid-run: starts empty, never bootstraps */
    bool learner;   /* added as a learner, not promoted yet */
    bool changing;  /* a membership request about it is out */
    int generation; /* how many members this slot has been */
    /* The WAL on the in-memory file system; survives crashes. */
    struct prng fs_rng;
    struct cairn_fs fs;
    struct wal *wal;
    /* The real directory: db/ (LMDB), durable.mdb (the copy taken at each
     * explicit sync), img-* (received snapshot images). */
    char dir[192];
    struct mvcc_store *s;
    struct node_applier *ap;
    struct node *n;
    /* The member's full watcher (every key, from revision 1, prev_kv). */
    struct mvcc_watch_hub *hub;
    int64_t wid;
    bool w_canceled;
    mvcc_rev w_compact; /* canceled: restart from here */
    mvcc_rev wnext;     /* the next revision it must deliver */
    mvcc_rev wbookmark; /* the last progress notification's revision */
    /* Persists handed out, not yet reported (pointers owned by the node). */
    const struct node_persist **persists;
    size_t n_persists, cap_persists;
    bool persist_sched;
    uint64_t disk_free_us; /* the disk is busy until then */
    /* The apply thread's queue. */
    struct ms_work *work;
    size_t n_work, cap_work;
    bool work_sched;
    /* The end of the "loop turn" that flushes gathered proposals. */
    bool props_sched;
    /* The leader's lazy commit (node_env.commit_unsent): whether the node
     * asks for node_send_commit, and whether the "timer" is scheduled. */
    bool commit_unsent;
    bool commit_sched;
    /* Clock: local ms = (sim µs * drift) / 1000 + jump. */
    double drift;
    int64_t jump_ms;
    int crash_point; /* enum ms_crash_point armed for this life */
    /* Paused (not scheduled at all, as a stopped VM or process) until
     * then: its events wait and run at that time, in order. */
    uint64_t paused_until_us;
    bool store_sync_fails; /* the next explicit LMDB sync fails */
    /* The mvcc_fault_site (write, compaction, restore, defragmentation)
     * where LMDB next finds its map full; 0: none armed. */
    int store_full;
    bool compacting; /* a scheduled compaction not physically done */
    uint64_t image_seq;
    /* Raft checks within one life, and the durable log's shadow. */
    raft_term term;
    raft_index commit;
    struct ms_ent *log;
    raft_index log_first; /* index of log[0] */
    raft_index log_last;  /* log_first - 1 when empty */
    size_t log_cap;
    raft_index checked; /* committed entries compared up to here */
    /* Incarnations of the member's lessor (opened, replaced by a restore),
     * and the one the lease trace last saw: addresses would not do, as
     * malloc may hand a new lessor the old one's. */
    uint64_t l_gen, l_gen_seen;
    bool l_primary;
    int64_t l_expired[MS_LEASE_TRACED];
};

/* One watch event as recorded in the revision log. */
struct ms_ev {
    char key[MS_KEY_LEN];
    int64_t val; /* parsed value (puts) */
    int64_t lease;
    bool del;
    bool has_prev;
    mvcc_rev prev_mod;
    int64_t prev_val;
};

/* A revision as the first full watcher to deliver it saw it. */
struct ms_rev {
    bool known;
    int slot;
    uint64_t hash;
    uint64_t at_us; /* first delivered then (about when first applied) */
    uint32_t n;
    struct ms_ev *evs;
};

enum ms_op_kind {
    MS_PUT = 0,
    MS_DELETE,
    MS_CAS,
    MS_LREAD, /* linearizable range */
    MS_SREAD, /* serializable range */
};

struct ms_client {
    int idx;
    bool busy;
    int kind; /* enum ms_op_kind */
    int key;
    int slot; /* the member asked */
    int64_t val, expect;
    size_t hist; /* its lin_history entry (not for MS_SREAD) */
    uint64_t invoked_us;
    int64_t known[MS_KEYS];
    mvcc_rev srev[MS_SLOTS_MAX]; /* serializable reads: revision seen */
    uint64_t srev_inc[MS_SLOTS_MAX];
    uint64_t seq;
};

/* A client holding a lease with one key attached. */
enum ms_lease_state {
    MS_L_IDLE = 0,
    MS_L_GRANTING,
    MS_L_PUTTING,
    MS_L_HELD,
    MS_L_RELEASED, /* stopped renewing or revoked: the key must go */
};

struct ms_leaser {
    int idx;
    int state;
    bool busy; /* a request out */
    int64_t id;
    int64_t ttl_s;
    char key[MS_KEY_LEN];
    uint64_t seq;
    int renewals_left;
    mvcc_rev put_rev;        /* the key's put, acknowledged */
    uint64_t renew_sent_us;  /* the request in flight was sent then */
    uint64_t alive_until_us; /* acknowledged grant or renewal + ttl */
    bool revoke_sent;
    uint64_t revoked_us; /* the revoke was acknowledged then */
};

/* A lease whose holder stopped renewing it (or revoked it). */
struct ms_lease_rec {
    char key[MS_KEY_LEN];
    mvcc_rev put_rev;
    int64_t ttl_s;
    uint64_t alive_until_us;
    uint64_t released_us;
    bool revoke_sent;
    uint64_t revoked_us;
};

/* A client's watch on one key, from a past or the current revision, moved
 * to another member now and then and after a crash, resuming from the next
 * revision it is owed. */
#define MS_WATCHERS_MAX 2
struct ms_wev {
    mvcc_rev rev;
    int64_t val;
    bool del;
};
struct ms_watcher {
    int idx;
    int key;
    int slot;     /* the member serving it, -1: none */
    uint64_t inc; /* that member's life when it was created */
    bool canceled;
    mvcc_rev compact;
    mvcc_rev next;  /* the next revision it may deliver */
    mvcc_rev check; /* delivered revisions are checked from here */
    struct ms_wev *evs;
    size_t n, cap;
    uint64_t moves;
};

struct ms_sread {
    int key;
    int slot;
    mvcc_rev rev;
    int64_t val;
};

struct ms_ack {
    int key;
    bool del;
    mvcc_rev rev;
    int64_t val;
};

struct ms_params {
    int members;
    int clients;
    int leasers;
    unsigned tick_ms;
    unsigned election_ticks;
    uint64_t snapshot_count;
    uint64_t catchup;
    bool crashes, crash_points, partitions, lossy, drift, jumps, slow_disk,
        torn, fsync_fail, enospc, transfers, compaction, defrag, membership,
        pauses, store_sync_fail, store_full, small_segments;
    size_t quota_bytes; /* mvcc's quota: small ones raise the NOSPACE alarm */
    uint64_t fault_phase_us;
    uint64_t nemesis_gap_us_max;
    uint64_t down_us_max;
    struct sim_link link;
};

struct ms_run {
    struct sim_world w;
    struct sim_net net;
    struct ms_params p;
    int fault; /* enum sim_member_fault */
    bool failed;
    bool closing;
    enum sim_verdict verdict;
    char reason[512];
    char root[128];
    struct ms_member m[MS_SLOTS_MAX];
    struct ms_client cl[MS_CLIENTS_MAX];
    struct ms_leaser ls[MS_LEASERS_MAX];
    struct ms_watcher wt[MS_WATCHERS_MAX];
    int watchers;
    struct lin_history hist;
    /* The revision log, indexed by revision. */
    struct ms_rev *revs;
    size_t revs_cap;
    /* The committed log, indexed by raft index. */
    struct ms_ent *clog;
    size_t clog_cap;
    raft_index clog_len;
    /* Leader of each term. */
    uint64_t *leader_of;
    size_t leader_cap;
    raft_term max_term;
    /* When each new leader took over (a new leader gives every lease its
     * TTL again, plus an election timeout: etcd's Promote). */
    uint64_t *leader_changes_us;
    size_t n_leader_changes, cap_leader_changes;
    /* HashKV at each consistent index, first seen. */
    uint32_t *hash_at;
    bool *hash_set;
    size_t hash_cap;
    struct ms_sread *sreads;
    size_t n_sreads, cap_sreads;
    struct ms_ack *acks;
    size_t n_acks, cap_acks;
    struct ms_lease_rec *leases;
    size_t n_leases, cap_leases;
    uint64_t heal_us, end_us;
    bool healed;
    uint64_t ok_after_heal; /* operations invoked after healing, ok */
    uint64_t crashes, fatal_stops, snapshots, restores;
    uint64_t pauses, store_sync_failures, store_full_failures;
    uint64_t store_full_maint, release_crashes;
    bool change_out; /* one membership change at a time */
};

/* member.c */
void ms_fail(struct ms_run *r, enum sim_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *ms_grow(void *p, size_t *cap, size_t need, size_t size);
int64_t ms_now_ms(const struct ms_member *m);
bool ms_usable(const struct ms_member *m);
bool ms_paused(const struct ms_member *m);
bool ms_defer(struct ms_member *m, sim_event_cb fn, uint64_t a, uint64_t b);
void ms_pause(struct ms_member *m, uint64_t us);
struct ms_member *ms_by_id(struct ms_run *r, uint64_t id);
struct ms_member *ms_leader(struct ms_run *r);
void ms_crash(struct ms_member *m, const char *why);
void ms_restart_later(struct ms_member *m, uint64_t delay_us);
void ms_lmdb_synced(struct ms_member *m);
int ms_join(struct ms_member *m, uint64_t id);

/* member_load.c */
void ms_clients_start(struct ms_run *r);
void ms_nemesis_start(struct ms_run *r);
void ms_heal(struct ms_run *r);
void ms_lease_final(struct ms_run *r);
void ms_lease_trace(struct ms_member *m);

/* member_check.c */
int ms_watch_cb(void *arg, const struct mvcc_watch_resp *resp);
int ms_watch_open(struct ms_member *m);
void ms_watch_poll(struct ms_member *m);
void ms_raft_check(struct ms_member *m);
void ms_log_persisted(struct ms_member *m, const struct node_persist *p);
void ms_log_reset(struct ms_member *m, raft_index snap_index);
void ms_hash_check(struct ms_member *m);
void ms_final_checks(struct ms_run *r);
void ms_watchers_start(struct ms_run *r);
bool ms_settled(struct ms_run *r);
int64_t ms_parse_val(const uint8_t *v, size_t len);
void ms_key_name(int key, char *out);

#endif

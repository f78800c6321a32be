/* A simulated cluster of Raft cores: the hosts that carry out the cores'
 * updates over the simulated disk and network, the register state machine,
 * the clients, the nemesis that injects faults, and the checks (cluster.h). */
#include "cluster.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"
#include "raft/raft.h"
#include "world.h"

#define SLOTS_MAX 7
#define KEYS_MAX 4
#define CLIENTS_MAX 6
#define HELD_MAX 16384   /* messages waiting for a sync, per member */
#define BACKLOG_MAX 4096 /* inputs queued while a member is paused */
#define WAITERS_MAX 256  /* outstanding client requests per member */
#define EVENTS_MAX (1u << 20)
#define HISTORY_MAX 100000
#define TERMS_MAX (1u << 20)
#define LOG_FILE "raft.log"
#define CONF_IDX_MAX 16 /* latest configuration entries tracked per log */

/* Record kinds in a member's log file. */
enum {
    REC_BOOTSTRAP = 'B',
    REC_SNAPSHOT = 'S',
    REC_ENTRY = 'E',
    REC_HARD_STATE = 'H',
};

/* ---------------------------------------------------------------- params */

/* What the seed chose for this run. */
struct params {
    int slots;   /* members that may ever exist */
    int initial; /* voters at bootstrap */
    int clients;
    int keys;
    uint64_t tick_us;
    unsigned election_ticks;
    unsigned heartbeat_ticks;
    bool pre_vote, check_quorum;
    uint64_t max_size_per_msg;
    unsigned max_inflight_msgs;
    /* fault mix */
    bool crashes, partitions, pauses, skew, torn, membership, transfers, lossy,
        snapshots;
    /* raft's lazy_commit, with SEND_COMMIT stepped 1-2 ms after the core
     * asks (the server's bound) */
    bool lazy_commit;
    double crash_after_vote_p;
    uint64_t compact_every; /* entries between compactions (0: never) */
    uint64_t compact_keep;
    uint64_t fault_phase_us;
    uint64_t nemesis_gap_us_max;
    uint64_t down_us_max; /* longest a crashed member stays down */
    struct sim_link link;
};

/* ---------------------------------------------------------------- state */

/* The replicated register state machine, with per-client deduplication so
 * that a retried proposal takes effect once. */
struct sm {
    int64_t val[KEYS_MAX];
    uint64_t last_op[CLIENTS_MAX];
    int64_t last_result[CLIENTS_MAX];
    uint8_t last_swapped[CLIENTS_MAX];
};
#define SM_BYTES (KEYS_MAX * 8 + CLIENTS_MAX * 17)

/* A client command as carried in an entry. */
struct cmd {
    uint8_t client;
    uint8_t kind; /* enum lin_kind, never LIN_READ */
    uint8_t key;
    uint64_t op;
    int64_t value;
    int64_t expect;
};
#define CMD_BYTES 27

struct held_msg {
    int to;
    raft_term vote_term; /* a granted vote: its term, else 0 */
    struct buf bytes;
};

struct backlog_item {
    int kind; /* 0 message, 1 client request */
    int from;
    struct buf bytes;
};

/* A client request waiting at a member: for a write, until it is applied;
 * for a read, until its read state arrives and is applied. */
struct waiter {
    bool used;
    int client;
    uint64_t op;
    bool is_read;
    uint64_t ctx;
    raft_index read_index; /* 0 until the read state arrives */
    uint8_t key;
};

/* Per-index record of a member's log, for log matching. */
struct chain_ent {
    raft_term term;
    uint64_t chain; /* hash of the log prefix ending here; 0: unknown */
    uint8_t type;
};

struct member {
    struct cluster *c;
    int slot;
    raft_id id;
    bool started; /* ever started */
    bool up;
    bool paused;
    bool removed;          /* applied its own removal and shut down */
    raft_index removed_at; /* first committed configuration without it */
    bool was_member;
    uint64_t incarnation;
    double skew;
    struct raft *r;
    struct raft_memory_storage *ms;
    struct sim_disk disk;
    /* host state */
    struct sm sm;
    raft_index applied;
    raft_index snap_index;
    struct raft_conf_state conf;
    /* durability */
    bool dirty; /* written but not synced */
    bool sync_scheduled;
    bool commit_unsent; /* lazy_commit: the core asks for SEND_COMMIT */
    bool commit_sched;
    bool wrote_entry;
    raft_index written_index;
    raft_term written_term;
    raft_index written_snapshot; /* snapshot to report installed, or 0 */
    struct held_msg *held;
    size_t n_held;
    struct backlog_item *backlog;
    size_t n_backlog;
    struct waiter waiters[WAITERS_MAX];
    /* checks */
    raft_term term;
    raft_index commit;
    uint8_t role;
    raft_id lead;
    struct chain_ent *chain;
    size_t chain_cap;
    raft_index last_index;
    raft_index conf_idx[CONF_IDX_MAX]; /* configuration entries in the log */
    int n_conf_idx;
    raft_id *votes; /* per term, the candidate granted */
    size_t votes_cap;
};

struct client {
    int id;
    bool busy;
    size_t hist;
    uint64_t op;
    struct cmd cmd;
    bool is_read;
    uint64_t attempt;
    int target;
    bool uncertain; /* some attempt's fate is unknown */
    uint64_t op_first_attempt;
    int64_t seen[KEYS_MAX]; /* the last value this client saw per key */
    uint64_t invoked_us;
    uint64_t give_up_us;
};

/* One index of the committed sequence that every member's applied entries
 * must follow. */
struct committed {
    raft_term term;
    /* an upper bound of the term in which it was committed (the first
     * applier's term, never less than the previous index's) */
    raft_term commit_term;
    uint64_t chain;
    uint64_t state; /* hash of the state machine after applying it */
};

/* (index, term) -> chain: every log entry ever appended anywhere. */
struct chain_map {
    uint64_t *keys_index;
    uint64_t *keys_term;
    uint64_t *vals;
    size_t n, cap;
};

/* What the simulator knows of a write or CAS however its client fared:
 * when it first took effect (was first applied) and with what result. */
struct effect {
    uint64_t at_us; /* 0: never applied */
    int64_t result;
    bool swapped;
};

struct cluster {
    struct sim_world w;
    struct sim_net net;
    struct params p;
    int core_fault;
    struct member m[SLOTS_MAX];
    struct client cl[CLIENTS_MAX];
    struct lin_history hist;
    struct effect *effects; /* per history entry */
    size_t effects_cap;
    size_t *hist_of[CLIENTS_MAX]; /* per client: op id -> history entry */
    size_t hist_of_cap[CLIENTS_MAX];
    uint64_t next_ctx;
    /* checks */
    bool failed;
    enum sim_verdict verdict;
    char reason[512];
    struct committed *seq;
    size_t seq_len; /* indexes 1..seq_len-1 are known; seq[0] unused */
    size_t seq_cap;
    raft_id *leader_of; /* per term */
    size_t leader_of_cap;
    struct chain_map cmap;
    struct raft_conf_state gconf; /* latest committed configuration */
    raft_index gconf_index;
    raft_term max_term;
    /* phases */
    bool closing; /* tearing down: no more events */
    bool healed;
    uint64_t heal_us;
    uint64_t end_us;
    uint64_t leader_deadline_us;
    bool leader_seen_after_heal;
    uint64_t ops_deadline_us;
    uint64_t events_check;
};

/* ---------------------------------------------------------------- helpers */

static void fail(struct cluster *c, enum sim_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct cluster *c, enum sim_verdict v, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    c->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    sim_tracef(&c->w, "FAIL %s: %s", sim_verdict_name(v), c->reason);
}

static uint64_t mix64(uint64_t h, uint64_t v)
{
    uint64_t st = h ^ (v * 0x9E3779B97F4A7C15ull);
    return splitmix64(&st);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t entry_chain(uint64_t prev, const struct raft_entry *e)
{
    uint64_t h = mix64(prev, e->term);
    h = mix64(h, e->index);
    h = mix64(h, e->type);
    return mix64(h, hash_bytes(e->data, e->len));
}

static void *grow(void *p, size_t *cap, size_t need, size_t size, size_t max)
{
    if (need <= *cap)
        return p;
    CAIRN_ASSERT(need <= max);
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    void *q = cairn_realloc(p, cap2 * size);
    CAIRN_ASSERT(q != NULL);
    memset((char *)q + *cap * size, 0, (cap2 - *cap) * size);
    *cap = cap2;
    return q;
}

static bool conf_has(const struct raft_conf_state *cs, raft_id id)
{
    for (uint32_t i = 0; i < cs->n_voters; i++)
        if (cs->voters[i] == id)
            return true;
    for (uint32_t i = 0; i < cs->n_learners; i++)
        if (cs->learners[i] == id)
            return true;
    for (uint32_t i = 0; i < cs->n_voters_outgoing; i++)
        if (cs->voters_outgoing[i] == id)
            return true;
    for (uint32_t i = 0; i < cs->n_learners_next; i++)
        if (cs->learners_next[i] == id)
            return true;
    return false;
}

static void conf_format(const struct raft_conf_state *cs, char *out,
                        size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(out + n, size - n, "voters(");
    for (uint32_t i = 0; i < cs->n_voters && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%" PRIu64, i ? "," : "",
                              cs->voters[i]);
    if (cs->n_voters_outgoing && n < size) {
        n += (size_t)snprintf(out + n, size - n, ")&(");
        for (uint32_t i = 0; i < cs->n_voters_outgoing && n < size; i++)
            n += (size_t)snprintf(out + n, size - n, "%s%" PRIu64, i ? "," : "",
                                  cs->voters_outgoing[i]);
    }
    if (n < size)
        n += (size_t)snprintf(out + n, size - n, ") learners(");
    for (uint32_t i = 0; i < cs->n_learners && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%" PRIu64, i ? "," : "",
                              cs->learners[i]);
    if (n < size)
        snprintf(out + n, size - n, ")%s", cs->auto_leave ? " auto" : "");
}

/* ---------------------------------------------------------------- sm */

static void sm_encode(const struct sm *s, uint8_t *out)
{
    uint8_t *p = out;
    for (int k = 0; k < KEYS_MAX; k++, p += 8)
        codec_put_u64(p, (uint64_t)s->val[k]);
    for (int i = 0; i < CLIENTS_MAX; i++) {
        codec_put_u64(p, s->last_op[i]);
        codec_put_u64(p + 8, (uint64_t)s->last_result[i]);
        p[16] = s->last_swapped[i];
        p += 17;
    }
}

static int sm_decode(struct sm *s, const uint8_t *p, size_t len)
{
    memset(s, 0, sizeof(*s));
    if (len == 0)
        return 0; /* the bootstrap snapshot: the initial state */
    if (len != SM_BYTES)
        return CAIRN_EMALFORMED;
    for (int k = 0; k < KEYS_MAX; k++, p += 8)
        s->val[k] = (int64_t)codec_get_u64(p);
    for (int i = 0; i < CLIENTS_MAX; i++) {
        s->last_op[i] = codec_get_u64(p);
        s->last_result[i] = (int64_t)codec_get_u64(p + 8);
        s->last_swapped[i] = p[16];
        p += 17;
    }
    return 0;
}

static uint64_t sm_hash(const struct sm *s)
{
    uint8_t b[SM_BYTES];
    sm_encode(s, b);
    return hash_bytes(b, sizeof(b));
}

static void cmd_encode(const struct cmd *c, uint8_t *out)
{
    out[0] = c->client;
    out[1] = c->kind;
    out[2] = c->key;
    codec_put_u64(out + 3, c->op);
    codec_put_u64(out + 11, (uint64_t)c->value);
    codec_put_u64(out + 19, (uint64_t)c->expect);
}

static bool cmd_decode(struct cmd *c, const uint8_t *p, size_t len)
{
    if (len != CMD_BYTES)
        return false;
    c->client = p[0];
    c->kind = p[1];
    c->key = p[2];
    c->op = codec_get_u64(p + 3);
    c->value = (int64_t)codec_get_u64(p + 11);
    c->expect = (int64_t)codec_get_u64(p + 19);
    return c->client < CLIENTS_MAX && c->key < KEYS_MAX &&
           (c->kind == LIN_WRITE || c->kind == LIN_CAS);
}

/* ---------------------------------------------------------------- checks */

static void chain_map_check(struct cluster *c, struct member *m,
                            raft_index index, raft_term term, uint64_t chain)
{
    struct chain_map *cm = &c->cmap;
    if (cm->n * 2 >= cm->cap) {
        size_t cap = cm->cap ? cm->cap * 2 : 4096;
        uint64_t *ki = cairn_calloc(cap, sizeof(uint64_t));
        uint64_t *kt = cairn_calloc(cap, sizeof(uint64_t));
        uint64_t *v = cairn_calloc(cap, sizeof(uint64_t));
        CAIRN_ASSERT(ki && kt && v);
        for (size_t i = 0; i < cm->cap; i++) {
            if (cm->keys_index[i] == 0)
                continue;
            size_t s = mix64(cm->keys_index[i], cm->keys_term[i]) & (cap - 1);
            while (ki[s] != 0)
                s = (s + 1) & (cap - 1);
            ki[s] = cm->keys_index[i];
            kt[s] = cm->keys_term[i];
            v[s] = cm->vals[i];
        }
        cairn_free(cm->keys_index);
        cairn_free(cm->keys_term);
        cairn_free(cm->vals);
        cm->keys_index = ki;
        cm->keys_term = kt;
        cm->vals = v;
        cm->cap = cap;
    }
    size_t s = mix64(index, term) & (cm->cap - 1);
    while (cm->keys_index[s] != 0) {
        if (cm->keys_index[s] == index && cm->keys_term[s] == term) {
            if (cm->vals[s] != chain)
                fail(c, SIM_SAFETY,
                     "log matching: member %d has entry %" PRIu64
                     " of term %" PRIu64
                     " with a different log prefix or content than "
                     "another member's entry with the same index and term",
                     m->slot + 1, index, term);
            return;
        }
        s = (s + 1) & (cm->cap - 1);
    }
    cm->keys_index[s] = index;
    cm->keys_term[s] = term;
    cm->vals[s] = chain;
    cm->n++;
}

static struct chain_ent *chain_at(struct member *m, raft_index i)
{
    m->chain =
        grow(m->chain, &m->chain_cap, i + 1, sizeof(*m->chain), 1u << 24);
    return &m->chain[i];
}

/* A member's log now ends with entries[0..n): record their chain hashes
 * and check log matching against every entry ever seen. */
static void member_log_appended(struct member *m, const struct raft_entry *e,
                                size_t n)
{
    struct cluster *c = m->c;
    if (n > 0) {
        /* The append truncated everything from e[0].index on. */
        int k = 0;
        for (int j = 0; j < m->n_conf_idx; j++)
            if (m->conf_idx[j] < e[0].index)
                m->conf_idx[k++] = m->conf_idx[j];
        m->n_conf_idx = k;
    }
    for (size_t i = 0; i < n; i++) {
        raft_index idx = e[i].index;
        CAIRN_ASSERT(idx >= 1);
        if (e[i].type != RAFT_ENTRY_NORMAL) {
            if (m->n_conf_idx == CONF_IDX_MAX) {
                /* Forget the oldest, long committed. */
                memmove(m->conf_idx, m->conf_idx + 1,
                        (CONF_IDX_MAX - 1) * sizeof(raft_index));
                m->n_conf_idx--;
            }
            m->conf_idx[m->n_conf_idx++] = idx;
        }
        uint64_t prev = chain_at(m, idx - 1)->chain;
        struct chain_ent *ce = chain_at(m, idx);
        ce->term = e[i].term;
        ce->type = e[i].type;
        ce->chain = prev ? entry_chain(prev, &e[i]) : 0;
        if (ce->chain != 0)
            chain_map_check(c, m, idx, e[i].term, ce->chain);
    }
    if (n > 0)
        m->last_index = e[n - 1].index;
}

/* The member's log starts after a snapshot at index: its chain there is
 * the committed sequence's. */
static void member_log_reset(struct member *m, raft_index index)
{
    struct cluster *c = m->c;
    for (size_t i = 0; i < m->chain_cap; i++)
        m->chain[i] = (struct chain_ent){0, 0, 0};
    m->n_conf_idx = 0;
    struct chain_ent *ce = chain_at(m, index);
    if (index < c->seq_len) {
        ce->term = c->seq[index].term;
        ce->chain = c->seq[index].chain;
    }
    m->last_index = index;
}

static void leader_of_check(struct cluster *c, struct member *m)
{
    if (m->role != RAFT_LEADER)
        return;
    CAIRN_ASSERT(m->term < TERMS_MAX);
    c->leader_of = grow(c->leader_of, &c->leader_of_cap, m->term + 1,
                        sizeof(raft_id), TERMS_MAX);
    raft_id prev = c->leader_of[m->term];
    if (prev != RAFT_NONE && prev != m->id)
        fail(c, SIM_SAFETY,
             "election safety: members %" PRIu64 " and %" PRIu64
             " were both leader in term %" PRIu64,
             prev, m->id, m->term);
    c->leader_of[m->term] = m->id;
}

/* Leader completeness: a leader of term T holds every entry committed in
 * an earlier term. */
static void leader_complete_check(struct cluster *c, struct member *m)
{
    if (m->role != RAFT_LEADER || c->seq_len <= 1)
        return;
    /* The last index committed before term T (commit_term is monotonic). */
    size_t lo = 1, hi = c->seq_len - 1;
    if (c->seq[lo].commit_term >= m->term)
        return;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (c->seq[mid].commit_term < m->term)
            lo = mid;
        else
            hi = mid - 1;
    }
    raft_index want = lo;
    if (want > m->last_index) {
        fail(c, SIM_SAFETY,
             "leader completeness: leader %" PRIu64 " of term %" PRIu64
             " ends its log at %" PRIu64 " but index %" PRIu64
             " was committed in an earlier term",
             m->id, m->term, m->last_index, want);
        return;
    }
    if (want >= m->chain_cap || m->chain[want].chain == 0)
        return; /* compacted away: checked when its snapshot came */
    if (m->chain[want].chain != c->seq[want].chain)
        fail(c, SIM_SAFETY,
             "leader completeness: leader %" PRIu64 " of term %" PRIu64
             " has a different entry at committed index %" PRIu64,
             m->id, m->term, want);
}

/* At most one configuration change is pending (appended, not committed)
 * in a leader's log. */
static void pending_conf_check(struct cluster *c, struct member *m)
{
    if (m->role != RAFT_LEADER)
        return;
    /* Committed means committed anywhere: a new leader's own commit index
     * may lag behind entries another member has applied. */
    raft_index committed = c->seq_len - 1;
    if (m->commit > committed)
        committed = m->commit;
    int pending = 0;
    for (int k = 0; k < m->n_conf_idx; k++)
        pending += m->conf_idx[k] > committed;
    if (pending > 1)
        fail(c, SIM_SAFETY,
             "leader %" PRIu64 " has %d configuration changes pending", m->id,
             pending);
}

static void vote_check(struct cluster *c, struct member *m, raft_term term,
                       raft_id cand)
{
    CAIRN_ASSERT(term < TERMS_MAX);
    m->votes =
        grow(m->votes, &m->votes_cap, term + 1, sizeof(raft_id), TERMS_MAX);
    if (m->votes[term] != RAFT_NONE && m->votes[term] != cand)
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " voted twice in term %" PRIu64 ": for %" PRIu64
             " and for %" PRIu64,
             m->id, term, m->votes[term], cand);
    m->votes[term] = cand;
}

/* The committed sequence at index i is (term, chain, state): record it or
 * compare with what is there. */
static void seq_check(struct cluster *c, struct member *m, raft_index i,
                      raft_term term, uint64_t chain, uint64_t state,
                      const char *what)
{
    if (i < c->seq_len) {
        struct committed *s = &c->seq[i];
        if (s->term != term || (chain != 0 && s->chain != chain) ||
            s->state != state)
            fail(c, SIM_SAFETY,
                 "state machine safety: member %" PRIu64 " %s index %" PRIu64
                 " (term %" PRIu64 ") unlike the committed entry there "
                 "(term %" PRIu64 ")%s",
                 m->id, what, i, term, s->term,
                 s->state != state ? ", and its state differs" : "");
        return;
    }
    if (i != c->seq_len) {
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " %s index %" PRIu64
             " past the committed sequence's end %zu",
             m->id, what, i, c->seq_len);
        return;
    }
    c->seq = grow(c->seq, &c->seq_cap, i + 1, sizeof(*c->seq), 1u << 24);
    raft_term ct = m->term > term ? m->term : term;
    if (i > 1 && c->seq[i - 1].commit_term > ct)
        ct = c->seq[i - 1].commit_term;
    c->seq[i] = (struct committed){
        .term = term, .commit_term = ct, .chain = chain, .state = state};
    c->seq_len = i + 1;
}

/* ---------------------------------------------------------------- disk */

static void disk_write(struct member *m, const struct buf *rec)
{
    int rv = sim_rec_append(&m->disk, LOG_FILE, rec->data, rec->len);
    CAIRN_ASSERT(rv == 0);
    m->dirty = true;
}

static void rec_hard_state(struct buf *b, const struct raft_hard_state *hs)
{
    buf_reset(b);
    CAIRN_ASSERT(buf_append_u8(b, REC_HARD_STATE) == 0);
    CAIRN_ASSERT(buf_append_u64(b, hs->term) == 0);
    CAIRN_ASSERT(buf_append_u64(b, hs->vote) == 0);
    CAIRN_ASSERT(buf_append_u64(b, hs->commit) == 0);
}

static void rec_snapshot(struct buf *b, const struct raft_snapshot *s)
{
    uint8_t conf[RAFT_CONF_STATE_ENCODED_MAX];
    size_t clen = raft_conf_state_encode(&s->meta.conf, conf);
    buf_reset(b);
    CAIRN_ASSERT(buf_append_u8(b, REC_SNAPSHOT) == 0);
    CAIRN_ASSERT(buf_append_u64(b, s->meta.index) == 0);
    CAIRN_ASSERT(buf_append_u64(b, s->meta.term) == 0);
    CAIRN_ASSERT(buf_append_u32(b, (uint32_t)clen) == 0);
    CAIRN_ASSERT(buf_append(b, conf, clen) == 0);
    CAIRN_ASSERT(buf_append(b, s->data, s->len) == 0);
}

static void rec_entry(struct buf *b, const struct raft_entry *e)
{
    buf_reset(b);
    CAIRN_ASSERT(buf_append_u8(b, REC_ENTRY) == 0);
    CAIRN_ASSERT(raft_entry_encode(e, b) == 0);
}

/* Rewrites the log file from the in-memory storage (after compaction), so
 * it does not grow without bound: snapshot, hard state, entries. */
static void disk_rewrite(struct member *m)
{
    const struct raft_storage *st = raft_memory_storage_iface(m->ms);
    const struct raft_snapshot *snap;
    CAIRN_ASSERT(st->snapshot(st->ctx, &snap) == 0);
    struct buf rec = BUF_INIT;
    struct sim_disk tmp;
    sim_disk_init(&tmp, 0);
    rec_snapshot(&rec, snap);
    CAIRN_ASSERT(sim_rec_append(&tmp, LOG_FILE, rec.data, rec.len) == 0);
    struct raft_hard_state hs;
    raft_memory_storage_hard_state(m->ms, &hs);
    rec_hard_state(&rec, &hs);
    CAIRN_ASSERT(sim_rec_append(&tmp, LOG_FILE, rec.data, rec.len) == 0);
    raft_index first, last;
    st->first_index(st->ctx, &first);
    st->last_index(st->ctx, &last);
    for (raft_index i = snap->meta.index + 1; i <= last; i++) {
        const struct raft_entry *e;
        size_t n;
        CAIRN_ASSERT(st->entries(st->ctx, i, i + 1, UINT64_MAX, &e, &n) == 0);
        rec_entry(&rec, e);
        CAIRN_ASSERT(sim_rec_append(&tmp, LOG_FILE, rec.data, rec.len) == 0);
    }
    const struct buf *b = sim_disk_read(&tmp, LOG_FILE);
    CAIRN_ASSERT(sim_disk_replace(&m->disk, LOG_FILE, b->data, b->len) == 0);
    m->dirty = true;
    sim_disk_close(&tmp);
    buf_free(&rec);
}

struct replay {
    struct member *m;
    bool bad;
    raft_index snap_index;
};

static void replay_rec(void *arg, const uint8_t *p, size_t len)
{
    struct replay *rp = arg;
    struct member *m = rp->m;
    if (rp->bad || len < 1) {
        rp->bad = true;
        return;
    }
    struct codec_reader r;
    codec_reader_init(&r, p + 1, len - 1);
    switch (p[0]) {
    case REC_BOOTSTRAP: {
        struct raft_conf_state cs;
        if (raft_conf_state_decode(p + 1, len - 1, &cs) != 0 ||
            raft_memory_storage_bootstrap(m->ms, &cs) != 0)
            rp->bad = true;
        rp->snap_index = 1;
        break;
    }
    case REC_SNAPSHOT: {
        struct raft_snapshot s;
        memset(&s, 0, sizeof(s));
        s.meta.index = codec_read_u64(&r);
        s.meta.term = codec_read_u64(&r);
        uint32_t clen = codec_read_u32(&r);
        const uint8_t *conf = codec_read_bytes(&r, clen);
        if (r.bad || raft_conf_state_decode(conf, clen, &s.meta.conf) != 0) {
            rp->bad = true;
            return;
        }
        s.len = codec_reader_left(&r);
        s.data = s.len ? codec_read_bytes(&r, s.len) : NULL;
        if (raft_memory_storage_apply_snapshot(m->ms, &s) != 0)
            rp->bad = true;
        rp->snap_index = s.meta.index;
        break;
    }
    case REC_ENTRY: {
        struct raft_entry e;
        if (raft_entry_decode(p + 1, len - 1, &e) != 0 ||
            raft_memory_storage_append(m->ms, &e, 1) != 0)
            rp->bad = true;
        break;
    }
    case REC_HARD_STATE: {
        struct raft_hard_state hs;
        hs.term = codec_read_u64(&r);
        hs.vote = codec_read_u64(&r);
        hs.commit = codec_read_u64(&r);
        if (r.bad)
            rp->bad = true;
        else
            raft_memory_storage_set_hard_state(m->ms, &hs);
        break;
    }
    default:
        rp->bad = true;
    }
}

/* ---------------------------------------------------------------- members */

/* The cluster's initial configuration as a bootstrap snapshot at index 1:
 * the initial members start from it, joining members sometimes. */
static void disk_bootstrap(struct cluster *c, struct member *m)
{
    struct raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    for (int s = 0; s < c->p.initial; s++)
        cs.voters[cs.n_voters++] = (raft_id)s + 1;
    uint8_t conf[RAFT_CONF_STATE_ENCODED_MAX + 1];
    conf[0] = REC_BOOTSTRAP;
    size_t n = raft_conf_state_encode(&cs, conf + 1);
    CAIRN_ASSERT(sim_rec_append(&m->disk, LOG_FILE, conf, n + 1) == 0);
    CAIRN_ASSERT(sim_disk_sync(&m->disk, LOG_FILE) == 0);
}

static void commit_fire(struct sim_world *w, void *arg, uint64_t inc,
                        uint64_t b);
static void member_step(struct member *m, const struct raft_event *ev,
                        int *rv_out);
static void member_schedule_tick(struct member *m);
static void member_crash_soon(struct member *m);
static void member_drop_volatile(struct member *m);
static void client_reply(struct cluster *c, int client, uint64_t op,
                         uint64_t attempt, int from_slot, bool ok,
                         int64_t value, bool swapped, raft_id hint);

static uint64_t disk_latency(struct cluster *c)
{
    uint64_t lat = prng_range(&c->w.rng, 100, 2000);
    if (prng_chance(&c->w.rng, 0.02))
        lat += 30000; /* a slow sync */
    return lat;
}

static void member_send_now(struct member *m, int to, const uint8_t *bytes,
                            size_t len)
{
    struct cluster *c = m->c;
    sim_net_send(&c->net, m->slot, to, bytes, len);
}

static void sync_done(struct sim_world *w, void *arg, uint64_t inc, uint64_t b);

static void member_schedule_sync(struct member *m)
{
    if (m->sync_scheduled)
        return;
    m->sync_scheduled = true;
    sim_world_schedule(&m->c->w, disk_latency(m->c), sync_done, NULL, m,
                       m->incarnation, 0);
}

/* Sends one message of an update, now or after the pending sync. */
static void member_emit(struct member *m, const struct raft_message *msg)
{
    struct cluster *c = m->c;
    CAIRN_ASSERT(msg->to >= 1 && msg->to <= (raft_id)c->p.slots);
    int to = (int)msg->to - 1;
    struct buf b = BUF_INIT;
    CAIRN_ASSERT(raft_message_encode(msg, &b) == 0);
    bool grant = msg->type == RAFT_MSG_VOTE_RESP && !msg->reject;
    if (msg->after_persist && m->dirty) {
        CAIRN_ASSERT(m->n_held < HELD_MAX);
        m->held[m->n_held++] = (struct held_msg){
            .to = to, .vote_term = grant ? msg->term : 0, .bytes = b};
        return;
    }
    /* A vote counts once it leaves the member. */
    if (grant)
        vote_check(c, m, msg->term, msg->to);
    member_send_now(m, to, b.data, b.len);
    buf_free(&b);
    /* A crash right after granting a vote exercises vote durability. */
    if (msg->type == RAFT_MSG_VOTE_RESP && !msg->reject &&
        c->p.crash_after_vote_p > 0 &&
        prng_chance(&c->w.rng, c->p.crash_after_vote_p)) {
        member_crash_soon(m);
    }
}

/* The first application of a command is when it took effect. */
static void effect_record(struct cluster *c, const struct cmd *cmd,
                          int64_t result, bool swapped)
{
    if (cmd->op >= c->hist_of_cap[cmd->client])
        return;
    size_t h = c->hist_of[cmd->client][cmd->op];
    if (h == 0 || c->effects[h - 1].at_us != 0)
        return;
    c->effects[h - 1] = (struct effect){
        .at_us = c->w.now_us, .result = result, .swapped = swapped};
}

static void member_apply(struct member *m, const struct raft_entry *e)
{
    struct cluster *c = m->c;
    if (e->index != m->applied + 1) {
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " was handed entry %" PRIu64
             " to apply after %" PRIu64,
             m->id, e->index, m->applied);
        return;
    }
    if (e->index > m->commit) {
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " applies entry %" PRIu64
             " beyond its commit index %" PRIu64,
             m->id, e->index, m->commit);
        return;
    }
    struct cmd cmd;
    bool is_cmd = e->type == RAFT_ENTRY_NORMAL && e->len > 0;
    int64_t result = 0;
    bool swapped = false;
    if (is_cmd) {
        if (!cmd_decode(&cmd, e->data, e->len)) {
            fail(c, SIM_SAFETY, "member %" PRIu64 " applies a garbled entry",
                 m->id);
            return;
        }
        struct sm *s = &m->sm;
        if (cmd.op <= s->last_op[cmd.client]) {
            /* A retried proposal that took effect already. */
            result = s->last_result[cmd.client];
            swapped = s->last_swapped[cmd.client];
        } else {
            int64_t *cell = &s->val[cmd.key];
            result = *cell;
            if (cmd.kind == LIN_WRITE) {
                *cell = cmd.value;
            } else if (*cell == cmd.expect) {
                *cell = cmd.value;
                swapped = true;
            }
            s->last_op[cmd.client] = cmd.op;
            s->last_result[cmd.client] = result;
            s->last_swapped[cmd.client] = swapped;
            effect_record(c, &cmd, result, swapped);
        }
    }
    m->applied = e->index;
    uint64_t chain = e->index < m->chain_cap ? m->chain[e->index].chain : 0;
    seq_check(c, m, e->index, e->term, chain, sm_hash(&m->sm), "applied");
    if (is_cmd) {
        sim_tracef(&c->w,
                   "m%d apply %" PRIu64 "/%" PRIu64 " c%u#%" PRIu64
                   " %s k%u %" PRId64 "%s",
                   m->slot + 1, e->index, e->term, cmd.client, cmd.op,
                   cmd.kind == LIN_WRITE ? "write" : "cas", cmd.key, cmd.value,
                   cmd.kind == LIN_CAS && !swapped ? " (no swap)" : "");
        for (int i = 0; i < WAITERS_MAX; i++) {
            struct waiter *wt = &m->waiters[i];
            if (wt->used && !wt->is_read && wt->client == cmd.client &&
                wt->op == cmd.op) {
                wt->used = false;
                client_reply(c, cmd.client, cmd.op, 0, m->slot, true, result,
                             swapped, RAFT_NONE);
            }
        }
    }
}

static void member_serve_reads(struct member *m)
{
    for (int i = 0; i < WAITERS_MAX; i++) {
        struct waiter *wt = &m->waiters[i];
        if (wt->used && wt->is_read && wt->read_index != 0 &&
            wt->read_index <= m->applied) {
            wt->used = false;
            client_reply(m->c, wt->client, wt->op, 0, m->slot, true,
                         m->sm.val[wt->key], false, RAFT_NONE);
        }
    }
}

static void member_compact(struct member *m)
{
    struct cluster *c = m->c;
    if (m->applied <= m->snap_index)
        return;
    uint8_t data[SM_BYTES];
    sm_encode(&m->sm, data);
    int rv = raft_memory_storage_create_snapshot(m->ms, m->applied, &m->conf,
                                                 data, sizeof(data));
    CAIRN_ASSERT(rv == 0);
    raft_index keep = c->p.compact_keep;
    raft_index upto = m->applied > keep ? m->applied - keep : 0;
    const struct raft_storage *st = raft_memory_storage_iface(m->ms);
    raft_index first;
    st->first_index(st->ctx, &first);
    if (upto >= first)
        CAIRN_ASSERT(raft_memory_storage_compact(m->ms, upto) == 0);
    sim_tracef(&c->w, "m%d snapshot at %" PRIu64 ", compacted to %" PRIu64,
               m->slot + 1, m->applied, upto >= first ? upto : first - 1);
    m->snap_index = m->applied;
    disk_rewrite(m);
    member_schedule_sync(m);
}

static void global_conf_update(struct cluster *c, raft_index index,
                               const struct raft_conf_state *cs)
{
    if (index <= c->gconf_index)
        return;
    c->gconf = *cs;
    c->gconf_index = index;
    char text[160];
    conf_format(cs, text, sizeof(text));
    sim_tracef(&c->w, "configuration at %" PRIu64 ": %s", index, text);
    for (int s = 0; s < c->p.slots; s++) {
        struct member *m = &c->m[s];
        if (conf_has(cs, m->id)) {
            m->was_member = true;
        } else if (m->was_member && m->removed_at == 0) {
            /* Removed: peers drop its messages once they apply this. */
            m->removed_at = index;
            sim_tracef(&c->w, "m%d removed at %" PRIu64, s + 1, index);
        }
    }
}

static void shutdown_fire(struct sim_world *w, void *arg, uint64_t inc,
                          uint64_t b)
{
    (void)b;
    struct member *m = arg;
    if (!m->up || m->incarnation != inc || m->removed)
        return;
    sim_tracef(w, "m%d stops: it was removed", m->slot + 1);
    member_drop_volatile(m);
    m->up = false;
    m->paused = false;
    m->removed = true;
    m->incarnation++;
}

/* Carries out one update, in the order raft.h prescribes. */
static void member_process(struct member *m, const struct raft_update *u)
{
    struct cluster *c = m->c;
    struct buf rec = BUF_INIT;
    /* soft and hard state */
    const struct raft_hard_state *hs = &u->hard_state;
    if (hs->term < m->term)
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " term went back from %" PRIu64 " to %" PRIu64,
             m->id, m->term, hs->term);
    if (hs->commit < m->commit)
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " commit went back from %" PRIu64 " to %" PRIu64,
             m->id, m->commit, hs->commit);
    if (u->soft_state.role != m->role || u->soft_state.lead != m->lead ||
        hs->term != m->term) {
        if (u->soft_state.role != m->role || hs->term != m->term)
            sim_tracef(&c->w, "m%d %s term %" PRIu64 " lead %" PRIu64,
                       m->slot + 1, raft_role_name(u->soft_state.role),
                       hs->term, u->soft_state.lead);
    }
    /* The commit rule (§5.4.2): a leader moves its commit index only to an
     * entry of its own term, counting replicas. */
    if (u->soft_state.role == RAFT_LEADER && m->role == RAFT_LEADER &&
        hs->term == m->term && hs->commit > m->commit &&
        hs->commit < m->chain_cap && m->chain[hs->commit].term != 0 &&
        m->chain[hs->commit].term != hs->term)
        fail(c, SIM_SAFETY,
             "commit rule: leader %" PRIu64 " of term %" PRIu64
             " committed up to %" PRIu64 ", an entry of term %" PRIu64,
             m->id, hs->term, hs->commit, m->chain[hs->commit].term);
    /* Crashes at the moments Figure 8 needs: a new leader dies before it
     * replicates its first entry, or right after it commits. */
    if (c->p.crash_after_vote_p > 0 && u->soft_state.role == RAFT_LEADER &&
        (m->role != RAFT_LEADER || hs->commit > m->commit) &&
        prng_chance(&c->w.rng, c->p.crash_after_vote_p))
        member_crash_soon(m);
    m->role = u->soft_state.role;
    m->lead = u->soft_state.lead;
    m->term = hs->term;
    m->commit = hs->commit;
    if (m->term > c->max_term)
        c->max_term = m->term;
    /* 1. persist: snapshot, entries, hard state */
    if (u->snapshot != NULL) {
        const struct raft_snapshot *s = u->snapshot;
        int rv = raft_memory_storage_apply_snapshot(m->ms, s);
        CAIRN_ASSERT(rv == 0);
        rec_snapshot(&rec, s);
        disk_write(m, &rec);
        struct sm img;
        if (sm_decode(&img, s->data, s->len) != 0) {
            fail(c, SIM_SAFETY, "member %" PRIu64 " got a garbled snapshot",
                 m->id);
        } else {
            m->sm = img;
            seq_check(c, m, s->meta.index, s->meta.term, 0, sm_hash(&img),
                      "installed a snapshot at");
        }
        m->applied = s->meta.index;
        m->snap_index = s->meta.index;
        m->conf = s->meta.conf;
        member_log_reset(m, s->meta.index);
        m->written_snapshot = s->meta.index;
        sim_tracef(&c->w, "m%d installs snapshot %" PRIu64 "/%" PRIu64,
                   m->slot + 1, s->meta.index, s->meta.term);
    }
    if (u->n_entries > 0) {
        int rv = raft_memory_storage_append(m->ms, u->entries, u->n_entries);
        CAIRN_ASSERT(rv == 0);
        for (size_t i = 0; i < u->n_entries; i++) {
            rec_entry(&rec, &u->entries[i]);
            disk_write(m, &rec);
        }
        member_log_appended(m, u->entries, u->n_entries);
        m->wrote_entry = true;
        m->written_index = u->entries[u->n_entries - 1].index;
        m->written_term = u->entries[u->n_entries - 1].term;
    }
    if (u->hard_state_changed) {
        raft_memory_storage_set_hard_state(m->ms, hs);
        rec_hard_state(&rec, hs);
        disk_write(m, &rec);
    }
    if (m->dirty)
        member_schedule_sync(m);
    buf_free(&rec);
    /* 2. messages */
    for (size_t i = 0; i < u->n_messages; i++)
        member_emit(m, &u->messages[i]);
    m->commit_unsent = u->commit_unsent;
    if (u->commit_unsent && !m->commit_sched) {
        m->commit_sched = true;
        sim_world_schedule(&c->w, prng_range(&c->w.rng, 1001, 2000),
                           commit_fire, NULL, m, m->incarnation, 0);
    }
    /* 3. apply */
    for (size_t i = 0; i < u->n_committed && !c->failed; i++)
        member_apply(m, &u->committed[i]);
    if (u->conf_changed) {
        m->conf = u->conf_state;
        global_conf_update(c, m->applied, &u->conf_state);
        if (m->removed_at != 0 && m->applied >= m->removed_at &&
            !conf_has(&m->conf, m->id))
            /* Like etcd, a member that applied its own removal stops,
             * shortly, so its last messages still carry the commit. */
            sim_world_schedule(&c->w, 50000, shutdown_fire, NULL, m,
                               m->incarnation, 0);
    }
    /* 4. reads */
    for (size_t i = 0; i < u->n_read_states; i++) {
        const struct raft_read_state *rs = &u->read_states[i];
        for (int k = 0; k < WAITERS_MAX; k++) {
            struct waiter *wt = &m->waiters[k];
            if (wt->used && wt->is_read && wt->ctx == rs->ctx)
                wt->read_index = rs->index ? rs->index : 1;
        }
    }
    member_serve_reads(m);
    /* per-event invariants */
    if (m->applied > m->commit && m->applied > m->snap_index)
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " applied %" PRIu64 " > commit %" PRIu64, m->id,
             m->applied, m->commit);
    if (m->commit > m->last_index)
        fail(c, SIM_SAFETY,
             "member %" PRIu64 " commit %" PRIu64 " > last index %" PRIu64,
             m->id, m->commit, m->last_index);
    leader_of_check(c, m);
    leader_complete_check(c, m);
    pending_conf_check(c, m);
    /* compaction */
    if (c->p.compact_every && m->applied >= m->snap_index + c->p.compact_every)
        member_compact(m);
}

/* The server's commit timer: SEND_COMMIT 1-2 ms after the core asked,
 * unless an update said no follower awaits it any more. */
static void commit_fire(struct sim_world *w, void *arg, uint64_t inc,
                        uint64_t b)
{
    struct member *m = arg;
    if (!m->up || m->incarnation != inc)
        return;
    if (m->paused) {
        sim_world_schedule(w, prng_range(&w->rng, 1001, 2000), commit_fire,
                           NULL, m, inc, b);
        return;
    }
    m->commit_sched = false;
    if (m->commit_unsent && !m->removed) {
        struct raft_event ev = {.type = RAFT_EVENT_SEND_COMMIT};
        member_step(m, &ev, NULL);
    }
}

static void member_step(struct member *m, const struct raft_event *ev,
                        int *rv_out)
{
    struct raft_update u;
    int rv = raft_step(m->r, ev, &u);
    if (rv == CAIRN_ENOMEM)
        fail(m->c, SIM_ERROR, "member %" PRIu64 " ran out of memory", m->id);
    if (rv_out != NULL)
        *rv_out = rv;
    member_process(m, &u);
}

static void sync_done(struct sim_world *w, void *arg, uint64_t inc, uint64_t b)
{
    (void)w;
    (void)b;
    struct member *m = arg;
    if (!m->up || m->incarnation != inc)
        return;
    m->sync_scheduled = false;
    if (m->paused) {
        /* Finishes when the member resumes. */
        return;
    }
    int rv = sim_disk_sync(&m->disk, LOG_FILE);
    CAIRN_ASSERT(rv == 0);
    m->dirty = false;
    /* Messages that waited for durability may go now. */
    size_t n = m->n_held;
    m->n_held = 0;
    for (size_t i = 0; i < n; i++) {
        if (m->held[i].vote_term != 0)
            vote_check(m->c, m, m->held[i].vote_term,
                       (raft_id)m->held[i].to + 1);
        member_send_now(m, m->held[i].to, m->held[i].bytes.data,
                        m->held[i].bytes.len);
        buf_free(&m->held[i].bytes);
    }
    if (m->written_snapshot != 0) {
        raft_index idx = m->written_snapshot;
        m->written_snapshot = 0;
        struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_INSTALLED,
                                .u.snapshot_index = idx};
        member_step(m, &ev, NULL);
    }
    if (m->wrote_entry && m->up) {
        m->wrote_entry = false;
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = m->written_index;
        ev.u.persisted.term = m->written_term;
        member_step(m, &ev, NULL);
    }
}

static void tick_fire(struct sim_world *w, void *arg, uint64_t inc, uint64_t b)
{
    (void)w;
    (void)b;
    struct member *m = arg;
    if (!m->up || m->incarnation != inc)
        return;
    if (!m->paused && !m->removed) {
        struct raft_event ev = {.type = RAFT_EVENT_TICK};
        member_step(m, &ev, NULL);
    }
    member_schedule_tick(m);
}

static void member_schedule_tick(struct member *m)
{
    struct cluster *c = m->c;
    uint64_t period = (uint64_t)((double)c->p.tick_us * m->skew);
    sim_world_schedule(&c->w, period, tick_fire, NULL, m, m->incarnation, 0);
}

static void msg_trace(struct cluster *c, const struct raft_message *msg)
{
    sim_tracef(&c->w,
               "m%" PRIu64 "->m%" PRIu64 " %s t%" PRIu64 " lt%" PRIu64
               " i%" PRIu64 " c%" PRIu64 " n%zu%s h%" PRIu64 "%s%s ctx%" PRIu64,
               msg->from, msg->to, raft_msg_type_name(msg->type), msg->term,
               msg->log_term, msg->index, msg->commit, msg->n_entries,
               msg->reject ? " reject" : "", msg->reject_hint,
               msg->snapshot ? " snap" : "", msg->transfer ? " transfer" : "",
               msg->ctx);
}

/* The transport's snapshot report (etcd's ReportSnapshot): the sender
 * learns whether its snapshot message arrived. a: from << 8 | to. */
static void snap_report_fire(struct sim_world *w, void *arg, uint64_t a,
                             uint64_t failed)
{
    struct cluster *c = arg;
    struct member *m = &c->m[a >> 8];
    if (c->failed || !m->up || m->removed)
        return;
    if (m->paused) {
        sim_world_schedule(w, 10000, snap_report_fire, NULL, c, a, failed);
        return;
    }
    struct raft_event ev = {.type = RAFT_EVENT_REPORT_SNAPSHOT};
    ev.u.snapshot_report.id = (a & 0xff) + 1;
    ev.u.snapshot_report.failed = failed != 0;
    sim_tracef(w, "m%d told snapshot to m%d %s", m->slot + 1,
               (int)(a & 0xff) + 1, failed ? "failed" : "arrived");
    member_step(m, &ev, NULL);
}

static void snap_report(struct cluster *c, int from, int to, bool failed)
{
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 100, 2000),
                       snap_report_fire, NULL, c,
                       ((uint64_t)from << 8) | (uint64_t)to, failed);
}

static bool is_snap(const uint8_t *bytes, size_t len)
{
    struct raft_message msg;
    if (raft_message_decode(bytes, len, &msg) != 0)
        return false;
    bool snap = msg.type == RAFT_MSG_SNAP;
    raft_message_decoded_free(&msg);
    return snap;
}

/* The transport's unreachable report (etcd's ReportUnreachable): a send
 * across a cut link fails, as a broken connection would. */
static void unreachable_fire(struct sim_world *w, void *arg, uint64_t a,
                             uint64_t b)
{
    (void)w;
    (void)b;
    struct cluster *c = arg;
    struct member *m = &c->m[a >> 8];
    if (c->failed || !m->up || m->paused || m->removed)
        return;
    struct raft_event ev = {.type = RAFT_EVENT_REPORT_UNREACHABLE};
    ev.u.unreachable = (a & 0xff) + 1;
    member_step(m, &ev, NULL);
}

static void net_lost(void *arg, int from, int to, const uint8_t *bytes,
                     size_t len)
{
    struct cluster *c = arg;
    if (c->failed)
        return;
    if (is_snap(bytes, len))
        snap_report(c, from, to, true);
    if (c->net.link[from][to].blocked && prng_chance(&c->w.rng, 0.1))
        sim_world_schedule(&c->w, prng_range(&c->w.rng, 100, 5000),
                           unreachable_fire, NULL, c,
                           ((uint64_t)from << 8) | (uint64_t)to, 0);
}

static void member_receive(struct member *m, int from, const uint8_t *bytes,
                           size_t len)
{
    struct cluster *c = m->c;
    struct raft_message msg;
    int rv = raft_message_decode(bytes, len, &msg);
    if (rv != 0) {
        fail(c, SIM_SAFETY, "m%d could not decode a message from m%d: %s",
             m->slot + 1, from + 1, cairn_strerror(rv));
        return;
    }
    msg_trace(c, &msg);
    if (msg.to != m->id || msg.from != (raft_id)from + 1)
        fail(c, SIM_SAFETY, "a message was misrouted");
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = &msg};
    member_step(m, &ev, NULL);
    if (msg.type == RAFT_MSG_SNAP)
        snap_report(c, from, m->slot, false);
    raft_message_decoded_free(&msg);
}

static void client_request_at(struct member *m, const uint8_t *p, size_t len);

static void backlog_push(struct member *m, int kind, int from,
                         const uint8_t *bytes, size_t len)
{
    if (m->n_backlog == BACKLOG_MAX) {
        sim_tracef(&m->c->w, "m%d backlog full: input dropped", m->slot + 1);
        if (kind == 0 && is_snap(bytes, len))
            snap_report(m->c, from, m->slot, true);
        return;
    }
    struct backlog_item *it = &m->backlog[m->n_backlog++];
    it->kind = kind;
    it->from = from;
    buf_init(&it->bytes);
    CAIRN_ASSERT(buf_append(&it->bytes, bytes, len) == 0);
}

/* Whether m has applied the removal of peer, so that its transport no
 * longer talks to it (etcd removes the peer from its transport then). */
static bool peer_forgotten(const struct member *m, const struct member *peer)
{
    return peer->removed_at != 0 && m->applied >= peer->removed_at;
}

static void net_deliver(void *arg, int from, int to, const uint8_t *bytes,
                        size_t len)
{
    struct cluster *c = arg;
    struct member *m = &c->m[to];
    if (c->failed)
        return;
    struct member *sender = &c->m[from];
    if (m->up && peer_forgotten(m, sender) && sender->up) {
        /* As etcd's transport answers a removed member: it learns of its
         * removal and stops. */
        sim_world_schedule(&c->w, prng_range(&c->w.rng, 100, 5000),
                           shutdown_fire, NULL, sender, sender->incarnation, 0);
    }
    if (!m->up || m->removed || peer_forgotten(m, sender) ||
        peer_forgotten(sender, m)) {
        net_lost(c, from, to, bytes, len);
        return;
    }
    if (m->paused) {
        backlog_push(m, 0, from, bytes, len);
        return;
    }
    member_receive(m, from, bytes, len);
}

static void member_drop_volatile(struct member *m)
{
    if (m->r != NULL)
        raft_free(m->r);
    m->r = NULL;
    if (m->ms != NULL)
        raft_memory_storage_free(m->ms);
    m->ms = NULL;
    for (size_t i = 0; i < m->n_held; i++)
        buf_free(&m->held[i].bytes);
    m->n_held = 0;
    for (size_t i = 0; i < m->n_backlog; i++) {
        /* A snapshot that never reached its core: its sender must hear. */
        struct backlog_item *it = &m->backlog[i];
        if (!m->c->closing && it->kind == 0 &&
            is_snap(it->bytes.data, it->bytes.len))
            snap_report(m->c, it->from, m->slot, true);
        buf_free(&it->bytes);
    }
    m->n_backlog = 0;
    memset(m->waiters, 0, sizeof(m->waiters));
    m->dirty = false;
    m->sync_scheduled = false;
    m->wrote_entry = false;
    m->written_snapshot = 0;
}

/* Starts (or restarts) a member from what its disk holds. */
static int member_start(struct member *m)
{
    struct cluster *c = m->c;
    m->incarnation++;
    m->commit_unsent = false;
    m->commit_sched = false;
    int rv = raft_memory_storage_new(&m->ms);
    if (rv != 0)
        return rv;
    struct replay rp = {.m = m, .bad = false, .snap_index = 0};
    size_t end = sim_rec_scan(&m->disk, LOG_FILE, &rp, replay_rec);
    if (rp.bad) {
        fail(c, SIM_SAFETY, "m%d: its log does not replay", m->slot + 1);
        return 0;
    }
    const struct buf *f = sim_disk_read(&m->disk, LOG_FILE);
    if (f != NULL && end < f->len) {
        /* A torn tail: truncate it, as the WAL does. */
        sim_tracef(&c->w, "m%d truncates a torn tail at %zu of %zu",
                   m->slot + 1, end, f->len);
        CAIRN_ASSERT(sim_disk_truncate(&m->disk, LOG_FILE, end) == 0);
        CAIRN_ASSERT(sim_disk_sync(&m->disk, LOG_FILE) == 0);
    }
    const struct raft_storage *st = raft_memory_storage_iface(m->ms);
    const struct raft_snapshot *snap;
    CAIRN_ASSERT(st->snapshot(st->ctx, &snap) == 0);
    struct raft_hard_state hs;
    raft_memory_storage_hard_state(m->ms, &hs);
    if (sm_decode(&m->sm, snap->data, snap->len) != 0)
        fail(c, SIM_SAFETY, "m%d: its snapshot does not decode", m->slot + 1);
    m->applied = snap->meta.index;
    m->snap_index = snap->meta.index;
    m->conf = snap->meta.conf;
    m->term = hs.term;
    m->commit = hs.commit;
    m->role = RAFT_FOLLOWER;
    m->lead = RAFT_NONE;
    if (snap->meta.index > 0)
        seq_check(c, m, snap->meta.index, snap->meta.term, 0, sm_hash(&m->sm),
                  "restarted from a snapshot at");
    member_log_reset(m, snap->meta.index);
    raft_index first, last;
    st->first_index(st->ctx, &first);
    st->last_index(st->ctx, &last);
    for (raft_index i = first; i <= last; i++) {
        const struct raft_entry *e;
        size_t n;
        CAIRN_ASSERT(st->entries(st->ctx, i, i + 1, UINT64_MAX, &e, &n) == 0);
        member_log_appended(m, e, 1);
    }
    m->last_index = last;
    struct raft_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.id = m->id;
    cfg.election_ticks = c->p.election_ticks;
    cfg.heartbeat_ticks = c->p.heartbeat_ticks;
    cfg.storage = st;
    cfg.applied = snap->meta.index;
    cfg.max_size_per_msg = c->p.max_size_per_msg;
    cfg.max_committed_size_per_update = 0;
    cfg.max_uncommitted_entries_size = 0;
    cfg.max_inflight_msgs = c->p.max_inflight_msgs;
    cfg.check_quorum = c->p.check_quorum;
    cfg.pre_vote = c->p.pre_vote;
    cfg.lazy_commit = c->p.lazy_commit;
    cfg.read_only = RAFT_READ_ONLY_SAFE;
    cfg.seed = prng_fork_seed(&c->w.rng);
#ifdef CAIRN_FAULTS
    cfg.faults.commit_earlier_terms =
        c->core_fault == SIM_FAULT_COMMIT_EARLIER_TERMS;
    cfg.faults.vote_before_persist =
        c->core_fault == SIM_FAULT_VOTE_BEFORE_PERSIST;
    cfg.faults.skip_up_to_date_check =
        c->core_fault == SIM_FAULT_SKIP_UP_TO_DATE_CHECK;
    cfg.faults.skip_append_conflict_check =
        c->core_fault == SIM_FAULT_SKIP_APPEND_CONFLICT_CHECK;
#endif
    rv = raft_new(&cfg, &m->r);
    if (rv != 0) {
        fail(c, SIM_ERROR, "m%d: raft_new: %s", m->slot + 1,
             cairn_strerror(rv));
        return 0;
    }
    m->up = true;
    m->paused = false;
    m->started = true;
    char text[160];
    conf_format(&m->conf, text, sizeof(text));
    sim_tracef(&c->w,
               "m%d starts: term %" PRIu64 " commit %" PRIu64
               " snapshot %" PRIu64 " last %" PRIu64 " %s",
               m->slot + 1, hs.term, hs.commit, snap->meta.index, last, text);
    member_schedule_tick(m);
    return 0;
}

static void member_crash(struct member *m)
{
    struct cluster *c = m->c;
    if (!m->up)
        return;
    size_t lost = sim_disk_unsynced(&m->disk);
    uint64_t torn = m->disk.torn;
    sim_disk_crash(&m->disk, &c->w.rng, c->p.torn ? 0.5 : 0.0);
    sim_tracef(&c->w, "m%d crashes (%zu unsynced bytes%s)", m->slot + 1, lost,
               m->disk.torn > torn ? ", last write torn" : "");
    member_drop_volatile(m);
    m->up = false;
    m->paused = false;
    m->incarnation++; /* stale ticks and syncs are ignored */
}

static void restart_fire(struct sim_world *w, void *arg, uint64_t inc,
                         uint64_t b)
{
    (void)w;
    (void)b;
    struct member *m = arg;
    if (m->up || m->incarnation != inc || m->removed || m->c->failed)
        return;
    if (member_start(m) != 0)
        fail(m->c, SIM_ERROR, "m%d: out of memory at restart", m->slot + 1);
}

static void crash_fire(struct sim_world *w, void *arg, uint64_t inc, uint64_t b)
{
    (void)b;
    struct member *m = arg;
    struct cluster *c = m->c;
    if (!m->up || m->incarnation != inc || c->healed)
        return;
    member_crash(m);
    sim_world_schedule(w, prng_range(&w->rng, 10000, c->p.down_us_max),
                       restart_fire, NULL, m, m->incarnation, 0);
}

static void member_crash_soon(struct member *m)
{
    struct cluster *c = m->c;
    if (c->healed)
        return;
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 0, 500), crash_fire, NULL,
                       m, m->incarnation, 0);
}

static void member_resume(struct member *m)
{
    struct cluster *c = m->c;
    if (!m->up || !m->paused)
        return;
    m->paused = false;
    sim_tracef(&c->w, "m%d resumes (%zu queued inputs)", m->slot + 1,
               m->n_backlog);
    size_t n = m->n_backlog;
    struct backlog_item *items = cairn_calloc(n ? n : 1, sizeof(*items));
    CAIRN_ASSERT(items != NULL);
    memcpy(items, m->backlog, n * sizeof(*items));
    m->n_backlog = 0;
    uint64_t inc = m->incarnation;
    for (size_t i = 0; i < n; i++) {
        if (m->up && m->incarnation == inc && !m->paused && !c->failed) {
            if (items[i].kind == 0)
                member_receive(m, items[i].from, items[i].bytes.data,
                               items[i].bytes.len);
            else
                client_request_at(m, items[i].bytes.data, items[i].bytes.len);
        }
        buf_free(&items[i].bytes);
    }
    cairn_free(items);
    if (m->up && m->incarnation == inc && !m->sync_scheduled && m->dirty)
        member_schedule_sync(m);
}

static void resume_fire(struct sim_world *w, void *arg, uint64_t inc,
                        uint64_t b)
{
    (void)w;
    (void)b;
    struct member *m = arg;
    if (m->incarnation != inc)
        return;
    member_resume(m);
}

/* ---------------------------------------------------------------- clients */

/* A client's request or a member's reply, in flight. */
struct client_msg {
    struct cluster *c;
    int client;
    uint64_t op;
    uint64_t attempt;
    int slot;
    bool ok;
    int64_t value;
    bool swapped;
    raft_id hint;
};

#define REQ_BYTES (10 + CMD_BYTES)

static void client_start_op(struct cluster *c, struct client *cl);
static void client_attempt(struct cluster *c, struct client *cl);

static void client_msg_dispose(void *arg)
{
    cairn_free(arg);
}

static uint64_t election_us(const struct cluster *c)
{
    return c->p.election_ticks * c->p.tick_us;
}

static void client_finish(struct cluster *c, struct client *cl,
                          enum lin_outcome o, int64_t value, bool swapped)
{
    lin_history_complete(&c->hist, cl->hist, o, value, swapped, c->w.now_us);
    if (o == LIN_OK) {
        const struct lin_op *op = &c->hist.ops[cl->hist];
        if (op->kind == LIN_READ || (op->kind == LIN_CAS && !swapped))
            cl->seen[op->key] = value;
        else
            cl->seen[op->key] = op->value;
    }
    char line[200];
    lin_op_format(&c->hist.ops[cl->hist], line, sizeof(line));
    sim_tracef(&c->w, "client %s", line);
    cl->busy = false;
    client_start_op(c, cl);
}

/* The client gives up on an operation (only while faults are active). */
static bool client_maybe_give_up(struct cluster *c, struct client *cl)
{
    if (c->healed || c->w.now_us < cl->give_up_us)
        return false;
    client_finish(c, cl, cl->uncertain ? LIN_UNKNOWN : LIN_FAILED, 0, false);
    return true;
}

/* A member of the committed configuration, as a client that knows the
 * member list picks one to try next. */
static int random_member_slot(struct cluster *c)
{
    const struct raft_conf_state *cs = &c->gconf;
    uint64_t n = cs->n_voters + cs->n_learners;
    uint64_t k = prng_below(&c->w.rng, n);
    raft_id id =
        k < cs->n_voters ? cs->voters[k] : cs->learners[k - cs->n_voters];
    return (int)id - 1;
}

static void retry_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    struct cluster *c = arg;
    struct client *cl = &c->cl[a];
    if (c->failed || !cl->busy || cl->attempt != b)
        return;
    if (!client_maybe_give_up(c, cl))
        client_attempt(c, cl);
}

static void reply_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)a;
    (void)b;
    struct client_msg *r = arg;
    struct cluster *c = r->c;
    struct client *cl = &c->cl[r->client];
    if (!c->failed && cl->busy && r->op == cl->op) {
        if (r->ok) {
            client_finish(c, cl, LIN_OK, r->value, r->swapped);
        } else if (r->attempt == cl->attempt) {
            /* A refusal: try the hinted leader, or another member. */
            if (r->hint >= 1 && r->hint <= (raft_id)c->p.slots)
                cl->target = (int)r->hint - 1;
            else
                cl->target = random_member_slot(c);
            sim_world_schedule(&c->w, prng_range(&c->w.rng, 1000, 20000),
                               retry_fire, NULL, c, (uint64_t)cl->id,
                               cl->attempt);
        }
    }
    cairn_free(r);
}

static void client_reply(struct cluster *c, int client, uint64_t op,
                         uint64_t attempt, int from_slot, bool ok,
                         int64_t value, bool swapped, raft_id hint)
{
    struct client_msg *r = cairn_calloc(1, sizeof(*r));
    CAIRN_ASSERT(r != NULL);
    *r = (struct client_msg){.c = c,
                             .client = client,
                             .op = op,
                             .attempt = attempt,
                             .slot = from_slot,
                             .ok = ok,
                             .value = value,
                             .swapped = swapped,
                             .hint = hint};
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 100, 3000), reply_fire,
                       client_msg_dispose, r, 0, 0);
}

static struct waiter *waiter_new(struct member *m)
{
    for (int i = 0; i < WAITERS_MAX; i++)
        if (!m->waiters[i].used)
            return &m->waiters[i];
    return NULL;
}

/* A client request arrives at a running member. Layout: client u8,
 * is_read u8, attempt u64, then the command. */
static void client_request_at(struct member *m, const uint8_t *p, size_t len)
{
    struct cluster *c = m->c;
    CAIRN_ASSERT(len == REQ_BYTES);
    int client = p[0];
    bool is_read = p[1];
    uint64_t attempt = codec_get_u64(p + 2);
    struct cmd cmd;
    cmd.client = p[10];
    cmd.kind = p[11];
    cmd.key = p[12];
    cmd.op = codec_get_u64(p + 13);
    if (is_read && c->core_fault == SIM_FAULT_LOCAL_READS) {
        client_reply(c, client, cmd.op, attempt, m->slot, true,
                     m->sm.val[cmd.key], false, RAFT_NONE);
        return;
    }
    struct waiter *wt = waiter_new(m);
    if (wt == NULL) {
        client_reply(c, client, cmd.op, attempt, m->slot, false, 0, false,
                     m->lead);
        return;
    }
    *wt = (struct waiter){.used = true,
                          .client = client,
                          .op = cmd.op,
                          .is_read = is_read,
                          .key = cmd.key};
    int rv;
    if (is_read) {
        wt->ctx = ++c->next_ctx;
        struct raft_event ev = {.type = RAFT_EVENT_READ_INDEX,
                                .u.read_ctx = wt->ctx};
        member_step(m, &ev, &rv);
    } else {
        struct raft_proposal prop = {.data = p + 10, .len = CMD_BYTES};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                                .u.propose = {.items = &prop, .n = 1}};
        member_step(m, &ev, &rv);
    }
    if (rv != 0) {
        wt->used = false;
        sim_tracef(&c->w, "m%d refuses c%d#%" PRIu64 ": %s", m->slot + 1,
                   client, cmd.op, cairn_errname(rv));
        client_reply(c, client, cmd.op, attempt, m->slot, false, 0, false,
                     m->lead);
    }
}

static void request_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)b;
    struct cluster *c = arg;
    /* a: slot << 8 | client, b: the attempt. The request is built from
     * the client's operation, unless the client has moved on since. */
    int slot = (int)(a >> 8);
    int client = (int)(a & 0xff);
    struct client *cl = &c->cl[client];
    struct member *m = &c->m[slot];
    if (c->failed || !cl->busy || b < cl->op_first_attempt || !m->up ||
        m->removed)
        return;
    uint8_t req[REQ_BYTES];
    req[0] = (uint8_t)client;
    req[1] = cl->is_read;
    codec_put_u64(req + 2, b);
    cmd_encode(&cl->cmd, req + 10);
    if (m->paused) {
        backlog_push(m, 1, -1, req, sizeof(req));
        return;
    }
    client_request_at(m, req, sizeof(req));
}

static void attempt_timeout_fire(struct sim_world *w, void *arg, uint64_t a,
                                 uint64_t b)
{
    (void)w;
    struct cluster *c = arg;
    struct client *cl = &c->cl[a];
    if (c->failed || !cl->busy || cl->attempt != b)
        return;
    cl->uncertain = true;
    if (client_maybe_give_up(c, cl))
        return;
    cl->target = random_member_slot(c);
    client_attempt(c, cl);
}

static void client_attempt(struct cluster *c, struct client *cl)
{
    cl->attempt++;
    uint64_t a = ((uint64_t)cl->target << 8) | (uint64_t)cl->id;
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 100, 3000), request_fire,
                       NULL, c, a, cl->attempt);
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 150000, 400000),
                       attempt_timeout_fire, NULL, c, (uint64_t)cl->id,
                       cl->attempt);
}

static void invoke_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)b;
    struct cluster *c = arg;
    struct client *cl = &c->cl[a];
    if (c->failed || cl->busy || w->now_us >= c->end_us - 20 * election_us(c))
        return;
    cl->op++;
    cl->uncertain = false;
    int pick = (int)prng_below(&w->rng, 10);
    cl->is_read = pick < 4;
    cl->cmd =
        (struct cmd){.client = (uint8_t)cl->id,
                     .kind = pick < 4   ? LIN_READ
                             : pick < 8 ? LIN_WRITE
                                        : LIN_CAS,
                     .key = (uint8_t)prng_below(&w->rng, (uint64_t)c->p.keys),
                     .op = cl->op,
                     .value = (int64_t)(cl->id * 1000000 + cl->op),
                     .expect = 0};
    if (cl->cmd.kind == LIN_CAS) {
        /* Mostly expect the value this client last saw, so that swaps
         * succeed often enough to matter. */
        cl->cmd.expect = prng_chance(&w->rng, 0.8)
                             ? cl->seen[cl->cmd.key]
                             : (int64_t)prng_below(&w->rng, 3);
    }
    int rv = lin_history_invoke(&c->hist, (uint32_t)cl->id, cl->cmd.key,
                                (enum lin_kind)cl->cmd.kind, cl->cmd.value,
                                cl->cmd.expect, w->now_us, &cl->hist);
    if (rv != 0)
        return; /* the history is full: this client stops */
    c->hist_of[cl->id] = grow(c->hist_of[cl->id], &c->hist_of_cap[cl->id],
                              cl->op + 1, sizeof(size_t), HISTORY_MAX);
    c->hist_of[cl->id][cl->op] = cl->hist + 1;
    c->effects = grow(c->effects, &c->effects_cap, cl->hist + 1,
                      sizeof(*c->effects), HISTORY_MAX);
    c->effects[cl->hist] = (struct effect){0, 0, false};
    cl->busy = true;
    cl->op_first_attempt = cl->attempt + 1;
    cl->invoked_us = w->now_us;
    cl->give_up_us = w->now_us + prng_range(&w->rng, 500000, 3000000);
    client_attempt(c, cl);
}

static void client_start_op(struct cluster *c, struct client *cl)
{
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 0, 30000), invoke_fire,
                       NULL, c, (uint64_t)cl->id, 0);
}

/* ---------------------------------------------------------------- nemesis */

static struct member *find_leader(struct cluster *c)
{
    struct member *best = NULL;
    for (int s = 0; s < c->p.slots; s++) {
        struct member *m = &c->m[s];
        if (m->up && !m->paused && m->removed_at == 0 &&
            m->role == RAFT_LEADER && (best == NULL || m->term > best->term))
            best = m;
    }
    return best;
}

static void net_heal_fire(struct sim_world *w, void *arg, uint64_t a,
                          uint64_t b)
{
    (void)a;
    (void)b;
    struct cluster *c = arg;
    if (sim_net_has_cuts(&c->net)) {
        sim_net_heal(&c->net);
        sim_tracef(w, "FAULT network healed");
    }
}

static void propose_conf(struct cluster *c, struct member *l,
                         const struct raft_conf_change *cc, const char *what)
{
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE_CONF_CHANGE,
                            .u.conf_change = cc};
    int rv;
    member_step(l, &ev, &rv);
    sim_tracef(&c->w, "FAULT m%d proposes %s: %s", l->slot + 1, what,
               rv ? cairn_errname(rv) : "accepted");
}

static void membership_change(struct cluster *c)
{
    struct member *l = find_leader(c);
    if (l == NULL)
        return;
    struct raft_status *st = cairn_malloc(sizeof(*st));
    CAIRN_ASSERT(st != NULL);
    raft_status_get(l->r, st);
    const struct raft_conf_state *cs = &st->conf;
    struct raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    char what[96];
    if (cs->n_voters_outgoing > 0) {
        if (!cs->auto_leave)
            propose_conf(c, l, &cc, "to leave the joint configuration");
        cairn_free(st);
        return;
    }
    /* A slot that is not in the configuration and was never removed. */
    int fresh = -1;
    for (int s = 0; s < c->p.slots; s++)
        if (c->m[s].removed_at == 0 && !conf_has(cs, c->m[s].id) &&
            !c->m[s].was_member) {
            fresh = s;
            break;
        }
    raft_id voter = cs->voters[prng_below(&c->w.rng, cs->n_voters)];
    raft_id learner = cs->n_learners
                          ? cs->learners[prng_below(&c->w.rng, cs->n_learners)]
                          : RAFT_NONE;
    /* Choose among the changes this configuration allows. */
    bool can[6] = {fresh >= 0,           learner != RAFT_NONE,
                   learner != RAFT_NONE, cs->n_voters > 3,
                   cs->n_voters > 3,     learner != RAFT_NONE};
    int options[6], n_options = 0;
    for (int k = 0; k < 6; k++)
        if (can[k])
            options[n_options++] = k;
    if (n_options == 0) {
        cairn_free(st);
        return;
    }
    int choice = options[prng_below(&c->w.rng, (uint64_t)n_options)];
    cc.n_changes = 1;
    if (choice == 0 && fresh >= 0) {
        struct member *m = &c->m[fresh];
        /* A joining member starts either from the initial configuration
         * or, as etcd's joining members do, from an empty log. */
        if (!m->started && prng_chance(&c->w.rng, 0.5))
            disk_bootstrap(c, m);
        if (!m->up && member_start(m) != 0) {
            cairn_free(st);
            return;
        }
        cc.changes[0] =
            (struct raft_conf_change_item){RAFT_CC_ADD_LEARNER, m->id};
        snprintf(what, sizeof(what), "add learner %" PRIu64, m->id);
    } else if (choice == 1 && learner != RAFT_NONE) {
        cc.changes[0] =
            (struct raft_conf_change_item){RAFT_CC_ADD_NODE, learner};
        snprintf(what, sizeof(what), "promote %" PRIu64, learner);
    } else if (choice == 2 && learner != RAFT_NONE) {
        cc.changes[0] =
            (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE, learner};
        snprintf(what, sizeof(what), "remove learner %" PRIu64, learner);
    } else if (choice == 3 && cs->n_voters > 3) {
        cc.changes[0] =
            (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE, voter};
        snprintf(what, sizeof(what), "remove voter %" PRIu64, voter);
    } else if (choice == 4 && cs->n_voters > 3) {
        cc.changes[0] =
            (struct raft_conf_change_item){RAFT_CC_ADD_LEARNER, voter};
        snprintf(what, sizeof(what), "demote %" PRIu64, voter);
    } else if (choice == 5 && learner != RAFT_NONE) {
        /* Joint consensus: swap a voter for a learner in one change. */
        cc.n_changes = 2;
        cc.transition = prng_chance(&c->w.rng, 0.5)
                            ? RAFT_CC_TRANSITION_JOINT_IMPLICIT
                            : RAFT_CC_TRANSITION_JOINT_EXPLICIT;
        cc.changes[0] =
            (struct raft_conf_change_item){RAFT_CC_ADD_NODE, learner};
        cc.changes[1] =
            (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE, voter};
        snprintf(what, sizeof(what),
                 "joint (%s): promote %" PRIu64 ", remove %" PRIu64,
                 cc.transition == RAFT_CC_TRANSITION_JOINT_IMPLICIT
                     ? "auto leave"
                     : "explicit leave",
                 learner, voter);
    } else {
        cairn_free(st);
        return;
    }
    propose_conf(c, l, &cc, what);
    cairn_free(st);
}

static void transfer(struct cluster *c)
{
    struct member *l = find_leader(c);
    if (l == NULL || l->conf.n_voters < 2)
        return;
    raft_id to = l->conf.voters[prng_below(&c->w.rng, l->conf.n_voters)];
    if (to == l->id)
        return;
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER_LEADERSHIP,
                            .u.transferee = to};
    int rv;
    member_step(l, &ev, &rv);
    sim_tracef(&c->w, "FAULT m%d transfers leadership to m%" PRIu64 ": %s",
               l->slot + 1, to, rv ? cairn_errname(rv) : "started");
}

static struct member *random_up(struct cluster *c)
{
    int n = 0;
    struct member *pick[SLOTS_MAX];
    for (int s = 0; s < c->p.slots; s++)
        if (c->m[s].up && !c->m[s].removed)
            pick[n++] = &c->m[s];
    return n ? pick[prng_below(&c->w.rng, (uint64_t)n)] : NULL;
}

static void nemesis_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct cluster *c = arg;
    if (c->failed || c->healed)
        return;
    struct params *p = &c->p;
    enum { CRASH, PARTITION, PAUSE, MEMBERSHIP, TRANSFER, COMPACT, KINDS };
    bool on[KINDS] = {p->crashes,    p->partitions, p->pauses,
                      p->membership, p->transfers,  p->snapshots};
    int kind = (int)prng_below(&w->rng, KINDS);
    if (on[kind]) {
        struct member *m = random_up(c);
        switch (kind) {
        case CRASH:
            if (m != NULL) {
                sim_tracef(w, "FAULT crash m%d", m->slot + 1);
                member_crash(m);
                sim_world_schedule(w,
                                   prng_range(&w->rng, 10000, p->down_us_max),
                                   restart_fire, NULL, m, m->incarnation, 0);
            }
            break;
        case PARTITION: {
            int shape = (int)prng_below(&w->rng, 4);
            struct member *l = find_leader(c);
            if (shape == 3 && l != NULL) {
                /* The leader keeps one follower: a minority that appends
                 * entries it cannot commit (Figure 8's first step). */
                int other = (l->slot + 1 +
                             (int)prng_below(&w->rng, (uint64_t)p->slots - 1)) %
                            p->slots;
                sim_net_split(&c->net, (1u << l->slot) | (1u << other));
                sim_tracef(w, "FAULT split m%d,m%d | rest", l->slot + 1,
                           other + 1);
            } else if (shape == 0) {
                uint32_t side =
                    (uint32_t)prng_below(&w->rng, (1ull << p->slots) - 1) + 1;
                sim_net_split(&c->net, side);
                sim_tracef(w, "FAULT split 0x%x | rest", side);
            } else if (shape == 1 && m != NULL) {
                sim_net_isolate(&c->net, m->slot);
                sim_tracef(w, "FAULT isolate m%d", m->slot + 1);
            } else {
                int x = (int)prng_below(&w->rng, (uint64_t)p->slots);
                int y = (int)prng_below(&w->rng, (uint64_t)p->slots);
                if (x != y) {
                    sim_net_cut(&c->net, x, y, true);
                    sim_tracef(w, "FAULT cut m%d -> m%d one way", x + 1, y + 1);
                }
            }
            sim_world_schedule(w, prng_range(&w->rng, 50000, 2000000),
                               net_heal_fire, NULL, c, 0, 0);
            break;
        }
        case PAUSE:
            if (m != NULL && !m->paused) {
                m->paused = true;
                sim_tracef(w, "FAULT pause m%d", m->slot + 1);
                sim_world_schedule(w, prng_range(&w->rng, 20000, 1000000),
                                   resume_fire, NULL, m, m->incarnation, 0);
            }
            break;
        case MEMBERSHIP:
            membership_change(c);
            break;
        case TRANSFER:
            transfer(c);
            break;
        case COMPACT:
            if (m != NULL && !m->paused)
                member_compact(m);
            break;
        }
    }
    sim_world_schedule(w, prng_range(&w->rng, 1000, p->nemesis_gap_us_max),
                       nemesis_fire, NULL, c, 0, 0);
}

/* ---------------------------------------------------------------- phases */

static void heal_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct cluster *c = arg;
    c->healed = true;
    c->heal_us = w->now_us;
    sim_net_heal(&c->net);
    for (int x = 0; x < SIM_NODES_MAX; x++)
        for (int y = 0; y < SIM_NODES_MAX; y++) {
            c->net.link[x][y].loss_p = 0;
            c->net.link[x][y].dup_p = 0;
        }
    sim_tracef(w, "FAULT all faults healed");
    for (int s = 0; s < c->p.slots; s++)
        c->m[s].skew = 1.0; /* clocks run at the same rate again */
    for (int s = 0; s < c->p.slots; s++) {
        struct member *m = &c->m[s];
        if (m->started && !m->up && !m->removed && !c->failed)
            if (member_start(m) != 0)
                fail(c, SIM_ERROR, "out of memory");
        if (m->paused)
            member_resume(m);
    }
}

/* Whether a majority of ids (empty: trivially) follow leader l in its
 * term. Liveness asks for a leader a quorum follows, not every voter: a
 * member can lag for good without harming progress (for instance a
 * lagging voter bumped to a higher term by a removed member's vote request,
 * in a cluster without PreVote and CheckQuorum, is never heard again by a
 * leader of a lower term: etcd has the same property). */
static bool leader_has_quorum(const struct cluster *c, const struct member *l,
                              const raft_id *ids, uint32_t n)
{
    uint32_t follow = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct member *m = &c->m[ids[i] - 1];
        if (m->up && !m->removed && m->term == l->term &&
            (m == l || m->lead == l->id))
            follow++;
    }
    return n == 0 || follow > n / 2;
}

static void monitor_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct cluster *c = arg;
    if (c->failed)
        return;
    if (c->healed && !c->leader_seen_after_heal) {
        struct member *l = find_leader(c);
        bool all =
            l != NULL &&
            leader_has_quorum(c, l, c->gconf.voters, c->gconf.n_voters) &&
            leader_has_quorum(c, l, c->gconf.voters_outgoing,
                              c->gconf.n_voters_outgoing);
        if (all) {
            c->leader_seen_after_heal = true;
            sim_tracef(w,
                       "leader m%d followed by quorums %" PRIu64
                       " us after healing",
                       l->slot + 1, w->now_us - c->heal_us);
        } else if (w->now_us > c->leader_deadline_us) {
            fail(c, SIM_LIVENESS,
                 "no leader followed by a quorum within %" PRIu64
                 " ticks after all faults healed",
                 (c->leader_deadline_us - c->heal_us) / c->p.tick_us);
            return;
        }
    }
    if (c->healed) {
        /* Keep leaving explicit joint configurations after healing. */
        struct member *l = find_leader(c);
        if (l != NULL && l->conf.n_voters_outgoing > 0 && !l->conf.auto_leave &&
            prng_chance(&w->rng, 0.1)) {
            struct raft_conf_change cc;
            memset(&cc, 0, sizeof(cc));
            propose_conf(c, l, &cc, "to leave the joint configuration");
        }
    }
    sim_world_schedule(w, c->p.tick_us, monitor_fire, NULL, c, 0, 0);
}

/* ---------------------------------------------------------------- setup */

static void params_pick(struct params *p, struct prng *r)
{
    memset(p, 0, sizeof(*p));
    p->slots = 3 + (int)prng_below(r, 5);
    p->initial = 3 + (int)prng_below(r, 3);
    if (p->initial > p->slots)
        p->initial = p->slots;
    p->clients = 2 + (int)prng_below(r, CLIENTS_MAX - 1);
    p->keys = 1 + (int)prng_below(r, 3);
    p->tick_us = 10000;
    p->election_ticks = 10;
    p->heartbeat_ticks = 1 + (unsigned)prng_below(r, 2);
    p->pre_vote = prng_chance(r, 0.5);
    p->check_quorum = prng_chance(r, 0.5);
    static const uint64_t sizes[] = {0, 64, 1024, 1 << 20};
    p->max_size_per_msg = sizes[prng_below(r, 4)];
    p->max_inflight_msgs = 1 + (unsigned)prng_below(r, 256);
    p->crashes = prng_chance(r, 0.6);
    p->partitions = prng_chance(r, 0.6);
    p->pauses = prng_chance(r, 0.4);
    p->skew = prng_chance(r, 0.4);
    p->torn = prng_chance(r, 0.5);
    p->membership = prng_chance(r, 0.4);
    p->transfers = prng_chance(r, 0.4);
    p->lossy = prng_chance(r, 0.4);
    p->snapshots = prng_chance(r, 0.5);
    p->crash_after_vote_p = p->crashes ? 0.05 : 0;
    p->compact_every = p->snapshots ? 5 + prng_below(r, 60) : 0;
    p->compact_keep = prng_below(r, 10);
    p->fault_phase_us = prng_range(r, 2000000, 6000000);
    p->nemesis_gap_us_max = prng_range(r, 50000, 500000);
    p->down_us_max = prng_chance(r, 0.5) ? 200000 : 1500000;
    p->link.latency_us_min = prng_range(r, 50, 1000);
    p->link.latency_us_max = p->link.latency_us_min + prng_range(r, 0, 10000);
    p->link.tail_p = prng_chance(r, 0.5) ? 0.02 : 0;
    p->link.tail_us = prng_range(r, 10000, 80000);
    p->link.loss_p = p->lossy ? prng_double(r) * 0.1 : 0;
    p->link.dup_p = p->lossy ? prng_double(r) * 0.05 : 0;
    p->link.reorder = prng_chance(r, 0.5);
    p->lazy_commit = prng_chance(r, 0.5);
}

static void params_format(const struct params *p, char *out, size_t size)
{
    snprintf(out, size,
             "slots=%d voters=%d clients=%d keys=%d%s%s%s faults=%s%s%s%s%s%s%s"
             "%s%s loss=%.3f dup=%.3f",
             p->slots, p->initial, p->clients, p->keys,
             p->pre_vote ? " prevote" : "",
             p->check_quorum ? " checkquorum" : "",
             p->lazy_commit ? " lazycommit" : "", p->crashes ? "crash," : "",
             p->partitions ? "partition," : "", p->pauses ? "pause," : "",
             p->skew ? "skew," : "", p->torn ? "torn," : "",
             p->membership ? "membership," : "",
             p->transfers ? "transfer," : "", p->snapshots ? "snapshot," : "",
             p->link.reorder ? "reorder," : "", p->link.loss_p, p->link.dup_p);
}

static int cluster_init(struct cluster *c, const struct sim_options *opt)
{
    memset(c, 0, sizeof(*c));
    int rv = sim_world_init(&c->w, opt->seed, EVENTS_MAX,
                            opt->trace_lines ? opt->trace_lines : 4000);
    if (rv != 0)
        return rv;
    c->w.trace.echo = opt->echo;
    c->core_fault = opt->core_fault;
    /* The parameters come from their own stream, so that adding a choice
     * to the run does not change which cluster a seed picks. */
    struct prng pr;
    prng_seed(&pr, opt->seed ^ 0x5eed5eed5eed5eedull);
    params_pick(&c->p, &pr);
    if (c->core_fault != SIM_FAULT_NONE) {
        /* Fault tests: faults that expose each broken rule. */
        c->p.crashes = true;
        c->p.partitions = true;
        c->p.crash_after_vote_p = 0.2;
        c->p.max_size_per_msg = 0; /* one entry per append: Figure 8 */
        c->p.slots = c->p.initial = 5;
        c->p.membership = false;
        c->p.max_inflight_msgs = 1;
        c->p.link.loss_p = 0.1;
        c->p.nemesis_gap_us_max = 100000;
        c->p.down_us_max = 200000;
    }
    sim_net_init(&c->net, &c->w, c->p.slots, &c->p.link, 100000, net_deliver,
                 c);
    sim_net_on_lost(&c->net, net_lost);
    lin_history_init(&c->hist, HISTORY_MAX);
    c->seq = grow(NULL, &c->seq_cap, 2, sizeof(*c->seq), 1u << 24);
    /* Index 1 is the bootstrap snapshot: the initial, empty state. */
    struct sm zero;
    memset(&zero, 0, sizeof(zero));
    c->seq[1] = (struct committed){.term = 1,
                                   .commit_term = 1,
                                   .chain = mix64(1, 1),
                                   .state = sm_hash(&zero)};
    c->seq_len = 2;
    struct raft_conf_state cs;
    memset(&cs, 0, sizeof(cs));
    for (int s = 0; s < c->p.initial; s++)
        cs.voters[cs.n_voters++] = (raft_id)s + 1;
    c->gconf = cs;
    c->gconf_index = 1;
    for (int s = 0; s < c->p.slots; s++) {
        struct member *m = &c->m[s];
        m->c = c;
        m->slot = s;
        m->id = (raft_id)s + 1;
        m->skew = c->p.skew ? 0.8 + 0.4 * prng_double(&c->w.rng) : 1.0;
        sim_disk_init(&m->disk, 0);
        m->held = cairn_calloc(HELD_MAX, sizeof(*m->held));
        m->backlog = cairn_calloc(BACKLOG_MAX, sizeof(*m->backlog));
        CAIRN_ASSERT(m->held && m->backlog);
    }
    for (int i = 0; i < c->p.clients; i++) {
        c->cl[i].id = i;
        c->cl[i].target = (int)prng_below(&c->w.rng, (uint64_t)c->p.initial);
    }
    return 0;
}

static void cluster_free(struct cluster *c)
{
    c->closing = true;
    for (int s = 0; s < c->p.slots; s++) {
        struct member *m = &c->m[s];
        member_drop_volatile(m);
        sim_disk_close(&m->disk);
        cairn_free(m->held);
        cairn_free(m->backlog);
        cairn_free(m->chain);
        cairn_free(m->votes);
    }
    sim_world_close(&c->w);
    lin_history_free(&c->hist);
    cairn_free(c->seq);
    cairn_free(c->leader_of);
    cairn_free(c->cmap.keys_index);
    cairn_free(c->cmap.keys_term);
    cairn_free(c->cmap.vals);
    cairn_free(c->effects);
    for (int i = 0; i < CLIENTS_MAX; i++)
        cairn_free(c->hist_of[i]);
}

static void bootstrap(struct cluster *c)
{
    for (int s = 0; s < c->p.initial; s++) {
        struct member *m = &c->m[s];
        disk_bootstrap(c, m);
        m->was_member = true;
        if (member_start(m) != 0)
            fail(c, SIM_ERROR, "out of memory at start");
    }
}

/* ---------------------------------------------------------------- run */

static const char *const fault_names[] = {
    "none",
    "commit_earlier_terms",
    "vote_before_persist",
    "skip_up_to_date_check",
    "skip_append_conflict_check",
    "local_reads",
};

const char *sim_core_fault_name(int fault)
{
    return fault >= 0 && fault < SIM_FAULT_COUNT ? fault_names[fault] : NULL;
}

int sim_core_fault_parse(const char *name)
{
    for (int i = 0; i < SIM_FAULT_COUNT; i++)
        if (strcmp(name, fault_names[i]) == 0)
            return i;
    return -1;
}

bool sim_fault_is_host(int fault)
{
    return fault == SIM_FAULT_LOCAL_READS;
}

bool sim_core_faults_available(void)
{
#ifdef CAIRN_FAULTS
    return true;
#else
    return false;
#endif
}

const char *sim_verdict_name(int verdict)
{
    switch (verdict) {
    case SIM_PASS:
        return "pass";
    case SIM_SAFETY:
        return "safety";
    case SIM_NONLINEAR:
        return "linearizability";
    case SIM_LIVENESS:
        return "liveness";
    case SIM_ERROR:
        return "error";
    default:
        return "unknown";
    }
}

/* Writes and CAS whose client never learned their fate: the simulator
 * knows it. One never applied anywhere by the end of the run never took
 * effect (failed); one applied took effect at the latest when it was first
 * applied, with the result it had then (ok, completing then). Both are
 * sound: a read that saw a write no member applied is a violation, and a
 * write is committed, hence visible to every later ReadIndex read, by the
 * time any member applies it. It keeps the search small where a long outage
 * leaves hundreds of unknown writes on one key. */
static void resolve_unknown(struct cluster *c)
{
    for (size_t i = 0; i < c->hist.len; i++) {
        struct lin_op *op = &c->hist.ops[i];
        if (op->kind == LIN_READ ||
            (op->outcome != LIN_UNKNOWN && op->outcome != LIN_PENDING))
            continue;
        const struct effect *e = &c->effects[i];
        if (e->at_us == 0) {
            op->outcome = LIN_FAILED;
            op->complete = c->w.now_us;
        } else {
            op->outcome = LIN_OK;
            op->complete = e->at_us;
            op->cas_swapped = e->swapped;
        }
    }
}

static void final_checks(struct cluster *c)
{
    if (c->failed)
        return;
    if (!c->leader_seen_after_heal) {
        fail(c, SIM_LIVENESS, "no leader followed by a quorum after healing");
        return;
    }
    for (int i = 0; i < c->p.clients; i++) {
        struct client *cl = &c->cl[i];
        if (cl->busy && cl->invoked_us + 20 * election_us(c) < c->end_us) {
            char line[200];
            lin_op_format(&c->hist.ops[cl->hist], line, sizeof(line));
            fail(c, SIM_LIVENESS,
                 "an operation stayed pending for %" PRIu64 " ticks, %" PRIu64
                 " ticks after all faults healed: %s",
                 (c->end_us - cl->invoked_us) / c->p.tick_us,
                 (c->end_us - c->heal_us) / c->p.tick_us, line);
            return;
        }
    }
    resolve_unknown(c);
    struct lin_report rep;
    int rv = lin_check(c->hist.ops, c->hist.len, 0, 0, &rep);
    if (rv != 0) {
        fail(c, SIM_ERROR, "linearizability checker: %s", cairn_strerror(rv));
        return;
    }
    if (rep.result != LIN_LINEARIZABLE) {
        char line[200];
        lin_op_format(&c->hist.ops[rep.blocking_op], line, sizeof(line));
        fail(c, SIM_NONLINEAR,
             "%s on key %" PRIu32 " (%zu ops, longest linearizable prefix "
             "%zu); stuck at: %s",
             rep.result == LIN_GAVE_UP ? "checker gave up" : "not linearizable",
             rep.key, rep.key_ops, rep.deepest, line);
    }
}

int sim_cluster_run(const struct sim_options *opt, struct sim_result *res,
                    FILE *trace_out)
{
    memset(res, 0, sizeof(*res));
    struct cluster *c = cairn_calloc(1, sizeof(*c));
    if (c == NULL)
        return CAIRN_ENOMEM;
    int rv = cluster_init(c, opt);
    if (rv != 0) {
        cairn_free(c);
        return rv;
    }
    params_format(&c->p, res->mix, sizeof(res->mix));
    sim_tracef(&c->w, "seed %" PRIu64 ": %s%s%s", opt->seed, res->mix,
               c->core_fault ? " core fault " : "",
               c->core_fault ? sim_core_fault_name(c->core_fault) : "");
    uint64_t e = election_us(c);
    c->heal_us = c->p.fault_phase_us;
    c->leader_deadline_us = c->heal_us + 30 * e;
    c->end_us = c->heal_us + 80 * e;
    bootstrap(c);
    for (int i = 0; i < c->p.clients; i++)
        client_start_op(c, &c->cl[i]);
    sim_world_schedule(&c->w, prng_range(&c->w.rng, 1000, 300000), nemesis_fire,
                       NULL, c, 0, 0);
    sim_world_schedule(&c->w, c->heal_us, heal_fire, NULL, c, 0, 0);
    sim_world_schedule(&c->w, c->p.tick_us, monitor_fire, NULL, c, 0, 0);
    while (!c->failed && sim_world_step(&c->w, c->end_us))
        ;
    /* Outcomes as the clients saw them (final_checks resolves unknowns). */
    for (size_t i = 0; i < c->hist.len; i++) {
        enum lin_outcome o = c->hist.ops[i].outcome;
        res->ops_ok += o == LIN_OK;
        res->ops_failed += o == LIN_FAILED;
        res->ops_unknown += o == LIN_UNKNOWN || o == LIN_PENDING;
    }
    final_checks(c);
    res->verdict = c->failed ? c->verdict : SIM_PASS;
    snprintf(res->reason, sizeof(res->reason), "%s", c->reason);
    res->events = c->w.events_run;
    res->sim_time_us = c->w.now_us;
    res->trace_hash = c->w.trace.hash;
    res->max_term = c->max_term;
    res->committed = c->seq_len - 1;
    if (c->failed && trace_out != NULL)
        sim_trace_dump(&c->w, trace_out);
    cluster_free(c);
    cairn_free(c);
    return 0;
}

/* The whole-member simulation's checks (docs/sim.md, "Whole members"):
 * raft invariants over the members' durable logs, the revision log built
 * from every member's full watcher (members agree on every revision; each
 * watcher delivers revisions in order, once, whole, without gaps, never at
 * or below a bookmark; prev_kv is the key's previous version), equal HashKV
 * at equal applied index, acknowledged writes in the revision log,
 * serializable reads consistent with it, linearizability of the registers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "member_int.h"

void ms_key_name(int key, char *out)
{
    snprintf(out, MS_KEY_LEN, "k%d", key);
}

int64_t ms_parse_val(const uint8_t *v, size_t len)
{
    int64_t x = 0;
    for (size_t i = 0; i < len && i < 18; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return len == 0 ? -1 : x;
}

/* ------------------------------------------------------------ raft */

static void clog_check(struct ms_member *m, raft_index i,
                       const struct ms_ent *e, const char *what)
{
    struct ms_run *r = m->r;
    r->clog = ms_grow(r->clog, &r->clog_cap, i + 1, sizeof(*r->clog));
    if (r->clog[i].term == 0) {
        r->clog[i] = *e;
        if (i > r->clog_len)
            r->clog_len = i;
        return;
    }
    if (r->clog[i].term != e->term || r->clog[i].crc != e->crc)
        ms_fail(r, SIM_SAFETY,
                "m%d %s entry %" PRIu64 " (term %" PRIu64
                ") differs from the committed one (term %" PRIu64 ")",
                m->slot + 1, what, i, e->term, r->clog[i].term);
}

void ms_log_reset(struct ms_member *m, raft_index snap_index)
{
    m->log_first = snap_index + 1;
    m->log_last = snap_index;
    m->checked = snap_index;
}

void ms_log_persisted(struct ms_member *m, const struct node_persist *p)
{
    if (p->snap != NULL) {
        raft_index s = p->snap->index;
        bool keep = s >= m->log_first && s <= m->log_last &&
                    m->log[s - m->log_first].term == p->snap->term;
        if (!keep && s > m->log_last) {
            m->log_first = s + 1;
            m->log_last = s;
        } else if (!keep) {
            ms_log_reset(m, s);
        }
        if (m->checked < s)
            m->checked = s;
    }
    for (size_t k = 0; k < p->n_entries; k++) {
        const struct raft_entry *e = &p->entries[k];
        if (e->index < m->log_first)
            continue;
        if (e->index > m->log_last + 1) {
            ms_fail(m->r, SIM_SAFETY,
                    "m%d persisted entry %" PRIu64 " after a gap (last %" PRIu64
                    ")",
                    m->slot + 1, e->index, m->log_last);
            return;
        }
        struct ms_ent x = {.term = e->term,
                           .crc = crc32c(e->type, e->data, e->len)};
        if (e->index <= m->checked)
            clog_check(m, e->index, &x, "rewrote committed");
        size_t at = (size_t)(e->index - m->log_first);
        m->log = ms_grow(m->log, &m->log_cap, at + 1, sizeof(*m->log));
        m->log[at] = x;
        m->log_last = e->index;
    }
}

void ms_raft_check(struct ms_member *m)
{
    struct ms_run *r = m->r;
    /* A stopped member's core may hold what its failed persist never
     * made durable: nothing of it counts. */
    if (!ms_usable(m) || r->failed)
        return;
    ms_lease_trace(m);
    struct raft_status st;
    raft_status_get(node_raft(m->n), &st);
    raft_term term = st.hard_state.term;
    if (term < m->term)
        ms_fail(r, SIM_SAFETY,
                "m%d term went back from %" PRIu64 " to %" PRIu64, m->slot + 1,
                m->term, term);
    m->term = term;
    if (term > r->max_term)
        r->max_term = term;
    if (st.soft_state.role == RAFT_LEADER) {
        r->leader_of =
            ms_grow(r->leader_of, &r->leader_cap, term + 1, sizeof(uint64_t));
        if (r->leader_of[term] != 0 && r->leader_of[term] != m->id)
            ms_fail(r, SIM_SAFETY,
                    "two leaders in term %" PRIu64 ": %" PRIu64 " and %" PRIu64,
                    term, r->leader_of[term], m->id);
        if (r->leader_of[term] == 0) {
            r->leader_changes_us =
                ms_grow(r->leader_changes_us, &r->cap_leader_changes,
                        r->n_leader_changes + 1, sizeof(*r->leader_changes_us));
            r->leader_changes_us[r->n_leader_changes++] = r->w.now_us;
        }
        r->leader_of[term] = m->id;
    }
    raft_index commit = st.hard_state.commit;
    if (commit < m->commit)
        ms_fail(r, SIM_SAFETY,
                "m%d commit went back from %" PRIu64 " to %" PRIu64,
                m->slot + 1, m->commit, commit);
    m->commit = commit;
    if (commit > st.last_index)
        ms_fail(r, SIM_SAFETY,
                "m%d commit %" PRIu64 " beyond its log (%" PRIu64 ")",
                m->slot + 1, commit, st.last_index);
    /* The core's log equals the durable one only with no persist out
     * (an entry being overwritten may be committed in its new form). */
    if (m->n_persists > 0 || m->persist_sched)
        return;
    raft_index hi = commit < m->log_last ? commit : m->log_last;
    for (raft_index i = m->checked + 1; i <= hi; i++)
        if (i >= m->log_first)
            clog_check(m, i, &m->log[i - m->log_first], "committed");
    if (hi > m->checked)
        m->checked = hi;
}

/* ------------------------------------------------------------ HashKV */

void ms_hash_check(struct ms_member *m)
{
    struct ms_run *r = m->r;
    if (!m->up || m->s == NULL || r->failed)
        return;
    struct mvcc_status st;
    if (mvcc_status_get(m->s, &st) != 0)
        return;
    uint32_t h;
    mvcc_rev crev, hrev;
    if (mvcc_hash_kv(m->s, 0, &h, &crev, &hrev) != 0)
        return;
    size_t ci = (size_t)st.consistent_index;
    size_t cap = r->hash_cap;
    r->hash_at = ms_grow(r->hash_at, &cap, ci + 1, sizeof(*r->hash_at));
    r->hash_set =
        ms_grow(r->hash_set, &r->hash_cap, ci + 1, sizeof(*r->hash_set));
    if (!r->hash_set[ci]) {
        r->hash_set[ci] = true;
        r->hash_at[ci] = h;
    } else if (r->hash_at[ci] != h) {
        ms_fail(r, SIM_SAFETY,
                "m%d HashKV %08x at applied index %zu (revision %" PRId64
                ") differs from another member's %08x",
                m->slot + 1, h, ci, hrev, r->hash_at[ci]);
    }
}

/* ------------------------------------------------------------ watches */

static void ev_record(struct ms_ev *x, const struct mvcc_event *e)
{
    memset(x, 0, sizeof(*x));
    size_t kl = e->kv.key_len < MS_KEY_LEN - 1 ? e->kv.key_len : MS_KEY_LEN - 1;
    memcpy(x->key, e->kv.key, kl);
    x->del = e->is_delete;
    x->val = e->is_delete ? 0 : ms_parse_val(e->kv.value, e->kv.value_len);
    x->lease = e->kv.lease;
    if (e->prev_kv != NULL) {
        x->has_prev = true;
        x->prev_mod = e->prev_kv->mod_rev;
        x->prev_val = ms_parse_val(e->prev_kv->value, e->prev_kv->value_len);
    }
}

static uint64_t ev_hash(const struct mvcc_event *e, size_t n)
{
    uint32_t h = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mvcc_kv *kv = &e[i].kv;
        int64_t nums[5] = {
            e[i].is_delete, kv->mod_rev, e[i].is_delete ? 0 : kv->create_rev,
            e[i].is_delete ? 0 : kv->version, e[i].is_delete ? 0 : kv->lease};
        h = crc32c(h, nums, sizeof(nums));
        h = crc32c(h, kv->key, kv->key_len);
        if (!e[i].is_delete)
            h = crc32c(h, kv->value, kv->value_len);
    }
    return ((uint64_t)n << 32) | h;
}

static void rev_record(struct ms_member *m, mvcc_rev rev,
                       const struct mvcc_event *e, size_t n)
{
    struct ms_run *r = m->r;
    r->revs = ms_grow(r->revs, &r->revs_cap, (size_t)rev + 1, sizeof(*r->revs));
    struct ms_rev *x = &r->revs[rev];
    uint64_t h = ev_hash(e, n);
    if (x->known) {
        if (x->hash != h)
            ms_fail(r, SIM_SAFETY,
                    "revision %" PRId64 " differs: m%d saw %zu events, m%d %u",
                    rev, m->slot + 1, n, x->slot + 1, x->n);
        return;
    }
    x->known = true;
    x->slot = m->slot;
    x->hash = h;
    x->n = (uint32_t)n;
    x->at_us = r->w.now_us;
    x->evs = cairn_calloc(n, sizeof(*x->evs));
    CAIRN_ASSERT(x->evs != NULL);
    for (size_t i = 0; i < n; i++) {
        ev_record(&x->evs[i], &e[i]);
        if (x->evs[i].del && x->evs[i].key[0] == 'l')
            sim_tracef(&r->w,
                       "revision %" PRId64 " deletes lease key %s (m%d first)",
                       rev, x->evs[i].key, m->slot + 1);
    }
}

#define MS_WATCH_ID0 100 /* client watchers' ids in a hub: 100 + idx */

static void watcher_cb(struct ms_run *r, struct ms_watcher *c,
                       const struct mvcc_watch_resp *resp)
{
    if (resp->canceled) {
        c->canceled = true;
        c->compact = resp->compact_rev;
        return;
    }
    char key[MS_KEY_LEN];
    ms_key_name(c->key, key);
    for (size_t i = 0; i < resp->n_events && !r->failed; i++) {
        const struct mvcc_event *e = &resp->events[i];
        if (e->kv.key_len != strlen(key) ||
            memcmp(e->kv.key, key, e->kv.key_len) != 0 ||
            e->kv.mod_rev < c->next) {
            ms_fail(r, SIM_SAFETY,
                    "watch %d on %s delivered revision %" PRId64
                    " (owed %" PRId64 " on)",
                    c->idx, key, e->kv.mod_rev, c->next);
            return;
        }
        c->evs = ms_grow(c->evs, &c->cap, c->n + 1, sizeof(*c->evs));
        c->evs[c->n++] = (struct ms_wev){
            e->kv.mod_rev,
            e->is_delete ? 0 : ms_parse_val(e->kv.value, e->kv.value_len),
            e->is_delete};
        c->next = e->kv.mod_rev + 1;
    }
}

int ms_watch_cb(void *arg, const struct mvcc_watch_resp *resp)
{
    struct ms_member *m = arg;
    struct ms_run *r = m->r;
    int64_t wi = resp->watch_id - MS_WATCH_ID0;
    if (!r->failed && wi >= 0 && wi < r->watchers &&
        r->wt[wi].slot == m->slot && r->wt[wi].inc == m->inc)
        watcher_cb(r, &r->wt[wi], resp);
    if (r->failed || resp->watch_id != m->wid)
        return 0;
    if (resp->canceled) {
        m->w_canceled = true;
        m->w_compact = resp->compact_rev;
        return 0;
    }
    if (resp->n_events == 0) {
        if (resp->header_rev > m->wbookmark)
            m->wbookmark = resp->header_rev;
        return 0;
    }
    for (size_t i = 0; i < resp->n_events && !r->failed;) {
        mvcc_rev rev = resp->events[i].kv.mod_rev;
        size_t j = i;
        while (j < resp->n_events && resp->events[j].kv.mod_rev == rev)
            j++;
        if (rev != m->wnext)
            ms_fail(r, SIM_SAFETY,
                    "m%d watch delivered revision %" PRId64 " where %" PRId64
                    " was due (%s)",
                    m->slot + 1, rev, m->wnext,
                    rev < m->wnext ? "repeated or split" : "a gap");
        else if (rev <= m->wbookmark)
            ms_fail(r, SIM_SAFETY,
                    "m%d watch delivered revision %" PRId64
                    " after a bookmark at %" PRId64,
                    m->slot + 1, rev, m->wbookmark);
        rev_record(m, rev, resp->events + i, j - i);
        m->wnext = rev + 1;
        i = j;
    }
    return 0;
}

static const uint8_t zero_key = 0;

static int watch_create(struct ms_member *m)
{
    struct mvcc_watch_req w = {.key = &zero_key,
                               .key_len = 1,
                               .end = &zero_key,
                               .end_len = 1,
                               .start_rev = m->wnext,
                               .prev_kv = true};
    m->wid = -1;
    int rc = mvcc_watch_create(m->hub, &w, &m->wid);
    if (rc != 0)
        ms_fail(m->r, SIM_ERROR, "m%d: watch: %s", m->slot + 1,
                cairn_strerror(rc));
    return rc;
}

int ms_watch_open(struct ms_member *m)
{
    struct mvcc_watch_hub_options o = {.max_revs_per_poll = 64};
#ifdef CAIRN_FAULTS
    o.fault_deliver_twice = m->r->fault == SIM_MF_WATCH_DELIVER_TWICE;
#endif
    if (m->wnext == 0)
        m->wnext = 2; /* revision 1 is the empty store */
    m->w_canceled = false;
    int rc = mvcc_watch_hub_init(m->s, &o, m, ms_watch_cb, &m->hub);
    if (rc != 0) {
        ms_fail(m->r, SIM_ERROR, "m%d: watch hub: %s", m->slot + 1,
                cairn_strerror(rc));
        return rc;
    }
    return watch_create(m);
}

void ms_watch_poll(struct ms_member *m)
{
    if (m->hub == NULL || m->r->failed)
        return;
    bool more = true;
    for (int i = 0; i < 1000 && more && !m->r->failed; i++) {
        CAIRN_ASSERT(mvcc_watch_hub_poll(m->hub, &more) == 0);
        if (m->w_canceled) {
            /* Compacted past it (a restored image, a long outage): the
             * watcher resumes after the compaction, as a client would. */
            sim_tracef(&m->r->w, "m%d watch compacted at %" PRId64, m->slot + 1,
                       m->w_compact);
            m->w_canceled = false;
            if (m->w_compact + 1 > m->wnext)
                m->wnext = m->w_compact + 1;
            if (watch_create(m) != 0)
                return;
            more = true;
        }
    }
}

static void watcher_fire(struct sim_world *w, void *arg, uint64_t a,
                         uint64_t b);

static struct ms_run *watcher_run(struct ms_watcher *c)
{
    return (struct ms_run *)((char *)(c - c->idx) -
                             offsetof(struct ms_run, wt));
}

/* (Re)creates the watch on a random live member from the revision it is
 * owed: after its member crashed, after a compaction, or to move. */
static void watcher_place(struct ms_run *r, struct ms_watcher *c)
{
    struct ms_member *old = c->slot >= 0 ? &r->m[c->slot] : NULL;
    if (old != NULL && old->inc == c->inc && old->hub != NULL)
        (void)mvcc_watch_cancel(old->hub, MS_WATCH_ID0 + c->idx);
    c->slot = -1;
    int live[MS_SLOTS_MAX], n = 0;
    for (int i = 0; i < r->p.members; i++)
        if (ms_usable(&r->m[i]) && !ms_paused(&r->m[i]) && r->m[i].hub != NULL)
            live[n++] = i;
    if (n == 0)
        return;
    struct ms_member *m = &r->m[live[prng_below(&r->w.rng, (uint64_t)n)]];
    if (c->next == 0) {
        /* The first placement: from a past or the current revision. */
        struct mvcc_status st;
        CAIRN_ASSERT(mvcc_status_get(m->s, &st) == 0);
        c->next = (mvcc_rev)prng_range(&r->w.rng, 2, (uint64_t)st.rev + 1);
        c->check = c->next;
    }
    if (c->canceled) {
        /* Compacted past it: the revisions up to the compaction are gone,
         * as they are for an etcd client; resume after them. */
        c->canceled = false;
        if (c->compact + 1 > c->next)
            c->next = c->compact + 1;
        c->check = c->next;
    }
    char key[MS_KEY_LEN];
    ms_key_name(c->key, key);
    struct mvcc_watch_req q = {.key = (const uint8_t *)key,
                               .key_len = strlen(key),
                               .start_rev = c->next};
    int64_t id = MS_WATCH_ID0 + c->idx;
    if (mvcc_watch_create(m->hub, &q, &id) != 0)
        return;
    c->slot = m->slot;
    c->inc = m->inc;
    c->moves++;
    sim_tracef(&r->w, "watch %d on %s from %" PRId64 " on m%d", c->idx, key,
               c->next, m->slot + 1);
}

static void watcher_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)a;
    (void)b;
    struct ms_watcher *c = arg;
    struct ms_run *r = watcher_run(c);
    if (r->failed || r->closing)
        return;
    struct ms_member *m = c->slot >= 0 ? &r->m[c->slot] : NULL;
    bool lost = m == NULL || m->inc != c->inc || !ms_usable(m);
    if (lost || c->canceled || prng_chance(&w->rng, 0.2))
        watcher_place(r, c);
    sim_world_schedule(w, prng_range(&w->rng, 20000, 300000), watcher_fire,
                       NULL, c, 0, 0);
}

void ms_watchers_start(struct ms_run *r)
{
    r->watchers = (int)prng_below(&r->w.rng, MS_WATCHERS_MAX + 1);
    for (int i = 0; i < r->watchers; i++) {
        struct ms_watcher *c = &r->wt[i];
        c->idx = i;
        c->slot = -1;
        c->key = (int)prng_below(&r->w.rng, MS_KEYS);
        sim_world_schedule(&r->w, prng_range(&r->w.rng, 1000, 1000000),
                           watcher_fire, NULL, c, 0, 0);
    }
}

/* ------------------------------------------------------------ the end */

/* The revisions 2..hi are all known (no member's watcher missed one). */
static mvcc_rev revs_complete(const struct ms_run *r)
{
    mvcc_rev hi = 1;
    while ((size_t)hi + 1 < r->revs_cap && r->revs[hi + 1].known)
        hi++;
    return hi;
}

/* The value of a register key at rev (0: absent), from the revision log;
 * false if a revision below rev is unknown. */
static bool value_at(const struct ms_run *r, const char *key, mvcc_rev rev,
                     mvcc_rev complete, int64_t *val, mvcc_rev *at)
{
    if (rev > complete)
        return false;
    for (mvcc_rev x = rev; x >= 2; x--) {
        const struct ms_rev *v = &r->revs[x];
        for (uint32_t i = 0; i < v->n; i++)
            if (strcmp(v->evs[i].key, key) == 0) {
                *val = v->evs[i].del ? 0 : v->evs[i].val;
                *at = v->evs[i].del ? 0 : x;
                return true;
            }
    }
    *val = 0;
    *at = 0;
    return true;
}

static void prev_kv_check(struct ms_run *r, mvcc_rev complete)
{
    for (mvcc_rev x = 3; x <= complete && !r->failed; x++) {
        const struct ms_rev *v = &r->revs[x];
        for (uint32_t i = 0; i < v->n; i++) {
            const struct ms_ev *e = &v->evs[i];
            int64_t pv;
            mvcc_rev pat;
            if (!value_at(r, e->key, x - 1, complete, &pv, &pat))
                continue;
            bool ok = pat == 0 ? !e->has_prev
                               : e->has_prev && e->prev_mod == pat &&
                                     e->prev_val == pv;
            if (!ok)
                ms_fail(r, SIM_SAFETY,
                        "revision %" PRId64 " %s %s: prev_kv %s%" PRId64
                        " (mod %" PRId64 "), expected %s%" PRId64
                        " (mod %" PRId64 ")",
                        x, e->del ? "delete" : "put", e->key,
                        e->has_prev ? "" : "none ", e->prev_val, e->prev_mod,
                        pat ? "" : "none ", pv, pat);
        }
    }
}

static void acks_check(struct ms_run *r, mvcc_rev complete)
{
    for (size_t i = 0; i < r->n_acks && !r->failed; i++) {
        const struct ms_ack *a = &r->acks[i];
        char key[MS_KEY_LEN];
        ms_key_name(a->key, key);
        if (a->rev > complete)
            continue;
        const struct ms_rev *v = &r->revs[a->rev];
        bool found = false;
        for (uint32_t k = 0; k < v->n; k++)
            found |= strcmp(v->evs[k].key, key) == 0 &&
                     v->evs[k].del == a->del &&
                     (a->del || v->evs[k].val == a->val);
        if (!found)
            ms_fail(r, SIM_SAFETY,
                    "acknowledged %s of %s (%" PRId64 ") at revision %" PRId64
                    " is not in the committed history",
                    a->del ? "delete" : "put", key, a->val, a->rev);
    }
}

static void sreads_check(struct ms_run *r, mvcc_rev complete)
{
    for (size_t i = 0; i < r->n_sreads && !r->failed; i++) {
        const struct ms_sread *s = &r->sreads[i];
        char key[MS_KEY_LEN];
        ms_key_name(s->key, key);
        int64_t v;
        mvcc_rev at;
        if (value_at(r, key, s->rev, complete, &v, &at) && v != s->val)
            ms_fail(r, SIM_NONLINEAR,
                    "serializable read of %s on m%d at revision %" PRId64
                    " saw %" PRId64 ", the history has %" PRId64,
                    key, s->slot + 1, s->rev, s->val, v);
    }
}

/* A write or CAS whose client never learned its fate, and whose unique
 * value appears nowhere in a complete revision log, never took effect. */
static void resolve_unknown(struct ms_run *r, mvcc_rev complete, mvcc_rev top)
{
    if (complete < top)
        return;
    for (size_t i = 0; i < r->hist.len; i++) {
        struct lin_op *op = &r->hist.ops[i];
        if (op->kind == LIN_READ || op->value == 0 ||
            (op->outcome != LIN_UNKNOWN && op->outcome != LIN_PENDING))
            continue;
        char key[MS_KEY_LEN];
        ms_key_name((int)op->key, key);
        bool seen = false;
        for (mvcc_rev x = 2; x <= complete && !seen; x++)
            for (uint32_t k = 0; k < r->revs[x].n; k++)
                seen |= !r->revs[x].evs[k].del &&
                        r->revs[x].evs[k].val == op->value &&
                        strcmp(r->revs[x].evs[k].key, key) == 0;
        if (!seen) {
            op->outcome = LIN_FAILED;
            op->complete = r->w.now_us;
        }
    }
}

/* Each client watch delivered exactly its key's events in the revision log
 * from where it is checked to the last revision it was owed: none missed
 * across moves and crashes (reliable, resumable), none changed or extra. */
static void watchers_check(struct ms_run *r, mvcc_rev complete)
{
    for (int i = 0; i < r->watchers && !r->failed; i++) {
        const struct ms_watcher *c = &r->wt[i];
        char key[MS_KEY_LEN];
        ms_key_name(c->key, key);
        mvcc_rev hi = c->next - 1 < complete ? c->next - 1 : complete;
        size_t j = 0;
        while (j < c->n && c->evs[j].rev < c->check)
            j++;
        for (mvcc_rev x = c->check; x <= hi && !r->failed; x++)
            for (uint32_t k = 0; k < r->revs[x].n; k++) {
                const struct ms_ev *e = &r->revs[x].evs[k];
                if (strcmp(e->key, key) != 0)
                    continue;
                const struct ms_wev *d = j < c->n ? &c->evs[j] : NULL;
                if (d == NULL || d->rev != x || d->del != e->del ||
                    (!e->del && d->val != e->val))
                    ms_fail(r, SIM_SAFETY,
                            "watch %d on %s (from %" PRId64 ", %" PRIu64
                            " placements) missed or changed revision %" PRId64,
                            c->idx, key, c->check, c->moves, x);
                j++;
            }
        if (!r->failed && j < c->n && c->evs[j].rev <= hi)
            ms_fail(r, SIM_SAFETY,
                    "watch %d on %s delivered revision %" PRId64
                    " that the history does not have for it",
                    c->idx, key, c->evs[j].rev);
    }
}

static void lin_final(struct ms_run *r)
{
    struct lin_report rep;
    int rv = lin_check(r->hist.ops, r->hist.len, 0, 0, &rep);
    if (rv != 0) {
        ms_fail(r, SIM_ERROR, "linearizability checker: %s",
                cairn_strerror(rv));
        return;
    }
    if (rep.result != LIN_LINEARIZABLE) {
        char line[200];
        lin_op_format(&r->hist.ops[rep.blocking_op], line, sizeof(line));
        ms_fail(r, SIM_NONLINEAR,
                "%s on key %" PRIu32 " (%zu ops, longest linearizable prefix "
                "%zu); stuck at: %s",
                rep.result == LIN_GAVE_UP ? "checker gave up"
                                          : "not linearizable",
                rep.key, rep.key_ops, rep.deepest, line);
    }
}

bool ms_settled(struct ms_run *r)
{
    raft_index applied = 0;
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *m = &r->m[i];
        if (!ms_usable(m))
            continue;
        struct mvcc_status st;
        CAIRN_ASSERT(mvcc_status_get(m->s, &st) == 0);
        if ((applied != 0 && st.consistent_index != applied) || m->n_work > 0 ||
            m->n_persists > 0)
            return false;
        applied = st.consistent_index;
    }
    return true;
}

/* Every member up has caught up and agrees: same applied index, same
 * HashKV, its watcher at the store's revision. */
static mvcc_rev settle_check(struct ms_run *r)
{
    mvcc_rev top = 1;
    raft_index applied = 0;
    for (int i = 0; i < r->p.members && !r->failed; i++) {
        struct ms_member *m = &r->m[i];
        if (!ms_usable(m))
            continue;
        ms_watch_poll(m);
        ms_hash_check(m);
        struct mvcc_status st;
        CAIRN_ASSERT(mvcc_status_get(m->s, &st) == 0);
        if (applied != 0 && st.consistent_index != applied)
            ms_fail(r, SIM_LIVENESS,
                    "m%d applied %" PRIu64
                    " at the end, another member %" PRIu64,
                    m->slot + 1, st.consistent_index, applied);
        applied = st.consistent_index;
        if (m->wnext != st.rev + 1 && !r->failed)
            ms_fail(r, SIM_SAFETY,
                    "m%d watch at revision %" PRId64 " of %" PRId64
                    " at the end",
                    m->slot + 1, m->wnext - 1, st.rev);
        if (st.rev > top)
            top = st.rev;
    }
    return top;
}

/* Why no one leads: each running member's core and the voters it holds. */
static void trace_cores(struct ms_run *r)
{
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *m = &r->m[i];
        if (!ms_usable(m))
            continue;
        char line[160];
        raft_describe(node_raft(m->n), line, sizeof(line));
        struct raft_status st;
        raft_status_get(node_raft(m->n), &st);
        char voters[96] = "";
        size_t off = 0;
        for (uint32_t k = 0; k < st.conf.n_voters && off < sizeof(voters); k++)
            off += (size_t)snprintf(voters + off, sizeof(voters) - off,
                                    " %" PRIx64, st.conf.voters[k]);
        sim_tracef(&r->w, "m%d core: %s; voters%s%s", m->slot + 1, line, voters,
                   st.conf.n_voters_outgoing ? " (joint)" : "");
    }
}

void ms_final_checks(struct ms_run *r)
{
    if (ms_leader(r) == NULL)
        trace_cores(r);
    if (ms_leader(r) == NULL)
        ms_fail(r, SIM_LIVENESS,
                "no leader at the end, %" PRIu64 " ms after healing",
                (r->w.now_us - r->heal_us) / 1000);
    if (r->p.clients > 0 && r->ok_after_heal == 0)
        ms_fail(r, SIM_LIVENESS, "no write succeeded after healing");
    mvcc_rev top = settle_check(r);
    if (r->failed)
        return;
    mvcc_rev complete = revs_complete(r);
    prev_kv_check(r, complete);
    acks_check(r, complete);
    sreads_check(r, complete);
    watchers_check(r, complete);
    ms_lease_final(r);
    if (r->failed)
        return;
    resolve_unknown(r, complete, top);
    lin_final(r);
}

/* Auto compaction as etcd 3.4's v3compactor does it, run by the leader only
 * (--auto-compaction-mode, --auto-compaction-retention):
 *  - periodic, retention T: every min(T, 1h)/10 the current revision is
 *    recorded (a window of T's worth of records); once T has passed since
 *    the start, and then every min(T, 1h) after a success, the oldest
 *    recorded revision (the one of T ago) is compacted; a failure retries
 *    at the next record.
 *  - revision, retention R: every 5 minutes, compact to current - R unless
 *    that is not positive or was compacted last time.
 * "Already compacted" counts as success, as in etcd. */
#include <string.h>

#include "server/server_int.h"

#define COMP "compactor"
#define REVISION_INTERVAL_MS (5 * 60 * 1000)
#define HOUR_MS (3600 * 1000)

static int64_t now_ms(struct server *s)
{
    return (int64_t)uv_now(s->loop);
}

static mvcc_rev current_rev(struct server *s)
{
    struct mvcc_status st;
    if (s->store == NULL || mvcc_status_get(s->store, &st) != 0)
        return 0;
    return st.rev;
}

static void on_compacted(void *arg, const struct node_result *res)
{
    struct server *s = arg;
    struct server__compactor *c = &s->compactor;
    c->in_flight = false;
    if (res->err == 0 || res->err == CAIRN_EREVCOMPACTED) {
        c->last_success_ms = now_ms(s);
        c->prev_rev = c->asked_rev;
        cairn_infof(s->log, COMP,
                    "completed auto %s compaction at revision "
                    "%lld",
                    c->mode == SERVER_AUTO_COMPACTION_PERIODIC ? "periodic"
                                                               : "revision",
                    (long long)c->asked_rev);
    } else {
        cairn_warnf(s->log, COMP,
                    "failed auto compaction at revision %lld: %s; retrying",
                    (long long)c->asked_rev, cairn_strerror(res->err));
    }
}

static void compact(struct server *s, mvcc_rev rev)
{
    struct server__compactor *c = &s->compactor;
    c->asked_rev = rev;
    cairn_infof(s->log, COMP, "starting auto compaction at revision %lld",
                (long long)rev);
    if (node_compact(s->node, rev, false, s, on_compacted) == 0)
        c->in_flight = true;
}

static void on_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    struct server__compactor *c = &s->compactor;
    if (!server__serving(s))
        return;
    if (c->mode == SERVER_AUTO_COMPACTION_REVISION) {
        if (c->in_flight || !node_is_leader(s->node))
            return;
        mvcc_rev rev = current_rev(s) - c->retention;
        if (rev <= 0 || rev == c->prev_rev)
            return;
        compact(s, rev);
        return;
    }
    /* Periodic: record, then maybe compact the oldest record. */
    if (c->n_revs == c->window) {
        memmove(c->revs, c->revs + 1, (c->window - 1) * sizeof c->revs[0]);
        c->n_revs--;
    }
    c->revs[c->n_revs++] = current_rev(s);
    if (c->in_flight || !node_is_leader(s->node))
        return;
    if (now_ms(s) - c->last_success_ms < c->base_interval_ms)
        return;
    if (c->base_interval_ms == c->retention)
        c->base_interval_ms = c->compact_interval_ms;
    if (c->revs[0] > 0)
        compact(s, c->revs[0]);
}

void server__compactor_start(struct server *s)
{
    struct server__compactor *c = &s->compactor;
    c->mode = s->cfg.auto_compaction_mode;
    c->retention = s->cfg.auto_compaction_retention;
    if (c->retention <= 0)
        return;
    uint64_t interval_ms;
    if (c->mode == SERVER_AUTO_COMPACTION_REVISION) {
        interval_ms = REVISION_INTERVAL_MS;
    } else {
        int64_t itv = c->retention > HOUR_MS ? HOUR_MS : c->retention;
        int64_t retry = itv / 10 > 0 ? itv / 10 : 1;
        c->compact_interval_ms = itv;
        c->base_interval_ms = c->retention;
        int64_t window = c->retention / retry + 1;
        c->window = window > SERVER__COMPACT_WINDOW_MAX
                        ? SERVER__COMPACT_WINDOW_MAX
                        : (size_t)window;
        c->last_success_ms = now_ms(s);
        interval_ms = (uint64_t)retry;
    }
    uv_timer_start(&s->compact_timer, on_timer, interval_ms, interval_ms);
    cairn_infof(
        s->log, COMP, "auto compaction: %s, retention %lld %s",
        c->mode == SERVER_AUTO_COMPACTION_PERIODIC ? "periodic" : "revision",
        (long long)c->retention,
        c->mode == SERVER_AUTO_COMPACTION_PERIODIC ? "ms" : "revisions");
}

void server__compactor_init_timer(struct server *s)
{
    uv_timer_init(s->loop, &s->compact_timer);
    s->compact_timer.data = s;
}

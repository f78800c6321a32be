/* watch: the member's watch hubs — one mvcc hub per client Watch stream,
 * polled after each applied batch and soon after each create, closed
 * before the store goes away. */
#include "server/server_int.h"

struct server_watch {
    struct server_watch *prev, *next;
    struct mvcc_watch_hub *hub; /* NULL once the store is gone */
};

/* Polls per wake-up: each poll reads a bounded number of revisions per hub;
 * a hub still behind asks for another wake-up instead of looping here. */
#define WATCH_POLLS_PER_WAKE 4

int server_watch_open(struct server *s, void *ctx, mvcc_watch_cb cb,
                      struct server_watch **out)
{
    if (s->store == NULL || s->stopping)
        return CAIRN_ESHUTDOWN;
    struct server_watch *w = cairn_calloc(1, sizeof *w);
    if (w == NULL)
        return CAIRN_ENOMEM;
    struct mvcc_watch_hub_options opts = {
        .fragment_bytes = (size_t)s->max_request_bytes,
    };
    int rc = mvcc_watch_hub_init(s->store, &opts, ctx, cb, &w->hub);
    if (rc != 0) {
        cairn_free(w);
        return rc;
    }
    w->next = s->watches;
    if (s->watches != NULL)
        s->watches->prev = w;
    s->watches = w;
    *out = w;
    return 0;
}

void server_watch_close(struct server *s, struct server_watch *w)
{
    if (w == NULL)
        return;
    if (w->hub != NULL)
        mvcc_watch_hub_close(w->hub);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        s->watches = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    cairn_free(w);
}

/* Asks for a poll from the loop soon (the wake-up's callback). */
static void wake(struct server *s)
{
    if (s->handles_ready && !s->state_freed)
        server__wake_send(&s->wake);
}

int server_watch_create(struct server *s, struct server_watch *w,
                        const struct mvcc_watch_req *req, int64_t *id)
{
    if (w->hub == NULL)
        return CAIRN_ESHUTDOWN;
    /* mvcc copies at least one byte of key and end: never hand it NULL
     * (an empty end, a single-key watch, may come without a pointer). */
    static const uint8_t zero = 0;
    struct mvcc_watch_req r = *req;
    if (r.key == NULL)
        r.key = &zero;
    if (r.end == NULL)
        r.end = &zero;
    int rc = mvcc_watch_create(w->hub, &r, id);
    if (rc == 0)
        wake(s);
    return rc;
}

int server_watch_cancel(struct server *s, struct server_watch *w, int64_t id)
{
    (void)s;
    return w->hub == NULL ? CAIRN_ESHUTDOWN : mvcc_watch_cancel(w->hub, id);
}

int server_watch_progress(struct server *s, struct server_watch *w, int64_t id)
{
    (void)s;
    return w->hub == NULL ? CAIRN_ESHUTDOWN : mvcc_watch_progress(w->hub, id);
}

int server_watch_resume(struct server *s, struct server_watch *w, int64_t id)
{
    if (w->hub == NULL)
        return CAIRN_ESHUTDOWN;
    int rc = mvcc_watch_resume(w->hub, id);
    if (rc == 0)
        wake(s);
    return rc;
}

void server_watch_header(struct server *s, uint64_t *cluster_id,
                         uint64_t *member_id, int64_t *revision, uint64_t *term)
{
    *cluster_id = s->cluster_id;
    *member_id = s->member_id;
    /* Called for every watch response: no store transaction here (a
     * status read walks LMDB's free list), only the committed revision
     * and the term as they stand. */
    *revision = s->store != NULL ? mvcc_current_rev(s->store) : 0;
    *term = s->node != NULL ? node_term(s->node) : 0;
}

void server__watch_poll(struct server *s)
{
    bool behind = false;
    for (struct server_watch *w = s->watches; w != NULL; w = w->next) {
        if (w->hub == NULL)
            continue;
        bool more = false;
        for (int k = 0; k < WATCH_POLLS_PER_WAKE; k++) {
            more = false;
            if (mvcc_watch_hub_poll(w->hub, &more) != 0 || !more)
                break;
        }
        behind = behind || more;
    }
    if (behind)
        wake(s);
}

void server__watch_close_hubs(struct server *s)
{
    for (struct server_watch *w = s->watches; w != NULL; w = w->next) {
        if (w->hub != NULL) {
            mvcc_watch_hub_close(w->hub);
            w->hub = NULL;
        }
    }
}

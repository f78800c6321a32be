/* The simulated world: event queue, trace, network and disk (see world.h). */
#include "world.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* ---------------------------------------------------------------- world */

int sim_world_init(struct sim_world *w, uint64_t seed, size_t events_max,
                   size_t trace_lines)
{
    memset(w, 0, sizeof(*w));
    w->seed = seed;
    prng_seed(&w->rng, seed);
    w->len_max = events_max;
    w->cap = events_max < 1024 ? events_max : 1024;
    w->heap = cairn_calloc(w->cap, sizeof(*w->heap));
    if (w->heap == NULL)
        return CAIRN_ENOMEM;
    w->trace.lines_max = trace_lines ? trace_lines : 1;
    w->trace.ring = cairn_calloc(w->trace.lines_max, SIM_TRACE_LINE);
    if (w->trace.ring == NULL) {
        cairn_free(w->heap);
        return CAIRN_ENOMEM;
    }
    w->trace.hash = 0xcbf29ce484222325ull;
    return 0;
}

void sim_world_close(struct sim_world *w)
{
    for (size_t i = 0; i < w->len; i++)
        if (w->heap[i].dispose != NULL)
            w->heap[i].dispose(w->heap[i].arg);
    cairn_free(w->heap);
    cairn_free(w->trace.ring);
    memset(w, 0, sizeof(*w));
}

static bool ev_before(const struct sim_event *x, const struct sim_event *y)
{
    if (x->time_us != y->time_us)
        return x->time_us < y->time_us;
    return x->seq < y->seq;
}

void sim_world_schedule(struct sim_world *w, uint64_t delay_us, sim_event_cb fn,
                        sim_dispose_cb dispose, void *arg, uint64_t a,
                        uint64_t b)
{
    CAIRN_ASSERT(w->len < w->len_max);
    if (w->len == w->cap) {
        size_t cap = w->cap * 2 > w->len_max ? w->len_max : w->cap * 2;
        struct sim_event *heap = cairn_realloc(w->heap, cap * sizeof(*heap));
        CAIRN_ASSERT(heap != NULL);
        w->heap = heap;
        w->cap = cap;
    }
    struct sim_event ev = {.time_us = w->now_us + delay_us,
                           .seq = w->seq++,
                           .fn = fn,
                           .dispose = dispose,
                           .arg = arg,
                           .a = a,
                           .b = b};
    size_t i = w->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&ev, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = ev;
}

static struct sim_event heap_pop(struct sim_world *w)
{
    struct sim_event top = w->heap[0];
    struct sim_event last = w->heap[--w->len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->len)
            break;
        if (c + 1 < w->len && ev_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!ev_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->len > 0)
        w->heap[i] = last;
    return top;
}

bool sim_world_step(struct sim_world *w, uint64_t until_us)
{
    if (w->len == 0 || w->heap[0].time_us > until_us)
        return false;
    struct sim_event ev = heap_pop(w);
    CAIRN_ASSERT(ev.time_us >= w->now_us);
    w->now_us = ev.time_us;
    w->events_run++;
    ev.fn(w, ev.arg, ev.a, ev.b);
    return true;
}

static void trace_hash(struct sim_trace *t, const char *s, size_t n)
{
    uint64_t h = t->hash;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    t->hash = h;
}

void sim_tracef(struct sim_world *w, const char *fmt, ...)
{
    struct sim_trace *t = &w->trace;
    char *line = &t->ring[(t->lines % t->lines_max) * SIM_TRACE_LINE];
    int n = snprintf(line, SIM_TRACE_LINE, "%" PRIu64 ".%06" PRIu64 " ",
                     w->now_us / 1000000, w->now_us % 1000000);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, SIM_TRACE_LINE - (size_t)n, fmt, ap);
    va_end(ap);
    trace_hash(t, line, strlen(line));
    trace_hash(t, "\n", 1);
    if (t->echo != NULL)
        fprintf(t->echo, "%s\n", line);
    t->lines++;
}

void sim_trace_dump(const struct sim_world *w, FILE *out)
{
    const struct sim_trace *t = &w->trace;
    uint64_t first = t->lines > t->lines_max ? t->lines - t->lines_max : 0;
    for (uint64_t i = first; i < t->lines; i++)
        fprintf(out, "%s\n", &t->ring[(i % t->lines_max) * SIM_TRACE_LINE]);
}

/* ---------------------------------------------------------------- network */

struct sim_msg {
    struct sim_net *net;
    int from, to;
    size_t len;
    uint8_t bytes[];
};

void sim_net_init(struct sim_net *net, struct sim_world *w, int nodes,
                  const struct sim_link *defaults, size_t in_flight_max,
                  sim_net_deliver_cb deliver, void *deliver_arg)
{
    CAIRN_ASSERT(nodes > 0 && nodes <= SIM_NODES_MAX);
    memset(net, 0, sizeof(*net));
    net->w = w;
    net->nodes = nodes;
    net->in_flight_max = in_flight_max;
    net->deliver = deliver;
    net->deliver_arg = deliver_arg;
    for (int a = 0; a < SIM_NODES_MAX; a++)
        for (int b = 0; b < SIM_NODES_MAX; b++) {
            net->link[a][b] = *defaults;
            net->link[a][b].blocked = false;
            net->link[a][b].last_delivery_us = 0;
        }
}

void sim_net_on_lost(struct sim_net *net, sim_net_deliver_cb lost)
{
    net->lost = lost;
}

static void net_drop(struct sim_net *net, int from, int to,
                     const uint8_t *bytes, size_t len)
{
    net->dropped++;
    if (net->lost != NULL)
        net->lost(net->deliver_arg, from, to, bytes, len);
}

static void msg_dispose(void *arg)
{
    cairn_free(arg);
}

static void msg_arrive(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)a;
    (void)b;
    struct sim_msg *m = arg;
    struct sim_net *net = m->net;
    net->in_flight--;
    if (net->link[m->from][m->to].blocked) {
        sim_tracef(net->w, "net %d->%d lost in partition (%zu bytes)", m->from,
                   m->to, m->len);
        net_drop(net, m->from, m->to, m->bytes, m->len);
    } else {
        net->delivered++;
        net->deliver(net->deliver_arg, m->from, m->to, m->bytes, m->len);
    }
    cairn_free(m);
}

static void net_enqueue(struct sim_net *net, int from, int to,
                        const void *bytes, size_t len)
{
    struct sim_world *w = net->w;
    struct sim_link *l = &net->link[from][to];
    if (net->in_flight >= net->in_flight_max) {
        sim_tracef(w, "net %d->%d dropped: network full", from, to);
        net_drop(net, from, to, bytes, len);
        return;
    }
    struct sim_msg *m = cairn_malloc(sizeof(*m) + len);
    CAIRN_ASSERT(m != NULL);
    m->net = net;
    m->from = from;
    m->to = to;
    m->len = len;
    memcpy(m->bytes, bytes, len);
    uint64_t lat = prng_range(&w->rng, l->latency_us_min, l->latency_us_max);
    if (l->tail_p > 0 && prng_chance(&w->rng, l->tail_p))
        lat += l->tail_us;
    uint64_t at = w->now_us + lat;
    if (!l->reorder && at < l->last_delivery_us)
        at = l->last_delivery_us;
    if (at > l->last_delivery_us)
        l->last_delivery_us = at;
    net->in_flight++;
    sim_world_schedule(w, at - w->now_us, msg_arrive, msg_dispose, m, 0, 0);
}

void sim_net_send(struct sim_net *net, int from, int to, const void *bytes,
                  size_t len)
{
    CAIRN_ASSERT(from >= 0 && from < net->nodes && to >= 0 && to < net->nodes);
    struct sim_world *w = net->w;
    struct sim_link *l = &net->link[from][to];
    net->sent++;
    if (l->blocked) {
        net_drop(net, from, to, bytes, len);
        return;
    }
    if (l->loss_p > 0 && prng_chance(&w->rng, l->loss_p)) {
        sim_tracef(w, "net %d->%d lost", from, to);
        net_drop(net, from, to, bytes, len);
        return;
    }
    net_enqueue(net, from, to, bytes, len);
    if (l->dup_p > 0 && prng_chance(&w->rng, l->dup_p)) {
        net->duplicated++;
        sim_tracef(w, "net %d->%d duplicated", from, to);
        net_enqueue(net, from, to, bytes, len);
    }
}

void sim_net_cut(struct sim_net *net, int a, int b, bool one_way)
{
    net->link[a][b].blocked = true;
    if (!one_way)
        net->link[b][a].blocked = true;
}

void sim_net_isolate(struct sim_net *net, int node)
{
    for (int i = 0; i < net->nodes; i++)
        if (i != node)
            sim_net_cut(net, node, i, false);
}

void sim_net_split(struct sim_net *net, uint32_t side)
{
    for (int a = 0; a < net->nodes; a++)
        for (int b = 0; b < net->nodes; b++)
            if (((side >> a) & 1) != ((side >> b) & 1))
                net->link[a][b].blocked = true;
}

void sim_net_heal(struct sim_net *net)
{
    for (int a = 0; a < net->nodes; a++)
        for (int b = 0; b < net->nodes; b++)
            net->link[a][b].blocked = false;
}

bool sim_net_has_cuts(const struct sim_net *net)
{
    for (int a = 0; a < net->nodes; a++)
        for (int b = 0; b < net->nodes; b++)
            if (net->link[a][b].blocked)
                return true;
    return false;
}

/* ---------------------------------------------------------------- disk */

void sim_disk_init(struct sim_disk *d, size_t size_bytes_max)
{
    memset(d, 0, sizeof(*d));
    d->size_bytes_max = size_bytes_max;
}

void sim_disk_close(struct sim_disk *d)
{
    for (int i = 0; i < d->nfiles; i++) {
        buf_free(&d->files[i].cur);
        buf_free(&d->files[i].dur);
    }
    d->nfiles = 0;
}

static struct sim_file *file_find(const struct sim_disk *d, const char *name)
{
    for (int i = 0; i < d->nfiles; i++)
        if (strcmp(d->files[i].name, name) == 0)
            return (struct sim_file *)&d->files[i];
    return NULL;
}

static int file_get(struct sim_disk *d, const char *name, struct sim_file **f)
{
    *f = file_find(d, name);
    if (*f != NULL)
        return 0;
    if (d->nfiles == SIM_DISK_FILES_MAX)
        return CAIRN_EFULL;
    CAIRN_ASSERT(strlen(name) < SIM_DISK_NAME_MAX);
    *f = &d->files[d->nfiles++];
    memset(*f, 0, sizeof(**f));
    strcpy((*f)->name, name);
    (*f)->append_only = true;
    return 0;
}

static size_t disk_used(const struct sim_disk *d)
{
    size_t n = 0;
    for (int i = 0; i < d->nfiles; i++)
        n += d->files[i].cur.len;
    return n;
}

int sim_disk_append(struct sim_disk *d, const char *name, const void *bytes,
                    size_t len)
{
    if (d->size_bytes_max && disk_used(d) + len > d->size_bytes_max)
        return CAIRN_ENOSPC;
    struct sim_file *f;
    int rv = file_get(d, name, &f);
    if (rv != 0)
        return rv;
    rv = buf_append(&f->cur, bytes, len);
    if (rv != 0)
        return rv;
    f->dirty = true;
    d->writes++;
    return 0;
}

int sim_disk_replace(struct sim_disk *d, const char *name, const void *bytes,
                     size_t len)
{
    struct sim_file *f;
    int rv = file_get(d, name, &f);
    if (rv != 0)
        return rv;
    if (d->size_bytes_max &&
        disk_used(d) - f->cur.len + len > d->size_bytes_max)
        return CAIRN_ENOSPC;
    buf_reset(&f->cur);
    rv = buf_append(&f->cur, bytes, len);
    if (rv != 0)
        return rv;
    f->append_only = false;
    f->dirty = true;
    d->writes++;
    return 0;
}

int sim_disk_truncate(struct sim_disk *d, const char *name, size_t len)
{
    struct sim_file *f = file_find(d, name);
    if (f == NULL)
        return CAIRN_ENOTFOUND;
    CAIRN_ASSERT(len <= f->cur.len);
    if (len < f->cur.len) {
        f->cur.len = len;
        f->append_only = false;
        f->dirty = true;
    }
    return 0;
}

int sim_disk_sync(struct sim_disk *d, const char *name)
{
    struct sim_file *f = file_find(d, name);
    if (f == NULL)
        return CAIRN_ENOTFOUND;
    if (d->fail_sync) {
        d->fail_sync = false;
        return CAIRN_EIO;
    }
    d->syncs++;
    if (!f->dirty)
        return 0;
    int rv;
    if (f->append_only && f->dur.len <= f->cur.len) {
        /* Only appends since the last sync: dur is a prefix of cur. */
        rv = buf_append(&f->dur, f->cur.data + f->dur.len,
                        f->cur.len - f->dur.len);
    } else {
        buf_reset(&f->dur);
        rv = buf_append(&f->dur, f->cur.data, f->cur.len);
    }
    if (rv != 0)
        return rv;
    f->dirty = false;
    f->append_only = true;
    return 0;
}

void sim_disk_remove(struct sim_disk *d, const char *name)
{
    struct sim_file *f = file_find(d, name);
    if (f == NULL)
        return;
    buf_free(&f->cur);
    buf_free(&f->dur);
    *f = d->files[--d->nfiles];
}

const struct buf *sim_disk_read(const struct sim_disk *d, const char *name)
{
    struct sim_file *f = file_find(d, name);
    return f ? &f->cur : NULL;
}

void sim_disk_crash(struct sim_disk *d, struct prng *rng, double torn_p)
{
    d->crashes++;
    for (int i = 0; i < d->nfiles; i++) {
        struct sim_file *f = &d->files[i];
        if (!f->dirty)
            continue;
        size_t keep = f->dur.len;
        /* A torn write: an append-only file may keep part of its unsynced
         * tail, cut at any byte. */
        if (f->append_only && f->cur.len > f->dur.len && torn_p > 0 &&
            prng_chance(rng, torn_p)) {
            keep += (size_t)prng_below(rng, f->cur.len - f->dur.len);
            d->torn++;
        }
        if (keep > f->dur.len) {
            f->cur.len = keep;
        } else {
            buf_reset(&f->cur);
            int rv = buf_append(&f->cur, f->dur.data, f->dur.len);
            CAIRN_ASSERT(rv == 0);
        }
        /* What survived is now what is on the platter. */
        buf_reset(&f->dur);
        int rv = buf_append(&f->dur, f->cur.data, f->cur.len);
        CAIRN_ASSERT(rv == 0);
        f->dirty = false;
        f->append_only = true;
    }
}

size_t sim_disk_unsynced(const struct sim_disk *d)
{
    size_t n = 0;
    for (int i = 0; i < d->nfiles; i++)
        if (d->files[i].dirty)
            n += d->files[i].cur.len;
    return n;
}

int sim_rec_append(struct sim_disk *d, const char *name, const void *payload,
                   size_t len)
{
    uint8_t head[8];
    CAIRN_ASSERT(len <= UINT32_MAX);
    codec_put_u32(head, (uint32_t)len);
    codec_put_u32(head + 4, crc32c(0, payload, len));
    int rv = sim_disk_append(d, name, head, sizeof(head));
    if (rv != 0)
        return rv;
    return sim_disk_append(d, name, payload, len);
}

size_t sim_rec_scan(const struct sim_disk *d, const char *name, void *arg,
                    sim_rec_cb fn)
{
    const struct buf *b = sim_disk_read(d, name);
    if (b == NULL)
        return 0;
    size_t off = 0;
    while (b->len - off >= 8) {
        uint32_t len = codec_get_u32(b->data + off);
        uint32_t crc = codec_get_u32(b->data + off + 4);
        if (b->len - off - 8 < len)
            break;
        if (crc32c(0, b->data + off + 8, len) != crc)
            break;
        fn(arg, b->data + off + 8, len);
        off += 8 + (size_t)len;
    }
    return off;
}

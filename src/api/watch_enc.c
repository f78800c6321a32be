/* watch_enc: WatchResponse bytes built by hand around events encoded once
 * per stream, because a watch poll hands the same events to every watcher
 * of a key and their responses differ only in the watch id. The bytes are
 * those protobuf-c's packing of the same response gives (test_watch
 * compares them). */
#include <string.h>

#include "api/api_int.h"
#include "util/codec.h"

/* Wire tags: (field number << 3) | wire type (0 varint, 2 length). */
#define T_HEADER 0x0a       /* 1: ResponseHeader */
#define T_WATCH_ID 0x10     /* 2: int64 */
#define T_CANCELED 0x20     /* 4: bool */
#define T_COMPACT_REV 0x28  /* 5: int64 */
#define T_FRAGMENT 0x38     /* 7: bool */
#define T_EVENTS 0x5a       /* 11: repeated mvccpb.Event */
#define T_HDR_CLUSTER 0x08  /* ResponseHeader 1: uint64 */
#define T_HDR_MEMBER 0x10   /* 2: uint64 */
#define T_HDR_REVISION 0x18 /* 3: int64 */
#define T_HDR_TERM 0x20     /* 4: uint64 */

void api__wenc_init(struct api__wenc *e)
{
    memset(e, 0, sizeof(*e));
    buf_init(&e->msg);
    buf_init(&e->evs);
    buf_init(&e->keys);
}

void api__wenc_free(struct api__wenc *e)
{
    buf_free(&e->msg);
    buf_free(&e->evs);
    buf_free(&e->keys);
    cairn_free(e->ids);
    memset(e, 0, sizeof(*e));
}

/* A proto3 scalar: nothing when zero, as protobuf-c packs it. */
static void put_varint_field(uint8_t **p, uint8_t tag, uint64_t v)
{
    if (v == 0)
        return;
    *(*p)++ = tag;
    *p += varint_put(*p, v);
}

/* What tells two events apart for their encoding: the value of a key at a
 * revision never changes, nor its previous version, so these fields and
 * the key's bytes decide every byte of the event. */
static bool same_event(const struct api__wenc_id *id, const uint8_t *key,
                       const struct mvcc_event *ev)
{
    const struct mvcc_kv *kv = &ev->kv;
    return id->mod_rev == kv->mod_rev && id->is_delete == ev->is_delete &&
           id->key_len == kv->key_len && id->value_len == kv->value_len &&
           id->has_prev == (ev->prev_kv != NULL) &&
           id->prev_mod_rev == (ev->prev_kv ? ev->prev_kv->mod_rev : 0) &&
           memcmp(key, kv->key, kv->key_len) == 0;
}

static bool same_events(const struct api__wenc *e, const struct mvcc_event *evs,
                        size_t n)
{
    if (!e->valid || e->n_ids != n)
        return false;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (!same_event(&e->ids[i], e->keys.data + off, &evs[i]))
            return false;
        off += evs[i].kv.key_len;
    }
    return true;
}

static void kv_pb(Mvccpb__KeyValue *p, const struct mvcc_kv *kv)
{
    mvccpb__key_value__init(p);
    p->key = (ProtobufCBinaryData){kv->key_len, (uint8_t *)kv->key};
    p->value = (ProtobufCBinaryData){kv->value_len, (uint8_t *)kv->value};
    p->create_revision = kv->create_rev;
    p->mod_revision = kv->mod_rev;
    p->version = kv->version;
    p->lease = kv->lease;
}

/* Appends one event as field 11 of a WatchResponse. */
static int event_append(struct buf *b, const struct mvcc_event *ev)
{
    Mvccpb__KeyValue kv, prev;
    Mvccpb__Event pe;
    mvccpb__event__init(&pe);
    pe.type = ev->is_delete ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                            : MVCCPB__EVENT__EVENT_TYPE__PUT;
    kv_pb(&kv, &ev->kv);
    pe.kv = &kv;
    if (ev->prev_kv != NULL) {
        kv_pb(&prev, ev->prev_kv);
        pe.prev_kv = &prev;
    }
    size_t n = mvccpb__event__get_packed_size(&pe);
    uint8_t *p = buf_extend(b, 1 + CAIRN_VARINT_MAX + n);
    if (p == NULL)
        return CAIRN_ENOMEM;
    uint8_t *q = p;
    *q++ = T_EVENTS;
    q += varint_put(q, n);
    q += mvccpb__event__pack(&pe, q);
    b->len -= (size_t)(p + 1 + CAIRN_VARINT_MAX + n - q);
    return 0;
}

/* Encodes evs into e->evs and remembers what they were. */
static int events_encode(struct api__wenc *e, const struct mvcc_event *evs,
                         size_t n)
{
    e->valid = false;
    buf_reset(&e->evs);
    buf_reset(&e->keys);
    if (n > e->cap_ids) {
        struct api__wenc_id *v = cairn_realloc(e->ids, n * sizeof(*v));
        if (v == NULL)
            return CAIRN_ENOMEM;
        e->ids = v;
        e->cap_ids = n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mvcc_event *ev = &evs[i];
        int rc = event_append(&e->evs, ev);
        if (rc == 0 && ev->kv.key_len > 0)
            rc = buf_append(&e->keys, ev->kv.key, ev->kv.key_len);
        if (rc != 0)
            return rc;
        e->ids[i] = (struct api__wenc_id){
            .mod_rev = ev->kv.mod_rev,
            .prev_mod_rev = ev->prev_kv ? ev->prev_kv->mod_rev : 0,
            .key_len = ev->kv.key_len,
            .value_len = ev->kv.value_len,
            .is_delete = ev->is_delete,
            .has_prev = ev->prev_kv != NULL,
        };
    }
    e->n_ids = n;
    e->valid = true;
    return 0;
}

int api__wenc_response(struct api__wenc *e, const struct api_header *h,
                       const struct mvcc_watch_resp *r, const uint8_t **out,
                       size_t *out_len)
{
    if (!same_events(e, r->events, r->n_events)) {
        int rc = events_encode(e, r->events, r->n_events);
        if (rc != 0)
            return rc;
    }
    /* header: 4 varints; the rest: 3 varints and 2 flags */
    uint8_t hdr[4 * (1 + CAIRN_VARINT_MAX)];
    uint8_t *p = hdr;
    put_varint_field(&p, T_HDR_CLUSTER, h->cluster_id);
    put_varint_field(&p, T_HDR_MEMBER, h->member_id);
    put_varint_field(&p, T_HDR_REVISION, (uint64_t)h->revision);
    put_varint_field(&p, T_HDR_TERM, h->raft_term);
    size_t hlen = (size_t)(p - hdr);
    buf_reset(&e->msg);
    uint8_t *m =
        buf_extend(&e->msg, 2 + CAIRN_VARINT_MAX + hlen +
                                4 * (1 + CAIRN_VARINT_MAX) + e->evs.len);
    if (m == NULL)
        return CAIRN_ENOMEM;
    uint8_t *q = m;
    *q++ = T_HEADER;
    q += varint_put(q, hlen);
    memcpy(q, hdr, hlen);
    q += hlen;
    put_varint_field(&q, T_WATCH_ID, (uint64_t)r->watch_id);
    if (r->canceled) {
        *q++ = T_CANCELED;
        *q++ = 1;
    }
    put_varint_field(&q, T_COMPACT_REV, (uint64_t)r->compact_rev);
    if (r->fragment) {
        *q++ = T_FRAGMENT;
        *q++ = 1;
    }
    if (e->evs.len > 0)
        memcpy(q, e->evs.data, e->evs.len);
    q += e->evs.len;
    e->msg.len = (size_t)(q - m);
    *out = e->msg.data;
    *out_len = e->msg.len;
    return 0;
}

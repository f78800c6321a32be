/* The compact binary encoding of raft entries, messages, configurations and
 * configuration changes (format described in docs/raft-codec.md). */
#include "raft/raft.h"

#include <string.h>

#define MSG_FLAG_REJECT 0x01u
#define MSG_FLAG_TRANSFER 0x02u
#define MSG_FLAG_SNAPSHOT 0x04u
#define MSG_FLAGS_KNOWN 0x07u

/* Smallest encodings, used to bound counts read from untrusted input before
 * allocating for them. */
#define ENTRY_ENCODED_MIN 4u

static size_t put_ids(uint8_t *out, const raft_id *ids, uint32_t n)
{
    size_t off = varint_put(out, n);
    for (uint32_t i = 0; i < n; i++)
        off += varint_put(out + off, ids[i]);
    return off;
}

size_t raft_conf_state_encode(const struct raft_conf_state *cs, uint8_t *out)
{
    size_t off = 0;
    out[off++] = cs->auto_leave ? 1 : 0;
    off += put_ids(out + off, cs->voters, cs->n_voters);
    off += put_ids(out + off, cs->learners, cs->n_learners);
    off += put_ids(out + off, cs->voters_outgoing, cs->n_voters_outgoing);
    off += put_ids(out + off, cs->learners_next, cs->n_learners_next);
    return off;
}

static void read_ids(struct codec_reader *r, raft_id *ids, uint32_t *n)
{
    uint64_t count = codec_read_varint(r);
    if (count > RAFT_CONF_MAX) {
        r->bad = true;
        *n = 0;
        return;
    }
    *n = (uint32_t)count;
    for (uint32_t i = 0; i < *n; i++) {
        ids[i] = codec_read_varint(r);
        if (ids[i] == RAFT_NONE)
            r->bad = true;
    }
}

static void read_conf_state(struct codec_reader *r, struct raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    uint8_t flags = codec_read_u8(r);
    if (flags > 1)
        r->bad = true;
    cs->auto_leave = flags == 1;
    read_ids(r, cs->voters, &cs->n_voters);
    read_ids(r, cs->learners, &cs->n_learners);
    read_ids(r, cs->voters_outgoing, &cs->n_voters_outgoing);
    read_ids(r, cs->learners_next, &cs->n_learners_next);
}

int raft_conf_state_decode(const void *p, size_t len,
                           struct raft_conf_state *cs)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    read_conf_state(&r, cs);
    if (r.bad || codec_reader_left(&r) != 0)
        return CAIRN_EMALFORMED;
    return 0;
}

static bool ids_same_set(const raft_id *a, uint32_t na, const raft_id *b,
                         uint32_t nb)
{
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++) {
        bool found = false;
        for (uint32_t j = 0; j < nb && !found; j++)
            found = a[i] == b[j];
        if (!found)
            return false;
    }
    return true;
}

bool raft_conf_state_equal(const struct raft_conf_state *a,
                           const struct raft_conf_state *b)
{
    return a->auto_leave == b->auto_leave &&
           ids_same_set(a->voters, a->n_voters, b->voters, b->n_voters) &&
           ids_same_set(a->learners, a->n_learners, b->learners,
                        b->n_learners) &&
           ids_same_set(a->voters_outgoing, a->n_voters_outgoing,
                        b->voters_outgoing, b->n_voters_outgoing) &&
           ids_same_set(a->learners_next, a->n_learners_next, b->learners_next,
                        b->n_learners_next);
}

size_t raft_conf_change_encoded_size(const struct raft_conf_change *cc)
{
    size_t n = 1 + varint_size(cc->n_changes);
    for (uint32_t i = 0; i < cc->n_changes; i++)
        n += 1 + varint_size(cc->changes[i].node);
    return n + varint_size(cc->context_len) + cc->context_len;
}

size_t raft_conf_change_encode(const struct raft_conf_change *cc, uint8_t *out)
{
    size_t off = 0;
    out[off++] = cc->transition;
    off += varint_put(out + off, cc->n_changes);
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        out[off++] = cc->changes[i].type;
        off += varint_put(out + off, cc->changes[i].node);
    }
    off += varint_put(out + off, cc->context_len);
    if (cc->context_len > 0)
        memcpy(out + off, cc->context, cc->context_len);
    return off + cc->context_len;
}

int raft_conf_change_decode(const void *p, size_t len,
                            struct raft_conf_change *cc)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    memset(cc, 0, sizeof(*cc));
    cc->transition = codec_read_u8(&r);
    if (cc->transition > RAFT_CC_TRANSITION_JOINT_EXPLICIT)
        return CAIRN_EMALFORMED;
    uint64_t n = codec_read_varint(&r);
    if (n > RAFT_CONF_MAX)
        return CAIRN_EMALFORMED;
    cc->n_changes = (uint32_t)n;
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        cc->changes[i].type = codec_read_u8(&r);
        cc->changes[i].node = codec_read_varint(&r);
        if (cc->changes[i].type > RAFT_CC_ADD_LEARNER ||
            cc->changes[i].node == RAFT_NONE)
            return CAIRN_EMALFORMED;
    }
    uint64_t clen = codec_read_varint(&r);
    if (r.bad || clen > codec_reader_left(&r))
        return CAIRN_EMALFORMED;
    cc->context_len = (size_t)clen;
    cc->context = clen > 0 ? codec_read_bytes(&r, cc->context_len) : NULL;
    if (r.bad || codec_reader_left(&r) != 0)
        return CAIRN_EMALFORMED;
    return 0;
}

static int append_entry(const struct raft_entry *e, struct buf *out)
{
    uint8_t *p = buf_extend(out, 3 * CAIRN_VARINT_MAX + 1);
    if (p == NULL)
        return CAIRN_ENOMEM;
    size_t off = varint_put(p, e->term);
    off += varint_put(p + off, e->index);
    p[off++] = e->type;
    off += varint_put(p + off, e->len);
    out->len -= 3 * CAIRN_VARINT_MAX + 1 - off;
    if (e->len > 0)
        return buf_append(out, e->data, e->len);
    return 0;
}

static void read_entry(struct codec_reader *r, struct raft_entry *e)
{
    e->term = codec_read_varint(r);
    e->index = codec_read_varint(r);
    e->type = codec_read_u8(r);
    if (e->type > RAFT_ENTRY_CONF_CHANGE_V2)
        r->bad = true;
    uint64_t len = codec_read_varint(r);
    if (len > codec_reader_left(r)) {
        r->bad = true;
        len = 0;
    }
    e->len = (size_t)len;
    e->data = len > 0 ? codec_read_bytes(r, e->len) : NULL;
}

int raft_entry_encode(const struct raft_entry *e, struct buf *out)
{
    return append_entry(e, out);
}

int raft_entry_decode(const void *p, size_t len, struct raft_entry *e)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    memset(e, 0, sizeof(*e));
    read_entry(&r, e);
    if (r.bad || codec_reader_left(&r) != 0)
        return CAIRN_EMALFORMED;
    return 0;
}

int raft_message_encode(const struct raft_message *m, struct buf *out)
{
    uint8_t head[2 + 9 * CAIRN_VARINT_MAX];
    size_t off = 0;
    uint8_t flags = 0;
    if (m->reject)
        flags |= MSG_FLAG_REJECT;
    if (m->transfer)
        flags |= MSG_FLAG_TRANSFER;
    if (m->snapshot != NULL)
        flags |= MSG_FLAG_SNAPSHOT;
    head[off++] = m->type;
    head[off++] = flags;
    off += varint_put(head + off, m->from);
    off += varint_put(head + off, m->to);
    off += varint_put(head + off, m->term);
    off += varint_put(head + off, m->log_term);
    off += varint_put(head + off, m->index);
    off += varint_put(head + off, m->commit);
    off += varint_put(head + off, m->reject_hint);
    off += varint_put(head + off, m->ctx);
    off += varint_put(head + off, m->n_entries);
    int rv = buf_append(out, head, off);
    for (size_t i = 0; rv == 0 && i < m->n_entries; i++)
        rv = append_entry(&m->entries[i], out);
    if (rv == 0 && m->snapshot != NULL) {
        const struct raft_snapshot *s = m->snapshot;
        uint8_t conf[RAFT_CONF_STATE_ENCODED_MAX];
        size_t clen = raft_conf_state_encode(&s->meta.conf, conf);
        if (rv == 0)
            rv = buf_append_varint(out, s->meta.index);
        if (rv == 0)
            rv = buf_append_varint(out, s->meta.term);
        if (rv == 0)
            rv = buf_append_varint(out, clen);
        if (rv == 0)
            rv = buf_append(out, conf, clen);
        if (rv == 0)
            rv = buf_append_varint(out, s->len);
        if (rv == 0 && s->len > 0)
            rv = buf_append(out, s->data, s->len);
    }
    return rv;
}

int raft_message_decode(const void *p, size_t len, struct raft_message *m)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    memset(m, 0, sizeof(*m));
    m->type = codec_read_u8(&r);
    uint8_t flags = codec_read_u8(&r);
    if (r.bad || m->type == 0 || m->type > RAFT_MSG_TYPE_MAX ||
        (flags & ~MSG_FLAGS_KNOWN) != 0)
        return CAIRN_EMALFORMED;
    m->reject = (flags & MSG_FLAG_REJECT) != 0;
    m->transfer = (flags & MSG_FLAG_TRANSFER) != 0;
    m->from = codec_read_varint(&r);
    m->to = codec_read_varint(&r);
    m->term = codec_read_varint(&r);
    m->log_term = codec_read_varint(&r);
    m->index = codec_read_varint(&r);
    m->commit = codec_read_varint(&r);
    m->reject_hint = codec_read_varint(&r);
    m->ctx = codec_read_varint(&r);
    uint64_t n = codec_read_varint(&r);
    if (r.bad || n > codec_reader_left(&r) / ENTRY_ENCODED_MIN)
        return CAIRN_EMALFORMED;
    struct raft_entry *entries = NULL;
    struct raft_snapshot *snap = NULL;
    if (n > 0) {
        entries = cairn_calloc((size_t)n, sizeof(*entries));
        if (entries == NULL)
            return CAIRN_ENOMEM;
        for (size_t i = 0; i < n && !r.bad; i++)
            read_entry(&r, &entries[i]);
    }
    if (!r.bad && (flags & MSG_FLAG_SNAPSHOT) != 0) {
        snap = cairn_calloc(1, sizeof(*snap));
        if (snap == NULL) {
            cairn_free(entries);
            return CAIRN_ENOMEM;
        }
        snap->meta.index = codec_read_varint(&r);
        snap->meta.term = codec_read_varint(&r);
        uint64_t clen = codec_read_varint(&r);
        if (clen > codec_reader_left(&r)) {
            r.bad = true;
        } else {
            const uint8_t *c = codec_read_bytes(&r, (size_t)clen);
            if (c == NULL ||
                raft_conf_state_decode(c, (size_t)clen, &snap->meta.conf) != 0)
                r.bad = true;
        }
        uint64_t dlen = codec_read_varint(&r);
        if (dlen > codec_reader_left(&r)) {
            r.bad = true;
        } else {
            snap->len = (size_t)dlen;
            snap->data = dlen > 0 ? codec_read_bytes(&r, snap->len) : NULL;
        }
    }
    if (r.bad || codec_reader_left(&r) != 0) {
        cairn_free(entries);
        cairn_free(snap);
        return CAIRN_EMALFORMED;
    }
    m->entries = entries;
    m->n_entries = (size_t)n;
    m->snapshot = snap;
    return 0;
}

void raft_message_decoded_free(struct raft_message *m)
{
    cairn_free((void *)m->entries);
    cairn_free((void *)m->snapshot);
    m->entries = NULL;
    m->n_entries = 0;
    m->snapshot = NULL;
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[] = {
        "MsgUnknown",   "MsgApp",           "MsgAppResp",        "MsgVote",
        "MsgVoteResp",  "MsgPreVote",       "MsgPreVoteResp",    "MsgSnap",
        "MsgHeartbeat", "MsgHeartbeatResp", "MsgTimeoutNow",     "MsgProp",
        "MsgReadIndex", "MsgReadIndexResp", "MsgTransferLeader",
    };
    if (type < 0 || type > RAFT_MSG_TYPE_MAX)
        return names[0];
    return names[type];
}

/* Record framing, payload codecs, segment names and the record scanner of
 * wal/format.h (the format is documented in docs/wal.md). */
#include "wal/format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A torn-tail check crc-checks at most this many bytes before it gives up
 * and calls the tail damaged (refusing to open is the safe side). */
#define WAL_TORN_SCAN_BUDGET_BYTES (256ull * 1024 * 1024)
uint32_t wal__seg_seed(uint64_t seq)
{
    static const uint8_t tag[8] = {'c', 'a', 'i', 'r', 'n', 'w', 'a', 'l'};
    uint8_t b[16];
    memcpy(b, tag, sizeof tag);
    codec_put_u64(b + 8, seq);
    return crc32c(0, b, sizeof b);
}

int wal__rec_append(struct buf *b, uint32_t *crc, const uint8_t *head,
                    size_t head_len)
{
    CAIRN_ASSERT(head_len >= 1 && head_len <= WAL_HEAD_MAX);
    uint64_t size = wal__rec_size(head_len);
    uint8_t *p = buf_extend(b, (size_t)size);
    if (!p)
        return CAIRN_ENOMEM;
    codec_put_u32(p + 4, (uint32_t)head_len);
    memcpy(p + WAL_HEADER_BYTES, head, head_len);
    memset(p + WAL_HEADER_BYTES + head_len, 0,
           (size_t)(size - WAL_HEADER_BYTES - head_len));
    uint32_t c = crc32c(*crc, p + 4, (size_t)size - 4);
    codec_put_u32(p, c);
    *crc = c;
    return 0;
}

/* varint_size without a loop: framing sizes every entry twice. */
static inline size_t vlen(uint64_t v)
{
    return 1 + (size_t)(63 - __builtin_clzll(v | 1)) / 7;
}

/* The table part of one entry and its data: type, term, data length. */
static uint64_t entry_len(const struct raft_entry *e)
{
    return 1 + vlen(e->term) + vlen(e->len) + e->len;
}

size_t wal__entries_take(const struct raft_entry *e, size_t n,
                         uint64_t *payload_len)
{
    uint64_t len = entry_len(&e[0]);
    size_t k = 1;
    /* The head's varints (index, count) take at most 20 bytes. */
    while (k < n) {
        uint64_t more = entry_len(&e[k]);
        if (1 + 20 + len + more > WAL_ENTRIES_RECORD_BYTES)
            break;
        len += more;
        k++;
    }
    *payload_len = 1 + vlen(e[0].index) + vlen(k) + len;
    return k;
}

void wal__frame_entries(uint8_t *base, uint32_t *crc,
                        const struct raft_entry *e, size_t n, uint64_t len)
{
    CAIRN_ASSERT(len <= WAL_RECORD_MAX);
    uint8_t *p = base + WAL_HEADER_BYTES;
    codec_put_u32(base + 4, (uint32_t)len);
    *p++ = WAL_REC_ENTRIES;
    p += varint_put(p, e[0].index);
    p += varint_put(p, n);
    for (size_t i = 0; i < n; i++) {
        *p++ = e[i].type;
        p += varint_put(p, e[i].term);
        p += varint_put(p, e[i].len);
    }
    /* The data after the table. Checksummed in order: bytes framed but
     * not yet checksummed start at `from`; large data is checksummed as it
     * is copied, small data with what surrounds it. */
    uint32_t c = *crc;
    const uint8_t *from = base + 4;
    for (size_t i = 0; i < n; i++) {
        if (e[i].len >= WAL_COPY_CRC_MIN) {
            c = crc32c(c, from, (size_t)(p - from));
            c = crc32c_copy(c, p, e[i].data, e[i].len);
            p += e[i].len;
            from = p;
        } else if (e[i].len > 0) {
            memcpy(p, e[i].data, e[i].len);
            p += e[i].len;
        }
    }
    size_t pad = (size_t)(wal__padded(len) - len);
    memset(p, 0, pad);
    p += pad;
    c = crc32c(c, from, (size_t)(p - from));
    codec_put_u32(base, c);
    *crc = c;
}

void wal__ents_begin(struct wal__ents_iter *it, const struct wal__rec *rec)
{
    codec_reader_init(&it->table, rec->u.ents.table, rec->u.ents.table_len);
    it->data = rec->u.ents.data;
    it->next = rec->u.ents.first;
}

bool wal__ents_next(struct wal__ents_iter *it, const struct wal__rec *rec,
                    struct raft_entry *e)
{
    if (it->next - rec->u.ents.first >= rec->u.ents.count)
        return false;
    e->index = it->next++;
    e->type = codec_read_u8(&it->table);
    e->term = codec_read_varint(&it->table);
    e->len = (size_t)codec_read_varint(&it->table);
    e->data = e->len ? it->data : NULL;
    it->data += e->len;
    return true;
}

size_t wal__head_metadata(uint8_t *p, const struct wal_metadata *m,
                          uint64_t seq)
{
    size_t n = 0;
    p[n++] = WAL_REC_METADATA;
    n += varint_put(p + n, m->member_id);
    n += varint_put(p + n, m->cluster_id);
    n += varint_put(p + n, seq);
    return n;
}

size_t wal__head_hard_state(uint8_t *p, const struct raft_hard_state *hs)
{
    size_t n = 0;
    p[n++] = WAL_REC_HARD_STATE;
    n += varint_put(p + n, hs->term);
    n += varint_put(p + n, hs->vote);
    n += varint_put(p + n, hs->commit);
    return n;
}

size_t wal__head_snapshot(uint8_t *p, raft_index index, raft_term term)
{
    size_t n = 0;
    p[n++] = WAL_REC_SNAPSHOT;
    n += varint_put(p + n, index);
    n += varint_put(p + n, term);
    return n;
}

void wal__scan_init(struct wal__scan *s, const uint8_t *p, uint64_t size,
                    uint64_t seq)
{
    s->p = p;
    s->size = size;
    s->off = 0;
    s->crc = wal__seg_seed(seq);
}

bool wal__all_zero(const uint8_t *p, uint64_t from, uint64_t size)
{
    for (uint64_t i = from; i < size; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* An entries record: a first index from 1, a count from 1 with every
 * index representable, a table that parses, and exactly the data it
 * describes after it. */
static bool decode_entries(struct codec_reader *rd, struct wal__rec *r)
{
    raft_index first = codec_read_varint(rd);
    uint64_t count = codec_read_varint(rd);
    if (rd->bad || first == 0 || count == 0 ||
        count > codec_reader_left(rd) / 3 || first + (count - 1) < first)
        return false;
    const uint8_t *table = rd->p + rd->off;
    size_t before = codec_reader_left(rd);
    uint64_t data = 0;
    /* Bounded by count, itself bounded by the payload's length. */
    for (uint64_t i = 0; i < count && !rd->bad; i++) {
        (void)codec_read_u8(rd);
        (void)codec_read_varint(rd);
        uint64_t len = codec_read_varint(rd);
        if (len > WAL_RECORD_MAX)
            return false;
        data += len;
    }
    if (rd->bad || data != codec_reader_left(rd))
        return false;
    r->u.ents.first = first;
    r->u.ents.count = count;
    r->u.ents.table = table;
    r->u.ents.table_len = before - codec_reader_left(rd);
    r->u.ents.data = table + r->u.ents.table_len;
    return true;
}

static bool decode_payload(const uint8_t *p, size_t len, struct wal__rec *r)
{
    struct codec_reader rd;
    codec_reader_init(&rd, p, len);
    r->type = codec_read_u8(&rd);
    switch (r->type) {
    case WAL_REC_METADATA:
        r->u.meta.member_id = codec_read_varint(&rd);
        r->u.meta.cluster_id = codec_read_varint(&rd);
        r->seq = codec_read_varint(&rd);
        break;
    case WAL_REC_HARD_STATE:
        r->u.hs.term = codec_read_varint(&rd);
        r->u.hs.vote = codec_read_varint(&rd);
        r->u.hs.commit = codec_read_varint(&rd);
        break;
    case WAL_REC_ENTRIES:
        return decode_entries(&rd, r);
    case WAL_REC_SNAPSHOT:
        r->u.snap.index = codec_read_varint(&rd);
        r->u.snap.term = codec_read_varint(&rd);
        break;
    default:
        return false;
    }
    return !rd.bad && codec_reader_left(&rd) == 0;
}

enum wal__scan_status wal__scan_next(struct wal__scan *s, struct wal__rec *rec,
                                     const char **why)
{
    *why = "";
    uint64_t off = s->off;
    if (off + WAL_HEADER_BYTES > s->size) {
        if (wal__all_zero(s->p, off, s->size))
            return WAL_SCAN_END;
        *why = "truncated record header";
        return WAL_SCAN_BAD;
    }
    const uint8_t *h = s->p + off;
    if (wal__all_zero(h, 0, WAL_HEADER_BYTES))
        return WAL_SCAN_END;
    uint32_t stored = codec_get_u32(h);
    uint32_t len = codec_get_u32(h + 4);
    if (len == 0 || len > WAL_RECORD_MAX) {
        *why = "bad record length";
        return WAL_SCAN_BAD;
    }
    uint64_t size = wal__rec_size(len);
    if (size > s->size - off) {
        *why = "record runs past the end of the file";
        return WAL_SCAN_BAD;
    }
    if (crc32c(s->crc, h + 4, (size_t)size - 4) != stored) {
        *why = "CRC mismatch";
        return WAL_SCAN_BAD;
    }
    memset(rec, 0, sizeof *rec);
    if (!decode_payload(h + WAL_HEADER_BYTES, len, rec)) {
        *why = "malformed record payload";
        return WAL_SCAN_BAD;
    }
    rec->off = off;
    rec->size = size;
    rec->crc = stored;
    s->off = off + size;
    s->crc = stored;
    return WAL_SCAN_RECORD;
}

/* Whether a whole 512-byte sector (aligned in the file) inside [lo, hi)
 * is zero while bytes after it (before data_end) are not: the mark of a
 * multi-sector write of which a middle part never reached the disk
 * (preallocated space reads as zeros). Zero sectors with nothing after them
 * prove nothing: a damaged length can stretch a record over the empty
 * space at the end of a segment. */
static bool has_lost_sector(const uint8_t *p, uint64_t lo, uint64_t hi,
                            uint64_t data_end)
{
    uint64_t s =
        (lo + WAL_SECTOR_BYTES - 1) / WAL_SECTOR_BYTES * WAL_SECTOR_BYTES;
    for (; s + WAL_SECTOR_BYTES <= hi && s + WAL_SECTOR_BYTES < data_end;
         s += WAL_SECTOR_BYTES)
        if (wal__all_zero(p + s, 0, WAL_SECTOR_BYTES))
            return true;
    return false;
}

bool wal__tail_is_torn(const struct wal__scan *s)
{
    uint64_t x = s->off;
    if (x + WAL_HEADER_BYTES > s->size)
        return true;
    const uint8_t *h = s->p + x;
    uint32_t stored = codec_get_u32(h);
    uint32_t len = codec_get_u32(h + 4);
    bool have_computed = false;
    uint32_t computed = 0;
    if (len >= 1 && len <= WAL_RECORD_MAX &&
        wal__rec_size(len) <= s->size - x) {
        uint64_t size = wal__rec_size(len);
        uint64_t data_end = s->size;
        while (data_end > x && s->p[data_end - 1] == 0)
            data_end--;
        if (has_lost_sector(s->p, x, x + size, data_end))
            return true;
        computed = crc32c(s->crc, h + 4, (size_t)size - 4);
        have_computed = true;
    }
    /* Damage inside the log leaves later records that still chain to the
     * bad one, through its stored CRC (its payload was hit) or the CRC its
     * bytes give (its CRC field was hit). A write that never completed
     * leaves none: look for one at every 8-byte position after it. */
    uint64_t budget = WAL_TORN_SCAN_BUDGET_BYTES;
    for (uint64_t y = x + WAL_HEADER_BYTES; y + WAL_HEADER_BYTES <= s->size;
         y += 8) {
        const uint8_t *q = s->p + y;
        uint32_t ylen = codec_get_u32(q + 4);
        if (ylen == 0 || ylen > WAL_RECORD_MAX)
            continue;
        uint64_t ysize = wal__rec_size(ylen);
        if (ysize > s->size - y)
            continue;
        if (ysize > budget)
            return false;
        budget -= ysize;
        uint32_t ystored = codec_get_u32(q);
        if (crc32c(stored, q + 4, (size_t)ysize - 4) == ystored)
            return false;
        if (have_computed &&
            crc32c(computed, q + 4, (size_t)ysize - 4) == ystored)
            return false;
    }
    return true;
}

void wal__seg_name(char *out, uint64_t seq, raft_index first)
{
    snprintf(out, WAL_NAME_MAX, "%016" PRIx64 "-%016" PRIx64 ".wal", seq,
             (uint64_t)first);
}

void wal__tmp_name(char *out, uint64_t seq)
{
    snprintf(out, WAL_NAME_MAX, "%016" PRIx64 ".tmp", seq);
}

bool wal__hex16(const char *p, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        x = (x << 4) | d;
    }
    *v = x;
    return true;
}

int wal__seg_parse(const char *name, uint64_t *seq, raft_index *first)
{
    if (strlen(name) != 16 + 1 + 16 + 4 || name[16] != '-' ||
        strcmp(name + 33, ".wal") != 0)
        return CAIRN_EINVAL;
    uint64_t f;
    if (!wal__hex16(name, seq) || !wal__hex16(name + 17, &f))
        return CAIRN_EINVAL;
    *first = f;
    return 0;
}

bool wal__is_tmp(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".tmp") == 0;
}

void wal__parent(const char *path, char *out)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    /* Bounded by n: the cut moves left each turn. */
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n == 0) {
        strcpy(out, ".");
        return;
    }
    memcpy(out, path, n);
    out[n] = '\0';
}

int wal__join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return CAIRN_ETOOBIG;
    return 0;
}

/* Private to wal/: the record framing, record payloads, segment names and
 * the scanner that recovery and cairn-wal-dump share (docs/wal.md). */
#ifndef CAIRN_WAL_FORMAT_H
#define CAIRN_WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal/wal.h"

/* A record: u32 crc | u32 payload length | payload | zero padding to 8.
 * crc = crc32c(previous record's crc, bytes 4 .. end of padding); the first
 * record of a segment starts from wal__seg_seed(seq). */
#define WAL_HEADER_BYTES 8u
#define WAL_SECTOR_BYTES 512u

enum wal__rec_type {
    WAL_REC_METADATA = 1,   /* member id, cluster id, segment seq */
    WAL_REC_HARD_STATE = 2, /* term, vote, commit */
    /* 3 was a record per entry (entry type, index, term, data): retired */
    WAL_REC_SNAPSHOT = 4, /* snapshot marker: index, term */
    WAL_REC_ENTRIES = 5,  /* first index, count, per entry (entry type,
                           * term, data length), then all the data */
};

static inline uint64_t wal__padded(uint64_t len)
{
    return (len + 7) & ~(uint64_t)7;
}
static inline uint64_t wal__rec_size(uint64_t payload_len)
{
    return WAL_HEADER_BYTES + wal__padded(payload_len);
}

uint32_t wal__seg_seed(uint64_t seq);

/* A decoded record. Pointers borrow the scanned bytes. */
struct wal__rec {
    uint64_t off;  /* of the header in the segment */
    uint64_t size; /* header + padded payload */
    uint32_t crc;  /* stored */
    uint8_t type;  /* enum wal__rec_type */
    union {
        struct wal_metadata meta; /* plus seq below */
        struct raft_hard_state hs;
        struct {
            raft_index first;
            uint64_t count;
            const uint8_t *table; /* count x (type, term, length) */
            size_t table_len;
            const uint8_t *data; /* the entries' data, one after another */
        } ents;
        struct {
            raft_index index;
            raft_term term;
        } snap;
    } u;
    uint64_t seq; /* METADATA only */
};

/* Appends one framed record without data (metadata, hard state, snapshot)
 * to b, chaining *crc: the payload is head (type byte and fields). */
int wal__rec_append(struct buf *b, uint32_t *crc, const uint8_t *head,
                    size_t head_len);
/* Entry data at least this long is copied into the batch with its
 * checksum taken on the way (crc32c_copy: one read of it); shorter data is
 * copied and checksummed with the rest of its record in one pass. */
#define WAL_COPY_CRC_MIN 1024
/* An entries record takes entries while its payload stays within this
 * (always at least one entry). A large batch is written a record at a
 * time, each while the data its framing just read is still in the cache
 * for the kernel's copy; and records stay a bounded piece of work for
 * recovery and the torn-tail scan. */
#define WAL_ENTRIES_RECORD_BYTES (128u * 1024)
/* How many of e[0..n) (n >= 1) the next entries record takes: at least
 * one, more while the payload stays within WAL_ENTRIES_RECORD_BYTES; its
 * payload length into *payload_len. */
size_t wal__entries_take(const struct raft_entry *e, size_t n,
                         uint64_t *payload_len);
/* Frames one entries record of e[0..n), of payload length len (from
 * wal__entries_take), at p, which has room for wal__rec_size(len) bytes,
 * chaining *crc. The payload must fit WAL_RECORD_MAX. */
void wal__frame_entries(uint8_t *p, uint32_t *crc, const struct raft_entry *e,
                        size_t n, uint64_t len);
/* Iterates over the entries of a scanned entries record. */
struct wal__ents_iter {
    struct codec_reader table;
    const uint8_t *data;
    raft_index next;
};
void wal__ents_begin(struct wal__ents_iter *it, const struct wal__rec *rec);
/* The next entry (data borrowed from the record): false after the last
 * (the record was checked whole when scanned). */
bool wal__ents_next(struct wal__ents_iter *it, const struct wal__rec *rec,
                    struct raft_entry *e);
/* Payload heads; each returns its length (room: WAL_HEAD_MAX bytes). */
#define WAL_HEAD_MAX 40
size_t wal__head_metadata(uint8_t *p, const struct wal_metadata *m,
                          uint64_t seq);
size_t wal__head_hard_state(uint8_t *p, const struct raft_hard_state *hs);
size_t wal__head_snapshot(uint8_t *p, raft_index index, raft_term term);

/* Scans records in one segment's bytes. */
struct wal__scan {
    const uint8_t *p;
    uint64_t size;
    uint64_t off; /* next record */
    uint32_t crc; /* chain value after the last good record */
};

enum wal__scan_status {
    WAL_SCAN_RECORD = 0, /* *rec holds the next record */
    WAL_SCAN_END = 1,    /* a zero header: no records follow */
    WAL_SCAN_BAD = 2,    /* the record at s->off fails its check */
};

void wal__scan_init(struct wal__scan *s, const uint8_t *p, uint64_t size,
                    uint64_t seq);
/* Reads the record at s->off; on WAL_SCAN_RECORD advances past it. *why is
 * set to a short reason on WAL_SCAN_BAD. */
enum wal__scan_status wal__scan_next(struct wal__scan *s, struct wal__rec *rec,
                                     const char **why);
/* Whether bytes [from, size) are all zero. */
bool wal__all_zero(const uint8_t *p, uint64_t from, uint64_t size);
/* After WAL_SCAN_BAD at s->off in the last segment: true if what follows
 * can only be a write that never became durable (a torn or zeroed tail),
 * false if a later record still chains to the bad one (damage inside the
 * log) or if that cannot be ruled out within the scan budget. */
bool wal__tail_is_torn(const struct wal__scan *s);

/* Segment names. */
#define WAL_NAME_MAX 64
void wal__seg_name(char *out, uint64_t seq, raft_index first);
void wal__tmp_name(char *out, uint64_t seq);
/* 0 and the fields, or CAIRN_EINVAL if name is not a segment name. */
int wal__seg_parse(const char *name, uint64_t *seq, raft_index *first);
bool wal__is_tmp(const char *name);
/* Parses exactly 16 lowercase hex digits at p. */
bool wal__hex16(const char *p, uint64_t *v);

/* The directory holding path, into out (room for strlen(path) + 2):
 * "/" for "/a", "." for "a", "a/b" for "a/b/c" (trailing slashes of path
 * ignored). */
void wal__parent(const char *path, char *out);

/* path = dir + "/" + name; CAIRN_ETOOBIG if it does not fit in size. */
int wal__join(char *out, size_t size, const char *dir, const char *name);

#endif

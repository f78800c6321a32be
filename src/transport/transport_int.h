/* transport's private structures and the wire format's encoders and parsers
 * (docs/transport.md), shared by the files of the module. */
#ifndef CAIRN_TRANSPORT_TRANSPORT_INT_H
#define CAIRN_TRANSPORT_TRANSPORT_INT_H

#include <limits.h>
#include <stdio.h>

#include "transport/transport.h"

#define TP_COMPONENT "transport"

/* A connection not answered within this many probe intervals, a probe
 * unanswered for as long, or an inbound connection silent for as long,
 * counts as dead. */
#define TP_DEAD_PROBES 5

/* ---- wire format ---- */

#define TP_HANDSHAKE_BYTES 36
#define TP_ANSWER_BYTES 20
#define TP_FRAME_HEADER_BYTES 9

/* What a dialled connection carries (handshake byte 6). */
enum tp_kind {
    TP_KIND_MESSAGES = 1,
    TP_KIND_SNAPSHOT = 2,
};

/* The listener's answer to a handshake (answer byte 6). */
enum tp_answer_code {
    TP_ANSWER_OK = 0,
    TP_ANSWER_VERSION = 1,  /* protocol version not spoken here */
    TP_ANSWER_CLUSTER = 2,  /* cluster id mismatch */
    TP_ANSWER_RECEIVER = 3, /* the listener is another member */
    TP_ANSWER_UNKNOWN = 4,  /* the sender is not a member here */
    TP_ANSWER_REMOVED = 5,  /* the sender was removed */
    TP_ANSWER_KIND = 6,     /* unknown connection kind */
};
#define TP_ANSWER_CODE_MAX 6
const char *tp__answer_text(int code);

enum tp_frame_type {
    TP_FRAME_MSG = 1,        /* a raft message, raft's codec */
    TP_FRAME_PING = 2,       /* u64 token */
    TP_FRAME_PONG = 3,       /* the ping's token echoed */
    TP_FRAME_SNAP_HEAD = 4,  /* u64 body bytes, then the SNAP message */
    TP_FRAME_SNAP_CHUNK = 5, /* body bytes */
    TP_FRAME_SNAP_END = 6,   /* u32 CRC-32C of the whole body */
    TP_FRAME_SNAP_ACK = 7,   /* i32 status: 0 or a negative CAIRN_E code */
};

struct tp_handshake {
    uint16_t version;
    uint8_t kind;
    uint64_t cluster_id;
    raft_id from;
    raft_id to;
};

void tp__handshake_encode(uint8_t out[TP_HANDSHAKE_BYTES],
                          const struct tp_handshake *hs);
/* CAIRN_EMALFORMED on a bad magic or checksum; any version decodes. */
int tp__handshake_decode(const uint8_t in[TP_HANDSHAKE_BYTES],
                         struct tp_handshake *hs);
void tp__answer_encode(uint8_t out[TP_ANSWER_BYTES], uint8_t code,
                       raft_id self);
int tp__answer_decode(const uint8_t in[TP_ANSWER_BYTES], uint8_t *code,
                      raft_id *self);

/* Appends one frame. CAIRN_ENOMEM. */
int tp__frame_append(struct buf *b, uint8_t type, const void *payload,
                     size_t len);
/* Appends a MSG frame holding m's encoding (or a SNAP_HEAD frame when
 * body_bytes_prefix is non-NULL: the u64 first). On failure b is as it was:
 * CAIRN_ETOOBIG (payload over max), CAIRN_ENOMEM. */
int tp__frame_append_msg(struct buf *b, uint8_t type,
                         const uint64_t *body_bytes_prefix,
                         const struct raft_message *m, size_t max);
/* Fills a frame header for a payload already in place after it. */
void tp__frame_header(uint8_t out[TP_FRAME_HEADER_BYTES], uint8_t type,
                      const uint8_t *payload, size_t len);
/* Looks at avail bytes: 1 and the frame's type, payload and total size when
 * a whole frame is there; 0 when more bytes are needed; CAIRN_EMALFORMED
 * for a payload over max, a bad checksum or an unknown type. */
int tp__frame_parse(const uint8_t *p, size_t avail, size_t max, uint8_t *type,
                    const uint8_t **payload, size_t *len, size_t *total);

/* Writes the decoded text of one direction of a connection (as captured,
 * from its first byte) to out, one line per handshake, answer or frame.
 * 0, or CAIRN_EMALFORMED at the first thing that does not decode (after
 * saying so in the text). */
int tp__dump(FILE *out, const uint8_t *p, size_t len);

/* ---- objects ---- */

#define TP_URLS_MAX 8
#define TP_LISTENERS_MAX 4
#define TP_INBOUND_MAX (4 * TRANSPORT_PEERS_MAX)
#define TP_REMOVED_MAX 256
#define TP_REFUSALS_LOGGED_MAX 64

struct tpeer;
struct tsnap;

/* One net_connect in flight; its owner may go away before it completes. */
struct tdial {
    struct transport *t;
    struct tpeer *peer; /* NULL once abandoned */
    struct tsnap *snap; /* for snapshot connections */
};

/* Our side of a peer: the outgoing message connection and its queue. */
struct tpeer {
    struct transport *t;
    raft_id id;
    struct cairn_hist rtt; /* every probe's round trip */
    int refs;              /* the table, the timer, the connection */
    bool removed;
    struct net_url urls[TP_URLS_MAX];
    size_t n_urls;
    size_t url_next;
    uint8_t state; /* enum transport_peer_state */
    struct tdial *dial;
    struct net_conn *conn;
    bool answered;   /* the peer accepted our handshake */
    bool redial_now; /* new URLs: dial again as soon as the conn is gone */
    uint64_t dial_ms;
    uv_timer_t timer; /* backoff, answer timeout, probes */
    uint64_t backoff_ms;
    struct buf q; /* encoded frames waiting for the socket */
    size_t q_msgs;
    struct buf rx; /* answer and pongs */
    bool unreachable_reported;
    int refusal_logged; /* answer code logged, -1 none */
    bool ping_out;
    uint64_t ping_token; /* uv_hrtime when queued */
    /* Timer ticks without an answer (handshake or probe). Counted in ticks
     * rather than time: a loop that stalled fires a late timer once, and
     * its I/O comes right after, so a stall never looks like a dead peer. */
    unsigned silent_ticks;
    struct tsnap *snap;
    struct transport_peer_status st;
};

/* A snapshot being sent. */
struct tsnap {
    struct transport *t;
    struct tpeer *peer; /* NULL once canceled */
    raft_id to;
    raft_index index;
    int refs; /* the peer's pointer, dial, connection, file read */
    int fd;
    uint64_t size;
    uint64_t sent;
    uint32_t crc;
    struct buf head; /* the SNAP_HEAD frame */
    struct tdial *dial;
    struct net_conn *conn;
    struct buf rx;
    bool answered;
    bool reading;
    bool ended; /* SNAP_END queued */
    bool reported;
    unsigned stall_sweeps; /* sweeps since the last progress */
    uv_fs_t req;
    uint8_t *chunk; /* header + snap_chunk_bytes */
};

enum tin_state {
    TIN_HANDSHAKE = 0,
    TIN_MESSAGES,
    TIN_SNAPSHOT,
    TIN_REFUSED,
};

/* A connection a peer dialled to us. */
struct tin {
    struct transport *t;
    struct tin *prev, *next;
    struct net_conn *conn; /* NULL once closed */
    int refs;              /* the connection, a file request */
    uint8_t state;         /* enum tin_state */
    raft_id from;
    unsigned silent_sweeps; /* sweeps since the last bytes or disk progress */
    struct buf rx;
    size_t rx_off;
    bool waiting; /* a file request holds up the frames behind it */
    /* snapshot reception */
    bool snap_started;
    bool snap_done; /* delivered and acknowledged */
    int fd;
    int stage; /* which file request is in flight */
    uint64_t body_bytes;
    uint64_t body_got;
    uint32_t body_crc;
    uint32_t end_crc;
    struct buf head; /* the SNAP_HEAD payload, kept for delivery */
    struct buf wbuf;
    uv_fs_t req;
    char part_path[PATH_MAX];
    char final_path[PATH_MAX];
};

struct transport {
    uv_loop_t *loop;
    struct transport_config cfg;
    char *snap_dir;
    const struct transport_cbs *cbs;
    void *arg;
    struct prng prng;
    uv_prepare_t prep;
    bool prep_active;
    uv_timer_t sweep; /* silent inbound connections, stalled snapshots */
    struct net_listener *listeners[TP_LISTENERS_MAX];
    size_t n_listeners;
    struct tpeer *peers[TRANSPORT_PEERS_MAX];
    size_t n_peers;
    raft_id removed[TP_REMOVED_MAX];
    size_t n_removed;
    struct {
        raft_id from;
        uint8_t code;
    } refusals[TP_REFUSALS_LOGGED_MAX];
    size_t n_refusals;
    struct tin *ins;
    size_t n_ins;
    struct transport_status st;
    uint64_t snap_seq;
    unsigned snap_stall_sweeps; /* snap_stall_ms in sweep intervals */
    size_t live; /* objects not yet released: closing waits for 0 */
    bool closing;
    void *close_arg;
    transport_closed_cb close_cb;
    struct net_conn_config out_cfg;
    struct net_conn_config in_cfg;
};

/* transport.c */
/* The wait before the next dial: uniform in [b/2, b] for the current bound
 * b = *bound_ms, which then doubles up to max_ms ("equal jitter"). */
uint64_t tp__backoff_wait(struct prng *r, uint64_t *bound_ms, uint64_t max_ms);
struct tpeer *tp__peer_find(const struct transport *t, raft_id id);
bool tp__is_removed(const struct transport *t, raft_id id);
void tp__live_inc(struct transport *t);
void tp__live_dec(struct transport *t);
void tp__report_unreachable(struct tpeer *p);

/* inbound.c */
void tp__in_close_from(struct transport *t, raft_id from);
/* Closes inbound connections silent for too long. */
void tp__in_sweep(struct transport *t);
void tp__in_close_all(struct transport *t);

/* snap.c */
/* Cancels p's snapshot (reported CAIRN_ECANCELED). */
void tp__snap_cancel(struct tsnap *s, int status);
/* Fails s if it made no progress for snap_stall_ms. */
void tp__snap_sweep(struct tsnap *s);

#endif

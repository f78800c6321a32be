/* transport: peer messaging between cairn members over net/'s streams: our
 * own framing (docs/transport.md), one connection per peer and direction,
 * batched writes, bounded per-peer queues, reconnects with capped
 * exponential backoff and jitter, and snapshots streamed in chunks on a
 * connection of their own.
 *
 * Shape
 * -----
 * We dial each peer to send to it; peers dial us to send to us. A dialled
 * connection opens with a handshake (protocol version, cluster id, sender
 * and receiver member ids); the receiver answers it, and refuses senders of
 * another cluster, messages meant for another member, and members that are
 * not (or no longer) peers. Refusals are logged once per sender and reason,
 * never once per message. Then come length-prefixed, CRC-32C-checked frames
 * of raft messages in raft's codec (raft_message_encode). Malformed input
 * closes that one connection with a log line; the transport keeps serving
 * everyone else.
 *
 * Sending: transport_send encodes the message into the peer's queue (bounded
 * in messages and bytes); everything queued goes out as one write when the
 * connection can take it (once per loop turn, or when the previous write
 * drained); while a dial or its handshake is under way, messages wait in
 * the queue. A full queue, or a peer in backoff after a failed
 * dial or a lost connection, drops the message and reports the peer
 * unreachable to the host (at most once per episode: after a
 * report, the next one comes only after a write succeeded again or the
 * connection was lost again). The host turns that report into
 * RAFT_EVENT_REPORT_UNREACHABLE.
 *
 * Snapshots: a RAFT_MSG_SNAP message goes through transport_send_snapshot
 * with the path of a file holding its body (the mvcc database image); the
 * body is read in chunks (asynchronously, libuv's thread pool) and streamed
 * on a separate connection with back-pressure, so heartbeats and appends on
 * the message connection are never stuck behind it. The receiver writes the
 * body to a file in the host's snapshot directory, fsyncs it, renames it to
 * its final name, fsyncs the directory, then hands the message and the
 * file's path to the host, and acknowledges; the sender reports success or
 * failure to its host (→ RAFT_EVENT_REPORT_SNAPSHOT).
 *
 * Threading: everything, callbacks included, runs on the thread of the
 * uv_loop_t given to transport_open. Nothing here blocks on the network;
 * the snapshot body's reads, writes and fsyncs run in libuv's thread pool.
 *
 * Ownership and lifetimes: the transport is a handle: transport_open
 * allocates it, transport_close starts closing it, and the memory is
 * released after the closed callback returns. Pointers passed in (URLs,
 * messages, paths) are borrowed for the call only; the transport copies
 * what it keeps. Pointers passed to callbacks are borrowed for the
 * duration of the callback.
 *
 * Errors: functions return 0 or a negative CAIRN_E* code (util/err.h). */
#ifndef CAIRN_TRANSPORT_TRANSPORT_H
#define CAIRN_TRANSPORT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/net.h"
#include "raft/raft.h"
#include "util/util.h"

/* The wire protocol's version, sent in every handshake. */
#define TRANSPORT_PROTOCOL_VERSION 1

/* Defaults for the zero fields of struct transport_config. */
#define TRANSPORT_QUEUE_MSGS_DEFAULT 4096
#define TRANSPORT_QUEUE_BYTES_DEFAULT (16u << 20)
#define TRANSPORT_FRAME_BYTES_MAX_DEFAULT (64u << 20)
#define TRANSPORT_BACKOFF_MIN_MS_DEFAULT 100
#define TRANSPORT_BACKOFF_MAX_MS_DEFAULT 5000
#define TRANSPORT_PROBE_INTERVAL_MS_DEFAULT 1000
#define TRANSPORT_SNAP_CHUNK_BYTES_DEFAULT (256u << 10)
#define TRANSPORT_SNAP_STALL_MS_DEFAULT 60000
/* The RTT histogram's bounds: etcd's ExponentialBuckets(0.0001, 2, 16). */
#define TRANSPORT_RTT_HIST_START_NS 100000u
#define TRANSPORT_RTT_HIST_BUCKETS 16
/* Most peers one transport serves (the raft configuration's bound). */
#define TRANSPORT_PEERS_MAX 64

struct transport;

/* What a peer's outgoing message connection is doing. */
enum transport_peer_state {
    TRANSPORT_PEER_CONNECTING = 0, /* dialling, or waiting for the answer */
    TRANSPORT_PEER_CONNECTED = 1,  /* the peer accepted our handshake */
    TRANSPORT_PEER_BACKOFF = 2,    /* waiting before the next dial */
};

/* Counters for one peer (etcd exposes the round trip as
 * etcd_network_peer_round_trip_time_seconds, and sent/received bytes as
 * etcd_network_peer_sent_bytes_total / _received_bytes_total). */
struct transport_peer_status {
    raft_id id;
    uint8_t state;           /* enum transport_peer_state */
    uint64_t connected_ms;   /* loop time (uv_now) of the current
                              * connection's acceptance; 0 when not
                              * connected */
    uint64_t msgs_sent;      /* messages handed to the socket */
    uint64_t msgs_dropped;   /* messages dropped (queue full, backoff,
                              * connection lost with them queued) */
    uint64_t msgs_received;  /* messages delivered from this peer */
    uint64_t bytes_sent;     /* frame bytes written, messages and snapshots */
    uint64_t bytes_received; /* frame bytes read from this peer */
    uint64_t writes;         /* socket writes of message batches */
    uint64_t connects;       /* handshakes the peer accepted */
    uint64_t unreachable_reports;
    uint64_t snapshots_sent;   /* acknowledged by the peer */
    uint64_t snapshots_failed; /* failed or canceled */
    uint64_t rtt_us;           /* last probe's round trip; 0 before the first */
    uint64_t rtt_us_max;       /* largest probe round trip seen */
    /* Every probe's round trip, in etcd's buckets for
     * etcd_network_peer_round_trip_time_seconds (etcd observes its
     * prober's smoothed RTT every 30 s; we observe each probe). */
    struct cairn_hist_snap rtt_hist;
    size_t queued_msgs; /* waiting in our queue now */
    size_t queued_bytes;
};

/* The host's callbacks, all on the loop thread. A callback may call any
 * transport function, transport_close included. */
struct transport_cbs {
    /* A message from a peer (m->to is this member, m->from the sender the
     * handshake named). m and everything it points to are borrowed for the
     * call (the raft core copies what it keeps). Never a RAFT_MSG_SNAP:
     * those come through snapshot. */
    void (*receive)(void *arg, const struct raft_message *m);
    /* A snapshot arrived: m is the RAFT_MSG_SNAP message (its snapshot's
     * data/len are the small descriptor the sender put there, possibly
     * empty), body_path the fsynced file holding the streamed body. The
     * host owns the file from now on (renames or deletes it); both
     * pointers are borrowed for the call. */
    void (*snapshot)(void *arg, const struct raft_message *m,
                     const char *body_path);
    /* Sending to peer failed (queue full, backoff, connection lost):
     * → RAFT_EVENT_REPORT_UNREACHABLE. */
    void (*unreachable)(void *arg, raft_id peer);
    /* The snapshot sent to peer arrived (status 0) or did not (a negative
     * code): → RAFT_EVENT_REPORT_SNAPSHOT. Called exactly once per
     * successful transport_send_snapshot, also when the peer is removed or
     * the transport closes meanwhile (CAIRN_ECANCELED). */
    void (*snapshot_status)(void *arg, raft_id peer, raft_index index,
                            int status);
    /* Peer refused our connection because it removed us from the cluster
     * (etcd's peers answer a removed member so, and it stops: "the member
     * has been permanently removed from the cluster"). Called once per
     * peer until that peer accepts us again. May be NULL. */
    void (*removed)(void *arg, raft_id by);
};

struct transport_config {
    uint64_t cluster_id;
    raft_id self_id; /* non-zero */
    /* Directory where received snapshot bodies are written (exists, on the
     * file system where the host keeps its snapshots, so that it can rename
     * them into place). Copied. */
    const char *snap_dir;
    /* Seed of the backoff jitter's generator (the host derives it from its
     * own seeded generator; never the clock in tests). */
    uint64_t seed;
    /* Bounds of each peer's send queue; 0 means the defaults above. */
    size_t queue_msgs_max;
    size_t queue_bytes_max;
    /* Largest frame accepted or sent (a raft message's encoding, or a
     * snapshot message's descriptor); larger input is malformed. */
    size_t frame_bytes_max;
    /* Reconnect backoff: the first wait is backoff_min_ms, each failure
     * doubles it up to backoff_max_ms; each wait is drawn uniformly from
     * [wait/2, wait] so that members do not dial in lockstep. */
    uint64_t backoff_min_ms;
    uint64_t backoff_max_ms;
    /* Round-trip probes on each connected message connection. A connection
     * silent for 5 probe intervals counts as dead: an unanswered probe or
     * handshake on our side, no handshake or no frame (probes included) on
     * an inbound one. */
    uint64_t probe_interval_ms;
    /* A snapshot stream that makes no progress (no chunk written, nothing
     * acknowledged) for this long fails with CAIRN_ETIMEOUT, on both
     * sides. It covers the receiver's fsync of the whole body. */
    uint64_t snap_stall_ms;
    /* Bytes per snapshot chunk frame (and per file read/write). */
    size_t snap_chunk_bytes;
    struct cairn_log *log; /* borrowed; may be NULL */
    /* Peer TLS (--peer-cert-file and friends, see docs/tls.md): used to
     * listen on and dial https and unixs peer URLs; NULL refuses them with
     * CAIRN_EUNSUPPORTED. Borrowed: must outlive the transport. */
    struct net_tls *tls;
};

/* Opens a transport on loop. It listens nowhere by itself: the host calls
 * transport_listen, or hands connections it accepted to transport_adopt.
 * config and its strings are copied. CAIRN_EINVAL (self_id 0, no snap_dir),
 * CAIRN_ENOMEM. */
int transport_open(uv_loop_t *loop, const struct transport_config *config,
                   const struct transport_cbs *cbs, void *arg,
                   struct transport **out);

typedef void (*transport_closed_cb)(void *arg);
/* Closes every connection, listener and timer, reports every snapshot still
 * being sent as CAIRN_ECANCELED, removes half-received snapshot files, and
 * calls cb (may be NULL) from the loop once all is released; the transport
 * must not be used after this call. No other callback is called after
 * this returns. */
void transport_close(struct transport *t, void *arg, transport_closed_cb cb);

/* Listens on a peer URL (http, unix; https, unixs with config->tls) and
 * serves peers that dial in. Up to 4 listeners. CAIRN_EINVAL,
 * CAIRN_EUNSUPPORTED, CAIRN_EBUSY, CAIRN_EIO, CAIRN_ENOMEM, CAIRN_EFULL
 * (too many listeners), with the reason in msg (may be NULL). */
int transport_listen(struct transport *t, const char *url,
                     struct cairn_errmsg *msg);
/* The TCP port of the i-th listener (the OS's pick for port 0), 0 for unix
 * listeners or no such listener. */
uint16_t transport_listen_port(const struct transport *t, size_t i);
/* Serves a connection the host accepted (not yet started) as an inbound
 * peer connection. The transport owns it from now on. */
void transport_adopt(struct transport *t, struct net_conn *conn);

/* Adds a peer with its peer URLs (etcd's member peerURLs; the first one
 * that connects is used, the next one tried after a failure) and starts
 * dialling it. Copies urls. A previously removed id may be added again.
 * CAIRN_EEXISTS (already a peer), CAIRN_EINVAL (id 0 or self, no URL, an
 * unparsable URL, with the reason in msg), CAIRN_EFULL (TRANSPORT_PEERS_MAX
 * peers), CAIRN_ENOMEM. */
int transport_add_peer(struct transport *t, raft_id id, const char *const *urls,
                       size_t n_urls, struct cairn_errmsg *msg);
/* Replaces a peer's URLs; its connection is closed (messages still queued
 * are dropped, as on a connection loss) and dialled again at once with the
 * new ones. CAIRN_ENOTFOUND, and the errors of add. */
int transport_update_peer(struct transport *t, raft_id id,
                          const char *const *urls, size_t n_urls,
                          struct cairn_errmsg *msg);
/* Removes a peer: its queue is dropped, its connections both ways are
 * closed, a snapshot being sent to it is reported CAIRN_ECANCELED, and its
 * later attempts to connect are refused as coming from a removed member.
 * CAIRN_ENOTFOUND. */
int transport_remove_peer(struct transport *t, raft_id id);
/* Refuses id from now on as a removed member (the host's store lists it
 * removed: at start, after a snapshot restore, as removals apply); a peer
 * of that id is removed as by transport_remove_peer. Idempotent. The list
 * keeps the last TP_REMOVED_MAX (256) ids marked. */
void transport_mark_removed(struct transport *t, raft_id id);

/* Queues m for m->to (a peer) and returns. m is encoded at once (borrowed
 * for the call). Returns 0 when queued; CAIRN_ENOTFOUND (not a peer; the
 * message is dropped without report); CAIRN_EFULL (queue bound reached, or
 * the peer is in backoff: dropped and reported unreachable); CAIRN_ETOOBIG
 * (larger than frame_bytes_max; dropped); CAIRN_ENOMEM; CAIRN_EINVAL for a
 * RAFT_MSG_SNAP (use transport_send_snapshot). A queued message may still
 * be lost if the connection breaks: Raft retries. */
int transport_send(struct transport *t, const struct raft_message *m);

/* Streams the snapshot message m (type RAFT_MSG_SNAP, m->snapshot set; its
 * data is a small descriptor sent in the first frame, may be empty) with the
 * body read from body_path (the transport opens it now, so the host may
 * unlink or replace the path once this returns). One snapshot at a time per
 * peer. The outcome comes through snapshot_status. Returns 0; CAIRN_ENOTFOUND
 * (not a peer); CAIRN_EBUSY (a snapshot to that peer is in flight); CAIRN_EIO
 * or CAIRN_ENOTFOUND from opening the body with the reason in msg;
 * CAIRN_ETOOBIG (descriptor over frame_bytes_max); CAIRN_ENOMEM. On an error
 * return snapshot_status is not called. */
int transport_send_snapshot(struct transport *t, const struct raft_message *m,
                            const char *body_path, struct cairn_errmsg *msg);

/* Fills *out for peer id. CAIRN_ENOTFOUND. */
int transport_peer_status(const struct transport *t, raft_id id,
                          struct transport_peer_status *out);
/* Writes up to max peer ids into ids; returns how many peers there are. */
size_t transport_peer_ids(const struct transport *t, raft_id *ids, size_t max);

/* Counters of inbound refusals and failures, transport-wide. */
struct transport_status {
    uint64_t inbound_accepted;  /* handshakes accepted */
    uint64_t inbound_refused;   /* handshakes refused (cluster, receiver,
                                 * unknown or removed sender, version) */
    uint64_t inbound_malformed; /* connections closed on malformed input */
    uint64_t snapshots_received;
    uint64_t snapshots_receive_failed;
    size_t inbound_conns; /* open now */
};
void transport_status(const struct transport *t, struct transport_status *out);

#endif

/* The transport tests' fixture: up to four transports (members) on one libuv
 * loop on 127.0.0.1 with OS-picked ports, a host per member that records
 * what its callbacks heard, raw net connections for hostile peers, and a
 * loop driver that runs until a condition holds (no sleeps). */
#ifndef CAIRN_TESTS_TRANSPORT_FIXTURE_H
#define CAIRN_TESTS_TRANSPORT_FIXTURE_H

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "run_until.h"
#include "transport/transport.h"

#define FX_MEMBERS 4
#define FX_GOT_MAX 8192
struct fx_got {
    raft_id from;
    uint8_t type;
    raft_index index;
    uint64_t ctx;
    size_t n_entries;
    uint32_t data_crc; /* over every entry's data */
};

struct fixture;

/* One member: its transport and what its host heard. */
struct fx_member {
    struct fixture *f;
    raft_id id;
    uint64_t cluster_id;
    struct transport *t;
    bool open;
    bool closing; /* transport_close called, closed callback not yet */
    bool closed;
    char url[300];
    uint16_t port;
    char snap_dir[PATH_MAX];
    struct cairn_log log;
    char name[16];
    /* the host calling back into the transport from its callbacks */
    bool remove_on_unreachable;
    bool close_on_receive;
    /* callbacks heard */
    struct fx_got got[FX_GOT_MAX];
    size_t n_got;
    size_t n_heartbeats;
    uint64_t unreachable[FX_MEMBERS + 8]; /* by peer id */
    uint64_t removed_by[FX_MEMBERS + 8];  /* by peer id */
    size_t n_snaps;
    char snap_path[PATH_MAX];
    raft_index snap_index;
    char snap_desc[32];
    size_t heartbeats_at_snap;
    size_t n_snap_status;
    int snap_status;
    raft_index snap_status_index;
    /* log lines containing these, counted */
    size_t log_refused_in;  /* "refused peer connection" */
    size_t log_refused_out; /* "refused our connection" */
    size_t log_malformed;
};

/* A raw connection, for peers that do not play by the rules. */
struct fx_raw {
    struct net_conn *conn;
    bool connected;
    bool closed;
    struct buf got;
};

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking for long */
    char root[256];
    struct fx_member m[FX_MEMBERS];
    struct transport_config cfg; /* template for members */
};

void fx_init(struct fixture *f);
/* The recording host's callbacks (arg: the struct fx_member). */
const struct transport_cbs *fx_host_cbs(void);
/* Points mb->log at the counting sink (and stderr with CAIRN_TEST_LOG). */
void fx_log_init(struct fx_member *mb);
/* Closes whatever is open, runs the loop dry, checks no handle is left,
 * removes the temporary directories. */
void fx_fini(struct fixture *f);

/* Opens member i (id i + 1) listening on 127.0.0.1:port (0: OS's pick). */
void fx_open(struct fixture *f, int i, uint16_t port);
/* Opens member i listening on url (e.g. a unix socket). */
void fx_open_url(struct fixture *f, int i, const char *url);
void fx_close(struct fixture *f, int i);
/* Adds member j as a peer of member i, at j's URL. */
void fx_peer(struct fixture *f, int i, int j);
/* Connects every open member with every other. */
void fx_mesh(struct fixture *f, int n);

/* Runs the loop until cond(f, arg) holds (a liveness bound, never a speed
 * claim); fails the test after RU_WAIT_MS, naming cond and the caller's
 * line. */
#define fx_run_until(f, cond, arg)                                    \
    LOOP_UNTIL_MS(&(f)->loop, (cond)((f), (arg)), #cond "(" #arg ")", \
                  RU_WAIT_MS)
/* Runs the loop until member i's outgoing connection to j is accepted. */
void fx_wait_connected(struct fixture *f, int i, int j);

/* An append with one entry of `len` bytes derived from seq. */
int fx_send_app(struct fixture *f, int i, int j, uint64_t seq, size_t len);
int fx_send_heartbeat(struct fixture *f, int i, int j);
/* The crc fx_send_app's entry data has for (seq, len). */
uint32_t fx_app_crc(uint64_t seq, size_t len);

struct transport_peer_status fx_status(struct fixture *f, int i, int j);

void fx_raw_connect(struct fixture *f, struct fx_raw *r, uint16_t port);
void fx_raw_write(struct fx_raw *r, const void *p, size_t n);
void fx_raw_close(struct fixture *f, struct fx_raw *r);

/* A listener that accepts and never says a word: a peer that hangs. */
struct fx_mute {
    struct net_listener *l;
    char url[64];
    struct net_conn *conns[8];
    size_t n;
};
void fx_mute_open(struct fixture *f, struct fx_mute *m);
/* Runs until the mute listener has accepted a connection. */
void fx_mute_wait_conn(struct fixture *f, struct fx_mute *m);
/* Closes the listener and every connection it holds. */
void fx_mute_close(struct fixture *f, struct fx_mute *m);

#endif

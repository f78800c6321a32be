/* The Lock, Election and Auth methods of the client library against a real
 * server (run from test_client.c's suite, on etcd and on cairn with the
 * same checks): two lockers exclude each other, Unlock and lease expiry
 * release; Campaign waits for the leader, Proclaim, Leader, Observe and
 * Resign as etcd answers them; Auth while disabled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "client/client.h"

#define BIN(s) ((ProtobufCBinaryData){strlen(s), (uint8_t *)(s)})

void check_lock(const char *url);
void check_election(const char *url);
void check_auth(const char *url);

static struct client *client_on(const char *url)
{
    const char *eps[] = {url};
    struct client_config cfg = {
        .endpoints = eps, .n_endpoints = 1, .timeout_ms = 5000};
    struct client *cl;
    assert_int_equal(client_init(&cl, NULL, &cfg, NULL), 0);
    return cl;
}

static int64_t grant(struct client *cl, int64_t ttl_s)
{
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = ttl_s;
    ProtobufCMessage *resp;
    assert_int_equal(
        client_call_sync(cl, CLIENT_LEASE_GRANT, &g.base, &resp, NULL), 0);
    int64_t id = ((Etcdserverpb__LeaseGrantResponse *)resp)->id;
    client_msg_free(resp);
    return id;
}

/* An asynchronous call on a blocking client, driven by client_poll. */
struct pending {
    bool done;
    int status;
    char msg[128];
    ProtobufCMessage *resp;
};

static void pending_cb(void *arg, const struct client_status *st,
                       ProtobufCMessage *resp)
{
    struct pending *p = arg;
    p->done = true;
    p->status = st->status;
    snprintf(p->msg, sizeof(p->msg), "%s", st->message);
    p->resp = resp;
}

/* Polls cl for up to ms; true when p ended. */
static bool wait_for(struct client *cl, struct pending *p, int ms)
{
    for (int i = 0; i < ms / 50 && !p->done; i++)
        client_poll(cl, 50);
    return p->done;
}

static void lock_async(struct client *cl, const char *name, int64_t lease,
                       struct pending *p)
{
    memset(p, 0, sizeof(*p));
    V3lockpb__LockRequest q = V3LOCKPB__LOCK_REQUEST__INIT;
    q.name = BIN(name);
    q.lease = lease;
    assert_int_equal(client_call(cl, CLIENT_LOCK_LOCK, &q.base, p, pending_cb),
                     0);
}

static void expect_key(struct pending *p, const char *name, int64_t lease)
{
    assert_int_equal(p->status, 0);
    V3lockpb__LockResponse *l = (V3lockpb__LockResponse *)p->resp;
    char want[64];
    snprintf(want, sizeof(want), "%s/%llx", name, (unsigned long long)lease);
    assert_int_equal(l->key.len, strlen(want));
    assert_memory_equal(l->key.data, want, l->key.len);
    assert_non_null(l->header);
    assert_true(l->header->revision > 0);
}

void check_lock(const char *url)
{
    struct client *a = client_on(url), *b = client_on(url);
    int64_t la = grant(a, 30), lb = grant(a, 30);
    struct pending pa, pb;
    lock_async(a, "lk", la, &pa);
    assert_true(wait_for(a, &pa, 5000));
    expect_key(&pa, "lk", la);

    lock_async(b, "lk", lb, &pb);
    assert_false(wait_for(b, &pb, 500)); /* a holds it */

    V3lockpb__UnlockRequest u = V3LOCKPB__UNLOCK_REQUEST__INIT;
    u.key = ((V3lockpb__LockResponse *)pa.resp)->key;
    ProtobufCMessage *resp;
    assert_int_equal(
        client_call_sync(a, CLIENT_LOCK_UNLOCK, &u.base, &resp, NULL), 0);
    client_msg_free(resp);
    assert_true(wait_for(b, &pb, 5000));
    expect_key(&pb, "lk", lb);
    client_msg_free(pa.resp);
    client_msg_free(pb.resp);

    /* a holder whose lease expires (TTL 2 s, never kept alive) releases */
    int64_t short_lease = grant(b, 2), lc = grant(a, 30);
    lock_async(b, "exp", short_lease, &pb);
    assert_true(wait_for(b, &pb, 5000));
    expect_key(&pb, "exp", short_lease);
    lock_async(a, "exp", lc, &pa);
    assert_false(wait_for(a, &pa, 300));
    assert_true(wait_for(a, &pa, 15000));
    expect_key(&pa, "exp", lc);
    client_msg_free(pa.resp);
    client_msg_free(pb.resp);

    /* Unlock of "" meets the KV check */
    u.key = (ProtobufCBinaryData){0, NULL};
    struct client_status st;
    assert_int_equal(
        client_call_sync(a, CLIENT_LOCK_UNLOCK, &u.base, &resp, &st),
        CAIRN_EEMPTYKEY);
    client_close(a);
    client_close(b);
}

/* ---- Election ---- */

static void campaign_async(struct client *cl, const char *name, int64_t lease,
                           const char *value, struct pending *p)
{
    memset(p, 0, sizeof(*p));
    V3electionpb__CampaignRequest q = V3ELECTIONPB__CAMPAIGN_REQUEST__INIT;
    q.name = BIN(name);
    q.lease = lease;
    q.value = BIN(value);
    assert_int_equal(
        client_call(cl, CLIENT_ELECTION_CAMPAIGN, &q.base, p, pending_cb), 0);
}

/* Leader(name): its value into v, or the error (status, text in st). */
static int leader_of(struct client *cl, const char *name, char *v, size_t cap,
                     struct client_status *st)
{
    V3electionpb__LeaderRequest q = V3ELECTIONPB__LEADER_REQUEST__INIT;
    q.name = BIN(name);
    ProtobufCMessage *resp;
    int rv = client_call_sync(cl, CLIENT_ELECTION_LEADER, &q.base, &resp, st);
    v[0] = 0;
    if (rv != 0)
        return rv;
    V3electionpb__LeaderResponse *l = (V3electionpb__LeaderResponse *)resp;
    assert_non_null(l->kv);
    assert_true(l->kv->value.len < cap);
    memcpy(v, l->kv->value.data, l->kv->value.len);
    v[l->kv->value.len] = 0;
    client_msg_free(resp);
    return 0;
}

struct observed {
    int n;
    char last[64];
    bool done;
};

static void observe_msg(void *arg, struct client_stream *s,
                        const ProtobufCMessage *m)
{
    (void)s;
    struct observed *o = arg;
    const V3electionpb__LeaderResponse *l =
        (const V3electionpb__LeaderResponse *)m;
    o->n++;
    size_t n = l->kv != NULL ? l->kv->value.len : 0;
    if (n >= sizeof(o->last))
        n = sizeof(o->last) - 1;
    if (n > 0)
        memcpy(o->last, l->kv->value.data, n);
    o->last[n] = 0;
}

static void observe_done(void *arg, struct client_stream *s,
                         const struct client_status *st)
{
    (void)s;
    (void)st;
    ((struct observed *)arg)->done = true;
}

static const struct client_stream_cbs observe_cbs = {observe_msg, observe_done};

static void wait_observed(struct client *cl, struct observed *o, int n)
{
    for (int i = 0; i < 100 && o->n < n; i++)
        client_poll(cl, 50);
    assert_int_equal(o->n, n);
}

static int leader_call(struct client *cl, enum client_method m,
                       V3electionpb__LeaderKey *k, const char *value,
                       struct client_status *st)
{
    ProtobufCMessage *resp = NULL;
    int rv;
    if (m == CLIENT_ELECTION_PROCLAIM) {
        V3electionpb__ProclaimRequest q = V3ELECTIONPB__PROCLAIM_REQUEST__INIT;
        q.leader = k;
        q.value = BIN(value);
        rv = client_call_sync(cl, m, &q.base, &resp, st);
    } else {
        V3electionpb__ResignRequest q = V3ELECTIONPB__RESIGN_REQUEST__INIT;
        q.leader = k;
        rv = client_call_sync(cl, m, &q.base, &resp, st);
    }
    client_msg_free(resp);
    return rv;
}

void check_election(const char *url)
{
    struct client *a = client_on(url), *b = client_on(url);
    struct client_status st;
    char v[64];
    assert_int_equal(leader_of(a, "el", v, sizeof(v), &st), CAIRN_ERPCSTATUS);
    assert_int_equal(st.grpc_code, 2); /* UNKNOWN: a plain Go error */
    assert_string_equal(st.message, "election: no leader");

    int64_t la = grant(a, 30), lb = grant(a, 30);
    struct pending pa, pb;
    campaign_async(a, "el", la, "one", &pa);
    assert_true(wait_for(a, &pa, 5000));
    assert_int_equal(pa.status, 0);
    V3electionpb__CampaignResponse *ca =
        (V3electionpb__CampaignResponse *)pa.resp;
    assert_non_null(ca->leader);
    assert_int_equal(ca->leader->lease, la);
    assert_int_equal(ca->leader->rev, ca->header->revision);
    assert_int_equal(ca->leader->name.len, 2);

    struct observed o = {0};
    struct client_stream *s;
    assert_int_equal(
        client_stream_open(b, CLIENT_ELECTION_OBSERVE, &observe_cbs, &o, &s),
        0);
    V3electionpb__LeaderRequest lq = V3ELECTIONPB__LEADER_REQUEST__INIT;
    lq.name = BIN("el");
    assert_int_equal(client_stream_send(s, &lq.base), 0);
    client_stream_close_send(s);
    wait_observed(b, &o, 1);
    assert_string_equal(o.last, "one");

    campaign_async(b, "el", lb, "two", &pb);
    assert_false(wait_for(b, &pb, 500));

    assert_int_equal(
        leader_call(a, CLIENT_ELECTION_PROCLAIM, ca->leader, "uno", &st), 0);
    wait_observed(b, &o, 2);
    assert_string_equal(o.last, "uno");
    assert_int_equal(leader_of(a, "el", v, sizeof(v), &st), 0);
    assert_string_equal(v, "uno");

    V3electionpb__LeaderKey wrong = *ca->leader;
    wrong.rev += 1000;
    assert_int_equal(leader_call(a, CLIENT_ELECTION_PROCLAIM, &wrong, "x", &st),
                     CAIRN_ERPCSTATUS);
    assert_int_equal(st.grpc_code, 2);
    assert_string_equal(st.message, "election: not leader");
    assert_int_equal(leader_call(a, CLIENT_ELECTION_PROCLAIM, NULL, "x", &st),
                     CAIRN_ERPCSTATUS);
    assert_string_equal(st.message, "\"leader\" field must be provided");

    assert_int_equal(
        leader_call(a, CLIENT_ELECTION_RESIGN, ca->leader, NULL, &st), 0);
    assert_true(wait_for(b, &pb, 5000));
    assert_int_equal(pb.status, 0);
    wait_observed(b, &o, 3);
    assert_string_equal(o.last, "two");
    assert_int_equal(leader_of(a, "el", v, sizeof(v), &st), 0);
    assert_string_equal(v, "two");

    client_stream_cancel(s);
    for (int i = 0; i < 100 && !o.done; i++)
        client_poll(b, 50);
    assert_true(o.done);
    client_msg_free(pa.resp);
    client_msg_free(pb.resp);
    client_close(a);
    client_close(b);
}

/* Auth while it is disabled and no user exists (as etcd answers). */
void check_auth(const char *url)
{
    struct client *cl = client_on(url);
    struct client_status st;
    assert_int_equal(client_authenticate_sync(cl, "root", "pw"),
                     CAIRN_ERPCSTATUS);
    Etcdserverpb__AuthUserListRequest ul =
        ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
    ProtobufCMessage *resp;
    assert_int_equal(
        client_call_sync(cl, CLIENT_AUTH_USER_LIST, &ul.base, &resp, &st), 0);
    assert_int_equal(((Etcdserverpb__AuthUserListResponse *)resp)->n_users, 0);
    client_msg_free(resp);
    Etcdserverpb__AuthEnableRequest en =
        ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
    assert_int_equal(
        client_call_sync(cl, CLIENT_AUTH_ENABLE, &en.base, &resp, &st),
        CAIRN_ERPCSTATUS);
    assert_string_equal(st.message, "etcdserver: root user does not exist");
    /* a token longer than etcd's would be is refused here */
    char big[CLIENT_TOKEN_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(client_token_set(cl, big), CAIRN_EINVAL);
    assert_int_equal(client_token_set(cl, NULL), 0);
    client_close(cl);
}

/* --experimental-initial-corrupt-check: this member's HashKV compared with
 * its peers' before it starts, as etcd 3.4's CheckInitialHashKV
 * (etcdserver/corrupt.go); etcd asks the peer URLs, cairn the peers'
 * client URLs (its peer port speaks only the raft transport). */
#include "cmd/corrupt_check.h"

#include <stdio.h>

#include "client/client.h"

/* Asks one peer; 0 with *resp set, or the call's error. */
static int ask_peer(const struct node_member *p, int64_t rev,
                    uint64_t timeout_ms, Etcdserverpb__HashKVResponse **resp,
                    char *why, size_t why_size)
{
    const char *eps[NODE_MEMBER_URLS_MAX];
    for (uint32_t i = 0; i < p->n_client_urls; i++)
        eps[i] = p->client_urls[i];
    struct client_config cc = {.endpoints = eps,
                               .n_endpoints = p->n_client_urls,
                               .timeout_ms = (int64_t)timeout_ms};
    struct client *cl = NULL;
    struct cairn_errmsg m = {{0}};
    int rv = client_init(&cl, NULL, &cc, &m);
    if (rv != 0) {
        snprintf(why, why_size, "%s", m.text);
        return rv;
    }
    Etcdserverpb__HashKVRequest req = ETCDSERVERPB__HASH_KVREQUEST__INIT;
    req.revision = rev;
    ProtobufCMessage *out = NULL;
    struct client_status st = {0};
    rv = client_call_sync(cl, CLIENT_MAINT_HASH_KV, &req.base, &out, &st);
    if (rv != 0)
        snprintf(why, why_size, "%s",
                 st.message && st.message[0] ? st.message : cairn_strerror(rv));
    client_close(cl);
    *resp = (Etcdserverpb__HashKVResponse *)out;
    return rv;
}

int cairn_corrupt_check(void *arg, const struct server_hash_check *c,
                        struct cairn_errmsg *msg)
{
    struct cairn_log *log = arg;
    unsigned long long id = (unsigned long long)c->member_id;
    cairn_infof(log, "main",
                "%016llx starting initial corruption check with timeout "
                "%llu ms (revision %lld, compact revision %lld, hash %u)",
                id, (unsigned long long)c->timeout_ms, (long long)c->revision,
                (long long)c->compact_revision, c->hash);
    size_t mismatch = 0;
    for (size_t i = 0; i < c->n_peers; i++) {
        const struct node_member *p = &c->peers[i];
        unsigned long long pid = (unsigned long long)p->id;
        if (p->n_client_urls == 0) {
            cairn_warnf(log, "main",
                        "%016llx cannot check the hash of peer %016llx: it "
                        "never published client URLs",
                        id, pid);
            continue;
        }
        Etcdserverpb__HashKVResponse *r = NULL;
        char why[sizeof(struct cairn_errmsg)] = "";
        int rv = ask_peer(p, c->revision, c->timeout_ms, &r, why, sizeof why);
        if (rv == CAIRN_EFUTUREREV) {
            cairn_warnf(log, "main",
                        "%016llx cannot check the hash of peer %016llx at "
                        "revision %lld: peer is lagging behind (%s)",
                        id, pid, (long long)c->revision, why);
        } else if (rv == CAIRN_EREVCOMPACTED) {
            cairn_warnf(log, "main",
                        "%016llx cannot check the hash of peer %016llx at "
                        "revision %lld: local node is lagging behind (%s)",
                        id, pid, (long long)c->revision, why);
        } else if (rv != 0) {
            cairn_warnf(log, "main",
                        "%016llx hash-kv error \"%s\" on peer %016llx (%s) "
                        "with revision %lld",
                        id, why, pid, p->client_urls[0],
                        (long long)c->revision);
        } else if (r->hash != c->hash &&
                   r->compact_revision == c->compact_revision) {
            cairn_errorf(log, "main",
                         "%016llx's hash %u != %016llx's hash %u (revision "
                         "%lld, peer revision %lld, compact revision %lld)",
                         id, c->hash, pid, r->hash, (long long)c->revision,
                         r->header ? (long long)r->header->revision : 0LL,
                         (long long)c->compact_revision);
            mismatch++;
        } else if (r->hash != c->hash) {
            cairn_warnf(log, "main",
                        "%016llx cannot check hash of peer %016llx: peer "
                        "has a different compact revision %lld (revision "
                        "%lld)",
                        id, pid, (long long)r->compact_revision,
                        (long long)c->revision);
        }
        client_msg_free(r ? &r->base : NULL);
    }
    if (mismatch > 0)
        return cairn_errmsg_code(msg, CAIRN_ECORRUPT,
                                 "%016llx found data inconsistency with peers",
                                 id);
    cairn_infof(log, "main",
                "%016llx succeeded on initial corruption checking: no "
                "corruption",
                id);
    return 0;
}

/* cluster: etcd's Cluster service (MemberAdd, MemberRemove, MemberUpdate,
 * MemberList, MemberPromote; etcdserver/api/v3rpc/member.go): peer URLs
 * checked as etcd's types.NewURLs does, every answer carrying the member
 * list after the change. */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

/* etcd refuses an empty list and URLs that do not parse; ours must also
 * fit node_member. */
static bool urls_from_pb(char **in, size_t n, struct node_member *m)
{
    if (n == 0 || n > NODE_MEMBER_URLS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        struct net_url u;
        struct cairn_errmsg em;
        size_t len = strlen(in[i]);
        if (len >= NODE_URL_MAX || net_url_parse(in[i], &u, &em) != 0)
            return false;
        memcpy(m->peer_urls[i], in[i], len + 1);
    }
    m->n_peer_urls = (uint32_t)n;
    return true;
}

static Etcdserverpb__Member *member_pb(struct api_req *r,
                                       const struct node_member *m)
{
    Etcdserverpb__Member *p = api_arena_alloc(&r->arena, sizeof(*p));
    char **peer =
        api_arena_alloc(&r->arena, (m->n_peer_urls + 1) * sizeof(char *));
    char **client =
        api_arena_alloc(&r->arena, (m->n_client_urls + 1) * sizeof(char *));
    if (p == NULL || peer == NULL || client == NULL)
        return NULL;
    etcdserverpb__member__init(p);
    p->id = m->id;
    p->name = (char *)m->name;
    for (uint32_t i = 0; i < m->n_peer_urls; i++)
        peer[i] = (char *)m->peer_urls[i];
    for (uint32_t i = 0; i < m->n_client_urls; i++)
        client[i] = (char *)m->client_urls[i];
    p->n_peerurls = m->n_peer_urls;
    p->peerurls = m->n_peer_urls > 0 ? peer : NULL;
    p->n_clienturls = m->n_client_urls;
    p->clienturls = m->n_client_urls > 0 ? client : NULL;
    p->islearner = m->is_learner;
    return p;
}

static int member_cmp(const void *a, const void *b)
{
    uint64_t x = (*(Etcdserverpb__Member *const *)a)->id;
    uint64_t y = (*(Etcdserverpb__Member *const *)b)->id;
    return (x > y) - (x < y);
}

/* The list after the change, in r's arena (pointing into res), sorted by
 * id as etcd's cluster.Members() is. */
static int members_pb(struct api_req *r, const struct node_result *res,
                      Etcdserverpb__Member ***out, size_t *n_out)
{
    size_t n = res->u.members.n;
    *out = NULL;
    *n_out = n;
    if (n == 0)
        return 0;
    Etcdserverpb__Member **v = api_arena_alloc(&r->arena, n * sizeof(*v));
    if (v == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = member_pb(r, &res->u.members.list[i]);
        if (v[i] == NULL)
            return CAIRN_ENOMEM;
    }
    qsort(v, n, sizeof(*v), member_cmp);
    *out = v;
    return 0;
}

static void add_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__MemberAddResponse out;
    etcdserverpb__member_add_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (res->u.members.member != NULL)
        out.member = member_pb(r, res->u.members.member);
    if (out.header == NULL ||
        (res->u.members.member != NULL && out.member == NULL) ||
        members_pb(r, res, &out.members, &out.n_members) != 0) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    api__req_reply(r, &out.base);
}

API__HANDLER(api__member_add)
{
    Etcdserverpb__MemberAddRequest *in;
    UNPACK(r, etcdserverpb__member_add_request, data, len, in);
    struct node_member *m = api_arena_alloc(&r->arena, sizeof(*m));
    if (m == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
    } else if (!urls_from_pb(in->peerurls, in->n_peerurls, m)) {
        api__req_fail_status(r, api__status_etcd(API__E_MEMBER_BAD_URLS));
    } else {
        m->is_learner = in->islearner;
        r->pending = true;
        api__req_submitted(
            r, r->api->be.member_add(r->api->be.arg, m, r, add_done));
    }
    etcdserverpb__member_add_request__free_unpacked(in, NULL);
}

/* Remove, update, list and promote answer a header and the list; their
 * wire messages have the same fields (1: header, 2: members), so the bytes
 * of a MemberListResponse are each of theirs. */
static void list_reply(struct api_req *r, const struct node_result *res)
{
    struct api_header h = api_header_of(res);
    Etcdserverpb__MemberListResponse out;
    etcdserverpb__member_list_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL ||
        members_pb(r, res, &out.members, &out.n_members) != 0) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    api__req_reply(r, &out.base);
}

static void members_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (api__req_completed(r, res))
        list_reply(r, res);
}

API__HANDLER(api__member_remove)
{
    Etcdserverpb__MemberRemoveRequest *in;
    UNPACK(r, etcdserverpb__member_remove_request, data, len, in);
    uint64_t id = in->id;
    etcdserverpb__member_remove_request__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(
        r, r->api->be.member_remove(r->api->be.arg, id, r, members_done));
}

API__HANDLER(api__member_update)
{
    Etcdserverpb__MemberUpdateRequest *in;
    UNPACK(r, etcdserverpb__member_update_request, data, len, in);
    struct node_member *m = api_arena_alloc(&r->arena, sizeof(*m));
    if (m == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
    } else if (!urls_from_pb(in->peerurls, in->n_peerurls, m)) {
        api__req_fail_status(r, api__status_etcd(API__E_MEMBER_BAD_URLS));
    } else {
        m->id = in->id;
        r->pending = true;
        api__req_submitted(
            r, r->api->be.member_update(r->api->be.arg, m, r, members_done));
    }
    etcdserverpb__member_update_request__free_unpacked(in, NULL);
}

API__HANDLER(api__member_list)
{
    if (!api__unpacks(r, &etcdserverpb__member_list_request__descriptor, data,
                      len))
        return;
    r->pending = true;
    api__req_submitted(r,
                       r->api->be.member_list(r->api->be.arg, r, members_done));
}

API__HANDLER(api__member_promote)
{
    Etcdserverpb__MemberPromoteRequest *in;
    UNPACK(r, etcdserverpb__member_promote_request, data, len, in);
    uint64_t id = in->id;
    etcdserverpb__member_promote_request__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(
        r, r->api->be.member_promote(r->api->be.arg, id, r, members_done));
}

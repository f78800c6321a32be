/* auth: etcd's Auth service over the member's user and role store
 * (auth/auth.h through the backend's auth request), answered as etcd 3.4
 * answers while authentication is disabled. Enabling it is refused once
 * root is ready: cairn does not enforce authentication (docs/api.md). */
#include <string.h>

#include "api/api_int.h"

/* The response message of each op (each starts with its header). */
static const ProtobufCMessageDescriptor *const resp_desc[AUTH_OP_MAX + 1] = {
    [AUTH_OP_USER_ADD] = &etcdserverpb__auth_user_add_response__descriptor,
    [AUTH_OP_USER_GET] = &etcdserverpb__auth_user_get_response__descriptor,
    [AUTH_OP_USER_LIST] = &etcdserverpb__auth_user_list_response__descriptor,
    [AUTH_OP_USER_DELETE] =
        &etcdserverpb__auth_user_delete_response__descriptor,
    [AUTH_OP_USER_CHANGE_PASSWORD] =
        &etcdserverpb__auth_user_change_password_response__descriptor,
    [AUTH_OP_USER_GRANT_ROLE] =
        &etcdserverpb__auth_user_grant_role_response__descriptor,
    [AUTH_OP_USER_REVOKE_ROLE] =
        &etcdserverpb__auth_user_revoke_role_response__descriptor,
    [AUTH_OP_ROLE_ADD] = &etcdserverpb__auth_role_add_response__descriptor,
    [AUTH_OP_ROLE_GET] = &etcdserverpb__auth_role_get_response__descriptor,
    [AUTH_OP_ROLE_LIST] = &etcdserverpb__auth_role_list_response__descriptor,
    [AUTH_OP_ROLE_DELETE] =
        &etcdserverpb__auth_role_delete_response__descriptor,
    [AUTH_OP_ROLE_GRANT_PERMISSION] =
        &etcdserverpb__auth_role_grant_permission_response__descriptor,
    [AUTH_OP_ROLE_REVOKE_PERMISSION] =
        &etcdserverpb__auth_role_revoke_permission_response__descriptor,
    [AUTH_OP_ENABLE] = &etcdserverpb__auth_enable_response__descriptor,
    [AUTH_OP_DISABLE] = &etcdserverpb__auth_disable_response__descriptor,
};

static void set_str(const char *s, const uint8_t **p, size_t *len)
{
    *p = (const uint8_t *)s;
    *len = s ? strlen(s) : 0;
}

/* The store's request from the wire message m of op; its pointers borrow
 * from m. */
static void req_from_pb(uint8_t op, const ProtobufCMessage *m,
                        struct auth_req *q)
{
    memset(q, 0, sizeof(*q));
    q->op = op;
    switch (op) {
    case AUTH_OP_USER_ADD: {
        const Etcdserverpb__AuthUserAddRequest *in = (const void *)m;
        set_str(in->name, &q->name, &q->name_len);
        set_str(in->password, &q->password, &q->password_len);
        q->no_password = in->options != NULL && in->options->no_password;
        break;
    }
    case AUTH_OP_USER_GET:
        set_str(((const Etcdserverpb__AuthUserGetRequest *)m)->name, &q->name,
                &q->name_len);
        break;
    case AUTH_OP_USER_DELETE:
        set_str(((const Etcdserverpb__AuthUserDeleteRequest *)m)->name,
                &q->name, &q->name_len);
        break;
    case AUTH_OP_USER_CHANGE_PASSWORD: {
        const Etcdserverpb__AuthUserChangePasswordRequest *in = (const void *)m;
        set_str(in->name, &q->name, &q->name_len);
        set_str(in->password, &q->password, &q->password_len);
        break;
    }
    case AUTH_OP_USER_GRANT_ROLE: {
        const Etcdserverpb__AuthUserGrantRoleRequest *in = (const void *)m;
        set_str(in->user, &q->name, &q->name_len);
        set_str(in->role, &q->role, &q->role_len);
        break;
    }
    case AUTH_OP_USER_REVOKE_ROLE: {
        const Etcdserverpb__AuthUserRevokeRoleRequest *in = (const void *)m;
        set_str(in->name, &q->name, &q->name_len);
        set_str(in->role, &q->role, &q->role_len);
        break;
    }
    case AUTH_OP_ROLE_ADD:
        set_str(((const Etcdserverpb__AuthRoleAddRequest *)m)->name, &q->name,
                &q->name_len);
        break;
    case AUTH_OP_ROLE_GET:
        set_str(((const Etcdserverpb__AuthRoleGetRequest *)m)->role, &q->name,
                &q->name_len);
        break;
    case AUTH_OP_ROLE_DELETE:
        set_str(((const Etcdserverpb__AuthRoleDeleteRequest *)m)->role,
                &q->name, &q->name_len);
        break;
    case AUTH_OP_ROLE_GRANT_PERMISSION: {
        const Etcdserverpb__AuthRoleGrantPermissionRequest *in =
            (const void *)m;
        set_str(in->name, &q->name, &q->name_len);
        /* no permission at all: an empty READ one (etcd would crash) */
        if (in->perm != NULL) {
            /* a type beyond READWRITE fails auth_req_check */
            q->perm.type = in->perm->permtype < 0 || in->perm->permtype > 255
                               ? 255
                               : (uint8_t)in->perm->permtype;
            q->perm.key = in->perm->key.data;
            q->perm.key_len = in->perm->key.len;
            q->perm.end = in->perm->range_end.data;
            q->perm.end_len = in->perm->range_end.len;
        }
        break;
    }
    case AUTH_OP_ROLE_REVOKE_PERMISSION: {
        const Etcdserverpb__AuthRoleRevokePermissionRequest *in =
            (const void *)m;
        set_str(in->role, &q->name, &q->name_len);
        q->perm.key = in->key.data;
        q->perm.key_len = in->key.len;
        q->perm.end = in->range_end.data;
        q->perm.end_len = in->range_end.len;
        break;
    }
    default: /* lists, enable, disable: no fields */
        break;
    }
}

/* The lists and the permissions of a result, set on the response. */
static int fill_body(struct api_req *r, uint8_t op, ProtobufCMessage *m,
                     const struct auth_result *res)
{
    char **names = (char **)res->names; /* packed only, never written */
    switch (op) {
    case AUTH_OP_USER_GET: {
        Etcdserverpb__AuthUserGetResponse *out = (void *)m;
        out->n_roles = res->n_names;
        out->roles = names;
        return 0;
    }
    case AUTH_OP_USER_LIST: {
        Etcdserverpb__AuthUserListResponse *out = (void *)m;
        out->n_users = res->n_names;
        out->users = names;
        return 0;
    }
    case AUTH_OP_ROLE_LIST: {
        Etcdserverpb__AuthRoleListResponse *out = (void *)m;
        out->n_roles = res->n_names;
        out->roles = names;
        return 0;
    }
    case AUTH_OP_ROLE_GET: {
        Etcdserverpb__AuthRoleGetResponse *out = (void *)m;
        if (res->n_perms == 0)
            return 0;
        Authpb__Permission *ps =
            api_arena_alloc(&r->arena, res->n_perms * sizeof(*ps));
        Authpb__Permission **pp =
            api_arena_alloc(&r->arena, res->n_perms * sizeof(*pp));
        if (ps == NULL || pp == NULL)
            return CAIRN_ENOMEM;
        for (size_t i = 0; i < res->n_perms; i++) {
            const struct auth_perm *p = &res->perms[i];
            authpb__permission__init(&ps[i]);
            ps[i].permtype = (Authpb__Permission__Type)p->type;
            ps[i].key = (ProtobufCBinaryData){p->key_len, (uint8_t *)p->key};
            ps[i].range_end =
                (ProtobufCBinaryData){p->end_len, (uint8_t *)p->end};
            pp[i] = &ps[i];
        }
        out->n_perm = res->n_perms;
        out->perm = pp;
        return 0;
    }
    default:
        return 0;
    }
}

static void auth_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    uint8_t op = r->auth_op;
    if (op == AUTH_OP_ENABLE && res->err == CAIRN_EUNIMPLEMENTED) {
        /* root is ready: etcd would enable; cairn cannot enforce it */
        r->pending = false;
        if (r->call_done)
            api__req_free(r);
        else
            api__req_fail_status(r, api__status_etcd(API__E_AUTH_UNSUPPORTED));
        return;
    }
    if (!api__req_completed(r, res))
        return;
    const ProtobufCMessageDescriptor *d = resp_desc[op];
    ProtobufCMessage *m = api_arena_alloc(&r->arena, d->sizeof_message);
    const ProtobufCFieldDescriptor *hf =
        protobuf_c_message_descriptor_get_field_by_name(d, "header");
    struct api_header h = api_header_of(res);
    Etcdserverpb__ResponseHeader *ph = api__header_pb(r, &h);
    if (m == NULL || hf == NULL || ph == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    protobuf_c_message_init(d, m);
    *(Etcdserverpb__ResponseHeader **)((char *)m + hf->offset) = ph;
    int rc = fill_body(r, op, m, &res->u.auth);
    if (rc != 0)
        api__req_fail(r, rc);
    else
        api__req_reply(r, m);
}

static void auth_call(struct api_req *r, uint8_t op,
                      const ProtobufCMessageDescriptor *desc,
                      const uint8_t *data, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (m == NULL) {
        api__req_fail(r, CAIRN_EMALFORMED);
        return;
    }
    struct auth_req q;
    req_from_pb(op, m, &q);
    r->auth_op = op;
    r->pending = true;
    /* the backend copies what it keeps (the server hashes a copy) */
    int rv = r->api->be.auth(r->api->be.arg, &q, r, auth_done);
    protobuf_c_message_free_unpacked(m, NULL);
    api__req_submitted(r, rv);
}

#define AUTH_METHOD(fname, op, desc)                               \
    void fname(struct api_req *r, const uint8_t *data, size_t len) \
    {                                                              \
        auth_call(r, op, &desc, data, len);                        \
    }

AUTH_METHOD(api__auth_enable, AUTH_OP_ENABLE,
            etcdserverpb__auth_enable_request__descriptor)
AUTH_METHOD(api__auth_disable, AUTH_OP_DISABLE,
            etcdserverpb__auth_disable_request__descriptor)
AUTH_METHOD(api__auth_user_add, AUTH_OP_USER_ADD,
            etcdserverpb__auth_user_add_request__descriptor)
AUTH_METHOD(api__auth_user_get, AUTH_OP_USER_GET,
            etcdserverpb__auth_user_get_request__descriptor)
AUTH_METHOD(api__auth_user_list, AUTH_OP_USER_LIST,
            etcdserverpb__auth_user_list_request__descriptor)
AUTH_METHOD(api__auth_user_delete, AUTH_OP_USER_DELETE,
            etcdserverpb__auth_user_delete_request__descriptor)
AUTH_METHOD(api__auth_user_change_password, AUTH_OP_USER_CHANGE_PASSWORD,
            etcdserverpb__auth_user_change_password_request__descriptor)
AUTH_METHOD(api__auth_user_grant_role, AUTH_OP_USER_GRANT_ROLE,
            etcdserverpb__auth_user_grant_role_request__descriptor)
AUTH_METHOD(api__auth_user_revoke_role, AUTH_OP_USER_REVOKE_ROLE,
            etcdserverpb__auth_user_revoke_role_request__descriptor)
AUTH_METHOD(api__auth_role_add, AUTH_OP_ROLE_ADD,
            etcdserverpb__auth_role_add_request__descriptor)
AUTH_METHOD(api__auth_role_get, AUTH_OP_ROLE_GET,
            etcdserverpb__auth_role_get_request__descriptor)
AUTH_METHOD(api__auth_role_list, AUTH_OP_ROLE_LIST,
            etcdserverpb__auth_role_list_request__descriptor)
AUTH_METHOD(api__auth_role_delete, AUTH_OP_ROLE_DELETE,
            etcdserverpb__auth_role_delete_request__descriptor)
AUTH_METHOD(api__auth_role_grant_permission, AUTH_OP_ROLE_GRANT_PERMISSION,
            etcdserverpb__auth_role_grant_permission_request__descriptor)
AUTH_METHOD(api__auth_role_revoke_permission, AUTH_OP_ROLE_REVOKE_PERMISSION,
            etcdserverpb__auth_role_revoke_permission_request__descriptor)

/* Authentication is never enabled, so there is nobody to authenticate
 * (etcd's CheckPassword answers this before looking at the user). */
void api__auth_authenticate(struct api_req *r, const uint8_t *data, size_t len)
{
    if (api__unpacks(r, &etcdserverpb__authenticate_request__descriptor, data,
                     len))
        api__req_fail(r, CAIRN_EAUTHNOTENABLED);
}

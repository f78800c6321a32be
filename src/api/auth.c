/* auth: etcd's Auth service as etcd answers it while auth is disabled and
 * no user or role exists (auth/store.go); cairn has no auth store yet. */
#include "api/api_int.h"

/* ---- Auth, while disabled (auth/store.go with an empty store) ---- */

void api__auth_enable(struct api_req *r, const uint8_t *data, size_t len)
{
    /* enabling needs a root user, and the store has none */
    if (api__unpacks(r, &etcdserverpb__auth_enable_request__descriptor, data,
                     len))
        api__req_fail_status(r, api__status_etcd(API__E_ROOT_USER_NOT_EXIST));
}

static void auth_disable_reply(struct api_req *r, const struct api_header *h)
{
    Etcdserverpb__AuthDisableResponse out;
    etcdserverpb__auth_disable_response__init(&out);
    out.header = api__header_pb(r, h);
    if (out.header == NULL)
        api__req_fail(r, CAIRN_ENOMEM);
    else
        api__req_reply(r, &out.base);
}

void api__auth_disable(struct api_req *r, const uint8_t *data, size_t len)
{
    if (api__unpacks(r, &etcdserverpb__auth_disable_request__descriptor, data,
                     len))
        api__req_with_header(r, auth_disable_reply);
}

void api__auth_authenticate(struct api_req *r, const uint8_t *data, size_t len)
{
    if (api__unpacks(r, &etcdserverpb__authenticate_request__descriptor, data,
                     len))
        api__req_fail_status(r, api__status_etcd(API__E_AUTH_NOT_ENABLED));
}

static void user_list_reply(struct api_req *r, const struct api_header *h)
{
    Etcdserverpb__AuthUserListResponse out;
    etcdserverpb__auth_user_list_response__init(&out);
    out.header = api__header_pb(r, h);
    if (out.header == NULL)
        api__req_fail(r, CAIRN_ENOMEM);
    else
        api__req_reply(r, &out.base);
}

void api__auth_user_list(struct api_req *r, const uint8_t *data, size_t len)
{
    if (api__unpacks(r, &etcdserverpb__auth_user_list_request__descriptor, data,
                     len))
        api__req_with_header(r, user_list_reply);
}

static void role_list_reply(struct api_req *r, const struct api_header *h)
{
    Etcdserverpb__AuthRoleListResponse out;
    etcdserverpb__auth_role_list_response__init(&out);
    out.header = api__header_pb(r, h);
    if (out.header == NULL)
        api__req_fail(r, CAIRN_ENOMEM);
    else
        api__req_reply(r, &out.base);
}

void api__auth_role_list(struct api_req *r, const uint8_t *data, size_t len)
{
    if (api__unpacks(r, &etcdserverpb__auth_role_list_request__descriptor, data,
                     len))
        api__req_with_header(r, role_list_reply);
}

/* Requests naming a user or a role, which an empty store has not. */
static void auth_user_missing(struct api_req *r,
                              const ProtobufCMessageDescriptor *desc,
                              const uint8_t *data, size_t len)
{
    if (api__unpacks(r, desc, data, len))
        api__req_fail_status(r, api__status_etcd(API__E_USER_NOT_FOUND));
}
static void auth_role_missing(struct api_req *r,
                              const ProtobufCMessageDescriptor *desc,
                              const uint8_t *data, size_t len)
{
    if (api__unpacks(r, desc, data, len))
        api__req_fail_status(r, api__status_etcd(API__E_ROLE_NOT_FOUND));
}

#define USER_MISSING(fname, desc)                                  \
    void fname(struct api_req *r, const uint8_t *data, size_t len) \
    {                                                              \
        auth_user_missing(r, &desc, data, len);                    \
    }
#define ROLE_MISSING(fname, desc)                                  \
    void fname(struct api_req *r, const uint8_t *data, size_t len) \
    {                                                              \
        auth_role_missing(r, &desc, data, len);                    \
    }
USER_MISSING(api__auth_user_get,
             etcdserverpb__auth_user_get_request__descriptor)
USER_MISSING(api__auth_user_delete,
             etcdserverpb__auth_user_delete_request__descriptor)
USER_MISSING(api__auth_user_change_password,
             etcdserverpb__auth_user_change_password_request__descriptor)
USER_MISSING(api__auth_user_grant_role,
             etcdserverpb__auth_user_grant_role_request__descriptor)
USER_MISSING(api__auth_user_revoke_role,
             etcdserverpb__auth_user_revoke_role_request__descriptor)
ROLE_MISSING(api__auth_role_delete,
             etcdserverpb__auth_role_delete_request__descriptor)
ROLE_MISSING(api__auth_role_grant_permission,
             etcdserverpb__auth_role_grant_permission_request__descriptor)
ROLE_MISSING(api__auth_role_revoke_permission,
             etcdserverpb__auth_role_revoke_permission_request__descriptor)

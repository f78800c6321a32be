/* Auth service tests over the fake member's real user and role store:
 * every method's answer and header, etcd's error codes and texts, the
 * lists and permissions on the wire, AuthEnable's refusals, and bad input
 * (malformed, too-long names, a refused request). */
#include <string.h>

#include "fake.h"

/* Calls path with msg; checks the status; returns the answer in r. */
static void call(struct fx *f, const char *path, const ProtobufCMessage *msg,
                 int code, const char *text, struct result *r)
{
    fx_unary(f, path, msg, r);
    if (r->code != code)
        print_error("%s: code %d (%s), want %d\n", path, r->code, r->msg, code);
    assert_int_equal(r->code, code);
    if (text != NULL)
        assert_string_equal(r->msg, text);
}

static void call_ok(struct fx *f, const char *path, const ProtobufCMessage *m)
{
    struct result r;
    call(f, path, m, RPC_OK, NULL, &r);
    result_free(&r);
}

static void call_err(struct fx *f, const char *path, const ProtobufCMessage *m,
                     int code, const char *text)
{
    struct result r;
    call(f, path, m, code, text, &r);
    result_free(&r);
}

static void user_add(struct fx *f, const char *name, int code, const char *text)
{
    Etcdserverpb__AuthUserAddRequest q =
        ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
    q.name = (char *)name;
    q.password = (char *)"pw";
    call_err(f, "/etcdserverpb.Auth/UserAdd", &q.base, code, text);
}

static void role_add(struct fx *f, const char *name, int code, const char *text)
{
    Etcdserverpb__AuthRoleAddRequest q =
        ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
    q.name = (char *)name;
    call_err(f, "/etcdserverpb.Auth/RoleAdd", &q.base, code, text);
}

static void grant_role(struct fx *f, const char *user, const char *role,
                       int code, const char *text)
{
    Etcdserverpb__AuthUserGrantRoleRequest q =
        ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
    q.user = (char *)user;
    q.role = (char *)role;
    call_err(f, "/etcdserverpb.Auth/UserGrantRole", &q.base, code, text);
}

static void grant_perm(struct fx *f, const char *role, const char *key,
                       const char *end, Authpb__Permission__Type t, int code,
                       const char *text)
{
    Etcdserverpb__AuthRoleGrantPermissionRequest q =
        ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
    Authpb__Permission p = AUTHPB__PERMISSION__INIT;
    q.name = (char *)role;
    p.permtype = t;
    p.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)key};
    p.range_end = (ProtobufCBinaryData){strlen(end), (uint8_t *)end};
    q.perm = &p;
    call_err(f, "/etcdserverpb.Auth/RoleGrantPermission", &q.base, code, text);
}

static void test_auth_users_roles(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    user_add(&f, "bob", RPC_OK, NULL);
    user_add(&f, "bob", RPC_FAILED_PRECONDITION,
             "etcdserver: user name already exists");
    user_add(&f, "", RPC_INVALID_ARGUMENT, "etcdserver: user name is empty");
    user_add(&f, "alice", RPC_OK, NULL);
    role_add(&f, "", RPC_INVALID_ARGUMENT, "etcdserver: role name is empty");
    role_add(&f, "r1", RPC_OK, NULL);
    role_add(&f, "r1", RPC_FAILED_PRECONDITION,
             "etcdserver: role name already exists");
    grant_role(&f, "bob", "r2", RPC_FAILED_PRECONDITION,
               "etcdserver: role name not found");
    grant_role(&f, "eve", "r1", RPC_FAILED_PRECONDITION,
               "etcdserver: user name not found");
    grant_role(&f, "bob", "r1", RPC_OK, NULL);
    grant_role(&f, "bob", "root", RPC_OK, NULL);

    Etcdserverpb__AuthUserGetRequest ug =
        ETCDSERVERPB__AUTH_USER_GET_REQUEST__INIT;
    ug.name = (char *)"bob";
    struct result r;
    call(&f, "/etcdserverpb.Auth/UserGet", &ug.base, RPC_OK, NULL, &r);
    Etcdserverpb__AuthUserGetResponse *ugr =
        etcdserverpb__auth_user_get_response__unpack(NULL, r.last.len,
                                                     r.last.data);
    assert_non_null(ugr);
    assert_int_equal(ugr->n_roles, 2);
    assert_string_equal(ugr->roles[0], "r1");
    assert_string_equal(ugr->roles[1], "root");
    assert_int_equal(ugr->header->cluster_id, 0xc1);
    assert_int_equal(ugr->header->member_id, 0xa1);
    assert_int_equal(ugr->header->raft_term, 2);
    assert_int_equal(ugr->header->revision, 1);
    etcdserverpb__auth_user_get_response__free_unpacked(ugr, NULL);
    result_free(&r);

    Etcdserverpb__AuthUserListRequest ul =
        ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
    call(&f, "/etcdserverpb.Auth/UserList", &ul.base, RPC_OK, NULL, &r);
    Etcdserverpb__AuthUserListResponse *ulr =
        etcdserverpb__auth_user_list_response__unpack(NULL, r.last.len,
                                                      r.last.data);
    assert_non_null(ulr);
    assert_int_equal(ulr->n_users, 2);
    assert_string_equal(ulr->users[0], "alice");
    assert_string_equal(ulr->users[1], "bob");
    etcdserverpb__auth_user_list_response__free_unpacked(ulr, NULL);
    result_free(&r);

    Etcdserverpb__AuthRoleListRequest rl =
        ETCDSERVERPB__AUTH_ROLE_LIST_REQUEST__INIT;
    call(&f, "/etcdserverpb.Auth/RoleList", &rl.base, RPC_OK, NULL, &r);
    Etcdserverpb__AuthRoleListResponse *rlr =
        etcdserverpb__auth_role_list_response__unpack(NULL, r.last.len,
                                                      r.last.data);
    assert_non_null(rlr);
    assert_int_equal(rlr->n_roles, 1);
    assert_string_equal(rlr->roles[0], "r1");
    etcdserverpb__auth_role_list_response__free_unpacked(rlr, NULL);
    result_free(&r);

    Etcdserverpb__AuthUserRevokeRoleRequest ur =
        ETCDSERVERPB__AUTH_USER_REVOKE_ROLE_REQUEST__INIT;
    ur.name = (char *)"alice";
    ur.role = (char *)"r1";
    call_err(&f, "/etcdserverpb.Auth/UserRevokeRole", &ur.base,
             RPC_FAILED_PRECONDITION,
             "etcdserver: role is not granted to the user");
    ur.name = (char *)"bob";
    call_ok(&f, "/etcdserverpb.Auth/UserRevokeRole", &ur.base);

    Etcdserverpb__AuthUserChangePasswordRequest cp =
        ETCDSERVERPB__AUTH_USER_CHANGE_PASSWORD_REQUEST__INIT;
    cp.name = (char *)"carol";
    cp.password = (char *)"x";
    call_err(&f, "/etcdserverpb.Auth/UserChangePassword", &cp.base,
             RPC_FAILED_PRECONDITION, "etcdserver: user name not found");
    cp.name = (char *)"bob";
    call_ok(&f, "/etcdserverpb.Auth/UserChangePassword", &cp.base);

    Etcdserverpb__AuthUserDeleteRequest ud =
        ETCDSERVERPB__AUTH_USER_DELETE_REQUEST__INIT;
    ud.name = (char *)"alice";
    call_ok(&f, "/etcdserverpb.Auth/UserDelete", &ud.base);
    call_err(&f, "/etcdserverpb.Auth/UserDelete", &ud.base,
             RPC_FAILED_PRECONDITION, "etcdserver: user name not found");
    Etcdserverpb__AuthRoleDeleteRequest rd =
        ETCDSERVERPB__AUTH_ROLE_DELETE_REQUEST__INIT;
    rd.role = (char *)"r1";
    call_ok(&f, "/etcdserverpb.Auth/RoleDelete", &rd.base);
    call_err(&f, "/etcdserverpb.Auth/RoleDelete", &rd.base,
             RPC_FAILED_PRECONDITION, "etcdserver: role name not found");
    fx_close(&f);
}

static void test_auth_permissions(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    grant_perm(&f, "r", "k", "", AUTHPB__PERMISSION__TYPE__READ,
               RPC_FAILED_PRECONDITION, "etcdserver: role name not found");
    role_add(&f, "r", RPC_OK, NULL);
    grant_perm(&f, "r", "foo", "fop", AUTHPB__PERMISSION__TYPE__READWRITE,
               RPC_OK, NULL);
    grant_perm(&f, "r", "a", "", AUTHPB__PERMISSION__TYPE__WRITE, RPC_OK, NULL);

    Etcdserverpb__AuthRoleGetRequest rg =
        ETCDSERVERPB__AUTH_ROLE_GET_REQUEST__INIT;
    rg.role = (char *)"r";
    struct result r;
    call(&f, "/etcdserverpb.Auth/RoleGet", &rg.base, RPC_OK, NULL, &r);
    Etcdserverpb__AuthRoleGetResponse *g =
        etcdserverpb__auth_role_get_response__unpack(NULL, r.last.len,
                                                     r.last.data);
    assert_non_null(g);
    assert_int_equal(g->n_perm, 2);
    assert_int_equal(g->perm[0]->permtype, AUTHPB__PERMISSION__TYPE__WRITE);
    assert_int_equal(g->perm[0]->key.len, 1);
    assert_memory_equal(g->perm[0]->key.data, "a", 1);
    assert_int_equal(g->perm[0]->range_end.len, 0);
    assert_int_equal(g->perm[1]->permtype, AUTHPB__PERMISSION__TYPE__READWRITE);
    assert_memory_equal(g->perm[1]->key.data, "foo", 3);
    assert_memory_equal(g->perm[1]->range_end.data, "fop", 3);
    assert_non_null(g->header);
    etcdserverpb__auth_role_get_response__free_unpacked(g, NULL);
    result_free(&r);
    rg.role = (char *)"nope";
    call_err(&f, "/etcdserverpb.Auth/RoleGet", &rg.base,
             RPC_FAILED_PRECONDITION, "etcdserver: role name not found");

    Etcdserverpb__AuthRoleRevokePermissionRequest rv =
        ETCDSERVERPB__AUTH_ROLE_REVOKE_PERMISSION_REQUEST__INIT;
    rv.role = (char *)"r";
    rv.key = (ProtobufCBinaryData){3, (uint8_t *)"foo"};
    call_err(&f, "/etcdserverpb.Auth/RoleRevokePermission", &rv.base,
             RPC_FAILED_PRECONDITION,
             "etcdserver: permission is not granted to the role");
    rv.range_end = (ProtobufCBinaryData){3, (uint8_t *)"fop"};
    call_ok(&f, "/etcdserverpb.Auth/RoleRevokePermission", &rv.base);
    fx_close(&f);
}

/* AuthEnable: etcd's two refusals, then cairn's own once root is ready;
 * Authenticate and AuthDisable as with authentication disabled. */
static void test_auth_enable(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    Etcdserverpb__AuthEnableRequest ae =
        ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
    call_err(&f, "/etcdserverpb.Auth/AuthEnable", &ae.base,
             RPC_FAILED_PRECONDITION, "etcdserver: root user does not exist");
    user_add(&f, "root", RPC_OK, NULL);
    call_err(&f, "/etcdserverpb.Auth/AuthEnable", &ae.base,
             RPC_FAILED_PRECONDITION,
             "etcdserver: root user does not have root role");
    grant_role(&f, "root", "root", RPC_OK, NULL);
    struct result r;
    call(&f, "/etcdserverpb.Auth/AuthEnable", &ae.base, RPC_UNIMPLEMENTED, NULL,
         &r);
    assert_non_null(strstr(r.msg, "cairn does not enforce"));
    result_free(&r);
    Etcdserverpb__AuthenticateRequest au =
        ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    au.name = (char *)"root";
    au.password = (char *)"pw";
    call_err(&f, "/etcdserverpb.Auth/Authenticate", &au.base,
             RPC_FAILED_PRECONDITION,
             "etcdserver: authentication is not enabled");
    Etcdserverpb__AuthDisableRequest ad =
        ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
    call_ok(&f, "/etcdserverpb.Auth/AuthDisable", &ad.base);
    fx_close(&f);
}

static void test_auth_bad_input(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct result r;
    fx_unary_raw(&f, "/etcdserverpb.Auth/UserAdd",
                 "\x0a\x05"
                 "ab",
                 4, &r);
    assert_int_equal(r.code, RPC_INTERNAL);
    result_free(&r);
    assert_int_equal(f.fake.auth_calls, 0);
    char big[AUTH_NAME_MAX + 2];
    memset(big, 'n', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    user_add(&f, big, RPC_INVALID_ARGUMENT, "etcdserver: request is too large");
    f.fake.fail_next = CAIRN_ENOLEADER;
    role_add(&f, "r", RPC_UNAVAILABLE, "etcdserver: no leader");
    /* and the store was not touched by either */
    Etcdserverpb__AuthUserListRequest ul =
        ETCDSERVERPB__AUTH_USER_LIST_REQUEST__INIT;
    call(&f, "/etcdserverpb.Auth/UserList", &ul.base, RPC_OK, NULL, &r);
    Etcdserverpb__AuthUserListResponse *ulr =
        etcdserverpb__auth_user_list_response__unpack(NULL, r.last.len,
                                                      r.last.data);
    assert_non_null(ulr);
    assert_int_equal(ulr->n_users, 0);
    etcdserverpb__auth_user_list_response__free_unpacked(ulr, NULL);
    result_free(&r);
    fx_close(&f);
}

int test_auth_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_users_roles),
        cmocka_unit_test(test_auth_permissions),
        cmocka_unit_test(test_auth_enable),
        cmocka_unit_test(test_auth_bad_input),
    };
    return cmocka_run_group_tests_name("api auth", tests, NULL, NULL);
}

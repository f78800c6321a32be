/* auth: the public header of cairn's user and role store — etcd 3.4's
 * auth store (auth/store.go) kept in mvcc's ext table, so that it shares
 * the LMDB transaction of every apply batch (and its consistent index),
 * the snapshots that ship the LMDB image, and defragmentation.
 *
 * Every operation, reads included, is applied from the Raft log as etcd 3.4
 * applies them (v3_server.go sends UserGet/List and RoleGet/List through
 * Raft too): node/ encodes a struct auth_req into an entry and its applier
 * calls auth_apply inside the batch. The store itself has no state outside
 * LMDB, so every member applying the same entries holds the same records.
 *
 * Passwords arrive already hashed (the server hashes with bcrypt before
 * proposing), so that every member stores the same bytes.
 *
 * Threads: auth_apply runs on the apply thread, inside an mvcc batch
 * (mvcc_batch_begin .. commit). auth_req_check is pure, any thread.
 *
 * Records (docs/auth.md): ext table 'U' keyed by user name, 'R' keyed by
 * role name. */
#ifndef CAIRN_AUTH_AUTH_H
#define CAIRN_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc/mvcc.h"
#include "util/util.h"

/* Longest user or role name, in bytes: the name is an LMDB key (511 bytes
 * at most) in the ext table. etcd has no such limit of its own. */
#define AUTH_NAME_MAX 400
/* The user and the role that etcd's rules treat specially. */
#define AUTH_ROOT "root"
/* ext tables of mvcc used by auth (lease/ uses 'L', 'M'; node/ 'N', 'A'). */
#define AUTH_TABLE_USER 'U'
#define AUTH_TABLE_ROLE 'R'

/* The operations, numbered as they are encoded in log entries. */
enum auth_op {
    AUTH_OP_USER_ADD = 1,
    AUTH_OP_USER_GET = 2,
    AUTH_OP_USER_LIST = 3,
    AUTH_OP_USER_DELETE = 4,
    AUTH_OP_USER_CHANGE_PASSWORD = 5,
    AUTH_OP_USER_GRANT_ROLE = 6,
    AUTH_OP_USER_REVOKE_ROLE = 7,
    AUTH_OP_ROLE_ADD = 8,
    AUTH_OP_ROLE_GET = 9,
    AUTH_OP_ROLE_LIST = 10,
    AUTH_OP_ROLE_DELETE = 11,
    AUTH_OP_ROLE_GRANT_PERMISSION = 12,
    AUTH_OP_ROLE_REVOKE_PERMISSION = 13,
    AUTH_OP_ENABLE = 14,
    AUTH_OP_DISABLE = 15,
};
#define AUTH_OP_MAX 15

/* authpb.Permission.Type */
enum auth_perm_type {
    AUTH_PERM_READ = 0,
    AUTH_PERM_WRITE = 1,
    AUTH_PERM_READWRITE = 2,
};

/* A key permission: [key, end) as etcd's (end empty: key alone; "\0":
 * every key from key on). */
struct auth_perm {
    uint8_t type; /* enum auth_perm_type */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *end;
    size_t end_len;
};

/* One request. Pointers are borrowed for the call. name is the user
 * (USER_*) or the role (ROLE_*); role is the role granted or revoked
 * (USER_GRANT_ROLE, USER_REVOKE_ROLE); password is the bcrypt hash (USER_ADD
 * unless no_password, USER_CHANGE_PASSWORD); perm is granted
 * (ROLE_GRANT_PERMISSION) or, by key and end, revoked
 * (ROLE_REVOKE_PERMISSION). */
struct auth_req {
    uint8_t op; /* enum auth_op */
    const uint8_t *name;
    size_t name_len;
    const uint8_t *role;
    size_t role_len;
    const uint8_t *password;
    size_t password_len;
    bool no_password;
    struct auth_perm perm;
};

/* What a request returns. names: a user's roles (USER_GET), every user
 * (USER_LIST) or every role (ROLE_LIST), NUL-terminated, in byte order;
 * perms: a role's permissions (ROLE_GET), sorted by key. Allocated in the
 * arena given to auth_apply. */
struct auth_result {
    const char *const *names;
    size_t n_names;
    const struct auth_perm *perms;
    size_t n_perms;
};

/* Checks what etcd would refuse before anything is stored, and what cairn
 * cannot store: an unknown op or permission type, names over
 * AUTH_NAME_MAX (CAIRN_ETOOBIG) or holding a NUL byte (CAIRN_EINVAL: wire
 * strings cannot carry them). */
int auth_req_check(const struct auth_req *req);

/* Applies req inside the store's open batch, as etcd 3.4's auth store
 * does while authentication is disabled. Request errors, with nothing
 * changed: CAIRN_EUSEREMPTY, CAIRN_EUSEREXISTS, CAIRN_EUSERNOTFOUND,
 * CAIRN_EROLEEMPTY, CAIRN_EROLEEXISTS, CAIRN_EROLENOTFOUND,
 * CAIRN_EROLENOTGRANTED, CAIRN_EPERMNOTGRANTED; AUTH_OP_ENABLE:
 * CAIRN_EROOTUSERNOTEXIST, CAIRN_EROOTROLENOTEXIST, and CAIRN_EUNIMPLEMENTED
 * once root is ready (enforcing authentication is not implemented: the
 * store stays disabled). Fatal (the batch failed): CAIRN_EIO, CAIRN_ENOMEM;
 * CAIRN_ECORRUPT for a stored record that does not decode. */
int auth_apply(struct mvcc_store *s, const struct auth_req *req,
               struct mvcc_arena *a, struct auth_result *out);

#endif

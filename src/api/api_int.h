/* api_int: what api/'s files share privately: etcd errors that no cairn
 * code stands for (the auth store's, answered while auth is disabled). */
#ifndef CAIRN_API_API_INT_H
#define CAIRN_API_API_INT_H

#include "api/api.h"

/* X(name, gRPC code, etcd's text): rows of the same table as errors.c's,
 * for errors that come from no cairn code. */
#define API__ETCD_ONLY_ERRORS(X)                                          \
    X(AUTH_NOT_ENABLED, RPC_FAILED_PRECONDITION,                          \
      "etcdserver: authentication is not enabled")                        \
    X(ROOT_USER_NOT_EXIST, RPC_FAILED_PRECONDITION,                       \
      "etcdserver: root user does not exist")                             \
    X(USER_NOT_FOUND, RPC_FAILED_PRECONDITION,                            \
      "etcdserver: user name not found")                                  \
    X(ROLE_NOT_FOUND, RPC_FAILED_PRECONDITION,                            \
      "etcdserver: role name not found")                                  \
    X(USER_EMPTY, RPC_INVALID_ARGUMENT, "etcdserver: user name is empty") \
    X(ROLE_EMPTY, RPC_INVALID_ARGUMENT, "etcdserver: role name is empty") \
    X(NO_REQUEST, RPC_INTERNAL, "grpc: error unmarshalling request: EOF")

enum api__etcd_err {
#define API__ENUM(name, code, text) API__E_##name,
    API__ETCD_ONLY_ERRORS(API__ENUM)
#undef API__ENUM
};

struct api_status api__status_etcd(enum api__etcd_err e);

#endif

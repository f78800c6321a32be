/* The error table: cairn codes to etcd's gRPC codes and texts, checked
 * against etcd 3.4's rpctypes/error.go. */
#include <string.h>

#include "fake.h"

static void check(int err, int code, const char *text)
{
    struct api_status st = api_status_from_err(err);
    assert_int_equal(st.code, code);
    assert_string_equal(st.message, text);
}

static void test_mvcc_errors(void **state)
{
    (void)state;
    check(CAIRN_EREVCOMPACTED, RPC_OUT_OF_RANGE,
          "etcdserver: mvcc: required revision has been compacted");
    check(CAIRN_EFUTUREREV, RPC_OUT_OF_RANGE,
          "etcdserver: mvcc: required revision is a future revision");
    check(CAIRN_EQUOTA, RPC_RESOURCE_EXHAUSTED,
          "etcdserver: mvcc: database space exceeded");
    check(CAIRN_EEMPTYKEY, RPC_INVALID_ARGUMENT,
          "etcdserver: key is not provided");
    check(CAIRN_EKEYNOTFOUND, RPC_INVALID_ARGUMENT,
          "etcdserver: key not found");
    check(CAIRN_EDUPLICATEKEY, RPC_INVALID_ARGUMENT,
          "etcdserver: duplicate key given in txn request");
    check(CAIRN_ETOOMANYOPS, RPC_INVALID_ARGUMENT,
          "etcdserver: too many operations in txn request");
    check(CAIRN_EVALUEPROVIDED, RPC_INVALID_ARGUMENT,
          "etcdserver: value is provided");
    check(CAIRN_ELEASEPROVIDED, RPC_INVALID_ARGUMENT,
          "etcdserver: lease is provided");
}

static void test_lease_errors(void **state)
{
    (void)state;
    check(CAIRN_ELEASENOTFOUND, RPC_NOT_FOUND,
          "etcdserver: requested lease not found");
    check(CAIRN_ELEASEEXISTS, RPC_FAILED_PRECONDITION,
          "etcdserver: lease already exists");
    check(CAIRN_ELEASETTLTOOLARGE, RPC_OUT_OF_RANGE,
          "etcdserver: too large lease TTL");
}

static void test_server_errors(void **state)
{
    (void)state;
    check(CAIRN_ENOLEADER, RPC_UNAVAILABLE, "etcdserver: no leader");
    check(CAIRN_ENOTLEADER, RPC_FAILED_PRECONDITION, "etcdserver: not leader");
    check(CAIRN_ESTEPPEDDOWN, RPC_UNAVAILABLE, "etcdserver: leader changed");
    check(CAIRN_ETIMEOUT, RPC_UNAVAILABLE, "etcdserver: request timed out");
    check(CAIRN_ESHUTDOWN, RPC_UNAVAILABLE, "etcdserver: server stopped");
    check(CAIRN_ETOOBIG, RPC_INVALID_ARGUMENT,
          "etcdserver: request is too large");
    check(CAIRN_ETOOMANYREQUESTS, RPC_RESOURCE_EXHAUSTED,
          "etcdserver: too many requests");
    check(CAIRN_ECORRUPT, RPC_DATA_LOSS, "etcdserver: corrupt cluster");
    check(CAIRN_EDEADLINE, RPC_DEADLINE_EXCEEDED, "context deadline exceeded");
    check(CAIRN_ECANCELED, RPC_CANCELLED, "context canceled");
}

static void test_member_errors(void **state)
{
    (void)state;
    check(CAIRN_EMEMBERNOTFOUND, RPC_NOT_FOUND, "etcdserver: member not found");
    check(CAIRN_ETOOMANYLEARNERS, RPC_FAILED_PRECONDITION,
          "etcdserver: too many learner members in cluster");
    check(CAIRN_EBADLEADERTRANSFEREE, RPC_FAILED_PRECONDITION,
          "etcdserver: bad leader transferee");
    check(CAIRN_EMEMBEREXISTS, RPC_FAILED_PRECONDITION,
          "etcdserver: member ID already exist");
    check(CAIRN_EPEERURLEXISTS, RPC_FAILED_PRECONDITION,
          "etcdserver: Peer URLs already exists");
    check(CAIRN_EMEMBERNOTLEARNER, RPC_FAILED_PRECONDITION,
          "etcdserver: can only promote a learner member");
    check(CAIRN_ELEARNERNOTREADY, RPC_FAILED_PRECONDITION,
          "etcdserver: can only promote a learner member which is in sync "
          "with leader");
    check(CAIRN_ESTOPPED, RPC_UNAVAILABLE, "etcdserver: server stopped");
    check(CAIRN_ELEADERCHANGED, RPC_UNAVAILABLE, "etcdserver: leader changed");
    check(CAIRN_EUNHEALTHYCLUSTER, RPC_UNAVAILABLE,
          "etcdserver: unhealthy cluster");
}

static void test_unknown_errors(void **state)
{
    (void)state;
    check(0, RPC_OK, "");
    /* etcd answers errors it has no row for as UNKNOWN with their text */
    check(CAIRN_EIO, RPC_UNKNOWN, cairn_strerror(CAIRN_EIO));
    check(CAIRN_ENOMEM, RPC_UNKNOWN, "out of memory");
    check(-100000, RPC_UNKNOWN, "unknown error");
}

/* A follower forwarding a promote maps the leader's answer back. */
static void test_errors_from_status(void **state)
{
    (void)state;
    assert_int_equal(
        api_err_from_status(RPC_FAILED_PRECONDITION,
                            "etcdserver: can only promote a learner member "
                            "which is in sync with leader"),
        CAIRN_ELEARNERNOTREADY);
    /* rows sharing etcd's answer: any of them, answered the same */
    struct api_status st = api_status_from_err(
        api_err_from_status(RPC_NOT_FOUND, "etcdserver: member not found"));
    assert_int_equal(st.code, RPC_NOT_FOUND);
    assert_string_equal(st.message, "etcdserver: member not found");
    /* same text, other code; no text: "not leader", so the client retries */
    assert_int_equal(
        api_err_from_status(RPC_UNKNOWN, "etcdserver: member not found"),
        CAIRN_ENOTLEADER);
    assert_int_equal(api_err_from_status(RPC_UNAVAILABLE, NULL),
                     CAIRN_ENOTLEADER);
}

int test_errors_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mvcc_errors),
        cmocka_unit_test(test_lease_errors),
        cmocka_unit_test(test_server_errors),
        cmocka_unit_test(test_member_errors),
        cmocka_unit_test(test_unknown_errors),
        cmocka_unit_test(test_errors_from_status),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}

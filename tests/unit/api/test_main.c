/* Runs every api test group; the exit status counts failed tests. */
#include <signal.h>

#include "fake.h"

int main(void)
{
    /* as net.h asks of every program */
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    failed += test_errors_group();
    failed += test_convert_group();
    failed += test_http_group();
    failed += test_kv_group();
    failed += test_lease_group();
    failed += test_cluster_group();
    failed += test_watch_group();
    failed += test_lock_group();
    failed += test_gateway_group();
    failed += test_auth_group();
    return failed ? 1 : 0;
}

/* Runs every rpc test group; the exit status counts failed tests. */
#include <signal.h>

#include "fixture.h"

int main(void)
{
    /* as net.h asks of every program: a peer that went away must give
     * EPIPE, not kill the process */
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    failed += test_wire_group();
    failed += test_calls_group();
    failed += test_bad_group();
    failed += test_faults_group();
    failed += test_random_group();
    failed += test_etcdctl_group();
    failed += test_etcd_group();
    return failed ? 1 : 0;
}

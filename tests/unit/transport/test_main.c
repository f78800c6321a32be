/* Runs every transport test group; the exit status counts failed groups. */
#include <signal.h>

#include "tests.h"

int main(void)
{
    /* net's rule: a peer gone away must fail a write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    failed += test_frame_group();
    failed += test_messages_group();
    failed += test_refuse_group();
    failed += test_snapshot_group();
    failed += test_faults_group();
    failed += test_random_group();
    failed += test_tls_group();
    return failed ? 1 : 0;
}

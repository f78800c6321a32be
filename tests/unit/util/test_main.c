/* Runs every util test group; the exit status counts failed tests. */
#include "tests.h"

int main(void)
{
    int failed = 0;
    failed += test_crc32c_group();
    failed += test_codec_group();
    failed += test_buf_group();
    failed += test_log_group();
    failed += test_err_group();
    failed += test_prng_group();
    failed += test_mem_group();
    failed += test_fs_group();
    failed += test_queue_group();
    failed += test_hist_group();
    return failed ? 1 : 0;
}

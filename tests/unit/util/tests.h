/* The util test groups; each test_*.c defines one. */
#ifndef CAIRN_TEST_UTIL_TESTS_H
#define CAIRN_TEST_UTIL_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

int test_crc32c_group(void);
int test_codec_group(void);
int test_buf_group(void);
int test_log_group(void);
int test_err_group(void);
int test_prng_group(void);
int test_mem_group(void);
int test_fs_group(void);
int test_queue_group(void);
int test_hist_group(void);

#endif

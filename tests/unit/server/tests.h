/* The server unit test program's groups, one per concept. */
#ifndef CAIRN_TESTS_SERVER_TESTS_H
#define CAIRN_TESTS_SERVER_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

int test_config_run(void);
int test_flags_run(void);
int test_server_run(void);
int test_wake_run(void);

#endif

/* The simulator's test groups; each test_*.c defines one. */
#ifndef CAIRN_SIM_TESTS_H
#define CAIRN_SIM_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

int test_lincheck_group(void);
int test_world_group(void);
int test_cluster_group(void);
int test_member_group(void);

#endif

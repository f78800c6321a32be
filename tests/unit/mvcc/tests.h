/* The mvcc test groups, one per concept; test_main.c runs them all. */
#ifndef CAIRN_TESTS_MVCC_TESTS_H
#define CAIRN_TESTS_MVCC_TESTS_H

int test_model_group(void);
int test_kv_group(void);
int test_longkeys_group(void);
int test_maint_group(void);
int test_watch_group(void);
int test_faults_group(void);
int test_threads_group(void);
int test_tree_group(void);

#endif

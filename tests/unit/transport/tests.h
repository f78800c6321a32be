/* The transport test groups, one per concept; test_main.c runs them all. */
#ifndef CAIRN_TESTS_TRANSPORT_TESTS_H
#define CAIRN_TESTS_TRANSPORT_TESTS_H

int test_frame_group(void);
int test_messages_group(void);
int test_refuse_group(void);
int test_snapshot_group(void);
int test_faults_group(void);
int test_random_group(void);
int test_tls_group(void);

#endif

/* The allocation wrapper: countdown fault injection and the counter. */
#include <string.h>

#include "tests.h"
#include "util/util.h"

static void mem_countdown(void **state)
{
    (void)state;
    cairn_mem_fault_set(2, 1);
    void *a = cairn_malloc(8);
    void *b = cairn_malloc(8);
    void *c = cairn_malloc(8);
    void *d = cairn_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    cairn_free(a);
    cairn_free(b);
    cairn_free(d);
    cairn_mem_fault_set(-1, 0);
}

static void mem_counts_and_copies(void **state)
{
    (void)state;
    uint64_t before = cairn_mem_alloc_count();
    char *s = cairn_strdup("cairn");
    assert_string_equal(s, "cairn");
    assert_true(cairn_mem_alloc_count() == before + 1);
    cairn_free(s);
    cairn_mem_fault_set(0, 1);
    assert_null(cairn_strdup("x"));
    void *p = cairn_calloc(1, 1); /* the one injected failure is used up */
    assert_non_null(p);
    cairn_free(p);
}

int test_mem_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mem_countdown),
        cmocka_unit_test(mem_counts_and_copies),
    };
    return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}

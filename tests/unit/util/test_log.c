/* The logger: line format, level filtering, one line per event, levels parsed
 * by etcd's names. */
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "tests.h"
#include "util/util.h"

struct captured {
    int lines;
    char last[4096];
    enum cairn_log_level last_level;
};

static void capture_sink(void *arg, enum cairn_log_level level,
                         const char *line)
{
    struct captured *c = arg;
    c->lines++;
    c->last_level = level;
    snprintf(c->last, sizeof c->last, "%s", line);
}

static int64_t fixed_clock(void *arg)
{
    return *(int64_t *)arg;
}

static void log_line_format(void **state)
{
    (void)state;
    struct captured c = {0};
    int64_t now_ms = 1764412428123; /* 2025-11-29T10:33:48.123Z */
    struct cairn_log log;
    cairn_log_init(&log, "infra1", CAIRN_LOG_INFO);
    log.sink = capture_sink;
    log.sink_arg = &c;
    log.clock = fixed_clock;
    log.clock_arg = &now_ms;
    cairn_infof(&log, "raft", "became leader at term %d", 2);
    assert_int_equal(c.lines, 1);
    assert_string_equal(c.last, "2025-11-29T10:33:48.123Z INFO infra1 raft: "
                                "became leader at term 2");
    assert_int_equal(c.last_level, CAIRN_LOG_INFO);
}

static void log_levels_filter(void **state)
{
    (void)state;
    struct captured c = {0};
    struct cairn_log log;
    cairn_log_init(&log, "m", CAIRN_LOG_WARN);
    log.sink = capture_sink;
    log.sink_arg = &c;
    cairn_debugf(&log, "x", "dropped");
    cairn_infof(&log, "x", "dropped");
    assert_int_equal(c.lines, 0);
    cairn_warnf(&log, "x", "kept");
    cairn_errorf(&log, "x", "kept");
    assert_int_equal(c.lines, 2);
    assert_int_equal(c.last_level, CAIRN_LOG_ERROR);
    cairn_infof(NULL, "x", "a NULL logger logs nothing");
}

static void log_one_line_per_event(void **state)
{
    (void)state;
    struct captured c = {0};
    struct cairn_log log;
    cairn_log_init(&log, "m", CAIRN_LOG_DEBUG);
    log.sink = capture_sink;
    log.sink_arg = &c;
    cairn_infof(&log, "wal", "two\nlines\r");
    assert_int_equal(c.lines, 1);
    assert_null(strchr(c.last, '\n'));
    assert_non_null(strstr(c.last, "wal: two lines "));

    /* real clock: a well-formed UTC timestamp */
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                             "[0-9]{2}\\.[0-9]{3}Z DEBUG m c: x$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    cairn_debugf(&log, "c", "x");
    assert_int_equal(regexec(&re, c.last, 0, NULL, 0), 0);
    regfree(&re);

    /* an over-long message is cut, not overflowed */
    static char big[10000];
    memset(big, 'a', sizeof big - 1);
    cairn_infof(&log, "c", "%s", big);
    assert_true(strlen(c.last) < 4096);
}

static void log_level_names(void **state)
{
    (void)state;
    enum cairn_log_level l;
    assert_int_equal(cairn_log_level_parse("debug", &l), 0);
    assert_int_equal(l, CAIRN_LOG_DEBUG);
    assert_int_equal(cairn_log_level_parse("WARN", &l), 0);
    assert_int_equal(l, CAIRN_LOG_WARN);
    assert_int_equal(cairn_log_level_parse("fatal", &l), 0);
    assert_int_equal(l, CAIRN_LOG_FATAL);
    assert_int_equal(cairn_log_level_parse("verbose", &l), CAIRN_EINVAL);
    assert_string_equal(cairn_log_level_name(CAIRN_LOG_ERROR), "ERROR");
}

int test_log_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_line_format),
        cmocka_unit_test(log_levels_filter),
        cmocka_unit_test(log_one_line_per_event),
        cmocka_unit_test(log_level_names),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}

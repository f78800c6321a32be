/* Logger: one line per event to a sink (stderr by default):
 *   2026-11-29T10:33:48.123Z INFO default raft: became leader at term 2
 * i.e. UTC ISO-8601 time with milliseconds, level, member name, component,
 * message. There is no global logger: each instance (a raft core, a WAL, a
 * server) holds a struct cairn_log, or a pointer to one, given by its owner.
 * The clock is part of the logger, so the simulator logs in simulated time.
 * A struct cairn_log may be shared by threads; the stderr sink writes each
 * line with one write(2). */
#ifndef CAIRN_UTIL_LOG_H
#define CAIRN_UTIL_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum cairn_log_level {
    CAIRN_LOG_DEBUG = 0,
    CAIRN_LOG_INFO = 1,
    CAIRN_LOG_WARN = 2,
    CAIRN_LOG_ERROR = 3,
    CAIRN_LOG_FATAL = 4,
    CAIRN_LOG_OFF = 5,
};

/* Receives one finished line without its newline. */
typedef void (*cairn_log_sink_cb)(void *arg, enum cairn_log_level level,
                                  const char *line);
/* Milliseconds since the Unix epoch, for the line's timestamp. */
typedef int64_t (*cairn_log_clock_cb)(void *arg);

struct cairn_log {
    const char *member;         /* borrowed; outlives the logger */
    enum cairn_log_level level; /* lines below it are dropped */
    cairn_log_sink_cb sink;     /* NULL: stderr */
    void *sink_arg;
    cairn_log_clock_cb clock; /* NULL: the real-time clock */
    void *clock_arg;
};

/* A logger to stderr at `level` for `member`, real time. */
void cairn_log_init(struct cairn_log *log, const char *member,
                    enum cairn_log_level level);

/* Parses "debug", "info", "warn", "error", "fatal" (etcd's --log-level names);
 * returns 0 or CAIRN_EINVAL. */
int cairn_log_level_parse(const char *text, enum cairn_log_level *level);
const char *cairn_log_level_name(enum cairn_log_level level);

/* Formats and emits one line. log may be NULL (nothing is logged). Newlines
 * in the message are replaced by spaces so one event stays one line. */
void cairn_log_write(const struct cairn_log *log, enum cairn_log_level level,
                     const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cairn_log_vwrite(const struct cairn_log *log, enum cairn_log_level level,
                      const char *component, const char *fmt, va_list ap);

#define CAIRN_LOG_ENABLED(log, lvl) ((log) != NULL && (lvl) >= (log)->level)

#define cairn_debugf(log, comp, ...)                                  \
    do {                                                              \
        if (CAIRN_LOG_ENABLED(log, CAIRN_LOG_DEBUG))                  \
            cairn_log_write(log, CAIRN_LOG_DEBUG, comp, __VA_ARGS__); \
    } while (0)
#define cairn_infof(log, comp, ...) \
    cairn_log_write(log, CAIRN_LOG_INFO, comp, __VA_ARGS__)
#define cairn_warnf(log, comp, ...) \
    cairn_log_write(log, CAIRN_LOG_WARN, comp, __VA_ARGS__)
#define cairn_errorf(log, comp, ...) \
    cairn_log_write(log, CAIRN_LOG_ERROR, comp, __VA_ARGS__)

#endif

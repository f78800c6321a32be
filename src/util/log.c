/* The logger of log.h: line formatting and the default stderr sink. */
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

#define LOG_LINE_MAX 4096

static const char *const level_names[] = {"DEBUG", "INFO",  "WARN",
                                          "ERROR", "FATAL", "OFF"};

void cairn_log_init(struct cairn_log *log, const char *member,
                    enum cairn_log_level level)
{
    memset(log, 0, sizeof *log);
    log->member = member;
    log->level = level;
}

const char *cairn_log_level_name(enum cairn_log_level level)
{
    if ((unsigned)level > CAIRN_LOG_OFF)
        return "?";
    return level_names[level];
}

int cairn_log_level_parse(const char *text, enum cairn_log_level *level)
{
    static const char *const names[] = {"debug", "info", "warn", "error",
                                        "fatal"};
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *level = (enum cairn_log_level)i;
            return 0;
        }
    }
    return CAIRN_EINVAL;
}

static int64_t log_realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t log_format_time(char *out, size_t cap, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + n, cap - n, ".%03dZ", frac);
    return n + (m > 0 ? (size_t)m : 0);
}

static void log_stderr_sink(const char *line, size_t len)
{
    char tmp[LOG_LINE_MAX + 1];
    memcpy(tmp, line, len);
    tmp[len] = '\n';
    ssize_t rv = write(STDERR_FILENO, tmp, len + 1);
    (void)rv; /* nowhere left to report a failed log write */
}

void cairn_log_vwrite(const struct cairn_log *log, enum cairn_log_level level,
                      const char *component, const char *fmt, va_list ap)
{
    if (!CAIRN_LOG_ENABLED(log, level))
        return;
    char line[LOG_LINE_MAX];
    int64_t now = log->clock ? log->clock(log->clock_arg) : log_realtime_ms();
    size_t n = log_format_time(line, sizeof line, now);
    int m = snprintf(
        line + n, sizeof line - n, " %s %s %s: ", cairn_log_level_name(level),
        log->member ? log->member : "-", component ? component : "-");
    if (m > 0)
        n += (size_t)m;
    if (n < sizeof line) {
        size_t head = n;
        m = vsnprintf(line + n, sizeof line - n, fmt, ap);
        n = m < 0 ? n : n + (size_t)m;
        if (n >= sizeof line)
            n = sizeof line - 1;
        for (size_t i = head; i < n; i++) {
            if (line[i] == '\n' || line[i] == '\r')
                line[i] = ' ';
        }
    } else {
        n = sizeof line - 1;
    }
    line[n] = '\0';
    if (log->sink)
        log->sink(log->sink_arg, level, line);
    else
        log_stderr_sink(line, n);
}

void cairn_log_write(const struct cairn_log *log, enum cairn_log_level level,
                     const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cairn_log_vwrite(log, level, component, fmt, ap);
    va_end(ap);
}

/* A wall-clock watchdog for test code that blocks in a call of its own (a
 * consumer's blocking pop, a join), which no loop turn of run_until.h can
 * bound: a lost wake-up there ends the program with a message naming what
 * it waited for, instead of hanging until CTest's timeout. Kept apart from
 * run_until.h for its <unistd.h>, whose names (revoke...) clash with tests'. */
#ifndef CAIRN_TEST_WATCHDOG_H
#define CAIRN_TEST_WATCHDOG_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "run_until.h" /* RU_WAIT_MS */

/* What the watchdog prints, set by WATCH_BEGIN. */
static inline char *ru_watch_text(void)
{
    static char text[512];
    return text;
}

static inline void ru_on_alarm(int sig)
{
    (void)sig;
    const char *t = ru_watch_text();
    ssize_t w = write(STDERR_FILENO, t, strlen(t)); /* async-signal-safe */
    (void)w;
    _exit(1);
}

/* Arms a wall-clock alarm around code that blocks in a call of its own (a
 * consumer's blocking pop, a join): if WATCH_END has not come within
 * RU_WAIT_MS, the program ends with a failure naming what it waited for and
 * the line that armed it. No unwinding is possible from there. */
#define WATCH_BEGIN(what)                                              \
    do {                                                               \
        snprintf(ru_watch_text(), 512,                                 \
                 "%s:%d: still blocked in %s after %d ms\n", __FILE__, \
                 __LINE__, (what), RU_WAIT_MS);                        \
        signal(SIGALRM, ru_on_alarm);                                  \
        alarm(RU_WAIT_MS / 1000);                                      \
    } while (0)
#define WATCH_END() alarm(0)

#endif

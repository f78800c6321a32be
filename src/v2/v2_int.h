/* v2_int: v2's private helpers shared by its files. */
#ifndef CAIRN_V2_V2_INT_H
#define CAIRN_V2_V2_INT_H

#include <stdarg.h>
#include <time.h>

#include "v2/v2.h"

int v2__appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Go's time.Time in JSON (RFC 3339 with nanoseconds, UTC), quotes not
 * included. */
int v2__time_rfc3339(struct buf *out, int64_t ns);

#endif

/* The failure path of CAIRN_ASSERT. */
#include "util/assert.h"

#include <stdio.h>
#include <stdlib.h>

void cairn__assert_fail(const char *expr, const char *file, int line,
                        const char *func)
{
    fprintf(stderr, "cairn: assertion failed: %s (%s:%d, %s)\n", expr, file,
            line, func);
    fflush(stderr);
    abort();
}

/* Assertions that stay on in every build: a failed one is a programmer error,
 * reported with its place and the failed expression, then abort(). */
#ifndef CAIRN_UTIL_ASSERT_H
#define CAIRN_UTIL_ASSERT_H

_Noreturn void cairn__assert_fail(const char *expr, const char *file, int line,
                                  const char *func);

#define CAIRN_ASSERT(expr) \
    ((expr) ? (void)0 : cairn__assert_fail(#expr, __FILE__, __LINE__, __func__))

/* Marks a place the program must never reach. */
#define CAIRN_UNREACHABLE() \
    cairn__assert_fail("unreachable", __FILE__, __LINE__, __func__)

#endif

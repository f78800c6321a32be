/* Texts and names for the error table in err.h, and the error message helper.
 */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_texts[CAIRN__ERR_COUNT] = {[0] = "success",
#define ERR_TEXT(name, text) [CAIRN__POS_##name] = text,
                                                        CAIRN_ERRORS(ERR_TEXT)
#undef ERR_TEXT
};

static const char *const err_names[CAIRN__ERR_COUNT] = {[0] = "OK",
#define ERR_NAME(name, text) [CAIRN__POS_##name] = #name,
                                                        CAIRN_ERRORS(ERR_NAME)
#undef ERR_NAME
};

const char *cairn_strerror(int code)
{
    if (code > 0 || -code >= CAIRN__ERR_COUNT)
        return "unknown error";
    return err_texts[-code];
}

const char *cairn_errname(int code)
{
    if (code > 0 || -code >= CAIRN__ERR_COUNT)
        return "UNKNOWN";
    return err_names[-code];
}

int cairn_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return 0;
    case ENOMEM:
        return CAIRN_ENOMEM;
    case EINVAL:
        return CAIRN_EINVAL;
    case ENOSPC:
    case EDQUOT:
        return CAIRN_ENOSPC;
    case ENOENT:
        return CAIRN_ENOTFOUND;
    case EEXIST:
        return CAIRN_EEXISTS;
    case EBUSY:
        return CAIRN_EBUSY;
    case EAGAIN:
        return CAIRN_EAGAIN;
    case EFBIG:
    case E2BIG:
        return CAIRN_ETOOBIG;
    case ETIMEDOUT:
        return CAIRN_ETIMEOUT;
    case ECANCELED:
        return CAIRN_ECANCELED;
    case ENOTSUP:
        return CAIRN_EUNSUPPORTED;
    default:
        return CAIRN_EIO;
    }
}

void cairn_errmsg_setf(struct cairn_errmsg *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->text, sizeof m->text, fmt, ap);
    va_end(ap);
}

static void errmsg_vprefix(struct cairn_errmsg *m, const char *fmt, va_list ap)
{
    char prev[CAIRN_ERRMSG_SIZE];
    memcpy(prev, m->text, sizeof prev);
    prev[sizeof prev - 1] = '\0';
    int n = vsnprintf(m->text, sizeof m->text, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof m->text || prev[0] == '\0')
        return;
    /* Append ": <prev>", cut at the end of the buffer. */
    size_t at = (size_t)n;
    const char *tail[2] = {": ", prev};
    for (int t = 0; t < 2; t++) {
        size_t room = sizeof m->text - 1 - at;
        size_t len = strlen(tail[t]);
        if (len > room)
            len = room;
        memcpy(m->text + at, tail[t], len);
        at += len;
    }
    m->text[at] = '\0';
}

void cairn_errmsg_prefixf(struct cairn_errmsg *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errmsg_vprefix(m, fmt, ap);
    va_end(ap);
}

int cairn_errmsg_code(struct cairn_errmsg *m, int code, const char *fmt, ...)
{
    /* Writes m->text before anything reads it; callers may pass it fresh. */
    // cppcheck-suppress ctuuninitvar
    snprintf(m->text, sizeof m->text, "%s", cairn_strerror(code));
    va_list ap;
    va_start(ap, fmt);
    errmsg_vprefix(m, fmt, ap);
    va_end(ap);
    return code;
}

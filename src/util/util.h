/* util: the public header of the foundation module. Other modules include
 * this one header; the headers it includes are the module's pieces, one
 * concept each. */
#ifndef CAIRN_UTIL_UTIL_H
#define CAIRN_UTIL_UTIL_H

#include "util/assert.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/crc32c.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hist.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/prng.h"
#include "util/queue.h"

#endif

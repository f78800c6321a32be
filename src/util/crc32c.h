/* CRC-32C (Castagnoli), the checksum of WAL records and snapshot files.
 * crc32c("123456789") == 0xE3069283. The hardware path (SSE4.2 crc32
 * instruction) is chosen at run time where the CPU has it; the table path
 * (slicing-by-8) is used elsewhere. Inputs of 1 KiB or more are folded with
 * 512-bit carry-less multiplication where the CPU has it (about twice the
 * crc32 instruction's speed). All give the same result. */
#ifndef CAIRN_UTIL_CRC32C_H
#define CAIRN_UTIL_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) with len bytes: crc32c(crc32c(0,a),b) ==
 * crc32c(0,ab). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* crc32c(crc, src, len), also copying the len bytes to dst (which must not
 * overlap src): one pass over them instead of a memcpy and a CRC (the WAL
 * frames entries this way). */
uint32_t crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

/* The two paths, for tests and benchmarks. crc32c_hw and crc32c_hw_copy
 * must only be called when crc32c_hw_available() is true. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw_copy(uint32_t crc, void *dst, const void *src, size_t len);
bool crc32c_hw_available(void);

#endif

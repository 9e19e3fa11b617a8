/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * zap tids: transaction ids in ZODB's TimeStamp layout.
 *
 * A tid is a u64. The high 32 bits count minutes since 1900-01-01 00:00 UTC,
 * packed with 31-day months:
 *   ((((year - 1900) * 12 + month - 1) * 31 + day - 1) * 24 + hour) * 60 + minute
 * The low 32 bits are the seconds within that minute scaled by 2^32 / 60
 * (truncated), about 14 ns per unit.
 *
 * Everything here is pure arithmetic on integers: no locale, no time zone, no
 * libc time functions, so every replica computes the same tid from the same
 * clock reading.
 */
#ifndef ZAP_TID_H
#define ZAP_TID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Length of the text zap_tid_format() writes, without the terminating NUL. */
#define ZAP_TID_FORMAT_LEN 26

/**
 * The tid of a UTC wall-clock reading.
 *
 * @param unix_ns  nanoseconds since 1970-01-01 00:00:00 UTC.
 * @return the tid; the sub-minute part is truncated to the tid's resolution.
 */
uint64_t zap_tid_from_unix_ns(uint64_t unix_ns);

/**
 * The UTC wall-clock time a tid stands for.
 *
 * The sub-minute part is rounded up to the next nanosecond, so that
 * zap_tid_from_unix_ns(zap_tid_to_unix_ns(t)) == t for every tid from 1970 on.
 *
 * @return nanoseconds since the Unix epoch; 0 for a tid before 1970;
 *   UINT64_MAX when the time does not fit in 64 bits of nanoseconds.
 */
uint64_t zap_tid_to_unix_ns(uint64_t tid);

/**
 * The next tid to use: @p candidate when it is later than @p last, else
 * last + 1 (ZODB's TimeStamp.laterThan). Keeps tids strictly increasing even
 * when the clock goes backwards.
 */
uint64_t zap_tid_later(uint64_t candidate, uint64_t last);

/**
 * Write a tid as "YYYY-MM-DD hh:mm:ss.uuuuuu" (UTC, microseconds truncated).
 *
 * @param buf  output; always NUL-terminated when @p len > 0 (truncated to fit).
 * @param len  size of @p buf; ZAP_TID_FORMAT_LEN + 1 holds the whole text.
 */
void zap_tid_format(uint64_t tid, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ZAP_TID_H */

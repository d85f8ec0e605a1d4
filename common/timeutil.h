#ifndef SC_COMMON_TIMEUTIL_H
#define SC_COMMON_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Time in the whole system is int64 microseconds since the Unix epoch, UTC.
 * On the wire it is RFC 3339 (contract section 2): "2026-11-23T08:00:00Z",
 * optional fractional seconds, and on input an offset is accepted
 * ("+08:00"); output is always UTC with 'Z' and milliseconds.
 */

#define TIME_US_PER_S INT64_C(1000000)

/* Wall clock now. */
int64_t time_now_us(void);

/* Monotonic clock, for measuring intervals only. */
int64_t time_mono_us(void);

/*
 * Parses RFC 3339 (date, 'T' or 't', time, fraction of 1 to 9 digits
 * truncated to microseconds, 'Z', 'z' or +hh:mm / -hh:mm). Strict: the
 * whole string must match, fields in range (Feb 30 and leap second 60 are
 * refused, years 0000-9999). Returns 0, or -1 with *out_us untouched.
 */
int time_parse_rfc3339(const char *text, int64_t *out_us)
	__attribute__((warn_unused_result));

/* Parses a date "YYYY-MM-DD" as midnight UTC. Returns 0 or -1. */
int time_parse_date(const char *text, int64_t *out_us)
	__attribute__((warn_unused_result));

/*
 * Formats as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (TIME_RFC3339_LEN bytes
 * suffice) and returns buf; NULL when len is too small. Sub-millisecond
 * digits are truncated toward the past.
 */
#define TIME_RFC3339_LEN 32
char *time_format_rfc3339(int64_t us, char *buf, size_t len);

#endif

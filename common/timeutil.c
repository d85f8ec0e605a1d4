/*
 * Time: int64 microseconds since the Unix epoch, and RFC 3339 on the wire.
 *
 * Calendar arithmetic uses Howard Hinnant's days_from_civil/civil_from_days
 * instead of timegm()/gmtime_r(): no TZ or locale state, no library calls,
 * exact for every proleptic Gregorian date, and a few integer operations.
 */
#include "timeutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

int64_t time_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * TIME_US_PER_S + ts.tv_nsec / 1000;
}

int64_t time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * TIME_US_PER_S + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;                                  /* [0, 399] */
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */

	return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;                                  /* [0, 146096] */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);           /* [0, 365] */
	int64_t mp = (5 * doy + 2) / 153;                                /* [0, 11] */

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n decimal digits at *p; advances *p. Returns -1 if not digits. */
static int digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	return v;
}

/* "YYYY-MM-DD" at *p, advanced past it; fills days since the epoch. */
static int parse_date_part(const char **p, int64_t *days)
{
	int y, m, d;

	if ((y = digits(p, 4)) < 0 || *(*p)++ != '-')
		return -1;
	if ((m = digits(p, 2)) < 0 || *(*p)++ != '-')
		return -1;
	if ((d = digits(p, 2)) < 0)
		return -1;
	if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	*days = days_from_civil(y, m, d);
	return 0;
}

int time_parse_rfc3339(const char *text, int64_t *out_us)
{
	const char *p = text;
	int64_t days, frac_us = 0, offset_s = 0;
	int hh, mm, ss;

	if (!text || parse_date_part(&p, &days) < 0)
		return -1;
	if (*p != 'T' && *p != 't')
		return -1;
	p++;
	if ((hh = digits(&p, 2)) < 0 || *p++ != ':')
		return -1;
	if ((mm = digits(&p, 2)) < 0 || *p++ != ':')
		return -1;
	if ((ss = digits(&p, 2)) < 0)
		return -1;
	/* Leap second 60 is refused: nothing downstream can represent it. */
	if (hh > 23 || mm > 59 || ss > 59)
		return -1;
	if (*p == '.') {
		int n = 0;

		p++;
		/* Digits past the 6th (microseconds) are checked but truncated. */
		while (*p >= '0' && *p <= '9') {
			if (++n > 9)
				return -1;
			if (n <= 6)
				frac_us = frac_us * 10 + (*p - '0');
			p++;
		}
		if (n == 0)
			return -1;
		for (; n < 6; n++)
			frac_us *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int oh, om;

		if ((oh = digits(&p, 2)) < 0 || *p++ != ':')
			return -1;
		if ((om = digits(&p, 2)) < 0)
			return -1;
		if (oh > 23 || om > 59)
			return -1;
		offset_s = sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	/* Local time minus its offset is UTC. */
	*out_us = (days * 86400 + hh * 3600 + mm * 60 + ss - offset_s) * TIME_US_PER_S + frac_us;
	return 0;
}

int time_parse_date(const char *text, int64_t *out_us)
{
	const char *p = text;
	int64_t days;

	if (!text || parse_date_part(&p, &days) < 0 || *p != '\0')
		return -1;
	*out_us = days * 86400 * TIME_US_PER_S;
	return 0;
}

char *time_format_rfc3339(int64_t us, char *buf, size_t len)
{
	/* Floor division, so instants before 1970 format correctly too. */
	int64_t secs = us / TIME_US_PER_S;
	int64_t rem = us % TIME_US_PER_S;
	int64_t days, y;
	int m, d, sod, n;

	if (rem < 0) {
		rem += TIME_US_PER_S;
		secs--;
	}
	days = secs / 86400;
	sod = (int)(secs % 86400);
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	n = snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
		     sod / 3600, sod / 60 % 60, sod % 60, (int)(rem / 1000));
	if (n < 0 || (size_t)n >= len)
		return NULL;
	return buf;
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timeutil.h"

#define S TIME_US_PER_S

static int64_t parse_ok(const char *text)
{
	int64_t us = -1;

	if (time_parse_rfc3339(text, &us) != 0)
		fail_msg("refused valid timestamp \"%s\"", text);
	return us;
}

static void test_parse_basic(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse_ok("2026-11-23T08:00:00Z"), INT64_C(1795420800) * S);
	assert_int_equal(parse_ok("2026-11-23t08:00:00z"), INT64_C(1795420800) * S);
	assert_int_equal(parse_ok("2000-03-01T00:00:00Z"), INT64_C(951868800) * S);
	assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1 * S);
	assert_int_equal(parse_ok("0000-01-01T00:00:00Z"), INT64_C(-62167219200) * S);
	assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), INT64_C(253402300799) * S);
}

static void test_parse_fraction(void **state)
{
	int64_t base = INT64_C(1795420800) * S;

	(void)state;
	assert_int_equal(parse_ok("2026-11-23T08:00:00.250Z"), base + 250000);
	assert_int_equal(parse_ok("2026-11-23T08:00:00.5Z"), base + 500000);
	assert_int_equal(parse_ok("2026-11-23T08:00:00.000001Z"), base + 1);
	assert_int_equal(parse_ok("2026-11-23T08:00:00.123456789Z"), base + 123456);
	assert_int_equal(parse_ok("2026-11-23T08:00:00.999999999Z"), base + 999999);
	/* Before the epoch the fraction still counts forward from the second. */
	assert_int_equal(parse_ok("1969-12-31T23:59:59.5Z"), -500000);

	int64_t us;
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00.1234567890Z", &us), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00.Z", &us), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00,5Z", &us), -1);
}

static void test_parse_offsets(void **state)
{
	int64_t utc = parse_ok("2026-11-23T08:00:00Z");

	(void)state;
	assert_int_equal(parse_ok("2026-11-23T16:00:00+08:00"), utc);
	assert_int_equal(parse_ok("2026-11-23T03:30:00-04:30"), utc);
	assert_int_equal(parse_ok("2026-11-23T08:00:00+00:00"), utc);
	assert_int_equal(parse_ok("2026-11-23T08:00:00-00:00"), utc);
	/* An offset can move the instant across a date and a year. */
	assert_int_equal(parse_ok("2027-01-01T07:59:59+23:59"),
			 parse_ok("2026-12-31T08:00:59Z"));
	assert_int_equal(parse_ok("2026-11-23T16:00:00.75+08:00"), utc + 750000);

	int64_t us;
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00+24:00", &us), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00+08:60", &us), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00+0800", &us), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00+8:00", &us), -1);
	assert_int_equal(time_parse_rfc3339("2026-11-23T08:00:00", &us), -1);
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"2026-11-23",
		"2026-11-23 08:00:00Z",   /* space instead of T */
		"2026-11-23T08:00Z",      /* no seconds */
		"2026-13-01T00:00:00Z",   /* month 13 */
		"2026-00-01T00:00:00Z",   /* month 0 */
		"2026-01-00T00:00:00Z",   /* day 0 */
		"2026-02-30T00:00:00Z",   /* Feb 30 */
		"2026-02-29T00:00:00Z",   /* not a leap year */
		"1900-02-29T00:00:00Z",   /* century, not a leap year */
		"2026-04-31T00:00:00Z",   /* April has 30 */
		"2026-11-23T24:00:00Z",
		"2026-11-23T23:60:00Z",
		"2026-12-31T23:59:60Z",   /* leap second refused */
		"2026-11-23T08:00:00ZZ",  /* trailing garbage */
		"2026-11-23T08:00:00Z ",
		" 2026-11-23T08:00:00Z",
		"26-11-23T08:00:00Z",
		"20261-11-23T08:00:00Z",
		"2026-1-23T08:00:00Z",
		"2026-11-23T8:00:00Z",
		"+2026-11-23T08:00:00Z",
		"2026-11-23T08:00:00.+1Z",
		"2026/11/23T08:00:00Z",
		"2026-11-23T08:0a:00Z",
	};
	int64_t us = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (time_parse_rfc3339(bad[i], &us) != -1)
			fail_msg("accepted invalid timestamp \"%s\"", bad[i]);
	}
	assert_int_equal(us, 42); /* untouched on failure */
	assert_int_equal(time_parse_rfc3339(NULL, &us), -1);
}

static void test_leap_years(void **state)
{
	(void)state;
	/* 2024 and 2000 are leap years: Feb 29 exists and Mar 1 is one day later. */
	assert_int_equal(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-29T00:00:00Z"),
			 86400 * S);
	assert_int_equal(parse_ok("2000-02-29T12:00:00Z"), INT64_C(951825600) * S);
	assert_int_equal(parse_ok("2100-03-01T00:00:00Z") - parse_ok("2100-02-28T00:00:00Z"),
			 86400 * S);
	assert_int_equal(parse_ok("2025-01-01T00:00:00Z") - parse_ok("2024-01-01T00:00:00Z"),
			 366 * 86400 * S);
	assert_int_equal(parse_ok("2027-01-01T00:00:00Z") - parse_ok("2026-01-01T00:00:00Z"),
			 365 * 86400 * S);
}

/* days_from_civil must agree with the C library on every day of 1600-2400. */
static void test_against_timegm(void **state)
{
	char buf[TIME_RFC3339_LEN], text[64];

	(void)state;
	for (time_t t = INT64_C(-11676096000); t < INT64_C(13569465600); t += 86400 + 3671) {
		struct tm tm;
		int64_t us;

		gmtime_r(&t, &tm);
		snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		assert_int_equal(time_parse_rfc3339(text, &us), 0);
		assert_int_equal(us, (int64_t)t * S);
		assert_non_null(time_format_rfc3339(us, buf, sizeof(buf)));
		assert_memory_equal(buf, text, 19);
	}
}

static void test_parse_date(void **state)
{
	int64_t us = 7;

	(void)state;
	assert_int_equal(time_parse_date("2012-06-01", &us), 0);
	assert_int_equal(us, INT64_C(1338508800) * S);
	assert_int_equal(time_parse_date("2024-02-29", &us), 0);
	us = 7;
	assert_int_equal(time_parse_date("2023-02-29", &us), -1);
	assert_int_equal(time_parse_date("2012-06-01T00:00:00Z", &us), -1);
	assert_int_equal(time_parse_date("2012-6-01", &us), -1);
	assert_int_equal(time_parse_date("2012-06-01 ", &us), -1);
	assert_int_equal(time_parse_date("", &us), -1);
	assert_int_equal(us, 7);
}

static void test_format(void **state)
{
	char buf[TIME_RFC3339_LEN];

	(void)state;
	assert_string_equal(time_format_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
	assert_string_equal(time_format_rfc3339(INT64_C(1795420800) * S + 123999, buf, sizeof(buf)),
			    "2026-11-23T08:00:00.123Z");
	/* Negative instants floor: -1 us is the last microsecond of 1969. */
	assert_string_equal(time_format_rfc3339(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
	assert_string_equal(time_format_rfc3339(-500000, buf, sizeof(buf)),
			    "1969-12-31T23:59:59.500Z");
	assert_string_equal(time_format_rfc3339(INT64_C(951782400) * S, buf, sizeof(buf)),
			    "2000-02-29T00:00:00.000Z");
	/* 24 characters and a NUL: 25 bytes suffice, 24 do not. */
	assert_non_null(time_format_rfc3339(0, buf, 25));
	assert_null(time_format_rfc3339(0, buf, 24));
}

static void test_roundtrip(void **state)
{
	char buf[TIME_RFC3339_LEN];
	int64_t us;

	(void)state;
	for (int64_t t = INT64_C(-2208988800) * S; t < INT64_C(4102444800) * S;
	     t += INT64_C(987654321987)) {
		int64_t ms = t - ((t % 1000) + 1000) % 1000; /* formatting keeps milliseconds */

		assert_non_null(time_format_rfc3339(t, buf, sizeof(buf)));
		assert_int_equal(time_parse_rfc3339(buf, &us), 0);
		assert_int_equal(us, ms);
	}
}

static void test_clocks(void **state)
{
	int64_t a = time_mono_us(), b = time_mono_us();

	(void)state;
	assert_true(b >= a);
	/* Sanity: after 2020 and before 2200. */
	assert_true(time_now_us() > INT64_C(1577836800) * S);
	assert_true(time_now_us() < INT64_C(7258118400) * S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_fraction),
		cmocka_unit_test(test_parse_offsets),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_leap_years),
		cmocka_unit_test(test_against_timegm),
		cmocka_unit_test(test_parse_date),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

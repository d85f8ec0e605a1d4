/*
 * Telemetry parsing (common/payload.c, common/payload_fast.c): the fast path
 * takes the plain shape devices send and gives the very values the general
 * parser gives; everything else it leaves to the general parser, which
 * decides and names the reason. (fuzz.payload checks the same on generated
 * inputs.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payload.h"

#define NOW_US INT64_C(1795000000000000) /* 2026-11-18T11:06:40Z */

/* Both paths agree on a payload the fast one takes. */
static void same(const char *p)
{
	struct payload_telemetry f, t;
	struct json_err e;
	size_t n = strlen(p);
	assert_int_equal(payload_telemetry_fast(p, n, NOW_US, &f), 0);
	assert_null(f.root);
	if (payload_telemetry_parse_tree(p, n, NOW_US, &t, &e) != 0)
		fail_msg("tree parser refused %s: %s %s", p, e.reason, e.detail);
	assert_int_equal(f.seq, t.seq);
	assert_int_equal(f.ts_us, t.ts_us);
	assert_int_equal(f.has_run_hours, t.has_run_hours);
	if (f.has_run_hours)
		assert_true(f.run_hours == t.run_hours);
	assert_ptr_equal(f.metrics_raw, t.metrics_raw);
	assert_int_equal(f.metrics_len, t.metrics_len);
	assert_ptr_equal(f.run_hours_raw, t.run_hours_raw);
	assert_int_equal(f.run_hours_len, t.run_hours_len);
	payload_free(t.root);
}

static void test_fast_takes_plain(void **state)
{
	(void)state;
	same("{\"seq\": 1042, \"ts\": \"2026-11-17T09:00:00Z\", \"run_hours\": 18234.5, "
	     "\"metrics\": {\"temp_c\": 71.2, \"load_pct\": 64}}");
	same("{\"metrics\":{\"a\":-0.5},\"ts\":\"2026-11-17T09:00:00.123+08:00\",\"seq\":0}");
	same(" \r\n{ \"seq\" : 9007199254740991 ,\t\"ts\" : \"2026-11-17T09:00:00Z\" , "
	     "\"metrics\" : { \"x_1\" : 0 , \"y\" : 1.000 } , \"run_hours\" : 0 } \n");
	same("{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": "
	     "{\"abcdefghijklmnopqrstuvwxyz012345\": 1}}"); /* a 32-byte name */
	struct payload_telemetry f;
	const char *p = "{\"seq\": 7, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}";
	assert_int_equal(payload_telemetry_fast(p, strlen(p), NOW_US, &f), 0);
	assert_false(f.has_run_hours);
	assert_null(f.run_hours_raw);
	assert_int_equal(f.metrics_len, strlen("{\"a\": 1}"));
	assert_memory_equal(f.metrics_raw, "{\"a\": 1}", f.metrics_len);
}

/* Left to the general parser (which accepts some and rejects others). */
static void test_fast_leaves_the_rest(void **state)
{
	(void)state;
	static const char *const left[] = {
		"",
		"[]",
		"{}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\"}",                    /* no metrics */
		"{\"seq\": 1, \"metrics\": {\"a\": 1}}",                            /* no ts */
		"{\"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}",      /* no seq */
		"{\"seq\": 1, \"seq\": 2, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1, \"a\": 2}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1e3}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": \"1\"}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"A\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"\\u0061\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 01}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1.}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}, \"x\": 1}",
		"{\"seq\": -1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}",
		"{\"seq\": 1.0, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}",
		"{\"seq\": 9007199254740992, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-19T10:00:00Z\", \"metrics\": {\"a\": 1}}", /* future */
		"{\"seq\": 1, \"ts\": \"yesterday\", \"metrics\": {\"a\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"run_hours\": -1, \"metrics\": {\"a\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"run_hours\": null, \"metrics\": {\"a\": 1}}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}} x",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1},}",
		"{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"\xe6\xb8\xa9\": 1}}",
	};
	for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
		struct payload_telemetry f;
		if (payload_telemetry_fast(left[i], strlen(left[i]), NOW_US, &f) != 1)
			fail_msg("fast path took %s", left[i]);
	}
	/* A trailing NUL inside the length: the general parser's "NUL byte". */
	static const char nul[] = "{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1}}";
	struct payload_telemetry f;
	assert_int_equal(payload_telemetry_fast(nul, sizeof(nul), NOW_US, &f), 1);
	/* 65 metrics: more than the contract allows. */
	char big[2048] = "{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {";
	for (int i = 0; i < 65; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "%s\"m%d\": %d", i ? ", " : "", i, i);
	snprintf(big + strlen(big), sizeof(big) - strlen(big), "}}");
	assert_int_equal(payload_telemetry_fast(big, strlen(big), NOW_US, &f), 1);
}

/* Through payload_telemetry_parse: an exponent goes the general way and
 * comes out without raw spans (printed instead). */
static void test_parse_falls_back(void **state)
{
	(void)state;
	struct payload_telemetry t;
	struct json_err e;
	const char *p = "{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"run_hours\": 1e2, "
			"\"metrics\": {\"a\": 2E-1}}";
	assert_int_equal(payload_telemetry_parse(p, strlen(p), NOW_US, &t, &e), 0);
	assert_non_null(t.root);
	assert_null(t.metrics_raw);
	assert_null(t.run_hours_raw);
	assert_true(t.run_hours == 100);
	payload_free(t.root);
	p = "{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"a\": 1, \"a\": 2}}";
	assert_int_equal(payload_telemetry_parse(p, strlen(p), NOW_US, &t, &e), -1);
	assert_string_equal(e.reason, "bad_json");
	p = "{\"seq\": 1, \"ts\": \"2026-11-17T09:00:00Z\", \"metrics\": {\"A\": 1}}";
	assert_int_equal(payload_telemetry_parse(p, strlen(p), NOW_US, &t, &e), -1);
	assert_string_equal(e.reason, "bad_metric");
	p = "{\"seq\": 1, \"ts\": \"2026-11-19T10:00:00Z\", \"metrics\": {\"a\": 1}}";
	assert_int_equal(payload_telemetry_parse(p, strlen(p), NOW_US, &t, &e), -1);
	assert_string_equal(e.reason, "bad_timestamp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fast_takes_plain),
		cmocka_unit_test(test_fast_leaves_the_rest),
		cmocka_unit_test(test_parse_falls_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

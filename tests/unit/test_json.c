#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* Parses text (without its NUL) and expects failure with reason. */
static void expect_refused(const char *text, const char *reason)
{
	struct json_err e = { 0 };
	cJSON *j = json_parse_object(text, strlen(text), &e);

	if (j) {
		cJSON_Delete(j);
		fail_msg("accepted %s", text);
	}
	if (!e.reason || strcmp(e.reason, reason) != 0)
		fail_msg("%s: reason %s, expected %s (%s)", text, e.reason ? e.reason : "(null)",
			 reason, e.detail);
}

static cJSON *parse_ok(const char *text)
{
	struct json_err e = { 0 };
	cJSON *j = json_parse_object(text, strlen(text), &e);

	if (!j)
		fail_msg("refused %s: %s %s", text, e.reason, e.detail);
	return j;
}

static void test_valid(void **state)
{
	(void)state;
	cJSON_Delete(parse_ok("{}"));
	cJSON_Delete(parse_ok(" \t\r\n{\"a\": [1, -0, 0.5, 1e3, -2.5E-3, true, false, null]} \n"));
	cJSON_Delete(parse_ok("{\"s\": \"\\u00e9\\ud83d\\ude00 caf\xc3\xa9 \\\"q\\\" \\\\u0000\"}"));
	/* The same key in different objects is fine. */
	cJSON_Delete(parse_ok("{\"a\": {\"x\": 1}, \"b\": {\"x\": 2}, \"c\": [{\"x\": 1}, {\"x\": 2}]}"));
}

static void test_not_nul_terminated(void **state)
{
	struct json_err e = { 0 };
	const char text[] = "{\"a\":1}GARBAGE";
	cJSON *j;

	(void)state;
	/* Only the first 7 bytes are the payload: what follows is not ours to read. */
	j = json_parse_object(text, 7, &e);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(j, "a")->valuedouble, 1);
	cJSON_Delete(j);
	j = json_parse_object(text, 8, &e);
	assert_null(j);
	assert_string_equal(e.reason, "bad_json");
}

static void test_bad_json(void **state)
{
	static const char *const bad[] = {
		"",
		"   ",
		"{",
		"{\"a\":1",
		"{\"a\":1}}",          /* trailing garbage */
		"{\"a\":1} x",
		"{\"a\":1}{}",
		"{\"a\": NaN}",        /* not JSON tokens */
		"{\"a\": -NaN}",
		"{\"a\": Infinity}",
		"{\"a\": -Infinity}",
		"{\"a\": nan}",
		"{\"a\": 01}",         /* number grammar */
		"{\"a\": 1.}",
		"{\"a\": -.5}",
		"{\"a\": .5}",
		"{\"a\": +1}",
		"{\"a\": 1.e5}",
		"{\"a\": 1e}",
		"{\"a\": 0x10}",
		"{\"a\": --1}",
		"{\"a\": 1-2}",
		"{\"a\": 1e5e3}",
		"{\"a\": \"x\ny\"}",   /* raw control character in a string */
		"{\"a\": \"x\ty\"}",
		"{\"a\": \"\\u0000\"}", /* cJSON would cut the string here */
		"{\"a\": \"\\x41\"}",  /* bad escape */
		"{\"a\": \"\\ud800\"}", /* lone surrogate escape */
		"\x01{}",              /* cJSON treats any byte <= 0x20 as space */
		"{\"a\":1,}",
		"{'a':1}",
		"{a:1}",
		"{\"a\" 1}",
		"{\"a\": tru}",
		"{\"a\": nulll}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i], "bad_json");
	/* The assumption behind leaving NaN/Infinity to cJSON: it refuses them. */
	assert_null(cJSON_Parse("{\"a\": NaN}"));
	assert_null(cJSON_Parse("{\"a\": Infinity}"));
	assert_null(cJSON_Parse("{\"a\": -Infinity}"));
}

static void test_nul_byte(void **state)
{
	struct json_err e = { 0 };
	const char text[] = "{\"a\":1}\0{\"b\":2}";

	(void)state;
	assert_null(json_parse_object(text, sizeof(text) - 1, &e));
	assert_string_equal(e.reason, "bad_json");
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(json_utf8_valid("", 0));
	assert_true(json_utf8_valid("abc", 3));
	assert_true(json_utf8_valid("\xc3\xa9", 2));           /* é */
	assert_true(json_utf8_valid("\xe2\x82\xac", 3));       /* € */
	assert_true(json_utf8_valid("\xf0\x9f\x98\x80", 4));   /* U+1F600 */
	assert_true(json_utf8_valid("\xf4\x8f\xbf\xbf", 4));   /* U+10FFFF */
	assert_true(json_utf8_valid("\xed\x9f\xbf", 3));       /* U+D7FF */
	assert_false(json_utf8_valid("\x80", 1));              /* lone continuation */
	assert_false(json_utf8_valid("\xc3", 1));              /* truncated */
	assert_false(json_utf8_valid("\xe2\x82", 2));
	assert_false(json_utf8_valid("\xc3\x28", 2));          /* bad continuation */
	assert_false(json_utf8_valid("\xc0\xaf", 2));          /* overlong '/' */
	assert_false(json_utf8_valid("\xc1\xbf", 2));
	assert_false(json_utf8_valid("\xe0\x80\xaf", 3));      /* overlong, 3 bytes */
	assert_false(json_utf8_valid("\xf0\x80\x80\xaf", 4));  /* overlong, 4 bytes */
	assert_false(json_utf8_valid("\xed\xa0\x80", 3));      /* surrogate U+D800 */
	assert_false(json_utf8_valid("\xed\xbf\xbf", 3));      /* surrogate U+DFFF */
	assert_false(json_utf8_valid("\xf4\x90\x80\x80", 4));  /* U+110000 */
	assert_false(json_utf8_valid("\xf8\x88\x80\x80\x80", 5));
	assert_false(json_utf8_valid("\xff", 1));
	/* The length is honoured: a valid prefix of a cut character is refused. */
	assert_true(json_utf8_valid("a\xc3\xa9", 1));
	assert_false(json_utf8_valid("a\xc3\xa9", 2));

	expect_refused("{\"a\": \"\xc3\x28\"}", "bad_json");
	expect_refused("{\"a\": \"\xed\xa0\x80\"}", "bad_json");
	expect_refused("{\"\xff\": 1}", "bad_json");
}

static void test_not_object(void **state)
{
	(void)state;
	expect_refused("[]", "schema");
	expect_refused("[{\"a\": 1}]", "schema");
	expect_refused("1", "schema");
	expect_refused("\"s\"", "schema");
	expect_refused("null", "schema");
	expect_refused("true", "schema");
}

static void test_duplicate_keys(void **state)
{
	char big[8192];
	size_t n = 0;

	(void)state;
	expect_refused("{\"a\": 1, \"a\": 2}", "bad_json");
	expect_refused("{\"a\": 1, \"b\": 2, \"a\": 1}", "bad_json");
	expect_refused("{\"x\": {\"a\": 1, \"a\": 1}}", "bad_json");
	expect_refused("{\"x\": [1, {\"y\": [{\"a\": 1, \"a\": 1}]}]}", "bad_json");
	/* After unescaping they are the same key. */
	expect_refused("{\"a\": 1, \"\\u0061\": 2}", "bad_json");
	/* Case differs: different keys. */
	cJSON_Delete(parse_ok("{\"a\": 1, \"A\": 2}"));

	/* Many keys, the repeat at the end (exercises the sorted check). */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
	for (int i = 0; i < 500; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\"k%d\":%d,", i, i);
	snprintf(big + n, sizeof(big) - n, "\"k250\":0}");
	expect_refused(big, "bad_json");
	snprintf(big + n, sizeof(big) - n, "\"k500\":0}");
	cJSON_Delete(parse_ok(big));

	struct json_err e = { 0 };
	assert_null(json_parse_object("{\"seq\": 1, \"seq\": 2}", 20, &e));
	assert_non_null(strstr(e.detail, "seq"));
}

/* A payload of exactly n bytes: {"p":"xxx...x"} */
static char *payload(size_t n)
{
	char *b = malloc(n);

	assert_non_null(b);
	memset(b, 'x', n);
	memcpy(b, "{\"p\":\"", 6);
	memcpy(b + n - 2, "\"}", 2);
	return b;
}

static void test_size_limit(void **state)
{
	struct json_err e = { 0 };
	char *b;
	cJSON *j;

	(void)state;
	b = payload(JSON_MAX_PAYLOAD);
	j = json_parse_object(b, JSON_MAX_PAYLOAD, &e);
	assert_non_null(j);
	assert_int_equal(strlen(cJSON_GetObjectItem(j, "p")->valuestring), JSON_MAX_PAYLOAD - 8);
	cJSON_Delete(j);
	free(b);

	b = payload(JSON_MAX_PAYLOAD + 1);
	assert_null(json_parse_object(b, JSON_MAX_PAYLOAD + 1, &e));
	assert_string_equal(e.reason, "too_large");
	free(b);

	/* Size is checked before anything else: garbage over the limit is too_large. */
	b = malloc(JSON_MAX_PAYLOAD + 1);
	assert_non_null(b);
	memset(b, 0xff, JSON_MAX_PAYLOAD + 1);
	assert_null(json_parse_object(b, JSON_MAX_PAYLOAD + 1, &e));
	assert_string_equal(e.reason, "too_large");
	free(b);
}

static void test_get_u64(void **state)
{
	cJSON *j = parse_ok("{\"seq\": 1042, \"zero\": 0, \"neg\": -1, \"frac\": 1.5,"
			    " \"s\": \"12\", \"max\": 9007199254740991,"
			    " \"over\": 9007199254740992, \"huge\": 18446744073709551615,"
			    " \"inf\": 1e999, \"exp\": 1e3, \"nul\": null}");
	struct json_err e = { 0 };
	uint64_t v = 77;

	(void)state;
	assert_int_equal(json_get_u64(j, "seq", JSON_REQUIRED, &v, &e), 0);
	assert_int_equal(v, 1042);
	assert_int_equal(json_get_u64(j, "zero", 0, &v, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(json_get_u64(j, "max", 0, &v, &e), 0);
	assert_int_equal(v, UINT64_C(9007199254740991));
	assert_int_equal(json_get_u64(j, "exp", 0, &v, &e), 0);
	assert_int_equal(v, 1000);
	v = 77;
	static const char *const bad[] = { "neg", "frac", "s", "over", "huge", "inf" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char detail[64];

		assert_int_equal(json_get_u64(j, bad[i], JSON_REQUIRED, &v, &e), -1);
		assert_string_equal(e.reason, "schema");
		snprintf(detail, sizeof(detail), "%s: must be an unsigned integer", bad[i]);
		assert_string_equal(e.detail, detail);
	}
	assert_int_equal(v, 77);
	/* Absent or null: 1 when optional, "is required" otherwise. */
	assert_int_equal(json_get_u64(j, "missing", 0, &v, &e), 1);
	assert_int_equal(json_get_u64(j, "nul", 0, &v, &e), 1);
	assert_int_equal(json_get_u64(j, "missing", JSON_REQUIRED, &v, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_string_equal(e.detail, "missing: is required");
	assert_int_equal(json_get_u64(j, "nul", JSON_REQUIRED, &v, &e), -1);
	assert_int_equal(v, 77);
	cJSON_Delete(j);
}

static void test_get_int(void **state)
{
	cJSON *j = parse_ok("{\"g\": 2, \"big\": 5, \"neg\": -3, \"f\": 2.5, \"b\": true}");
	struct json_err e = { 0 };
	int64_t v = 0;

	(void)state;
	assert_int_equal(json_get_int(j, "g", JSON_REQUIRED, 1, 4, &v, &e), 0);
	assert_int_equal(v, 2);
	assert_int_equal(json_get_int(j, "neg", 0, -5, 5, &v, &e), 0);
	assert_int_equal(v, -3);
	assert_int_equal(json_get_int(j, "big", 0, 1, 4, &v, &e), -1);
	assert_string_equal(e.detail, "big: must be between 1 and 4");
	assert_int_equal(json_get_int(j, "f", 0, 1, 4, &v, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_int_equal(json_get_int(j, "b", 0, 0, 1, &v, &e), -1);
	assert_int_equal(v, -3);
	cJSON_Delete(j);
}

static void test_get_num(void **state)
{
	cJSON *j = parse_ok("{\"t\": 71.2, \"i\": 64, \"inf\": 1e999, \"ninf\": -1e999,"
			    " \"s\": \"1\", \"o\": {}}");
	struct json_err e = { 0 };
	double v = 0;

	(void)state;
	assert_int_equal(json_get_num(j, "t", JSON_REQUIRED, &v, &e), 0);
	assert_true(v == 71.2);
	assert_int_equal(json_get_num(j, "i", 0, &v, &e), 0);
	assert_true(v == 64);
	/* cJSON turns 1e999 into inf; the getter must refuse it. */
	assert_int_equal(json_get_num(j, "inf", 0, &v, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_string_equal(e.detail, "inf: must be a finite number");
	assert_int_equal(json_get_num(j, "ninf", 0, &v, &e), -1);
	assert_int_equal(json_get_num(j, "s", 0, &v, &e), -1);
	assert_int_equal(json_get_num(j, "o", 0, &v, &e), -1);
	assert_true(v == 64);
	cJSON_Delete(j);
}

static void test_get_str(void **state)
{
	cJSON *j = parse_ok("{\"id\": \"D0001\", \"bad\": \"a b\", \"n\": 5, \"long\": \"abcdef\","
			    " \"empty\": \"\"}");
	struct json_err e = { 0 };
	const char *s = NULL;

	(void)state;
	assert_int_equal(json_get_str(j, "id", JSON_REQUIRED | JSON_ID, 0, &s, &e), 0);
	assert_string_equal(s, "D0001");
	assert_int_equal(json_get_str(j, "bad", 0, 0, &s, &e), 0);
	assert_int_equal(json_get_str(j, "bad", JSON_ID, 0, &s, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_non_null(strstr(e.detail, "bad: "));
	assert_int_equal(json_get_str(j, "empty", JSON_ID, 0, &s, &e), -1);
	assert_int_equal(json_get_str(j, "empty", 0, 0, &s, &e), 0);
	assert_string_equal(s, "");
	assert_int_equal(json_get_str(j, "n", 0, 0, &s, &e), -1);
	assert_string_equal(e.detail, "n: must be a string");
	assert_int_equal(json_get_str(j, "long", 0, 6, &s, &e), 0);
	assert_int_equal(json_get_str(j, "long", 0, 5, &s, &e), -1);
	assert_int_equal(json_get_str(j, "nope", 0, 0, &s, &e), 1);
	cJSON_Delete(j);
}

static void test_get_time(void **state)
{
	cJSON *j = parse_ok("{\"ts\": \"2026-11-23T08:00:00.250Z\", \"bad\": \"2026-02-30T00:00:00Z\","
			    " \"num\": 1795420800}");
	struct json_err e = { 0 };
	int64_t us = 0;

	(void)state;
	assert_int_equal(json_get_time(j, "ts", JSON_REQUIRED, &us, &e), 0);
	assert_int_equal(us, INT64_C(1795420800250000));
	assert_int_equal(json_get_time(j, "bad", 0, &us, &e), -1);
	assert_string_equal(e.reason, "bad_timestamp");
	assert_non_null(strstr(e.detail, "bad: "));
	assert_int_equal(json_get_time(j, "num", 0, &us, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_int_equal(json_get_time(j, "none", JSON_REQUIRED, &us, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_int_equal(us, INT64_C(1795420800250000));
	cJSON_Delete(j);
}

static void test_get_bool_object(void **state)
{
	cJSON *j = parse_ok("{\"t\": true, \"f\": false, \"n\": 1, \"o\": {\"k\": 1}, \"a\": []}");
	struct json_err e = { 0 };
	const cJSON *o = NULL;
	bool b = false;

	(void)state;
	assert_int_equal(json_get_bool(j, "t", 0, &b, &e), 0);
	assert_true(b);
	assert_int_equal(json_get_bool(j, "f", 0, &b, &e), 0);
	assert_false(b);
	assert_int_equal(json_get_bool(j, "n", 0, &b, &e), -1);
	assert_string_equal(e.reason, "schema");
	assert_int_equal(json_get_object(j, "o", JSON_REQUIRED, &o, &e), 0);
	assert_int_equal(cJSON_GetObjectItem(o, "k")->valuedouble, 1);
	assert_int_equal(json_get_object(j, "a", 0, &o, &e), -1);
	assert_string_equal(e.detail, "a: must be an object");
	assert_int_equal(json_get_object(j, "x", 0, &o, &e), 1);
	cJSON_Delete(j);
}

static void test_print(void **state)
{
	cJSON *j = parse_ok("{ \"a\" : [ 1 , \"x\" ] , \"b\" : null }");
	char *s = json_print(j);

	(void)state;
	assert_string_equal(s, "{\"a\":[1,\"x\"],\"b\":null}");
	free(s);
	assert_null(json_print(NULL));
	cJSON_Delete(j);
}

/* Expects the raw value of key in text to be want (NULL: rc, no value). */
static void expect_raw(const char *text, const char *key, int rc, const char *want)
{
	const char *v = NULL;
	size_t n = 0;

	assert_int_equal(json_raw_member(text, strlen(text), key, &v, &n), rc);
	if (want != NULL) {
		assert_int_equal(n, strlen(want));
		assert_memory_equal(v, want, n);
	}
}

static void test_raw_member(void **state)
{
	const char *t = " { \"seq\": 1, \"s\": \"a}\\\"b\", \"n\": [1, {\"x\": \"]\"}],"
			"\"metrics\" : {\"t\": -1.50, \"u\": {}} , \"z\":null}";

	(void)state;
	expect_raw(t, "metrics", 0, "{\"t\": -1.50, \"u\": {}}");
	expect_raw(t, "seq", 0, "1");
	expect_raw(t, "s", 0, "\"a}\\\"b\"");
	expect_raw(t, "n", 0, "[1, {\"x\": \"]\"}]");
	expect_raw(t, "z", 0, "null");
	expect_raw(t, "zz", 1, NULL);
	expect_raw("{}", "metrics", 1, NULL);
	/* A key written with escapes: cannot tell without decoding it. */
	expect_raw("{\"m\\u0065trics\": {}}", "metrics", -1, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_not_object),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_get_u64),
		cmocka_unit_test(test_get_int),
		cmocka_unit_test(test_get_num),
		cmocka_unit_test(test_get_str),
		cmocka_unit_test(test_get_time),
		cmocka_unit_test(test_get_bool_object),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_raw_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

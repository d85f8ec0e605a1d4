#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"

static void test_int(void **state)
{
	struct strbuf b;

	(void)state;
	strbuf_init(&b);
	strbuf_int(&b, 0);
	strbuf_putc(&b, ',');
	strbuf_int(&b, -42);
	strbuf_putc(&b, ',');
	strbuf_int(&b, 1795000001000000LL);
	strbuf_putc(&b, ',');
	strbuf_int(&b, LLONG_MAX);
	strbuf_putc(&b, ',');
	strbuf_int(&b, LLONG_MIN);
	assert_true(strbuf_ok(&b));
	assert_string_equal(b.data, "0,-42,1795000001000000,9223372036854775807,"
				    "-9223372036854775808");
	strbuf_free(&b);
}

static void test_array_elem(void **state)
{
	struct strbuf b;
	const char *json = "{\"a\\\\b\": 1}";

	(void)state;
	strbuf_init(&b);
	strbuf_putc(&b, '{');
	strbuf_array_elem(&b, json, strlen(json));
	strbuf_putc(&b, ',');
	strbuf_array_elem(&b, "NULL", 4);
	strbuf_putc(&b, ',');
	strbuf_array_elem(&b, "", 0);
	strbuf_putc(&b, '}');
	assert_true(strbuf_ok(&b));
	/* Quotes and backslashes escaped; "NULL" quoted is text, not NULL. */
	assert_string_equal(b.data, "{\"{\\\"a\\\\\\\\b\\\": 1}\",\"NULL\",\"\"}");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_array_elem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

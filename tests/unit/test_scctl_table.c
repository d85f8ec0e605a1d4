/*
 * scctl's table printer (services/scctl/table.c, compiled into this test):
 * display width of UTF-8 text, alignment of Chinese names, cells that
 * would break a row, header-less blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scctl.h"

static void test_width(void **state)
{
	(void)state;
	assert_int_equal(scctl_display_width(""), 0);
	assert_int_equal(scctl_display_width("Zhang Wei"), 9);
	assert_int_equal(scctl_display_width("王小明"), 6);            /* CJK: 2 each */
	assert_int_equal(scctl_display_width("河南 HA"), 7);
	assert_int_equal(scctl_display_width("Ａ"), 2);                /* fullwidth */
	assert_int_equal(scctl_display_width("가"), 2);               /* Hangul */
	assert_int_equal(scctl_display_width("Zoë"), 3);              /* precomposed */
	assert_int_equal(scctl_display_width("Zoe\xcc\x88"), 3);      /* e + combining diaeresis */
	assert_int_equal(scctl_display_width("a\xe2\x80\x8b" "b"), 2);  /* zero-width space */
	/* Invalid or truncated sequences: one column per bad byte, never a crash. */
	assert_int_equal(scctl_display_width("\xff\xfe"), 2);
	assert_int_equal(scctl_display_width("\xe7\x8e"), 2);
	assert_int_equal(scctl_display_width("\xc0\x80"), 2);           /* overlong NUL */
}

/* The table printed into a string (caller frees). */
static char *print(const struct scctl_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	scctl_table_print(t, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_alignment(void **state)
{
	static const char *const headers[] = {"ID", "NAME", "LOAD"};
	static const char *const r1[] = {"E1", "王小明", "1"};
	static const char *const r2[] = {"E22", "Zhang Wei", "12"};
	static const char *const r3[] = {"E3", NULL, "3"};
	struct scctl_table *t = scctl_table_new(3, headers);
	char *out;

	(void)state;
	assert_non_null(t);
	scctl_table_right(t, 2);
	assert_int_equal(scctl_table_add(t, r1), 0);
	assert_int_equal(scctl_table_add(t, r2), 0);
	assert_int_equal(scctl_table_add(t, r3), 0);
	assert_int_equal(scctl_table_rows(t), 3);
	out = print(t);
	assert_string_equal(out,
			    "ID   NAME       LOAD\n"
			    "E1   王小明        1\n"
			    "E22  Zhang Wei    12\n"
			    "E3   -             3\n");
	free(out);
	scctl_table_free(t);
	scctl_table_free(NULL);
}

static void test_control_chars_and_block(void **state)
{
	static const char *const r1[] = {"description", "line one\nline\ttwo\r"};
	static const char *const r2[] = {"state", "new"};
	struct scctl_table *t = scctl_table_new(2, NULL);
	char *out;

	(void)state;
	assert_non_null(t);
	assert_int_equal(scctl_table_add(t, r1), 0);
	assert_int_equal(scctl_table_add(t, r2), 0);
	out = print(t);
	/* No header row; a newline or tab inside a cell never breaks the row. */
	assert_string_equal(out,
			    "description  line one line two \n"
			    "state        new\n");
	free(out);
	scctl_table_free(t);
}

static void test_many_rows(void **state)
{
	static const char *const headers[] = {"N"};
	struct scctl_table *t = scctl_table_new(1, headers);
	char n[16];
	char *out;

	(void)state;
	assert_non_null(t);
	for (int i = 0; i < 1000; i++) {
		const char *cells[1] = {n};

		snprintf(n, sizeof(n), "%d", i);
		assert_int_equal(scctl_table_add(t, cells), 0);
	}
	assert_int_equal(scctl_table_rows(t), 1000);
	out = print(t);
	assert_non_null(strstr(out, "\n999\n"));
	free(out);
	scctl_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_width),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_control_chars_and_block),
		cmocka_unit_test(test_many_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

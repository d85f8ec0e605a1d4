#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "domain.h"

/*
 * Every table against the contract's own words, in enum order: a renamed
 * or reordered spelling breaks deployed devices (contract, introduction).
 */
#define CHECK_ENUM(NAME, ...)                                                        \
	do {                                                                         \
		static const char *const words[] = { __VA_ARGS__ };                  \
		enum NAME v;                                                         \
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {      \
			assert_string_equal(NAME##_name((enum NAME)i), words[i]);    \
			assert_int_equal(NAME##_parse(words[i], &v), 0);             \
			assert_int_equal(v, i);                                      \
		}                                                                    \
		assert_string_equal(NAME##_name((enum NAME)(sizeof(words) / sizeof(words[0]))), \
				    "invalid");                                      \
		assert_int_equal(NAME##_parse("", &v), -1);                          \
		assert_int_equal(NAME##_parse(NULL, &v), -1);                        \
		assert_int_equal(NAME##_parse("bogus", &v), -1);                     \
	} while (0)

static void test_tables(void **state)
{
	(void)state;
	CHECK_ENUM(tier, "vip", "key", "standard");
	CHECK_ENUM(severity, "critical", "major", "minor");
	CHECK_ENUM(mode, "onsite", "remote", "outsourced");
	CHECK_ENUM(channel, "hotline", "web", "app", "email");
	CHECK_ENUM(category, "fault", "maintenance", "installation", "training", "consultation",
		   "complaint");
	CHECK_ENUM(ticket_state, "new", "offered", "assigned", "en_route", "on_site", "resolved",
		   "closed", "manual", "cancelled", "cleared");
	CHECK_ENUM(order_state, "offered", "accepted", "declined", "expired", "withdrawn",
		   "en_route", "on_site", "resolved", "unresolved");
	CHECK_ENUM(order_event, "accept", "decline", "en_route", "on_site", "resolved",
		   "unresolved");
	CHECK_ENUM(engineer_kind, "onsite", "remote");
	CHECK_ENUM(engineer_avail, "available", "busy", "off");
	CHECK_ENUM(sla_clock, "respond", "arrive", "resolve");
}

static void test_parse_strict(void **state)
{
	enum tier t = TIER_KEY;
	enum order_event ev;
	enum mode m;

	(void)state;
	/* Exact spelling only: no case folding, no prefixes, no padding. */
	assert_int_equal(tier_parse("VIP", &t), -1);
	assert_int_equal(tier_parse("vip ", &t), -1);
	assert_int_equal(tier_parse("vi", &t), -1);
	assert_int_equal(t, TIER_KEY); /* untouched on failure */
	assert_int_equal(order_event_parse("en-route", &ev), -1);
	assert_int_equal(order_event_parse("accepted", &ev), -1); /* a state, not an event */
	assert_int_equal(mode_parse("on_site", &m), -1);
	assert_int_equal(mode_parse("outsourced", &m), 0);
	assert_int_equal(m, MODE_OUTSOURCED);
}

static void test_grade(void **state)
{
	(void)state;
	assert_int_equal(grade_check(0), -1);
	assert_int_equal(grade_check(1), 0);
	assert_int_equal(grade_check(4), 0);
	assert_int_equal(grade_check(5), -1);
	assert_int_equal(grade_check(-1), -1);
	assert_int_equal(GRADE_JUNIOR, 1);
	assert_int_equal(GRADE_EXPERT, 4);
}

static void test_open(void **state)
{
	(void)state;
	assert_true(ticket_state_is_open(TICKET_NEW));
	assert_true(ticket_state_is_open(TICKET_OFFERED));
	assert_true(ticket_state_is_open(TICKET_ASSIGNED));
	assert_true(ticket_state_is_open(TICKET_EN_ROUTE));
	assert_true(ticket_state_is_open(TICKET_ON_SITE));
	assert_true(ticket_state_is_open(TICKET_MANUAL));
	assert_false(ticket_state_is_open(TICKET_RESOLVED));
	assert_false(ticket_state_is_open(TICKET_CLOSED));
	assert_false(ticket_state_is_open(TICKET_CANCELLED));
	assert_false(ticket_state_is_open(TICKET_CLEARED));
}

static void test_id(void **state)
{
	char id[66];

	(void)state;
	assert_true(domain_id_valid("D0001"));
	assert_true(domain_id_valid("HL-20261123-0001"));
	assert_true(domain_id_valid("a.b_c-D9"));
	assert_true(domain_id_valid("x"));
	assert_false(domain_id_valid(""));
	assert_false(domain_id_valid(NULL));
	assert_false(domain_id_valid("a b"));
	assert_false(domain_id_valid("a/b"));
	assert_false(domain_id_valid("a+b"));
	assert_false(domain_id_valid("#"));
	assert_false(domain_id_valid("caf\xc3\xa9"));
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_true(domain_id_valid(id));
	id[64] = 'a';
	id[65] = '\0';
	assert_false(domain_id_valid(id));
}

static void test_metric_name(void **state)
{
	char name[34];

	(void)state;
	assert_true(domain_metric_name_valid("temp_c"));
	assert_true(domain_metric_name_valid("load_pct"));
	assert_true(domain_metric_name_valid("0"));
	assert_false(domain_metric_name_valid(""));
	assert_false(domain_metric_name_valid(NULL));
	assert_false(domain_metric_name_valid("Temp"));
	assert_false(domain_metric_name_valid("temp-c"));
	assert_false(domain_metric_name_valid("temp.c"));
	memset(name, 'x', 32);
	name[32] = '\0';
	assert_true(domain_metric_name_valid(name));
	name[32] = 'x';
	name[33] = '\0';
	assert_false(domain_metric_name_valid(name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_parse_strict),
		cmocka_unit_test(test_grade),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_metric_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

/*
 * The threshold evaluator against contract sections 3 and 6: for_s on the
 * devices' ts, equality at the threshold, hysteresis, one firing alert per
 * (device, rule), stale samples, and invariants over random streams.
 */

#define S(sec) ((int64_t)(sec) * 1000000) /* seconds -> microseconds */

/* A rule that must build; the test fails otherwise. */
static struct rules_rule rule(const char *op, double threshold, double for_s, bool has_clear,
			      double clear)
{
	struct rules_rule r;
	char err[160];

	assert_int_equal(rules_rule_init(&r, "R-1", "*", "temp_c", op, threshold, for_s, has_clear,
					 clear, err, sizeof(err)), 0);
	return r;
}

static void test_ops(void **state)
{
	static const char *const names[] = { ">", ">=", "<", "<=", "==", "!=", "silent" };
	enum rules_op op = RULES_OP_GT;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(rules_op_parse(names[i], &op), 0);
		assert_int_equal(op, i);
		assert_string_equal(rules_op_name(op), names[i]);
	}
	assert_int_equal(rules_op_parse("=", &op), -1);
	assert_int_equal(rules_op_parse("> ", &op), -1);
	assert_int_equal(rules_op_parse("", &op), -1);
	assert_int_equal(rules_op_parse(NULL, &op), -1);
	assert_int_equal(op, RULES_OP_SILENT); /* untouched on failure */
	assert_string_equal(rules_op_name((enum rules_op)99), "invalid");
}

static void test_rule_init_checks(void **state)
{
	struct rules_rule r;
	char err[160];

	(void)state;
	memset(&r, 0x5a, sizeof(r));
	assert_int_equal(rules_rule_init(&r, "R-temp", "XJ-PR900", "temp_c", ">", 85, 60, true, 80,
					 err, sizeof(err)), 0);
	assert_string_equal(r.id, "R-temp");
	assert_string_equal(r.model, "XJ-PR900");
	assert_string_equal(r.metric, "temp_c");
	assert_int_equal(r.op, RULES_OP_GT);
	assert_int_equal(r.for_us, S(60));
	assert_true(r.has_clear);
	/* Fractional for_s keeps microseconds. */
	assert_int_equal(rules_rule_init(&r, "R", "*", "m", ">=", 1, 0.25, false, 0, err,
					 sizeof(err)), 0);
	assert_int_equal(r.for_us, 250000);
	/* A silent rule needs neither metric nor threshold. */
	assert_int_equal(rules_rule_init(&r, "R-silent", "*", NULL, "silent", NAN, 900, false, 0,
					 err, sizeof(err)), 0);
	assert_int_equal(r.op, RULES_OP_SILENT);
	assert_string_equal(r.metric, "");

#define BAD(substr, ...)                                                                  \
	do {                                                                              \
		err[0] = '\0';                                                            \
		assert_int_equal(rules_rule_init(&r, __VA_ARGS__, err, sizeof(err)), -1); \
		assert_non_null(strstr(err, substr));                                     \
	} while (0)
	BAD("id", "", "*", "temp_c", ">", 1, 0, false, 0);
	BAD("id", "R 1", "*", "temp_c", ">", 1, 0, false, 0);
	BAD("model", "R", "a b", "temp_c", ">", 1, 0, false, 0);
	BAD("op", "R", "*", "temp_c", "=>", 1, 0, false, 0);
	BAD("metric", "R", "*", NULL, ">", 1, 0, false, 0);
	BAD("metric", "R", "*", "Temp", ">", 1, 0, false, 0);
	BAD("threshold", "R", "*", "temp_c", ">", NAN, 0, false, 0);
	BAD("threshold", "R", "*", "temp_c", "<", INFINITY, 0, false, 0);
	BAD("for_s", "R", "*", "temp_c", ">", 1, -1, false, 0);
	BAD("for_s", "R", "*", "temp_c", ">", 1, NAN, false, 0);
	BAD("for_s", "R", "*", "temp_c", ">", 1, 1e13, false, 0);
	BAD("clear", "R", "*", "temp_c", ">", 85, 0, true, 86);
	BAD("clear", "R", "*", "temp_c", "<=", 10, 0, true, 9);
	BAD("clear", "R", "*", "temp_c", "==", 10, 0, true, 10);
	BAD("clear", "R", "*", "temp_c", "!=", 10, 0, true, 10);
	BAD("clear", "R", "*", "temp_c", ">", 85, 0, true, NAN);
#undef BAD
	/* clear equal to the threshold is allowed (no hysteresis band). */
	assert_int_equal(rules_rule_init(&r, "R", "*", "temp_c", ">", 85, 0, true, 85, err,
					 sizeof(err)), 0);
}

static void test_model(void **state)
{
	struct rules_rule any = rule(">", 1, 0, false, 0);
	struct rules_rule one;
	char err[160];

	(void)state;
	assert_int_equal(rules_rule_init(&one, "R", "XJ-PR900", "temp_c", ">", 1, 0, false, 0, err,
					 sizeof(err)), 0);
	assert_true(rules_matches_model(&any, "XJ-PR900"));
	assert_true(rules_matches_model(&any, NULL));
	assert_true(rules_matches_model(&one, "XJ-PR900"));
	assert_false(rules_matches_model(&one, "XJ-PR9000"));
	assert_false(rules_matches_model(&one, "xj-pr900"));
	assert_false(rules_matches_model(&one, NULL));
}

static void test_threshold_equality(void **state)
{
	struct rules_rule gt = rule(">", 85, 0, false, 0), ge = rule(">=", 85, 0, false, 0);
	struct rules_rule lt = rule("<", 10, 0, false, 0), le = rule("<=", 10, 0, false, 0);
	struct rules_rule eq = rule("==", 3, 0, false, 0), ne = rule("!=", 3, 0, false, 0);

	(void)state;
	assert_false(rules_condition(&gt, 85));
	assert_true(rules_condition(&gt, 85.0001));
	assert_true(rules_condition(&ge, 85));
	assert_false(rules_condition(&ge, 84.9999));
	assert_false(rules_condition(&lt, 10));
	assert_true(rules_condition(&lt, 9.5));
	assert_true(rules_condition(&le, 10));
	assert_true(rules_condition(&eq, 3));
	assert_false(rules_condition(&eq, 3.5));
	assert_false(rules_condition(&ne, 3));
	assert_true(rules_condition(&ne, -3));
	assert_false(rules_condition(&gt, NAN));
	assert_false(rules_condition(&ne, NAN));

	/* Held at exactly the threshold far beyond for_s: > never raises. */
	struct rules_rule gt60 = rule(">", 85, 60, true, 80);
	struct rules_state st;
	rules_state_init(&st);
	for (int i = 0; i < 10; i++)
		assert_int_equal(rules_eval(&gt60, &st, S(1000 + 30 * i), i + 1, 85), RULES_UPDATED);
	assert_false(st.pending);
	assert_false(st.firing);
	/* >= raises on the first sample at the threshold with for_s 0. */
	rules_state_init(&st);
	assert_int_equal(rules_eval(&ge, &st, S(1), 1, 85), RULES_RAISE);
	assert_true(st.firing);
}

static void test_for_s_window(void **state)
{
	struct rules_rule r = rule(">", 85, 60, true, 80);
	struct rules_state st;

	(void)state;
	rules_state_init(&st);
	/* Held 30 s only, then reset by a sample under the threshold. */
	assert_int_equal(rules_eval(&r, &st, S(1000), 1, 90), RULES_UPDATED);
	assert_true(st.pending);
	assert_int_equal(st.pending_since_us, S(1000));
	assert_int_equal(rules_eval(&r, &st, S(1030), 2, 91), RULES_UPDATED);
	assert_int_equal(st.pending_since_us, S(1000)); /* the window starts at the first */
	assert_int_equal(rules_eval(&r, &st, S(1040), 3, 70), RULES_UPDATED);
	assert_false(st.pending);
	/* 59.999999 s is not enough... */
	assert_int_equal(rules_eval(&r, &st, S(1050), 4, 90), RULES_UPDATED);
	assert_int_equal(rules_eval(&r, &st, S(1110) - 1, 5, 90), RULES_UPDATED);
	assert_false(st.firing);
	/* ...60 s exactly is. */
	assert_int_equal(rules_eval(&r, &st, S(1110), 6, 90), RULES_RAISE);
	assert_true(st.firing);
	assert_false(st.pending);
	assert_int_equal(st.last_ts_us, S(1110));
	assert_int_equal(st.last_seq, 6);
	/* Firing: further breaches raise nothing more. */
	assert_int_equal(rules_eval(&r, &st, S(1200), 7, 99), RULES_UPDATED);
	assert_true(st.firing);

	/* A reset in the middle of the window: the next breach starts over. */
	rules_state_init(&st);
	assert_int_equal(rules_eval(&r, &st, S(0), 1, 90), RULES_UPDATED);
	assert_int_equal(rules_eval(&r, &st, S(50), 2, 85), RULES_UPDATED); /* at threshold */
	assert_int_equal(rules_eval(&r, &st, S(70), 3, 90), RULES_UPDATED);
	assert_int_equal(rules_eval(&r, &st, S(120), 4, 90), RULES_UPDATED);
	assert_int_equal(rules_eval(&r, &st, S(130), 5, 90), RULES_RAISE);

	/* for_s 0 raises on the first sample. */
	struct rules_rule now = rule("<", 10, 0, false, 0);
	rules_state_init(&st);
	assert_int_equal(rules_eval(&now, &st, S(5), 1, 9), RULES_RAISE);
}

static void test_hysteresis_rising(void **state)
{
	struct rules_rule r = rule(">", 85, 0, true, 80);
	struct rules_state st;

	(void)state;
	rules_state_init(&st);
	assert_int_equal(rules_eval(&r, &st, S(1), 1, 86), RULES_RAISE);
	/* Between clear and threshold, and at the threshold: still firing. */
	assert_int_equal(rules_eval(&r, &st, S(2), 2, 82), RULES_UPDATED);
	assert_int_equal(rules_eval(&r, &st, S(3), 3, 85), RULES_UPDATED);
	assert_int_equal(rules_eval(&r, &st, S(4), 4, 80.0001), RULES_UPDATED);
	assert_true(st.firing);
	/* At clear: clears. */
	assert_int_equal(rules_eval(&r, &st, S(5), 5, 80), RULES_CLEAR);
	assert_false(st.firing);
	assert_false(st.pending);
	/* A value between clear and threshold raises nothing new. */
	assert_int_equal(rules_eval(&r, &st, S(6), 6, 84), RULES_UPDATED);
	/* A new breach raises a new alert. */
	assert_int_equal(rules_eval(&r, &st, S(7), 7, 90), RULES_RAISE);
	assert_int_equal(rules_eval(&r, &st, S(8), 8, 10), RULES_CLEAR);
}

static void test_hysteresis_falling_and_none(void **state)
{
	struct rules_rule lo = rule("<=", 10, 0, true, 15);
	struct rules_rule plain = rule(">", 85, 0, false, 0);
	struct rules_rule eq = rule("==", 3, 0, false, 0);
	struct rules_state st;

	(void)state;
	rules_state_init(&st);
	assert_int_equal(rules_eval(&lo, &st, S(1), 1, 10), RULES_RAISE);
	assert_int_equal(rules_eval(&lo, &st, S(2), 2, 14.9), RULES_UPDATED);
	assert_int_equal(rules_eval(&lo, &st, S(3), 3, 15), RULES_CLEAR);

	/* Without clear: clears when the condition no longer holds. */
	rules_state_init(&st);
	assert_int_equal(rules_eval(&plain, &st, S(1), 1, 86), RULES_RAISE);
	assert_int_equal(rules_eval(&plain, &st, S(2), 2, 85.5), RULES_UPDATED);
	assert_int_equal(rules_eval(&plain, &st, S(3), 3, 85), RULES_CLEAR);

	rules_state_init(&st);
	assert_int_equal(rules_eval(&eq, &st, S(1), 1, 3), RULES_RAISE);
	assert_int_equal(rules_eval(&eq, &st, S(2), 2, 3), RULES_UPDATED);
	assert_int_equal(rules_eval(&eq, &st, S(3), 3, 2), RULES_CLEAR);
	assert_false(rules_clears(&eq, 3));
	assert_true(rules_clears(&eq, 4));
	assert_false(rules_clears(&plain, NAN));
}

static void test_stale_samples(void **state)
{
	struct rules_rule r = rule(">", 85, 60, false, 0);
	struct rules_state st, before;

	(void)state;
	rules_state_init(&st);
	assert_int_equal(rules_eval(&r, &st, S(1000), 10, 90), RULES_UPDATED);
	before = st;
	/* Older ts (even with a newer seq): a late sample that would reset the
	 * window must not. */
	assert_int_equal(rules_eval(&r, &st, S(950), 11, 70), RULES_IGNORED);
	/* The same ts again, and a newer ts with an older or equal seq. */
	assert_int_equal(rules_eval(&r, &st, S(1000), 12, 70), RULES_IGNORED);
	assert_int_equal(rules_eval(&r, &st, S(1010), 10, 70), RULES_IGNORED);
	assert_int_equal(rules_eval(&r, &st, S(1010), 9, 70), RULES_IGNORED);
	assert_true(rules_state_equal(&st, &before));
	assert_int_equal(st.last_ts_us, S(1000));
	/* The window from 1000 still completes. */
	assert_int_equal(rules_eval(&r, &st, S(1060), 13, 90), RULES_RAISE);

	/* A replayed raise sample changes nothing (idempotent replay). */
	before = st;
	assert_int_equal(rules_eval(&r, &st, S(1060), 13, 90), RULES_IGNORED);
	assert_true(rules_state_equal(&st, &before));
}

static void test_silent_not_evaluated(void **state)
{
	struct rules_rule r;
	struct rules_state st;
	char err[160];

	(void)state;
	assert_int_equal(rules_rule_init(&r, "R-silent", "*", "temp_c", "silent", 0, 0, false, 0,
					 err, sizeof(err)), 0);
	rules_state_init(&st);
	assert_int_equal(rules_eval(&r, &st, S(1), 1, 1), RULES_IGNORED);
	assert_false(st.seen);
	assert_false(rules_condition(&r, 1));
}

static void test_state_equal(void **state)
{
	struct rules_state a, b;

	(void)state;
	rules_state_init(&a);
	rules_state_init(&b);
	assert_true(rules_state_equal(&a, &b));
	/* Fields that mean nothing in the current state do not count. */
	a.pending_since_us = 5;
	assert_true(rules_state_equal(&a, &b));
	a.pending = b.pending = true;
	assert_false(rules_state_equal(&a, &b));
	b.pending_since_us = 5;
	assert_true(rules_state_equal(&a, &b));
	a.firing = true;
	assert_false(rules_state_equal(&a, &b));
	b.firing = true;
	a.seen = b.seen = true;
	a.last_seq = 1;
	assert_false(rules_state_equal(&a, &b));
}

/* The condition as the contract words it, independent of rules.c. */
static bool model_holds(const char *op, double threshold, double v)
{
	if (strcmp(op, ">") == 0)
		return v > threshold;
	if (strcmp(op, ">=") == 0)
		return v >= threshold;
	if (strcmp(op, "<") == 0)
		return v < threshold;
	if (strcmp(op, "<=") == 0)
		return v <= threshold;
	if (strcmp(op, "==") == 0)
		return v == threshold;
	return v != threshold;
}

/* Random streams, compared with a model written from the contract's words
 * and checked for the invariants the service relies on. */
static void test_random_streams(void **state)
{
	(void)state;
	srand(12345);
	for (int round = 0; round < 200; round++) {
		static const char *const ops[] = { ">", ">=", "<", "<=", "==", "!=" };
		const char *op = ops[rand() % 6];
		double threshold = rand() % 5;
		bool has_clear = (op[0] == '>' || op[0] == '<') && rand() % 2;
		double clear = op[0] == '>' ? threshold - rand() % 3 : threshold + rand() % 3;
		struct rules_rule r = rule(op, threshold, rand() % 4, has_clear, clear);
		struct rules_state st;
		int64_t ts = 0, seq = 0, max_ts = 0, max_seq = 0;
		bool seen = false;
		bool firing = false;
		int64_t window = 0; /* model: start of the pending window */
		bool pending = false;

		rules_state_init(&st);
		for (int i = 0; i < 300; i++) {
			/* Mostly forward, sometimes late or repeated. */
			ts += rand() % 4 - 1;
			seq += rand() % 3 - (rand() % 5 == 0);
			double v = rand() % 7 - 1;
			struct rules_state before = st;
			enum rules_result res = rules_eval(&r, &st, S(ts), seq, v);

			if (seen && (ts <= max_ts || seq <= max_seq)) {
				assert_int_equal(res, RULES_IGNORED);
				assert_true(rules_state_equal(&st, &before));
				continue;
			}
			seen = true;
			max_ts = ts;
			max_seq = seq;
			assert_int_not_equal(res, RULES_IGNORED);
			/* The model. */
			enum rules_result want = RULES_UPDATED;
			bool holds = model_holds(op, threshold, v);
			if (firing) {
				bool clears = has_clear ? (op[0] == '>' ? v <= clear : v >= clear)
							: !holds;
				if (clears) {
					firing = false;
					pending = false;
					want = RULES_CLEAR;
				}
			} else if (!holds) {
				pending = false;
			} else {
				if (!pending) {
					pending = true;
					window = ts;
				}
				if (S(ts - window) >= r.for_us) {
					firing = true;
					pending = false;
					want = RULES_RAISE;
				}
			}
			assert_int_equal(res, want);
			assert_int_equal(st.firing, firing);
			assert_int_equal(st.pending, pending);
			if (pending)
				assert_int_equal(st.pending_since_us, S(window));
			assert_int_equal(st.last_ts_us, S(ts));
			/* Never pending and firing at once. */
			assert_false(st.pending && st.firing);
		}
	}
}

/* Device alarms: raise, repeat, clear, stale and same-ts messages. */
static void test_alarm_eval(void **state)
{
	struct rules_state st;

	(void)state;
	rules_state_init(&st);
	/* A clear of an alarm never seen raised: nothing, but remembered. */
	assert_int_equal(rules_alarm_eval(&st, S(5), 1, false), RULES_UPDATED);
	assert_false(st.firing);
	assert_int_equal(rules_alarm_eval(&st, S(10), 2, true), RULES_RAISE);
	assert_true(st.firing);
	/* The same alarm raised again: a repeat. */
	assert_int_equal(rules_alarm_eval(&st, S(11), 3, true), RULES_UPDATED);
	/* A duplicate and a late clear (older ts) are ignored. */
	assert_int_equal(rules_alarm_eval(&st, S(11), 3, false), RULES_IGNORED);
	assert_int_equal(rules_alarm_eval(&st, S(9), 9, false), RULES_IGNORED);
	assert_true(st.firing);
	/* Cleared in the same second as the repeat, by a newer seq. */
	assert_int_equal(rules_alarm_eval(&st, S(11), 4, false), RULES_CLEAR);
	assert_false(st.firing);
	assert_int_equal(rules_alarm_eval(&st, S(11), 4, false), RULES_IGNORED);
	/* The late raise of before the clear does not reopen it. */
	assert_int_equal(rules_alarm_eval(&st, S(10), 2, true), RULES_IGNORED);
	assert_false(st.firing);
	assert_false(st.pending);
	assert_int_equal(st.last_seq, 4);
	/* A new raise later is a new alert. */
	assert_int_equal(rules_alarm_eval(&st, S(20), 5, true), RULES_RAISE);
}

/* Flapping: more than max_cycles fire/clear cycles in the window fold
 * into one alert; it clears after a quiet window. */
static void test_flapping(void **state)
{
	struct rules_rule r = rule(">", 85, 0, true, 80);
	struct rules_flap_cfg c = { 2, S(100) };
	struct rules_state st;
	int64_t seq = 0, t = 0;

	(void)state;
	rules_state_init(&st);
#define FEED(sec, v) rules_flap(&c, &st, rules_eval(&r, &st, S(sec), ++seq, (v)), S(sec))
	/* Two cycles: announced as they happen. */
	assert_int_equal(FEED(0, 90), RULES_OUT_RAISE);
	assert_int_equal(FEED(10, 70), RULES_OUT_CLEAR);
	assert_int_equal(FEED(20, 90), RULES_OUT_RAISE);
	assert_int_equal(FEED(30, 70), RULES_OUT_CLEAR);
	assert_int_equal(FEED(40, 90), RULES_OUT_RAISE);
	/* The third clear within 100 s of the first: folded. */
	assert_int_equal(FEED(50, 70), RULES_OUT_FLAP);
	assert_true(st.flapping);
	assert_int_equal(st.cycles, 3);
	/* While it flaps nothing is announced. */
	assert_int_equal(FEED(60, 90), RULES_OUT_NONE);
	assert_int_equal(FEED(70, 70), RULES_OUT_NONE);
	assert_int_equal(st.quiet_since_us, S(70));
	assert_int_equal(FEED(120, 70), RULES_OUT_NONE);
	/* Quiet for the window (100 s after the last clear): cleared. */
	assert_int_equal(FEED(170, 70), RULES_OUT_CLEAR);
	assert_false(st.flapping);
	assert_int_equal(st.cycles, 0);
	/* A new breach is a new alert. */
	assert_int_equal(FEED(180, 90), RULES_OUT_RAISE);
	assert_int_equal(FEED(190, 70), RULES_OUT_CLEAR);

	/* Cycles further apart than the window never fold. */
	rules_state_init(&st);
	for (t = 1000; t < 3000; t += 150) {
		assert_int_equal(FEED(t, 90), RULES_OUT_RAISE);
		assert_int_equal(FEED(t + 60, 70), RULES_OUT_CLEAR);
	}
	/* A raise after a quiet window ends the flapping; the alert fires on. */
	rules_state_init(&st);
	for (t = 5000; t < 5030; t += 10) {
		FEED(t, 90);
		FEED(t + 5, 70);
	}
	assert_true(st.flapping);
	assert_int_equal(FEED(5200, 90), RULES_OUT_NONE);
	assert_false(st.flapping);
	assert_true(st.firing);
	assert_int_equal(FEED(5210, 70), RULES_OUT_CLEAR);
	/* Off: max_cycles 0 announces every cycle. */
	c.max_cycles = 0;
	rules_state_init(&st);
	for (t = 9000; t < 9100; t += 10) {
		assert_int_equal(FEED(t, 90), RULES_OUT_RAISE);
		assert_int_equal(FEED(t + 5, 70), RULES_OUT_CLEAR);
	}
	/* Stale messages are nothing. */
	assert_int_equal(rules_flap(&c, &st, RULES_IGNORED, S(1)), RULES_OUT_NONE);
#undef FEED
	/* The equality the apply relies on sees the flapping fields. */
	struct rules_state x, y;
	rules_state_init(&x);
	rules_state_init(&y);
	y.cycles = 1;
	y.window_start_us = 5;
	assert_false(rules_state_equal(&x, &y));
	x = y;
	x.flapping = true;
	assert_false(rules_state_equal(&x, &y));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_rule_init_checks),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_threshold_equality),
		cmocka_unit_test(test_for_s_window),
		cmocka_unit_test(test_hysteresis_rising),
		cmocka_unit_test(test_hysteresis_falling_and_none),
		cmocka_unit_test(test_stale_samples),
		cmocka_unit_test(test_silent_not_evaluated),
		cmocka_unit_test(test_state_equal),
		cmocka_unit_test(test_random_streams),
		cmocka_unit_test(test_alarm_eval),
		cmocka_unit_test(test_flapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

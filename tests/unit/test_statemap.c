/*
 * sc-ingest's fold of committed telemetry into each device's latest state
 * (services/ingest/statemap.c, compiled into this test): newest seq and ts,
 * latest arrival, run hours of the newest message that carried them, last
 * value of each metric, whatever order the messages are folded in.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "statemap.h"

/* Folds one message; metrics is copied (the map may take the copy). */
static void fold(struct statemap *m, const char *dev, uint64_t seq, int64_t ts, int64_t recv,
		 const char *hours, const char *metrics)
{
	struct dev_state s = { .seq = seq, .ts_us = ts, .recv_us = recv, .hours_ts_us = ts,
			       .hours_seq = seq };
	snprintf(s.device, sizeof(s.device), "%s", dev);
	snprintf(s.run_hours, sizeof(s.run_hours), "%s", hours);
	s.metrics = metrics ? strdup(metrics) : NULL;
	assert_int_equal(statemap_fold(m, &s), 0);
	free(s.metrics);
}

static const struct dev_state *find(const struct state_set *set, const char *dev)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->e[i].device, dev) == 0)
			return &set->e[i];
	return NULL;
}

/* The value of metric `name` in the state's metrics (NAN when absent); a
 * name given twice counts as jsonb counts it, the last one. */
static double metric(const struct dev_state *d, const char *name)
{
	cJSON *o = cJSON_Parse(d->metrics);
	double v = NAN;
	assert_non_null(o);
	for (const cJSON *it = o->child; it != NULL; it = it->next)
		if (strcmp(it->string, name) == 0)
			v = it->valuedouble;
	cJSON_Delete(o);
	return v;
}

static int keys(const struct dev_state *d)
{
	cJSON *o = cJSON_Parse(d->metrics);
	int n = cJSON_GetArraySize(o);
	cJSON_Delete(o);
	return n;
}

static void test_newest_wins(void **state)
{
	(void)state;
	struct statemap *m = statemap_new();
	struct state_set set;
	fold(m, "D2", 5, 5000, 5100, "", "{\"a\": 1}");
	fold(m, "D1", 10, 1000, 1100, "7.5", "{\"a\": 1, \"b\": 2}");
	fold(m, "D1", 11, 2000, 2100, "", "{\"a\": 3}");          /* no run hours, no b */
	fold(m, "D1", 9, 900, 3000, "6.0", "{\"a\": 0, \"c\": 4}"); /* older, arrived last */
	assert_int_equal(statemap_add_batch(m, 42), 0);
	assert_int_equal(statemap_count(m), 2);
	statemap_take(m, &set);
	assert_int_equal(statemap_count(m), 0);
	assert_int_equal(statemap_batches(m), 0);
	assert_int_equal(set.n, 2);
	assert_string_equal(set.e[0].device, "D1"); /* sorted */
	assert_string_equal(set.e[1].device, "D2");
	const struct dev_state *d = &set.e[0];
	assert_int_equal(d->seq, 11);
	assert_int_equal(d->ts_us, 2000);
	assert_int_equal(d->recv_us, 3000);
	assert_string_equal(d->run_hours, "7.5"); /* of seq 10, newer than 9's 6.0 */
	assert_true(metric(d, "a") == 3);  /* newest */
	assert_true(metric(d, "b") == 2);  /* kept from seq 10 */
	assert_true(metric(d, "c") == 4);  /* only the older message had it */
	assert_int_equal(keys(d), 3);
	assert_int_equal(set.nbatches, 1);
	assert_int_equal(set.batches[0], 42);
	state_set_free(&set);
	statemap_free(m);
}

static void test_same_ts_by_seq(void **state)
{
	(void)state;
	struct statemap *m = statemap_new();
	struct state_set set;
	fold(m, "D1", 2, 1000, 10, "2.0", "{\"a\": 2}");
	fold(m, "D1", 1, 1000, 20, "1.0", "{\"a\": 1}");
	statemap_take(m, &set);
	assert_int_equal(set.e[0].seq, 2);
	assert_string_equal(set.e[0].run_hours, "2.0");
	assert_true(metric(&set.e[0], "a") == 2);
	state_set_free(&set);
	statemap_free(m);
}

/* Texts the fast scanner refuses (an escaped key, odd spacing) merge by
 * cJSON: the same values. */
static void test_odd_texts(void **state)
{
	(void)state;
	struct statemap *m = statemap_new();
	struct state_set set;
	fold(m, "D1", 1, 1000, 1, "", " {\n\"a\" : 1 ,\"b\":2 }\n");
	fold(m, "D1", 2, 2000, 2, "", "{\"\\u0061\": 5}");
	fold(m, "D1", 3, 3000, 3, "", "{}");
	statemap_take(m, &set);
	assert_true(metric(&set.e[0], "a") == 5);
	assert_true(metric(&set.e[0], "b") == 2);
	assert_int_equal(keys(&set.e[0]), 2);
	state_set_free(&set);
	statemap_free(m);
}

/* A set that could not be written folds back under newer states. */
static void test_put_back(void **state)
{
	(void)state;
	struct statemap *m = statemap_new();
	struct state_set set;
	fold(m, "D1", 1, 1000, 1, "1.0", "{\"a\": 1, \"b\": 1}");
	assert_int_equal(statemap_add_batch(m, 7), 0);
	statemap_take(m, &set);
	fold(m, "D1", 2, 2000, 2, "", "{\"a\": 2}");
	assert_int_equal(statemap_add_batch(m, 8), 0);
	assert_int_equal(statemap_put_back(m, &set), 0);
	assert_null(set.e);
	statemap_take(m, &set);
	assert_int_equal(set.n, 1);
	assert_int_equal(set.e[0].seq, 2);
	assert_string_equal(set.e[0].run_hours, "1.0");
	assert_true(metric(&set.e[0], "a") == 2);
	assert_true(metric(&set.e[0], "b") == 1);
	assert_int_equal(set.nbatches, 2);
	state_set_free(&set);
	statemap_free(m);
}

/* Many devices: every one found again through the index as it grows. */
static void test_many(void **state)
{
	(void)state;
	struct statemap *m = statemap_new();
	struct state_set set;
	char dev[32], metrics[32];
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 20000; i++) {
			snprintf(dev, sizeof(dev), "DV%05d", i);
			snprintf(metrics, sizeof(metrics), "{\"r\": %d}", round);
			fold(m, dev, (uint64_t)round, round, round, "", metrics);
		}
	assert_int_equal(statemap_count(m), 20000);
	statemap_take(m, &set);
	assert_int_equal(set.n, 20000);
	for (size_t i = 0; i < set.n; i++) {
		snprintf(dev, sizeof(dev), "DV%05zu", i);
		assert_string_equal(set.e[i].device, dev);
		assert_int_equal(set.e[i].seq, 2);
		assert_true(metric(&set.e[i], "r") == 2);
	}
	assert_non_null(find(&set, "DV12345"));
	state_set_free(&set);
	statemap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newest_wins),
		cmocka_unit_test(test_same_ts_by_seq),
		cmocka_unit_test(test_odd_texts),
		cmocka_unit_test(test_put_back),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

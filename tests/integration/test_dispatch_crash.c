/*
 * Two sc-dispatch instances and a kill -9 in the middle of a batch
 * (issue 5, "Concurrency and restarts"): 2,000 tickets arrive at once for
 * 800 units of capacity (300 engineers of 2, 4 partners of 50); both
 * instances plan and offer; one is killed with SIGKILL while its offers
 * are being made, then started again. At the end no ticket is lost (every
 * ticket is offered with exactly one live order, or waits in `new` with
 * none), nobody is over capacity, every unit is in use (no capacity was
 * counted twice or leaked), and the orders topic saw each offer.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define NENG 300
#define NPART 4
#define UNITS (NENG * 2 + NPART * 50)
#define NTICKETS 2000

/* The country: one province, a site, NENG engineers spread around it. */
static char *country(void)
{
	size_t cap = 64 * 1024, n = 0;
	char *s = malloc(cap);
	if (s == NULL)
		return NULL;
	n += (size_t)snprintf(s + n, cap - n,
		"{\"settings\": {\"offer_timeout_s\": 3600, \"max_offer_attempts\": 5},\n"
		" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],\n"
		" \"customers\": [{\"id\": \"C1\", \"tier\": \"key\", \"province\": \"HA\"}],\n"
		" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62}],\n"
		" \"engineers\": [");
	for (int i = 0; i < NENG && n < cap - 256; i++)
		n += (size_t)snprintf(s + n, cap - n,
			"%s{\"id\": \"E%03d\", \"province\": \"HA\", \"lat\": %.3f, \"lon\": %.3f,"
			" \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 2}\n",
			i ? "," : "", i, 34.0 + (i % 17) * 0.1, 113.0 + (i % 13) * 0.1);
	n += (size_t)snprintf(s + n, cap - n, "],\n \"partners\": [");
	for (int i = 0; i < NPART && n < cap - 256; i++)
		n += (size_t)snprintf(s + n, cap - n,
			"%s{\"id\": \"P%d\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 3},"
			" \"capacity\": 50, \"certified_until\": \"2099-12-31\", \"response_s\": %d,"
			" \"cost_per_job\": %d}\n", i ? "," : "", i, 3600 + 600 * i, 500 + 100 * i);
	snprintf(s + n, cap - n, "]}\n");
	return s;
}

int main(void)
{
	char *json = country();
	struct harness *h = json ? fixture_start(json) : NULL;
	struct harness_mqtt *obs = NULL;
	pid_t a = -1, b = -1;
	const char *env_a[] = { "SC_SWEEP_MS=500", "SC_INSTANCE=a", NULL };
	const char *env_b[] = { "SC_SWEEP_MS=500", "SC_INSTANCE=b", NULL };
	int rc = 1;

	CHECK(h != NULL);
	obs = harness_mqtt_connect(h, "test-observer");
	CHECK(obs != NULL);
	CHECK(harness_mqtt_subscribe(obs, "sc/v1/+/+/orders") == 0);
	a = harness_spawn(h, "sc-dispatch", env_a, NULL);
	b = harness_spawn(h, "sc-dispatch", env_b, NULL);
	CHECK(a > 0 && b > 0);
	/* Let both connect before the burst. */
	for (int i = 0; i < 200 && (fixture_metric(h, a, "sc_dispatch_decision_seconds_count") < 0 ||
					 fixture_metric(h, b, "sc_dispatch_decision_seconds_count") < 0); i++)
		usleep(50 * 1000);
	usleep(500 * 1000);

	{
		char sql[512];
		snprintf(sql, sizeof(sql),
			 "SELECT sc_ticket_open(jsonb_build_object('source', 'rule', 'site_id', 'S1',"
			 " 'category', 'fault', 'severity', (ARRAY['critical','major','minor'])[1 + g %% 3],"
			 " 'skill', 'relay_protection', 'min_grade', 1 + g %% 3, 'source_ref', 'k-' || g))"
			 " FROM generate_series(1, %d) g", NTICKETS);
		CHECK(harness_sql_exec(h, sql) == 0);
	}
	/* Mid-batch: some offers made, far from all. */
	for (int i = 0; i < 2000; i++) {
		long n = harness_sql_long(h, "SELECT count(*) FROM work_order");
		if (n >= 20)
			break;
		usleep(2000);
	}
	long before = harness_sql_long(h, "SELECT count(*) FROM work_order");
	CHECK(harness_kill9(h, a) == 0);
	a = -1;
	fprintf(stderr, "killed instance a with %ld of %d offers made\n", before, UNITS);
	CHECK(before < UNITS);
	a = harness_spawn(h, "sc-dispatch", env_a, NULL);
	CHECK(a > 0);

	/* Every unit ends up used, and stays so. */
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM work_order WHERE state = 'offered'", UNITS, 120000));
	usleep(2000 * 1000);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order") == UNITS);
	/* No ticket lost: offered ones hold exactly one live order, the rest
	 * wait in new with none. */
	CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket WHERE state = 'offered'") == UNITS);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket WHERE state = 'new'") == NTICKETS - UNITS);
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM ticket t WHERE (t.state = 'offered') <> EXISTS (SELECT 1 FROM"
		" work_order w WHERE w.ticket_id = t.id AND w.state = 'offered')") == 0);
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM (SELECT ticket_id FROM work_order GROUP BY ticket_id"
		" HAVING count(*) > 1) x") == 0);
	/* Nobody over capacity; every unit counted once. */
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM engineer e WHERE (SELECT count(*) FROM work_order w"
		" WHERE w.engineer_id = e.id AND w.state = 'offered') <> e.max_concurrent") == 0);
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM partner p WHERE (SELECT count(*) FROM work_order w"
		" WHERE w.partner_id = p.id AND w.state = 'offered') <> p.capacity") == 0);
	/* Every offer was published (at least once; the outbox may repeat). */
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM outbox WHERE topic LIKE '%/orders'", 0, 60000));
	{
		long seen = 0;
		char *p;
		while ((p = harness_mqtt_wait(obs, "/orders", 2000, NULL)) != NULL) {
			seen++;
			free(p);
		}
		fprintf(stderr, "offers seen on the orders topics: %ld\n", seen);
		CHECK(seen >= UNITS);
	}

	CHECK(harness_stop_program(h, a, SIGTERM) == 0);
	a = -1;
	CHECK(harness_stop_program(h, b, SIGTERM) == 0);
	b = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	harness_mqtt_free(obs);
	harness_stop(h);
	free(json);
	fprintf(stderr, "dispatch_crash: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

/*
 * Return visits and feedback (issue 6, contract section 2.5) with sc-slamon
 * and the broker running. Settings: return_visit_after_s 1,
 * return_visit_timeout_s 3. Tickets come from requests R-A ... R-E and are
 * resolved through their orders (sc_order_offer, accept, resolved).
 *
 * - A resolved: its visit falls due after 1 s (ticket event with
 *   "return_visit": "due"); feedback score 5 on sc/v1/requests/R-A/feedback
 *   is stored with its SERVQUAL dimensions, the visit done, A `closed`; the
 *   same feedback again is ignored (not rejected, not stored twice);
 * - B: score 2 opens a complaint ticket with parent_ticket_id B; B closed;
 * - C: nobody answers: the visit times out (1 s + 3 s) and C is `closed`;
 * - D (not resolved): its feedback is rejected `bad_transition`; unknown
 *   request: `bad_topic`; ticket_id of another request: `schema`; not JSON:
 *   `bad_json`; score 9: `schema`. Rejections are kept and announced;
 * - E: sc_feedback_submit (the API's path) records the same way;
 * - the metric sc_slamon_feedback_total counts by result; SIGTERM exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static const char data_set[] =
	"{\"settings\": {\"return_visit_after_s\": 1, \"return_visit_timeout_s\": 3},"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\"}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\"}],"
	" \"devices\": [{\"id\": \"DA\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"DB\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"DC\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"DD\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"DE\", \"site_id\": \"S1\", \"model\": \"M\"}],"
	" \"engineers\": [{\"id\": \"E1\", \"kind\": \"onsite\", \"province\": \"HA\","
	"                  \"skills\": {\"x\": 4}, \"max_concurrent\": 10}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 3600, \"arrive_s\": 7200,"
	"                     \"resolve_s\": 14400, \"calendar\": \"24x7\", \"warn_pct\": 75}]"
	"}";

static long q(struct harness *h, const char *fmt, const char *arg)
{
	char sql[2048];
	snprintf(sql, sizeof(sql), fmt, arg, arg, arg);
	return harness_sql_long(h, sql);
}

/* Text of the first value of sql (one %s) into out. 0 or -1. */
static int qtext(struct harness *h, const char *fmt, const char *arg, char *out, size_t len)
{
	char sql[2048];
	snprintf(sql, sizeof(sql), fmt, arg);
	PGresult *r = PQexec(harness_pg(h), sql);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	} else {
		fprintf(stderr, "test_sla_visit: %s: %s\n", sql, PQerrorMessage(harness_pg(h)));
	}
	PQclear(r);
	return rc;
}

/* Ticket from request R-<x> about device D<x>; resolved through its order
 * unless `resolve` is false. Ticket id into out. */
static int ticket(struct harness *h, const char *x, bool resolve, char *out, size_t len)
{
	char sql[1024], order[32];
	snprintf(sql, sizeof(sql),
		 "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"request\", \"site_id\": \"S1\","
		 " \"device_id\": \"D%s\", \"category\": \"fault\", \"severity\": \"major\", \"skill\": \"x\","
		 " \"channel\": \"hotline\", \"request_id\": \"R-%s\"}')", x, x);
	if (qtext(h, "%s", sql, out, len) != 0)
		return -1;
	if (!resolve)
		return 0;
	if (qtext(h, "SELECT sc_order_offer('%s', 'E1', NULL, 'onsite')", out, order, sizeof(order)) != 0)
		return -1;
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM sc_order_event('engineer', 'E1', '{\"order_id\": \"%s\","
		 " \"event\": \"accept\", \"ts\": \"2026-11-23T08:00:00Z\"}') WHERE result = 'applied'", order);
	if (harness_sql_long(h, sql) != 1)
		return -1;
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM sc_order_event('engineer', 'E1', '{\"order_id\": \"%s\","
		 " \"event\": \"resolved\", \"first_time_fix\": true, \"ts\": \"2026-11-23T09:00:00Z\"}')"
		 " WHERE result = 'applied'", order);
	return harness_sql_long(h, sql) == 1 ? 0 : -1;
}

static int send(struct harness_mqtt *m, const char *request, const char *payload)
{
	char topic[128];
	snprintf(topic, sizeof(topic), "sc/v1/requests/%s/feedback", request);
	return harness_mqtt_publish(m, topic, payload, 1);
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *watch = NULL, *pub = NULL;
	char a[32], b[32], c[32], d[32], e[32], msg[512], needle[64];
	char *p = NULL;
	int rc = 1;
	pid_t slamon = -1;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	watch = harness_mqtt_connect(h, "test-watch");
	pub = harness_mqtt_connect(h, "test-pub");
	CHECK(watch != NULL && pub != NULL);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/ops/#") == 0);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/rejected") == 0);
	slamon = harness_spawn(h, "sc-slamon", NULL, NULL);
	CHECK(slamon > 0);
	for (int i = 0; i < 100 && fixture_metric(h, slamon, "sc_slamon_timers_pending") < 0; i++)
		usleep(100 * 1000);

	CHECK(ticket(h, "A", true, a, sizeof(a)) == 0);
	CHECK(ticket(h, "B", true, b, sizeof(b)) == 0);
	CHECK(ticket(h, "C", true, c, sizeof(c)) == 0);
	CHECK(ticket(h, "D", false, d, sizeof(d)) == 0);
	CHECK(ticket(h, "E", true, e, sizeof(e)) == 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM return_visit WHERE state = 'scheduled'"
				  " AND due_at - now() BETWEEN interval '0.5 seconds' AND interval '1 second'") == 4);

	/* --- A: due after 1 s, announced; feedback 5 closes it. --- */
	snprintf(needle, sizeof(needle), "\"ticket_id\": \"%s\"", a);
	CHECK(q(h, "SELECT count(*) FROM return_visit WHERE ticket_id = '%s'", a) == 1);
	p = fixture_wait_payload(watch, "sc/v1/ops/HA/tickets", "\"return_visit\": \"due\"", 5000);
	CHECK(p != NULL);
	free(p);
	p = NULL;
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM return_visit WHERE state = 'due'", 4, 3000));
	snprintf(msg, sizeof(msg),
		 "{\"ticket_id\": \"%s\", \"score\": 5, \"dimensions\": {\"reliability\": 4,"
		 " \"responsiveness\": 5, \"assurance\": 4, \"empathy\": 3, \"tangibles\": 2},"
		 " \"comment\": \"fast and tidy\"}", a);
	CHECK(send(pub, "R-A", msg) == 0);
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM feedback", 1, 5000));
	CHECK(q(h, "SELECT count(*) FROM feedback WHERE ticket_id = '%s' AND score = 5 AND reliability = 4"
		   " AND responsiveness = 5 AND assurance = 4 AND empathy = 3 AND tangibles = 2"
		   " AND comment = 'fast and tidy'", a) == 1);
	CHECK(q(h, "SELECT count(*) FROM return_visit WHERE ticket_id = '%s' AND state = 'done'", a) == 1);
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'closed'", a) == 1);
	/* Again: ignored. */
	CHECK(send(pub, "R-A", msg) == 0);

	/* --- B: score 2 opens a complaint linked to it. --- */
	snprintf(msg, sizeof(msg), "{\"ticket_id\": \"%s\", \"score\": 2, \"comment\": \"came twice\"}", b);
	CHECK(send(pub, "R-B", msg) == 0);
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM feedback", 2, 5000));
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE parent_ticket_id = '%s' AND category = 'complaint'"
		   " AND state = 'new' AND description = 'came twice'", b) == 1);
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'closed'", b) == 1);
	snprintf(needle, sizeof(needle), "\"parent_ticket_id\": \"%s\"", b);
	p = fixture_wait_payload(watch, "sc/v1/ops/HA/tickets", needle, 5000);
	CHECK(p != NULL && strstr(p, "\"category\": \"complaint\"") != NULL);
	free(p);
	p = NULL;

	/* --- Rejections. --- */
	snprintf(msg, sizeof(msg), "{\"ticket_id\": \"%s\", \"score\": 4}", d);
	CHECK(send(pub, "R-D", msg) == 0);
	CHECK(send(pub, "R-NOPE", msg) == 0);
	snprintf(msg, sizeof(msg), "{\"ticket_id\": \"%s\", \"score\": 4}", e);
	CHECK(send(pub, "R-C", msg) == 0);
	CHECK(send(pub, "R-C", "{\"ticket_id\": ") == 0);
	snprintf(msg, sizeof(msg), "{\"ticket_id\": \"%s\", \"score\": 9}", c);
	CHECK(send(pub, "R-C", msg) == 0);
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM rejected", 5, 5000));
	CHECK(harness_sql_long(h, "SELECT count(*) FROM rejected WHERE topic LIKE 'sc/v1/requests/R-%/feedback'"
				  " AND (topic, reason) IN (('sc/v1/requests/R-D/feedback', 'bad_transition'),"
				  " ('sc/v1/requests/R-NOPE/feedback', 'bad_topic'),"
				  " ('sc/v1/requests/R-C/feedback', 'schema'), ('sc/v1/requests/R-C/feedback', 'bad_json'))") == 5);
	p = fixture_wait_payload(watch, "sc/v1/rejected", "bad_transition", 5000);
	CHECK(p != NULL);
	free(p);
	p = NULL;

	/* --- C: no answer; timed out after 1 + 3 s, closed. --- */
	{
		/* E may time out too meanwhile (a slow machine): wait for C's. */
		char sql[256];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM return_visit WHERE ticket_id = '%s'"
			 " AND state = 'timed_out'", c);
		CHECK(harness_wait_sql(h, sql, 1, 10000));
	}
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'closed'"
		   " AND state_reason = 'return visit timed out'", c) == 1);

	/* --- E: through sc_feedback_submit (the API's path). --- */
	CHECK(qtext(h, "SELECT sc_feedback_submit('%s', '{\"score\": 3, \"dimensions\": {\"empathy\": 5}}',"
		       " 'api')->>'result'", e, msg, sizeof(msg)) == 0);
	CHECK(strcmp(msg, "recorded") == 0);
	CHECK(q(h, "SELECT count(*) FROM feedback WHERE ticket_id = '%s' AND score = 3 AND empathy = 5", e) == 1);
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'closed'", e) == 1);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM feedback WHERE ticket_id IN (SELECT id FROM ticket"
				  " WHERE category <> 'complaint')") == 3);

	CHECK(fixture_wait_metric(h, slamon,
				  "sc_slamon_feedback_total{result=\"recorded\"}",
				  2, 5000) == 2);
	CHECK(fixture_wait_metric(h, slamon,
				  "sc_slamon_feedback_total{result=\"repeat\"}",
				  1, 5000) == 1);
	CHECK(fixture_wait_metric(h, slamon,
				  "sc_slamon_feedback_total{result=\"rejected\"}",
				  5, 5000) == 5);

	CHECK(harness_stop_program(h, slamon, SIGTERM) == 0);
	slamon = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	harness_mqtt_free(pub);
	harness_mqtt_free(watch);
	harness_stop(h);
	fprintf(stderr, "test_sla_visit: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

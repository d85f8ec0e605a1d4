/*
 * Manual dispatch and withdrawals (issue 5): `scctl assign`, `reassign`,
 * `cancel` against a running sc-dispatch, over the real database and
 * broker. Checks the withdrawals announced on the orders topics
 * ({"order_id": ..., "withdrawn": true}), capacity released, refusals
 * (exit 1) and bad usage (exit 2).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#define WAIT_MS 10000

static const char master[] =
	"{\"settings\": {\"offer_timeout_s\": 60, \"max_offer_attempts\": 5, \"travel_kmh\": 60},\n"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],\n"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"}],\n"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62}],\n"
	" \"engineers\": [\n"
	"  {\"id\": \"E-near\", \"province\": \"HA\", \"lat\": 34.76, \"lon\": 113.63,\n"
	"   \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 1},\n"
	"  {\"id\": \"E-far\", \"province\": \"HA\", \"lat\": 35.5, \"lon\": 114.5,\n"
	"   \"skills\": {\"relay_protection\": 2}, \"max_concurrent\": 1},\n"
	"  {\"id\": \"E-rem\", \"kind\": \"remote\", \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 2}],\n"
	" \"partners\": [\n"
	"  {\"id\": \"P-ha\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 2}, \"capacity\": 5,\n"
	"   \"certified_until\": \"2099-12-31\", \"response_s\": 7200, \"cost_per_job\": 800}]\n"
	"}\n";

/* Runs scctl with args; its exit status (output into out). */
static int scctl(struct harness *h, char *out, size_t len, const char *const *args)
{
	int rc = harness_run(h, "scctl", args, out, len);
	fprintf(stderr, "scctl %s %s: exit %d: %s", args[0], args[1] ? args[1] : "", rc, out);
	return rc;
}

/* The first column of sql's first row into buf. 0 or -1. */
static int sql_text(struct harness *h, char *buf, size_t len, const char *sql)
{
	PGresult *res = PQexec(harness_pg(h), sql);
	int rc = -1;
	buf[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static bool wait_sqlf(struct harness *h, long expected, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool wait_sqlf(struct harness *h, long expected, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return harness_wait_sql(h, sql, expected, WAIT_MS);
}

/* Waits for a message on topic (substring) whose payload holds needle. */
static bool expect(struct harness_mqtt *m, const char *topic, const char *needle)
{
	char *p = fixture_wait_payload(m, topic, needle, WAIT_MS);
	if (p == NULL)
		fprintf(stderr, "nothing on %s with %s\n", topic, needle);
	free(p);
	return p != NULL;
}

/* The live order of ticket (or ""). */
static int live_order(struct harness *h, const char *ticket, char *buf, size_t len)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT id FROM work_order WHERE ticket_id = '%s' AND state IN"
		 " ('offered', 'accepted', 'en_route', 'on_site')", ticket);
	return sql_text(h, buf, len, sql);
}

int main(void)
{
	struct harness *h = fixture_start(master);
	struct harness_mqtt *obs = NULL, *app = NULL;
	pid_t pid = -1;
	char t1[16], t2[16], w1[16], w2[16], w3[16], out[4096], needle[64], sql[512], ev[256];
	int rc = 1;

	CHECK(h != NULL);
	obs = harness_mqtt_connect(h, "test-observer");
	app = harness_mqtt_connect(h, "test-app");
	CHECK(obs != NULL && app != NULL);
	CHECK(harness_mqtt_subscribe(obs, "sc/v1/engineers/+/orders") == 0);
	CHECK(harness_mqtt_subscribe(obs, "sc/v1/partners/+/orders") == 0);
	CHECK(harness_mqtt_subscribe(obs, "sc/v1/ops/+/tickets") == 0);
	{
		const char *env[] = { "SC_SWEEP_MS=300", NULL };
		pid = harness_spawn(h, "sc-dispatch", env, NULL);
		CHECK(pid > 0);
	}

	/* T1 goes to E-near by itself. */
	CHECK(sql_text(h, t1, sizeof(t1),
		       "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"rule\", \"source_ref\": \"m1\","
		       " \"site_id\": \"S1\", \"category\": \"fault\", \"severity\": \"major\","
		       " \"skill\": \"relay_protection\", \"min_grade\": 2}')") == 0);
	CHECK(expect(obs, "engineers/E-near/orders", t1));
	CHECK(live_order(h, t1, w1, sizeof(w1)) == 0);

	/* Bad usage: exit 2, nothing changes. */
	{
		const char *a1[] = { "assign", t1, NULL };
		const char *a2[] = { "assign", t1, "--engineer", "E-far", "--partner", "P-ha", NULL };
		const char *a3[] = { "assign", t1, "--engineer", "E-far", "--mode", "teleport", NULL };
		const char *a4[] = { "assign", t1, "--engineer", "E-far", "--frob", NULL };
		const char *a5[] = { "cancel", NULL };
		const char *a6[] = { "reassign", t1, "--engineer", NULL };
		CHECK(scctl(h, out, sizeof(out), a1) == 2);
		CHECK(scctl(h, out, sizeof(out), a2) == 2);
		CHECK(scctl(h, out, sizeof(out), a3) == 2);
		CHECK(scctl(h, out, sizeof(out), a4) == 2);
		CHECK(scctl(h, out, sizeof(out), a5) == 2);
		CHECK(scctl(h, out, sizeof(out), a6) == 2);
	}
	/* Refusals: exit 1, nothing changes. */
	{
		const char *a1[] = { "assign", t1, "--engineer", "E-ghost", NULL };
		const char *a2[] = { "assign", t1, "--engineer", "E-near", "--mode", "remote", NULL };
		const char *a3[] = { "assign", "T999999", "--engineer", "E-far", NULL };
		const char *a4[] = { "assign", t1, "--partner", "P-ha", "--mode", "onsite", NULL };
		CHECK(scctl(h, out, sizeof(out), a1) == 1 && strstr(out, "no such engineer"));
		CHECK(scctl(h, out, sizeof(out), a2) == 1 && strstr(out, "bad_mode"));
		CHECK(scctl(h, out, sizeof(out), a3) == 1 && strstr(out, "no such ticket"));
		CHECK(scctl(h, out, sizeof(out), a4) == 1 && strstr(out, "bad_mode"));
	}
	CHECK(live_order(h, t1, needle, sizeof(needle)) == 0 && strcmp(needle, w1) == 0);

	/* assign over an open offer: E-near's offer is withdrawn (announced on
	 * its topic, its unit free), E-far gets a new one. */
	{
		const char *a[] = { "assign", t1, "--engineer", "E-far", NULL };
		CHECK(scctl(h, out, sizeof(out), a) == 0);
	}
	snprintf(needle, sizeof(needle), "\"order_id\": \"%s\", \"withdrawn\": true", w1);
	CHECK(expect(obs, "engineers/E-near/orders", needle));
	CHECK(expect(obs, "engineers/E-far/orders", t1));
	CHECK(live_order(h, t1, w2, sizeof(w2)) == 0 && strcmp(w1, w2) != 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order WHERE engineer_id = 'E-near'"
				  " AND state IN ('offered', 'accepted', 'en_route', 'on_site')") == 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket_history WHERE actor = 'scctl'"
				  " AND detail->>'withdrawn_order' IS NOT NULL") == 1);

	/* E-far accepts: plain assign is refused (in progress), reassign moves
	 * it to the partner and withdraws the accepted order. */
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:00Z\"}", w2);
	CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-far/events", ev, 1) == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t1));
	{
		const char *a1[] = { "assign", t1, "--partner", "P-ha", NULL };
		const char *a2[] = { "--json", "reassign", t1, "--partner", "P-ha", "--reason", "faster", NULL };
		CHECK(scctl(h, out, sizeof(out), a1) == 1 && strstr(out, "in_progress"));
		CHECK(scctl(h, out, sizeof(out), a2) == 0);
		snprintf(needle, sizeof(needle), "\"withdrawn\":\t\"%s\"", w2);
		CHECK(strstr(out, needle) != NULL);
	}
	snprintf(needle, sizeof(needle), "\"order_id\": \"%s\", \"withdrawn\": true", w2);
	CHECK(expect(obs, "engineers/E-far/orders", needle));
	CHECK(expect(obs, "partners/P-ha/orders", "\"mode\": \"outsourced\""));
	CHECK(live_order(h, t1, w3, sizeof(w3)) == 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM work_order WHERE id = '%s' AND partner_id = 'P-ha'"
				   " AND state = 'offered'", w3);
	CHECK(harness_sql_long(h, sql) == 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'offered'"
				   " AND mode = 'outsourced'", t1);
	CHECK(harness_sql_long(h, sql) == 1);
	/* The withdrawn holder's events are refused from now on. */
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"en_route\", \"ts\": \"2026-01-01T00:01:00Z\"}", w2);
	CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-far/events", ev, 1) == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM rejected WHERE reason = 'bad_transition'"));

	/* Full: T2 goes to E-near (E-far is free again but farther); a
	 * reassign of T1 to E-near is refused, nothing changes. */
	CHECK(sql_text(h, t2, sizeof(t2),
		       "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"rule\", \"source_ref\": \"m2\","
		       " \"site_id\": \"S1\", \"category\": \"fault\", \"severity\": \"major\","
		       " \"skill\": \"relay_protection\", \"min_grade\": 3}')") == 0);
	CHECK(expect(obs, "engineers/E-near/orders", t2));
	{
		const char *a[] = { "reassign", t1, "--engineer", "E-near", NULL };
		CHECK(scctl(h, out, sizeof(out), a) == 1 && strstr(out, "full"));
	}
	CHECK(live_order(h, t1, needle, sizeof(needle)) == 0 && strcmp(needle, w3) == 0);

	/* cancel: the partner's offer withdrawn and announced, clocks
	 * cancelled, ticket cancelled; a second cancel is refused. */
	{
		const char *a1[] = { "cancel", t1, "--reason", "customer fixed it", "--json", NULL };
		const char *a2[] = { "cancel", t1, NULL };
		CHECK(scctl(h, out, sizeof(out), a1) == 0 && strstr(out, "\"cancelled\""));
		CHECK(scctl(h, out, sizeof(out), a2) == 1 && strstr(out, "no longer open"));
	}
	snprintf(needle, sizeof(needle), "\"order_id\": \"%s\", \"withdrawn\": true", w3);
	CHECK(expect(obs, "partners/P-ha/orders", needle));
	/* respond stopped at the accept; arrive and resolve cancelled now. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s'"
				   " AND state = 'cancelled'", t1);
	CHECK(harness_sql_long(h, sql) == 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s'"
				   " AND fired_at IS NULL", t1);
	CHECK(harness_sql_long(h, sql) == 0);
	CHECK(expect(obs, "ops/HA/tickets", "customer fixed it"));
	CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order WHERE partner_id = 'P-ha'"
				  " AND state IN ('offered', 'accepted', 'en_route', 'on_site')") == 0);

	/* A ticket in the manual queue (nobody has grade 4): assign works from
	 * there, to the remote engineer in remote mode by its kind. */
	CHECK(sql_text(h, t2, sizeof(t2),
		       "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"rule\", \"source_ref\": \"m3\","
		       " \"site_id\": \"S1\", \"category\": \"fault\", \"severity\": \"minor\","
		       " \"skill\": \"relay_protection\", \"min_grade\": 4}')") == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'manual'", t2));
	{
		const char *a[] = { "assign", t2, "--engineer", "E-rem", NULL };
		CHECK(scctl(h, out, sizeof(out), a) == 0);
	}
	CHECK(expect(obs, "engineers/E-rem/orders", "\"mode\": \"remote\""));

	CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
	pid = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	harness_mqtt_free(obs);
	harness_mqtt_free(app);
	harness_stop(h);
	fprintf(stderr, "dispatch_manual: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

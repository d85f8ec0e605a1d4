/*
 * Province KPIs on a known data set (issue 6): rows written straight into
 * the tables with times relative to now(), then every figure of
 * sc_kpi('HA') compared with its value worked out by hand (below), and the
 * snapshot published retained on sc/v1/ops/HA/kpi by sc-slamon every
 * kpi_interval_s (1 s here), stored in kpi_snapshot, seen by a subscriber
 * that comes later.
 *
 * Province HA (HB has one ticket that must not count):
 *   T1 closed, onsite, made 2 h ago: respond 600 s (met), arrive 1800 s
 *      (met), resolve 3600 s (met); order resolved 1 h ago, first-time fix;
 *      feedback 5 (reliability 4, responsiveness 5, assurance 4, empathy 5,
 *      tangibles 3)
 *   T2 resolved, outsourced, 3 days ago: respond 1200 s (deadline 900: missed),
 *      arrive cancelled, resolve 7200 s (deadline 3600: missed); order
 *      resolved, not first-time fix; feedback 2 (reliability 2)
 *   T3 assigned, onsite, 10 days ago: respond 300 s (met); arrive running,
 *      deadline 1 h ago (missed); resolve running, deadline tomorrow; its
 *      order accepted by E1
 *   T4 new, 5 min ago: clocks running, nothing decided
 *   T5 manual, 40 days ago: respond stopped 40 days ago; feedback 1 (too old)
 * Engineers E1, E2 on site in HA, max_concurrent 2 each (E3 in HB).
 *
 *   open_by_state {assigned 1, new 1, manual 1}, open_total 3
 *   sla respond  24h 1/1 = 1, 7d 1/2 = 0.5, 30d 2/3 = 0.6667
 *   sla arrive   24h, 7d, 30d: 1 met (T1), 1 missed (T3) = 0.5
 *   sla resolve  24h 1, 7d 0.5, 30d 0.5
 *   times respond [300, 600, 1200]: median 600, p90 1080; arrive [1800];
 *         resolve [3600, 7200]: median 5400, p90 6840
 *   first_time_fix_rate 0.5, outsourced_share 1/3, engineer_utilisation 1/4
 *   satisfaction n 2, score 3.5, reliability 3, responsiveness 5,
 *         assurance 4, empathy 5, tangibles 3
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static const char data_set[] =
	"{\"settings\": {\"kpi_interval_s\": 1},"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\"}, {\"code\": \"HB\", \"name\": \"Hubei\"}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"tier\": \"vip\", \"province\": \"HB\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\"},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HB\"}],"
	" \"engineers\": [{\"id\": \"E1\", \"kind\": \"onsite\", \"province\": \"HA\", \"skills\": {\"x\": 3}, \"max_concurrent\": 2},"
	"                 {\"id\": \"E2\", \"kind\": \"onsite\", \"province\": \"HA\", \"skills\": {\"x\": 3}, \"max_concurrent\": 2},"
	"                 {\"id\": \"E3\", \"kind\": \"onsite\", \"province\": \"HB\", \"skills\": {\"x\": 3}, \"max_concurrent\": 2}],"
	" \"partners\": [{\"id\": \"P1\", \"provinces\": [\"HA\"], \"skills\": {\"x\": 3}, \"capacity\": 5}]"
	"}";

static const char rows[] =
	"INSERT INTO ticket (id, state, province, customer_id, site_id, category, severity, tier,"
	"  skill, min_grade, mode, source, created_at) VALUES"
	" ('T1', 'closed', 'HA', 'C1', 'S1', 'fault', 'major', 'vip', 'x', 1, 'onsite', 'request', now() - interval '2 hours'),"
	" ('T2', 'resolved', 'HA', 'C1', 'S1', 'fault', 'major', 'vip', 'x', 1, 'outsourced', 'request', now() - interval '3 days'),"
	" ('T3', 'assigned', 'HA', 'C1', 'S1', 'fault', 'major', 'vip', 'x', 1, 'onsite', 'request', now() - interval '10 days'),"
	" ('T4', 'new', 'HA', 'C1', 'S1', 'fault', 'major', 'vip', 'x', 1, NULL, 'request', now() - interval '5 minutes'),"
	" ('T5', 'manual', 'HA', 'C1', 'S1', 'fault', 'major', 'vip', 'x', 1, NULL, 'request', now() - interval '40 days'),"
	" ('T6', 'new', 'HB', 'C2', 'S2', 'fault', 'major', 'vip', 'x', 1, 'outsourced', 'request', now() - interval '1 hour');"
	"INSERT INTO sla_clock (ticket_id, clock, calendar, budget_s, warn_pct, started_at, deadline, state, stopped_at)"
	" SELECT id, clock, '24x7', 1, 75, created_at, created_at + make_interval(secs => dl),"
	"        st, CASE WHEN st = 'stopped' THEN created_at + make_interval(secs => stop) END"
	" FROM (VALUES"
	"  ('T1', 'respond', 3600, 'stopped', 600), ('T1', 'arrive', 3600, 'stopped', 1800),"
	"  ('T1', 'resolve', 5400, 'stopped', 3600),"
	"  ('T2', 'respond', 900, 'stopped', 1200), ('T2', 'arrive', 1800, 'cancelled', 0),"
	"  ('T2', 'resolve', 3600, 'stopped', 7200),"
	"  ('T3', 'respond', 900, 'stopped', 300), ('T3', 'arrive', 860400, 'running', 0),"
	"  ('T3', 'resolve', 950400, 'running', 0),"
	"  ('T4', 'respond', 900, 'running', 0), ('T4', 'arrive', 3600, 'running', 0),"
	"  ('T4', 'resolve', 7200, 'running', 0),"
	"  ('T5', 'respond', 900, 'stopped', 100),"
	"  ('T6', 'respond', 60, 'stopped', 10)) v(tid, clock, dl, st, stop)"
	" JOIN ticket t ON t.id = v.tid;"
	"INSERT INTO work_order (id, ticket_id, mode, engineer_id, partner_id, state, offer_expires_at,"
	"  ended_at, first_time_fix) VALUES"
	" ('W1', 'T1', 'onsite', 'E1', NULL, 'resolved', now(), now() - interval '1 hour', true),"
	" ('W2', 'T2', 'outsourced', NULL, 'P1', 'resolved', now(), now() - interval '3 days', false),"
	" ('W3', 'T3', 'onsite', 'E1', NULL, 'accepted', now(), NULL, NULL),"
	" ('W6', 'T6', 'onsite', 'E3', NULL, 'resolved', now(), now() - interval '1 hour', false);"
	"INSERT INTO feedback (ticket_id, score, reliability, responsiveness, assurance, empathy, tangibles,"
	"  received_at) VALUES"
	" ('T1', 5, 4, 5, 4, 5, 3, now() - interval '30 minutes'),"
	" ('T2', 2, 2, NULL, NULL, NULL, NULL, now() - interval '2 days'),"
	" ('T5', 1, 1, 1, 1, 1, 1, now() - interval '39 days'),"
	" ('T6', 1, 1, 1, 1, 1, 1, now() - interval '10 minutes');";

/* JSON path into sc_kpi('HA') and its expected value (numeric compare;
 * "null" for JSON null). */
static const char *const expect[][2] = {
	{ "open_by_state,assigned", "1" }, { "open_by_state,new", "1" },
	{ "open_by_state,manual", "1" }, { "open_total", "3" },
	{ "sla,respond,24h,compliance", "1" }, { "sla,respond,7d,compliance", "0.5" },
	{ "sla,respond,30d,compliance", "0.6667" }, { "sla,respond,30d,met", "2" },
	{ "sla,respond,30d,missed", "1" },
	{ "sla,arrive,24h,compliance", "0.5" }, { "sla,arrive,7d,compliance", "0.5" },
	{ "sla,arrive,30d,compliance", "0.5" }, { "sla,arrive,30d,missed", "1" },
	{ "sla,resolve,24h,compliance", "1" }, { "sla,resolve,7d,compliance", "0.5" },
	{ "sla,resolve,30d,compliance", "0.5" },
	{ "times,respond,median_s", "600" }, { "times,respond,p90_s", "1080" },
	{ "times,respond,n", "3" },
	{ "times,arrive,median_s", "1800" }, { "times,arrive,p90_s", "1800" },
	{ "times,resolve,median_s", "5400" }, { "times,resolve,p90_s", "6840" },
	{ "first_time_fix_rate", "0.5" }, { "outsourced_share", "0.3333" },
	{ "engineer_utilisation", "0.25" },
	{ "satisfaction,n", "2" }, { "satisfaction,score", "3.5" },
	{ "satisfaction,reliability", "3" }, { "satisfaction,responsiveness", "5" },
	{ "satisfaction,assurance", "4" }, { "satisfaction,empathy", "5" },
	{ "satisfaction,tangibles", "3" },
};

static int check_values(struct harness *h)
{
	int bad = 0;
	PGconn *c = harness_pg(h);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "{%s}", expect[i][0]);
		const char *params[1] = { path };
		PGresult *r = PQexecParams(c, "SELECT sc_kpi('HA') #>> $1::text[]", 1, NULL, params,
					   NULL, NULL, 0);
		const char *got = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
				  !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "null";
		bool ok = strcmp(expect[i][1], "null") == 0 ? strcmp(got, "null") == 0
			  : strcmp(got, "null") != 0 && strtod(got, NULL) == strtod(expect[i][1], NULL);
		if (!ok) {
			fprintf(stderr, "test_sla_kpi: %s is %s, expected %s\n", expect[i][0], got,
				expect[i][1]);
			bad++;
		}
		PQclear(r);
	}
	return bad == 0 ? 0 : -1;
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *late = NULL;
	char *p = NULL;
	int rc = 1;
	pid_t slamon = -1;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	CHECK(harness_sql_exec(h, rows) == 0);
	CHECK(check_values(h) == 0);

	/* Published retained every second: a subscriber arriving later gets it. */
	slamon = harness_spawn(h, "sc-slamon", NULL, NULL);
	CHECK(slamon > 0);
	CHECK(harness_wait_sql(h, "SELECT (count(*) >= 2)::int FROM kpi_snapshot WHERE province = 'HA'", 1,
			       10000));
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM outbox", 0, 5000));
	CHECK(harness_sql_long(h, "SELECT count(*) FROM kpi_snapshot WHERE province = 'HB'"
				  " AND data->>'open_total' = '1'") >= 1);
	late = harness_mqtt_connect(h, "test-late");
	CHECK(late != NULL);
	CHECK(harness_mqtt_subscribe(late, "sc/v1/ops/HA/kpi") == 0);
	p = fixture_wait_payload(late, "sc/v1/ops/HA/kpi", "\"open_total\": 3", 5000);
	CHECK(p != NULL && strstr(p, "\"province\": \"HA\"") != NULL &&
	      strstr(p, "\"engineer_utilisation\": 0.2500") != NULL);

	CHECK(harness_stop_program(h, slamon, SIGTERM) == 0);
	slamon = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	harness_mqtt_free(late);
	harness_stop(h);
	fprintf(stderr, "test_sla_kpi: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

/*
 * Complaint tickets (issue 6): their own, tighter policy from the import's
 * complaint settings, and their own escalation when the reply limit passes.
 *
 * Policy vip/major: respond 60 s, arrive 120 s, resolve 300 s; escalation
 * at 75 / 100 / 150 %. Settings: complaint_reply_s 2, complaint_resolve_s
 * 20, complaint_escalation_level 3. With sc-slamon and the broker running:
 * - a fault ticket keeps the tier policy and escalates nothing for seconds;
 * - a complaint about it (parent_ticket_id set) has respond 2 s, arrive and
 *   resolve 20 s; at 1.5 s level 1 (the chain's 75 %), at 2 s its reply
 *   limit passes: levels 2 and 3 are published once each, level 3 with the
 *   complaint reason and role hq_service_department, straight from the
 *   reply-limit timer (no 150 % needed);
 * - a complaint answered in time (respond clock stopped) escalates nothing;
 * - sc_slamon_events_total{kind="escalation"} counts the 3 levels published.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static const char data_set[] =
	"{\"settings\": {\"complaint_reply_s\": 2, \"complaint_resolve_s\": 20,"
	"               \"complaint_escalation_level\": 3},"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\"}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\"}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"M\"}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 60, \"arrive_s\": 120,"
	"                     \"resolve_s\": 300, \"calendar\": \"24x7\", \"warn_pct\": 50}],"
	" \"escalation\": [{\"level\": 1, \"at_pct\": 75, \"role\": \"province_dispatcher\"},"
	"                  {\"level\": 2, \"at_pct\": 100, \"role\": \"province_manager\"},"
	"                  {\"level\": 3, \"at_pct\": 150, \"role\": \"hq_service_department\"}]"
	"}";

static long q(struct harness *h, const char *fmt, const char *ticket)
{
	char sql[1024];
	snprintf(sql, sizeof(sql), fmt, ticket, ticket);
	return harness_sql_long(h, sql);
}

static int open_ticket(struct harness *h, const char *device, const char *category, char *out,
		       size_t len)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"request\", \"site_id\": \"S1\","
		 " \"device_id\": \"%s\", \"category\": \"%s\", \"severity\": \"major\","
		 " \"skill\": \"x\"}')", device, category);
	PGresult *r = PQexec(harness_pg(h), sql);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/* Until sc-slamon serves its metrics (it is up and connected). */
static int fixture_wait_metric_ready(struct harness *h, pid_t pid)
{
	for (int i = 0; i < 200; i++) {
		if (fixture_metric(h, pid, "sc_slamon_timers_pending") >= 0)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *watch = NULL;
	char f[32], k[32], k2[32], needle[64];
	char *p = NULL;
	int rc = 1;
	pid_t slamon = -1;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	CHECK(harness_sql_long(h, "SELECT value FROM setting WHERE key = 'complaint_reply_s'") == 2);
	watch = harness_mqtt_connect(h, "test-watch");
	CHECK(watch != NULL);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/ops/+/escalations") == 0);
	slamon = harness_spawn(h, "sc-slamon", NULL, NULL);
	CHECK(slamon > 0);
	/* Listening before the tickets come (their timers are announced). */
	CHECK(fixture_wait_metric_ready(h, slamon) == 0);

	CHECK(open_ticket(h, "D1", "fault", f, sizeof(f)) == 0);
	CHECK(open_ticket(h, "D1", "complaint", k, sizeof(k)) == 0);
	CHECK(open_ticket(h, "D2", "complaint", k2, sizeof(k2)) == 0);
	/* The tier policy for the fault, the tighter complaint one for K. */
	CHECK(q(h, "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s' AND budget_s IN (60, 120, 300)",
		f) == 3);
	CHECK(q(h, "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s' AND (clock, budget_s) IN"
		   " (('respond', 2), ('arrive', 20), ('resolve', 20))", k) == 3);
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE id = '%s' AND category = 'complaint'"
		   " AND parent_ticket_id IS NOT NULL", k) == 1);
	CHECK(q(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND reason LIKE 'complaint%%'"
		   " AND level = 3 AND clock = 'respond'", k) == 1);
	/* K2 is answered in time. */
	CHECK(q(h, "SELECT count(*) FROM (SELECT sc_sla_stop('%s', 'respond')) x", k2) == 1);

	/* K: levels 1, 2, 3 once each by 2 s and a bit; level 3 for the complaint. */
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM escalation", 3, 10000));
	snprintf(needle, sizeof(needle), "\"ticket_id\": \"%s\"", k);
	CHECK(q(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", k) == 3);
	CHECK(q(h, "SELECT count(*) FROM escalation e JOIN ticket t ON t.id = e.ticket_id"
		   " WHERE e.ticket_id = '%s' AND e.level = 3 AND e.role = 'hq_service_department'"
		   "   AND e.reason LIKE 'complaint not answered within its reply limit%%'"
		   "   AND e.ts >= t.respond_by AND e.ts < t.respond_by + interval '2 seconds'", k) == 1);
	CHECK(q(h, "SELECT count(*) FROM escalation e JOIN ticket t ON t.id = e.ticket_id"
		   " WHERE e.ticket_id = '%s' AND e.level = 1 AND e.ts < t.respond_by", k) == 1);
	p = fixture_wait_payload(watch, "sc/v1/ops/HA/escalations", "\"level\": 3", 5000);
	CHECK(p != NULL && strstr(p, needle) != NULL && strstr(p, "hq_service_department") != NULL);
	free(p);
	p = NULL;
	/* Nothing for the fault (60 s) nor for the answered complaint. */
	sleep(1);
	CHECK(q(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", f) == 0);
	CHECK(q(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", k2) == 0);
	CHECK(fixture_wait_metric(h, slamon,
				  "sc_slamon_events_total{kind=\"escalation\"}",
				  3, 5000) == 3);

	CHECK(harness_stop_program(h, slamon, SIGTERM) == 0);
	slamon = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	harness_mqtt_free(watch);
	harness_stop(h);
	fprintf(stderr, "test_sla_complaint: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

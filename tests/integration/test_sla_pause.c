/*
 * Pause and resume of a ticket's SLA clocks (issue 6), with sc-slamon and
 * the broker running; budgets of seconds on the 24x7 calendar (respond 4 s,
 * arrive 8 s, resolve 12 s, warning at 50 %):
 *
 * - `scctl pause` records the pause (sla_pause), the clocks are `paused`,
 *   their unfired timers leave sla_timer; the ticket keeps its state and a
 *   ticket event with "paused": true is published; a second pause changes
 *   nothing;
 * - while paused nothing fires (the respond warning was due at 2 s);
 * - `scctl resume` moves every deadline, the ticket's *_by and every
 *   unfired timer by the paused time, records it (held_s), publishes
 *   "paused": false, and the warning and breach then fire once each, not
 *   before the moved due times, with the moved deadline;
 * - a clock stopped during the pause (accept) stays stopped; the others
 *   come back; a ticket resolved while paused is no longer paused; pause of
 *   a resolved ticket or an unknown one.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static const char data_set[] =
	"{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\"}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\"}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"M\"}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 4, \"arrive_s\": 8,"
	"                     \"resolve_s\": 12, \"calendar\": \"24x7\", \"warn_pct\": 50}]"
	"}";

static long q(struct harness *h, const char *fmt, const char *ticket)
{
	char sql[1024];
	snprintf(sql, sizeof(sql), fmt, ticket, ticket, ticket);
	return harness_sql_long(h, sql);
}

static int open_ticket(struct harness *h, const char *device, char *out, size_t len)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"request\", \"site_id\": \"S1\","
		 " \"device_id\": \"%s\", \"category\": \"fault\", \"severity\": \"major\","
		 " \"skill\": \"x\"}')", device);
	PGresult *r = PQexec(harness_pg(h), sql);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/* scctl ARGS...; its exit status, output in out. */
static int scctl(struct harness *h, char *out, size_t len, const char *a1, const char *a2,
		 const char *a3, const char *a4)
{
	const char *args[] = { a1, a2, a3, a4, NULL };
	return harness_run(h, "scctl", args, out, len);
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *watch = NULL;
	char a[32], b[32], needle[64], out[4096];
	char *p = NULL;
	int rc = 1;
	pid_t slamon = -1;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	watch = harness_mqtt_connect(h, "test-watch");
	CHECK(watch != NULL);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/ops/#") == 0);
	slamon = harness_spawn(h, "sc-slamon", NULL, NULL);
	CHECK(slamon > 0);

	/* --- A: paused at once, for 3 s. --- */
	CHECK(open_ticket(h, "D1", a, sizeof(a)) == 0);
	snprintf(needle, sizeof(needle), "\"ticket_id\": \"%s\"", a);
	CHECK(scctl(h, out, sizeof(out), "pause", a, "--reason", "waiting on customer") == 0);
	CHECK(strstr(out, a) != NULL && strstr(out, "true") != NULL);
	CHECK(q(h, "SELECT count(*) FROM sla_pause WHERE ticket_id = '%s' AND resumed_at IS NULL"
		   " AND reason = 'waiting on customer' AND actor = 'scctl'", a) == 1);
	CHECK(q(h, "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s' AND state = 'paused'", a) == 3);
	CHECK(q(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s'", a) == 0);
	CHECK(q(h, "SELECT count(*) FROM sla_timer_paused WHERE ticket_id = '%s'", a) == 15);
	CHECK(q(h, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'new'", a) == 1);
	/* Again: no change, exit 0, "changed" false. */
	CHECK(scctl(h, out, sizeof(out), "--json", "pause", a, NULL) == 0);
	CHECK(strstr(out, "\"changed\":\tfalse") != NULL || strstr(out, "\"changed\": false") != NULL);
	CHECK(q(h, "SELECT count(*) FROM sla_pause WHERE ticket_id = '%s'", a) == 1);
	p = fixture_wait_payload(watch, "sc/v1/ops/HA/tickets", "\"paused\": true", 5000);
	CHECK(p != NULL && strstr(p, needle) != NULL && strstr(p, "\"state\": \"new\"") != NULL);
	free(p);
	p = NULL;

	/* --- Nothing fires while paused (respond warning was due at 2 s). --- */
	sleep(3);
	CHECK(q(h, "SELECT count(*) FROM sla_event WHERE ticket_id = '%s'", a) == 0);
	CHECK(q(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", a) == 0);

	/* --- Resume: everything moved by the paused time (~3 s). --- */
	CHECK(scctl(h, out, sizeof(out), "resume", a, NULL, NULL) == 0);
	CHECK(q(h, "SELECT count(*) FROM sla_pause WHERE ticket_id = '%s' AND resumed_at IS NOT NULL"
		   " AND (held_s->>'respond')::float8 BETWEEN 2.9 AND 6", a) == 1);
	CHECK(q(h, "SELECT count(*) FROM sla_clock c JOIN sla_pause ps USING (ticket_id)"
		   " WHERE c.ticket_id = '%s' AND c.state = 'running' AND c.paused_at IS NULL"
		   "   AND abs(extract(epoch FROM c.deadline - c.started_at) - c.budget_s"
		   "           - (ps.held_s->>c.clock)::float8) < 0.01"
		   "   AND c.paused_s = (ps.held_s->>c.clock)::float8", a) == 3);
	CHECK(q(h, "SELECT count(*) FROM ticket t WHERE id = '%s' AND respond_by ="
		   " (SELECT deadline FROM sla_clock WHERE ticket_id = t.id AND clock = 'respond')"
		   " AND resolve_by - created_at > interval '14 seconds'", a) == 1);
	/* The timers are back under their ids: the respond warning (2 s into
	 * the clock) is due what was left of those 2 s after the resume. */
	CHECK(q(h, "SELECT count(*) FROM sla_timer tm JOIN sla_pause ps USING (ticket_id)"
		   " JOIN sla_clock c USING (ticket_id, clock)"
		   " WHERE tm.ticket_id = '%s' AND tm.fired_at IS NULL"
		   "   AND tm.kind = 'warning' AND tm.clock = 'respond'"
		   "   AND abs(extract(epoch FROM tm.due_at - ps.resumed_at)"
		   "           - (2 - extract(epoch FROM ps.paused_at - c.started_at))) < 0.01", a) == 1);
	CHECK(q(h, "SELECT count(*) FROM sla_timer_paused WHERE ticket_id = '%s'", a) == 0);
	p = fixture_wait_payload(watch, "sc/v1/ops/HA/tickets", "\"paused\": false", 5000);
	CHECK(p != NULL && strstr(p, needle) != NULL);
	free(p);
	p = NULL;

	/* --- After the resume the clocks run out: each event once, on time. --- */
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM sla_timer WHERE fired_at IS NULL", 0, 30000));
	CHECK(q(h, "SELECT count(*) FROM sla_event e JOIN sla_clock c USING (ticket_id, clock)"
		   " WHERE e.ticket_id = '%s' AND e.deadline = c.deadline", a) == 6);
	CHECK(q(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", a) == 3);
	CHECK(q(h, "SELECT count(*) FROM sla_timer tm JOIN sla_pause ps USING (ticket_id)"
		   " WHERE tm.ticket_id = '%s' AND (tm.fired_at < tm.due_at OR tm.fired_at < ps.resumed_at)",
		a) == 0);
	CHECK(q(h, "SELECT count(*) FROM sla_event e JOIN sla_clock c USING (ticket_id, clock)"
		   " WHERE e.ticket_id = '%s' AND e.kind = 'breach' AND e.ts < c.deadline", a) == 0);

	/* --- B: paused, its respond clock stopped meanwhile (accept). --- */
	CHECK(open_ticket(h, "D2", b, sizeof(b)) == 0);
	CHECK(q(h, "SELECT sc_ticket_pause('%s', 'parts from customer', 'test')::int", b) == 1);
	CHECK(q(h, "SELECT count(*) FROM (SELECT sc_sla_stop('%s', 'respond')) x", b) == 1);
	CHECK(q(h, "SELECT sc_ticket_resume('%s', 'test')::int", b) == 1);
	CHECK(q(h, "SELECT sc_ticket_resume('%s', 'test')::int", b) == 0);
	CHECK(q(h, "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s' AND clock = 'respond'"
		   " AND state = 'stopped'", b) == 1);
	CHECK(q(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND clock = 'respond'", b) == 0);
	CHECK(q(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND clock <> 'respond'", b) == 10);
	CHECK(q(h, "SELECT count(*) FROM sla_timer_paused WHERE ticket_id = '%s'", b) == 0);
	/* A ticket no longer open is not paused; an unknown one is an error. */
	CHECK(q(h, "WITH u AS (UPDATE ticket SET state = 'resolved' WHERE id = '%s' RETURNING 1)"
		   " SELECT count(*) FROM u", a) == 1);
	CHECK(q(h, "SELECT sc_ticket_pause('%s')::int", a) == 0);
	/* B paused, then resolved: the pause ends with it. */
	CHECK(q(h, "SELECT sc_ticket_pause('%s', 'again', 'test')::int", b) == 1);
	CHECK(q(h, "SELECT (count(*) > 0)::int FROM sla_timer_paused WHERE ticket_id = '%s'", b) == 1);
	CHECK(q(h, "SELECT count(*) FROM (SELECT sc_ticket_set_state('%s', 'resolved', 'test')) x", b) == 1);
	CHECK(q(h, "SELECT (NOT sc_ticket_paused('%s'))::int", b) == 1);
	CHECK(q(h, "SELECT count(*) FROM sla_timer_paused WHERE ticket_id = '%s'", b) == 0);
	CHECK(scctl(h, out, sizeof(out), "pause", "T999999", NULL, NULL) == 1);
	CHECK(scctl(h, out, sizeof(out), "pause", NULL, NULL, NULL) == 2);

	CHECK(harness_stop_program(h, slamon, SIGTERM) == 0);
	slamon = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	harness_mqtt_free(watch);
	harness_stop(h);
	fprintf(stderr, "test_sla_pause: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

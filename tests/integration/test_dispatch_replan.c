/*
 * Escalation re-plans (issue 5) over the real database and broker: when a
 * ticket's SLA warning fires (sc_sla_fire, as sc-slamon calls it) and the
 * holder of its order is not yet on site, sc-dispatch moves the order to
 * somebody who arrives earlier and withdraws the old one; when nobody
 * does, the order stays. A warning missed while no dispatcher ran is
 * caught up after start.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "timeutil.h"

#define WAIT_MS 15000

static const char master[] =
	"{\"settings\": {\"offer_timeout_s\": 600, \"max_offer_attempts\": 5, \"travel_kmh\": 60},\n"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],\n"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"}],\n"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62}],\n"
	" \"engineers\": [\n"
	"  {\"id\": \"E-near\", \"province\": \"HA\", \"lat\": 34.76, \"lon\": 113.63,\n"
	"   \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 2},\n"
	"  {\"id\": \"E-far\", \"province\": \"HA\", \"lat\": 35.5, \"lon\": 114.5,\n"
	"   \"skills\": {\"relay_protection\": 2}, \"max_concurrent\": 2}]\n"
	"}\n";

static int sql_text(struct harness *h, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int sql_text(struct harness *h, char *buf, size_t len, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	PGresult *res = PQexec(harness_pg(h), sql);
	int rc = -1;
	buf[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		fprintf(stderr, "sql failed: %s: %s\n", sql, PQresultErrorMessage(res));
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

static bool expect(struct harness_mqtt *m, const char *topic, const char *needle)
{
	char *p = fixture_wait_payload(m, topic, needle, WAIT_MS);
	if (p == NULL)
		fprintf(stderr, "nothing on %s with %s\n", topic, needle);
	free(p);
	return p != NULL;
}

static int status(struct harness_mqtt *m, const char *engineer, const char *state)
{
	char topic[128], payload[128], ts[TIME_RFC3339_LEN];
	time_format_rfc3339(time_now_us(), ts, sizeof(ts));
	snprintf(topic, sizeof(topic), "sc/v1/engineers/%s/status", engineer);
	snprintf(payload, sizeof(payload), "{\"ts\": \"%s\", \"state\": \"%s\"}", ts, state);
	return harness_mqtt_publish(m, topic, payload, 1);
}

/* Fires the warning timer of ticket's clock now, as sc-slamon would. */
static int fire_warning(struct harness *h, const char *ticket, const char *clock)
{
	char out[16];
	return sql_text(h, out, sizeof(out),
			"WITH t AS (UPDATE sla_timer SET due_at = now() WHERE ticket_id = '%s'"
			" AND clock = '%s' AND kind = 'warning' AND fired_at IS NULL RETURNING id)"
			" SELECT sc_sla_fire(id)::text FROM t", ticket, clock) == 0 &&
	       strcmp(out, "true") == 0 ? 0 : -1;
}

static int open_ticket(struct harness *h, char *id, size_t len, const char *ref)
{
	return sql_text(h, id, len,
			"SELECT ticket_id FROM sc_ticket_open('{\"source\": \"rule\", \"source_ref\": \"%s\","
			" \"site_id\": \"S1\", \"category\": \"fault\", \"severity\": \"major\","
			" \"skill\": \"relay_protection\", \"min_grade\": 2}')", ref);
}

int main(void)
{
	struct harness *h = fixture_start(master);
	struct harness_mqtt *obs = NULL, *app = NULL;
	pid_t pid = -1;
	char t1[16], t2[16], t3[16], w1[16], w2[16], needle[96], ev[256];
	int rc = 1;

	CHECK(h != NULL);
	obs = harness_mqtt_connect(h, "test-observer");
	app = harness_mqtt_connect(h, "test-app");
	CHECK(obs != NULL && app != NULL);
	CHECK(harness_mqtt_subscribe(obs, "sc/v1/engineers/+/orders") == 0);
	{
		const char *env[] = { "SC_SWEEP_MS=300", NULL };
		pid = harness_spawn(h, "sc-dispatch", env, NULL);
		CHECK(pid > 0);
	}
	/* E-near is off (stored as sc-dispatch stores a status: the program
	 * may not have subscribed yet): T1 goes to E-far (~1.9 h away), who
	 * accepts. */
	CHECK(harness_sql_exec(h, "SELECT sc_dispatch_status('E-near', 'test',"
				  " '{\"ts\": \"2026-01-01T00:00:00Z\", \"state\": \"off\"}')") == 0);
	CHECK(open_ticket(h, t1, sizeof(t1), "r1") == 0);
	CHECK(expect(obs, "engineers/E-far/orders", t1));
	CHECK(sql_text(h, w1, sizeof(w1), "SELECT id FROM work_order WHERE ticket_id = '%s'", t1) == 0);
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:00Z\"}", w1);
	CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-far/events", ev, 1) == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t1));

	/* Still nobody nearer when the arrive warning fires: kept. */
	CHECK(fire_warning(h, t1, "arrive") == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM dispatch_replan WHERE ticket_id = '%s'"
			      " AND clock = 'arrive' AND result = 'kept'", t1));
	CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order WHERE state = 'withdrawn'") == 0);

	/* E-near back; T2's arrive warning (E-far holds it, accepted, not on
	 * site): the order moves to E-near, E-far's is withdrawn. */
	CHECK(open_ticket(h, t2, sizeof(t2), "r2") == 0);
	CHECK(expect(obs, "engineers/E-far/orders", t2));
	CHECK(sql_text(h, w2, sizeof(w2), "SELECT id FROM work_order WHERE ticket_id = '%s'", t2) == 0);
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:00Z\"}", w2);
	CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-far/events", ev, 1) == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t2));
	CHECK(status(app, "E-near", "available") == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM engineer_state WHERE engineer_id = 'E-near'"
			      " AND state = 'available'"));
	CHECK(fire_warning(h, t2, "arrive") == 0);
	snprintf(needle, sizeof(needle), "\"order_id\": \"%s\", \"withdrawn\": true", w2);
	CHECK(expect(obs, "engineers/E-far/orders", needle));
	CHECK(expect(obs, "engineers/E-near/orders", t2));
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM dispatch_replan WHERE ticket_id = '%s'"
			      " AND result = 'moved' AND old_order = '%s' AND new_order IS NOT NULL", t2, w2));
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM work_order WHERE ticket_id = '%s'"
			      " AND engineer_id = 'E-near' AND state = 'offered'", t2));
	/* A second warning of the same clock changes nothing more. */
	CHECK(harness_sql_exec(h, "SELECT pg_notify('sla_warning', (SELECT id FROM ticket"
				  " WHERE source_ref = 'r2') || ' arrive')") == 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order WHERE state = 'withdrawn'") == 1);

	/* Missed while no dispatcher ran: T3 held by E-far (E-near off again),
	 * its respond warning fires with sc-dispatch stopped; after a restart
	 * with E-near back the catch-up moves it. */
	CHECK(status(app, "E-near", "off") == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM engineer_state WHERE engineer_id = 'E-near'"
			      " AND state = 'off'"));
	CHECK(open_ticket(h, t3, sizeof(t3), "r3") == 0);
	CHECK(expect(obs, "engineers/E-far/orders", t3));
	CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
	pid = -1;
	CHECK(harness_sql_exec(h, "UPDATE engineer_state SET state = 'available'"
				  " WHERE engineer_id = 'E-near'") == 0);
	CHECK(fire_warning(h, t3, "respond") == 0);
	{
		const char *env[] = { "SC_SWEEP_MS=300", NULL };
		pid = harness_spawn(h, "sc-dispatch", env, NULL);
		CHECK(pid > 0);
	}
	CHECK(expect(obs, "engineers/E-near/orders", t3));
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM dispatch_replan WHERE ticket_id = '%s'"
			      " AND clock = 'respond' AND result = 'moved'", t3));

	CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
	pid = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	harness_mqtt_free(obs);
	harness_mqtt_free(app);
	harness_stop(h);
	fprintf(stderr, "dispatch_replan: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

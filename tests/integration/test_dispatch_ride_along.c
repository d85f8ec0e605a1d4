/*
 * Ride-along (issue 5) over the real database and broker: when sc-dispatch
 * sends an engineer to a site, the waiting maintenance tickets of that site
 * the engineer qualifies for ride along on the visit (orders with
 * ride_along_of, in the payload too); not those of another site, not those
 * it lacks the grade for, and none when the visit is late already.
 * Withdrawing the visit withdraws its ride-alongs.
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
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62},\n"
	"           {\"id\": \"S2\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.9, \"lon\": 113.9}],\n"
	" \"engineers\": [\n"
	"  {\"id\": \"E-near\", \"province\": \"HA\", \"lat\": 34.76, \"lon\": 113.63,\n"
	"   \"skills\": {\"relay_protection\": 3, \"metering\": 2}, \"max_concurrent\": 3},\n"
	"  {\"id\": \"E-far\", \"province\": \"HA\", \"lat\": 35.5, \"lon\": 114.5,\n"
	"   \"skills\": {\"relay_protection\": 2, \"metering\": 4}, \"max_concurrent\": 3}]\n"
	"}\n";

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

static long sqlf(struct harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static long sqlf(struct harness *h, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return harness_sql_long(h, sql);
}

/* SQL opening a ticket at site with ref, category, severity, skill, grade. */
#define OPEN(ref, site, cat, sev, skill, grade)                                                   \
	"SELECT sc_ticket_open('{\"source\": \"rule\", \"source_ref\": \"" ref "\", \"site_id\": \"" \
	site "\", \"category\": \"" cat "\", \"severity\": \"" sev "\", \"skill\": \"" skill       \
	"\", \"min_grade\": " grade "}');"

/* Stores a status as sc-dispatch does for one from MQTT (the program may
 * not have subscribed yet when the test starts); the sweep timer sees it. */
static int status(struct harness *h, const char *engineer, const char *state)
{
	char sql[256], ts[TIME_RFC3339_LEN];
	time_format_rfc3339(time_now_us(), ts, sizeof(ts));
	snprintf(sql, sizeof(sql),
		 "SELECT sc_dispatch_status('%s', 'test', '{\"ts\": \"%s\", \"state\": \"%s\"}')",
		 engineer, ts, state);
	return harness_sql_exec(h, sql);
}

int main(void)
{
	struct harness *h = fixture_start(master);
	struct harness_mqtt *obs = NULL, *app = NULL;
	pid_t pid = -1;
	char *p = NULL;
	int rc = 1;

	CHECK(h != NULL);
	obs = harness_mqtt_connect(h, "test-observer");
	app = harness_mqtt_connect(h, "test-app");
	CHECK(obs != NULL && app != NULL);
	CHECK(harness_mqtt_subscribe(obs, "sc/v1/engineers/+/orders") == 0);
	/* Everybody off: the maintenance waits. */
	CHECK(harness_sql_exec(h,
		"SELECT sc_dispatch_status(id, 'test', '{\"ts\": \"2026-01-01T00:00:00Z\", \"state\": \"off\"}')"
		" FROM engineer") == 0);
	CHECK(harness_sql_exec(h,
		OPEN("m1", "S1", "maintenance", "minor", "metering", "1")
		OPEN("m2", "S1", "maintenance", "minor", "metering", "3")
		OPEN("m3", "S2", "maintenance", "minor", "metering", "1")
		OPEN("t1", "S1", "fault", "major", "relay_protection", "2")) == 0);
	{
		const char *env[] = { "SC_SWEEP_MS=300", NULL };
		pid = harness_spawn(h, "sc-dispatch", env, NULL);
		CHECK(pid > 0);
	}
	CHECK(wait_sqlf(h, 4, "SELECT count(*) FROM ticket WHERE state = 'new'"));

	/* E-near comes on: the fault goes to E-near, and m1 (same site,
	 * metering 1 <= 2) rides along; m2 (grade 3) and m3 (other site) do
	 * not. */
	CHECK(status(h, "E-near", "available") == 0);
	p = fixture_wait_payload(obs, "engineers/E-near/orders", "ride_along_of", WAIT_MS);
	CHECK(p != NULL);
	CHECK(wait_sqlf(h, 1,
		"SELECT count(*) FROM work_order w JOIN ticket m ON m.id = w.ticket_id"
		" JOIN work_order v ON v.id = w.ride_along_of JOIN ticket t ON t.id = v.ticket_id"
		" WHERE m.source_ref = 'm1' AND t.source_ref = 't1' AND w.engineer_id = 'E-near'"
		" AND w.state = 'offered' AND m.state = 'offered'"));
	CHECK(strstr(p, "\"ride_along_of\": \"") != NULL);
	CHECK(sqlf(h, "SELECT count(*) FROM work_order WHERE ride_along_of IS NOT NULL") == 1);
	/* m2 and m3: E-near cannot (grade) or only as an ordinary offer; none
	 * rides along. */
	CHECK(sqlf(h, "SELECT count(*) FROM ticket t JOIN work_order w ON w.ticket_id = t.id"
		      " WHERE t.source_ref IN ('m2', 'm3') AND w.ride_along_of IS NOT NULL") == 0);
	CHECK(sqlf(h, "SELECT count(*) FROM ticket WHERE source_ref = 'm2' AND state = 'new'") == 1);

	/* A visit that is late already takes nothing along: t2 at S1 has an
	 * arrive_by in the past; m4 waits there. t2 gets E-near with no
	 * ride-along (m4 may get an ordinary offer of its own). */
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM ticket WHERE source_ref = 'm3' AND state = 'offered'"));
	CHECK(status(h, "E-near", "off") == 0);
	CHECK(harness_sql_exec(h,
		OPEN("m4", "S1", "maintenance", "minor", "metering", "1")
		OPEN("t2", "S1", "fault", "critical", "relay_protection", "2")
		"UPDATE ticket SET arrive_by = now() - interval '1 minute' WHERE source_ref = 't2';") == 0);
	CHECK(sqlf(h, "SELECT count(*) FROM work_order WHERE engineer_id = 'E-near'"
		      " AND state = 'offered'") == 3);
	/* Two free units (m3 cancelled, one more unit): room for m4 to ride
	 * along, so only lateness can keep it off the visit. */
	CHECK(harness_sql_exec(h, "SELECT sc_ticket_cancel(id, 'test', 'test') FROM ticket"
				  " WHERE source_ref = 'm3'") == 0);
	CHECK(harness_sql_exec(h, "UPDATE engineer SET max_concurrent = 4 WHERE id = 'E-near'") == 0);
	CHECK(status(h, "E-near", "available") == 0);
	CHECK(wait_sqlf(h, 1, "SELECT count(*) FROM ticket t JOIN work_order w ON w.ticket_id = t.id"
			      " WHERE t.source_ref = 't2' AND w.engineer_id = 'E-near' AND w.state = 'offered'"));
	CHECK(sqlf(h, "SELECT count(*) FROM ticket t JOIN work_order w ON w.ticket_id = t.id"
		      " WHERE t.source_ref = 'm4' AND w.ride_along_of IS NOT NULL") == 0);

	/* Cancelling the visit's ticket withdraws the ride-along too; m1 is
	 * new again (and then dispatched on its own). */
	CHECK(harness_sql_exec(h, "SELECT sc_ticket_cancel(id, 'test', 'test') FROM ticket"
				  " WHERE source_ref = 't1'") == 0);
	CHECK(sqlf(h, "SELECT count(*) FROM work_order w JOIN ticket m ON m.id = w.ticket_id"
		      " WHERE m.source_ref = 'm1' AND w.ride_along_of IS NOT NULL"
		      " AND w.state = 'withdrawn'") == 1);
	CHECK(sqlf(h, "SELECT count(*) FROM ticket_history th JOIN ticket m ON m.id = th.ticket_id"
		      " WHERE m.source_ref = 'm1' AND th.state = 'new'") >= 2);

	CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
	pid = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	harness_mqtt_free(obs);
	harness_mqtt_free(app);
	harness_stop(h);
	fprintf(stderr, "dispatch_ride_along: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

/*
 * sc-alertd's lifecycle scan (preventive maintenance) against a real
 * database and broker, with lifecycle_scan_s = 1 and the lead times
 * SC_LIFECYCLE_LEAD_DAYS=30, SC_LIFECYCLE_LEAD_HOURS=50:
 *
 * - calendar: a device 340 days after its last maintenance (interval 365)
 *   gets a maintenance ticket, reason calendar, with skill, grade and
 *   remote handling from request_rules for its model; one 300 days after
 *   does not;
 * - design_life: a device 10 days short of its design life gets an advisory
 *   ticket (replacement or upgrade) beside its calendar ticket: each reason
 *   its own ticket; a young device gets none;
 * - run_hours: run hours from device.run_hours (not due) and then from the
 *   latest telemetry (device_state.run_hours: due);
 * - scans repeat without a second ticket, also after the ticket was
 *   resolved while the limit still stands;
 * - an import recording the maintenance clears the alert and its
 *   undispatched ticket; the metrics count what happened.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

static struct harness *h;
static pid_t alertd;

static long sql_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long sql_long(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return harness_sql_long(h, sql);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* RFC 3339 of now + days (UTC). */
static void when(char *buf, size_t len, double days)
{
	time_t t = time(NULL) + (time_t)(days * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The date `years` years before now + days. */
static void date_back(char *buf, size_t len, int years, int days)
{
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_year -= years;
	strftime(buf, len, "%Y-%m-%d", &tm);
}

/* Waits until `sql` counts `n`. */
static bool wait_count(const char *sql, long n)
{
	return harness_wait_sql(h, sql, n, 8000);
}

static int import_country(void)
{
	char m340[32], m300[32], m350[32], life[16], young[16], json[8192];

	when(m340, sizeof(m340), -340);
	when(m300, sizeof(m300), -300);
	when(m350, sizeof(m350), -350);
	date_back(life, sizeof(life), 15, 10);
	date_back(young, sizeof(young), 5, 0);
	snprintf(json, sizeof(json),
		"{\"settings\": {\"lifecycle_scan_s\": 1},"
		" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],"
		" \"customers\": [{\"id\": \"C1\", \"name\": \"Zhengzhou Grid\", \"tier\": \"key\", \"province\": \"HA\"}],"
		" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62}],"
		" \"devices\": ["
		"  {\"id\": \"L1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\", \"maint_interval_hours\": 1000,"
		"   \"last_maintenance_run_hours\": 9000, \"run_hours\": 9900},"
		"  {\"id\": \"L2\", \"site_id\": \"S1\", \"model\": \"XJ-MT300\", \"maint_interval_days\": 365,"
		"   \"last_maintenance_at\": \"%s\"},"
		"  {\"id\": \"L3\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\", \"maint_interval_days\": 365,"
		"   \"last_maintenance_at\": \"%s\"},"
		"  {\"id\": \"L4\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\", \"commissioned_on\": \"%s\","
		"   \"design_life_years\": 15, \"maint_interval_days\": 365, \"last_maintenance_at\": \"%s\"},"
		"  {\"id\": \"L5\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\", \"commissioned_on\": \"%s\","
		"   \"design_life_years\": 15}],"
		" \"request_rules\": ["
		"  {\"category\": \"maintenance\", \"model\": \"XJ-MT300\", \"skill\": \"metering\", \"min_grade\": 1, \"remote_ok\": false},"
		"  {\"category\": \"maintenance\", \"model\": \"*\", \"skill\": \"relay_protection\", \"min_grade\": 2, \"remote_ok\": true}]"
		"}", m340, m300, life, m350, young);
	return fixture_import(h, json);
}

#define LIFECYCLE_ALERTS "SELECT count(*) FROM alert WHERE source = 'lifecycle'"

static int test_scan(void)
{
	int rc = -1;

	CHECK(wait_count(LIFECYCLE_ALERTS, 3));
	/* L2: calendar, metering (its model's rule). */
	CHECK(sql_long("SELECT count(*) FROM ticket t JOIN alert a ON a.ticket_id = t.id"
		       " WHERE a.device_id = 'L2' AND a.source = 'lifecycle' AND a.rule_id = 'calendar'"
		       " AND a.state = 'firing' AND t.source = 'lifecycle' AND t.category = 'maintenance'"
		       " AND t.reason = 'calendar' AND t.severity = 'minor' AND t.skill = 'metering'"
		       " AND t.min_grade = 1 AND NOT t.remote_ok AND t.tier = 'key' AND t.state = 'new'"
		       " AND t.description LIKE 'maintenance due: 340%% days since the last maintenance,"
		       " interval 365 (lead 30 d)'") == 1);
	/* L4: calendar and design life, two tickets, the '*' rule. */
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'L4' AND category = 'maintenance'"
		       " AND skill = 'relay_protection' AND min_grade = 2 AND remote_ok AND state = 'new'")
	      == 2);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'L4' AND reason = 'design_life'"
		       " AND description LIKE '%%replacement or upgrade advised'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'L4' AND reason = 'calendar'") == 1);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'L4' AND rule_id = 'design_life'"
		       " AND (detail->>'advisory')::boolean") == 1);
	/* Not due: L1 (900 of 1000 h, lead 50), L3 (300 days), L5 (5 years). */
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id IN ('L1', 'L3', 'L5')") == 0);

	/* Scans repeat: nothing new. */
	sleep_ms(2500);
	CHECK(fixture_metric(h, alertd, "sc_alertd_lifecycle_scans_total") >= 3);
	CHECK(sql_long(LIFECYCLE_ALERTS) == 3);
	CHECK(sql_long("SELECT count(*) FROM ticket") == 3);
	CHECK(fixture_wait_metric(h, alertd, "sc_alertd_lifecycle_due", 3, 5000) == 3);

	/* L1's latest telemetry says 9960 h: 960 since maintenance, due. */
	CHECK(harness_sql_exec(h, "WITH x AS (SELECT jsonb_build_array(jsonb_build_object("
				  " 'd', 'L1', 's', 1, 't', extract(epoch FROM now()),"
				  " 'r', extract(epoch FROM now()), 'h', 9960,"
				  " 'm', '{\"temp_c\": 20}'::jsonb)) AS r)"
				  " SELECT sc_ingest_batch(jsonb_build_object('telemetry', r, 'states', r))"
				  " FROM x") == 0);
	CHECK(wait_count("SELECT count(*) FROM ticket WHERE device_id = 'L1' AND reason = 'run_hours'"
			 " AND description LIKE 'maintenance due: 960.0 run hours since the last"
			 " maintenance, interval 1000 (lead 50 h)'", 1));
	CHECK(fixture_wait_metric(h, alertd,
				  "sc_alertd_alerts_total{source=\"lifecycle\",state=\"raised\"}", 4,
				  5000) == 4);
	rc = 0;
out:
	return rc;
}

static int test_no_second_and_clear(void)
{
	int rc = -1;
	char now[32], json[512];

	/* The design-life ticket is resolved but the device is as old as it
	 * was: its alert still fires, no second ticket is opened. */
	CHECK(harness_sql_exec(h, "SELECT sc_ticket_set_state(id, 'resolved', 'test') FROM ticket"
				  " WHERE device_id = 'L4' AND reason = 'design_life'") == 0);
	sleep_ms(2500);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'L4' AND reason = 'design_life'")
	      == 1);

	/* L2 maintained today: its alert clears, its ticket (new) with it. */
	when(now, sizeof(now), 0);
	snprintf(json, sizeof(json),
		 "{\"devices\": [{\"id\": \"L2\", \"site_id\": \"S1\", \"model\": \"XJ-MT300\","
		 " \"maint_interval_days\": 365, \"last_maintenance_at\": \"%s\"}]}", now);
	CHECK(fixture_import(h, json) == 0);
	CHECK(wait_count("SELECT count(*) FROM alert WHERE device_id = 'L2' AND state = 'cleared'", 1));
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'L2' AND state = 'cleared'"
		       " AND state_reason LIKE 'alert %% cleared'") == 1);
	CHECK(fixture_wait_metric(h, alertd,
				  "sc_alertd_alerts_total{source=\"lifecycle\",state=\"cleared\"}", 1,
				  5000) == 1);
	CHECK(sql_long("SELECT count(*) FROM (SELECT device_id, rule_id FROM alert WHERE state = 'firing'"
		       " GROUP BY 1, 2 HAVING count(*) > 1) d") == 0);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	int rc = 1;
	static const char *const env[] = { "SC_LIFECYCLE_LEAD_DAYS=30", "SC_LIFECYCLE_LEAD_HOURS=50",
					    NULL };

	h = fixture_start(NULL);
	CHECK(h != NULL);
	CHECK(import_country() == 0);
	alertd = harness_spawn(h, "sc-alertd", env, NULL);
	CHECK(alertd > 0);
	CHECK(test_scan() == 0);
	CHECK(test_no_second_and_clear() == 0);
	CHECK(harness_stop_program(h, alertd, SIGTERM) == 0);
	alertd = 0;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	harness_stop(h);
	fprintf(stderr, "test_alertd_lifecycle: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

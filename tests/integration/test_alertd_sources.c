/*
 * sc-alertd's sources beside the threshold rules (test_alertd.c), against a
 * real database and broker: device alarms, silent rules, the lifecycle
 * scan, flapping, and an alert that clears after its ticket was
 * dispatched. Device messages are written the way sc-ingest commits them
 * (rows with a batch id from nextval('ingest_batch_id') and
 * sc_ingest_batch_commit() in the same transaction), so no sc-ingest runs.
 *
 * - alarms: a known code raises one alert (source alarm) whose ticket takes
 *   severity, skill, grade, remote handling and category from the model's
 *   alarm-code table; a repeat raises nothing; `cleared` clears it and its
 *   undispatched ticket; a late `raised` older than the clear is ignored;
 *   an alarm and telemetry in one batch are both evaluated; an unknown code
 *   raises a major fault with request_rules' skill, is logged and counted;
 *   an alarm about a device with an open fault ticket links to it;
 * - silent rules (arrival time, timers): a device that stops reporting
 *   raises for_s after its last arrival with no message arriving; a device
 *   that never reported does not; a metric's rule raises while the device
 *   sends other metrics; data coming back clears; across kill -9 a silence
 *   is raised after the restart and one that ended while sc-alertd was
 *   down is raised and cleared; a new silent rule watches devices that
 *   reported before it existed;
 * - flapping: more than 2 fire/clear cycles in 100 s fold into one alert
 *   marked flapping (no further alerts or tickets, also across kill -9),
 *   which clears after 100 s quiet; a new breach then is a new alert;
 * - an alert that clears after its ticket was offered leaves the ticket
 *   open and annotates the engineer's order on its topic (outbox).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* D1, D2 (XJ-PR900) at S1 of C1 (vip); M1 (XJ-MT300) at S2 of C2 (key). */
static const char data_set[] =
	"{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],"
	" \"customers\": [{\"id\": \"C1\", \"name\": \"Zhengzhou Grid\", \"tier\": \"vip\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"name\": \"Luoyang Works\", \"tier\": \"key\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HA\", \"lat\": 34.62, \"lon\": 112.45}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"M1\", \"site_id\": \"S2\", \"model\": \"XJ-MT300\"},"
	"               {\"id\": \"F1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"G1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"Q1\", \"site_id\": \"S2\", \"model\": \"XJ-SL100\"},"
	"               {\"id\": \"Q2\", \"site_id\": \"S2\", \"model\": \"XJ-SL100\"},"
	"               {\"id\": \"Q3\", \"site_id\": \"S2\", \"model\": \"XJ-SL100\"},"
	"               {\"id\": \"Q4\", \"site_id\": \"S2\", \"model\": \"XJ-SL200\"}],"
	" \"engineers\": [{\"id\": \"E1\", \"name\": \"Wang\", \"kind\": \"onsite\", \"province\": \"HA\","
	"                  \"lat\": 34.7, \"lon\": 113.6, \"skills\": {\"relay_protection\": 3}}],"
	" \"alert_rules\": ["
	"   {\"id\": \"R-temp\", \"model\": \"*\", \"metric\": \"temp_c\", \"op\": \">\", \"threshold\": 85,"
	"    \"for_s\": 0, \"clear\": 80, \"severity\": \"major\", \"skill\": \"relay_protection\","
	"    \"min_grade\": 2, \"category\": \"fault\", \"remote_ok\": false},"
	"   {\"id\": \"R-quiet\", \"model\": \"XJ-SL100\", \"op\": \"silent\", \"for_s\": 2,"
	"    \"severity\": \"minor\", \"skill\": \"substation_automation\", \"min_grade\": 1,"
	"    \"remote_ok\": true},"
	"   {\"id\": \"R-quiet-volt\", \"model\": \"XJ-SL100\", \"op\": \"silent\", \"metric\": \"volt_v\","
	"    \"for_s\": 3, \"severity\": \"minor\", \"skill\": \"metering\", \"min_grade\": 1,"
	"    \"category\": \"maintenance\"}],"
	" \"alarm_codes\": ["
	"   {\"model\": \"XJ-PR900\", \"code\": \"E201\", \"severity\": \"critical\", \"skill\": \"relay_protection\","
	"    \"min_grade\": 3, \"remote_ok\": false, \"category\": \"fault\"},"
	"   {\"model\": \"XJ-MT300\", \"code\": \"W17\", \"severity\": \"minor\", \"skill\": \"metering\","
	"    \"min_grade\": 1, \"remote_ok\": true, \"category\": \"maintenance\"}],"
	" \"request_rules\": [{\"category\": \"fault\", \"model\": \"*\", \"skill\": \"substation_automation\","
	"                      \"min_grade\": 2, \"remote_ok\": true}]"
	"}";

static struct harness *h;
static pid_t alertd;
static int alertd_runs;
/* Flapping folds after 2 cycles in 100 s here (the default is 5 in 600). */
static const char *const flap_env[] = { "SC_ALERT_FLAP_CYCLES=2", "SC_ALERT_FLAP_WINDOW_S=100",
					NULL };

/* ---- driving ------------------------------------------------------------ */

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

/*
 * Commits one ingest batch as sc-ingest does. `rows` is SQL inserting into
 * telemetry / device_alarm with batch_id currval('ingest_batch_id').
 */
static int batch(const char *rows)
{
	char sql[4096];

	snprintf(sql, sizeof(sql),
		 "BEGIN; SELECT nextval('ingest_batch_id'); %s;"
		 " SELECT sc_ingest_batch_commit(currval('ingest_batch_id')); COMMIT;", rows);
	return harness_sql_exec(h, sql);
}


static int alarm_row(char *buf, size_t len, const char *device, int seq, int t, const char *code,
		     const char *state)
{
	return snprintf(buf, len,
			"INSERT INTO device_alarm (device_id, seq, ts, received_at, code, state, text,"
			" batch_id) VALUES ('%s', %d, timestamptz '2026-11-23 08:00:00+00' + %d *"
			" interval '1 second', now(), '%s', '%s', 'text of %s',"
			" currval('ingest_batch_id'))",
			device, seq, t, code, state, code);
}

static int telemetry_row(char *buf, size_t len, const char *device, int seq, int t,
			 const char *metrics)
{
	return snprintf(buf, len,
			"INSERT INTO telemetry (device_id, seq, ts, received_at, metrics, batch_id)"
			" VALUES ('%s', %d, timestamptz '2026-11-23 08:00:00+00' + %d *"
			" interval '1 second', now(), '%s', currval('ingest_batch_id'))",
			device, seq, t, metrics);
}

static bool caught_up(void)
{
	return harness_wait_sql(h,
		"SELECT count(*) FROM stream_cursor WHERE consumer LIKE 'sc-alertd/p%'"
		" AND seq = (SELECT seq FROM ingest_head)", 8, 20000);
}

/* One alarm in its own batch, applied. */
static int send_alarm(const char *device, int seq, int t, const char *code, const char *state)
{
	char row[1024];

	alarm_row(row, sizeof(row), device, seq, t, code, state);
	if (batch(row) != 0 || !caught_up()) {
		fprintf(stderr, "test_alertd_sources: alarm not applied device=%s seq=%d\n", device,
			seq);
		return -1;
	}
	return 0;
}

static int start_alertd(const char *const *env)
{
	alertd = harness_spawn(h, "sc-alertd", env, NULL);
	alertd_runs++;
	return alertd > 0 ? 0 : -1;
}

static bool log_has(int run, const char *needle)
{
	char path[512], line[4096];
	bool found = false;

	snprintf(path, sizeof(path), "%s/sc-alertd-%d.log", harness_dir(h), run);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* The line is written when sc-alertd hears its commit, which may be after
 * the test saw the commit's effects: wait up to 5 s for it. */
static bool log_contains(int run, const char *needle)
{
	const struct timespec step = { .tv_nsec = 50 * 1000 * 1000 };

	for (int i = 0; i < 100; i++) {
		if (log_has(run, needle))
			return true;
		nanosleep(&step, NULL);
	}
	return false;
}

/* True once the series reads want: counters move a little after the commit. */
static bool metric_is(const char *series, double want)
{
	return fixture_wait_metric(h, alertd, series, want, 5000) == want;
}

/* ---- device alarms -------------------------------------------------------- */

static int test_alarms(void)
{
	int rc = -1;
	char rows[2048], row2[1024];
	long alert_id;

	/* Known code: the model's table decides the ticket. */
	CHECK(send_alarm("D1", 1, 0, "E201", "raised") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D1' AND source = 'alarm'"
		       " AND rule_id = 'E201' AND state = 'firing' AND severity = 'critical'"
		       " AND raised_at = timestamptz '2026-11-23 08:00:00+00'"
		       " AND detail->>'text' = 'text of E201'"
		       " AND NOT (detail->>'unknown_code')::boolean") == 1);
	alert_id = sql_long("SELECT id FROM alert WHERE device_id = 'D1' AND source = 'alarm'");
	CHECK(sql_long("SELECT count(*) FROM ticket t JOIN alert a ON a.ticket_id = t.id"
		       " WHERE a.id = %ld AND t.source = 'alarm' AND t.source_ref = a.id::text"
		       " AND t.state = 'new' AND t.severity = 'critical' AND t.skill = 'relay_protection'"
		       " AND t.min_grade = 3 AND NOT t.remote_ok AND t.category = 'fault'"
		       " AND t.tier = 'vip'", alert_id) == 1);
	/* The device repeats it: nothing new. */
	CHECK(send_alarm("D1", 2, 5, "E201", "raised") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D1'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D1'") == 1);
	CHECK(metric_is("sc_alertd_alerts_total{source=\"alarm\",state=\"raised\"}", 1));
	/* Cleared: the alert and its ticket (not dispatched yet). */
	CHECK(send_alarm("D1", 3, 10, "E201", "cleared") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE id = %ld AND state = 'cleared'"
		       " AND cleared_at = timestamptz '2026-11-23 08:00:10+00'", alert_id) == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D1' AND state = 'cleared'"
		       " AND state_reason = 'alert %ld cleared'", alert_id) == 1);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D1'"
		       " AND rule_id = 'alarm:E201' AND alert_id IS NULL AND last_seq = 3") == 1);
	CHECK(metric_is("sc_alertd_alerts_total{source=\"alarm\",state=\"cleared\"}", 1));
	/* A late raise from before the clear (older ts, higher seq as a
	 * device that restarted its numbering might send) changes nothing. */
	CHECK(send_alarm("D1", 9, 8, "E201", "raised") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D1' AND state = 'firing'") == 0);

	/* Telemetry and an alarm in one batch: both evaluated, in order. */
	telemetry_row(rows, sizeof(rows), "D2", 1, 20, "{\"temp_c\": 90}");
	alarm_row(row2, sizeof(row2), "D2", 2, 21, "E201", "raised");
	strncat(rows, "; ", sizeof(rows) - strlen(rows) - 1);
	strncat(rows, row2, sizeof(rows) - strlen(rows) - 1);
	CHECK(batch(rows) == 0 && caught_up());
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D2' AND state = 'firing'") == 2);
	/* One problem, one ticket: the alarm links to the rule's fault ticket. */
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D2'") == 1);
	CHECK(sql_long("SELECT count(DISTINCT ticket_id) FROM alert WHERE device_id = 'D2'") == 1);
	CHECK(log_contains(alertd_runs, "ticket_outcome=linked"));

	/* Unknown code: a major fault with request_rules' triage, reported. */
	CHECK(send_alarm("D1", 10, 30, "X999", "raised") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert a JOIN ticket t ON t.id = a.ticket_id"
		       " WHERE a.device_id = 'D1' AND a.rule_id = 'X999' AND a.state = 'firing'"
		       " AND a.severity = 'major' AND (a.detail->>'unknown_code')::boolean"
		       " AND t.severity = 'major' AND t.category = 'fault'"
		       " AND t.skill = 'substation_automation' AND t.min_grade = 2 AND t.remote_ok"
		       " AND t.description LIKE '%%not in the alarm-code table of model XJ-PR900%%'")
	      == 1);
	CHECK(metric_is("sc_alertd_alarm_unknown_codes_total", 1));
	CHECK(log_contains(alertd_runs, "alarm code unknown"));

	/* Another model's table and category: M1's W17 is a minor,
	 * remote-capable maintenance ticket. */
	CHECK(send_alarm("M1", 1, 0, "W17", "raised") == 0);
	CHECK(sql_long("SELECT count(*) FROM ticket t JOIN alert a ON a.ticket_id = t.id"
		       " WHERE a.device_id = 'M1' AND t.category = 'maintenance'"
		       " AND t.severity = 'minor' AND t.skill = 'metering' AND t.min_grade = 1"
		       " AND t.remote_ok AND t.tier = 'key'") == 1);
	/* ... and E201 is not in XJ-MT300's table: unknown there. */
	CHECK(send_alarm("M1", 2, 1, "E201", "raised") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'M1' AND rule_id = 'E201'"
		       " AND severity = 'major' AND (detail->>'unknown_code')::boolean") == 1);
	CHECK(metric_is("sc_alertd_alarm_unknown_codes_total", 2));
	CHECK(metric_is("sc_alertd_alarms_evaluated_total",
			(double)sql_long("SELECT count(*) FROM device_alarm")));
	rc = 0;
out:
	return rc;
}

/* ---- silent rules ----------------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* One telemetry sample in its own batch, received now; not waited for. */
static int sample_now(const char *device, int seq, const char *metrics)
{
	char row[1024];

	telemetry_row(row, sizeof(row), device, seq, seq, metrics);
	return batch(row);
}

/* Firing silent alerts of a device and rule. */
static long silent_firing(const char *device, const char *rule)
{
	return sql_long("SELECT count(*) FROM alert WHERE device_id = '%s' AND source = 'rule'"
			" AND rule_id = '%s' AND state = 'firing'", device, rule);
}

static int test_silent(void)
{
	int rc = -1;
	char sql[1024];

	/* Q1 reports twice, a second apart, then falls silent. Q3 never
	 * reports: it is never silent. */
	CHECK(sample_now("Q1", 1, "{\"temp_c\": 20}") == 0);
	sleep_ms(1000);
	CHECK(sample_now("Q1", 2, "{\"temp_c\": 21}") == 0);
	CHECK(caught_up());
	CHECK(silent_firing("Q1", "R-quiet") == 0);
	/* No message comes; the timer raises 2 s after the last arrival. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alert WHERE device_id = 'Q1'"
		 " AND rule_id = 'R-quiet' AND state = 'firing'");
	CHECK(harness_wait_sql(h, sql, 1, 6000));
	CHECK(sql_long("SELECT count(*) FROM alert a JOIN ticket t ON t.id = a.ticket_id"
		       " WHERE a.device_id = 'Q1' AND a.rule_id = 'R-quiet'"
		       " AND a.raised_at = (SELECT received_at FROM telemetry"
		       "                     WHERE device_id = 'Q1' AND seq = 2) + interval '2 s'"
		       " AND a.severity = 'minor' AND t.skill = 'substation_automation'"
		       " AND t.remote_ok AND t.state = 'new'"
		       " AND t.description LIKE 'rule R-quiet: nothing received for 2 s%%'") == 1);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'Q3'") == 0);
	/* Only Q1's metric rule too: volt_v never came from Q1. */
	CHECK(silent_firing("Q1", "R-quiet-volt") == 0);

	/* Q2 keeps sending temp_c but its volt_v stopped: only the metric's
	 * rule raises. */
	CHECK(sample_now("Q2", 1, "{\"volt_v\": 230, \"temp_c\": 20}") == 0);
	for (int i = 2; i < 12; i++) {
		sleep_ms(400);
		CHECK(sample_now("Q2", i, "{\"temp_c\": 20}") == 0);
	}
	CHECK(caught_up());
	CHECK(silent_firing("Q2", "R-quiet-volt") == 1);
	CHECK(silent_firing("Q2", "R-quiet") == 0);
	CHECK(sql_long("SELECT count(*) FROM ticket t JOIN alert a ON a.ticket_id = t.id"
		       " WHERE a.device_id = 'Q2' AND a.rule_id = 'R-quiet-volt'"
		       " AND t.category = 'maintenance'"
		       " AND t.description LIKE '%%nothing received of volt_v for 3 s%%'") == 1);

	/* Data comes back: cleared, and its undispatched ticket with it. */
	CHECK(sample_now("Q1", 3, "{\"temp_c\": 22}") == 0);
	CHECK(caught_up());
	CHECK(silent_firing("Q1", "R-quiet") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert a JOIN ticket t ON t.id = a.ticket_id"
		       " WHERE a.device_id = 'Q1' AND a.rule_id = 'R-quiet' AND a.state = 'cleared'"
		       " AND a.cleared_at = (SELECT received_at FROM telemetry"
		       "                      WHERE device_id = 'Q1' AND seq = 3)"
		       " AND t.state = 'cleared'") == 1);
	CHECK(sample_now("Q2", 20, "{\"volt_v\": 231}") == 0);
	CHECK(caught_up());
	CHECK(silent_firing("Q2", "R-quiet-volt") == 0);
	rc = 0;
out:
	return rc;
}

/*
 * Silence across kill -9: a device that falls silent while sc-alertd is
 * down raises after the restart, from the arrival kept in rule_state; a
 * silence that ended while it was down is still recorded (raised and
 * cleared); a device that reported before its silent rule was imported is
 * watched from its last arrival (device_state).
 */
static int test_silent_restart(void)
{
	int rc = -1;
	char sql[512];

	/* Q1 silent again from now on, Q2's volt_v keeps coming. */
	CHECK(sample_now("Q1", 4, "{\"temp_c\": 22}") == 0);
	CHECK(caught_up());
	CHECK(harness_kill9(h, alertd) == 0);
	/* While down: Q2's volt_v pauses 3.5 s and comes back. Q4 reports,
	 * but no silent rule watches its model yet. */
	CHECK(sample_now("Q2", 21, "{\"volt_v\": 230}") == 0);
	/* Through sc-ingest's own batch function, which keeps device_state
	 * (with the device's merged state beside the rows, as sc-ingest sends). */
	CHECK(harness_sql_exec(h, "WITH x AS (SELECT jsonb_build_array(jsonb_build_object("
				  " 'd', 'Q4', 's', 1, 't', extract(epoch FROM now()),"
				  " 'r', extract(epoch FROM now()), 'm', '{\"temp_c\": 20}'::jsonb)) AS r)"
				  " SELECT sc_ingest_batch(jsonb_build_object('telemetry', r, 'states', r))"
				  " FROM x") == 0);
	CHECK(sql_long("SELECT count(*) FROM device_state WHERE device_id = 'Q4'") == 1);
	sleep_ms(3500);
	CHECK(sample_now("Q2", 22, "{\"volt_v\": 229}") == 0);
	CHECK(start_alertd(flap_env) == 0);
	CHECK(caught_up());
	/* Q2's gap: raised at the deadline, cleared by the arrival. */
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'Q2'"
		       " AND rule_id = 'R-quiet-volt' AND state = 'cleared'"
		       " AND raised_at = (SELECT received_at FROM telemetry"
		       "                   WHERE device_id = 'Q2' AND seq = 21) + interval '3 s'"
		       " AND cleared_at = (SELECT received_at FROM telemetry"
		       "                    WHERE device_id = 'Q2' AND seq = 22)") == 1);
	/* Q1 has been silent for over 2 s: raised once. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alert WHERE device_id = 'Q1'"
		 " AND rule_id = 'R-quiet' AND state = 'firing'");
	CHECK(harness_wait_sql(h, sql, 1, 6000));
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'Q1' AND rule_id = 'R-quiet'"
		       " AND raised_at = (SELECT received_at FROM telemetry"
		       "                   WHERE device_id = 'Q1' AND seq = 4) + interval '2 s'") == 1);
	/* A rule for Q4's model, imported now: Q4 reported seconds ago. */
	CHECK(fixture_import(h, "{\"alert_rules\": [{\"id\": \"R-quiet-200\", \"model\": \"XJ-SL200\","
				" \"op\": \"silent\", \"for_s\": 2, \"severity\": \"minor\","
				" \"skill\": \"metering\"}]}") == 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alert WHERE device_id = 'Q4'"
		 " AND rule_id = 'R-quiet-200' AND state = 'firing'");
	CHECK(harness_wait_sql(h, sql, 1, 8000));
	/* No second alert for any of them. */
	sleep_ms(500);
	CHECK(sql_long("SELECT count(*) FROM (SELECT device_id, rule_id FROM alert"
		       " WHERE state = 'firing' GROUP BY 1, 2 HAVING count(*) > 1) d") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'Q1'"
		       " AND rule_id = 'R-quiet'") == 2);
	rc = 0;
out:
	return rc;
}

/* ---- flapping (SC_ALERT_FLAP_CYCLES=2, SC_ALERT_FLAP_WINDOW_S=100) -------- */

static int temp(const char *device, int seq, int t, double v)
{
	char row[1024], m[64];

	snprintf(m, sizeof(m), "{\"temp_c\": %g}", v);
	telemetry_row(row, sizeof(row), device, seq, t, m);
	if (batch(row) != 0 || !caught_up()) {
		fprintf(stderr, "test_alertd_sources: sample not applied device=%s seq=%d\n", device,
			seq);
		return -1;
	}
	return 0;
}

static int test_flapping(void)
{
	int rc = -1, seq = 1;

	/* Two cycles are announced as they happen: two alerts, two tickets
	 * (cleared before dispatch). */
	for (int t = 0; t < 40; t += 20) {
		CHECK(temp("F1", seq++, t, 90) == 0);
		CHECK(temp("F1", seq++, t + 10, 70) == 0);
	}
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1' AND state = 'cleared'"
		       " AND NOT flapping") == 2);
	/* The third clear within 100 s: folded, the alert fires on. */
	CHECK(temp("F1", seq++, 40, 90) == 0);
	CHECK(temp("F1", seq++, 50, 70) == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1' AND state = 'firing'"
		       " AND flapping AND (detail->>'flap_cycles')::int = 3"
		       " AND detail->>'flapping_since' = '2026-11-23T08:00:50.000Z'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'F1' AND state = 'new'") == 1);
	CHECK(metric_is("sc_alertd_flapping_total", 1));
	CHECK(log_contains(alertd_runs, "alert flapping"));
	/* It keeps flapping, across a kill -9: nothing new. */
	CHECK(temp("F1", seq++, 60, 95) == 0);
	CHECK(temp("F1", seq++, 70, 60) == 0);
	CHECK(harness_kill9(h, alertd) == 0);
	CHECK(start_alertd(flap_env) == 0);
	CHECK(temp("F1", seq++, 80, 99) == 0);
	CHECK(temp("F1", seq++, 90, 70) == 0);
	CHECK(temp("F1", seq++, 150, 70) == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1'") == 3);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'F1'") == 3);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1' AND state = 'firing'") == 1);
	/* Clear for 100 s after the last clear (t=90): cleared, its ticket
	 * (still new) too. */
	CHECK(temp("F1", seq++, 190, 70) == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1' AND state = 'firing'") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1' AND flapping"
		       " AND cleared_at = timestamptz '2026-11-23 08:03:10+00'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'F1' AND state = 'cleared'") == 3);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'F1' AND NOT flapping"
		       " AND cycles = 0 AND alert_id IS NULL") == 1);
	/* A new breach is a new alert. */
	CHECK(temp("F1", seq++, 200, 90) == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'F1' AND state = 'firing'"
		       " AND NOT flapping") == 1);
	rc = 0;
out:
	return rc;
}

/* ---- clear after dispatch ---------------------------------------------------- */

/*
 * An alert that clears after its ticket was offered to an engineer: the
 * ticket stays open, the order is annotated on the engineer's orders topic.
 */
static int test_clear_after_dispatch(void)
{
	int rc = -1;
	struct harness_mqtt *m = NULL;
	char *p = NULL, order[48];
	long alert_id;

	m = harness_mqtt_connect(h, "test-orders");
	CHECK(m != NULL);
	CHECK(harness_mqtt_subscribe(m, "sc/v1/engineers/+/orders") == 0);
	CHECK(temp("G1", 1, 0, 90) == 0);
	alert_id = sql_long("SELECT id FROM alert WHERE device_id = 'G1' AND state = 'firing'");
	CHECK(alert_id > 0);
	/* Dispatched the way sc-dispatch does it. */
	CHECK(harness_sql_exec(h, "SELECT sc_order_offer(ticket_id, 'E1', NULL, 'onsite', 'test')"
				  " FROM alert WHERE device_id = 'G1' AND state = 'firing'") == 0);
	p = fixture_wait_payload(m, "sc/v1/engineers/E1/orders", "\"offer_expires_at\"", 10000);
	CHECK(p != NULL);
	free(p);
	p = NULL;
	snprintf(order, sizeof(order), "\"order_id\": \"W%06ld\"",
		 sql_long("SELECT substr(id, 2)::int FROM work_order WHERE engineer_id = 'E1'"));
	/* Back within bounds: cleared, the ticket stays offered and the
	 * engineer hears of it on the order's topic. */
	CHECK(temp("G1", 2, 10, 70) == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE id = %ld AND state = 'cleared'", alert_id) == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'G1' AND state = 'offered'") == 1);
	p = fixture_wait_payload(m, "sc/v1/engineers/E1/orders", "\"alert_cleared\": true", 10000);
	CHECK(p != NULL);
	fprintf(stderr, "test_alertd_sources: annotation %s\n", p);
	CHECK(strstr(p, order) != NULL);
	CHECK(strstr(p, "\"ts\": \"2026-11-23T08:00:10.000Z\"") != NULL);
	CHECK(sql_long("SELECT count(*) FROM ticket_history th JOIN ticket t ON t.id = th.ticket_id"
		       " WHERE t.device_id = 'G1' AND (th.detail->>'alert_cleared')::bigint = %ld",
		       alert_id) == 1);
	CHECK(log_contains(alertd_runs, "orders_annotated=1"));
	rc = 0;
out:
	free(p);
	harness_mqtt_free(m);
	return rc;
}

/* Alarm state survives a restart: a clear after it still clears. */
static int test_alarm_restart(void)
{
	int rc = -1;

	CHECK(harness_kill9(h, alertd) == 0);
	CHECK(start_alertd(flap_env) == 0);
	CHECK(send_alarm("M1", 3, 2, "W17", "cleared") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'M1' AND rule_id = 'W17'"
		       " AND state = 'cleared'") == 1);
	CHECK(send_alarm("M1", 4, 3, "W17", "cleared") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'M1' AND rule_id = 'W17'") == 1);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	int rc = 1;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	CHECK(start_alertd(flap_env) == 0);
	CHECK(test_alarms() == 0);
	CHECK(test_alarm_restart() == 0);
	CHECK(test_silent() == 0);
	CHECK(test_silent_restart() == 0);
	CHECK(test_flapping() == 0);
	CHECK(test_clear_after_dispatch() == 0);
	CHECK(harness_stop_program(h, alertd, SIGTERM) == 0);
	alertd = 0;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	harness_stop(h);
	fprintf(stderr, "test_alertd_sources: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

/*
 * sc-alertd against a real database and broker. Telemetry is written the
 * way sc-ingest commits it (INSERT INTO telemetry ... with a batch id from
 * nextval('ingest_batch_id'), then sc_ingest_batch_commit() in the same
 * transaction), so this test needs no sc-ingest. One sample per batch, and
 * the test waits for the cursor to reach the log head after each, so every
 * sample is its own round.
 *
 * - --help exits 0; a bad SC_LOG_LEVEL (environment or --config file)
 *   exits non-zero naming the key;
 * - for_s on device ts: a hold shorter than for_s raises nothing, a sample
 *   under the threshold resets the window, a hold of exactly for_s raises
 *   one alert and one ticket with the rule's severity, skill, grade and
 *   category and the customer's tier;
 * - at the threshold `>` raises nothing and `>=` (for_s 0) raises at once;
 *   a rule for another model leaves a device alone;
 * - hysteresis: between clear and threshold the alert keeps firing, at
 *   clear it clears and its ticket (still new) becomes cleared with its
 *   SLA clocks cancelled; a ticket already dispatched stays as it is;
 * - an out-of-order sample is ignored and a sample without the metric
 *   changes nothing;
 * - an import takes effect within 5 s (a new rule and a new device), and
 *   an alert about a device with an open ticket links to it (which its
 *   clearing then leaves alone, a customer asked for it);
 * - kill -9 while batches stream in, and kill -9 while an apply waits on a
 *   lock (its commit lands after the process died): after a restart no
 *   alert is duplicated and none is missed; an apply from stale cursors
 *   changes nothing;
 * - two instances share the 8 device partitions; kill -9 of one while
 *   batches stream in: the other takes over, nothing doubled or missed;
 *   restarted, it gets its share back; an instance with another
 *   SC_ALERTD_PARTITIONS is refused while they run;
 * - the metrics count what happened; SIGTERM exits 0; no sanitizer report.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* Devices D1-D4 (XJ-PR900) at S1 of C1 (vip); D5 (XJ-MT300) and K0-K9
 * (XJ-PR900) at S2 of C2 (key). */
static const char data_set[] =
	"{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],"
	" \"customers\": [{\"id\": \"C1\", \"name\": \"Zhengzhou Grid\", \"tier\": \"vip\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"name\": \"Luoyang Works\", \"tier\": \"key\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HA\", \"lat\": 34.62, \"lon\": 112.45}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D3\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D4\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D5\", \"site_id\": \"S2\", \"model\": \"XJ-MT300\"},"
	"               {\"id\": \"K0\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K1\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K2\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K3\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K4\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K5\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K6\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K7\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K8\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"K9\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"}],"
	" \"alert_rules\": ["
	"   {\"id\": \"R-temp\", \"model\": \"*\", \"metric\": \"temp_c\", \"op\": \">\", \"threshold\": 85,"
	"    \"for_s\": 60, \"clear\": 80, \"severity\": \"major\", \"skill\": \"relay_protection\","
	"    \"min_grade\": 2, \"category\": \"fault\", \"remote_ok\": false},"
	"   {\"id\": \"R-load\", \"model\": \"XJ-MT300\", \"metric\": \"load_pct\", \"op\": \">=\","
	"    \"threshold\": 100, \"for_s\": 0, \"severity\": \"critical\", \"skill\": \"metering\","
	"    \"min_grade\": 3, \"remote_ok\": true},"
	"   {\"id\": \"R-silent\", \"model\": \"*\", \"op\": \"silent\", \"for_s\": 900, \"severity\": \"minor\","
	"    \"skill\": \"substation_automation\", \"min_grade\": 1, \"category\": \"fault\", \"remote_ok\": true}],"
	" \"request_rules\": [{\"category\": \"fault\", \"model\": \"*\", \"skill\": \"relay_protection\", \"min_grade\": 2, \"remote_ok\": false}]"
	"}";

/* Imported while sc-alertd runs: a new rule and a new device. */
static const char more_data[] =
	"{\"devices\": [{\"id\": \"D6\", \"site_id\": \"S2\", \"model\": \"XJ-MT300\"}],"
	" \"alert_rules\": [{\"id\": \"R-volt\", \"model\": \"XJ-PR900\", \"metric\": \"volt_v\", \"op\": \"<\","
	"   \"threshold\": 10, \"for_s\": 0, \"severity\": \"major\", \"skill\": \"relay_protection\","
	"   \"min_grade\": 2, \"category\": \"fault\"}]}";

static struct harness *h;
static pid_t alertd;
static int alertd_runs; /* runs of sc-alertd so far: its logs are sc-alertd-<n>.log */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* ---- driving ------------------------------------------------------------ */

/*
 * Commits one ingest batch of one sample as sc-ingest does: device, seq,
 * ts = 2026-11-23T08:00:00Z + t seconds, metrics (a JSON object).
 */
static int sample(const char *device, int seq, int t, const char *metrics)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "BEGIN;"
		 "SELECT nextval('ingest_batch_id');"
		 "INSERT INTO telemetry (device_id, seq, ts, received_at, metrics, batch_id)"
		 " VALUES ('%s', %d, timestamptz '2026-11-23 08:00:00+00' + %d * interval '1 second',"
		 " now(), '%s', currval('ingest_batch_id'));"
		 "SELECT sc_ingest_batch_commit(currval('ingest_batch_id'));"
		 "COMMIT;",
		 device, seq, t, metrics);
	return harness_sql_exec(h, sql);
}

/* Waits until sc-alertd applied every committed batch: the cursors of its
 * 8 partitions (SC_ALERTD_PARTITIONS default) at the log's head. */
static bool caught_up(void)
{
	return harness_wait_sql(h,
		"SELECT count(*) FROM stream_cursor WHERE consumer LIKE 'sc-alertd/p%'"
		" AND seq = (SELECT seq FROM ingest_head)", 8, 20000);
}

/* One sample, applied. */
static int step(const char *device, int seq, int t, const char *metrics)
{
	if (sample(device, seq, t, metrics) != 0 || !caught_up()) {
		fprintf(stderr, "test_alertd: sample not applied device=%s seq=%d\n", device, seq);
		return -1;
	}
	return 0;
}

static long sql_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long sql_long(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return harness_sql_long(h, sql);
}

static int start_alertd(void)
{
	alertd = harness_spawn(h, "sc-alertd", NULL, NULL);
	alertd_runs++;
	return alertd > 0 ? 0 : -1;
}

static bool log_contains(int run, const char *needle)
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

/* ---- metrics over HTTP --------------------------------------------------- */

/* GET path from 127.0.0.1:port; the whole response (caller frees) or NULL. */
static char *http_get(int port, const char *path)
{
	char *buf = NULL, req[256];
	size_t len = 0, cap = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);

	if (fd < 0)
		return NULL;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || write(fd, req, (size_t)n) != n)
		goto fail;
	for (;;) {
		if (cap - len < 4096) {
			char *p = realloc(buf, cap + 65536);
			if (p == NULL)
				goto fail;
			buf = p;
			cap += 65536;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (buf != NULL)
		buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* Value of one series ("name{labels}" as rendered), NAN if absent. */
static double metric(const char *series)
{
	char *text = http_get(harness_metrics_port(h, alertd), "/metrics");
	double v = NAN;
	size_t k = strlen(series);

	for (char *line = text; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n');
		if (strncmp(line, series, k) == 0 && line[k] == ' ') {
			v = strtod(line + k + 1, NULL);
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	free(text);
	return v;
}

#define RAISED_RULE "sc_alertd_alerts_total{source=\"rule\",state=\"raised\"}"
#define CLEARED_RULE "sc_alertd_alerts_total{source=\"rule\",state=\"cleared\"}"

/* ---- cases ---------------------------------------------------------------- */

static int test_cli(void)
{
	char out[8192], path[512];
	int rc = -1;

	const char *help[] = { "--help", NULL };
	CHECK(harness_run(h, "sc-alertd", help, out, sizeof(out)) == 0);
	alertd_runs++;
	CHECK(strstr(out, "SC_SWEEP_MS") != NULL);

	snprintf(path, sizeof(path), "%s/bad.env", harness_dir(h));
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("# a level nobody knows\nSC_LOG_LEVEL=shouty\n", f);
	fclose(f);
	const char *cfg[] = { "--config", path, NULL };
	CHECK(harness_run(h, "sc-alertd", cfg, out, sizeof(out)) == 1);
	alertd_runs++;
	CHECK(strstr(out, "SC_LOG_LEVEL") != NULL);

	/* The same in the environment. Signal 0: only wait for it to exit on
	 * its own (a SIGTERM could end it before it reads its configuration). */
	const char *env[] = { "SC_LOG_LEVEL=shouty", NULL };
	pid_t pid = harness_spawn(h, "sc-alertd", env, NULL);
	CHECK(pid > 0);
	alertd_runs++;
	CHECK(harness_stop_program(h, pid, 0) == 1);
	CHECK(log_contains(alertd_runs, "SC_LOG_LEVEL"));
	rc = 0;
out:
	return rc;
}

static int test_for_s(void)
{
	int rc = -1;

	/* 90, 95 over 30 s, then 70: reset. 90 from t=50 to t=100 is 50 s. */
	CHECK(step("D1", 1, 0, "{\"temp_c\": 90}") == 0);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D1' AND rule_id = 'R-temp'"
		       " AND pending_since = timestamptz '2026-11-23 08:00:00+00'") == 1);
	CHECK(step("D1", 2, 30, "{\"temp_c\": 95}") == 0);
	CHECK(step("D1", 3, 40, "{\"temp_c\": 70}") == 0);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D1' AND rule_id = 'R-temp'"
		       " AND pending_since IS NULL AND last_seq = 3") == 1);
	CHECK(step("D1", 4, 50, "{\"temp_c\": 90}") == 0);
	CHECK(step("D1", 5, 100, "{\"temp_c\": 90}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert") == 0);
	CHECK(sql_long("SELECT count(*) FROM ticket") == 0);
	/* t=110: held 60 s since t=50. */
	CHECK(step("D1", 6, 110, "{\"temp_c\": 90.5}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert") == 1);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D1' AND source = 'rule'"
		       " AND rule_id = 'R-temp' AND state = 'firing' AND severity = 'major'"
		       " AND value = 90.5 AND raised_at = timestamptz '2026-11-23 08:01:50+00'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket t JOIN alert a ON a.ticket_id = t.id"
		       " WHERE t.source = 'rule' AND t.source_ref = a.id::text AND t.state = 'new'"
		       " AND t.device_id = 'D1' AND t.site_id = 'S1' AND t.customer_id = 'C1'"
		       " AND t.tier = 'vip' AND t.severity = 'major' AND t.skill = 'relay_protection'"
		       " AND t.min_grade = 2 AND t.category = 'fault' AND NOT t.remote_ok") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket_history WHERE actor = 'sc-alertd'"
		       " AND state = 'new'") == 1);
	CHECK(sql_long("SELECT count(*) FROM rule_state r JOIN alert a ON a.id = r.alert_id"
		       " WHERE r.device_id = 'D1' AND r.rule_id = 'R-temp' AND r.last_seq = 6") == 1);
	/* Still over: no second alert. */
	CHECK(step("D1", 7, 115, "{\"temp_c\": 99}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert") == 1);
	CHECK(metric(RAISED_RULE) == 1);
	rc = 0;
out:
	return rc;
}

static int test_threshold_and_model(void)
{
	int rc = -1;

	/* Exactly at 85 with `>`, for three times for_s: nothing. */
	CHECK(step("D2", 1, 0, "{\"temp_c\": 85}") == 0);
	CHECK(step("D2", 2, 90, "{\"temp_c\": 85}") == 0);
	CHECK(step("D2", 3, 180, "{\"temp_c\": 85}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D2'") == 0);
	/* Nothing pending either (an idle state is not even written back). */
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D2' AND rule_id = 'R-temp'"
		       " AND pending_since IS NOT NULL") == 0);
	/* R-load is for XJ-MT300: D2 (XJ-PR900) at 100 % raises nothing... */
	CHECK(step("D2", 4, 190, "{\"load_pct\": 100}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D2'") == 0);
	/* ...D5 (XJ-MT300) at exactly 100 with `>=` and for_s 0 raises at once. */
	CHECK(step("D5", 1, 0, "{\"load_pct\": 100, \"temp_c\": 20}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D5' AND rule_id = 'R-load'"
		       " AND state = 'firing' AND severity = 'critical'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D5' AND tier = 'key'"
		       " AND severity = 'critical' AND skill = 'metering' AND min_grade = 3"
		       " AND remote_ok AND state = 'new'") == 1);
	rc = 0;
out:
	return rc;
}

static int test_hysteresis(void)
{
	int rc = -1;
	long alert_id = sql_long("SELECT id FROM alert WHERE device_id = 'D1' AND state = 'firing'");

	CHECK(alert_id > 0);
	/* Between clear (80) and threshold (85), and at the threshold: firing. */
	CHECK(step("D1", 8, 120, "{\"temp_c\": 82}") == 0);
	CHECK(step("D1", 9, 130, "{\"temp_c\": 85}") == 0);
	CHECK(step("D1", 10, 135, "{\"temp_c\": 80.5}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE id = %ld AND state = 'firing'", alert_id) == 1);
	/* At clear: cleared, its ticket (still new) too. */
	CHECK(step("D1", 11, 140, "{\"temp_c\": 80}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE id = %ld AND state = 'cleared'"
		       " AND cleared_at = timestamptz '2026-11-23 08:02:20+00'", alert_id) == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket t JOIN alert a ON a.ticket_id = t.id"
		       " WHERE a.id = %ld AND t.state = 'cleared'"
		       " AND t.state_reason = 'alert %ld cleared'", alert_id, alert_id) == 1);
	CHECK(sql_long("SELECT count(*) FROM sla_clock c JOIN alert a ON a.ticket_id = c.ticket_id"
		       " WHERE a.id = %ld AND c.state = 'cancelled'", alert_id) == 3);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D1'"
		       " AND rule_id = 'R-temp' AND alert_id IS NULL") == 1);
	/* Between clear and threshold again: nothing new. A new breach held
	 * for_s is a new alert with a new ticket. */
	CHECK(step("D1", 12, 150, "{\"temp_c\": 84}") == 0);
	CHECK(step("D1", 13, 160, "{\"temp_c\": 88}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D1'") == 1);
	CHECK(step("D1", 14, 220, "{\"temp_c\": 88}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D1' AND state = 'firing'"
		       " AND id <> %ld", alert_id) == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D1' AND state = 'new'") == 1);

	/* A ticket already dispatched stays when its alert clears. */
	CHECK(harness_sql_exec(h, "SELECT sc_ticket_set_state(t.id, 'offered', 'test')"
				  " FROM ticket t WHERE t.device_id = 'D5'") == 0);
	CHECK(step("D5", 2, 10, "{\"load_pct\": 99.9}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D5' AND state = 'cleared'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D5' AND state = 'offered'") == 1);
	CHECK(metric(RAISED_RULE) == 3);
	CHECK(metric(CLEARED_RULE) == 2);
	rc = 0;
out:
	return rc;
}

static int test_out_of_order(void)
{
	int rc = -1;

	CHECK(step("D3", 10, 1000, "{\"temp_c\": 90}") == 0);
	/* Late (older ts, newer seq): under the threshold, it would reset the
	 * window if it were taken. */
	CHECK(step("D3", 11, 950, "{\"temp_c\": 70}") == 0);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D3' AND rule_id = 'R-temp'"
		       " AND last_seq = 10"
		       " AND last_ts = timestamptz '2026-11-23 08:16:40+00'"
		       " AND pending_since = timestamptz '2026-11-23 08:16:40+00'") == 1);
	/* Without temp_c: R-temp's state does not move. */
	CHECK(step("D3", 12, 1030, "{\"volt_v\": 220}") == 0);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id = 'D3' AND rule_id = 'R-temp'"
		       " AND last_seq = 10") == 1);
	/* 60 s after t=1000: the window held. */
	CHECK(step("D3", 13, 1060, "{\"temp_c\": 90}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D3' AND state = 'firing'"
		       " AND raised_at = timestamptz '2026-11-23 08:17:40+00'") == 1);
	/* A late sample under clear does not clear it either. */
	CHECK(step("D3", 14, 1059, "{\"temp_c\": 10}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D3' AND state = 'firing'") == 1);
	rc = 0;
out:
	return rc;
}

static int test_reload_and_link(void)
{
	int rc = -1;
	long long t0;
	int seq = 1;

	/* A customer called about D4 first: its fault ticket is open. */
	CHECK(harness_sql_exec(h,
		"SELECT sc_ticket_open('{\"request_id\": \"HL-1\", \"channel\": \"hotline\","
		" \"customer_id\": \"C1\", \"site_id\": \"S1\", \"device_id\": \"D4\","
		" \"category\": \"fault\", \"severity\": \"major\", \"skill\": \"relay_protection\","
		" \"min_grade\": 2, \"source\": \"request\", \"actor\": \"test\"}')") == 0);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D4' AND state = 'new'") == 1);

	t0 = now_ms();
	CHECK(fixture_import(h, more_data) == 0);
	/* Samples keep coming; the new rule and the new device must be in
	 * effect within 5 s of the import. */
	while (sql_long("SELECT count(*) FROM alert WHERE device_id IN ('D4', 'D6')") < 2 &&
	       now_ms() - t0 < 8000) {
		CHECK(step("D4", seq, seq, "{\"volt_v\": 5}") == 0);
		CHECK(step("D6", seq, seq, "{\"load_pct\": 120}") == 0);
		seq++;
		sleep_ms(200);
	}
	fprintf(stderr, "test_alertd: import in effect after %lld ms\n", now_ms() - t0);
	CHECK(now_ms() - t0 < 5500);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D6' AND rule_id = 'R-load'"
		       " AND state = 'firing'") == 1);
	/* D4's alert links to the call's ticket: no second ticket. */
	CHECK(sql_long("SELECT count(*) FROM alert a JOIN ticket t ON t.id = a.ticket_id"
		       " WHERE a.device_id = 'D4' AND a.rule_id = 'R-volt' AND a.state = 'firing'"
		       " AND t.source = 'request'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D4'") == 1);
	/* Cleared, the alert leaves the customer's ticket open. */
	CHECK(step("D4", 100, 100, "{\"volt_v\": 230}") == 0);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id = 'D4' AND state = 'cleared'") == 1);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id = 'D4' AND state = 'new'") == 1);
	rc = 0;
out:
	return rc;
}

/* ---- crash and restart --------------------------------------------------- */

/*
 * The kill stream: each K device goes 90 (t), 90 (t + 60: raises), 70
 * (t + 120: clears) in every cycle of 200 s. One sample per batch.
 */
static int kill_sample(int cycle, int i, int k)
{
	static const char *const values[3] = { "{\"temp_c\": 90}", "{\"temp_c\": 90}",
					       "{\"temp_c\": 70}" };
	char device[8];

	snprintf(device, sizeof(device), "K%d", k);
	return sample(device, cycle * 3 + i + 1, cycle * 200 + i * 60, values[i]);
}

/* Exactly `cycles` alerts and cleared tickets per K device, no duplicate. */
static int check_kill_totals(int cycles)
{
	int rc = -1;

	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id LIKE 'K%%'") == 10L * cycles);
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id LIKE 'K%%' AND state = 'cleared'")
	      == 10L * cycles);
	CHECK(sql_long("SELECT count(*) FROM (SELECT device_id, raised_at FROM alert"
		       " WHERE device_id LIKE 'K%%' GROUP BY 1, 2 HAVING count(*) > 1) d") == 0);
	/* Each raised by its cycle's second sample, cleared by its third. */
	CHECK(sql_long("SELECT count(*) FROM alert WHERE device_id LIKE 'K%%'"
		       " AND (extract(epoch FROM raised_at - timestamptz '2026-11-23 08:00:00+00')::int"
		       " %% 200 <> 60 OR extract(epoch FROM cleared_at - raised_at) <> 60)") == 0);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id LIKE 'K%%'") == 10L * cycles);
	CHECK(sql_long("SELECT count(*) FROM ticket WHERE device_id LIKE 'K%%' AND state = 'cleared'")
	      == 10L * cycles);
	CHECK(sql_long("SELECT count(*) FROM rule_state WHERE device_id LIKE 'K%%' AND rule_id = 'R-temp'"
		       " AND alert_id IS NULL AND pending_since IS NULL"
		       " AND last_seq = %d", cycles * 3) == 10);
	rc = 0;
out:
	return rc;
}

static int test_kill9_streaming(void)
{
	int rc = -1, n = 0;
	long cursor = -1, head = -1;

	/* Cycles 0-4, 150 batches; kill -9 after the 70th, the rest arrive
	 * while sc-alertd is down. */
	for (int c = 0; c < 5; c++) {
		for (int i = 0; i < 3; i++) {
			for (int k = 0; k < 10; k++) {
				CHECK(kill_sample(c, i, k) == 0);
				if (++n == 70) {
					CHECK(harness_kill9(h, alertd) == 0);
					cursor = sql_long("SELECT min(seq) FROM stream_cursor"
							  " WHERE consumer LIKE 'sc-alertd/p%%'");
					head = sql_long("SELECT seq FROM ingest_head");
				}
			}
		}
	}
	fprintf(stderr, "test_alertd: killed at cursor %ld of head %ld\n", cursor, head);
	CHECK(start_alertd() == 0);
	CHECK(caught_up());
	CHECK(check_kill_totals(5) == 0);
	rc = 0;
out:
	return rc;
}

/*
 * The apply of a round waits on the cursor rows, which the test holds; the
 * process is killed then, and its statement commits after it died. Its
 * database session lives on until then, and with it the advisory locks of
 * its partitions: the restarted instance holds none until the orphaned
 * statement has ended, then takes them over and reads from the cursors it
 * moved. sc-alertd is stopped while the batches arrive, so its first round
 * is a full one (8 batches) that raises and clears the same alerts:
 * replayed from the old cursors, it would raise them a second time. And a
 * replay of an apply from stale cursors changes nothing (the cursor check
 * that also settles two instances racing for a partition).
 */
static int test_kill9_apply_in_flight(void)
{
	int rc = -1, n = 0;
	PGconn *lock = NULL;
	PGresult *res = NULL;
	static const char waiting[] =
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
		" AND query LIKE '%sc_alertd_apply%'";

	lock = PQconnectdb(harness_dsn(h));
	CHECK(PQstatus(lock) == CONNECTION_OK);
	/* Device by device, so that one round holds a device's raise and clear. */
	for (int c = 5; c < 10; c++) {
		for (int k = 0; k < 10; k++) {
			for (int i = 0; i < 3; i++) {
				CHECK(kill_sample(c, i, k) == 0);
				if (++n != 30)
					continue;
				CHECK(caught_up());
				/* SIGTERM in the middle of the stream exits 0 too. */
				CHECK(harness_stop_program(h, alertd, SIGTERM) == 0);
				res = PQexec(lock, "BEGIN");
				CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
				PQclear(res);
				res = PQexec(lock, "SELECT seq FROM stream_cursor"
						   " WHERE consumer LIKE 'sc-alertd/p%' FOR UPDATE");
				CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
				PQclear(res);
				res = NULL;
			}
		}
	}
	CHECK(start_alertd() == 0);
	CHECK(harness_wait_sql(h, waiting, 1, 20000));
	CHECK(harness_kill9(h, alertd) == 0);
	CHECK(start_alertd() == 0);
	/* The orphan still holds every partition: the new instance waits. */
	sleep_ms(2500);
	CHECK(metric("sc_alertd_partitions_held") == 0);
	CHECK(harness_wait_sql(h, waiting, 1, 1000));
	res = PQexec(lock, "ROLLBACK");
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	CHECK(caught_up());
	CHECK(metric("sc_alertd_partitions_held") == 8);
	CHECK(check_kill_totals(10) == 0);
	/* An apply from stale cursors (as a statement resent after a lost
	 * connection, or an instance that lost its partition) does nothing. */
	PQclear(res);
	res = PQexec(harness_pg(h),
		     "SELECT sc_alertd_apply(jsonb_build_object('from', '0', 'to', '0',"
		     " 'consumers', (SELECT jsonb_agg(jsonb_build_object('consumer', consumer, 'from', '0'))"
		     "               FROM stream_cursor WHERE consumer LIKE 'sc-alertd/p%'),"
		     " 'events', jsonb_build_array(jsonb_build_object('op', 'raise', 'source', 'rule',"
		     "   'device', 'K0', 'rule', 'R-temp', 'ref', 'R-temp', 'ts', '0', 'seq', '1',"
		     "   'value', 99, 'pending_since', '0'))))->>'applied'");
	CHECK(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1);
	CHECK(strcmp(PQgetvalue(res, 0, 0), "false") == 0);
	CHECK(check_kill_totals(10) == 0);
	rc = 0;
out:
	PQclear(res);
	PQfinish(lock);
	return rc;
}

/* ---- several instances ----------------------------------------------------- */

static double metric_of(pid_t pid, const char *series)
{
	return fixture_metric(h, pid, series);
}

/* Both instances hold a share and together all 8 partitions. */
static bool shared_by(pid_t x, pid_t y, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		double a = metric_of(x, "sc_alertd_partitions_held");
		double b = metric_of(y, "sc_alertd_partitions_held");
		if (a >= 1 && b >= 1 && a + b == 8)
			return true;
		sleep_ms(100);
	}
	fprintf(stderr, "test_alertd: partitions not shared: %g + %g\n",
		metric_of(x, "sc_alertd_partitions_held"), metric_of(y, "sc_alertd_partitions_held"));
	return false;
}

/*
 * Two instances share the partitions (each device evaluated by the holder
 * of its partition only); kill -9 of one mid-stream: the other takes its
 * partitions over and nothing is doubled or missed; the killed one comes
 * back and gets its share again.
 */
static int test_two_instances(void)
{
	static const char *const env_b[] = { "SC_INSTANCE=b", NULL };
	pid_t b = -1;
	int rc = -1, n = 0;

	b = harness_spawn(h, "sc-alertd", env_b, NULL);
	CHECK(b > 0);
	alertd_runs++;
	CHECK(shared_by(alertd, b, 15000));
	fprintf(stderr, "test_alertd: partitions split %g + %g\n",
		metric_of(alertd, "sc_alertd_partitions_held"), metric_of(b, "sc_alertd_partitions_held"));
	for (int c = 10; c < 15; c++) {
		for (int i = 0; i < 3; i++) {
			for (int k = 0; k < 10; k++) {
				CHECK(kill_sample(c, i, k) == 0);
				if (++n == 40)
					CHECK(caught_up());
				if (n == 70)
					CHECK(harness_kill9(h, alertd) == 0);
			}
		}
	}
	CHECK(caught_up());
	CHECK(metric_of(b, "sc_alertd_partitions_held") == 8);
	CHECK(check_kill_totals(15) == 0);
	/* Both instances evaluated devices: the samples add up. */
	CHECK(start_alertd() == 0);
	CHECK(shared_by(alertd, b, 15000));
	for (int c = 15; c < 17; c++)
		for (int i = 0; i < 3; i++)
			for (int k = 0; k < 10; k++)
				CHECK(kill_sample(c, i, k) == 0);
	CHECK(caught_up());
	CHECK(check_kill_totals(17) == 0);
	CHECK(metric_of(alertd, "sc_alertd_samples_evaluated_total") > 0);
	CHECK(metric_of(b, "sc_alertd_samples_evaluated_total") > 0);
	CHECK(harness_stop_program(h, b, SIGTERM) == 0);
	b = -1;

	/* An instance with another number of partitions would split the
	 * devices differently: refused while these run. */
	static const char *const env_c[] = { "SC_INSTANCE=c", "SC_ALERTD_PARTITIONS=4", NULL };
	b = harness_spawn(h, "sc-alertd", env_c, NULL);
	CHECK(b > 0);
	alertd_runs++;
	sleep_ms(3000);
	CHECK(metric_of(b, "sc_alertd_partitions_held") == 0);
	CHECK(log_contains(alertd_runs, "SC_ALERTD_PARTITIONS=4 but the running instances use 8"));
	CHECK(metric_of(alertd, "sc_alertd_partitions_held") == 8);
	CHECK(harness_stop_program(h, b, SIGTERM) == 0);
	b = -1;
	rc = 0;
out:
	if (b > 0)
		harness_stop_program(h, b, SIGTERM);
	return rc;
}

int main(void)
{
	int rc = 1;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	CHECK(test_cli() == 0);
	CHECK(start_alertd() == 0);
	CHECK(test_for_s() == 0);
	CHECK(metric("sc_alertd_alerts_total{source=\"alarm\",state=\"raised\"}") == 0);
	CHECK(metric("sc_alertd_alerts_total{source=\"lifecycle\",state=\"cleared\"}") == 0);
	CHECK(test_threshold_and_model() == 0);
	CHECK(test_hysteresis() == 0);
	CHECK(test_out_of_order() == 0);
	CHECK(test_reload_and_link() == 0);
	CHECK(metric("sc_alertd_batches_applied_total") ==
	      (double)sql_long("SELECT seq FROM ingest_head"));
	CHECK(metric("sc_alertd_samples_evaluated_total") == (double)sql_long("SELECT count(*) FROM telemetry"));
	CHECK(metric("sc_alertd_cursor_lag_batches") == 0);
	CHECK(test_kill9_streaming() == 0);
	CHECK(test_kill9_apply_in_flight() == 0);
	CHECK(test_two_instances() == 0);
	CHECK(harness_stop_program(h, alertd, SIGTERM) == 0);
	alertd = 0;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	harness_stop(h);
	fprintf(stderr, "test_alertd: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

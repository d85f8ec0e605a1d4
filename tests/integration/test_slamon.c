/*
 * sc-slamon against a real broker and database, with SLA budgets of seconds
 * (respond 2 s, arrive 4 s, resolve 6 s, warnings at 50 %):
 *
 * - a ticket's warning and breach of every clock are published once each,
 *   with the contract's fields, never before their due time, and its
 *   escalation levels 1, 2, 3 once each, in order, with their roles; the
 *   rows are in sla_event and escalation;
 * - a ticket whose respond clock was stopped gets no respond warning or
 *   breach;
 * - the metrics count what fired and the running clocks;
 * - a restart after everything fired publishes nothing again; SIGTERM exits 0;
 * - kill -9 before a deadline and a restart after it: the breach is
 *   published once, late but not lost, and nothing fires twice;
 * - a database restart: the loaded timers fire after the reconnect, once.
 *
 * sc-slamon is the only service running, so its own outbox relay publishes.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fixture.h"

static const char data_set[] =
	"{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65}],"
	" \"customers\": [{\"id\": \"C1\", \"name\": \"Zhengzhou Grid\", \"tier\": \"vip\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D3\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D4\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 2, \"arrive_s\": 4,"
	"                     \"resolve_s\": 6, \"calendar\": \"24x7\", \"warn_pct\": 50}],"
	" \"escalation\": [{\"level\": 1, \"at_pct\": 75, \"role\": \"province_dispatcher\"},"
	"                  {\"level\": 2, \"at_pct\": 100, \"role\": \"province_manager\"},"
	"                  {\"level\": 3, \"at_pct\": 150, \"role\": \"hq_service_department\"}]"
	"}";

static const char *const roles[4] = { NULL, "province_dispatcher", "province_manager",
				      "hq_service_department" };

/* ---- every message seen on the ops topics, in arrival order ------------- */

struct msg {
	char *topic;
	cJSON *json;
};

static struct msg msgs[512];
static size_t nmsgs;

/* Takes what arrives until the topics stay quiet for quiet_ms. */
static void collect(struct harness_mqtt *m, int quiet_ms)
{
	for (;;) {
		char *topic = NULL;
		char *p = harness_mqtt_wait(m, "sc/v1/ops/", quiet_ms, &topic);
		if (p == NULL)
			return;
		cJSON *j = cJSON_Parse(p);
		if (j == NULL || nmsgs == sizeof(msgs) / sizeof(msgs[0])) {
			fprintf(stderr, "test_slamon: message dropped (bad JSON or too many): %s\n", p);
			cJSON_Delete(j);
			free(topic);
		} else {
			msgs[nmsgs].topic = topic;
			msgs[nmsgs].json = j;
			nmsgs++;
		}
		free(p);
	}
}

static void free_msgs(void)
{
	for (size_t i = 0; i < nmsgs; i++) {
		free(msgs[i].topic);
		cJSON_Delete(msgs[i].json);
	}
	nmsgs = 0;
}

static const char *str_of(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_topic(const struct msg *m, const char *suffix)
{
	size_t n = strlen(m->topic), k = strlen(suffix);
	return n >= k && strcmp(m->topic + n - k, suffix) == 0;
}

static bool str_is(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Index of the n-th (0-based) SLA event of ticket/clock/kind, or -1. */
static int find_sla(const char *ticket, const char *clock, const char *kind, int nth)
{
	for (size_t i = 0; i < nmsgs; i++) {
		const cJSON *j = msgs[i].json;
		if (is_topic(&msgs[i], "/sla") && str_is(str_of(j, "ticket_id"), ticket) &&
		    str_is(str_of(j, "clock"), clock) && str_is(str_of(j, "kind"), kind) && nth-- == 0)
			return (int)i;
	}
	return -1;
}

static int count_sla(const char *ticket, const char *clock, const char *kind)
{
	int n = 0;
	while (find_sla(ticket, clock, kind, n) >= 0)
		n++;
	return n;
}

static int count_topic(const char *ticket, const char *suffix)
{
	int n = 0;
	for (size_t i = 0; i < nmsgs; i++)
		n += is_topic(&msgs[i], suffix) && str_is(str_of(msgs[i].json, "ticket_id"), ticket);
	return n;
}

/* ---- SQL helpers --------------------------------------------------------- */

/* First value of sql with one text parameter, copied into out. 0 or -1. */
static int sql_text(struct harness *h, const char *sql, const char *param, char *out, size_t len)
{
	PGconn *c = harness_pg(h);
	if (c == NULL)
		return -1;
	const char *params[1] = { param };
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	} else {
		fprintf(stderr, "test_slamon: %s: %s\n", sql, PQerrorMessage(c));
	}
	PQclear(r);
	return rc;
}

/* Opens a ticket for device (site S1, vip, major) and returns its id in out. */
static int open_ticket(struct harness *h, const char *device, char *out, size_t len)
{
	char p[512];
	snprintf(p, sizeof(p),
		 "{\"source\": \"request\", \"customer_id\": \"C1\", \"site_id\": \"S1\","
		 " \"device_id\": \"%s\", \"category\": \"fault\", \"severity\": \"major\","
		 " \"skill\": \"relay_protection\", \"min_grade\": 2, \"actor\": \"test\"}", device);
	return sql_text(h, "SELECT ticket_id FROM sc_ticket_open($1::jsonb)", p, out, len);
}

static long sql_long_1(struct harness *h, const char *fmt, const char *ticket)
{
	char sql[1024];
	snprintf(sql, sizeof(sql), fmt, ticket);
	return harness_sql_long(h, sql);
}

static bool wait_sql_1(struct harness *h, const char *fmt, const char *ticket, long want, int ms)
{
	char sql[1024];
	snprintf(sql, sizeof(sql), fmt, ticket);
	return harness_wait_sql(h, sql, want, ms);
}

/* ---- metrics over HTTP --------------------------------------------------- */

/* GET path from 127.0.0.1:port; the whole response (caller frees) or NULL. */
static char *http_get(int port, const char *path)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return NULL;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
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
	if (buf == NULL)
		return NULL;
	buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* Value of one series ("name{labels}" exactly as rendered), NAN if absent. */
static double metric(int port, const char *series)
{
	char *text = http_get(port, "/metrics");
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

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool wait_metric(int port, const char *series, double want, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	double v;
	do {
		v = metric(port, series);
		if (v == want)
			return true;
		usleep(100 * 1000);
	} while (now_ms() < end);
	fprintf(stderr, "test_slamon: %s is %g, expected %g\n", series, v, want);
	return false;
}

/* Until /healthz answers 200: connected to the database and the broker. */
static bool wait_healthy(int port, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	do {
		char *r = http_get(port, "/healthz");
		bool ok = r != NULL && strncmp(r, "HTTP/1.", 7) == 0 && strncmp(r + 8, " 200", 4) == 0;
		free(r);
		if (ok)
			return true;
		usleep(100 * 1000);
	} while (now_ms() < end);
	fprintf(stderr, "test_slamon: /healthz never answered 200 on port %d\n", port);
	return false;
}

static pid_t start_slamon(struct harness *h, int *port)
{
	pid_t pid = harness_spawn(h, "sc-slamon", NULL, NULL);
	if (pid <= 0)
		return -1;
	*port = harness_metrics_port(h, pid);
	return wait_healthy(*port, 20000) ? pid : -1;
}

/* ---- checks ---------------------------------------------------------- */

/* The SLA events of one clock: warning then breach, once each, fields per
 * the contract, deadline the clock's, breach not before it. */
static int check_clock(struct harness *h, const char *ticket, const char *clock)
{
	char deadline[64], sql[256];
	int rc = -1;
	snprintf(sql, sizeof(sql), "SELECT sc_ts(deadline) FROM sla_clock WHERE ticket_id = $1 AND clock = '%s'",
		 clock);
	CHECK(sql_text(h, sql, ticket, deadline, sizeof(deadline)) == 0);
	CHECK(count_sla(ticket, clock, "warning") == 1);
	CHECK(count_sla(ticket, clock, "breach") == 1);
	int w = find_sla(ticket, clock, "warning", 0), b = find_sla(ticket, clock, "breach", 0);
	CHECK(w < b);
	for (int i = 0; i < 2; i++) {
		int k = i == 0 ? w : b;
		const cJSON *j = msgs[k].json;
		CHECK(strcmp(msgs[k].topic, "sc/v1/ops/HA/sla") == 0);
		CHECK(str_is(str_of(j, "ticket_id"), ticket) && str_is(str_of(j, "clock"), clock));
		CHECK(str_is(str_of(j, "deadline"), deadline));
		const char *ts = str_of(j, "ts");
		CHECK(ts != NULL && strlen(ts) == strlen(deadline));
		/* Same format, so text order is time order. */
		if (i == 1)
			CHECK(strcmp(ts, deadline) >= 0);
		else
			CHECK(strcmp(ts, deadline) < 0);
	}
	rc = 0;
out:
	return rc;
}

/* Escalation levels 1, 2, 3 once each, in that order, with their roles. */
static int check_escalations(const char *ticket)
{
	int next = 1, rc = -1;
	for (size_t i = 0; i < nmsgs; i++) {
		const cJSON *j = msgs[i].json;
		if (!is_topic(&msgs[i], "/escalations") || !str_is(str_of(j, "ticket_id"), ticket))
			continue;
		const cJSON *level = cJSON_GetObjectItemCaseSensitive(j, "level");
		CHECK(strcmp(msgs[i].topic, "sc/v1/ops/HA/escalations") == 0);
		CHECK(next <= 3);
		CHECK(cJSON_IsNumber(level) && level->valuedouble == next);
		CHECK(str_is(str_of(j, "role"), roles[next]));
		CHECK(str_of(j, "reason") != NULL && str_of(j, "ts") != NULL);
		next++;
	}
	CHECK(next == 4);
	rc = 0;
out:
	return rc;
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *watch = NULL;
	char a[32], b[32], c[32], d[32];
	int rc = 1, port = -1;
	pid_t slamon = -1;
	size_t before;

	h = fixture_start(data_set);
	CHECK(h != NULL);
	watch = harness_mqtt_connect(h, "test-watch");
	CHECK(watch != NULL);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/ops/+/sla") == 0);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/ops/+/escalations") == 0);
	slamon = start_slamon(h, &port);
	CHECK(slamon > 0);

	/* --- A runs to every breach; B's respond clock is stopped at once. --- */
	CHECK(open_ticket(h, "D1", a, sizeof(a)) == 0);
	CHECK(open_ticket(h, "D2", b, sizeof(b)) == 0);
	CHECK(sql_text(h, "SELECT $1 FROM sc_sla_stop($1, 'respond')", b, b, sizeof(b)) == 0);
	CHECK(sql_long_1(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s'", a) == 15);
	/* The last timer (resolve, level 3) is due at 9 s. */
	CHECK(wait_sql_1(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND fired_at IS NULL",
			 a, 0, 20000));
	CHECK(wait_sql_1(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND fired_at IS NULL",
			 b, 0, 20000));
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM outbox", 0, 10000));
	collect(watch, 1000);

	CHECK(check_clock(h, a, "respond") == 0);
	CHECK(check_clock(h, a, "arrive") == 0);
	CHECK(check_clock(h, a, "resolve") == 0);
	CHECK(check_escalations(a) == 0);
	CHECK(count_topic(a, "/sla") == 6);
	CHECK(sql_long_1(h, "SELECT count(*) FROM sla_event WHERE ticket_id = '%s'", a) == 6);
	CHECK(sql_long_1(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", a) == 3);
	/* Never early, and on time (generous for a loaded CI machine). */
	CHECK(harness_sql_long(h, "SELECT count(*) FROM sla_timer WHERE fired_at < due_at") == 0);
	CHECK(sql_long_1(h, "SELECT (max(fired_at - due_at) < interval '2 seconds')::int "
			    "FROM sla_timer WHERE ticket_id = '%s'", a) == 1);

	CHECK(count_sla(b, "respond", "warning") == 0);
	CHECK(count_sla(b, "respond", "breach") == 0);
	CHECK(sql_long_1(h, "SELECT count(*) FROM sla_event WHERE ticket_id = '%s' AND clock = 'respond'",
			 b) == 0);
	CHECK(check_clock(h, b, "arrive") == 0);
	CHECK(check_clock(h, b, "resolve") == 0);
	CHECK(check_escalations(b) == 0);

	/* Metrics: events published, by kind (A: 3 clocks, B: 2; escalations
	 * count the levels published, 3 per ticket, not the 15 escalation
	 * timers that fired), and the running clocks (B's respond clock
	 * stopped). */
	CHECK(wait_metric(port, "sc_slamon_events_total{kind=\"warning\"}", 5, 5000));
	CHECK(wait_metric(port, "sc_slamon_events_total{kind=\"breach\"}", 5, 5000));
	CHECK(wait_metric(port, "sc_slamon_events_total{kind=\"escalation\"}", 6, 5000));
	CHECK(wait_metric(port, "sc_slamon_clocks_open{clock=\"respond\"}", 1, 25000));
	CHECK(wait_metric(port, "sc_slamon_clocks_open{clock=\"arrive\"}", 2, 25000));
	CHECK(wait_metric(port, "sc_slamon_clocks_open{clock=\"resolve\"}", 2, 12000));
	CHECK(wait_metric(port, "sc_slamon_timers_pending", 0, 5000));
	CHECK(metric(port, "sc_slamon_timers_loaded_total") >= 25);
	CHECK(metric(port, "sc_slamon_fire_lag_seconds_count") == 16);

	/* --- A restart after everything fired publishes nothing again. --- */
	CHECK(harness_stop_program(h, slamon, SIGTERM) == 0);
	slamon = start_slamon(h, &port);
	CHECK(slamon > 0);
	before = nmsgs;
	collect(watch, 3000);
	CHECK(nmsgs == before);
	CHECK(metric(port, "sc_slamon_timers_loaded_total") == 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM sla_event") == 10);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM escalation") == 6);

	/* --- kill -9 before C's respond deadline, restart after it. --- */
	CHECK(open_ticket(h, "D3", c, sizeof(c)) == 0);
	{
		/* The warning (at 1 s) shows this instance fires C's timers. */
		char needle[64];
		snprintf(needle, sizeof(needle), "\"ticket_id\": \"%s\"", c);
		char *p = fixture_wait_payload(watch, "/sla", needle, 5000);
		CHECK(p != NULL);
		CHECK(strstr(p, "\"warning\"") != NULL && strstr(p, "\"respond\"") != NULL);
		free(p);
	}
	CHECK(harness_kill9(h, slamon) == 0);
	slamon = -1;
	CHECK(sql_long_1(h, "SELECT (now() < respond_by)::int FROM ticket WHERE id = '%s'", c) == 1);
	CHECK(wait_sql_1(h, "SELECT (now() > respond_by + interval '1 second')::int FROM ticket "
			    "WHERE id = '%s'", c, 1, 5000));
	CHECK(sql_long_1(h, "SELECT count(*) FROM sla_event WHERE ticket_id = '%s' AND kind = 'breach'",
			 c) == 0);
	slamon = start_slamon(h, &port);
	CHECK(slamon > 0);
	CHECK(wait_sql_1(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND fired_at IS NULL",
			 c, 0, 20000));
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM outbox", 0, 10000));
	collect(watch, 1500);
	CHECK(count_sla(c, "respond", "breach") == 1);
	{
		/* Late (it was due while nobody ran) but there. */
		char deadline[64];
		CHECK(sql_text(h, "SELECT sc_ts(respond_by) FROM ticket WHERE id = $1", c, deadline,
			       sizeof(deadline)) == 0);
		const cJSON *j = msgs[find_sla(c, "respond", "breach", 0)].json;
		CHECK(str_is(str_of(j, "deadline"), deadline));
		CHECK(strcmp(str_of(j, "ts"), deadline) > 0);
	}
	/* In the database everything fired exactly once. On the bus the events
	 * published before the kill may repeat (the outbox's at-least-once:
	 * acknowledged, killed before the row was deleted); the rest did not. */
	CHECK(sql_long_1(h, "SELECT count(*) FROM sla_event WHERE ticket_id = '%s'", c) == 6);
	CHECK(sql_long_1(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", c) == 3);
	CHECK(count_sla(c, "arrive", "breach") == 1);
	CHECK(count_sla(c, "resolve", "breach") == 1);
	CHECK(count_sla(c, "resolve", "warning") == 1);
	CHECK(metric(port, "sc_slamon_fire_lag_seconds_count") >= 1);
	CHECK(metric(port, "sc_slamon_events_total{kind=\"breach\"}") == 3);

	/* --- The database restarts under loaded timers: after the reconnect
	 * they fire, once each (a fire in flight is sent again; its guard). --- */
	CHECK(open_ticket(h, "D4", d, sizeof(d)) == 0);
	CHECK(wait_metric(port, "sc_slamon_timers_pending", 15, 5000));
	CHECK(harness_restart_pg(h) == 0);
	CHECK(wait_sql_1(h, "SELECT count(*) FROM sla_timer WHERE ticket_id = '%s' AND fired_at IS NULL",
			 d, 0, 30000));
	CHECK(harness_wait_sql(h, "SELECT count(*) FROM outbox", 0, 10000));
	collect(watch, 1500);
	CHECK(sql_long_1(h, "SELECT count(*) FROM sla_event WHERE ticket_id = '%s'", d) == 6);
	CHECK(sql_long_1(h, "SELECT count(*) FROM escalation WHERE ticket_id = '%s'", d) == 3);
	/* On the bus at least once (a restart between a PUBACK and the outbox
	 * row's delete repeats it). */
	CHECK(count_sla(d, "respond", "breach") >= 1);
	CHECK(count_sla(d, "resolve", "breach") >= 1);
	CHECK(count_topic(d, "/escalations") >= 3);
	CHECK(metric(port, "sc_slamon_events_total{kind=\"breach\"}") == 6);

	CHECK(harness_stop_program(h, slamon, SIGTERM) == 0);
	slamon = -1;
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free_msgs();
	harness_mqtt_free(watch);
	harness_stop(h);
	fprintf(stderr, "test_slamon: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

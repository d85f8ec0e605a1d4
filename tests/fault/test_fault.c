/*
 * The fault suite (issue 8, docs/faults.md): the whole platform on a real
 * PostgreSQL and mosquitto, sc-sim driving load with repeats (--dup-pct)
 * and 10 % malformed messages (--malformed-pct), sc-faultrec recording what
 * the platform publishes, while the test in turn
 *
 *   kill -9s and restarts sc-ingest, sc-alertd, sc-dispatch, sc-slamon,
 *   sc-api; restarts mosquitto; restarts PostgreSQL; stops sc-dispatch
 *   (SIGSTOP) past its offer timeout and sc-slamon past SLA timers, then
 *   resumes them (SIGCONT).
 *
 * After each fault sc-faultcheck checks the state (tickets, orders, clocks,
 * engineers) while the load goes on. Then the system drains (sim ends,
 * producers stop, the outbox empties) and
 * sc-faultcheck compares sc-sim's journal (every acknowledged message) and
 * the recording with the database: nothing lost, nothing stored twice, every
 * ticket, order, clock and engineer consistent. Any violation fails the test.
 *
 * Short form by default (one round of every fault, ~2-3 minutes). Long form:
 *   SCTEST_FAULT_ROUNDS=N        rounds of every fault (default 1)
 *   SCTEST_FAULT_GAP_S=S         seconds of load between faults (default 5)
 *   SCTEST_FAULT_TELEMETRY_MS=M  telemetry period per device (default 500;
 *                                the demo country has 40 devices)
 * It prints its figures at the end either way. SCTEST_KEEP_DIR keeps the
 * journal, the recording and every log.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#ifndef SC_SOURCE_DIR
#error "SC_SOURCE_DIR must be defined (the repository, for deploy/demo/country.json)"
#endif

#define DEMO_IMPORT SC_SOURCE_DIR "/deploy/demo/country.json"
#define NSERVICES 5
#define OFFER_TIMEOUT_S 6

static const char *const services[NSERVICES] = { "sc-ingest", "sc-alertd", "sc-dispatch",
						 "sc-slamon", "sc-api" };

/*
 * Over the demo country: offers expire after OFFER_TIMEOUT_S, and SLA
 * budgets of tens of seconds, so warnings, breaches and escalations fire
 * during the run (and while sc-slamon is stopped).
 */
static const char fast_settings[] =
	"{\"settings\": {\"offer_timeout_s\": 6, \"max_offer_attempts\": 3, \"kpi_interval_s\": 5},"
	" \"sla_policies\": ["
	"  {\"tier\": \"vip\", \"severity\": \"critical\", \"respond_s\": 12, \"arrive_s\": 30, \"resolve_s\": 60, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 15, \"arrive_s\": 40, \"resolve_s\": 80, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"vip\", \"severity\": \"minor\", \"respond_s\": 20, \"arrive_s\": 50, \"resolve_s\": 90, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"key\", \"severity\": \"critical\", \"respond_s\": 15, \"arrive_s\": 40, \"resolve_s\": 80, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"key\", \"severity\": \"major\", \"respond_s\": 20, \"arrive_s\": 50, \"resolve_s\": 90, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"key\", \"severity\": \"minor\", \"respond_s\": 25, \"arrive_s\": 60, \"resolve_s\": 120, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"standard\", \"severity\": \"critical\", \"respond_s\": 20, \"arrive_s\": 50, \"resolve_s\": 90, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"standard\", \"severity\": \"major\", \"respond_s\": 25, \"arrive_s\": 60, \"resolve_s\": 120, \"calendar\": \"24x7\", \"warn_pct\": 50},"
	"  {\"tier\": \"standard\", \"severity\": \"minor\", \"respond_s\": 30, \"arrive_s\": 90, \"resolve_s\": 150, \"calendar\": \"24x7\", \"warn_pct\": 50}]}";

struct run {
	struct harness *h;
	char http_env[64];       /* SC_HTTP_ADDR of sc-api: a free port, not 8080 */
	pid_t svc[NSERVICES];
	pid_t sim, rec;
	char journal[512], recording[512];
};

/* A free TCP port on 127.0.0.1 (bind to 0, read it, close), or -1. */
static int pick_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int p = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		p = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

static pid_t spawn_service(struct run *r, int i)
{
	const char *env[] = { r->http_env, NULL };
	return harness_spawn(r->h, services[i], env, NULL);
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	char *end = NULL;
	if (v == NULL || *v == '\0')
		return def;
	long n = strtol(v, &end, 10);
	if (*end != '\0' || n < lo || n > hi) {
		fprintf(stderr, "test_fault: %s=%s out of range %ld..%ld, using %ld\n", name, v, lo, hi,
			def);
		return def;
	}
	return n;
}

/* Reads a whole file; caller frees. NULL on failure. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (buf == NULL)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
out:
	fclose(f);
	return buf;
}

static long lines_of(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;
	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *what, double t0)
{
	fprintf(stderr, "test_fault: t=%5.1fs %s\n", now_s() - t0, what);
}

/* Waits while the stored telemetry grows, up to timeout: load is flowing. */
static bool flowing(struct harness *h, int timeout_ms)
{
	long before = harness_sql_long(h, "select count(*) from telemetry");
	for (int waited = 0; waited < timeout_ms; waited += 250) {
		usleep(250000);
		if (harness_sql_long(h, "select count(*) from telemetry") > before)
			return true;
	}
	fprintf(stderr, "test_fault: telemetry stopped growing at %ld rows\n", before);
	return false;
}

static int kill_and_restart(struct run *r, int i)
{
	if (harness_kill9(r->h, r->svc[i]) != 0)
		return -1;
	usleep(300000);
	r->svc[i] = spawn_service(r, i);
	return r->svc[i] > 0 ? 0 : -1;
}

/* SIGSTOP for `seconds`, then SIGCONT: the program's timers come due while
 * it cannot run, and its connections go quiet. */
static int pause_for(struct run *r, int i, int seconds)
{
	if (kill(r->svc[i], SIGSTOP) != 0)
		return -1;
	sleep((unsigned)seconds);
	return kill(r->svc[i], SIGCONT);
}

/* sc_check_state() while the load runs: every transition is one
 * transaction, so tickets, orders, clocks and engineers are consistent at
 * any instant, right after a fault included. */
static int check_state_now(struct run *r, const char *after)
{
	char out[8192];
	const char *args[] = { "--dsn", harness_dsn(r->h), NULL };
	int rc = harness_run(r->h, "sc-faultcheck", args, out, sizeof(out));
	if (rc != 0)
		fprintf(stderr, "test_fault: state check after %s failed (%d):\n%s", after, rc, out);
	return rc;
}

static int run_checker(struct run *r, char *out, size_t len)
{
	const char *args[] = { "--dsn", harness_dsn(r->h), "--journal", r->journal, "--recording",
			       r->recording, NULL };
	int rc = harness_run(r->h, "sc-faultcheck", args, out, len);
	fprintf(stderr, "%s", out);
	return rc;
}

int main(void)
{
	struct run r = { 0 };
	char *country = NULL, *out = NULL;
	int rc = 1;
	double t0 = now_s();
	long rounds = env_long("SCTEST_FAULT_ROUNDS", 1, 1, 1000);
	long gap = env_long("SCTEST_FAULT_GAP_S", 5, 1, 3600);
	long tele_ms = env_long("SCTEST_FAULT_TELEMETRY_MS", 500, 1, 60000);
	char duration[32], tele[32], what[128];
	const size_t outlen = 1 << 16;

	out = malloc(outlen);
	country = slurp(DEMO_IMPORT);
	CHECK(out != NULL && country != NULL);
	r.h = fixture_start(country);
	CHECK(r.h != NULL);
	CHECK(fixture_import(r.h, fast_settings) == 0);
	/* Every outbox row is kept for the checker from here on. */
	CHECK(harness_sql_exec(r.h, "select sc_fault_audit(true)") == 0);
	snprintf(r.journal, sizeof(r.journal), "%s/journal.tsv", harness_dir(r.h));
	snprintf(r.recording, sizeof(r.recording), "%s/recording.tsv", harness_dir(r.h));

	const char *rec_args[] = { "--url", harness_mqtt_url(r.h), "--out", r.recording, NULL };
	r.rec = harness_spawn(r.h, "sc-faultrec", NULL, rec_args);
	CHECK(r.rec > 0);
	int http_port = pick_port();
	CHECK(http_port > 0);
	snprintf(r.http_env, sizeof(r.http_env), "SC_HTTP_ADDR=127.0.0.1:%d", http_port);
	for (int i = 0; i < NSERVICES; i++) {
		r.svc[i] = spawn_service(&r, i);
		CHECK(r.svc[i] > 0);
	}
	/* Subscribed before the load (their sessions then queue). */
	usleep(2000000);

	/* A bound in case the test dies; it is stopped with SIGTERM after the
	 * faults (what was acknowledged by then is in the journal). */
	snprintf(duration, sizeof(duration), "%ld", 600 + rounds * (9 * gap + 60));
	snprintf(tele, sizeof(tele), "%ld", tele_ms);
	const char *sim_args[] = { "--duration", duration, "--seed", "11", "--journal", r.journal,
				   "--telemetry-interval-ms", tele, "--requests-per-min", "60",
				   "--fault-pct", "30", "--alarm-pct", "60", "--time-scale", "600",
				   "--accept-pct", "80", "--silent-pct", "10", "--dup-pct", "5",
				   "--malformed-pct", "10", "--summary", NULL };
	r.sim = harness_spawn(r.h, "sc-sim", NULL, sim_args);
	CHECK(r.sim > 0);
	say("load started", t0);
	CHECK(flowing(r.h, 30000));

	for (long round = 1; round <= rounds; round++) {
		for (int i = 0; i < NSERVICES; i++) {
			sleep((unsigned)gap);
			CHECK(kill_and_restart(&r, i) == 0);
			snprintf(what, sizeof(what), "round %ld: kill -9 %s, restarted", round, services[i]);
			say(what, t0);
			CHECK(check_state_now(&r, what) == 0);
		}
		sleep((unsigned)gap);
		CHECK(harness_restart_broker(r.h) == 0);
		say("mosquitto restarted", t0);
		CHECK(check_state_now(&r, "the broker restart") == 0);
		sleep((unsigned)gap);
		CHECK(harness_restart_pg(r.h) == 0);
		say("postgresql restarted", t0);
		CHECK(flowing(r.h, 30000));
		CHECK(check_state_now(&r, "the database restart") == 0);
		sleep((unsigned)gap);
		/* Past the offer timeout: open offers expire while it cannot run. */
		CHECK(pause_for(&r, 2, OFFER_TIMEOUT_S + 4) == 0);
		say("sc-dispatch stopped past its offer timeout and resumed", t0);
		CHECK(check_state_now(&r, "pausing sc-dispatch") == 0);
		sleep((unsigned)gap);
		/* Past SLA warnings, breaches and escalations coming due. */
		CHECK(pause_for(&r, 3, OFFER_TIMEOUT_S + 4) == 0);
		say("sc-slamon stopped past its SLA timers and resumed", t0);
		CHECK(flowing(r.h, 30000));
		CHECK(check_state_now(&r, "pausing sc-slamon") == 0);
	}

	/* Drain: the sim ends (it waits for its last acknowledgements), the
	 * producers stop cleanly, sc-ingest's relay empties the outbox, the
	 * recorder hears the last of it. */
	say("faults done: stopping sc-sim", t0);
	CHECK(harness_stop_program(r.h, r.sim, SIGTERM) == 0);
	r.sim = -1;
	usleep(3000000); /* ingest's last batches, alertd's and dispatch's reactions */
	for (int i = 1; i < 4; i++) {
		CHECK(harness_stop_program(r.h, r.svc[i], SIGTERM) == 0);
		r.svc[i] = -1;
	}
	CHECK(harness_wait_sql(r.h, "select count(*) from outbox", 0, 60000));
	long heard = -1;
	for (int i = 0; i < 100; i++) {
		usleep(200000);
		long n = lines_of(r.recording);
		if (n == heard)
			break;
		heard = n;
	}
	CHECK(harness_stop_program(r.h, r.svc[0], SIGTERM) == 0);
	CHECK(harness_stop_program(r.h, r.svc[4], SIGTERM) == 0);
	CHECK(harness_stop_program(r.h, r.rec, SIGTERM) == 0);
	r.svc[0] = r.svc[4] = r.rec = -1;
	say("drained: checking", t0);

	int crc = run_checker(&r, out, outlen);
	CHECK(crc == 0);
	/* The figures of the run (long form reads them). */
	fprintf(stderr,
		"test_fault: figures rounds=%ld seconds=%.0f telemetry=%ld alarms=%ld requests=%ld "
		"tickets=%ld orders=%ld sla_events=%ld escalations=%ld rejected=%ld published=%ld "
		"received=%ld\n",
		rounds, now_s() - t0, harness_sql_long(r.h, "select count(*) from telemetry"),
		harness_sql_long(r.h, "select count(*) from device_alarm"),
		harness_sql_long(r.h, "select count(*) from request"),
		harness_sql_long(r.h, "select count(*) from ticket"),
		harness_sql_long(r.h, "select count(*) from work_order"),
		harness_sql_long(r.h, "select count(*) from sla_event"),
		harness_sql_long(r.h, "select count(*) from escalation"),
		harness_sql_long(r.h, "select count(*) from rejected"),
		harness_sql_long(r.h, "select count(*) from fault_outbox_audit"),
		harness_sql_long(r.h, "select count(*) from fault_recv"));
	/* Something of every kind happened, or the run proved little. */
	CHECK(harness_sql_long(r.h, "select count(*) from fault_sent where kind = 'dup'") > 0);
	CHECK(harness_sql_long(r.h, "select count(*) from fault_sent where kind = 'malformed'") > 0);
	CHECK(harness_sql_long(r.h, "select count(*) from device_alarm") > 0);
	CHECK(harness_sql_long(r.h, "select count(*) from work_order") > 0);
	CHECK(harness_sql_long(r.h, "select count(*) from sla_event") > 0);

	/* The checker can fail: corrupt one thing at a time, see it caught,
	 * put it back. */
	CHECK(harness_sql_exec(r.h, "create table fault_saved as select * from telemetry limit 1;"
				    "delete from telemetry t using fault_saved s"
				    " where t.device_id = s.device_id and t.seq = s.seq") == 0);
	crc = run_checker(&r, out, outlen);
	CHECK(crc == 1 && strstr(out, "FAIL telemetry_stored") != NULL);
	CHECK(harness_sql_exec(r.h, "insert into telemetry select * from fault_saved;"
				    "drop table fault_saved") == 0);
	/* An ended order of an ended ticket back to accepted: the engineer (or
	 * partner) would hold capacity for nothing. */
	const char *ended = "from work_order w join ticket t on t.id = w.ticket_id"
			    " where t.state in ('resolved', 'closed', 'cancelled', 'cleared')"
			    " and w.ride_along_of is null"
			    " and w.state in ('resolved', 'unresolved', 'declined', 'expired', 'withdrawn')";
	char sql[512];
	snprintf(sql, sizeof(sql), "select count(*) %s", ended);
	CHECK(harness_sql_long(r.h, sql) > 0);
	snprintf(sql, sizeof(sql),
		 "update work_order set state = 'accepted' where id = (select w.id %s limit 1)", ended);
	CHECK(harness_sql_exec(r.h, sql) == 0);
	crc = run_checker(&r, out, outlen);
	CHECK(crc == 1 && strstr(out, "FAIL active_orders_on_open_tickets") != NULL);

	CHECK(harness_check_logs(r.h) == 0);
	rc = 0;
out:
	if (r.h != NULL) {
		/* A stopped program must run to be stopped. */
		for (int i = 0; i < NSERVICES; i++)
			if (r.svc[i] > 0)
				kill(r.svc[i], SIGCONT);
	}
	harness_stop(r.h);
	free(country);
	free(out);
	fprintf(stderr, "test_fault: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

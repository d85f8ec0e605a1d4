/*
 * Broker security end to end (issue 7, docs/broker-security.md): the
 * production configuration deploy/mosquitto-prod.conf.in as it is (TLS on
 * both listeners, no anonymous access, the accounts and ACL that
 * `scctl broker-auth` makes from the master data), with a throwaway CA.
 *
 *  1. broker-auth refuses bad usage (status 2); it writes passwd, acl and
 *     a 0600 credentials file; a re-run keeps every password and hash (and
 *     the password file's group), adds a new device, drops a removed
 *     partner; an id that is both a device and an engineer is refused;
 *  2. a wrong password, and no account at all, are refused;
 *  3. a device cannot publish as another device (the message reaches no
 *     subscriber and is not stored), nor on an engineer's topic;
 *  4. partner PA cannot read PB's orders nor post events for PB; engineer
 *     E-HA-1 likewise for E-HA-3 (and cannot post E-HA-3's status); the
 *     front desk posts requests, not telemetry;
 *  5. an actor cannot take over a service's client id (the actors' listener
 *     makes the client id the user name);
 *  6. the four services run over ssl:// with their generated credentials
 *     (mqsub and Paho both verify the broker against the CA): telemetry ->
 *     alert -> ticket -> offer to E-HA-3, who reads it as itself and
 *     accepts -> respond clock stopped; under the wrong CA, Paho (sc-alertd)
 *     never connects.
 *
 * Unauthorised publishes are dropped silently (MQTT 3.1.1), so each
 * negative case publishes the forbidden message first and an allowed control
 * message after it on the same connection: once the control message reached
 * a privileged subscriber (a service's account), the forbidden one would
 * have too.
 */
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define WAIT_MS 15000
/* After the control message arrived, how long a forbidden one may still lag. */
#define GRACE_MS 300

static const char partners[] =
	"{\"partners\": ["
	"{\"id\": \"PA\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 1},"
	" \"capacity\": 1, \"certified_until\": \"2099-12-31\"},"
	"{\"id\": \"PB\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 1},"
	" \"capacity\": 1, \"certified_until\": \"2099-12-31\"},"
	"{\"id\": \"PC\", \"provinces\": [\"HB\"], \"skills\": {\"relay_protection\": 1},"
	" \"capacity\": 1, \"certified_until\": \"2099-12-31\"}]}";

static struct harness *h;
static char auth_dir[128];
static char creds[16384];   /* DIR/credentials as last read */

/* Reads a whole small file into buf. 0 or -1. */
static int slurp(const char *name, char *buf, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", auth_dir, name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* Runs `scctl broker-auth --out auth_dir` and reads the credentials. The
 * exit status, output in out. */
static int broker_auth(char *out, size_t len)
{
	const char *args[] = { "broker-auth", "--out", auth_dir, NULL };
	int rc = harness_run(h, "scctl", args, out, len);
	if (rc == 0 && slurp("credentials", creds, sizeof(creds)) != 0)
		return -1;
	return rc;
}

/* The line of `user` in text ("KIND USER ..." or "USER:..."), copied into
 * out. 0 or -1. */
static int line_of(const char *text, const char *user, bool colon, char *out, size_t len)
{
	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) : strlen(l);
		const char *name = colon ? l : memchr(l, ' ', n);
		if (name != NULL) {
			name += colon ? 0 : 1;
			size_t ul = strlen(user);
			if ((size_t)(l + n - name) > ul && strncmp(name, user, ul) == 0 &&
			    name[ul] == (colon ? ':' : ' ') && n < len) {
				memcpy(out, l, n);
				out[n] = '\0';
				return 0;
			}
		}
		l = end ? end + 1 : NULL;
	}
	return -1;
}

/* The password of user from the credentials file (static buffer). */
static const char *pass_of(const char *user)
{
	static char line[256];
	if (line_of(creds, user, false, line, sizeof(line)) != 0)
		return NULL;
	char *p = strrchr(line, ' ');
	return p != NULL ? p + 1 : NULL;
}

/* Connects as user (its generated password) with the given client id. */
static struct harness_mqtt *as(const char *user, const char *client_id, int port)
{
	struct harness_mqtt_opts o = { .client_id = client_id, .user = user,
				       .pass = pass_of(user), .port = port };
	return o.pass != NULL ? harness_mqtt_connect_opts(h, &o) : NULL;
}

static void iso(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One sample of temp_c, ago seconds before now (device time). */
static int telemetry(struct harness_mqtt *m, const char *device, int seq, double v, int ago)
{
	char topic[128], ts[40], payload[256];
	iso(time(NULL) - ago, ts, sizeof(ts));
	snprintf(topic, sizeof(topic), "sc/v1/dev/%s/telemetry", device);
	snprintf(payload, sizeof(payload),
		 "{\"seq\": %d, \"ts\": \"%s\", \"metrics\": {\"temp_c\": %.1f}}", seq, ts, v);
	return harness_mqtt_publish(m, topic, payload, 1);
}

/*
 * `from` publishes `bad` on bad_topic, then `good` on good_topic; `watch`
 * must see the good one and never the bad one. True when so.
 */
static bool refused_then_allowed(struct harness_mqtt *from, const char *bad_topic,
				 const char *good_topic, struct harness_mqtt *watch)
{
	char *p = NULL;
	bool ok = false;
	if (harness_mqtt_publish(from, bad_topic, "{\"spoof\": true}", 1) != 0 ||
	    harness_mqtt_publish(from, good_topic, "{\"control\": true}", 1) != 0)
		return false;
	p = fixture_wait_payload(watch, good_topic, "control", WAIT_MS);
	if (p == NULL) {
		fprintf(stderr, "control message on %s did not arrive\n", good_topic);
		return false;
	}
	free(p);
	p = harness_mqtt_wait(watch, bad_topic, GRACE_MS, NULL);
	ok = p == NULL;
	if (!ok)
		fprintf(stderr, "forbidden message on %s arrived: %s\n", bad_topic, p);
	free(p);
	return ok;
}

/* No message on topic reaches m within GRACE_MS. */
static bool nothing_on(struct harness_mqtt *m, const char *topic)
{
	char *p = harness_mqtt_wait(m, topic, GRACE_MS, NULL);
	if (p != NULL)
		fprintf(stderr, "unexpected message on %s: %s\n", topic, p);
	free(p);
	return p == NULL;
}

static bool file_has(const char *path, const char *needle)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

int main(void)
{
	struct harness_mqtt *d1 = NULL, *d2 = NULL, *pa = NULL, *e1 = NULL, *e3 = NULL,
			    *desk = NULL, *w_dev = NULL, *w_orders = NULL, *w_events = NULL,
			    *w_req = NULL, *bad = NULL;
	char out[4096], before[16384], after[16384], l1[256], l2[256], tls[160], cafile[192];
	char conf[7][256], mlog[160];
	char *p = NULL, *topic = NULL;
	const char *programs[4] = { "sc-ingest", "sc-alertd", "sc-dispatch", "sc-slamon" };
	pid_t pids[4] = { 0 };
	struct stat st;
	gid_t mosq_gid = 0;
	int rc = 1;

	h = fixture_start(fixture_country);
	CHECK(h != NULL);
	CHECK(fixture_import(h, partners) == 0);
	snprintf(auth_dir, sizeof(auth_dir), "%s/auth", harness_dir(h));
	CHECK(mkdir(auth_dir, 0755) == 0);

	/* 1. Bad usage is exit status 2; the accounts; a re-run that keeps them. */
	{
		const char *no_out[] = { "broker-auth", NULL };
		const char *bad_desk[] = { "broker-auth", "--out", auth_dir, "--frontdesk", "sc-x", NULL };
		CHECK(harness_run(h, "scctl", no_out, out, sizeof(out)) == 2);
		CHECK(harness_run(h, "scctl", bad_desk, out, sizeof(out)) == 2);
	}
	CHECK(broker_auth(out, sizeof(out)) == 0);
	CHECK(pass_of("D1") != NULL && pass_of("E-HA-3") != NULL && pass_of("PB") != NULL &&
	      pass_of("frontdesk") != NULL && pass_of("sc-dispatch") != NULL);
	CHECK(pass_of("sc-api") == NULL);
	snprintf(l1, sizeof(l1), "%s/credentials", auth_dir);
	CHECK(stat(l1, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(slurp("passwd", before, sizeof(before)) == 0);
	CHECK(strstr(before, "\nD1:$7$101$") != NULL || strncmp(before, "D1:$7$101$", 10) == 0);
	memcpy(after, creds, sizeof(creds));
	CHECK(broker_auth(out, sizeof(out)) == 0);
	CHECK(strcmp(after, creds) == 0);
	CHECK(slurp("passwd", after, sizeof(after)) == 0);
	CHECK(strcmp(before, after) == 0);
	CHECK(strstr(out, "0 new") != NULL);
	{
		const char *json[] = { "--json", "broker-auth", "--out", auth_dir, NULL };
		CHECK(harness_run(h, "scctl", json, out, sizeof(out)) == 0);
		CHECK(strstr(out, "\"device\":\t3") != NULL && strstr(out, "\"new\":\t0") != NULL);
	}

	CHECK(line_of(creds, "D1", false, l1, sizeof(l1)) == 0);
	CHECK(fixture_import(h, "{\"devices\": [{\"id\": \"D9\", \"site_id\": \"S1\", "
				"\"model\": \"XJ-PR900\"}]}") == 0);
	CHECK(harness_sql_exec(h, "delete from partner where id = 'PC'") == 0);
	CHECK(broker_auth(out, sizeof(out)) == 0);
	CHECK(strstr(out, "1 new") != NULL && strstr(out, "1 removed") != NULL);
	CHECK(pass_of("D9") != NULL && pass_of("PC") == NULL);
	CHECK(line_of(creds, "D1", false, l2, sizeof(l2)) == 0 && strcmp(l1, l2) == 0);
	CHECK(slurp("passwd", after, sizeof(after)) == 0);
	CHECK(line_of(before, "D1", true, l1, sizeof(l1)) == 0);
	CHECK(line_of(after, "D1", true, l2, sizeof(l2)) == 0 && strcmp(l1, l2) == 0);
	CHECK(strstr(after, "PC:") == NULL);

	/* 2.-6. The production configuration, over TLS. Run as root, the
	 * harness runs mosquitto as user mosquitto: it reads the password file
	 * (0640) through its group, as in production (docs/broker-security.md). */
	snprintf(tls, sizeof(tls), "%s/tls", harness_dir(h));
	CHECK(harness_make_certs(h, tls) == 0);
	snprintf(l1, sizeof(l1), "%s/passwd", auth_dir);
	CHECK(stat(l1, &st) == 0 && (st.st_mode & 0777) == 0640);
	if (geteuid() == 0) {
		struct group *g = getgrnam("mosquitto");
		CHECK(g != NULL && chown(l1, (uid_t)-1, g->gr_gid) == 0);
		mosq_gid = g->gr_gid;
	}
	int sport = harness_free_port(NULL);
	CHECK(sport > 0);
	snprintf(conf[0], sizeof(conf[0]), "@SERVICE_PORT@=%d", sport);
	snprintf(conf[1], sizeof(conf[1]), "@SERVICE_ADDR@=127.0.0.1");
	snprintf(conf[2], sizeof(conf[2]), "@CERT_FILE@=%s/srv.crt", tls);
	snprintf(conf[3], sizeof(conf[3]), "@KEY_FILE@=%s/srv.key", tls);
	snprintf(conf[4], sizeof(conf[4]), "@PASSWD_FILE@=%s/passwd", auth_dir);
	snprintf(conf[5], sizeof(conf[5]), "@ACL_FILE@=%s/acl", auth_dir);
	const char *subst[] = { conf[0], conf[1], conf[2], conf[3], conf[4], conf[5], NULL };
	snprintf(cafile, sizeof(cafile), "%s/ca.crt", tls);
	CHECK(harness_broker_config(h, SC_SOURCE_DIR "/deploy/mosquitto-prod.conf.in", subst,
				    cafile) == 0);

	for (int i = 0; i < 4; i++) {
		char url[64], user[64], pass[128];
		snprintf(url, sizeof(url), "SC_MQTT_URL=ssl://127.0.0.1:%d", sport);
		snprintf(user, sizeof(user), "SC_MQTT_USER=%s", programs[i]);
		snprintf(pass, sizeof(pass), "SC_MQTT_PASS=%s", pass_of(programs[i]));
		const char *env[] = { url, user, pass, NULL };
		pids[i] = harness_spawn(h, programs[i], env, NULL);
		CHECK(pids[i] > 0);
	}

	/* 2. Refused: a wrong password, a user without account, no user. */
	struct harness_mqtt_opts o = { .client_id = "x-bad", .user = "D1", .pass = "wrong",
				       .quiet = true };
	CHECK((bad = harness_mqtt_connect_opts(h, &o)) == NULL);
	o.user = "D404";
	o.pass = pass_of("D1");
	CHECK((bad = harness_mqtt_connect_opts(h, &o)) == NULL);
	o.user = o.pass = NULL;
	CHECK((bad = harness_mqtt_connect_opts(h, &o)) == NULL);
	o.port = sport;
	CHECK((bad = harness_mqtt_connect_opts(h, &o)) == NULL);

	/* Privileged watchers: the services' own accounts on their listener. */
	w_dev = as("sc-ingest", "test-watch-dev", sport);
	w_orders = as("sc-sim", "test-watch-orders", sport);
	w_events = as("sc-dispatch", "test-watch-events", sport);
	w_req = as("sc-ingest", "test-watch-req", sport);
	CHECK(w_dev && w_orders && w_events && w_req);
	CHECK(harness_mqtt_subscribe(w_dev, "sc/v1/dev/#") == 0);
	CHECK(harness_mqtt_subscribe(w_orders, "sc/v1/engineers/+/orders") == 0);
	CHECK(harness_mqtt_subscribe(w_orders, "sc/v1/partners/+/orders") == 0);
	CHECK(harness_mqtt_subscribe(w_events, "sc/v1/engineers/+/events") == 0);
	CHECK(harness_mqtt_subscribe(w_events, "sc/v1/engineers/+/status") == 0);
	CHECK(harness_mqtt_subscribe(w_events, "sc/v1/partners/+/events") == 0);
	CHECK(harness_mqtt_subscribe(w_req, "sc/v1/requests/new") == 0);

	/* 3. Devices (on the actors' listener, the harness's port). */
	d1 = as("D1", "dev-D1", 0);
	d2 = as("D2", "dev-D2", 0);
	CHECK(d1 != NULL && d2 != NULL);
	CHECK(refused_then_allowed(d1, "sc/v1/dev/D2/telemetry", "sc/v1/dev/D1/telemetry", w_dev));
	/* A device is no engineer: the control goes to w_dev, so w_events has
	 * had the same time to see the forbidden one. */
	CHECK(harness_mqtt_publish(d1, "sc/v1/engineers/E-HA-3/events", "{\"spoof\": true}", 1) == 0);
	CHECK(refused_then_allowed(d1, "sc/v1/dev/D2/alarm", "sc/v1/dev/D1/alarm", w_dev));
	CHECK(nothing_on(w_events, "sc/v1/engineers/E-HA-3/events"));
	/* Valid telemetry as D2, then D2's as D1: stored once, from D2 only. */
	CHECK(telemetry(d1, "D2", 77, 20.0, 0) == 0);
	CHECK(telemetry(d2, "D2", 78, 20.0, 0) == 0);
	CHECK(harness_wait_sql(h, "select count(*) from telemetry where device_id = 'D2' and seq = 78",
			       1, WAIT_MS));
	CHECK(harness_sql_long(h, "select count(*) from telemetry where device_id = 'D2' and seq = 77") == 0);

	/* 4. Partners and engineers: reading others' orders, posting for others. */
	pa = as("PA", "partner-PA", 0);
	e1 = as("E-HA-1", "eng-E-HA-1", 0);
	e3 = as("E-HA-3", "eng-E-HA-3", 0);
	CHECK(pa != NULL && e1 != NULL && e3 != NULL);
	/* A subscription to another's topic may be granted (mosquitto 2.0 checks
	 * on delivery), but nothing of theirs arrives. */
	(void)harness_mqtt_subscribe(pa, "sc/v1/partners/+/orders");
	(void)harness_mqtt_subscribe(pa, "sc/v1/partners/PB/orders");
	(void)harness_mqtt_subscribe(e1, "sc/v1/engineers/+/orders");
	(void)harness_mqtt_subscribe(e1, "sc/v1/engineers/E-HA-3/orders");
	CHECK(harness_mqtt_subscribe(e3, "sc/v1/engineers/E-HA-3/orders") == 0);
	{
		struct harness_mqtt *svc = as("sc-slamon", "test-orders-pub", sport);
		CHECK(svc != NULL);
		int prc = harness_mqtt_publish(svc, "sc/v1/partners/PB/orders", "{\"order_id\": \"W-PB\"}", 1) |
			  harness_mqtt_publish(svc, "sc/v1/engineers/E-HA-3/orders", "{\"order_id\": \"W-E3\"}", 1) |
			  harness_mqtt_publish(svc, "sc/v1/partners/PA/orders", "{\"order_id\": \"W-PA\"}", 1) |
			  harness_mqtt_publish(svc, "sc/v1/engineers/E-HA-1/orders", "{\"order_id\": \"W-E1\"}", 1);
		harness_mqtt_free(svc);
		CHECK(prc == 0);
	}
	/* The watcher sees all four; each actor only its own. */
	CHECK((p = fixture_wait_payload(w_orders, "sc/v1/engineers/E-HA-1/orders", "W-E1", WAIT_MS)) != NULL);
	free(p);
	CHECK((p = fixture_wait_payload(pa, "sc/v1/partners/PA/orders", "W-PA", WAIT_MS)) != NULL);
	free(p);
	CHECK((p = fixture_wait_payload(e1, "sc/v1/engineers/E-HA-1/orders", "W-E1", WAIT_MS)) != NULL);
	free(p);
	CHECK((p = fixture_wait_payload(e3, "sc/v1/engineers/E-HA-3/orders", "W-E3", WAIT_MS)) != NULL);
	free(p);
	p = NULL;
	CHECK(nothing_on(pa, "/PB/"));
	CHECK(nothing_on(e1, "/E-HA-3/"));
	CHECK(harness_mqtt_pending(pa) == 0 && harness_mqtt_pending(e1) == 0);

	CHECK(refused_then_allowed(pa, "sc/v1/partners/PB/events", "sc/v1/partners/PA/events", w_events));
	CHECK(refused_then_allowed(e1, "sc/v1/engineers/E-HA-3/events", "sc/v1/engineers/E-HA-1/events",
				   w_events));
	CHECK(refused_then_allowed(e1, "sc/v1/engineers/E-HA-3/status", "sc/v1/engineers/E-HA-1/status",
				   w_events));
	/* An engineer is no device, a partner no engineer. */
	CHECK(refused_then_allowed(pa, "sc/v1/engineers/E-HA-1/events", "sc/v1/partners/PA/events",
				   w_events));

	/* The front desk: requests yes, telemetry no. */
	desk = as("frontdesk", "desk", 0);
	CHECK(desk != NULL);
	CHECK(harness_mqtt_publish(desk, "sc/v1/dev/D1/telemetry", "{\"spoof\": true}", 1) == 0);
	CHECK(harness_mqtt_publish(desk, "sc/v1/requests/new", "{\"control\": true}", 1) == 0);
	CHECK((p = fixture_wait_payload(w_req, "sc/v1/requests/new", "control", WAIT_MS)) != NULL);
	free(p);
	p = NULL;
	CHECK(nothing_on(w_dev, "sc/v1/dev/D1/telemetry"));

	/* 5. D2 asks for sc-dispatch's client id: it gets its user name instead,
	 * and sc-dispatch keeps its connection. */
	harness_mqtt_free(d2);
	d2 = as("D2", "sc-dispatch-test", 0);
	CHECK(d2 != NULL);
	snprintf(mlog, sizeof(mlog), "%s/mqtt/mosquitto.log", harness_dir(h));
	CHECK(!file_has(mlog, "sc-dispatch-test already connected"));

	/* 6. The slice over TLS: D1 runs hot for longer than for_s (2 s, device
	 * time), E-HA-3 gets and accepts the offer. */
	for (int i = 0; i < 4; i++)
		CHECK(telemetry(d1, "D1", 100 + i, 91.5, 3 - i) == 0);
	p = fixture_wait_payload(e3, "sc/v1/engineers/E-HA-3/orders", "\"ticket_id\"", 30000);
	CHECK(p != NULL);
	{
		const char *q = strstr(p, "\"order_id\"");
		char oid[32], ev[256], ts[40];
		CHECK(q != NULL && (q = strchr(q + 10, '"')) != NULL);
		size_t n = strcspn(q + 1, "\"");
		CHECK(n > 0 && n < sizeof(oid));
		memcpy(oid, q + 1, n);
		oid[n] = '\0';
		iso(time(NULL), ts, sizeof(ts));
		snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"%s\", "
			 "\"eta\": \"%s\"}", oid, ts, ts);
		CHECK(harness_mqtt_publish(e3, "sc/v1/engineers/E-HA-3/events", ev, 1) == 0);
	}
	CHECK(harness_wait_sql(h, "select count(*) from sla_clock c join ticket t on t.id = c.ticket_id "
				  "where t.device_id = 'D1' and c.clock = 'respond' and c.state = 'stopped'",
			       1, WAIT_MS));
	CHECK(harness_sql_long(h, "select count(*) from ticket where device_id = 'D1' and state = 'assigned'") == 1);

	/* Paho (sc-alertd has no inbound client) checks the broker against
	 * SC_MQTT_CAFILE: under a CA that did not sign it, it never connects.
	 * (mqsub's own wrong-CA case is in test_mqsub.) */
	{
		char url[64], user[64], pass[128], ca[224], logp[192];
		snprintf(url, sizeof(url), "SC_MQTT_URL=ssl://127.0.0.1:%d", sport);
		snprintf(user, sizeof(user), "SC_MQTT_USER=sc-alertd");
		snprintf(pass, sizeof(pass), "SC_MQTT_PASS=%s", pass_of("sc-alertd"));
		snprintf(ca, sizeof(ca), "SC_MQTT_CAFILE=%s/other.crt", tls);
		const char *env[] = { url, user, pass, ca, "SC_INSTANCE=badca", NULL };
		pid_t badca = harness_spawn(h, "sc-alertd", env, NULL);
		CHECK(badca > 0);
		snprintf(logp, sizeof(logp), "%s/sc-alertd-2.log", harness_dir(h));
		for (int i = 0; i < 100 && !file_has(logp, "mqtt connect failed"); i++) {
			struct timespec ms100 = { 0, 100000000 };
			nanosleep(&ms100, NULL);
		}
		bool failed = file_has(logp, "mqtt connect failed");
		bool connected = file_has(logp, "mqtt connected");
		(void)harness_stop_program(h, badca, SIGTERM);
		CHECK(failed && !connected);
	}

	/* 7. An event on a topic outside the services' ACL (a new outbox topic
	 * nobody added to broker.c) is refused by the broker (PUBACK reason
	 * 0x87): the relay counts the error and keeps the row, it does not
	 * delete it as published. (Whether Paho reports the refusal at once
	 * varies; what matters is that the row is never lost.) */
	CHECK(harness_sql_exec(h, "insert into outbox (topic, payload) values"
				  " ('sc/v1/not-in-the-acl/x', '{\"n\": 1}')") == 0);
	{
		/* Whichever service leads the relay counts it. */
		double errors = 0;
		for (int i = 0; i < 50 && errors == 0; i++) {
			struct timespec ms100 = { 0, 100000000 };
			nanosleep(&ms100, NULL);
			for (int j = 0; j < 4; j++) {
				double e = fixture_metric(h, pids[j], "sc_outbox_errors_total");
				errors += e > 0 ? e : 0;
			}
		}
	}
	CHECK(harness_sql_long(h, "select count(*) from outbox where topic = 'sc/v1/not-in-the-acl/x'")
	      == 1);
	CHECK(harness_sql_exec(h, "delete from outbox where topic = 'sc/v1/not-in-the-acl/x'") == 0);

	for (int i = 0; i < 4; i++) {
		CHECK(harness_stop_program(h, pids[i], SIGTERM) == 0);
		pids[i] = 0;
	}
	CHECK(harness_check_logs(h) == 0);

	/* 1 (end). A later run keeps the password file's group. */
	CHECK(broker_auth(out, sizeof(out)) == 0);
	snprintf(l1, sizeof(l1), "%s/passwd", auth_dir);
	CHECK(stat(l1, &st) == 0 && (st.st_mode & 0777) == 0640);
	CHECK(geteuid() != 0 || st.st_gid == mosq_gid);
	/* An id that is both a device and an engineer is refused. */
	CHECK(fixture_import(h, "{\"engineers\": [{\"id\": \"D1\", \"province\": \"HA\"}]}") == 0);
	CHECK(broker_auth(out, sizeof(out)) == 1);
	CHECK(strstr(out, "\"D1\" is both") != NULL);
	rc = 0;
out:
	free(p);
	free(topic);
	harness_mqtt_free(bad);
	harness_mqtt_free(d1);
	harness_mqtt_free(d2);
	harness_mqtt_free(pa);
	harness_mqtt_free(e1);
	harness_mqtt_free(e3);
	harness_mqtt_free(desk);
	harness_mqtt_free(w_dev);
	harness_mqtt_free(w_orders);
	harness_mqtt_free(w_events);
	harness_mqtt_free(w_req);
	harness_stop(h);
	return rc;
}

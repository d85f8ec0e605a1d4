/*
 * common/mqsub.c against a real mosquitto (the harness's, and one with TLS
 * started here) and against a scripted fake broker on the test's loop:
 *
 * - messages arrive with topic, payload, QoS, DUP and retained as sent;
 * - a message not acked is redelivered to the next connection of the client
 *   id, an acked one is not (ack after processing, across an abrupt close);
 * - PUBACKs leave in arrival order: acking 3 before 2 holds 3 back;
 * - pause stops delivery (also from inside the callback), resume continues;
 * - the persistent session keeps what was published while we were away;
 * - `$share/...` subscriptions split the messages;
 * - a broker restart is survived without help;
 * - TLS: verified against the CA file, by address and by name; a wrong CA
 *   never connects;
 * - a broker sending malformed or unexpected packets is dropped and
 *   reconnected to, never crashes us, and packets cut into single bytes are
 *   reassembled.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "harness.h"
#include "log.h"
#include "mqsub.h"
#include "timeutil.h"

#define MAX_MSGS 512

static struct harness *h;
static struct event_base *base;
static struct harness_mqtt *pub;

/* --- the loop and a receiving client ------------------------------------- */

static int64_t now_ms(void)
{
	return time_mono_us() / 1000;
}

static void run_for(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs the loop until cond holds or ms have passed. */
#define WAIT(cond, ms)                                                  \
	do {                                                            \
		int64_t deadline_ = now_ms() + (ms);                    \
		while (!(cond) && now_ms() < deadline_)                 \
			run_for(10);                                    \
	} while (0)

struct got {
	char *topic;
	char *payload;
	int qos;
	bool dup;
	bool retained;
	uint64_t token;
};

/* A client and what it received. Payload "probe" is acked and only counted. */
struct rx {
	struct mqsub *s;
	struct got msgs[MAX_MSGS];
	size_t n;
	size_t probes;
	int ups;
	int downs;
	size_t pause_at;      /* pause when n reaches it; 0: never */
	bool ack_now;         /* ack each message in the callback */
};

/* Static, so a failed test's clients can still be closed by cleanup(). */
static struct rx rx_a, rx_b;

static void on_msg(void *arg, const struct mqsub_msg *m)
{
	struct rx *rx = arg;
	if (m->len == 5 && memcmp(m->payload, "probe", 5) == 0) {
		rx->probes++;
		mqsub_ack(rx->s, m->token);
		return;
	}
	assert_true(rx->n < MAX_MSGS);
	assert_true(m->qos == 0 ? m->token == 0 : m->token != 0);
	struct got *g = &rx->msgs[rx->n++];
	g->topic = strdup(m->topic);
	g->payload = strndup(m->payload, m->len);
	assert_non_null(g->topic);
	assert_non_null(g->payload);
	g->qos = m->qos;
	g->dup = m->dup;
	g->retained = m->retained;
	g->token = m->token;
	if (rx->ack_now)
		mqsub_ack(rx->s, m->token);
	if (rx->pause_at != 0 && rx->n == rx->pause_at)
		mqsub_set_paused(rx->s, true);
}

static void on_conn(void *arg, bool up)
{
	struct rx *rx = arg;
	if (up)
		rx->ups++;
	else
		rx->downs++;
}

static void rx_clear(struct rx *rx)
{
	for (size_t i = 0; i < rx->n; i++) {
		free(rx->msgs[i].topic);
		free(rx->msgs[i].payload);
	}
	rx->n = 0;
}

/* Frees the client at once (no DISCONNECT) and what it received. */
static void rx_close(struct rx *rx)
{
	mqsub_free(rx->s);
	rx->s = NULL;
	rx_clear(rx);
}

static void rx_open_opts(struct rx *rx, const struct mqsub_options *o, const char *filter)
{
	memset(rx, 0, sizeof(*rx));
	rx->s = mqsub_new(base, o, on_msg, rx);
	assert_non_null(rx->s);
	mqsub_set_conn_cb(rx->s, on_conn, rx);
	if (filter != NULL)
		assert_int_equal(mqsub_subscribe(rx->s, filter, 1), 0);
	assert_int_equal(mqsub_connect(rx->s), 0);
}

/* A client of the harness's broker, subscribed to filter (NULL: none). */
static void rx_open(struct rx *rx, const char *client_id, const char *filter)
{
	struct mqsub_options o = { .url = harness_mqtt_url(h), .client_id = client_id };
	rx_open_opts(rx, &o, filter);
	WAIT(rx->ups == 1, 5000);
	assert_int_equal(rx->ups, 1);
	assert_true(mqsub_connected(rx->s));
}

/* SUBSCRIBE went out with CONNECT's answer; probe until the broker routes. */
static void await_subscribed(struct rx *rx, const char *topic)
{
	for (int i = 0; i < 100 && rx->probes == 0; i++) {
		assert_int_equal(harness_mqtt_publish(pub, topic, "probe", 1), 0);
		WAIT(rx->probes > 0, 50);
	}
	assert_true(rx->probes > 0);
	run_for(100);
}

static void publish_numbered(const char *topic, int from, int to)
{
	char buf[32];
	for (int i = from; i <= to; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(harness_mqtt_publish(pub, topic, buf, 1), 0);
	}
}

static struct got *find(struct rx *rx, const char *payload)
{
	for (size_t i = 0; i < rx->n; i++)
		if (strcmp(rx->msgs[i].payload, payload) == 0)
			return &rx->msgs[i];
	return NULL;
}

/* Disconnects cleanly and waits until the socket is closed. */
static void rx_disconnect(struct rx *rx)
{
	int downs = rx->downs;
	mqsub_disconnect(rx->s);
	WAIT(!mqsub_connected(rx->s), 3000);
	assert_false(mqsub_connected(rx->s));
	assert_int_equal(rx->downs, downs + 1);
}

/* --- tests against the harness's mosquitto -------------------------------- */

static void test_receive(void **state)
{
	struct rx *rx = &rx_a;
	(void)state;
	/* A retained message is sent when the subscription is made. */
	assert_int_equal(harness_mqtt_publish_raw(pub, "mqs/basic/ret", "kept", 4, 1, true), 0);
	rx_open(rx, "mqsub-basic", "mqs/basic/#");
	WAIT(find(rx, "kept") != NULL, 3000);
	struct got *g = find(rx, "kept");
	assert_non_null(g);
	assert_true(g->retained);
	assert_string_equal(g->topic, "mqs/basic/ret");
	assert_int_equal(mqsub_unacked(rx->s), 1);
	mqsub_ack(rx->s, g->token);
	assert_int_equal(mqsub_unacked(rx->s), 0);
	rx_clear(rx);

	assert_int_equal(harness_mqtt_publish(pub, "mqs/basic/a", "one", 1), 0);
	assert_int_equal(harness_mqtt_publish(pub, "mqs/basic/b", "two", 0), 0);
	const char bin[] = { 'x', '\0', 'y' };
	assert_int_equal(harness_mqtt_publish_raw(pub, "mqs/basic/é", bin, 3, 1, false), 0);
	WAIT(rx->n == 3, 3000);
	assert_int_equal(rx->n, 3);
	assert_string_equal(rx->msgs[0].topic, "mqs/basic/a");
	assert_string_equal(rx->msgs[0].payload, "one");
	assert_int_equal(rx->msgs[0].qos, 1);
	assert_false(rx->msgs[0].dup);
	assert_false(rx->msgs[0].retained);
	assert_string_equal(rx->msgs[1].payload, "two");
	assert_int_equal(rx->msgs[1].qos, 0);
	assert_int_equal(rx->msgs[1].token, 0);
	assert_string_equal(rx->msgs[2].topic, "mqs/basic/é");
	assert_int_equal(rx->msgs[2].qos, 1);
	/* Tokens grow within a connection. */
	assert_true(rx->msgs[2].token > rx->msgs[0].token);
	assert_int_equal(mqsub_unacked(rx->s), 2);
	mqsub_ack(rx->s, 0);
	mqsub_ack(rx->s, 12345);
	mqsub_ack(rx->s, rx->msgs[0].token);
	mqsub_ack(rx->s, rx->msgs[0].token);
	assert_int_equal(mqsub_unacked(rx->s), 1);
	mqsub_ack(rx->s, rx->msgs[2].token);
	assert_int_equal(mqsub_unacked(rx->s), 0);
	rx_clear(rx);

	/* A subscription added while connected is made at once. */
	assert_int_equal(mqsub_subscribe(rx->s, "mqs/late", 1), 0);
	await_subscribed(rx, "mqs/late");
	rx_disconnect(rx);
	rx_close(rx);
	assert_int_equal(harness_mqtt_publish_raw(pub, "mqs/basic/ret", "", 0, 1, true), 0);
}

/* User and password go out in CONNECT (the test broker takes any). */
static void test_credentials(void **state)
{
	struct rx *rx = &rx_a;
	struct mqsub_options o = { .url = harness_mqtt_url(h), .client_id = "mqsub-cred",
				   .user = "svc", .pass = "secret", .keepalive_s = 5,
				   .session_expiry_s = 60, .max_packet = 65536 };
	(void)state;
	rx_open_opts(rx, &o, "mqs/cred");
	WAIT(rx->ups == 1, 5000);
	assert_int_equal(rx->ups, 1);
	rx->ack_now = true;
	await_subscribed(rx, "mqs/cred");
	rx_disconnect(rx);
	rx_close(rx);
}

/*
 * 100 messages, the first 50 acked, the connection dropped without a word:
 * the next connection gets 51..100 again (DUP), nothing else, nothing less.
 */
static void test_ack_after_processing(void **state)
{
	struct rx *rx = &rx_a;
	char buf[32];
	(void)state;
	rx_open(rx, "mqsub-ack", "mqs/ack");
	await_subscribed(rx, "mqs/ack");
	publish_numbered("mqs/ack", 1, 100);
	WAIT(rx->n == 100, 10000);
	assert_int_equal(rx->n, 100);
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "%d", i + 1);
		assert_string_equal(rx->msgs[i].payload, buf);
	}
	assert_int_equal(mqsub_unacked(rx->s), 100);
	for (int i = 0; i < 50; i++)
		mqsub_ack(rx->s, rx->msgs[i].token);
	assert_int_equal(mqsub_unacked(rx->s), 50);
	run_for(300); /* the PUBACKs go out */
	rx_close(rx);

	rx_open(rx, "mqsub-ack", "mqs/ack");
	WAIT(rx->n >= 50, 5000);
	run_for(500); /* anything more would show up now */
	assert_int_equal(rx->n, 50);
	for (int i = 0; i < 50; i++) {
		snprintf(buf, sizeof(buf), "%d", i + 51);
		assert_string_equal(rx->msgs[i].payload, buf);
		assert_true(rx->msgs[i].dup);
		mqsub_ack(rx->s, rx->msgs[i].token);
	}
	/* A new message after the redelivered ones. */
	assert_int_equal(harness_mqtt_publish(pub, "mqs/ack", "101", 1), 0);
	WAIT(rx->n == 51, 3000);
	assert_int_equal(rx->n, 51);
	assert_string_equal(rx->msgs[50].payload, "101");
	assert_false(rx->msgs[50].dup);
	mqsub_ack(rx->s, rx->msgs[50].token);
	rx_disconnect(rx);
	rx_close(rx);

	/* Everything was acked: nothing comes back. */
	rx_open(rx, "mqsub-ack", "mqs/ack");
	run_for(700);
	assert_int_equal(rx->n, 0);
	rx_close(rx);
}

/* Acking 3 before 2 holds back the PUBACK of 3 until 2 is acked. */
static void test_puback_order(void **state)
{
	struct rx *rx = &rx_a;
	(void)state;
	rx_open(rx, "mqsub-order", "mqs/order");
	await_subscribed(rx, "mqs/order");
	publish_numbered("mqs/order", 1, 3);
	WAIT(rx->n == 3, 3000);
	assert_int_equal(rx->n, 3);
	mqsub_ack(rx->s, rx->msgs[0].token);
	mqsub_ack(rx->s, rx->msgs[2].token);
	assert_int_equal(mqsub_unacked(rx->s), 1);
	run_for(300);
	rx_close(rx);

	/* 1 was released, 3 was not. */
	rx_open(rx, "mqsub-order", "mqs/order");
	WAIT(rx->n >= 2, 3000);
	run_for(300);
	assert_int_equal(rx->n, 2);
	assert_string_equal(rx->msgs[0].payload, "2");
	assert_string_equal(rx->msgs[1].payload, "3");
	assert_true(rx->msgs[0].dup && rx->msgs[1].dup);
	/* Now 3 first, then 2: both are released. */
	mqsub_ack(rx->s, rx->msgs[1].token);
	run_for(100);
	mqsub_ack(rx->s, rx->msgs[0].token);
	run_for(300);
	rx_close(rx);

	rx_open(rx, "mqsub-order", "mqs/order");
	run_for(700);
	assert_int_equal(rx->n, 0);
	rx_close(rx);
}

static void test_pause(void **state)
{
	struct rx *rx = &rx_a;
	(void)state;
	rx_open(rx, "mqsub-pause", "mqs/pause");
	rx->ack_now = true;
	await_subscribed(rx, "mqs/pause");

	mqsub_set_paused(rx->s, true);
	publish_numbered("mqs/pause", 1, 5);
	run_for(500);
	assert_int_equal(rx->n, 0);
	mqsub_set_paused(rx->s, false);
	WAIT(rx->n == 5, 3000);
	assert_int_equal(rx->n, 5);
	rx_clear(rx);

	/* Paused from inside the callback: the messages after it wait, even
	 * those already read from the socket. */
	rx->pause_at = 2;
	publish_numbered("mqs/pause", 6, 10);
	WAIT(rx->n == 2, 3000);
	run_for(500);
	assert_int_equal(rx->n, 2);
	rx->pause_at = 0;
	mqsub_set_paused(rx->s, false);
	WAIT(rx->n == 5, 3000);
	assert_int_equal(rx->n, 5);
	assert_string_equal(rx->msgs[0].payload, "6");
	assert_string_equal(rx->msgs[4].payload, "10");
	assert_true(mqsub_connected(rx->s));
	assert_int_equal(rx->ups, 1);
	rx_disconnect(rx);
	rx_close(rx);
}

/*
 * A clean disconnect sends the PUBACKs due first; what is published while
 * we are away is kept by the broker and arrives after reconnect, without
 * subscribing again.
 */
static void test_persistent_session(void **state)
{
	struct rx *rx = &rx_a;
	(void)state;
	rx_open(rx, "mqsub-persist", "mqs/persist");
	await_subscribed(rx, "mqs/persist");
	assert_int_equal(harness_mqtt_publish(pub, "mqs/persist", "a", 1), 0);
	WAIT(rx->n == 1, 3000);
	assert_int_equal(rx->n, 1);
	mqsub_ack(rx->s, rx->msgs[0].token);
	rx_disconnect(rx); /* no loop iteration between ack and disconnect */
	rx_close(rx);

	assert_int_equal(harness_mqtt_publish(pub, "mqs/persist", "b", 1), 0);
	assert_int_equal(harness_mqtt_publish(pub, "mqs/persist", "c", 1), 0);
	assert_int_equal(harness_mqtt_publish(pub, "mqs/persist", "d", 1), 0);

	rx_open(rx, "mqsub-persist", NULL);
	rx->ack_now = true;
	WAIT(rx->n == 3, 3000);
	run_for(300);
	assert_int_equal(rx->n, 3);
	assert_string_equal(rx->msgs[0].payload, "b");
	assert_string_equal(rx->msgs[1].payload, "c");
	assert_string_equal(rx->msgs[2].payload, "d");
	assert_false(rx->msgs[0].dup);
	rx_disconnect(rx);
	rx_close(rx);
}

static void test_shared_subscription(void **state)
{
	struct rx *a = &rx_a, *b = &rx_b;
	char buf[32];
	(void)state;
	rx_open(a, "mqsub-share-1", "$share/g/mqs/share/#");
	rx_open(b, "mqsub-share-2", "$share/g/mqs/share/#");
	a->ack_now = b->ack_now = true;
	for (int i = 0; i < 200 && (a->probes == 0 || b->probes == 0); i++) {
		assert_int_equal(harness_mqtt_publish(pub, "mqs/share/p", "probe", 1), 0);
		WAIT(a->probes > 0 && b->probes > 0, 20);
	}
	assert_true(a->probes > 0 && b->probes > 0);
	run_for(100);
	publish_numbered("mqs/share/x", 1, 20);
	WAIT(a->n + b->n == 20, 5000);
	run_for(200);
	assert_int_equal(a->n + b->n, 20);
	assert_true(a->n > 0 && b->n > 0);
	for (int i = 1; i <= 20; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		assert_true((find(a, buf) != NULL) != (find(b, buf) != NULL));
	}
	rx_disconnect(a);
	rx_disconnect(b);
	rx_close(a);
	rx_close(b);
}

/* The broker restarts: we reconnect by ourselves, the message we held
 * unacked comes again (our ack of the old token is ignored), new ones flow. */
static void test_broker_restart(void **state)
{
	struct rx *rx = &rx_a;
	(void)state;
	rx_open(rx, "mqsub-restart", "mqs/restart");
	await_subscribed(rx, "mqs/restart");
	assert_int_equal(harness_mqtt_publish(pub, "mqs/restart", "x", 1), 0);
	WAIT(rx->n == 1, 3000);
	assert_int_equal(rx->n, 1);
	uint64_t old = rx->msgs[0].token;

	assert_int_equal(harness_restart_broker(h), 0);
	WAIT(rx->ups == 2, 10000);
	assert_int_equal(rx->downs, 1);
	assert_int_equal(rx->ups, 2);
	WAIT(rx->n == 2, 3000);
	assert_int_equal(rx->n, 2);
	/* Only the redelivery counts: the first delivery ended with its connection. */
	assert_int_equal(mqsub_unacked(rx->s), 1);
	assert_string_equal(rx->msgs[1].payload, "x");
	assert_true(rx->msgs[1].dup);
	assert_true(rx->msgs[1].token != old);
	mqsub_ack(rx->s, old);
	assert_int_equal(mqsub_unacked(rx->s), 1);
	mqsub_ack(rx->s, rx->msgs[1].token);
	assert_int_equal(mqsub_unacked(rx->s), 0);

	assert_int_equal(harness_mqtt_publish(pub, "mqs/restart", "y", 1), 0);
	WAIT(rx->n == 3, 5000);
	assert_int_equal(rx->n, 3);
	assert_string_equal(rx->msgs[2].payload, "y");
	mqsub_ack(rx->s, rx->msgs[2].token);
	rx_disconnect(rx);
	rx_close(rx);
}

static void test_bad_options(void **state)
{
	struct mqsub_options o = { .url = "http://127.0.0.1:1883", .client_id = "x" };
	(void)state;
	assert_null(mqsub_new(base, &o, on_msg, NULL));
	o.url = "tcp://127.0.0.1";
	assert_null(mqsub_new(base, &o, on_msg, NULL));
	o.url = "tcp://127.0.0.1:0";
	assert_null(mqsub_new(base, &o, on_msg, NULL));
	o.url = "tcp://127.0.0.1:1883";
	o.client_id = "";
	assert_null(mqsub_new(base, &o, on_msg, NULL));
	o.client_id = "x";
	struct mqsub *s = mqsub_new(base, &o, on_msg, NULL);
	assert_non_null(s);
	assert_int_equal(mqsub_subscribe(s, "a/#", 2), -1);
	assert_int_equal(mqsub_subscribe(s, "", 1), -1);
	assert_int_equal(mqsub_subscribe(s, "a/#", 1), 0);
	assert_false(mqsub_connected(s));
	assert_int_equal(mqsub_unacked(s), 0);
	mqsub_disconnect(s);
	mqsub_free(s);
	mqsub_free(NULL);
}

/* --- TLS ---------------------------------------------------------------- */

static void tls_publish(const char *dir, int port, const char *topic, const char *msg)
{
	char cafile[256], portstr[16];
	snprintf(cafile, sizeof(cafile), "%s/ca.crt", dir);
	snprintf(portstr, sizeof(portstr), "%d", port);
	const char *args[] = { "-h", "127.0.0.1", "-p", portstr, "--cafile", cafile,
			       "-q", "1", "-t", topic, "-m", msg, NULL };
	assert_int_equal(harness_run(h, "/usr/bin/mosquitto_pub", args, NULL, 0), 0);
}

static bool file_contains(const char *path, const char *needle)
{
	char buf[16384];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void test_tls(void **state)
{
	char dir[200], conf[256], url[64], cafile[256], other[256], logpath[256];
	struct rx *rx = &rx_a;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/tls", harness_dir(h));
	/* A CA, a server certificate for 127.0.0.1 and localhost, and a CA
	 * that signed nothing of this server's. */
	assert_int_equal(harness_make_certs(h, dir), 0);

	int port = harness_free_port(NULL);
	assert_true(port > 0);
	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "user root\nlistener %d 127.0.0.1\nallow_anonymous true\n"
		"certfile %s/srv.crt\nkeyfile %s/srv.key\nset_tcp_nodelay true\n"
		"log_dest file %s/mosquitto.log\n", port, dir, dir, dir);
	fclose(f);
	const char *margs[] = { "-c", conf, NULL };
	pid_t mosq = harness_spawn(h, "/usr/sbin/mosquitto", NULL, margs);
	assert_true(mosq > 0);
	WAIT(harness_port_accepts(port), 5000);
	assert_true(harness_port_accepts(port));

	snprintf(cafile, sizeof(cafile), "%s/ca.crt", dir);
	snprintf(other, sizeof(other), "%s/other.crt", dir);

	/* By address, then by name (getaddrinfo, SNI, host name check). */
	const char *hosts[] = { "127.0.0.1", "localhost" };
	for (int i = 0; i < 2; i++) {
		snprintf(url, sizeof(url), "ssl://%s:%d", hosts[i], port);
		struct mqsub_options o = { .url = url, .client_id = "mqsub-tls", .cafile = cafile };
		rx_open_opts(rx, &o, "mqs/tls");
		rx->ack_now = true;
		WAIT(rx->ups == 1, 5000);
		assert_int_equal(rx->ups, 1);
		for (int k = 0; k < 50 && rx->n == 0; k++) {
			tls_publish(dir, port, "mqs/tls", hosts[i]);
			WAIT(rx->n > 0, 100);
		}
		assert_true(rx->n > 0);
		assert_string_equal(rx->msgs[0].payload, hosts[i]);
		rx_disconnect(rx);
		rx_close(rx);
	}

	/* The wrong CA: the handshake fails, we never count as connected. */
	snprintf(logpath, sizeof(logpath), "%s/mqsub-tls.log", dir);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	assert_true(fd >= 0);
	log_set_fd(fd);
	snprintf(url, sizeof(url), "ssl://127.0.0.1:%d", port);
	struct mqsub_options o = { .url = url, .client_id = "mqsub-tls-bad", .cafile = other };
	rx_open_opts(rx, &o, "mqs/tls");
	run_for(1000);
	log_set_fd(STDERR_FILENO);
	close(fd);
	assert_int_equal(rx->ups, 0);
	assert_false(mqsub_connected(rx->s));
	rx_close(rx);
	assert_true(file_contains(logpath, "certificate verify failed"));

	/* A missing CA file is refused up front. */
	o.cafile = "/nonexistent/ca.crt";
	assert_null(mqsub_new(base, &o, on_msg, NULL));
	assert_true(harness_stop_program(h, mosq, SIGTERM) == 0);
}

/* --- a scripted fake broker ---------------------------------------------- */

/*
 * Accepts connections on the test's loop; on the first bytes of each (the
 * CONNECT) answers with `script`, at once or one byte every 2 ms (`drip`).
 * Keeps what the client sent on the latest connection.
 */
struct fake {
	struct evconnlistener *listener;
	int port;
	const uint8_t *script;
	size_t script_len;
	bool drip;
	size_t sent;
	int accepts;
	int64_t accept_ms[16];
	struct bufferevent *conn;
	struct evbuffer *got;
	bool prev_ended_in_ping;   /* the connection before the latest sent PINGREQ last */
	struct event *drip_ev;
};

static struct fake fake;

static void fake_drip(evutil_socket_t fd, short what, void *arg)
{
	if (fake.conn == NULL || fake.sent >= fake.script_len)
		return;
	bufferevent_write(fake.conn, fake.script + fake.sent, 1);
	fake.sent++;
	struct timeval tv = { 0, 2000 };
	evtimer_add(fake.drip_ev, &tv);
}

static void fake_read(struct bufferevent *bev, void *arg)
{
	bool first = evbuffer_get_length(fake.got) == 0;
	evbuffer_add_buffer(fake.got, bufferevent_get_input(bev));
	if (!first)
		return;
	if (fake.drip) {
		fake_drip(-1, 0, NULL);
	} else {
		bufferevent_write(bev, fake.script, fake.script_len);
		fake.sent = fake.script_len;
	}
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(bev);
		if (fake.conn == bev)
			fake.conn = NULL;
	}
}

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			int len, void *arg)
{
	if (fake.conn != NULL)
		bufferevent_free(fake.conn);
	if (fake.accepts < 16)
		fake.accept_ms[fake.accepts] = now_ms();
	fake.accepts++;
	fake.sent = 0;
	size_t n = evbuffer_get_length(fake.got);
	uint8_t *p = evbuffer_pullup(fake.got, -1);
	fake.prev_ended_in_ping = n >= 2 && p[n - 2] == 0xC0 && p[n - 1] == 0x00;
	evbuffer_drain(fake.got, n);
	fake.conn = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(fake.conn);
	bufferevent_setcb(fake.conn, fake_read, NULL, fake_event, NULL);
	bufferevent_enable(fake.conn, EV_READ);
}

static void fake_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&fake, 0, sizeof(fake));
	fake.listener = evconnlistener_new_bind(base, fake_accept, NULL,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
						(struct sockaddr *)&sa, sizeof(sa));
	assert_non_null(fake.listener);
	socklen_t len = sizeof(sa);
	assert_int_equal(getsockname(evconnlistener_get_fd(fake.listener),
				     (struct sockaddr *)&sa, &len), 0);
	fake.port = ntohs(sa.sin_port);
	fake.got = evbuffer_new();
	fake.drip_ev = evtimer_new(base, fake_drip, NULL);
	assert_non_null(fake.got);
}

static void fake_stop(void)
{
	if (fake.conn != NULL)
		bufferevent_free(fake.conn);
	evconnlistener_free(fake.listener);
	evbuffer_free(fake.got);
	event_free(fake.drip_ev);
	memset(&fake, 0, sizeof(fake));
}

static void fake_open(struct rx *rx, uint16_t keepalive, uint32_t max_packet)
{
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", fake.port);
	struct mqsub_options o = { .url = url, .client_id = "mqsub-fake",
				   .keepalive_s = keepalive, .max_packet = max_packet };
	rx_open_opts(rx, &o, "x/#");
}

#define CONNACK_OK 0x20, 0x03, 0x00, 0x00, 0x00

struct bad_case {
	const char *what;
	uint8_t bytes[40];
	size_t len;
	bool connack_ok;
};

/* Each: the client drops the connection and connects again; nothing delivered. */
static void test_bad_broker(void **state)
{
	static const struct bad_case cases[] = {
		{ "invalid utf-8 in topic", { CONNACK_OK, 0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00 }, 12, true },
		{ "qos 2", { CONNACK_OK, 0x34, 0x06, 0x00, 0x01, 'a', 0x00, 0x09, 0x00 }, 13, true },
		{ "5-byte varint", { CONNACK_OK, 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, 11, true },
		{ "topic past the end", { CONNACK_OK, 0x30, 0x05, 0x00, 0x09, 'a', 'b', 0x00 }, 12, true },
		{ "property past the end", { CONNACK_OK, 0x30, 0x06, 0x00, 0x01, 'a', 0x05, 0x01, 0x01 }, 13, true },
		{ "server disconnect", { CONNACK_OK, 0xE0, 0x09, 0x8E, 0x07, 0x1F, 0x00, 0x04, 't', 'a', 'k', 'e' }, 16, true },
		{ "connect refused", { 0x20, 0x03, 0x00, 0x87, 0x00 }, 5, false },
		{ "publish before connack", { 0x30, 0x04, 0x00, 0x01, 'a', 0x00 }, 6, false },
		{ "second connack", { CONNACK_OK, CONNACK_OK }, 10, true },
		{ "pubrel", { CONNACK_OK, 0x62, 0x02, 0x00, 0x01 }, 9, true },
		{ "larger than max_packet", { CONNACK_OK, 0x30, 0x80, 0x01 }, 8, true },
	};
	(void)state;
	fake_start();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rx *rx = &rx_a;
		fprintf(stderr, "bad broker: %s\n", cases[i].what);
		fake.accepts = 0;
		fake.script = cases[i].bytes;
		fake.script_len = cases[i].len;
		fake_open(rx, 0, 64);
		WAIT(fake.accepts >= 2, 3000);
		assert_true(fake.accepts >= 2);
		assert_int_equal(rx->n, 0);
		assert_int_equal(rx->ups, cases[i].connack_ok ? rx->downs : 0);
		rx_close(rx);
	}
	fake_stop();
}

/* A good script, at once and cut into single bytes: CONNACK, a QoS 1
 * PUBLISH with properties, PINGRESP. The PUBACK must come back. */
static void test_fake_good(void **state)
{
	static const uint8_t script[] = {
		CONNACK_OK,
		0x32, 0x0F, 0x00, 0x03, 'x', '/', 'y', 0x00, 0x05,
		0x05, 0x02, 0x00, 0x00, 0x00, 0x3C, 'o', 'k',
		0xD0, 0x00,
	};
	(void)state;
	fake_start();
	for (int drip = 0; drip < 2; drip++) {
		struct rx *rx = &rx_a;
		fake.accepts = 0;
		fake.script = script;
		fake.script_len = sizeof(script);
		fake.drip = drip;
		fake_open(rx, 0, 0);
		WAIT(rx->n == 1, 3000);
		assert_int_equal(rx->n, 1);
		assert_string_equal(rx->msgs[0].topic, "x/y");
		assert_string_equal(rx->msgs[0].payload, "ok");
		assert_int_equal(rx->ups, 1);
		mqsub_ack(rx->s, rx->msgs[0].token);
		run_for(200);
		/* CONNECT (client id, protocol 5), SUBSCRIBE of x/#, PUBACK of 5. */
		size_t n = evbuffer_get_length(fake.got);
		uint8_t *p = evbuffer_pullup(fake.got, -1);
		assert_true(n > 4);
		assert_int_equal(p[0], 0x10);
		assert_non_null(memmem(p, n, "\x00\x04MQTT\x05\x00", 8));
		assert_non_null(memmem(p, n, "mqsub-fake", 10));
		assert_non_null(memmem(p, n, "\x00\x03x/#\x11", 6));
		assert_memory_equal(p + n - 4, "\x40\x02\x00\x05", 4);
		assert_int_equal(fake.accepts, 1);
		rx_close(rx);
	}
	fake_stop();
}

/* No PINGRESP: keepalive 1 s, PINGREQ every 0.5 s; the connection is
 * dropped once a PINGREQ has gone unanswered for a keepalive. */
static void test_fake_no_pingresp(void **state)
{
	static const uint8_t script[] = { CONNACK_OK };
	struct rx *rx = &rx_a;
	(void)state;
	fake_start();
	fake.script = script;
	fake.script_len = sizeof(script);
	fake_open(rx, 1, 0);
	WAIT(fake.accepts >= 2, 5000);
	assert_int_equal(fake.accepts, 2);
	int64_t gap = fake.accept_ms[1] - fake.accept_ms[0];
	assert_true(gap >= 1000 && gap <= 3000);
	assert_int_equal(rx->downs, 1);
	assert_true(fake.prev_ended_in_ping);
	rx_close(rx);
	fake_stop();
}

/* --- setup ---------------------------------------------------------------- */

/* After every test, also a failed one: nothing of it may live on. */
static int cleanup(void **state)
{
	rx_close(&rx_a);
	rx_close(&rx_b);
	if (fake.listener != NULL)
		fake_stop();
	log_set_fd(STDERR_FILENO);
	return 0;
}

static int setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test-mqsub");
	log_set_level(LOG_DEBUG);
	h = harness_start();
	if (h == NULL)
		return -1;
	base = event_base_new();
	pub = harness_mqtt_connect(h, "mqsub-test-pub");
	return base != NULL && pub != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	harness_mqtt_free(pub);
	int bad = h != NULL ? harness_check_logs(h) : 0;
	harness_stop(h);
	if (base != NULL)
		event_base_free(base);
	return bad == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_bad_options, cleanup),
		cmocka_unit_test_teardown(test_receive, cleanup),
		cmocka_unit_test_teardown(test_credentials, cleanup),
		cmocka_unit_test_teardown(test_ack_after_processing, cleanup),
		cmocka_unit_test_teardown(test_puback_order, cleanup),
		cmocka_unit_test_teardown(test_pause, cleanup),
		cmocka_unit_test_teardown(test_persistent_session, cleanup),
		cmocka_unit_test_teardown(test_shared_subscription, cleanup),
		cmocka_unit_test_teardown(test_bad_broker, cleanup),
		cmocka_unit_test_teardown(test_fake_good, cleanup),
		cmocka_unit_test_teardown(test_fake_no_pingresp, cleanup),
		cmocka_unit_test_teardown(test_tls, cleanup),
		cmocka_unit_test_teardown(test_broker_restart, cleanup),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

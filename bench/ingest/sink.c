/*
 * bench-ingest-sink: the broker-alone baseline's receiver. A Paho MQTTAsync
 * client (MQTT 5) subscribes like sc-ingest does (a shared subscription on
 * the device topics, QoS 1) and throws every message away after counting it:
 * what it receives per second is what the broker and one Paho receiver can
 * move, with nothing behind them.
 *
 * Every 100 ms it appends "epoch_ms received" to --timeline. It runs until
 * SIGTERM/SIGINT, or after SIGUSR1 (the publisher has finished) until
 * nothing has arrived for --idle-ms. At the end it prints one summary line
 * "key=value ..." on stdout for run.sh.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "benchutil.h"
#include "mqtt.h"

#define CONNECT_TIMEOUT_MS 10000

struct sink {
	MQTTAsync client;
	atomic_int state;          /* 0 connecting, 1 connected, 2 subscribed, -1 failed */
	atomic_ullong received, bytes;
};

static void on_subscribed(void *ctx, MQTTAsync_successData5 *r)
{
	struct sink *s = ctx;

	/* A granted QoS of 0x80 or more is a refusal. */
	if (r != NULL && r->reasonCode >= 0x80) {
		fprintf(stderr, "bench-sink: subscription refused: reason %d\n", r->reasonCode);
		atomic_store(&s->state, -1);
		return;
	}
	atomic_store(&s->state, 2);
}

static void on_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	fprintf(stderr, "bench-sink: connect or subscribe failed: rc=%d %s\n", r ? r->code : 0,
		r && r->message ? r->message : "");
	atomic_store(&((struct sink *)ctx)->state, -1);
}

static void on_connected(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	atomic_store(&((struct sink *)ctx)->state, 1);
}

static void on_conn_lost(void *ctx, char *cause)
{
	fprintf(stderr, "bench-sink: connection lost: %s\n", cause ? cause : "?");
	atomic_store(&((struct sink *)ctx)->state, -1);
}

static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
	struct sink *s = ctx;

	(void)tlen;
	atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->bytes, (unsigned long long)m->payloadlen,
				  memory_order_relaxed);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

int main(int argc, char **argv)
{
	const char *url = "tcp://127.0.0.1:1883", *timeline_path = NULL, *ready = NULL;
	/* Same levels and length as the real topics, but not sc-ingest's: it keeps
	 * running, idle, while the broker is measured alone. */
	const char *filter = "$share/bench/sc/b1/dev/+/telemetry";
	long long qos = 1, idle_ms = 2000, max_seconds = 3600;
	const struct bu_opt opts[] = {
		{ "url", BU_STR, &url, "broker" },
		{ "filter", BU_STR, &filter, "topic filter" },
		{ "qos", BU_INT, &qos, "subscription QoS (sc-ingest subscribes with 1)" },
		{ "timeline", BU_STR, &timeline_path, "file for 'epoch_ms received' every 100 ms" },
		{ "ready", BU_STR, &ready, "file made once subscribed" },
		{ "idle-ms", BU_INT, &idle_ms, "after SIGUSR1, stop when nothing came for this long" },
		{ "max-seconds", BU_INT, &max_seconds, "stop after this long whatever happens" },
		{ NULL, BU_INT, NULL, NULL },
	};
	struct sink s = { .state = 0 };
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	FILE *timeline = NULL;
	char cid[64];
	bool client_made = false;
	int rc = 1;

	int prc = bu_parse(argc, argv, "Subscribes to the device topics and discards, counting.",
			   opts);
	if (prc != 0)
		return prc > 0 ? 0 : 2;
	bu_signals();
	timeline = fopen(timeline_path ? timeline_path : "/dev/null", "w");
	if (timeline == NULL) {
		fprintf(stderr, "bench-sink: cannot open %s\n", timeline_path);
		goto out;
	}
	snprintf(cid, sizeof(cid), "bench-sink-%ld", (long)getpid());
	if (MQTTAsync_createWithOptions(&s.client, url, cid, MQTTCLIENT_PERSISTENCE_NONE, NULL,
					&co) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "bench-sink: cannot create the client for %s\n", url);
		goto out;
	}
	client_made = true;
	MQTTAsync_setCallbacks(s.client, &s, on_conn_lost, on_message, NULL);
	/* A fresh session each run: nothing left over from an earlier phase. */
	cn.cleanstart = 1;
	cn.keepAliveInterval = 30;
	cn.onSuccess5 = on_connected;
	cn.onFailure5 = on_fail;
	cn.context = &s;
	if (MQTTAsync_connect(s.client, &cn) != MQTTASYNC_SUCCESS)
		goto out;
	int64_t until = bu_now_ms() + CONNECT_TIMEOUT_MS;
	while (atomic_load(&s.state) == 0 && bu_now_ms() < until && !bu_stop)
		bu_sleep_ms(5);
	if (atomic_load(&s.state) != 1) {
		fprintf(stderr, "bench-sink: not connected to %s\n", url);
		goto out;
	}
	char host[128];
	int port = bu_url_host_port(url, host, sizeof(host));
	if (port <= 0 || mq_set_nodelay(host, port) < 1)
		fprintf(stderr, "bench-sink: warning: TCP_NODELAY not set\n");
	ro.onSuccess5 = on_subscribed;
	ro.onFailure5 = on_fail;
	ro.context = &s;
	if (MQTTAsync_subscribe(s.client, filter, (int)qos, &ro) != MQTTASYNC_SUCCESS)
		goto out;
	while (atomic_load(&s.state) == 1 && bu_now_ms() < until && !bu_stop)
		bu_sleep_ms(5);
	if (atomic_load(&s.state) != 2 || (ready != NULL && bu_touch(ready) != 0))
		goto out;

	int64_t end = bu_now_ms() + max_seconds * 1000, last_change = bu_now_ms();
	unsigned long long last = 0;
	while (!bu_stop && atomic_load(&s.state) == 2 && bu_now_ms() < end) {
		unsigned long long n = atomic_load(&s.received);
		int64_t now = bu_now_ms();

		fprintf(timeline, "%lld %llu\n", (long long)now, n);
		fflush(timeline);
		if (n != last) {
			last = n;
			last_change = now;
		}
		if (bu_drain && now - last_change >= idle_ms)
			break;
		bu_sleep_ms(100);
	}
	unsigned long long n = atomic_load(&s.received);
	fprintf(timeline, "%lld %llu\n", (long long)bu_now_ms(), n);
	printf("received=%llu payload_bytes=%.0f\n", n,
	       n ? (double)atomic_load(&s.bytes) / (double)n : 0.0);
	fflush(stdout);
	rc = atomic_load(&s.state) == 2 ? 0 : 1;
out:
	if (client_made) {
		if (atomic_load(&s.state) >= 1) {
			MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
			d.timeout = 1000;
			MQTTAsync_disconnect(s.client, &d);
			bu_sleep_ms(50);
		}
		MQTTAsync_destroy(&s.client);
	}
	if (timeline != NULL)
		fclose(timeline);
	return rc;
}

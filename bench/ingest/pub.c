/*
 * bench-ingest-pub: the benchmark's devices. One Paho MQTTAsync client
 * (MQTT 5) publishes ~200-byte telemetry (gen.h) round-robin for N devices on
 * sc/v1/dev/{id}/telemetry, `ts` = the time of the send, in milliseconds.
 * --prefix changes the first three levels: the broker-alone phase publishes
 * on sc/b1/dev/..., which sc-ingest (subscribed to sc/v1/dev/#) does not get.
 *
 * Offered load: open loop at --rate messages/s (0: no pacing), held back only
 * by the in-flight window: at most --window messages handed to Paho and not
 * yet complete (QoS 1: PUBACK from the broker; QoS 0: written to the socket).
 * So the publisher runs as fast as the path in front of it takes messages and
 * never piles up an unbounded queue in its own memory. A rate the path cannot
 * take is not caught up later beyond one second's worth (a real fleet does
 * not send faster because the network was slow).
 *
 * Every 100 ms it appends "epoch_ms sent acked" to --timeline; at the end it
 * prints one summary line "key=value ..." on stdout for run.sh.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "benchutil.h"
#include "gen.h"
#include "mqtt.h"
#include "timeutil.h"

/* How long to wait for the last completions after the offered load ends. */
#define FINISH_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 10000
/* Most debt of a paced publisher that is caught up after a stall. */
#define MAX_DEBT_S 1.0

struct opts {
	const char *url, *timeline, *client_id, *prefix;
	long long qos, devices, metrics, seconds, count, rate, window, seq_start, start_at;
};

struct pub {
	MQTTAsync client;
	/* 0 connecting, 1 connected, -1 failed or lost */
	atomic_int state;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long long inflight;        /* under mu */
	atomic_ullong sent, acked, failed;
	unsigned long long bytes;  /* payload bytes sent; publishing thread only */
	atomic_int done;           /* the reporter thread may stop */
	FILE *timeline;
};

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	atomic_store(&((struct pub *)ctx)->state, 1);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	fprintf(stderr, "bench-pub: connect failed: rc=%d %s\n", r ? r->code : 0,
		r && r->message ? r->message : "");
	atomic_store(&((struct pub *)ctx)->state, -1);
}

static void on_conn_lost(void *ctx, char *cause)
{
	fprintf(stderr, "bench-pub: connection lost: %s\n", cause ? cause : "?");
	atomic_store(&((struct pub *)ctx)->state, -1);
}

/* Paho requires a message callback even of a client that subscribes nothing. */
static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
	(void)ctx;
	(void)tlen;
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void complete(struct pub *p, bool ok)
{
	atomic_fetch_add(ok ? &p->acked : &p->failed, 1);
	pthread_mutex_lock(&p->mu);
	p->inflight--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void on_sent(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	complete(ctx, true);
}

static void on_send_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	complete(ctx, false);
}

static void *reporter(void *arg)
{
	struct pub *p = arg;

	while (!atomic_load(&p->done)) {
		fprintf(p->timeline, "%lld %llu %llu\n", (long long)bu_now_ms(),
			(unsigned long long)atomic_load(&p->sent),
			(unsigned long long)atomic_load(&p->acked));
		fflush(p->timeline);
		bu_sleep_ms(100);
	}
	return NULL;
}

/* Waits until a slot of the window is free. false if the client failed. */
static bool window_wait(struct pub *p, long long window)
{
	pthread_mutex_lock(&p->mu);
	while (p->inflight >= window && atomic_load(&p->state) == 1 && !bu_stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
	}
	bool ok = p->inflight < window;
	if (ok)
		p->inflight++;
	pthread_mutex_unlock(&p->mu);
	return ok && atomic_load(&p->state) == 1;
}

static void window_undo(struct pub *p)
{
	pthread_mutex_lock(&p->mu);
	p->inflight--;
	pthread_mutex_unlock(&p->mu);
}

/* The offered load: returns 0, or -1 when the client failed. */
static int publish_all(struct pub *p, const struct opts *o, char (*topics)[128])
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	char payload[GEN_PAYLOAD_MAX];
	int64_t t0 = time_mono_us(), end_ms = bu_now_ms() + o->seconds * 1000;
	double interval_us = o->rate > 0 ? 1e6 / (double)o->rate : 0;
	double next_due = (double)t0;
	unsigned long long k = 0;

	ro.onSuccess5 = on_sent;
	ro.onFailure5 = on_send_fail;
	ro.context = p;
	while (!bu_stop && (o->count <= 0 || k < (unsigned long long)o->count)) {
		if (o->seconds > 0 && (k & 63) == 0 && bu_now_ms() >= end_ms)
			break;
		if (interval_us > 0) {
			int64_t now = time_mono_us();
			if ((double)now < next_due) {
				int64_t wait = (int64_t)(next_due - (double)now);
				/* Sleeping is coarse: send what is due, then sleep a while. */
				bu_sleep_ms(wait < 1000 ? 1 : wait / 1000);
				if (o->seconds > 0 && bu_now_ms() >= end_ms)
					break;
				continue;
			}
			if ((double)now - next_due > MAX_DEBT_S * 1e6)
				next_due = (double)now - MAX_DEBT_S * 1e6;
			next_due += interval_us;
		}
		if (!window_wait(p, o->window))
			return atomic_load(&p->state) == 1 ? 0 : -1;

		unsigned dev = (unsigned)(k % (unsigned long long)o->devices);
		uint64_t seq = (uint64_t)o->seq_start + k / (unsigned long long)o->devices;
		int len = gen_payload(payload, sizeof(payload), seq, time_now_us(),
				      (unsigned)o->metrics);
		if (len < 0) {
			fprintf(stderr, "bench-pub: payload does not fit\n");
			return -1;
		}
		MQTTAsync_message msg = MQTTAsync_message_initializer;
		msg.payload = payload;
		msg.payloadlen = len;
		msg.qos = (int)o->qos;
		int rc;
		/* Paho's own command queue may still be full for an instant. */
		while ((rc = MQTTAsync_sendMessage(p->client, topics[dev], &msg, &ro)) ==
			       MQTTASYNC_MAX_BUFFERED_MESSAGES && !bu_stop)
			bu_sleep_ms(1);
		if (rc != MQTTASYNC_SUCCESS) {
			window_undo(p);
			fprintf(stderr, "bench-pub: send failed: rc=%d\n", rc);
			return -1;
		}
		atomic_fetch_add(&p->sent, 1);
		p->bytes += (unsigned long long)len;
		k++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .url = "tcp://127.0.0.1:1883", .timeline = NULL, .client_id = NULL,
			  .prefix = "sc/v1/dev", .qos = 1, .devices = 1000, .metrics = 4,
			  .seconds = 20, .count = 0, .rate = 100000, .window = 1000,
			  .seq_start = 1, .start_at = 0 };
	const struct bu_opt opts[] = {
		{ "url", BU_STR, &o.url, "broker" },
		{ "qos", BU_INT, &o.qos, "0 or 1" },
		{ "devices", BU_INT, &o.devices, "devices, round-robin" },
		{ "metrics", BU_INT, &o.metrics, "metrics per message" },
		{ "seconds", BU_INT, &o.seconds, "length of the offered load (0: until --count)" },
		{ "count", BU_INT, &o.count, "stop after this many messages (0: no limit)" },
		{ "rate", BU_INT, &o.rate, "offered messages/s (0: unpaced)" },
		{ "window", BU_INT, &o.window, "messages in flight at most" },
		{ "seq-start", BU_INT, &o.seq_start, "seq of each device's first message" },
		{ "start-at", BU_INT, &o.start_at, "epoch ms to start at (0: at once)" },
		{ "timeline", BU_STR, &o.timeline, "file for 'epoch_ms sent acked' every 100 ms" },
		{ "client-id", BU_STR, &o.client_id, "MQTT client id (none: bench-pub-PID)" },
		{ "prefix", BU_STR, &o.prefix, "topics are PREFIX/{device}/telemetry" },
		{ NULL, BU_INT, NULL, NULL },
	};
	struct pub p = { .state = 0 };
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
	char (*topics)[128] = NULL, cid[64], host[128];
	pthread_t rep;
	bool client_made = false, rep_started = false;
	int rc = 1, port;

	int prc = bu_parse(argc, argv,
			   "Publishes benchmark telemetry as fast as the in-flight window lets it.", opts);
	if (prc != 0)
		return prc > 0 ? 0 : 2;
	if ((o.qos != 0 && o.qos != 1) || o.devices < 1 || o.metrics < 1 ||
	    o.metrics > GEN_MAX_METRICS || o.window < 1 || o.rate < 0 ||
	    (o.seconds <= 0 && o.count <= 0)) {
		fprintf(stderr, "bench-pub: bad option value (see --help)\n");
		return 2;
	}
	bu_signals();
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	p.timeline = fopen(o.timeline ? o.timeline : "/dev/null", "w");
	topics = calloc((size_t)o.devices, sizeof(*topics));
	if (p.timeline == NULL || topics == NULL) {
		fprintf(stderr, "bench-pub: cannot open timeline or out of memory\n");
		goto out;
	}
	for (long long i = 0; i < o.devices; i++) {
		char id[GEN_DEVICE_ID_LEN];
		gen_device_id((unsigned)i, id, sizeof(id));
		snprintf(topics[i], sizeof(topics[i]), "%s/%s/telemetry", o.prefix, id);
	}
	if (o.client_id != NULL)
		snprintf(cid, sizeof(cid), "%s", o.client_id);
	else
		snprintf(cid, sizeof(cid), "bench-pub-%ld", (long)getpid());

	/* Room for the whole window in Paho's queue (its default is 100). */
	co.maxBufferedMessages = (int)o.window + 100;
	if (MQTTAsync_createWithOptions(&p.client, o.url, cid, MQTTCLIENT_PERSISTENCE_NONE, NULL,
					&co) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "bench-pub: cannot create the client for %s\n", o.url);
		goto out;
	}
	client_made = true;
	MQTTAsync_setCallbacks(p.client, &p, on_conn_lost, on_message, NULL);
	co5.cleanstart = 1;
	co5.keepAliveInterval = 30;
	co5.onSuccess5 = on_connect_ok;
	co5.onFailure5 = on_connect_fail;
	co5.context = &p;
	if (MQTTAsync_connect(p.client, &co5) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "bench-pub: connect not started\n");
		goto out;
	}
	for (int64_t until = bu_now_ms() + CONNECT_TIMEOUT_MS;
	     atomic_load(&p.state) == 0 && bu_now_ms() < until && !bu_stop;)
		bu_sleep_ms(5);
	if (atomic_load(&p.state) != 1) {
		fprintf(stderr, "bench-pub: not connected to %s\n", o.url);
		goto out;
	}
	/* As every service does (measured-facts: Nagle costs ~30 ms per hop). */
	port = bu_url_host_port(o.url, host, sizeof(host));
	if (port <= 0 || mq_set_nodelay(host, port) < 1)
		fprintf(stderr, "bench-pub: warning: TCP_NODELAY not set\n");

	if (pthread_create(&rep, NULL, reporter, &p) != 0)
		goto out;
	rep_started = true;
	if (o.start_at > 0)
		bu_sleep_until_ms(o.start_at);
	int64_t first_ms = bu_now_ms();
	int prc2 = publish_all(&p, &o, topics);
	int64_t last_ms = bu_now_ms();

	/* Let what is in flight complete, so "acked" is final. */
	for (int64_t until = bu_now_ms() + FINISH_TIMEOUT_MS; bu_now_ms() < until;) {
		pthread_mutex_lock(&p.mu);
		long long left = p.inflight;
		pthread_mutex_unlock(&p.mu);
		if (left == 0 || atomic_load(&p.state) != 1)
			break;
		bu_sleep_ms(5);
	}
	unsigned long long sent = atomic_load(&p.sent);
	printf("sent=%llu acked=%llu failed=%llu payload_bytes=%.0f first_ms=%lld last_ms=%lld\n",
	       sent, (unsigned long long)atomic_load(&p.acked),
	       (unsigned long long)atomic_load(&p.failed),
	       sent ? (double)p.bytes / (double)sent : 0.0, (long long)first_ms, (long long)last_ms);
	fflush(stdout);
	rc = prc2 == 0 && atomic_load(&p.state) == 1 ? 0 : 1;
out:
	if (rep_started) {
		atomic_store(&p.done, 1);
		pthread_join(rep, NULL);
	}
	if (client_made) {
		if (atomic_load(&p.state) == 1) {
			MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
			d.timeout = 1000;
			MQTTAsync_disconnect(p.client, &d);
			bu_sleep_ms(50);
		}
		MQTTAsync_destroy(&p.client);
	}
	if (p.timeline != NULL)
		fclose(p.timeline);
	free(topics);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	return rc;
}

/*
 * Nothing lost, nothing doubled (issue 3): a stream of tens of thousands of
 * QoS 1 telemetry messages goes into sc-ingest while the test kills it with
 * kill -9 and starts it again, restarts mosquitto and restarts PostgreSQL.
 * Every message ends up stored exactly once, and device_state, which
 * sc-ingest writes on its own cadence, ends up naming each device's newest
 * message (the states the kill -9 lost are rebuilt from telemetry). Then two
 * sc-ingest instances on the shared subscription split a second stream,
 * again exactly once.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* device_state of D1..D3 names each one's newest stored message. */
static const char state_agrees[] =
	"select count(*) from device_state s join (select device_id,"
	" (array_agg(seq order by ts desc, seq desc))[1] as seq, max(received_at) as seen"
	" from telemetry group by device_id) t using (device_id)"
	" where s.last_seq = t.seq and s.last_seen_at = t.seen";

#define STREAM 24000
#define SECOND_STREAM 8000

struct publisher {
	struct harness *h;
	const char *client;
	long first, count;      /* seq range, spread over D1..D3 */
	atomic_long sent;
	atomic_int failed;
};

/* Publishes the range; a publish that fails (broker restarting) is retried
 * on a new connection until it goes through: the sender's side of the
 * bargain (a repeat is harmless, de-duplication makes it one row). */
static void *publish_stream(void *arg)
{
	struct publisher *p = arg;
	static const char *const devices[] = { "D1", "D2", "D3" };
	char topic[64], payload[256], ts[40];
	struct harness_mqtt *m = NULL;
	for (long i = 0; i < p->count; i++) {
		long seq = p->first + i;
		const char *dev = devices[seq % 3];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(topic, sizeof(topic), "sc/v1/dev/%s/telemetry", dev);
		snprintf(payload, sizeof(payload),
			 "{\"seq\": %ld, \"ts\": \"%s\", \"metrics\": {\"temp_c\": %.1f, \"load_pct\": %ld}}",
			 seq, ts, 40.0 + (double)(seq % 30), seq % 100);
		for (int tries = 0;; tries++) {
			if (m == NULL)
				m = harness_mqtt_connect(p->h, p->client);
			if (m != NULL && harness_mqtt_publish(m, topic, payload, 1) == 0)
				break;
			harness_mqtt_free(m);
			m = NULL;
			if (tries > 600) {
				atomic_store(&p->failed, 1);
				goto out;
			}
			usleep(100000);
		}
		atomic_fetch_add(&p->sent, 1);
	}
out:
	harness_mqtt_free(m);
	return NULL;
}

static long stored(struct harness *h, long first, long count)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "select count(*) from telemetry where seq between %ld and %ld", first,
		 first + count - 1);
	return harness_sql_long(h, sql);
}

/* Waits until at least n rows of the range are stored (or timeout). */
static bool wait_stored(struct harness *h, long first, long count, long n, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		long v = stored(h, first, count);
		if (v >= n)
			return true;
		usleep(100000);
	}
	fprintf(stderr, "stored %ld of %ld wanted\n", stored(h, first, count), n);
	return false;
}

int main(void)
{
	struct harness *h = NULL;
	pthread_t th;
	bool started = false;
	int rc = 1;
	const char *env_a[] = { "SC_INSTANCE=a", NULL };
	/* States held in memory for a minute: the kill -9 surely loses some. */
	const char *env_a_slow[] = { "SC_INSTANCE=a", "SC_INGEST_STATE_MS=60000", NULL };
	char sql[256];
	long due;
	const char *env_b[] = { "SC_INSTANCE=b", NULL };
	pid_t a = -1, b = -1;
	static struct publisher p1 = { .client = "test-pub-1", .first = 1, .count = STREAM };
	static struct publisher p2 = { .client = "test-pub-2", .first = STREAM + 1,
				       .count = SECOND_STREAM };

	h = fixture_start(fixture_country);
	CHECK(h != NULL);
	a = harness_spawn(h, "sc-ingest", env_a_slow, NULL);
	CHECK(a > 0);
	/* Subscribed before the stream starts (its session then queues). */
	CHECK(harness_wait_sql(h, "select count(*) from device", 3, 5000));
	usleep(1500000);

	p1.h = h;
	CHECK(pthread_create(&th, NULL, publish_stream, &p1) == 0);
	started = true;

	/* kill -9 in mid-stream, then start it again. */
	CHECK(wait_stored(h, 1, STREAM, 3000, 60000));
	CHECK(harness_kill9(h, a) == 0);
	/* Committed batches whose device states died with the process. */
	due = harness_sql_long(h, "select coalesce(max(batch_id), 0) from device_state_due");
	CHECK(due > 0);
	usleep(500000);
	a = harness_spawn(h, "sc-ingest", env_a, NULL);
	CHECK(a > 0);
	/* The restarted instance rebuilds them from telemetry at once. */
	snprintf(sql, sizeof(sql), "select count(*) from device_state_due where batch_id <= %ld", due);
	CHECK(harness_wait_sql(h, sql, 0, 15000));
	CHECK(fixture_wait_metric(h, a, "sc_ingest_state_repaired_batches_total", 1, 5000) >= 1);

	/* Broker restart in mid-stream. */
	CHECK(wait_stored(h, 1, STREAM, 9000, 60000));
	CHECK(harness_restart_broker(h) == 0);

	/* Database restart in mid-stream. */
	CHECK(wait_stored(h, 1, STREAM, 15000, 60000));
	CHECK(harness_restart_pg(h) == 0);

	pthread_join(th, NULL);
	started = false;
	CHECK(atomic_load(&p1.failed) == 0);
	CHECK(atomic_load(&p1.sent) == STREAM);
	CHECK(wait_stored(h, 1, STREAM, STREAM, 120000));
	usleep(1000000);
	CHECK(stored(h, 1, STREAM) == STREAM);   /* every message, exactly once */
	CHECK(harness_wait_sql(h, state_agrees, 3, 15000));

	/* Two instances on one shared subscription split the next stream. */
	b = harness_spawn(h, "sc-ingest", env_b, NULL);
	CHECK(b > 0);
	usleep(1500000);
	p2.h = h;
	publish_stream(&p2);
	CHECK(atomic_load(&p2.failed) == 0);
	CHECK(wait_stored(h, p2.first, SECOND_STREAM, SECOND_STREAM, 60000));
	usleep(500000);
	CHECK(stored(h, p2.first, SECOND_STREAM) == SECOND_STREAM);
	/* Both took a share of it. */
	const char *series = "sc_ingest_messages_total{kind=\"telemetry\",result=\"stored\"}";
	double sa = fixture_metric(h, a, series), sb = fixture_metric(h, b, series);
	fprintf(stderr, "second stream: instance a stored %.0f, b stored %.0f\n", sa, sb);
	CHECK(sb > 0);
	CHECK(sa > 0);
	CHECK(harness_stop_program(h, a, SIGTERM) == 0);
	CHECK(harness_stop_program(h, b, SIGTERM) == 0);
	a = b = -1;
	/* Stopping wrote every folded state: nothing left due. */
	CHECK(harness_sql_long(h, "select count(*) from device_state_due") == 0);
	CHECK(harness_sql_long(h, state_agrees) == 3);
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	if (started)
		pthread_join(th, NULL);
	harness_stop(h);
	return rc;
}

/*
 * bench-alertd-probe: over-threshold -> ticket committed latency of the
 * whole path (MQTT -> sc-ingest -> PostgreSQL -> sc-alertd -> ticket).
 *
 * For each probe it takes the next probe device (BP0001 ... --devices,
 * devices no other publisher sends for), publishes one QoS 1 telemetry
 * message whose --metric is --value (over the threshold of a for_s 0 rule
 * run.sh imports), and waits for the ticket: sc_ticket_open sends NOTIFY
 * ticket_new in the transaction that opens it, delivered once it
 * committed; the ticket's device tells which probe it answers. Latency =
 * the notification's arrival - the moment just before the publish (wall
 * clock). Then it publishes --clear-value for the device (the alert
 * clears, its ticket with it) so the next probe of that device raises anew,
 * and waits --interval-ms.
 *
 * Prints "probes=N answered=N p50_ms=.. p99_ms=.. max_ms=.." on stdout.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <MQTTClient.h>
#include <libpq-fe.h>

#include "benchutil.h"
#include "timeutil.h"

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* Sends one QoS 1 message; *tok is its token (the PUBACK is waited for
 * later, with MQTTClient_waitForCompletion, which polls in 100 ms steps:
 * waiting for it first would add that to every latency). */
static int publish(MQTTClient c, const char *device, long long seq, const char *metric,
		   long long value, MQTTClient_deliveryToken *tok)
{
	char topic[128], payload[512], ts[TIME_RFC3339_LEN];
	MQTTClient_message m = MQTTClient_message_initializer;
	int n;

	time_format_rfc3339(bu_now_ms() * 1000, ts, sizeof(ts));
	snprintf(topic, sizeof(topic), "sc/v1/dev/%s/telemetry", device);
	n = snprintf(payload, sizeof(payload),
		     "{\"seq\": %lld, \"ts\": \"%s\", \"metrics\": {\"%s\": %lld}}", seq, ts, metric,
		     value);
	m.payload = payload;
	m.payloadlen = n;
	m.qos = 1;
	return MQTTClient_publishMessage(c, topic, &m, tok) == MQTTCLIENT_SUCCESS ? 0 : -1;
}

/* Waits until a ticket of `device` is announced; its arrival time, or -1
 * after timeout_ms. */
static int64_t wait_ticket(PGconn *pg, const char *device, int timeout_ms)
{
	int64_t end = bu_now_ms() + timeout_ms;

	while (!bu_stop) {
		PGnotify *n;
		int64_t left = end - bu_now_ms();
		struct pollfd p = { PQsocket(pg), POLLIN, 0 };

		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)(left > 200 ? 200 : left)) < 0 || !PQconsumeInput(pg))
			return -1;
		while ((n = PQnotifies(pg)) != NULL) {
			int64_t t = bu_now_ms();
			const char *params[1] = { n->extra };
			PGresult *r = PQexecParams(pg, "SELECT device_id FROM ticket WHERE id = $1", 1,
						   NULL, params, NULL, NULL, 0);
			bool ours = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
				    strcmp(PQgetvalue(r, 0, 0), device) == 0;

			PQclear(r);
			PQfreemem(n);
			if (ours)
				return t;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *url = "tcp://127.0.0.1:1883", *dsn = "", *metric = "winding_temp_c";
	long long devices = 200, count = 200, interval = 50, value = 2000000, clear = 10;
	long long seq0 = 1, timeout = 30000;
	const struct bu_opt opts[] = {
		{ "url", BU_STR, &url, "MQTT broker" },
		{ "dsn", BU_STR, &dsn, "libpq connection string" },
		{ "devices", BU_INT, &devices, "probe devices BP0001..." },
		{ "count", BU_INT, &count, "probes" },
		{ "interval-ms", BU_INT, &interval, "pause between probes" },
		{ "metric", BU_STR, &metric, "metric of the for_s 0 rule" },
		{ "value", BU_INT, &value, "over-threshold value" },
		{ "clear-value", BU_INT, &clear, "value that clears" },
		{ "seq-start", BU_INT, &seq0, "first seq (2 per probe)" },
		{ "timeout-ms", BU_INT, &timeout, "longest wait for one ticket" },
		{ NULL, BU_INT, NULL, NULL },
	};
	MQTTClient c = NULL;
	MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
	PGconn *pg = NULL;
	PGresult *r = NULL;
	long long *lat = NULL, answered = 0;
	int rc = bu_parse(argc, argv, "bench-alertd-probe: over-threshold -> ticket latency", opts);

	if (rc != 0)
		return rc < 0 ? 2 : 0;
	bu_signals();
	lat = calloc((size_t)(count > 0 ? count : 1), sizeof(*lat));
	pg = PQconnectdb(dsn);
	if (lat == NULL || PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "bench-alertd-probe: database: %s", PQerrorMessage(pg));
		rc = 1;
		goto out;
	}
	r = PQexec(pg, "LISTEN ticket_new");
	PQclear(r);
	if (MQTTClient_create(&c, url, "bench-alertd-probe", MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
	    MQTTCLIENT_SUCCESS) {
		rc = 1;
		goto out;
	}
	co.cleansession = 1;
	co.keepAliveInterval = 30;
	if (MQTTClient_connect(c, &co) != MQTTCLIENT_SUCCESS) {
		fprintf(stderr, "bench-alertd-probe: cannot connect to %s\n", url);
		rc = 1;
		goto out;
	}
	for (long long i = 0; i < count && !bu_stop; i++) {
		char device[16];
		long long seq = seq0 + 2 * (i / devices);
		int64_t t0, t1;

		snprintf(device, sizeof(device), "BP%04lld", i % devices + 1);
		MQTTClient_deliveryToken tok;

		t0 = bu_now_ms();
		if (publish(c, device, seq, metric, value, &tok) != 0) {
			fprintf(stderr, "bench-alertd-probe: publish failed\n");
			rc = 1;
			goto out;
		}
		t1 = wait_ticket(pg, device, (int)timeout);
		if (MQTTClient_waitForCompletion(c, tok, 10000) != MQTTCLIENT_SUCCESS) {
			fprintf(stderr, "bench-alertd-probe: publish not acknowledged\n");
			rc = 1;
			goto out;
		}
		if (t1 >= 0)
			lat[answered++] = t1 - t0;
		else
			fprintf(stderr, "bench-alertd-probe: no ticket for %s within %lld ms\n", device,
				timeout);
		if (publish(c, device, seq + 1, metric, clear, &tok) != 0 ||
		    MQTTClient_waitForCompletion(c, tok, 10000) != MQTTCLIENT_SUCCESS) {
			rc = 1;
			goto out;
		}
		bu_sleep_ms(interval);
	}
	qsort(lat, (size_t)answered, sizeof(*lat), cmp_ll);
	if (answered > 0)
		printf("probes=%lld answered=%lld p50_ms=%lld p99_ms=%lld max_ms=%lld\n", count,
		       answered, lat[(answered - 1) / 2], lat[(answered * 99 + 99) / 100 - 1],
		       lat[answered - 1]);
	else
		printf("probes=%lld answered=0 p50_ms=n/a p99_ms=n/a max_ms=n/a\n", count);
out:
	if (c != NULL) {
		MQTTClient_disconnect(c, 1000);
		MQTTClient_destroy(&c);
	}
	PQfinish(pg);
	free(lat);
	return rc;
}

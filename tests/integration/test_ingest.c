/*
 * sc-ingest against a real broker and database: valid telemetry is stored
 * once, every kind of bad input is rejected with its contract reason (kept in
 * `rejected` and announced on sc/v1/rejected) while the valid messages
 * around it are stored, requests become tickets with their status announced,
 * and SIGTERM ends the service with status 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

struct bad {
	const char *topic;
	const char *payload;
	const char *reason;
};

/* Timestamps are made relative to now so the future check is exercised. */
static char ts_now[40], ts_future[40];

static void make_times(void)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts_now, sizeof(ts_now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	t += 3600;
	gmtime_r(&t, &tm);
	strftime(ts_future, sizeof(ts_future), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int publishf(struct harness_mqtt *m, const char *topic, const char *fmt, const char *ts,
		    long seq)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), fmt, seq, ts);
	return harness_mqtt_publish(m, topic, buf, 1);
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *dev = NULL, *watch = NULL;
	char *p = NULL;
	char big[70 * 1024];
	int rc = 1;
	pid_t ingest;

	make_times();
	h = fixture_start(fixture_country);
	CHECK(h != NULL);
	ingest = harness_spawn(h, "sc-ingest", NULL, NULL);
	CHECK(ingest > 0);
	watch = harness_mqtt_connect(h, "test-watch");
	CHECK(watch != NULL);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/rejected") == 0);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/requests/+/status") == 0);
	dev = harness_mqtt_connect(h, "test-dev");
	CHECK(dev != NULL);

	/* A valid message, sent twice (a redelivery): stored once. */
	const char *tele = "{\"seq\": %ld, \"ts\": \"%s\", \"run_hours\": 100.5, "
			   "\"metrics\": {\"temp_c\": 71.2, \"load_pct\": 64}}";
	CHECK(publishf(dev, "sc/v1/dev/D1/telemetry", tele, ts_now, 1) == 0);
	CHECK(publishf(dev, "sc/v1/dev/D1/telemetry", tele, ts_now, 1) == 0);
	CHECK(harness_wait_sql(h, "select count(*) from telemetry where device_id = 'D1'", 1, 15000));

	/* Each bad message is rejected with its own reason. */
	const struct bad bad[] = {
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": 2, \"ts\": ", "bad_json" },
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": 3, \"ts\": \"2026-11-23T08:00:00Z\", \"metrics\": {\"t\": NaN}}", "bad_json" },
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": 4, \"ts\": \"2026-11-23T08:00:00Z\", \"metrics\": {}}", "schema" },
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": -5, \"ts\": \"2026-11-23T08:00:00Z\", \"metrics\": {\"a\": 1}}", "schema" },
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": 6, \"ts\": \"2026-11-23T08:00:00Z\", \"metrics\": {\"Temp\": 1}}", "bad_metric" },
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": 7, \"ts\": \"2026-11-23T08:00:00Z\", \"metrics\": {\"t\": 1e999}}", "bad_metric" },
		{ "sc/v1/dev/D1/telemetry", "{\"seq\": 8, \"ts\": \"yesterday\", \"metrics\": {\"t\": 1}}", "bad_timestamp" },
		{ "sc/v1/dev/D9/telemetry", "{\"seq\": 9, \"ts\": \"2026-11-23T08:00:00Z\", \"metrics\": {\"t\": 1}}", "unknown_device" },
		{ "sc/v1/dev/D1/bogus", "{}", "bad_topic" },
		{ "sc/v1/dev/D1/alarm", "{\"seq\": 10, \"ts\": \"2026-11-23T08:00:00Z\", \"code\": \"E201\", \"state\": \"on\"}", "schema" },
		{ "sc/v1/requests/new", "{\"request_id\": \"R-X1\", \"channel\": \"fax\"}", "schema" },
		{ "sc/v1/requests/new", "{\"request_id\": \"R-X2\", \"channel\": \"web\", \"customer_id\": \"C9\", \"site_id\": \"S1\", \"category\": \"fault\", \"ts\": \"2026-11-23T08:00:00Z\"}", "unknown_customer" },
		{ "sc/v1/requests/new", "{\"request_id\": \"R-X3\", \"channel\": \"web\", \"customer_id\": \"C1\", \"site_id\": \"S9\", \"category\": \"fault\", \"ts\": \"2026-11-23T08:00:00Z\"}", "unknown_site" },
		{ "sc/v1/requests/new", "{\"request_id\": \"R-X4\", \"channel\": \"web\", \"customer_id\": \"C1\", \"site_id\": \"S2\", \"category\": \"fault\", \"ts\": \"2026-11-23T08:00:00Z\"}", "site_mismatch" },
	};
	size_t nbad = sizeof(bad) / sizeof(bad[0]);
	for (size_t i = 0; i < nbad; i++) {
		CHECK(harness_mqtt_publish(dev, bad[i].topic, bad[i].payload, 1) == 0);
		char needle[64];
		snprintf(needle, sizeof(needle), "\"reason\": \"%s\"", bad[i].reason);
		p = fixture_wait_payload(watch, "sc/v1/rejected", bad[i].reason, 15000);
		if (p == NULL)
			fprintf(stderr, "no rejection %s for %s\n", bad[i].reason, bad[i].payload);
		CHECK(p != NULL);
		CHECK(strstr(p, bad[i].topic) != NULL);
		free(p);
		p = NULL;
	}
	/* A ts an hour ahead, and a payload over 64 KiB. */
	CHECK(publishf(dev, "sc/v1/dev/D1/telemetry", tele, ts_future, 11) == 0);
	p = fixture_wait_payload(watch, "sc/v1/rejected", "bad_timestamp", 15000);
	CHECK(p != NULL);
	free(p);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"seq\": 12}", 11);
	CHECK(harness_mqtt_publish_raw(dev, "sc/v1/dev/D1/telemetry", big, sizeof(big), 1, false) == 0);
	p = fixture_wait_payload(watch, "sc/v1/rejected", "too_large", 15000);
	CHECK(p != NULL);
	free(p);
	p = NULL;
	CHECK(harness_sql_long(h, "select count(*) from rejected") == (long)nbad + 2);

	/* The service still runs and stores what is valid. */
	CHECK(publishf(dev, "sc/v1/dev/D1/telemetry", tele, ts_now, 13) == 0);
	CHECK(harness_wait_sql(h, "select count(*) from telemetry where device_id = 'D1'", 2, 15000));
	/* device_state follows on its own cadence (SC_INGEST_STATE_MS, 1 s). */
	CHECK(harness_wait_sql(h, "select count(*) from device_state where device_id = 'D1' "
				  "and last_seq = 13 and run_hours = 100.5 "
				  "and (metrics->>'temp_c')::float8 = 71.2", 1, 10000));
	CHECK(harness_wait_sql(h, "select count(*) from device_state_due", 0, 10000));
	CHECK(fixture_wait_metric(h, ingest, "sc_ingest_state_rows_total", 1, 5000) >= 1);

	/* A batch whose states were never written (its sc-ingest died first),
	 * through the statement sc-ingest sends (services/ingest/params.c): its
	 * telemetry is stored and the batch is due. The repair rebuilds D3's
	 * state from those rows: newest seq, ts and run hours, last value of
	 * each metric. An older state applied afterwards changes nothing. */
	const char *lost = "select (sc_ingest_batch('{D3,D3,D3}', '{30,31,29}', "
		"'{1795000000000000,1795000001000000,1794000000000000}', "
		"'{1795000002000000,1795000003000000,1795000004000000}', "
		"'{7.5,NULL,9.5}', '{\"{\\\"a\\\": 1, \\\"b\\\": 2}\",\"{\\\"a\\\": 3}\",\"{\\\"c\\\": 4}\"}', "
		"'{\"alarms\": [], \"rejects\": []}')->>'telemetry')::int";
	CHECK(harness_sql_long(h, lost) == 3);
	CHECK(harness_sql_long(h, "select count(*) from device_state_due d join telemetry t "
				  "on t.batch_id = d.batch_id where t.device_id = 'D3'") == 3);
	CHECK(harness_sql_long(h, "select count(*) from device_state where device_id = 'D3'") == 0);
	/* Not yet old enough for a repair with a 1-hour age. */
	CHECK(harness_sql_long(h, "select sc_device_state_repair(3600, NULL, 10)") == 0);
	CHECK(harness_sql_exec(h, "update device_state_due set committed_at = now() - interval '2 hours'") == 0);
	CHECK(harness_sql_long(h, "select sc_device_state_repair(3600, NULL, 10)") == 1);
	const char *d3 = "select count(*) from device_state where device_id = 'D3' "
			 "and last_seq = 31 and last_ts = to_timestamp(1795000001) "
			 "and last_seen_at = to_timestamp(1795000004) and run_hours = 7.5 "
			 "and metrics = '{\"a\": 3, \"b\": 2, \"c\": 4}'";
	CHECK(harness_sql_long(h, d3) == 1);
	CHECK(harness_sql_long(h, "select count(*) from device_state_due") == 0);
	CHECK(harness_sql_long(h, "select sc_device_state_apply('{D3}', '{29}', '{1794000000000000}', "
				  "'{1}', '{1.0}', '{\"{\\\"a\\\": 0, \\\"d\\\": 5}\"}', '{}')") == 1);
	CHECK(harness_sql_long(h, "select count(*) from device_state where device_id = 'D3' "
				  "and last_seq = 31 and run_hours = 7.5 "
				  "and metrics = '{\"a\": 3, \"b\": 2, \"c\": 4, \"d\": 5}'") == 1);
	/* A device no longer in the registry is skipped, not an error. */
	CHECK(harness_sql_long(h, "select sc_device_state_apply('{NOPE}', '{1}', '{1}', '{1}', "
				  "'{NULL}', '{\"{}\"}', '{}')") == 0);

	/* Two messages of one device in one batch through the 017 form (kept
	 * for an older sc-ingest during an upgrade), which writes device_state
	 * itself: both stored; device_state takes the newest seq, ts and run
	 * hours and the last value of each metric. */
	const char *two = "select (sc_ingest_batch('{D2,D2}', '{20,21}', "
		"'{1795000000000000,1795000001000000}', '{1795000002000000,1795000003000000}', "
		"'{7.5,NULL}', '{\"{\\\"a\\\": 1, \\\"b\\\": 2}\",\"{\\\"a\\\": 3}\"}', "
		"'{D2}', '{21}', '{1795000001000000}', '{1795000003000000}', '{7.5}', '{1}', '{2}', "
		"'{\"alarms\": [], \"rejects\": []}')->>'telemetry')::int";
	CHECK(harness_sql_long(h, two) == 2);
	CHECK(harness_sql_long(h, "select count(*) from device_state where device_id = 'D2' "
				  "and last_seq = 21 and metrics = '{\"a\": 3, \"b\": 2}' "
				  "and run_hours = 7.5 and last_ts = to_timestamp(1795000001) "
				  "and last_seen_at = to_timestamp(1795000003)") == 1);
	/* The same batch again (a redelivery): stored once, counted as 0 new. */
	CHECK(harness_sql_long(h, two) == 0);
	CHECK(harness_sql_long(h, "select count(*) from telemetry where device_id = 'D2'") == 2);

	/* A request becomes a ticket; the front desk hears its id and state. */
	const char *req = "{\"request_id\": \"HL-1\", \"channel\": \"hotline\", \"customer_id\": \"C1\", "
			  "\"site_id\": \"S1\", \"device_id\": \"D2\", \"category\": \"fault\", "
			  "\"severity\": \"major\", \"description\": \"relay trips\", "
			  "\"contact\": {\"name\": \"Li\"}, \"ts\": \"2026-11-23T08:01:00Z\"}";
	CHECK(harness_mqtt_publish(dev, "sc/v1/requests/new", req, 1) == 0);
	p = fixture_wait_payload(watch, "sc/v1/requests/HL-1/status", "\"ticket_id\"", 15000);
	CHECK(p != NULL);
	CHECK(strstr(p, "\"state\": \"new\"") != NULL);
	free(p);
	/* The same request again: no second ticket, its status again. */
	CHECK(harness_mqtt_publish(dev, "sc/v1/requests/new", req, 1) == 0);
	p = fixture_wait_payload(watch, "sc/v1/requests/HL-1/status", "\"ticket_id\"", 15000);
	CHECK(p != NULL);
	free(p);
	p = NULL;
	CHECK(harness_sql_long(h, "select count(*) from ticket") == 1);
	CHECK(harness_sql_long(h, "select count(*) from ticket where skill = 'relay_protection' "
				  "and min_grade = 2 and tier = 'vip' and province = 'HA'") == 1);

	/* One problem, one ticket: a web request about the same site and kind
	 * of problem is linked; the caller hears the existing ticket. */
	CHECK(harness_mqtt_publish(dev, "sc/v1/requests/new",
		"{\"request_id\": \"WEB-2\", \"channel\": \"web\", \"customer_id\": \"C1\", "
		"\"site_id\": \"S1\", \"category\": \"fault\", \"ts\": \"2026-11-23T08:02:00Z\"}", 1) == 0);
	p = fixture_wait_payload(watch, "sc/v1/requests/WEB-2/status", "\"ticket_id\"", 15000);
	CHECK(p != NULL);
	CHECK(harness_sql_long(h, "select count(*) from ticket") == 1);
	CHECK(harness_sql_long(h, "select count(*) from request where request_id = 'WEB-2' and linked "
				  "and ticket_id = (select ticket_id from request where request_id = 'HL-1')") == 1);
	free(p);
	/* A complaint is never folded away: its own ticket, linked to the open one. */
	CHECK(harness_mqtt_publish(dev, "sc/v1/requests/new",
		"{\"request_id\": \"APP-3\", \"channel\": \"app\", \"customer_id\": \"C1\", "
		"\"site_id\": \"S1\", \"device_id\": \"D2\", \"category\": \"complaint\", "
		"\"ts\": \"2026-11-23T08:03:00Z\"}", 1) == 0);
	p = fixture_wait_payload(watch, "sc/v1/requests/APP-3/status", "\"parent_ticket_id\"", 15000);
	CHECK(p != NULL);
	free(p);
	p = NULL;
	CHECK(harness_sql_long(h, "select count(*) from ticket where category = 'complaint' and "
				  "parent_ticket_id = (select ticket_id from request where request_id = 'HL-1')") == 1);

	/* Telemetry is partitioned by day; retention drops whole old days. */
	CHECK(harness_sql_long(h, "select count(*) from pg_inherits where inhparent = 'telemetry'::regclass") >= 5);
	CHECK(harness_sql_exec(h,
		"create table telemetry_p20200101 partition of telemetry "
		"for values from ('2020-01-01 00:00+00') to ('2020-01-02 00:00+00'); "
		"insert into telemetry values ('D1', 900, '2020-01-01 12:00+00', now(), null, '{}', 0), "
		"('D1', 901, '2021-06-01 12:00+00', now(), null, '{}', 0)") == 0);
	CHECK(harness_sql_long(h, "select count(*) from telemetry_default where seq = 901") == 1);
	CHECK(harness_sql_long(h, "select sc_telemetry_retention(90)") == 1);
	CHECK(harness_sql_long(h, "select count(*) from pg_class where relname = 'telemetry_p20200101'") == 0);
	CHECK(harness_sql_long(h, "select count(*) from telemetry where seq in (900, 901)") == 0);
	CHECK(harness_sql_long(h, "select count(*) from telemetry where device_id = 'D1'") == 2);

	/* Rejections are counted by reason. */
	CHECK(fixture_wait_metric(h, ingest,
				  "sc_ingest_rejected_total{reason=\"bad_json\"}",
				  2, 5000) == 2);
	CHECK(fixture_wait_metric(h, ingest,
				  "sc_ingest_rejected_total{reason=\"unknown_customer\"}",
				  1, 5000) == 1);
	CHECK(fixture_wait_metric(h, ingest,
				  "sc_ingest_messages_total{kind=\"telemetry\",result=\"duplicate\"}",
				  1, 5000) == 1);

	/* Clean stop. */
	CHECK(harness_stop_program(h, ingest, SIGTERM) == 0);
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	harness_mqtt_free(dev);
	harness_mqtt_free(watch);
	harness_stop(h);
	return rc;
}

/*
 * sc-sim against a real broker and database with the demo country imported
 * and no service running: it publishes telemetry (increasing seq per device,
 * metrics named after the model's rules, load_pct), customer requests with
 * SIM-{seed}-{n} ids, answers an offer that the test publishes with accept,
 * en_route, on_site and resolved in that order (the engineer's status going
 * busy and back to available), prints its summary, and ends by itself after
 * --duration with status 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "fixture.h"

#ifndef SC_SOURCE_DIR
#error "SC_SOURCE_DIR must be defined (the repository, for deploy/demo/country.json)"
#endif

#define DEMO_IMPORT SC_SOURCE_DIR "/deploy/demo/country.json"
#define SEED "7"

/* Reads a whole file; caller frees. NULL on failure. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f == NULL) {
		fprintf(stderr, "test_sim: cannot open %s\n", path);
		return NULL;
	}
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

static void iso_in(char *buf, size_t len, int seconds)
{
	time_t t = time(NULL) + seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Takes the next event of the engineer's events topic and checks its kind. */
static int expect_event(struct harness_mqtt *m, const char *event, const char *order_id)
{
	char needle[64];
	int rc = -1;
	cJSON *j = NULL;
	char *p = harness_mqtt_wait(m, "sc/v1/engineers/E001/events", 10000, NULL);
	CHECK(p != NULL);
	j = cJSON_Parse(p);
	CHECK(j != NULL);
	snprintf(needle, sizeof(needle), "\"event\":\"%s\"", event);
	if (strstr(p, needle) == NULL)
		fprintf(stderr, "test_sim: expected %s, got %s\n", event, p);
	CHECK(strstr(p, needle) != NULL);
	CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "order_id")));
	CHECK(strcmp(cJSON_GetObjectItem(j, "order_id")->valuestring, order_id) == 0);
	CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "ts")));
	if (strcmp(event, "resolved") == 0)
		CHECK(cJSON_IsBool(cJSON_GetObjectItem(j, "first_time_fix")));
	else
		CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "eta")));
	rc = 0;
out:
	cJSON_Delete(j);
	free(p);
	return rc;
}

/*
 * Takes every telemetry message buffered; checks each is well formed and
 * that seq grows per device. Returns how many there were, -1 on a bad one.
 */
static long take_telemetry(struct harness_mqtt *m, long *devices_seen, bool *pr900_ok)
{
	long n = 0, rc = -1;
	char *p = NULL, *topic = NULL;
	cJSON *j = NULL;
	/* Newest seq of D0001..D0040 (the demo's ids). */
	double last[41] = { 0 };
	*devices_seen = 0;
	*pr900_ok = false;
	while ((p = harness_mqtt_wait(m, "/telemetry", 200, &topic)) != NULL) {
		int dev = 0;
		j = cJSON_Parse(p);
		CHECK(j != NULL);
		const cJSON *seq = cJSON_GetObjectItem(j, "seq");
		const cJSON *metrics = cJSON_GetObjectItem(j, "metrics");
		CHECK(cJSON_IsNumber(seq) && seq->valuedouble > 1e12); /* clock-based start */
		CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "ts")));
		CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "run_hours")));
		CHECK(cJSON_IsObject(metrics));
		CHECK(cJSON_IsNumber(cJSON_GetObjectItem(metrics, "load_pct")));
		CHECK(sscanf(topic, "sc/v1/dev/D%4d/telemetry", &dev) == 1 && dev >= 1 && dev <= 40);
		if (last[dev] == 0)
			(*devices_seen)++;
		CHECK(seq->valuedouble > last[dev]);
		last[dev] = seq->valuedouble;
		/* D0001 is an XJ-PR900: rules on temp_c, dc_supply_v, diff_current_pct. */
		if (dev == 1 && cJSON_IsNumber(cJSON_GetObjectItem(metrics, "temp_c")) &&
		    cJSON_IsNumber(cJSON_GetObjectItem(metrics, "dc_supply_v")) &&
		    cJSON_IsNumber(cJSON_GetObjectItem(metrics, "diff_current_pct")))
			*pr900_ok = true;
		cJSON_Delete(j);
		j = NULL;
		free(p);
		free(topic);
		p = topic = NULL;
		n++;
	}
	rc = n;
out:
	cJSON_Delete(j);
	free(p);
	free(topic);
	return rc;
}

int main(void)
{
	struct harness *h = NULL;
	struct harness_mqtt *watch = NULL, *desk = NULL;
	char *country = NULL, *p = NULL, *log = NULL;
	char offer[1024], expires[40], path[512];
	int rc = 1;
	long devices = 0, telemetry = 0, requests = 0;
	bool pr900_ok = false;

	country = slurp(DEMO_IMPORT);
	CHECK(country != NULL);
	h = fixture_start(country);
	CHECK(h != NULL);
	watch = harness_mqtt_connect(h, "test-sim-watch");
	desk = harness_mqtt_connect(h, "test-sim-desk");
	CHECK(watch != NULL && desk != NULL);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/dev/+/telemetry") == 0);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/engineers/E001/events") == 0);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/engineers/E001/status") == 0);
	CHECK(harness_mqtt_subscribe(watch, "sc/v1/requests/new") == 0);

	/* Travel and work compressed 36000 times: the whole job fits in the run. */
	const char *args[] = { "--duration", "5", "--summary", "--seed", SEED,
			       "--time-scale", "36000", "--telemetry-interval-ms", "500",
			       "--requests-per-min", "120", "--accept-pct", "100", NULL };
	pid_t sim = harness_spawn(h, "sc-sim", NULL, args);
	CHECK(sim > 0);

	/* Telemetry flowing tells the sim is connected and subscribed: it
	 * subscribes on connect, before it publishes anything. */
	p = harness_mqtt_wait(watch, "/telemetry", 15000, NULL);
	CHECK(p != NULL);
	free(p);
	p = NULL;

	/* An offer as sc-dispatch would send it (contract section 2.3). */
	iso_in(expires, sizeof(expires), 120);
	snprintf(offer, sizeof(offer),
		 "{\"order_id\": \"W-TEST-1\", \"ticket_id\": \"T-TEST-1\", \"mode\": \"onsite\","
		 " \"offer_expires_at\": \"%s\", \"customer\": {\"id\": \"C001\", \"tier\": \"vip\"},"
		 " \"site\": {\"id\": \"S001\", \"province\": \"HA\", \"lat\": 34.8312, \"lon\": 113.5421,"
		 " \"address\": \"Zhengzhou\"}, \"device\": {\"id\": \"D0001\", \"model\": \"XJ-PR900\"},"
		 " \"category\": \"fault\", \"severity\": \"major\", \"skill\": \"relay_protection\","
		 " \"min_grade\": 2, \"description\": \"test\"}",
		 expires);
	CHECK(harness_mqtt_publish(desk, "sc/v1/engineers/E001/orders", offer, 1) == 0);
	/* A redelivery of the same offer changes nothing. */
	CHECK(harness_mqtt_publish(desk, "sc/v1/engineers/E001/orders", offer, 1) == 0);

	CHECK(expect_event(watch, "accept", "W-TEST-1") == 0);
	CHECK(expect_event(watch, "en_route", "W-TEST-1") == 0);
	CHECK(expect_event(watch, "on_site", "W-TEST-1") == 0);
	CHECK(expect_event(watch, "resolved", "W-TEST-1") == 0);
	/* The engineer reports busy while travelling and on site (moving to the
	 * site), then available there. */
	p = harness_mqtt_wait(watch, "sc/v1/engineers/E001/status", 5000, NULL);
	CHECK(p != NULL && strstr(p, "\"busy\"") != NULL && strstr(p, "\"lat\":34.757") != NULL);
	free(p);
	p = harness_mqtt_wait(watch, "sc/v1/engineers/E001/status", 5000, NULL);
	CHECK(p != NULL && strstr(p, "\"busy\"") != NULL && strstr(p, "\"lat\":34.831") != NULL);
	free(p);
	p = harness_mqtt_wait(watch, "sc/v1/engineers/E001/status", 5000, NULL);
	CHECK(p != NULL && strstr(p, "\"available\"") != NULL && strstr(p, "\"ts\"") != NULL);
	free(p);
	p = NULL;
	CHECK(harness_mqtt_wait(watch, "sc/v1/engineers/E001/status", 200, NULL) == NULL);

	/* It ends by itself after --duration, with status 0. */
	CHECK(harness_stop_program(h, sim, 0) == 0);

	/* Nothing more for the order (the repeat was ignored). */
	CHECK(harness_mqtt_wait(watch, "sc/v1/engineers/E001/events", 300, NULL) == NULL);

	while ((p = harness_mqtt_wait(watch, "sc/v1/requests/new", 100, NULL)) != NULL) {
		CHECK(strstr(p, "\"request_id\":\"SIM-" SEED "-") != NULL);
		CHECK(strstr(p, "\"customer_id\":\"C00") != NULL);
		requests++;
		free(p);
		p = NULL;
	}
	telemetry = take_telemetry(watch, &devices, &pr900_ok);
	fprintf(stderr, "test_sim: telemetry=%ld devices=%ld requests=%ld\n", telemetry, devices,
		requests);
	/* 40 devices every 500 ms for 5 s: about 400. */
	CHECK(telemetry >= 200);
	CHECK(devices == 40);
	CHECK(pr900_ok);
	CHECK(requests >= 1);

	/* The summary went to stdout (the log): plain lines, then the final block. */
	snprintf(path, sizeof(path), "%s/sc-sim-1.log", harness_dir(h));
	log = slurp(path);
	CHECK(log != NULL);
	CHECK(strstr(log, "summary t=") != NULL);
	CHECK(strstr(log, "sc-sim final summary") != NULL);
	CHECK(strstr(log, "\nsla compliance ") != NULL);
	CHECK(strstr(log, "zone dashboard: http://127.0.0.1:8080/zone/HA") != NULL);
	CHECK(strstr(log, "\033[") == NULL); /* not a terminal: no ANSI codes */
	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	free(p);
	free(log);
	free(country);
	harness_mqtt_free(watch);
	harness_mqtt_free(desk);
	harness_stop(h);
	fprintf(stderr, "test_sim: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

/*
 * libFuzzer target: every parser of outside payloads (telemetry, alarm,
 * request, order event, engineer status, feedback) and the topic parser on
 * the same bytes. A parse either succeeds (and its tree is freed) or fails
 * with a contract reason; nothing may crash, leak or trip a sanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "payload.h"
#include "topic.h"

#define NOW_US INT64_C(1795000000000000)

static void check_reason(const struct json_err *e)
{
	static const char *const reasons[] = {
		"bad_json", "too_large", "schema", "bad_metric", "bad_timestamp",
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (e->reason != NULL && strcmp(e->reason, reasons[i]) == 0)
			return;
	abort(); /* a failure must name one of the contract's reasons */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct json_err e;
	struct payload_telemetry t;
	struct payload_alarm a;
	struct payload_request r;
	struct payload_event ev;
	struct payload_status st;
	struct payload_feedback fb;

	/* The general parser's verdict; the fast path may only take what it
	 * accepts, with the very same values and spans. */
	struct payload_telemetry f;
	int tree = payload_telemetry_parse_tree(buf, size, NOW_US, &t, &e);
	if (tree != 0)
		check_reason(&e);
	if (payload_telemetry_fast(buf, size, NOW_US, &f) == 0) {
		if (tree != 0 || f.root != NULL || f.metrics_raw == NULL || f.seq != t.seq ||
		    f.ts_us != t.ts_us || f.has_run_hours != t.has_run_hours ||
		    (f.has_run_hours && f.run_hours != t.run_hours) ||
		    f.metrics_raw != t.metrics_raw || f.metrics_len != t.metrics_len ||
		    f.run_hours_raw != t.run_hours_raw || f.run_hours_len != t.run_hours_len)
			abort();
	}
	if (tree == 0) {
		/* sc-ingest passes the metrics on as written: that text must
		 * be the very object the parser validated. */
		if (t.metrics_raw != NULL) {
			cJSON *m = json_parse_object(t.metrics_raw, t.metrics_len, &e);
			if (m == NULL || !cJSON_Compare(m, t.metrics, 1))
				abort();
			cJSON_Delete(m);
		}
		payload_free(t.root);
	}
	if (payload_telemetry_parse(buf, size, NOW_US, &t, &e) == 0)
		payload_free(t.root);
	else
		check_reason(&e);
	if (payload_alarm_parse(buf, size, NOW_US, &a, &e) == 0)
		payload_free(a.root);
	else
		check_reason(&e);
	if (payload_request_parse(buf, size, NOW_US, &r, &e) == 0)
		payload_free(r.root);
	else
		check_reason(&e);
	if (payload_event_parse(buf, size, NOW_US, &ev, &e) == 0)
		payload_free(ev.root);
	else
		check_reason(&e);
	if (payload_status_parse(buf, size, NOW_US, &st, &e) == 0)
		payload_free(st.root);
	else
		check_reason(&e);
	if (payload_feedback_parse(buf, size, &fb, &e) == 0)
		payload_free(fb.root);
	else
		check_reason(&e);

	/* Topics are NUL-terminated strings. */
	char topic[256];
	size_t n = size < sizeof(topic) - 1 ? size : sizeof(topic) - 1;
	memcpy(topic, data, n);
	topic[n] = '\0';
	struct topic_info ti;
	(void)topic_parse(topic, &ti);
	return 0;
}

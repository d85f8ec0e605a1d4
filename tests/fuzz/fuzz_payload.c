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

	if (payload_telemetry_parse(buf, size, NOW_US, &t, &e) == 0) {
		/* sc-ingest passes the metrics on as written: that text must
		 * be the very object the parser validated. */
		const char *raw;
		size_t n;
		int rc = json_raw_member(buf, size, "metrics", &raw, &n);
		if (rc == 1)
			abort();
		if (rc == 0) {
			cJSON *m = json_parse_object(raw, n, &e);
			if (m == NULL || !cJSON_Compare(m, t.metrics, 1))
				abort();
			cJSON_Delete(m);
		}
		payload_free(t.root);
	} else {
		check_reason(&e);
	}
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

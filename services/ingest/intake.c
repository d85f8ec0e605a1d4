/*
 * Classifies and validates every message sc-ingest receives (contract
 * sections 2.1, 2.2, 2.6) and routes it: device messages and rejections
 * into the open batch, requests to their own statement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "mqsub.h"
#include "strbuf.h"
#include "timeutil.h"
#include "topic.h"

static void reject(struct ingest *in, int kind, const struct mqsub_msg *m, const char *reason,
		   const char *detail)
{
	log_debug("message rejected: %s topic=%s detail=%s", reason, m->topic, detail);
	metric_add(kind >= 0 ? in->m.rejected[kind] : in->m.rejected_other, 1);
	batch_reject(in, m->topic, reason, detail, m->payload, m->len, m->token);
}

/* Epoch seconds with microseconds: exact for any date a device can send. */
static void put_epoch(struct strbuf *b, int64_t us)
{
	strbuf_printf(b, "%.6f", (double)us / 1e6);
}

/* The metrics object to store: as the device wrote it when PostgreSQL reads
 * that text as the parser did (payload.h), else printed. */
static char *metrics_text(const struct payload_telemetry *t)
{
	if (t->metrics_raw == NULL)
		return json_print(t->metrics);
	char *text = malloc(t->metrics_len + 1);
	if (text != NULL) {
		memcpy(text, t->metrics_raw, t->metrics_len);
		text[t->metrics_len] = '\0';
	}
	return text;
}

/* run_hours as a float8 literal into out: as written, or printed. */
static void run_hours_text(const struct payload_telemetry *t, char *out, size_t size)
{
	if (t->run_hours_raw != NULL && t->run_hours_len < size) {
		memcpy(out, t->run_hours_raw, t->run_hours_len);
		out[t->run_hours_len] = '\0';
		return;
	}
	snprintf(out, size, "%.17g", t->run_hours);
}

static void take_telemetry(struct ingest *in, const struct mqsub_msg *m, const char *device,
			   int64_t now)
{
	struct payload_telemetry t;
	struct json_err e;
	if (payload_telemetry_parse(m->payload, m->len, now, &t, &e) != 0) {
		reject(in, KIND_TELEMETRY, m, e.reason, e.detail);
		return;
	}
	if (!registry_has_device(in, device)) {
		reject(in, KIND_TELEMETRY, m, "unknown_device", "device is not in the registry");
		payload_free(t.root);
		return;
	}
	struct tele_info *tele = calloc(1, sizeof(*tele));
	char *metrics = metrics_text(&t);
	if (tele == NULL || metrics == NULL)
		goto oom;
	snprintf(tele->device, sizeof(tele->device), "%s", device);
	tele->seq = t.seq;
	tele->ts_us = t.ts_us;
	tele->recv_us = now;
	if (t.has_run_hours)
		run_hours_text(&t, tele->run_hours, sizeof(tele->run_hours));
	if (batch_add(in, ITEM_TELEMETRY, metrics, tele, t.ts_us, m->topic, m->payload, m->len,
		      m->token) != 0)
		log_error("telemetry dropped: out of memory topic=%s", m->topic);
	payload_free(t.root);
	return;
oom:
	log_error("telemetry dropped: out of memory topic=%s", m->topic);
	tele_info_free(tele);
	free(metrics);
	payload_free(t.root);
}

static void take_alarm(struct ingest *in, const struct mqsub_msg *m, const char *device, int64_t now)
{
	struct payload_alarm a;
	struct json_err e;
	if (payload_alarm_parse(m->payload, m->len, now, &a, &e) != 0) {
		reject(in, KIND_ALARM, m, e.reason, e.detail);
		return;
	}
	if (!registry_has_device(in, device)) {
		reject(in, KIND_ALARM, m, "unknown_device", "device is not in the registry");
		payload_free(a.root);
		return;
	}
	struct strbuf b;
	strbuf_init(&b);
	strbuf_puts(&b, "{\"d\":");
	strbuf_json_str(&b, device);
	strbuf_printf(&b, ",\"s\":%llu,\"t\":", (unsigned long long)a.seq);
	put_epoch(&b, a.ts_us);
	strbuf_puts(&b, ",\"r\":");
	put_epoch(&b, now);
	strbuf_puts(&b, ",\"c\":");
	strbuf_json_str(&b, a.code);
	strbuf_printf(&b, ",\"st\":\"%s\",\"x\":", a.raised ? "raised" : "cleared");
	strbuf_json_str(&b, a.text);
	strbuf_putc(&b, '}');
	char *row = strbuf_take(&b);
	if (row == NULL || batch_add(in, ITEM_ALARM, row, NULL, a.ts_us, m->topic, m->payload, m->len, m->token) != 0)
		log_error("alarm dropped: out of memory topic=%s", m->topic);
	payload_free(a.root);
}

static void take_request(struct ingest *in, const struct mqsub_msg *m, int64_t now)
{
	struct payload_request r;
	struct json_err e;
	if (payload_request_parse(m->payload, m->len, now, &r, &e) != 0) {
		reject(in, KIND_REQUEST, m, e.reason, e.detail);
		return;
	}
	requests_submit(in, &r, m->topic, m->payload, m->len, m->token);
	payload_free(r.root);
}

void intake_on_message(void *arg, const struct mqsub_msg *m)
{
	struct ingest *in = arg;
	struct topic_info ti;
	int64_t now = time_now_us();
	switch (topic_parse(m->topic, &ti)) {
	case TOPIC_TELEMETRY:
		take_telemetry(in, m, ti.id, now);
		break;
	case TOPIC_ALARM:
		take_alarm(in, m, ti.id, now);
		break;
	case TOPIC_REQUEST_NEW:
		take_request(in, m, now);
		break;
	default:
		reject(in, -1, m, "bad_topic", "not a topic sc-ingest takes");
		break;
	}
}

/*
 * Batching of device messages and rejections into sc_ingest_batch
 * statements.
 *
 * One batch is in flight at a time while the next one fills. The open batch
 * is sent when it reaches SC_INGEST_BATCH_MAX items, when its first item has
 * waited SC_INGEST_BATCH_DELAY_MS, or as soon as the one in flight is done
 * (so under load batches grow by themselves and at low rates latency stays
 * at the delay). While one batch is in flight and the open one is full, MQTT
 * delivery is paused (back-pressure to the broker).
 *
 * A batch whose statement fails in the server (not a lost connection: db.c
 * resends those) is split in two and each half sent again, down to single
 * messages: the one message that cannot be stored becomes a rejection
 * ("schema") and everything valid beside it is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "strbuf.h"
#include "timeutil.h"

#define REJECT_RAW_MAX 65536

static void send_next(struct ingest *in);

static void item_free(struct item *it)
{
	free(it->row);
	free(it->topic);
	free(it->raw);
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		item_free(&b->items[i]);
	free(b->items);
	memset(b, 0, sizeof(*b));
}

static int batch_push(struct batch *b, struct item *it)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct item *items = realloc(b->items, cap * sizeof(*items));
		if (items == NULL)
			return -1;
		b->items = items;
		b->cap = cap;
	}
	if (b->n == 0)
		b->opened_us = time_mono_us();
	b->items[b->n++] = *it;
	return 0;
}

static bool busy(const struct ingest *in)
{
	return in->sending.n > 0;
}

static void arm_flush(struct ingest *in)
{
	int ms = in->svc->cfg.batch_delay_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(in->flush_timer, &tv);
}

static void flush(struct ingest *in)
{
	if (busy(in) || in->open.n == 0)
		return;
	evtimer_del(in->flush_timer);
	in->sending = in->open;
	memset(&in->open, 0, sizeof(in->open));
	send_next(in);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

int batch_add(struct ingest *in, enum item_kind kind, char *row, int64_t ts_us,
	      const char *topic, const char *raw, size_t raw_len, unsigned long long token)
{
	struct item it = { kind, row, ts_us, strdup(topic), NULL, 0, token };
	if (raw_len > REJECT_RAW_MAX)
		raw_len = REJECT_RAW_MAX;
	it.raw = malloc(raw_len + 1);
	if (it.topic == NULL || it.raw == NULL) {
		item_free(&it);
		return -1;
	}
	memcpy(it.raw, raw, raw_len);
	it.raw_len = raw_len;
	if (batch_push(&in->open, &it) != 0) {
		item_free(&it);
		return -1;
	}
	if (in->open.n >= (size_t)in->svc->cfg.batch_max) {
		if (busy(in))
			service_pause_intake(in->svc, true);
		else
			flush(in);
	} else if (in->open.n == 1 && !busy(in)) {
		arm_flush(in);
	}
	return 0;
}

static char *reject_row(const char *topic, const char *reason, const char *detail,
			const char *raw, size_t raw_len)
{
	struct strbuf b;
	strbuf_init(&b);
	strbuf_puts(&b, "{\"topic\":");
	strbuf_json_str(&b, topic);
	strbuf_puts(&b, ",\"reason\":");
	strbuf_json_str(&b, reason);
	strbuf_puts(&b, ",\"detail\":");
	strbuf_json_str(&b, detail);
	strbuf_puts(&b, ",\"p\":\"");
	strbuf_hex(&b, raw, raw_len > REJECT_RAW_MAX ? REJECT_RAW_MAX : raw_len);
	strbuf_puts(&b, "\"}");
	return strbuf_take(&b);
}

void batch_reject(struct ingest *in, const char *topic, const char *reason,
		  const char *detail, const char *raw, size_t raw_len, unsigned long long token)
{
	char *row = reject_row(topic, reason, detail, raw, raw_len);
	if (row == NULL || batch_add(in, ITEM_REJECT, row, 0, topic, raw, raw_len, token) != 0)
		log_error("rejection dropped: out of memory topic=%s reason=%s", topic, reason);
}

/* {"telemetry":[...],"alarms":[...],"rejects":[...]} of the batch in flight. */
static char *batch_json(const struct batch *b)
{
	static const char *const names[] = { "telemetry", "alarms", "rejects" };
	struct strbuf s;
	strbuf_init(&s);
	strbuf_putc(&s, '{');
	for (int k = 0; k < 3; k++) {
		strbuf_printf(&s, "%s\"%s\":[", k ? "," : "", names[k]);
		bool first = true;
		for (size_t i = 0; i < b->n; i++) {
			if ((int)b->items[i].kind != k)
				continue;
			if (!first)
				strbuf_putc(&s, ',');
			strbuf_puts(&s, b->items[i].row);
			first = false;
		}
		strbuf_putc(&s, ']');
	}
	strbuf_putc(&s, '}');
	return strbuf_take(&s);
}

static int64_t json_count(const char *json, const char *key)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
	cJSON_Delete(o);
	return n;
}

static void account(struct ingest *in, const struct batch *b, const char *result)
{
	int64_t kinds[2] = { 0, 0 };
	int64_t now = time_now_us();
	for (size_t i = 0; i < b->n; i++) {
		const struct item *it = &b->items[i];
		if (it->kind == ITEM_REJECT)
			continue;
		kinds[it->kind]++;
		double lag = (double)(now - it->ts_us) / 1e6;
		metric_observe(in->m.lag[it->kind], lag < 0 ? 0 : lag);
	}
	int64_t stored[2] = { json_count(result, "telemetry"), json_count(result, "alarms") };
	for (int k = 0; k < 2; k++) {
		metric_add(in->m.stored[k], (double)stored[k]);
		metric_add(in->m.duplicate[k], (double)(kinds[k] - stored[k]));
	}
	metric_observe(in->m.batch_rows, (double)b->n);
	metric_observe(in->m.batch_seconds, (double)(time_mono_us() - b->opened_us) / 1e6);
}

/* A failed batch: split it, or turn its single message into a rejection. */
static void split(struct ingest *in, const char *error)
{
	struct batch *b = &in->sending;
	metric_add(in->m.batch_splits, 1);
	if (b->n == 1) {
		struct item *it = &b->items[0];
		if (it->kind == ITEM_REJECT) {
			/* Invalid input we cannot even keep: let the broker forget it
			 * rather than redeliver it forever. */
			log_error("rejection could not be stored, dropped: %s topic=%s", error, it->topic);
			service_ack(in->svc, it->token);
			batch_clear(b);
			return;
		}
		char detail[200];
		snprintf(detail, sizeof(detail), "not storable: %.150s", error);
		char *row = reject_row(it->topic, "schema", detail, it->raw, it->raw_len);
		if (row == NULL) {
			batch_clear(b);
			return;
		}
		metric_add(in->m.rejected[it->kind], 1);
		free(it->row);
		it->row = row;
		it->kind = ITEM_REJECT;
		return;
	}
	size_t half = b->n / 2;
	struct batch second = { 0 };
	second.items = malloc((b->n - half) * sizeof(*second.items));
	if (second.items == NULL)
		return; /* send the whole batch again; split once memory allows */
	memcpy(second.items, b->items + half, (b->n - half) * sizeof(*second.items));
	second.n = second.cap = b->n - half;
	second.opened_us = b->opened_us;
	b->n = half;
	if (in->nretry == in->capretry) {
		size_t cap = in->capretry ? in->capretry * 2 : 8;
		struct batch *r = realloc(in->retry, cap * sizeof(*r));
		if (r == NULL) {
			b->n += second.n; /* undo: items are still in b->items */
			free(second.items);
			return;
		}
		in->retry = r;
		in->capretry = cap;
	}
	/* Stack: the second half is sent right after the first. */
	in->retry[in->nretry++] = second;
}

/* The batch in flight is finished: send what waits next. */
static void advance(struct ingest *in)
{
	if (in->nretry > 0) {
		in->sending = in->retry[--in->nretry];
		send_next(in);
		return;
	}
	if (in->open.n > 0)
		flush(in);
	service_pause_intake(in->svc, false);
}

/* Committed: the broker may forget these messages now. */
static void ack_all(struct ingest *in, const struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		service_ack(in->svc, b->items[i].token);
}

static void on_batch_done(void *arg, const struct db_reply *r)
{
	struct ingest *in = arg;
	if (r->error != NULL) {
		log_warn("batch failed, splitting: %s items=%zu", r->error, in->sending.n);
		split(in, r->error);
		if (in->sending.n > 0) {
			send_next(in);
			return;
		}
	} else {
		account(in, &in->sending, PQgetvalue(r->res, 0, 0));
		ack_all(in, &in->sending);
		batch_clear(&in->sending);
	}
	advance(in);
}

static void send_next(struct ingest *in)
{
	if (in->sending.n == 0)
		return;
	char *json = batch_json(&in->sending);
	const char *params[] = { json };
	if (json == NULL ||
	    db_exec_prepared(in->svc->db, "ingest_batch", 1, params, on_batch_done, in) != 0) {
		/* Out of memory: try again shortly; nothing is dropped. */
		log_error("batch not sent: out of memory items=%zu", in->sending.n);
		struct batch keep = in->sending;
		memset(&in->sending, 0, sizeof(in->sending));
		for (size_t i = 0; i < keep.n; i++)
			(void)batch_push(&in->open, &keep.items[i]);
		free(keep.items);
		arm_flush(in);
	}
	free(json);
}

bool batch_idle(const struct ingest *in)
{
	if (!busy(in) && in->open.n > 0)
		flush((struct ingest *)in);
	return !busy(in) && in->open.n == 0 && in->nretry == 0;
}

int batch_init(struct ingest *in)
{
	in->flush_timer = evtimer_new(in->svc->base, on_flush_timer, in);
	if (in->flush_timer == NULL)
		return -1;
	return db_prepare(in->svc->db, "ingest_batch", "SELECT sc_ingest_batch($1::jsonb)", 1);
}

void batch_free_all(struct ingest *in)
{
	batch_clear(&in->open);
	batch_clear(&in->sending);
	for (size_t i = 0; i < in->nretry; i++)
		batch_clear(&in->retry[i]);
	free(in->retry);
	in->retry = NULL;
	in->nretry = in->capretry = 0;
	if (in->flush_timer != NULL)
		event_free(in->flush_timer);
	in->flush_timer = NULL;
}

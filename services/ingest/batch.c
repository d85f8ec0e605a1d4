/*
 * Batching of device messages and rejections into sc_ingest_batch
 * statements (their parameters: params.c).
 *
 * Up to SC_INGEST_PIPELINE batches are in flight (one per slot, each on its
 * own connection) while the next one fills. The open batch is sent when it
 * reaches SC_INGEST_BATCH_MAX items, when its first item has waited
 * SC_INGEST_BATCH_DELAY_MS, or as soon as a slot is free again (so under
 * load batches grow by themselves and at low rates latency stays at the
 * delay). While every slot is busy and the open batch is full, MQTT
 * delivery is paused (back-pressure to the broker). Messages are
 * acknowledged to the broker per batch after its commit; mqsub sends the
 * PUBACKs in arrival order whatever order the batches commit in.
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
#define PAUSE_FACTOR 4

static void send_next(struct slot *sl);

static void item_free(struct item *it)
{
	tele_info_free(it->tele);
	it->tele = NULL;
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

static struct slot *idle_slot(const struct ingest *in)
{
	for (int i = 0; i < in->nslots; i++)
		if (in->slots[i].sending.n == 0 && in->slots[i].nretry == 0)
			return &in->slots[i];
	return NULL;
}

static bool busy(const struct ingest *in)
{
	return idle_slot(in) == NULL;
}

static int in_flight(const struct ingest *in)
{
	int n = 0;
	for (int i = 0; i < in->nslots; i++)
		n += in->slots[i].sending.n > 0 || in->slots[i].nretry > 0;
	return n;
}

static void arm_flush(struct ingest *in)
{
	int ms = in->svc->cfg.batch_delay_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(in->flush_timer, &tv);
}

static void flush(struct ingest *in)
{
	struct slot *sl = idle_slot(in);
	if (sl == NULL || in->open.n == 0)
		return;
	evtimer_del(in->flush_timer);
	sl->sending = in->open;
	memset(&in->open, 0, sizeof(in->open));
	send_next(sl);
}

/* A partial batch goes out on the timer only when nothing is in flight:
 * otherwise the batch in flight finishing sends it, bigger (each commit
 * costs a WAL flush, and commits are serialised by the ingest log). */
static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *in = arg;
	if (in_flight(in) == 0)
		flush(in);
}

int batch_add(struct ingest *in, enum item_kind kind, char *row, struct tele_info *tele,
	      int64_t ts_us, const char *topic, const char *raw, size_t raw_len,
	      unsigned long long token)
{
	struct item it = { kind, row, tele, ts_us, strdup(topic), NULL, 0, token };
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
		/* Every slot busy: keep taking up to PAUSE_FACTOR batches' worth
		 * (a bigger next batch) before holding the broker back. */
		if (!busy(in))
			flush(in);
		else if (in->open.n >= (size_t)in->svc->cfg.batch_max * PAUSE_FACTOR)
			service_pause_intake(in->svc, true);
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

void ingest_count_rejected(struct ingest *in, const char *reason)
{
	char labels[64];
	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	metric_add(metrics_counter(in->svc->metrics, "sc_ingest_rejected_total",
				   "Messages rejected by sc-ingest, by contract reason", labels), 1);
}

void batch_reject(struct ingest *in, const char *topic, const char *reason,
		  const char *detail, const char *raw, size_t raw_len, unsigned long long token)
{
	ingest_count_rejected(in, reason);
	char *row = reject_row(topic, reason, detail, raw, raw_len);
	if (row == NULL || batch_add(in, ITEM_REJECT, row, NULL, 0, topic, raw, raw_len, token) != 0)
		log_error("rejection dropped: out of memory topic=%s reason=%s", topic, reason);
}

/* The answer of sc_ingest_batch: {"telemetry": n, "alarms": n, "batch": id, ...}. */
struct batch_result {
	int64_t stored[2]; /* by item_kind: telemetry, alarms */
	int64_t batch_id;
};

static void read_result(const char *json, struct batch_result *out)
{
	static const char *const keys[3] = { "telemetry", "alarms", "batch" };
	int64_t *dst[3] = { &out->stored[0], &out->stored[1], &out->batch_id };
	cJSON *o = cJSON_Parse(json);
	for (int k = 0; k < 3; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
		*dst[k] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
	}
	cJSON_Delete(o);
}

static void account(struct ingest *in, const struct batch *b, const struct batch_result *res)
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
	for (int k = 0; k < 2; k++) {
		metric_add(in->m.stored[k], (double)res->stored[k]);
		metric_add(in->m.duplicate[k], (double)(kinds[k] - res->stored[k]));
	}
	metric_observe(in->m.batch_rows, (double)b->n);
	metric_observe(in->m.batch_seconds, (double)(time_mono_us() - b->opened_us) / 1e6);
}

/* A failed batch: split it, or turn its single message into a rejection. */
static void split(struct slot *sl, const char *error)
{
	struct ingest *in = sl->in;
	struct batch *b = &sl->sending;
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
		tele_info_free(it->tele);
		it->tele = NULL;
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
	if (sl->nretry == sl->capretry) {
		size_t cap = sl->capretry ? sl->capretry * 2 : 8;
		struct batch *r = realloc(sl->retry, cap * sizeof(*r));
		if (r == NULL) {
			b->n += second.n; /* undo: items are still in b->items */
			free(second.items);
			return;
		}
		sl->retry = r;
		sl->capretry = cap;
	}
	/* Stack: the second half is sent right after the first. */
	sl->retry[sl->nretry++] = second;
}

/* The batch in flight is finished: send what waits next. */
static void advance(struct slot *sl)
{
	struct ingest *in = sl->in;
	if (sl->nretry > 0) {
		sl->sending = sl->retry[--sl->nretry];
		send_next(sl);
		return;
	}
	if (in->open.n >= (size_t)in->svc->cfg.batch_max || (in->open.n > 0 && in_flight(in) == 0))
		flush(in);
	if (in->open.n < (size_t)in->svc->cfg.batch_max * PAUSE_FACTOR)
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
	struct slot *sl = arg;
	struct ingest *in = sl->in;
	if (r->error != NULL) {
		/* Deadlock or serialization failure: the batch is fine, the
		 * timing was not. Anything else: find the message at fault. */
		if (strcmp(r->sqlstate, "40P01") == 0 || strcmp(r->sqlstate, "40001") == 0) {
			log_warn("batch conflicted, sending again: %s items=%zu", r->error,
				 sl->sending.n);
		} else {
			log_warn("batch failed, splitting: %s items=%zu", r->error, sl->sending.n);
			split(sl, r->error);
		}
		if (sl->sending.n > 0) {
			send_next(sl);
			return;
		}
	} else {
		struct batch_result res;
		read_result(PQgetvalue(r->res, 0, 0), &res);
		account(in, &sl->sending, &res);
		/* Only a batch that stored telemetry has states to write (a
		 * repeat's were folded when it was first stored). */
		if (res.stored[ITEM_TELEMETRY] > 0)
			state_fold_batch(in, &sl->sending, res.batch_id);
		ack_all(in, &sl->sending);
		batch_clear(&sl->sending);
	}
	advance(sl);
}

static void send_next(struct slot *sl)
{
	struct ingest *in = sl->in;
	if (sl->sending.n == 0)
		return;
	char *params[BP_COUNT];
	bool built = batch_params(&sl->sending, params) == 0;
	if (!built ||
	    db_exec_prepared(sl->db, "ingest_batch", BP_COUNT, (const char *const *)params,
			     on_batch_done, sl) != 0) {
		/* Out of memory: try again shortly; nothing is dropped. */
		log_error("batch not sent: out of memory items=%zu", sl->sending.n);
		struct batch keep = sl->sending;
		memset(&sl->sending, 0, sizeof(sl->sending));
		for (size_t i = 0; i < keep.n; i++)
			(void)batch_push(&in->open, &keep.items[i]);
		free(keep.items);
		arm_flush(in);
	}
	if (built)
		for (int k = 0; k < BP_COUNT; k++)
			free(params[k]);
}

bool batch_idle(const struct ingest *in)
{
	if (in->open.n > 0)
		flush((struct ingest *)in);
	for (int i = 0; i < in->nslots; i++)
		if (in->slots[i].sending.n > 0 || in->slots[i].nretry > 0)
			return false;
	return in->open.n == 0;
}

int batch_init(struct ingest *in)
{
	struct service *svc = in->svc;
	in->flush_timer = evtimer_new(svc->base, on_flush_timer, in);
	in->slots = calloc((size_t)svc->cfg.pipeline, sizeof(*in->slots));
	if (in->flush_timer == NULL || in->slots == NULL)
		return -1;
	in->nslots = svc->cfg.pipeline;
	for (int i = 0; i < in->nslots; i++) {
		char name[48];
		snprintf(name, sizeof(name), "sc-ingest-batch-%d", i);
		struct slot *sl = &in->slots[i];
		sl->in = in;
		sl->db = db_new(svc->base, svc->cfg.pg_dsn, name);
		if (sl->db == NULL ||
		    db_prepare(sl->db, "ingest_batch", INGEST_BATCH_SQL, BP_COUNT) != 0)
			return -1;
	}
	return 0;
}

void batch_free_all(struct ingest *in)
{
	batch_clear(&in->open);
	for (int i = 0; i < in->nslots; i++) {
		struct slot *sl = &in->slots[i];
		batch_clear(&sl->sending);
		for (size_t j = 0; j < sl->nretry; j++)
			batch_clear(&sl->retry[j]);
		free(sl->retry);
		db_free(sl->db);
	}
	free(in->slots);
	in->slots = NULL;
	in->nslots = 0;
	if (in->flush_timer != NULL)
		event_free(in->flush_timer);
	in->flush_timer = NULL;
}

/*
 * The consumer of the ingest log: one round at a time, strictly serial.
 *
 *   IDLE --wake--> BATCHES --> TELEMETRY --> (evaluate) --> APPLYING --> IDLE
 *
 * A round reads up to ALERTD_ROUND_BATCHES batches past the cursor, their
 * telemetry, evaluates, and applies (apply.c). The next round starts only
 * after the apply committed, at once when the last read was a full page
 * (a backlog) or a wake-up came meanwhile, else on the next NOTIFY
 * ingest_batch or sweep (SC_SWEEP_MS, the safety net for a notification
 * lost while the connection was down).
 *
 * Failures: a failed read backs off and reads again; a failed apply backs
 * off, reloads the state and cursor from the database (LOADING) and reads
 * again from there, so nothing is skipped and nothing applied twice.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "alertd.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "timeutil.h"

/* The batches past the cursor, with the log head and their age for the lag
 * metrics. */
static const char batches_sql[] =
	"SELECT b.seq, b.batch_id, extract(epoch FROM now() - b.committed_at)::float8, h.seq"
	" FROM ingest_batch b, ingest_head h"
	" WHERE h.id = 1 AND b.seq > $1::bigint ORDER BY b.seq LIMIT $2::int";

enum { B_SEQ, B_BATCH_ID, B_AGE, B_HEAD };

/* The round's telemetry and device alarms (sc-ingest commits both in the
 * same batches), device ts and arrival time in microseconds (the
 * evaluator's unit); device, ts, seq order is the order the rules must see
 * the samples in. Only devices of the partitions this instance holds, and
 * only batches past their partition's cursor ($3: cursor per partition,
 * past every batch for those not held). Columns: alertd.h enum
 * alertd_row_col. The batch filter is repeated on ingest_batch so that the
 * planner reads those few rows by index: joined on batch_id alone it
 * hashed all of ingest_batch every round (60 ms at 100k batches, growing),
 * and sc-alertd fell behind in the soak after ~12 minutes at 10k msg/s. */
static const char telemetry_sql[] =
	"SELECT t.device_id, t.seq, (extract(epoch FROM t.ts) * 1000000)::bigint, t.metrics::text,"
	" 't', NULL, NULL, (extract(epoch FROM t.received_at) * 1000000)::bigint"
	" FROM telemetry t JOIN ingest_batch b ON b.batch_id = t.batch_id"
	" WHERE t.batch_id = ANY($1::bigint[]) AND b.batch_id = ANY($1::bigint[])"
	" AND b.seq > ($3::bigint[])[sc_alertd_partition(t.device_id, $2::int) + 1]"
	" UNION ALL"
	" SELECT t.device_id, t.seq, (extract(epoch FROM t.ts) * 1000000)::bigint, t.text,"
	" 'a', t.code, t.state, (extract(epoch FROM t.received_at) * 1000000)::bigint"
	" FROM device_alarm t JOIN ingest_batch b ON b.batch_id = t.batch_id"
	" WHERE t.batch_id = ANY($1::bigint[]) AND b.batch_id = ANY($1::bigint[])"
	" AND b.seq > ($3::bigint[])[sc_alertd_partition(t.device_id, $2::int) + 1]"
	" ORDER BY 1, 3, 2";

static void start(struct alertd *a);

void round_reset(struct alertd_round *r)
{
	free(r->batch_ids);
	free(r->cursors);
	cJSON_Delete(r->events);
	memset(r, 0, sizeof(*r));
}

static void backoff(struct alertd *a)
{
	struct timeval tv = { a->backoff_ms / 1000, (a->backoff_ms % 1000) * 1000 };

	a->phase = ALERTD_BACKOFF;
	evtimer_add(a->retry, &tv);
	a->backoff_ms *= 2;
	if (a->backoff_ms > ALERTD_BACKOFF_MAX_MS)
		a->backoff_ms = ALERTD_BACKOFF_MAX_MS;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct alertd *a = arg;

	a->phase = ALERTD_IDLE;
	start(a);
}

/* A read failed: nothing was evaluated yet, so the state stays as it is. */
static void read_failed(struct alertd *a, const char *what, const char *why)
{
	log_error("%s failed: %s cursor=%lld", what, why, a->cursor);
	state_discard(a->state);
	/* Timers taken out for this round are put back. */
	silent_rebuild(a);
	round_reset(&a->round);
	backoff(a);
}

static void on_telemetry(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;

	if (r->error != NULL) {
		read_failed(a, "telemetry read", r->error);
		return;
	}
	a->round.events = cJSON_CreateArray();
	if (a->round.events == NULL || evaluate_rows(a, r->res) != 0) {
		read_failed(a, "evaluation", "out of memory");
		return;
	}
	/* Silent deadlines only once caught up: an arrival already committed
	 * must be seen before its device counts as silent. */
	if (a->round.to >= a->round.head && silent_fire_due(a, time_now_us()) != 0) {
		read_failed(a, "evaluation", "out of memory");
		return;
	}
	apply_round(a);
}

/* No batch waits but a silent deadline passed: a round of timer events
 * only, applied at the cursor as it is (from = to). */
static void timer_round(struct alertd *a)
{
	struct alertd_round *rd = &a->round;

	rd->to = rd->from;
	rd->head = rd->from;
	rd->started_mono = time_mono_us();
	rd->events = cJSON_CreateArray();
	if (rd->events == NULL || silent_fire_due(a, time_now_us()) != 0) {
		read_failed(a, "silent timers", "out of memory");
		return;
	}
	if (cJSON_GetArraySize(rd->events) == 0 && state_dirty(a->state) == NULL) {
		/* Every deadline had moved: nothing to apply. */
		state_discard(a->state);
		round_reset(rd);
		a->phase = ALERTD_IDLE;
		silent_committed(a);
		if (a->wanted)
			start(a);
		return;
	}
	apply_round(a);
}

/* "{1,2,3}": a bigint[] literal of the round's batch ids (our own numbers,
 * not text from outside). */
static char *batch_array(const PGresult *res)
{
	int n = PQntuples(res);
	size_t cap = 3 + (size_t)n * 21, len = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	s[len++] = '{';
	for (int i = 0; i < n; i++) {
		int w = snprintf(s + len, cap - len, "%s%lld", i ? "," : "",
				 strtoll(PQgetvalue(res, i, B_BATCH_ID), NULL, 10));
		if (w < 0 || (size_t)w >= cap - len) {
			free(s);
			return NULL;
		}
		len += (size_t)w;
	}
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

static void on_batches(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;
	struct alertd_round *rd = &a->round;
	int n;

	if (r->error != NULL) {
		read_failed(a, "batch read", r->error);
		return;
	}
	n = PQntuples(r->res);
	if (n == 0) {
		/* Caught up. */
		metric_set(a->m.lag_batches, 0);
		metric_set(a->m.lag_seconds, 0);
		if (silent_due(a, time_now_us())) {
			timer_round(a);
			return;
		}
		a->phase = ALERTD_IDLE;
		a->backoff_ms = ALERTD_BACKOFF_MIN_MS;
		if (a->wanted)
			start(a);
		return;
	}
	rd->nbatches = (size_t)n;
	rd->to = strtoll(PQgetvalue(r->res, n - 1, B_SEQ), NULL, 10);
	rd->head = strtoll(PQgetvalue(r->res, n - 1, B_HEAD), NULL, 10);
	rd->age_s = strtod(PQgetvalue(r->res, n - 1, B_AGE), NULL);
	rd->started_mono = time_mono_us();
	rd->batch_ids = batch_array(r->res);
	if (rd->batch_ids == NULL) {
		read_failed(a, "batch read", "out of memory");
		return;
	}
	char nparts[16];
	rd->cursors = partition_cursor_array(a);
	if (rd->cursors == NULL) {
		read_failed(a, "batch read", "out of memory");
		return;
	}
	snprintf(nparts, sizeof(nparts), "%d", a->nparts);
	const char *params[3] = { rd->batch_ids, nparts, rd->cursors };
	a->phase = ALERTD_TELEMETRY;
	if (db_exec_prepared(a->db, "alertd_telemetry", 3, params, on_telemetry, a) != 0)
		read_failed(a, "telemetry read", "out of memory");
}

/* Starts a round if nothing is in flight and everything it needs is there. */
static void start(struct alertd *a)
{
	char from[24], limit[16];
	const char *params[2] = { from, limit };

	/* Nothing to evaluate until partitions are held; a claim in flight
	 * may change the set (and the state) under a round. */
	if (a->svc->stopping || a->phase != ALERTD_IDLE || a->rules == NULL || a->nheld == 0 ||
	    a->claiming)
		return;
	if (!a->state_loaded) {
		state_load(a);
		return;
	}
	round_reset(&a->round);
	a->wanted = false;
	a->round.from = a->cursor;
	snprintf(from, sizeof(from), "%lld", a->cursor);
	snprintf(limit, sizeof(limit), "%d", ALERTD_ROUND_BATCHES);
	a->phase = ALERTD_BATCHES;
	if (db_exec_prepared(a->db, "alertd_batches", 2, params, on_batches, a) != 0)
		read_failed(a, "batch read", "out of memory");
}

void consumer_wake(struct alertd *a)
{
	if (a->phase == ALERTD_IDLE)
		start(a);
	else if (a->phase != ALERTD_BACKOFF)
		a->wanted = true;
}

void consumer_round_done(struct alertd *a, bool failed)
{
	bool full = a->round.nbatches >= ALERTD_ROUND_BATCHES;

	round_reset(&a->round);
	if (failed) {
		/* Whatever the statement did not commit is read again from the
		 * state the database holds. */
		a->state_loaded = false;
		backoff(a);
		return;
	}
	a->backoff_ms = ALERTD_BACKOFF_MIN_MS;
	a->phase = ALERTD_IDLE;
	if (full || a->wanted || !a->state_loaded)
		start(a);
}

void consumer_loaded(struct alertd *a, bool ok)
{
	if (!ok) {
		backoff(a);
		return;
	}
	a->phase = ALERTD_IDLE;
	start(a);
}

bool consumer_idle(const struct alertd *a)
{
	return a->phase == ALERTD_IDLE || a->phase == ALERTD_BACKOFF;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	consumer_wake(arg);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct alertd *a = arg;

	/* Shares move (an instance came or went) between rounds only. */
	if (consumer_idle(a))
		partition_claim(a);
	consumer_wake(a);
}

static void on_connect(void *arg)
{
	struct alertd *a = arg;

	/* The advisory locks died with the old connection: claim afresh.
	 * Notifications sent while we were away are lost: look now. */
	partition_lost(a);
	partition_claim(a);
	consumer_wake(a);
}

int consumer_init(struct alertd *a)
{
	int ms = a->svc->cfg.sweep_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	a->phase = ALERTD_IDLE;
	a->backoff_ms = ALERTD_BACKOFF_MIN_MS;
	a->retry = evtimer_new(a->svc->base, on_retry, a);
	a->sweep = event_new(a->svc->base, -1, EV_PERSIST, on_sweep, a);
	if (a->retry == NULL || a->sweep == NULL ||
	    db_prepare(a->db, "alertd_batches", batches_sql, 2) != 0 ||
	    db_prepare(a->db, "alertd_telemetry", telemetry_sql, 3) != 0 ||
	    db_listen(a->db, "ingest_batch", on_notify, a) != 0 ||
	    db_on_connect(a->db, on_connect, a) != 0)
		return -1;
	event_add(a->sweep, &tv);
	return 0;
}

void consumer_free(struct alertd *a)
{
	if (a->sweep != NULL)
		event_free(a->sweep);
	if (a->retry != NULL)
		event_free(a->retry);
	a->sweep = a->retry = NULL;
	round_reset(&a->round);
}

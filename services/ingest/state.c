/*
 * device_state on its own cadence (schema/048_device_state_deferred.sql).
 *
 * A committed batch's telemetry is folded into each device's latest state
 * in memory (statemap.c). Every SC_INGEST_STATE_MS the folded states go out
 * in one sc_device_state_apply statement, on this module's own connection,
 * one device_state row per device however many messages it sent; the
 * statement also deletes the batches' device_state_due rows. While sc-ingest
 * runs, device_state is thus at most about SC_INGEST_STATE_MS plus one
 * statement behind the committed telemetry (sc_ingest_state_age_seconds).
 *
 * What is lost with the process (kill -9, out of memory, an apply the
 * server refuses) is only derived: the batches stay in device_state_due,
 * and are rebuilt from their telemetry rows (sc_device_state_repair): all
 * of them by the first repair after a start (a restarted instance repairs
 * its own), then every REPAIR_EVERY_US those left longer than the repair
 * age by any instance (an instance that never came back).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "statemap.h"
#include "strbuf.h"
#include "timeutil.h"

#define REPAIR_EVERY_US (10 * TIME_US_PER_S)
#define REPAIR_MIN_AGE_S 30
#define REPAIR_LIMIT 100 /* batches per statement: a round stays short */

enum { SP_DEV, SP_SEQ, SP_TS, SP_RECV, SP_HOURS, SP_METRICS, SP_DONE, SP_COUNT };

static const char apply_sql[] =
	"SELECT sc_device_state_apply($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"
	" $5::float8[], $6::jsonb[], $7::bigint[])";
static const char repair_sql[] =
	"SELECT sc_device_state_repair($1::float8, to_timestamp($2::float8), $3::int)";

static void send_apply(struct ingest *in);

static bool transient(const char *sqlstate)
{
	return strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "40001") == 0;
}

void state_fold_batch(struct ingest *in, struct batch *b, int64_t batch_id)
{
	struct ingest_state *st = &in->state;
	bool all = true;
	if (statemap_count(st->pending) == 0 && statemap_batches(st->pending) == 0)
		st->since_us = time_mono_us();
	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];
		if (it->kind != ITEM_TELEMETRY)
			continue;
		const struct tele_info *t = it->tele;
		struct dev_state s = { .seq = t->seq, .ts_us = t->ts_us, .recv_us = t->recv_us,
				       .hours_ts_us = t->ts_us, .hours_seq = t->seq,
				       .metrics = it->row };
		memcpy(s.device, t->device, sizeof(s.device));
		memcpy(s.run_hours, t->run_hours, sizeof(s.run_hours));
		if (statemap_fold(st->pending, &s) != 0)
			all = false;
		it->row = s.metrics; /* what the map did not take; freed with the batch */
	}
	/* A batch not folded whole stays due: the repair writes its states. */
	if (!all || statemap_add_batch(st->pending, batch_id) != 0)
		log_error("device state of batch %lld left to the repair: out of memory",
			  (long long)batch_id);
}

static void put_hours(struct strbuf *s, const struct dev_state *d)
{
	strbuf_puts(s, d->run_hours[0] != '\0' ? d->run_hours : "NULL");
}

/* The parameters of apply_sql for a set; 0 or -1 (out of memory). */
static int apply_params(const struct state_set *set, char *out[SP_COUNT])
{
	struct strbuf p[SP_COUNT];
	int rc = -1;
	for (int k = 0; k < SP_COUNT; k++) {
		strbuf_init(&p[k]);
		strbuf_putc(&p[k], '{');
		out[k] = NULL;
	}
	for (size_t i = 0; i < set->n; i++) {
		const struct dev_state *d = &set->e[i];
		if (i > 0)
			for (int k = SP_DEV; k <= SP_METRICS; k++)
				strbuf_putc(&p[k], ',');
		strbuf_array_elem(&p[SP_DEV], d->device, strlen(d->device));
		strbuf_int(&p[SP_SEQ], (long long)d->seq);
		strbuf_int(&p[SP_TS], d->ts_us);
		strbuf_int(&p[SP_RECV], d->recv_us);
		put_hours(&p[SP_HOURS], d);
		strbuf_array_elem(&p[SP_METRICS], d->metrics != NULL ? d->metrics : "{}",
				  d->metrics != NULL ? strlen(d->metrics) : 2);
	}
	for (size_t i = 0; i < set->nbatches; i++) {
		if (i > 0)
			strbuf_putc(&p[SP_DONE], ',');
		strbuf_int(&p[SP_DONE], set->batches[i]);
	}
	for (int k = 0; k < SP_COUNT; k++)
		strbuf_putc(&p[k], '}');
	for (int k = 0; k < SP_COUNT; k++)
		if (!strbuf_ok(&p[k]))
			goto out;
	for (int k = 0; k < SP_COUNT; k++)
		out[k] = strbuf_take(&p[k]);
	rc = 0;
out:
	for (int k = 0; k < SP_COUNT; k++)
		strbuf_free(&p[k]);
	return rc;
}

static void on_apply_done(void *arg, const struct db_reply *r)
{
	struct ingest *in = arg;
	struct ingest_state *st = &in->state;
	st->busy = false;
	if (r->error == NULL) {
		metric_add(st->m_rows, atof(PQgetvalue(r->res, 0, 0)));
		metric_observe(st->m_age, (double)(time_mono_us() - st->sending_since_us) / 1e6);
		state_set_free(&st->sending);
		return;
	}
	if (transient(r->sqlstate)) {
		log_warn("device state conflicted, folding it back: %s devices=%zu", r->error,
			 st->sending.n);
		if (statemap_count(st->pending) == 0 && statemap_batches(st->pending) == 0)
			st->since_us = st->sending_since_us;
		if (statemap_put_back(st->pending, &st->sending) == 0)
			return;
	}
	/* Refused (or no memory to keep it): the batches stay due and the
	 * repair rebuilds these states from telemetry. */
	metric_add(st->m_failures, 1);
	log_error("device state not written, left to the repair: %s devices=%zu batches=%zu",
		  r->error != NULL ? r->error : "out of memory", st->sending.n, st->sending.nbatches);
	state_set_free(&st->sending);
}

static void send_apply(struct ingest *in)
{
	struct ingest_state *st = &in->state;
	char *params[SP_COUNT];
	statemap_take(st->pending, &st->sending);
	st->sending_since_us = st->since_us;
	st->last_was_repair = false;
	if (apply_params(&st->sending, params) != 0) {
		log_error("device state not sent: out of memory devices=%zu", st->sending.n);
		if (statemap_put_back(st->pending, &st->sending) != 0)
			log_error("device state left to the repair: out of memory");
		return;
	}
	if (db_exec_prepared(st->db, "state_apply", SP_COUNT, (const char *const *)params,
			     on_apply_done, in) == 0)
		st->busy = true;
	else if (statemap_put_back(st->pending, &st->sending) != 0)
		log_error("device state left to the repair: out of memory");
	for (int k = 0; k < SP_COUNT; k++)
		free(params[k]);
}

static void on_repair_done(void *arg, const struct db_reply *r)
{
	struct ingest *in = arg;
	struct ingest_state *st = &in->state;
	st->busy = false;
	if (r->error != NULL) {
		if (!transient(r->sqlstate))
			log_error("device state repair failed: %s", r->error);
		return;
	}
	int n = atoi(PQgetvalue(r->res, 0, 0));
	if (n > 0) {
		metric_add(st->m_repaired, n);
		log_info("device state repaired from telemetry batches=%d", n);
	}
	/* A full round: more may wait, go on at the next tick (the start-up
	 * pass, too, until a round is not full). */
	if (n >= REPAIR_LIMIT)
		st->next_repair_us = 0;
	else
		st->repaired_once = true;
}

static void send_repair(struct ingest *in)
{
	struct ingest_state *st = &in->state;
	int state_ms = in->svc->cfg.state_ms;
	char age[32], limit[16];
	char before[32];
	/* The start-up pass takes every batch committed before this process
	 * started: its own from before a crash are among them (those of live
	 * instances too: a little work that changes nothing). Later passes only
	 * those left long enough that their instance must have died. */
	int age_s = state_ms / 100 > REPAIR_MIN_AGE_S ? state_ms / 100 : REPAIR_MIN_AGE_S;
	const char *params[3] = { age, NULL, limit };
	if (!st->repaired_once) {
		age_s = 0;
		snprintf(before, sizeof(before), "%.6f", (double)st->started_us / 1e6);
		params[1] = before;
	}
	snprintf(age, sizeof(age), "%d", age_s);
	snprintf(limit, sizeof(limit), "%d", REPAIR_LIMIT);
	st->next_repair_us = time_mono_us() + REPAIR_EVERY_US;
	st->last_was_repair = true;
	if (db_exec_prepared(st->db, "state_repair", 3, params, on_repair_done, in) == 0)
		st->busy = true;
}

/* One statement at a time: a repair when one is due, but never twice in a
 * row while states wait (so neither starves the other), else the states. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *in = arg;
	struct ingest_state *st = &in->state;
	bool waiting = statemap_count(st->pending) > 0 || statemap_batches(st->pending) > 0;
	metric_set(st->m_pending, (double)statemap_count(st->pending));
	if (st->busy || !db_connected(st->db))
		return;
	if (time_mono_us() >= st->next_repair_us && !(waiting && st->last_was_repair))
		send_repair(in);
	else if (waiting)
		send_apply(in);
}

/* The first repair right after the first connection, not a tick later. */
static void on_connect(void *arg)
{
	struct ingest *in = arg;
	if (!in->state.repaired_once && !in->state.busy)
		send_repair(in);
}

bool state_idle(struct ingest *in)
{
	struct ingest_state *st = &in->state;
	bool waiting = statemap_count(st->pending) > 0 || statemap_batches(st->pending) > 0;
	if (waiting && !st->busy && db_connected(st->db))
		send_apply(in);
	return !st->busy && statemap_count(st->pending) == 0 && statemap_batches(st->pending) == 0;
}

int state_init(struct ingest *in)
{
	struct service *svc = in->svc;
	struct ingest_state *st = &in->state;
	st->started_us = time_now_us();
	st->pending = statemap_new();
	st->db = db_new(svc->base, svc->cfg.pg_dsn, "sc-ingest-state");
	st->timer = event_new(svc->base, -1, EV_PERSIST, on_tick, in);
	if (st->pending == NULL || st->db == NULL || st->timer == NULL ||
	    db_prepare(st->db, "state_apply", apply_sql, SP_COUNT) != 0 ||
	    db_prepare(st->db, "state_repair", repair_sql, 3) != 0 ||
	    db_on_connect(st->db, on_connect, in) != 0)
		return -1;
	int ms = svc->cfg.state_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	if (event_add(st->timer, &tv) != 0)
		return -1;
	struct metrics *m = svc->metrics;
	st->m_rows = metrics_counter(m, "sc_ingest_state_rows_total",
				     "device_state rows written from folded telemetry", "");
	st->m_repaired = metrics_counter(m, "sc_ingest_state_repaired_batches_total",
					 "Batches whose device states were rebuilt from telemetry", "");
	st->m_failures = metrics_counter(m, "sc_ingest_state_failures_total",
					 "device_state writes refused (left to the repair)", "");
	st->m_pending = metrics_gauge(m, "sc_ingest_state_pending_devices",
				      "Devices whose folded state waits to be written", "");
	st->m_age = metrics_histogram(m, "sc_ingest_state_age_seconds",
				      "First fold of a set of device states to its commit", "",
				      NULL, 0);
	return 0;
}

void state_free(struct ingest *in)
{
	struct ingest_state *st = &in->state;
	if (st->timer != NULL)
		event_free(st->timer);
	st->timer = NULL;
	db_free(st->db);
	st->db = NULL;
	state_set_free(&st->sending);
	statemap_free(st->pending);
	st->pending = NULL;
}

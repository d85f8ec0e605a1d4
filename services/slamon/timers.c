/*
 * SLA timers: horizon loads into a heap, fired on time (see timers.h).
 *
 * Every heap entry is checked against the id set when it comes out: it is
 * live only while the set holds its id with the same key. A timer whose
 * deadline moved gets a new entry and the old one is skipped (lazy
 * deletion), so the heap needs no position index.
 *
 * Times: due_at is the database's clock. The local wall clock may differ
 * from it; every reply carries the database's now(), and `skew` (database
 * minus local, measured when the reply arrives, so never more than the true
 * offset) turns due times into local ones. A timer is thus never sent early
 * and at worst a few milliseconds late; sc_sla_fire refuses anything more
 * than 2 s early anyway.
 */
#include "timers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "heap.h"
#include "log.h"
#include "metrics.h"
#include "timerset.h"
#include "timeutil.h"

#define US_PER_MS INT64_C(1000)

/*
 * Rows per load. A load that hits it (a backlog bigger than this is due)
 * takes the earliest ones; the next load runs once most of them fired.
 * Bounds the result set libpq holds in memory.
 */
#define LOAD_LIMIT 50000
/* The periodic reload: every timer is loaded at least this long before it
 * is due (the horizon is twice as long). */
#define RELOAD_PERIOD_S (TIMERS_HORIZON_S / 2)
/*
 * A notified timer due this long after the next periodic reload is left to
 * it: covers that reload's own latency (queued behind fires, the query).
 */
#define NOTIFY_SKIP_MARGIN_US (5 * TIME_US_PER_S)
/* Pause before retrying a load whose statement failed. */
#define LOAD_RETRY_MS 1000
/* Backoff of a fire whose statement failed: doubles per consecutive failure. */
#define FIRE_RETRY_MIN_US (1 * TIME_US_PER_S)
#define FIRE_RETRY_MAX_US (60 * TIME_US_PER_S)

static const char load_sql[] =
	"SELECT id, (extract(epoch FROM due_at) * 1000000)::int8,"
	" (extract(epoch FROM now()) * 1000000)::int8"
	" FROM sla_timer"
	" WHERE fired_at IS NULL AND due_at <= now() + make_interval(secs => $1::float8)"
	" ORDER BY due_at LIMIT $2::int";

/*
 * Fires a batch of timers (schema/035_sla_fire_many.sql: one statement, one
 * commit) and reports per timer, from the statement's snapshot: its id,
 * whether it published, its kind (for the counters), its due time and the
 * database's now() (lag, skew) and whether sc_sla_fire refused it as early
 * (its deadline moved after we loaded it). No row for a timer: it was
 * deleted (its clock stopped or paused) or fired already.
 */
static const char fire_sql[] =
	"SELECT id, published, kind, due_us, now_us, early FROM sc_sla_fire_many($1::int8[])";

enum kind { KIND_WARNING, KIND_BREACH, KIND_ESCALATION, KIND_COUNT };
static const char *const kind_names[KIND_COUNT] = { "warning", "breach", "escalation" };

/*
 * One sc_sla_fire_many in flight, the argument of its callback. A fixed
 * pool (no allocation per fire) of TIMERS_MAX_BATCHES.
 */
struct fire_batch {
	struct timers *t;             /* owner */
	int n;                        /* timers in ids */
	int64_t ids[TIMERS_FIRE_BATCH]; /* sla_timer.id being fired */
	struct fire_batch *next_free; /* free list link while unused */
};

struct timers {
	struct event_base *base;    /* not owned */
	struct db *db;              /* not owned; loads and fires share its FIFO */
	struct heap *heap;          /* (due in database time, id), lazily deleted */
	struct timerset *ids;       /* loaded timers; the authority on live entries */
	struct event *fire_ev;      /* armed at the heap's earliest key */
	struct event *reload_ev;    /* every RELOAD_PERIOD_S */
	struct event *load_ev;      /* deferred load (notify gap, retry) */
	int64_t skew_us;            /* database clock minus local clock */
	struct fire_batch batches[TIMERS_MAX_BATCHES]; /* the pool */
	struct fire_batch *free_batches; /* unused batches */
	size_t in_flight;           /* timers in batches queued or running */
	int fire_failures;          /* consecutive failed fires, for the backoff */
	bool loading;               /* a load statement is queued or running */
	bool load_again;            /* a load was asked for while one ran */
	bool truncated;             /* the last load hit LOAD_LIMIT */
	bool stopped;               /* timers_stop: no new loads or fires */
	int64_t last_load_mono;     /* when the last load was sent, monotonic µs */
	int64_t next_reload_mono;   /* when reload_ev goes off next, monotonic µs */
	struct metric *events[KIND_COUNT]; /* sc_slamon_events_total{kind} */
	struct metric *loaded;      /* sc_slamon_timers_loaded_total */
	struct metric *pending;     /* sc_slamon_timers_pending */
	struct metric *lag;         /* sc_slamon_fire_lag_seconds */
	struct metric *fire_errors; /* sc_slamon_fire_errors_total */
};

static void fire_due(struct timers *t);
static void request_load(struct timers *t);

static int64_t db_now_us(const struct timers *t)
{
	return time_now_us() + t->skew_us;
}

static void set_timeout(struct event *ev, int64_t us)
{
	if (us < 0)
		us = 0;
	struct timeval tv = { (time_t)(us / TIME_US_PER_S), (suseconds_t)(us % TIME_US_PER_S) };
	evtimer_add(ev, &tv);
}

/* A whole decimal int64 (our own query results, NOTIFY payloads). */
static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		return false;
	*out = (int64_t)v;
	return true;
}

/* Arms the fire timer at the earliest entry (stale ones just wake us early). */
static void arm(struct timers *t)
{
	struct heap_item it;
	if (t->stopped || t->free_batches == NULL || !heap_peek(t->heap, &it)) {
		evtimer_del(t->fire_ev);
		return;
	}
	set_timeout(t->fire_ev, it.key - db_now_us(t));
}

static void update_pending(struct timers *t)
{
	metric_set(t->pending, (double)timerset_count(t->ids));
}

/* Puts a loaded timer (back) in the heap under key. 0, or -1 when memory ran out. */
static int schedule(struct timers *t, struct timerset_entry *e, int64_t key)
{
	if (heap_push(t->heap, key, e->id) != 0)
		return -1;
	e->key = key;
	return 0;
}

/* ---- firing ------------------------------------------------------------ */

/* A failed batch: every timer of it is tried again after the backoff. */
static void retry_batch(struct timers *t, const struct fire_batch *b, const char *error)
{
	int64_t backoff = FIRE_RETRY_MIN_US;
	for (int i = 0; i < t->fire_failures && backoff < FIRE_RETRY_MAX_US; i++)
		backoff *= 2;
	if (backoff > FIRE_RETRY_MAX_US)
		backoff = FIRE_RETRY_MAX_US;
	t->fire_failures++;
	metric_add(t->fire_errors, 1);
	log_warn("sla timer fire failed: %s timers=%d first=%" PRId64 " retry_ms=%" PRId64,
		 error, b->n, b->ids[0], backoff / US_PER_MS);
	for (int i = 0; i < b->n; i++) {
		struct timerset_entry *e = timerset_find(t->ids, b->ids[i]);
		if (e != NULL && schedule(t, e, db_now_us(t) + backoff) != 0) {
			log_error("sla timer fire: out of memory, dropped until the next load timer=%"
				  PRId64, b->ids[i]);
			timerset_remove(t->ids, b->ids[i]);
		}
	}
}

/* One row of a batch's reply: the timer fired, refused as early, or spent. */
static void fired_one(struct timers *t, const PGresult *res, int row)
{
	int64_t id = 0, due = 0, now = 0;
	if (!parse_i64(PQgetvalue(res, row, 0), &id) || !parse_i64(PQgetvalue(res, row, 3), &due) ||
	    !parse_i64(PQgetvalue(res, row, 4), &now)) {
		log_error("sla timer fire: bad reply row=%d", row);
		return; /* the id stays in flight and is dropped with the batch's leftovers */
	}
	struct timerset_entry *e = timerset_find(t->ids, id);
	if (e == NULL || e->key != TIMERSET_IN_FLIGHT)
		return; /* cannot happen: only the batch's own ids come back */
	bool published = strcmp(PQgetvalue(res, row, 1), "t") == 0;
	const char *kind = PQgetvalue(res, row, 2);
	bool early = strcmp(PQgetvalue(res, row, 5), "t") == 0;
	t->skew_us = now - time_now_us();
	if (published) {
		for (int k = 0; k < KIND_COUNT; k++)
			if (strcmp(kind, kind_names[k]) == 0)
				metric_add(t->events[k], 1);
		/* Never negative while the clocks hold still (skew_us errs late);
		 * a clock stepped under us must not make a negative observation. */
		metric_observe(t->lag, (double)(now > due ? now - due : 0) / TIME_US_PER_S);
		log_debug("sla timer fired timer=%" PRId64 " kind=%s lag_ms=%" PRId64,
			  id, kind, (now - due) / US_PER_MS);
		timerset_remove(t->ids, id);
	} else if (early) {
		/* Its deadline moved later since we loaded it: wait for the new one,
		 * or let a later load bring it back when it is beyond the horizon. */
		e->due = due;
		if (due > now + TIMERS_HORIZON_S * TIME_US_PER_S || schedule(t, e, due) != 0)
			timerset_remove(t->ids, id);
		log_debug("sla timer not due yet timer=%" PRId64 " due_in_ms=%" PRId64,
			  id, (due - now) / US_PER_MS);
	} else {
		/* Its clock stopped, the ticket ended, or its event (escalation
		 * level) was published already: marked fired, nothing counted. */
		log_debug("sla timer fired without event timer=%" PRId64 " kind=%s", id, kind);
		timerset_remove(t->ids, id);
	}
}

static void on_fired(void *arg, const struct db_reply *r)
{
	struct fire_batch *b = arg;
	struct timers *t = b->t;

	t->in_flight -= (size_t)b->n;
	if (r->error != NULL) {
		/* Deadlock, serialization failure, a bug: keep them, try again later. */
		retry_batch(t, b, r->error);
	} else {
		t->fire_failures = 0;
		for (int i = 0; i < PQntuples(r->res); i++)
			fired_one(t, r->res, i);
		/* No row: deleted (its clock stopped or paused) or fired already. */
		for (int i = 0; i < b->n; i++) {
			struct timerset_entry *e = timerset_find(t->ids, b->ids[i]);
			if (e != NULL && e->key == TIMERSET_IN_FLIGHT) {
				log_debug("sla timer gone timer=%" PRId64, b->ids[i]);
				timerset_remove(t->ids, b->ids[i]);
			}
		}
	}
	b->n = 0;
	b->next_free = t->free_batches;
	t->free_batches = b;
	update_pending(t);
	/* A truncated load left more due timers in the database: fetch them
	 * once most of what it brought has fired. */
	if (t->truncated && !t->loading && timerset_count(t->ids) < LOAD_LIMIT / 4)
		request_load(t);
	fire_due(t);
}

/* The batch's ids as a PostgreSQL array literal, "{1,2,3}". 0 or -1. */
static int batch_param(const struct fire_batch *b, char *buf, size_t len)
{
	size_t off = 0;
	for (int i = 0; i < b->n; i++) {
		int n = snprintf(buf + off, len - off, "%c%" PRId64, i == 0 ? '{' : ',', b->ids[i]);
		if (n < 0 || (size_t)n >= len - off)
			return -1;
		off += (size_t)n;
	}
	if (off + 2 > len)
		return -1;
	buf[off] = '}';
	buf[off + 1] = '\0';
	return 0;
}

/*
 * Sends every live entry that is due, in batches of up to TIMERS_FIRE_BATCH,
 * while a batch of the pool is free. A batch goes as soon as it holds what
 * is due now: batching never waits for more.
 */
static void fire_due(struct timers *t)
{
	struct heap_item it;
	/* 20 digits and a comma per id, braces and NUL. */
	static char param[TIMERS_FIRE_BATCH * 21 + 3];
	while (!t->stopped && t->free_batches != NULL && heap_peek(t->heap, &it) &&
	       it.key <= db_now_us(t)) {
		struct fire_batch *b = t->free_batches;
		b->n = 0;
		while (b->n < TIMERS_FIRE_BATCH && heap_peek(t->heap, &it) && it.key <= db_now_us(t)) {
			heap_pop(t->heap, NULL);
			struct timerset_entry *e = timerset_find(t->ids, it.id);
			if (e == NULL || e->key != it.key)
				continue; /* stale: fired, moved, or in flight */
			e->key = TIMERSET_IN_FLIGHT;
			b->ids[b->n++] = it.id;
		}
		if (b->n == 0)
			break;
		const char *params[1] = { param };
		if (batch_param(b, param, sizeof(param)) != 0 ||
		    db_exec_prepared(t->db, "slamon_fire", 1, params, on_fired, b) != 0) {
			/* Out of memory: put them back and try again shortly. */
			for (int i = 0; i < b->n; i++) {
				struct timerset_entry *e = timerset_find(t->ids, b->ids[i]);
				if (e != NULL && schedule(t, e, e->due) != 0)
					timerset_remove(t->ids, b->ids[i]);
			}
			log_error("sla timer fire: cannot queue statement timers=%d", b->n);
			b->n = 0;
			set_timeout(t->fire_ev, 100 * US_PER_MS);
			return;
		}
		t->free_batches = b->next_free;
		t->in_flight += (size_t)b->n;
	}
	arm(t);
}

static void on_fire_timer(evutil_socket_t fd, short what, void *arg)
{
	fire_due(arg);
}

/* ---- loading ----------------------------------------------------------- */

static void on_loaded(void *arg, const struct db_reply *r)
{
	struct timers *t = arg;
	t->loading = false;
	if (r->error != NULL) {
		log_warn("sla timer load failed: %s retry_ms=%d", r->error, LOAD_RETRY_MS);
		if (!t->stopped)
			set_timeout(t->load_ev, LOAD_RETRY_MS * US_PER_MS);
		return;
	}
	int rows = PQntuples(r->res);
	int added = 0, moved = 0;
	for (int i = 0; i < rows; i++) {
		int64_t id, due, now;
		if (!parse_i64(PQgetvalue(r->res, i, 0), &id) || id <= 0 ||
		    !parse_i64(PQgetvalue(r->res, i, 1), &due) ||
		    !parse_i64(PQgetvalue(r->res, i, 2), &now)) {
			log_error("sla timer load: bad row row=%d", i);
			continue;
		}
		if (i == 0)
			t->skew_us = now - time_now_us();
		bool is_new;
		struct timerset_entry *e = timerset_add(t->ids, id, &is_new);
		if (e == NULL) {
			log_error("sla timer load: out of memory loaded=%d of=%d", added, rows);
			break;
		}
		if (is_new) {
			e->due = due;
			if (schedule(t, e, due) != 0) {
				timerset_remove(t->ids, id);
				log_error("sla timer load: out of memory loaded=%d of=%d", added, rows);
				break;
			}
			added++;
		} else if (e->key != TIMERSET_IN_FLIGHT && e->due != due) {
			/* Its deadline moved: the new entry supersedes the old one. */
			e->due = due;
			if (schedule(t, e, due) != 0) {
				log_error("sla timer load: out of memory timer=%" PRId64, id);
				break;
			}
			moved++;
		}
	}
	t->truncated = rows >= LOAD_LIMIT;
	metric_add(t->loaded, added);
	update_pending(t);
	if (t->truncated)
		log_info("sla timers: backlog larger than one load added=%d rows=%d pending=%zu",
			 added, rows, timerset_count(t->ids));
	else
		log_debug("sla timers loaded added=%d moved=%d rows=%d pending=%zu",
			  added, moved, rows, timerset_count(t->ids));
	if (t->load_again) {
		t->load_again = false;
		request_load(t);
	}
	fire_due(t);
}

static void start_load(struct timers *t)
{
	char horizon[16], limit[16];
	snprintf(horizon, sizeof(horizon), "%d", TIMERS_HORIZON_S);
	snprintf(limit, sizeof(limit), "%d", LOAD_LIMIT);
	const char *params[2] = { horizon, limit };
	if (db_exec_prepared(t->db, "slamon_load", 2, params, on_loaded, t) != 0) {
		log_error("sla timer load: cannot queue statement retry_ms=%d", LOAD_RETRY_MS);
		set_timeout(t->load_ev, LOAD_RETRY_MS * US_PER_MS);
		return;
	}
	t->loading = true;
	t->last_load_mono = time_mono_us();
}

/*
 * Loads the horizon now, or as soon as allowed: one load at a time (a
 * request meanwhile runs another after it, since the running one may have
 * missed what the request is about), and not more often than every
 * TIMERS_NOTIFY_GAP_MS, so a burst of notifications costs one query.
 */
static void request_load(struct timers *t)
{
	/* Disconnected: the load after the reconnect covers it (a query queued
	 * now would only hold up a shutdown meanwhile). */
	if (t->stopped || !db_connected(t->db))
		return;
	if (t->loading) {
		t->load_again = true;
		return;
	}
	if (evtimer_pending(t->load_ev, NULL))
		return; /* already deferred */
	int64_t wait = t->last_load_mono + TIMERS_NOTIFY_GAP_MS * US_PER_MS - time_mono_us();
	if (t->last_load_mono != 0 && wait > 0) {
		set_timeout(t->load_ev, wait);
		return;
	}
	start_load(t);
}

static void on_load_timer(evutil_socket_t fd, short what, void *arg)
{
	request_load(arg);
}

static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
	struct timers *t = arg;
	t->next_reload_mono = time_mono_us() + RELOAD_PERIOD_S * TIME_US_PER_S;
	request_load(t);
}

/* When the periodic reload runs next, in database time. */
static int64_t next_reload_db_us(const struct timers *t)
{
	return db_now_us(t) + (t->next_reload_mono - time_mono_us());
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct timers *t = arg;
	int64_t due;
	/*
	 * sc_sla_start names the earliest new due time. A timer due after the
	 * next periodic reload is loaded by it (or a later one) in time, so a
	 * query now would only re-read the horizon: skip it. This is what keeps
	 * a storm of new tickets from costing a reload per 100 ms.
	 */
	if (payload != NULL && parse_i64(payload, &due) &&
	    due > next_reload_db_us(t) + NOTIFY_SKIP_MARGIN_US)
		return;
	/*
	 * While a backlog is worked off, reloading the earliest LOAD_LIMIT rows
	 * on every notification would cost much and bring nothing: they are
	 * due before anything just created (unless more than LOAD_LIMIT timers
	 * fall due within the horizon, over 400 a second). The load made once
	 * the backlog shrank brings the new timers in due order.
	 */
	if (t->truncated)
		return;
	request_load(t);
}

/* After every (re)connect: what changed while we were away is in the table. */
static void on_connect(void *arg)
{
	request_load(arg);
}

/* ---- lifecycle --------------------------------------------------------- */

struct timers *timers_new(struct event_base *base, struct db *db, struct metrics *m)
{
	struct timers *t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail;
	t->base = base;
	t->db = db;
	t->heap = heap_new();
	t->ids = timerset_new();
	t->fire_ev = evtimer_new(base, on_fire_timer, t);
	t->load_ev = evtimer_new(base, on_load_timer, t);
	t->reload_ev = event_new(base, -1, EV_PERSIST, on_reload_timer, t);
	if (t->heap == NULL || t->ids == NULL || t->fire_ev == NULL || t->load_ev == NULL ||
	    t->reload_ev == NULL)
		goto fail;
	for (size_t i = 0; i < TIMERS_MAX_BATCHES; i++) {
		t->batches[i].t = t;
		t->batches[i].next_free = t->free_batches;
		t->free_batches = &t->batches[i];
	}

	for (int k = 0; k < KIND_COUNT; k++) {
		char labels[64];
		if (metrics_labels(labels, sizeof(labels), "kind", kind_names[k], NULL) != 0)
			goto fail;
		t->events[k] = metrics_counter(m, "sc_slamon_events_total",
					       "SLA events published (warnings, breaches, escalations), by kind",
					       labels);
		if (t->events[k] == NULL)
			goto fail;
	}
	/* Lag from due to fired: a few ms normally, minutes after an outage. */
	static const double lag_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
					     2.5, 5, 10, 30, 60, 300, 900, 3600 };
	t->lag = metrics_histogram(m, "sc_slamon_fire_lag_seconds",
				   "Database time from a timer's due_at to its firing", "",
				   lag_bounds, sizeof(lag_bounds) / sizeof(lag_bounds[0]));
	t->loaded = metrics_counter(m, "sc_slamon_timers_loaded_total",
				    "SLA timers loaded into the heap", "");
	t->pending = metrics_gauge(m, "sc_slamon_timers_pending",
				   "SLA timers held in memory, not yet fired", "");
	t->fire_errors = metrics_counter(m, "sc_slamon_fire_errors_total",
					 "sc_sla_fire statements that failed (retried)", "");
	if (t->lag == NULL || t->loaded == NULL || t->pending == NULL || t->fire_errors == NULL)
		goto fail;

	if (db_prepare(db, "slamon_load", load_sql, 2) != 0 ||
	    db_prepare(db, "slamon_fire", fire_sql, 1) != 0 ||
	    db_listen(db, "sla_timer", on_notify, t) != 0 ||
	    db_on_connect(db, on_connect, t) != 0)
		goto fail;
	struct timeval period = { RELOAD_PERIOD_S, 0 };
	event_add(t->reload_ev, &period);
	t->next_reload_mono = time_mono_us() + RELOAD_PERIOD_S * TIME_US_PER_S;
	return t;
fail:
	log_error("sla timers: cannot set up: out of memory or bad registration");
	timers_free(t);
	return NULL;
}

void timers_free(struct timers *t)
{
	if (t == NULL)
		return;
	if (t->fire_ev != NULL)
		event_free(t->fire_ev);
	if (t->load_ev != NULL)
		event_free(t->load_ev);
	if (t->reload_ev != NULL)
		event_free(t->reload_ev);
	timerset_free(t->ids);
	heap_free(t->heap);
	free(t);
}

void timers_stop(struct timers *t)
{
	if (t->stopped)
		return;
	t->stopped = true;
	evtimer_del(t->fire_ev);
	evtimer_del(t->load_ev);
	event_del(t->reload_ev);
	log_info("sla timers stopped in_flight=%zu pending=%zu", t->in_flight,
		 timerset_count(t->ids));
}

size_t timers_in_flight(const struct timers *t)
{
	return t->in_flight;
}

size_t timers_pending(const struct timers *t)
{
	return timerset_count(t->ids);
}

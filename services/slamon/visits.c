/*
 * Return visits: a single timer at the next due instant (see visits.h).
 */
#include "visits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"
#include "timeutil.h"

/* Pause before retrying a tick whose statement failed. */
#define RETRY_US (1 * TIME_US_PER_S)

/* Next instant (NULL: nothing waits) and the database's now(), µs. */
static const char tick_sql[] =
	"SELECT (extract(epoch FROM n) * 1000000)::int8, (extract(epoch FROM now()) * 1000000)::int8"
	" FROM sc_return_visit_tick(1000) n";

struct visits {
	struct db *db;           /* not owned */
	struct event *timer;     /* armed at the next due instant (or the cap) */
	bool ticking;            /* a tick is queued or running */
	bool again;              /* a tick was asked for while one ran */
	bool stopped;
	int64_t armed_db_us;     /* database time the timer is armed for; 0: not armed */
	int64_t skew_us;         /* database clock minus local clock */
};

static void tick(struct visits *v);

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		return false;
	*out = (int64_t)x;
	return true;
}

/* Arms the timer for database instant at_db_us, no later than the cap. */
static void arm(struct visits *v, int64_t at_db_us)
{
	int64_t now_db = time_now_us() + v->skew_us;
	int64_t cap = now_db + VISITS_MAX_WAIT_S * TIME_US_PER_S;
	if (at_db_us > cap)
		at_db_us = cap;
	int64_t wait = at_db_us - now_db;
	if (wait < 0)
		wait = 0;
	struct timeval tv = { (time_t)(wait / TIME_US_PER_S), (suseconds_t)(wait % TIME_US_PER_S) };
	evtimer_add(v->timer, &tv);
	v->armed_db_us = at_db_us;
}

static void on_ticked(void *arg, const struct db_reply *r)
{
	struct visits *v = arg;
	int64_t next = 0, now = 0;
	v->ticking = false;
	if (v->stopped)
		return;
	if (r->error != NULL) {
		log_warn("return visit tick failed: %s retry_ms=%" PRId64, r->error, RETRY_US / 1000);
		arm(v, time_now_us() + v->skew_us + RETRY_US);
		return;
	}
	if (PQntuples(r->res) != 1 || !parse_i64(PQgetvalue(r->res, 0, 1), &now)) {
		log_error("return visit tick: bad reply");
		arm(v, time_now_us() + v->skew_us + RETRY_US);
		return;
	}
	v->skew_us = now - time_now_us();
	if (v->again) {
		v->again = false;
		tick(v);
		return;
	}
	if (PQgetisnull(r->res, 0, 0) || !parse_i64(PQgetvalue(r->res, 0, 0), &next))
		next = INT64_MAX; /* nothing waits: only the cap wakes us */
	arm(v, next);
}

static void tick(struct visits *v)
{
	if (v->stopped || !db_connected(v->db))
		return;
	if (v->ticking) {
		v->again = true;
		return;
	}
	evtimer_del(v->timer);
	v->armed_db_us = 0;
	if (db_exec_prepared(v->db, "slamon_visit_tick", 0, NULL, on_ticked, v) != 0) {
		log_error("return visit tick: cannot queue statement");
		arm(v, time_now_us() + v->skew_us + RETRY_US);
		return;
	}
	v->ticking = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct visits *v = arg;
	v->armed_db_us = 0;
	tick(v);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	(void)channel;
	struct visits *v = arg;
	int64_t due;
	if (v->stopped)
		return;
	if (payload == NULL || !parse_i64(payload, &due)) {
		tick(v);
		return;
	}
	/* Earlier than what we wait for: wait for it instead. A tick in flight
	 * answers with it anyway (the visit's row is committed). */
	if (!v->ticking && (v->armed_db_us == 0 || due < v->armed_db_us))
		arm(v, due);
}

static void on_connect(void *arg)
{
	tick(arg);
}

struct visits *visits_new(struct event_base *base, struct db *db)
{
	struct visits *v = calloc(1, sizeof(*v));
	if (v == NULL)
		goto fail;
	v->db = db;
	v->timer = evtimer_new(base, on_timer, v);
	if (v->timer == NULL)
		goto fail;
	if (db_prepare(db, "slamon_visit_tick", tick_sql, 0) != 0 ||
	    db_listen(db, "return_visit", on_notify, v) != 0 ||
	    db_on_connect(db, on_connect, v) != 0)
		goto fail;
	return v;
fail:
	log_error("return visits: cannot set up: out of memory or bad registration");
	visits_free(v);
	return NULL;
}

void visits_stop(struct visits *v)
{
	v->stopped = true;
	evtimer_del(v->timer);
}

int visits_in_flight(const struct visits *v)
{
	return v->ticking ? 1 : 0;
}

void visits_free(struct visits *v)
{
	if (v == NULL)
		return;
	if (v->timer != NULL)
		event_free(v->timer);
	free(v);
}

/*
 * Province KPIs every kpi_interval_s (see kpi.h).
 */
#include "kpi.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"

/* Until the first answer, and after a failed round. */
#define DEFAULT_PERIOD_S 60.0
#define RETRY_S 5.0
/* Bounds on the period the setting may ask for. */
#define MIN_PERIOD_S 0.2
#define MAX_PERIOD_S 86400.0

struct kpi {
	struct db *db;        /* not owned */
	struct event *timer;  /* the next round */
	bool running;         /* a round is queued or running */
	bool stopped;
};

static void arm(struct kpi *k, double s)
{
	if (!(s >= MIN_PERIOD_S))
		s = MIN_PERIOD_S;
	if (s > MAX_PERIOD_S)
		s = MAX_PERIOD_S;
	struct timeval tv = { (time_t)s, (suseconds_t)((s - floor(s)) * 1e6) };
	evtimer_add(k->timer, &tv);
}

static void on_published(void *arg, const struct db_reply *r)
{
	struct kpi *k = arg;
	k->running = false;
	if (k->stopped)
		return;
	if (r->error != NULL) {
		log_warn("kpi round failed: %s retry_s=%g", r->error, RETRY_S);
		arm(k, RETRY_S);
		return;
	}
	double period = DEFAULT_PERIOD_S;
	if (PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0))
		period = strtod(PQgetvalue(r->res, 0, 0), NULL);
	log_debug("kpi published next_s=%g", period);
	arm(k, period);
}

static void round_start(struct kpi *k)
{
	if (k->stopped || k->running || !db_connected(k->db))
		return;
	evtimer_del(k->timer);
	if (db_exec_prepared(k->db, "slamon_kpi", 0, NULL, on_published, k) != 0) {
		log_error("kpi round: cannot queue statement");
		arm(k, RETRY_S);
		return;
	}
	k->running = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	round_start(arg);
}

static void on_connect(void *arg)
{
	round_start(arg);
}

struct kpi *kpi_new(struct event_base *base, struct db *db)
{
	struct kpi *k = calloc(1, sizeof(*k));
	if (k == NULL)
		goto fail;
	k->db = db;
	k->timer = evtimer_new(base, on_timer, k);
	if (k->timer == NULL)
		goto fail;
	if (db_prepare(db, "slamon_kpi", "SELECT sc_kpi_publish()", 0) != 0 ||
	    db_on_connect(db, on_connect, k) != 0)
		goto fail;
	return k;
fail:
	log_error("kpi: cannot set up: out of memory or bad registration");
	kpi_free(k);
	return NULL;
}

void kpi_stop(struct kpi *k)
{
	k->stopped = true;
	evtimer_del(k->timer);
}

int kpi_in_flight(const struct kpi *k)
{
	return k->running ? 1 : 0;
}

void kpi_free(struct kpi *k)
{
	if (k == NULL)
		return;
	if (k->timer != NULL)
		event_free(k->timer);
	free(k);
}

/*
 * sc_slamon_clocks_open: a periodic count of the running SLA clocks
 * (see clocks.h).
 */
#include "clocks.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"
#include "metrics.h"

/* Counts only when sla_clock changed since $1 (schema/034_kpi.sql). */
static const char count_sql[] =
	"SELECT version, respond, arrive, resolve FROM sc_sla_clock_counts($1::int8)";

enum { CLOCK_RESPOND, CLOCK_ARRIVE, CLOCK_RESOLVE, CLOCK_COUNT };
static const char *const clock_names[CLOCK_COUNT] = { "respond", "arrive", "resolve" };

struct clocks {
	struct db *db;
	struct event *tick;            /* every CLOCKS_REFRESH_S */
	bool counting;                 /* a count is queued or running */
	bool stopped;
	char version[24];              /* sla_clock's change counter at the last count, "" before */
	struct metric *open[CLOCK_COUNT];
};

static void on_counted(void *arg, const struct db_reply *r)
{
	struct clocks *c = arg;
	c->counting = false;
	if (r->error != NULL) {
		log_warn("clock count failed: %s", r->error);
		return;
	}
	if (PQntuples(r->res) != 1)
		return;
	/* NULL counts: nothing changed since the last count, the gauge holds. */
	if (PQgetisnull(r->res, 0, 1))
		return;
	for (int k = 0; k < CLOCK_COUNT; k++)
		metric_set(c->open[k], strtod(PQgetvalue(r->res, 0, 1 + k), NULL));
	snprintf(c->version, sizeof(c->version), "%s", PQgetvalue(r->res, 0, 0));
}

static void refresh(struct clocks *c)
{
	/* One at a time, and none queued while the database is away (the
	 * reconnect counts again). */
	if (c->counting || c->stopped || !db_connected(c->db))
		return;
	const char *params[1] = { c->version[0] != '\0' ? c->version : NULL };
	if (db_exec_prepared(c->db, "slamon_clocks", 1, params, on_counted, c) != 0) {
		log_error("clock count: cannot queue statement");
		return;
	}
	c->counting = true;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	refresh(arg);
}

static void on_connect(void *arg)
{
	refresh(arg);
}

struct clocks *clocks_new(struct event_base *base, struct db *db, struct metrics *m)
{
	struct clocks *c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->db = db;
	c->tick = event_new(base, -1, EV_PERSIST, on_tick, c);
	if (c->tick == NULL)
		goto fail;
	for (int k = 0; k < CLOCK_COUNT; k++) {
		char labels[64];
		if (metrics_labels(labels, sizeof(labels), "clock", clock_names[k], NULL) != 0)
			goto fail;
		c->open[k] = metrics_gauge(m, "sc_slamon_clocks_open",
					   "Running SLA clocks, by clock", labels);
		if (c->open[k] == NULL)
			goto fail;
	}
	if (db_prepare(db, "slamon_clocks", count_sql, 1) != 0 ||
	    db_on_connect(db, on_connect, c) != 0)
		goto fail;
	struct timeval period = { CLOCKS_REFRESH_S, 0 };
	event_add(c->tick, &period);
	return c;
fail:
	log_error("clock gauge: cannot set up: out of memory or bad registration");
	clocks_free(c);
	return NULL;
}

void clocks_stop(struct clocks *c)
{
	c->stopped = true;
	event_del(c->tick);
}

void clocks_free(struct clocks *c)
{
	if (c == NULL)
		return;
	if (c->tick != NULL)
		event_free(c->tick);
	free(c);
}

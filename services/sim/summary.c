/*
 * The summary: what the platform made of the simulation, read from its
 * database with one statement (one round trip, through common/db.h, never
 * blocking the loop), beside the sim's own counters.
 *
 * --summary: on a terminal the screen is redrawn every second (ANSI clear
 * and home); otherwise (a pipe, a log file) one key=value line every
 * 5 seconds. The final summary, at the end of a run, is the full block,
 * without the clear.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"
#include "service.h"
#include "sim.h"
#include "strbuf.h"
#include "timeutil.h"

#define TTY_PERIOD_S 1
#define PLAIN_PERIOD_S 5
#define FINAL_WAIT_S 5   /* the final summary gives up on the database then */

/* Columns of summary_sql, in order. */
enum col {
	C_NEW, C_OFFERED, C_ASSIGNED, C_EN_ROUTE, C_ON_SITE, C_RESOLVED, C_CLOSED, C_MANUAL,
	C_CANCELLED, C_CLEARED,
	C_ONSITE, C_REMOTE, C_OUTSOURCED, C_NO_MODE, C_TICKETS,
	C_OFFERS, C_ACCEPTED, C_DECLINED, C_EXPIRED, C_WITHDRAWN, C_FTF_KNOWN, C_FTF,
	C_WARNINGS, C_BREACHES, C_MET, C_MISSED,
	C_ESC1, C_ESC2, C_ESC3,
	C_REJECTED, C_ALERTS,
	NCOLS
};

/* Ticket states in column order (C_NEW..C_CLEARED). */
static const char *const state_names[] = {
	"new", "offered", "assigned", "en_route", "on_site", "resolved", "closed", "manual",
	"cancelled", "cleared",
};

/* Every offer is one work_order row; accepted_at stays set once accepted. */
static const char summary_sql[] =
	"WITH t AS (SELECT"
	"  count(*) FILTER (WHERE state = 'new'), count(*) FILTER (WHERE state = 'offered'),"
	"  count(*) FILTER (WHERE state = 'assigned'), count(*) FILTER (WHERE state = 'en_route'),"
	"  count(*) FILTER (WHERE state = 'on_site'), count(*) FILTER (WHERE state = 'resolved'),"
	"  count(*) FILTER (WHERE state = 'closed'), count(*) FILTER (WHERE state = 'manual'),"
	"  count(*) FILTER (WHERE state = 'cancelled'), count(*) FILTER (WHERE state = 'cleared'),"
	"  count(*) FILTER (WHERE mode = 'onsite'), count(*) FILTER (WHERE mode = 'remote'),"
	"  count(*) FILTER (WHERE mode = 'outsourced'), count(*) FILTER (WHERE mode IS NULL),"
	"  count(*) FROM ticket),"
	" o AS (SELECT count(*), count(*) FILTER (WHERE accepted_at IS NOT NULL),"
	"  count(*) FILTER (WHERE state = 'declined'), count(*) FILTER (WHERE state = 'expired'),"
	"  count(*) FILTER (WHERE state = 'withdrawn'),"
	"  count(*) FILTER (WHERE state = 'resolved' AND first_time_fix IS NOT NULL),"
	"  count(*) FILTER (WHERE state = 'resolved' AND first_time_fix) FROM work_order),"
	" s AS (SELECT count(*) FILTER (WHERE kind = 'warning'),"
	"  count(*) FILTER (WHERE kind = 'breach') FROM sla_event),"
	/* Decided clocks as sc_kpi counts them (schema/034_kpi.sql): met when
	 * stopped by the deadline, missed when stopped later or still open past
	 * it. */
	" k AS (SELECT count(*) FILTER (WHERE state = 'stopped' AND stopped_at <= deadline),"
	"  count(*) FILTER (WHERE (state = 'stopped' AND stopped_at > deadline)"
	"   OR (state IN ('running', 'paused') AND deadline < now())) FROM sla_clock),"
	" e AS (SELECT count(*) FILTER (WHERE level = 1), count(*) FILTER (WHERE level = 2),"
	"  count(*) FILTER (WHERE level = 3) FROM escalation),"
	" r AS (SELECT count(*) FROM rejected),"
	" a AS (SELECT count(*) FROM alert)"
	" SELECT * FROM t, o, s, k, e, r, a";

struct summary {
	struct sim *sim;
	struct event *tick_ev;
	struct event *final_ev;     /* final summary's time limit */
	bool tty;                   /* stdout is a terminal */
	bool in_flight;             /* a query is out */
	void (*final_cb)(struct sim *sim); /* set while the final summary is due */
	struct strbuf out;
};

/* ---- formatting ------------------------------------------------------------- */

static void fmt_uptime(char *buf, size_t len, double s)
{
	long t = (long)(s + 0.5); /* libevent's coarse clock may end a run a little early */
	snprintf(buf, len, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void put_sim_lines(struct strbuf *b, const struct sim *sim)
{
	const struct sim_stats *st = &sim->stats;
	strbuf_printf(b, "devices   %zu, %zu in a fault (%" PRIu64 " began, %" PRIu64 " repaired, %"
		      PRIu64 " went away)\n",
		      devices_count(sim->devices), devices_faulty(sim->devices), st->faults_started,
		      st->faults_repaired, st->faults_recovered);
	strbuf_printf(b, "telemetry sent %" PRIu64 ", acked %" PRIu64 ", not sent (offline) %" PRIu64
		      "\n",
		      st->telemetry_sent, st->telemetry_acked, st->telemetry_failed);
	strbuf_printf(b, "requests  %" PRIu64 " sent  offers in %" PRIu64 ": accepted %" PRIu64
		      ", declined %" PRIu64 ", silent %" PRIu64 ", withdrawn %" PRIu64 "\n",
		      st->requests_sent, st->offers_received, st->offers_accepted,
		      st->offers_declined, st->offers_silent, st->offers_withdrawn);
	strbuf_printf(b, "jobs      %zu in progress, %" PRIu64 " resolved, %" PRIu64 " unresolved",
		      actors_jobs(sim->actors), st->jobs_resolved, st->jobs_unresolved);
	if (st->jobs_abandoned > 0)
		strbuf_printf(b, ", %" PRIu64 " left unfinished at the stop", st->jobs_abandoned);
	strbuf_putc(b, '\n');
	if (st->alarms_sent > 0 || st->dups_sent > 0 || st->malformed_sent > 0)
		strbuf_printf(b, "mischief  alarms %" PRIu64 ", repeats %" PRIu64 ", malformed %" PRIu64
			      " (acked)\n",
			      st->alarms_sent, st->dups_sent, st->malformed_sent);
}

static void put_dashboard(struct strbuf *b, const struct sim *sim)
{
	const struct world *w = sim->world;
	const char *addr = sim->svc->cfg.http_addr ? sim->svc->cfg.http_addr : "127.0.0.1:8080";
	if (w == NULL || w->nprovinces == 0) {
		strbuf_printf(b, "zone dashboard: http://%s/zone/<province>\n", addr);
		return;
	}
	strbuf_printf(b, "zone dashboard: http://%s/zone/%s", addr, w->provinces[0]);
	if (w->nprovinces > 1) {
		strbuf_puts(b, "  (other zones:");
		for (size_t i = 1; i < w->nprovinces && i < 12; i++)
			strbuf_printf(b, " %s", w->provinces[i]);
		if (w->nprovinces > 12)
			strbuf_puts(b, " ...");
		strbuf_putc(b, ')');
	}
	strbuf_putc(b, '\n');
}

/* The full block. c is NULL when the database did not answer (why says why). */
static void put_block(struct strbuf *b, const struct sim *sim, const long long *c,
		      const char *title, const char *why)
{
	char up[32];
	fmt_uptime(up, sizeof(up), sim_uptime_s(sim));
	strbuf_printf(b, "sc-sim %s  seed %llu  up %s\n", title,
		      (unsigned long long)sim->opts.seed, up);
	put_sim_lines(b, sim);
	if (c == NULL) {
		strbuf_printf(b, "platform  (database unavailable: %s)\n", why ? why : "no answer");
	} else {
		strbuf_printf(b, "tickets   total %lld\n  open   ", c[C_TICKETS]);
		for (int i = C_NEW; i <= C_MANUAL; i++)
			if (i != C_RESOLVED && i != C_CLOSED)
				strbuf_printf(b, " %s %lld", state_names[i], c[i]);
		strbuf_printf(b, "\n  ended   resolved %lld closed %lld cancelled %lld cleared %lld\n",
			      c[C_RESOLVED], c[C_CLOSED], c[C_CANCELLED], c[C_CLEARED]);
		strbuf_printf(b, "mode      onsite %lld  remote %lld  outsourced %lld  not yet %lld\n",
			      c[C_ONSITE], c[C_REMOTE], c[C_OUTSOURCED], c[C_NO_MODE]);
		strbuf_printf(b, "offers    made %lld  accepted %lld  declined %lld  expired %lld"
			      "  withdrawn %lld\n",
			      c[C_OFFERS], c[C_ACCEPTED], c[C_DECLINED], c[C_EXPIRED], c[C_WITHDRAWN]);
		strbuf_printf(b, "sla       warnings %lld  breaches %lld  escalations: level 1 %lld,"
			      " level 2 %lld, level 3 %lld\n",
			      c[C_WARNINGS], c[C_BREACHES], c[C_ESC1], c[C_ESC2], c[C_ESC3]);
		if (c[C_MET] + c[C_MISSED] > 0)
			strbuf_printf(b, "sla compliance %.1f%% (%lld of %lld decided clocks met)\n",
				      100.0 * (double)c[C_MET] / (double)(c[C_MET] + c[C_MISSED]),
				      c[C_MET], c[C_MET] + c[C_MISSED]);
		else
			strbuf_puts(b, "sla compliance -  (no clock decided yet)\n");
		if (c[C_FTF_KNOWN] > 0)
			strbuf_printf(b, "first-time-fix %.0f%% (%lld of %lld resolved orders)\n",
				      100.0 * (double)c[C_FTF] / (double)c[C_FTF_KNOWN], c[C_FTF],
				      c[C_FTF_KNOWN]);
		else
			strbuf_puts(b, "first-time-fix -  (no resolved orders yet)\n");
		strbuf_printf(b, "alerts    %lld  rejected messages %lld\n", c[C_ALERTS],
			      c[C_REJECTED]);
	}
	put_dashboard(b, sim);
}

/* One key=value line for logs and pipes. */
static void put_line(struct strbuf *b, const struct sim *sim, const long long *c)
{
	strbuf_printf(b, "summary t=%.0fs telemetry=%" PRIu64 " requests=%" PRIu64
		      " faults=%zu offers_in=%" PRIu64,
		      sim_uptime_s(sim), sim->stats.telemetry_acked, sim->stats.requests_sent,
		      devices_faulty(sim->devices), sim->stats.offers_received);
	if (c == NULL) {
		strbuf_puts(b, " db=unavailable\n");
		return;
	}
	strbuf_printf(b, " tickets=%lld", c[C_TICKETS]);
	for (int i = C_NEW; i <= C_CLEARED; i++)
		strbuf_printf(b, " %s=%lld", state_names[i], c[i]);
	strbuf_printf(b, " onsite=%lld remote=%lld outsourced=%lld offers=%lld accepted=%lld"
		      " declined=%lld expired=%lld warnings=%lld breaches=%lld esc1=%lld esc2=%lld"
		      " esc3=%lld",
		      c[C_ONSITE], c[C_REMOTE], c[C_OUTSOURCED], c[C_OFFERS], c[C_ACCEPTED],
		      c[C_DECLINED], c[C_EXPIRED], c[C_WARNINGS], c[C_BREACHES], c[C_ESC1],
		      c[C_ESC2], c[C_ESC3]);
	if (c[C_MET] + c[C_MISSED] > 0)
		strbuf_printf(b, " sla_met=%.1f%%",
			      100.0 * (double)c[C_MET] / (double)(c[C_MET] + c[C_MISSED]));
	if (c[C_FTF_KNOWN] > 0)
		strbuf_printf(b, " ftf=%.0f%%", 100.0 * (double)c[C_FTF] / (double)c[C_FTF_KNOWN]);
	strbuf_printf(b, " rejected=%lld alerts=%lld\n", c[C_REJECTED], c[C_ALERTS]);
}

static void emit(struct summary *s)
{
	if (!strbuf_ok(&s->out))
		return;
	fwrite(s->out.data, 1, s->out.len, stdout);
	fflush(stdout);
}

/* ---- queries ------------------------------------------------------------------ */

static void print_final(struct summary *s, const long long *c, const char *why)
{
	void (*cb)(struct sim *) = s->final_cb;
	s->final_cb = NULL;
	evtimer_del(s->final_ev);
	strbuf_reset(&s->out);
	put_block(&s->out, s->sim, c, "final summary", why);
	emit(s);
	cb(s->sim);
}

static void on_reply(void *arg, const struct db_reply *r)
{
	struct summary *s = arg;
	long long c[NCOLS];
	const long long *cols = NULL;
	s->in_flight = false;
	if (r->error == NULL && PQntuples(r->res) == 1 && PQnfields(r->res) == NCOLS) {
		for (int i = 0; i < NCOLS; i++)
			c[i] = strtoll(PQgetvalue(r->res, 0, i), NULL, 10);
		cols = c;
	} else if (r->error != NULL) {
		log_warn("summary query failed: %s", r->error);
	}
	if (s->final_cb != NULL) {
		print_final(s, cols, r->error);
		return;
	}
	if (s->sim->halted)
		return;
	strbuf_reset(&s->out);
	if (s->tty) {
		strbuf_puts(&s->out, "\033[H\033[2J");
		put_block(&s->out, s->sim, cols, "live summary", r->error);
	} else {
		put_line(&s->out, s->sim, cols);
	}
	emit(s);
}

static void query(struct summary *s)
{
	if (s->in_flight)
		return; /* the database is slower than the screen: skip a beat */
	if (db_exec_sql(s->sim->svc->db, summary_sql, 0, NULL, on_reply, s) != 0) {
		log_error("summary query: out of memory");
		return;
	}
	s->in_flight = true;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	query(arg);
}

static void on_final_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct summary *s = arg;
	if (s->final_cb != NULL)
		print_final(s, NULL, "no answer in time");
}

/* ---- lifecycle -------------------------------------------------------------------- */

int summary_start(struct summary *s)
{
	if (!s->sim->opts.summary)
		return 0;
	struct timeval tv = { s->tty ? TTY_PERIOD_S : PLAIN_PERIOD_S, 0 };
	event_add(s->tick_ev, &tv);
	/* A first look at once, so even a short run shows a live line. */
	query(s);
	return 0;
}

void summary_stop(struct summary *s)
{
	if (s != NULL)
		event_del(s->tick_ev);
}

void summary_final(struct summary *s, void (*done)(struct sim *sim))
{
	s->final_cb = done;
	struct timeval tv = { FINAL_WAIT_S, 0 };
	evtimer_add(s->final_ev, &tv);
	/* A query already out serves as the final one: its answer is fresh. */
	query(s);
}

struct summary *summary_new(struct sim *sim)
{
	struct summary *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->sim = sim;
	s->tty = isatty(STDOUT_FILENO) == 1;
	strbuf_init(&s->out);
	s->tick_ev = event_new(sim->svc->base, -1, EV_PERSIST, on_tick, s);
	s->final_ev = evtimer_new(sim->svc->base, on_final_timeout, s);
	if (s->tick_ev == NULL || s->final_ev == NULL) {
		summary_free(s);
		return NULL;
	}
	return s;
}

void summary_free(struct summary *s)
{
	if (s == NULL)
		return;
	if (s->tick_ev != NULL)
		event_free(s->tick_ev);
	if (s->final_ev != NULL)
		event_free(s->final_ev);
	strbuf_free(&s->out);
	free(s);
}

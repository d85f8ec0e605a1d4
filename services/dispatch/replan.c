/*
 * Escalation re-plans (issue 5): when a ticket's SLA clock passes its
 * warning point and the holder of its order is not yet on site (or has not
 * accepted), look again and move the order to somebody who arrives
 * earlier, withdrawing the old one.
 *
 * sc-slamon records each warning in sla_event; a trigger there sends
 * NOTIFY sla_warning "TICKET CLOCK" (schema/022_dispatch_replan.sql). For
 * each one: sc_dispatch_replan_view (the ticket, its live order, everybody
 * with load and position, in the snapshot layout) → decide here →
 * sc_dispatch_replan (records the decision once per ticket and clock, and
 * when moving, withdraws and re-offers under the ticket and receiver
 * locks through sc_ticket_assign). A lost notification is caught up after
 * every connect and every REPLAN_CATCHUP_S (sc_dispatch_replan_due).
 *
 * Decision: the holder's arrival is its own eta when it gave one (not
 * before now), else now + its drive from its current position (a partner:
 * offered + response_s). The best other on-site engineer or partner that
 * qualifies, has not refused the ticket, is free (as for the sweep) and
 * arrives more than REPLAN_MARGIN_S earlier gets the order. Remote orders
 * are kept: a remote session starts at once anyway.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "service.h"
#include "topic.h"

/* Moving an order costs the customer a second announcement and the old
 * holder a wasted start: only for a real gain. */
#define REPLAN_MARGIN_S 300
#define REPLAN_CATCHUP_S 10
#define REPLAN_CATCHUP_LIMIT "100"

struct replan {
	struct event *timer;       /* catch-up */
	size_t inflight;           /* statements in flight */
};

/* One warning being handled. */
struct replan_job {
	struct dispatch *d;
	char ticket[TOPIC_ID_MAX + 1];
	char clock[16];
};

static void done(struct replan_job *j)
{
	j->d->replan->inflight--;
	free(j);
}

static void on_replanned(void *arg, const struct db_reply *r)
{
	struct replan_job *j = arg;
	if (r->error != NULL) {
		log_error("re-plan failed: %s ticket=%s clock=%s", r->error, j->ticket, j->clock);
	} else if (PQntuples(r->res) == 1) {
		const char *result = PQgetvalue(r->res, 0, 0);
		if (strcmp(result, "moved") == 0) {
			log_info("re-plan moved the order ticket=%s clock=%s order=%s", j->ticket, j->clock,
				 PQgetvalue(r->res, 0, 1));
			/* The new offer's expiry timer and the freed unit come
			 * with the next snapshot. */
			sweep_request(j->d);
		} else {
			log_info("re-plan: %s ticket=%s clock=%s", result, j->ticket, j->clock);
		}
	}
	done(j);
}

static int find_engineer(const struct choose_world *w, const char *id)
{
	for (size_t i = 0; id != NULL && i < w->nengineers; i++)
		if (strcmp(w->engineers[i].id, id) == 0)
			return (int)i;
	return -1;
}

static bool listed(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static int64_t jus(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* When the holder of order arrives, by the rules above; INT64_MAX when
 * it cannot be told (the holder left the master data). */
static int64_t holder_arrival(const struct dispatch_snapshot *s, const cJSON *order)
{
	const struct choose_world *w = &s->world;
	const char *eng = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(order, "engineer"));
	const char *par = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(order, "partner"));
	int64_t eta = jus(order, "eta");
	if (eta != 0)
		return eta > w->now_us ? eta : w->now_us;
	int e = find_engineer(w, eng);
	if (e >= 0)
		return w->now_us + choose_travel_us(w, &w->engineers[e], &s->tickets[0]);
	for (size_t i = 0; par != NULL && i < w->npartners; i++) {
		if (strcmp(w->partners[i].id, par) == 0) {
			int64_t a = jus(order, "offered") + w->partners[i].response_s * 1000000;
			return a > w->now_us ? a : w->now_us;
		}
	}
	return INT64_MAX;
}

/* The best free alternative to the holder (engineer index or partner
 * index, the other -1) and its arrival; false when there is none. */
static bool best_other(const struct dispatch_snapshot *s, const cJSON *order, int *eng, int *par,
		       int64_t *arrival)
{
	const struct choose_world *w = &s->world;
	const struct choose_ticket *t = &s->tickets[0];
	const char *heng = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(order, "engineer"));
	const char *hpar = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(order, "partner"));
	int64_t best = INT64_MAX;
	double best_cost = 0;
	*eng = *par = -1;
	for (size_t i = 0; i < w->nengineers; i++) {
		const struct choose_engineer *e = &w->engineers[i];
		if (e->kind != ENGINEER_ONSITE || (heng != NULL && strcmp(e->id, heng) == 0) ||
		    !choose_engineer_qualifies(e, t) ||
		    listed(t->refused_engineers, t->nrefused_engineers, e->id) ||
		    e->avail == AVAIL_OFF || e->load >= e->max_concurrent)
			continue;
		int64_t a = w->now_us + choose_travel_us(w, e, t);
		if (a < best) {
			best = a;
			*eng = (int)i;
		}
	}
	for (size_t i = 0; i < w->npartners; i++) {
		const struct choose_partner *p = &w->partners[i];
		if ((hpar != NULL && strcmp(p->id, hpar) == 0) || !choose_partner_qualifies(p, t, w->now_us) ||
		    listed(t->refused_partners, t->nrefused_partners, p->id) || p->load >= p->capacity)
			continue;
		int64_t a = w->now_us + p->response_s * 1000000;
		/* Equal arrival: our own engineer, then the cheaper partner. */
		if (a < best || (a == best && *par >= 0 && p->cost_per_job < best_cost)) {
			best = a;
			best_cost = p->cost_per_job;
			*eng = -1;
			*par = (int)i;
		}
	}
	*arrival = best;
	return best != INT64_MAX;
}

static void on_view(void *arg, const struct db_reply *r)
{
	struct replan_job *j = arg;
	struct dispatch *d = j->d;
	struct dispatch_snapshot s = { 0 };
	char detail[256];
	const char *order_id = NULL, *to_e = NULL, *to_p = NULL, *mode = NULL;

	if (r->error != NULL) {
		log_error("re-plan failed: %s ticket=%s clock=%s", r->error, j->ticket, j->clock);
		goto fail;
	}
	/* NULL: nothing to re-plan (handled before, ticket closed or waiting,
	 * order on site or only riding along). Recorded as moot all the same,
	 * so the catch-up does not bring the same warning back for ever. */
	if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
		const char *params[7] = { j->ticket, j->clock, NULL, NULL, NULL, NULL,
					  "no order before on site to move" };
		if (r->error == NULL && PQntuples(r->res) == 1 &&
		    db_exec_prepared(d->svc->db, "dispatch_replan", 7, params, on_replanned, j) == 0)
			return;
		goto fail;
	}
	if (dispatch_snapshot_parse(d, PQgetvalue(r->res, 0, 0), (size_t)PQgetlength(r->res, 0, 0),
				    &s) != 0 || s.ntickets != 1)
		goto fail;
	const cJSON *order = cJSON_GetObjectItemCaseSensitive(s.root, "order");
	order_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(order, "id"));
	const char *omode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(order, "mode"));
	if (order_id == NULL || omode == NULL)
		goto fail;
	int eng, par;
	int64_t now = s.world.now_us, mine = holder_arrival(&s, order), other;
	if (strcmp(omode, "remote") == 0) {
		snprintf(detail, sizeof(detail), "remote order: a session starts at once");
	} else if (!best_other(&s, order, &eng, &par, &other)) {
		snprintf(detail, sizeof(detail), "nobody else free qualifies");
	} else if (mine != INT64_MAX && other + REPLAN_MARGIN_S * INT64_C(1000000) >= mine) {
		snprintf(detail, sizeof(detail), "holder arrives in %llds, best other in %llds",
			 (long long)((mine - now) / 1000000), (long long)((other - now) / 1000000));
	} else {
		to_e = eng >= 0 ? s.world.engineers[eng].id : NULL;
		to_p = par >= 0 ? s.world.partners[par].id : NULL;
		mode = to_e != NULL ? "onsite" : "outsourced";
		if (mine == INT64_MAX)
			snprintf(detail, sizeof(detail), "holder gone; %s arrives in %llds",
				 to_e ? to_e : to_p, (long long)((other - now) / 1000000));
		else
			snprintf(detail, sizeof(detail), "%s arrives in %llds instead of %llds",
				 to_e ? to_e : to_p, (long long)((other - now) / 1000000),
				 (long long)((mine - now) / 1000000));
	}
	const char *params[7] = { j->ticket, j->clock, order_id, to_e, to_p, mode, detail };
	if (db_exec_prepared(d->svc->db, "dispatch_replan", 7, params, on_replanned, j) != 0) {
		log_error("re-plan not queued: out of memory ticket=%s", j->ticket);
		goto fail;
	}
	dispatch_snapshot_free(&s);
	return;
fail:
	dispatch_snapshot_free(&s);
	done(j);
}

/* Starts handling one warning. */
static void replan_one(struct dispatch *d, const char *ticket, const char *clock)
{
	if (d->stopping || strlen(ticket) > TOPIC_ID_MAX || strlen(clock) >= 16)
		return;
	struct replan_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		log_error("re-plan not queued: out of memory ticket=%s", ticket);
		return;
	}
	j->d = d;
	snprintf(j->ticket, sizeof(j->ticket), "%s", ticket);
	snprintf(j->clock, sizeof(j->clock), "%s", clock);
	const char *params[2] = { j->ticket, j->clock };
	d->replan->inflight++;
	if (db_exec_prepared(d->svc->db, "dispatch_replan_view", 2, params, on_view, j) != 0) {
		log_error("re-plan not queued: out of memory ticket=%s", ticket);
		done(j);
	}
}

static void on_warning(void *arg, const char *channel, const char *payload)
{
	char ticket[TOPIC_ID_MAX + 1];
	const char *sp = payload != NULL ? strchr(payload, ' ') : NULL;
	if (sp == NULL || (size_t)(sp - payload) > TOPIC_ID_MAX)
		return;
	snprintf(ticket, sizeof(ticket), "%.*s", (int)(sp - payload), payload);
	replan_one(arg, ticket, sp + 1);
}

static void on_due(void *arg, const struct db_reply *r)
{
	struct dispatch *d = arg;
	d->replan->inflight--;
	if (r->error != NULL) {
		log_error("re-plan catch-up failed: %s", r->error);
		return;
	}
	for (int i = 0; i < PQntuples(r->res); i++)
		replan_one(d, PQgetvalue(r->res, i, 0), PQgetvalue(r->res, i, 1));
}

static void catch_up(struct dispatch *d)
{
	const char *params[1] = { REPLAN_CATCHUP_LIMIT };
	if (d->stopping || !db_connected(d->svc->db) || d->replan->inflight > 0)
		return;
	d->replan->inflight++;
	if (db_exec_prepared(d->svc->db, "dispatch_replan_due", 1, params, on_due, d) != 0)
		d->replan->inflight--;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	catch_up(arg);
}

static void on_connect(void *arg)
{
	catch_up(arg);
}

int replan_init(struct dispatch *d)
{
	struct service *s = d->svc;
	struct replan *rp = calloc(1, sizeof(*rp));
	if (rp == NULL)
		return -1;
	d->replan = rp;
	rp->timer = event_new(s->base, -1, EV_PERSIST, on_timer, d);
	if (rp->timer == NULL ||
	    db_prepare(s->db, "dispatch_replan_view", "SELECT sc_dispatch_replan_view($1, $2)", 2) != 0 ||
	    db_prepare(s->db, "dispatch_replan",
		       "SELECT result, new_order FROM sc_dispatch_replan($1, $2, $3, $4, $5, $6, $7)",
		       7) != 0 ||
	    db_prepare(s->db, "dispatch_replan_due",
		       "SELECT ticket_id, clock FROM sc_dispatch_replan_due($1::int)", 1) != 0 ||
	    db_listen(s->db, "sla_warning", on_warning, d) != 0 ||
	    db_on_connect(s->db, on_connect, d) != 0)
		return -1;
	struct timeval tv = { REPLAN_CATCHUP_S, 0 };
	event_add(rp->timer, &tv);
	return 0;
}

void replan_free(struct dispatch *d)
{
	struct replan *rp = d->replan;
	if (rp == NULL)
		return;
	if (rp->timer != NULL)
		event_free(rp->timer);
	free(rp);
	d->replan = NULL;
}

bool replan_idle(const struct dispatch *d)
{
	return d->replan == NULL || d->replan->inflight == 0;
}

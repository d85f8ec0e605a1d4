/*
 * The choosing logic of sc-dispatch (see dispatch_choose.h for the rules):
 * the greedy rules of the first version (choose_one, choose_plan_greedy)
 * and the shared qualification tests. The batch optimiser (choose_plan)
 * lives in dispatch_plan.c. Pure: no I/O, no clock.
 */
#include "dispatch_choose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EARTH_RADIUS_KM 6371.0
#define DEFAULT_TRAVEL_KMH 60.0

double choose_distance_km(double lat1, double lon1, double lat2, double lon2)
{
	const double rad = M_PI / 180.0;
	double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
	double a = sin(dlat / 2) * sin(dlat / 2) +
		   cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
	/* Rounding can push a a hair above 1 for antipodal points. */
	if (a > 1.0)
		a = 1.0;
	return 2.0 * EARTH_RADIUS_KM * asin(sqrt(a));
}

static bool has_skill(const struct choose_skill *skills, size_t n, const char *skill, int grade)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(skills[i].name, skill) == 0)
			return skills[i].grade >= grade;
	return false;
}

static bool in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (list[i] != NULL && strcmp(list[i], s) == 0)
			return true;
	return false;
}

bool choose_engineer_qualifies(const struct choose_engineer *e, const struct choose_ticket *t)
{
	if (e->max_concurrent <= 0 || !has_skill(e->skills, e->nskills, t->skill, t->min_grade))
		return false;
	if (e->kind == ENGINEER_REMOTE)
		return t->remote_ok;
	if (e->ncoverage == 0)
		return e->province != NULL && t->province != NULL &&
		       strcmp(e->province, t->province) == 0;
	return in_list(e->coverage, e->ncoverage, t->province);
}

bool choose_partner_qualifies(const struct choose_partner *p, const struct choose_ticket *t,
			      int64_t now_us)
{
	return p->capacity > 0 && p->certified_end_us > now_us &&
	       has_skill(p->skills, p->nskills, t->skill, t->min_grade) &&
	       in_list(p->provinces, p->nprovinces, t->province);
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

int choose_ticket_cmp(const struct choose_ticket *a, const struct choose_ticket *b)
{
	/* No deadline sorts after every deadline. */
	if ((a->respond_by_us == 0) != (b->respond_by_us == 0))
		return a->respond_by_us == 0 ? 1 : -1;
	int c = cmp_i64(a->respond_by_us, b->respond_by_us);
	if (c == 0)
		c = (int)a->tier - (int)b->tier;
	if (c == 0)
		c = (int)a->severity - (int)b->severity;
	if (c == 0)
		c = cmp_i64(a->created_us, b->created_us);
	if (c == 0)
		c = strcmp(a->id, b->id);
	return c;
}

/* A person who could take the ticket now, with what ranks them. */
struct cand {
	int engineer, partner;   /* index, the other -1 */
	int64_t eta_us;
	double cost;
	double load;             /* fraction of capacity in use */
	const char *id;
};

/* Arrival compared in whole seconds: a metre's difference is no reason. */
static bool better(const struct cand *a, const struct cand *b)
{
	int64_t sa = a->eta_us / 1000000, sb = b->eta_us / 1000000;
	if (sa != sb)
		return sa < sb;
	if (a->cost != b->cost)
		return a->cost < b->cost;
	if (a->load != b->load)
		return a->load < b->load;
	return strcmp(a->id, b->id) < 0;
}

static void keep_best(struct cand *best, bool *have, const struct cand *c)
{
	if (!*have || better(c, best)) {
		*best = *c;
		*have = true;
	}
}

int64_t choose_travel_us(const struct choose_world *w, const struct choose_engineer *e,
			 const struct choose_ticket *t)
{
	/* An unknown position (no coordinates anywhere) counts as no travel. */
	if (!e->has_pos || !t->has_pos)
		return 0;
	double kmh = w->travel_kmh > 0 ? w->travel_kmh : DEFAULT_TRAVEL_KMH;
	double km = choose_distance_km(e->lat, e->lon, t->lat, t->lon);
	return (int64_t)(km / kmh * 3600.0 * 1e6);
}

static void offer(struct choose_decision *out, enum mode mode, const struct cand *c,
		  const struct choose_ticket *t)
{
	out->verdict = CHOOSE_OFFER;
	out->mode = mode;
	out->engineer = c->engineer;
	out->partner = c->partner;
	out->eta_us = c->eta_us;
	out->late = mode != MODE_REMOTE && t->arrive_by_us != 0 && c->eta_us > t->arrive_by_us;
	out->reason = NULL;
}

void choose_one(const struct choose_world *w, const struct choose_ticket *t,
		struct choose_decision *out)
{
	struct cand remote = { 0 }, ontime = { 0 }, late = { 0 }, partner = { 0 };
	bool have_remote = false, have_ontime = false, have_late = false, have_partner = false;
	bool qualified = false, refused = false;

	for (size_t i = 0; i < w->nengineers; i++) {
		const struct choose_engineer *e = &w->engineers[i];
		if (!choose_engineer_qualifies(e, t))
			continue;
		if (in_list(t->refused_engineers, t->nrefused_engineers, e->id)) {
			refused = true;
			continue;
		}
		qualified = true;
		/* Busy with spare capacity takes offers (issue 5); off never. */
		if (e->avail == AVAIL_OFF || e->load >= e->max_concurrent)
			continue;
		struct cand c = {
			.engineer = (int)i, .partner = -1, .eta_us = w->now_us, .cost = 0,
			.load = (double)e->load / e->max_concurrent, .id = e->id,
		};
		if (e->kind == ENGINEER_REMOTE) {
			keep_best(&remote, &have_remote, &c);
			continue;
		}
		c.eta_us += choose_travel_us(w, e, t);
		if (t->arrive_by_us == 0 || c.eta_us <= t->arrive_by_us)
			keep_best(&ontime, &have_ontime, &c);
		else
			keep_best(&late, &have_late, &c);
	}
	for (size_t i = 0; i < w->npartners; i++) {
		const struct choose_partner *p = &w->partners[i];
		if (!choose_partner_qualifies(p, t, w->now_us))
			continue;
		if (in_list(t->refused_partners, t->nrefused_partners, p->id)) {
			refused = true;
			continue;
		}
		qualified = true;
		if (p->load >= p->capacity)
			continue;
		struct cand c = {
			.engineer = -1, .partner = (int)i,
			.eta_us = w->now_us + p->response_s * 1000000, .cost = p->cost_per_job,
			.load = (double)p->load / p->capacity, .id = p->id,
		};
		keep_best(&partner, &have_partner, &c);
	}

	*out = (struct choose_decision){ .engineer = -1, .partner = -1 };
	if (!qualified) {
		out->verdict = CHOOSE_MANUAL;
		out->reason = refused ? "every qualified engineer and partner declined or let an offer expire"
				      : "nobody qualifies by skill, grade, coverage or certification";
		return;
	}
	if (have_remote) {
		offer(out, MODE_REMOTE, &remote, t);
	} else if (have_ontime) {
		offer(out, MODE_ONSITE, &ontime, t);
	} else if (have_partner && (!have_late || partner.eta_us <= late.eta_us)) {
		/* No own engineer arrives in time: outsource, unless the partner
		 * would come even later than our own late engineer. */
		offer(out, MODE_OUTSOURCED, &partner, t);
	} else if (have_late) {
		offer(out, MODE_ONSITE, &late, t);
	} else {
		out->verdict = CHOOSE_WAIT;
		out->reason = "every qualified engineer and partner is busy, off or full";
	}
}

static int cmp_ticket_ptr(const void *a, const void *b)
{
	const struct choose_ticket *const *x = a, *const *y = b;
	return choose_ticket_cmp(*x, *y);
}

int choose_plan_greedy(struct choose_world *w, const struct choose_ticket *tickets, size_t n,
		       struct choose_decision *out)
{
	if (n == 0)
		return 0;
	const struct choose_ticket **order = malloc(n * sizeof(*order));
	if (order == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		order[i] = &tickets[i];
	qsort(order, n, sizeof(*order), cmp_ticket_ptr);
	for (size_t k = 0; k < n; k++) {
		size_t i = (size_t)(order[k] - tickets);
		choose_one(w, &tickets[i], &out[i]);
		if (out[i].verdict != CHOOSE_OFFER)
			continue;
		if (out[i].engineer >= 0)
			w->engineers[out[i].engineer].load++;
		else
			w->partners[out[i].partner].load++;
	}
	free(order);
	return 0;
}

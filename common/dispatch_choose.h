#ifndef SC_COMMON_DISPATCH_CHOOSE_H
#define SC_COMMON_DISPATCH_CHOOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"

/*
 * Who gets which ticket: the pure choosing logic of sc-dispatch (contract
 * sections 3 and 6), free of database, MQTT and clock, so unit tests drive
 * it with hand-made instances and the later batch optimiser (issue 5:
 * minimise SLA lateness, travel, partner cost and load imbalance over all
 * pending tickets at once) replaces choose_plan() alone.
 *
 * The caller fills a struct choose_world (people, their live load, "now")
 * and an array of tickets in state `new`; choose_plan() returns one
 * decision per ticket. Every string is borrowed: the caller keeps it alive
 * while the structs are in use.
 *
 * choose_plan() is the batch optimiser (issue 5, docs/dispatch.md);
 * choose_one() and choose_plan_greedy() are the first version's greedy
 * rules, kept for single decisions and as the benchmark's baseline.
 *
 * Rules of the greedy version (one ticket at a time):
 *  - Qualifies (judged on master data only, not on who is free now): the
 *    skill at grade >= min_grade; an on-site engineer when the site's
 *    province is in its coverage (empty coverage: its own province); a
 *    remote engineer only when the ticket allows remote handling; a
 *    partner when the province is one of its provinces and its
 *    certification has not ended; a capacity of 0 never qualifies. An
 *    engineer or partner that already declined or let expire an offer of
 *    the ticket is not asked again.
 *  - Nobody qualifies: CHOOSE_MANUAL at once (also when everybody who
 *    qualifies has refused the ticket before).
 *  - Free now: an engineer whose state is `available` or `busy` (the
 *    snapshot makes it `off` outside its shift) with load <
 *    max_concurrent; a partner with load < capacity. Nobody qualified is
 *    free: CHOOSE_WAIT.
 *  - Mode: remote when the ticket allows it and a remote engineer is free;
 *    else on site when a free on-site engineer arrives by arrive_by; else
 *    outsourced to a free partner, or, when no partner is free either, the
 *    earliest own on-site engineer even though late. Arrival: now +
 *    haversine distance / travel_kmh (remote: now; partner: now +
 *    response_s).
 *  - Rank within the mode: earliest arrival (whole seconds), then cost
 *    (partners' cost_per_job, engineers 0), then load as a fraction of
 *    capacity, then id (so a decision is reproducible).
 *  - Tickets are decided oldest deadline first: respond_by, then tier
 *    vip > key > standard, then severity critical > major > minor, then
 *    created, then id. A decision takes one unit of the chosen one's
 *    capacity before the next ticket is decided.
 */

/* dispatch_choose.c: qualification and the greedy rules; dispatch_plan.c:
 * the batch optimiser. */

/* One skill of an engineer or partner. */
struct choose_skill {
	const char *name;
	int grade;                     /* 1..4 */
};

struct choose_engineer {
	const char *id;
	enum engineer_kind kind;
	const char *province;          /* home province; NULL for a national remote engineer */
	const char *const *coverage;   /* provinces served on site; none: own province */
	size_t ncoverage;
	const struct choose_skill *skills;
	size_t nskills;
	bool has_pos;                  /* lat/lon known (reported, else home) */
	double lat, lon;
	int max_concurrent;
	int load;                      /* active orders: offered, accepted, en_route, on_site */
	enum engineer_avail avail;     /* off outside the shift, else latest status (none: available) */
};

struct choose_partner {
	const char *id;
	const char *const *provinces;
	size_t nprovinces;
	const struct choose_skill *skills;
	size_t nskills;
	int capacity;
	int load;                      /* active orders, as for engineers */
	int64_t certified_end_us;      /* first instant no longer certified; 0: not certified */
	int64_t response_s;            /* promised time to arrive */
	double cost_per_job;
};

struct choose_ticket {
	const char *id;
	const char *province;          /* of the site */
	const char *skill;
	int min_grade;
	bool remote_ok;
	bool has_pos;                  /* site position known */
	double lat, lon;
	enum tier tier;
	enum severity severity;
	int64_t respond_by_us;         /* 0: no deadline */
	int64_t arrive_by_us;          /* 0: no deadline */
	int64_t created_us;
	/* Who declined or let expire an offer of this ticket (not asked again). */
	const char *const *refused_engineers;
	size_t nrefused_engineers;
	const char *const *refused_partners;
	size_t nrefused_partners;
};

struct choose_world {
	int64_t now_us;
	double travel_kmh;             /* > 0 */
	/* choose_plan: at most this many candidates per ticket, the best by
	 * arc cost (0, the default: all of them, and the plan is exact). */
	size_t max_candidates;
	struct choose_engineer *engineers;
	size_t nengineers;
	struct choose_partner *partners;
	size_t npartners;
};

enum choose_verdict {
	CHOOSE_OFFER,   /* offer to engineer or partner in mode */
	CHOOSE_WAIT,    /* qualified people exist, none is free now: stays new */
	CHOOSE_MANUAL,  /* nobody qualifies: manual queue */
};

struct choose_decision {
	enum choose_verdict verdict;
	enum mode mode;                /* CHOOSE_OFFER only */
	int engineer;                  /* index into world->engineers, or -1 */
	int partner;                   /* index into world->partners, or -1 */
	int64_t eta_us;                /* estimated arrival (remote: now) */
	bool late;                     /* the estimate is after arrive_by */
	const char *reason;            /* static text: why WAIT or MANUAL */
};

/* Great-circle distance in km between two positions in degrees (haversine). */
double choose_distance_km(double lat1, double lon1, double lat2, double lon2);

/* Travel time of on-site engineer e to t's site in microseconds (0 when a
 * position is unknown). */
int64_t choose_travel_us(const struct choose_world *w, const struct choose_engineer *e,
			 const struct choose_ticket *t);

/* Does e have t's skill at t's grade and may serve t's site (static rules)? */
bool choose_engineer_qualifies(const struct choose_engineer *e, const struct choose_ticket *t);

/* Does p have t's skill and grade, serve t's province and hold a
 * certification at now_us? */
bool choose_partner_qualifies(const struct choose_partner *p, const struct choose_ticket *t,
			      int64_t now_us);

/* Order in which tickets are decided (<0: a first). */
int choose_ticket_cmp(const struct choose_ticket *a, const struct choose_ticket *b);

/*
 * Decides one ticket against the world as it is; changes nothing. Never
 * fails.
 */
void choose_one(const struct choose_world *w, const struct choose_ticket *t,
		struct choose_decision *out);

/*
 * The first version's plan, kept as the baseline of bench/dispatch: decides
 * every ticket greedily with choose_one() in choose_ticket_cmp order, each
 * decision taking its unit of capacity in w before the next. out[i] is the
 * decision for tickets[i]. 0, or -1 on allocation failure.
 */
int choose_plan_greedy(struct choose_world *w, const struct choose_ticket *tickets, size_t n,
		       struct choose_decision *out) __attribute__((warn_unused_result));

/*
 * The batch optimiser (docs/dispatch.md). Over all tickets and all free
 * capacity at once it minimises, lexicographically, the plan's
 * struct choose_cost: tickets left waiting (weighted by urgency), SLA
 * lateness, travel time, partner cost, load imbalance. Exact (min-cost
 * flow by successive shortest paths with lexicographic costs), or over
 * each ticket's max_candidates best arcs when that is set. Tickets nobody qualifies for get
 * CHOOSE_MANUAL as in choose_one(). The chosen ones' loads in w grow by
 * what they took. out[i] is the decision for tickets[i]. 0, or -1 on
 * allocation failure (out and w are then unspecified).
 */
int choose_plan(struct choose_world *w, const struct choose_ticket *tickets, size_t n,
		struct choose_decision *out) __attribute__((warn_unused_result));

/*
 * The objective, compared level by level (v[0] first):
 *  v[0] waiting: sum over tickets left to wait (CHOOSE_WAIT) of their
 *       urgency weight m - r (r: rank in choose_ticket_cmp order among the
 *       m tickets that are not CHOOSE_MANUAL, 0 the most urgent);
 *  v[1] SLA lateness, seconds: on site and outsourced, estimated arrival
 *       past arrive_by; remote, now past respond_by;
 *  v[2] travel, seconds (a partner's response_s counts as its travel);
 *  v[3] partner cost, cents of cost_per_job;
 *  v[4] load imbalance: every unit taken from someone with capacity c
 *       costs 10^6 * (its load after taking it) / c (integer division),
 *       a convex charge that spreads work over people.
 */
#define CHOOSE_LEVELS 5
struct choose_cost {
	int64_t v[CHOOSE_LEVELS];
};

/* <0, 0, >0 as a is lexicographically below, equal to, above b. */
int choose_cost_cmp(const struct choose_cost *a, const struct choose_cost *b);

/*
 * The objective of decisions dec[0..n-1] for tickets[0..n-1] taken against
 * `before` (the world with its loads as they were before the plan). Does
 * not check that the plan is feasible.
 */
void choose_plan_cost(const struct choose_world *before, const struct choose_ticket *tickets,
		      size_t n, const struct choose_decision *dec, struct choose_cost *out);

/*
 * The arc cost levels v[1..3] of giving t to engineer e (partner p: e
 * NULL), with the estimated arrival; v[0] and v[4] are 0.
 */
void choose_arc_cost(const struct choose_world *w, const struct choose_ticket *t,
		     const struct choose_engineer *e, const struct choose_partner *p,
		     struct choose_cost *out, int64_t *eta_us);

#endif

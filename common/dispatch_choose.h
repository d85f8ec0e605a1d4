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
 * Rules of this first version (greedy, one ticket at a time):
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
 *  - Free now: an engineer whose status is `available` (busy and off wait,
 *    contract section 6) with load < max_concurrent; a partner with load <
 *    capacity. Nobody qualified is free: CHOOSE_WAIT.
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
	enum engineer_avail avail;     /* latest status, or derived from the shift */
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
 * Decides every ticket (in choose_ticket_cmp order), each decision taking
 * its unit of capacity in w (the chosen one's load grows by one), so later
 * tickets see it. out[i] is the decision for tickets[i]. Returns 0, or -1
 * on allocation failure (out and w are then unspecified).
 */
int choose_plan(struct choose_world *w, const struct choose_ticket *tickets, size_t n,
		struct choose_decision *out) __attribute__((warn_unused_result));

#endif

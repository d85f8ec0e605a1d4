#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch_choose.h"

/*
 * The choosing logic on small hand-made instances. The world: a site in
 * Zhengzhou (province HA); engineers around it and in Wuhan (HB); a remote
 * engineer; partners with and without a valid certification.
 */

#define NOW INT64_C(1790000000000000)      /* some instant, microseconds */
#define HOUR INT64_C(3600000000)

#define SITE_LAT 34.75
#define SITE_LON 113.62

static const struct choose_skill relay2[] = { { "relay_protection", 2 } };
static const struct choose_skill relay3[] = { { "metering", 4 }, { "relay_protection", 3 } };
static const struct choose_skill relay1[] = { { "relay_protection", 1 } };
static const struct choose_skill relay4[] = { { "relay_protection", 4 } };
static const char *const ha[] = { "HA" };
static const char *const hb[] = { "HB" };
static const char *const hb_ha[] = { "HB", "HA" };

enum { E_NEAR, E_FAR, E_LOW, E_HB, E_REM, E_HB_COV, NENG };
enum { P_OK, P_EXPIRED, P_CHEAP, NPART };

struct fixture {
	struct choose_engineer e[NENG];
	struct choose_partner p[NPART];
	struct choose_world w;
	struct choose_ticket t;
};

static struct fixture fx;

static struct choose_engineer engineer(const char *id, enum engineer_kind kind, const char *prov,
				       const char *const *cov, size_t ncov,
				       const struct choose_skill *sk, size_t nsk, double lat,
				       double lon)
{
	return (struct choose_engineer){
		.id = id, .kind = kind, .province = prov, .coverage = cov, .ncoverage = ncov,
		.skills = sk, .nskills = nsk, .has_pos = kind == ENGINEER_ONSITE, .lat = lat,
		.lon = lon, .max_concurrent = 2, .load = 0, .avail = AVAIL_AVAILABLE,
	};
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	/* ~1.4 km from the site, no coverage list: serves its own province. */
	fx.e[E_NEAR] = engineer("E-near", ENGINEER_ONSITE, "HA", NULL, 0, relay3, 2, 34.76, 113.63);
	/* ~115 km away: about two hours at 60 km/h. */
	fx.e[E_FAR] = engineer("E-far", ENGINEER_ONSITE, "HA", ha, 1, relay2, 1, 35.5, 114.5);
	/* On the site itself, but grade 1. */
	fx.e[E_LOW] = engineer("E-low", ENGINEER_ONSITE, "HA", ha, 1, relay1, 1, SITE_LAT, SITE_LON);
	/* Grade 4 and close, but serves HB only. */
	fx.e[E_HB] = engineer("E-hb", ENGINEER_ONSITE, "HB", hb, 1, relay4, 1, 34.7, 113.6);
	fx.e[E_REM] = engineer("E-rem", ENGINEER_REMOTE, NULL, NULL, 0, relay3, 2, 0, 0);
	/* Lives in Wuhan (~470 km) and covers HA too. */
	fx.e[E_HB_COV] = engineer("E-hb-cov", ENGINEER_ONSITE, "HB", hb_ha, 2, relay2, 1, 30.59, 114.3);

	fx.p[P_OK] = (struct choose_partner){
		.id = "P-ok", .provinces = ha, .nprovinces = 1, .skills = relay2, .nskills = 1,
		.capacity = 2, .certified_end_us = NOW + 1000 * HOUR, .response_s = 7200,
		.cost_per_job = 800,
	};
	fx.p[P_EXPIRED] = (struct choose_partner){
		.id = "P-expired", .provinces = ha, .nprovinces = 1, .skills = relay4, .nskills = 1,
		.capacity = 5, .certified_end_us = NOW - HOUR, .response_s = 600, .cost_per_job = 1,
	};
	fx.p[P_CHEAP] = (struct choose_partner){
		.id = "P-cheap", .provinces = ha, .nprovinces = 1, .skills = relay2, .nskills = 1,
		.capacity = 1, .certified_end_us = NOW + 1000 * HOUR, .response_s = 7200,
		.cost_per_job = 500,
	};
	fx.w = (struct choose_world){
		.now_us = NOW, .travel_kmh = 60, .engineers = fx.e, .nengineers = NENG,
		.partners = fx.p, .npartners = NPART,
	};
	fx.t = (struct choose_ticket){
		.id = "T1", .province = "HA", .skill = "relay_protection", .min_grade = 2,
		.remote_ok = false, .has_pos = true, .lat = SITE_LAT, .lon = SITE_LON,
		.tier = TIER_VIP, .severity = SEVERITY_MAJOR, .respond_by_us = NOW + HOUR,
		.arrive_by_us = NOW + 4 * HOUR, .created_us = NOW,
	};
	return 0;
}

static struct choose_decision decide(void)
{
	struct choose_decision d;
	choose_one(&fx.w, &fx.t, &d);
	return d;
}

static void expect_engineer(int index, enum mode mode)
{
	struct choose_decision d = decide();
	assert_int_equal(d.verdict, CHOOSE_OFFER);
	assert_int_equal(d.mode, mode);
	assert_int_equal(d.partner, -1);
	assert_int_equal(d.engineer, index);
}

static void expect_partner(int index)
{
	struct choose_decision d = decide();
	assert_int_equal(d.verdict, CHOOSE_OFFER);
	assert_int_equal(d.mode, MODE_OUTSOURCED);
	assert_int_equal(d.engineer, -1);
	assert_int_equal(d.partner, index);
}

static void test_distance(void **state)
{
	(void)state;
	/* Zhengzhou - Wuhan is about 470 km as the crow flies. */
	double km = choose_distance_km(SITE_LAT, SITE_LON, 30.59, 114.3);
	assert_true(km > 460 && km < 475);
	assert_true(choose_distance_km(1, 2, 1, 2) == 0);
	/* Antipodes: half the circumference, no NaN from rounding. */
	km = choose_distance_km(0, 0, 0, 180);
	assert_true(km > 20000 && km < 20040);
}

static void test_grade(void **state)
{
	(void)state;
	/* E-low sits on the site but has grade 1: the nearest qualified wins. */
	assert_false(choose_engineer_qualifies(&fx.e[E_LOW], &fx.t));
	assert_true(choose_engineer_qualifies(&fx.e[E_NEAR], &fx.t));
	expect_engineer(E_NEAR, MODE_ONSITE);
	/* Grade 1 is enough for E-low now, and it is nearest. */
	fx.t.min_grade = 1;
	expect_engineer(E_LOW, MODE_ONSITE);
	/* Grade 3: E-near only. */
	fx.t.min_grade = 3;
	fx.e[E_NEAR].avail = AVAIL_OFF;
	assert_false(choose_engineer_qualifies(&fx.e[E_FAR], &fx.t));
	assert_int_equal(decide().verdict, CHOOSE_WAIT);
	/* A skill nobody has at all. */
	fx.t.skill = "transformers";
	assert_int_equal(decide().verdict, CHOOSE_MANUAL);
}

static void test_coverage(void **state)
{
	(void)state;
	/* E-hb is close and grade 4, but serves HB only. */
	assert_false(choose_engineer_qualifies(&fx.e[E_HB], &fx.t));
	/* E-hb-cov lives in HB and covers HA. */
	assert_true(choose_engineer_qualifies(&fx.e[E_HB_COV], &fx.t));
	/* Empty coverage: its own province. */
	assert_true(choose_engineer_qualifies(&fx.e[E_NEAR], &fx.t));
	fx.t.province = "HB";
	assert_false(choose_engineer_qualifies(&fx.e[E_NEAR], &fx.t));
	assert_true(choose_engineer_qualifies(&fx.e[E_HB], &fx.t));
	/* Grade 4 in HB: E-hb; nobody else (P-expired is HA and expired). */
	fx.t.min_grade = 4;
	expect_engineer(E_HB, MODE_ONSITE);
	fx.e[E_HB].load = 2;
	assert_int_equal(decide().verdict, CHOOSE_WAIT);
	fx.t.province = "XZ";
	assert_int_equal(decide().verdict, CHOOSE_MANUAL);
}

static void test_remote_ok(void **state)
{
	(void)state;
	assert_false(choose_engineer_qualifies(&fx.e[E_REM], &fx.t));
	expect_engineer(E_NEAR, MODE_ONSITE);
	fx.t.remote_ok = true;
	assert_true(choose_engineer_qualifies(&fx.e[E_REM], &fx.t));
	/* Remote first, though E-near is close. */
	expect_engineer(E_REM, MODE_REMOTE);
	struct choose_decision d = decide();
	assert_false(d.late);
	assert_true(d.eta_us == NOW);
	/* The remote engineer full: on site. */
	fx.e[E_REM].load = 2;
	expect_engineer(E_NEAR, MODE_ONSITE);
}

static void test_partner_certification(void **state)
{
	(void)state;
	fx.t.min_grade = 2;
	assert_false(choose_partner_qualifies(&fx.p[P_EXPIRED], &fx.t, NOW));
	assert_true(choose_partner_qualifies(&fx.p[P_EXPIRED], &fx.t, NOW - 2 * HOUR));
	assert_true(choose_partner_qualifies(&fx.p[P_OK], &fx.t, NOW));
	/* No certification date at all: not certified. */
	fx.p[P_OK].certified_end_us = 0;
	assert_false(choose_partner_qualifies(&fx.p[P_OK], &fx.t, NOW));
	fx.p[P_OK].certified_end_us = NOW + HOUR;
	/* Grade 4: only E-hb (HB only) and P-expired have it: nobody. */
	fx.t.min_grade = 4;
	struct choose_decision d = decide();
	assert_int_equal(d.verdict, CHOOSE_MANUAL);
	assert_non_null(d.reason);
	/* Renewed: the partner takes it (own engineers do not qualify). */
	fx.p[P_EXPIRED].certified_end_us = NOW + HOUR;
	expect_partner(P_EXPIRED);
}

static void test_capacity(void **state)
{
	(void)state;
	/* E-near full: E-low is grade 1, E-far is next (and in time). */
	fx.e[E_NEAR].load = 2;
	expect_engineer(E_FAR, MODE_ONSITE);
	/* Own engineers full: outsourced; same arrival, the cheaper one. */
	fx.e[E_FAR].load = 2;
	fx.e[E_HB_COV].max_concurrent = 1;
	fx.e[E_HB_COV].load = 1;
	expect_partner(P_CHEAP);
	fx.p[P_CHEAP].load = 1;
	expect_partner(P_OK);
	/* Everybody full: wait, not manual. */
	fx.p[P_OK].load = 2;
	struct choose_decision d = decide();
	assert_int_equal(d.verdict, CHOOSE_WAIT);
	/* Capacity 0 is no capacity at all: it does not qualify. */
	fx.e[E_NEAR].max_concurrent = 0;
	assert_false(choose_engineer_qualifies(&fx.e[E_NEAR], &fx.t));
}

static void test_busy_off(void **state)
{
	(void)state;
	/* Busy with spare capacity still takes offers (issue 5). */
	fx.e[E_NEAR].avail = AVAIL_BUSY;
	fx.e[E_NEAR].load = 1;
	expect_engineer(E_NEAR, MODE_ONSITE);
	/* Busy and full: the next one. */
	fx.e[E_NEAR].load = 2;
	expect_engineer(E_FAR, MODE_ONSITE);
	/* Off never, whatever its load. */
	fx.e[E_NEAR].load = 0;
	fx.e[E_NEAR].avail = AVAIL_OFF;
	expect_engineer(E_FAR, MODE_ONSITE);
	fx.e[E_FAR].avail = AVAIL_OFF;
	fx.e[E_HB_COV].avail = AVAIL_OFF;
	fx.p[P_OK].capacity = 0;
	fx.p[P_CHEAP].capacity = 0;
	assert_int_equal(decide().verdict, CHOOSE_WAIT);
}

static void test_nearest(void **state)
{
	(void)state;
	expect_engineer(E_NEAR, MODE_ONSITE);
	/* E-near reported a position in Wuhan: E-far is nearer now. */
	fx.e[E_NEAR].lat = 30.59;
	fx.e[E_NEAR].lon = 114.3;
	expect_engineer(E_FAR, MODE_ONSITE);
	struct choose_decision d = decide();
	/* ~115 km at 60 km/h: a little under two hours. */
	assert_true(d.eta_us > NOW + HOUR && d.eta_us < NOW + 2 * HOUR + HOUR / 6);
	/* Same distance: the lower load wins, then the id. */
	fx.e[E_NEAR].lat = fx.e[E_FAR].lat;
	fx.e[E_NEAR].lon = fx.e[E_FAR].lon;
	expect_engineer(E_FAR, MODE_ONSITE); /* "E-far" < "E-near" */
	fx.e[E_FAR].load = 1;
	expect_engineer(E_NEAR, MODE_ONSITE);
}

static void test_late_outsourced(void **state)
{
	(void)state;
	/* E-near away in Wuhan: nobody of ours arrives within an hour; the
	 * partners (two hours) would be later than E-far (~1.9 h): E-far, late. */
	fx.e[E_NEAR].avail = AVAIL_OFF;
	fx.t.arrive_by_us = NOW + HOUR;
	struct choose_decision d = decide();
	assert_int_equal(d.verdict, CHOOSE_OFFER);
	assert_int_equal(d.engineer, E_FAR);
	assert_true(d.late);
	/* A partner that comes in 30 minutes: outsourced, in time. */
	fx.p[P_OK].response_s = 1800;
	expect_partner(P_OK);
	d = decide();
	assert_false(d.late);
	/* In time by our own: on site again. */
	fx.t.arrive_by_us = NOW + 3 * HOUR;
	expect_engineer(E_FAR, MODE_ONSITE);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const near[] = { "E-near" };
	static const char *const all_e[] = { "E-near", "E-far", "E-hb-cov" };
	static const char *const all_p[] = { "P-ok", "P-cheap" };
	fx.t.refused_engineers = near;
	fx.t.nrefused_engineers = 1;
	expect_engineer(E_FAR, MODE_ONSITE);
	fx.t.refused_engineers = all_e;
	fx.t.nrefused_engineers = 3;
	expect_partner(P_CHEAP);
	fx.t.refused_partners = all_p;
	fx.t.nrefused_partners = 2;
	/* Everybody who qualifies said no before: manual, not a wait forever. */
	struct choose_decision d = decide();
	assert_int_equal(d.verdict, CHOOSE_MANUAL);
	assert_non_null(strstr(d.reason, "declined"));
}

static void test_plan(void **state)
{
	(void)state;
	/* Only E-near qualifies (grade 3), with room for one; three tickets. */
	fx.e[E_NEAR].max_concurrent = 1;
	struct choose_ticket t[3] = { fx.t, fx.t, fx.t };
	for (int i = 0; i < 3; i++)
		t[i].min_grade = 3;
	t[0].id = "T-late-deadline";
	t[0].respond_by_us = NOW + 2 * HOUR;
	t[1].id = "T-standard";
	t[1].tier = TIER_STANDARD;
	t[2].id = "T-vip";
	/* Same deadline for T-standard and T-vip: the tier decides. */
	struct choose_decision d[3];
	assert_int_equal(choose_plan(&fx.w, t, 3, d), 0);
	assert_int_equal(d[2].verdict, CHOOSE_OFFER);
	assert_int_equal(d[2].engineer, E_NEAR);
	assert_int_equal(d[1].verdict, CHOOSE_WAIT);
	assert_int_equal(d[0].verdict, CHOOSE_WAIT);
	/* The plan took the unit of capacity. */
	assert_int_equal(fx.e[E_NEAR].load, 1);
	/* Ordering: deadline, tier, severity, created, id; no deadline last. */
	struct choose_ticket a = fx.t, b = fx.t;
	assert_int_equal(choose_ticket_cmp(&a, &b), 0);
	b.severity = SEVERITY_CRITICAL;
	assert_true(choose_ticket_cmp(&b, &a) < 0);
	a.tier = TIER_KEY;
	assert_true(choose_ticket_cmp(&b, &a) < 0);
	a.respond_by_us = 0;
	assert_true(choose_ticket_cmp(&b, &a) < 0);
	assert_int_equal(choose_plan(&fx.w, t, 0, d), 0);
}


/* ---- the batch optimiser against brute force ------------------------------ */

/*
 * Random small instances: two provinces, a few on-site and remote engineers
 * and partners with random skills, grades, positions, loads, states and
 * capacities; a few tickets with random deadlines (some already tight),
 * tiers, severities, remote handling and refusals. The brute force tries
 * every assignment (each ticket to any eligible person with room, or
 * waiting) and scores it by the objective written out again here; the
 * optimiser must reach the same value.
 */

#define BF_MAXE 5
#define BF_MAXP 2
#define BF_MAXT 5
#define BF_PERS (BF_MAXE + BF_MAXP)

static const char *const prov_a[] = { "A" };
static const char *const prov_b[] = { "B" };
static const char *const prov_ab[] = { "A", "B" };
static const char *const eng_ids[] = { "E0", "E1", "E2", "E3", "E4" };
static const char *const par_ids[] = { "P0", "P1" };
static const char *const tk_ids[] = { "T0", "T1", "T2", "T3", "T4" };

struct bf {
	struct choose_engineer e[BF_MAXE];
	struct choose_skill esk[BF_MAXE][2];
	struct choose_partner p[BF_MAXP];
	struct choose_skill psk[BF_MAXP][1];
	struct choose_ticket t[BF_MAXT];
	const char *refused[BF_MAXT][1];
	struct choose_world w;
	size_t ne, np, nt;
	/* brute force state */
	int elig[BF_MAXT][BF_PERS];       /* eligible persons of ticket i */
	size_t nelig[BF_MAXT];
	bool manual[BF_MAXT];
	int64_t weight[BF_MAXT];          /* m - rank; 0 for manual */
	struct choose_cost arc[BF_MAXT][BF_PERS];
	int choice[BF_MAXT], used[BF_PERS];
	struct choose_cost best;
	bool have_best;
};

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

static double rnd_pos(double base)
{
	return base + (double)rnd(2000) / 1000.0 - 1.0;
}

static void bf_make(struct bf *b)
{
	static const char *const skills[] = { "s1", "s2" };
	memset(b, 0, sizeof(*b));
	b->ne = 2 + rnd(BF_MAXE - 1);
	b->np = rnd(BF_MAXP + 1);
	b->nt = 1 + rnd(BF_MAXT);
	for (size_t i = 0; i < b->ne; i++) {
		struct choose_engineer *e = &b->e[i];
		e->id = eng_ids[i];
		e->kind = rnd(4) == 0 ? ENGINEER_REMOTE : ENGINEER_ONSITE;
		e->province = e->kind == ENGINEER_REMOTE ? NULL : (rnd(2) ? "A" : "B");
		unsigned cov = rnd(3);
		e->coverage = cov == 0 ? NULL : cov == 1 ? prov_ab : (e->province && e->province[0] == 'A' ? prov_a : prov_b);
		e->ncoverage = cov == 0 ? 0 : cov == 1 ? 2 : 1;
		b->esk[i][0] = (struct choose_skill){ "s1", 1 + (int)rnd(4) };
		b->esk[i][1] = (struct choose_skill){ "s2", 1 + (int)rnd(4) };
		e->skills = b->esk[i];
		e->nskills = 1 + rnd(2);
		e->has_pos = e->kind == ENGINEER_ONSITE;
		e->lat = rnd_pos(34);
		e->lon = rnd_pos(113);
		e->max_concurrent = (int)rnd(4);
		e->load = e->max_concurrent > 0 ? (int)rnd((unsigned)e->max_concurrent + 1) : 0;
		e->avail = rnd(5) == 0 ? AVAIL_OFF : rnd(2) ? AVAIL_BUSY : AVAIL_AVAILABLE;
	}
	for (size_t i = 0; i < b->np; i++) {
		struct choose_partner *p = &b->p[i];
		p->id = par_ids[i];
		p->provinces = rnd(2) ? prov_ab : prov_a;
		p->nprovinces = p->provinces == prov_ab ? 2 : 1;
		b->psk[i][0] = (struct choose_skill){ skills[rnd(2)], 1 + (int)rnd(4) };
		p->skills = b->psk[i];
		p->nskills = 1;
		p->capacity = (int)rnd(3);
		p->load = p->capacity > 0 ? (int)rnd((unsigned)p->capacity) : 0;
		p->certified_end_us = rnd(5) == 0 ? NOW - HOUR : NOW + 100 * HOUR;
		p->response_s = 1800 * (1 + (int64_t)rnd(6));
		p->cost_per_job = 100.0 * (1 + rnd(9)) + 0.5 * rnd(2);
	}
	for (size_t i = 0; i < b->nt; i++) {
		struct choose_ticket *t = &b->t[i];
		t->id = tk_ids[i];
		t->province = rnd(3) ? "A" : "B";
		t->skill = skills[rnd(2)];
		t->min_grade = 1 + (int)rnd(3);
		t->remote_ok = rnd(3) == 0;
		t->has_pos = true;
		t->lat = rnd_pos(34);
		t->lon = rnd_pos(113);
		t->tier = (enum tier)rnd(3);
		t->severity = (enum severity)rnd(3);
		/* Deadlines from already passed to hours ahead: lateness matters. */
		t->respond_by_us = rnd(6) == 0 ? 0 : NOW + ((int64_t)rnd(8) - 1) * HOUR / 2;
		t->arrive_by_us = rnd(6) == 0 ? 0 : NOW + (int64_t)rnd(10) * HOUR / 3;
		t->created_us = NOW - (int64_t)rnd(100);
		if (rnd(6) == 0) {
			b->refused[i][0] = eng_ids[rnd((unsigned)b->ne)];
			t->refused_engineers = b->refused[i];
			t->nrefused_engineers = 1;
		}
	}
	b->w = (struct choose_world){ .now_us = NOW, .travel_kmh = 40 + rnd(40),
		.engineers = b->e, .nengineers = b->ne, .partners = b->p, .npartners = b->np };
}

static bool refused_by(const struct choose_ticket *t, const char *id)
{
	for (size_t i = 0; i < t->nrefused_engineers; i++)
		if (strcmp(t->refused_engineers[i], id) == 0)
			return true;
	return false;
}

/* Who may take ticket i, and the static parts of the objective. */
static void bf_prepare(struct bf *b)
{
	size_t order[BF_MAXT], m = 0;
	for (size_t i = 0; i < b->nt; i++) {
		const struct choose_ticket *t = &b->t[i];
		bool qualified = false;
		b->nelig[i] = 0;
		for (size_t q = 0; q < b->ne + b->np; q++) {
			int64_t eta;
			if (q < b->ne) {
				const struct choose_engineer *e = &b->e[q];
				if (!choose_engineer_qualifies(e, t) || refused_by(t, e->id))
					continue;
				qualified = true;
				if (e->avail == AVAIL_OFF || e->load >= e->max_concurrent)
					continue;
				choose_arc_cost(&b->w, t, e, NULL, &b->arc[i][q], &eta);
			} else {
				const struct choose_partner *p = &b->p[q - b->ne];
				if (!choose_partner_qualifies(p, t, NOW))
					continue;
				qualified = true;
				if (p->load >= p->capacity)
					continue;
				choose_arc_cost(&b->w, t, NULL, p, &b->arc[i][q], &eta);
			}
			b->elig[i][b->nelig[i]++] = (int)q;
		}
		b->manual[i] = !qualified;
		if (qualified)
			order[m++] = i;
	}
	/* Rank by urgency (insertion sort with the dispatcher's order). */
	for (size_t a = 1; a < m; a++)
		for (size_t c = a; c > 0 && choose_ticket_cmp(&b->t[order[c]], &b->t[order[c - 1]]) < 0; c--) {
			size_t x = order[c];
			order[c] = order[c - 1];
			order[c - 1] = x;
		}
	memset(b->weight, 0, sizeof(b->weight));
	for (size_t r = 0; r < m; r++)
		b->weight[order[r]] = (int64_t)(m - r);
}

static void bf_score(struct bf *b)
{
	struct choose_cost c = { { 0 } };
	for (size_t i = 0; i < b->nt; i++) {
		if (b->manual[i])
			continue;
		if (b->choice[i] < 0) {
			c.v[0] += b->weight[i];
			continue;
		}
		for (int l = 0; l < CHOOSE_LEVELS; l++)
			c.v[l] += b->arc[i][b->choice[i]].v[l];
	}
	for (size_t q = 0; q < b->ne + b->np; q++) {
		int load = q < b->ne ? b->e[q].load : b->p[q - b->ne].load;
		int cap = q < b->ne ? b->e[q].max_concurrent : b->p[q - b->ne].capacity;
		for (int j = 1; j <= b->used[q]; j++)
			c.v[4] += (int64_t)(load + j) * 1000000 / cap;
	}
	if (!b->have_best || choose_cost_cmp(&c, &b->best) < 0) {
		b->best = c;
		b->have_best = true;
	}
}

static void bf_search(struct bf *b, size_t i)
{
	if (i == b->nt) {
		bf_score(b);
		return;
	}
	b->choice[i] = -1;
	bf_search(b, i + 1);
	for (size_t k = 0; !b->manual[i] && k < b->nelig[i]; k++) {
		int q = b->elig[i][k];
		int load = (size_t)q < b->ne ? b->e[q].load : b->p[q - b->ne].load;
		int cap = (size_t)q < b->ne ? b->e[q].max_concurrent : b->p[q - b->ne].capacity;
		if (load + b->used[q] >= cap)
			continue;
		b->used[q]++;
		b->choice[i] = q;
		bf_search(b, i + 1);
		b->used[q]--;
	}
	b->choice[i] = -1;
}

static void test_plan_optimum(void **state)
{
	(void)state;
	static struct bf b, before;
	size_t offers = 0, waits = 0, moved = 0;
	for (unsigned seed = 1; seed <= 3000; seed++) {
		rnd_state = seed;
		bf_make(&b);
		bf_prepare(&b);
		memset(b.used, 0, sizeof(b.used));
		b.have_best = false;
		bf_search(&b, 0);
		assert_true(b.have_best);

		before = b;
		before.w.engineers = before.e;
		before.w.partners = before.p;
		struct choose_decision d[BF_MAXT];
		assert_int_equal(choose_plan(&b.w, b.t, b.nt, d), 0);
		struct choose_cost got;
		choose_plan_cost(&before.w, b.t, b.nt, d, &got);
		/* Feasible: eligible people, nobody over capacity, the loads in
		 * the world grew by exactly what the plan took. */
		int took[BF_PERS] = { 0 };
		for (size_t i = 0; i < b.nt; i++) {
			assert_int_equal(d[i].verdict == CHOOSE_MANUAL, before.manual[i]);
			if (d[i].verdict != CHOOSE_OFFER) {
				waits += d[i].verdict == CHOOSE_WAIT;
				continue;
			}
			offers++;
			int q = d[i].engineer >= 0 ? d[i].engineer : (int)b.ne + d[i].partner;
			bool ok = false;
			for (size_t k = 0; k < before.nelig[i]; k++)
				ok = ok || before.elig[i][k] == q;
			assert_true(ok);
			took[q]++;
			enum mode want = d[i].partner >= 0 ? MODE_OUTSOURCED
				: b.e[d[i].engineer].kind == ENGINEER_REMOTE ? MODE_REMOTE : MODE_ONSITE;
			assert_int_equal(d[i].mode, want);
		}
		for (size_t q = 0; q < b.ne + b.np; q++) {
			int load = q < b.ne ? b.e[q].load : b.p[q - b.ne].load;
			int load0 = q < b.ne ? before.e[q].load : before.p[q - b.ne].load;
			int cap = q < b.ne ? b.e[q].max_concurrent : b.p[q - b.ne].capacity;
			assert_int_equal(load, load0 + took[q]);
			if (took[q] > 0)
				assert_true(load <= cap);
		}
		if (choose_cost_cmp(&got, &b.best) != 0) {
			fprintf(stderr, "seed %u: plan (%lld %lld %lld %lld %lld) optimum (%lld %lld %lld %lld %lld)\n",
				seed, (long long)got.v[0], (long long)got.v[1], (long long)got.v[2],
				(long long)got.v[3], (long long)got.v[4], (long long)b.best.v[0],
				(long long)b.best.v[1], (long long)b.best.v[2], (long long)b.best.v[3],
				(long long)b.best.v[4]);
			fail();
		}
		/* The greedy plan is never better than the optimum. */
		struct bf g = before;
		g.w.engineers = g.e;
		g.w.partners = g.p;
		struct choose_decision dg[BF_MAXT];
		assert_int_equal(choose_plan_greedy(&g.w, g.t, g.nt, dg), 0);
		struct choose_cost gc;
		choose_plan_cost(&before.w, g.t, g.nt, dg, &gc);
		assert_true(choose_cost_cmp(&gc, &b.best) >= 0);
		moved += choose_cost_cmp(&gc, &b.best) > 0;
	}
	/* The instances are not trivial: offers, waits and greedy misses. */
	fprintf(stderr, "offers=%zu waits=%zu greedy_worse=%zu\n", offers, waits, moved);
	assert_true(offers > 1000 && waits > 100 && moved > 50);
}

/* One engineer, two tickets: greedy gives the engineer to the first (more
 * urgent) ticket and sends the second to a distant partner late; the plan
 * swaps when that makes nobody late. */
static void test_plan_swap(void **state)
{
	(void)state;
	fx.e[E_FAR].avail = AVAIL_OFF;
	fx.e[E_HB_COV].avail = AVAIL_OFF;
	fx.e[E_NEAR].max_concurrent = 1;
	fx.p[P_CHEAP].capacity = 0;
	fx.p[P_OK].response_s = 1800;
	struct choose_ticket t[2] = { fx.t, fx.t };
	/* T-a: most urgent (earlier respond_by), arrive_by far off; the
	 * partner (30 min) is in time for it. T-b: arrive_by in 20 minutes,
	 * only E-near (1.4 km) is in time. */
	t[0].id = "T-a";
	t[0].respond_by_us = NOW + HOUR / 2;
	t[0].arrive_by_us = NOW + 4 * HOUR;
	t[1].id = "T-b";
	t[1].arrive_by_us = NOW + HOUR / 3;
	struct choose_decision d[2];
	assert_int_equal(choose_plan(&fx.w, t, 2, d), 0);
	assert_int_equal(d[0].verdict, CHOOSE_OFFER);
	assert_int_equal(d[0].partner, P_OK);
	assert_int_equal(d[1].verdict, CHOOSE_OFFER);
	assert_int_equal(d[1].engineer, E_NEAR);
	assert_false(d[0].late || d[1].late);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distance),
		cmocka_unit_test_setup(test_grade, setup),
		cmocka_unit_test_setup(test_coverage, setup),
		cmocka_unit_test_setup(test_remote_ok, setup),
		cmocka_unit_test_setup(test_partner_certification, setup),
		cmocka_unit_test_setup(test_capacity, setup),
		cmocka_unit_test_setup(test_busy_off, setup),
		cmocka_unit_test_setup(test_nearest, setup),
		cmocka_unit_test_setup(test_late_outsourced, setup),
		cmocka_unit_test_setup(test_refused, setup),
		cmocka_unit_test_setup(test_plan, setup),
		cmocka_unit_test_setup(test_plan_swap, setup),
		cmocka_unit_test(test_plan_optimum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

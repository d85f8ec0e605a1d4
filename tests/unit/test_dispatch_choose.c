#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
	fx.e[E_NEAR].avail = AVAIL_BUSY;
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

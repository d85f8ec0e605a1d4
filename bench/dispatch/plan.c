/*
 * bench-dispatch-plan: the batch optimiser (common/dispatch_plan.c) on a
 * generated country, beside the first version's greedy plan on the same
 * instance (bench/README.md, "bench/dispatch").
 *
 *   bench-dispatch-plan [--engineers N] [--partners N] [--tickets N]
 *                       [--provinces N] [--k K] [--ref-k K] [--seed S]
 *                       [--import FILE]
 *
 * --import FILE writes the country as master data for scctl import and
 * exits (run.sh's service phase).
 *
 * Prints one "key value" line per figure (run.sh formats them):
 *   plan_s, plan_tickets_per_s       choose_plan with K candidates per ticket
 *   greedy_s, greedy_tickets_per_s   choose_plan_greedy
 *   ref_s                            choose_plan with ref-K candidates (the
 *                                    default 0: exact; run.sh passes 16 to
 *                                    show what capping the candidates costs)
 *   <plan|greedy|ref>_{served,wait,late_h,travel_h,cost,load}  objective levels
 *   ratio_{plan,greedy}_{late,travel,cost}  level / the reference's level
 *   small_*                          one province in full: plan(K) against the
 *                                    exact optimum (K = everybody)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch_choose.h"

#define NOW INT64_C(1790000000000000)
#define MIN_US INT64_C(60000000)
#define NSKILLS 5

static const char *const skill_names[NSKILLS] = {
	"relay_protection", "metering", "substation_automation", "transformers", "scada",
};

struct country {
	size_t nprov;
	char (*prov)[24];
	const char **provp;
	double *plat, *plon;
	struct choose_engineer *e;
	struct choose_partner *p;
	struct choose_ticket *t;
	size_t ne, np, nt;
	struct choose_skill *skills;    /* 3 per person */
	const char **lists;             /* coverage / provinces: 3 per person */
	char (*ids)[24];
};

static unsigned long long rng = 88172645463325252ull;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static int irand(int n)
{
	return (int)(urand() * n);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int make_skills(struct country *c, size_t person, int max_grade)
{
	struct choose_skill *sk = &c->skills[person * 3];
	int n = 1 + irand(3), first = irand(NSKILLS);
	for (int i = 0; i < n; i++)
		sk[i] = (struct choose_skill){ skill_names[(first + i) % NSKILLS], 1 + irand(max_grade) };
	return n;
}

static int country_make(struct country *c, size_t nprov, size_t ne, size_t np, size_t nt)
{
	size_t npers = ne + np;
	memset(c, 0, sizeof(*c));
	c->nprov = nprov;
	c->ne = ne;
	c->np = np;
	c->nt = nt;
	c->prov = calloc(nprov, sizeof(*c->prov));
	c->provp = calloc(nprov, sizeof(*c->provp));
	c->plat = calloc(nprov, sizeof(double));
	c->plon = calloc(nprov, sizeof(double));
	c->e = calloc(ne + 1, sizeof(*c->e));
	c->p = calloc(np + 1, sizeof(*c->p));
	c->t = calloc(nt + 1, sizeof(*c->t));
	c->skills = calloc(npers * 3 + 3, sizeof(*c->skills));
	c->lists = calloc(npers * 3 + 3, sizeof(*c->lists));
	c->ids = calloc(npers + nt + 1, sizeof(*c->ids));
	if (!c->prov || !c->provp || !c->plat || !c->plon || !c->e || !c->p || !c->t || !c->skills ||
	    !c->lists || !c->ids)
		return -1;
	for (size_t i = 0; i < nprov; i++) {
		snprintf(c->prov[i], sizeof(c->prov[i]), "P%02zu", i);
		c->provp[i] = c->prov[i];
		/* A country about 2,500 km across: China's provinces' centres. */
		c->plat[i] = 22 + urand() * 22;
		c->plon[i] = 100 + urand() * 24;
	}
	for (size_t i = 0; i < ne; i++) {
		struct choose_engineer *e = &c->e[i];
		size_t pv = (size_t)irand((int)nprov);
		snprintf(c->ids[i], sizeof(c->ids[i]), "E%05zu", i);
		e->id = c->ids[i];
		e->kind = urand() < 0.08 ? ENGINEER_REMOTE : ENGINEER_ONSITE;
		e->province = e->kind == ENGINEER_REMOTE ? NULL : c->provp[pv];
		const char **cov = &c->lists[i * 3];
		cov[0] = c->provp[pv];
		e->coverage = cov;
		e->ncoverage = 1;
		if (urand() < 0.2) /* also a neighbouring province */
			cov[e->ncoverage++] = c->provp[(pv + 1) % nprov];
		e->nskills = (size_t)make_skills(c, i, 4);
		e->skills = &c->skills[i * 3];
		e->has_pos = e->kind == ENGINEER_ONSITE;
		e->lat = c->plat[pv] + (urand() - 0.5) * 3;
		e->lon = c->plon[pv] + (urand() - 0.5) * 3;
		e->max_concurrent = 1 + irand(3);
		e->load = irand(e->max_concurrent + 1);
		double a = urand();
		e->avail = a < 0.1 ? AVAIL_OFF : a < 0.3 ? AVAIL_BUSY : AVAIL_AVAILABLE;
	}
	for (size_t i = 0; i < np; i++) {
		struct choose_partner *p = &c->p[i];
		size_t q = ne + i, pv = (size_t)irand((int)nprov);
		snprintf(c->ids[q], sizeof(c->ids[q]), "P%05zu", i);
		p->id = c->ids[q];
		const char **pl = &c->lists[q * 3];
		p->nprovinces = 1 + (size_t)irand(3);
		for (size_t j = 0; j < p->nprovinces; j++)
			pl[j] = c->provp[(pv + j) % nprov];
		p->provinces = pl;
		p->nskills = (size_t)make_skills(c, q, 3);
		p->skills = &c->skills[q * 3];
		p->capacity = 2 + irand(8);
		p->load = irand(p->capacity);
		p->certified_end_us = urand() < 0.95 ? NOW + 1000 * 60 * MIN_US : NOW - MIN_US;
		p->response_s = 1800 + 600 * irand(10);
		p->cost_per_job = 300 + 50 * irand(25);
	}
	for (size_t i = 0; i < nt; i++) {
		struct choose_ticket *t = &c->t[i];
		size_t pv = (size_t)irand((int)nprov);
		snprintf(c->ids[npers + i], sizeof(c->ids[0]), "T%06zu", i);
		t->id = c->ids[npers + i];
		t->province = c->provp[pv];
		t->skill = skill_names[irand(NSKILLS)];
		t->min_grade = 1 + irand(3);
		t->remote_ok = urand() < 0.2;
		t->has_pos = true;
		t->lat = c->plat[pv] + (urand() - 0.5) * 3;
		t->lon = c->plon[pv] + (urand() - 0.5) * 3;
		t->tier = (enum tier)irand(3);
		t->severity = (enum severity)irand(3);
		/* A backlog: some deadlines passed, most hours ahead. */
		t->created_us = NOW - irand(240) * MIN_US;
		t->respond_by_us = t->created_us + (15 + irand(240)) * MIN_US;
		t->arrive_by_us = t->created_us + (60 + irand(480)) * MIN_US;
	}
	return 0;
}

static void country_free(struct country *c)
{
	free(c->prov);
	free(c->provp);
	free(c->plat);
	free(c->plon);
	free(c->e);
	free(c->p);
	free(c->t);
	free(c->skills);
	free(c->lists);
	free(c->ids);
}

/* A world over copies of the people (plans change loads). */
struct run {
	struct choose_engineer *e;
	struct choose_partner *p;
	struct choose_world w;
	struct choose_decision *d;
	struct choose_cost cost;
	double seconds;
	size_t served;
};

static int run_plan(const struct country *c, const struct choose_ticket *t, size_t nt,
		    size_t k, bool greedy, struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->e = malloc((c->ne + 1) * sizeof(*r->e));
	r->p = malloc((c->np + 1) * sizeof(*r->p));
	r->d = calloc(nt + 1, sizeof(*r->d));
	if (!r->e || !r->p || !r->d)
		return -1;
	memcpy(r->e, c->e, c->ne * sizeof(*r->e));
	memcpy(r->p, c->p, c->np * sizeof(*r->p));
	r->w = (struct choose_world){ .now_us = NOW, .travel_kmh = 60, .max_candidates = k,
		.engineers = r->e, .nengineers = c->ne, .partners = r->p, .npartners = c->np };
	double t0 = now_s();
	int rc = greedy ? choose_plan_greedy(&r->w, t, nt, r->d) : choose_plan(&r->w, t, nt, r->d);
	r->seconds = now_s() - t0;
	if (rc != 0)
		return -1;
	struct choose_world before = r->w;
	before.engineers = c->e;
	before.partners = c->p;
	choose_plan_cost(&before, t, nt, r->d, &r->cost);
	for (size_t i = 0; i < nt; i++)
		r->served += r->d[i].verdict == CHOOSE_OFFER;
	return 0;
}

static void run_free(struct run *r)
{
	free(r->e);
	free(r->p);
	free(r->d);
}

static void print_run(const char *name, const struct run *r, size_t nt)
{
	printf("%s_s %.3f\n", name, r->seconds);
	printf("%s_tickets_per_s %.0f\n", name, r->seconds > 0 ? nt / r->seconds : 0);
	printf("%s_served %zu\n", name, r->served);
	printf("%s_wait %lld\n", name, (long long)r->cost.v[0]);
	printf("%s_late_h %.1f\n", name, r->cost.v[1] / 3600.0);
	printf("%s_travel_h %.1f\n", name, r->cost.v[2] / 3600.0);
	printf("%s_cost %.0f\n", name, r->cost.v[3] / 100.0);
	printf("%s_load %lld\n", name, (long long)r->cost.v[4]);
}

static double ratio(int64_t a, int64_t b)
{
	return b == 0 ? (a == 0 ? 1.0 : 0.0) : (double)a / (double)b;
}

static void print_ratios(const char *name, const struct run *r, const struct run *ref)
{
	printf("ratio_%s_wait %.4f\n", name, ratio(r->cost.v[0], ref->cost.v[0]));
	printf("ratio_%s_late %.4f\n", name, ratio(r->cost.v[1], ref->cost.v[1]));
	printf("ratio_%s_travel %.4f\n", name, ratio(r->cost.v[2], ref->cost.v[2]));
	printf("ratio_%s_cost %.4f\n", name, ratio(r->cost.v[3], ref->cost.v[3]));
}

/*
 * The same country as master data for `scctl import` (run.sh, the service
 * phase): provinces, a customer and SITES_PER_PROVINCE sites per province
 * (S<prov><k>, around the centre), the engineers and partners as
 * generated (their loads and states are not master data: the service
 * starts with everybody free), and one "emergency" engineer per province
 * (skill emergency 4, capacity 1000) that only the latency probe's tickets
 * need. 0 or -1.
 */
#define SITES_PER_PROVINCE 20

static void put_skills(FILE *f, const struct choose_skill *sk, size_t n)
{
	fputs("{", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\"%s\": %d", i ? ", " : "", sk[i].name, sk[i].grade);
	fputs("}", f);
}

static int write_import(const struct country *c, const char *path)
{
	static const char *const tiers[] = { "vip", "key", "standard" };
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs("{\"settings\": {\"offer_timeout_s\": 86400, \"travel_kmh\": 60},\n \"provinces\": [", f);
	for (size_t i = 0; i < c->nprov; i++)
		fprintf(f, "%s{\"code\": \"%s\", \"name\": \"%s\", \"lat\": %.4f, \"lon\": %.4f}",
			i ? ",\n  " : "", c->prov[i], c->prov[i], c->plat[i], c->plon[i]);
	fputs("],\n \"customers\": [", f);
	for (size_t i = 0; i < c->nprov; i++)
		fprintf(f, "%s{\"id\": \"C%s\", \"tier\": \"%s\", \"province\": \"%s\"}",
			i ? ",\n  " : "", c->prov[i], tiers[i % 3], c->prov[i]);
	fputs("],\n \"sites\": [", f);
	for (size_t i = 0; i < c->nprov; i++)
		for (int k = 0; k < SITES_PER_PROVINCE; k++)
			fprintf(f, "%s{\"id\": \"S%s-%02d\", \"customer_id\": \"C%s\", \"province\": \"%s\","
				" \"lat\": %.4f, \"lon\": %.4f}", i || k ? ",\n  " : "", c->prov[i], k,
				c->prov[i], c->prov[i], c->plat[i] + (urand() - 0.5) * 3,
				c->plon[i] + (urand() - 0.5) * 3);
	fputs("],\n \"engineers\": [", f);
	for (size_t i = 0; i < c->ne; i++) {
		const struct choose_engineer *e = &c->e[i];
		fprintf(f, "%s{\"id\": \"%s\", \"kind\": \"%s\"", i ? ",\n  " : "", e->id,
			e->kind == ENGINEER_REMOTE ? "remote" : "onsite");
		if (e->kind == ENGINEER_ONSITE) {
			fprintf(f, ", \"province\": \"%s\", \"lat\": %.4f, \"lon\": %.4f, \"coverage\": [",
				e->province, e->lat, e->lon);
			for (size_t j = 0; j < e->ncoverage; j++)
				fprintf(f, "%s\"%s\"", j ? ", " : "", e->coverage[j]);
			fputs("]", f);
		}
		fputs(", \"skills\": ", f);
		put_skills(f, e->skills, e->nskills);
		fprintf(f, ", \"max_concurrent\": %d}", e->max_concurrent);
	}
	for (size_t i = 0; i < c->nprov; i++)
		fprintf(f, ",\n  {\"id\": \"X%s\", \"province\": \"%s\", \"lat\": %.4f, \"lon\": %.4f,"
			" \"skills\": {\"emergency\": 4}, \"max_concurrent\": 1000}",
			c->prov[i], c->prov[i], c->plat[i], c->plon[i]);
	fputs("],\n \"partners\": [", f);
	for (size_t i = 0; i < c->np; i++) {
		const struct choose_partner *p = &c->p[i];
		fprintf(f, "%s{\"id\": \"%s\", \"provinces\": [", i ? ",\n  " : "", p->id);
		for (size_t j = 0; j < p->nprovinces; j++)
			fprintf(f, "%s\"%s\"", j ? ", " : "", p->provinces[j]);
		fputs("], \"skills\": ", f);
		put_skills(f, p->skills, p->nskills);
		fprintf(f, ", \"capacity\": %d, \"certified_until\": \"%s\", \"response_s\": %lld,"
			" \"cost_per_job\": %.0f}", p->capacity,
			p->certified_end_us > NOW ? "2099-12-31" : "2020-01-01",
			(long long)p->response_s, p->cost_per_job);
	}
	fputs("]}\n", f);
	return fclose(f) == 0 ? 0 : -1;
}

static const char *arg_str(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static long arg_long(int argc, char **argv, const char *name, long dflt)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return strtol(argv[i + 1], NULL, 10);
	return dflt;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			puts("usage: bench-dispatch-plan [--engineers N] [--partners N] [--tickets N]\n"
			     "       [--provinces N] [--k K] [--ref-k K] [--seed S] [--import FILE]");
			return 0;
		}
	}
	size_t ne = (size_t)arg_long(argc, argv, "--engineers", 9000);
	size_t np = (size_t)arg_long(argc, argv, "--partners", 1000);
	size_t nt = (size_t)arg_long(argc, argv, "--tickets", 50000);
	size_t nprov = (size_t)arg_long(argc, argv, "--provinces", 31);
	size_t k = (size_t)arg_long(argc, argv, "--k", 0);
	size_t ref_k = (size_t)arg_long(argc, argv, "--ref-k", 0);
	rng += (unsigned long long)arg_long(argc, argv, "--seed", 1) * 0x9E3779B97F4A7C15ull;
	struct country c;
	struct run plan = { 0 }, greedy = { 0 }, ref = { 0 }, small_plan = { 0 }, small_opt = { 0 };
	int rc = 1;

	if (nprov == 0 || country_make(&c, nprov, ne, np, nt) != 0) {
		fprintf(stderr, "bench-dispatch-plan: out of memory\n");
		return 1;
	}
	const char *import = arg_str(argc, argv, "--import");
	if (import != NULL) {
		/* Only the master data: the service phase of run.sh. */
		rc = write_import(&c, import) == 0 ? 0 : 1;
		if (rc != 0)
			fprintf(stderr, "bench-dispatch-plan: cannot write %s\n", import);
		country_free(&c);
		return rc;
	}
	size_t units = 0;
	for (size_t i = 0; i < ne; i++)
		units += c.e[i].avail != AVAIL_OFF ? (size_t)(c.e[i].max_concurrent - c.e[i].load) : 0;
	for (size_t i = 0; i < np; i++)
		units += (size_t)(c.p[i].capacity - c.p[i].load);
	printf("instance engineers=%zu partners=%zu tickets=%zu provinces=%zu free_units=%zu k=%zu ref_k=%zu\n",
	       ne, np, nt, nprov, units, k, ref_k);
	if (run_plan(&c, c.t, nt, k, false, &plan) != 0 || run_plan(&c, c.t, nt, 0, true, &greedy) != 0 ||
	    run_plan(&c, c.t, nt, ref_k, false, &ref) != 0) {
		fprintf(stderr, "bench-dispatch-plan: out of memory\n");
		goto out;
	}
	print_run("plan", &plan, nt);
	print_run("greedy", &greedy, nt);
	print_run("ref", &ref, nt);
	print_ratios("plan", &plan, &ref);
	print_ratios("greedy", &greedy, &ref);
	/* One province's tickets with everybody as a candidate: the exact
	 * optimum of that sub-instance, against the default K. */
	{
		size_t n = 0;
		struct choose_ticket *sub = malloc((nt + 1) * sizeof(*sub));
		if (sub == NULL)
			goto out;
		for (size_t i = 0; i < nt; i++)
			if (strcmp(c.t[i].province, c.provp[0]) == 0)
				sub[n++] = c.t[i];
		if (run_plan(&c, sub, n, k, false, &small_plan) != 0 ||
		    run_plan(&c, sub, n, ne + np, false, &small_opt) != 0) {
			free(sub);
			goto out;
		}
		printf("small_tickets %zu\n", n);
		print_run("small_plan", &small_plan, n);
		print_run("small_opt", &small_opt, n);
		print_ratios("small_plan", &small_plan, &small_opt);
		printf("small_exact %d\n", choose_cost_cmp(&small_plan.cost, &small_opt.cost) == 0);
		run_free(&small_plan);
		run_free(&small_opt);
		free(sub);
	}
	rc = 0;
out:
	run_free(&plan);
	run_free(&greedy);
	run_free(&ref);
	country_free(&c);
	return rc;
}

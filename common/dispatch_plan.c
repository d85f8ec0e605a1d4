/*
 * The batch optimiser of sc-dispatch: choose_plan() (dispatch_choose.h,
 * docs/dispatch.md).
 *
 * The plan is a min-cost flow: every ticket sends one unit either over an
 * arc to one of its candidates (an engineer or partner with free capacity)
 * or over its "wait" arc; a person passes at most its free capacity on to
 * the sink, the k-th unit at a rising (convex) load cost. Costs are vectors
 * of CHOOSE_LEVELS integers compared lexicographically; a totally ordered
 * group, so Dijkstra with node potentials works on them as on numbers and
 * the result is exact, not a weighted compromise.
 *
 * Tickets are inserted one at a time, most urgent first; each insertion is
 * one shortest augmenting path from the new ticket to the sink in the
 * residual graph (successive shortest paths, one source at a time, as in
 * the Hungarian method): the path may move tickets already placed to other
 * people to make room. Dijkstra stops at the sink and only the nodes it
 * settled get their potentials changed, so an easy ticket costs a few heap
 * operations whatever the size of the country.
 *
 * Saturated regions: when no free unit can be reached from a new ticket,
 * everybody its search settled can never again be part of a useful path in
 * this plan (capacity is only consumed, and a later ticket is less urgent,
 * so taking an earlier one's place costs more at level 0 than waiting), so
 * they are marked dead and skipped. This keeps a long backlog of waiting
 * tickets from searching the same full province over and over.
 *
 * Graph: every person of the ticket's province (and remote engineers when
 * it allows remote handling) who qualifies, has not refused it and has a
 * free unit: the graph is sparse already, since people serve only their
 * provinces. max_candidates caps the arcs per ticket (the best by arc
 * cost, then the load charge of the person's next unit); 0, the default,
 * keeps them all and the plan is the exact optimum.
 */
#include "dispatch_choose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UNIT_SCALE 1000000

/* One candidate arc of a ticket: 12 bytes, since with every candidate
 * kept a country's backlog has millions. Level 3 (partner cost) is the
 * person's; the estimated arrival is computed again for the chosen arc. */
struct arc {
	int32_t person;            /* 0..ne-1 engineers, ne.. partners */
	int32_t late, travel;      /* levels 1 and 2, seconds */
};

struct heap_item {
	struct choose_cost d;
	int node;
};

/* A province's people, for candidate search: pairs sorted by province. */
struct region_entry {
	const char *province;
	int person;
};

struct planner {
	const struct choose_world *w;
	size_t m;                  /* tickets in the flow (not manual) */
	size_t ne, npers;          /* engineers; engineers + partners */
	size_t sink;               /* node id of the sink */
	/* per planner ticket k (rank k in urgency order) */
	size_t *tix;               /* index into the caller's tickets */
	size_t *arc_start;         /* arcs of k: arc_start[k] .. arc_start[k+1]-1 */
	struct arc *arcs;
	long *asg;                 /* arc taken, or -1 (waiting) */
	int *next, *prev;          /* tickets held by one person: a list */
	/* per person */
	int *head;
	int *used;                 /* units taken in this plan */
	int *freecap;              /* units free before the plan */
	int *load0, *cap;
	int64_t *pcost;            /* level 3 of an arc to this person */
	bool *dead;
	/* per node: tickets 0..m-1, persons m..m+npers-1, the sink */
	struct choose_cost *pi, *dist;
	unsigned *seen, *done;     /* stamps of the current search */
	int *pred;                 /* node it was reached from */
	long *pred_arc;            /* person: the ticket arc used; sink: -1 wait, -2 unit */
	unsigned stamp;
	size_t *settled;
	size_t nsettled;
	struct heap_item *heap;
	size_t nheap, capheap;
};

/* ---- lexicographic costs -------------------------------------------------- */

int choose_cost_cmp(const struct choose_cost *a, const struct choose_cost *b)
{
	for (int i = 0; i < CHOOSE_LEVELS; i++)
		if (a->v[i] != b->v[i])
			return a->v[i] < b->v[i] ? -1 : 1;
	return 0;
}

static struct choose_cost cost_add(struct choose_cost a, const struct choose_cost *b)
{
	for (int i = 0; i < CHOOSE_LEVELS; i++)
		a.v[i] += b->v[i];
	return a;
}

static struct choose_cost cost_sub(struct choose_cost a, const struct choose_cost *b)
{
	for (int i = 0; i < CHOOSE_LEVELS; i++)
		a.v[i] -= b->v[i];
	return a;
}

static struct choose_cost arc_cost(const struct planner *pl, const struct arc *a)
{
	return (struct choose_cost){ { 0, a->late, a->travel, pl->pcost[a->person], 0 } };
}

static int64_t late_s(int64_t eta_us, int64_t deadline_us)
{
	if (deadline_us == 0 || eta_us <= deadline_us)
		return 0;
	return (eta_us - deadline_us + 999999) / 1000000;
}

void choose_arc_cost(const struct choose_world *w, const struct choose_ticket *t,
		     const struct choose_engineer *e, const struct choose_partner *p,
		     struct choose_cost *out, int64_t *eta_us)
{
	int64_t eta = w->now_us;
	memset(out, 0, sizeof(*out));
	if (e != NULL && e->kind == ENGINEER_REMOTE) {
		/* A remote session starts now; its deadline is respond_by. */
		out->v[1] = late_s(eta, t->respond_by_us);
	} else if (e != NULL) {
		int64_t tr = choose_travel_us(w, e, t);
		eta += tr;
		out->v[1] = late_s(eta, t->arrive_by_us);
		out->v[2] = (tr + 500000) / 1000000;
	} else {
		eta += p->response_s * 1000000;
		out->v[1] = late_s(eta, t->arrive_by_us);
		out->v[2] = p->response_s;
		out->v[3] = llround(p->cost_per_job * 100);
	}
	*eta_us = eta;
}

/* The load charge of a person's unit that brings its load to load_after. */
static int64_t unit_cost(int load_after, int cap)
{
	return cap > 0 ? (int64_t)load_after * UNIT_SCALE / cap : 0;
}

/* ---- the objective of a finished plan (tests, bench) ---------------------- */

static int cmp_ticket_ptr(const void *a, const void *b)
{
	const struct choose_ticket *const *x = a, *const *y = b;
	return choose_ticket_cmp(*x, *y);
}

void choose_plan_cost(const struct choose_world *before, const struct choose_ticket *tickets,
		      size_t n, const struct choose_decision *dec, struct choose_cost *out)
{
	memset(out, 0, sizeof(*out));
	int *eu = calloc(before->nengineers + 1, sizeof(*eu));
	int *pu = calloc(before->npartners + 1, sizeof(*pu));
	const struct choose_ticket **order = malloc((n + 1) * sizeof(*order));
	size_t m = 0;
	if (eu == NULL || pu == NULL || order == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (dec[i].verdict != CHOOSE_MANUAL)
			order[m++] = &tickets[i];
	qsort(order, m, sizeof(*order), cmp_ticket_ptr);
	for (size_t r = 0; r < m; r++) {
		size_t i = (size_t)(order[r] - tickets);
		const struct choose_decision *d = &dec[i];
		if (d->verdict == CHOOSE_WAIT) {
			out->v[0] += (int64_t)(m - r);
			continue;
		}
		struct choose_cost c;
		int64_t eta;
		if (d->engineer >= 0) {
			choose_arc_cost(before, &tickets[i], &before->engineers[d->engineer], NULL, &c, &eta);
			const struct choose_engineer *e = &before->engineers[d->engineer];
			eu[d->engineer]++;
			c.v[4] = unit_cost(e->load + eu[d->engineer], e->max_concurrent);
		} else {
			choose_arc_cost(before, &tickets[i], NULL, &before->partners[d->partner], &c, &eta);
			const struct choose_partner *p = &before->partners[d->partner];
			pu[d->partner]++;
			c.v[4] = unit_cost(p->load + pu[d->partner], p->capacity);
		}
		*out = cost_add(*out, &c);
	}
out:
	free(eu);
	free(pu);
	free(order);
}

/* ---- candidates ----------------------------------------------------------- */

static int cmp_region(const void *a, const void *b)
{
	const struct region_entry *x = a, *y = b;
	int c = strcmp(x->province, y->province);
	return c != 0 ? c : (x->person > y->person) - (x->person < y->person);
}

static bool listed(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] != NULL && strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Arc a ranks before b: arc cost, then the load cost of the next unit,
 * then the person (reproducible). */
static bool arc_before(const struct planner *pl, const struct arc *a, const struct arc *b)
{
	struct choose_cost ca = arc_cost(pl, a), cb = arc_cost(pl, b);
	int c = choose_cost_cmp(&ca, &cb);
	if (c != 0)
		return c < 0;
	int64_t ua = unit_cost(pl->load0[a->person] + 1, pl->cap[a->person]);
	int64_t ub = unit_cost(pl->load0[b->person] + 1, pl->cap[b->person]);
	if (ua != ub)
		return ua < ub;
	return a->person < b->person;
}

/* What the candidate search found for one ticket. */
struct found {
	struct arc **arcs;         /* the planner's growing array */
	size_t *narcs, *caparcs;
	size_t first;              /* this ticket's first arc */
	size_t n, k;               /* arcs kept; at most k (0: all) */
	bool qualified, refused;
	bool oom;
};

static void keep_arc(const struct planner *pl, struct found *f, const struct arc *a)
{
	if (f->k == 0 || f->n < f->k) {
		/* Room: append (the capped case then sorts below). */
		if (*f->narcs == *f->caparcs) {
			size_t cap = *f->caparcs ? *f->caparcs * 2 : 4096;
			struct arc *b = realloc(*f->arcs, cap * sizeof(*b));
			if (b == NULL) {
				f->oom = true;
				return;
			}
			*f->arcs = b;
			*f->caparcs = cap;
		}
		(*f->arcs)[(*f->narcs)++] = *a;
		f->n++;
		if (f->k == 0)
			return;
		/* Keep the capped list sorted best first. */
		struct arc *v = *f->arcs + f->first;
		for (size_t i = f->n - 1; i > 0 && arc_before(pl, &v[i], &v[i - 1]); i--) {
			struct arc x = v[i];
			v[i] = v[i - 1];
			v[i - 1] = x;
		}
		return;
	}
	struct arc *arcs = *f->arcs + f->first;
	if (!arc_before(pl, a, &arcs[f->n - 1]))
		return;
	size_t i = f->n - 1;
	while (i > 0 && arc_before(pl, a, &arcs[i - 1])) {
		arcs[i] = arcs[i - 1];
		i--;
	}
	arcs[i] = *a;
}

static bool skilled(const struct choose_skill *sk, size_t n, const char *skill, int grade)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(sk[i].name, skill) == 0)
			return sk[i].grade >= grade;
	return false;
}

/* q came from the region index of t's province (or is a remote engineer),
 * so of choose_engineer_qualifies only capacity, skill and grade (and for
 * remote engineers remote handling) are left to check: the coverage lists
 * are not searched again for every ticket. */
static void consider(const struct planner *pl, const struct choose_ticket *t, int q,
		     struct found *f)
{
	const struct choose_world *w = pl->w;
	struct arc a = { .person = q };
	struct choose_cost c;
	int64_t eta;
	if ((size_t)q < pl->ne) {
		const struct choose_engineer *e = &w->engineers[q];
		if (e->max_concurrent <= 0 || !skilled(e->skills, e->nskills, t->skill, t->min_grade) ||
		    (e->kind == ENGINEER_REMOTE && !t->remote_ok))
			return;
		if (listed(t->refused_engineers, t->nrefused_engineers, e->id)) {
			f->refused = true;
			return;
		}
		f->qualified = true;
		if (e->avail == AVAIL_OFF || pl->freecap[q] <= 0)
			return;
		choose_arc_cost(w, t, e, NULL, &c, &eta);
	} else {
		const struct choose_partner *p = &w->partners[(size_t)q - pl->ne];
		if (p->capacity <= 0 || p->certified_end_us <= w->now_us ||
		    !skilled(p->skills, p->nskills, t->skill, t->min_grade))
			return;
		if (listed(t->refused_partners, t->nrefused_partners, p->id)) {
			f->refused = true;
			return;
		}
		f->qualified = true;
		if (pl->freecap[q] <= 0)
			return;
		choose_arc_cost(w, t, NULL, p, &c, &eta);
	}
	/* Seconds: more than 68 years late or away is not a case to meet. */
	a.late = c.v[1] < INT32_MAX ? (int32_t)c.v[1] : INT32_MAX;
	a.travel = c.v[2] < INT32_MAX ? (int32_t)c.v[2] : INT32_MAX;
	keep_arc(pl, f, &a);
}

/* ---- the search ----------------------------------------------------------- */

static bool heap_less(const struct heap_item *a, const struct heap_item *b)
{
	int c = choose_cost_cmp(&a->d, &b->d);
	return c != 0 ? c < 0 : a->node < b->node;
}

static int heap_push(struct planner *pl, const struct choose_cost *d, int node)
{
	if (pl->nheap == pl->capheap) {
		size_t cap = pl->capheap ? pl->capheap * 2 : 1024;
		struct heap_item *h = realloc(pl->heap, cap * sizeof(*h));
		if (h == NULL)
			return -1;
		pl->heap = h;
		pl->capheap = cap;
	}
	size_t i = pl->nheap++;
	struct heap_item it = { *d, node };
	while (i > 0 && heap_less(&it, &pl->heap[(i - 1) / 2])) {
		pl->heap[i] = pl->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	pl->heap[i] = it;
	return 0;
}

static struct heap_item heap_pop(struct planner *pl)
{
	struct heap_item top = pl->heap[0], last = pl->heap[--pl->nheap];
	size_t i = 0, n = pl->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(&pl->heap[c + 1], &pl->heap[c]))
			c++;
		if (!heap_less(&pl->heap[c], &last))
			break;
		pl->heap[i] = pl->heap[c];
		i = c;
	}
	if (n > 0)
		pl->heap[i] = last;
	return top;
}

/* Offers node v the tentative distance d (reduced) from `from`. */
static int relax(struct planner *pl, size_t v, const struct choose_cost *d, size_t from, long how)
{
	if (pl->done[v] == pl->stamp)
		return 0;
	if (pl->seen[v] == pl->stamp && choose_cost_cmp(d, &pl->dist[v]) >= 0)
		return 0;
	pl->seen[v] = pl->stamp;
	pl->dist[v] = *d;
	pl->pred[v] = (int)from;
	pl->pred_arc[v] = how;
	return heap_push(pl, d, (int)v);
}

static struct choose_cost wait_cost(const struct planner *pl, size_t k)
{
	return (struct choose_cost){ { (int64_t)(pl->m - k), 0, 0, 0, 0 } };
}

static struct choose_cost next_unit(const struct planner *pl, size_t q)
{
	return (struct choose_cost){ { 0, 0, 0, 0,
		unit_cost(pl->load0[q] + pl->used[q] + 1, pl->cap[q]) } };
}

static void unlink_ticket(struct planner *pl, size_t k)
{
	long a = pl->asg[k];
	if (a < 0)
		return;
	int q = pl->arcs[a].person;
	if (pl->prev[k] >= 0)
		pl->next[pl->prev[k]] = pl->next[k];
	else
		pl->head[q] = pl->next[k];
	if (pl->next[k] >= 0)
		pl->prev[pl->next[k]] = pl->prev[k];
	pl->asg[k] = -1;
}

static void link_ticket(struct planner *pl, size_t k, long a)
{
	int q = pl->arcs[a].person;
	pl->asg[k] = a;
	pl->prev[k] = -1;
	pl->next[k] = pl->head[q];
	if (pl->head[q] >= 0)
		pl->prev[pl->head[q]] = (int)k;
	pl->head[q] = (int)k;
}

/* Inserts planner ticket s: one shortest augmenting path. 0 or -1 (OOM). */
static int insert(struct planner *pl, size_t s)
{
	const size_t m = pl->m, sink = pl->sink;
	struct choose_cost zero = { { 0 } }, w = wait_cost(pl, s);

	/* A potential for the new node that makes its arcs' reduced costs
	 * non-negative (the largest pi[head] - cost). */
	struct choose_cost pis = cost_sub(pl->pi[sink], &w);
	bool any = false;
	for (size_t a = pl->arc_start[s]; a < pl->arc_start[s + 1]; a++) {
		if (pl->dead[pl->arcs[a].person])
			continue;
		struct choose_cost c = arc_cost(pl, &pl->arcs[a]);
		struct choose_cost x = cost_sub(pl->pi[m + (size_t)pl->arcs[a].person], &c);
		if (choose_cost_cmp(&x, &pis) > 0)
			pis = x;
		any = true;
	}
	pl->asg[s] = -1;
	if (!any)
		return 0;  /* nobody alive to ask: it waits, nothing to search */
	pl->pi[s] = pis;

	pl->stamp++;
	pl->nheap = 0;
	pl->nsettled = 0;
	if (relax(pl, s, &zero, s, 0) != 0)
		return -1;
	while (pl->nheap > 0) {
		struct heap_item it = heap_pop(pl);
		size_t u = (size_t)it.node;
		if (pl->done[u] == pl->stamp || choose_cost_cmp(&it.d, &pl->dist[u]) != 0)
			continue;
		pl->done[u] = pl->stamp;
		pl->settled[pl->nsettled++] = u;
		if (u == sink)
			break;
		struct choose_cost base = cost_add(pl->dist[u], &pl->pi[u]);
		if (u < m) {
			for (size_t a = pl->arc_start[u]; a < pl->arc_start[u + 1]; a++) {
				size_t q = (size_t)pl->arcs[a].person;
				if ((long)a == pl->asg[u] || pl->dead[q])
					continue;
				struct choose_cost c = arc_cost(pl, &pl->arcs[a]);
				struct choose_cost d = cost_sub(cost_add(base, &c), &pl->pi[m + q]);
				if (relax(pl, m + q, &d, u, (long)a) != 0)
					return -1;
			}
			struct choose_cost wc = wait_cost(pl, u);
			struct choose_cost d = cost_sub(cost_add(base, &wc), &pl->pi[sink]);
			if (relax(pl, sink, &d, u, -1) != 0)
				return -1;
		} else {
			size_t q = u - m;
			if (pl->used[q] < pl->freecap[q]) {
				struct choose_cost uc = next_unit(pl, q);
				struct choose_cost d = cost_sub(cost_add(base, &uc), &pl->pi[sink]);
				if (relax(pl, sink, &d, u, -2) != 0)
					return -1;
			}
			for (int k = pl->head[q]; k >= 0; k = pl->next[k]) {
				/* Back along k's arc: k leaves q (its arc cost is refunded). */
				struct choose_cost c = arc_cost(pl, &pl->arcs[pl->asg[k]]);
				struct choose_cost d = cost_sub(cost_sub(base, &c), &pl->pi[k]);
				if (relax(pl, (size_t)k, &d, u, 0) != 0)
					return -1;
			}
		}
	}
	/* The sink is always reached: the new ticket's own wait arc. */
	struct choose_cost big = pl->dist[sink];
	for (size_t i = 0; i < pl->nsettled; i++) {
		size_t v = pl->settled[i];
		struct choose_cost delta = cost_sub(pl->dist[v], &big);
		pl->pi[v] = cost_add(pl->pi[v], &delta);
	}

	/* Walk the path back from the sink and move the tickets along it. */
	long person;
	if (pl->pred_arc[sink] == -1) {
		size_t k = (size_t)pl->pred[sink];
		unlink_ticket(pl, k);
		person = k == s ? -1 : (long)pl->pred[k] - (long)m;
		/* No free unit was reachable: whoever the search settled is
		 * saturated for the rest of this plan. */
		for (size_t i = 0; i < pl->nsettled; i++)
			if (pl->settled[i] >= m && pl->settled[i] < sink)
				pl->dead[pl->settled[i] - m] = true;
	} else {
		person = (long)pl->pred[sink] - (long)m;
		pl->used[person]++;
	}
	while (person >= 0) {
		long a = pl->pred_arc[m + (size_t)person];
		size_t k = (size_t)pl->pred[m + (size_t)person];
		unlink_ticket(pl, k);
		link_ticket(pl, k, a);
		person = k == s ? -1 : (long)pl->pred[k] - (long)m;
	}
	return 0;
}

/* ---- choose_plan ---------------------------------------------------------- */

static void planner_free(struct planner *pl)
{
	free(pl->tix);
	free(pl->arc_start);
	free(pl->arcs);
	free(pl->asg);
	free(pl->next);
	free(pl->prev);
	free(pl->head);
	free(pl->used);
	free(pl->freecap);
	free(pl->load0);
	free(pl->cap);
	free(pl->pcost);
	free(pl->dead);
	free(pl->pi);
	free(pl->dist);
	free(pl->seen);
	free(pl->done);
	free(pl->pred);
	free(pl->pred_arc);
	free(pl->settled);
	free(pl->heap);
}

/* The region index: (province, person) for on-site engineers' coverage
 * and partners' provinces, sorted; remote engineers apart. */
static struct region_entry *region_index(const struct choose_world *w, size_t *n,
					 int **remote, size_t *nremote)
{
	size_t cap = 0, k = 0, r = 0;
	for (size_t i = 0; i < w->nengineers; i++)
		cap += w->engineers[i].ncoverage + 1;
	for (size_t i = 0; i < w->npartners; i++)
		cap += w->partners[i].nprovinces;
	struct region_entry *idx = malloc((cap + 1) * sizeof(*idx));
	int *rem = malloc((w->nengineers + 1) * sizeof(*rem));
	if (idx == NULL || rem == NULL) {
		free(idx);
		free(rem);
		return NULL;
	}
	for (size_t i = 0; i < w->nengineers; i++) {
		const struct choose_engineer *e = &w->engineers[i];
		if (e->kind == ENGINEER_REMOTE) {
			rem[r++] = (int)i;
		} else if (e->ncoverage == 0) {
			if (e->province != NULL)
				idx[k++] = (struct region_entry){ e->province, (int)i };
		} else {
			for (size_t j = 0; j < e->ncoverage; j++)
				if (e->coverage[j] != NULL)
					idx[k++] = (struct region_entry){ e->coverage[j], (int)i };
		}
	}
	for (size_t i = 0; i < w->npartners; i++)
		for (size_t j = 0; j < w->partners[i].nprovinces; j++)
			if (w->partners[i].provinces[j] != NULL)
				idx[k++] = (struct region_entry){ w->partners[i].provinces[j],
								  (int)(w->nengineers + i) };
	qsort(idx, k, sizeof(*idx), cmp_region);
	*n = k;
	*remote = rem;
	*nremote = r;
	return idx;
}

/* First index entry of province (or n). */
static size_t region_first(const struct region_entry *idx, size_t n, const char *province)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(idx[mid].province, province) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#define ALLOC(p, n) ((p) = calloc((n) + 1, sizeof(*(p))), (p) != NULL)

int choose_plan(struct choose_world *w, const struct choose_ticket *tickets, size_t n,
		struct choose_decision *out)
{
	struct planner pl = { .w = w };
	const struct choose_ticket **order = NULL;
	struct region_entry *idx = NULL;
	int *remote = NULL;
	unsigned *met = NULL;
	size_t nidx = 0, nremote = 0;
	int rc = -1;

	if (n == 0)
		return 0;
	size_t k_max = w->max_candidates, caparcs = 0;
	pl.ne = w->nengineers;
	pl.npers = w->nengineers + w->npartners;
	if (!ALLOC(order, n) || !ALLOC(pl.tix, n) || !ALLOC(pl.arc_start, n + 1) ||
	    !ALLOC(pl.head, pl.npers) || !ALLOC(pl.used, pl.npers) || !ALLOC(pl.pcost, pl.npers) ||
	    !ALLOC(pl.freecap, pl.npers) || !ALLOC(pl.load0, pl.npers) || !ALLOC(pl.cap, pl.npers) ||
	    !ALLOC(pl.dead, pl.npers) || !ALLOC(met, pl.npers))
		goto out;
	for (size_t q = 0; q < pl.npers; q++) {
		if (q < pl.ne) {
			pl.cap[q] = w->engineers[q].max_concurrent;
			pl.load0[q] = w->engineers[q].load;
		} else {
			pl.cap[q] = w->partners[q - pl.ne].capacity;
			pl.load0[q] = w->partners[q - pl.ne].load;
		}
		pl.freecap[q] = pl.cap[q] - pl.load0[q];
		pl.pcost[q] = q < pl.ne ? 0 : llround(w->partners[q - pl.ne].cost_per_job * 100);
		pl.head[q] = -1;
	}
	idx = region_index(w, &nidx, &remote, &nremote);
	if (idx == NULL)
		goto out;

	/* Candidates, most urgent ticket first; manual ones leave the flow. */
	for (size_t i = 0; i < n; i++)
		order[i] = &tickets[i];
	qsort(order, n, sizeof(*order), cmp_ticket_ptr);
	size_t narcs = 0;
	for (size_t r = 0; r < n; r++) {
		const struct choose_ticket *t = order[r];
		size_t i = (size_t)(t - tickets);
		unsigned mark = (unsigned)r + 1;
		struct found f = { .arcs = &pl.arcs, .narcs = &narcs, .caparcs = &caparcs,
				   .first = narcs, .k = k_max };
		for (size_t j = region_first(idx, nidx, t->province);
		     j < nidx && strcmp(idx[j].province, t->province) == 0; j++) {
			if (met[idx[j].person] == mark)
				continue;  /* listed twice in a coverage */
			met[idx[j].person] = mark;
			consider(&pl, t, idx[j].person, &f);
		}
		for (size_t j = 0; t->remote_ok && j < nremote; j++)
			consider(&pl, t, remote[j], &f);
		if (f.oom)
			goto out;
		out[i] = (struct choose_decision){ .engineer = -1, .partner = -1 };
		if (!f.qualified) {
			out[i].verdict = CHOOSE_MANUAL;
			out[i].reason = f.refused
				? "every qualified engineer and partner declined or let an offer expire"
				: "nobody qualifies by skill, grade, coverage or certification";
			continue;
		}
		pl.tix[pl.m] = i;
		pl.arc_start[pl.m] = f.first;
		pl.m++;
	}
	pl.arc_start[pl.m] = narcs;
	pl.sink = pl.m + pl.npers;
	size_t nodes = pl.sink + 1;
	if (!ALLOC(pl.asg, pl.m) || !ALLOC(pl.next, pl.m) || !ALLOC(pl.prev, pl.m) ||
	    !ALLOC(pl.pi, nodes) || !ALLOC(pl.dist, nodes) || !ALLOC(pl.seen, nodes) ||
	    !ALLOC(pl.done, nodes) || !ALLOC(pl.pred, nodes) || !ALLOC(pl.pred_arc, nodes) ||
	    !ALLOC(pl.settled, nodes))
		goto out;
	for (size_t k = 0; k < pl.m; k++)
		if (insert(&pl, k) != 0)
			goto out;

	for (size_t k = 0; k < pl.m; k++) {
		size_t i = pl.tix[k];
		const struct choose_ticket *t = &tickets[i];
		if (pl.asg[k] < 0) {
			out[i].verdict = CHOOSE_WAIT;
			out[i].reason = "every qualified engineer and partner is off or full";
			continue;
		}
		const struct arc *a = &pl.arcs[pl.asg[k]];
		struct choose_decision *d = &out[i];
		struct choose_cost c;
		d->verdict = CHOOSE_OFFER;
		if ((size_t)a->person < pl.ne)
			choose_arc_cost(w, t, &w->engineers[a->person], NULL, &c, &d->eta_us);
		else
			choose_arc_cost(w, t, NULL, &w->partners[a->person - (int)pl.ne], &c, &d->eta_us);
		if ((size_t)a->person < pl.ne) {
			d->engineer = a->person;
			d->mode = w->engineers[a->person].kind == ENGINEER_REMOTE ? MODE_REMOTE : MODE_ONSITE;
			w->engineers[a->person].load++;
		} else {
			d->partner = a->person - (int)pl.ne;
			d->mode = MODE_OUTSOURCED;
			w->partners[d->partner].load++;
		}
		d->late = d->mode != MODE_REMOTE && t->arrive_by_us != 0 && d->eta_us > t->arrive_by_us;
	}
	rc = 0;
out:
	free(order);
	free(idx);
	free(remote);
	free(met);
	planner_free(&pl);
	return rc;
}

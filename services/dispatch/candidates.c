/*
 * The sweep: who qualifies for which waiting ticket, and the resulting
 * offers. One sweep reads one consistent snapshot
 * (sc_dispatch_snapshot_delta, schema/026: a page of waiting tickets, the
 * open offers due soon, and what changed about the people, merged by
 * people.c into the engineers and partners it keeps), lets choose_plan()
 * (common/dispatch_plan.c) decide chunk by chunk, and hands the decisions
 * to offers.c, one statement per chunk. The sweep ends when all of them
 * have returned; requests that came meanwhile make exactly one more.
 *
 * Wake-ups: NOTIFY ticket_new (whose ticket the next snapshot includes
 * whatever page it reads), an EV_PERSIST timer every SC_SWEEP_MS (the
 * safety net for a lost notification, and the retry of waiting tickets),
 * every database (re)connect, and sweep_request() from offers.c and
 * events.c when capacity frees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "db.h"
#include "domain.h"
#include "dispatch.h"
#include "dispatch_choose.h"
#include "log.h"
#include "service.h"
#include "timeutil.h"
#include "topic.h"

/* Tickets per snapshot. Past this the sweep pages on (offset), see
 * on_snapshot. */
#define SWEEP_PAGE 4000

/* Tickets planned at once; the page is planned chunk after chunk, each
 * chunk's offers in one statement (OFFER_BATCH >= SWEEP_CHUNK) that
 * PostgreSQL works on while the next chunk is planned. */
#define SWEEP_CHUNK 1000

/* Tickets per snapshot while the last page moved nothing (a backlog that
 * waits for capacity): the pass through it goes on in short sweeps, so a
 * new urgent ticket waits for a short one, not for a 1000-ticket chunk.
 * Back to SWEEP_PAGE as soon as a page moves something. */
#define SWEEP_PAGE_IDLE 500

/* After a pass that moved nothing, the sweep timer starts the next one
 * only this many SC_SWEEP_MS periods later (see plan_done). */
#define SWEEP_QUIET 5

/* Tickets announced by NOTIFY ticket_new since the last snapshot, passed
 * to it (p_also) so they are decided in the next sweep whatever page the
 * sweep reads; past this many the paging alone finds them. */
#define SWEEP_ALSO_MAX 64

struct sweep {
	struct event *timer;   /* every SC_SWEEP_MS */
	char also[SWEEP_ALSO_MAX][TOPIC_ID_MAX + 1];
	size_t nalso;
	struct event *kick;    /* zero-delay one-shot: coalesces requests */
	bool running;          /* snapshot or its decisions in flight */
	bool again;            /* another sweep wanted after this one */
	bool priority;         /* this snapshot holds only notified tickets */
	size_t pending;        /* decision statements not yet returned */
	int offset;            /* paging through a long queue, see SWEEP_PAGE */
	int64_t started_us;    /* monotonic: snapshot asked for (debug timings) */
	int next_offset;
	int page;              /* tickets the snapshot in flight asked for */
	bool idle;             /* the last full page moved nothing */
	/* The snapshot being planned chunk by chunk (plan_chunk). */
	struct dispatch_snapshot snap;
	struct choose_decision *dec;   /* one per snapshot ticket */
	size_t chunk_at;       /* tickets planned so far */
	size_t moved;          /* tickets the decisions take out of `new` */
	size_t queued;         /* statements queued */
	unsigned gen;          /* people_gen() the snapshot was merged with */
	bool restart;          /* a decision was refused: the pass starts over */
	bool in_pass;          /* a pass through the waiting tickets is under way */
	size_t pass_moved;     /* tickets the pass under way moved so far */
	int64_t quiet_until_us;/* monotonic: the timer starts no pass before */
	struct event *chunk_ev;/* zero-delay: plan the next chunk */
	int64_t t_reply, t_parsed;
};

static void *snap_alloc(struct dispatch_snapshot *s, size_t n, size_t size)
{
	if (n == 0)
		return NULL;
	if (s->nblocks == s->capblocks) {
		size_t cap = s->capblocks ? s->capblocks * 2 : 64;
		void **b = realloc(s->blocks, cap * sizeof(*b));
		if (b == NULL)
			return NULL;
		s->blocks = b;
		s->capblocks = cap;
	}
	void *p = calloc(n, size);
	if (p != NULL)
		s->blocks[s->nblocks++] = p;
	return p;
}

void dispatch_snapshot_free(struct dispatch_snapshot *s)
{
	for (size_t i = 0; i < s->nblocks; i++)
		free(s->blocks[i]);
	free(s->blocks);
	cJSON_Delete(s->root);
	memset(s, 0, sizeof(*s));
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jnum(const cJSON *o, const char *key, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v))
		return false;
	*out = v->valuedouble;
	return true;
}

static double jnum_or(const cJSON *o, const char *key, double dflt)
{
	double v;
	return jnum(o, key, &v) ? v : dflt;
}

/* A JSON array of strings as a C array (NULL and 0 when empty). 0 or -1. */
static int str_array(struct dispatch_snapshot *s, const cJSON *o, const char *key,
		     const char *const **out, size_t *n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *v;
	*out = NULL;
	*n = 0;
	int len = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
	if (len == 0)
		return 0;
	const char **arr = snap_alloc(s, (size_t)len, sizeof(*arr));
	if (arr == NULL)
		return -1;
	cJSON_ArrayForEach(v, a) {
		if (cJSON_IsString(v))
			arr[(*n)++] = v->valuestring;
	}
	*out = arr;
	return 0;
}

/* {"skill": grade, ...} as choose_skills. 0 or -1. */
static int skills(struct dispatch_snapshot *s, const cJSON *o, const struct choose_skill **out, size_t *n)
{
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(o, "skills"), *v;
	*out = NULL;
	*n = 0;
	int len = cJSON_IsObject(obj) ? cJSON_GetArraySize(obj) : 0;
	if (len == 0)
		return 0;
	struct choose_skill *arr = snap_alloc(s, (size_t)len, sizeof(*arr));
	if (arr == NULL)
		return -1;
	cJSON_ArrayForEach(v, obj) {
		if (cJSON_IsNumber(v) && v->string != NULL)
			arr[(*n)++] = (struct choose_skill){ v->string, (int)v->valuedouble };
	}
	*out = arr;
	return 0;
}

static int parse_ticket(struct dispatch_snapshot *s, const cJSON *o, struct choose_ticket *t)
{
	double v;
	t->id = jstr(o, "id");
	t->province = jstr(o, "province");
	t->skill = jstr(o, "skill");
	if (t->id == NULL || t->province == NULL || t->skill == NULL)
		return -1;
	t->min_grade = (int)jnum_or(o, "min_grade", 1);
	t->remote_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "remote_ok"));
	t->has_pos = jnum(o, "lat", &t->lat) && jnum(o, "lon", &t->lon);
	const char *tier = jstr(o, "tier"), *sev = jstr(o, "severity");
	if (tier == NULL || tier_parse(tier, &t->tier) != 0)
		t->tier = TIER_STANDARD;
	if (sev == NULL || severity_parse(sev, &t->severity) != 0)
		t->severity = SEVERITY_MINOR;
	t->respond_by_us = jnum(o, "respond_by", &v) ? (int64_t)v : 0;
	t->arrive_by_us = jnum(o, "arrive_by", &v) ? (int64_t)v : 0;
	t->created_us = (int64_t)jnum_or(o, "created", 0);
	return str_array(s, o, "refused_e", &t->refused_engineers, &t->nrefused_engineers) == 0 &&
	       str_array(s, o, "refused_p", &t->refused_partners, &t->nrefused_partners) == 0
		       ? 0 : -1;
}

static int parse_engineer(struct dispatch_snapshot *s, const cJSON *o, struct choose_engineer *e)
{
	e->id = jstr(o, "id");
	if (e->id == NULL)
		return -1;
	const char *kind = jstr(o, "kind"), *state = jstr(o, "state");
	if (kind == NULL || engineer_kind_parse(kind, &e->kind) != 0)
		e->kind = ENGINEER_ONSITE;
	/* A state we cannot read keeps the engineer out of offers, not in. */
	if (state == NULL || engineer_avail_parse(state, &e->avail) != 0)
		e->avail = AVAIL_OFF;
	e->province = jstr(o, "province");
	e->has_pos = jnum(o, "lat", &e->lat) && jnum(o, "lon", &e->lon);
	e->max_concurrent = (int)jnum_or(o, "max", 0);
	e->load = (int)jnum_or(o, "load", 0);
	return str_array(s, o, "coverage", &e->coverage, &e->ncoverage) == 0 &&
	       skills(s, o, &e->skills, &e->nskills) == 0 ? 0 : -1;
}

static int parse_partner(struct dispatch_snapshot *s, const cJSON *o, struct choose_partner *p)
{
	p->id = jstr(o, "id");
	if (p->id == NULL)
		return -1;
	p->capacity = (int)jnum_or(o, "capacity", 0);
	p->load = (int)jnum_or(o, "load", 0);
	p->certified_end_us = (int64_t)jnum_or(o, "certified_end", 0);
	p->response_s = (int64_t)jnum_or(o, "response_s", 7200);
	p->cost_per_job = jnum_or(o, "cost", 0);
	return str_array(s, o, "provinces", &p->provinces, &p->nprovinces) == 0 &&
	       skills(s, o, &p->skills, &p->nskills) == 0 ? 0 : -1;
}

int dispatch_snapshot_parse(struct dispatch *d, const char *text, size_t len, struct dispatch_snapshot *s)
{
	s->root = cJSON_ParseWithLength(text, len);
	if (s->root == NULL) {
		log_error("sweep failed: snapshot is not JSON");
		return -1;
	}
	return dispatch_snapshot_parse_json(d, s);
}

/* The tickets array of a snapshot into s->tickets. 0 or -1 (logged). */
static int parse_tickets(struct dispatch_snapshot *s, const cJSON *tk)
{
	const cJSON *v;
	size_t i = 0, nt = (size_t)cJSON_GetArraySize(tk);
	s->tickets = snap_alloc(s, nt, sizeof(*s->tickets));
	if (nt && !s->tickets) {
		log_error("sweep failed: out of memory tickets=%zu", nt);
		return -1;
	}
	cJSON_ArrayForEach(v, tk) {
		if (parse_ticket(s, v, &s->tickets[i]) != 0) {
			log_error("sweep failed: snapshot ticket without id, province or skill");
			return -1;
		}
		i++;
	}
	s->ntickets = i;
	return 0;
}

/*
 * A sc_dispatch_snapshot_delta document (schema/026): tickets as in the
 * full one, open offers due soon as [id, mode, expires_us], the people
 * merged by people.c (only read when a ticket waits). 0, or -1 with the reason logged; dispatch_snapshot_free(s)
 * either way (the world's people belong to people.c).
 */
static int parse_delta(struct dispatch *d, const char *text, size_t len, struct dispatch_snapshot *s)
{
	const cJSON *v;
	s->root = cJSON_ParseWithLength(text, len);
	if (s->root == NULL) {
		log_error("sweep failed: snapshot is not JSON");
		return -1;
	}
	const cJSON *tk = cJSON_GetObjectItemCaseSensitive(s->root, "tickets");
	const cJSON *of = cJSON_GetObjectItemCaseSensitive(s->root, "offers");
	if (!cJSON_IsArray(tk) || !cJSON_IsArray(of)) {
		log_error("sweep failed: snapshot lacks tickets or offers");
		return -1;
	}
	s->world.now_us = (int64_t)jnum_or(s->root, "now", 0);
	s->world.travel_kmh = jnum_or(s->root, "travel_kmh", 60);
	s->more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s->root, "more"));
	cJSON_ArrayForEach(v, of) {
		const cJSON *id = cJSON_GetArrayItem(v, 0), *mode = cJSON_GetArrayItem(v, 1),
			    *exp = cJSON_GetArrayItem(v, 2);
		enum mode m;
		if (cJSON_IsString(id) && cJSON_IsString(mode) && cJSON_IsNumber(exp) &&
		    mode_parse(mode->valuestring, &m) == 0)
			offers_track(d, id->valuestring, m, (int64_t)exp->valuedouble, false);
	}
	if (parse_tickets(s, tk) != 0)
		return -1;
	if (s->ntickets == 0)
		return 0;
	return people_apply(d, s->root, &s->world);
}

int dispatch_snapshot_parse_json(struct dispatch *d, struct dispatch_snapshot *s)
{
	const cJSON *v;
	size_t i;
	const cJSON *tk = cJSON_GetObjectItemCaseSensitive(s->root, "tickets");
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(s->root, "engineers");
	const cJSON *pa = cJSON_GetObjectItemCaseSensitive(s->root, "partners");
	const cJSON *of = cJSON_GetObjectItemCaseSensitive(s->root, "offers");
	if (!cJSON_IsArray(tk) || !cJSON_IsArray(en) || !cJSON_IsArray(pa) || !cJSON_IsArray(of)) {
		log_error("sweep failed: snapshot lacks tickets, engineers, partners or offers");
		return -1;
	}
	s->world.now_us = (int64_t)jnum_or(s->root, "now", 0);
	s->world.travel_kmh = jnum_or(s->root, "travel_kmh", 60);
	s->more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s->root, "more"));

	if (parse_tickets(s, tk) != 0)
		return -1;
	size_t ne = (size_t)cJSON_GetArraySize(en), np = (size_t)cJSON_GetArraySize(pa);
	s->world.engineers = snap_alloc(s, ne, sizeof(*s->world.engineers));
	s->world.partners = snap_alloc(s, np, sizeof(*s->world.partners));
	if ((ne && !s->world.engineers) || (np && !s->world.partners))
		goto oom;
	i = 0;
	cJSON_ArrayForEach(v, en) {
		if (parse_engineer(s, v, &s->world.engineers[i]) != 0)
			goto bad;
		i++;
	}
	s->world.nengineers = i;
	i = 0;
	cJSON_ArrayForEach(v, pa) {
		if (parse_partner(s, v, &s->world.partners[i]) != 0)
			goto bad;
		i++;
	}
	s->world.npartners = i;
	/* Every open offer gets an expiry timer here too: also those another
	 * instance made, in case that one stops before they expire. */
	cJSON_ArrayForEach(v, of) {
		const char *id = jstr(v, "id"), *mode = jstr(v, "mode");
		enum mode m;
		double exp;
		if (id != NULL && mode != NULL && mode_parse(mode, &m) == 0 && jnum(v, "expires", &exp))
			offers_track(d, id, m, (int64_t)exp, false);
	}
	return 0;
oom:
	log_error("sweep failed: out of memory");
	return -1;
bad:
	log_error("sweep failed: snapshot entry without id");
	return -1;
}

static void sweep_finish(struct dispatch *d)
{
	struct sweep *sw = d->sweep;
	sw->running = false;
	sw->offset = sw->next_offset;
	if (sw->again && !d->stopping) {
		sw->again = false;
		sweep_request(d);
	}
}

void sweep_decision_done(struct dispatch *d, bool again)
{
	struct sweep *sw = d->sweep;
	if (again) {
		sw->again = true;
		sw->restart = true;
		sw->next_offset = 0;
	}
	if (sw->pending > 0 && --sw->pending == 0)
		sweep_finish(d);
}

/* Queues one batch of offers (a statement); counts it in *queued. */
static void flush(struct dispatch *d, size_t n, const char **tk, const char **en, const char **pa,
		  const enum mode *mo, size_t *queued)
{
	if (n == 0)
		return;
	if (offers_send_batch(d, n, tk, en, pa, mo) == 0) {
		(*queued)++;
		d->sweep->pending++;
	} else {
		log_error("offers not queued: out of memory count=%zu", n);
	}
}

/* Issues the decisions of tickets [from, to), offers in batches of
 * OFFER_BATCH in plan (urgency) order; returns how many statements were
 * queued, adds to *moved how many tickets they are to take out of `new`
 * (offers and manual moves). */
static size_t act(struct dispatch *d, const struct dispatch_snapshot *s, const struct choose_decision *dec,
		  size_t from, size_t to, size_t *moved)
{
	size_t queued = 0, waiting = 0, nb = 0;
	const char *tk[OFFER_BATCH], *en[OFFER_BATCH], *pa[OFFER_BATCH];
	enum mode mo[OFFER_BATCH];
	for (size_t i = from; i < to; i++) {
		const struct choose_ticket *t = &s->tickets[i];
		switch (dec[i].verdict) {
		case CHOOSE_OFFER: {
			const char *e = dec[i].engineer >= 0 ? s->world.engineers[dec[i].engineer].id : NULL;
			const char *p = dec[i].partner >= 0 ? s->world.partners[dec[i].partner].id : NULL;
			log_debug("decided: offer ticket=%s to=%s mode=%s eta_s=%lld late=%d", t->id,
				  e ? e : p, mode_name(dec[i].mode),
				  (long long)((dec[i].eta_us - s->world.now_us) / 1000000), dec[i].late);
			(*moved)++;
			tk[nb] = t->id;
			en[nb] = e;
			pa[nb] = p;
			mo[nb] = dec[i].mode;
			if (++nb == OFFER_BATCH) {
				flush(d, nb, tk, en, pa, mo, &queued);
				nb = 0;
			}
			break;
		}
		case CHOOSE_MANUAL:
			(*moved)++;
			if (offers_manual(d, t->id, dec[i].reason) == 0) {
				queued++;
				d->sweep->pending++;
			} else {
				log_error("manual move not queued: out of memory ticket=%s", t->id);
			}
			break;
		default:
			waiting++;
			break;
		}
	}
	flush(d, nb, tk, en, pa, mo, &queued);
	if (waiting > 0)
		log_debug("tickets wait for capacity: count=%zu", waiting);
	return queued;
}

/* The end of a sweep's planning: where the pass goes on, and the unit
 * on_snapshot held. */
static void plan_done(struct dispatch *d)
{
	struct sweep *sw = d->sweep;
	struct dispatch_snapshot *s = &sw->snap;
	log_debug("sweep planned: tickets=%zu offset=%d priority=%d statements=%zu moved=%zu"
		  " snapshot_ms=%.1f parse_ms=%.1f plan_ms=%.1f", s->ntickets, sw->offset, sw->priority,
		  sw->queued, sw->moved, (double)(sw->t_reply - sw->started_us) / 1e3,
		  (double)(sw->t_parsed - sw->t_reply) / 1e3, (double)(time_mono_us() - sw->t_parsed) / 1e3);
	/* A pass pages through the waiting tickets in urgency order, so a long
	 * queue of waiting tickets cannot hide those behind it. The next page
	 * starts where this one ended, less the tickets it moves out of `new`.
	 * What this page left waiting has no free capacity it could use (the
	 * plan is exact), so going back to the top would plan it again for
	 * nothing; a refused offer (full, unknown) restarts the pass from the
	 * top (sweep_decision_done). */
	if (sw->priority) {
		/* Only the notified tickets were planned: a pass under way goes
		 * on where it was, in a full sweep right after. */
		if (sw->in_pass)
			sw->again = true;
		sw->next_offset = sw->offset;
	} else if (s->more || sw->chunk_at < s->ntickets) {
		sw->again = true;
		sw->in_pass = true;
		sw->pass_moved += sw->moved;
		size_t moved = sw->moved < (size_t)sw->page ? sw->moved : (size_t)sw->page;
		sw->next_offset = sw->offset + (int)(sw->chunk_at < s->ntickets ? sw->chunk_at : (size_t)sw->page)
				  - (int)moved;
		if (sw->next_offset < 0)
			sw->next_offset = 0;
	} else {
		/* The pass ended. One that moved nothing is not repeated by
		 * the timer for SWEEP_QUIET periods: whatever could change
		 * that (capacity freed, a status, an expiry, a new ticket)
		 * asks for a sweep itself; the timer is the safety net for
		 * what does not (a shift opening, a change made in SQL). */
		sw->pass_moved += sw->moved;
		sw->quiet_until_us = sw->pass_moved == 0 && !sw->restart
				     ? time_mono_us() + (int64_t)SWEEP_QUIET * d->svc->cfg.sweep_ms * 1000 : 0;
		sw->pass_moved = 0;
		sw->in_pass = false;
		sw->next_offset = 0;
	}
	if (sw->restart)
		sw->next_offset = 0;
	if (!sw->priority && s->ntickets > 0)
		sw->idle = sw->moved == 0;
	free(sw->dec);
	sw->dec = NULL;
	dispatch_snapshot_free(s);
	if (--sw->pending == 0)
		sweep_finish(d);
}

/*
 * Plans the next SWEEP_CHUNK tickets of the snapshot (in urgency order,
 * with the capacity the earlier chunks left: choose_plan counts what it
 * takes in the world's loads) and issues their decisions, one statement
 * per chunk. Between chunks it returns to the loop, so PostgreSQL makes
 * one chunk's offers while the next one is planned (two cores: the plan
 * and the offer SQL overlap). Each chunk is planned exactly, given the
 * chunks before it, as consecutive pages were.
 */
static void plan_chunk(struct dispatch *d)
{
	struct sweep *sw = d->sweep;
	struct dispatch_snapshot *s = &sw->snap;
	size_t from = sw->chunk_at, n = s->ntickets - from;
	if (n > SWEEP_CHUNK)
		n = SWEEP_CHUNK;
	if (choose_plan(&s->world, s->tickets + from, n, sw->dec + from) != 0) {
		log_error("sweep failed: out of memory tickets=%zu", n);
		plan_done(d);
		return;
	}
	sw->queued += act(d, s, sw->dec, from, from + n, &sw->moved);
	sw->chunk_at = from + n;
	/* The people the world points to are people.c's: a reconnect in
	 * between drops them (people_gen), and d->stopping ends the sweep. */
	if (sw->chunk_at < s->ntickets && !d->stopping) {
		struct timeval now = { 0, 0 };
		evtimer_add(sw->chunk_ev, &now);
		return;
	}
	plan_done(d);
}

static void on_chunk(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	if (d->stopping || people_gen(d) != d->sweep->gen)
		plan_done(d);
	else
		plan_chunk(d);
}

static void on_snapshot(void *arg, const struct db_reply *r)
{
	struct dispatch *d = arg;
	struct sweep *sw = d->sweep;
	struct dispatch_snapshot *s = &sw->snap;

	memset(s, 0, sizeof(*s));
	sw->next_offset = sw->priority ? sw->offset : 0;
	sw->chunk_at = 0;
	sw->moved = sw->queued = 0;
	sw->restart = false;
	/* One unit held while the decisions are issued, so the sweep cannot
	 * end under our feet whatever order their callbacks come in. */
	sw->pending = 1;
	sw->t_reply = sw->t_parsed = time_mono_us();
	if (r->error != NULL) {
		log_error("sweep failed: %s", r->error);
		goto fail;
	}
	if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
		log_error("sweep failed: snapshot returned no document");
		goto fail;
	}
	if (parse_delta(d, PQgetvalue(r->res, 0, 0), (size_t)PQgetlength(r->res, 0, 0), s) != 0)
		goto fail;
	sw->t_parsed = time_mono_us();
	sw->gen = people_gen(d);
	if (s->ntickets == 0) {
		plan_done(d);
		return;
	}
	sw->dec = calloc(s->ntickets, sizeof(*sw->dec));
	if (sw->dec == NULL) {
		log_error("sweep failed: out of memory tickets=%zu", s->ntickets);
		goto fail;
	}
	plan_chunk(d);
	return;
fail:
	/* Nothing planned: the pass starts over at the next sweep (and is
	 * not taken for a quiet one). */
	sw->pass_moved++;
	sw->chunk_at = s->ntickets;
	s->more = false;
	plan_done(d);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	struct sweep *sw = d->sweep;
	if (d->stopping)
		return;
	if (sw->running) {
		sw->again = true;
		return;
	}
	/* Not connected: the connect hook asks again. */
	if (!db_connected(d->svc->db))
		return;
	char offset[16], limit[16];
	char also[SWEEP_ALSO_MAX * (TOPIC_ID_MAX + 1) + 3];
	size_t n = 0;
	/* Tickets just announced first, in a snapshot of their own (no page):
	 * under a long backlog a full page takes a second or more to read and
	 * plan, and a new urgent ticket should not wait for that. */
	sw->priority = sw->nalso > 0;
	snprintf(offset, sizeof(offset), "%d", sw->offset);
	sw->page = sw->priority ? 0 : sw->idle ? SWEEP_PAGE_IDLE : SWEEP_PAGE;
	snprintf(limit, sizeof(limit), "%d", sw->page);
	/* A text[] literal; ids are [A-Za-z0-9._-] (checked on the way in),
	 * so none needs quoting. */
	also[n++] = '{';
	for (size_t i = 0; i < sw->nalso; i++)
		n += (size_t)snprintf(also + n, sizeof(also) - n, "%s%s", i ? "," : "", sw->also[i]);
	snprintf(also + n, sizeof(also) - n, "}");
	sw->nalso = 0;
	char version[24], since[24];
	bool has_version, has_since;
	people_params(d, version, sizeof(version), since, sizeof(since), &has_version, &has_since);
	/* Offers due within two sweep periods and 10 s get their timers now
	 * (schema/026: a sweep runs at least every SC_SWEEP_MS). */
	char horizon[16];
	snprintf(horizon, sizeof(horizon), "%d", 2 * d->svc->cfg.sweep_ms + 10000);
	const char *params[6] = { limit, offset, also, has_version ? version : NULL,
				  has_since ? since : NULL, horizon };
	sw->running = true;
	sw->again = false;
	sw->started_us = time_mono_us();
	if (db_exec_prepared(d->svc->db, "dispatch_snapshot", 6, params, on_snapshot, d) != 0) {
		log_error("sweep not queued: out of memory");
		sw->running = false;
	}
}

void sweep_request(struct dispatch *d)
{
	struct sweep *sw = d->sweep;
	if (sw == NULL || d->stopping)
		return;
	if (sw->running) {
		sw->again = true;
		return;
	}
	struct timeval now = { 0, 0 };
	evtimer_add(sw->kick, &now);
}

bool sweep_idle(const struct dispatch *d)
{
	return d->sweep == NULL || !d->sweep->running;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	struct sweep *sw = d->sweep;
	if (!sw->in_pass && time_mono_us() < sw->quiet_until_us)
		return;
	sweep_request(d);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct dispatch *d = arg;
	struct sweep *sw = d->sweep;
	if (payload != NULL && domain_id_valid(payload) && sw->nalso < SWEEP_ALSO_MAX)
		snprintf(sw->also[sw->nalso++], sizeof(sw->also[0]), "%s", payload);
	sweep_request(d);
}

static void on_connect(void *arg)
{
	sweep_request(arg);
}

int sweep_init(struct dispatch *d)
{
	struct service *s = d->svc;
	struct sweep *sw = calloc(1, sizeof(*sw));
	if (sw == NULL)
		return -1;
	d->sweep = sw;
	sw->timer = event_new(s->base, -1, EV_PERSIST, on_timer, d);
	sw->kick = evtimer_new(s->base, on_kick, d);
	sw->chunk_ev = evtimer_new(s->base, on_chunk, d);
	if (sw->timer == NULL || sw->kick == NULL || sw->chunk_ev == NULL ||
	    db_prepare(s->db, "dispatch_snapshot",
		       "SELECT sc_dispatch_snapshot_delta($1::int, $2::int, $3::text[],"
		       " $4::bigint, $5::bigint, $6::int)", 6) != 0 ||
	    db_listen(s->db, "ticket_new", on_notify, d) != 0 ||
	    db_on_connect(s->db, on_connect, d) != 0)
		return -1;
	int ms = s->cfg.sweep_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(sw->timer, &tv);
	return 0;
}

void sweep_free(struct dispatch *d)
{
	struct sweep *sw = d->sweep;
	if (sw == NULL)
		return;
	if (sw->timer != NULL)
		event_free(sw->timer);
	if (sw->kick != NULL)
		event_free(sw->kick);
	if (sw->chunk_ev != NULL)
		event_free(sw->chunk_ev);
	free(sw->dec);
	dispatch_snapshot_free(&sw->snap);
	free(sw);
	d->sweep = NULL;
}

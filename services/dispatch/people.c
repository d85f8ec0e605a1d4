/*
 * The engineers and partners, kept between sweeps.
 *
 * A sweep's snapshot (sc_dispatch_snapshot_delta, schema/026) carries the
 * people's master data only when it changed (dispatch_people_version,
 * bumped by any statement on engineer, partner or province), the status
 * rows stored since the previous snapshot (with a slack, so a transaction
 * that committed late is read again rather than missed), every shift's
 * open/closed now, and the complete active-order counts. This file merges
 * them into one struct choose_world's engineers and partners, with the
 * same meaning as the full snapshot of 020 (sc_dispatch_people):
 *   - avail: off when the shift is closed or the latest status is off,
 *     else the latest status, else available;
 *   - position: the reported one when it has both lat and lon, else home,
 *     else the home province's centre (the last two done in SQL);
 *   - load: active orders (offered, accepted, en_route, on_site).
 * After any failure the cache is dropped and the next snapshot brings
 * everything again; likewise after every database (re)connect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "service.h"

/* What an engineer's sweep-time fields are made of. */
struct eng_extra {
	const char *shift;     /* calendar id, points into the master document */
	bool has_home;         /* home position (or province centre) known */
	double hlat, hlon;
	int status;            /* latest status (enum engineer_avail), -1: none */
	bool has_spos;         /* the latest status has a position */
	double slat, slon;
};

struct people {
	struct dispatch_snapshot master;   /* engineers and partners, loads 0 */
	bool loaded;
	long long version;                 /* dispatch_people_version of master */
	struct eng_extra *ex;              /* by engineer index */
	size_t *eidx, *pidx;               /* indexes sorted by id (strcmp) */
	bool has_since;
	int64_t since_us;                  /* `now` of the last status read */
	unsigned gen;                      /* people_gen() */
};

/* qsort has no context argument: the arrays being sorted, set just before
 * (the loop thread only). */
static const struct choose_engineer *sort_e;
static const struct choose_partner *sort_p;

static int cmp_e(const void *a, const void *b)
{
	return strcmp(sort_e[*(const size_t *)a].id, sort_e[*(const size_t *)b].id);
}

static int cmp_p(const void *a, const void *b)
{
	return strcmp(sort_p[*(const size_t *)a].id, sort_p[*(const size_t *)b].id);
}

/* Index of the engineer (partner) with this id, or -1. */
static long find_e(const struct people *p, const char *id)
{
	size_t lo = 0, hi = p->master.world.nengineers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->master.world.engineers[p->eidx[mid]].id, id);
		if (c == 0)
			return (long)p->eidx[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static long find_p(const struct people *p, const char *id)
{
	size_t lo = 0, hi = p->master.world.npartners;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->master.world.partners[p->pidx[mid]].id, id);
		if (c == 0)
			return (long)p->pidx[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void drop(struct people *p)
{
	p->gen++;
	dispatch_snapshot_free(&p->master);
	free(p->ex);
	free(p->eidx);
	free(p->pidx);
	p->ex = NULL;
	p->eidx = p->pidx = NULL;
	p->loaded = false;
	p->has_since = false;
}

unsigned people_gen(const struct dispatch *d)
{
	return d->people != NULL ? d->people->gen : 0;
}

void people_reset(struct dispatch *d)
{
	if (d->people != NULL)
		drop(d->people);
}

/* Replaces the master data with the document doc (taken over). 0 or -1. */
static int load_master(struct dispatch *d, cJSON *doc, long long version)
{
	struct people *p = d->people;
	struct dispatch_snapshot m = { 0 };
	struct eng_extra *ex = NULL;
	size_t *eidx = NULL, *pidx = NULL;
	int rc = -1;
	m.root = doc;
	if (dispatch_snapshot_parse_json(d, &m) != 0)
		goto out;
	size_t ne = m.world.nengineers, np = m.world.npartners;
	ex = calloc(ne ? ne : 1, sizeof(*ex));
	eidx = malloc((ne ? ne : 1) * sizeof(*eidx));
	pidx = malloc((np ? np : 1) * sizeof(*pidx));
	if (ex == NULL || eidx == NULL || pidx == NULL) {
		log_error("sweep failed: out of memory people=%zu", ne + np);
		goto out;
	}
	/* The documents' engineers in the order parse_json read them. */
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(m.root, "engineers"), *v;
	size_t i = 0;
	cJSON_ArrayForEach(v, arr) {
		if (i >= ne)
			break;
		const cJSON *sh = cJSON_GetObjectItemCaseSensitive(v, "shift");
		const struct choose_engineer *e = &m.world.engineers[i];
		ex[i] = (struct eng_extra){ .shift = cJSON_IsString(sh) ? sh->valuestring : "",
					    .has_home = e->has_pos, .hlat = e->lat, .hlon = e->lon,
					    .status = -1 };
		eidx[i] = i;
		i++;
	}
	for (i = 0; i < np; i++)
		pidx[i] = i;
	sort_e = m.world.engineers;
	qsort(eidx, ne, sizeof(*eidx), cmp_e);
	sort_p = m.world.partners;
	qsort(pidx, np, sizeof(*pidx), cmp_p);
	drop(p);
	p->master = m;
	memset(&m, 0, sizeof(m));
	p->ex = ex;
	p->eidx = eidx;
	p->pidx = pidx;
	ex = NULL;
	eidx = pidx = NULL;
	p->version = version;
	p->loaded = true;
	log_info("people loaded engineers=%zu partners=%zu version=%lld", ne, np, version);
	rc = 0;
out:
	free(ex);
	free(eidx);
	free(pidx);
	dispatch_snapshot_free(&m);
	return rc;
}

static void apply_status(struct people *p, const cJSON *status)
{
	const cJSON *row;
	cJSON_ArrayForEach(row, status) {
		const cJSON *id = cJSON_GetArrayItem(row, 0), *st = cJSON_GetArrayItem(row, 1);
		const cJSON *lat = cJSON_GetArrayItem(row, 2), *lon = cJSON_GetArrayItem(row, 3);
		long i = cJSON_IsString(id) ? find_e(p, id->valuestring) : -1;
		if (i < 0)
			continue;
		struct eng_extra *x = &p->ex[i];
		enum engineer_avail a;
		/* A state we cannot read keeps the engineer out of offers, not in. */
		x->status = cJSON_IsString(st) && engineer_avail_parse(st->valuestring, &a) == 0
			    ? (int)a : (int)AVAIL_OFF;
		x->has_spos = cJSON_IsNumber(lat) && cJSON_IsNumber(lon);
		if (x->has_spos) {
			x->slat = lat->valuedouble;
			x->slon = lon->valuedouble;
		}
	}
}

int people_apply(struct dispatch *d, cJSON *root, struct choose_world *w)
{
	struct people *p = d->people;
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "people_version");
	cJSON *doc = cJSON_DetachItemFromObjectCaseSensitive(root, "people");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
	const cJSON *shifts = cJSON_GetObjectItemCaseSensitive(root, "shifts");
	const cJSON *loads_e = cJSON_GetObjectItemCaseSensitive(root, "loads_e");
	const cJSON *loads_p = cJSON_GetObjectItemCaseSensitive(root, "loads_p");
	const cJSON *v;
	if (!cJSON_IsNumber(ver) || !cJSON_IsArray(status) || !cJSON_IsObject(shifts) ||
	    !cJSON_IsArray(loads_e) || !cJSON_IsArray(loads_p)) {
		cJSON_Delete(doc);
		log_error("sweep failed: snapshot lacks people_version, status, shifts or loads");
		goto fail;
	}
	if (doc != NULL) {
		if (load_master(d, doc, (long long)ver->valuedouble) != 0)
			goto fail;
	} else if (!p->loaded || p->version != (long long)ver->valuedouble) {
		log_error("sweep failed: snapshot without the people it should have had");
		goto fail;
	}
	apply_status(p, status);
	p->has_since = true;
	p->since_us = w->now_us;

	struct choose_world *m = &p->master.world;
	for (size_t i = 0; i < m->nengineers; i++) {
		struct choose_engineer *e = &m->engineers[i];
		const struct eng_extra *x = &p->ex[i];
		/* A shift missing from the map (cannot happen: every engineer's
		 * shift is in it) counts as open, as an unknown calendar does. */
		const cJSON *open = cJSON_GetObjectItemCaseSensitive(shifts, x->shift);
		bool closed = cJSON_IsFalse(open);
		if (closed || x->status == (int)AVAIL_OFF)
			e->avail = AVAIL_OFF;
		else
			e->avail = x->status >= 0 ? (enum engineer_avail)x->status : AVAIL_AVAILABLE;
		e->has_pos = x->has_spos || x->has_home;
		e->lat = x->has_spos ? x->slat : x->hlat;
		e->lon = x->has_spos ? x->slon : x->hlon;
		e->load = 0;
	}
	for (size_t i = 0; i < m->npartners; i++)
		m->partners[i].load = 0;
	cJSON_ArrayForEach(v, loads_e) {
		const cJSON *id = cJSON_GetArrayItem(v, 0), *n = cJSON_GetArrayItem(v, 1);
		long i = cJSON_IsString(id) && cJSON_IsNumber(n) ? find_e(p, id->valuestring) : -1;
		if (i >= 0)
			m->engineers[i].load = n->valueint;
	}
	cJSON_ArrayForEach(v, loads_p) {
		const cJSON *id = cJSON_GetArrayItem(v, 0), *n = cJSON_GetArrayItem(v, 1);
		long i = cJSON_IsString(id) && cJSON_IsNumber(n) ? find_p(p, id->valuestring) : -1;
		if (i >= 0)
			m->partners[i].load = n->valueint;
	}
	w->engineers = m->engineers;
	w->nengineers = m->nengineers;
	w->partners = m->partners;
	w->npartners = m->npartners;
	return 0;
fail:
	drop(p);
	return -1;
}

void people_params(const struct dispatch *d, char *version, size_t vlen, char *since, size_t slen,
		   bool *has_version, bool *has_since)
{
	const struct people *p = d->people;
	*has_version = p->loaded;
	*has_since = p->loaded && p->has_since;
	snprintf(version, vlen, "%lld", p->version);
	snprintf(since, slen, "%lld", (long long)p->since_us);
}

static void on_connect(void *arg)
{
	/* The database may be another one now (restored, failed over): read
	 * everything once. */
	people_reset(arg);
}

int people_init(struct dispatch *d)
{
	d->people = calloc(1, sizeof(*d->people));
	if (d->people == NULL || db_on_connect(d->svc->db, on_connect, d) != 0)
		return -1;
	return 0;
}

void people_free(struct dispatch *d)
{
	if (d->people == NULL)
		return;
	drop(d->people);
	free(d->people);
	d->people = NULL;
}

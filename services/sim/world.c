/*
 * The simulated country's master data, read once at start from the
 * platform's database (what `scctl import` loaded).
 *
 * One statement builds one JSON document of everything the sim needs, so
 * the load is one round trip and one consistent snapshot; the strings of the
 * world point into the parsed tree, which the world owns.
 *
 * The database is trusted here (our own), so the tree is read leniently: a
 * missing number falls back to a default rather than failing the load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "log.h"
#include "service.h"
#include "sim.h"

/*
 * Devices carry what the platform last stored for them (run_hours, seq), so
 * a restarted sim continues the counters instead of going back. Engineers
 * say whether the platform holds a status of theirs (from an earlier run).
 * Sites and engineers without coordinates take their province's centre.
 */
static const char world_sql[] =
	"SELECT json_build_object("
	" 'travel_kmh', (SELECT value FROM setting WHERE key = 'travel_kmh'),"
	" 'provinces', (SELECT coalesce(json_agg(code ORDER BY code), '[]') FROM province),"
	" 'devices', (SELECT coalesce(json_agg(json_build_object("
	"     'id', d.id, 'model', d.model, 'site_id', d.site_id,"
	"     'run_hours', coalesce(st.run_hours, d.run_hours, 0),"
	"     'last_seq', coalesce(st.last_seq, 0),"
	"     'alarm_code', (SELECT min(a.code) FROM alarm_code a WHERE a.model = d.model))"
	"     ORDER BY d.id), '[]')"
	"   FROM device d LEFT JOIN device_state st ON st.device_id = d.id),"
	" 'rules', (SELECT coalesce(json_agg(json_build_object("
	"     'id', id, 'model', model, 'metric', metric, 'op', op, 'threshold', threshold,"
	"     'clear', clear, 'for_s', for_s) ORDER BY id), '[]')"
	"   FROM alert_rule WHERE metric IS NOT NULL),"
	" 'customers', (SELECT coalesce(json_agg(json_build_object('id', c.id, 'sites', s.sites)"
	"     ORDER BY c.id), '[]')"
	"   FROM customer c JOIN LATERAL (SELECT json_agg(json_build_object("
	"       'id', si.id, 'province', si.province,"
	"       'devices', (SELECT coalesce(json_agg(dv.id ORDER BY dv.id), '[]')"
	"                   FROM device dv WHERE dv.site_id = si.id)) ORDER BY si.id) AS sites"
	"     FROM site si WHERE si.customer_id = c.id) s ON s.sites IS NOT NULL),"
	" 'engineers', (SELECT coalesce(json_agg(json_build_object("
	"     'id', e.id, 'name', e.name, 'kind', e.kind,"
	"     'lat', coalesce(e.lat, p.lat), 'lon', coalesce(e.lon, p.lon),"
	"     'max_concurrent', e.max_concurrent, 'has_status', es.engineer_id IS NOT NULL)"
	"     ORDER BY e.id), '[]')"
	"   FROM engineer e LEFT JOIN province p ON p.code = e.province"
	"   LEFT JOIN engineer_state es ON es.engineer_id = e.id),"
	" 'partners', (SELECT coalesce(json_agg(json_build_object("
	"     'id', id, 'name', name, 'capacity', capacity, 'response_s', response_s)"
	"     ORDER BY id), '[]') FROM partner)"
	")::text";

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number under key, or def when absent or null. */
static double num_of(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const cJSON *arr_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsArray(v) ? v : NULL;
}

/* calloc of n elements, never of zero bytes (so NULL always means failure). */
static void *alloc_n(size_t n, size_t size)
{
	return calloc(n > 0 ? n : 1, size);
}

static int build_devices(struct world *w, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	w->devices = alloc_n(n, sizeof(*w->devices));
	if (w->devices == NULL)
		return -1;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		struct world_device *d = &w->devices[w->ndevices];
		d->id = str_of(o, "id");
		d->model = str_of(o, "model");
		d->site_id = str_of(o, "site_id");
		d->alarm_code = str_of(o, "alarm_code");
		if (d->id == NULL || d->model == NULL)
			continue;
		d->run_hours = num_of(o, "run_hours", 0);
		double seq = num_of(o, "last_seq", 0);
		d->last_seq = seq > 0 ? (uint64_t)seq : 0;
		w->ndevices++;
	}
	return 0;
}

static int build_rules(struct world *w, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	w->rules = alloc_n(n, sizeof(*w->rules));
	if (w->rules == NULL)
		return -1;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		struct world_rule *r = &w->rules[w->nrules];
		r->id = str_of(o, "id");
		r->model = str_of(o, "model");
		r->metric = str_of(o, "metric");
		r->op = str_of(o, "op");
		if (r->id == NULL || r->model == NULL || r->metric == NULL || r->op == NULL)
			continue;
		r->threshold = num_of(o, "threshold", NAN);
		r->clear = num_of(o, "clear", NAN);
		r->for_s = num_of(o, "for_s", 0);
		w->nrules++;
	}
	return 0;
}

static int build_site(struct world_site *s, const cJSON *o)
{
	s->id = str_of(o, "id");
	s->province = str_of(o, "province");
	const cJSON *devs = arr_of(o, "devices");
	size_t n = devs != NULL ? (size_t)cJSON_GetArraySize(devs) : 0;
	s->devices = alloc_n(n, sizeof(*s->devices));
	if (s->devices == NULL)
		return -1;
	const cJSON *d;
	if (devs != NULL) {
		cJSON_ArrayForEach(d, devs) {
			if (cJSON_IsString(d))
				s->devices[s->ndevices++] = d->valuestring;
		}
	}
	return 0;
}

static int build_customers(struct world *w, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	w->customers = alloc_n(n, sizeof(*w->customers));
	if (w->customers == NULL)
		return -1;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		struct world_customer *c = &w->customers[w->ncustomers];
		const cJSON *sites = arr_of(o, "sites");
		c->id = str_of(o, "id");
		if (c->id == NULL || sites == NULL || cJSON_GetArraySize(sites) == 0)
			continue;
		c->sites = alloc_n((size_t)cJSON_GetArraySize(sites), sizeof(*c->sites));
		if (c->sites == NULL)
			return -1;
		w->ncustomers++; /* counted now, so world_free() frees what follows */
		const cJSON *so;
		cJSON_ArrayForEach(so, sites) {
			struct world_site *s = &c->sites[c->nsites];
			if (build_site(s, so) != 0)
				return -1;
			c->nsites++;
			if (s->id == NULL || s->province == NULL) {
				free(s->devices);
				c->nsites--;
			}
		}
		if (c->nsites == 0) {
			free(c->sites);
			w->ncustomers--;
		}
	}
	return 0;
}

static int build_engineers(struct world *w, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	w->engineers = alloc_n(n, sizeof(*w->engineers));
	if (w->engineers == NULL)
		return -1;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		struct world_engineer *e = &w->engineers[w->nengineers];
		const char *kind = str_of(o, "kind");
		e->id = str_of(o, "id");
		if (e->id == NULL)
			continue;
		e->name = str_of(o, "name");
		if (e->name == NULL)
			e->name = "";
		e->remote = kind != NULL && strcmp(kind, "remote") == 0;
		e->lat = num_of(o, "lat", NAN);
		e->lon = num_of(o, "lon", NAN);
		e->has_home = isfinite(e->lat) && isfinite(e->lon);
		e->max_concurrent = (int)num_of(o, "max_concurrent", 1);
		e->has_status = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "has_status"));
		w->nengineers++;
	}
	return 0;
}

static int build_partners(struct world *w, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	w->partners = alloc_n(n, sizeof(*w->partners));
	if (w->partners == NULL)
		return -1;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		struct world_partner *p = &w->partners[w->npartners];
		p->id = str_of(o, "id");
		if (p->id == NULL)
			continue;
		p->name = str_of(o, "name");
		if (p->name == NULL)
			p->name = "";
		p->capacity = (int)num_of(o, "capacity", 1);
		p->response_s = num_of(o, "response_s", 7200);
		w->npartners++;
	}
	return 0;
}

static int build_provinces(struct world *w, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	w->provinces = alloc_n(n, sizeof(*w->provinces));
	if (w->provinces == NULL)
		return -1;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		if (cJSON_IsString(o))
			w->provinces[w->nprovinces++] = o->valuestring;
	}
	return 0;
}

/* Builds the world from the document. NULL with err filled on failure. */
static struct world *world_build(const char *text, char *err, size_t errlen)
{
	struct world *w = calloc(1, sizeof(*w));
	cJSON *root = NULL;
	if (w == NULL)
		goto oom;
	root = cJSON_Parse(text);
	if (root == NULL || !cJSON_IsObject(root)) {
		snprintf(err, errlen, "cannot load the world: the database sent no JSON object");
		goto fail;
	}
	w->root = root;
	root = NULL;
	const cJSON *r = w->root;
	w->travel_kmh = num_of(r, "travel_kmh", 60);
	if (!(w->travel_kmh > 0))
		w->travel_kmh = 60;
	/* cJSON takes a NULL array as empty: absent keys need no case of their own. */
	int rc = 0;
	rc |= build_provinces(w, arr_of(r, "provinces"));
	rc |= build_devices(w, arr_of(r, "devices"));
	rc |= build_rules(w, arr_of(r, "rules"));
	rc |= build_customers(w, arr_of(r, "customers"));
	rc |= build_engineers(w, arr_of(r, "engineers"));
	rc |= build_partners(w, arr_of(r, "partners"));
	if (rc != 0)
		goto oom;
	return w;
oom:
	snprintf(err, errlen, "cannot load the world: out of memory");
fail:
	cJSON_Delete(root);
	world_free(w);
	return NULL;
}

static void on_world(void *arg, const struct db_reply *r)
{
	struct sim *sim = arg;
	char err[300];
	if (r->error != NULL) {
		snprintf(err, sizeof(err),
			 "cannot load the world: %s (run scctl migrate and scctl import first)",
			 r->error);
		sim_fail(sim, err);
		return;
	}
	if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0)) {
		sim_fail(sim, "cannot load the world: no answer from the database");
		return;
	}
	struct world *w = world_build(PQgetvalue(r->res, 0, 0), err, sizeof(err));
	if (w == NULL) {
		sim_fail(sim, err);
		return;
	}
	if (w->ndevices == 0 && w->nengineers == 0 && w->npartners == 0 && w->ncustomers == 0) {
		world_free(w);
		sim_fail(sim, "cannot start: no master data in the database (run scctl import first)");
		return;
	}
	sim->world = w;
	log_info("world loaded devices=%zu rules=%zu customers=%zu engineers=%zu partners=%zu "
		 "provinces=%zu travel_kmh=%g",
		 w->ndevices, w->nrules, w->ncustomers, w->nengineers, w->npartners, w->nprovinces,
		 w->travel_kmh);
	sim_world_ready(sim);
}

int world_load(struct sim *sim)
{
	return db_exec_sql(sim->svc->db, world_sql, 0, NULL, on_world, sim);
}

void world_free(struct world *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->ncustomers; i++) {
		for (size_t k = 0; k < w->customers[i].nsites; k++)
			free(w->customers[i].sites[k].devices);
		free(w->customers[i].sites);
	}
	free(w->customers);
	free(w->devices);
	free(w->rules);
	free(w->engineers);
	free(w->partners);
	free(w->provinces);
	cJSON_Delete(w->root);
	free(w);
}

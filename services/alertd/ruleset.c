/*
 * The master data the evaluator needs (alert rules, device -> model), kept
 * in memory and rebuilt whenever an import changed it (common/master.h:
 * within 5 s). A new snapshot is built completely from one statement (one
 * consistent view of both tables) and swapped in only when it built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "alertd.h"
#include "db.h"
#include "log.h"
#include "master.h"
#include "service.h"

/* A failed load is retried after this long (the version watcher would only
 * call again on the next import). */
#define RULESET_RETRY_MS 1000

/* Rules and devices in one statement, so both come from the same snapshot. */
static const char ruleset_sql[] =
	"SELECT 'rule', id, model, metric, op, threshold, for_s, clear FROM alert_rule"
	" UNION ALL"
	" SELECT 'device', id, model, NULL, NULL, NULL, NULL, NULL FROM device"
	" UNION ALL"
	" SELECT 'setting', key, '', NULL, NULL, value, NULL, NULL FROM setting"
	" WHERE key = 'lifecycle_scan_s'";

enum { COL_KIND, COL_ID, COL_MODEL, COL_METRIC, COL_OP, COL_THRESHOLD, COL_FOR_S, COL_CLEAR };

void ruleset_free(struct alertd_ruleset *rs)
{
	if (rs == NULL)
		return;
	idmap_free(rs->models);
	for (size_t i = 0; i < rs->nstrings; i++)
		free(rs->strings[i]);
	free(rs->strings);
	free(rs->rules);
	free(rs->silent);
	free(rs);
}

const char *ruleset_model(const struct alertd_ruleset *rs, const char *device)
{
	void *model = NULL;

	if (rs == NULL || !idmap_find(rs->models, device, &model))
		return NULL;
	return model;
}

static double num(const PGresult *res, int row, int col, bool *present)
{
	if (PQgetisnull(res, row, col)) {
		if (present != NULL)
			*present = false;
		return 0;
	}
	if (present != NULL)
		*present = true;
	return strtod(PQgetvalue(res, row, col), NULL);
}

/* Sorted by id, so every round evaluates rules in the same order. */
static int cmp_rule(const void *x, const void *y)
{
	const struct rules_rule *a = x, *b = y;
	return strcmp(a->id, b->id);
}

struct alertd_ruleset *ruleset_build(const PGresult *res, long long version)
{
	int n = PQntuples(res);
	struct alertd_ruleset *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		return NULL;
	rs->version = version;
	rs->lifecycle_scan_s = ALERTD_LIFECYCLE_SCAN_S;
	rs->models = idmap_new();
	rs->rules = calloc((size_t)n + 1, sizeof(*rs->rules));
	rs->silent = calloc((size_t)n + 1, sizeof(*rs->silent));
	rs->strings = calloc((size_t)n + 1, sizeof(*rs->strings));
	if (rs->models == NULL || rs->rules == NULL || rs->silent == NULL || rs->strings == NULL)
		goto fail;
	for (int i = 0; i < n; i++) {
		const char *kind = PQgetvalue(res, i, COL_KIND);
		const char *id = PQgetvalue(res, i, COL_ID);
		const char *model = PQgetvalue(res, i, COL_MODEL);

		if (strcmp(kind, "setting") == 0) {
			rs->lifecycle_scan_s = num(res, i, COL_THRESHOLD, NULL);
			continue;
		}
		if (strcmp(kind, "device") == 0) {
			char *m = strdup(model);
			if (m == NULL)
				goto fail;
			rs->strings[rs->nstrings++] = m;
			if (idmap_add(rs->models, id, m) != 0)
				goto fail;
			continue;
		}
		struct rules_rule r;
		bool has_clear;
		char err[160];
		double clear = num(res, i, COL_CLEAR, &has_clear);
		const char *op = PQgetvalue(res, i, COL_OP);

		if (rules_rule_init(&r, id, model,
				    PQgetisnull(res, i, COL_METRIC) ? NULL : PQgetvalue(res, i, COL_METRIC),
				    op, num(res, i, COL_THRESHOLD, NULL), num(res, i, COL_FOR_S, NULL),
				    has_clear, clear, err, sizeof(err)) != 0) {
			log_warn("alert rule left out: %s rule=%s", err, id);
			continue;
		}
		/* `silent` is measured on arrival time, with timers (silent.c):
		 * kept apart from the rules every sample runs through. */
		if (r.op == RULES_OP_SILENT)
			rs->silent[rs->nsilent++] = r;
		else
			rs->rules[rs->nrules++] = r;
	}
	idmap_seal(rs->models);
	qsort(rs->rules, rs->nrules, sizeof(*rs->rules), cmp_rule);
	qsort(rs->silent, rs->nsilent, sizeof(*rs->silent), cmp_rule);
	return rs;
fail:
	ruleset_free(rs);
	return NULL;
}

/* Do two snapshots hold the same silent rules (ids, models, metrics,
 * for_s)? NULL holds none. */
static bool ruleset_same_silent(const struct alertd_ruleset *x, const struct alertd_ruleset *y)
{
	size_t nx = x != NULL ? x->nsilent : 0, ny = y != NULL ? y->nsilent : 0;

	if (nx != ny)
		return false;
	for (size_t i = 0; i < nx; i++) {
		const struct rules_rule *p = &x->silent[i], *q = &y->silent[i];
		if (strcmp(p->id, q->id) != 0 || strcmp(p->model, q->model) != 0 ||
		    strcmp(p->metric, q->metric) != 0 || p->for_us != q->for_us)
			return false;
	}
	return true;
}

/* The silent rule `id`, NULL when there is none. */
const struct rules_rule *ruleset_silent(const struct alertd_ruleset *rs, const char *id)
{
	struct rules_rule key;

	if (rs == NULL || rs->nsilent == 0)
		return NULL;
	snprintf(key.id, sizeof(key.id), "%s", id);
	return bsearch(&key, rs->silent, rs->nsilent, sizeof(*rs->silent), cmp_rule);
}

static void load(struct alertd *a);

static void retry_later(struct alertd *a)
{
	struct timeval tv = { RULESET_RETRY_MS / 1000, (RULESET_RETRY_MS % 1000) * 1000 };
	evtimer_add(a->rules_retry, &tv);
}

static void on_loaded(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;
	struct alertd_ruleset *rs = NULL;

	a->rules_loading = false;
	if (r->error != NULL) {
		log_error("master data load failed: %s", r->error);
		retry_later(a);
	} else if ((rs = ruleset_build(r->res, a->master_version)) == NULL) {
		log_error("master data load failed: out of memory");
		retry_later(a);
	} else {
		bool silent_changed = !ruleset_same_silent(a->rules, rs);

		ruleset_free(a->rules);
		a->rules = rs;
		log_info("master data loaded version=%lld rules=%zu silent_rules=%zu devices=%zu",
			 rs->version, rs->nrules, rs->nsilent, idmap_count(rs->models));
		/* Other silent rules: their timers and the devices they watch are
		 * set up again from the database (silent.c). */
		if (silent_changed)
			a->state_loaded = false;
		consumer_wake(a);
		lifecycle_schedule(a);
	}
	/* An import came while this load ran: its data may be missing. */
	if (a->rules_again) {
		a->rules_again = false;
		load(a);
	}
}

static void load(struct alertd *a)
{
	if (a->rules_loading) {
		a->rules_again = true;
		return;
	}
	a->rules_loading = true;
	if (db_exec_sql(a->db, ruleset_sql, 0, NULL, on_loaded, a) != 0) {
		a->rules_loading = false;
		log_error("master data load failed: out of memory");
	}
}

static void on_master_changed(void *arg, long long version)
{
	struct alertd *a = arg;

	a->master_version = version;
	load(a);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	load(arg);
}

void ruleset_reload(struct alertd *a)
{
	load(a);
}

int ruleset_init(struct alertd *a)
{
	a->rules_retry = evtimer_new(a->svc->base, on_retry, a);
	if (a->rules_retry == NULL)
		return -1;
	a->master = master_watch_new(a->svc->base, a->db, on_master_changed, a);
	return a->master != NULL ? 0 : -1;
}

void ruleset_free_all(struct alertd *a)
{
	master_watch_free(a->master);
	a->master = NULL;
	if (a->rules_retry != NULL)
		event_free(a->rules_retry);
	a->rules_retry = NULL;
	ruleset_free(a->rules);
	a->rules = NULL;
}

/*
 * Evaluation of one round's telemetry: every sample through every rule of
 * its device's model that names one of its metrics, on the working state
 * (state.c), collecting raise and clear events for apply.c. Pure
 * bookkeeping around common/rules.c: no I/O.
 */
#include <stdio.h>
#include <stdlib.h>

#include "alertd.h"
#include "log.h"

enum { T_DEVICE, T_SEQ, T_TS, T_METRICS };

/* Times and seqs travel as text: JSON numbers are doubles. */
static int add_ll(cJSON *o, const char *key, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	return cJSON_AddStringToObject(o, key, buf) != NULL ? 0 : -1;
}

static int add_event(cJSON *events, const char *op, const struct alertd_entry *e,
		     int64_t ts_us, long long seq, double value, const struct rules_state *before)
{
	cJSON *ev = cJSON_CreateObject();

	if (ev == NULL)
		return -1;
	if (!cJSON_AddItemToArray(events, ev)) {
		cJSON_Delete(ev);
		return -1;
	}
	if (cJSON_AddStringToObject(ev, "op", op) == NULL ||
	    cJSON_AddStringToObject(ev, "device", e->device) == NULL ||
	    cJSON_AddStringToObject(ev, "rule", e->rule) == NULL ||
	    add_ll(ev, "ts", ts_us) != 0 || add_ll(ev, "seq", seq) != 0 ||
	    cJSON_AddNumberToObject(ev, "value", value) == NULL)
		return -1;
	/* When the breach began: the start of the window, or this sample
	 * itself for for_s 0. */
	if (op[0] == 'r' && add_ll(ev, "pending_since",
				   before->pending ? before->pending_since_us : ts_us) != 0)
		return -1;
	return 0;
}

/* One sample (one telemetry row) through the rules that apply to it. */
static int evaluate_sample(struct alertd *a, const char *device, const char *model,
			   long long seq, int64_t ts_us, const cJSON *metrics)
{
	const struct alertd_ruleset *rs = a->rules;

	for (size_t i = 0; i < rs->nrules; i++) {
		const struct rules_rule *r = &rs->rules[i];
		const cJSON *v;

		if (!rules_matches_model(r, model))
			continue;
		/* A sample without the rule's metric leaves its state alone. */
		v = cJSON_GetObjectItemCaseSensitive(metrics, r->metric);
		if (!cJSON_IsNumber(v))
			continue;
		struct alertd_entry *e = state_touch(a->state, device, r->id);
		if (e == NULL)
			return -1;
		struct rules_state before = e->work;
		switch (rules_eval(r, &e->work, ts_us, seq, v->valuedouble)) {
		case RULES_RAISE:
			if (add_event(a->round.events, "raise", e, ts_us, seq, v->valuedouble,
				      &before) != 0)
				return -1;
			break;
		case RULES_CLEAR:
			if (add_event(a->round.events, "clear", e, ts_us, seq, v->valuedouble,
				      &before) != 0)
				return -1;
			break;
		case RULES_IGNORED:
			log_debug("sample ignored: not newer than the last one device=%s rule=%s"
				  " seq=%lld", device, r->id, seq);
			break;
		case RULES_UPDATED:
			break;
		}
	}
	return 0;
}

int evaluate_rows(struct alertd *a, const PGresult *res)
{
	int n = PQntuples(res);

	for (int i = 0; i < n; i++) {
		const char *device = PQgetvalue(res, i, T_DEVICE);
		const char *text = PQgetvalue(res, i, T_METRICS);
		long long seq = strtoll(PQgetvalue(res, i, T_SEQ), NULL, 10);
		int64_t ts_us = strtoll(PQgetvalue(res, i, T_TS), NULL, 10);
		/* An unknown device (master data not reloaded yet) is still
		 * checked against the rules for every model. */
		const char *model = ruleset_model(a->rules, device);
		cJSON *metrics = cJSON_ParseWithLength(text, (size_t)PQgetlength(res, i, T_METRICS));
		int rc;

		if (metrics == NULL) {
			/* jsonb text always parses: only memory can fail here. */
			return -1;
		}
		rc = evaluate_sample(a, device, model, seq, ts_us, metrics);
		cJSON_Delete(metrics);
		if (rc != 0)
			return -1;
	}
	a->round.nsamples = (size_t)n;
	return 0;
}

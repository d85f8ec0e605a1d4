/*
 * Evaluation of one round's telemetry: every sample through every rule of
 * its device's model that names one of its metrics, on the working state
 * (state.c), collecting raise and clear events for apply.c. Pure
 * bookkeeping around common/rules.c: no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alertd.h"
#include "log.h"


/* Times and seqs travel as text: JSON numbers are doubles. */
static int add_ll(cJSON *o, const char *key, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	return cJSON_AddStringToObject(o, key, buf) != NULL ? 0 : -1;
}

cJSON *evaluate_new_event(cJSON *events, const char *op, const char *source,
			const struct alertd_entry *e, const char *ref, int64_t ts_us, long long seq)
{
	cJSON *ev = cJSON_CreateObject();

	if (ev == NULL)
		return NULL;
	if (!cJSON_AddItemToArray(events, ev)) {
		cJSON_Delete(ev);
		return NULL;
	}
	if (cJSON_AddStringToObject(ev, "op", op) == NULL ||
	    cJSON_AddStringToObject(ev, "source", source) == NULL ||
	    cJSON_AddStringToObject(ev, "device", e->device) == NULL ||
	    cJSON_AddStringToObject(ev, "rule", e->rule) == NULL ||
	    cJSON_AddStringToObject(ev, "ref", ref) == NULL ||
	    add_ll(ev, "ts", ts_us) != 0 || add_ll(ev, "seq", seq) != 0)
		return NULL;
	return ev;
}

static int add_event(cJSON *events, const char *op, const struct alertd_entry *e,
		     int64_t ts_us, long long seq, double value, const struct rules_state *before)
{
	cJSON *ev = evaluate_new_event(events, op, "rule", e, e->rule, ts_us, seq);

	if (ev == NULL || cJSON_AddNumberToObject(ev, "value", value) == NULL)
		return -1;
	if (op[0] == 'f')
		return cJSON_AddNumberToObject(ev, "cycles", e->work.cycles) != NULL ? 0 : -1;
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
		enum rules_result res = rules_eval(r, &e->work, ts_us, seq, v->valuedouble);
		const char *op = NULL;

		switch (rules_flap(&a->flap, &e->work, res, ts_us)) {
		case RULES_OUT_RAISE:
			op = "raise";
			break;
		case RULES_OUT_CLEAR:
			op = "clear";
			break;
		case RULES_OUT_FLAP:
			op = "flap";
			break;
		case RULES_OUT_NONE:
			if (res == RULES_IGNORED)
				log_debug("sample ignored: not newer than the last one device=%s"
					  " rule=%s seq=%lld", device, r->id, seq);
			break;
		}
		if (op != NULL && add_event(a->round.events, op, e, ts_us, seq, v->valuedouble,
					    &before) != 0)
			return -1;
	}
	return 0;
}

/*
 * One device alarm (contract section 2.1) through its (device, code) state.
 * The state key is ALERTD_ALARM_PREFIX + code, which no rule id can be
 * (identifiers hold no ':'). The code's meaning (severity, skill, ...) is
 * looked up when the event is applied, in the same transaction.
 */
static int evaluate_alarm(struct alertd *a, const char *device, const char *code,
			  const char *state, const char *text, long long seq, int64_t ts_us)
{
	char key[sizeof(ALERTD_ALARM_PREFIX) + RULES_ID_MAX];
	struct alertd_entry *e;
	cJSON *ev;
	const char *op;

	snprintf(key, sizeof(key), "%s%s", ALERTD_ALARM_PREFIX, code);
	if ((e = state_touch(a->state, device, key)) == NULL)
		return -1;
	enum rules_result res = rules_alarm_eval(&e->work, ts_us, seq, strcmp(state, "raised") == 0);

	switch (rules_flap(&a->flap, &e->work, res, ts_us)) {
	case RULES_OUT_RAISE:
		op = "raise";
		break;
	case RULES_OUT_CLEAR:
		op = "clear";
		break;
	case RULES_OUT_FLAP:
		op = "flap";
		break;
	default:
		if (res == RULES_IGNORED)
			log_debug("alarm ignored: not newer than the last one of its code device=%s"
				  " code=%s seq=%lld", device, code, seq);
		return 0;
	}
	ev = evaluate_new_event(a->round.events, op, "alarm", e, code, ts_us, seq);
	if (ev == NULL || cJSON_AddStringToObject(ev, "text", text) == NULL ||
	    cJSON_AddNumberToObject(ev, "cycles", e->work.cycles) == NULL)
		return -1;
	return 0;
}

int evaluate_rows(struct alertd *a, const PGresult *res)
{
	int n = PQntuples(res);
	size_t samples = 0, alarms = 0;

	for (int i = 0; i < n; i++) {
		const char *device = PQgetvalue(res, i, ROW_DEVICE);
		const char *text = PQgetvalue(res, i, ROW_BODY);
		long long seq = strtoll(PQgetvalue(res, i, ROW_SEQ), NULL, 10);
		int64_t ts_us = strtoll(PQgetvalue(res, i, ROW_TS), NULL, 10);
		/* An unknown device (master data not reloaded yet) is still
		 * checked against the rules for every model. */
		const char *model = ruleset_model(a->rules, device);
		cJSON *metrics;
		int rc;

		int64_t received_us = strtoll(PQgetvalue(res, i, ROW_RECEIVED), NULL, 10);

		if (PQgetvalue(res, i, ROW_KIND)[0] == 'a') {
			alarms++;
			if (evaluate_alarm(a, device, PQgetvalue(res, i, ROW_CODE),
					   PQgetvalue(res, i, ROW_STATE), text, seq, ts_us) != 0 ||
			    silent_observe(a, device, model, NULL, received_us, seq) != 0)
				return -1;
			continue;
		}
		metrics = cJSON_ParseWithLength(text, (size_t)PQgetlength(res, i, ROW_BODY));
		if (metrics == NULL) {
			/* jsonb text always parses: only memory can fail here. */
			return -1;
		}
		samples++;
		rc = evaluate_sample(a, device, model, seq, ts_us, metrics);
		if (rc == 0)
			rc = silent_observe(a, device, model, metrics, received_us, seq);
		cJSON_Delete(metrics);
		if (rc != 0)
			return -1;
	}
	a->round.nsamples = samples;
	a->round.nalarms = alarms;
	return 0;
}

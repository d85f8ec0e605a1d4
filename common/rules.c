/* Threshold rule evaluation (see rules.h for the semantics). */
#include "rules.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "domain.h"

/* Longest for_s accepted: far beyond any real window, and small enough
 * that for_s in microseconds and ts differences cannot overflow int64. */
#define RULES_FOR_S_MAX 1e12

static const char *const op_names[] = { ">", ">=", "<", "<=", "==", "!=", "silent" };

#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

int rules_op_parse(const char *s, enum rules_op *out)
{
	for (size_t i = 0; s != NULL && i < NOPS; i++) {
		if (strcmp(s, op_names[i]) == 0) {
			*out = (enum rules_op)i;
			return 0;
		}
	}
	return -1;
}

const char *rules_op_name(enum rules_op op)
{
	return (unsigned)op < NOPS ? op_names[op] : "invalid";
}

static bool rising(enum rules_op op)
{
	return op == RULES_OP_GT || op == RULES_OP_GE;
}

static bool falling(enum rules_op op)
{
	return op == RULES_OP_LT || op == RULES_OP_LE;
}

int rules_rule_init(struct rules_rule *out, const char *id, const char *model,
		    const char *metric, const char *op, double threshold, double for_s,
		    bool has_clear, double clear, char *err, size_t errlen)
{
	struct rules_rule r;

	memset(&r, 0, sizeof(r));
	if (id == NULL || !domain_id_valid(id)) {
		snprintf(err, errlen, "id: must be 1-64 characters of [A-Za-z0-9._-]");
		return -1;
	}
	if (model == NULL || (strcmp(model, "*") != 0 && !domain_id_valid(model))) {
		snprintf(err, errlen, "model: must be \"*\" or an identifier");
		return -1;
	}
	if (rules_op_parse(op, &r.op) != 0) {
		snprintf(err, errlen, "op: must be one of >, >=, <, <=, ==, !=, silent");
		return -1;
	}
	if (metric != NULL && metric[0] != '\0' && !domain_metric_name_valid(metric)) {
		snprintf(err, errlen, "metric: must be 1-32 characters of [a-z0-9_]");
		return -1;
	}
	if (r.op != RULES_OP_SILENT) {
		if (metric == NULL || metric[0] == '\0') {
			snprintf(err, errlen, "metric: is required with op \"%s\"", op);
			return -1;
		}
		if (!isfinite(threshold)) {
			snprintf(err, errlen, "threshold: must be a finite number");
			return -1;
		}
	}
	if (!isfinite(for_s) || for_s < 0 || for_s > RULES_FOR_S_MAX) {
		snprintf(err, errlen, "for_s: must be a number from 0 to %.0f", RULES_FOR_S_MAX);
		return -1;
	}
	if (has_clear) {
		if (!rising(r.op) && !falling(r.op)) {
			snprintf(err, errlen, "clear: not allowed with op \"%s\"", op);
			return -1;
		}
		if (!isfinite(clear)) {
			snprintf(err, errlen, "clear: must be a finite number");
			return -1;
		}
		/* Otherwise the alert would clear while the condition still holds
		 * and raise again at once: it would flap on every sample. */
		if (rising(r.op) && clear > threshold) {
			snprintf(err, errlen, "clear: must be at or below threshold for op \"%s\"", op);
			return -1;
		}
		if (falling(r.op) && clear < threshold) {
			snprintf(err, errlen, "clear: must be at or above threshold for op \"%s\"", op);
			return -1;
		}
	}
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.model, sizeof(r.model), "%s", model);
	snprintf(r.metric, sizeof(r.metric), "%s", metric != NULL ? metric : "");
	r.threshold = r.op == RULES_OP_SILENT ? 0 : threshold;
	r.for_us = (int64_t)llround(for_s * 1e6);
	r.has_clear = has_clear;
	r.clear = has_clear ? clear : 0;
	*out = r;
	return 0;
}

bool rules_matches_model(const struct rules_rule *r, const char *model)
{
	if (strcmp(r->model, "*") == 0)
		return true;
	return model != NULL && strcmp(r->model, model) == 0;
}

bool rules_condition(const struct rules_rule *r, double value)
{
	/* Every comparison with NaN is false, != included by our choice: a
	 * value that is not a number never breaches anything. */
	if (isnan(value))
		return false;
	switch (r->op) {
	case RULES_OP_GT:
		return value > r->threshold;
	case RULES_OP_GE:
		return value >= r->threshold;
	case RULES_OP_LT:
		return value < r->threshold;
	case RULES_OP_LE:
		return value <= r->threshold;
	case RULES_OP_EQ:
		return value == r->threshold;
	case RULES_OP_NE:
		return value != r->threshold;
	case RULES_OP_SILENT:
		break;
	}
	return false;
}

bool rules_clears(const struct rules_rule *r, double value)
{
	if (isnan(value))
		return false;
	if (r->has_clear && rising(r->op))
		return value <= r->clear;
	if (r->has_clear && falling(r->op))
		return value >= r->clear;
	return !rules_condition(r, value);
}

void rules_state_init(struct rules_state *st)
{
	memset(st, 0, sizeof(*st));
}

bool rules_state_idle(const struct rules_state *st)
{
	return !st->pending && !st->firing && !st->flapping && st->cycles == 0;
}

bool rules_state_equal(const struct rules_state *a, const struct rules_state *b)
{
	if (a->seen != b->seen || a->pending != b->pending || a->firing != b->firing)
		return false;
	if (a->seen && (a->last_ts_us != b->last_ts_us || a->last_seq != b->last_seq))
		return false;
	if (a->cycles != b->cycles || a->flapping != b->flapping ||
	    (a->cycles != 0 && a->window_start_us != b->window_start_us) ||
	    (a->flapping && a->quiet_since_us != b->quiet_since_us))
		return false;
	return !a->pending || a->pending_since_us == b->pending_since_us;
}

enum rules_result rules_eval(const struct rules_rule *r, struct rules_state *st,
			     int64_t ts_us, int64_t seq, double value)
{
	if (r->op == RULES_OP_SILENT)
		return RULES_IGNORED;
	if (st->seen && (ts_us <= st->last_ts_us || seq <= st->last_seq))
		return RULES_IGNORED;
	st->seen = true;
	st->last_ts_us = ts_us;
	st->last_seq = seq;

	if (st->firing) {
		if (!rules_clears(r, value))
			return RULES_UPDATED;
		/* A new breach must build its own window from here. */
		st->firing = false;
		st->pending = false;
		st->pending_since_us = 0;
		return RULES_CLEAR;
	}
	if (!rules_condition(r, value)) {
		st->pending = false;
		st->pending_since_us = 0;
		return RULES_UPDATED;
	}
	if (!st->pending) {
		st->pending = true;
		st->pending_since_us = ts_us;
	}
	if (ts_us - st->pending_since_us < r->for_us)
		return RULES_UPDATED;
	st->firing = true;
	st->pending = false;
	st->pending_since_us = 0;
	return RULES_RAISE;
}

enum rules_result rules_alarm_eval(struct rules_state *st, int64_t ts_us, int64_t seq,
				   bool raised)
{
	if (st->seen && (ts_us < st->last_ts_us ||
			 (ts_us == st->last_ts_us && seq <= st->last_seq)))
		return RULES_IGNORED;
	st->seen = true;
	st->last_ts_us = ts_us;
	st->last_seq = seq;
	st->pending = false;
	st->pending_since_us = 0;
	if (raised == st->firing)
		return RULES_UPDATED;
	st->firing = raised;
	return raised ? RULES_RAISE : RULES_CLEAR;
}

static void flap_reset(struct rules_state *st)
{
	st->flapping = false;
	st->cycles = 0;
	st->window_start_us = 0;
	st->quiet_since_us = 0;
}

enum rules_flap_out rules_flap(const struct rules_flap_cfg *c, struct rules_state *st,
			       enum rules_result r, int64_t ts_us)
{
	bool quiet = st->flapping && ts_us - st->quiet_since_us >= c->window_us;

	switch (r) {
	case RULES_IGNORED:
		return RULES_OUT_NONE;
	case RULES_RAISE:
		if (!st->flapping)
			return RULES_OUT_RAISE;
		/* The held alert never cleared: it fires on, flapping or
		 * not. */
		if (quiet)
			flap_reset(st);
		return RULES_OUT_NONE;
	case RULES_CLEAR:
		if (c->max_cycles <= 0 && !st->flapping)
			return RULES_OUT_CLEAR;
		if (st->cycles == 0 || ts_us - st->window_start_us > c->window_us) {
			st->window_start_us = ts_us;
			st->cycles = 1;
		} else {
			st->cycles++;
		}
		st->quiet_since_us = ts_us;
		if (st->flapping)
			return RULES_OUT_NONE;
		if (st->cycles > c->max_cycles) {
			st->flapping = true;
			return RULES_OUT_FLAP;
		}
		return RULES_OUT_CLEAR;
	case RULES_UPDATED:
		if (quiet && !st->firing) {
			flap_reset(st);
			return RULES_OUT_CLEAR;
		}
		/* A window that ran out counts nothing any more: forget it, so
		 * the state is idle again (and need not be written back). */
		if (!st->flapping && st->cycles != 0 && ts_us - st->window_start_us > c->window_us) {
			st->cycles = 0;
			st->window_start_us = 0;
		}
		return RULES_OUT_NONE;
	}
	return RULES_OUT_NONE;
}

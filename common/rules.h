#ifndef SC_COMMON_RULES_H
#define SC_COMMON_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Telemetry threshold rules (contract sections 3 and 6): the pure
 * evaluator, with no database, clock or I/O, so sc-alertd, sc-api and the
 * fuzzers share one definition of when an alert is raised and cleared.
 *
 * A rule compares one metric of a device's samples with a threshold.
 * Per (device, rule) the caller keeps a struct rules_state and feeds the
 * samples in device-ts order through rules_eval():
 *
 *  - A sample whose ts is at or before the newest ts already evaluated, or
 *    whose seq is at or before the newest seq, is ignored: state never
 *    moves backwards (a late or repeated message changes nothing).
 *  - for_s is measured on the devices' ts: the condition must hold on every
 *    sample from the first one that met it (pending_since = its ts) until a
 *    sample with ts - pending_since >= for_s, which raises. for_s = 0
 *    raises on the first sample that meets the condition. A sample on which
 *    the condition does not hold resets the pending window.
 *  - Hysteresis: a firing alert of a > or >= rule clears when the value is
 *    at or below `clear`; of a < or <= rule when it is at or above `clear`;
 *    without `clear`, and for == and !=, when the condition no longer holds.
 *  - At most one firing alert per (device, rule); after it cleared a new
 *    breach starts a new pending window and raises a new alert.
 *
 * A sample that lacks the rule's metric must not be passed in at all: it
 * does not change the rule's state (not even the newest ts).
 *
 * `silent` rules (nothing received for for_s, measured on arrival time) are
 * parsed here but not evaluated by rules_eval(): they need a timer, not a
 * sample, and are left to the caller.
 */

enum rules_op {
	RULES_OP_GT,     /* > */
	RULES_OP_GE,     /* >= */
	RULES_OP_LT,     /* < */
	RULES_OP_LE,     /* <= */
	RULES_OP_EQ,     /* == */
	RULES_OP_NE,     /* != */
	RULES_OP_SILENT, /* silent: see above */
};

/* Longest id, model and metric names (contract section 2 identifier rule,
 * metric name rule), without the NUL. */
#define RULES_ID_MAX 64
#define RULES_METRIC_MAX 32

/* One rule as imported (alert_rule table). Plain data: copy freely. */
struct rules_rule {
	char id[RULES_ID_MAX + 1];
	char model[RULES_ID_MAX + 1];      /* a model, or "*" for every model */
	char metric[RULES_METRIC_MAX + 1]; /* "" only for a silent rule without metric */
	enum rules_op op;
	double threshold;                  /* unused for silent */
	int64_t for_us;                    /* for_s in microseconds */
	bool has_clear;
	double clear;                      /* hysteresis bound when has_clear */
};

/* What the evaluator remembers per (device, rule). Plain data. */
struct rules_state {
	bool seen;                 /* last_ts_us / last_seq hold a sample */
	int64_t last_ts_us;        /* newest device ts evaluated */
	int64_t last_seq;          /* newest seq evaluated */
	bool pending;              /* the condition holds since pending_since_us */
	int64_t pending_since_us;  /* device ts of the first sample that met it */
	bool firing;               /* an alert is firing (the condition's view;
				    * see flapping) */
	/* Flapping (rules_flap): fire/clear cycles counted in a window. */
	int cycles;                /* clears since window_start_us */
	int64_t window_start_us;   /* ts of the first clear of the window */
	bool flapping;             /* the alert is held firing, marked flapping */
	int64_t quiet_since_us;    /* ts of the condition's last clear */
};

/* Outcome of one sample. */
enum rules_result {
	RULES_IGNORED, /* stale (ts or seq not newer): state untouched */
	RULES_UPDATED, /* state advanced, no alert raised or cleared */
	RULES_RAISE,   /* raise an alert now (state is firing) */
	RULES_CLEAR,   /* clear the firing alert now */
};

/* Parses ">", ">=", "<", "<=", "==", "!=", "silent". 0, or -1 when unknown. */
int rules_op_parse(const char *s, enum rules_op *out) __attribute__((warn_unused_result));

/* Static spelling of op; "invalid" when out of range. */
const char *rules_op_name(enum rules_op op);

/*
 * Fills *out from the columns of one alert_rule row, checking what the
 * evaluator relies on: id and model (identifier rule, model may be "*"),
 * op, metric (metric name rule; required unless op is silent), a finite
 * threshold for comparisons, for_s finite and >= 0, and a finite `clear`
 * on the side of the threshold where hysteresis makes sense (at or below
 * it for > and >=, at or above it for < and <=; not allowed with == and
 * != or silent). metric may be NULL or "". Returns 0, or -1 with a
 * one-line reason in err (*out untouched).
 */
int rules_rule_init(struct rules_rule *out, const char *id, const char *model,
		    const char *metric, const char *op, double threshold, double for_s,
		    bool has_clear, double clear, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Does the rule apply to devices of `model` (NULL: a device of unknown
 * model, which only "*" rules match)? */
bool rules_matches_model(const struct rules_rule *r, const char *model);

/* Does the rule's condition hold for value? Never for NaN or silent. */
bool rules_condition(const struct rules_rule *r, double value);

/* Would a firing alert of the rule clear at value (hysteresis)? */
bool rules_clears(const struct rules_rule *r, double value);

/* A state that has seen nothing. */
void rules_state_init(struct rules_state *st);

/*
 * Is a state idle: nothing pending, firing or flapping and no cycles being
 * counted? Two idle states differ at most in the newest (ts, seq) seen.
 */
bool rules_state_idle(const struct rules_state *st);

/* Do two states hold the same values (so nothing needs writing back)? */
bool rules_state_equal(const struct rules_state *a, const struct rules_state *b);

/*
 * Evaluates one sample (device ts in microseconds, the message's seq, the
 * value of the rule's metric) against the state and advances it; see the
 * top of this file. A silent rule is never evaluated here: RULES_IGNORED.
 */
enum rules_result rules_eval(const struct rules_rule *r, struct rules_state *st,
			     int64_t ts_us, int64_t seq, double value);

/*
 * Flapping: an alert that fires and clears more than max_cycles times
 * within window_us (counted from the first clear of the window, on the
 * messages' ts) is folded into one: instead of the clear that would exceed
 * the limit, the alert is marked flapping and kept firing (one alert, one
 * ticket); while it flaps, the condition's raises and clears announce
 * nothing. It clears for real on the first message at least window_us
 * after the condition's last clear that finds the condition still clear;
 * a raise after such a quiet window ends the flapping with the alert
 * firing on. max_cycles 0 turns folding off.
 */
struct rules_flap_cfg {
	int max_cycles;
	int64_t window_us;
};

/* What to announce for one message after folding. */
enum rules_flap_out {
	RULES_OUT_NONE,  /* nothing */
	RULES_OUT_RAISE, /* raise an alert */
	RULES_OUT_CLEAR, /* clear the firing alert */
	RULES_OUT_FLAP,  /* mark the firing alert flapping (it keeps firing) */
};

/*
 * Folds flapping: `r` is what rules_eval / rules_alarm_eval just returned
 * for a message at ts_us (st already advanced by it). Updates the flapping
 * fields of st and says what to announce.
 */
enum rules_flap_out rules_flap(const struct rules_flap_cfg *c, struct rules_state *st,
			       enum rules_result r, int64_t ts_us);

/*
 * Device alarms (contract section 2.1): a device raises and clears an alarm
 * code itself. Per (device, code) the caller keeps a struct rules_state
 * (pending is never used) and feeds the alarm messages through
 * rules_alarm_eval() in device-ts order:
 *
 *  - A message older than the newest one evaluated for that code, by
 *    (ts, seq) in that order, is ignored: a late `raised` never reopens
 *    what a newer `cleared` closed, and a repeat changes nothing. (The
 *    order is ts first, then seq, unlike rules_eval: a raise and its
 *    clear may carry the same ts, to the second.)
 *  - `raised` while not firing raises; `raised` while firing is a repeat
 *    of the same alarm (RULES_UPDATED).
 *  - `cleared` while firing clears; `cleared` while not firing (an alarm
 *    raised before sc-alertd knew the device, or cleared twice) changes
 *    nothing but the newest (ts, seq).
 */
enum rules_result rules_alarm_eval(struct rules_state *st, int64_t ts_us, int64_t seq,
				   bool raised);

#endif

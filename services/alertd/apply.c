/*
 * Applying a round: one statement, sc_alertd_apply() (schema/004, 010), raises
 * and clears the round's alerts (with their tickets), writes the rule
 * states that changed and moves the cursor, all in one transaction. Only
 * when it committed does the working state become the state in memory.
 *
 * A statement resent after a lost connection whose first run committed
 * finds the cursor moved and changes nothing ("applied": false); so does
 * one racing another instance on the same cursor. Either way the state is
 * reloaded from the database and reading resumes from its cursor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alertd.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

static int add_ll(cJSON *o, const char *key, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	return cJSON_AddStringToObject(o, key, buf) != NULL ? 0 : -1;
}

/* The state of one entry as a "states" element of the apply. */
static int add_state(cJSON *states, const struct alertd_entry *e)
{
	const struct rules_state *s = &e->work;
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return -1;
	if (!cJSON_AddItemToArray(states, o)) {
		cJSON_Delete(o);
		return -1;
	}
	const char *ref;
	enum alertd_source src = state_entry_source(e, &ref);

	if (cJSON_AddStringToObject(o, "device", e->device) == NULL ||
	    cJSON_AddStringToObject(o, "rule", e->rule) == NULL ||
	    cJSON_AddStringToObject(o, "source", alertd_source_name(src)) == NULL ||
	    cJSON_AddStringToObject(o, "ref", ref) == NULL ||
	    cJSON_AddBoolToObject(o, "firing", s->firing) == NULL)
		return -1;
	if (s->pending ? add_ll(o, "pending_since", s->pending_since_us) != 0
		       : cJSON_AddNullToObject(o, "pending_since") == NULL)
		return -1;
	if (s->seen && (add_ll(o, "last_ts", s->last_ts_us) != 0 ||
			add_ll(o, "last_seq", s->last_seq) != 0))
		return -1;
	if (cJSON_AddBoolToObject(o, "flapping", s->flapping) == NULL ||
	    cJSON_AddNumberToObject(o, "cycles", s->cycles) == NULL)
		return -1;
	if (s->cycles != 0 && add_ll(o, "window_start", s->window_start_us) != 0)
		return -1;
	if (s->flapping && add_ll(o, "quiet_since", s->quiet_since_us) != 0)
		return -1;
	return 0;
}

/* The payload of sc_alertd_apply; caller frees. NULL on allocation failure. */
static char *build_payload(struct alertd *a)
{
	struct alertd_round *rd = &a->round;
	cJSON *p = cJSON_CreateObject(), *states;
	char *text = NULL;

	if (p == NULL)
		return NULL;
	if (partition_apply_json(a, p) != 0 ||
	    add_ll(p, "from", rd->from) != 0 || add_ll(p, "to", rd->to) != 0)
		goto out;
	/* The events move into the payload (the round no longer owns them). */
	if (!cJSON_AddItemToObject(p, "events", rd->events))
		goto out;
	rd->events = NULL;
	states = cJSON_AddArrayToObject(p, "states");
	if (states == NULL)
		goto out;
	/*
	 * Only what changed is written back, and not a rule or alarm state
	 * that was idle and stays idle: only its newest (ts, seq) moved, and
	 * writing that for every (device, rule) of every sample would be most
	 * of the apply's work (20 rows per sample with 20 rules). The price:
	 * after a restart such a state is evaluated from its last stored
	 * (ts, seq), so a late sample older than what was applied before the
	 * restart, but newer than that, is taken as in order (docs/alerts.md).
	 * Silent states are always written: their last arrival is the
	 * deadline a restart resumes.
	 */
	for (struct alertd_entry *e = state_dirty(a->state); e != NULL; e = e->dirty_next) {
		if (rules_state_equal(&e->work, &e->committed))
			continue;
		if (!e->silent && rules_state_idle(&e->work) && rules_state_idle(&e->committed))
			continue;
		if (add_state(states, e) != 0)
			goto out;
	}
	text = cJSON_PrintUnformatted(p);
out:
	cJSON_Delete(p);
	return text;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long ll(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

/* Source of an answer element (its "source", "rule" when absent). */
static enum alertd_source answer_source(const cJSON *x)
{
	const char *s = str(x, "source");

	for (int i = 0; s != NULL && i < ALERTD_NSOURCES; i++)
		if (strcmp(s, alertd_source_name((enum alertd_source)i)) == 0)
			return (enum alertd_source)i;
	return ALERTD_SOURCE_RULE;
}

/* Updates the committed entries and the metrics from the answer. */
static void account(struct alertd *a, const cJSON *answer)
{
	const cJSON *x;
	size_t raised[ALERTD_NSOURCES] = { 0 }, cleared[ALERTD_NSOURCES] = { 0 };

	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(answer, "raised")) {
		const char *outcome = str(x, "outcome"), *device = str(x, "device");
		const char *rule = str(x, "rule"), *ticket = str(x, "ticket_id");
		const char *ref = str(x, "ref");
		enum alertd_source src = answer_source(x);
		const char *sname = alertd_source_name(src);
		struct alertd_entry *e;

		if (outcome == NULL || device == NULL || rule == NULL)
			continue;
		if (ref == NULL)
			ref = rule;
		e = state_find(a->state, device, rule);
		if (strcmp(outcome, "created") == 0 || strcmp(outcome, "linked") == 0) {
			raised[src]++;
			if (e != NULL)
				e->alert_id = ll(x, "alert_id");
			log_info("alert raised: %s source=%s device=%s ref=%s alert=%lld"
				 " ticket=%s ticket_outcome=%s",
				 src == ALERTD_SOURCE_ALARM ? "device alarm" : "rule breached", sname,
				 device, ref, ll(x, "alert_id"), ticket ? ticket : "-", outcome);
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "unknown_code"))) {
				/* Raised with the documented defaults; the model's
				 * alarm-code table wants an entry. */
				metric_add(a->m.unknown_codes, 1);
				log_warn("alarm code unknown: not in the alarm-code table of the"
					 " device's model, raised as major fault device=%s code=%s"
					 " alert=%lld", device, ref, ll(x, "alert_id"));
			}
		} else if (strcmp(outcome, "already_firing") == 0) {
			if (e != NULL)
				e->alert_id = ll(x, "alert_id");
			log_warn("alert not raised: one is already firing source=%s device=%s ref=%s"
				 " alert=%lld", sname, device, ref, ll(x, "alert_id"));
		} else {
			/* Nothing fires in the database: neither may it here, or
			 * the state would disagree with rule_state after a restart. */
			if (e != NULL) {
				e->committed.firing = false;
				e->alert_id = 0;
			}
			log_warn("alert not raised: %s source=%s device=%s ref=%s", outcome, sname,
				 device, ref);
		}
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(answer, "flapping")) {
		const char *outcome = str(x, "outcome"), *device = str(x, "device");
		const char *ref = str(x, "ref"), *ticket = str(x, "ticket_id");

		if (outcome == NULL || device == NULL || ref == NULL)
			continue;
		if (strcmp(outcome, "flapping") != 0) {
			log_warn("alert not marked flapping: %s source=%s device=%s ref=%s", outcome,
				 alertd_source_name(answer_source(x)), device, ref);
			continue;
		}
		metric_add(a->m.flapping, 1);
		log_warn("alert flapping: too many fire/clear cycles, held firing as one alert"
			 " source=%s device=%s ref=%s alert=%lld ticket=%s cycles=%lld",
			 alertd_source_name(answer_source(x)), device, ref, ll(x, "alert_id"),
			 ticket ? ticket : "-", ll(x, "cycles"));
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(answer, "cleared")) {
		const char *outcome = str(x, "outcome"), *device = str(x, "device");
		const char *rule = str(x, "rule"), *ticket = str(x, "ticket_id");
		const char *ref = str(x, "ref");
		const cJSON *tc = cJSON_GetObjectItemCaseSensitive(x, "ticket_cleared");
		enum alertd_source src = answer_source(x);
		struct alertd_entry *e;

		if (outcome == NULL || device == NULL || rule == NULL)
			continue;
		if (ref == NULL)
			ref = rule;
		if ((e = state_find(a->state, device, rule)) != NULL)
			e->alert_id = 0;
		if (strcmp(outcome, "cleared") != 0) {
			log_warn("alert not cleared: %s source=%s device=%s ref=%s", outcome,
				 alertd_source_name(src), device, ref);
			continue;
		}
		cleared[src]++;
		/* A dispatched ticket stays open; its engineer's order was told
		 * (orders_annotated, schema/014). */
		log_info("alert cleared: %s source=%s device=%s ref=%s alert=%lld"
			 " ticket=%s ticket_cleared=%s orders_annotated=%lld",
			 src == ALERTD_SOURCE_ALARM ? "device cleared its alarm"
						    : "value back within bounds",
			 alertd_source_name(src), device, ref, ll(x, "alert_id"),
			 ticket ? ticket : "-", cJSON_IsTrue(tc) ? "yes" : "no",
			 ll(x, "orders_annotated"));
	}
	for (int s = 0; s < ALERTD_NSOURCES; s++) {
		metric_add(a->m.raised[s], (double)raised[s]);
		metric_add(a->m.cleared[s], (double)cleared[s]);
	}
}

static void on_applied(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;
	struct alertd_round *rd = &a->round;
	cJSON *answer = NULL;
	const cJSON *applied;

	if (r->error != NULL) {
		log_error("apply failed: %s sqlstate=%s from=%lld to=%lld", r->error, r->sqlstate,
			  rd->from, rd->to);
		metric_add(a->m.apply_errors, 1);
		state_discard(a->state);
		consumer_round_done(a, true);
		return;
	}
	if (PQntuples(r->res) == 1)
		answer = cJSON_Parse(PQgetvalue(r->res, 0, 0));
	applied = cJSON_GetObjectItemCaseSensitive(answer, "applied");
	if (!cJSON_IsBool(applied)) {
		/* Cannot tell what committed: the database knows. */
		log_error("apply answer unreadable: %s from=%lld to=%lld",
			  answer == NULL ? "out of memory or not json" : "no applied field",
			  rd->from, rd->to);
		state_discard(a->state);
		a->state_loaded = false;
		consumer_round_done(a, false);
		goto out;
	}
	if (!cJSON_IsTrue(applied)) {
		log_warn("apply skipped: the cursor was not where this round started"
			 " (applied before, or another instance) consumer=%s cursor=%lld from=%lld"
			 " to=%lld", str(answer, "consumer") ? str(answer, "consumer") : "-",
			 ll(answer, "cursor"), rd->from, rd->to);
		state_discard(a->state);
		a->state_loaded = false;
		consumer_round_done(a, false);
		goto out;
	}
	silent_committed(a);
	state_commit(a->state);
	account(a, answer);
	partition_advance(a, rd->to);
	metric_add(a->m.batches, (double)rd->nbatches);
	metric_add(a->m.samples, (double)rd->nsamples);
	metric_add(a->m.alarms, (double)rd->nalarms);
	metric_set(a->m.lag_batches, (double)(rd->head > rd->to ? rd->head - rd->to : 0));
	int64_t now = time_mono_us();
	metric_set(a->m.lag_seconds, rd->age_s + (double)(now - rd->started_mono) / 1e6);
	metric_observe(a->m.apply_seconds, (double)(now - rd->apply_mono) / 1e6);
	log_debug("round applied from=%lld to=%lld batches=%zu samples=%zu alarms=%zu", rd->from,
		  rd->to, rd->nbatches, rd->nsamples, rd->nalarms);
	consumer_round_done(a, false);
out:
	cJSON_Delete(answer);
}

void apply_round(struct alertd *a)
{
	char *payload;
	const char *params[1];

	if (!a->state_loaded || a->nheld == 0) {
		/* The partitions went with a lost connection while the round
		 * was read: its cursors are not ours to move. */
		log_warn("round dropped: partitions changed while it was read from=%lld to=%lld",
			 a->round.from, a->round.to);
		state_discard(a->state);
		consumer_round_done(a, false);
		return;
	}
	payload = build_payload(a);
	params[0] = payload;

	a->phase = ALERTD_APPLYING;
	a->round.apply_mono = time_mono_us();
	if (payload == NULL ||
	    db_exec_prepared(a->db, "alertd_apply", 1, params, on_applied, a) != 0) {
		log_error("apply failed: out of memory from=%lld to=%lld", a->round.from,
			  a->round.to);
		state_discard(a->state);
		consumer_round_done(a, true);
	}
	free(payload);
}

int apply_init(struct alertd *a)
{
	return db_prepare(a->db, "alertd_apply", "SELECT sc_alertd_apply($1::jsonb)", 1);
}

/*
 * Silent rules (contract sections 3 and 6): a device, or with `metric` that
 * metric, has sent nothing for for_s seconds. Measured on arrival time
 * (received_at, sc-ingest's clock), and only for devices that reported at
 * least once.
 *
 * Per (device, silent rule) an entry of the state map (state.c) keeps the
 * last arrival in last_ts_us, its seq in last_seq, and firing. Arrivals
 * come with the round's rows, as telemetry does, so the state moves with
 * the cursor and is written to rule_state by the same apply. Deadlines
 * (last arrival + for_s) live in a heap, one entry per state at most
 * (`timer_key`): an arrival that moves the deadline later leaves the heap
 * alone, and the stale entry, when it comes out, is pushed again at the
 * new deadline. So a device reporting every few seconds costs one pop and
 * push per for_s, and the heap never holds more than one entry per state;
 * no scan of all devices ever runs.
 *
 * A deadline that passed raises in the next round (consumer.c runs a round
 * of timer events only when no batch waits; otherwise after the round that
 * caught up, so an arrival already committed is seen first). The alert is
 * raised at the deadline's time and cleared by the next arrival. A silence
 * that ended before sc-alertd saw it (it was down or behind) is still
 * recorded: the arrival that ends a gap of for_s or more raises the alert
 * at the gap's deadline and clears it at once (its ticket ends cleared).
 *
 * The heap refers to entries by address: it is rebuilt whenever the map is
 * replaced (a state load) and after a failed round.
 */
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "alertd.h"
#include "heap.h"
#include "log.h"
#include "service.h"
#include "timeutil.h"

/* Longest sleep of the wake-up timer: deadlines are wall-clock times, and a
 * clock that jumps is noticed within this long. */
#define SILENT_MAX_SLEEP_US (60 * TIME_US_PER_S)

static struct alertd_entry *entry_of(int64_t id)
{
	return (struct alertd_entry *)(intptr_t)id;
}

/* State of an entry as of now: this round's work, else the committed one. */
static const struct rules_state *current(const struct alertd_entry *e)
{
	return e->dirty ? &e->work : &e->committed;
}

/* Deadline of a state, 0 when it has none (never reported, or firing). */
static int64_t deadline(const struct alertd *a, const struct alertd_entry *e)
{
	const struct rules_state *s = current(e);
	const struct rules_rule *r = ruleset_silent(a->rules, e->rule);

	if (r == NULL || !s->seen || s->firing)
		return 0;
	return s->last_ts_us + r->for_us;
}

/* Gives the entry its heap entry if it has none. On allocation failure the
 * deadline is lost until the next rebuild: logged. */
static void schedule(struct alertd *a, struct alertd_entry *e)
{
	int64_t d;

	if (e->timer_key != 0 || (d = deadline(a, e)) == 0)
		return;
	if (heap_push(a->timers, d, (int64_t)(intptr_t)e) != 0) {
		log_error("silent timer lost: out of memory device=%s rule=%s", e->device, e->rule);
		return;
	}
	e->timer_key = d;
}

static void arm(struct alertd *a)
{
	struct heap_item it;
	int64_t wait;
	struct timeval tv;

	evtimer_del(a->silent_timer);
	if (!heap_peek(a->timers, &it))
		return;
	wait = it.key - time_now_us();
	if (wait < 0)
		wait = 0;
	if (wait > SILENT_MAX_SLEEP_US)
		wait = SILENT_MAX_SLEEP_US;
	/* 1 ms late rather than early: a wake-up before the deadline finds
	 * nothing due and sleeps again. */
	wait += 1000;
	tv.tv_sec = (time_t)(wait / TIME_US_PER_S);
	tv.tv_usec = (suseconds_t)(wait % TIME_US_PER_S);
	evtimer_add(a->silent_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct alertd *a = arg;

	arm(a);
	consumer_wake(a);
}

int silent_init(struct alertd *a)
{
	a->timers = heap_new();
	a->silent_timer = evtimer_new(a->svc->base, on_timer, a);
	return a->timers != NULL && a->silent_timer != NULL ? 0 : -1;
}

void silent_free(struct alertd *a)
{
	if (a->silent_timer != NULL)
		event_free(a->silent_timer);
	a->silent_timer = NULL;
	heap_free(a->timers);
	a->timers = NULL;
}

static int add_silent_event(struct alertd *a, const char *op, struct alertd_entry *e,
			    int64_t ts_us, long long seq, int64_t since_us)
{
	cJSON *ev = evaluate_new_event(a->round.events, op, "rule", e, e->rule, ts_us, seq);
	char buf[24];

	if (ev == NULL)
		return -1;
	if (op[0] == 'r') {
		/* The silence began with the last arrival. */
		snprintf(buf, sizeof(buf), "%lld", (long long)since_us);
		if (cJSON_AddStringToObject(ev, "pending_since", buf) == NULL)
			return -1;
	}
	return 0;
}

/* One arrival for one silent state. */
static int arrive(struct alertd *a, const struct rules_rule *r, const char *device,
		  int64_t received_us, long long seq)
{
	struct alertd_entry *e = state_touch(a->state, device, r->id);
	struct rules_state *w;
	int64_t prev;
	bool had;

	if (e == NULL)
		return -1;
	e->silent = true;
	w = &e->work;
	/* Arrivals of one round come in device-ts order, not arrival order. */
	if (w->seen && received_us <= w->last_ts_us)
		return 0;
	had = w->seen;
	prev = w->last_ts_us;
	w->seen = true;
	w->last_ts_us = received_us;
	w->last_seq = seq;
	w->pending = false;
	w->pending_since_us = 0;
	if (w->firing) {
		w->firing = false;
		return add_silent_event(a, "clear", e, received_us, seq, 0);
	}
	if (had && received_us - prev >= r->for_us) {
		/* A silence nobody saw while it lasted. */
		if (add_silent_event(a, "raise", e, prev + r->for_us, seq, prev) != 0)
			return -1;
		return add_silent_event(a, "clear", e, received_us, seq, 0);
	}
	return 0;
}

int silent_observe(struct alertd *a, const char *device, const char *model,
		   const cJSON *metrics, int64_t received_us, long long seq)
{
	const struct alertd_ruleset *rs = a->rules;

	for (size_t i = 0; i < rs->nsilent; i++) {
		const struct rules_rule *r = &rs->silent[i];

		if (!rules_matches_model(r, model))
			continue;
		/* With a metric, only samples that carry it count. */
		if (r->metric[0] != '\0' &&
		    (metrics == NULL || cJSON_GetObjectItemCaseSensitive(metrics, r->metric) == NULL))
			continue;
		if (arrive(a, r, device, received_us, seq) != 0)
			return -1;
	}
	return 0;
}

bool silent_due(const struct alertd *a, int64_t now_us)
{
	struct heap_item it;

	return heap_peek(a->timers, &it) && it.key <= now_us;
}

int silent_fire_due(struct alertd *a, int64_t now_us)
{
	struct heap_item it;

	while (heap_peek(a->timers, &it) && it.key <= now_us) {
		struct alertd_entry *e = entry_of(it.id);
		int64_t d;

		heap_pop(a->timers, NULL);
		e->timer_key = 0;
		d = deadline(a, e);
		if (d == 0)
			continue; /* firing, or its rule is gone */
		if (d > now_us) {
			/* It arrived meanwhile: wait for the new deadline. */
			schedule(a, e);
			continue;
		}
		if (state_touch(a->state, e->device, e->rule) != e)
			return -1;
		e->work.firing = true;
		if (add_silent_event(a, "raise", e, d, e->work.last_seq, e->work.last_ts_us) != 0)
			return -1;
	}
	return 0;
}

void silent_committed(struct alertd *a)
{
	for (struct alertd_entry *e = state_dirty(a->state); e != NULL; e = e->dirty_next)
		if (e->silent)
			schedule(a, e);
	arm(a);
}

static void rebuild_one(struct alertd_entry *e, void *arg)
{
	struct alertd *a = arg;

	e->timer_key = 0;
	e->silent = ruleset_silent(a->rules, e->rule) != NULL;
	if (e->silent)
		schedule(a, e);
}

void silent_rebuild(struct alertd *a)
{
	heap_clear(a->timers);
	if (a->rules != NULL)
		state_foreach(a->state, rebuild_one, a);
	arm(a);
}

enum { SEEN_DEVICE, SEEN_AT, SEEN_SEQ, SEEN_METRICS };

int silent_seed(struct alertd *a, const PGresult *res)
{
	const struct alertd_ruleset *rs = a->rules;
	int n = PQntuples(res);
	size_t seeded = 0;

	for (int i = 0; rs != NULL && rs->nsilent > 0 && i < n; i++) {
		const char *device = PQgetvalue(res, i, SEEN_DEVICE);
		const char *model = ruleset_model(rs, device);
		cJSON *metrics = NULL;

		for (size_t k = 0; k < rs->nsilent; k++) {
			const struct rules_rule *r = &rs->silent[k];
			struct alertd_entry *e;

			if (!rules_matches_model(r, model) || state_find(a->state, device, r->id))
				continue;
			/* A metric's own arrival is not kept: the device's last
			 * arrival stands in for it when that metric was among
			 * what it last reported (a later deadline, never an
			 * early one). */
			if (r->metric[0] != '\0') {
				if (metrics == NULL)
					metrics = cJSON_Parse(PQgetvalue(res, i, SEEN_METRICS));
				if (metrics == NULL)
					return -1;
				if (cJSON_GetObjectItemCaseSensitive(metrics, r->metric) == NULL)
					continue;
			}
			if ((e = state_seed(a->state, device, r->id)) == NULL) {
				cJSON_Delete(metrics);
				return -1;
			}
			e->committed.seen = true;
			e->committed.last_ts_us = strtoll(PQgetvalue(res, i, SEEN_AT), NULL, 10);
			e->committed.last_seq = strtoll(PQgetvalue(res, i, SEEN_SEQ), NULL, 10);
			seeded++;
		}
		cJSON_Delete(metrics);
	}
	log_info("silent states seeded from device_state devices=%d states=%zu", n, seeded);
	return 0;
}

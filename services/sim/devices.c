/*
 * Simulated devices: telemetry on sc/v1/dev/{id}/telemetry at QoS 1, one
 * message per device every --telemetry-interval-ms, with metrics named after
 * the alert rules of the device's model (plus load_pct on a daily curve).
 *
 * Healthy values stay clear of every rule on their metric (below the lower
 * of threshold and clear for ">", above the higher for "<"). A fault makes
 * one metric of a device drift over one rule's threshold and stay there
 * past the rule's for_s, so the platform raises an alert; the fault ends
 * when an engineer resolves an order at the device (devices_repair), or by
 * itself after for_s + FAULT_HOLD_S when nobody came. About --fault-pct of
 * the devices are in a fault at any time: when one ends, another starts.
 *
 * Scheduling: every device has the same period, so device i is due at
 * t0 + cycle * period + i * period / n, and the order of due times is a
 * round robin. One timer walks it with a cursor, with no heap and no timer
 * per device. A loop up to a second late catches up; one that fell further
 * behind (stopped, offline) skips the missed cycles instead of bursting them.
 *
 * seq: starts above both the wall clock in milliseconds and the newest seq
 * the platform stored for the device, and grows by one per message; so a
 * restarted sim never reuses a seq as long as it sends less than one message
 * per device per millisecond.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "domain.h"
#include "log.h"
#include "master.h"
#include "mqtt.h"
#include "service.h"
#include "sim.h"
#include "strbuf.h"
#include "timeutil.h"

#define MAX_METRICS 64              /* contract section 2.1 */
#define TICK_MAX_US 10000           /* the round-robin timer's longest period */
#define TICK_MAX_SENDS 1000         /* per tick, so the loop serves the rest too */
#define CATCH_UP_MAX_US 1000000     /* later than this, missed cycles are skipped */
#define PUBLISH_BACKLOG_MAX 20000   /* unacknowledged publishes before we wait */
#define FAULT_CHECK_MS 1000
#define FAULT_PREFERRED_FOR_S 300.0 /* faults pick rules that fire within minutes */
#define FAULT_HOLD_S 900.0          /* a fault nobody repairs ends after for_s + this */
#define FAULT_BATCHES 20            /* faults start in this many steps */
#define LOCAL_UTC_OFFSET_H 8.0      /* daily curves follow China Standard Time (no DST) */
#define LOAD_TOP_PCT 80.0           /* the load curve's daily peak */

/* How one metric of a model behaves. */
struct metric_profile {
	const char *name;
	double base;   /* typical value (for load_pct: the curve's peak) */
	double noise;  /* amplitude of variation */
	bool is_load;  /* the daily load curve */
	bool exact;    /* held at base exactly (a "!=" rule) */
};

/* The metrics of a device model and the rules a fault can cross. */
struct model_profile {
	const char *model;
	struct metric_profile metrics[MAX_METRICS];
	size_t nmetrics;
	const struct world_rule **fault_rules;
	size_t nfault_rules;
};

struct dev {
	const struct world_device *wd;
	struct model_profile *prof;
	size_t index;            /* in devices.devs: seeds its fixed offsets */
	uint64_t seq;            /* last seq sent */
	double load_scale;       /* this device's share of the load curve's peak */
	/* Fault (rule NULL: healthy). Times are wall clock, like the ts sent. */
	const struct world_rule *fault;
	size_t fault_metric;     /* index in prof->metrics */
	double fault_target;
	int64_t fault_start_us;
	int64_t fault_ramp_us;   /* time to drift from healthy to target */
	int64_t fault_end_us;    /* recovers by itself then */
	bool alarm_raised;       /* the fault raised the model's alarm (--alarm-pct) */
};

struct devices {
	struct sim *sim;
	struct dev *devs;
	size_t ndevs;
	struct model_profile **profiles; /* one per model, made on first use */
	size_t nprofiles, capprofiles;
	struct idmap *by_id;     /* device id -> struct dev */
	struct sim_rng rng;      /* telemetry noise */
	struct sim_rng frng;     /* fault choices */
	struct event *tick_ev, *fault_ev;
	int64_t period_us;
	int64_t t0_us;           /* monotonic start of cycle 0 */
	uint64_t cycle;
	size_t cursor;
	int64_t start_wall_us;
	size_t *faulty;          /* indices of devices in a fault */
	size_t nfaulty;
	size_t fault_target_n;   /* how many should be in a fault */
	int64_t next_fault_us;   /* wall clock: earliest start of the next fault */
	struct strbuf buf;
	struct sent *inflight;   /* telemetry published, outcome not yet back */
};

/* ---- profiles ------------------------------------------------------------ */

static bool rule_applies(const struct world_rule *r, const char *model)
{
	return strcmp(r->model, "*") == 0 || strcmp(r->model, model) == 0;
}

static bool rule_is_threshold(const struct world_rule *r)
{
	return strcmp(r->op, "silent") != 0 && isfinite(r->threshold);
}

/* Fills m so that its values stay clear of every rule of `model` on it. */
static void metric_profile_build(struct metric_profile *m, const struct world *w,
				 const char *model)
{
	double hi = INFINITY, lo = -INFINITY, avoid = NAN, exact = NAN;
	for (size_t i = 0; i < w->nrules; i++) {
		const struct world_rule *r = &w->rules[i];
		if (!rule_applies(r, model) || strcmp(r->metric, m->name) != 0 || !rule_is_threshold(r))
			continue;
		double t = r->threshold, c = r->clear;
		if (r->op[0] == '>')
			hi = fmin(hi, isfinite(c) ? fmin(t, c) : t);
		else if (r->op[0] == '<')
			lo = fmax(lo, isfinite(c) ? fmax(t, c) : t);
		else if (strcmp(r->op, "==") == 0)
			avoid = t;
		else if (strcmp(r->op, "!=") == 0)
			exact = t;
	}
	double margin;
	if (isfinite(exact)) {
		m->base = exact;
		m->noise = 0;
		m->exact = true;
		return;
	}
	if (isfinite(hi) && isfinite(lo)) {
		m->base = (hi + lo) / 2;
		margin = fabs(hi - lo) / 2;
	} else if (isfinite(hi)) {
		margin = fmax(fabs(hi) * 0.15, 0.01);
		m->base = hi - margin;
		/* A positive bound keeps a positive quantity positive. */
		if (hi > 0 && m->base < 0) {
			margin = hi / 2;
			m->base = hi / 2;
		}
	} else if (isfinite(lo)) {
		margin = fmax(fabs(lo) * 0.15, 0.01);
		m->base = lo + margin;
	} else if (isfinite(avoid)) {
		margin = fmax(fabs(avoid) * 0.15, 1);
		m->base = avoid + margin;
	} else {
		/* Only a "silent" rule names it: any lively value will do. */
		margin = 20;
		m->base = 100;
	}
	/* Offset, daily swing and noise add up to 1.5 * noise < margin. */
	m->noise = 0.3 * margin;
	if (m->is_load) {
		m->base = isfinite(hi) ? fmin(hi - margin, LOAD_TOP_PCT) : LOAD_TOP_PCT;
		m->noise = fmin(2.0, m->noise);
	}
}

/* Adds metric `name` to p unless present. */
static void profile_add_metric(struct model_profile *p, const struct world *w, const char *name)
{
	for (size_t k = 0; k < p->nmetrics; k++)
		if (strcmp(p->metrics[k].name, name) == 0)
			return;
	/* The name goes into the payload as it is: it must be a valid one. */
	if (p->nmetrics == MAX_METRICS || !domain_metric_name_valid(name))
		return;
	struct metric_profile *m = &p->metrics[p->nmetrics++];
	memset(m, 0, sizeof(*m));
	m->name = name;
	m->is_load = strcmp(name, "load_pct") == 0;
	metric_profile_build(m, w, p->model);
}

static size_t profile_metric_index(const struct model_profile *p, const char *name)
{
	for (size_t k = 0; k < p->nmetrics; k++)
		if (strcmp(p->metrics[k].name, name) == 0)
			return k;
	return p->nmetrics;
}

static int profile_build(struct model_profile *p, const struct world *w, const char *model)
{
	p->model = model;
	profile_add_metric(p, w, "load_pct");
	for (size_t i = 0; i < w->nrules; i++)
		if (rule_applies(&w->rules[i], model))
			profile_add_metric(p, w, w->rules[i].metric);
	/* Faults: rules that fire within minutes; else the quickest one. */
	p->fault_rules = calloc(w->nrules + 1, sizeof(*p->fault_rules));
	if (p->fault_rules == NULL)
		return -1;
	const struct world_rule *quickest = NULL;
	for (size_t i = 0; i < w->nrules; i++) {
		const struct world_rule *r = &w->rules[i];
		if (!rule_applies(r, model) || !rule_is_threshold(r) ||
		    profile_metric_index(p, r->metric) == p->nmetrics)
			continue;
		if (r->for_s <= FAULT_PREFERRED_FOR_S)
			p->fault_rules[p->nfault_rules++] = r;
		if (quickest == NULL || r->for_s < quickest->for_s)
			quickest = r;
	}
	if (p->nfault_rules == 0 && quickest != NULL)
		p->fault_rules[p->nfault_rules++] = quickest;
	return 0;
}

static void profile_free(struct model_profile *p)
{
	if (p == NULL)
		return;
	free(p->fault_rules);
	free(p);
}

/* The profile of a model (few models, many devices: a list will do). */
static struct model_profile *profile_for(struct devices *d, const char *model)
{
	struct model_profile *p = NULL;
	for (size_t i = 0; i < d->nprofiles; i++)
		if (strcmp(d->profiles[i]->model, model) == 0)
			return d->profiles[i];
	if (d->nprofiles == d->capprofiles) {
		size_t cap = d->capprofiles ? d->capprofiles * 2 : 8;
		struct model_profile **a = realloc(d->profiles, cap * sizeof(*a));
		if (a == NULL)
			goto fail;
		d->profiles = a;
		d->capprofiles = cap;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || profile_build(p, d->sim->world, model) != 0)
		goto fail;
	d->profiles[d->nprofiles++] = p;
	return p;
fail:
	profile_free(p);
	return NULL;
}

/* ---- values -------------------------------------------------------------- */

/* A fixed number in [-0.5, 0.5) per (device, metric): devices differ a little. */
static double fixed_offset(size_t dev, size_t metric)
{
	uint64_t x = ((uint64_t)dev << 8) ^ metric;
	return (double)(sim_splitmix64(&x) >> 11) / 9007199254740992.0 - 0.5;
}

/* Hour of day in China, 0..24. */
static double local_hour(int64_t now_us)
{
	double h = fmod((double)now_us / 3.6e9 + LOCAL_UTC_OFFSET_H, 24.0);
	return h < 0 ? h + 24 : h;
}

static double healthy_value(struct devices *d, const struct dev *v, size_t k, double hour)
{
	const struct metric_profile *m = &v->prof->metrics[k];
	double noise = sim_rng_uniform(&d->rng, -1, 1) * m->noise;
	if (m->exact)
		return m->base;
	if (m->is_load) {
		/* Lowest at 04:00, highest at 16:00. */
		double shape = 0.5 - 0.5 * cos(2 * M_PI * (hour - 4) / 24);
		return m->base * v->load_scale * (0.35 + 0.65 * shape) + noise;
	}
	double swing = 0.5 * m->noise * sin(2 * M_PI * (hour - 8) / 24);
	return m->base + m->noise * fixed_offset(v->index, k) + swing + 0.5 * noise;
}

static double fault_value(struct devices *d, const struct dev *v, double healthy, int64_t now_us)
{
	const struct world_rule *r = v->fault;
	double f = v->fault_ramp_us > 0
			   ? (double)(now_us - v->fault_start_us) / (double)v->fault_ramp_us : 1;
	if (f < 1)
		return healthy + (v->fault_target - healthy) * f;
	if (strcmp(r->op, "==") == 0)
		return v->fault_target;
	/* Past the target, never back across the threshold. */
	double wobble = fabs(v->fault_target - r->threshold) * 0.3 * sim_rng_unit(&d->rng);
	return r->op[0] == '<' ? v->fault_target - wobble : v->fault_target + wobble;
}

/* ---- faults -------------------------------------------------------------- */

/*
 * --alarm-pct: a fault of a device whose model has an alarm code also makes
 * the device raise that alarm (and clear it when the fault ends). Alarms
 * are QoS 1 and kept until acknowledged (publish.c), as a device keeps them.
 * They take their seq from the device's one counter.
 */
static void send_alarm(struct devices *d, struct dev *v, const char *state)
{
	char ts[TIME_RFC3339_LEN], topic[128], key[24];
	struct strbuf *b = &d->buf;
	v->seq++;
	strbuf_reset(b);
	strbuf_printf(b, "{\"seq\":%llu,\"ts\":\"%s\",\"code\":", (unsigned long long)v->seq,
		      time_format_rfc3339(time_now_us(), ts, sizeof(ts)));
	strbuf_json_str(b, v->wd->alarm_code);
	strbuf_printf(b, ",\"state\":\"%s\",\"text\":\"simulated\"}", state);
	snprintf(topic, sizeof(topic), "sc/v1/dev/%s/alarm", v->wd->id);
	snprintf(key, sizeof(key), "%llu", (unsigned long long)v->seq);
	if (!strbuf_ok(b) || pub_send(d->sim->pub, topic, b->data, "alarm", key, NULL, NULL) != 0)
		log_error("cannot send an alarm: out of memory device=%s", v->wd->id);
}

static void fault_end(struct devices *d, struct dev *v, bool repaired)
{
	if (v->alarm_raised) {
		send_alarm(d, v, "cleared");
		v->alarm_raised = false;
	}
	for (size_t i = 0; i < d->nfaulty; i++) {
		if (d->faulty[i] == v->index) {
			d->faulty[i] = d->faulty[--d->nfaulty];
			break;
		}
	}
	log_debug("fault ended device=%s rule=%s by=%s", v->wd->id, v->fault->id,
		  repaired ? "repair" : "itself");
	v->fault = NULL;
	if (repaired)
		d->sim->stats.faults_repaired++;
	else
		d->sim->stats.faults_recovered++;
}

static void fault_begin(struct devices *d, struct dev *v, int64_t now_us)
{
	const struct model_profile *p = v->prof;
	const struct world_rule *r = p->fault_rules[sim_rng_index(&d->frng, p->nfault_rules)];
	double gap = fmax(fabs(r->threshold) * 0.1, 0.05);
	if (strcmp(r->op, "==") == 0)
		v->fault_target = r->threshold;
	else if (r->op[0] == '<')
		v->fault_target = r->threshold - gap;
	else
		v->fault_target = r->threshold + gap;
	v->fault = r;
	v->fault_metric = profile_metric_index(p, r->metric);
	v->fault_start_us = now_us;
	v->fault_ramp_us = (int64_t)(sim_rng_uniform(&d->frng, 5, 20) * 1e6);
	v->fault_end_us = now_us + v->fault_ramp_us + (int64_t)((r->for_s + FAULT_HOLD_S) * 1e6);
	d->faulty[d->nfaulty++] = v->index;
	d->sim->stats.faults_started++;
	if (d->sim->opts.alarm_pct > 0 && v->wd->alarm_code != NULL &&
	    sim_rng_chance(&d->frng, d->sim->opts.alarm_pct)) {
		send_alarm(d, v, "raised");
		v->alarm_raised = true;
	}
	log_debug("fault started device=%s rule=%s metric=%s target=%g", v->wd->id, r->id,
		  r->metric, v->fault_target);
}

/* A random healthy device that can have a fault, or NULL. */
static struct dev *pick_healthy(struct devices *d)
{
	/* Random probes first (cheap when few are faulty), then a scan. */
	for (int tries = 0; tries < 16; tries++) {
		struct dev *v = &d->devs[sim_rng_index(&d->frng, d->ndevs)];
		if (v->fault == NULL && v->prof->nfault_rules > 0)
			return v;
	}
	size_t start = sim_rng_index(&d->frng, d->ndevs);
	for (size_t i = 0; i < d->ndevs; i++) {
		struct dev *v = &d->devs[(start + i) % d->ndevs];
		if (v->fault == NULL && v->prof->nfault_rules > 0)
			return v;
	}
	return NULL;
}

static void on_fault_check(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	int64_t now = time_now_us();
	for (size_t i = 0; i < d->nfaulty;) {
		struct dev *v = &d->devs[d->faulty[i]];
		if (now >= v->fault_end_us) {
			fault_end(d, v, false); /* moves another index into i */
			continue;
		}
		i++;
	}
	/* A twentieth of the target at a time (at least one), a few seconds
	 * apart: faults come in over the first minute or so, not all at once,
	 * whatever the fleet's size. */
	if (d->nfaulty < d->fault_target_n && now >= d->next_fault_us) {
		size_t batch = (d->fault_target_n + FAULT_BATCHES - 1) / FAULT_BATCHES;
		for (size_t i = 0; i < batch && d->nfaulty < d->fault_target_n; i++) {
			struct dev *v = pick_healthy(d);
			if (v == NULL)
				break;
			fault_begin(d, v, now);
		}
		d->next_fault_us = now + (int64_t)(sim_rng_uniform(&d->frng, 1, 5) * 1e6);
	}
}

void devices_repair(struct devices *d, const char *device_id)
{
	void *found = NULL;
	if (d == NULL || d->by_id == NULL || !idmap_find(d->by_id, device_id, &found))
		return;
	struct dev *v = found;
	if (v->fault != NULL)
		fault_end(d, v, true);
}

/* ---- telemetry ------------------------------------------------------------ */

/* One telemetry message in flight: what mischief_acked() needs once the
 * broker acknowledged it (topic and payload, NUL-separated, in data). Kept
 * in devices.inflight so devices_free() frees those whose outcome never
 * came back (the MQTT client drops them at its end without a callback). */
struct sent {
	struct devices *d;
	struct sent *prev, *next; /* in devices.inflight */
	size_t topic_len;
	uint64_t seq;
	char data[];
};

static void on_telemetry_acked(void *arg, int status)
{
	struct sent *m = arg;
	struct devices *d = m->d;
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		d->inflight = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	if (status == 0) {
		char key[24];
		d->sim->stats.telemetry_acked++;
		snprintf(key, sizeof(key), "%llu", (unsigned long long)m->seq);
		mischief_acked(d->sim->mischief, "telemetry", m->data, key, NULL,
			       m->data + m->topic_len + 1);
	} else {
		d->sim->stats.telemetry_failed++;
	}
	free(m);
}

static void publish_one(struct devices *d, struct dev *v, int64_t now_us)
{
	char ts[TIME_RFC3339_LEN], topic[128];
	double hour = local_hour(now_us);
	double run_hours = v->wd->run_hours + (double)(now_us - d->start_wall_us) / 3.6e9;
	struct strbuf *b = &d->buf;
	strbuf_reset(b);
	strbuf_printf(b, "{\"seq\":%llu,\"ts\":\"%s\",\"run_hours\":%.3f,\"metrics\":{",
		      (unsigned long long)(v->seq + 1),
		      time_format_rfc3339(now_us, ts, sizeof(ts)), run_hours);
	for (size_t k = 0; k < v->prof->nmetrics; k++) {
		double val = healthy_value(d, v, k, hour);
		if (v->fault != NULL && v->fault_metric == k)
			val = fault_value(d, v, val, now_us);
		strbuf_printf(b, "%s\"%s\":%.6g", k > 0 ? "," : "", v->prof->metrics[k].name, val);
	}
	strbuf_puts(b, "}}");
	int tlen = snprintf(topic, sizeof(topic), "sc/v1/dev/%s/telemetry", v->wd->id);
	struct sent *m = strbuf_ok(b) && tlen > 0 ? malloc(sizeof(*m) + (size_t)tlen + b->len + 2)
						  : NULL;
	if (m == NULL) {
		d->sim->stats.telemetry_failed++;
		return;
	}
	v->seq++;
	m->d = d;
	m->seq = v->seq;
	m->topic_len = (size_t)tlen;
	memcpy(m->data, topic, (size_t)tlen + 1);
	memcpy(m->data + tlen + 1, b->data, b->len + 1);
	m->prev = NULL;
	m->next = d->inflight;
	if (d->inflight != NULL)
		d->inflight->prev = m;
	d->inflight = m;
	if (mq_publish(d->sim->svc->mq, topic, b->data, b->len, 1, false, on_telemetry_acked, m) == 0) {
		d->sim->stats.telemetry_sent++;
	} else {
		d->sim->stats.telemetry_failed++; /* offline: the sample is skipped */
		d->inflight = m->next;
		if (m->next != NULL)
			m->next->prev = NULL;
		free(m);
	}
}

static int64_t due_us(const struct devices *d)
{
	return d->t0_us + (int64_t)d->cycle * d->period_us +
	       (int64_t)((double)d->cursor * (double)d->period_us / (double)d->ndevs);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct devices *d = arg;
	int64_t now = time_mono_us();
	struct mq *mq = d->sim->svc->mq;
	/* Offline (also before the first connect): samples are not taken, and
	 * the cycles missed meanwhile are skipped below, as a device would. */
	if (!mq_connected(mq))
		return;
	int64_t behind = now - due_us(d);
	if (behind > 2 * d->period_us && behind > CATCH_UP_MAX_US) {
		/* Fell behind by whole cycles: skip them rather than burst. */
		uint64_t cycle = (uint64_t)((now - d->t0_us) / d->period_us);
		log_debug("telemetry behind: skipping cycles=%llu",
			  (unsigned long long)(cycle - d->cycle));
		d->cycle = cycle;
		d->cursor = 0;
	}
	int64_t wall = time_now_us();
	for (int n = 0; n < TICK_MAX_SENDS && due_us(d) <= now; n++) {
		if (mq_publish_pending(mq) > PUBLISH_BACKLOG_MAX)
			break; /* the broker is slower than we are: wait for it */
		publish_one(d, &d->devs[d->cursor], wall);
		if (++d->cursor == d->ndevs) {
			d->cursor = 0;
			d->cycle++;
		}
	}
}

/* ---- lifecycle ------------------------------------------------------------ */

int devices_start(struct devices *d)
{
	const struct world *w = d->sim->world;
	const struct sim_opts *o = &d->sim->opts;
	size_t n = w->ndevices;
	if (o->devices >= 0 && (size_t)o->devices < n)
		n = (size_t)o->devices;
	if (n == 0) {
		log_warn("no devices to simulate: telemetry off");
		return 0;
	}
	d->devs = calloc(n, sizeof(*d->devs));
	d->faulty = calloc(n, sizeof(*d->faulty));
	d->by_id = idmap_new();
	if (d->devs == NULL || d->faulty == NULL || d->by_id == NULL)
		return -1;
	uint64_t seq0 = (uint64_t)(time_now_us() / 1000);
	for (size_t i = 0; i < n; i++) {
		struct dev *v = &d->devs[i];
		v->wd = &w->devices[i];
		v->index = i;
		v->prof = profile_for(d, v->wd->model);
		if (v->prof == NULL || idmap_add(d->by_id, v->wd->id, v) != 0)
			return -1;
		v->seq = v->wd->last_seq > seq0 ? v->wd->last_seq : seq0;
		v->load_scale = 0.8 + 0.2 * (fixed_offset(i, MAX_METRICS) + 0.5);
		d->ndevs++;
	}
	idmap_seal(d->by_id);
	d->fault_target_n = (size_t)llround(o->fault_pct / 100.0 * (double)n);
	if (d->fault_target_n == 0 && o->fault_pct > 0)
		d->fault_target_n = 1;
	d->period_us = o->telemetry_ms * 1000;
	d->t0_us = time_mono_us();
	d->start_wall_us = time_now_us();
	d->next_fault_us = d->start_wall_us + (int64_t)(sim_rng_uniform(&d->frng, 1, 3) * 1e6);
	int64_t tick = d->period_us / (int64_t)n;
	if (tick > TICK_MAX_US)
		tick = TICK_MAX_US;
	if (tick < 1000)
		tick = 1000;
	struct timeval tv = { 0, (long)tick };
	struct timeval fv = { FAULT_CHECK_MS / 1000, (FAULT_CHECK_MS % 1000) * 1000 };
	event_add(d->tick_ev, &tv);
	event_add(d->fault_ev, &fv);
	log_info("devices started devices=%zu models=%zu faults=%zu period_ms=%ld", n,
		 d->nprofiles, d->fault_target_n, o->telemetry_ms);
	return 0;
}

void devices_stop(struct devices *d)
{
	if (d == NULL)
		return;
	event_del(d->tick_ev);
	event_del(d->fault_ev);
}

size_t devices_count(const struct devices *d)
{
	return d != NULL ? d->ndevs : 0;
}

size_t devices_faulty(const struct devices *d)
{
	return d != NULL ? d->nfaulty : 0;
}

struct devices *devices_new(struct sim *sim)
{
	struct devices *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->sim = sim;
	sim_rng_init(&d->rng, sim->opts.seed, SIM_STREAM_DEVICES);
	sim_rng_init(&d->frng, sim->opts.seed, SIM_STREAM_FAULTS);
	strbuf_init(&d->buf);
	d->tick_ev = event_new(sim->svc->base, -1, EV_PERSIST, on_tick, d);
	d->fault_ev = event_new(sim->svc->base, -1, EV_PERSIST, on_fault_check, d);
	if (d->tick_ev == NULL || d->fault_ev == NULL) {
		devices_free(d);
		return NULL;
	}
	return d;
}

void devices_free(struct devices *d)
{
	if (d == NULL)
		return;
	if (d->tick_ev != NULL)
		event_free(d->tick_ev);
	if (d->fault_ev != NULL)
		event_free(d->fault_ev);
	for (size_t i = 0; i < d->nprofiles; i++)
		profile_free(d->profiles[i]);
	free(d->profiles);
	free(d->devs);
	free(d->faulty);
	idmap_free(d->by_id);
	strbuf_free(&d->buf);
	while (d->inflight != NULL) {
		struct sent *m = d->inflight;
		d->inflight = m->next;
		free(m);
	}
	free(d);
}

/*
 * Simulated engineers and partners: they take offers from
 * sc/v1/engineers/+/orders and sc/v1/partners/+/orders (contract section
 * 2.3) and answer on their events topics, and engineers report their status.
 *
 * An offer is accepted (--accept-pct), left unanswered (--silent-pct) or
 * declined with a reason, after a short thinking time. An accepted job then
 * runs on a plan made at acceptance, in simulated time compressed by
 * --time-scale:
 *   on-site (engineer): preparation, en_route, travel at settings.travel_kmh
 *     over the great-circle distance from where the engineer will be (home,
 *     or the site of its previous job: an engineer works its jobs one after
 *     another), on_site, work, resolved (first_time_fix mostly true);
 *   outsourced (partner): a technician is sent, arriving within the
 *     partner's response_s; partners work their jobs side by side;
 *   remote: a session, then resolved or (REMOTE_UNRESOLVED_PCT) unresolved.
 * The accept carries the planned arrival as eta, which the plan keeps.
 *
 * Order of events: the next event of a job is sent only after the broker
 * acknowledged the previous one, so the platform sees each order's events
 * in order whatever the connection does. A withdrawn order
 * ({"withdrawn": true}) cancels the job: nothing more is sent for it.
 * A resolved job repairs its device's simulated fault (devices_repair).
 *
 * An offer the sim has already handled (a redelivery) is ignored: the ids of
 * the last RECENT_MAX handled orders are remembered.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "domain.h"
#include "json.h"
#include "log.h"
#include "master.h"
#include "mqtt.h"
#include "service.h"
#include "sim.h"
#include "strbuf.h"
#include "timeutil.h"

#define RECENT_MAX 4096
#define ID_MAX 64
#define DEFAULT_TRAVEL_KM 30.0      /* when the offer has no site position */
#define REMOTE_UNRESOLVED_PCT 20.0
#define ONSITE_FIRST_TIME_FIX_PCT 85.0
#define PARTNER_FIRST_TIME_FIX_PCT 80.0
#define REMOTE_FIRST_TIME_FIX_PCT 90.0
#define MIN_DELAY_US 1000           /* timers never fire in the same loop pass */

static const char orders_engineers[] = "sc/v1/engineers/";
static const char orders_partners[] = "sc/v1/partners/";

static const char *const decline_reasons[] = {
	"busy with another job", "outside my area today", "missing spare parts",
	"not qualified for this model", "vehicle unavailable",
};
static const char *const notes_fixed[] = {
	"replaced the faulty module", "re-terminated the CT circuit", "firmware updated",
	"recalibrated and tested", "cleaned the cooling fans", "replaced the DC supply card",
	"tightened loose terminals", "settings corrected and verified",
};
static const char *const technicians[] = {
	"Gao Feng", "Lin Hui", "He Jun", "Luo Bin", "Song Jie", "Tang Yu", "Han Bo", "Feng Lei",
	"Deng Qian", "Cao Rui", "Peng Hao", "Xie Ming",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum job_step {
	STEP_REPLY,   /* thinking about the offer */
	STEP_WAIT,    /* accepted: preparing, or waiting for the previous job */
	STEP_TRAVEL,  /* en_route sent */
	STEP_WORK,    /* on_site sent, or in a remote session */
};

struct actor;

struct job {
	struct job *next;          /* in the actor's list */
	struct actor *actor;
	char order_id[ID_MAX + 1];
	char device_id[ID_MAX + 1]; /* "" when the offer named none */
	enum mode mode;
	bool accept;               /* decided when the offer came */
	enum job_step step;
	bool sending;              /* an event is in flight: its callback moves on */
	bool cancelled;            /* withdrawn or stopped: freed once not sending */
	bool has_site;
	double lat, lon;           /* the site */
	int64_t leave_us;          /* plan, wall clock: en_route (remote: session start) */
	int64_t arrive_us;         /* on_site (the eta) */
	int64_t done_us;           /* resolved / unresolved */
	char technician[48];       /* partners */
	struct event *timer;
};

struct actor {
	struct actors *owner;
	const char *id;
	bool partner;
	bool remote;               /* a remote-support engineer */
	double response_s;         /* partners: promised response time */
	bool has_pos;
	double lat, lon;           /* where it is now */
	bool plan_has_pos;
	double plan_lat, plan_lon; /* where it will be after its planned jobs */
	int64_t free_at_us;        /* when its planned on-site jobs end */
	struct job *jobs;
	bool status_busy;          /* last status sent */
	bool status_sent;
};

struct actors {
	struct sim *sim;
	struct actor *list;
	size_t n;
	struct idmap *engineers, *partners; /* id -> struct actor */
	struct sim_rng rng;
	bool started, stopped;
	char (*recent)[ID_MAX + 1];  /* ring of handled order ids */
	size_t recent_next;
	size_t njobs;
	struct strbuf buf;
};

/* ---- small helpers --------------------------------------------------------- */

static void recent_add(struct actors *a, const char *order_id)
{
	snprintf(a->recent[a->recent_next], ID_MAX + 1, "%s", order_id);
	a->recent_next = (a->recent_next + 1) % RECENT_MAX;
}

static bool recent_has(const struct actors *a, const char *order_id)
{
	for (size_t i = 0; i < RECENT_MAX; i++)
		if (a->recent[i][0] != '\0' && strcmp(a->recent[i], order_id) == 0)
			return true;
	return false;
}

static struct job *job_find(struct actor *ac, const char *order_id)
{
	for (struct job *j = ac->jobs; j != NULL; j = j->next)
		if (strcmp(j->order_id, order_id) == 0)
			return j;
	return NULL;
}

/* Real microseconds for `sim_s` simulated seconds. */
static int64_t scaled_us(const struct actors *a, double sim_s)
{
	double us = sim_s / a->sim->opts.time_scale * 1e6;
	return us < MIN_DELAY_US ? MIN_DELAY_US : (int64_t)us;
}

static void timer_at(struct job *j, int64_t wall_us)
{
	int64_t d = wall_us - time_now_us();
	if (d < MIN_DELAY_US)
		d = MIN_DELAY_US;
	struct timeval tv = { (time_t)(d / 1000000), (suseconds_t)(d % 1000000) };
	evtimer_add(j->timer, &tv);
}

static const char *topic_kind(const struct actor *ac)
{
	return ac->partner ? "partners" : "engineers";
}

/* Unlinks and frees. */
static void job_destroy(struct job *j)
{
	struct actor *ac = j->actor;
	for (struct job **p = &ac->jobs; *p != NULL; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			break;
		}
	}
	ac->owner->njobs--;
	recent_add(ac->owner, j->order_id);
	event_free(j->timer);
	free(j);
}

/* Ends a job now, or once its event in flight is acknowledged. */
static void job_cancel(struct job *j)
{
	evtimer_del(j->timer);
	j->cancelled = true;
	if (!j->sending)
		job_destroy(j);
}

/* ---- status ------------------------------------------------------------ */

/*
 * An engineer is busy while it travels, works on site or holds a remote
 * session, available otherwise (accepted jobs waiting their turn do not
 * count). Sent when that or the position changes.
 */
static void status_update(struct actor *ac, bool moved)
{
	struct actors *a = ac->owner;
	if (ac->partner)
		return;
	bool busy = false;
	for (struct job *j = ac->jobs; j != NULL; j = j->next)
		if (!j->cancelled && (j->step == STEP_TRAVEL || j->step == STEP_WORK))
			busy = true;
	if (ac->status_sent && busy == ac->status_busy && !moved)
		return;
	char ts[TIME_RFC3339_LEN], topic[128];
	struct strbuf *b = &a->buf;
	strbuf_reset(b);
	strbuf_printf(b, "{\"ts\":\"%s\",\"state\":\"%s\"",
		      time_format_rfc3339(time_now_us(), ts, sizeof(ts)), busy ? "busy" : "available");
	if (ac->has_pos)
		strbuf_printf(b, ",\"lat\":%.5f,\"lon\":%.5f", ac->lat, ac->lon);
	strbuf_putc(b, '}');
	snprintf(topic, sizeof(topic), "sc/v1/engineers/%s/status", ac->id);
	if (!strbuf_ok(b) || pub_send(a->sim->pub, topic, b->data, "status", ts, NULL, NULL) != 0) {
		log_error("cannot send status: out of memory engineer=%s", ac->id);
		return;
	}
	ac->status_sent = true;
	ac->status_busy = busy;
}

/* ---- events ---------------------------------------------------------------- */

static void on_event_sent(void *arg);

/*
 * Sends `event` for the job with ts now, the eta when given (>0), and the
 * JSON members in `extra` (may be NULL: e.g. ,"reason":"..."). The job moves
 * on in on_event_sent(). Returns 0 or -1 (out of memory; logged).
 */
static int send_event(struct job *j, const char *event, int64_t eta_us, const char *extra)
{
	struct actors *a = j->actor->owner;
	char ts[TIME_RFC3339_LEN], eta[TIME_RFC3339_LEN], topic[160];
	struct strbuf *b = &a->buf;
	strbuf_reset(b);
	strbuf_puts(b, "{\"order_id\":");
	strbuf_json_str(b, j->order_id);
	strbuf_printf(b, ",\"event\":\"%s\",\"ts\":\"%s\"", event,
		      time_format_rfc3339(time_now_us(), ts, sizeof(ts)));
	if (eta_us > 0)
		strbuf_printf(b, ",\"eta\":\"%s\"", time_format_rfc3339(eta_us, eta, sizeof(eta)));
	if (j->technician[0] != '\0') {
		strbuf_puts(b, ",\"technician\":");
		strbuf_json_str(b, j->technician);
	}
	if (extra != NULL)
		strbuf_puts(b, extra);
	strbuf_putc(b, '}');
	snprintf(topic, sizeof(topic), "sc/v1/%s/%s/events", topic_kind(j->actor), j->actor->id);
	/* An event is identified by (order, event, ts): contract section 2.6. */
	char key[256];
	snprintf(key, sizeof(key), "%s/%s/%s", j->order_id, event, ts);
	if (!strbuf_ok(b) ||
	    pub_send(a->sim->pub, topic, b->data, "event", key, on_event_sent, j) != 0) {
		log_error("cannot send an order event: out of memory order=%s event=%s",
			  j->order_id, event);
		return -1;
	}
	j->sending = true;
	log_debug("order event sent order=%s %s=%s event=%s", j->order_id,
		  j->actor->partner ? "partner" : "engineer", j->actor->id, event);
	return 0;
}

/* Plans an accepted job: when it leaves, arrives and ends (wall clock). */
static void job_plan(struct actors *a, struct job *j)
{
	struct actor *ac = j->actor;
	int64_t now = time_now_us();
	if (j->mode == MODE_REMOTE) {
		j->leave_us = now + scaled_us(a, sim_rng_uniform(&a->rng, 2, 10) * 60);
		j->arrive_us = j->leave_us;
		j->done_us = j->leave_us + scaled_us(a, sim_rng_uniform(&a->rng, 15, 60) * 60);
		return;
	}
	double km = DEFAULT_TRAVEL_KM;
	if (ac->partner) {
		/* A technician of the partner's, within its promised response time. */
		j->leave_us = now + scaled_us(a, sim_rng_uniform(&a->rng, 5, 30) * 60);
		j->arrive_us = j->leave_us +
			       scaled_us(a, ac->response_s * sim_rng_uniform(&a->rng, 0.3, 0.9));
		j->done_us = j->arrive_us + scaled_us(a, sim_rng_uniform(&a->rng, 30, 150) * 60);
		return;
	}
	/* One job after another, from where the previous one leaves it. */
	int64_t start = ac->free_at_us > now ? ac->free_at_us : now;
	if (j->has_site && ac->plan_has_pos)
		km = sim_haversine_km(ac->plan_lat, ac->plan_lon, j->lat, j->lon);
	double travel_s = km / a->sim->world->travel_kmh * 3600.0;
	j->leave_us = start + scaled_us(a, sim_rng_uniform(&a->rng, 5, 20) * 60);
	j->arrive_us = j->leave_us + scaled_us(a, travel_s);
	j->done_us = j->arrive_us + scaled_us(a, sim_rng_uniform(&a->rng, 20, 120) * 60);
	ac->free_at_us = j->done_us;
	if (j->has_site) {
		ac->plan_has_pos = true;
		ac->plan_lat = j->lat;
		ac->plan_lon = j->lon;
	}
}

static void job_finish(struct job *j)
{
	struct actor *ac = j->actor;
	j->cancelled = true; /* so status_update no longer counts it */
	status_update(ac, false);
	job_destroy(j);
}

/* The previous event was acknowledged: schedule the next step. */
static void on_event_sent(void *arg)
{
	struct job *j = arg;
	struct actor *ac = j->actor;
	struct actors *a = ac->owner;
	j->sending = false;
	if (j->cancelled) {
		job_destroy(j);
		return;
	}
	switch (j->step) {
	case STEP_REPLY:
		if (!j->accept) {
			job_finish(j);
			return;
		}
		if (j->mode == MODE_REMOTE) {
			j->step = STEP_WORK;
			status_update(ac, false);
			timer_at(j, j->done_us);
		} else {
			j->step = STEP_WAIT;
			timer_at(j, j->leave_us);
		}
		return;
	case STEP_WAIT:
		j->step = STEP_TRAVEL;
		status_update(ac, false);
		timer_at(j, j->arrive_us);
		return;
	case STEP_TRAVEL:
		j->step = STEP_WORK;
		if (j->has_site) {
			ac->has_pos = true;
			ac->lat = j->lat;
			ac->lon = j->lon;
		}
		status_update(ac, j->has_site);
		timer_at(j, j->done_us);
		return;
	case STEP_WORK:
		if (j->device_id[0] != '\0')
			devices_repair(a->sim->devices, j->device_id);
		job_finish(j);
		return;
	}
}

static void on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct actors *a = j->actor->owner;
	char extra[256];
	int rc = 0;
	switch (j->step) {
	case STEP_REPLY:
		if (!j->accept) {
			snprintf(extra, sizeof(extra), ",\"reason\":\"%s\"",
				 decline_reasons[sim_rng_index(&a->rng, COUNT(decline_reasons))]);
			a->sim->stats.offers_declined++;
			rc = send_event(j, "decline", 0, extra);
			break;
		}
		job_plan(a, j);
		if (j->actor->partner && j->mode != MODE_REMOTE)
			snprintf(j->technician, sizeof(j->technician), "%s",
				 technicians[sim_rng_index(&a->rng, COUNT(technicians))]);
		a->sim->stats.offers_accepted++;
		rc = send_event(j, "accept", j->arrive_us, NULL);
		break;
	case STEP_WAIT:
		rc = send_event(j, "en_route", j->arrive_us, NULL);
		break;
	case STEP_TRAVEL:
		rc = send_event(j, "on_site", j->arrive_us, NULL);
		break;
	case STEP_WORK: {
		const char *note = notes_fixed[sim_rng_index(&a->rng, COUNT(notes_fixed))];
		if (j->mode == MODE_REMOTE && sim_rng_chance(&a->rng, REMOTE_UNRESOLVED_PCT)) {
			a->sim->stats.jobs_unresolved++;
			rc = send_event(j, "unresolved", 0,
					",\"notes\":\"remote session could not fix it: needs a visit\"");
			break;
		}
		double ftf_pct = j->mode == MODE_REMOTE ? REMOTE_FIRST_TIME_FIX_PCT
			       : j->actor->partner   ? PARTNER_FIRST_TIME_FIX_PCT
						     : ONSITE_FIRST_TIME_FIX_PCT;
		snprintf(extra, sizeof(extra), ",\"first_time_fix\":%s,\"notes\":\"%s\"",
			 sim_rng_chance(&a->rng, ftf_pct) ? "true" : "false", note);
		a->sim->stats.jobs_resolved++;
		rc = send_event(j, "resolved", 0, extra);
		break;
	}
	}
	if (rc != 0)
		job_finish(j); /* out of memory: drop the job rather than stall it */
}

/* ---- offers ---------------------------------------------------------------- */

/* The actor named by an orders topic, or NULL. */
static struct actor *actor_of_topic(struct actors *a, const char *topic)
{
	const char *rest;
	struct idmap *map;
	if (strncmp(topic, orders_engineers, sizeof(orders_engineers) - 1) == 0) {
		rest = topic + sizeof(orders_engineers) - 1;
		map = a->engineers;
	} else if (strncmp(topic, orders_partners, sizeof(orders_partners) - 1) == 0) {
		rest = topic + sizeof(orders_partners) - 1;
		map = a->partners;
	} else {
		return NULL;
	}
	const char *slash = strchr(rest, '/');
	if (slash == NULL || strcmp(slash, "/orders") != 0 || slash == rest ||
	    slash - rest > ID_MAX)
		return NULL;
	char id[ID_MAX + 1];
	memcpy(id, rest, (size_t)(slash - rest));
	id[slash - rest] = '\0';
	void *found = NULL;
	return idmap_find(map, id, &found) ? found : NULL;
}

/* Fills the job from the offer. 0, or -1 when the offer is unusable. */
static int offer_read(struct job *j, const cJSON *root, struct json_err *e)
{
	const char *mode = NULL, *device = NULL;
	const cJSON *site = NULL, *dev = NULL;
	if (json_get_str(root, "mode", 0, 32, &mode, e) < 0 ||
	    json_get_object(root, "site", 0, &site, e) < 0 ||
	    json_get_object(root, "device", 0, &dev, e) < 0)
		return -1;
	enum mode m;
	if (mode != NULL && mode_parse(mode, &m) == 0)
		j->mode = m;
	else
		j->mode = j->actor->partner ? MODE_OUTSOURCED
			  : j->actor->remote ? MODE_REMOTE : MODE_ONSITE;
	double lat, lon;
	if (site != NULL && json_get_num(site, "lat", JSON_REQUIRED, &lat, e) == 0 &&
	    json_get_num(site, "lon", JSON_REQUIRED, &lon, e) == 0) {
		j->has_site = true;
		j->lat = lat;
		j->lon = lon;
	}
	if (dev != NULL && json_get_str(dev, "id", JSON_ID, ID_MAX, &device, e) == 0 && device)
		snprintf(j->device_id, sizeof(j->device_id), "%s", device);
	return 0;
}

static void on_offer(struct actors *a, struct actor *ac, const cJSON *root, const char *order_id)
{
	struct job *j = NULL;
	struct json_err e;
	int64_t expires = 0;
	if (job_find(ac, order_id) != NULL || recent_has(a, order_id))
		return; /* a redelivery */
	a->sim->stats.offers_received++;
	if (json_get_time(root, "offer_expires_at", 0, &expires, &e) == 0 &&
	    expires <= time_now_us()) {
		log_debug("offer arrived expired: ignored order=%s", order_id);
		a->sim->stats.offers_silent++;
		recent_add(a, order_id);
		return;
	}
	double roll = sim_rng_unit(&a->rng) * 100.0;
	const struct sim_opts *o = &a->sim->opts;
	if (roll >= o->accept_pct && roll < o->accept_pct + o->silent_pct) {
		log_debug("offer left unanswered order=%s actor=%s", order_id, ac->id);
		a->sim->stats.offers_silent++;
		recent_add(a, order_id);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->timer = evtimer_new(a->sim->svc->base, on_job_timer, j)) == NULL) {
		log_error("cannot take an offer: out of memory order=%s", order_id);
		free(j);
		return;
	}
	j->actor = ac;
	j->accept = roll < o->accept_pct;
	snprintf(j->order_id, sizeof(j->order_id), "%s", order_id);
	if (offer_read(j, root, &e) != 0) {
		log_warn("offer unusable: %s order=%s", e.detail, order_id);
		event_free(j->timer);
		free(j);
		recent_add(a, order_id);
		return;
	}
	j->next = ac->jobs;
	ac->jobs = j;
	a->njobs++;
	/* Thinking time: 10 to 90 simulated seconds. */
	struct timeval tv;
	int64_t d = scaled_us(a, sim_rng_uniform(&a->rng, 10, 90));
	tv.tv_sec = (time_t)(d / 1000000);
	tv.tv_usec = (suseconds_t)(d % 1000000);
	evtimer_add(j->timer, &tv);
	log_debug("offer received order=%s actor=%s mode=%s answer=%s", order_id, ac->id,
		  mode_name(j->mode), j->accept ? "accept" : "decline");
}

void actors_on_message(struct actors *a, const char *topic, const char *payload, size_t len)
{
	struct json_err e;
	const char *order_id = NULL;
	bool withdrawn = false;
	if (a == NULL || !a->started || a->stopped)
		return;
	struct actor *ac = actor_of_topic(a, topic);
	if (ac == NULL) {
		log_debug("message for nobody we play: ignored topic=%s", topic);
		return;
	}
	cJSON *root = json_parse_object(payload, len, &e);
	if (root == NULL || json_get_str(root, "order_id", JSON_REQUIRED | JSON_ID, ID_MAX,
					 &order_id, &e) != 0 ||
	    json_get_bool(root, "withdrawn", 0, &withdrawn, &e) < 0) {
		log_warn("offer unreadable: %s: %s topic=%s", e.reason, e.detail, topic);
		goto out;
	}
	if (withdrawn) {
		struct job *j = job_find(ac, order_id);
		a->sim->stats.offers_withdrawn++;
		if (j != NULL && !j->cancelled) {
			log_debug("order withdrawn: job cancelled order=%s actor=%s", order_id, ac->id);
			job_cancel(j);
			status_update(ac, false);
		} else {
			recent_add(a, order_id);
		}
		goto out;
	}
	on_offer(a, ac, root, order_id);
out:
	cJSON_Delete(root);
}

/* ---- lifecycle ----------------------------------------------------------- */

int actors_subscribe(struct actors *a)
{
	if (service_subscribe(a->sim->svc, "sc/v1/engineers/+/orders", 1) != 0 ||
	    service_subscribe(a->sim->svc, "sc/v1/partners/+/orders", 1) != 0)
		return -1;
	return 0;
}

int actors_start(struct actors *a)
{
	const struct world *w = a->sim->world;
	a->n = w->nengineers + w->npartners;
	a->list = calloc(a->n > 0 ? a->n : 1, sizeof(*a->list));
	a->engineers = idmap_new();
	a->partners = idmap_new();
	if (a->list == NULL || a->engineers == NULL || a->partners == NULL)
		return -1;
	for (size_t i = 0; i < w->nengineers; i++) {
		const struct world_engineer *we = &w->engineers[i];
		struct actor *ac = &a->list[i];
		ac->owner = a;
		ac->id = we->id;
		ac->remote = we->remote;
		ac->has_pos = ac->plan_has_pos = we->has_home;
		ac->lat = ac->plan_lat = we->lat;
		ac->lon = ac->plan_lon = we->lon;
		if (idmap_add(a->engineers, we->id, ac) != 0)
			return -1;
	}
	for (size_t i = 0; i < w->npartners; i++) {
		const struct world_partner *wp = &w->partners[i];
		struct actor *ac = &a->list[w->nengineers + i];
		ac->owner = a;
		ac->id = wp->id;
		ac->partner = true;
		ac->response_s = wp->response_s;
		if (idmap_add(a->partners, wp->id, ac) != 0)
			return -1;
	}
	idmap_seal(a->engineers);
	idmap_seal(a->partners);
	a->started = true;
	/*
	 * Without a status an engineer counts as available at home during its
	 * shift (contract section 6), which is how every simulated engineer
	 * starts. One that still has a status from an earlier run (busy on a job
	 * this run knows nothing of, somewhere else) is reset to that. Sent once
	 * connected (publish.c).
	 */
	for (size_t i = 0; i < w->nengineers; i++)
		if (w->engineers[i].has_status)
			status_update(&a->list[i], false);
	return 0;
}

void actors_stop(struct actors *a)
{
	if (a == NULL || a->stopped)
		return;
	a->stopped = true;
	for (size_t i = 0; i < a->n; i++) {
		struct job *j = a->list[i].jobs;
		while (j != NULL) {
			struct job *next = j->next;
			if (!j->cancelled) {
				if (j->step != STEP_REPLY)
					a->sim->stats.jobs_abandoned++;
				job_cancel(j);
			}
			j = next;
		}
	}
}

size_t actors_jobs(const struct actors *a)
{
	return a != NULL ? a->njobs : 0;
}

struct actors *actors_new(struct sim *sim)
{
	struct actors *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->sim = sim;
	a->recent = calloc(RECENT_MAX, sizeof(*a->recent));
	if (a->recent == NULL) {
		free(a);
		return NULL;
	}
	sim_rng_init(&a->rng, sim->opts.seed, SIM_STREAM_ACTORS);
	strbuf_init(&a->buf);
	return a;
}

void actors_free(struct actors *a)
{
	if (a == NULL)
		return;
	/* The loop has stopped: no publish callback can refer to a job now. */
	for (size_t i = 0; i < a->n; i++) {
		while (a->list[i].jobs != NULL)
			job_destroy(a->list[i].jobs);
	}
	free(a->list);
	idmap_free(a->engineers);
	idmap_free(a->partners);
	free(a->recent);
	strbuf_free(&a->buf);
	free(a);
}

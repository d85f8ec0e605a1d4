/*
 * Offers and their expiry.
 *
 * A sweep's offers go in batches (offers_send_batch: sc_dispatch_offer_many,
 * one statement and one commit for up to OFFER_BATCH offers, set-based
 * since schema/025_dispatch_offer_set.sql): it locks the batch's tickets
 * (still `new`?) and then its engineers' and partners' rows (capacity
 * left?) before it writes the orders and their outbox events, so two
 * instances neither offer one ticket twice nor overbook one engineer. A
 * row another transaction holds is skipped (`busy`), never waited for.
 *
 * Expiry: one libevent timer per open offer, due at offer_expires_at, in a
 * hash table by order id. Timers come from our own offers, from all open
 * offers loaded after every database (re)connect, and from every sweep's
 * snapshot (offers another instance made). When one fires, sc_dispatch_expire
 * expires the order if it is still open and due by the database's clock
 * (the ticket goes back to `new`, or to `manual` after max_offer_attempts);
 * an offer not yet due there (clock skew) is re-armed, an answered one is
 * dropped. Instances that both hold a timer for one offer both call it; the
 * function is idempotent, so one of them expires it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "timeutil.h"
#include "topic.h"

/* Fire a little after the deadline: the database decides by its clock. */
#define EXPIRE_SLACK_US 50000
/* Least delay of a re-armed timer (clock skew, retry after an error). */
#define REARM_MIN_US 200000
#define RETRY_US 1000000

struct offer_timer {
	struct offer_timer *next;      /* hash chain */
	struct dispatch *d;
	struct event *ev;
	char id[TOPIC_ID_MAX + 1];
	enum mode mode;
	int64_t expires_us;            /* wall clock */
	bool mine;                     /* this instance made the offer */
	bool firing;                   /* sc_dispatch_expire in flight */
	bool forgotten;                /* answered while firing: drop on return */
};

struct offers {
	struct offer_timer **buckets;
	size_t nbuckets;
	size_t count;
};

/* What a manual-queue statement needs back in its callback. */
struct offer_job {
	struct dispatch *d;
	char ticket[TOPIC_ID_MAX + 1];
};

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct offer_timer **slot_of(struct offers *o, const char *id)
{
	struct offer_timer **p = &o->buckets[hash(id) & (o->nbuckets - 1)];
	while (*p != NULL && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

/* Doubles the table when chains grow long; on failure keeps the old one. */
static void grow(struct offers *o)
{
	size_t n = o->nbuckets * 2;
	struct offer_timer **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < o->nbuckets; i++) {
		struct offer_timer *t = o->buckets[i], *next;
		for (; t != NULL; t = next) {
			next = t->next;
			size_t k = hash(t->id) & (n - 1);
			t->next = b[k];
			b[k] = t;
		}
	}
	free(o->buckets);
	o->buckets = b;
	o->nbuckets = n;
}

static void timer_remove(struct dispatch *d, struct offer_timer *t)
{
	struct offers *o = d->offers;
	struct offer_timer **p = slot_of(o, t->id);
	if (*p == t) {
		*p = t->next;
		o->count--;
	}
	event_free(t->ev);
	free(t);
}

static void arm(struct offer_timer *t, int64_t min_us)
{
	int64_t delay = t->expires_us + EXPIRE_SLACK_US - time_now_us();
	if (delay < min_us)
		delay = min_us;
	struct timeval tv = { (time_t)(delay / 1000000), (suseconds_t)(delay % 1000000) };
	evtimer_add(t->ev, &tv);
}

static void on_expired(void *arg, const struct db_reply *r)
{
	struct offer_timer *t = arg;
	struct dispatch *d = t->d;
	t->firing = false;
	if (r->error != NULL) {
		log_error("offer expiry failed: %s order=%s", r->error, t->id);
		if (t->forgotten)
			timer_remove(d, t);
		else
			arm(t, RETRY_US);
		return;
	}
	/* No row: the order does not exist (any more). */
	const char *state = PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 1)
			    ? PQgetvalue(r->res, 0, 1) : NULL;
	bool expired = state != NULL && strcmp(PQgetvalue(r->res, 0, 0), "t") == 0;
	if (expired) {
		log_info("offer expired order=%s mode=%s", t->id, mode_name(t->mode));
		dispatch_count(d, t->mode, DISPATCH_EXPIRED);
		timer_remove(d, t);
		/* The ticket is new again (or manual) and a unit of capacity is free. */
		sweep_request(d);
		return;
	}
	if (state != NULL && strcmp(state, "offered") == 0 && !t->forgotten) {
		/* Not yet due by the database's clock, or extended: wait again. */
		t->expires_us = strtoll(PQgetvalue(r->res, 0, 3), NULL, 10);
		arm(t, REARM_MIN_US);
		return;
	}
	if (state != NULL && strcmp(state, "withdrawn") == 0 && t->mine) {
		dispatch_count(d, t->mode, DISPATCH_WITHDRAWN);
		sweep_request(d);
	}
	timer_remove(d, t);
}

static void on_fire(evutil_socket_t fd, short what, void *arg)
{
	struct offer_timer *t = arg;
	const char *params[1] = { t->id };
	t->firing = true;
	if (db_exec_prepared(t->d->svc->db, "dispatch_expire", 1, params, on_expired, t) != 0) {
		t->firing = false;
		arm(t, RETRY_US);
	}
}

void offers_track(struct dispatch *d, const char *order_id, enum mode mode, int64_t expires_us,
		  bool mine)
{
	struct offers *o = d->offers;
	if (strlen(order_id) > TOPIC_ID_MAX)
		return;
	struct offer_timer **p = slot_of(o, order_id);
	if (*p != NULL) {
		struct offer_timer *t = *p;
		t->mine = t->mine || mine;
		if (!t->firing && !t->forgotten && t->expires_us != expires_us) {
			t->expires_us = expires_us;
			arm(t, 0);
		}
		return;
	}
	struct offer_timer *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		/* The next sweep's snapshot offers it again. */
		log_error("offer timer not made: out of memory order=%s", order_id);
		return;
	}
	t->d = d;
	t->mode = mode;
	t->expires_us = expires_us;
	t->mine = mine;
	snprintf(t->id, sizeof(t->id), "%s", order_id);
	t->ev = evtimer_new(d->svc->base, on_fire, t);
	if (t->ev == NULL) {
		log_error("offer timer not made: out of memory order=%s", order_id);
		free(t);
		return;
	}
	*p = t;
	o->count++;
	arm(t, 0);
	if (o->count > 2 * o->nbuckets)
		grow(o);
}

void offers_forget(struct dispatch *d, const char *order_id)
{
	struct offer_timer *t = *slot_of(d->offers, order_id);
	if (t == NULL)
		return;
	if (t->firing)
		t->forgotten = true;
	else
		timer_remove(d, t);
}

static void on_open_offers(void *arg, const struct db_reply *r)
{
	struct dispatch *d = arg;
	if (r->error != NULL) {
		/* Every sweep's snapshot brings them too. */
		log_error("open offers not loaded: %s", r->error);
		return;
	}
	int n = PQntuples(r->res);
	for (int i = 0; i < n; i++) {
		enum mode m;
		if (mode_parse(PQgetvalue(r->res, i, 1), &m) != 0)
			continue;
		offers_track(d, PQgetvalue(r->res, i, 0), m,
			     strtoll(PQgetvalue(r->res, i, 2), NULL, 10), false);
	}
	log_info("open offers loaded count=%d", n);
}

static void on_connect(void *arg)
{
	struct dispatch *d = arg;
	if (db_exec_prepared(d->svc->db, "dispatch_open_offers", 0, NULL, on_open_offers, d) != 0)
		log_error("open offers not loaded: out of memory");
}

/* What a batch statement needs back: the modes by ticket, in order. */
struct batch_job {
	struct dispatch *d;
	size_t n;
	enum mode *modes;
};

/* One row of sc_dispatch_offer_many. Returns true when the sweep should
 * plan again. */
static bool offered_row(struct dispatch *d, const PGresult *res, int i, enum mode mode)
{
	const char *ticket = PQgetvalue(res, i, 0), *result = PQgetvalue(res, i, 1);
	if (strcmp(result, "offered") == 0) {
		const char *order = PQgetvalue(res, i, 2);
		int64_t expires = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		int64_t ready = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		log_debug("offer made ticket=%s order=%s mode=%s", ticket, order, mode_name(mode));
		dispatch_count(d, mode, DISPATCH_OFFERED);
		metric_observe(d->decision_seconds, (double)(time_now_us() - ready) / 1e6);
		offers_track(d, order, mode, expires, true);
		return false;
	}
	if (strcmp(result, "taken") == 0) {
		log_debug("offer skipped: ticket no longer new ticket=%s", ticket);
		return false;
	}
	if (strcmp(result, "busy") == 0) {
		/* Ticket or receiver locked by another transaction (another
		 * instance's batch, an event): that one is making progress; the
		 * ticket, if still new, comes back in a later sweep. Planning
		 * again at once would only spin while the lock is held. */
		log_debug("offer skipped: locked elsewhere ticket=%s", ticket);
		return false;
	}
	/* full, unknown: decide again on fresh data. */
	log_info("offer refused: %s ticket=%s", result, ticket);
	return true;
}

static void on_batch(void *arg, const struct db_reply *r)
{
	struct batch_job *j = arg;
	struct dispatch *d = j->d;
	bool again = false;
	size_t made = 0;
	if (r->error != NULL) {
		log_error("offers failed: %s count=%zu", r->error, j->n);
		again = true;
		goto out;
	}
	for (int i = 0; i < PQntuples(r->res) && (size_t)i < j->n; i++) {
		again = offered_row(d, r->res, i, j->modes[i]) || again;
		made += strcmp(PQgetvalue(r->res, i, 1), "offered") == 0;
	}
	log_info("offers made count=%zu of=%zu", made, j->n);
out:
	free(j->modes);
	free(j);
	sweep_decision_done(d, again);
}

int offers_send_batch(struct dispatch *d, size_t n, const char *const *tickets,
		      const char *const *engineers, const char *const *partners,
		      const enum mode *modes)
{
	struct batch_job *j = calloc(1, sizeof(*j));
	cJSON *arr = cJSON_CreateArray();
	char *text = NULL;
	int rc = -1;
	if (j == NULL || arr == NULL || (j->modes = malloc(n * sizeof(*j->modes))) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		if (o == NULL || !cJSON_AddItemToArray(arr, o) ||
		    cJSON_AddStringToObject(o, "ticket", tickets[i]) == NULL ||
		    cJSON_AddStringToObject(o, "mode", mode_name(modes[i])) == NULL ||
		    (engineers[i] != NULL && cJSON_AddStringToObject(o, "engineer", engineers[i]) == NULL) ||
		    (partners[i] != NULL && cJSON_AddStringToObject(o, "partner", partners[i]) == NULL))
			goto out;
		j->modes[i] = modes[i];
	}
	text = cJSON_PrintUnformatted(arr);
	if (text == NULL)
		goto out;
	j->d = d;
	j->n = n;
	const char *params[1] = { text };
	if (db_exec_prepared(d->svc->db, "dispatch_offer_many", 1, params, on_batch, j) != 0)
		goto out;
	j = NULL;
	rc = 0;
out:
	if (j != NULL)
		free(j->modes);
	free(j);
	free(text);
	cJSON_Delete(arr);
	return rc;
}

static void on_manual(void *arg, const struct db_reply *r)
{
	struct offer_job *j = arg;
	struct dispatch *d = j->d;
	if (r->error != NULL)
		log_error("manual queue move failed: %s ticket=%s", r->error, j->ticket);
	else if (PQntuples(r->res) == 1 && strcmp(PQgetvalue(r->res, 0, 0), "t") == 0)
		log_info("ticket to manual queue: nobody qualifies ticket=%s", j->ticket);
	free(j);
	sweep_decision_done(d, false);
}

int offers_manual(struct dispatch *d, const char *ticket, const char *reason)
{
	struct offer_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -1;
	j->d = d;
	snprintf(j->ticket, sizeof(j->ticket), "%s", ticket);
	const char *params[2] = { ticket, reason };
	if (db_exec_prepared(d->svc->db, "dispatch_manual", 2, params, on_manual, j) != 0) {
		free(j);
		return -1;
	}
	return 0;
}

int offers_init(struct dispatch *d)
{
	struct db *db = d->svc->db;
	struct offers *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -1;
	d->offers = o;
	o->nbuckets = 1024;
	o->buckets = calloc(o->nbuckets, sizeof(*o->buckets));
	if (o->buckets == NULL ||
	    db_prepare(db, "dispatch_offer_many",
		       "SELECT ticket_id, result, order_id, offer_expires_us, ready_us"
		       " FROM sc_dispatch_offer_many($1::jsonb, '" DISPATCH_PROGRAM "')", 1) != 0 ||
	    db_prepare(db, "dispatch_manual",
		       "SELECT sc_dispatch_manual($1, $2, '" DISPATCH_PROGRAM "')", 2) != 0 ||
	    db_prepare(db, "dispatch_expire",
		       "SELECT expired, state, mode, offer_expires_us FROM sc_dispatch_expire($1)", 1) != 0 ||
	    db_prepare(db, "dispatch_open_offers",
		       "SELECT id, mode, sc_epoch_us(offer_expires_at) FROM work_order"
		       " WHERE state = 'offered'", 0) != 0 ||
	    db_on_connect(db, on_connect, d) != 0)
		return -1;
	return 0;
}

void offers_free(struct dispatch *d)
{
	struct offers *o = d->offers;
	if (o == NULL)
		return;
	for (size_t i = 0; o->buckets != NULL && i < o->nbuckets; i++) {
		struct offer_timer *t = o->buckets[i], *next;
		for (; t != NULL; t = next) {
			next = t->next;
			event_free(t->ev);
			free(t);
		}
	}
	free(o->buckets);
	free(o);
	d->offers = NULL;
}

/*
 * Messages the simulation must not lose (order events, engineer status,
 * customer requests): published at QoS 1 and retried until the broker
 * acknowledged them. Telemetry does not come here: a real device that is
 * offline skips its samples, and devices.c does the same.
 *
 * Ordering: nothing here orders messages against each other. Where order
 * matters (the events of one order) the caller sends the next message only
 * from the previous one's done callback.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "mqtt.h"
#include "service.h"
#include "sim.h"

#define PUB_RETRY_MS 500

struct pub_item {
	struct pub_item *next;   /* in the waiting list */
	struct pub *pub;
	char *topic;
	char *payload;
	char *kind;              /* reported to mischief_acked(); NULL: not */
	char *key;
	pub_done_cb cb;
	void *arg;
};

struct pub {
	struct sim *sim;
	struct pub_item *wait_head, *wait_tail; /* not handed to the client yet */
	size_t pending;          /* items alive: waiting or in flight */
	struct event *retry_ev;
	/*
	 * Items in flight belong to the MQTT client's callback until it runs.
	 * pub_free() cannot reach them; they are tracked here so it can free
	 * them (the loop no longer runs then, so no callback can follow).
	 */
	struct pub_item **flight;
	size_t nflight, capflight;
};

static void item_free(struct pub_item *it)
{
	if (it == NULL)
		return;
	free(it->topic);
	free(it->payload);
	free(it->kind);
	free(it->key);
	free(it);
}

static void flight_remove(struct pub *p, struct pub_item *it)
{
	for (size_t i = 0; i < p->nflight; i++) {
		if (p->flight[i] == it) {
			p->flight[i] = p->flight[--p->nflight];
			return;
		}
	}
}

static int flight_add(struct pub *p, struct pub_item *it)
{
	if (p->nflight == p->capflight) {
		size_t cap = p->capflight ? p->capflight * 2 : 64;
		struct pub_item **f = realloc(p->flight, cap * sizeof(*f));
		if (f == NULL)
			return -1;
		p->flight = f;
		p->capflight = cap;
	}
	p->flight[p->nflight++] = it;
	return 0;
}

static void wait_push(struct pub *p, struct pub_item *it)
{
	it->next = NULL;
	if (p->wait_tail != NULL)
		p->wait_tail->next = it;
	else
		p->wait_head = it;
	p->wait_tail = it;
	if (!evtimer_pending(p->retry_ev, NULL)) {
		struct timeval tv = { 0, PUB_RETRY_MS * 1000 };
		evtimer_add(p->retry_ev, &tv);
	}
}

static void on_acked(void *arg, int status);

/* Hands it to the client; on refusal it waits for the retry timer. */
static void try_send(struct pub *p, struct pub_item *it)
{
	if (flight_add(p, it) == 0) {
		if (mq_publish(p->sim->svc->mq, it->topic, it->payload, strlen(it->payload), 1, false,
			       on_acked, it) == 0)
			return;
		flight_remove(p, it);
	}
	wait_push(p, it);
}

static void on_acked(void *arg, int status)
{
	struct pub_item *it = arg;
	struct pub *p = it->pub;
	flight_remove(p, it);
	if (status != 0) {
		log_debug("publish failed: retrying status=%d topic=%s", status, it->topic);
		wait_push(p, it);
		return;
	}
	p->pending--;
	p->sim->stats.events_sent++;
	if (it->kind != NULL)
		mischief_acked(p->sim->mischief, it->kind, it->topic, it->key, NULL, it->payload);
	pub_done_cb cb = it->cb;
	void *cb_arg = it->arg;
	item_free(it);
	if (cb != NULL)
		cb(cb_arg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct pub *p = arg;
	struct pub_item *list = p->wait_head;
	p->wait_head = p->wait_tail = NULL;
	while (list != NULL) {
		struct pub_item *it = list;
		list = it->next;
		try_send(p, it);
	}
}

int pub_send(struct pub *p, const char *topic, const char *payload, const char *kind,
	     const char *key, pub_done_cb cb, void *arg)
{
	struct pub_item *it = calloc(1, sizeof(*it));
	if (it == NULL || (it->topic = strdup(topic)) == NULL ||
	    (it->payload = strdup(payload)) == NULL ||
	    (kind != NULL && ((it->kind = strdup(kind)) == NULL ||
			      (it->key = strdup(key != NULL ? key : "")) == NULL))) {
		item_free(it);
		return -1;
	}
	it->pub = p;
	it->cb = cb;
	it->arg = arg;
	p->pending++;
	/* Behind older waiting items, so a reconnect sends them in order. */
	if (p->wait_head != NULL)
		wait_push(p, it);
	else
		try_send(p, it);
	return 0;
}

size_t pub_pending(const struct pub *p)
{
	return p != NULL ? p->pending : 0;
}

struct pub *pub_new(struct sim *sim)
{
	struct pub *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->sim = sim;
	p->retry_ev = evtimer_new(sim->svc->base, on_retry, p);
	if (p->retry_ev == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void pub_free(struct pub *p)
{
	if (p == NULL)
		return;
	event_free(p->retry_ev);
	while (p->wait_head != NULL) {
		struct pub_item *it = p->wait_head;
		p->wait_head = it->next;
		item_free(it);
	}
	for (size_t i = 0; i < p->nflight; i++)
		item_free(p->flight[i]);
	free(p->flight);
	free(p);
}

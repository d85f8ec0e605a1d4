/*
 * The outbox relay (see outbox.h for the guarantee).
 *
 * One batch at a time: read up to OUTBOX_BATCH oldest rows, publish them all
 * in id order (Paho keeps the order on the wire), wait until every publish
 * has an outcome, delete the acknowledged rows, read again. A failed publish
 * (broker away) leaves its row for the next round after a short pause.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"

#define OUTBOX_BATCH 500
#define OUTBOX_RETRY_MS 250
#define OUTBOX_POLL_MS 1000

struct outbox_slot {
	struct outbox *o;
	long long id;
};

struct outbox {
	struct event_base *base;
	struct db *db;
	struct mq *mq;
	struct event *timer;
	bool leader;
	bool locking;       /* lock query in flight */
	bool fetching;      /* fetch or delete in flight */
	bool stopped;
	bool wanted;        /* a notification came while busy: fetch again */
	struct outbox_slot *slots; /* the batch being published */
	size_t nslots;
	size_t in_flight;
	size_t failed;
	long long *acked;
	size_t nacked;
	struct metric *published;
	struct metric *errors;
};

static void fetch(struct outbox *o);

static void arm(struct outbox *o, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(o->timer, &tv);
}

static void on_lock(void *arg, const struct db_reply *r)
{
	struct outbox *o = arg;
	o->locking = false;
	if (r->error != NULL) {
		log_warn("outbox: lock query failed: %s", r->error);
		arm(o, OUTBOX_POLL_MS);
		return;
	}
	bool got = PQntuples(r->res) == 1 && strcmp(PQgetvalue(r->res, 0, 0), "t") == 0;
	if (got && !o->leader)
		log_info("outbox: this relay publishes now");
	o->leader = got;
	if (got)
		fetch(o);
	else
		arm(o, OUTBOX_POLL_MS);
}

static void try_lock(struct outbox *o)
{
	if (o->locking || o->stopped)
		return;
	char key[32];
	snprintf(key, sizeof(key), "%d", OUTBOX_LOCK_KEY);
	const char *params[] = { key };
	o->locking = true;
	if (db_exec_sql(o->db, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, on_lock, o) != 0)
		o->locking = false;
}

static void on_deleted(void *arg, const struct db_reply *r)
{
	struct outbox *o = arg;
	o->fetching = false;
	if (r->error != NULL) {
		log_warn("outbox: delete failed: %s", r->error);
		metric_add(o->errors, 1);
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	if (o->failed > 0) {
		o->failed = 0;
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	fetch(o);
}

/* Every publish of the batch has its outcome: delete what the broker took. */
static void batch_done(struct outbox *o)
{
	free(o->slots);
	o->slots = NULL;
	o->nslots = 0;
	if (o->nacked == 0) {
		o->fetching = false;
		o->failed = 0;
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	/* "{1,2,3}" as one array parameter. */
	size_t cap = o->nacked * 21 + 3, len = 0;
	char *arr = malloc(cap);
	if (arr == NULL) {
		o->fetching = false;
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	arr[len++] = '{';
	for (size_t i = 0; i < o->nacked; i++)
		len += (size_t)snprintf(arr + len, cap - len, "%s%lld", i ? "," : "", o->acked[i]);
	arr[len++] = '}';
	arr[len] = '\0';
	o->nacked = 0;
	const char *params[] = { arr };
	if (db_exec_sql(o->db, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1, params,
			on_deleted, o) != 0) {
		o->fetching = false;
		arm(o, OUTBOX_RETRY_MS);
	}
	free(arr);
}

static void on_published(void *arg, int status)
{
	struct outbox_slot *slot = arg;
	struct outbox *o = slot->o;
	if (status == 0) {
		o->acked[o->nacked++] = slot->id;
		metric_add(o->published, 1);
	} else {
		o->failed++;
		metric_add(o->errors, 1);
	}
	if (--o->in_flight == 0)
		batch_done(o);
}

static void on_fetched(void *arg, const struct db_reply *r)
{
	struct outbox *o = arg;
	if (r->error != NULL) {
		o->fetching = false;
		log_warn("outbox: fetch failed: %s", r->error);
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	int n = PQntuples(r->res);
	if (!o->leader || o->stopped)
		n = 0; /* resent after a reconnect that lost the lock: not ours now */
	if (n == 0) {
		o->fetching = false;
		if (o->wanted) {
			o->wanted = false;
			fetch(o);
		}
		return;
	}
	o->wanted = false;
	o->slots = calloc((size_t)n, sizeof(*o->slots));
	long long *acked = realloc(o->acked, (size_t)n * sizeof(*o->acked));
	if (o->slots == NULL || acked == NULL) {
		free(o->slots);
		o->slots = NULL;
		if (acked != NULL)
			o->acked = acked;
		o->fetching = false;
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	o->acked = acked;
	o->nacked = 0;
	o->nslots = (size_t)n;
	o->in_flight = 0;
	o->failed = 0;
	for (int i = 0; i < n; i++) {
		struct outbox_slot *slot = &o->slots[i];
		slot->o = o;
		slot->id = strtoll(PQgetvalue(r->res, i, 0), NULL, 10);
		const char *topic = PQgetvalue(r->res, i, 1);
		const char *payload = PQgetvalue(r->res, i, 2);
		int qos = atoi(PQgetvalue(r->res, i, 3));
		bool retain = PQgetvalue(r->res, i, 4)[0] == 't';
		/* Paho copies topic and payload before returning. */
		if (mq_publish(o->mq, topic, payload, (size_t)PQgetlength(r->res, i, 2), qos,
			       retain, on_published, slot) != 0) {
			/* Broker away: publish nothing after a gap, keep the order. */
			o->failed++;
			break;
		}
		o->in_flight++;
	}
	if (o->in_flight == 0)
		batch_done(o);
}

static void fetch(struct outbox *o)
{
	if (o->fetching) {
		o->wanted = true;
		return;
	}
	if (!o->leader || o->stopped)
		return;
	if (!mq_connected(o->mq)) {
		arm(o, OUTBOX_RETRY_MS);
		return;
	}
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", OUTBOX_BATCH);
	const char *params[] = { lim };
	o->fetching = true;
	if (db_exec_sql(o->db,
			"SELECT id, topic, payload, qos, retain FROM outbox ORDER BY id LIMIT $1",
			1, params, on_fetched, o) != 0) {
		o->fetching = false;
		arm(o, OUTBOX_RETRY_MS);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct outbox *o = arg;
	if (o->stopped)
		return;
	if (!o->leader)
		try_lock(o);
	else
		fetch(o);
	if (o->leader)
		arm(o, OUTBOX_POLL_MS);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	fetch(arg);
}

static void on_connect(void *arg)
{
	struct outbox *o = arg;
	/* A new session holds no lock: the old one died with its connection.
	 * A fetch or delete that was in flight is resent by db.c and still
	 * completes, so `fetching` stays as it is. */
	o->leader = false;
	o->locking = false;
	try_lock(o);
}

struct outbox *outbox_new(struct event_base *base, const char *dsn, struct mq *mq,
			  struct metrics *m)
{
	struct outbox *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->base = base;
	o->mq = mq;
	o->db = db_new(base, dsn, "outbox");
	o->timer = evtimer_new(base, on_timer, o);
	if (o->db == NULL || o->timer == NULL)
		goto fail;
	if (db_on_connect(o->db, on_connect, o) != 0 ||
	    db_listen(o->db, "outbox", on_notify, o) != 0)
		goto fail;
	o->published = metrics_counter(m, "sc_outbox_published_total",
				       "Events relayed from the outbox to the broker", "");
	o->errors = metrics_counter(m, "sc_outbox_errors_total",
				    "Outbox publishes or statements that failed (retried)", "");
	return o;
fail:
	outbox_free(o);
	return NULL;
}

void outbox_free(struct outbox *o)
{
	if (o == NULL)
		return;
	db_free(o->db);
	if (o->timer != NULL)
		event_free(o->timer);
	free(o->slots);
	free(o->acked);
	free(o);
}

size_t outbox_in_flight(const struct outbox *o)
{
	return o->in_flight;
}

bool outbox_is_leader(const struct outbox *o)
{
	return o->leader;
}

void outbox_stop(struct outbox *o)
{
	o->stopped = true;
	evtimer_del(o->timer);
}

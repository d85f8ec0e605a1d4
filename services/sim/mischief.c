/*
 * Fault-test traffic mixed into the simulation's stream (tests/fault):
 *
 *   --dup-pct P        P repeats per 100 acknowledged messages: an earlier
 *                      acknowledged message (telemetry, alarm, request, order
 *                      event or status) published again, byte for byte, as a
 *                      sender does that heard no PUBACK. The platform must
 *                      store and apply it once (contract sections 2.1-2.3).
 *   --malformed-pct P  P % of all messages sent are malformed, in turn: not
 *                      JSON, no seq, a bad metric name, an unknown device, a
 *                      timestamp far in the future, a request of an unknown
 *                      customer, an alarm with a bad state. Each carries a
 *                      marker (`fault-m{seed}-{n}`) so a checker finds its
 *                      row in `rejected` (contract section 2.6).
 *
 * Every acknowledged message passes through mischief_acked(), which writes
 * the journal (--journal) and keeps the newest RING_SIZE messages as
 * candidates for a repeat. Repeats and malformed messages are published
 * with publish.c (QoS 1, kept until acknowledged) under the kinds
 * "dup:{kind repeated}" and "malformed:{reason expected}", journaled as kind
 * dup or malformed with the part after the colon as the note.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "service.h"
#include "sim.h"
#include "strbuf.h"
#include "timeutil.h"

#define RING_SIZE 1024       /* candidates for a repeat */
#define TICK_MS 100
#define TICK_MAX_SENDS 2000  /* per tick: a backlog is spread, not burst */

struct kept {
	char *kind;
	char *topic;
	char *key;
	char *payload;
};

struct mischief {
	struct sim *sim;
	struct sim_rng rng;
	struct event *tick_ev;
	struct kept ring[RING_SIZE];
	size_t nring, next;      /* filled slots; slot the next message takes */
	uint64_t acked;          /* ordinary messages acknowledged since the last tick */
	double dup_credit, malformed_credit;
	uint64_t nmalformed;     /* malformed messages made: numbers the markers */
	struct strbuf buf;
};

static void kept_clear(struct kept *k)
{
	free(k->kind);
	free(k->topic);
	free(k->key);
	free(k->payload);
	memset(k, 0, sizeof(*k));
}

/* Splits "dup:telemetry" into kind "dup" and note "telemetry". */
static void split_kind(const char *kind, char *out, size_t len, const char **note)
{
	const char *colon = strchr(kind, ':');
	*note = NULL;
	if (colon == NULL) {
		snprintf(out, len, "%s", kind);
		return;
	}
	snprintf(out, len, "%.*s", (int)(colon - kind), kind);
	*note = colon + 1;
}

void mischief_acked(struct mischief *m, const char *kind, const char *topic, const char *key,
		    const char *note, const char *payload)
{
	char k[32];
	const char *n2 = NULL;
	if (m == NULL)
		return;
	split_kind(kind, k, sizeof(k), &n2);
	journal_write(m->sim->journal, k, topic, key, note != NULL ? note : n2);
	if (strcmp(k, "dup") == 0) {
		m->sim->stats.dups_sent++;
		return;
	}
	if (strcmp(k, "malformed") == 0) {
		m->sim->stats.malformed_sent++;
		return;
	}
	if (strcmp(k, "alarm") == 0)
		m->sim->stats.alarms_sent++;
	m->acked++;
	if (m->sim->opts.dup_pct <= 0 || payload == NULL)
		return;
	struct kept *slot = &m->ring[m->next];
	kept_clear(slot);
	slot->kind = strdup(k);
	slot->topic = strdup(topic);
	slot->key = strdup(key != NULL ? key : "");
	slot->payload = strdup(payload);
	if (slot->kind == NULL || slot->topic == NULL || slot->key == NULL || slot->payload == NULL) {
		kept_clear(slot);
		return;
	}
	m->next = (m->next + 1) % RING_SIZE;
	if (m->nring < RING_SIZE)
		m->nring++;
}

static void send_dup(struct mischief *m)
{
	char kind[48];
	struct kept *k = &m->ring[sim_rng_index(&m->rng, m->nring)];
	if (k->payload == NULL)
		return;
	snprintf(kind, sizeof(kind), "dup:%s", k->kind);
	if (pub_send(m->sim->pub, k->topic, k->payload, kind, k->key, NULL, NULL) != 0)
		log_error("cannot send a repeat: out of memory topic=%s", k->topic);
}

/* Builds malformed message number n into m->buf and its topic; returns the
 * reason the platform must reject it with. */
static const char *build_malformed(struct mischief *m, uint64_t n, const char *marker,
				   char *topic, size_t topic_len)
{
	const struct world *w = m->sim->world;
	const char *dev = w->ndevices > 0 ? w->devices[n % w->ndevices].id : "D-NONE";
	const char *site = w->ncustomers > 0 ? w->customers[0].sites[0].id : "S-NONE";
	char ts[TIME_RFC3339_LEN];
	struct strbuf *b = &m->buf;
	time_format_rfc3339(time_now_us(), ts, sizeof(ts));
	strbuf_reset(b);
	snprintf(topic, topic_len, "sc/v1/dev/%s/telemetry", dev);
	switch (n % 7) {
	case 0:
		strbuf_printf(b, "{\"seq\":1,\"ts\":\"%s\",\"note\":\"%s\",\"metrics\":{", ts, marker);
		return "bad_json";
	case 1:
		strbuf_printf(b, "{\"ts\":\"%s\",\"note\":\"%s\",\"metrics\":{\"load_pct\":1}}", ts,
			      marker);
		return "schema";
	case 2:
		strbuf_printf(b, "{\"seq\":1,\"ts\":\"%s\",\"note\":\"%s\",\"metrics\":{\"Bad-Name\":1}}",
			      ts, marker);
		return "bad_metric";
	case 3:
		snprintf(topic, topic_len, "sc/v1/dev/NOSUCH-DEVICE/telemetry");
		strbuf_printf(b, "{\"seq\":1,\"ts\":\"%s\",\"note\":\"%s\",\"metrics\":{\"load_pct\":1}}",
			      ts, marker);
		return "unknown_device";
	case 4:
		strbuf_printf(b,
			      "{\"seq\":1,\"ts\":\"2999-01-01T00:00:00Z\",\"note\":\"%s\","
			      "\"metrics\":{\"load_pct\":1}}",
			      marker);
		return "bad_timestamp";
	case 5:
		snprintf(topic, topic_len, "sc/v1/requests/new");
		strbuf_printf(b,
			      "{\"request_id\":\"%s\",\"channel\":\"web\",\"customer_id\":"
			      "\"NOSUCH-CUSTOMER\",\"site_id\":\"%s\",\"category\":\"fault\","
			      "\"description\":\"malformed\",\"ts\":\"%s\"}",
			      marker, site, ts);
		return "unknown_customer";
	default:
		snprintf(topic, topic_len, "sc/v1/dev/%s/alarm", dev);
		strbuf_printf(b,
			      "{\"seq\":1,\"ts\":\"%s\",\"code\":\"E1\",\"state\":\"exploded\","
			      "\"note\":\"%s\"}",
			      ts, marker);
		return "schema";
	}
}

static void send_malformed(struct mischief *m)
{
	char marker[64], topic[160], kind[48];
	uint64_t n = m->nmalformed++;
	snprintf(marker, sizeof(marker), "fault-m%llu-%llu", (unsigned long long)m->sim->opts.seed,
		 (unsigned long long)n);
	const char *reason = build_malformed(m, n, marker, topic, sizeof(topic));
	snprintf(kind, sizeof(kind), "malformed:%s", reason);
	if (!strbuf_ok(&m->buf) ||
	    pub_send(m->sim->pub, topic, m->buf.data, kind, marker, NULL, NULL) != 0)
		log_error("cannot send a malformed message: out of memory");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mischief *m = arg;
	const struct sim_opts *o = &m->sim->opts;
	double acked = (double)m->acked;
	m->acked = 0;
	m->dup_credit += acked * o->dup_pct / 100.0;
	/* P % of everything sent: P malformed per (100 - P) good ones. */
	m->malformed_credit += acked * o->malformed_pct / (100.0 - o->malformed_pct);
	for (int n = 0; n < TICK_MAX_SENDS && m->dup_credit >= 1.0 && m->nring > 0; n++) {
		send_dup(m);
		m->dup_credit -= 1.0;
	}
	for (int n = 0; n < TICK_MAX_SENDS && m->malformed_credit >= 1.0; n++) {
		send_malformed(m);
		m->malformed_credit -= 1.0;
	}
}

int mischief_start(struct mischief *m)
{
	const struct sim_opts *o = &m->sim->opts;
	if (o->dup_pct <= 0 && o->malformed_pct <= 0)
		return 0;
	m->tick_ev = event_new(m->sim->svc->base, -1, EV_PERSIST, on_tick, m);
	if (m->tick_ev == NULL)
		return -1;
	struct timeval tv = { 0, TICK_MS * 1000 };
	evtimer_add(m->tick_ev, &tv);
	return 0;
}

void mischief_stop(struct mischief *m)
{
	if (m != NULL && m->tick_ev != NULL)
		evtimer_del(m->tick_ev);
}

struct mischief *mischief_new(struct sim *sim)
{
	struct mischief *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->sim = sim;
	sim_rng_init(&m->rng, sim->opts.seed, SIM_STREAM_MISCHIEF);
	strbuf_init(&m->buf);
	return m;
}

void mischief_free(struct mischief *m)
{
	if (m == NULL)
		return;
	if (m->tick_ev != NULL)
		event_free(m->tick_ev);
	for (size_t i = 0; i < RING_SIZE; i++)
		kept_clear(&m->ring[i]);
	strbuf_free(&m->buf);
	free(m);
}

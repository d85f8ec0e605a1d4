/*
 * What engineers and partners send (contract section 2.3): order events on
 * sc/v1/engineers/{id}/events and sc/v1/partners/{id}/events, engineers'
 * status on sc/v1/engineers/{id}/status, taken through shared subscriptions
 * so several instances split them.
 *
 * The payload is checked in C (common/payload.c: bad_json, schema,
 * bad_timestamp ...); what passes goes to the database in one statement:
 * sc_dispatch_event (sc_order_event, plus the reject of unknown_order,
 * not_your_order and bad_transition in the same transaction) or
 * sc_dispatch_status. Anything refused is kept and announced through
 * sc_reject (section 2.6).
 *
 * Delivery: Paho acknowledges a QoS 1 message before this code sees it
 * (shared/measured-facts.md), so a kill -9 between that and the commit
 * loses the event; a field app that sends it again (it sees no change on
 * its order) has it applied once, since an event repeated exactly (order,
 * event, ts) is ignored. A clean stop (SIGTERM) loses nothing: the
 * service disconnects first and drains what it received.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dispatch.h"
#include "json.h"
#include "log.h"
#include "mqsub.h"
#include "payload.h"
#include "service.h"
#include "timeutil.h"
#include "topic.h"

/* sc_reject keeps at most this much of a payload (schema/003_reject.sql). */
#define REJECT_PAYLOAD_MAX 65536

struct event_job {
	struct dispatch *d;
	unsigned long long token;    /* acknowledged to the broker when done */
	enum order_event event;
	bool available;              /* status: available or busy (may take offers) */
	char sender[TOPIC_ID_MAX + 1];
};

struct reject_job {
	struct dispatch *d;
	unsigned long long token;
};

static void on_rejected(void *arg, const struct db_reply *r)
{
	struct reject_job *j = arg;
	if (r->error != NULL)
		log_error("reject not stored: %s", r->error);
	/* Kept (or not keepable): the broker may forget it. */
	service_ack(j->d->svc, j->token);
	free(j);
}

/* Keeps and announces a refused message (sc_reject), payload as hex bytea
 * because it may be anything, NUL bytes and broken UTF-8 included. */
static void reject(struct dispatch *d, const struct mqsub_msg *m, const char *reason,
		   const char *detail)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = m->len < REJECT_PAYLOAD_MAX ? m->len : REJECT_PAYLOAD_MAX;
	char *hex = malloc(2 * n + 1);
	struct reject_job *j = malloc(sizeof(*j));
	if (hex == NULL || j == NULL) {
		/* Not acked: the broker delivers it again. */
		log_error("reject not stored: out of memory topic=%s reason=%s", m->topic, reason);
		free(hex);
		free(j);
		return;
	}
	j->d = d;
	j->token = m->token;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)m->payload[i];
		hex[2 * i] = digits[c >> 4];
		hex[2 * i + 1] = digits[c & 15];
	}
	hex[2 * n] = '\0';
	log_info("message rejected: %s topic=%s detail=%s", reason, m->topic, detail);
	const char *params[4] = { m->topic, reason, detail, hex };
	if (db_exec_prepared(d->svc->db, "dispatch_reject", 4, params, on_rejected, j) != 0) {
		log_error("reject not stored: out of memory topic=%s reason=%s", m->topic, reason);
		free(j);
	}
	free(hex);
}

static void on_event_done(void *arg, const struct db_reply *r)
{
	struct event_job *j = arg;
	struct dispatch *d = j->d;
	if (r->error != NULL) {
		log_error("order event failed: %s sender=%s event=%s", r->error, j->sender,
			  order_event_name(j->event));
		goto out;
	}
	if (PQntuples(r->res) != 1)
		goto out;
	const char *result = PQgetvalue(r->res, 0, 0);
	const char *order = PQgetvalue(r->res, 0, 1);
	const char *state = PQgetvalue(r->res, 0, 3);
	enum mode mode;
	bool has_mode = !PQgetisnull(r->res, 0, 4) && mode_parse(PQgetvalue(r->res, 0, 4), &mode) == 0;
	if (strcmp(result, "applied") == 0) {
		log_info("order event applied order=%s event=%s state=%s sender=%s", order,
			 order_event_name(j->event), state, j->sender);
		if (has_mode && j->event == ORDER_EVENT_ACCEPT)
			dispatch_count(d, mode, DISPATCH_ACCEPTED);
		else if (has_mode && j->event == ORDER_EVENT_DECLINE)
			dispatch_count(d, mode, DISPATCH_DECLINED);
		if (strcmp(state, "offered") != 0)
			offers_forget(d, order);
		/* Declined, resolved, unresolved: capacity freed, and a declined
		 * or unresolved ticket is new again. */
		if (strcmp(state, "declined") == 0 || strcmp(state, "resolved") == 0 ||
		    strcmp(state, "unresolved") == 0)
			sweep_request(d);
	} else if (strcmp(result, "repeat") == 0) {
		log_debug("order event repeated: ignored order=%s event=%s sender=%s", order,
			  order_event_name(j->event), j->sender);
	} else {
		log_info("order event rejected: %s order=%s event=%s sender=%s", result, order,
			 order_event_name(j->event), j->sender);
	}
out:
	/* Applied, ignored as a repeat, rejected or failed in the server (a
	 * retry would fail the same way): done with it either way. */
	service_ack(d->svc, j->token);
	free(j);
}

static void on_status_done(void *arg, const struct db_reply *r)
{
	struct event_job *j = arg;
	if (r->error != NULL) {
		log_error("status failed: %s engineer=%s", r->error, j->sender);
	} else if (PQntuples(r->res) == 1) {
		const char *result = PQgetvalue(r->res, 0, 0);
		if (strcmp(result, "rejected") == 0)
			log_info("status rejected: bad_topic: unknown engineer engineer=%s", j->sender);
		else if (strcmp(result, "applied") == 0 && j->available)
			sweep_request(j->d); /* someone may be free for a waiting ticket */
	}
	service_ack(j->d->svc, j->token);
	free(j);
}

/* Copies the payload NUL-terminated (the parser let no NUL through). */
static char *payload_text(const struct mqsub_msg *m)
{
	char *p = malloc(m->len + 1);
	if (p != NULL) {
		memcpy(p, m->payload, m->len);
		p[m->len] = '\0';
	}
	return p;
}

static void take(struct dispatch *d, const struct mqsub_msg *m, const char *stmt,
		 const char *sender_kind, struct event_job *j, db_result_cb cb)
{
	char *text = payload_text(m);
	if (text == NULL) {
		log_error("message dropped: out of memory topic=%s", m->topic);
		free(j);
		return;
	}
	int rc;
	if (sender_kind != NULL) {
		const char *params[4] = { sender_kind, j->sender, m->topic, text };
		rc = db_exec_prepared(d->svc->db, stmt, 4, params, cb, j);
	} else {
		const char *params[3] = { j->sender, m->topic, text };
		rc = db_exec_prepared(d->svc->db, stmt, 3, params, cb, j);
	}
	if (rc != 0) {
		log_error("message dropped: out of memory topic=%s", m->topic);
		free(j);
	}
	free(text);
}

static struct event_job *job_new(struct dispatch *d, const struct mqsub_msg *m,
			      const struct topic_info *ti)
{
	struct event_job *j = calloc(1, sizeof(*j));
	if (j != NULL) {
		j->d = d;
		j->token = m->token;
		snprintf(j->sender, sizeof(j->sender), "%s", ti->id);
	}
	return j;
}

static void take_event(struct dispatch *d, const struct mqsub_msg *m, const struct topic_info *ti)
{
	struct payload_event ev;
	struct json_err e = { 0 };
	if (payload_event_parse(m->payload, m->len, time_now_us(), &ev, &e) != 0) {
		reject(d, m, e.reason, e.detail);
		return;
	}
	struct event_job *j = job_new(d, m, ti);
	if (j == NULL) {
		log_error("message dropped: out of memory topic=%s", m->topic);
	} else {
		j->event = ev.event;
		take(d, m, "dispatch_event",
		     ti->kind == TOPIC_PARTNER_EVENTS ? "partner" : "engineer", j, on_event_done);
	}
	payload_free(ev.root);
}

static void take_status(struct dispatch *d, const struct mqsub_msg *m, const struct topic_info *ti)
{
	struct payload_status st;
	struct json_err e = { 0 };
	if (payload_status_parse(m->payload, m->len, time_now_us(), &st, &e) != 0) {
		reject(d, m, e.reason, e.detail);
		return;
	}
	struct event_job *j = job_new(d, m, ti);
	if (j == NULL) {
		log_error("message dropped: out of memory topic=%s", m->topic);
	} else {
		j->available = st.state != AVAIL_OFF;
		take(d, m, "dispatch_status", NULL, j, on_status_done);
	}
	payload_free(st.root);
}

void events_on_message(void *arg, const struct mqsub_msg *m)
{
	struct dispatch *d = arg;
	struct topic_info ti;
	switch (topic_parse(m->topic, &ti)) {
	case TOPIC_ENGINEER_EVENTS:
	case TOPIC_PARTNER_EVENTS:
		take_event(d, m, &ti);
		break;
	case TOPIC_ENGINEER_STATUS:
		take_status(d, m, &ti);
		break;
	default:
		/* Only an id that breaks the identifier rule gets here: the
		 * subscriptions admit nothing else. */
		reject(d, m, "bad_topic", "topic: not an engineer or partner events or status topic");
		break;
	}
}

int events_init(struct dispatch *d)
{
	struct service *s = d->svc;
	if (db_prepare(s->db, "dispatch_event",
		       "SELECT result, order_id, ticket_id, order_state, mode"
		       " FROM sc_dispatch_event($1, $2, $3, $4)", 4) != 0 ||
	    db_prepare(s->db, "dispatch_status", "SELECT sc_dispatch_status($1, $2, $3)", 3) != 0 ||
	    db_prepare(s->db, "dispatch_reject", "SELECT sc_reject($1, $2, $3, decode($4, 'hex'))",
		       4) != 0 ||
	    service_subscribe(s, "$share/" DISPATCH_PROGRAM "/sc/v1/engineers/+/events", 1) != 0 ||
	    service_subscribe(s, "$share/" DISPATCH_PROGRAM "/sc/v1/partners/+/events", 1) != 0 ||
	    service_subscribe(s, "$share/" DISPATCH_PROGRAM "/sc/v1/engineers/+/status", 1) != 0)
		return -1;
	return 0;
}

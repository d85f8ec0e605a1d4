/*
 * Return-visit feedback from MQTT (see feedback.h).
 */
#include "feedback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "mqsub.h"
#include "payload.h"
#include "service.h"
#include "topic.h"

/* sc_reject keeps at most this much of a payload (schema/003_reject.sql). */
#define REJECT_PAYLOAD_MAX 65536

enum { RESULT_RECORDED, RESULT_REPEAT, RESULT_REJECTED, RESULT_COUNT };
static const char *const result_names[RESULT_COUNT] = { "recorded", "repeat", "rejected" };

struct feedback {
	struct service *svc;                 /* not owned */
	size_t in_flight;                    /* taken, not yet acknowledged */
	struct metric *results[RESULT_COUNT]; /* sc_slamon_feedback_total{result} */
};

/* One message on its way to the database. */
struct job {
	struct feedback *f;
	unsigned long long token;  /* acknowledged to the broker when done */
	bool reject;               /* a sc_reject of ours, not sc_feedback_message */
	char request[TOPIC_ID_MAX + 1];
};

static void count(struct feedback *f, int result)
{
	metric_add(f->results[result], 1);
}

static void on_done(void *arg, const struct db_reply *r)
{
	struct job *j = arg;
	struct feedback *f = j->f;
	if (r->error != NULL) {
		/* An SQL error would repeat on redelivery: done with it. */
		log_error("feedback failed: %s request=%s", r->error, j->request);
	} else if (j->reject) {
		count(f, RESULT_REJECTED);
	} else if (PQntuples(r->res) == 1) {
		const char *res = PQgetvalue(r->res, 0, 0);
		if (strstr(res, "\"result\": \"recorded\"") != NULL) {
			count(f, RESULT_RECORDED);
			log_info("feedback recorded request=%s result=%s", j->request, res);
		} else if (strstr(res, "\"result\": \"repeat\"") != NULL) {
			count(f, RESULT_REPEAT);
			log_debug("feedback repeated: ignored request=%s", j->request);
		} else {
			count(f, RESULT_REJECTED);
			log_info("feedback rejected request=%s result=%s", j->request, res);
		}
	}
	service_ack(f->svc, j->token);
	f->in_flight--;
	free(j);
}

/* The raw payload as hex (bytea): it may be anything, NUL bytes included. */
static char *hex_of(const struct mqsub_msg *m)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = m->len < REJECT_PAYLOAD_MAX ? m->len : REJECT_PAYLOAD_MAX;
	char *hex = malloc(2 * n + 1);
	if (hex == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)m->payload[i];
		hex[2 * i] = digits[c >> 4];
		hex[2 * i + 1] = digits[c & 15];
	}
	hex[2 * n] = '\0';
	return hex;
}

void feedback_on_message(void *app, const struct mqsub_msg *m)
{
	struct feedback *f = app;
	struct topic_info ti;
	struct payload_feedback fb = { 0 };
	struct json_err e = { 0 };
	const char *reason = NULL, *detail = NULL;
	char *hex = NULL, *text = NULL;
	struct job *j = calloc(1, sizeof(*j));
	int rc = -1;

	if (j == NULL)
		goto out;
	j->f = f;
	j->token = m->token;
	if (topic_parse(m->topic, &ti) != TOPIC_FEEDBACK) {
		/* Only an id breaking the identifier rule gets here. */
		reason = "bad_topic";
		detail = "topic: not a request feedback topic";
	} else if (payload_feedback_parse(m->payload, m->len, &fb, &e) != 0) {
		reason = e.reason;
		detail = e.detail;
	}
	snprintf(j->request, sizeof(j->request), "%s", reason == NULL ? ti.id : "");
	hex = hex_of(m);
	if (hex == NULL)
		goto out;
	if (reason != NULL) {
		log_info("message rejected: %s topic=%s detail=%s", reason, m->topic, detail);
		j->reject = true;
		const char *params[4] = { m->topic, reason, detail, hex };
		rc = db_exec_prepared(f->svc->db, "slamon_reject", 4, params, on_done, j);
	} else {
		/* The parser let no NUL through: the payload is text. */
		text = malloc(m->len + 1);
		if (text == NULL)
			goto out;
		memcpy(text, m->payload, m->len);
		text[m->len] = '\0';
		const char *params[4] = { m->topic, ti.id, text, hex };
		rc = db_exec_prepared(f->svc->db, "slamon_feedback", 4, params, on_done, j);
	}
out:
	if (rc == 0) {
		f->in_flight++;
	} else {
		/* Not acknowledged: the broker delivers it again. */
		log_error("feedback dropped: out of memory topic=%s", m->topic);
		free(j);
	}
	payload_free(fb.root);
	free(text);
	free(hex);
}

struct feedback *feedback_new(struct service *svc)
{
	struct feedback *f = calloc(1, sizeof(*f));
	if (f == NULL)
		goto fail;
	f->svc = svc;
	for (int k = 0; k < RESULT_COUNT; k++) {
		char labels[64];
		if (metrics_labels(labels, sizeof(labels), "result", result_names[k], NULL) != 0)
			goto fail;
		f->results[k] = metrics_counter(svc->metrics, "sc_slamon_feedback_total",
						"Return-visit feedback messages, by result", labels);
		if (f->results[k] == NULL)
			goto fail;
	}
	if (db_prepare(svc->db, "slamon_feedback",
		       "SELECT sc_feedback_message($1, $2, $3, decode($4, 'hex'))::text", 4) != 0 ||
	    db_prepare(svc->db, "slamon_reject", "SELECT sc_reject($1, $2, $3, decode($4, 'hex'))",
		       4) != 0 ||
	    service_subscribe(svc, "$share/sc-slamon/sc/v1/requests/+/feedback", 1) != 0)
		goto fail;
	return f;
fail:
	log_error("feedback: cannot set up: out of memory or bad registration");
	feedback_free(f);
	return NULL;
}

size_t feedback_in_flight(const struct feedback *f)
{
	return f->in_flight;
}

void feedback_free(struct feedback *f)
{
	free(f);
}

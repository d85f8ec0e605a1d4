/*
 * Customer requests (contract section 2.2): one sc_request_submit statement
 * each, which checks master data, triages, opens or links the ticket and
 * announces its state on sc/v1/requests/{id}/status through the outbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "strbuf.h"
#include "timeutil.h"

struct request_job {
	struct ingest *in;
	int64_t ts_us;
	char *topic;
	char *raw;
	size_t raw_len;
	unsigned long long token;
	char request_id[65];
};

static void job_free(struct request_job *j)
{
	free(j->topic);
	free(j->raw);
	free(j);
}

static void on_submitted(void *arg, const struct db_reply *r)
{
	struct request_job *j = arg;
	struct ingest *in = j->in;
	in->requests_in_flight--;
	if (r->error != NULL) {
		/* Not storable as a ticket (a master-data gap): keep it as rejected. */
		log_error("request failed: %s request=%s", r->error, j->request_id);
		char detail[200];
		snprintf(detail, sizeof(detail), "not storable: %.150s", r->error);
		metric_add(in->m.rejected[KIND_REQUEST], 1);
		/* The rejection carries the token: acked once it is stored. */
		batch_reject(in, j->topic, "schema", detail, j->raw, j->raw_len, j->token);
		job_free(j);
		return;
	}
	service_ack(in->svc, j->token);
	const char *outcome = PQgetvalue(r->res, 0, 0);
	double lag = (double)(time_now_us() - j->ts_us) / 1e6;
	metric_observe(in->m.lag[KIND_REQUEST], lag < 0 ? 0 : lag);
	if (strcmp(outcome, "rejected") == 0) {
		metric_add(in->m.rejected[KIND_REQUEST], 1);
		ingest_count_rejected(in, PQgetvalue(r->res, 0, 3));
		log_debug("request rejected: %s request=%s", PQgetvalue(r->res, 0, 3), j->request_id);
	} else if (strcmp(outcome, "duplicate") == 0) {
		metric_add(in->m.duplicate[KIND_REQUEST], 1);
	} else {
		metric_add(in->m.stored[KIND_REQUEST], 1);
		log_info("request taken: %s request=%s ticket=%s", outcome, j->request_id,
			 PQgetvalue(r->res, 0, 1));
	}
	job_free(j);
}

static void put_opt_str(struct strbuf *b, const char *key, const char *v)
{
	if (v == NULL)
		return;
	strbuf_printf(b, ",\"%s\":", key);
	strbuf_json_str(b, v);
}

void requests_submit(struct ingest *in, const struct payload_request *r, const char *topic,
		     const char *raw, size_t raw_len, unsigned long long token)
{
	struct request_job *j = calloc(1, sizeof(*j));
	struct strbuf p, hex;
	strbuf_init(&p);
	strbuf_init(&hex);
	if (j == NULL)
		goto fail;
	j->in = in;
	j->ts_us = r->ts_us;
	j->token = token;
	snprintf(j->request_id, sizeof(j->request_id), "%s", r->request_id);
	j->topic = strdup(topic);
	j->raw = malloc(raw_len + 1);
	if (j->topic == NULL || j->raw == NULL)
		goto fail;
	memcpy(j->raw, raw, raw_len);
	j->raw_len = raw_len;

	strbuf_puts(&p, "{\"request_id\":");
	strbuf_json_str(&p, r->request_id);
	put_opt_str(&p, "channel", channel_name(r->channel));
	put_opt_str(&p, "customer_id", r->customer_id);
	put_opt_str(&p, "site_id", r->site_id);
	put_opt_str(&p, "device_id", r->device_id);
	put_opt_str(&p, "category", category_name(r->category));
	put_opt_str(&p, "severity", r->has_severity ? severity_name(r->severity) : NULL);
	put_opt_str(&p, "skill", r->skill);
	if (r->min_grade > 0)
		strbuf_printf(&p, ",\"min_grade\":%d", r->min_grade);
	put_opt_str(&p, "description", r->description);
	if (r->contact != NULL) {
		char *c = json_print(r->contact);
		if (c == NULL)
			goto fail;
		strbuf_puts(&p, ",\"contact\":");
		strbuf_puts(&p, c);
		free(c);
	}
	strbuf_printf(&p, ",\"ts\":%.6f}", (double)r->ts_us / 1e6);
	strbuf_puts(&hex, "\\x");
	strbuf_hex(&hex, raw, raw_len);
	if (!strbuf_ok(&p) || !strbuf_ok(&hex))
		goto fail;
	const char *params[] = { p.data, topic, hex.data };
	if (db_exec_prepared(in->svc->db, "request_submit", 3, params, on_submitted, j) != 0)
		goto fail;
	in->requests_in_flight++;
	strbuf_free(&p);
	strbuf_free(&hex);
	return;
fail:
	log_error("request dropped: out of memory topic=%s", topic);
	if (j != NULL)
		job_free(j);
	strbuf_free(&p);
	strbuf_free(&hex);
}

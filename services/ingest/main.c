/* sc-ingest: boot, signals and the loop; the work is in intake.c, batch.c,
 * state.c, requests.c and registry.c. */
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

static const char *const kind_names[] = { "telemetry", "alarm", "request" };

static const struct service_def def = {
	.program = "sc-ingest",
	.summary = "Receives device telemetry, device alarms and customer requests from MQTT;\n"
		   "validates, de-duplicates and persists them.",
	.run_outbox = true,
	.on_message = intake_on_message,
};

static void register_metrics(struct ingest *in, struct metrics *m)
{
	static const char *msgs = "Messages received by sc-ingest, by kind and result";
	char labels[120];
	for (int k = 0; k < 3; k++) {
		snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"stored\"", kind_names[k]);
		in->m.stored[k] = metrics_counter(m, "sc_ingest_messages_total", msgs, labels);
		snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"duplicate\"", kind_names[k]);
		in->m.duplicate[k] = metrics_counter(m, "sc_ingest_messages_total", msgs, labels);
		snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"rejected\"", kind_names[k]);
		in->m.rejected[k] = metrics_counter(m, "sc_ingest_messages_total", msgs, labels);
		snprintf(labels, sizeof(labels), "kind=\"%s\"", kind_names[k]);
		in->m.lag[k] = metrics_histogram(m, "sc_ingest_lag_seconds",
						 "Device ts (request ts) to committed", labels, NULL, 0);
	}
	in->m.rejected_other = metrics_counter(m, "sc_ingest_messages_total", msgs,
					       "kind=\"other\",result=\"rejected\"");
	static const double rows[] = { 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000 };
	in->m.batch_rows = metrics_histogram(m, "sc_ingest_batch_rows", "Items per batch statement",
					     "", rows, sizeof(rows) / sizeof(rows[0]));
	in->m.batch_seconds = metrics_histogram(m, "sc_ingest_batch_seconds",
						"First item of a batch to its commit", "", NULL, 0);
	in->m.batch_splits = metrics_counter(m, "sc_ingest_batch_splits_total",
					     "Batches split after a statement error", "");
}

static bool drain(void *arg)
{
	struct ingest *in = arg;
	/* The states last: the batches' commits fold theirs first. */
	return batch_idle(in) && in->requests_in_flight == 0 && state_idle(in);
}

int main(int argc, char **argv)
{
	static struct service svc;
	static struct ingest in;
	int rc = service_init(&svc, &def, argc, argv);
	if (rc != 0 || svc.base == NULL) {
		service_done(&svc);
		return rc;
	}
	in.svc = &svc;
	svc.app = &in;
	svc.drain = drain;
	register_metrics(&in, svc.metrics);
	if (batch_init(&in) != 0 || state_init(&in) != 0 || registry_init(&in) != 0 ||
	    db_prepare(svc.db, "request_submit",
		       "SELECT outcome, ticket_id, state, reason FROM sc_request_submit($1::jsonb, $2, $3::bytea)",
		       3) != 0 ||
	    service_subscribe(&svc, "$share/sc-ingest/sc/v1/dev/#", 1) != 0 ||
	    service_subscribe(&svc, "$share/sc-ingest/sc/v1/requests/new", 1) != 0) {
		log_error("cannot start: out of memory");
		rc = 1;
		goto out;
	}
	rc = service_run(&svc);
out:
	service_done(&svc);
	batch_free_all(&in);
	state_free(&in);
	registry_free(&in);
	return rc;
}

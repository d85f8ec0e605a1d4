/* sc-dispatch: boot, signals and the loop; the work is in candidates.c
 * (the sweep), people.c (engineers and partners between sweeps), offers.c
 * (offers and their expiry timers), replan.c
 * (escalation re-plans) and events.c (engineers' and partners' events and
 * status). */
#include <stdio.h>

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

static const char *const result_names[DISPATCH_NRESULTS] = {
	"offered", "accepted", "declined", "expired", "withdrawn",
};

static const struct service_def def = {
	.program = DISPATCH_PROGRAM,
	.summary = "Dispatcher: turns tickets into work orders offered to on-site engineers,\n"
		   "remote engineers or outsourced partners, by region, skill grade, SLA risk,\n"
		   "travel and load; applies their answers and status.",
	.run_outbox = true,
	.on_message = events_on_message,
};

void dispatch_count(struct dispatch *d, enum mode mode, enum dispatch_result r)
{
	if ((int)mode >= 0 && (int)mode < DISPATCH_NMODES && r < DISPATCH_NRESULTS)
		metric_add(d->offers_total[mode][r], 1);
}

static int register_metrics(struct dispatch *d, struct metrics *m)
{
	/* Ticket ready (last became new) to offer committed: seconds to hours
	 * when it waited for capacity. */
	static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
					 10, 30, 60, 300, 900, 3600, 14400 };
	char labels[96];
	for (int mo = 0; mo < DISPATCH_NMODES; mo++) {
		for (int r = 0; r < DISPATCH_NRESULTS; r++) {
			if (metrics_labels(labels, sizeof(labels), "mode", mode_name((enum mode)mo),
					   "result", result_names[r], NULL) != 0)
				return -1;
			d->offers_total[mo][r] = metrics_counter(m, "sc_dispatch_offers_total",
				"Work-order offers by mode and outcome", labels);
			if (d->offers_total[mo][r] == NULL)
				return -1;
		}
	}
	d->decision_seconds = metrics_histogram(m, "sc_dispatch_decision_seconds",
		"Ticket ready for dispatch to its offer committed", "", bounds,
		sizeof(bounds) / sizeof(bounds[0]));
	return d->decision_seconds != NULL ? 0 : -1;
}

/* Nothing in flight once no sweep and no re-plan runs: the statements themselves are
 * counted by the service (db_pending). No new sweep starts after this. */
static bool drain(void *arg)
{
	struct dispatch *d = arg;
	d->stopping = true;
	return sweep_idle(d) && replan_idle(d);
}

int main(int argc, char **argv)
{
	static struct service svc;
	static struct dispatch d;
	int rc = service_init(&svc, &def, argc, argv);
	if (rc != 0 || svc.base == NULL)
		goto out;
	d.svc = &svc;
	svc.app = &d;
	svc.drain = drain;
	if (register_metrics(&d, svc.metrics) != 0 || offers_init(&d) != 0 || people_init(&d) != 0 ||
	    sweep_init(&d) != 0 || replan_init(&d) != 0 || events_init(&d) != 0) {
		log_error("cannot start: out of memory");
		rc = 1;
		goto out;
	}
	rc = service_run(&svc);
out:
	/* Timers before the loop they live on. */
	replan_free(&d);
	sweep_free(&d);
	people_free(&d);
	offers_free(&d);
	service_done(&svc);
	return rc;
}

/*
 * sc-slamon: the SLA monitor. Boot only; the work is in timers.c (SLA
 * timers fired on time from a heap) and clocks.c (the open-clocks gauge).
 * Return visits, feedback, KPIs and pause/resume come as modules of their
 * own beside them.
 */
#include <stdbool.h>
#include <stddef.h>

#include "clocks.h"
#include "service.h"
#include "timers.h"

static const struct service_def slamon_def = {
	.program = "sc-slamon",
	.summary = "SLA monitor: fires SLA warnings, breaches and escalations on time",
	/* No subscriptions yet: the client carries the outbox relay's publishes
	 * (sc-slamon alone must still get its events out). */
	.run_outbox = true,
	.on_message = NULL,
};

struct slamon {
	struct timers *timers;
	struct clocks *clocks;
};

/* Stop sequence: no new fires; done when the fires in flight have answered
 * (their events are then committed to the outbox: nothing is lost). */
static bool slamon_drain(void *arg)
{
	struct slamon *app = arg;
	timers_stop(app->timers);
	clocks_stop(app->clocks);
	return timers_in_flight(app->timers) == 0;
}

int main(int argc, char **argv)
{
	struct service s;
	struct slamon app = { NULL, NULL };
	int rc = service_init(&s, &slamon_def, argc, argv);
	/* 0 without a loop: --help was answered. */
	if (rc != 0 || s.base == NULL)
		goto out;
	rc = 1;
	app.timers = timers_new(s.base, s.db, s.metrics);
	app.clocks = clocks_new(s.base, s.db, s.metrics);
	if (app.timers == NULL || app.clocks == NULL)
		goto out;
	s.app = &app;
	s.drain = slamon_drain;
	rc = service_run(&s);
out:
	/* Before service_done: their events live on its event_base. */
	clocks_free(app.clocks);
	timers_free(app.timers);
	service_done(&s);
	return rc;
}

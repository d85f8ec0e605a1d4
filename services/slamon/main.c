/*
 * sc-slamon: the SLA monitor. Boot only; the work is in timers.c (SLA
 * timers fired on time from a heap), clocks.c (the open-clocks gauge),
 * visits.c (return visits falling due and timing out), feedback.c
 * (return-visit feedback from MQTT) and kpi.c (province KPIs). Pause and
 * resume are SQL functions (sc_ticket_pause/resume) the API and scctl call.
 */
#include <stdbool.h>
#include <stddef.h>

#include "clocks.h"
#include "feedback.h"
#include "kpi.h"
#include "service.h"
#include "timers.h"
#include "visits.h"

struct slamon {
	struct timers *timers;
	struct clocks *clocks;
	struct visits *visits;
	struct feedback *feedback;
	struct kpi *kpi;
};

static void slamon_on_message(void *arg, const struct mqsub_msg *m)
{
	struct slamon *app = arg;
	feedback_on_message(app->feedback, m);
}

static const struct service_def slamon_def = {
	.program = "sc-slamon",
	.summary = "SLA monitor: SLA warnings, breaches and escalations on time, return visits",
	/* Its own relay: sc-slamon alone must still get its events out. */
	.run_outbox = true,
	.on_message = slamon_on_message,
};

/* Stop sequence: no new fires; done when the fires in flight have answered
 * (their events are then committed to the outbox: nothing is lost). */
static bool slamon_drain(void *arg)
{
	struct slamon *app = arg;
	timers_stop(app->timers);
	clocks_stop(app->clocks);
	visits_stop(app->visits);
	kpi_stop(app->kpi);
	return timers_in_flight(app->timers) == 0 && visits_in_flight(app->visits) == 0 &&
	       feedback_in_flight(app->feedback) == 0 && kpi_in_flight(app->kpi) == 0;
}

int main(int argc, char **argv)
{
	struct service s;
	struct slamon app = { NULL, NULL, NULL, NULL, NULL };
	int rc = service_init(&s, &slamon_def, argc, argv);
	/* 0 without a loop: --help was answered. */
	if (rc != 0 || s.base == NULL)
		goto out;
	rc = 1;
	app.timers = timers_new(s.base, s.db, s.metrics);
	app.clocks = clocks_new(s.base, s.db, s.metrics);
	app.visits = visits_new(s.base, s.db);
	app.feedback = feedback_new(&s);
	app.kpi = kpi_new(s.base, s.db);
	if (app.timers == NULL || app.clocks == NULL || app.visits == NULL || app.feedback == NULL ||
	    app.kpi == NULL)
		goto out;
	s.app = &app;
	s.drain = slamon_drain;
	rc = service_run(&s);
out:
	/* Before service_done: their events live on its event_base. */
	kpi_free(app.kpi);
	feedback_free(app.feedback);
	visits_free(app.visits);
	clocks_free(app.clocks);
	timers_free(app.timers);
	service_done(&s);
	return rc;
}

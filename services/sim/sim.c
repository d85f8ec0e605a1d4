/*
 * Run control of sc-sim: the modules are made before the loop, start once
 * the world (master data) is loaded, and stop after --duration or on
 * SIGTERM. At the end of --duration the sim stops generating, waits (a
 * bounded time) until the broker acknowledged what was sent, prints the final
 * summary and stops the service, which exits 0.
 */
#include <math.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "mqtt.h"
#include "service.h"
#include "sim.h"
#include "timeutil.h"

/* How long the end of --duration waits for outstanding acknowledgements. */
#define FINISH_WAIT_US (5 * TIME_US_PER_S)
#define FINISH_POLL_MS 50

double sim_haversine_km(double lat1, double lon1, double lat2, double lon2)
{
	const double r = 6371.0088; /* mean Earth radius, km */
	const double rad = M_PI / 180.0;
	double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
	double a = sin(dlat / 2) * sin(dlat / 2) +
		   cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
	return 2 * r * atan2(sqrt(a), sqrt(1 - a));
}

double sim_uptime_s(const struct sim *sim)
{
	if (sim->started_mono_us == 0)
		return 0;
	return (double)(time_mono_us() - sim->started_mono_us) / 1e6;
}

void sim_halt(struct sim *sim)
{
	if (sim->halted)
		return;
	sim->halted = true;
	if (sim->duration_ev != NULL)
		evtimer_del(sim->duration_ev);
	devices_stop(sim->devices);
	hotline_stop(sim->hotline);
	actors_stop(sim->actors);
	mischief_stop(sim->mischief);
	summary_stop(sim->summary);
}

static void final_done(struct sim *sim)
{
	sim->final_done = true;
}

/* Starts the final summary once; reports whether it is printed. */
static bool final_summary(struct sim *sim)
{
	if ((sim->opts.quiet && !sim->opts.summary) || sim->world == NULL)
		sim->final_done = true;
	if (!sim->final_started && !sim->final_done) {
		sim->final_started = true;
		summary_final(sim->summary, final_done);
	}
	return sim->final_done;
}

bool sim_drain(void *arg)
{
	struct sim *sim = arg;
	sim_halt(sim);
	return final_summary(sim);
}

static void on_finish_poll(evutil_socket_t fd, short what, void *arg)
{
	struct sim *sim = arg;
	bool acked = pub_pending(sim->pub) == 0 && mq_publish_pending(sim->svc->mq) == 0;
	if (!acked && time_mono_us() < sim->finish_deadline_us) {
		struct timeval tv = { 0, FINISH_POLL_MS * 1000 };
		evtimer_add(sim->finish_ev, &tv);
		return;
	}
	if (!acked)
		log_warn("duration over: messages still unacknowledged pending=%zu",
			 pub_pending(sim->pub) + mq_publish_pending(sim->svc->mq));
	/* The final summary is printed by the drain hook. */
	service_stop(sim->svc);
}

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
	struct sim *sim = arg;
	log_info("duration over: stopping seconds=%ld", sim->opts.duration_s);
	sim_halt(sim);
	sim->finish_deadline_us = time_mono_us() + FINISH_WAIT_US;
	on_finish_poll(-1, 0, sim);
}

void sim_fail(struct sim *sim, const char *why)
{
	log_error("%s", why);
	sim->exit_code = 1;
	sim->final_done = true; /* nothing worth summing up */
	sim_halt(sim);
	service_stop(sim->svc);
}

void sim_world_ready(struct sim *sim)
{
	struct world *w = sim->world;
	sim->started_mono_us = time_mono_us();
	if (devices_start(sim->devices) != 0 || actors_start(sim->actors) != 0 ||
	    hotline_start(sim->hotline) != 0 || mischief_start(sim->mischief) != 0 ||
	    summary_start(sim->summary) != 0) {
		sim_fail(sim, "cannot start the simulation: out of memory");
		return;
	}
	sim->running = true;
	/* Offers held back until the engineers existed may come now. */
	service_pause_intake(sim->svc, false);
	log_info("simulation started seed=%llu devices=%zu engineers=%zu partners=%zu "
		 "customers=%zu duration=%ld",
		 (unsigned long long)sim->opts.seed, devices_count(sim->devices), w->nengineers,
		 w->npartners, w->ncustomers, sim->opts.duration_s);
	if (sim->opts.duration_s > 0) {
		/* Counted from here, so a slow database does not eat into the run. */
		struct timeval tv = { sim->opts.duration_s, 0 };
		evtimer_add(sim->duration_ev, &tv);
	}
}

int sim_init(struct sim *sim, struct service *svc)
{
	sim->svc = svc;
	sim->duration_ev = evtimer_new(svc->base, on_duration, sim);
	sim->finish_ev = evtimer_new(svc->base, on_finish_poll, sim);
	sim->pub = pub_new(sim);
	sim->devices = devices_new(sim);
	sim->actors = actors_new(sim);
	sim->hotline = hotline_new(sim);
	sim->summary = summary_new(sim);
	sim->mischief = mischief_new(sim);
	if (sim->opts.journal != NULL) {
		sim->journal = journal_open(sim, sim->opts.journal);
		if (sim->journal == NULL)
			return -1;
	}
	if (sim->mischief == NULL || sim->duration_ev == NULL || sim->finish_ev == NULL || sim->pub == NULL ||
	    sim->devices == NULL || sim->actors == NULL || sim->hotline == NULL ||
	    sim->summary == NULL || actors_subscribe(sim->actors) != 0 || world_load(sim) != 0) {
		log_error("cannot start: out of memory");
		return -1;
	}
	/* Offers that the broker kept for our session wait until the world is
	 * loaded and the engineers exist. */
	service_pause_intake(svc, true);
	return 0;
}

void sim_free(struct sim *sim)
{
	summary_free(sim->summary);
	mischief_free(sim->mischief);
	journal_close(sim->journal);
	hotline_free(sim->hotline);
	actors_free(sim->actors);
	devices_free(sim->devices);
	pub_free(sim->pub);
	if (sim->duration_ev != NULL)
		event_free(sim->duration_ev);
	if (sim->finish_ev != NULL)
		event_free(sim->finish_ev);
	world_free(sim->world);
	sim->summary = NULL;
	sim->mischief = NULL;
	sim->journal = NULL;
	sim->hotline = NULL;
	sim->actors = NULL;
	sim->devices = NULL;
	sim->pub = NULL;
	sim->duration_ev = NULL;
	sim->finish_ev = NULL;
	sim->world = NULL;
}

/*
 * Simulated customer requests (contract section 2.2) on sc/v1/requests/new:
 * Poisson arrivals at --requests-per-min, a random customer, one of its
 * sites and mostly a device there, category mostly fault, channels mixed.
 *
 * request_id is SIM-{seed}-{n}, n counting from 1: a rerun with the same
 * seed sends the same ids, which the platform treats as repeats of the same
 * requests (request_id is the idempotency key). Runs meant to add tickets
 * to an existing database take a new seed (the default seed is new each run).
 *
 * Requests go through publish.c, so they are retried until the broker took
 * them; requests_sent counts the acknowledged ones.
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

#define DEVICE_NAMED_PCT 85.0 /* requests that name a device of the site */

struct weighted {
	const char *name;
	double weight;
};

static const struct weighted categories[] = {
	{ "fault", 70 }, { "maintenance", 10 }, { "consultation", 8 },
	{ "complaint", 5 }, { "installation", 4 }, { "training", 3 },
};
static const struct weighted fault_severities[] = {
	{ "critical", 15 }, { "major", 55 }, { "minor", 30 },
};
static const struct weighted channels[] = {
	{ "hotline", 45 }, { "app", 25 }, { "web", 20 }, { "email", 10 },
};

/* What customers say, by category (same order as categories[]). */
static const char *const descriptions[][4] = {
	{ "relay trips at light load", "protection device shows a self-test alarm",
	  "no communication with the station controller", "breaker failure alarm after a storm" },
	{ "annual inspection due", "please schedule preventive maintenance",
	  "battery bank check requested", "settings review before the summer peak" },
	{ "question about firmware versions", "how to export the event records",
	  "advice on setting the differential slope", "which spare parts to keep on site" },
	{ "engineer arrived late last time", "the fault came back after the repair",
	  "nobody called back about our request", "the report we received is incomplete" },
	{ "new bay to commission", "install the replacement protection panel",
	  "commission the new metering cabinet", "install the remote terminal unit" },
	{ "training for the new operators", "refresher on relay testing",
	  "training on the substation automation HMI", "metering software training" },
};

static const char *const contact_names[] = {
	"Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct hotline {
	struct sim *sim;
	struct sim_rng rng;
	struct event *timer;
	uint64_t n;          /* requests made so far */
	char id[96];         /* request_id of the last request built */
	struct strbuf buf;
};

static size_t pick(struct sim_rng *r, const struct weighted *w, size_t n)
{
	double total = 0;
	for (size_t i = 0; i < n; i++)
		total += w[i].weight;
	double x = sim_rng_unit(r) * total;
	for (size_t i = 0; i < n; i++) {
		if (x < w[i].weight)
			return i;
		x -= w[i].weight;
	}
	return n - 1;
}

static void schedule(struct hotline *h)
{
	double mean_s = 60.0 / h->sim->opts.requests_per_min;
	double s = sim_rng_exp(&h->rng, mean_s);
	if (s > 86400)
		s = 86400;
	struct timeval tv = { (time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6) };
	evtimer_add(h->timer, &tv);
}

static void on_acked(void *arg)
{
	struct hotline *h = arg;
	h->sim->stats.requests_sent++;
}

/* Builds the next request into h->buf. */
static void build_request(struct hotline *h)
{
	const struct world *w = h->sim->world;
	struct sim_rng *r = &h->rng;
	const struct world_customer *c = &w->customers[sim_rng_index(r, w->ncustomers)];
	const struct world_site *s = &c->sites[sim_rng_index(r, c->nsites)];
	size_t cat = pick(r, categories, COUNT(categories));
	const char *channel = channels[pick(r, channels, COUNT(channels))].name;
	char *id = h->id, ts[TIME_RFC3339_LEN];
	snprintf(id, sizeof(h->id), "SIM-%llu-%llu", (unsigned long long)h->sim->opts.seed,
		 (unsigned long long)++h->n);
	struct strbuf *b = &h->buf;
	strbuf_reset(b);
	strbuf_puts(b, "{\"request_id\":");
	strbuf_json_str(b, id);
	strbuf_printf(b, ",\"channel\":\"%s\",\"customer_id\":", channel);
	strbuf_json_str(b, c->id);
	strbuf_puts(b, ",\"site_id\":");
	strbuf_json_str(b, s->id);
	if (s->ndevices > 0 && sim_rng_chance(r, DEVICE_NAMED_PCT)) {
		strbuf_puts(b, ",\"device_id\":");
		strbuf_json_str(b, s->devices[sim_rng_index(r, s->ndevices)]);
	}
	strbuf_printf(b, ",\"category\":\"%s\"", categories[cat].name);
	if (cat == 0)
		strbuf_printf(b, ",\"severity\":\"%s\"",
			      fault_severities[pick(r, fault_severities, COUNT(fault_severities))].name);
	strbuf_puts(b, ",\"description\":");
	strbuf_json_str(b, descriptions[cat][sim_rng_index(r, COUNT(descriptions[cat]))]);
	strbuf_printf(b, ",\"contact\":{\"name\":\"%s\",\"phone\":\"+86 13%d %04d %04d\"}",
		      contact_names[sim_rng_index(r, COUNT(contact_names))],
		      (int)sim_rng_index(r, 10), (int)sim_rng_index(r, 10000),
		      (int)sim_rng_index(r, 10000));
	strbuf_printf(b, ",\"ts\":\"%s\"}", time_format_rfc3339(time_now_us(), ts, sizeof(ts)));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hotline *h = arg;
	build_request(h);
	if (!strbuf_ok(&h->buf) ||
	    pub_send(h->sim->pub, "sc/v1/requests/new", h->buf.data, "request", h->id, on_acked,
		     h) != 0)
		log_error("cannot send a request: out of memory");
	else
		log_debug("request sent n=%llu", (unsigned long long)h->n);
	schedule(h);
}

int hotline_start(struct hotline *h)
{
	if (h->sim->opts.requests_per_min <= 0)
		return 0;
	if (h->sim->world->ncustomers == 0) {
		log_warn("no customers with sites: no requests");
		return 0;
	}
	schedule(h);
	return 0;
}

void hotline_stop(struct hotline *h)
{
	if (h != NULL)
		evtimer_del(h->timer);
}

struct hotline *hotline_new(struct sim *sim)
{
	struct hotline *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->sim = sim;
	sim_rng_init(&h->rng, sim->opts.seed, SIM_STREAM_HOTLINE);
	strbuf_init(&h->buf);
	h->timer = evtimer_new(sim->svc->base, on_timer, h);
	if (h->timer == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void hotline_free(struct hotline *h)
{
	if (h == NULL)
		return;
	event_free(h->timer);
	strbuf_free(&h->buf);
	free(h);
}

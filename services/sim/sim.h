#ifndef SC_SERVICES_SIM_SIM_H
#define SC_SERVICES_SIM_SIM_H

/*
 * sc-sim: a simulated country driving the platform from outside, through
 * the same MQTT topics real devices, front desks, engineers and partners use
 * (contract section 2), and reading the platform's database only for its
 * master data at start (world.c) and for the live summary (summary.c).
 *
 * Modules, one concern each, all on the one loop thread:
 *   main.c     flags and boot
 *   sim.c      run control: start when the world is loaded, end after
 *              --duration or on SIGTERM, final summary
 *   world.c    master data loaded once from PostgreSQL
 *   publish.c  QoS 1 publishes retried until the broker acknowledged them
 *   devices.c  telemetry with daily curves, faults drifting over rules
 *   actors.c   engineers and partners answering offers
 *   hotline.c  customer requests (hotline, web, app, e-mail)
 *   summary.c  one-screen summary read from the database
 *   journal.c  --journal: every acknowledged QoS 1 message, one line each
 *   mischief.c --dup-pct, --malformed-pct: repeats and malformed messages
 *              mixed into the stream (fault tests, tests/fault)
 *
 * Repeatability: every random choice comes from a private PRNG stream
 * derived from --seed (one stream per module, so e.g. the hotline's
 * sequence does not depend on how many offers arrived). What arrives from
 * the platform (offers, their timing) is outside the seed's reach.
 */

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct service;
struct world;
struct pub;
struct devices;
struct actors;
struct hotline;
struct summary;
struct event;
struct journal;
struct mischief;

/* Flags of sc-sim (main.c parses them; see --help). */
struct sim_opts {
	long duration_s;         /* 0: run until SIGTERM */
	uint64_t seed;           /* --seed, else derived from the clock */
	long devices;            /* first N devices of the registry; -1: all */
	long telemetry_ms;       /* per device */
	double fault_pct;        /* share of devices in a fault at any time */
	double requests_per_min; /* hotline/web/app/e-mail requests */
	double accept_pct;       /* offers accepted */
	double silent_pct;       /* offers left unanswered; the rest are declined */
	double time_scale;       /* simulated seconds per real second (travel, work) */
	bool summary;            /* live summary on stdout */
	bool quiet;              /* warnings and errors only; no final summary unless --summary */
	const char *journal;     /* --journal FILE: acknowledged messages; NULL: none */
	double dup_pct;          /* repeats of acknowledged messages, % of the stream */
	double malformed_pct;    /* malformed messages, % of all messages sent */
	double alarm_pct;        /* faults that also raise a device alarm (model's code) */
};

/* Counters of what the simulator did (shown in the summary). */
struct sim_stats {
	uint64_t telemetry_sent;    /* handed to the MQTT client */
	uint64_t telemetry_acked;   /* PUBACK received */
	uint64_t telemetry_failed;  /* refused (offline) or failed: not sent */
	uint64_t faults_started;
	uint64_t faults_repaired;   /* ended by an engineer's resolved */
	uint64_t faults_recovered;  /* ended by themselves (nobody came) */
	uint64_t requests_sent;
	uint64_t offers_received;
	uint64_t offers_accepted;
	uint64_t offers_declined;
	uint64_t offers_silent;     /* left unanswered, or arrived expired */
	uint64_t offers_withdrawn;
	uint64_t jobs_resolved;
	uint64_t jobs_unresolved;
	uint64_t jobs_abandoned;    /* in progress when the sim stopped */
	uint64_t events_sent;       /* order events, statuses and requests acknowledged */
	uint64_t alarms_sent;       /* device alarms acknowledged */
	uint64_t dups_sent;         /* repeats acknowledged (--dup-pct) */
	uint64_t malformed_sent;    /* malformed messages acknowledged (--malformed-pct) */
};

struct sim {
	struct service *svc;
	struct sim_opts opts;
	struct world *world;      /* NULL until loaded */
	struct pub *pub;
	struct devices *devices;
	struct actors *actors;
	struct hotline *hotline;
	struct summary *summary;
	struct journal *journal;  /* NULL without --journal */
	struct mischief *mischief;
	struct event *duration_ev;  /* --duration elapsed */
	struct event *finish_ev;    /* polls until publishes are acknowledged */
	int64_t started_mono_us;    /* when the world was loaded (monotonic) */
	int64_t finish_deadline_us; /* monotonic: give up waiting for acks */
	int exit_code;              /* returned by main when not 0 */
	bool running;               /* generators started */
	bool halted;                /* generators stopped for good */
	bool final_started;         /* final summary requested */
	bool final_done;            /* final summary printed (or skipped) */
	struct sim_stats stats;
};

/* ---- sim.c: run control ------------------------------------------------- */

/* Makes the modules and queues the world load; called once before the loop.
 * Returns 0 or -1 (logged). */
int sim_init(struct sim *sim, struct service *svc) __attribute__((warn_unused_result));

/* Called by world.c when the world is loaded: starts every generator. */
void sim_world_ready(struct sim *sim);

/* Called on a fatal problem after the loop started: logs, sets the exit
 * status to 1 and stops the program. */
void sim_fail(struct sim *sim, const char *why);

/* Stops every generator and timer (idempotent); publishes in flight go on. */
void sim_halt(struct sim *sim);

/* service drain hook: halts, prints the final summary, reports done. */
bool sim_drain(void *arg);

/* Frees the modules (their timers included): call before service_done(). */
void sim_free(struct sim *sim);

/* Seconds since the world was loaded (0 before). */
double sim_uptime_s(const struct sim *sim);

/* ---- PRNG: xorshift64* seeded through splitmix64 ------------------------ */

struct sim_rng {
	uint64_t s; /* never 0 */
};

static inline uint64_t sim_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* A stream of its own for each (seed, stream) pair. */
static inline void sim_rng_init(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * UINT64_C(0xD1B54A32D192ED03));
	r->s = sim_splitmix64(&x);
	if (r->s == 0)
		r->s = UINT64_C(0x2545F4914F6CDD1D);
}

static inline uint64_t sim_rng_next(struct sim_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * UINT64_C(0x2545F4914F6CDD1D);
}

/* Uniform in [0, 1). */
static inline double sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double sim_rng_uniform(struct sim_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * sim_rng_unit(r);
}

/* Uniform index in [0, n); n > 0. */
static inline size_t sim_rng_index(struct sim_rng *r, size_t n)
{
	return (size_t)(sim_rng_unit(r) * (double)n) % n;
}

/* True with probability pct percent. */
static inline bool sim_rng_chance(struct sim_rng *r, double pct)
{
	return sim_rng_unit(r) * 100.0 < pct;
}

/* Exponential with the given mean (Poisson arrivals). */
static inline double sim_rng_exp(struct sim_rng *r, double mean)
{
	return -mean * log(1.0 - sim_rng_unit(r));
}

/* PRNG streams, one per module. */
enum sim_stream {
	SIM_STREAM_DEVICES = 1,
	SIM_STREAM_FAULTS,
	SIM_STREAM_ACTORS,
	SIM_STREAM_HOTLINE,
	SIM_STREAM_MISCHIEF,
};

/* Great-circle distance in km. */
double sim_haversine_km(double lat1, double lon1, double lat2, double lon2);

/* ---- publish.c: QoS 1 publishes that are retried until acknowledged ----- */

/* Called once the broker acknowledged the message (never on failure). */
typedef void (*pub_done_cb)(void *arg);

struct pub *pub_new(struct sim *sim) __attribute__((warn_unused_result));
void pub_free(struct pub *p);

/*
 * Publishes payload (copied) at QoS 1, retrying every PUB_RETRY_MS while the
 * broker is away, until acknowledged; then reports it to mischief_acked()
 * as `kind` with `key` (both copied; kind NULL: not reported) and calls cb
 * (may be NULL). Returns 0, or -1 on allocation failure (cb never called).
 */
int pub_send(struct pub *p, const char *topic, const char *payload, const char *kind,
	     const char *key, pub_done_cb cb, void *arg) __attribute__((warn_unused_result));

/* Messages not yet acknowledged. */
size_t pub_pending(const struct pub *p);

/* ---- world.c ------------------------------------------------------------- */

/* An alert rule on a metric (silent rules without a metric are left out). */
struct world_rule {
	const char *id;
	const char *model;    /* "*" for every model */
	const char *metric;
	const char *op;       /* > >= < <= == != silent */
	double threshold;     /* NAN for silent */
	double clear;         /* NAN when the rule has none */
	double for_s;
};

struct world_device {
	const char *id;
	const char *model;
	const char *site_id;
	double run_hours;      /* last reported, else the import's, else 0 */
	uint64_t last_seq;     /* newest seq the platform stored, 0 if none */
	const char *alarm_code; /* one alarm code of its model (--alarm-pct), NULL if none */
};

struct world_site {
	const char *id;
	const char *province;
	const char **devices;  /* device ids at the site */
	size_t ndevices;
};

struct world_customer {
	const char *id;
	struct world_site *sites;
	size_t nsites;
};

struct world_engineer {
	const char *id;
	const char *name;
	bool remote;            /* kind remote */
	double lat, lon;        /* home; the province's centre when not given */
	bool has_home;
	int max_concurrent;
	bool has_status;        /* the platform holds a status it reported */
};

struct world_partner {
	const char *id;
	const char *name;
	int capacity;
	double response_s;      /* promised response time */
};

/* Master data, read-only once loaded. Strings point into `root`. */
struct world {
	void *root;             /* the cJSON tree holding every string */
	struct world_device *devices;
	size_t ndevices;
	struct world_rule *rules;
	size_t nrules;
	struct world_customer *customers; /* only those with at least one site */
	size_t ncustomers;
	struct world_engineer *engineers;
	size_t nengineers;
	struct world_partner *partners;
	size_t npartners;
	const char **provinces; /* codes, sorted */
	size_t nprovinces;
	double travel_kmh;      /* settings.travel_kmh */
};

/* Queues the load on the sim's database; calls sim_world_ready() or
 * sim_fail() from the loop. Returns 0 or -1 (allocation failure). */
int world_load(struct sim *sim) __attribute__((warn_unused_result));
void world_free(struct world *w);

/* ---- devices.c ----------------------------------------------------------- */

struct devices *devices_new(struct sim *sim) __attribute__((warn_unused_result));
void devices_free(struct devices *d);
/* Starts publishing telemetry for the world's devices. 0 or -1. */
int devices_start(struct devices *d) __attribute__((warn_unused_result));
void devices_stop(struct devices *d);
/* An engineer resolved a job at this device: its fault (if any) ends. */
void devices_repair(struct devices *d, const char *device_id);
/* Devices simulated, and of them in a fault now. */
size_t devices_count(const struct devices *d);
size_t devices_faulty(const struct devices *d);

/* ---- actors.c ------------------------------------------------------------ */

struct actors *actors_new(struct sim *sim) __attribute__((warn_unused_result));
void actors_free(struct actors *a);
/* Subscribes to the orders topics (before the loop). 0 or -1. */
int actors_subscribe(struct actors *a) __attribute__((warn_unused_result));
/* Builds the engineers and partners of the world. 0 or -1. */
int actors_start(struct actors *a) __attribute__((warn_unused_result));
/* Stops answering and cancels every job. */
void actors_stop(struct actors *a);
/* Inbound MQTT (the orders topics). */
void actors_on_message(struct actors *a, const char *topic, const char *payload, size_t len);
/* Jobs in progress. */
size_t actors_jobs(const struct actors *a);

/* ---- hotline.c ----------------------------------------------------------- */

struct hotline *hotline_new(struct sim *sim) __attribute__((warn_unused_result));
void hotline_free(struct hotline *h);
int hotline_start(struct hotline *h) __attribute__((warn_unused_result));
void hotline_stop(struct hotline *h);

/* ---- journal.c: what the broker acknowledged, for checkers ------------- */

/*
 * Opens (appends to) path; lines are "kind TAB topic TAB key TAB note LF",
 * flushed every second and on close. NULL on failure (logged).
 */
struct journal *journal_open(struct sim *sim, const char *path) __attribute__((warn_unused_result));
/* Flushes and closes. NULL is a no-op. */
void journal_close(struct journal *j);
/* Appends one line; tabs and newlines in the fields are replaced by spaces. */
void journal_write(struct journal *j, const char *kind, const char *topic, const char *key,
		   const char *note);

/* ---- mischief.c: repeats and malformed messages --------------------------- */

struct mischief *mischief_new(struct sim *sim) __attribute__((warn_unused_result));
void mischief_free(struct mischief *m);
/* Starts the repeat/malformed timer when --dup-pct or --malformed-pct asks. 0 or -1. */
int mischief_start(struct mischief *m) __attribute__((warn_unused_result));
void mischief_stop(struct mischief *m);
/*
 * The broker acknowledged a message of `kind` (telemetry, alarm, request,
 * event, status; dup and malformed are mischief's own): journaled, counted,
 * and kept as a candidate for a repeat.
 */
void mischief_acked(struct mischief *m, const char *kind, const char *topic, const char *key,
		    const char *note, const char *payload);

/* ---- summary.c ----------------------------------------------------------- */

struct summary *summary_new(struct sim *sim) __attribute__((warn_unused_result));
void summary_free(struct summary *s);
/* Starts the live summary (--summary). 0 or -1. */
int summary_start(struct summary *s) __attribute__((warn_unused_result));
void summary_stop(struct summary *s);
/*
 * Queries the database once more and prints the final summary, then calls
 * done (also when the query failed or took longer than a few seconds).
 */
void summary_final(struct summary *s, void (*done)(struct sim *sim));

#endif

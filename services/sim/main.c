/*
 * sc-sim: flags and boot; the simulation is in sim.c and the modules it
 * starts (see sim.h).
 *
 * Flags: service_init() knows only --config and --help and refuses anything
 * else, so sc-sim takes its own flags out of argv first and hands
 * service_init() the rest (no change to common/). --help is left in, and
 * the flags are listed in the summary that service_init() prints with it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt.h"
#include "mqsub.h"
#include "service.h"
#include "sim.h"
#include "timeutil.h"

static void on_message(void *arg, const struct mqsub_msg *m);

static const struct service_def def = {
	.program = "sc-sim",
	.summary =
		"Simulator and load generator: devices sending telemetry (some drifting into\n"
		"faults), customer requests, engineers and partners answering offers.\n"
		"\n"
		"Flags (after the common ones, all optional):\n"
		"  --duration SECONDS         run this long, print the final summary, exit 0\n"
		"                             (default 0: until SIGTERM)\n"
		"  --seed N                   makes a run repeatable (default: from the clock)\n"
		"  --devices N                simulate the first N devices of the registry\n"
		"                             (default all)\n"
		"  --telemetry-interval-ms MS telemetry period per device (default 2000)\n"
		"  --fault-pct P              share of devices that drift over an alert rule\n"
		"                             long enough to fire (default 10)\n"
		"  --requests-per-min R       hotline/web/app/e-mail requests (default 2)\n"
		"  --accept-pct P             offers accepted (default 90); the rest are\n"
		"  --silent-pct P             left unanswered (default 0) or declined\n"
		"  --time-scale X             simulated seconds per real second for travel and\n"
		"                             work (default 60)\n"
		"  --summary                  live summary on stdout (every second on a\n"
		"                             terminal, else a line every 5 s); the zone\n"
		"                             dashboard address comes from SC_HTTP_ADDR\n"
		"  --quiet                    only warnings and errors; no final summary\n"
		"                             unless --summary\n"
		"  --journal FILE             append a line per message the broker\n"
		"                             acknowledged: kind, topic, key, note (for\n"
		"                             checkers, docs/faults.md)\n"
		"  --alarm-pct P              faults that also raise the model's device\n"
		"                             alarm, cleared when they end (default 0)\n"
		"  --dup-pct P                repeat P earlier acknowledged messages per 100\n"
		"                             (same seq, request_id, event; default 0)\n"
		"  --malformed-pct P          make P % of the messages malformed (default 0)",
	.publish = true,
	.run_outbox = false, /* sc-sim stands outside the platform: nothing to relay */
	.on_message = on_message,
};

static void on_message(void *arg, const struct mqsub_msg *m)
{
	struct sim *sim = arg;
	actors_on_message(sim->actors, m->topic, m->payload, m->len);
	/* A simulated engineer forgets nothing it must keep: done at once. */
	service_ack(sim->svc, m->token);
}

/* ---- flags ------------------------------------------------------------- */

enum flag_kind { FLAG_LONG, FLAG_U64, FLAG_DOUBLE, FLAG_BOOL, FLAG_STR };

struct flag {
	const char *name;
	enum flag_kind kind;
	size_t offset;         /* in struct sim_opts */
	double min, max;       /* FLAG_LONG and FLAG_DOUBLE */
};

static const struct flag flags[] = {
	{ "--duration", FLAG_LONG, offsetof(struct sim_opts, duration_s), 0, 31536000 },
	{ "--seed", FLAG_U64, offsetof(struct sim_opts, seed), 0, 0 },
	{ "--devices", FLAG_LONG, offsetof(struct sim_opts, devices), 0, 100000000 },
	{ "--telemetry-interval-ms", FLAG_LONG, offsetof(struct sim_opts, telemetry_ms), 1, 86400000 },
	{ "--fault-pct", FLAG_DOUBLE, offsetof(struct sim_opts, fault_pct), 0, 100 },
	{ "--requests-per-min", FLAG_DOUBLE, offsetof(struct sim_opts, requests_per_min), 0, 6000000 },
	{ "--accept-pct", FLAG_DOUBLE, offsetof(struct sim_opts, accept_pct), 0, 100 },
	{ "--silent-pct", FLAG_DOUBLE, offsetof(struct sim_opts, silent_pct), 0, 100 },
	{ "--time-scale", FLAG_DOUBLE, offsetof(struct sim_opts, time_scale), 0.001, 1e9 },
	{ "--summary", FLAG_BOOL, offsetof(struct sim_opts, summary), 0, 0 },
	{ "--quiet", FLAG_BOOL, offsetof(struct sim_opts, quiet), 0, 0 },
	{ "--journal", FLAG_STR, offsetof(struct sim_opts, journal), 0, 0 },
	{ "--alarm-pct", FLAG_DOUBLE, offsetof(struct sim_opts, alarm_pct), 0, 100 },
	{ "--dup-pct", FLAG_DOUBLE, offsetof(struct sim_opts, dup_pct), 0, 100 },
	{ "--malformed-pct", FLAG_DOUBLE, offsetof(struct sim_opts, malformed_pct), 0, 90 },
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static void opts_default(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->duration_s = 0;
	/* Not repeatable unless asked: a clock-derived seed. */
	o->seed = (uint64_t)time_now_us();
	o->devices = -1;
	o->telemetry_ms = 2000;
	o->fault_pct = 10;
	o->requests_per_min = 2;
	o->accept_pct = 90;
	o->silent_pct = 0;
	o->time_scale = 60;
}

/* Parses one flag's value into o. 0, or -1 with err filled. */
static int flag_set(const struct flag *f, const char *v, struct sim_opts *o, char *err,
		    size_t errlen)
{
	char *end = NULL;
	void *field = (char *)o + f->offset;
	errno = 0;
	switch (f->kind) {
	case FLAG_LONG: {
		long n = strtol(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < (long)f->min || n > (long)f->max)
			goto bad;
		*(long *)field = n;
		return 0;
	}
	case FLAG_U64: {
		if (v[0] == '-')
			goto bad;
		unsigned long long n = strtoull(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0')
			goto bad;
		*(uint64_t *)field = (uint64_t)n;
		return 0;
	}
	case FLAG_DOUBLE: {
		double d = strtod(v, &end);
		if (errno != 0 || end == v || *end != '\0' || !isfinite(d) || d < f->min || d > f->max)
			goto bad;
		*(double *)field = d;
		return 0;
	}
	case FLAG_STR:
		if (v[0] == '\0')
			goto bad;
		*(const char **)field = v; /* argv outlives the run */
		return 0;
	case FLAG_BOOL:
		break;
	}
bad:
	if (f->kind == FLAG_STR)
		snprintf(err, errlen, "%s: empty value", f->name);
	else if (f->kind == FLAG_U64)
		snprintf(err, errlen, "%s: bad value \"%s\" (expected an unsigned integer)", f->name, v);
	else if (f->kind == FLAG_LONG)
		snprintf(err, errlen, "%s: bad value \"%s\" (expected an integer from %ld to %ld)",
			 f->name, v, (long)f->min, (long)f->max);
	else
		snprintf(err, errlen, "%s: bad value \"%s\" (expected a number from %g to %g)", f->name,
			 v, f->min, f->max);
	return -1;
}

/*
 * Takes the sim's flags ("--flag VALUE" or "--flag=VALUE") out of argv into
 * o and leaves the rest, for service_init(), in rest (argv[0] first; *nrest
 * set). Returns 0, or -1 with err filled (bad usage).
 */
static int parse_flags(int argc, char **argv, struct sim_opts *o, char **rest, int *nrest,
		       char *err, size_t errlen)
{
	int n = 0;
	rest[n++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct flag *f = NULL;
		const char *value = NULL;
		for (size_t k = 0; k < NFLAGS && f == NULL; k++) {
			size_t len = strlen(flags[k].name);
			if (strncmp(a, flags[k].name, len) != 0)
				continue;
			if (a[len] == '\0') {
				f = &flags[k];
			} else if (a[len] == '=' && flags[k].kind != FLAG_BOOL) {
				f = &flags[k];
				value = a + len + 1;
			}
		}
		if (f == NULL) {
			/* --config FILE stays paired for service_init(). */
			rest[n++] = argv[i];
			if (strcmp(a, "--config") == 0 && i + 1 < argc)
				rest[n++] = argv[++i];
			continue;
		}
		if (f->kind == FLAG_BOOL) {
			*(bool *)((char *)o + f->offset) = true;
			continue;
		}
		if (value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", f->name);
				return -1;
			}
			value = argv[++i];
		}
		if (flag_set(f, value, o, err, errlen) != 0)
			return -1;
	}
	if (o->accept_pct + o->silent_pct > 100) {
		snprintf(err, errlen, "--accept-pct %g and --silent-pct %g add up to more than 100",
			 o->accept_pct, o->silent_pct);
		return -1;
	}
	rest[n] = NULL;
	*nrest = n;
	return 0;
}

int main(int argc, char **argv)
{
	static struct service svc;
	static struct sim sim;
	char err[256];
	int nrest = 0;
	int rc = 2;
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (rest == NULL) {
		fprintf(stderr, "sc-sim: out of memory\n");
		return 1;
	}
	opts_default(&sim.opts);
	if (parse_flags(argc, argv, &sim.opts, rest, &nrest, err, sizeof(err)) != 0) {
		fprintf(stderr, "sc-sim: %s (see --help)\n", err);
		goto out_args;
	}
	rc = service_init(&svc, &def, nrest, rest);
	if (rc != 0 || svc.base == NULL)
		goto out;
	if (sim.opts.quiet && log_get_level() > LOG_WARN)
		log_set_level(LOG_WARN);
	svc.app = &sim;
	svc.drain = sim_drain;
	if (sim_init(&sim, &svc) != 0) {
		rc = 1;
		goto out;
	}
	rc = service_run(&svc);
	if (rc == 0)
		rc = sim.exit_code;
out:
	/* The modules' timers live on the loop: free them before it goes. */
	sim_free(&sim);
	service_done(&svc);
out_args:
	free(rest);
	return rc;
}

/*
 * Boot, signals and the stop sequence shared by every long-running program
 * (see service.h).
 */
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "mqsub.h"
#include "mqtt.h"
#include "outbox.h"
#include "sdnotify.h"
#include "timeutil.h"

#define STOP_POLL_MS 50
#define STOP_MAX_POLLS (30 * 1000 / STOP_POLL_MS) /* give up draining after 30 s */
#define READY_POLL_MS 200      /* how soon READY=1 follows the last condition met */
#define SCHEMA_RECHECK_MS 5000 /* a schema check that failed is tried again after this */

/* Built from schema/NNN_name.sql by common/CMakeLists.txt. */
#ifndef SC_SCHEMA_VERSIONS
#error "SC_SCHEMA_VERSIONS must be defined by the build"
#endif

/* What service.schema knows of the database's schema. */
enum {
	SERVICE_SCHEMA_UNKNOWN = 0, /* not looked at yet, or the check failed */
	SERVICE_SCHEMA_CHECKING,    /* a check is queued on the connection */
	SERVICE_SCHEMA_BEHIND,      /* migrations of this build are missing: exiting */
	SERVICE_SCHEMA_CURRENT,     /* every migration of this build is there */
};

int service_parse_args(int argc, char **argv, const char **file, bool *help, int *next,
		       char *err, size_t errlen)
{
	*file = NULL;
	*help = false;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*help = true;
		} else if (strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--config needs a file");
				return -1;
			}
			*file = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			*file = a + 9;
		} else {
			break;
		}
	}
	*next = i;
	return 0;
}

static bool health(void *arg)
{
	struct service *s = arg;
	if (!db_connected(s->db))
		return false;
	return (s->mq == NULL || mq_connected(s->mq)) && (s->in == NULL || mqsub_connected(s->in));
}

/* ---- readiness (service.h) --------------------------------------------- */

/* Sends STATUS=text when it changed; a failure to notify is not ours to fix. */
static void set_status(struct service *s, const char *text)
{
	if (strcmp(s->status, text) == 0)
		return;
	snprintf(s->status, sizeof(s->status), "%s", text);
	if (sdnotifyf("STATUS=%s", text) < 0)
		log_debug("sd_notify failed: %s", strerror(errno));
}

/*
 * The database lacks migrations of this build. Statements prepared against
 * it have failed already and are not prepared again until a reconnect, so
 * waiting for `scctl migrate` would leave a process that looks ready and is
 * not: stop now with status 1, before READY=1, and let the service manager
 * start us again (Restart=on-failure) until the schema is there.
 */
static void schema_behind(struct service *s, long have)
{
	char text[160];

	snprintf(text, sizeof(text),
		 "database schema older than this build (%ld of %d migrations): run scctl migrate",
		 have, SC_SCHEMA_COUNT);
	set_status(s, text);
	log_error("cannot start: database schema older than this build: run scctl migrate "
		  "migrations=%ld expected=%d", have, SC_SCHEMA_COUNT);
	s->schema = SERVICE_SCHEMA_BEHIND;
	s->exit_status = 1;
	event_base_loopexit(s->base, NULL);
}

static void on_schema_count(void *arg, const struct db_reply *r)
{
	struct service *s = arg;
	long have;

	if (r->error != NULL) {
		s->schema = SERVICE_SCHEMA_UNKNOWN;
		return;
	}
	have = strtol(PQgetvalue(r->res, 0, 0), NULL, 10);
	if (have != SC_SCHEMA_COUNT) {
		schema_behind(s, have);
		return;
	}
	s->schema = SERVICE_SCHEMA_CURRENT;
	log_info("database schema current migrations=%d", SC_SCHEMA_COUNT);
}

static void on_schema_table(void *arg, const struct db_reply *r)
{
	struct service *s = arg;
	/* The versions as an int[] literal, passed as a parameter. */
	static const char versions[] = "{" SC_SCHEMA_VERSIONS "}";
	const char *params[] = { versions };

	if (r->error != NULL) {
		s->schema = SERVICE_SCHEMA_UNKNOWN;
		return;
	}
	if (strcmp(PQgetvalue(r->res, 0, 0), "t") != 0) {
		schema_behind(s, 0);
		return;
	}
	/* Every version of this build, not the highest: migrations merged with
	 * lower numbers than one applied already count too. A database newer
	 * than this build (more rows) is fine: migrations only add. */
	if (db_exec_sql(s->db,
			"SELECT count(DISTINCT version) FROM schema_migration"
			" WHERE version = ANY($1::int[])",
			1, params, on_schema_count, s) != 0)
		s->schema = SERVICE_SCHEMA_UNKNOWN;
}

/*
 * Queues the schema check on the program's connection (never blocking the
 * loop). Two steps, so that a database without the bookkeeping table is an
 * answer, not a failed statement in the log.
 */
static void schema_check(struct service *s)
{
	s->schema = SERVICE_SCHEMA_CHECKING;
	s->schema_checked_us = time_mono_us();
	if (db_exec_sql(s->db, "SELECT to_regclass('schema_migration') IS NOT NULL", 0, NULL,
			on_schema_table, s) != 0)
		s->schema = SERVICE_SCHEMA_UNKNOWN;
}

static void on_db_connect(void *arg)
{
	struct service *s = arg;

	if (s->schema != SERVICE_SCHEMA_CURRENT && s->schema != SERVICE_SCHEMA_CHECKING)
		schema_check(s);
}

/*
 * Polled until ready: the conditions live in four modules that report them
 * differently (callbacks, flags), and a poll every 200 ms costs nothing
 * beside the loop's other timers, so no module needs a readiness hook.
 */
static void on_ready_poll(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;

	if (s->stopping || s->ready) {
		evtimer_del(s->ready_timer);
		return;
	}
	if (!db_connected(s->db)) {
		set_status(s, "waiting for the database");
		return;
	}
	if (s->schema != SERVICE_SCHEMA_CURRENT) {
		/* A check that failed (not one that found the schema old: that
		 * ends the process) is tried again. */
		if (s->schema == SERVICE_SCHEMA_UNKNOWN &&
		    time_mono_us() - s->schema_checked_us >= SCHEMA_RECHECK_MS * 1000LL)
			schema_check(s);
		set_status(s, "checking the database schema");
		return;
	}
	if (s->mq != NULL && !mq_connected(s->mq)) {
		set_status(s, "waiting for the broker (publishing)");
		return;
	}
	if (s->in != NULL && !mqsub_subscribed(s->in)) {
		set_status(s, "waiting for the broker to grant the subscriptions");
		return;
	}
	s->ready = true;
	evtimer_del(s->ready_timer);
	snprintf(s->status, sizeof(s->status), "running");
	if (sdnotify("READY=1\nSTATUS=running") < 0)
		log_warn("sd_notify failed: %s", strerror(errno));
	log_info("ready");
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	if (sdnotify("WATCHDOG=1") < 0)
		log_debug("sd_notify watchdog failed: %s", strerror(errno));
}

static void on_stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;
	bool idle = (s->drain == NULL || s->drain(s->app));
	if (s->outbox != NULL)
		idle = idle && outbox_in_flight(s->outbox) == 0;
	idle = idle && db_pending(s->db) == 0;
	/* Everything received is handled and acked: now say goodbye, so the
	 * PUBACKs go out before DISCONNECT and the broker keeps the session. */
	if (idle && s->in != NULL && mqsub_connected(s->in)) {
		if (!s->disconnecting) {
			s->disconnecting = true;
			mqsub_disconnect(s->in);
		}
		idle = false;
	}
	if (idle || ++s->stop_polls >= STOP_MAX_POLLS) {
		if (!idle)
			log_error("stop: gave up draining after 30 s: work left in flight");
		log_info("stopped");
		event_base_loopexit(s->base, NULL);
		return;
	}
	struct timeval tv = { 0, STOP_POLL_MS * 1000 };
	evtimer_add(s->stop_timer, &tv);
}

void service_stop(struct service *s)
{
	if (s->stopping)
		return;
	s->stopping = true;
	log_info("stopping: draining work in flight");
	snprintf(s->status, sizeof(s->status), "draining work in flight");
	if (sdnotify("STOPPING=1\nSTATUS=draining work in flight") < 0)
		log_debug("sd_notify failed: %s", strerror(errno));
	if (s->in != NULL)
		mqsub_set_paused(s->in, true);
	if (s->outbox != NULL)
		outbox_stop(s->outbox);
	struct timeval tv = { 0, 0 };
	evtimer_add(s->stop_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct service *s = arg;
	if (sig == SIGHUP) {
		log_info("reload requested");
		if (s->reload != NULL)
			s->reload(s->app);
		return;
	}
	service_stop(s);
}

static void on_inbound(void *arg, const struct mqsub_msg *m)
{
	struct service *s = arg;
	s->def->on_message(s->app, m);
}

int service_subscribe(struct service *s, const char *filter, int qos)
{
	return s->in != NULL ? mqsub_subscribe(s->in, filter, qos) : -1;
}

void service_ack(struct service *s, unsigned long long token)
{
	if (s->in != NULL && token != 0)
		mqsub_ack(s->in, token);
}

void service_pause_intake(struct service *s, bool paused)
{
	/* Once stopping, intake stays paused whatever the program asks. */
	if (s->in != NULL && (paused || !s->stopping))
		mqsub_set_paused(s->in, paused);
}

static int setup_metrics(struct service *s)
{
	s->metrics = metrics_new();
	if (s->metrics == NULL)
		return -1;
	char labels[200];
	snprintf(labels, sizeof(labels), "service=\"%s\",version=\"%s\"", s->def->program, SC_VERSION);
	metric_set(metrics_gauge(s->metrics, "sc_up", "1 while the service runs", labels), 1);
	metric_set(metrics_gauge(s->metrics, "sc_build_info", "Build of the service", labels), 1);
	const char *addr = s->cfg.metrics_addr;
	if (addr == NULL || addr[0] == '\0' || strcmp(addr, "off") == 0)
		return 0;
	s->http = metrics_http_new(s->base, addr, s->metrics, health, s);
	return s->http != NULL ? 0 : -1;
}

int service_init(struct service *s, const struct service_def *def, int argc, char **argv)
{
	memset(s, 0, sizeof(*s));
	s->def = def;
	log_init(def->program);

	const char *file;
	bool help;
	int next;
	char err[512];
	if (service_parse_args(argc, argv, &file, &help, &next, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", def->program, err);
		return 2;
	}
	if (help) {
		printf("usage: %s [--config FILE]\n%s\n\n", def->program, def->summary);
		config_usage(stdout, def->program);
		return 0;
	}
	if (next < argc) {
		fprintf(stderr, "%s: unknown argument: %s (see --help)\n", def->program, argv[next]);
		return 2;
	}
	if (config_load(&s->cfg, def->program, file, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: bad configuration: %s\n", def->program, err);
		return 1;
	}
	log_set_level(s->cfg.log_level);
	snprintf(s->client_id, sizeof(s->client_id), "%s-%s", def->program, s->cfg.instance);

	/* Paho's threads wake the loop with event_active(). */
	if (evthread_use_pthreads() != 0) {
		log_error("cannot enable libevent threads");
		return 1;
	}
	s->base = event_base_new();
	if (s->base == NULL) {
		log_error("cannot create the event loop");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
	s->sig_hup = evsignal_new(s->base, SIGHUP, on_signal, s);
	s->stop_timer = evtimer_new(s->base, on_stop_poll, s);
	s->ready_timer = event_new(s->base, -1, EV_PERSIST, on_ready_poll, s);
	s->watchdog_timer = event_new(s->base, -1, EV_PERSIST, on_watchdog, s);
	if (!s->sig_term || !s->sig_int || !s->sig_hup || !s->stop_timer || !s->ready_timer ||
	    !s->watchdog_timer) {
		log_error("cannot create signal events");
		return 1;
	}
	evsignal_add(s->sig_term, NULL);
	evsignal_add(s->sig_int, NULL);
	evsignal_add(s->sig_hup, NULL);

	if (setup_metrics(s) != 0) {
		log_error("cannot listen for metrics: addr=%s", s->cfg.metrics_addr);
		return 1;
	}
	s->db = db_new(s->base, s->cfg.pg_dsn, def->program);
	if (s->db == NULL || db_on_connect(s->db, on_db_connect, s) != 0)
		return 1;
	if (def->publish || def->run_outbox) {
		snprintf(s->pub_client_id, sizeof(s->pub_client_id), "%s-out", s->client_id);
		struct mq_options o = {
			.url = s->cfg.mqtt_url, .client_id = s->pub_client_id,
			.user = s->cfg.mqtt_user, .pass = s->cfg.mqtt_pass,
			.cafile = s->cfg.mqtt_cafile, .clean_start = true,
		};
		s->mq = mq_new(s->base, &o);
		if (s->mq == NULL)
			return 1;
	}
	if (def->on_message != NULL) {
		struct mqsub_options o = {
			.url = s->cfg.mqtt_url, .client_id = s->client_id,
			.user = s->cfg.mqtt_user, .pass = s->cfg.mqtt_pass,
			.cafile = s->cfg.mqtt_cafile,
		};
		s->in = mqsub_new(s->base, &o, on_inbound, s);
		if (s->in == NULL)
			return 1;
	}
	if (def->run_outbox && s->mq != NULL) {
		s->outbox = outbox_new(s->base, s->cfg.pg_dsn, s->mq, s->metrics);
		if (s->outbox == NULL)
			return 1;
	}
	return 0;
}

int service_run(struct service *s)
{
	if (s->mq != NULL && mq_connect(s->mq) != 0)
		return 1;
	if (s->in != NULL && mqsub_connect(s->in) != 0)
		return 1;
	log_info("started instance=%s metrics=%s", s->cfg.instance,
		 s->cfg.metrics_addr ? s->cfg.metrics_addr : "off");
	struct timeval ready_tv = { 0, READY_POLL_MS * 1000 };
	evtimer_add(s->ready_timer, &ready_tv);
	/* Half the interval, as sd_watchdog_enabled(3) advises. */
	uint64_t watchdog_us = sdnotify_watchdog_usec() / 2;
	if (watchdog_us > 0) {
		struct timeval tv = { (time_t)(watchdog_us / 1000000),
				      (suseconds_t)(watchdog_us % 1000000) };
		evtimer_add(s->watchdog_timer, &tv);
		log_info("watchdog on interval_ms=%llu",
			 (unsigned long long)(watchdog_us * 2 / 1000));
	}
	if (event_base_dispatch(s->base) < 0) {
		log_error("event loop failed");
		return 1;
	}
	return s->exit_status;
}

void service_done(struct service *s)
{
	outbox_free(s->outbox);
	mqsub_free(s->in);
	mq_free(s->mq);
	db_free(s->db);
	metrics_http_free(s->http);
	metrics_free(s->metrics);
	if (s->sig_term)
		event_free(s->sig_term);
	if (s->sig_int)
		event_free(s->sig_int);
	if (s->sig_hup)
		event_free(s->sig_hup);
	if (s->stop_timer)
		event_free(s->stop_timer);
	if (s->ready_timer)
		event_free(s->ready_timer);
	if (s->watchdog_timer)
		event_free(s->watchdog_timer);
	if (s->base)
		event_base_free(s->base);
	config_free(&s->cfg);
	s->outbox = NULL;
	s->mq = NULL;
	s->in = NULL;
	s->db = NULL;
	s->http = NULL;
	s->metrics = NULL;
	s->base = NULL;
}

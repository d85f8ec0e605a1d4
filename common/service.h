#ifndef SC_COMMON_SERVICE_H
#define SC_COMMON_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct event_base;
struct db;
struct mq;
struct metrics;
struct metrics_http;
struct outbox;
struct mqsub;
struct mqsub_msg;

/*
 * What every long-running program shares: configuration from --config and
 * the environment, logging, one event_base (made after
 * evthread_use_pthreads()), signals (TERM/INT: stop, HUP: reload), the
 * metrics listener with sc_up and sc_build_info, a database connection, the
 * MQTT clients and the outbox relay.
 *
 * MQTT: a program that takes messages gets an inbound client (mqsub.h, our
 * own MQTT 5 subscriber) with client id {program}-{instance} and a
 * persistent session; it acknowledges a QoS 1 message to the broker only
 * when the program calls service_ack() for it, after its commit. A program
 * that publishes gets a Paho client (mqtt.h) with id
 * {program}-{instance}-out and no session (the outbox keeps what is not yet
 * published).
 *
 * Stop sequence on SIGTERM/SIGINT: intake pauses (the broker queues for our
 * session), the outbox relay stops fetching, the program's `drain` hook is
 * polled until it reports nothing left in flight (messages received are
 * committed and acknowledged), then the inbound client disconnects, the loop
 * exits and the program exits 0. What arrives meanwhile stays with the
 * broker for the next start.
 *
 * Service manager (sdnotify.h; the units in deploy/systemd are Type=notify):
 * READY=1 goes out once, when the database is connected and holds every
 * migration this build knows (an older schema waits, rechecked every 5 s,
 * for `scctl migrate`), the publishing client is connected and the inbound
 * client connected with every subscription granted; until then STATUS= says
 * what is awaited. A database that lacks migrations of this build ends the
 * process with status 1 before READY=1 (service_run() returns 1; the unit
 * restarts it until `scctl migrate` has run). STOPPING=1 goes out when the
 * stop sequence starts; WATCHDOG=1 every half $WATCHDOG_USEC while the loop
 * runs.
 */

struct service;

/* Returns true when the program has nothing left in flight. */
typedef bool (*service_drain_cb)(void *arg);
/* Called on SIGHUP and when master data changed. */
typedef void (*service_reload_cb)(void *arg);

struct service_def {
	const char *program;      /* "sc-ingest" */
	const char *summary;      /* one line for --help */
	bool publish;             /* make the publishing (Paho) client */
	bool run_outbox;          /* run an outbox relay (implies publish) */
	/* Inbound messages (NULL: none): each QoS 1 message must be given back
	 * with service_ack(m->token) once durably handled. */
	void (*on_message)(void *app, const struct mqsub_msg *m);
};

struct service {
	const struct service_def *def;
	struct config cfg;
	char client_id[160];
	struct event_base *base;
	struct metrics *metrics;
	struct metrics_http *http;
	struct db *db;
	struct mq *mq;            /* publishing client, NULL if not def->publish */
	struct mqsub *in;         /* inbound client, NULL without def->on_message */
	struct outbox *outbox;
	void *app;                /* the program's state, given to callbacks */
	service_drain_cb drain;
	service_reload_cb reload;
	bool stopping;
	bool disconnecting;       /* inbound client told to disconnect */
	struct event *sig_term, *sig_int, *sig_hup, *stop_timer;
	int stop_polls;
	char pub_client_id[170];
	/* Readiness (see above). */
	bool ready;               /* READY=1 was sent */
	int schema;               /* SERVICE_SCHEMA_* of service.c */
	long long schema_checked_us; /* time_mono_us() of the last check */
	int exit_status;          /* service_run()'s result when the loop ends */
	struct event *ready_timer, *watchdog_timer;
	char status[160];         /* last STATUS= sent, to send a change only */
};

/*
 * Parses argv (--config FILE, --help), loads configuration, sets up logging,
 * the loop, metrics and connections. Returns 0, or an exit status to leave
 * with (0 after --help, 1 on bad configuration, 2 on bad usage), the reason
 * already printed.
 */
int service_init(struct service *s, const struct service_def *def, int argc, char **argv)
	__attribute__((warn_unused_result));

/* Runs the loop until stopped. Returns the exit status: 0, or 1 when the
 * loop failed or the database schema is older than this build. */
int service_run(struct service *s);

/* Frees everything service_init made; safe after a failed init. */
void service_done(struct service *s);

/* Starts the stop sequence (as SIGTERM does). */
void service_stop(struct service *s);

/* Subscribes the inbound client (kept across reconnects). 0 or -1. */
int service_subscribe(struct service *s, const char *filter, int qos)
	__attribute__((warn_unused_result));

/* The message of `token` is durably handled: the broker may forget it. */
void service_ack(struct service *s, unsigned long long token);

/* Holds (true) or resumes (false) inbound delivery: back-pressure. */
void service_pause_intake(struct service *s, bool paused);

/*
 * Parses "--config FILE"/"--config=FILE" and "--help" from argv for any
 * program (scctl too). On return *file is the config path or NULL, *help
 * tells whether --help was given, and *next the index of the first argument
 * not consumed. Returns 0, or -1 on bad usage (message in err).
 */
int service_parse_args(int argc, char **argv, const char **file, bool *help, int *next,
		       char *err, size_t errlen) __attribute__((warn_unused_result));

#endif

/*
 * Boot, signals and the stop sequence shared by every long-running program
 * (see service.h).
 */
#include "service.h"

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

#define STOP_POLL_MS 50
#define STOP_MAX_POLLS (30 * 1000 / STOP_POLL_MS) /* give up draining after 30 s */

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
	if (!s->sig_term || !s->sig_int || !s->sig_hup || !s->stop_timer) {
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
	if (s->db == NULL)
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
	if (event_base_dispatch(s->base) < 0) {
		log_error("event loop failed");
		return 1;
	}
	return 0;
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

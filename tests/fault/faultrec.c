/*
 * sc-faultrec: the recording subscriber of the fault suite (docs/faults.md).
 * A persistent-session MQTT 5 subscriber (common/mqsub.c) to the platform's
 * output topics that writes every message it receives, in arrival order,
 * as one line "topic TAB payload" in PostgreSQL COPY text format
 * (backslash, tab, CR and LF escaped), for sc-faultcheck to load.
 *
 *   sc-faultrec --url tcp://127.0.0.1:PORT --out FILE [--client-id ID]
 *
 * A QoS 1 message is acknowledged to the broker only after its line was
 * flushed to the file, so a broker restart or a lost connection loses
 * nothing the broker accepted for this session (the session is kept a
 * week). Only the platform's output topics are recorded (what the outbox
 * publishes), not sc/v1/# whole: the inbound stream (telemetry at
 * thousands a second) is what sc-sim's journal already records, and
 * recording it again would double the broker's fan-out under load.
 *
 * SIGTERM/SIGINT: acknowledge what was written, DISCONNECT, exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "mqsub.h"

static const char *const filters[] = {
	"sc/v1/ops/#",
	"sc/v1/rejected",
	"sc/v1/requests/+/status",
	"sc/v1/engineers/+/orders",
	"sc/v1/partners/+/orders",
};

struct rec {
	struct event_base *base;
	struct mqsub *sub;
	FILE *out;
	struct event *stop_ev, *poll_ev;
	unsigned long long n;
	int rc;
};

/* COPY text format: the four characters that end or break a field. */
static void put_escaped(FILE *f, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (p[i]) {
		case '\\': fputs("\\\\", f); break;
		case '\t': fputs("\\t", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		default: fputc(p[i], f); break;
		}
	}
}

static void on_message(void *arg, const struct mqsub_msg *m)
{
	struct rec *r = arg;
	put_escaped(r->out, m->topic, strlen(m->topic));
	fputc('\t', r->out);
	put_escaped(r->out, m->payload, m->len);
	fputc('\n', r->out);
	if (fflush(r->out) != 0) {
		/* Not acknowledged: the broker keeps it for the next run. */
		log_error("recording failed: write error");
		r->rc = 1;
		event_base_loopbreak(r->base);
		return;
	}
	r->n++;
	mqsub_ack(r->sub, m->token);
}

/* Waits for the DISCONNECT to be written, then ends the loop. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct rec *r = arg;
	if (!mqsub_connected(r->sub))
		event_base_loopexit(r->base, NULL);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct rec *r = arg;
	log_info("stopping: disconnecting recorded=%llu", r->n);
	mqsub_disconnect(r->sub);
	struct timeval tv = { 0, 20000 };
	event_add(r->poll_ev, &tv);
	/* A broker that is away never answers: give up after 3 s. */
	struct timeval limit = { 3, 0 };
	event_base_loopexit(r->base, &limit);
}

int main(int argc, char **argv)
{
	struct rec r = { .rc = 2 };
	struct event *term_ev = NULL, *int_ev = NULL;
	const char *url = NULL, *out = NULL, *client = "sc-faultrec";
	log_init("sc-faultrec");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: sc-faultrec --url tcp://HOST:PORT --out FILE [--client-id ID]\n");
			return 0;
		} else if (i + 1 < argc && strcmp(argv[i], "--url") == 0) {
			url = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--out") == 0) {
			out = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--client-id") == 0) {
			client = argv[++i];
		} else {
			fprintf(stderr, "sc-faultrec: unknown argument %s (see --help)\n", argv[i]);
			return 2;
		}
	}
	if (url == NULL || out == NULL) {
		fprintf(stderr, "sc-faultrec: --url and --out are required (see --help)\n");
		return 2;
	}
	r.rc = 1;
	r.out = fopen(out, "a");
	if (r.out == NULL) {
		log_error("cannot open the recording: fopen failed path=%s", out);
		goto out;
	}
	r.base = event_base_new();
	if (r.base == NULL)
		goto out;
	struct mqsub_options o = { .url = url, .client_id = client };
	r.sub = mqsub_new(r.base, &o, on_message, &r);
	if (r.sub == NULL)
		goto out;
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if (mqsub_subscribe(r.sub, filters[i], 1) != 0)
			goto out;
	term_ev = evsignal_new(r.base, SIGTERM, on_stop, &r);
	int_ev = evsignal_new(r.base, SIGINT, on_stop, &r);
	r.poll_ev = event_new(r.base, -1, EV_PERSIST, on_poll, &r);
	if (term_ev == NULL || int_ev == NULL || r.poll_ev == NULL || event_add(term_ev, NULL) != 0 ||
	    event_add(int_ev, NULL) != 0 || mqsub_connect(r.sub) != 0)
		goto out;
	r.rc = 0;
	if (event_base_dispatch(r.base) < 0)
		r.rc = 1;
	log_info("stopped recorded=%llu", r.n);
out:
	mqsub_free(r.sub);
	if (term_ev != NULL)
		event_free(term_ev);
	if (int_ev != NULL)
		event_free(int_ev);
	if (r.poll_ev != NULL)
		event_free(r.poll_ev);
	if (r.base != NULL)
		event_base_free(r.base);
	if (r.out != NULL && fclose(r.out) != 0)
		r.rc = 1;
	return r.rc;
}

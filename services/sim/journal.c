/*
 * --journal FILE: one line per message the broker acknowledged at QoS 1,
 * so a checker (tests/fault, sc-faultcheck) can compare what was sent with
 * what the platform stored. A message counts as sent from its PUBACK on
 * (docs/guarantees.md, "What senders do"); one refused or never
 * acknowledged is not written.
 *
 * Line: kind TAB topic TAB key TAB note LF, where kind is telemetry, alarm
 * (key: seq), request (key: request_id), event (key: order/event/ts),
 * status (key: ts), dup (a repeat; note: the kind repeated) or malformed
 * (key: the marker in its payload; note: the rejection reason expected).
 *
 * Buffered, flushed every second and on close: a sim killed with -9 loses
 * up to a second of lines (the tests end it with SIGTERM).
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "service.h"
#include "sim.h"

#define JOURNAL_FLUSH_S 1

struct journal {
	FILE *f;
	struct event *flush_ev;
	bool failed;   /* a write failed: logged once */
};

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct journal *j = arg;
	if (fflush(j->f) != 0 && !j->failed) {
		log_error("journal write failed: disk full or gone");
		j->failed = true;
	}
}

struct journal *journal_open(struct sim *sim, const char *path)
{
	struct journal *j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto fail;
	j->f = fopen(path, "a");
	if (j->f == NULL) {
		log_error("cannot open the journal: fopen failed path=%s", path);
		goto fail;
	}
	j->flush_ev = event_new(sim->svc->base, -1, EV_PERSIST, on_flush, j);
	if (j->flush_ev == NULL)
		goto fail;
	struct timeval tv = { JOURNAL_FLUSH_S, 0 };
	evtimer_add(j->flush_ev, &tv);
	return j;
fail:
	journal_close(j);
	return NULL;
}

void journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->flush_ev != NULL)
		event_free(j->flush_ev);
	if (j->f != NULL && fclose(j->f) != 0)
		log_error("journal write failed: close");
	free(j);
}

/* Writes s with tabs and line ends turned into spaces (fields stay fields). */
static void put_field(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

void journal_write(struct journal *j, const char *kind, const char *topic, const char *key,
		   const char *note)
{
	if (j == NULL)
		return;
	put_field(j->f, kind);
	fputc('\t', j->f);
	put_field(j->f, topic);
	fputc('\t', j->f);
	put_field(j->f, key);
	fputc('\t', j->f);
	put_field(j->f, note);
	fputc('\n', j->f);
}

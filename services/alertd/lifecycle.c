/*
 * The lifecycle scan (contract section 3; issue 4 "Lifecycle"): every
 * `lifecycle_scan_s` (setting, re-read with the master data) one statement,
 * sc_alertd_lifecycle_scan() (schema/012), raises the lifecycle alerts that
 * became due (run_hours, calendar, design_life, each with its own
 * maintenance ticket) and clears those no longer due, planning the work
 * SC_LIFECYCLE_LEAD_DAYS / SC_LIFECYCLE_LEAD_HOURS before the limit.
 *
 * The scan is idempotent (a reason already firing is left alone), needs no
 * cursor and runs beside the consumer's rounds on the same connection. The
 * first scan runs shortly after the master data is first loaded; a failed
 * scan is retried at the next period.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "alertd.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "timeutil.h"

/* The first scan after start: soon, but after the consumer's first round
 * has had a chance to read the cursor and state. */
#define LIFECYCLE_FIRST_MS 500

static int64_t scan_started;

static void on_scanned(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;
	cJSON *answer = NULL;
	const cJSON *x;
	size_t raised = 0, cleared = 0;

	a->lifecycle_running = false;
	metric_observe(a->m.lifecycle_seconds, (double)(time_mono_us() - scan_started) / 1e6);
	if (r->error != NULL) {
		metric_add(a->m.lifecycle_errors, 1);
		log_error("lifecycle scan failed: %s sqlstate=%s", r->error, r->sqlstate);
		return;
	}
	metric_add(a->m.lifecycle_scans, 1);
	if (PQntuples(r->res) != 1 || (answer = cJSON_Parse(PQgetvalue(r->res, 0, 0))) == NULL) {
		log_error("lifecycle scan answer unreadable: out of memory or not json");
		return;
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(answer, "raised")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(x, "device");
		const cJSON *why = cJSON_GetObjectItemCaseSensitive(x, "reason");
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "ticket_id");
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(x, "outcome");

		raised++;
		log_info("alert raised: lifecycle limit near source=lifecycle device=%s reason=%s"
			 " ticket=%s ticket_outcome=%s",
			 cJSON_IsString(d) ? d->valuestring : "?",
			 cJSON_IsString(why) ? why->valuestring : "?",
			 cJSON_IsString(t) ? t->valuestring : "-",
			 cJSON_IsString(o) ? o->valuestring : "?");
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(answer, "cleared")) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(x, "device");
		const cJSON *why = cJSON_GetObjectItemCaseSensitive(x, "reason");
		const cJSON *tc = cJSON_GetObjectItemCaseSensitive(x, "ticket_cleared");

		cleared++;
		log_info("alert cleared: maintenance recorded source=lifecycle device=%s reason=%s"
			 " ticket_cleared=%s", cJSON_IsString(d) ? d->valuestring : "?",
			 cJSON_IsString(why) ? why->valuestring : "?",
			 cJSON_IsTrue(tc) ? "yes" : "no");
	}
	metric_add(a->m.raised[ALERTD_SOURCE_LIFECYCLE], (double)raised);
	metric_add(a->m.cleared[ALERTD_SOURCE_LIFECYCLE], (double)cleared);
	x = cJSON_GetObjectItemCaseSensitive(answer, "due");
	if (cJSON_IsNumber(x))
		metric_set(a->m.lifecycle_due, x->valuedouble);
	log_debug("lifecycle scan done raised=%zu cleared=%zu", raised, cleared);
	cJSON_Delete(answer);
}

/* The parameter of one scan; caller frees. NULL on allocation failure. */
static char *scan_params(struct alertd *a)
{
	cJSON *p = cJSON_CreateObject();
	char *text = NULL;

	if (p == NULL)
		return NULL;
	if (cJSON_AddNumberToObject(p, "lead_days", a->svc->cfg.lifecycle_lead_days) == NULL ||
	    cJSON_AddNumberToObject(p, "lead_hours", a->svc->cfg.lifecycle_lead_hours) == NULL ||
	    partition_scope_json(a, p) != 0)
		goto out;
	text = cJSON_PrintUnformatted(p);
out:
	cJSON_Delete(p);
	return text;
}

static void scan(struct alertd *a)
{
	char *p;
	const char *params[1];

	if (a->svc->stopping || a->lifecycle_running || !partition_any(a))
		return;
	if ((p = scan_params(a)) == NULL) {
		log_error("lifecycle scan failed: out of memory");
		return;
	}
	params[0] = p;
	a->lifecycle_running = true;
	scan_started = time_mono_us();
	if (db_exec_prepared(a->db, "alertd_lifecycle", 1, params, on_scanned, a) != 0) {
		a->lifecycle_running = false;
		log_error("lifecycle scan failed: out of memory");
	}
	free(p);
}

static void arm(struct alertd *a, double in_s)
{
	struct timeval tv = { (time_t)in_s, (suseconds_t)((in_s - (double)(time_t)in_s) * 1e6) };

	evtimer_add(a->lifecycle_timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct alertd *a = arg;

	arm(a, a->lifecycle_period_s);
	scan(a);
}

void lifecycle_schedule(struct alertd *a)
{
	double period = a->rules != NULL ? a->rules->lifecycle_scan_s : ALERTD_LIFECYCLE_SCAN_S;
	bool first = a->lifecycle_period_s == 0;

	if (!(period >= ALERTD_LIFECYCLE_SCAN_MIN_S))
		period = ALERTD_LIFECYCLE_SCAN_MIN_S;
	if (!first && period == a->lifecycle_period_s)
		return;
	log_info("lifecycle scan scheduled period_s=%.0f lead_days=%d lead_hours=%d", period,
		 a->svc->cfg.lifecycle_lead_days, a->svc->cfg.lifecycle_lead_hours);
	a->lifecycle_period_s = period;
	/* A new period starts counting now. */
	arm(a, first ? LIFECYCLE_FIRST_MS / 1000.0 : period);
}

bool lifecycle_idle(const struct alertd *a)
{
	return !a->lifecycle_running;
}

int lifecycle_init(struct alertd *a)
{
	a->lifecycle_timer = evtimer_new(a->svc->base, on_timer, a);
	if (a->lifecycle_timer == NULL)
		return -1;
	return db_prepare(a->db, "alertd_lifecycle", "SELECT sc_alertd_lifecycle_scan($1::jsonb)",
			  1);
}

void lifecycle_free(struct alertd *a)
{
	if (a->lifecycle_timer != NULL)
		event_free(a->lifecycle_timer);
	a->lifecycle_timer = NULL;
}

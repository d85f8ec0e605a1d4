/*
 * scctl ticket ID | scctl history ID: one ticket with its orders and SLA
 * clocks, and everything that happened to it in time order (issue 7, CLI).
 *
 * Both are one call of the function GET /v1/tickets/{id} answers with
 * (sc_api_ticket, schema/040_api.sql and 045_ticket_views.sql), with hq
 * scope. `ticket --json` prints that body as the API sends it; `history
 * --json` prints its "timeline" as a list, {"ticket_id", "items", "next":
 * null}. The timeline is built in SQL (sc_ticket_timeline), so the API and
 * scctl order it the same way.
 *
 * Exit status: 0 shown; 2 bad usage (no ticket id, an unknown flag); 1 no
 * such ticket, or the database unreachable or failing.
 */
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "scctl.h"

static const char ticket_sql[] =
	"SELECT status, body FROM sc_api_ticket('hq', NULL, NULL, NULL, $1)";

/* Cell text buffers of one row. */
#define CELL 128

static const cJSON *get(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* "a b" into buf, either part may be NULL; NULL when both are. */
static const char *join2(const char *a, const char *sep, const char *b, char *buf, size_t len)
{
	if (!a && !b)
		return NULL;
	/* A cell is for reading: a long value is cut, not an error. */
	if (snprintf(buf, len, "%s%s%s", a ? a : "", a && b ? sep : "", b ? b : "") < 0)
		return NULL;
	return buf;
}

/* The ticket's fields as a "key  value" block. */
static int print_fields(const cJSON *t)
{
	char b[16][CELL];
	const cJSON *next = get(t, "sla_next");
	const cJSON *holder = get(t, "holder");
	const char *who = scctl_json_str(holder, "engineer_id");
	struct scctl_table *kv = scctl_table_new(2, NULL);
	struct strbuf requests;
	const cJSON *r;
	int rc = -1;

	strbuf_init(&requests);
	cJSON_ArrayForEach(r, get(t, "requests"))
		if (cJSON_IsString(r))
			strbuf_printf(&requests, "%s%s", requests.len ? " " : "", r->valuestring);
	if (!who)
		who = scctl_json_str(holder, "partner_id");
	const char *rows[][2] = {
		{"ticket", scctl_json_str(t, "id")},
		{"state", join2(scctl_json_str(t, "state"), " ",
				cJSON_IsTrue(get(t, "paused")) ? "(SLA paused)" : NULL, b[0], CELL)},
		{"province", scctl_json_str(t, "province")},
		{"customer", join2(scctl_json_str(t, "customer_id"), ", tier ",
				   scctl_json_str(t, "tier"), b[1], CELL)},
		{"site", scctl_json_str(t, "site_id")},
		{"device", scctl_json_str(t, "device_id")},
		{"category", join2(scctl_json_str(t, "category"), ", ",
				   scctl_json_str(t, "severity"), b[2], CELL)},
		{"skill", join2(scctl_json_str(t, "skill"), ", grade >= ",
				scctl_json_cell(get(t, "min_grade"), b[3], CELL), b[4], CELL)},
		{"mode", scctl_json_str(t, "mode")},
		{"holder", join2(who, " ", join2(scctl_json_str(holder, "order_id"), " ",
						 scctl_json_str(holder, "state"), b[5], CELL),
				 b[6], CELL)},
		{"sla risk", scctl_json_str(t, "sla_risk")},
		{"next deadline", join2(scctl_json_str(next, "clock"), " ",
					scctl_ts_cell(scctl_json_str(next, "deadline"), false, b[7], CELL),
					b[8], CELL)},
		{"parent", scctl_json_str(t, "parent_ticket_id")},
		{"source", join2(scctl_json_str(t, "source"), " ", scctl_json_str(t, "reason"), b[9],
				 CELL)},
		{"channel", scctl_json_str(t, "channel")},
		{"requests", requests.len ? requests.data : NULL},
		{"created", scctl_ts_cell(scctl_json_str(t, "created_at"), false, b[10], CELL)},
		{"updated", scctl_ts_cell(scctl_json_str(t, "updated_at"), false, b[11], CELL)},
		{"resolved", scctl_ts_cell(scctl_json_str(t, "resolved_at"), false, b[12], CELL)},
		{"closed", scctl_ts_cell(scctl_json_str(t, "closed_at"), false, b[13], CELL)},
		{"offer attempts", scctl_json_cell(get(t, "offer_attempts"), b[14], CELL)},
		{"state reason", scctl_json_str(t, "state_reason")},
		{"description", scctl_json_str(t, "description")},
	};

	if (!kv || !strbuf_ok(&requests))
		goto out;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (scctl_table_add(kv, rows[i]) < 0)
			goto out;
	scctl_table_print(kv, stdout);
	rc = 0;
out:
	scctl_table_free(kv);
	strbuf_free(&requests);
	return rc;
}

static int print_orders(const cJSON *orders)
{
	static const char *const headers[] = {
		"ORDER", "STATE", "MODE", "TO", "ATTEMPT", "OFFERED", "ACCEPTED", "ENDED", "FIRST-TIME FIX",
	};
	enum { NCOLS = sizeof(headers) / sizeof(headers[0]) };
	struct scctl_table *t = scctl_table_new(NCOLS, headers);
	const cJSON *o;
	int rc = -1;

	if (!t)
		return -1;
	scctl_table_right(t, 4);
	cJSON_ArrayForEach(o, orders) {
		char b[5][CELL];
		const char *to = scctl_json_str(o, "engineer_id");
		const char *cells[NCOLS] = {
			scctl_json_str(o, "id"), scctl_json_str(o, "state"), scctl_json_str(o, "mode"),
			to ? to : scctl_json_str(o, "partner_id"),
			scctl_json_cell(get(o, "attempt"), b[0], CELL),
			scctl_ts_cell(scctl_json_str(o, "offered_at"), false, b[1], CELL),
			scctl_ts_cell(scctl_json_str(o, "accepted_at"), false, b[2], CELL),
			scctl_ts_cell(scctl_json_str(o, "ended_at"), false, b[3], CELL),
			scctl_json_cell(get(o, "first_time_fix"), b[4], CELL),
		};

		if (scctl_table_add(t, cells) < 0)
			goto out;
	}
	scctl_table_print(t, stdout);
	rc = 0;
out:
	scctl_table_free(t);
	return rc;
}

static int print_clocks(const cJSON *clocks)
{
	static const char *const headers[] = {
		"CLOCK", "STATE", "CALENDAR", "STARTED", "DEADLINE", "STOPPED", "MET", "PAUSED S",
		"WARNED", "BREACHED",
	};
	enum { NCOLS = sizeof(headers) / sizeof(headers[0]) };
	struct scctl_table *t = scctl_table_new(NCOLS, headers);
	const cJSON *c;
	int rc = -1;

	if (!t)
		return -1;
	scctl_table_right(t, 7);
	cJSON_ArrayForEach(c, clocks) {
		char b[7][CELL];
		const char *cells[NCOLS] = {
			scctl_json_str(c, "clock"), scctl_json_str(c, "state"),
			scctl_json_str(c, "calendar"),
			scctl_ts_cell(scctl_json_str(c, "started_at"), false, b[0], CELL),
			scctl_ts_cell(scctl_json_str(c, "deadline"), false, b[1], CELL),
			scctl_ts_cell(scctl_json_str(c, "stopped_at"), false, b[2], CELL),
			scctl_json_cell(get(c, "met"), b[3], CELL),
			scctl_json_cell(get(c, "paused_s"), b[4], CELL),
			scctl_ts_cell(scctl_json_str(c, "warned_at"), false, b[5], CELL),
			scctl_ts_cell(scctl_json_str(c, "breached_at"), false, b[6], CELL),
		};

		if (scctl_table_add(t, cells) < 0)
			goto out;
	}
	scctl_table_print(t, stdout);
	rc = 0;
out:
	scctl_table_free(t);
	return rc;
}

static int print_escalations(const cJSON *escalations)
{
	static const char *const headers[] = {"LEVEL", "ROLE", "REASON", "AT"};
	struct scctl_table *t = NULL;
	const cJSON *e;
	int rc = -1;

	if (cJSON_GetArraySize(escalations) == 0)
		return 0;
	t = scctl_table_new(4, headers);
	if (!t)
		return -1;
	scctl_table_right(t, 0);
	cJSON_ArrayForEach(e, escalations) {
		char b[2][CELL];
		const char *cells[4] = {
			scctl_json_cell(get(e, "level"), b[0], CELL), scctl_json_str(e, "role"),
			scctl_json_str(e, "reason"),
			scctl_ts_cell(scctl_json_str(e, "ts"), false, b[1], CELL),
		};

		if (scctl_table_add(t, cells) < 0)
			goto out;
	}
	fputc('\n', stdout);
	scctl_table_print(t, stdout);
	rc = 0;
out:
	scctl_table_free(t);
	return rc;
}

/*
 * A timeline entry's detail as "key=value key=value" (nested values as
 * compact JSON), skipping `skip`; NULL when there is nothing. Caller frees.
 */
static char *detail_text(const cJSON *detail, const char *skip)
{
	struct strbuf b;
	const cJSON *d;

	strbuf_init(&b);
	cJSON_ArrayForEach(d, detail) {
		char v[512];
		const char *text;

		if (skip && strcmp(d->string, skip) == 0)
			continue;
		text = scctl_json_cell(d, v, sizeof(v));
		strbuf_printf(&b, "%s%s=%s", b.len ? " " : "", d->string, text ? text : "null");
	}
	if (!strbuf_ok(&b) || b.len == 0) {
		strbuf_free(&b);
		return NULL;
	}
	return strbuf_take(&b);
}

static int print_timeline(const cJSON *timeline)
{
	static const char *const headers[] = {"TIME", "KIND", "EVENT", "SUBJECT", "BY", "DETAIL"};
	struct scctl_table *t = scctl_table_new(6, headers);
	const cJSON *e;
	int rc = -1;

	if (!t)
		return -1;
	cJSON_ArrayForEach(e, timeline) {
		const char *kind = scctl_json_str(e, "kind");
		const cJSON *detail = get(e, "detail");
		const char *subject = NULL, *by = NULL, *skip = NULL;
		char ts[CELL], level[CELL];
		char *text;
		int added;

		if (kind && strcmp(kind, "order") == 0) {
			subject = scctl_json_str(e, "order_id");
			by = scctl_json_str(e, "engineer_id");
			if (!by)
				by = scctl_json_str(e, "partner_id");
		} else if (kind && strcmp(kind, "ticket") == 0) {
			by = scctl_json_str(e, "actor");
		} else if (kind && strcmp(kind, "request") == 0) {
			subject = scctl_json_str(e, "request_id");
		} else if (kind && strcmp(kind, "sla") == 0) {
			subject = scctl_json_str(e, "clock");
		} else if (kind && strcmp(kind, "escalation") == 0) {
			const cJSON *n = get(e, "level");

			if (cJSON_IsNumber(n)) {
				snprintf(level, sizeof(level), "level %d", n->valueint);
				subject = level;
			}
			by = scctl_json_str(detail, "role");
			skip = "role";
		}
		text = detail_text(detail, skip);
		{
			const char *cells[6] = {
				scctl_ts_cell(scctl_json_str(e, "ts"), true, ts, sizeof(ts)), kind,
				scctl_json_str(e, "event"), subject, by, text,
			};

			added = scctl_table_add(t, cells);
		}
		free(text);
		if (added < 0)
			goto out;
	}
	scctl_table_print(t, stdout);
	rc = 0;
out:
	scctl_table_free(t);
	return rc;
}

/* Parses "NAME ID [--json]" and fetches the ticket; returns the exit
 * status, and the body in *out on SCCTL_OK. */
static int fetch(struct scctl *ctx, int argc, char **argv, cJSON **out)
{
	const char *id;
	int rc = scctl_one_arg(ctx, argc, argv, "ticket", "TICKET", &id);

	return rc != SCCTL_OK ? rc : scctl_view(ctx, argv[0], ticket_sql, 1, &id, out);
}

/* ticket ID */
int scctl_ticket(struct scctl *ctx, int argc, char **argv)
{
	cJSON *t = NULL;
	int rc = fetch(ctx, argc, argv, &t);

	if (rc != SCCTL_OK)
		return rc;
	if (ctx->json) {
		if (scctl_print_json(t) < 0)
			rc = SCCTL_FAIL;
		goto out;
	}
	if (print_fields(t) < 0)
		goto oom;
	fputc('\n', stdout);
	if (print_orders(get(t, "orders")) < 0)
		goto oom;
	fputc('\n', stdout);
	if (print_clocks(get(t, "clocks")) < 0 || print_escalations(get(t, "escalations")) < 0)
		goto oom;
	goto out;
oom:
	scctl_error(argv[0], "out of memory");
	rc = SCCTL_FAIL;
out:
	cJSON_Delete(t);
	return rc;
}

/* history ID */
int scctl_history(struct scctl *ctx, int argc, char **argv)
{
	cJSON *t = NULL, *list = NULL;
	int rc = fetch(ctx, argc, argv, &t);

	if (rc != SCCTL_OK)
		return rc;
	if (!ctx->json) {
		if (print_timeline(get(t, "timeline")) < 0)
			goto oom;
		goto out;
	}
	/* The list shape of the API (contract section 6): items and next. */
	list = cJSON_CreateObject();
	if (!list || !cJSON_AddStringToObject(list, "ticket_id", scctl_json_str(t, "id")))
		goto oom;
	cJSON_AddItemToObject(list, "items", cJSON_DetachItemFromObjectCaseSensitive(t, "timeline"));
	if (!cJSON_AddNullToObject(list, "next"))
		goto oom;
	if (scctl_print_json(list) < 0)
		rc = SCCTL_FAIL;
	goto out;
oom:
	scctl_error(argv[0], "out of memory");
	rc = SCCTL_FAIL;
out:
	cJSON_Delete(list);
	cJSON_Delete(t);
	return rc;
}

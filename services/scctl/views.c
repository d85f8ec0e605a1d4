/*
 * scctl queue | engineers | partners PROVINCE: a province's open tickets,
 * its engineers with their load, the partners serving it with their open
 * orders there (issue 7, CLI).
 *
 * Each is one call of the function GET /v1/tickets, GET
 * /v1/provinces/{code}/engineers and .../partners answer with
 * (schema/040_api.sql, 043_api_zone.sql, 045_ticket_views.sql), with hq scope: the operator sees everything. --json
 * prints that body as the API sends it ({"items": [...], "next": ...}),
 * whose "next" is the --cursor of the following page; the table shows the
 * columns a dispatcher scans.
 *
 * Exit status: 0 shown (an empty queue too); 2 bad usage (no province, an
 * unknown flag or state, a limit outside 1..500, a cursor the API did not
 * give); 1 no such province, or the database unreachable or failing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "scctl.h"

#define QUEUE_LIMIT_DEFAULT 50
#define QUEUE_LIMIT_MAX 500   /* the API's own bound (docs/api.md) */

static const char tickets_sql[] =
	"SELECT status, body FROM sc_api_tickets('hq', NULL, NULL, NULL, $1, $2, $3::int, $4)";
static const char engineers_sql[] =
	"SELECT status, body FROM sc_api_province_engineers('hq', NULL, NULL, NULL, $1)";
static const char partners_sql[] =
	"SELECT status, body FROM sc_api_province_partners('hq', NULL, NULL, NULL, $1)";

/*
 * Is `code` a province? 1 yes, 0 no (printed), -1 failed (printed). The
 * ticket list answers an empty list for an unknown province, which a
 * script would take for a quiet one.
 */
static int province_known(PGconn *conn, const char *what, const char *code)
{
	PGresult *res = PQexecParams(conn, "SELECT 1 FROM province WHERE code = $1", 1, NULL,
				     &code, NULL, NULL, 0);
	char why[512];
	int rc = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
	} else if (PQntuples(res) == 0) {
		scctl_error(what, "no province %s", code);
		rc = 0;
	} else {
		rc = 1;
	}
	PQclear(res);
	return rc;
}

/* One queue row: who holds the ticket, e.g. "E-HA-3 accepted". */
static const char *holder_cell(const cJSON *holder, char *buf, size_t len)
{
	const char *who = scctl_json_str(holder, "engineer_id");
	const char *state = scctl_json_str(holder, "state");

	if (!who)
		who = scctl_json_str(holder, "partner_id");
	if (!who)
		return NULL;
	snprintf(buf, len, "%s %s", who, state ? state : "");
	return buf;
}

static int print_queue(const cJSON *items)
{
	static const char *const headers[] = {
		"TICKET", "STATE", "MODE", "CATEGORY", "SEVERITY", "TIER", "CREATED",
		"NEXT DEADLINE", "CLOCK", "RISK", "HOLDER",
	};
	enum { NCOLS = sizeof(headers) / sizeof(headers[0]) };
	struct scctl_table *t = scctl_table_new(NCOLS, headers);
	const cJSON *it;
	int rc = -1;

	if (!t)
		return -1;
	cJSON_ArrayForEach(it, items) {
		const cJSON *next = cJSON_GetObjectItemCaseSensitive(it, "sla_next");
		char created[32], deadline[32], holder[160], clock[32];
		const char *cells[NCOLS] = {
			scctl_json_str(it, "id"), scctl_json_str(it, "state"),
			scctl_json_str(it, "mode"), scctl_json_str(it, "category"),
			scctl_json_str(it, "severity"), scctl_json_str(it, "tier"),
			scctl_ts_cell(scctl_json_str(it, "created_at"), false, created, sizeof(created)),
			scctl_ts_cell(scctl_json_str(next, "deadline"), false, deadline, sizeof(deadline)),
			scctl_json_str(next, "clock"), scctl_json_str(it, "sla_risk"),
			holder_cell(cJSON_GetObjectItemCaseSensitive(it, "holder"), holder, sizeof(holder)),
		};

		/* A paused clock's deadline moves on resume: say so. */
		if (cells[8] && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "paused"))) {
			snprintf(clock, sizeof(clock), "%s (paused)", cells[8]);
			cells[8] = clock;
		}
		if (scctl_table_add(t, cells) < 0)
			goto out;
	}
	scctl_table_print(t, stdout);
	rc = 0;
out:
	scctl_table_free(t);
	return rc;
}

/* "relay_protection:3 metering:1" */
static const char *skills_cell(const cJSON *skills, char *buf, size_t len)
{
	const cJSON *s;
	size_t n = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(s, skills) {
		int w = snprintf(buf + n, len - n, "%s%s:%g", n ? " " : "", s->string,
				 cJSON_IsNumber(s) ? s->valuedouble : 0.0);

		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return n ? buf : NULL;
}

static int print_engineers(const cJSON *items)
{
	static const char *const headers[] = {
		"ENGINEER", "NAME", "KIND", "PROVINCE", "STATE", "LOAD", "SKILLS", "STATUS AT",
	};
	enum { NCOLS = sizeof(headers) / sizeof(headers[0]) };
	struct scctl_table *t = scctl_table_new(NCOLS, headers);
	const cJSON *it;
	int rc = -1;

	if (!t)
		return -1;
	scctl_table_right(t, 5);
	cJSON_ArrayForEach(it, items) {
		char load[48], skills[256], at[32];
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "load");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "max_concurrent");
		const char *cells[NCOLS] = {
			scctl_json_str(it, "id"), scctl_json_str(it, "name"),
			scctl_json_str(it, "kind"), scctl_json_str(it, "province"),
			scctl_json_str(it, "state"), load,
			skills_cell(cJSON_GetObjectItemCaseSensitive(it, "skills"), skills, sizeof(skills)),
			scctl_ts_cell(scctl_json_str(it, "status_ts"), false, at, sizeof(at)),
		};

		snprintf(load, sizeof(load), "%g/%g", cJSON_IsNumber(l) ? l->valuedouble : 0.0,
			 cJSON_IsNumber(m) ? m->valuedouble : 0.0);
		if (scctl_table_add(t, cells) < 0)
			goto out;
	}
	scctl_table_print(t, stdout);
	rc = 0;
out:
	scctl_table_free(t);
	return rc;
}

static int print_partners(const cJSON *items)
{
	static const char *const headers[] = {
		"PARTNER", "NAME", "PROVINCES", "LOAD", "CERTIFIED UNTIL", "OPEN ORDERS HERE",
	};
	enum { NCOLS = sizeof(headers) / sizeof(headers[0]) };
	struct scctl_table *t = scctl_table_new(NCOLS, headers);
	const cJSON *it;
	int rc = -1;

	if (!t)
		return -1;
	scctl_table_right(t, 3);
	cJSON_ArrayForEach(it, items) {
		char load[48], provinces[128], orders[256];
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "load");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "capacity");
		const cJSON *e;
		size_t n = 0;

		provinces[0] = orders[0] = '\0';
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(it, "provinces")) {
			int w = snprintf(provinces + n, sizeof(provinces) - n, "%s%s", n ? " " : "",
					 cJSON_IsString(e) ? e->valuestring : "?");
			if (w < 0 || (size_t)w >= sizeof(provinces) - n)
				break;
			n += (size_t)w;
		}
		n = 0;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(it, "open_orders")) {
			int w = snprintf(orders + n, sizeof(orders) - n, "%s%s %s", n ? ", " : "",
					 scctl_json_str(e, "id"), scctl_json_str(e, "state"));
			if (w < 0 || (size_t)w >= sizeof(orders) - n)
				break;
			n += (size_t)w;
		}
		snprintf(load, sizeof(load), "%g/%g", cJSON_IsNumber(l) ? l->valuedouble : 0.0,
			 cJSON_IsNumber(c) ? c->valuedouble : 0.0);
		const char *cells[NCOLS] = {
			scctl_json_str(it, "id"), scctl_json_str(it, "name"), provinces, load,
			scctl_json_str(it, "certified_until"), orders[0] ? orders : NULL,
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

/* queue PROVINCE [--state S] [--manual] [--limit N] [--cursor C] */
int scctl_queue(struct scctl *ctx, int argc, char **argv)
{
	const char *what = "queue";
	const char *province = NULL, *state = NULL, *limit_arg = NULL, *cursor = NULL;
	char limit[16];
	bool manual = false;
	PGconn *conn = NULL;
	cJSON *body = NULL;
	int known;
	int rc = SCCTL_FAIL;

	for (int i = 1; i < argc; i++) {
		int m;

		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if (strcmp(argv[i], "--manual") == 0) {
			manual = true;
			continue;
		}
		if ((m = scctl_flag_value(what, argc, argv, &i, "--state", &state)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--limit", &limit_arg)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--cursor", &cursor)) != 0) {
			if (m < 0)
				return SCCTL_USAGE;
			continue;
		}
		if (argv[i][0] == '-' || province != NULL) {
			scctl_error(what, "unknown argument \"%s\" (see scctl queue --help)", argv[i]);
			return SCCTL_USAGE;
		}
		province = argv[i];
	}
	if (!province) {
		scctl_error(what, "which province? usage: queue PROVINCE [--state S] [--manual] [--limit N]");
		return SCCTL_USAGE;
	}
	if (manual) {
		if (state && strcmp(state, "manual") != 0) {
			scctl_error(what, "--manual is --state manual: give one of them");
			return SCCTL_USAGE;
		}
		state = "manual";
	}
	if (!state) {
		state = "open";
	} else {
		enum ticket_state s;

		if (strcmp(state, "open") != 0 && ticket_state_parse(state, &s) != 0) {
			scctl_error(what, "--state \"%s\": must be open or a ticket state (new, offered, "
				    "assigned, en_route, on_site, resolved, closed, manual, cancelled, "
				    "cleared)", state);
			return SCCTL_USAGE;
		}
	}
	snprintf(limit, sizeof(limit), "%d", QUEUE_LIMIT_DEFAULT);
	if (limit_arg) {
		char *end;
		long n;

		errno = 0;
		n = strtol(limit_arg, &end, 10);
		if (errno != 0 || end == limit_arg || *end != '\0' || n < 1 || n > QUEUE_LIMIT_MAX) {
			scctl_error(what, "--limit \"%s\": must be an integer from 1 to %d", limit_arg,
				    QUEUE_LIMIT_MAX);
			return SCCTL_USAGE;
		}
		snprintf(limit, sizeof(limit), "%ld", n);
	}

	conn = scctl_connect(ctx, what, true);
	if (!conn)
		goto out;
	known = province_known(conn, what, province);
	if (known <= 0)
		goto out;
	{
		const char *params[4] = {province, state, limit, cursor};

		rc = scctl_api_get(conn, what, tickets_sql, 4, params, &body);
	}
	if (rc != SCCTL_OK)
		goto out;
	rc = SCCTL_FAIL;
	if (ctx->json ? scctl_print_json(body) : print_queue(cJSON_GetObjectItemCaseSensitive(body, "items"))) {
		scctl_error(what, "out of memory");
		goto out;
	}
	/* Newest first, as the API lists: say when older ones were left out. */
	if (!ctx->json && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "next")))
		fprintf(stderr, "scctl: queue: %s shown, more exist: --cursor %s (or --limit up to %d)\n",
			limit, cJSON_GetObjectItemCaseSensitive(body, "next")->valuestring,
			QUEUE_LIMIT_MAX);
	rc = SCCTL_OK;
out:
	cJSON_Delete(body);
	PQfinish(conn);
	return rc;
}

/* A list of one province: `what PROVINCE`, one API function, one printer. */
static int province_list(struct scctl *ctx, int argc, char **argv, const char *sql,
			 int (*print)(const cJSON *items))
{
	const char *province;
	cJSON *body = NULL;
	int rc = scctl_one_arg(ctx, argc, argv, "province", "PROVINCE", &province);

	if (rc == SCCTL_OK)
		rc = scctl_view(ctx, argv[0], sql, 1, &province, &body);
	if (rc == SCCTL_OK && (ctx->json ? scctl_print_json(body)
					 : print(cJSON_GetObjectItemCaseSensitive(body, "items")))) {
		scctl_error(argv[0], "out of memory");
		rc = SCCTL_FAIL;
	}
	cJSON_Delete(body);
	return rc;
}

int scctl_engineers(struct scctl *ctx, int argc, char **argv)
{
	return province_list(ctx, argc, argv, engineers_sql, print_engineers);
}

int scctl_partners(struct scctl *ctx, int argc, char **argv)
{
	return province_list(ctx, argc, argv, partners_sql, print_partners);
}

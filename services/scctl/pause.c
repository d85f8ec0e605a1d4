/*
 * scctl pause TICKET [--reason TEXT] | scctl resume TICKET: stop and restart
 * a ticket's SLA clocks while it waits on the customer (docs/sla.md,
 * "Pause and resume"). The work is one call of sc_ticket_pause /
 * sc_ticket_resume (schema/030_sla_pause.sql), the same the API makes.
 *
 * Output: one row (ticket, paused, changed, respond_by, arrive_by,
 * resolve_by), or the same as JSON. "changed" is false when the ticket was
 * already in the asked state (or, for pause, no longer open): not an error.
 */
#include <stdlib.h>
#include <string.h>

#include "scctl.h"

static const char pause_sql[] = "SELECT sc_ticket_pause($1, $2, 'scctl')";
static const char resume_sql[] = "SELECT sc_ticket_resume($1, 'scctl')";
static const char show_sql[] =
	"SELECT sc_ticket_paused(id), sc_ts(respond_by), sc_ts(arrive_by), sc_ts(resolve_by)"
	" FROM ticket WHERE id = $1";

static int print_result(struct scctl *ctx, const char *ticket, bool changed, const PGresult *r)
{
	const char *cells[6] = { ticket, PQgetvalue(r, 0, 0)[0] == 't' ? "true" : "false",
				 changed ? "true" : "false", NULL, NULL, NULL };
	static const char *const headers[6] = { "ticket", "paused", "changed",
						"respond_by", "arrive_by", "resolve_by" };
	int rc = -1;
	for (int i = 1; i < 4; i++)
		cells[i + 2] = PQgetisnull(r, 0, i) ? NULL : PQgetvalue(r, 0, i);
	if (ctx->json) {
		cJSON *o = cJSON_CreateObject();
		if (o == NULL)
			return -1;
		cJSON_AddStringToObject(o, "ticket_id", ticket);
		cJSON_AddBoolToObject(o, "paused", cells[1][0] == 't');
		cJSON_AddBoolToObject(o, "changed", changed);
		for (int i = 3; i < 6; i++) {
			if (cells[i] != NULL)
				cJSON_AddStringToObject(o, headers[i], cells[i]);
			else
				cJSON_AddNullToObject(o, headers[i]);
		}
		rc = scctl_print_json(o);
		cJSON_Delete(o);
		return rc;
	}
	struct scctl_table *t = scctl_table_new(6, headers);
	if (t == NULL)
		return -1;
	if (scctl_table_add(t, cells) == 0) {
		scctl_table_print(t, stdout);
		rc = 0;
	}
	scctl_table_free(t);
	return rc;
}

static int pause_or_resume(struct scctl *ctx, int argc, char **argv, bool pause)
{
	const char *what = pause ? "pause" : "resume";
	const char *ticket = NULL, *reason = NULL;
	PGconn *conn = NULL;
	PGresult *r = NULL;
	char why[512];
	int rc = SCCTL_USAGE;

	for (int i = 1; i < argc; i++) {
		int m = 0;
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if (pause && (m = scctl_flag_value(what, argc, argv, &i, "--reason", &reason)) != 0) {
			if (m < 0)
				goto out;
			continue;
		}
		if (argv[i][0] == '-' || ticket != NULL) {
			scctl_error("usage", "%s: unexpected argument \"%s\" (see scctl %s --help)",
				    what, argv[i], what);
			goto out;
		}
		ticket = argv[i];
	}
	if (ticket == NULL) {
		scctl_error("usage", "%s needs a ticket id (see scctl %s --help)", what, what);
		goto out;
	}
	rc = SCCTL_FAIL;
	conn = scctl_connect(ctx, what, true);
	if (conn == NULL)
		goto out;
	const char *params[2] = { ticket, reason };
	r = PQexecParams(conn, pause ? pause_sql : resume_sql, pause ? 2 : 1, NULL, params,
			 NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		scctl_error(what, "%s", scctl_pg_why(conn, r, why, sizeof(why)));
		goto out;
	}
	bool changed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	r = PQexecParams(conn, show_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		scctl_error(what, "%s", scctl_pg_why(conn, r, why, sizeof(why)));
		goto out;
	}
	if (print_result(ctx, ticket, changed, r) != 0) {
		scctl_error(what, "cannot print the result");
		goto out;
	}
	rc = SCCTL_OK;
out:
	PQclear(r);
	if (conn != NULL)
		PQfinish(conn);
	return rc;
}

int scctl_pause(struct scctl *ctx, int argc, char **argv)
{
	return pause_or_resume(ctx, argc, argv, true);
}

int scctl_resume(struct scctl *ctx, int argc, char **argv)
{
	return pause_or_resume(ctx, argc, argv, false);
}

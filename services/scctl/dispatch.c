/*
 * scctl assign | reassign | cancel: the province dispatcher's manual
 * dispatch (contract sections 4 and 6, issue 5).
 *
 * Each command is one call of the SQL function sc-api calls for the same
 * action (schema/021_dispatch_manual.sql): sc_ticket_assign (assign:
 * p_replace false; reassign: true) and sc_ticket_cancel. One statement, one
 * transaction: the ticket and the receiver are locked there, capacity is
 * checked there, the withdrawn and new orders are announced through the
 * outbox there. scctl only parses, calls and prints.
 *
 * Exit status: 0 done; 2 bad usage (unknown flag, no ticket, not exactly
 * one of --engineer/--partner, a mode that is not onsite/remote/
 * outsourced); 1 anything else, a refusal included (unknown ticket or
 * receiver, ticket not open, in progress, receiver full, mode against the
 * receiver's kind).
 */
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "scctl.h"

#define ACTOR "scctl"

/* What a refusal of sc_ticket_assign / sc_ticket_cancel means to a user. */
static const char *refusal_text(const char *result)
{
	static const struct {
		const char *result, *text;
	} texts[] = {
		{"unknown_ticket", "no such ticket"},
		{"not_open", "the ticket is no longer open (resolved, closed, cancelled or cleared)"},
		{"in_progress", "an order of the ticket was accepted and is in progress: use reassign"},
		{"unknown_engineer", "no such engineer"},
		{"unknown_partner", "no such partner"},
		{"bad_mode", "the mode does not fit the receiver (remote needs a remote engineer, "
			     "onsite an on-site engineer, outsourced a partner)"},
		{"full", "the receiver has no free capacity"},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (strcmp(texts[i].result, result) == 0)
			return texts[i].text;
	return result;
}

/* Prints one result row: a table, or a JSON object with --json. 0 or -1. */
static int print_result(const struct scctl *ctx, size_t n, const char *const *keys,
			const char *const *values)
{
	int rc = -1;
	if (ctx->json) {
		cJSON *o = cJSON_CreateObject();
		for (size_t i = 0; o != NULL && i < n; i++) {
			cJSON *v = values[i] ? cJSON_CreateString(values[i]) : cJSON_CreateNull();
			if (v == NULL || !cJSON_AddItemToObject(o, keys[i], v)) {
				cJSON_Delete(v);
				cJSON_Delete(o);
				o = NULL;
			}
		}
		if (o != NULL)
			rc = scctl_print_json(o);
		cJSON_Delete(o);
		return rc;
	}
	struct scctl_table *t = scctl_table_new(n, keys);
	if (t != NULL && scctl_table_add(t, values) == 0) {
		scctl_table_print(t, stdout);
		rc = 0;
	}
	scctl_table_free(t);
	return rc;
}

/* Runs sql with params; the result when it returned one row, else NULL
 * after printing why. */
static PGresult *call(PGconn *conn, const char *what, const char *sql, int n,
		      const char *const *params)
{
	char why[512];
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
	PQclear(res);
	return NULL;
}

/* assign / reassign TICKET --engineer ID|--partner ID [--mode M] [--reason R] */
static int assign(struct scctl *ctx, int argc, char **argv, bool replace)
{
	const char *what = argv[0];
	const char *ticket = NULL, *engineer = NULL, *partner = NULL, *mode = NULL, *reason = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int rc = SCCTL_FAIL;

	for (int i = 1; i < argc; i++) {
		int m;
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if ((m = scctl_flag_value(what, argc, argv, &i, "--engineer", &engineer)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--partner", &partner)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--mode", &mode)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--reason", &reason)) != 0) {
			if (m < 0)
				return SCCTL_USAGE;
			continue;
		}
		if (argv[i][0] == '-' || ticket != NULL) {
			scctl_error(what, "unknown argument \"%s\"", argv[i]);
			return SCCTL_USAGE;
		}
		ticket = argv[i];
	}
	if (ticket == NULL) {
		scctl_error(what, "which ticket? usage: %s TICKET --engineer ID|--partner ID [--mode M]",
			    what);
		return SCCTL_USAGE;
	}
	if ((engineer == NULL) == (partner == NULL)) {
		scctl_error(what, "give exactly one of --engineer ID and --partner ID");
		return SCCTL_USAGE;
	}
	enum mode parsed;
	if (mode != NULL && mode_parse(mode, &parsed) != 0) {
		scctl_error(what, "--mode \"%s\": must be onsite, remote or outsourced", mode);
		return SCCTL_USAGE;
	}
	conn = scctl_connect(ctx, what, true);
	if (conn == NULL)
		goto out;
	{
		const char *params[7] = { ticket, engineer, partner, mode, replace ? "true" : "false",
					  ACTOR, reason };
		res = call(conn, what,
			   "SELECT result, order_id, withdrawn"
			   " FROM sc_ticket_assign($1, $2, $3, $4, $5::boolean, $6, $7)", 7, params);
	}
	if (res == NULL)
		goto out;
	const char *result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "offered") != 0) {
		scctl_error(what, "%s: %s (%s)", ticket, refusal_text(result), result);
		goto out;
	}
	{
		static const char *const keys[] = { "ticket_id", "order_id", "to", "state", "withdrawn" };
		const char *values[5] = { ticket, PQgetvalue(res, 0, 1), engineer ? engineer : partner,
					  "offered",
					  PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2) };
		if (print_result(ctx, 5, keys, values) != 0) {
			scctl_error(what, "out of memory");
			goto out;
		}
	}
	rc = SCCTL_OK;
out:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int scctl_assign(struct scctl *ctx, int argc, char **argv)
{
	return assign(ctx, argc, argv, false);
}

int scctl_reassign(struct scctl *ctx, int argc, char **argv)
{
	return assign(ctx, argc, argv, true);
}

/* cancel TICKET [--reason R] */
int scctl_cancel(struct scctl *ctx, int argc, char **argv)
{
	const char *what = "cancel";
	const char *ticket = NULL, *reason = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	int rc = SCCTL_FAIL;

	for (int i = 1; i < argc; i++) {
		int m;
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if ((m = scctl_flag_value(what, argc, argv, &i, "--reason", &reason)) != 0) {
			if (m < 0)
				return SCCTL_USAGE;
			continue;
		}
		if (argv[i][0] == '-' || ticket != NULL) {
			scctl_error(what, "unknown argument \"%s\"", argv[i]);
			return SCCTL_USAGE;
		}
		ticket = argv[i];
	}
	if (ticket == NULL) {
		scctl_error(what, "which ticket? usage: cancel TICKET [--reason R]");
		return SCCTL_USAGE;
	}
	conn = scctl_connect(ctx, what, true);
	if (conn == NULL)
		goto out;
	{
		const char *params[3] = { ticket, reason, ACTOR };
		res = call(conn, what, "SELECT result, withdrawn FROM sc_ticket_cancel($1, $2, $3)", 3,
			   params);
	}
	if (res == NULL)
		goto out;
	const char *result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "cancelled") != 0) {
		scctl_error(what, "%s: %s (%s)", ticket, refusal_text(result), result);
		goto out;
	}
	{
		static const char *const keys[] = { "ticket_id", "state", "withdrawn_orders" };
		const char *values[3] = { ticket, "cancelled", PQgetvalue(res, 0, 1) };
		if (print_result(ctx, 3, keys, values) != 0) {
			scctl_error(what, "out of memory");
			goto out;
		}
	}
	rc = SCCTL_OK;
out:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

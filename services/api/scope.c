/*
 * The caller's scope travels into every statement as its first four
 * parameters (role, zone, partner, engineer: SQL NULL when the token has
 * none), and every sc_api_* function filters by them (schema/040_api.sql).
 * This file holds that convention: the prepared statements and the relay of
 * their (status, body) row to the client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "service.h"

#define SCOPE_NPARAMS 4
#define RELAY_MAX_PARAMS 12

/* name, SQL function, parameters after the scope. */
static const struct {
	const char *name;
	const char *fn;
	int nextra;
} statements[] = {
	{ "api_tickets", "sc_api_tickets", 4 },
	{ "api_ticket", "sc_api_ticket", 1 },
	{ "api_assign", "sc_api_assign", 6 },
	{ "api_cancel", "sc_api_cancel", 3 },
	{ "api_feedback", "sc_api_feedback", 3 },
	{ "api_orders", "sc_api_orders", 4 },
	{ "api_order_event", "sc_api_order_event", 1 },
	{ "api_engineer_status", "sc_api_engineer_status", 2 },
	{ "api_province_kpi", "sc_api_province_kpi", 1 },
	{ "api_province_engineers", "sc_api_province_engineers", 1 },
	{ "api_province_escalations", "sc_api_province_escalations", 2 },
	{ "api_province_partners", "sc_api_province_partners", 1 },
};

int scope_prepare(struct pool *pool)
{
	char sql[256];
	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
		int n = SCOPE_NPARAMS + statements[i].nextra;
		int len = snprintf(sql, sizeof(sql), "SELECT status, body FROM %s(", statements[i].fn);
		for (int p = 1; p <= n && len > 0 && (size_t)len < sizeof(sql); p++)
			len += snprintf(sql + len, sizeof(sql) - (size_t)len, "%s$%d",
					p > 1 ? ", " : "", p);
		if (len <= 0 || (size_t)len + 2 >= sizeof(sql))
			return -1;
		snprintf(sql + len, sizeof(sql) - (size_t)len, ")");
		if (pool_prepare(pool, statements[i].name, sql, n) != 0)
			return -1;
	}
	return 0;
}

void api_actor(const struct api_call *c, char *buf, size_t len)
{
	snprintf(buf, len, "api:%s:%lld", c->scope.role, c->scope.token_id);
}

static void on_result(void *arg, const struct db_reply *r)
{
	struct api_call *c = arg;
	if (r->error != NULL) {
		/* Class 22 (data exception): a value PostgreSQL cannot take, such
		 * as a date beyond its range, that passed the C checks. */
		if (strncmp(r->sqlstate, "22", 2) == 0) {
			api_reply_error(c, 400, "bad_request", "a value is out of range");
			return;
		}
		log_error("statement failed: %s route=%s", r->error, c->route->name);
		if (r->sqlstate[0] == '\0')
			api_reply_error(c, 503, "unavailable", "the database is not reachable; retry");
		else
			api_reply_error(c, 500, "internal", "the statement failed; see the service log");
		return;
	}
	if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0) || PQgetisnull(r->res, 0, 1)) {
		log_error("statement answered no row route=%s", c->route->name);
		api_reply_error(c, 500, "internal", "the statement answered nothing");
		return;
	}
	int status = atoi(PQgetvalue(r->res, 0, 0));
	if (status < 200 || status > 599)
		status = 500;
	api_reply_json(c, status, PQgetvalue(r->res, 0, 1), (size_t)PQgetlength(r->res, 0, 1));
}

void api_relay(struct api_call *c, const char *stmt, int n, const char *const *params)
{
	const char *all[RELAY_MAX_PARAMS];
	const struct api_scope *s = &c->scope;
	if (n < 0 || n > RELAY_MAX_PARAMS - SCOPE_NPARAMS) {
		api_reply_error(c, 500, "internal", "too many parameters");
		return;
	}
	struct db *db = pool_pick(c->api->pool);
	if (db == NULL) {
		api_reply_error(c, 503, "unavailable", "the database is not reachable; retry");
		return;
	}
	all[0] = s->role;
	all[1] = s->zone[0] != '\0' ? s->zone : NULL;
	all[2] = s->partner[0] != '\0' ? s->partner : NULL;
	all[3] = s->engineer[0] != '\0' ? s->engineer : NULL;
	for (int i = 0; i < n; i++)
		all[SCOPE_NPARAMS + i] = params[i];
	if (db_exec_prepared(db, stmt, SCOPE_NPARAMS + n, all, on_result, c) != 0)
		api_reply_error(c, 503, "unavailable", "out of memory");
}

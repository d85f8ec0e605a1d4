/*
 * What every scctl command shares: argument helpers, error messages,
 * connecting to PostgreSQL, calling the API's SQL functions, JSON output.
 * The tables are in table.c.
 */
#include "scctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Seconds to wait for the database before "cannot connect". */
#define SCCTL_CONNECT_TIMEOUT_S "10"

void scctl_error(const char *what, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "scctl: %s: %s\n", what, why);
}

int scctl_flag_value(const char *what, int argc, char **argv, int *i, const char *flag,
		     const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(flag);

	if (strncmp(arg, flag, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		scctl_error(what, "%s needs a value", flag);
		return -1;
	}
	*value = argv[++*i];
	return 1;
}

bool scctl_common_flag(struct scctl *ctx, const char *argv_i)
{
	if (strcmp(argv_i, "--json") == 0) {
		ctx->json = true;
		return true;
	}
	return false;
}

/* Server notices ("relation already exists, skipping") are not for the user. */
static void notice_to_log(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void)arg;
	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		n--;
	log_debug("postgres notice: %.*s", (int)n, message);
}

const char *scctl_pg_why(const PGconn *conn, const PGresult *res, char *buf, size_t len)
{
	const char *msg = NULL;
	size_t n;

	if (res)
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (!msg || !*msg)
		msg = conn ? PQerrorMessage(conn) : "";
	if (!msg || !*msg)
		msg = "unknown error";
	/* libpq messages may start with "ERROR:  " and span lines: keep the first. */
	if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	n = strcspn(msg, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
	return buf;
}

PGconn *scctl_connect(const struct scctl *ctx, const char *what, bool need_schema)
{
	/*
	 * expand_dbname: dbname holds the whole DSN (URI or key=value), whose
	 * values override the keywords before it. connect_timeout comes first
	 * as a default, so a script learns "unreachable" in seconds instead of
	 * after the kernel's TCP timeout; the DSN or PGCONNECT_TIMEOUT may set
	 * another.
	 */
	const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
	const char *values[] = {getenv("PGCONNECT_TIMEOUT") ? getenv("PGCONNECT_TIMEOUT")
							    : SCCTL_CONNECT_TIMEOUT_S,
				ctx->cfg.pg_dsn, "scctl", NULL};
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char why[512];

	conn = PQconnectdbParams(keys, values, 1);
	if (!conn) {
		scctl_error(what, "cannot connect to the database: out of memory");
		goto fail;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		scctl_error(what, "cannot connect to the database: %s",
			    scctl_pg_why(conn, NULL, why, sizeof(why)));
		goto fail;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	if (need_schema) {
		res = PQexec(conn, "SELECT to_regclass('master_version') IS NOT NULL");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
			goto fail;
		}
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
			scctl_error(what, "the database has no Service Cloud schema: run `scctl migrate` first");
			goto fail;
		}
		PQclear(res);
	}
	return conn;
fail:
	PQclear(res);
	PQfinish(conn);
	return NULL;
}

int scctl_exec(PGconn *conn, const char *what, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	char why[512];
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

int scctl_print_json(const cJSON *v)
{
	char *text = cJSON_Print(v);

	if (!text) {
		scctl_error("output", "out of memory");
		return -1;
	}
	fputs(text, stdout);
	fputc('\n', stdout);
	free(text);
	return 0;
}


int scctl_api_get(PGconn *conn, const char *what, const char *sql, int nparams,
		  const char *const *params, cJSON **body)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	cJSON *b = NULL;
	char why[512];
	int rc = SCCTL_FAIL;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	if (PQntuples(res) != 1 || PQnfields(res) < 2 || PQgetisnull(res, 0, 0) ||
	    PQgetisnull(res, 0, 1)) {
		scctl_error(what, "the database answered no (status, body) row");
		goto out;
	}
	b = cJSON_Parse(PQgetvalue(res, 0, 1));
	if (!b) {
		scctl_error(what, "the database answered a body that is not JSON (out of memory?)");
		goto out;
	}
	int status = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (status != 200) {
		const char *error = scctl_json_str(b, "error");
		const char *detail = scctl_json_str(b, "detail");

		scctl_error(what, "%s (%s)", detail ? detail : "refused", error ? error : "error");
		/* A 400 is a value the caller gave that the function refuses. */
		rc = status == 400 ? SCCTL_USAGE : SCCTL_FAIL;
		goto out;
	}
	*body = b;
	b = NULL;
	rc = SCCTL_OK;
out:
	cJSON_Delete(b);
	PQclear(res);
	return rc;
}

int scctl_view(const struct scctl *ctx, const char *what, const char *sql, int nparams,
	       const char *const *params, cJSON **body)
{
	PGconn *conn = scctl_connect(ctx, what, true);
	int rc;

	if (!conn)
		return SCCTL_FAIL;
	rc = scctl_api_get(conn, what, sql, nparams, params, body);
	PQfinish(conn);
	return rc;
}

int scctl_one_arg(struct scctl *ctx, int argc, char **argv, const char *noun,
		  const char *placeholder, const char **arg)
{
	const char *what = argv[0];

	*arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if (argv[i][0] == '-' || *arg != NULL) {
			scctl_error(what, "unknown argument \"%s\" (see scctl %s --help)", argv[i],
				    what);
			return SCCTL_USAGE;
		}
		*arg = argv[i];
	}
	if (!*arg) {
		scctl_error(what, "which %s? usage: %s %s", noun, what, placeholder);
		return SCCTL_USAGE;
	}
	return SCCTL_OK;
}

const char *scctl_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *scctl_json_cell(const cJSON *v, char *buf, size_t len)
{
	char *text;

	if (!v || cJSON_IsNull(v))
		return NULL;
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "true" : "false";
	if (cJSON_IsNumber(v)) {
		snprintf(buf, len, "%.15g", v->valuedouble);
		return buf;
	}
	text = cJSON_PrintUnformatted(v);
	if (!text)
		return NULL;
	snprintf(buf, len, "%s", text);
	free(text);
	return buf;
}

const char *scctl_ts_cell(const char *ts, bool ms, char *buf, size_t len)
{
	/* "2026-11-23T08:00:00.250Z": sc_ts(), the only form the database sends. */
	if (!ts || strlen(ts) != 24 || ts[10] != 'T' || ts[19] != '.' || ts[23] != 'Z')
		return ts;
	snprintf(buf, len, "%.10s %.*s", ts, ms ? 12 : 8, ts + 11);
	return buf;
}

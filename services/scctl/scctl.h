#ifndef SC_SERVICES_SCCTL_SCCTL_H
#define SC_SERVICES_SCCTL_SCCTL_H

/*
 * scctl: the command line of Service Cloud (contract sections 1, 3, 4, 6).
 *
 * main.c parses the global options and picks a command from its table;
 * each command parses its own arguments and talks to PostgreSQL with
 * synchronous libpq (a CLI may wait on the database). cli.c holds what the
 * commands share: argument helpers, error messages, connecting, and the
 * table / JSON output.
 *
 * Output rules (contract section 6, "CLI output"): results on stdout as an
 * aligned table, or JSON with --json; errors on stderr as
 * "scctl: <what failed>: <why>". Exit status SCCTL_OK, SCCTL_USAGE (unknown
 * command or flag, missing or malformed argument) or SCCTL_FAIL (anything
 * else: refused, not found, bad configuration, and the database unreachable,
 * told by "cannot connect to the database" on stderr; the contract allows
 * no fourth code).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "config.h"

enum {
	SCCTL_OK = 0,
	SCCTL_FAIL = 1,
	SCCTL_USAGE = 2,
};

/* What every command gets from main.c. */
struct scctl {
	struct config cfg;  /* loaded with program "scctl" before the command runs */
	bool json;          /* --json: print JSON instead of tables */
};

/*
 * A command: argv[0] is the command's name, the rest its arguments (global
 * options already removed; --json is also accepted among them). Returns an
 * exit status (SCCTL_*), having printed its own error.
 */
typedef int (*scctl_command_fn)(struct scctl *ctx, int argc, char **argv);

int scctl_migrate(struct scctl *ctx, int argc, char **argv);
int scctl_import(struct scctl *ctx, int argc, char **argv);
int scctl_token(struct scctl *ctx, int argc, char **argv);
/* Manual dispatch (dispatch.c): the SQL functions sc-api calls too. */
int scctl_assign(struct scctl *ctx, int argc, char **argv);
int scctl_reassign(struct scctl *ctx, int argc, char **argv);
int scctl_cancel(struct scctl *ctx, int argc, char **argv);
/* pause.c: a ticket's SLA clocks waiting on the customer (issue 6). */
int scctl_pause(struct scctl *ctx, int argc, char **argv);
int scctl_resume(struct scctl *ctx, int argc, char **argv);
/*
 * Views (issue 7): the API's own SQL functions called with hq scope, their
 * JSON printed with --json, else tables. views.c: queue, engineers;
 * ticket.c: ticket, history.
 */
int scctl_queue(struct scctl *ctx, int argc, char **argv);
int scctl_engineers(struct scctl *ctx, int argc, char **argv);
int scctl_partners(struct scctl *ctx, int argc, char **argv);
int scctl_ticket(struct scctl *ctx, int argc, char **argv);
int scctl_history(struct scctl *ctx, int argc, char **argv);
/* broker.c: the broker's accounts and ACL from the master data (issue 7). */
int scctl_broker_auth(struct scctl *ctx, int argc, char **argv);
/* template.c: the commented site configuration (runs without configuration). */
int scctl_config_template(struct scctl *ctx, int argc, char **argv);

/* ---- migrations embedded at build time (cmake/embed_sql.cmake) --------- */

struct scctl_migration {
	int version;       /* NNN of schema/NNN_name.sql */
	const char *name;  /* file name without ".sql", e.g. "001_base" */
	const char *sql;   /* the whole file, NUL-terminated */
};

/* In version order. */
extern const struct scctl_migration scctl_migrations[];
extern const size_t scctl_migrations_count;

/* ---- shared helpers (cli.c) ------------------------------------------- */

/* Prints "scctl: <what>: <why>\n" on stderr. */
void scctl_error(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Matches argv[*i] against a flag taking a value, as "--flag VALUE" or
 * "--flag=VALUE". Returns 1 and sets *value (advancing *i past a separate
 * value), 0 when argv[*i] is another argument, or -1 after printing a usage
 * error when the value is missing.
 */
int scctl_flag_value(const char *what, int argc, char **argv, int *i, const char *flag,
		     const char **value) __attribute__((warn_unused_result));

/*
 * Handles an argument every command accepts: "--json" (sets ctx->json).
 * Returns true when argv_i was one.
 */
bool scctl_common_flag(struct scctl *ctx, const char *argv_i);

/*
 * Connects to ctx->cfg.pg_dsn (application_name "scctl"), server notices
 * go to the debug log. With need_schema, also checks that `scctl migrate`
 * has run. Returns the connection (caller PQfinish()es it) or NULL after
 * printing "scctl: <what>: <why>".
 */
PGconn *scctl_connect(const struct scctl *ctx, const char *what, bool need_schema)
	__attribute__((warn_unused_result));

/*
 * The reason a query failed, one line without the trailing newline, into
 * buf. res may be NULL (then the connection's message is used).
 */
const char *scctl_pg_why(const PGconn *conn, const PGresult *res, char *buf, size_t len);

/*
 * Runs one parameterless command (BEGIN, COMMIT, ...). `sql` is always a
 * constant of our own or an embedded migration, never built from outside
 * input (that travels as PQexecParams parameters). Returns 0, or -1 after
 * printing "scctl: <what>: <why>".
 */
int scctl_exec(PGconn *conn, const char *what, const char *sql)
	__attribute__((warn_unused_result));

/* Prints v formatted on stdout followed by a newline. 0 or -1. */
int scctl_print_json(const cJSON *v) __attribute__((warn_unused_result));

/*
 * Calls one of the API's functions (schema/040_api.sql: sc_api_*, scope
 * first, answering (status, body)) as the operator: `sql` is a constant of
 * ours, "SELECT status, body FROM sc_api_x('hq', NULL, NULL, NULL, $1 ...)".
 * On status 200 returns SCCTL_OK with the parsed body in *body (caller
 * cJSON_Delete()s). Otherwise prints "scctl: <what>: <why>" (for an answer
 * of the function, its {"error", "detail"}) and returns the exit status:
 * SCCTL_USAGE for 400 (a value of the caller's), else SCCTL_FAIL (404 not
 * found, 409 refused, database errors).
 */
int scctl_api_get(PGconn *conn, const char *what, const char *sql, int nparams,
		  const char *const *params, cJSON **body) __attribute__((warn_unused_result));

/*
 * A read-only view command's whole database side: connects, scctl_api_get,
 * disconnects. Same result as scctl_api_get.
 */
int scctl_view(const struct scctl *ctx, const char *what, const char *sql, int nparams,
	       const char *const *params, cJSON **body) __attribute__((warn_unused_result));

/*
 * Parses "WHAT ARG [--json]": the one positional argument into *arg.
 * SCCTL_OK, or SCCTL_USAGE after printing why ("which <noun>? usage: WHAT
 * <placeholder>").
 */
int scctl_one_arg(struct scctl *ctx, int argc, char **argv, const char *noun,
		  const char *placeholder, const char **arg) __attribute__((warn_unused_result));

/* o[key] when it is a string, else NULL. */
const char *scctl_json_str(const cJSON *o, const char *key);

/*
 * v as a table cell: a string as it is, a number or boolean as text, an
 * object or array as compact JSON (into buf, truncated to len), NULL for
 * null or missing (printed "-").
 */
const char *scctl_json_cell(const cJSON *v, char *buf, size_t len);

/*
 * A timestamp of the database (sc_ts: "2026-11-23T08:00:00.250Z") as a
 * table shows it, UTC: "2026-11-23 08:00:00" (ms: "...08:00:00.250"), into
 * buf. Anything else is returned as it is (NULL too).
 */
const char *scctl_ts_cell(const char *ts, bool ms, char *buf, size_t len);

/* ---- tables (table.c) --------------------------------------------------- */

/*
 * An aligned text table: a header row, then rows of strings, columns
 * padded by display width (scctl_display_width).
 */
struct scctl_table;

/*
 * ncols headers (copied); headers NULL makes a table printed without a
 * header row (a "key  value" block). NULL on allocation failure.
 */
struct scctl_table *scctl_table_new(size_t ncols, const char *const *headers)
	__attribute__((warn_unused_result));
/* Right-aligns column col (numbers). */
void scctl_table_right(struct scctl_table *t, size_t col);
/*
 * Appends a row of ncols cells (copied; NULL prints as "-", a control
 * character as a space). 0 or -1.
 */
int scctl_table_add(struct scctl_table *t, const char *const *cells)
	__attribute__((warn_unused_result));
/* Rows added so far (the header not counted). */
size_t scctl_table_rows(const struct scctl_table *t);
void scctl_table_print(const struct scctl_table *t, FILE *out);
/* scctl_table_free(NULL) does nothing. */
void scctl_table_free(struct scctl_table *t);

/*
 * Terminal columns that UTF-8 text s takes: East Asian wide and fullwidth
 * characters (Chinese names) 2, combining marks 0, anything else (an
 * invalid byte included) 1.
 */
size_t scctl_display_width(const char *s);

#endif

/*
 * What every scctl command shares: argument helpers, error messages,
 * connecting to PostgreSQL, and the table / JSON output.
 */
#include "scctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *values[] = {ctx->cfg.pg_dsn, "scctl", NULL};
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char why[512];

	/* expand_dbname: dbname holds the whole DSN (URI or key=value). */
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

/* ---- tables ------------------------------------------------------------ */

struct scctl_table {
	size_t ncols;
	char **cells;     /* (nrows + 1) * ncols, the header row first */
	size_t nrows;     /* rows after the header */
	size_t cap;       /* rows allocated, header included */
	bool *right;      /* per column: right-aligned */
};

static char *dup_or_dash(const char *s)
{
	return strdup(s ? s : "-");
}

struct scctl_table *scctl_table_new(size_t ncols, const char *const *headers)
{
	struct scctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->cap = 16;
	t->cells = calloc(t->cap * ncols, sizeof(*t->cells));
	t->right = calloc(ncols, sizeof(*t->right));
	if (!t->cells || !t->right)
		goto fail;
	for (size_t c = 0; c < ncols; c++) {
		t->cells[c] = dup_or_dash(headers[c]);
		if (!t->cells[c])
			goto fail;
	}
	return t;
fail:
	scctl_table_free(t);
	return NULL;
}

void scctl_table_right(struct scctl_table *t, size_t col)
{
	if (col < t->ncols)
		t->right[col] = true;
}

int scctl_table_add(struct scctl_table *t, const char *const *cells)
{
	char **row;

	if (t->nrows + 1 >= t->cap) {
		size_t cap = t->cap * 2;
		char **grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));

		if (!grown)
			return -1;
		memset(grown + t->cap * t->ncols, 0, (cap - t->cap) * t->ncols * sizeof(*grown));
		t->cells = grown;
		t->cap = cap;
	}
	row = t->cells + (t->nrows + 1) * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		row[c] = dup_or_dash(cells[c]);
		if (!row[c]) {
			while (c > 0)
				free(row[--c]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

/* Display width: UTF-8 code points (names may be Chinese; close enough). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void scctl_table_print(const struct scctl_table *t, FILE *out)
{
	size_t *w = calloc(t->ncols, sizeof(*w));

	if (!w)
		return;
	for (size_t r = 0; r <= t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t cw = width(t->cells[r * t->ncols + c]);

			if (cw > w[c])
				w[c] = cw;
		}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t pad = w[c] - width(s);
			bool last = c + 1 == t->ncols;

			if (c > 0)
				fputs("  ", out);
			if (t->right[c])
				fprintf(out, "%*s%s", (int)pad, "", s);
			else
				fprintf(out, "%s%*s", s, last ? 0 : (int)pad, "");
		}
		fputc('\n', out);
	}
	free(w);
}

void scctl_table_free(struct scctl_table *t)
{
	if (!t)
		return;
	if (t->cells)
		for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++)
			free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

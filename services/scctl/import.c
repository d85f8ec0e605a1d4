/*
 * scctl import FILE.json: master data (contract section 3) in one
 * transaction, all of the file or none of it.
 *
 * 1. Read the file (at most 64 MiB) and parse it strictly.
 * 2. Check it whole in C and build the rows (import_schema.c).
 * 3. Upsert section by section in dependency order, mapping whatever the
 *    database refuses back to the entry being written, then bump
 *    master_version and NOTIFY master so the services reload (contract:
 *    within 5 seconds), and commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import.h"
#include "json.h"
#include "log.h"
#include "scctl.h"

/* Any fixed number ("scimp" in ASCII): one import at a time, so two of them
 * never deadlock on rows they upsert in different orders. */
#define IMPORT_LOCK_SQL "SELECT pg_advisory_xact_lock(x'7363696d70'::bigint)"

/* What one section did. */
struct section_count {
	size_t entries, inserted, updated;
};

/* ---- reading and parsing ------------------------------------------------ */

/*
 * Reads path ("-": standard input) into a NUL-terminated buffer. Returns it
 * (caller frees) or NULL with the reason in err.
 */
static char *read_file(const char *path, size_t *len_out, char *err, size_t errlen)
{
	int fd = -1;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	struct stat st = {0};

	fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		if ((unsigned long long)st.st_size > IMPORT_MAX_FILE) {
			snprintf(err, errlen, "the file has %lld bytes, more than the 64 MiB allowed",
				 (long long)st.st_size);
			goto fail;
		}
		/* Room for the whole file, its NUL, and the byte that shows EOF
		 * without growing. */
		cap = (size_t)st.st_size + 2;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "is a directory");
		goto fail;
	}
	for (;;) {
		ssize_t n;

		if (!buf || len + 1 >= cap) {
			size_t ncap = !buf && cap ? cap : cap ? cap * 2 : 65536;
			char *grown;

			if (ncap > IMPORT_MAX_FILE + 2)
				ncap = IMPORT_MAX_FILE + 2;
			grown = realloc(buf, ncap);
			if (!grown) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			buf = grown;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		/* A pipe or a file that grew while we read. */
		if (len > IMPORT_MAX_FILE) {
			snprintf(err, errlen, "more than the 64 MiB allowed");
			goto fail;
		}
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	buf[len] = '\0';
	if (fd != STDIN_FILENO)
		close(fd);
	*len_out = len;
	return buf;
fail:
	if (fd > STDIN_FILENO)
		close(fd);
	free(buf);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Refuses an object that names a key twice, at any depth: cJSON would
 * quietly use the first, and the file's author meant one of them. path is
 * where v is ("devices[3]"), for the message.
 */
static int check_dup_keys(const cJSON *v, const char *path, char *err, size_t errlen)
{
	const char **keys = NULL;
	size_t n = 0, i = 0;
	int rc = -1;

	for (const cJSON *c = v->child; c; c = c->next, i++) {
		char sub[256];

		if (cJSON_IsObject(v))
			snprintf(sub, sizeof(sub), "%s%s%.64s", path, *path ? "." : "", c->string);
		else
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if ((cJSON_IsObject(c) || cJSON_IsArray(c)) &&
		    check_dup_keys(c, sub, err, errlen) < 0)
			return -1;
	}
	n = i;
	if (!cJSON_IsObject(v) || n < 2)
		return 0;
	/* Sorting, not comparing all pairs: an object may be huge. */
	keys = malloc(n * sizeof(*keys));
	if (!keys) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	i = 0;
	for (const cJSON *c = v->child; c; c = c->next)
		keys[i++] = c->string;
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (i = 1; i < n; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			snprintf(err, errlen, "%s%skey \"%.64s\" appears twice", path,
				 *path ? ": " : "", keys[i]);
			goto out;
		}
	rc = 0;
out:
	free(keys);
	return rc;
}

/* Parses the whole file. Returns the tree or NULL with the reason in err. */
static cJSON *parse(const char *buf, size_t len, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *root = NULL;

	/* Size first: the contract's limit, before anything else is said. */
	if (len > IMPORT_MAX_FILE) {
		snprintf(err, errlen, "more than the 64 MiB allowed");
		return NULL;
	}
	if (len == 0) {
		snprintf(err, errlen, "the file is empty, not JSON");
		return NULL;
	}
	if (memchr(buf, '\0', len) || !json_utf8_valid(buf, len)) {
		snprintf(err, errlen, "not JSON: not valid UTF-8 text");
		return NULL;
	}
	/* require_null_terminated: nothing but whitespace may follow. */
	root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		size_t line = 1, col = 1;

		if (at && at >= buf && at <= buf + len) {
			for (const char *p = buf; p < at; p++) {
				if (*p == '\n') {
					line++;
					col = 1;
				} else if (((unsigned char)*p & 0xc0) != 0x80) {
					col++;
				}
			}
			snprintf(err, errlen, "not valid JSON (near line %zu, column %zu)", line, col);
		} else {
			snprintf(err, errlen, "not valid JSON");
		}
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "the file must hold one JSON object");
		goto fail;
	}
	if (check_dup_keys(root, "", err, errlen) < 0)
		goto fail;
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}

/* ---- the database ------------------------------------------------------- */

/*
 * The rows of a section go to the server in libpq pipeline mode, a batch at
 * a time: one round trip per batch instead of per row, which is what makes
 * a file of a few hundred thousand devices a matter of seconds. Within a
 * batch, each row's reference checks come right before its upsert, and the
 * results are judged in the order sent, so the first problem reported is
 * still the first bad entry. Once a statement fails, the server skips the
 * rest of the batch (PGRES_PIPELINE_ABORTED) and the transaction is rolled
 * back anyway.
 *
 * Batches stay small enough that the results of one (well under 100 KiB)
 * fit in the socket buffers: the server never blocks writing results while
 * we still block sending queries.
 */
#define BATCH_ROWS 256

enum item_kind {
	ITEM_REF,     /* a reference check: a row back names the unknown value */
	ITEM_TZ,      /* a time zone check: an error means unknown */
	ITEM_UPSERT,  /* the row itself */
};

/* One statement sent, awaiting its result. */
struct item {
	enum item_kind kind;
	size_t row;
	size_t field;
};

/* Why a reference or time zone check failed; printed if it is the first. */
static void report(bool *failed, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(bool *failed, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	if (*failed)
		return;
	*failed = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	scctl_error("import", "%s", why);
}

/*
 * Says why the upsert of row failed, in the file's terms where possible:
 * a foreign key names the field and the unknown value.
 */
static void explain_failure(PGconn *conn, const PGresult *res, const struct import_section *s,
			    const struct import_row *row, bool *failed)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
	char why[512];

	if (state && constraint && strcmp(state, "23503") == 0) { /* foreign_key_violation */
		for (size_t f = 0; f < s->nfields; f++) {
			const struct import_field *fd = &s->fields[f];
			char name[256];
			const char *value;

			if (!fd->ref || fd->ref_sql)
				continue;
			snprintf(name, sizeof(name), "%s_%s_fkey", s->table, fd->key);
			if (strcmp(name, constraint) != 0)
				continue;
			value = row->params[import_param_index(s, f)];
			report(failed, "%s: %s \"%s\" is not a known %s", row->label, fd->key,
			       value ? value : "", fd->ref);
			return;
		}
	}
	report(failed, "%s: refused by the database: %s", row->label,
	       scctl_pg_why(conn, res, why, sizeof(why)));
}

/* Judges the result of one item; sets *failed (and prints) on a problem. */
static void judge(PGconn *conn, const PGresult *res, const struct import_rows *r,
		  const struct item *it, struct section_count *count, bool *failed)
{
	const struct import_section *s = r->section;
	const struct import_row *row = &r->rows[it->row];
	const struct import_field *fd = s->object ? NULL : &s->fields[it->field];
	ExecStatusType st = PQresultStatus(res);
	char why[512];

	if (st == PGRES_PIPELINE_ABORTED)
		return; /* an earlier statement failed and said why */
	switch (it->kind) {
	case ITEM_REF:
		if (st != PGRES_TUPLES_OK)
			report(failed, "%s: %s", row->label, scctl_pg_why(conn, res, why, sizeof(why)));
		else if (PQntuples(res) > 0)
			report(failed, "%s: %s \"%s\" is not a known %s", row->label, fd->key,
			       PQgetvalue(res, 0, 0), fd->ref);
		return;
	case ITEM_TZ: {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (st == PGRES_TUPLES_OK)
			return;
		if (state && strcmp(state, "22023") == 0) /* invalid_parameter_value */
			report(failed, "%s: %s \"%s\" is not a time zone PostgreSQL knows", row->label,
			       fd->key, row->params[import_param_index(s, it->field)]);
		else
			report(failed, "%s: %s", row->label, scctl_pg_why(conn, res, why, sizeof(why)));
		return;
	}
	case ITEM_UPSERT:
		if (st != PGRES_TUPLES_OK) {
			explain_failure(conn, res, s, row, failed);
			return;
		}
		count->entries++;
		if (PQntuples(res) > 0) {
			if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
				count->inserted++;
			else
				count->updated++;
		}
		return;
	}
}

/* Queues the statements of one row. 0, or -1 when libpq refused to send. */
static int send_row(PGconn *conn, const char *stmt, const struct import_rows *r, size_t i,
		    struct item *items, size_t *nitems)
{
	const struct import_section *s = r->section;
	const struct import_row *row = &r->rows[i];

	for (size_t f = 0; !s->object && f < s->nfields; f++) {
		const struct import_field *fd = &s->fields[f];
		const char *value = row->params[import_param_index(s, f)];

		if (!value)
			continue;
		/* A value derived from another field (coverage from province) is
		 * that field's to explain: its foreign key does. */
		if (fd->ref_sql && !(fd->dflt_from && !(row->given & (1UL << f)))) {
			if (!PQsendQueryParams(conn, fd->ref_sql, 1, NULL, &value, NULL, NULL, 0))
				return -1;
			items[(*nitems)++] = (struct item){ITEM_REF, i, f};
		}
		if (fd->type == IMPORT_TZ) {
			if (!PQsendQueryParams(conn, "SELECT now() AT TIME ZONE $1", 1, NULL, &value,
					       NULL, NULL, 0))
				return -1;
			items[(*nitems)++] = (struct item){ITEM_TZ, i, f};
		}
	}
	if (!PQsendQueryPrepared(conn, stmt, import_nparams(s), (const char *const *)row->params,
				 NULL, NULL, 0))
		return -1;
	items[(*nitems)++] = (struct item){ITEM_UPSERT, i, 0};
	return 0;
}

/*
 * Reads the results of a batch up to its sync point. 0 when every result
 * arrived (problems are in *failed), -1 when the connection broke.
 */
static int drain(PGconn *conn, const struct import_rows *r, const struct item *items,
		 size_t nitems, struct section_count *count, bool *failed)
{
	char why[512];
	size_t k = 0;

	for (;;) {
		PGresult *res = PQgetResult(conn);

		if (!res) {
			/* End of one statement's results. */
			if (++k > nitems)
				goto broken;
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return k == nitems ? 0 : -1;
		}
		if (k >= nitems) {
			PQclear(res);
			goto broken;
		}
		judge(conn, res, r, &items[k], count, failed);
		PQclear(res);
	}
broken:
	if (!*failed)
		report(failed, "%s: %s", r->section->name, scctl_pg_why(conn, NULL, why, sizeof(why)));
	return -1;
}

/* Upserts one section. 0, or -1 after printing the error. */
static int upsert_section(PGconn *conn, const struct import_rows *r, struct section_count *count)
{
	const struct import_section *s = r->section;
	struct item *items = NULL;
	char stmt[64];
	char why[512];
	PGresult *res = NULL;
	bool failed = false, pipeline = false;
	size_t max_items = 0;
	int rc = -1;

	/* The most statements one row sends: checks, then the upsert. */
	for (size_t f = 0; !s->object && f < s->nfields; f++)
		max_items += (s->fields[f].ref_sql != NULL) + (s->fields[f].type == IMPORT_TZ);
	max_items = (max_items + 1) * BATCH_ROWS;
	items = calloc(max_items, sizeof(*items));
	if (!items) {
		scctl_error("import", "out of memory");
		goto out;
	}
	snprintf(stmt, sizeof(stmt), "import_%s", s->name);
	res = PQprepare(conn, stmt, s->sql, import_nparams(s), NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		scctl_error("import", "%s: %s", s->name, scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	if (!PQenterPipelineMode(conn)) {
		scctl_error("import", "%s: %s", s->name, scctl_pg_why(conn, NULL, why, sizeof(why)));
		goto out;
	}
	pipeline = true;
	for (size_t i = 0; i < r->n && !failed;) {
		size_t nitems = 0;

		for (size_t end = i + BATCH_ROWS; i < r->n && i < end; i++)
			if (send_row(conn, stmt, r, i, items, &nitems) < 0) {
				report(&failed, "%s: %s", s->name,
				       scctl_pg_why(conn, NULL, why, sizeof(why)));
				goto out;
			}
		if (!PQpipelineSync(conn)) {
			report(&failed, "%s: %s", s->name, scctl_pg_why(conn, NULL, why, sizeof(why)));
			goto out;
		}
		if (drain(conn, r, items, nitems, count, &failed) < 0)
			goto out;
	}
	if (!PQexitPipelineMode(conn)) {
		report(&failed, "%s: %s", s->name, scctl_pg_why(conn, NULL, why, sizeof(why)));
		goto out;
	}
	pipeline = false;
	if (failed)
		goto out;
	if (s->after_sql) {
		PQclear(res);
		res = PQexec(conn, s->after_sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			scctl_error("import", "%s: %s", s->name, scctl_pg_why(conn, res, why, sizeof(why)));
			goto out;
		}
		if (PQntuples(res) > 0) {
			scctl_error("import", "%s: %s", s->name, PQgetvalue(res, 0, 0));
			goto out;
		}
	}
	rc = 0;
out:
	/* After a broken pipeline the connection is of no further use; the
	 * caller's ROLLBACK fails harmlessly and nothing was committed. */
	if (pipeline)
		(void)PQexitPipelineMode(conn);
	PQclear(res);
	free(items);
	return rc;
}

/*
 * The whole transaction. Returns the new master version (> 0), or -1 after
 * printing the error and rolling back.
 */
static long long load(PGconn *conn, const struct import_data *d, struct section_count *counts)
{
	PGresult *res = NULL;
	char why[512];
	long long version = -1;

	if (scctl_exec(conn, "import", "BEGIN") < 0)
		return -1;
	if (scctl_exec(conn, "import", IMPORT_LOCK_SQL) < 0)
		goto fail;
	for (size_t i = 0; i < d->nsections; i++)
		if (d->sections[i].present && upsert_section(conn, &d->sections[i], &counts[i]) < 0)
			goto fail;
	res = PQexec(conn, "UPDATE master_version SET version = version + 1, changed_at = now()"
			   " WHERE id = 1 RETURNING version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		scctl_error("import", "bump master_version: %s",
			    PQntuples(res) == 0 && PQresultStatus(res) == PGRES_TUPLES_OK
				    ? "no master_version row"
				    : scctl_pg_why(conn, res, why, sizeof(why)));
		goto fail;
	}
	version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	/* Delivered at commit: the services reload from the committed data. */
	if (scctl_exec(conn, "import", "NOTIFY master") < 0)
		goto fail;
	if (scctl_exec(conn, "import", "COMMIT") < 0) {
		version = -1;
		goto out;
	}
	goto out;
fail:
	version = -1;
	PQclear(PQexec(conn, "ROLLBACK"));
out:
	PQclear(res);
	return version;
}

/* ---- the summary -------------------------------------------------------- */

static int print_summary(const struct scctl *ctx, const struct import_data *d,
			 const struct section_count *counts, long long version)
{
	static const char *const headers[] = {"SECTION", "ENTRIES", "INSERTED", "UPDATED",
					      "UNCHANGED"};
	struct scctl_table *t = NULL;
	cJSON *json = NULL, *sections = NULL;
	int rc = -1;

	if (ctx->json) {
		json = cJSON_CreateObject();
		sections = cJSON_AddObjectToObject(json, "sections");
		if (!sections || !cJSON_AddNumberToObject(json, "master_version", (double)version))
			goto oom;
	} else {
		t = scctl_table_new(5, headers);
		if (!t)
			goto oom;
		for (size_t c = 1; c < 5; c++)
			scctl_table_right(t, c);
	}
	for (size_t i = 0; i < d->nsections; i++) {
		const struct section_count *n = &counts[i];
		size_t unchanged = n->entries - n->inserted - n->updated;

		if (!d->sections[i].present)
			continue;
		if (json) {
			cJSON *o = cJSON_AddObjectToObject(sections, d->sections[i].section->name);

			if (!o || !cJSON_AddNumberToObject(o, "entries", (double)n->entries) ||
			    !cJSON_AddNumberToObject(o, "inserted", (double)n->inserted) ||
			    !cJSON_AddNumberToObject(o, "updated", (double)n->updated) ||
			    !cJSON_AddNumberToObject(o, "unchanged", (double)unchanged))
				goto oom;
		} else {
			char cells[4][24];
			const char *row[5] = {d->sections[i].section->name, cells[0], cells[1],
					      cells[2], cells[3]};

			snprintf(cells[0], sizeof(cells[0]), "%zu", n->entries);
			snprintf(cells[1], sizeof(cells[1]), "%zu", n->inserted);
			snprintf(cells[2], sizeof(cells[2]), "%zu", n->updated);
			snprintf(cells[3], sizeof(cells[3]), "%zu", unchanged);
			if (scctl_table_add(t, row) < 0)
				goto oom;
		}
	}
	if (json) {
		rc = scctl_print_json(json);
	} else {
		scctl_table_print(t, stdout);
		printf("master data version %lld\n", version);
		rc = 0;
	}
	goto out;
oom:
	scctl_error("import", "out of memory");
out:
	scctl_table_free(t);
	cJSON_Delete(json);
	return rc;
}

int scctl_import(struct scctl *ctx, int argc, char **argv)
{
	const char *path = NULL;
	char *buf = NULL;
	size_t len = 0;
	cJSON *root = NULL;
	struct import_data *d = NULL;
	struct section_count *counts = NULL;
	PGconn *conn = NULL;
	char err[1024];
	long long version;
	int rc = SCCTL_FAIL;

	for (int i = 1; i < argc; i++) {
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if ((argv[i][0] == '-' && argv[i][1] != '\0') || path) {
			scctl_error("import", "unknown argument \"%s\"", argv[i]);
			return SCCTL_USAGE;
		}
		path = argv[i];
	}
	if (!path) {
		scctl_error("import", "the file to import is required: scctl import FILE.json");
		return SCCTL_USAGE;
	}
	buf = read_file(path, &len, err, sizeof(err));
	if (!buf) {
		scctl_error("import", "%s: %s", path, err);
		goto out;
	}
	root = parse(buf, len, err, sizeof(err));
	if (!root) {
		scctl_error("import", "%s: %s", path, err);
		goto out;
	}
	free(buf);
	buf = NULL;
	d = import_build(root, err, sizeof(err));
	if (!d) {
		scctl_error("import", "%s", err);
		goto out;
	}
	cJSON_Delete(root);
	root = NULL;
	counts = calloc(d->nsections, sizeof(*counts));
	if (!counts) {
		scctl_error("import", "out of memory");
		goto out;
	}
	conn = scctl_connect(ctx, "import", true);
	if (!conn)
		goto out;
	version = load(conn, d, counts);
	if (version < 0)
		goto out;
	log_debug("master data imported file=%s version=%lld", path, version);
	if (print_summary(ctx, d, counts, version) < 0)
		goto out;
	rc = SCCTL_OK;
out:
	PQfinish(conn);
	free(counts);
	import_data_free(d);
	cJSON_Delete(root);
	free(buf);
	return rc;
}

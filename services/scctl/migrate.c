/*
 * scctl migrate: brings an empty or older database to the schema compiled
 * into this binary (schema/NNN_name.sql, embedded by cmake/embed_sql.cmake).
 *
 * Every step runs in a transaction that first takes one advisory lock, so
 * two concurrent migrates queue behind each other instead of racing: the
 * second sees the first one's rows in schema_migration and applies nothing.
 * Each migration commits together with its schema_migration row, so a
 * failure leaves the database at the last migration that worked.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scctl.h"

/* Any fixed number; only scctl migrate takes it ("scmig" in ASCII). */
#define MIGRATE_LOCK "73636d6967"

static const char lock_sql[] = "SELECT pg_advisory_xact_lock(x'" MIGRATE_LOCK "'::bigint)";

/* Creates the bookkeeping table, under the lock (CREATE ... IF NOT EXISTS
 * alone is not safe against a concurrent twin). */
static int ensure_table(PGconn *conn)
{
	if (scctl_exec(conn, "migrate", "BEGIN") < 0)
		return -1;
	if (scctl_exec(conn, "migrate", lock_sql) < 0 ||
	    scctl_exec(conn, "migrate",
		       "CREATE TABLE IF NOT EXISTS schema_migration ("
		       " version int PRIMARY KEY,"
		       " name text NOT NULL,"
		       " applied_at timestamptz NOT NULL DEFAULT now())") < 0 ||
	    scctl_exec(conn, "migrate", "COMMIT") < 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	return 0;
}

/*
 * Applies m unless it is already recorded. Returns 1 when applied, 0 when
 * it was already there, -1 after printing the error.
 */
static int apply_one(PGconn *conn, const struct scctl_migration *m)
{
	char version[16];
	const char *params[2] = {version, m->name};
	PGresult *res = NULL;
	char why[512];
	char what[128];
	int rc = -1;

	snprintf(version, sizeof(version), "%d", m->version);
	snprintf(what, sizeof(what), "migrate: %s", m->name);
	if (scctl_exec(conn, what, "BEGIN") < 0)
		return -1;
	if (scctl_exec(conn, what, lock_sql) < 0)
		goto out;
	res = PQexecParams(conn, "SELECT 1 FROM schema_migration WHERE version = $1::int",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	if (PQntuples(res) > 0) {
		rc = 0;
		goto out;
	}
	PQclear(res);
	/*
	 * The file whole, as one simple-query string: it holds many statements
	 * and plpgsql $$ bodies, which only the server splits correctly. This
	 * is our own embedded SQL, never outside input.
	 */
	res = PQexec(conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

		scctl_error(what, "%s%s%s", scctl_pg_why(conn, res, why, sizeof(why)),
			    pos ? " at character " : "", pos ? pos : "");
		goto out;
	}
	PQclear(res);
	res = PQexecParams(conn, "INSERT INTO schema_migration (version, name) VALUES ($1::int, $2)",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	rc = 1;
out:
	PQclear(res);
	if (rc < 0) {
		PQclear(PQexec(conn, "ROLLBACK"));
	} else if (scctl_exec(conn, what, "COMMIT") < 0) {
		rc = -1;
	}
	return rc;
}

/* Highest version recorded, 0 for none; -1 on error (printed). */
static int db_version(PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migration");
	char why[512];
	int v = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		scctl_error("migrate", "%s", scctl_pg_why(conn, res, why, sizeof(why)));
	else
		v = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

int scctl_migrate(struct scctl *ctx, int argc, char **argv)
{
	PGconn *conn = NULL;
	cJSON *json = NULL, *applied = NULL;
	int rc = SCCTL_FAIL;
	int version, known;

	for (int i = 1; i < argc; i++) {
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		scctl_error("usage", "migrate takes no argument \"%s\"", argv[i]);
		return SCCTL_USAGE;
	}
	if (scctl_migrations_count == 0) {
		scctl_error("migrate", "this scctl was built without migrations");
		return SCCTL_FAIL;
	}
	known = scctl_migrations[scctl_migrations_count - 1].version;
	conn = scctl_connect(ctx, "migrate", false);
	if (!conn)
		goto out;
	if (ensure_table(conn) < 0)
		goto out;
	json = cJSON_CreateObject();
	applied = cJSON_AddArrayToObject(json, "applied");
	if (!applied) {
		scctl_error("migrate", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < scctl_migrations_count; i++) {
		const struct scctl_migration *m = &scctl_migrations[i];
		int r = apply_one(conn, m);
		cJSON *item;

		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		log_debug("migration applied version=%d name=%s", m->version, m->name);
		if (!ctx->json) {
			printf("applied %s\n", m->name);
			fflush(stdout);
		}
		item = cJSON_CreateObject();
		if (!item || !cJSON_AddNumberToObject(item, "version", m->version) ||
		    !cJSON_AddStringToObject(item, "name", m->name)) {
			cJSON_Delete(item);
			scctl_error("migrate", "out of memory");
			goto out;
		}
		cJSON_AddItemToArray(applied, item);
	}
	version = db_version(conn);
	if (version < 0)
		goto out;
	if (version > known)
		fprintf(stderr, "scctl: migrate: the database is at version %d, newer than this "
			"scctl (%d): nothing to do\n", version, known);
	if (ctx->json) {
		if (!cJSON_AddNumberToObject(json, "version", version)) {
			scctl_error("migrate", "out of memory");
			goto out;
		}
		if (scctl_print_json(json) < 0)
			goto out;
	} else if (cJSON_GetArraySize(applied) == 0) {
		printf("schema is current (version %d)\n", version);
	}
	rc = SCCTL_OK;
out:
	cJSON_Delete(json);
	PQfinish(conn);
	return rc;
}

/*
 * scctl token create | revoke | list: API tokens of sc-api (contract
 * section 4).
 *
 * A token is "sct_" and 32 random bytes in hex. Only its SHA-256 is stored
 * (computed by PostgreSQL, so scctl needs no crypto library); the token
 * itself is printed once, alone on stdout, so `TOKEN=$(scctl token create
 * ...)` works, and can never be shown again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "scctl.h"

#define TOKEN_PREFIX "sct_"
#define TOKEN_RANDOM_BYTES 32
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + 2 * TOKEN_RANDOM_BYTES)

static const char *const roles[] = {"hq", "province", "dispatcher", "partner", "engineer"};

static bool role_valid(const char *s)
{
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(roles[i], s) == 0)
			return true;
	return false;
}

/* Fills out (TOKEN_LEN + 1 bytes) with a fresh token. 0 or -1 (printed). */
static int token_make(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[TOKEN_RANDOM_BYTES];
	size_t got = 0;
	size_t p;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			scctl_error("token create", "getrandom: %s", strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	memcpy(out, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
	p = sizeof(TOKEN_PREFIX) - 1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[p++] = hex[raw[i] >> 4];
		out[p++] = hex[raw[i] & 0x0f];
	}
	out[p] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

/*
 * Does `sql` (one $1 parameter) return a row? 1 yes, 0 no, -1 on error
 * (printed).
 */
static int exists(PGconn *conn, const char *what, const char *sql, const char *value)
{
	PGresult *res = PQexecParams(conn, sql, 1, NULL, &value, NULL, NULL, 0);
	char why[512];
	int rc = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
	else
		rc = PQntuples(res) > 0;
	PQclear(res);
	return rc;
}

static int token_create(struct scctl *ctx, int argc, char **argv)
{
	const char *what = "token create";
	const char *role = NULL, *zone = NULL, *partner = NULL, *engineer = NULL;
	char token[TOKEN_LEN + 1];
	const char *params[5];
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char why[512];
	int rc = SCCTL_FAIL;

	for (int i = 1; i < argc; i++) {
		int m;

		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if ((m = scctl_flag_value(what, argc, argv, &i, "--role", &role)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--zone", &zone)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--partner", &partner)) != 0 ||
		    (m = scctl_flag_value(what, argc, argv, &i, "--engineer", &engineer)) != 0) {
			if (m < 0)
				return SCCTL_USAGE;
			continue;
		}
		scctl_error(what, "unknown argument \"%s\"", argv[i]);
		return SCCTL_USAGE;
	}
	if (!role) {
		scctl_error(what, "--role is required (hq, province, dispatcher, partner, engineer)");
		return SCCTL_USAGE;
	}
	if (!role_valid(role)) {
		scctl_error(what, "--role \"%s\": must be hq, province, dispatcher, partner or engineer",
			    role);
		return SCCTL_USAGE;
	}
	/* Each role carries exactly the scope it needs: a stray scope on a
	 * token would be a reader's trap ("is this hq token limited to HA?"). */
	{
		bool zoned = strcmp(role, "province") == 0 || strcmp(role, "dispatcher") == 0;
		bool is_partner = strcmp(role, "partner") == 0;
		bool is_engineer = strcmp(role, "engineer") == 0;

		if (zoned != (zone != NULL)) {
			scctl_error(what, zoned ? "role %s needs --zone PROVINCE"
					       : "--zone is only for roles province and dispatcher, not %s",
				    role);
			return SCCTL_USAGE;
		}
		if (is_partner != (partner != NULL)) {
			scctl_error(what, is_partner ? "role %s needs --partner ID"
						     : "--partner is only for role partner, not %s",
				    role);
			return SCCTL_USAGE;
		}
		if (is_engineer != (engineer != NULL)) {
			scctl_error(what, is_engineer ? "role %s needs --engineer ID"
						      : "--engineer is only for role engineer, not %s",
				    role);
			return SCCTL_USAGE;
		}
	}

	conn = scctl_connect(ctx, what, true);
	if (!conn)
		goto out;
	if (zone) {
		int e = exists(conn, what, "SELECT 1 FROM province WHERE code = $1", zone);

		if (e < 0)
			goto out;
		if (e == 0) {
			scctl_error(what, "--zone \"%s\" is not a known province", zone);
			goto out;
		}
	}
	if (partner) {
		int e = exists(conn, what, "SELECT 1 FROM partner WHERE id = $1", partner);

		if (e < 0)
			goto out;
		if (e == 0) {
			scctl_error(what, "--partner \"%s\" is not a known partner", partner);
			goto out;
		}
	}
	if (engineer) {
		int e = exists(conn, what, "SELECT 1 FROM engineer WHERE id = $1", engineer);

		if (e < 0)
			goto out;
		if (e == 0) {
			scctl_error(what, "--engineer \"%s\" is not a known engineer", engineer);
			goto out;
		}
	}
	if (token_make(token) < 0)
		goto out;
	params[0] = token;
	params[1] = role;
	params[2] = zone;
	params[3] = partner;
	params[4] = engineer;
	res = PQexecParams(conn,
			   "INSERT INTO api_token (token_hash, role, zone, partner_id, engineer_id)"
			   " VALUES (sha256(convert_to($1, 'UTF8')), $2, $3, $4, $5) RETURNING id",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	/* The id is for `token revoke`; stdout carries the token alone. */
	log_info("token created id=%s role=%s%s%s%s%s%s%s", PQgetvalue(res, 0, 0), role,
		 zone ? " zone=" : "", zone ? zone : "", partner ? " partner=" : "",
		 partner ? partner : "", engineer ? " engineer=" : "", engineer ? engineer : "");
	printf("%s\n", token);
	rc = SCCTL_OK;
out:
	explicit_bzero(token, sizeof(token));
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/* A token id as the database has it: a positive integer. */
static bool id_valid(const char *s)
{
	char *end = NULL;
	long long v;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' && v > 0;
}

static int token_revoke(struct scctl *ctx, int argc, char **argv)
{
	const char *what = "token revoke";
	const char *id = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char why[512];
	int rc = SCCTL_FAIL;
	bool already;

	for (int i = 1; i < argc; i++) {
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if (argv[i][0] == '-' || id) {
			scctl_error(what, "unknown argument \"%s\"", argv[i]);
			return SCCTL_USAGE;
		}
		id = argv[i];
	}
	if (!id) {
		scctl_error(what, "the token ID is required (see scctl token list)");
		return SCCTL_USAGE;
	}
	if (!id_valid(id)) {
		scctl_error(what, "\"%s\" is not a token id (a positive integer)", id);
		return SCCTL_USAGE;
	}
	conn = scctl_connect(ctx, what, true);
	if (!conn)
		goto out;
	/* Revoking twice keeps the first revocation time. */
	res = PQexecParams(conn,
			   "WITH r AS (UPDATE api_token SET revoked_at = now()"
			   "  WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id, revoked_at)"
			   " SELECT t.revoked_at IS NOT NULL AND r.id IS NULL,"
			   "        sc_ts(coalesce(r.revoked_at, t.revoked_at))"
			   "   FROM api_token t LEFT JOIN r ON r.id = t.id WHERE t.id = $1::bigint",
			   1, NULL, &id, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	if (PQntuples(res) == 0) {
		scctl_error(what, "no token with id %s", id);
		goto out;
	}
	already = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (ctx->json) {
		cJSON *o = cJSON_CreateObject();
		int p = -1;

		if (o && cJSON_AddNumberToObject(o, "id", strtod(id, NULL)) &&
		    cJSON_AddStringToObject(o, "revoked_at", PQgetvalue(res, 0, 1)) &&
		    cJSON_AddBoolToObject(o, "already_revoked", already))
			p = scctl_print_json(o);
		else
			scctl_error(what, "out of memory");
		cJSON_Delete(o);
		if (p < 0)
			goto out;
	} else if (already) {
		printf("token %s was already revoked at %s\n", id, PQgetvalue(res, 0, 1));
	} else {
		printf("revoked token %s\n", id);
	}
	rc = SCCTL_OK;
out:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int token_list(struct scctl *ctx, int argc, char **argv)
{
	static const char *const headers[] = {"ID", "ROLE", "ZONE", "PARTNER", "ENGINEER",
					      "CREATED", "REVOKED"};
	static const char *const keys[] = {"id", "role", "zone", "partner_id", "engineer_id",
					   "created_at", "revoked_at"};
	const char *what = "token list";
	struct scctl_table *t = NULL;
	cJSON *json = NULL, *items = NULL;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char why[512];
	int rc = SCCTL_FAIL;

	for (int i = 1; i < argc; i++) {
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		scctl_error(what, "unknown argument \"%s\"", argv[i]);
		return SCCTL_USAGE;
	}
	conn = scctl_connect(ctx, what, true);
	if (!conn)
		goto out;
	res = PQexec(conn, "SELECT id, role, zone, partner_id, engineer_id, sc_ts(created_at),"
			   " sc_ts(revoked_at) FROM api_token ORDER BY id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(what, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	if (ctx->json) {
		json = cJSON_CreateObject();
		items = cJSON_AddArrayToObject(json, "items");
		if (!items)
			goto oom;
		for (int r = 0; r < PQntuples(res); r++) {
			cJSON *o = cJSON_CreateObject();

			if (!o)
				goto oom;
			cJSON_AddItemToArray(items, o);
			if (!cJSON_AddNumberToObject(o, keys[0], strtod(PQgetvalue(res, r, 0), NULL)))
				goto oom;
			for (int c = 1; c < 7; c++) {
				cJSON *v = PQgetisnull(res, r, c) ? cJSON_CreateNull()
								  : cJSON_CreateString(PQgetvalue(res, r, c));

				if (!v)
					goto oom;
				cJSON_AddItemToObject(o, keys[c], v);
			}
		}
		if (scctl_print_json(json) < 0)
			goto out;
	} else {
		t = scctl_table_new(7, headers);
		if (!t)
			goto oom;
		scctl_table_right(t, 0);
		for (int r = 0; r < PQntuples(res); r++) {
			const char *cells[7];

			for (int c = 0; c < 7; c++)
				cells[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
			if (scctl_table_add(t, cells) < 0)
				goto oom;
		}
		scctl_table_print(t, stdout);
	}
	rc = SCCTL_OK;
	goto out;
oom:
	scctl_error(what, "out of memory");
out:
	scctl_table_free(t);
	cJSON_Delete(json);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int scctl_token(struct scctl *ctx, int argc, char **argv)
{
	/* `scctl token --json list` too. */
	while (argc >= 2 && scctl_common_flag(ctx, argv[1])) {
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	if (argc < 2) {
		scctl_error("token", "a subcommand is required: create, revoke or list");
		return SCCTL_USAGE;
	}
	if (strcmp(argv[1], "create") == 0)
		return token_create(ctx, argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return token_revoke(ctx, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return token_list(ctx, argc - 1, argv + 1);
	scctl_error("token", "unknown subcommand \"%s\" (create, revoke or list)", argv[1]);
	return SCCTL_USAGE;
}

/*
 * Bearer tokens (contract section 4). scctl stores only
 * sha256(convert_to(token, 'UTF8')); sc-api hashes the presented token with
 * OpenSSL and looks the hash up (sc_api_token: the row, unless revoked).
 * The token itself never leaves this process, not even towards the
 * database.
 *
 * A short cache (AUTH_CACHE_TTL_US) spares a round trip per request; a
 * revoked token is therefore refused at most that long after
 * `scctl token revoke`. Cache entries are compared with CRYPTO_memcmp, so
 * the time taken does not tell how much of a guessed hash matched. Unknown
 * tokens are not cached: each costs one indexed lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "service.h"
#include "timeutil.h"

#define AUTH_CACHE_SIZE 256
#define AUTH_CACHE_TTL_US (5 * 1000000LL)
#define AUTH_TOKEN_MAX 256
#define AUTH_HASH_LEN 32

struct auth_entry {
	unsigned char hash[AUTH_HASH_LEN];
	struct api_scope scope;
	int64_t expires_us;     /* 0: free */
};

struct auth {
	struct api *api;
	struct auth_entry cache[AUTH_CACHE_SIZE];
};

struct auth_job {
	struct api_call *call;
	unsigned char hash[AUTH_HASH_LEN];
};

struct auth *auth_new(struct api *a)
{
	struct auth *au = calloc(1, sizeof(*au));
	if (au == NULL)
		return NULL;
	au->api = a;
	if (pool_prepare(a->pool, "api_token",
		       "SELECT id, role, zone, partner_id, engineer_id FROM sc_api_token($1)", 1) != 0) {
		free(au);
		return NULL;
	}
	return au;
}

void auth_free(struct auth *au)
{
	if (au != NULL)
		explicit_bzero(au, sizeof(*au));
	free(au);
}

static const struct api_scope *cache_find(struct auth *au, const unsigned char *hash)
{
	int64_t now = time_now_us();
	const struct api_scope *found = NULL;
	/* Every live entry is compared, match or not. */
	for (size_t i = 0; i < AUTH_CACHE_SIZE; i++) {
		struct auth_entry *e = &au->cache[i];
		if (e->expires_us > now && CRYPTO_memcmp(e->hash, hash, AUTH_HASH_LEN) == 0)
			found = &e->scope;
	}
	return found;
}

static void cache_put(struct auth *au, const unsigned char *hash, const struct api_scope *s)
{
	int64_t now = time_now_us();
	struct auth_entry *victim = &au->cache[0];
	for (size_t i = 0; i < AUTH_CACHE_SIZE; i++) {
		struct auth_entry *e = &au->cache[i];
		if (e->expires_us <= now) {
			victim = e;
			break;
		}
		if (e->expires_us < victim->expires_us)
			victim = e;
	}
	memcpy(victim->hash, hash, AUTH_HASH_LEN);
	victim->scope = *s;
	victim->expires_us = now + AUTH_CACHE_TTL_US;
}

static void copy_field(char *dst, size_t len, const PGresult *res, int col)
{
	dst[0] = '\0';
	if (!PQgetisnull(res, 0, col))
		snprintf(dst, len, "%s", PQgetvalue(res, 0, col));
}

static void on_token(void *arg, const struct db_reply *r)
{
	struct auth_job *j = arg;
	struct api_call *c = j->call;
	struct api_scope s = { 0 };
	if (r->error != NULL) {
		log_error("token lookup failed: %s", r->error);
		api_reply_error(c, 503, "unavailable", "the database is not reachable; retry");
		goto out;
	}
	if (PQntuples(r->res) != 1 || PQgetisnull(r->res, 0, 0) || PQgetisnull(r->res, 0, 1)) {
		api_reply_error(c, 401, "unauthorized", "unknown or revoked token");
		goto out;
	}
	s.token_id = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
	copy_field(s.role, sizeof(s.role), r->res, 1);
	copy_field(s.zone, sizeof(s.zone), r->res, 2);
	copy_field(s.partner, sizeof(s.partner), r->res, 3);
	copy_field(s.engineer, sizeof(s.engineer), r->res, 4);
	cache_put(c->api->auth, j->hash, &s);
	c->scope = s;
	c->route->run(c);
out:
	explicit_bzero(j, sizeof(*j));
	free(j);
}

/* The token of "Authorization: Bearer TOKEN", or NULL. */
static const char *bearer(struct api_call *c)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(c->req),
					   "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	if (n == 0 || n > AUTH_TOKEN_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (h[i] < 0x21 || h[i] > 0x7e)
			return NULL;
	return h;
}

void auth_check(struct api_call *c)
{
	struct auth *au = c->api->auth;
	static const char digits[] = "0123456789abcdef";
	unsigned char hash[AUTH_HASH_LEN];
	unsigned int hlen = 0;
	char hex[2 * AUTH_HASH_LEN + 1];
	const char *token = bearer(c);
	if (token == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "WWW-Authenticate",
				  "Bearer");
		api_reply_error(c, 401, "unauthorized", "Authorization: Bearer TOKEN is required");
		return;
	}
	if (EVP_Digest(token, strlen(token), hash, &hlen, EVP_sha256(), NULL) != 1 ||
	    hlen != AUTH_HASH_LEN) {
		api_reply_error(c, 500, "internal", "cannot hash the token");
		return;
	}
	const struct api_scope *s = cache_find(au, hash);
	if (s != NULL) {
		c->scope = *s;
		c->route->run(c);
		return;
	}
	struct db *db = pool_pick(au->api->pool);
	if (db == NULL) {
		/* Fail fast rather than hold the client until a reconnect. */
		api_reply_error(c, 503, "unavailable", "the database is not reachable; retry");
		return;
	}
	struct auth_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		api_reply_error(c, 503, "unavailable", "out of memory");
		return;
	}
	j->call = c;
	memcpy(j->hash, hash, sizeof(hash));
	for (size_t i = 0; i < AUTH_HASH_LEN; i++) {
		hex[2 * i] = digits[hash[i] >> 4];
		hex[2 * i + 1] = digits[hash[i] & 15];
	}
	hex[2 * AUTH_HASH_LEN] = '\0';
	const char *params[1] = { hex };
	if (db_exec_prepared(db, "api_token", 1, params, on_token, j) != 0) {
		free(j);
		api_reply_error(c, 503, "unavailable", "out of memory");
	}
}

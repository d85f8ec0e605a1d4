#ifndef SC_SERVICES_API_API_H
#define SC_SERVICES_API_API_H

/*
 * sc-api: the HTTP API and zone dashboard (contract section 4).
 *
 * http.c    evhttp server, routing table, replies, limits, metrics
 * auth.c    Bearer tokens: SHA-256, short cache, lookup in api_token
 * pool.c    the database connections (SC_API_DB_CONNECTIONS), least busy first
 * scope.c   the caller's scope as SQL parameters; the generic relay of an
 *           sc_api_* function's (status, body) to the client
 * tickets.c orders.c provinces.c zone.c: the endpoints
 *
 * Every endpoint is one statement: a call of an sc_api_* SQL function
 * (schema/040_api.sql) whose first four parameters are the caller's scope
 * (role, zone, partner, engineer), so the scope is enforced in the query.
 * The C side checks the input (400 with {"error","detail"}) and relays the
 * function's status and JSON body.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define API_PROGRAM "sc-api"
#define API_MAX_BODY (64 * 1024)    /* request bodies, as MQTT payloads */
#define API_MAX_HEADERS (16 * 1024) /* request line and headers together */
#define API_TIMEOUT_S 10            /* a client silent this long is dropped */
#define API_ID_MAX 64               /* identifiers (contract section 2) */
#define API_MAX_PARAMS 4            /* {id} segments captured per route */
#define API_LIST_DEFAULT 50
#define API_LIST_MAX 500

struct service;
struct evhttp;
struct evhttp_request;
struct auth;
struct metric;
struct api_call;
struct pool;

/* The caller, from its api_token row. NULL strings are SQL NULL. */
struct api_scope {
	long long token_id;
	char role[16];               /* hq, province, dispatcher, partner, engineer */
	char zone[API_ID_MAX + 1];   /* "" when none */
	char partner[API_ID_MAX + 1];
	char engineer[API_ID_MAX + 1];
};

typedef void (*api_handler)(struct api_call *c);

struct api_route {
	const char *method;   /* "GET", "POST" */
	const char *pattern;  /* "/v1/tickets/{}/assign": {} is one identifier */
	const char *name;     /* metrics label, e.g. "tickets_assign" */
	bool auth;            /* needs a token */
	api_handler run;
};

/* One request in flight. Freed by api_reply*(); `gone` when the client
 * left before the answer (the answer is then dropped). */
struct api_call {
	struct api *api;
	struct evhttp_request *req;
	const struct api_route *route;
	char params[API_MAX_PARAMS][API_ID_MAX + 1]; /* the {} segments */
	int nparams;
	struct api_scope scope;
	char *body;          /* request body, NUL-terminated, NULL when empty */
	size_t body_len;
	char *query;         /* raw query string (NULL when none), owned */
	int64_t start_us;
	bool gone;
};

struct api {
	struct service *svc;
	struct evhttp *http;
	struct auth *auth;
	struct pool *pool;            /* database connections; [0] is svc->db */
	struct metric *inflight;     /* gauge: requests waiting for their answer */
	long long inflight_n;
};

/* ---- http.c ------------------------------------------------------------ */

/* Binds SC_HTTP_ADDR and registers every route. 0, or -1 (logged). */
int http_init(struct api *a) __attribute__((warn_unused_result));
/* Stops accepting connections (stop sequence). */
void http_stop_accepting(struct api *a);
void http_free(struct api *a);

/* Sends status with a JSON body (copied) and frees the call. */
void api_reply_json(struct api_call *c, int status, const char *json, size_t len);
/* Sends {"error": error, "detail": detail} and frees the call. */
void api_reply_error(struct api_call *c, int status, const char *error, const char *detail);
/* Sends a non-JSON body (the dashboard page) and frees the call. */
void api_reply_raw(struct api_call *c, int status, const char *content_type,
		   const char *data, size_t len);

/*
 * Query parameter `key` of the request: copies it (URL-decoded) into buf
 * and returns 1, returns 0 when absent, -1 when it is too long or not
 * decodable.
 */
int api_query_get(struct api_call *c, const char *key, char *buf, size_t len)
	__attribute__((warn_unused_result));

/* Reads `limit` (1..API_LIST_MAX, default API_LIST_DEFAULT) and `cursor`
 * (an opaque string of at most 96 bytes) into the given buffers; on bad
 * input answers 400 itself and returns -1. cursor is "" when absent. */
int api_list_args(struct api_call *c, char *limit, size_t limit_len, char *cursor,
		  size_t cursor_len) __attribute__((warn_unused_result));

/* ?province= (an identifier) and ?state= (a ticket state, or with
 * `orders` an order state, or "open") into the buffers ("" when absent).
 * 0, or -1 after answering 400. */
int api_list_filters(struct api_call *c, char *province, size_t plen, char *state, size_t slen,
		     bool orders) __attribute__((warn_unused_result));

/* ---- pool.c ------------------------------------------------------------ */

/* `n` connections: svc->db and n - 1 new ones. NULL on allocation failure. */
struct pool *pool_new(struct service *svc, int n) __attribute__((warn_unused_result));
/* Frees the connections it made (not svc->db); NULL is a no-op. */
void pool_free(struct pool *p);
/* Registers a prepared statement on every connection. 0 or -1. */
int pool_prepare(struct pool *p, const char *name, const char *sql, int nparams)
	__attribute__((warn_unused_result));
/* The connected connection with the fewest jobs queued or in flight (ties
 * round-robin), or NULL when none is connected. Valid until pool_free. */
struct db *pool_pick(struct pool *p);
/* True when at least one connection is up. */
bool pool_connected(const struct pool *p);
int pool_size(const struct pool *p);

/* ---- auth.c ------------------------------------------------------------ */

struct auth *auth_new(struct api *a) __attribute__((warn_unused_result));
void auth_free(struct auth *au);
/* Fills c->scope from the Authorization header and then runs c->route->run,
 * or answers 401 itself. */
void auth_check(struct api_call *c);

/* ---- scope.c ----------------------------------------------------------- */

/*
 * Runs prepared statement `stmt` with the caller's scope as $1..$4 followed
 * by `n` more parameters (NULL for SQL NULL); the statement returns one row
 * (status int, body jsonb) which is sent to the client. On a database
 * failure the client gets 503 (connection) or 500.
 */
void api_relay(struct api_call *c, const char *stmt, int n, const char *const *params);
/* "api:<role>:<token id>": the actor written to ticket_history. */
void api_actor(const struct api_call *c, char *buf, size_t len);
/* Registers every sc_api_* prepared statement on every connection. 0 or -1. */
int scope_prepare(struct pool *pool) __attribute__((warn_unused_result));

/* ---- endpoints --------------------------------------------------------- */

void tickets_list(struct api_call *c);
void tickets_get(struct api_call *c);
void tickets_assign(struct api_call *c);
void tickets_reassign(struct api_call *c);
void tickets_cancel(struct api_call *c);
void tickets_feedback(struct api_call *c);
void orders_list(struct api_call *c);
void orders_event(struct api_call *c);
void engineers_status(struct api_call *c);
void provinces_kpi(struct api_call *c);
void provinces_engineers(struct api_call *c);
void provinces_escalations(struct api_call *c);
void provinces_partners(struct api_call *c);
void zone_page(struct api_call *c);
void health_get(struct api_call *c);

#endif

/*
 * The HTTP side of sc-api: evhttp on SC_HTTP_ADDR, the routing table, the
 * replies, the limits that keep one client from hurting the others, and the
 * request metrics.
 *
 * Limits: a body over API_MAX_BODY is refused by evhttp with 413 before it
 * is read whole (Content-Length and chunked alike), headers over
 * API_MAX_HEADERS with 400, and a client that sends nothing for
 * API_TIMEOUT_S (mid-request or idle between keep-alive requests) is
 * dropped. Everything is non-blocking on the one loop, so a slow client
 * costs a socket and a buffer, never time of the others.
 *
 * A request the client abandons while its statement runs: evhttp detaches
 * the request from the closed connection without freeing it (its
 * EVREQ_HTTP_EOF handling), and evhttp_send_reply on a detached request
 * only frees it. So every call ends in exactly one reply, and the
 * statement's answer never touches freed memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api.h"
#include "domain.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "strbuf.h"
#include "timeutil.h"

static const struct api_route routes[] = {
	{ "GET", "/healthz", "healthz", false, health_get },
	{ "GET", "/zone/{}", "zone", false, zone_page },
	{ "GET", "/v1/tickets", "tickets_list", true, tickets_list },
	{ "GET", "/v1/tickets/{}", "tickets_get", true, tickets_get },
	{ "POST", "/v1/tickets/{}/assign", "tickets_assign", true, tickets_assign },
	{ "POST", "/v1/tickets/{}/reassign", "tickets_reassign", true, tickets_reassign },
	{ "POST", "/v1/tickets/{}/cancel", "tickets_cancel", true, tickets_cancel },
	{ "POST", "/v1/tickets/{}/feedback", "tickets_feedback", true, tickets_feedback },
	{ "GET", "/v1/orders", "orders_list", true, orders_list },
	{ "POST", "/v1/orders/{}/events", "orders_event", true, orders_event },
	{ "POST", "/v1/engineers/{}/status", "engineers_status", true, engineers_status },
	{ "GET", "/v1/provinces/{}/kpi", "provinces_kpi", true, provinces_kpi },
	{ "GET", "/v1/provinces/{}/engineers", "provinces_engineers", true, provinces_engineers },
	{ "GET", "/v1/provinces/{}/escalations", "provinces_escalations", true,
	  provinces_escalations },
	{ "GET", "/v1/provinces/{}/partners", "provinces_partners", true, provinces_partners },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Bound listener, kept to stop accepting on drain. */
static struct evhttp_bound_socket *listener;

/*
 * Does `path` match `pattern`? {} matches one identifier segment, copied
 * into c->params. Returns true on a match.
 */
static bool route_match(const char *pattern, const char *path, struct api_call *c)
{
	int n = 0;
	while (*pattern != '\0' && *path != '\0') {
		if (strncmp(pattern, "{}", 2) == 0) {
			size_t len = strcspn(path, "/");
			if (len == 0 || len > API_ID_MAX || n >= API_MAX_PARAMS)
				return false;
			memcpy(c->params[n], path, len);
			c->params[n][len] = '\0';
			if (!domain_id_valid(c->params[n]))
				return false;
			n++;
			pattern += 2;
			path += len;
		} else if (*pattern == *path) {
			pattern++;
			path++;
		} else {
			return false;
		}
	}
	if (*pattern != '\0' || *path != '\0')
		return false;
	c->nparams = n;
	return true;
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

static void count(struct api_call *c, int status)
{
	struct metrics *m = c->api->svc->metrics;
	const char *route = c->route != NULL ? c->route->name : "unmatched";
	char labels[128], code[8];
	snprintf(code, sizeof(code), "%d", status);
	if (metrics_labels(labels, sizeof(labels), "route", route, "status", code, NULL) == 0)
		metric_add(metrics_counter(m, "sc_api_requests_total",
					   "HTTP requests by route and status", labels), 1);
	if (metrics_labels(labels, sizeof(labels), "route", route, NULL) == 0)
		metric_observe(metrics_histogram(m, "sc_api_request_seconds",
						 "HTTP request arrival to answer sent", labels,
						 NULL, 0),
			       (double)(time_now_us() - c->start_us) / 1e6);
}

static void call_free(struct api_call *c)
{
	struct api *a = c->api;
	a->inflight_n--;
	metric_set(a->inflight, (double)a->inflight_n);
	free(c->body);
	free(c->query);
	free(c);
}

void api_reply_raw(struct api_call *c, int status, const char *content_type,
		   const char *data, size_t len)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	if (evhttp_request_get_connection(c->req) == NULL)
		log_debug("answer dropped: client left route=%s status=%d",
			  c->route != NULL ? c->route->name : "unmatched", status);
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (out == NULL || evbuffer_add(out, data, len) != 0) {
		log_error("reply failed: out of memory status=%d", status);
		status = 500;
	}
	if (status >= 500)
		log_warn("request failed: status=%d route=%s", status,
			 c->route != NULL ? c->route->name : "unmatched");
	count(c, status);
	/* On a request whose client left this only frees it (see top). */
	evhttp_send_reply(c->req, status, NULL, out);
	if (out != NULL)
		evbuffer_free(out);
	call_free(c);
}

void api_reply_json(struct api_call *c, int status, const char *json, size_t len)
{
	api_reply_raw(c, status, "application/json", json, len);
}

void api_reply_error(struct api_call *c, int status, const char *error, const char *detail)
{
	struct strbuf b;
	strbuf_init(&b);
	strbuf_puts(&b, "{\"error\":");
	strbuf_json_str(&b, error);
	strbuf_puts(&b, ",\"detail\":");
	strbuf_json_str(&b, detail);
	strbuf_puts(&b, "}");
	if (strbuf_ok(&b)) {
		api_reply_json(c, status, b.data, b.len);
	} else {
		static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
		api_reply_json(c, 500, oom, sizeof(oom) - 1);
	}
	strbuf_free(&b);
}

int api_query_get(struct api_call *c, const char *key, char *buf, size_t len)
{
	struct evkeyvalq kv;
	int rc = 0;
	if (c->query == NULL)
		return 0;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(c->query, &kv) != 0) {
		rc = -1;
		goto out;
	}
	const char *v = evhttp_find_header(&kv, key);
	if (v != NULL) {
		size_t n = strlen(v);
		if (n >= len) {
			rc = -1;
			goto out;
		}
		memcpy(buf, v, n + 1);
		rc = 1;
	}
out:
	evhttp_clear_headers(&kv);
	return rc;
}

int api_list_args(struct api_call *c, char *limit, size_t limit_len, char *cursor,
		  size_t cursor_len)
{
	char v[16];
	int rc = api_query_get(c, "limit", v, sizeof(v));
	snprintf(limit, limit_len, "%d", API_LIST_DEFAULT);
	if (rc < 0)
		goto bad_limit;
	if (rc == 1) {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < 1 || n > API_LIST_MAX)
			goto bad_limit;
		snprintf(limit, limit_len, "%ld", n);
	}
	cursor[0] = '\0';
	if (api_query_get(c, "cursor", cursor, cursor_len) < 0) {
		api_reply_error(c, 400, "bad_request", "cursor: not a cursor this API returned");
		return -1;
	}
	return 0;
bad_limit:
	api_reply_error(c, 400, "bad_request", "limit: must be an integer from 1 to 500");
	return -1;
}

/* ?province= and ?state= of a list. 0, or -1 after answering 400. */
int api_list_filters(struct api_call *c, char *province, size_t plen, char *state, size_t slen,
		   bool orders)
{
	int rc = api_query_get(c, "province", province, plen);
	if (rc < 0 || (rc == 1 && !domain_id_valid(province))) {
		api_reply_error(c, 400, "bad_request", "province: not a province code");
		return -1;
	}
	if (rc == 0)
		province[0] = '\0';
	rc = api_query_get(c, "state", state, slen);
	if (rc == 0) {
		state[0] = '\0';
		return 0;
	}
	enum ticket_state ts;
	enum order_state os;
	if (rc == 1 && (strcmp(state, "open") == 0 ||
			(orders ? order_state_parse(state, &os) == 0
				: ticket_state_parse(state, &ts) == 0)))
		return 0;
	api_reply_error(c, 400, "bad_request",
			orders ? "state: an order state (contract section 6) or open"
			       : "state: a ticket state (contract section 6) or open");
	return -1;
}

/* Copies the request body, NUL-terminated. 0 or -1 (out of memory). */
static int take_body(struct api_call *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t len = in != NULL ? evbuffer_get_length(in) : 0;
	if (len == 0)
		return 0;
	c->body = malloc(len + 1);
	if (c->body == NULL)
		return -1;
	if (evbuffer_copyout(in, c->body, len) != (ev_ssize_t)len)
		return -1;
	c->body[len] = '\0';
	c->body_len = len;
	return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	struct api_call *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evhttp_send_reply(req, 503, "Service Unavailable", NULL);
		return;
	}
	c->api = a;
	c->req = req;
	c->start_us = time_now_us();
	a->inflight_n++;
	metric_set(a->inflight, (double)a->inflight_n);

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	const char *method = method_name(evhttp_request_get_command(req));
	if (path == NULL || *path == '\0')
		path = "/";
	const char *allow = NULL;  /* a method the path takes */
	for (size_t i = 0; i < NROUTES; i++) {
		if (!route_match(routes[i].pattern, path, c))
			continue;
		allow = routes[i].method;
		if (strcmp(routes[i].method, method) == 0) {
			c->route = &routes[i];
			break;
		}
	}
	if (c->route == NULL) {
		if (allow != NULL) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
			api_reply_error(c, 405, "method_not_allowed",
					"this path does not take that method");
		} else {
			api_reply_error(c, 404, "not_found", "no such path");
		}
		return;
	}
	if (query != NULL && (c->query = strdup(query)) == NULL) {
		api_reply_error(c, 503, "unavailable", "out of memory");
		return;
	}
	if (take_body(c) != 0) {
		api_reply_error(c, 503, "unavailable", "out of memory");
		return;
	}
	log_debug("request method=%s route=%s", method, c->route->name);
	if (c->route->auth)
		auth_check(c);
	else
		c->route->run(c);
}

int http_init(struct api *a)
{
	struct service *s = a->svc;
	char host[256];
	unsigned short port;
	if (metrics_split_addr(s->cfg.http_addr, host, sizeof(host), &port) != 0) {
		log_error("cannot listen: bad address SC_HTTP_ADDR=%s", s->cfg.http_addr);
		return -1;
	}
	a->http = evhttp_new(s->base);
	if (a->http == NULL) {
		log_error("cannot listen: out of memory");
		return -1;
	}
	/* Every method reaches on_request, so the answer is a JSON 405. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
					    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
					    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(a->http, API_MAX_BODY);
	evhttp_set_max_headers_size(a->http, API_MAX_HEADERS);
	evhttp_set_timeout(a->http, API_TIMEOUT_S);
	evhttp_set_gencb(a->http, on_request, a);
	listener = evhttp_bind_socket_with_handle(a->http, host, port);
	if (listener == NULL) {
		log_error("cannot listen: %s SC_HTTP_ADDR=%s", strerror(errno), s->cfg.http_addr);
		return -1;
	}
	a->inflight = metrics_gauge(s->metrics, "sc_api_requests_in_flight",
				    "HTTP requests waiting for their answer", "");
	log_info("listening addr=%s db_connections=%d", s->cfg.http_addr, pool_size(a->pool));
	return 0;
}

/* Stop sequence: accept nothing new; answers to calls in flight still go
 * out (the drain hook waits for them). */
void http_stop_accepting(struct api *a)
{
	if (a->http != NULL && listener != NULL) {
		evhttp_del_accept_socket(a->http, listener);
		listener = NULL;
	}
}

void http_free(struct api *a)
{
	if (a->http != NULL)
		evhttp_free(a->http);
	a->http = NULL;
	listener = NULL;
}

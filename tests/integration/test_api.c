/*
 * sc-api end to end: real PostgreSQL, the real program, a plain-socket HTTP
 * client. Master data: provinces HA and HB, a partner and an engineer in
 * each; tickets and orders opened in SQL as the services would.
 *
 *  - every endpoint under every role (hq, province HA, dispatcher HA and HB,
 *    partner P-HA and P-HB, engineer E-HA): no 2xx body holds anything
 *    outside the caller's scope, every refusal is 403/404 with
 *    {"error","detail"}, and the expected answers for the clear cases;
 *  - assign, reassign (withdraws the live order), cancel, events (applied,
 *    repeat, not yours, bad transition), status;
 *  - bad JSON bodies: 400 with {"error","detail"}; a 70 KB body: 413;
 *  - slow clients (half a request line, a trickled body) do not delay others;
 *  - database connections (SC_API_DB_CONNECTIONS=4): with three of them held
 *    by statements waiting on a row lock the test holds, other requests are
 *    answered on the fourth, and the waiting ones complete once it is freed;
 *  - every path of docs/openapi.yaml answers (not 404/405);
 *  - a revoked token is refused within the cache time; metrics; clean stop.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fixture.h"

#ifndef SC_SOURCE_DIR
#error "SC_SOURCE_DIR must name the source tree (tests/integration/CMakeLists.txt)"
#endif

static const char master[] =
	"{\"settings\": {\"offer_timeout_s\": 3600, \"max_offer_attempts\": 5},"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65},"
	"                 {\"code\": \"HB\", \"name\": \"Hubei\", \"lat\": 30.59, \"lon\": 114.30}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"tier\": \"standard\", \"province\": \"HB\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HB\", \"lat\": 30.60, \"lon\": 114.31}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D3\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D4\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D5\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"}],"
	" \"engineers\": [{\"id\": \"E-HA\", \"name\": \"Wang\", \"province\": \"HA\", \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 3},"
	"                 {\"id\": \"E-HB\", \"name\": \"Chen\", \"province\": \"HB\", \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 3}],"
	" \"partners\": [{\"id\": \"P-HA\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 3}, \"capacity\": 5, \"certified_until\": \"2099-12-31\"},"
	"                {\"id\": \"P-HB\", \"provinces\": [\"HB\"], \"skills\": {\"relay_protection\": 3}, \"capacity\": 5, \"certified_until\": \"2099-12-31\"}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 3600, \"arrive_s\": 14400, \"resolve_s\": 28800}]"
	"}";

enum { R_HQ, R_PROV_HA, R_DISP_HA, R_DISP_HB, R_PART_HA, R_PART_HB, R_ENG_HA, NROLES };
static const char *const role_args[NROLES][3] = {
	{ "hq", NULL, NULL },
	{ "province", "--zone", "HA" },
	{ "dispatcher", "--zone", "HA" },
	{ "dispatcher", "--zone", "HB" },
	{ "partner", "--partner", "P-HA" },
	{ "partner", "--partner", "P-HB" },
	{ "engineer", "--engineer", "E-HA" },
};
static const char *const role_names[NROLES] = {
	"hq", "province-HA", "dispatcher-HA", "dispatcher-HB", "partner-HA", "partner-HB",
	"engineer-HA",
};
static char tokens[NROLES][128];

/* The data set: tickets and orders by name. */
static char t_ha1[16], t_ha2[16], t_hac[16], t_hb1[16], t_hbc[16];
static char w_pha[16], w_phb[16], w_eha[16];
static int port;

/* sc-api's SC_API_DB_CONNECTIONS in this test. */
#define POOL_CONNECTIONS 4

/* ---- a minimal HTTP/1.0 client ------------------------------------------ */

struct resp {
	int status;
	char *body;   /* NUL-terminated, owned */
	double ms;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int connect_api(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Sends one request (token NULL: none; body NULL: none; body_len -1:
 * strlen) and reads the answer to EOF (5 s at most). status -1 on failure. */
static struct resp http_len(const char *method, const char *path, const char *token,
			    const char *body, long body_len)
{
	struct resp r = { -1, NULL, 0 };
	char head[1024];
	size_t cap = 1 << 16, len = 0;
	double t0 = now_ms();
	int fd = connect_api();
	size_t blen = body == NULL ? 0 : body_len < 0 ? strlen(body) : (size_t)body_len;
	char *buf = malloc(cap);
	if (fd < 0 || buf == NULL)
		goto out;
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s%s%sContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 method, path, token ? "Authorization: Bearer " : "", token ? token : "",
			 token ? "\r\n" : "", blen);
	if (write_all(fd, head, (size_t)n) != 0 || (blen > 0 && write_all(fd, body, blen) != 0)) {
		/* The server may answer 413 and close before the whole body is in. */
		if (errno != EPIPE && errno != ECONNRESET)
			goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			break;
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL)
				goto out;
			buf = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + len, cap - len - 1);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &r.status) != 1)
		goto out;
	char *b = strstr(buf, "\r\n\r\n");
	r.body = strdup(b != NULL ? b + 4 : "");
out:
	r.ms = now_ms() - t0;
	if (fd >= 0)
		close(fd);
	free(buf);
	if (r.body == NULL) {
		r.status = -1;
		r.body = strdup("");
	}
	return r;
}

static struct resp http(const char *method, const char *path, const char *token, const char *body)
{
	return http_len(method, path, token, body, -1);
}

static bool has_error_shape(const char *body)
{
	return strstr(body, "\"error\"") != NULL && strstr(body, "\"detail\"") != NULL;
}

/* ---- set-up --------------------------------------------------------------- */

static int pick_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int p = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		p = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

static int make_token(struct harness *h, int role)
{
	char out[4096];
	const char *args[8] = { "token", "create", "--role", role_args[role][0], NULL };
	if (role_args[role][1] != NULL) {
		args[4] = role_args[role][1];
		args[5] = role_args[role][2];
		args[6] = NULL;
	}
	if (harness_run(h, "scctl", args, out, sizeof(out)) != 0)
		return -1;
	char *t = strstr(out, "sct_");
	if (t == NULL || strlen(t) < 68)
		return -1;
	memcpy(tokens[role], t, 68);
	tokens[role][68] = '\0';
	return 0;
}

/* Runs sql returning one text value into buf. 0 or -1. */
static int sql_text(struct harness *h, const char *sql, char *buf, size_t len)
{
	PGresult *res = PQexec(harness_pg(h), sql);
	int rc = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		fprintf(stderr, "sql failed: %s: %s\n", sql, PQerrorMessage(harness_pg(h)));
	}
	PQclear(res);
	return rc;
}

static int open_ticket(struct harness *h, const char *site, const char *device, char *id)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"request\", \"site_id\": \"%s\","
		 " \"device_id\": \"%s\", \"category\": \"fault\", \"severity\": \"major\","
		 " \"skill\": \"relay_protection\", \"min_grade\": 2}')", site, device);
	return sql_text(h, sql, id, 16);
}

static int offer(struct harness *h, const char *ticket, const char *engineer, const char *partner,
		 const char *mode, char *id)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT sc_order_offer('%s', %s%s%s, %s%s%s, '%s')", ticket,
		 engineer ? "'" : "", engineer ? engineer : "NULL", engineer ? "'" : "",
		 partner ? "'" : "", partner ? partner : "NULL", partner ? "'" : "", mode);
	return sql_text(h, sql, id, 16);
}

static int data_set(struct harness *h)
{
	char sql[256];
	if (open_ticket(h, "S1", "D1", t_ha1) != 0 || open_ticket(h, "S1", "D2", t_ha2) != 0 ||
	    open_ticket(h, "S1", "D3", t_hac) != 0 || open_ticket(h, "S2", "D4", t_hb1) != 0 ||
	    open_ticket(h, "S2", "D5", t_hbc) != 0)
		return -1;
	if (offer(h, t_ha1, NULL, "P-HA", "outsourced", w_pha) != 0 ||
	    offer(h, t_hb1, NULL, "P-HB", "outsourced", w_phb) != 0 ||
	    offer(h, t_ha2, "E-HA", NULL, "onsite", w_eha) != 0)
		return -1;
	snprintf(sql, sizeof(sql), "UPDATE ticket SET state = 'cancelled' WHERE id IN ('%s', '%s')",
		 t_hac, t_hbc);
	return harness_sql_exec(h, sql);
}

/* ---- the role x endpoint matrix ------------------------------------------ */

/* What a role must never see in a 2xx answer. */
static void foreign_of(int role, const char *out[16])
{
	int n = 0;
	switch (role) {
	case R_PROV_HA:
	case R_DISP_HA:
		out[n++] = t_hb1; out[n++] = t_hbc; out[n++] = w_phb; out[n++] = "E-HB";
		out[n++] = "P-HB"; out[n++] = "\"S2\""; out[n++] = "\"HB\"";
		break;
	case R_DISP_HB:
		out[n++] = t_ha1; out[n++] = t_ha2; out[n++] = t_hac; out[n++] = w_pha;
		out[n++] = w_eha; out[n++] = "E-HA"; out[n++] = "P-HA"; out[n++] = "\"S1\"";
		out[n++] = "\"HA\"";
		break;
	case R_PART_HA:
		out[n++] = t_hb1; out[n++] = t_hbc; out[n++] = t_ha2; out[n++] = t_hac;
		out[n++] = w_phb; out[n++] = w_eha; out[n++] = "E-HA"; out[n++] = "E-HB";
		out[n++] = "P-HB"; out[n++] = "\"S2\"";
		break;
	case R_PART_HB:
		out[n++] = t_ha1; out[n++] = t_ha2; out[n++] = t_hac; out[n++] = t_hbc;
		out[n++] = w_pha; out[n++] = w_eha; out[n++] = "E-HA"; out[n++] = "E-HB";
		out[n++] = "P-HA"; out[n++] = "\"S1\"";
		break;
	case R_ENG_HA:
		out[n++] = t_hb1; out[n++] = t_hbc; out[n++] = t_ha1; out[n++] = t_hac;
		out[n++] = w_phb; out[n++] = w_pha; out[n++] = "P-HA"; out[n++] = "P-HB";
		out[n++] = "E-HB"; out[n++] = "\"S2\"";
		break;
	default:
		break;
	}
	out[n] = NULL;
}

struct req {
	const char *method;
	char path[128];
	char body[256];
};

static int build_requests(struct req *r)
{
	int n = 0;
	const char *tickets[] = { t_ha1, t_ha2, t_hac, t_hb1, t_hbc };
	const char *orders[] = { w_pha, w_phb, w_eha };
	const char *lists[] = { "/v1/tickets", "/v1/tickets?province=HA", "/v1/tickets?province=HB",
				"/v1/tickets?state=open&limit=2", "/v1/orders", "/v1/orders?mine=1",
				"/v1/orders?province=HB", "/v1/orders?state=open",
				"/v1/provinces/HA/kpi", "/v1/provinces/HB/kpi",
				"/v1/provinces/HA/engineers", "/v1/provinces/HB/engineers",
				"/v1/provinces/HA/escalations", "/v1/provinces/HB/escalations",
				"/v1/provinces/HA/partners", "/v1/provinces/HB/partners" };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		r[n].method = "GET";
		snprintf(r[n].path, sizeof(r[n].path), "%s", lists[i]);
		r[n++].body[0] = '\0';
	}
	for (size_t i = 0; i < 5; i++) {
		r[n].method = "GET";
		snprintf(r[n].path, sizeof(r[n].path), "/v1/tickets/%s", tickets[i]);
		r[n++].body[0] = '\0';
		/* Refused after the scope check even where allowed: no engineer
		 * E-none, feedback before resolution; cancel only on tickets
		 * already cancelled (a no-op). */
		r[n].method = "POST";
		snprintf(r[n].path, sizeof(r[n].path), "/v1/tickets/%s/assign", tickets[i]);
		snprintf(r[n++].body, sizeof(r[0].body), "{\"engineer_id\": \"E-none\"}");
		r[n].method = "POST";
		snprintf(r[n].path, sizeof(r[n].path), "/v1/tickets/%s/feedback", tickets[i]);
		snprintf(r[n++].body, sizeof(r[0].body), "{\"ticket_id\": \"%s\", \"score\": 4}",
			 tickets[i]);
		if (tickets[i] == t_hac || tickets[i] == t_hbc) {
			r[n].method = "POST";
			snprintf(r[n].path, sizeof(r[n].path), "/v1/tickets/%s/cancel", tickets[i]);
			snprintf(r[n++].body, sizeof(r[0].body), "{\"reason\": \"test\"}");
		}
	}
	for (size_t i = 0; i < 3; i++) {
		/* resolved on an offered order: a bad transition where allowed. */
		r[n].method = "POST";
		snprintf(r[n].path, sizeof(r[n].path), "/v1/orders/%s/events", orders[i]);
		snprintf(r[n++].body, sizeof(r[0].body),
			 "{\"order_id\": \"%s\", \"event\": \"resolved\", \"first_time_fix\": true,"
			 " \"ts\": \"2026-01-01T00:00:00Z\"}", orders[i]);
	}
	const char *engineers[] = { "E-HA", "E-HB" };
	for (size_t i = 0; i < 2; i++) {
		r[n].method = "POST";
		snprintf(r[n].path, sizeof(r[n].path), "/v1/engineers/%s/status", engineers[i]);
		snprintf(r[n++].body, sizeof(r[0].body),
			 "{\"ts\": \"2026-01-01T00:00:00Z\", \"state\": \"available\"}");
	}
	return n;
}

static int matrix(void)
{
	static struct req reqs[64];
	int nreq = build_requests(reqs);
	int bad = 0, total = 0;
	for (int role = 0; role < NROLES; role++) {
		const char *foreign[16];
		foreign_of(role, foreign);
		for (int i = 0; i < nreq; i++) {
			struct resp r = http(reqs[i].method, reqs[i].path, tokens[role],
					     reqs[i].body[0] ? reqs[i].body : NULL);
			total++;
			if (r.status >= 200 && r.status < 300) {
				for (int f = 0; foreign[f] != NULL; f++) {
					if (strstr(r.body, foreign[f]) != NULL) {
						fprintf(stderr, "LEAK role=%s %s %s: %s in %.300s\n",
							role_names[role], reqs[i].method,
							reqs[i].path, foreign[f], r.body);
						bad++;
					}
				}
			} else if (r.status < 400 || r.status >= 500 || !has_error_shape(r.body)) {
				fprintf(stderr, "BAD role=%s %s %s: %d %.300s\n", role_names[role],
					reqs[i].method, reqs[i].path, r.status, r.body);
				bad++;
			}
			free(r.body);
		}
	}
	printf("matrix: %d requests over %d roles, %d problems\n", total, NROLES, bad);
	return bad == 0 ? 0 : -1;
}

/* Expects `status` for one call; prints what came instead. */
static bool expect(int status, const char *method, const char *path, int role, const char *body,
		   const char *needle)
{
	struct resp r = http(method, path, role >= 0 ? tokens[role] : NULL, body);
	bool ok = r.status == status && (needle == NULL || strstr(r.body, needle) != NULL) &&
		  (status < 400 || has_error_shape(r.body));
	if (!ok)
		fprintf(stderr, "expected %d%s%s for %s %s as %s, got %d: %.400s\n", status,
			needle ? " with " : "", needle ? needle : "", method, path,
			role >= 0 ? role_names[role] : "nobody", r.status, r.body);
	free(r.body);
	return ok;
}

static int scoped_answers(void)
{
	char p[160];
	int fails = 0;
#define EXPECT(st, m, path, role, body, needle) fails += !expect(st, m, path, role, body, needle)
	EXPECT(401, "GET", "/v1/tickets", -1, NULL, "unauthorized");
	EXPECT(200, "GET", "/v1/tickets", R_HQ, NULL, t_hb1);
	EXPECT(200, "GET", "/v1/tickets?province=HA", R_PROV_HA, NULL, t_ha1);
	EXPECT(403, "GET", "/v1/tickets?province=HB", R_PROV_HA, NULL, "forbidden");
	EXPECT(403, "GET", "/v1/tickets", R_PART_HA, NULL, "forbidden");
	snprintf(p, sizeof(p), "/v1/tickets/%s", t_hb1);
	EXPECT(404, "GET", p, R_DISP_HA, NULL, "not_found");
	EXPECT(200, "GET", p, R_DISP_HB, NULL, "\"history\"");
	EXPECT(403, "GET", p, R_PART_HB, NULL, NULL);
	snprintf(p, sizeof(p), "/v1/tickets/%s/assign", t_hb1);
	EXPECT(404, "POST", p, R_DISP_HA, "{\"engineer_id\": \"E-HA\"}", NULL);
	EXPECT(403, "POST", p, R_PROV_HA, "{\"engineer_id\": \"E-HA\"}", NULL);
	EXPECT(403, "POST", p, R_PART_HB, "{\"engineer_id\": \"E-HB\"}", NULL);
	EXPECT(403, "GET", "/v1/provinces/HB/kpi", R_DISP_HA, NULL, NULL);
	EXPECT(200, "GET", "/v1/provinces/HA/kpi", R_PROV_HA, NULL, "\"open_total\"");
	EXPECT(404, "GET", "/v1/provinces/XX/kpi", R_HQ, NULL, NULL);
	EXPECT(403, "GET", "/v1/provinces/HA/engineers", R_ENG_HA, NULL, NULL);
	EXPECT(200, "GET", "/v1/provinces/HA/partners", R_PROV_HA, NULL, "\"P-HA\"");
	EXPECT(403, "GET", "/v1/provinces/HB/partners", R_DISP_HA, NULL, "forbidden");
	EXPECT(403, "GET", "/v1/provinces/HA/partners", R_PART_HA, NULL, NULL);
	EXPECT(200, "GET", "/v1/orders?mine=1", R_PART_HA, NULL, w_pha);
	EXPECT(200, "GET", "/v1/orders?mine=1", R_ENG_HA, NULL, w_eha);
	EXPECT(200, "GET", "/v1/orders?province=HB", R_HQ, NULL, w_phb);
	EXPECT(403, "POST", "/v1/engineers/E-HB/status", R_ENG_HA,
	       "{\"ts\": \"2026-01-01T00:00:00Z\", \"state\": \"busy\"}", NULL);
	EXPECT(200, "POST", "/v1/engineers/E-HA/status", R_ENG_HA,
	       "{\"ts\": \"2026-01-01T00:00:01Z\", \"state\": \"busy\"}", NULL);
	/* Events: another partner's order is not found, as one that does not exist. */
	char ev[256];
	snprintf(p, sizeof(p), "/v1/orders/%s/events", w_phb);
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:00Z\"}", w_phb);
	EXPECT(404, "POST", p, R_PART_HA, ev, "not_found");
	EXPECT(403, "POST", p, R_HQ, ev, NULL);
	EXPECT(200, "POST", p, R_PART_HB, ev, "\"applied\"");
	EXPECT(200, "POST", p, R_PART_HB, ev, "\"repeat\"");
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:09Z\"}", w_phb);
	EXPECT(409, "POST", p, R_PART_HB, ev, "bad_transition");
	EXPECT(404, "POST", "/v1/orders/W999999/events", R_PART_HB,
	       "{\"order_id\": \"W999999\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:00Z\"}", NULL);
	EXPECT(400, "POST", p, R_PART_HB,
	       "{\"order_id\": \"W999999\", \"event\": \"accept\", \"ts\": \"2026-01-01T00:00:00Z\"}", "schema");
	/* P-HB accepted: assign refuses, reassign withdraws its order. A
	 * dispatcher gives work only to its zone's engineers and partners. */
	snprintf(p, sizeof(p), "/v1/tickets/%s/assign", t_hb1);
	EXPECT(409, "POST", p, R_DISP_HB, "{\"engineer_id\": \"E-HB\"}", "in_progress");
	EXPECT(403, "POST", p, R_DISP_HB, "{\"engineer_id\": \"E-HA\"}", "forbidden");
	snprintf(p, sizeof(p), "/v1/tickets/%s/reassign", t_hb1);
	EXPECT(200, "POST", p, R_DISP_HB, "{\"engineer_id\": \"E-HB\"}", w_phb);
	EXPECT(404, "POST", p, R_DISP_HA, "{\"engineer_id\": \"E-HA\"}", NULL);
	/* Reassign: P-HA's offer is withdrawn, E-HA gets one. Then cancel. */
	snprintf(p, sizeof(p), "/v1/tickets/%s/assign", t_ha1);
	EXPECT(200, "POST", p, R_DISP_HA, "{\"engineer_id\": \"E-HA\", \"mode\": \"onsite\"}", "\"offered\"");
	EXPECT(400, "POST", p, R_DISP_HA, "{\"partner_id\": \"P-HA\", \"mode\": \"onsite\"}", NULL);
	snprintf(p, sizeof(p), "/v1/tickets/%s", t_ha1);
	EXPECT(200, "GET", p, R_DISP_HA, NULL, "\"withdrawn\"");
	snprintf(p, sizeof(p), "/v1/tickets/%s/cancel", t_ha1);
	EXPECT(200, "POST", p, R_DISP_HA, NULL, "\"cancelled\"");
	EXPECT(200, "POST", p, R_DISP_HA, "{}", "\"cancelled\"");
	snprintf(p, sizeof(p), "/v1/tickets/%s/assign", t_ha1);
	EXPECT(409, "POST", p, R_DISP_HA, "{\"engineer_id\": \"E-HA\"}", "not_open");
	/* The engineer works its order through the API; then the return visit
	 * (score 2) closes the ticket and opens a complaint linked to it. */
	const char *steps[] = { "accept", "on_site", "resolved" };
	snprintf(p, sizeof(p), "/v1/orders/%s/events", w_eha);
	for (int i = 0; i < 3; i++) {
		snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"%s\", \"first_time_fix\": true,"
			 " \"ts\": \"2026-01-01T00:01:0%dZ\"}", w_eha, steps[i], i);
		EXPECT(200, "POST", p, R_ENG_HA, ev, "\"applied\"");
	}
	snprintf(p, sizeof(p), "/v1/tickets/%s/feedback", t_ha2);
	snprintf(ev, sizeof(ev), "{\"ticket_id\": \"%s\", \"score\": 2, \"comment\": \"late\"}", t_ha2);
	EXPECT(403, "POST", p, R_PROV_HA, ev, NULL);
	EXPECT(200, "POST", p, R_DISP_HA, ev, "complaint_ticket_id");
	EXPECT(200, "POST", p, R_DISP_HA, ev, "\"repeat\"");
	snprintf(p, sizeof(p), "/v1/tickets/%s", t_ha2);
	EXPECT(200, "GET", p, R_PROV_HA, NULL, "\"closed\"");
	/* Pagination: two pages of one, then the end. */
	EXPECT(200, "GET", "/v1/tickets?limit=1", R_HQ, NULL, "\"next\": \"");
	EXPECT(400, "GET", "/v1/tickets?limit=0", R_HQ, NULL, NULL);
	EXPECT(400, "GET", "/v1/tickets?cursor=zzz", R_HQ, NULL, NULL);
	EXPECT(400, "GET", "/v1/tickets?state=sleeping", R_HQ, NULL, NULL);
	EXPECT(404, "GET", "/v1/nothing", R_HQ, NULL, "not_found");
	EXPECT(405, "DELETE", "/v1/tickets", R_HQ, NULL, NULL);
	EXPECT(200, "GET", "/healthz", -1, NULL, "ok");
	EXPECT(200, "GET", "/zone/HA", -1, NULL, "localStorage");
#undef EXPECT
	return fails == 0 ? 0 : -1;
}

static int pages(struct harness *h)
{
	long want = harness_sql_long(h, "SELECT count(*) FROM ticket");
	char path[256];
	int seen = 0, rc = -1;
	snprintf(path, sizeof(path), "/v1/tickets?limit=2");
	for (int guard = 0; guard < 10; guard++) {
		struct resp r = http("GET", path, tokens[R_HQ], NULL);
		if (r.status != 200) {
			free(r.body);
			goto out;
		}
		for (char *p = r.body; (p = strstr(p, "\"customer_id\"")) != NULL; p++)
			seen++;
		char *next = strstr(r.body, "\"next\": \"");
		if (next == NULL) {
			free(r.body);
			break;
		}
		next += 9;
		char *end = strchr(next, '"');
		snprintf(path, sizeof(path), "/v1/tickets?limit=2&cursor=%.*s", (int)(end - next), next);
		free(r.body);
	}
	rc = seen == want && want > 2 ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "pagination saw %d tickets, expected %ld\n", seen, want);
out:
	return rc;
}

static int bad_bodies(void)
{
	char p[128];
	int fails = 0;
	const char *bodies[] = { "{bad", "[]", "", "{\"engineer_id\": 5}", "{\"a\": 1, \"a\": 2}",
				 "{\"engineer_id\": \"E-HA\", \"partner_id\": \"P-HA\"}",
				 "{\"engineer_id\": \"bad id!\"}", "\"x\"", "{\"mode\": \"flying\", \"engineer_id\": \"E-HA\"}",
				 "{\"engineer_id\": \"E-HA\"} trailing" };
	snprintf(p, sizeof(p), "/v1/tickets/%s/assign", t_ha2);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		fails += !expect(400, "POST", p, R_DISP_HA, bodies[i], NULL);
	snprintf(p, sizeof(p), "/v1/orders/%s/events", w_eha);
	fails += !expect(400, "POST", p, R_ENG_HA, "{\"order_id\": 1}", "schema");
	char ev[256];
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"yesterday\"}", w_eha);
	fails += !expect(400, "POST", p, R_ENG_HA, ev, "bad_timestamp");
	snprintf(ev, sizeof(ev), "{\"order_id\": \"%s\", \"event\": \"dance\", \"ts\": \"2026-01-01T00:00:00Z\"}", w_eha);
	fails += !expect(400, "POST", p, R_ENG_HA, ev, "schema");
	snprintf(p, sizeof(p), "/v1/tickets/%s/feedback", t_ha2);
	fails += !expect(400, "POST", p, R_DISP_HA, "{\"ticket_id\": \"T1\", \"score\": 4}", "schema");
	fails += !expect(400, "POST", p, R_DISP_HA, "{\"ticket_id\": \"x\", \"score\": 9}", "schema");
	/* Oversized: 70 KB. */
	size_t big = 70 * 1024;
	char *b = malloc(big);
	if (b == NULL)
		return -1;
	memset(b, ' ', big);
	b[0] = '{';
	b[big - 1] = '}';
	snprintf(p, sizeof(p), "/v1/tickets/%s/assign", t_ha2);
	struct resp r = http_len("POST", p, tokens[R_DISP_HA], b, (long)big);
	if (r.status != 413) {
		fprintf(stderr, "oversized body: expected 413, got %d\n", r.status);
		fails++;
	}
	free(r.body);
	free(b);
	return fails == 0 ? 0 : -1;
}

/* Slow clients hold sockets, not the loop: others are answered at once. */
static int slow_clients(void)
{
	int slow[8];
	int rc = -1;
	double worst = 0;
	for (int i = 0; i < 8; i++)
		slow[i] = -1;
	for (int i = 0; i < 8; i++) {
		slow[i] = connect_api();
		if (slow[i] < 0)
			goto out;
		const char *part = i % 2 == 0 ? "GET /v1/tickets HTTP/1.1\r\nHost: x\r\nAuthor"
					      : "POST /v1/tickets/T1/assign HTTP/1.1\r\nHost: x\r\n"
						"Content-Length: 1000\r\n\r\n{\"engineer_id\"";
		if (write_all(slow[i], part, strlen(part)) != 0)
			goto out;
	}
	/* Clients that leave before their answer (the statement may still be
	 * running): the answer is dropped, nothing else happens. */
	for (int i = 0; i < 20; i++) {
		char req[256];
		int fd = connect_api();
		if (fd < 0)
			goto out;
		int n = snprintf(req, sizeof(req), "GET /v1/provinces/HA/kpi HTTP/1.1\r\nHost: x\r\n"
				 "Authorization: Bearer %s\r\n\r\n", tokens[i % 2 ? R_HQ : R_PROV_HA]);
		int w = write_all(fd, req, (size_t)n);
		close(fd);
		if (w != 0)
			goto out;
	}
	for (int i = 0; i < 30; i++) {
		struct resp r = http("GET", "/v1/tickets?limit=5", tokens[R_HQ], NULL);
		if (r.ms > worst)
			worst = r.ms;
		int st = r.status;
		free(r.body);
		if (st != 200)
			goto out;
	}
	printf("slow clients: 8 stalled connections, 20 abandoned requests, 30 requests beside them, slowest %.1f ms\n",
	       worst);
	rc = worst < 1000 ? 0 : -1;
out:
	for (int i = 0; i < 8; i++)
		if (slow[i] >= 0)
			close(slow[i]);
	return rc;
}

/* Requests on sc-api's connections waiting on the lock (not this one). */
static const char waiting_sql[] =
	"SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
	" AND wait_event_type = 'Lock' AND query LIKE '%sc_api_cancel%'";

/*
 * A busy connection does not hold the others. The test opens a ticket on
 * D3 and takes its row lock in its own transaction; a cancel of it then
 * waits in the server (sc_ticket_cancel locks the row) on the connection
 * sc-api gave it. Three such cancels occupy three of the four connections
 * (each goes to the least busy one). While they provably wait
 * (pg_stat_activity, and no answer on their sockets), reads and a write
 * are answered: on the fourth connection. Then the lock is released and
 * the cancels answer: one 200 cancelled, the others 409 not_open.
 * With one connection, or requests not sent to the least busy one, the
 * reads would queue behind a waiting cancel and fail here.
 */
static int pool_busy(struct harness *h)
{
	enum { BUSY = POOL_CONNECTIONS - 1 };
	int fds[BUSY], rc = -1, answered = 0, cancelled = 0;
	char sql[256], req[512], p[96], ticket[16];
	PGconn *lock = PQconnectdb(harness_dsn(h));
	PGresult *res = NULL;
	for (int i = 0; i < BUSY; i++)
		fds[i] = -1;
	if (open_ticket(h, "S1", "D3", ticket) != 0)
		goto out;
	snprintf(sql, sizeof(sql), "BEGIN; SELECT 1 FROM ticket WHERE id = '%s' FOR UPDATE", ticket);
	res = PQexec(lock, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pool: cannot lock the ticket: %s", PQerrorMessage(lock));
		goto out;
	}
	for (int i = 0; i < BUSY; i++) {
		int n = snprintf(req, sizeof(req),
				 "POST /v1/tickets/%s/cancel HTTP/1.0\r\nHost: x\r\n"
				 "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n",
				 ticket, tokens[R_DISP_HA]);
		if ((fds[i] = connect_api()) < 0 || write_all(fds[i], req, (size_t)n) != 0)
			goto out;
		/* One at a time, so each is dispatched while the earlier ones
		 * are already in flight. */
		if (!harness_wait_sql(h, waiting_sql, i + 1, 10000))
			goto out;
	}
	/* Reads of every kind and a write, on the one free connection. */
	snprintf(p, sizeof(p), "/v1/tickets/%s", t_ha2);
	answered += expect(200, "GET", p, R_PROV_HA, NULL, t_ha2);
	answered += expect(200, "GET", "/v1/provinces/HA/kpi", R_HQ, NULL, "\"open_total\"");
	answered += expect(200, "GET", "/v1/tickets?state=open", R_DISP_HB, NULL, NULL);
	answered += expect(200, "GET", "/v1/orders?mine=1", R_PART_HA, NULL, NULL);
	answered += expect(200, "POST", "/v1/engineers/E-HA/status", R_ENG_HA,
			   "{\"ts\": \"2026-01-01T00:00:30Z\", \"state\": \"available\"}", NULL);
	if (answered != 5)
		goto out;
	/* ... while the cancels still wait, unanswered. */
	if (harness_sql_long(h, waiting_sql) != BUSY) {
		fprintf(stderr, "pool: the cancels stopped waiting before the lock was released\n");
		goto out;
	}
	for (int i = 0; i < BUSY; i++) {
		struct pollfd pf = { .fd = fds[i], .events = POLLIN };
		if (poll(&pf, 1, 0) != 0) {
			fprintf(stderr, "pool: cancel %d answered while its statement waited\n", i);
			goto out;
		}
	}
	PQclear(res);
	res = PQexec(lock, "ROLLBACK");
	for (int i = 0; i < BUSY; i++) {
		char buf[4096];
		size_t len = 0;
		for (;;) {
			struct pollfd pf = { .fd = fds[i], .events = POLLIN };
			if (poll(&pf, 1, 10000) <= 0 || len + 1 >= sizeof(buf))
				break;
			ssize_t got = read(fds[i], buf + len, sizeof(buf) - len - 1);
			if (got <= 0)
				break;
			len += (size_t)got;
		}
		buf[len] = '\0';
		int status = 0;
		if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
		bool ok = status == 200 && strstr(buf, "\"cancelled\"") != NULL;
		cancelled += ok;
		if (!ok && (status != 409 || strstr(buf, "not_open") == NULL)) {
			fprintf(stderr, "pool: cancel %d after the lock: %.300s\n", i, buf);
			goto out;
		}
	}
	if (cancelled != 1) {
		fprintf(stderr, "pool: %d cancels applied, expected one\n", cancelled);
		goto out;
	}
	printf("pool: %d connections held by waiting statements, 5 requests answered on the"
	       " last one, the waiting ones answered after the lock\n", BUSY);
	rc = 0;
out:
	for (int i = 0; i < BUSY; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	PQclear(res);
	PQfinish(lock);
	return rc;
}

/* Every path of docs/openapi.yaml (lines "  /path:") answers each method
 * listed under it with something other than 404/405, for existing ids. */
static int openapi_paths(void)
{
	FILE *f = fopen(SC_SOURCE_DIR "/docs/openapi.yaml", "r");
	char line[512], path[512] = "";
	int n = 0, fails = 0;
	if (f == NULL) {
		fprintf(stderr, "cannot open docs/openapi.yaml\n");
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "  /", 3) == 0) {
			char *colon = strrchr(line, ':');
			if (colon == NULL)
				continue;
			*colon = '\0';
			snprintf(path, sizeof(path), "%s", line + 2);
			continue;
		}
		if (strncmp(line, "components:", 11) == 0)
			path[0] = '\0';
		bool get = strncmp(line, "    get:", 8) == 0, post = strncmp(line, "    post:", 9) == 0;
		if (path[0] == '\0' || (!get && !post))
			continue;
		/* Substitute existing resources and pick a token that may call it. */
		char url[256], body[256] = "";
		int role = R_HQ;
		const char *id = strstr(path, "/v1/orders/") ? w_eha
				 : strstr(path, "/v1/engineers/") ? "E-HA" : t_ha2;
		size_t o = 0;
		for (const char *s = path; *s != '\0' && o < sizeof(url) - 32;) {
			if (strncmp(s, "{id}", 4) == 0) {
				o += (size_t)snprintf(url + o, sizeof(url) - o, "%s", id);
				s += 4;
			} else if (strncmp(s, "{code}", 6) == 0) {
				o += (size_t)snprintf(url + o, sizeof(url) - o, "HA");
				s += 6;
			} else {
				url[o++] = *s++;
			}
		}
		url[o] = '\0';
		if (post) {
			if (strstr(path, "/events")) {
				role = R_ENG_HA;
				snprintf(body, sizeof(body), "{\"order_id\": \"%s\", \"event\": \"on_site\","
					 " \"ts\": \"2026-01-01T00:00:05Z\"}", w_eha);
			} else if (strstr(path, "/status")) {
				role = R_ENG_HA;
				snprintf(body, sizeof(body), "{\"ts\": \"2026-01-01T00:00:05Z\", \"state\": \"available\"}");
			} else if (strstr(path, "/feedback")) {
				snprintf(body, sizeof(body), "{\"ticket_id\": \"%s\", \"score\": 5}", t_ha2);
			} else if (strstr(path, "/assign")) {
				snprintf(body, sizeof(body), "{\"engineer_id\": \"E-none\"}");
			} else if (strstr(path, "/cancel")) {
				/* on a ticket already cancelled: a no-op */
				o = (size_t)snprintf(url, sizeof(url), "/v1/tickets/%s/cancel", t_hac);
			}
		}
		struct resp r = http(post ? "POST" : "GET", url, tokens[role], body[0] ? body : NULL);
		n++;
		if (r.status <= 0 || r.status == 404 || r.status == 405 || r.status >= 500) {
			fprintf(stderr, "openapi path %s %s (%s): %d %.200s\n", post ? "POST" : "GET",
				path, url, r.status, r.body);
			fails++;
		}
		free(r.body);
	}
	fclose(f);
	printf("openapi: %d operations answered, %d failed\n", n, fails);
	return n >= 15 && fails == 0 ? 0 : -1;
}

static int revoked(struct harness *h)
{
	char out[1024], id[32];
	if (!expect(200, "GET", "/v1/orders", R_PART_HB, NULL, NULL) ||
	    sql_text(h, "SELECT id FROM api_token WHERE partner_id = 'P-HB'", id, sizeof(id)) != 0)
		return -1;
	const char *args[] = { "token", "revoke", id, NULL };
	if (harness_run(h, "scctl", args, out, sizeof(out)) != 0) {
		fprintf(stderr, "scctl token revoke: %s\n", out);
		return -1;
	}
	/* The cache keeps a token 5 s. */
	sleep(6);
	return expect(401, "GET", "/v1/orders", R_PART_HB, NULL, "unauthorized") ? 0 : -1;
}

int main(void)
{
	struct harness *h = NULL;
	pid_t api = -1;
	int rc = 1;
	char addr[64], conns[64];
	signal(SIGPIPE, SIG_IGN);
	h = fixture_start(master);
	CHECK(h != NULL);
	CHECK(data_set(h) == 0);
	for (int i = 0; i < NROLES; i++)
		CHECK(make_token(h, i) == 0);
	port = pick_port();
	CHECK(port > 0);
	snprintf(addr, sizeof(addr), "SC_HTTP_ADDR=127.0.0.1:%d", port);
	snprintf(conns, sizeof(conns), "SC_API_DB_CONNECTIONS=%d", POOL_CONNECTIONS);
	const char *env[] = { addr, conns, NULL };
	api = harness_spawn(h, "sc-api", env, NULL);
	CHECK(api > 0);
	bool up = false;
	for (int i = 0; i < 100 && !up; i++) {
		struct resp r = http("GET", "/healthz", NULL, NULL);
		up = r.status == 200;
		free(r.body);
		if (!up)
			usleep(100 * 1000);
	}
	CHECK(up);
	CHECK(matrix() == 0);
	CHECK(scoped_answers() == 0);
	CHECK(pages(h) == 0);
	CHECK(bad_bodies() == 0);
	CHECK(slow_clients() == 0);
	CHECK(pool_busy(h) == 0);
	CHECK(openapi_paths() == 0);
	CHECK(revoked(h) == 0);
	CHECK(fixture_metric(h, api, "sc_api_requests_total{route=\"tickets_list\",status=\"200\"}") > 0);
	CHECK(fixture_metric(h, api, "sc_api_requests_total{route=\"orders_event\",status=\"404\"}") > 0);
	CHECK(harness_stop_program(h, api, SIGTERM) == 0);
	api = -1;
	CHECK(harness_check_logs(h) == 0);
	printf("test_api: ok\n");
	rc = 0;
out:
	harness_stop(h);
	return rc;
}

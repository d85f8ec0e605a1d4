/*
 * scctl views (issue 7, CLI): queue, ticket, history and engineers over a
 * data set spanning two provinces, against a real PostgreSQL.
 *
 * Tickets are opened and moved with the platform's own SQL functions (as
 * sc-ingest and sc-dispatch would call them) and with `scctl assign`, so no
 * service needs to run. Checks: a view shows exactly its province's
 * tickets; --json parses and equals what the API's function answers in the
 * database; history lists an offer / accept / en route / on site / resolve
 * sequence in order, and a reassignment's withdrawal before its new offer
 * (one transaction, one instant); Chinese names keep the table aligned;
 * loads match the orders; exit status 1
 * for an unknown ticket or province and for a database that cannot be
 * reached (every command alike), 2 for bad usage.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "fixture.h"

/* Output must contain text (printed on failure). */
#define CHECK_OUT(text)                                                                 \
	do {                                                                            \
		if (strstr(out, (text)) == NULL) {                                      \
			fprintf(stderr, "%s:%d: output lacks \"%s\":\n%s\n", __FILE__,  \
				__LINE__, (text), out);                                 \
			goto out;                                                       \
		}                                                                       \
	} while (0)

#define SCCTL SC_BIN_DIR "/scctl"

/* Both output streams of the last run. */
static char out[262144];

/* The fixture's country, plus an engineer with a Chinese name in HA and a
 * partner serving HB. */
static const char extra[] =
	"{\"engineers\": [{\"id\": \"E-HA-zh\", \"name\": \"王建国\", \"kind\": \"onsite\","
	"  \"province\": \"HA\", \"skills\": {\"relay_protection\": 2}, \"max_concurrent\": 3}],"
	" \"partners\": [{\"id\": \"P-HB\", \"name\": \"武汉电力服务\", \"provinces\": [\"HB\"],"
	"  \"skills\": {\"relay_protection\": 3}, \"capacity\": 4, \"certified_until\": \"2099-12-31\"}]}";

/* scctl with args (NULL-terminated); its exit status, output in `out`. */
static int scctl(struct harness *h, const char *const *args)
{
	int rc = harness_run(h, "scctl", args, out, sizeof(out));

	fprintf(stderr, "scctl");
	for (size_t i = 0; args[i]; i++)
		fprintf(stderr, " %s", args[i]);
	fprintf(stderr, ": exit %d\n", rc);
	return rc;
}

/* A shell command line ($SCCTL is scctl) in the test's environment. */
static int sh(struct harness *h, const char *cmd)
{
	char line[4096];
	const char *args[] = {"-c", line, NULL};
	int rc;

	snprintf(line, sizeof(line), "SCCTL=%s; %s", SCCTL, cmd);
	rc = harness_run(h, "/bin/sh", args, out, sizeof(out));
	fprintf(stderr, "sh %s: exit %d\n", cmd, rc);
	return rc;
}

static int sqlf(struct harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs one statement built from constants of this test. 0 or -1. */
static int sqlf(struct harness *h, const char *fmt, ...)
{
	char sql[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (harness_sql_exec(h, sql) != 0) {
		fprintf(stderr, "sql failed: %s\n", sql);
		return -1;
	}
	return 0;
}

/* The first column of sql's first row, parsed as JSON (caller frees). */
static cJSON *sql_json(struct harness *h, const char *sql)
{
	PGresult *res = PQexec(harness_pg(h), sql);
	cJSON *v = NULL;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = cJSON_Parse(PQgetvalue(res, 0, 0));
	else
		fprintf(stderr, "sql_json: %s: %s\n", sql, PQerrorMessage(harness_pg(h)));
	PQclear(res);
	return v;
}

/* The first column of sql's first row as text into buf ("" on none). */
static const char *sql_text(struct harness *h, const char *sql, char *buf, size_t len)
{
	PGresult *res = PQexec(harness_pg(h), sql);

	buf[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return buf;
}

/* Opens a ticket as sc-ingest does for a request. */
static int open_ticket(struct harness *h, const char *request, const char *site,
		       const char *device, const char *category)
{
	char dev[64];

	snprintf(dev, sizeof(dev), device ? "\"device_id\": \"%s\"," : "%s", device ? device : "");
	return sqlf(h,
		    "SELECT sc_ticket_open('{\"source\": \"request\", \"request_id\": \"%s\","
		    " \"channel\": \"hotline\", \"site_id\": \"%s\", %s \"category\": \"%s\","
		    " \"severity\": \"major\", \"skill\": \"relay_protection\", \"min_grade\": 2,"
		    " \"actor\": \"sc-ingest\"}'::jsonb)",
		    request, site, dev, category);
}

/* An engineer's event on ticket's live order, as sc-dispatch applies it
 * from MQTT; each in its own transaction (its own instant). */
static int event(struct harness *h, const char *engineer, const char *ticket, const char *ev)
{
	char sql[1024], buf[64];

	snprintf(sql, sizeof(sql),
		 "SELECT result FROM sc_dispatch_event('engineer', '%s', 'sc/v1/engineers/%s/events',"
		 " jsonb_build_object('order_id', (SELECT id FROM work_order WHERE ticket_id = '%s'"
		 "   AND state IN ('offered', 'accepted', 'en_route', 'on_site')),"
		 "  'event', '%s', 'ts', sc_ts(now()), 'first_time_fix', true)::text)",
		 engineer, engineer, ticket, ev);
	if (strcmp(sql_text(h, sql, buf, sizeof(buf)), "applied") != 0) {
		fprintf(stderr, "event %s on %s: %s\n", ev, ticket, buf);
		return -1;
	}
	return 0;
}

/* The ids of a list's items joined by ",". */
static void item_ids(const cJSON *list, char *buf, size_t len)
{
	const cJSON *it;
	size_t n = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
		int w = snprintf(buf + n, len - n, "%s%s", n ? "," : "",
				 cJSON_IsString(id) ? id->valuestring : "?");

		if (w < 0 || (size_t)w >= len - n)
			return;
		n += (size_t)w;
	}
}

/* Terminal column at which `needle` starts in the line of `out` holding
 * `key` (CJK counted 2, like the printer); -1 when not there. */
static int column_of(const char *key, const char *needle)
{
	const char *line = strstr(out, key), *end, *at;
	int col = 0;

	if (!line)
		return -1;
	while (line > out && line[-1] != '\n')
		line--;
	end = strchr(line, '\n');
	at = strstr(line, needle);
	if (!at || (end && at > end))
		return -1;
	for (const unsigned char *p = (const unsigned char *)line; p < (const unsigned char *)at; p++) {
		if (*p < 0x80)
			col++;
		else if ((*p & 0xc0) != 0x80)
			col += 2;   /* every non-ASCII character of this data set is CJK */
	}
	return col;
}

/* The (kind, event) pairs of a timeline of `kind`, joined by " ". */
static void events_of(const cJSON *items, const char *kind, char *buf, size_t len)
{
	const cJSON *it;
	size_t n = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(it, items) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "kind");
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "event");
		int w;

		if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0 || !cJSON_IsString(e))
			continue;
		w = snprintf(buf + n, len - n, "%s%s", n ? " " : "", e->valuestring);
		if (w < 0 || (size_t)w >= len - n)
			return;
		n += (size_t)w;
	}
}

int main(void)
{
	struct harness *h = fixture_start(fixture_country);
	cJSON *got = NULL, *want = NULL;
	char ids[1024], db_ids[1024], buf[1024];
	int rc = 1;

	CHECK(h != NULL);
	CHECK(fixture_import(h, extra) == 0);

	/* ---- the data set: HA T000001-3, HB T000004-5 ---- */
	CHECK(open_ticket(h, "R-1", "S1", "D1", "fault") == 0);
	CHECK(open_ticket(h, "R-2", "S1", "D2", "fault") == 0);
	CHECK(open_ticket(h, "R-3", "S1", NULL, "consultation") == 0);
	CHECK(open_ticket(h, "R-4", "S2", "D3", "fault") == 0);
	CHECK(open_ticket(h, "R-5", "S2", NULL, "maintenance") == 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket WHERE province = 'HA'") == 3);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket WHERE province = 'HB'") == 2);
	/* T000002 to the manual queue (as sc-dispatch does), T000004 offered in HB. */
	CHECK(sqlf(h, "SELECT sc_ticket_manual('T000002', 'nobody qualifies', 'sc-dispatch')") == 0);
	{
		const char *a1[] = {"assign", "T000001", "--engineer", "E-HA-3", NULL};
		const char *a4[] = {"assign", "T000004", "--partner", "P-HB", NULL};

		CHECK(scctl(h, a1) == 0);
		CHECK(scctl(h, a4) == 0);
	}

	/* ---- queue: exactly the province's open tickets ---- */
	{
		const char *q[] = {"queue", "HA", NULL};
		const char *qj[] = {"--json", "queue", "HA", NULL};
		const char *qb[] = {"queue", "HB", "--json", NULL};

		CHECK(scctl(h, q) == 0);
		CHECK_OUT("TICKET");
		CHECK_OUT("T000001");
		CHECK_OUT("T000002");
		CHECK_OUT("T000003");
		CHECK(strstr(out, "T000004") == NULL && strstr(out, "T000005") == NULL);
		CHECK(column_of("T000001", "E-HA-3 offered") > 0);   /* holder column */
		CHECK(column_of("T000002", "manual") > 0);

		CHECK(scctl(h, qj) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		item_ids(got, ids, sizeof(ids));
		sql_text(h, "SELECT string_agg(id, ',' ORDER BY created_at DESC, id DESC) FROM ticket"
			    " WHERE province = 'HA' AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')",
			 db_ids, sizeof(db_ids));
		if (strcmp(ids, db_ids) != 0) {
			fprintf(stderr, "queue HA: %s, database: %s\n", ids, db_ids);
			goto out;
		}
		/* The very body GET /v1/tickets answers an hq token. */
		want = sql_json(h, "SELECT body FROM sc_api_tickets('hq', NULL, NULL, NULL, 'HA', 'open', 50, NULL)");
		CHECK(want != NULL);
		CHECK(cJSON_Compare(got, want, true));
		cJSON_Delete(got);
		cJSON_Delete(want);
		got = want = NULL;

		CHECK(scctl(h, qb) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		item_ids(got, ids, sizeof(ids));
		CHECK(strcmp(ids, "T000005,T000004") == 0);
		{
			/* T000004, offered to the partner */
			const cJSON *t4 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(got, "items"), 1);
			const cJSON *holder = cJSON_GetObjectItemCaseSensitive(t4, "holder");

			CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(holder, "partner_id")->valuestring, "P-HB") == 0);
			CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(t4, "state")->valuestring, "offered") == 0);
		}
		cJSON_Delete(got);
		got = NULL;
	}
	{
		const char *m[] = {"queue", "HA", "--manual", NULL};
		const char *ms[] = {"--json", "queue", "HA", "--state", "manual", NULL};
		const char *lim[] = {"queue", "HA", "--limit", "1", NULL};
		const char *none[] = {"queue", "HB", "--state=closed", NULL};

		CHECK(scctl(h, m) == 0);
		CHECK_OUT("T000002");
		CHECK(strstr(out, "T000001") == NULL && strstr(out, "T000003") == NULL);
		CHECK(scctl(h, ms) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		item_ids(got, ids, sizeof(ids));
		CHECK(strcmp(ids, "T000002") == 0);
		cJSON_Delete(got);
		got = NULL;
		/* Newest first; the rest is announced on stderr, not hidden. */
		CHECK(scctl(h, lim) == 0);
		CHECK_OUT("T000003");
		CHECK(strstr(out, "T000002") == NULL);
		CHECK_OUT("more exist");
		/* Nothing in that state: the header, exit 0. */
		CHECK(scctl(h, none) == 0);
		CHECK_OUT("TICKET");
		CHECK(strstr(out, "T0000") == NULL);
	}
	{
		/* Page by page with --cursor: every open HA ticket once, in order. */
		char all[1024] = "", cursor[256] = "";
		const cJSON *next;

		for (int page = 0; page < 5; page++) {
			const char *p1[] = {"--json", "queue", "HA", "--limit", "1", NULL};
			const char *pn[] = {"--json", "queue", "HA", "--limit", "1", "--cursor", cursor, NULL};

			CHECK(scctl(h, page == 0 ? p1 : pn) == 0);
			got = cJSON_Parse(out);
			CHECK(got != NULL);
			item_ids(got, ids, sizeof(ids));
			if (ids[0]) {
				size_t used = strlen(all);
				int w = snprintf(all + used, sizeof(all) - used, "%s%s",
						 all[0] ? "," : "", ids);
				CHECK(w >= 0 && (size_t)w < sizeof(all) - used);
			}
			next = cJSON_GetObjectItemCaseSensitive(got, "next");
			if (!cJSON_IsString(next))
				break;
			snprintf(cursor, sizeof(cursor), "%s", next->valuestring);
			cJSON_Delete(got);
			got = NULL;
		}
		cJSON_Delete(got);
		got = NULL;
		if (strcmp(all, db_ids) != 0) {
			fprintf(stderr, "queue HA page by page: %s, database: %s\n", all, db_ids);
			goto out;
		}
	}

	/* ---- offer (above), accept, en route, on site, resolve ---- */
	CHECK(event(h, "E-HA-3", "T000001", "accept") == 0);
	CHECK(event(h, "E-HA-3", "T000001", "en_route") == 0);
	CHECK(event(h, "E-HA-3", "T000001", "on_site") == 0);
	CHECK(event(h, "E-HA-3", "T000001", "resolved") == 0);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket WHERE id = 'T000001' AND state = 'resolved'") == 1);
	{
		const char *hj[] = {"history", "T000001", "--json", NULL};
		const char *ht[] = {"history", "T000001", NULL};
		const cJSON *items, *it;
		const char *prev = "";

		CHECK(scctl(h, hj) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		items = cJSON_GetObjectItemCaseSensitive(got, "items");
		CHECK(cJSON_IsArray(items));
		CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(got, "next")));
		events_of(items, "ticket", buf, sizeof(buf));
		if (strcmp(buf, "new offered assigned en_route on_site resolved") != 0) {
			fprintf(stderr, "ticket events: %s\n", buf);
			goto out;
		}
		events_of(items, "order", buf, sizeof(buf));
		if (strcmp(buf, "offered accept en_route on_site resolved") != 0) {
			fprintf(stderr, "order events: %s\n", buf);
			goto out;
		}
		events_of(items, "sla", buf, sizeof(buf));
		CHECK(strcmp(buf, "stopped stopped stopped") == 0);   /* respond, arrive, resolve */
		events_of(items, "request", buf, sizeof(buf));
		CHECK(strcmp(buf, "received") == 0);
		/* In time order (sc_ts sorts as text). */
		cJSON_ArrayForEach(it, items) {
			const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "ts");

			CHECK(cJSON_IsString(ts) && strcmp(prev, ts->valuestring) <= 0);
			prev = ts->valuestring;
		}
		/* Every state change of the ticket is there. */
		CHECK(harness_sql_long(h, "SELECT count(*) FROM ticket_history WHERE ticket_id = 'T000001'") == 6);
		want = sql_json(h, "SELECT sc_ticket_timeline('T000001')");
		CHECK(want != NULL);
		CHECK(cJSON_Compare(items, want, true));
		cJSON_Delete(got);
		cJSON_Delete(want);
		got = want = NULL;

		/* The table: the same order, one line each. */
		CHECK(scctl(h, ht) == 0);
		CHECK_OUT("TIME");
		{
			const char *a = strstr(out, "accept"), *r = strstr(out, " resolved ");

			CHECK(a != NULL && r != NULL && a < r);
			CHECK(strstr(out, "offered") < a);
		}
	}

	/* ---- one transaction, one instant: the withdrawn order before the new offer ---- */
	{
		const char *a[] = {"assign", "T000003", "--engineer", "E-HA-zh", NULL};
		const char *r[] = {"reassign", "T000003", "--engineer", "E-HA-3", "--reason", "closer", NULL};
		const char *hj[] = {"history", "T000003", "--json", NULL};

		CHECK(scctl(h, a) == 0);
		CHECK(scctl(h, r) == 0);
		CHECK(scctl(h, hj) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		events_of(cJSON_GetObjectItemCaseSensitive(got, "items"), "order", buf, sizeof(buf));
		if (strcmp(buf, "offered withdrawn offered") != 0) {
			fprintf(stderr, "order events of T000003: %s\n", buf);
			goto out;
		}
		events_of(cJSON_GetObjectItemCaseSensitive(got, "items"), "ticket", buf, sizeof(buf));
		/* the withdrawal is a history row with the state unchanged */
		if (strcmp(buf, "new offered offered offered") != 0) {
			fprintf(stderr, "ticket events of T000003: %s\n", buf);
			goto out;
		}
		cJSON_Delete(got);
		got = NULL;
	}

	/* ---- ticket: fields, orders, clocks; --json is the API's body ---- */
	{
		const char *t[] = {"ticket", "T000001", NULL};
		const char *tj[] = {"--json", "ticket", "T000001", NULL};

		CHECK(scctl(h, t) == 0);
		CHECK_OUT("ticket ");
		CHECK_OUT("resolved");
		CHECK_OUT("ORDER");
		CHECK_OUT("E-HA-3");
		CHECK_OUT("CLOCK");
		CHECK(column_of("respond ", "stopped") > 0);
		CHECK(scctl(h, tj) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		want = sql_json(h, "SELECT body FROM sc_api_ticket('hq', NULL, NULL, NULL, 'T000001')");
		CHECK(want != NULL);
		CHECK(cJSON_Compare(got, want, true));
		CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "orders")) == 1);
		CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "clocks")) == 3);
		CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(got, "state")->valuestring, "resolved") == 0);
		cJSON_Delete(got);
		cJSON_Delete(want);
		got = want = NULL;
	}

	/* ---- engineers: the province's, Chinese names aligned ---- */
	{
		const char *e[] = {"engineers", "HA", NULL};
		const char *ej[] = {"engineers", "--json", "HA", NULL};
		const cJSON *it;
		int col;

		CHECK(scctl(h, e) == 0);
		CHECK_OUT("王建国");
		CHECK(strstr(out, "E-HB-3") == NULL);
		col = column_of("E-HA-3", "onsite");
		CHECK(col > 0);
		CHECK(column_of("E-HA-zh", "onsite") == col);
		CHECK(column_of("ENGINEER", "KIND") == col);
		CHECK(column_of("E-HA-3", "1/2") > 0);   /* load / max_concurrent */
		CHECK(scctl(h, ej) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "items")) ==
		      harness_sql_long(h, "SELECT count(*) FROM engineer WHERE province = 'HA'"
					  " OR 'HA' = ANY (coverage)"));
		/* E-HA-3: T000001 resolved (no load), T000003 offered (one unit). */
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(got, "items"))
			if (strcmp(cJSON_GetObjectItemCaseSensitive(it, "id")->valuestring, "E-HA-3") == 0)
				CHECK(cJSON_GetObjectItemCaseSensitive(it, "load")->valuedouble == 1);
		cJSON_Delete(got);
		got = NULL;
	}

	/* ---- partners: those serving the province, their open orders there ---- */
	{
		const char *ph[] = {"partners", "HB", NULL};
		const char *pa[] = {"partners", "HA", NULL};
		const char *pj[] = {"partners", "--json", "HB", NULL};

		CHECK(scctl(h, ph) == 0);
		CHECK_OUT("武汉电力服务");
		CHECK(column_of("P-HB", "2099-12-31") > 0);
		{
			char load[16];
			long n = harness_sql_long(h, "SELECT count(*) FROM work_order"
						     " WHERE partner_id = 'P-HB'"
						     " AND state = ANY (sc_order_active_states())");
			snprintf(load, sizeof(load), "%ld/4", n);
			CHECK(n >= 0 && column_of("P-HB", load) > 0);
		}
		CHECK(scctl(h, pa) == 0);
		CHECK(strstr(out, "P-HB") == NULL);
		CHECK(scctl(h, pj) == 0);
		got = cJSON_Parse(out);
		CHECK(got != NULL);
		CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(got, "items")) ==
		      harness_sql_long(h, "SELECT count(*) FROM partner WHERE 'HB' = ANY (provinces)"));
		cJSON_Delete(got);
		got = NULL;
	}
	CHECK(sh(h, "$SCCTL partners XX >/dev/null") == 1);
	CHECK_OUT("no province XX");

	/* ---- not found: 1, with the reason on stderr ---- */
	CHECK(sh(h, "$SCCTL ticket T999999 >/dev/null") == 1);
	CHECK_OUT("scctl: ticket: no ticket T999999");
	CHECK(sh(h, "$SCCTL history T999999 --json >/dev/null") == 1);
	CHECK_OUT("no ticket T999999");
	CHECK(sh(h, "$SCCTL queue XX >/dev/null") == 1);
	CHECK_OUT("no province XX");
	CHECK(sh(h, "$SCCTL engineers XX >/dev/null") == 1);
	CHECK_OUT("no province XX");

	/* ---- bad usage: 2 ---- */
	{
		static const char *const bad[][6] = {
			{"queue", NULL},
			{"queue", "HA", "HB", NULL},
			{"queue", "HA", "--bogus", NULL},
			{"queue", "HA", "--state", "bogus", NULL},
			{"queue", "HA", "--limit", "0", NULL},
			{"queue", "HA", "--limit", "501", NULL},
			{"queue", "HA", "--limit", "ten", NULL},
			{"queue", "HA", "--limit", NULL},
			{"queue", "HA", "--manual", "--state", "new", NULL},
			{"queue", "HA", "--cursor", "not-a-cursor", NULL},   /* the API's 400 */
			{"ticket", NULL},
			{"ticket", "T000001", "T000002", NULL},
			{"ticket", "T000001", "--bogus", NULL},
			{"history", NULL},
			{"history", "--all", "T000001", NULL},
			{"engineers", NULL},
			{"engineers", "HA", "--bogus", NULL},
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CHECK(scctl(h, bad[i]) == 2);
	}
	CHECK(sh(h, "$SCCTL queue --help") == 0);
	CHECK_OUT("usage: scctl [--config FILE] [--json] queue PROVINCE");
	CHECK(sh(h, "$SCCTL --help") == 0);
	CHECK_OUT("history TICKET");
	CHECK_OUT("database unreachable");

	/* ---- database unreachable: 1 from every command, said on stderr ---- */
	{
		static const char *const cmds[] = {
			"queue HA", "queue HA --json", "ticket T000001", "history T000001",
			"engineers HA", "assign T000003 --engineer E-HA-3", "reassign T000003 --engineer E-HA-3",
			"cancel T000003", "pause T000003", "resume T000003", "token list",
			"token create --role hq", "token revoke 1", "migrate", "import -",
		};
		char cmd[512];

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			/* Port 1 on loopback: nothing listens, the refusal is immediate. */
			snprintf(cmd, sizeof(cmd),
				 "echo '{}' | SC_PG_DSN='host=127.0.0.1 port=1 dbname=none' $SCCTL %s", cmds[i]);
			CHECK(sh(h, cmd) == 1);
			CHECK_OUT("cannot connect to the database");
		}
	}

	CHECK(harness_check_logs(h) == 0);
	rc = 0;
out:
	cJSON_Delete(got);
	cJSON_Delete(want);
	harness_stop(h);
	fprintf(stderr, "scctl_views: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

/*
 * SLA calendars through the real database (issue 6): the built-in
 * `business` calendar (Mon-Fri 08:30-17:30 Asia/Shanghai) and a calendar
 * loaded by `scctl import` (`calendars` section) with a holiday Wednesday
 * and a make-up working Sunday.
 *
 * Week of Monday 2026-11-23 (all times Asia/Shanghai, +08:00):
 * - before 08:30: time starts counting at 08:30;
 * - after 17:30: nothing counts until 08:30 the next working day;
 * - Friday evening to Monday morning: the weekend does not count;
 * - cn-test: Wednesday 2026-11-25 is a holiday (does not count), Sunday
 *   2026-11-29 a working day (counts, 08:30-17:30).
 *
 * Each boundary is checked both ways: sc_calendar_add (the deadline after
 * a budget) and sc_calendar_seconds (the budget spent between two
 * instants); then sc_calendar_seconds(add(t, s)) = s over a grid of start
 * times through the whole week, and a ticket opened under a calendar policy
 * gets the deadlines sc_calendar_add gives from its creation time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static const char data_set[] =
	"{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\"}],"
	" \"calendars\": [{\"id\": \"cn-test\", \"tz\": \"Asia/Shanghai\", \"hours\": \"08:30-17:30\","
	"                  \"weekdays\": [1,2,3,4,5], \"holidays\": [\"2026-11-25\"],"
	"                  \"workdays\": [\"2026-11-29\"]}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"key\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"tier\": \"standard\", \"province\": \"HA\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\"},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HA\"}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"M\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S2\", \"model\": \"M\"}],"
	" \"sla_policies\": [{\"tier\": \"key\", \"severity\": \"major\", \"respond_s\": 3600, \"arrive_s\": 32400,"
	"                     \"resolve_s\": 97200, \"calendar\": \"cn-test\", \"warn_pct\": 50},"
	"                    {\"tier\": \"standard\", \"severity\": \"major\", \"respond_s\": 1800, \"arrive_s\": 7200,"
	"                     \"resolve_s\": 64800, \"calendar\": \"business\", \"warn_pct\": 75}]"
	"}";

/* calendar, start, calendar seconds, expected deadline (all +08:00). */
struct add_case {
	const char *cal, *t0;
	double secs;
	const char *want;
};

static const struct add_case cases[] = {
	/* Before 08:30: the clock starts at 08:30. */
	{ "business", "2026-11-23 07:00+08", 3600, "2026-11-23 09:30+08" },
	{ "business", "2026-11-23 08:29:59+08", 1, "2026-11-23 08:30:01+08" },
	{ "business", "2026-11-23 08:30+08", 32400, "2026-11-23 17:30+08" },
	/* After 17:30: nothing until 08:30 the next morning. */
	{ "business", "2026-11-23 17:30+08", 60, "2026-11-24 08:31+08" },
	{ "business", "2026-11-23 18:00+08", 3600, "2026-11-24 09:30+08" },
	{ "business", "2026-11-23 17:00+08", 3600, "2026-11-24 09:00+08" },
	/* Friday evening to Monday morning. */
	{ "business", "2026-11-27 17:00+08", 3600, "2026-11-30 09:00+08" },
	{ "business", "2026-11-27 19:00+08", 3600, "2026-11-30 09:30+08" },
	{ "business", "2026-11-28 12:00+08", 60, "2026-11-30 08:31+08" },
	/* business knows no holidays: Wednesday counts, Sunday does not. */
	{ "business", "2026-11-24 17:00+08", 3600, "2026-11-25 09:00+08" },
	{ "business", "2026-11-28 23:00+08", 32400 + 60, "2026-12-01 08:31+08" },
	/* cn-test: same hours... */
	{ "cn-test", "2026-11-23 07:00+08", 3600, "2026-11-23 09:30+08" },
	{ "cn-test", "2026-11-23 18:00+08", 3600, "2026-11-24 09:30+08" },
	/* ...the holiday Wednesday does not count... */
	{ "cn-test", "2026-11-24 17:00+08", 3600, "2026-11-26 09:00+08" },
	{ "cn-test", "2026-11-25 10:00+08", 60, "2026-11-26 08:31+08" },
	/* ...Friday evening runs into the make-up working Sunday... */
	{ "cn-test", "2026-11-27 17:00+08", 3600, "2026-11-29 09:00+08" },
	{ "cn-test", "2026-11-28 12:00+08", 60, "2026-11-29 08:31+08" },
	{ "cn-test", "2026-11-29 17:00+08", 3600, "2026-11-30 09:00+08" },
	/* ...and a whole week: Mon, Tue, Thu, Fri, Sun, Mon = 6 days. */
	{ "cn-test", "2026-11-23 08:30+08", 6 * 32400, "2026-11-30 17:30+08" },
	/* 24x7 counts everything. */
	{ "24x7", "2026-11-27 19:00+08", 3600, "2026-11-27 20:00+08" },
};

/* "t"/"f" of a boolean query with text parameters; -1 on error. */
static int sql_bool(struct harness *h, const char *sql, int n, const char *const *params)
{
	PGconn *c = harness_pg(h);
	if (c == NULL)
		return -1;
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		rc = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	else
		fprintf(stderr, "test_sla_calendar: %s: %s\n", sql, PQerrorMessage(c));
	PQclear(r);
	return rc;
}

static int check_cases(struct harness *h)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct add_case *k = &cases[i];
		char secs[32];
		snprintf(secs, sizeof(secs), "%.0f", k->secs);
		const char *p[4] = { k->cal, k->t0, secs, k->want };
		int add = sql_bool(h, "SELECT sc_calendar_add($1, $2::timestamptz, $3::float8)"
				      " = $4::timestamptz", 4, p);
		int back = sql_bool(h, "SELECT sc_calendar_seconds($1, $2::timestamptz, $4::timestamptz)"
				       " = $3::float8", 4, p);
		if (add != 1 || back != 1) {
			fprintf(stderr, "test_sla_calendar: case %zu (%s from %s + %s s, want %s):"
				" add %s, seconds %s\n", i, k->cal, k->t0, secs, k->want,
				add == 1 ? "ok" : "WRONG", back == 1 ? "ok" : "WRONG");
			bad++;
		}
	}
	return bad == 0 ? 0 : -1;
}

int main(void)
{
	int rc = 1;
	struct harness *h = fixture_start(data_set);
	CHECK(h != NULL);
	CHECK(harness_sql_long(h, "SELECT count(*) FROM calendar WHERE id = 'cn-test'"
				  " AND holidays = '{2026-11-25}' AND workdays = '{2026-11-29}'") == 1);
	CHECK(check_cases(h) == 0);

	/* Round trip over a grid: every 37 minutes for 9 days, budgets from one
	 * minute to three working days; no mismatch in either calendar. */
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM unnest(ARRAY['business', 'cn-test']) cal,"
		" generate_series(timestamptz '2026-11-22 00:00+08', '2026-12-01 00:00+08',"
		"                 interval '37 minutes') t0,"
		" unnest(ARRAY[60, 1800, 32400, 40000, 97200]::float8[]) s"
		" WHERE abs(sc_calendar_seconds(cal, t0, sc_calendar_add(cal, t0, s)) - s) > 0.001") == 0);
	/* A deadline is always inside working time (or its very end). */
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM generate_series(timestamptz '2026-11-22 00:00+08',"
		" '2026-12-01 00:00+08', interval '37 minutes') t0,"
		" LATERAL (SELECT sc_calendar_add('cn-test', t0, 5000) AT TIME ZONE 'Asia/Shanghai' d) x"
		" WHERE d::time < '08:30' OR d::time > '17:30' OR d::date IN ('2026-11-25', '2026-11-28')"
		"    OR (d::date = '2026-11-22')") == 0);

	/* Tickets under calendar policies: deadlines and timers from the calendar. */
	CHECK(harness_sql_exec(h,
		"SELECT sc_ticket_open('{\"source\": \"request\", \"site_id\": \"S1\", \"device_id\": \"D1\","
		" \"category\": \"fault\", \"severity\": \"major\", \"skill\": \"x\"}');"
		"SELECT sc_ticket_open('{\"source\": \"request\", \"site_id\": \"S2\", \"device_id\": \"D2\","
		" \"category\": \"fault\", \"severity\": \"major\", \"skill\": \"x\"}')") == 0);
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM ticket t JOIN sla_clock c ON c.ticket_id = t.id"
		" WHERE c.calendar = CASE t.tier WHEN 'key' THEN 'cn-test' ELSE 'business' END"
		"   AND c.deadline = sc_calendar_add(c.calendar, t.created_at, c.budget_s)"
		"   AND c.deadline = CASE c.clock WHEN 'respond' THEN t.respond_by"
		"                    WHEN 'arrive' THEN t.arrive_by ELSE t.resolve_by END") == 6);
	CHECK(harness_sql_long(h,
		"SELECT count(*) FROM sla_timer tm JOIN sla_clock c USING (ticket_id, clock)"
		" WHERE tm.kind = 'warning'"
		"   AND tm.due_at = sc_calendar_add(c.calendar, c.started_at, c.budget_s * c.warn_pct / 100)") == 6);
	rc = 0;
out:
	harness_stop(h);
	fprintf(stderr, "test_sla_calendar: %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}

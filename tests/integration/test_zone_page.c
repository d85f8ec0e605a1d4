/*
 * The zone dashboard in a real browser: headless Chromium opens
 * GET /zone/HA of a running sc-api (harness PostgreSQL and mosquitto, the
 * schema and master data through scctl, a province token made by scctl),
 * lets the page run its script (--virtual-time-budget: several refreshes),
 * and dumps the DOM. The figures the page shows, read from its stable ids
 * and data- attributes, must equal what this test counts in SQL:
 *
 *  - KPI tiles: open tickets, SLA at risk, breached, manual queue,
 *    escalations in 24 h;
 *  - open tickets by state x SLA risk (every open state, and the total row);
 *  - the at-risk list, the recent escalations (in order), engineers' load,
 *    partners' open orders in the zone and their load;
 *  - nothing of province HB; the page refreshed more than once.
 *
 * The data set is made with the services' own SQL functions (sc_ticket_open,
 * sc_order_offer, sc_dispatch_event, sc_ticket_set_state) and SLA clocks and
 * escalations moved into the past; only sc-api runs, so nothing changes
 * between the page's last refresh and the SQL counts.
 *
 * The token reaches the page in the URL fragment (#token=...), which the
 * browser never sends: the sc-api log must not hold it.
 *
 * A screenshot (1920x1080) is kept as a test artefact in
 * <build>/artefacts/zone.png (SCTEST_ARTEFACT_DIR overrides the directory);
 * its path is printed. Chromium: SCTEST_CHROMIUM, else `chromium` on PATH
 * (deploy/install-deps.sh installs Debian's).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fixture.h"

#ifndef SC_ARTEFACT_DIR
#error "SC_ARTEFACT_DIR must name the artefact directory (tests/integration/CMakeLists.txt)"
#endif

#define CHROMIUM_TIMEOUT_S 120
#define VIRTUAL_TIME_MS "16000" /* three refreshes of 5 s and some */

static const char master[] =
	"{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65},"
	"                 {\"code\": \"HB\", \"name\": \"Hubei\", \"lat\": 30.59, \"lon\": 114.30}],"
	" \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"tier\": \"vip\", \"province\": \"HB\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HB\", \"lat\": 30.60, \"lon\": 114.31}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D3\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D4\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D5\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D6\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D7\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D8\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D9\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"}],"
	" \"engineers\": [{\"id\": \"E-HA1\", \"name\": \"Wang\", \"province\": \"HA\", \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 3},"
	"                 {\"id\": \"E-HA2\", \"name\": \"Zhao\", \"province\": \"HA\", \"skills\": {\"relay_protection\": 2}, \"max_concurrent\": 1},"
	"                 {\"id\": \"E-HB\", \"name\": \"Chen\", \"province\": \"HB\", \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 3}],"
	" \"partners\": [{\"id\": \"P-HA1\", \"name\": \"Zhongyuan Power\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 3}, \"capacity\": 5, \"certified_until\": \"2099-12-31\"},"
	"                {\"id\": \"P-HA2\", \"name\": \"Songshan Grid\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 3}, \"capacity\": 2, \"certified_until\": \"2099-12-31\"},"
	"                {\"id\": \"P-X\", \"name\": \"Central Service\", \"provinces\": [\"HA\", \"HB\"], \"skills\": {\"relay_protection\": 3}, \"capacity\": 4, \"certified_until\": \"2099-12-31\"},"
	"                {\"id\": \"P-HB\", \"name\": \"Jianghan\", \"provinces\": [\"HB\"], \"skills\": {\"relay_protection\": 3}, \"capacity\": 5, \"certified_until\": \"2099-12-31\"}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 3600, \"arrive_s\": 14400, \"resolve_s\": 28800, \"warn_pct\": 75}]"
	"}";

/* Tickets by device: D1..D7 in HA, D8, D9 in HB. */
static char tk[10][16];
static char token[128];
static int port;

/* ---- SQL helpers ---------------------------------------------------------- */

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

static int open_ticket(struct harness *h, int dev, const char *site)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"request\", \"site_id\": \"%s\","
		 " \"device_id\": \"D%d\", \"category\": \"fault\", \"severity\": \"major\","
		 " \"skill\": \"relay_protection\", \"min_grade\": 2}')", site, dev);
	return sql_text(h, sql, tk[dev], sizeof(tk[dev]));
}

/* Offers ticket of device `dev` to an engineer or partner; order id in id. */
static int offer(struct harness *h, int dev, const char *engineer, const char *partner, char *id)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT sc_order_offer('%s', %s%s%s, %s%s%s, '%s')", tk[dev],
		 engineer ? "'" : "", engineer ? engineer : "NULL", engineer ? "'" : "",
		 partner ? "'" : "", partner ? partner : "NULL", partner ? "'" : "",
		 partner ? "outsourced" : "onsite");
	return sql_text(h, sql, id, 16);
}

/* The holder accepts order `id`, as its MQTT event would. */
static int order_accept(struct harness *h, const char *kind, const char *sender, const char *id)
{
	char sql[640], result[32];
	snprintf(sql, sizeof(sql),
		 "SELECT result FROM sc_dispatch_event('%s', '%s', 'sc/v1/%ss/%s/events',"
		 " format('{\"order_id\": \"%s\", \"event\": \"accept\", \"ts\": \"%%s\"}', sc_ts(now())))",
		 kind, sender, kind, sender, id);
	if (sql_text(h, sql, result, sizeof(result)) != 0)
		return -1;
	if (strcmp(result, "applied") != 0) {
		fprintf(stderr, "accept %s: %s\n", id, result);
		return -1;
	}
	return 0;
}

/*
 * HA: D1 new; D2 offered to E-HA1; D3 accepted by P-HA1 (assigned);
 * D4 offered to P-HA1; D5 manual, resolve clock breached, escalated to
 * levels 1 and 2; D6 accepted by E-HA1, resolve clock past its warning
 * share, escalated to level 1; D7 cancelled.
 * HB: D8 offered to P-HB, breached, escalated; D9 offered to P-X (which
 * serves HA too: shown on HA's page with load 1 and nothing open there).
 */
static int data_set(struct harness *h)
{
	char w[16], sql[2048];
	for (int d = 1; d <= 9; d++)
		if (open_ticket(h, d, d <= 7 ? "S1" : "S2") != 0)
			return -1;
	if (offer(h, 2, "E-HA1", NULL, w) != 0 || offer(h, 3, NULL, "P-HA1", w) != 0 ||
	    order_accept(h, "partner", "P-HA1", w) != 0 || offer(h, 4, NULL, "P-HA1", w) != 0 ||
	    offer(h, 6, "E-HA1", NULL, w) != 0 || order_accept(h, "engineer", "E-HA1", w) != 0 ||
	    offer(h, 8, NULL, "P-HB", w) != 0 || offer(h, 9, NULL, "P-X", w) != 0)
		return -1;
	snprintf(sql, sizeof(sql),
		 "SELECT sc_ticket_set_state('%s', 'manual', 'test', 'nobody qualifies');"
		 "SELECT sc_ticket_set_state('%s', 'cancelled', 'test', 'test');"
		 "UPDATE sla_clock SET started_at = now() - interval '9 hours',"
		 "       deadline = now() - interval '1 hour'"
		 " WHERE clock = 'resolve' AND ticket_id IN ('%s', '%s');"
		 "UPDATE sla_clock SET started_at = now() - interval '7 hours',"
		 "       deadline = now() + interval '1 hour'"
		 " WHERE clock = 'resolve' AND ticket_id = '%s';"
		 "UPDATE ticket t SET resolve_by = c.deadline FROM sla_clock c"
		 " WHERE c.ticket_id = t.id AND c.clock = 'resolve';"
		 "INSERT INTO escalation (ticket_id, level, role, reason, ts) VALUES"
		 " ('%s', 1, 'province_dispatcher', 'manual queue', now() - interval '3 minutes'),"
		 " ('%s', 2, 'province_manager', 'resolve clock at 100%%', now() - interval '1 minute'),"
		 " ('%s', 1, 'province_dispatcher', 'resolve clock at 75%%', now() - interval '2 minutes'),"
		 " ('%s', 1, 'province_dispatcher', 'resolve clock at 75%%', now())",
		 tk[5], tk[7], tk[5], tk[8], tk[6], tk[5], tk[5], tk[6], tk[8]);
	return harness_sql_exec(h, sql);
}

/* ---- sc-api ----------------------------------------------------------------- */

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

/* GET /healthz answers 200. */
static bool healthy(void)
{
	static const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
	char buf[256] = "";
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	bool ok = false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 2000) == 1 && read(fd, buf, sizeof(buf) - 1) > 0)
			ok = strncmp(buf, "HTTP/1.0 200", 12) == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
	close(fd);
	return ok;
}

static int make_token(struct harness *h)
{
	char out[4096];
	const char *args[] = { "token", "create", "--role", "province", "--zone", "HA", NULL };
	if (harness_run(h, "scctl", args, out, sizeof(out)) != 0)
		return -1;
	char *t = strstr(out, "sct_");
	if (t == NULL)
		return -1;
	size_t n = strcspn(t, " \r\n");
	if (n >= sizeof(token))
		return -1;
	memcpy(token, t, n);
	token[n] = '\0';
	return 0;
}

/* ---- Chromium ----------------------------------------------------------------- */

/*
 * Runs headless Chromium on url with `mode` ("--dump-dom" or
 * "--screenshot=PATH") in a fresh profile under the harness dir; stdout to
 * out_path, stderr to <dir>/chromium-<n>.log. The browser runs in its own
 * process group, killed whole if it overstays CHROMIUM_TIMEOUT_S.
 * 0 when it exited 0, else -1.
 */
static int chromium(struct harness *h, const char *url, const char *mode, const char *out_path)
{
	static int runs;
	char profile[512], home[512], log_path[512], vt[64];
	const char *bin = getenv("SCTEST_CHROMIUM");
	int status = 0, rc = -1;
	runs++;
	snprintf(profile, sizeof(profile), "%s/chromium-profile-%d", harness_dir(h), runs);
	snprintf(home, sizeof(home), "%s/chromium-home-%d", harness_dir(h), runs);
	snprintf(log_path, sizeof(log_path), "%s/chromium-%d.log", harness_dir(h), runs);
	snprintf(vt, sizeof(vt), "--virtual-time-budget=%s", VIRTUAL_TIME_MS);
	if (bin == NULL || *bin == '\0')
		bin = "chromium";
	if (mkdir(profile, 0700) != 0 || mkdir(home, 0700) != 0) {
		fprintf(stderr, "chromium: mkdir: %s\n", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char udd[600];
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Its dot-files go to the profile's neighbour, not the caller's home. */
		setenv("HOME", home, 1);
		snprintf(udd, sizeof(udd), "--user-data-dir=%s", profile);
		/* --no-sandbox: the tests run as root in CI, where Chromium's
		 * sandbox refuses to start; the page is our own. */
		execlp(bin, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		       "--no-first-run", "--disable-background-networking",
		       "--disable-component-update", "--disable-sync", "--disable-extensions",
		       "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1920,1080",
		       udd, vt, mode, url, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid); /* both sides, so the group exists before any kill */
	for (int waited = 0;; waited++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 || waited >= CHROMIUM_TIMEOUT_S * 10) {
			fprintf(stderr, "chromium: no exit after %d s, killing its group\n",
				CHROMIUM_TIMEOUT_S);
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			goto out;
		}
		usleep(100 * 1000);
	}
	/* Helpers that outlived the browser (none expected). */
	kill(-pid, SIGKILL);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else
		fprintf(stderr, "chromium: status %d, see %s\n", status, log_path);
out:
	return rc;
}

/* Reads a whole file, NUL-terminated; NULL on failure. Caller frees. */
static char *slurp(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		if (got == 0)
			break;
		len += got;
	}
	fclose(f);
	if (buf != NULL)
		buf[len] = '\0';
	if (len_out != NULL)
		*len_out = len;
	return buf;
}

/* ---- reading the DOM ------------------------------------------------------------ */

/* The opening tag of the element with id="id": [*start, *end). */
static bool dom_tag(const char *dom, const char *id, const char **start, const char **end)
{
	char needle[160];
	snprintf(needle, sizeof(needle), " id=\"%s\"", id);
	const char *p = strstr(dom, needle);
	if (p == NULL)
		return false;
	const char *s = p;
	while (s > dom && *s != '<')
		s--;
	const char *e = strchr(p, '>');
	if (*s != '<' || e == NULL)
		return false;
	*start = s;
	*end = e;
	return true;
}

/* Attribute `attr` of the tag [start, end) as a long; -1 when absent. */
static long tag_attr(const char *start, const char *end, const char *attr)
{
	char needle[96];
	snprintf(needle, sizeof(needle), " %s=\"", attr);
	size_t n = strlen(needle);
	for (const char *p = start; p + n < end; p++) {
		if (strncmp(p, needle, n) == 0) {
			char *stop;
			long v = strtol(p + n, &stop, 10);
			return stop != p + n && *stop == '"' ? v : -1;
		}
	}
	return -1;
}

/* Attribute `attr` of the element with id `id`, as a long; -1 when absent. */
static long dom_attr(const char *dom, const char *id, const char *attr)
{
	const char *s, *e;
	return dom_tag(dom, id, &s, &e) ? tag_attr(s, e, attr) : -1;
}

/* The text of the element with id `id` up to its first child tag. "" when
 * absent. */
static void dom_text(const char *dom, const char *id, char *buf, size_t len)
{
	const char *s, *e;
	buf[0] = '\0';
	if (!dom_tag(dom, id, &s, &e))
		return;
	size_t n = strcspn(e + 1, "<");
	snprintf(buf, len, "%.*s", (int)n, e + 1);
}

/*
 * The visible text of the cells of table row `id`, tags inside cells
 * dropped, joined by "|" ("new|1|0|0|1"). "" when absent.
 */
static void dom_cells(const char *dom, const char *id, char *buf, size_t len)
{
	const char *s, *e;
	size_t o = 0;
	buf[0] = '\0';
	if (!dom_tag(dom, id, &s, &e))
		return;
	const char *stop = strstr(e, "</tr>");
	if (stop == NULL)
		return;
	int depth = 0;       /* inside a tag */
	bool first = true;
	for (const char *p = e + 1; p < stop && o + 2 < len; p++) {
		if (strncmp(p, "<td", 3) == 0 && !first)
			buf[o++] = '|';
		if (strncmp(p, "<td", 3) == 0)
			first = false;
		if (*p == '<')
			depth = 1;
		else if (*p == '>')
			depth = 0;
		else if (!depth)
			buf[o++] = *p;
	}
	buf[o] = '\0';
}

/* Replaces field `n` (from 0) of "a|b|c" by "*", in place. */
static void blank_field(char *s, int n)
{
	char *p = s;
	for (int i = 0; i < n && p != NULL; i++)
		if ((p = strchr(p, '|')) != NULL)
			p++;
	if (p == NULL)
		return;
	char *end = strchr(p, '|');
	size_t rest = end != NULL ? strlen(end) : 0;
	*p = '*';
	if (end != NULL)
		memmove(p + 1, end, rest + 1);
	else
		p[1] = '\0';
}

/* The shown text equals the expected one. */
static int same_text(const char *what, const char *shown, const char *want)
{
	if (strcmp(shown, want) == 0)
		return 0;
	fprintf(stderr, "zone page: %s shows \"%s\", the database says \"%s\"\n", what, shown, want);
	return 1;
}

/*
 * The values of attribute `attr` (e.g. data-ticket) of the rows of table
 * `id`, in order, joined by ","; -1 when the table is not there.
 */
static int dom_column(const char *dom, const char *id, const char *attr, char *buf, size_t len)
{
	const char *s, *e;
	char needle[96];
	size_t o = 0;
	if (!dom_tag(dom, id, &s, &e))
		return -1;
	const char *stop = strstr(e, "</table>");
	if (stop == NULL)
		return -1;
	snprintf(needle, sizeof(needle), " %s=\"", attr);
	buf[0] = '\0';
	for (const char *p = strstr(e, needle); p != NULL && p < stop; p = strstr(p + 1, needle)) {
		const char *v = p + strlen(needle);
		size_t n = strcspn(v, "\"");
		if (o + n + 2 >= len)
			return -1;
		if (o > 0)
			buf[o++] = ',';
		memcpy(buf + o, v, n);
		o += n;
		buf[o] = '\0';
	}
	return 0;
}

/* ---- the comparison ---------------------------------------------------------------- */

static const char open_cond[] = "state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')";

/* One figure: shown (from the page) against counted (SQL). */
static int same(const char *what, long shown, long counted)
{
	if (shown == counted && counted >= 0)
		return 0;
	fprintf(stderr, "zone page: %s shows %ld, the database says %ld\n", what, shown, counted);
	return 1;
}

static int compare(struct harness *h, const char *dom)
{
	static const char *const states[] = { "new", "offered", "assigned", "en_route", "on_site",
					      "manual" };
	static const char *const risks[] = { "ok", "at_risk", "breached" };
	char sql[1024], id[64], attr[32], shown[512], want[512];
	int bad = 0, figures = 0;
	long risk_total[3] = { 0, 0, 0 };

#define FIGURE(what, shown_v, sql_v) (figures++, bad += same(what, shown_v, sql_v))
#define TEXT(what, shown_s, want_s) (figures++, bad += same_text(what, shown_s, want_s))
	char text[512], expect[512];
	/* KPI tiles: the counts as numbers, shown and in data-value. */
	static const struct {
		const char *id;
		const char *sql;
	} tiles[] = {
		{ "kpi-open_total", "SELECT count(*) FROM ticket WHERE province = 'HA'"
				    " AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')" },
		{ "kpi-at_risk", "SELECT count(*) FROM ticket WHERE province = 'HA'"
				 " AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')"
				 " AND sc_api_sla_risk(id) = 'at_risk'" },
		{ "kpi-breached", "SELECT count(*) FROM ticket WHERE province = 'HA'"
				  " AND state NOT IN ('resolved', 'closed', 'cancelled', 'cleared')"
				  " AND sc_api_sla_risk(id) = 'breached'" },
		{ "kpi-manual", "SELECT count(*) FROM ticket WHERE province = 'HA' AND state = 'manual'" },
		{ "kpi-opened_24h", "SELECT count(*) FROM ticket WHERE province = 'HA'"
				    " AND created_at > now() - interval '24 hours'" },
		{ "kpi-escalations_24h", "SELECT count(*) FROM escalation e JOIN ticket t ON t.id = e.ticket_id"
					 " WHERE t.province = 'HA' AND e.ts > now() - interval '24 hours'" },
	};
	for (size_t i = 0; i < sizeof(tiles) / sizeof(tiles[0]); i++) {
		long n = harness_sql_long(h, tiles[i].sql);
		dom_text(dom, tiles[i].id, text, sizeof(text));
		snprintf(expect, sizeof(expect), "%ld", n);
		TEXT(tiles[i].id, text, expect);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM ticket WHERE province = 'HA' AND %s",
		 open_cond);
	FIGURE("kpi open_total", dom_attr(dom, "kpi-open_total", "data-value"), harness_sql_long(h, sql));
	for (int r = 1; r < 3; r++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM ticket WHERE province = 'HA' AND %s"
			 " AND sc_api_sla_risk(id) = '%s'", open_cond, risks[r]);
		snprintf(id, sizeof(id), "kpi-%s", risks[r]);
		FIGURE(id, dom_attr(dom, id, "data-value"), harness_sql_long(h, sql));
	}
	FIGURE("kpi manual", dom_attr(dom, "kpi-manual", "data-value"),
	       harness_sql_long(h, "SELECT count(*) FROM ticket WHERE province = 'HA' AND state = 'manual'"));
	FIGURE("kpi escalations_24h", dom_attr(dom, "kpi-escalations_24h", "data-value"),
	       harness_sql_long(h, "SELECT count(*) FROM escalation e JOIN ticket t ON t.id = e.ticket_id"
				   " WHERE t.province = 'HA' AND e.ts > now() - interval '24 hours'"));
	/* Open tickets by state x risk, and the total row. */
	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
		long total = 0, n3[3];
		for (int r = 0; r < 3; r++) {
			snprintf(sql, sizeof(sql),
				 "SELECT count(*) FROM ticket WHERE province = 'HA' AND state = '%s'"
				 " AND sc_api_sla_risk(id) = '%s'", states[s], risks[r]);
			long n = harness_sql_long(h, sql);
			snprintf(id, sizeof(id), "state-%s", states[s]);
			snprintf(attr, sizeof(attr), "data-%s", risks[r]);
			char what[96];
			snprintf(what, sizeof(what), "%s %s", id, attr);
			FIGURE(what, dom_attr(dom, id, attr), n);
			n3[r] = n;
			total += n;
			risk_total[r] += n;
		}
		snprintf(id, sizeof(id), "state-%s", states[s]);
		char what[96];
		snprintf(what, sizeof(what), "%s data-total", id);
		FIGURE(what, dom_attr(dom, id, "data-total"), total);
		dom_cells(dom, id, text, sizeof(text));
		snprintf(expect, sizeof(expect), "%s|%ld|%ld|%ld|%ld", states[s], n3[0], n3[1], n3[2],
			 total);
		TEXT(id, text, expect);
	}
	for (int r = 0; r < 3; r++) {
		snprintf(attr, sizeof(attr), "data-%s", risks[r]);
		char what[96];
		snprintf(what, sizeof(what), "state-total %s", attr);
		FIGURE(what, dom_attr(dom, "state-total", attr), risk_total[r]);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM ticket WHERE province = 'HA' AND %s",
		 open_cond);
	long open_total = harness_sql_long(h, sql);
	FIGURE("state-total data-total", dom_attr(dom, "state-total", "data-total"), open_total);
	dom_cells(dom, "state-total", text, sizeof(text));
	snprintf(expect, sizeof(expect), "all open|%ld|%ld|%ld|%ld", risk_total[0], risk_total[1],
		 risk_total[2], open_total);
	TEXT("state-total", text, expect);
	/* The at-risk list: every open ticket not ok (fewer than 50 here). */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM ticket WHERE province = 'HA' AND %s"
		 " AND sc_api_sla_risk(id) <> 'ok'", open_cond);
	char risky[512];
	if (dom_column(dom, "risky", "data-ticket", risky, sizeof(risky)) != 0)
		return -1;
	long shown_risky = risky[0] == '\0' ? 0 : 1;
	for (const char *c = risky; *c != '\0'; c++)
		shown_risky += *c == ',';
	FIGURE("risky rows", shown_risky, harness_sql_long(h, sql));
	/* Escalations, newest first. */
	if (sql_text(h, "SELECT coalesce(string_agg(ticket_id || '/' || level, ',' ORDER BY ts DESC), '')"
			" FROM (SELECT e.* FROM escalation e JOIN ticket t ON t.id = e.ticket_id"
			"        WHERE t.province = 'HA' ORDER BY e.ts DESC LIMIT 20) x",
		     want, sizeof(want)) != 0)
		return -1;
	char tickets[512], levels[256];
	if (dom_column(dom, "escalations", "data-ticket", tickets, sizeof(tickets)) != 0 ||
	    dom_column(dom, "escalations", "data-level", levels, sizeof(levels)) != 0)
		return -1;
	/* Zip "T1,T2" and "1,2" into "T1/1,T2/2". */
	size_t o = 0;
	char *ts = NULL, *ls = NULL;
	for (char *t = strtok_r(tickets, ",", &ts), *l = strtok_r(levels, ",", &ls);
	     t != NULL && l != NULL && o < sizeof(shown) - 1;
	     t = strtok_r(NULL, ",", &ts), l = strtok_r(NULL, ",", &ls))
		o += (size_t)snprintf(shown + o, sizeof(shown) - o, "%s%s/%s", o ? "," : "", t, l);
	shown[o < sizeof(shown) ? o : sizeof(shown) - 1] = '\0';
	figures++;
	if (strcmp(shown, want) != 0) {
		fprintf(stderr, "zone page: escalations show [%s], the database says [%s]\n", shown, want);
		bad++;
	}
	/* Engineers based in or covering HA, with their load. */
	PGresult *res = PQexec(harness_pg(h),
		"SELECT e.id, (SELECT count(*) FROM work_order w WHERE w.engineer_id = e.id"
		"              AND w.state IN ('offered', 'accepted', 'en_route', 'on_site')),"
		"       e.name, e.kind, e.max_concurrent"
		"  FROM engineer e WHERE e.province = 'HA' OR 'HA' = ANY (e.coverage) ORDER BY e.id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		snprintf(id, sizeof(id), "engineer-%s", PQgetvalue(res, i, 0));
		char what[96];
		snprintf(what, sizeof(what), "%s data-load", id);
		FIGURE(what, dom_attr(dom, id, "data-load"), atol(PQgetvalue(res, i, 1)));
		/* The 4th cell, the state (reported, or by shift), is not
		 * counted here: shown as "*". */
		dom_cells(dom, id, text, sizeof(text));
		blank_field(text, 3);
		snprintf(expect, sizeof(expect), "%s|%s|%s|*|%s / %s", PQgetvalue(res, i, 0),
			 PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 1),
			 PQgetvalue(res, i, 4));
		TEXT(id, text, expect);
	}
	FIGURE("engineer rows", dom_attr(dom, "engineers", "data-count"), PQntuples(res));
	PQclear(res);
	/* Partners serving HA (none without), open orders on HA tickets, load. */
	res = PQexec(harness_pg(h),
		"SELECT p.id,"
		"       (SELECT count(*) FROM work_order w JOIN ticket t ON t.id = w.ticket_id"
		"         WHERE w.partner_id = p.id AND t.province = 'HA'"
		"           AND w.state IN ('offered', 'accepted', 'en_route', 'on_site')),"
		"       (SELECT count(*) FROM work_order w WHERE w.partner_id = p.id"
		"           AND w.state IN ('offered', 'accepted', 'en_route', 'on_site')),"
		"       p.name, p.capacity,"
		"       (SELECT coalesce(string_agg(w.id || ' ' || w.state, ', ' ORDER BY w.offered_at, w.id), '-')"
		"          FROM work_order w JOIN ticket t ON t.id = w.ticket_id"
		"         WHERE w.partner_id = p.id AND t.province = 'HA'"
		"           AND w.state IN ('offered', 'accepted', 'en_route', 'on_site'))"
		"  FROM partner p WHERE 'HA' = ANY (p.provinces) ORDER BY p.id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		char what[96];
		snprintf(id, sizeof(id), "partner-%s", PQgetvalue(res, i, 0));
		snprintf(what, sizeof(what), "%s data-open", id);
		FIGURE(what, dom_attr(dom, id, "data-open"), atol(PQgetvalue(res, i, 1)));
		snprintf(what, sizeof(what), "%s data-load", id);
		FIGURE(what, dom_attr(dom, id, "data-load"), atol(PQgetvalue(res, i, 2)));
		dom_cells(dom, id, text, sizeof(text));
		snprintf(expect, sizeof(expect), "%s|%s|%s|%s / %s|%s", PQgetvalue(res, i, 0),
			 PQgetvalue(res, i, 3), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			 PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
		TEXT(id, text, expect);
	}
	FIGURE("partner rows", dom_attr(dom, "partners", "data-count"), PQntuples(res));
	PQclear(res);
#undef TEXT
#undef FIGURE
	printf("zone page: %d figures compared with the database, %d differ\n", figures, bad);
	return bad == 0 ? 0 : -1;
}

/* The data set is what the comments say: the comparison is not vacuous. */
static int expected_figures(const char *dom)
{
	int bad = 0;
	bad += same("expected open_total", dom_attr(dom, "kpi-open_total", "data-value"), 6);
	bad += same("expected breached", dom_attr(dom, "kpi-breached", "data-value"), 1);
	bad += same("expected at_risk", dom_attr(dom, "kpi-at_risk", "data-value"), 1);
	bad += same("expected offered", dom_attr(dom, "state-offered", "data-ok"), 2);
	bad += same("expected manual breached", dom_attr(dom, "state-manual", "data-breached"), 1);
	bad += same("expected assigned at risk", dom_attr(dom, "state-assigned", "data-at_risk"), 1);
	bad += same("expected E-HA1 load", dom_attr(dom, "engineer-E-HA1", "data-load"), 2);
	bad += same("expected P-HA1 open", dom_attr(dom, "partner-P-HA1", "data-open"), 2);
	bad += same("expected P-X open", dom_attr(dom, "partner-P-X", "data-open"), 0);
	bad += same("expected P-X load", dom_attr(dom, "partner-P-X", "data-load"), 1);
	bad += same("expected escalation rows", dom_attr(dom, "escalations", "data-count"), 3);
	return bad == 0 ? 0 : -1;
}

/* Nothing of HB on HA's page. */
static int no_foreign(const char *dom)
{
	const char *foreign[] = { tk[8], tk[9], "E-HB", "P-HB", NULL };
	int bad = 0;
	for (int i = 0; foreign[i] != NULL; i++) {
		if (strstr(dom, foreign[i]) != NULL) {
			fprintf(stderr, "zone page: HA's page shows %s of HB\n", foreign[i]);
			bad++;
		}
	}
	return bad == 0 ? 0 : -1;
}

/* The token never reached sc-api in a URL: not in its log. */
static int token_not_logged(struct harness *h)
{
	char path[512];
	int rc = 0;
	for (int n = 1; n <= 4; n++) {
		snprintf(path, sizeof(path), "%s/sc-api-%d.log", harness_dir(h), n);
		char *log = slurp(path, NULL);
		if (log == NULL)
			continue;
		if (strstr(log, token) != NULL) {
			fprintf(stderr, "zone page: the token is in %s\n", path);
			rc = -1;
		}
		free(log);
	}
	return rc;
}

static int screenshot(struct harness *h, const char *url)
{
	const char *dir = getenv("SCTEST_ARTEFACT_DIR");
	char path[600], mode[640], sink[600];
	unsigned char sig[8] = { 0 };
	if (dir == NULL || *dir == '\0')
		dir = SC_ARTEFACT_DIR;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "screenshot: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/zone.png", dir);
	snprintf(mode, sizeof(mode), "--screenshot=%s", path);
	snprintf(sink, sizeof(sink), "%s/chromium-screenshot.out", harness_dir(h));
	unlink(path);
	if (chromium(h, url, mode, sink) != 0)
		return -1;
	FILE *f = fopen(path, "rb");
	size_t got = f != NULL ? fread(sig, 1, sizeof(sig), f) : 0;
	if (f != NULL)
		fclose(f);
	if (got != sizeof(sig) || memcmp(sig, "\x89PNG\r\n\x1a\n", 8) != 0) {
		fprintf(stderr, "screenshot: %s is not a PNG\n", path);
		return -1;
	}
	printf("zone page: screenshot %s\n", path);
	return 0;
}

int main(void)
{
	struct harness *h = NULL;
	pid_t api = -1;
	int rc = 1;
	char addr[64], url[512], dom_path[512];
	char *dom = NULL;
	signal(SIGPIPE, SIG_IGN);
	h = fixture_start(master);
	CHECK(h != NULL);
	CHECK(data_set(h) == 0);
	CHECK(make_token(h) == 0);
	port = pick_port();
	CHECK(port > 0);
	snprintf(addr, sizeof(addr), "SC_HTTP_ADDR=127.0.0.1:%d", port);
	const char *env[] = { addr, NULL };
	api = harness_spawn(h, "sc-api", env, NULL);
	CHECK(api > 0);
	bool up = false;
	for (int i = 0; i < 100 && !(up = healthy()); i++)
		usleep(100 * 1000);
	CHECK(up);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/zone/HA#token=%s", port, token);
	snprintf(dom_path, sizeof(dom_path), "%s/zone-dom.html", harness_dir(h));
	CHECK(chromium(h, url, "--dump-dom", dom_path) == 0);
	dom = slurp(dom_path, NULL);
	CHECK(dom != NULL);
	/* The page loaded its data (no error shown) and refreshed since. */
	if (dom_attr(dom, "board", "data-refreshes") < 2 || strstr(dom, "id=\"status\" class=\"error\"")) {
		fprintf(stderr, "zone page did not load its data: %.2000s\n", dom);
		goto out;
	}
	printf("zone page: %ld refreshes in the virtual time\n",
	       dom_attr(dom, "board", "data-refreshes"));
	CHECK(strstr(dom, token) == NULL); /* the page does not show it */
	CHECK(compare(h, dom) == 0);
	CHECK(expected_figures(dom) == 0);
	CHECK(no_foreign(dom) == 0);
	CHECK(screenshot(h, url) == 0);
	CHECK(harness_stop_program(h, api, SIGTERM) == 0);
	api = -1;
	CHECK(token_not_logged(h) == 0);
	CHECK(harness_check_logs(h) == 0);
	printf("test_zone_page: ok\n");
	rc = 0;
out:
	free(dom);
	harness_stop(h);
	return rc;
}

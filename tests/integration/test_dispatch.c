/*
 * sc-dispatch end to end: real PostgreSQL and mosquitto, the real program.
 * Master data: two provinces; engineers of the right province and grade,
 * of the wrong province, of too low a grade, a remote one; a partner and an
 * expired one. Tickets are opened with sc_ticket_open in SQL (as sc-ingest
 * and sc-alertd will), offers are observed on the orders topics, answers
 * are published on the events topics as engineers and partners do.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "harness.h"
#include "timeutil.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            goto out;                                                       \
        }                                                                   \
    } while (0)

#define WAIT_MS 10000

static const char master[] =
    "{\"settings\": {\"offer_timeout_s\": 60, \"max_offer_attempts\": 3, \"travel_kmh\": 60},\n"
    " \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65},\n"
    "               {\"code\": \"HB\", \"name\": \"Hubei\", \"lat\": 30.6, \"lon\": 114.3}],\n"
    " \"customers\": [{\"id\": \"C1\", \"tier\": \"vip\", \"province\": \"HA\"},\n"
    "               {\"id\": \"C2\", \"tier\": \"standard\", \"province\": \"HB\"}],\n"
    " \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62},\n"
    "           {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HB\", \"lat\": 30.59, \"lon\": 114.3}],\n"
    " \"engineers\": [\n"
    "  {\"id\": \"E-near\", \"province\": \"HA\", \"lat\": 34.76, \"lon\": 113.63,\n"
    "   \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 1},\n"
    "  {\"id\": \"E-far\", \"province\": \"HA\", \"coverage\": [\"HA\"], \"lat\": 35.5, \"lon\": 114.5,\n"
    "   \"skills\": {\"relay_protection\": 2}, \"max_concurrent\": 1},\n"
    "  {\"id\": \"E-low\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62,\n"
    "   \"skills\": {\"relay_protection\": 1}, \"max_concurrent\": 1},\n"
    "  {\"id\": \"E-hb\", \"province\": \"HB\", \"coverage\": [\"HB\"], \"lat\": 34.7, \"lon\": 113.6,\n"
    "   \"skills\": {\"relay_protection\": 4}, \"max_concurrent\": 1},\n"
    "  {\"id\": \"E-rem\", \"kind\": \"remote\", \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 2}],\n"
    " \"partners\": [\n"
    "  {\"id\": \"P-ha\", \"provinces\": [\"HA\"], \"skills\": {\"relay_protection\": 2}, \"capacity\": 5,\n"
    "   \"certified_until\": \"2099-12-31\", \"response_s\": 7200, \"cost_per_job\": 800},\n"
    "  {\"id\": \"P-expired\", \"provinces\": [\"HB\"], \"skills\": {\"metering\": 2}, \"capacity\": 5,\n"
    "   \"certified_until\": \"2020-01-01\"}]\n"
    "}\n";

/* Runs scctl with args (NULL-terminated); 0 when it exited 0. */
static int scctl(struct harness *h, const char *const *args)
{
    char out[2048];
    int rc = harness_run(h, "scctl", args, out, sizeof out);

    if (rc != 0)
        fprintf(stderr, "scctl %s: exit %d: %s\n", args[0], rc, out);
    return rc == 0 ? 0 : -1;
}

static int import(struct harness *h, const char *json)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof path, "%s/master.json", harness_dir(h));
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(json, f);
    if (fclose(f) != 0)
        return -1;
    const char *args[] = {"import", path, NULL};
    return scctl(h, args);
}

/* First value of the first row of sql into buf (""), 0 or -1. */
static int sql_text(struct harness *h, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int sql_text(struct harness *h, char *buf, size_t len, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    PGresult *res;
    int rc = -1;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    buf[0] = '\0';
    res = PQexec(harness_pg(h), sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
        rc = 0;
    } else {
        fprintf(stderr, "sql failed: %s: %s\n", sql, PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}

/* harness_wait_sql with a formatted statement. */
static bool wait_sql(struct harness *h, long expected, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool wait_sql(struct harness *h, long expected, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return harness_wait_sql(h, sql, expected, WAIT_MS);
}

/* Opens a ticket in SQL; its id into id. */
static int open_ticket(struct harness *h, char *id, size_t len, const char *site,
                       const char *skill, int grade, bool remote_ok)
{
    return sql_text(h, id, len,
                    "SELECT ticket_id FROM sc_ticket_open('{\"source\": \"rule\", "
                    "\"source_ref\": \"test\", \"site_id\": \"%s\", \"category\": \"fault\", "
                    "\"severity\": \"major\", \"skill\": \"%s\", \"min_grade\": %d, "
                    "\"remote_ok\": %s}'::jsonb)",
                    site, skill, grade, remote_ok ? "true" : "false");
}

/*
 * Waits for the next offer on any orders topic; it must be for ticket and
 * go to `to` (sc/v1/engineers/ID/orders or sc/v1/partners/ID/orders) in
 * mode. The order id into order. 0 or -1.
 */
static int expect_offer(struct harness_mqtt *m, const char *ticket, const char *to,
                        const char *mode, char *order, size_t len)
{
    char *topic = NULL;
    char *payload = harness_mqtt_wait(m, "/orders", WAIT_MS, &topic);
    cJSON *j = NULL;
    int rc = -1;

    if (payload == NULL) {
        fprintf(stderr, "no offer for %s (expected to %s)\n", ticket, to);
        goto out;
    }
    j = cJSON_Parse(payload);
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "ticket_id"));
    const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(j, "order_id"));
    const char *md = cJSON_GetStringValue(cJSON_GetObjectItem(j, "mode"));
    if (t == NULL || o == NULL || md == NULL || strcmp(t, ticket) != 0 ||
        strstr(topic, to) == NULL || strcmp(md, mode) != 0) {
        fprintf(stderr, "unexpected offer on %s: %s (expected %s to %s in %s)\n", topic,
                payload, ticket, to, mode);
        goto out;
    }
    snprintf(order, len, "%s", o);
    rc = 0;
out:
    cJSON_Delete(j);
    free(payload);
    free(topic);
    return rc;
}

/* No further offer arrives within ms. */
static bool no_offer(struct harness_mqtt *m, int ms)
{
    char *topic = NULL;
    char *payload = harness_mqtt_wait(m, "/orders", ms, &topic);

    if (payload != NULL)
        fprintf(stderr, "unexpected offer on %s: %s\n", topic, payload);
    free(payload);
    free(topic);
    return payload == NULL;
}

/* Waits for a message on sc/v1/rejected with reason. */
static bool expect_reject(struct harness_mqtt *m, const char *reason)
{
    char *payload = harness_mqtt_wait(m, "sc/v1/rejected", WAIT_MS, NULL);
    cJSON *j = payload ? cJSON_Parse(payload) : NULL;
    const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(j, "reason"));
    bool ok = r != NULL && strcmp(r, reason) == 0;

    if (!ok)
        fprintf(stderr, "expected a reject %s, got %s\n", reason, payload ? payload : "nothing");
    cJSON_Delete(j);
    free(payload);
    return ok;
}

/* The payload of an event; ts "now" unless given. */
static void event_json(char *buf, size_t len, const char *order, const char *event,
                       const char *extra)
{
    char ts[TIME_RFC3339_LEN];

    time_format_rfc3339(time_now_us(), ts, sizeof ts);
    snprintf(buf, len, "{\"order_id\": \"%s\", \"event\": \"%s\", \"ts\": \"%s\"%s%s}", order,
             event, ts, extra ? ", " : "", extra ? extra : "");
}

static int send_event(struct harness_mqtt *m, const char *kind, const char *who,
                      const char *order, const char *event, const char *extra)
{
    char topic[128], payload[512];

    snprintf(topic, sizeof topic, "sc/v1/%s/%s/events", kind, who);
    event_json(payload, sizeof payload, order, event, extra);
    return harness_mqtt_publish(m, topic, payload, 1);
}

/* GET path from the metrics listener of pid: the body into buf (NUL-
 * terminated, headers included), the HTTP status returned; -1. */
static int http_get(struct harness *h, pid_t pid, const char *path, char *buf, size_t len)
{
    int port = harness_metrics_port(h, pid);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[128];
    size_t n = 0;
    ssize_t r;
    int status = -1;

    buf[0] = '\0';
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || port <= 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto out;
    while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) == 0 && n > 12)
        status = atoi(buf + 9);
out:
    if (fd >= 0)
        close(fd);
    return status;
}

/* Value of one sample (name with labels, as rendered) from /metrics; -1. */
static double metric(struct harness *h, pid_t pid, const char *sample)
{
    static char buf[65536];

    if (http_get(h, pid, "/metrics", buf, sizeof buf) != 200)
        return -1;
    for (char *p = strstr(buf, sample); p != NULL; p = strstr(p + 1, sample)) {
        /* At the start of a line and followed by the value. */
        if ((p == buf || p[-1] == '\n') && p[strlen(sample)] == ' ')
            return strtod(p + strlen(sample) + 1, NULL);
    }
    return -1;
}

/* Polls a sample of /metrics until it has the value expected. */
static bool wait_metric(struct harness *h, pid_t pid, const char *sample, double expected)
{
    double v = -1;

    for (int i = 0; i < WAIT_MS / 50; i++) {
        v = metric(h, pid, sample);
        if (v == expected)
            return true;
        usleep(50 * 1000);
    }
    fprintf(stderr, "metric %s is %g, expected %g\n", sample, v, expected);
    return false;
}

/* /healthz answers 200: connected to the database and the broker. */
static bool wait_healthy(struct harness *h, pid_t pid)
{
    char buf[512];

    for (int i = 0; i < WAIT_MS / 50; i++) {
        if (http_get(h, pid, "/healthz", buf, sizeof buf) == 200)
            return true;
        usleep(50 * 1000);
    }
    fprintf(stderr, "program %d not healthy\n", (int)pid);
    return false;
}

int main(void)
{
    struct harness *h = harness_start();
    struct harness_mqtt *obs = NULL, *app = NULL;
    pid_t pid = -1, pid2 = -1;
    char t1[16], t2[16], t3[16], t4[16], t5[16], none[16], w[16], w2[16], tmp[64];
    char accept[512];
    int rc = 1;

    CHECK(h != NULL);
    {
        const char *args[] = {"migrate", NULL};
        CHECK(scctl(h, args) == 0);
    }
    CHECK(import(h, master) == 0);

    obs = harness_mqtt_connect(h, "test-observer");
    app = harness_mqtt_connect(h, "test-field-app");
    CHECK(obs != NULL && app != NULL);
    CHECK(harness_mqtt_subscribe(obs, "sc/v1/engineers/+/orders") == 0);
    CHECK(harness_mqtt_subscribe(obs, "sc/v1/partners/+/orders") == 0);
    CHECK(harness_mqtt_subscribe(obs, "sc/v1/rejected") == 0);

    /* Nobody qualifies (metering in HB: only a partner whose certification
     * ended): manual at once, escalated to level 1. Opened before the
     * dispatcher starts: its first sweep finds it. */
    CHECK(open_ticket(h, none, sizeof none, "S2", "metering", 1, false) == 0);

    {
        const char *env[] = {"SC_SWEEP_MS=500", NULL};
        pid = harness_spawn(h, "sc-dispatch", env, NULL);
        CHECK(pid > 0);
    }
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'manual'", none));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM escalation WHERE ticket_id = '%s' AND level = 1", none));
    CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order") == 0);

    /* T1, relay protection grade 2 in HA: E-low (grade 1) sits on the site
     * and E-hb (HB only) is close too; the offer goes to E-near alone. */
    CHECK(open_ticket(h, t1, sizeof t1, "S1", "relay_protection", 2, false) == 0);
    CHECK(expect_offer(obs, t1, "engineers/E-near/", "onsite", w, sizeof w) == 0);
    CHECK(no_offer(obs, 500));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'offered'", t1));
    CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order") == 1);

    /* Another engineer accepting it: not_your_order. */
    CHECK(send_event(app, "engineers", "E-far", w, "accept", NULL) == 0);
    CHECK(expect_reject(obs, "not_your_order"));

    /* E-near accepts: order accepted, ticket assigned, respond clock stopped. */
    event_json(accept, sizeof accept, w, "accept", "\"eta\": \"2030-01-01T00:00:00Z\"");
    CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-near/events", accept, 1) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM work_order WHERE id = '%s' AND state = 'accepted'", w));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t1));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s' AND clock = 'respond'"
                         " AND state = 'stopped'", t1));
    /* The same accept again: applied once, not rejected. en_route after it
     * shows it was processed (one instance keeps a sender's order). */
    CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-near/events", accept, 1) == 0);
    CHECK(send_event(app, "engineers", "E-near", w, "en_route", NULL) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'en_route'", t1));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM order_event WHERE order_id = '%s' AND event = 'accept'", w));
    CHECK(harness_mqtt_wait(obs, "sc/v1/rejected", 300, NULL) == NULL);
    CHECK(send_event(app, "engineers", "E-near", w, "on_site", NULL) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'on_site'", t1));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM sla_clock WHERE ticket_id = '%s' AND clock = 'arrive'"
                         " AND state = 'stopped'", t1));
    CHECK(send_event(app, "engineers", "E-near", w, "resolved", "\"first_time_fix\": true") == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'resolved'", t1));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM work_order WHERE id = '%s' AND state = 'resolved'", w));

    /* T2: E-near is free again and gets it; its decline re-offers the
     * ticket to the next candidate, E-far. */
    CHECK(open_ticket(h, t2, sizeof t2, "S1", "relay_protection", 2, false) == 0);
    CHECK(expect_offer(obs, t2, "engineers/E-near/", "onsite", w, sizeof w) == 0);
    CHECK(send_event(app, "engineers", "E-near", w, "decline", "\"reason\": \"too busy\"") == 0);
    CHECK(expect_offer(obs, t2, "engineers/E-far/", "onsite", w2, sizeof w2) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM work_order WHERE id = '%s' AND state = 'declined'", w));
    CHECK(send_event(app, "engineers", "E-far", w2, "accept", NULL) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t2));

    /* Expiry: offers of 1.5 s, two attempts. E-near lets T3's offer
     * expire; E-far is full (T2): the partner is next; when its offer
     * expires too, the ticket goes to manual with escalation level 1. */
    CHECK(import(h, "{\"settings\": {\"offer_timeout_s\": 1.5, \"max_offer_attempts\": 2}}") == 0);
    CHECK(open_ticket(h, t3, sizeof t3, "S1", "relay_protection", 2, false) == 0);
    CHECK(expect_offer(obs, t3, "engineers/E-near/", "onsite", w, sizeof w) == 0);
    CHECK(expect_offer(obs, t3, "partners/P-ha/", "outsourced", w2, sizeof w2) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM work_order WHERE id = '%s' AND state = 'expired'", w));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'manual'", t3));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM work_order WHERE id = '%s' AND state = 'expired'", w2));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM escalation WHERE ticket_id = '%s' AND level = 1", t3));
    CHECK(no_offer(obs, 500));
    CHECK(wait_metric(h, pid, "sc_dispatch_offers_total{mode=\"onsite\",result=\"expired\"}", 1));
    CHECK(wait_metric(h, pid, "sc_dispatch_offers_total{mode=\"outsourced\",result=\"expired\"}", 1));
    CHECK(import(h, "{\"settings\": {\"offer_timeout_s\": 60, \"max_offer_attempts\": 3}}") == 0);

    /* Remote handling allowed: the remote engineer first. A remote order
     * has no arrival: en_route is a bad_transition. */
    CHECK(open_ticket(h, t4, sizeof t4, "S1", "relay_protection", 2, true) == 0);
    CHECK(expect_offer(obs, t4, "engineers/E-rem/", "remote", w, sizeof w) == 0);
    CHECK(send_event(app, "engineers", "E-rem", w, "accept", NULL) == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t4));
    CHECK(send_event(app, "engineers", "E-rem", w, "en_route", NULL) == 0);
    CHECK(expect_reject(obs, "bad_transition"));
    /* Unresolved remotely: the same ticket, a new order on site. */
    CHECK(send_event(app, "engineers", "E-rem", w, "unresolved", "\"notes\": \"needs a visit\"") == 0);
    CHECK(expect_offer(obs, t4, "engineers/E-near/", "onsite", w2, sizeof w2) == 0);
    CHECK(send_event(app, "engineers", "E-near", w2, "accept", NULL) == 0);
    CHECK(send_event(app, "engineers", "E-near", w2, "on_site", NULL) == 0);
    CHECK(send_event(app, "engineers", "E-near", w2, "resolved", "\"first_time_fix\": false") == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'resolved'", t4));
    CHECK(harness_sql_long(h, "SELECT count(*) FROM work_order WHERE state = 'unresolved'") == 1);

    /* Status: E-near goes off; E-far is still full: T5 goes to the partner,
     * which accepts on its own events topic. */
    {
        char st[256], ts[TIME_RFC3339_LEN];

        time_format_rfc3339(time_now_us(), ts, sizeof ts);
        snprintf(st, sizeof st, "{\"ts\": \"%s\", \"state\": \"off\", \"lat\": 34.8, \"lon\": 113.7}", ts);
        CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-near/status", st, 1) == 0);
        CHECK(wait_sql(h, 1, "SELECT count(*) FROM engineer_state WHERE engineer_id = 'E-near'"
                             " AND state = 'off' AND lat = 34.8"));
        /* An engineer the master data does not know: bad_topic. */
        CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-ghost/status", st, 1) == 0);
        CHECK(expect_reject(obs, "bad_topic"));
    }
    CHECK(open_ticket(h, t5, sizeof t5, "S1", "relay_protection", 2, false) == 0);
    CHECK(expect_offer(obs, t5, "partners/P-ha/", "outsourced", w, sizeof w) == 0);
    CHECK(send_event(app, "partners", "P-ha", w, "accept", "\"technician\": \"Wang\"") == 0);
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM work_order WHERE id = '%s' AND state = 'accepted'"
                         " AND technician = 'Wang'", w));
    CHECK(wait_sql(h, 1, "SELECT count(*) FROM ticket WHERE id = '%s' AND state = 'assigned'", t5));

    /* Broken input is rejected with the contract's reason, and the
     * service goes on. */
    CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-near/events", "{\"order_id\": ", 1) == 0);
    CHECK(expect_reject(obs, "bad_json"));
    CHECK(harness_mqtt_publish(app, "sc/v1/partners/P-ha/events",
                               "{\"order_id\": \"W999999\", \"event\": \"accept\", "
                               "\"ts\": \"2026-01-01T00:00:00Z\"}", 1) == 0);
    CHECK(expect_reject(obs, "unknown_order"));

    /* Two instances, six tickets at once: nobody is over capacity and no
     * ticket has two live orders. E-near reports busy, which with spare
     * capacity still takes offers (issue 5); grade 1 lets E-low in; free:
     * E-near 1, E-low 1, P-ha 4 = 6. */
    {
        char st[256], ts[TIME_RFC3339_LEN];
        const char *env[] = {"SC_SWEEP_MS=500", "SC_INSTANCE=test2", NULL};

        pid2 = harness_spawn(h, "sc-dispatch", env, NULL);
        CHECK(pid2 > 0);
        time_format_rfc3339(time_now_us(), ts, sizeof ts);
        snprintf(st, sizeof st, "{\"ts\": \"%s\", \"state\": \"busy\"}", ts);
        CHECK(harness_mqtt_publish(app, "sc/v1/engineers/E-near/status", st, 1) == 0);
        CHECK(wait_sql(h, 1, "SELECT count(*) FROM engineer_state WHERE engineer_id = 'E-near'"
                             " AND state = 'busy' AND lat = 34.8"));
        /* Let the second instance connect before the burst. */
        CHECK(wait_healthy(h, pid2));
        CHECK(harness_sql_exec(h,
            "SELECT sc_ticket_open(jsonb_build_object('source', 'rule', 'site_id', 'S1',"
            " 'category', 'fault', 'severity', 'minor', 'skill', 'relay_protection',"
            " 'min_grade', 1, 'source_ref', 'burst-' || g)) FROM generate_series(1, 6) g") == 0);
        CHECK(wait_sql(h, 6, "SELECT count(*) FROM ticket WHERE source_ref LIKE 'burst-%%'"
                             " AND state = 'offered'"));
        CHECK(harness_sql_long(h,
            "SELECT count(*) FROM (SELECT engineer_id FROM work_order WHERE state IN"
            " ('offered', 'accepted', 'en_route', 'on_site') AND engineer_id IS NOT NULL"
            " GROUP BY engineer_id HAVING count(*) > (SELECT max_concurrent FROM engineer"
            " WHERE id = engineer_id)) x") == 0);
        CHECK(harness_sql_long(h,
            "SELECT count(*) FROM (SELECT partner_id FROM work_order WHERE state IN"
            " ('offered', 'accepted', 'en_route', 'on_site') AND partner_id IS NOT NULL"
            " GROUP BY partner_id HAVING count(*) > (SELECT capacity FROM partner"
            " WHERE id = partner_id)) x") == 0);
        CHECK(harness_sql_long(h,
            "SELECT count(*) FROM (SELECT ticket_id FROM work_order WHERE state IN"
            " ('offered', 'accepted', 'en_route', 'on_site') GROUP BY ticket_id"
            " HAVING count(*) > 1) x") == 0);
        /* A seventh waits: everybody qualified is full. */
        CHECK(harness_sql_exec(h,
            "SELECT sc_ticket_open('{\"source\": \"rule\", \"site_id\": \"S1\", \"category\":"
            " \"fault\", \"skill\": \"relay_protection\", \"min_grade\": 1,"
            " \"source_ref\": \"burst-7\"}')") == 0);
        usleep(1500 * 1000);
        CHECK(sql_text(h, tmp, sizeof tmp, "SELECT state FROM ticket WHERE source_ref = 'burst-7'") == 0);
        CHECK(strcmp(tmp, "new") == 0);
        CHECK(harness_sql_long(h,
            "SELECT count(*) FROM work_order WHERE engineer_id = 'E-near' AND state = 'offered'") == 1);
        /* The shift wins over the status: outside it an engineer is off,
         * inside it busy stays busy (SQL calendar semantics). */
        CHECK(harness_sql_exec(h, "INSERT INTO calendar (id, weekdays) VALUES ('never', '{}')") == 0);
        CHECK(harness_sql_exec(h, "UPDATE engineer SET shift = 'never' WHERE id = 'E-hb'") == 0);
        CHECK(harness_sql_long(h,
            "SELECT count(*) FROM jsonb_array_elements(sc_dispatch_snapshot(10, 0)->'engineers') e"
            " WHERE (e->>'id' = 'E-hb' AND e->>'state' = 'off')"
            "    OR (e->>'id' = 'E-near' AND e->>'state' = 'busy')") == 2);
    }

    /* Metrics of the first instance. */
    CHECK(metric(h, pid, "sc_dispatch_offers_total{mode=\"onsite\",result=\"accepted\"}") >= 2);
    CHECK(metric(h, pid, "sc_dispatch_offers_total{mode=\"onsite\",result=\"declined\"}") == 1);
    CHECK(metric(h, pid, "sc_dispatch_offers_total{mode=\"remote\",result=\"offered\"}") == 1);
    CHECK(metric(h, pid, "sc_dispatch_decision_seconds_count") >= 6);

    /* SIGTERM: both stop cleanly with status 0. */
    CHECK(harness_stop_program(h, pid2, SIGTERM) == 0);
    pid2 = -1;
    CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
    pid = -1;

    /* Expiry timers come back after a restart: the burst's six open
     * offers, made to expire in a second while no dispatcher runs, expire
     * once a new one starts (loaded from work_order at connect). */
    CHECK(harness_sql_exec(h, "UPDATE work_order SET offer_expires_at = now() + interval '1 second'"
                              " WHERE state = 'offered'") == 0);
    {
        const char *env[] = {"SC_SWEEP_MS=500", NULL};
        pid = harness_spawn(h, "sc-dispatch", env, NULL);
        CHECK(pid > 0);
    }
    CHECK(wait_sql(h, 6, "SELECT count(*) FROM work_order w JOIN ticket t ON t.id = w.ticket_id"
                         " WHERE t.source_ref LIKE 'burst-%%' AND w.state = 'expired'"));
    CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
    pid = -1;
    CHECK(harness_check_logs(h) == 0);
    rc = 0;
out:
    harness_mqtt_free(obs);
    harness_mqtt_free(app);
    harness_stop(h);
    fprintf(stderr, "dispatch: %s\n", rc == 0 ? "ok" : "FAILED");
    return rc;
}

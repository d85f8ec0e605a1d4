/*
 * scctl part 1 against a real PostgreSQL: migrate (twice, and three at
 * once), import of the demo country (twice: the second changes nothing),
 * bad files that must fail naming the entry and leave the database as it
 * was, and API tokens.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* Output must contain text (printed on failure). */
#define CHECK_OUT(out, text)                                                \
    do {                                                                    \
        if (strstr((out), (text)) == NULL) {                                \
            fprintf(stderr, "%s:%d: output lacks \"%s\":\n%s\n", __FILE__,  \
                    __LINE__, (text), (out));                               \
            goto out;                                                       \
        }                                                                   \
    } while (0)

#define SCCTL SC_BIN_DIR "/scctl"

static char out[65536];

/* Runs a shell command line (scctl is $SCCTL) in the test environment;
 * returns its exit status, output (stdout and stderr) in `out`. */
static int sh(struct harness *h, const char *cmd)
{
    char line[4096];
    const char *args[] = {"-c", line, NULL};

    snprintf(line, sizeof line, "SCCTL=%s; %s", SCCTL, cmd);
    return harness_run(h, "/bin/sh", args, out, sizeof out);
}

/* scctl with args; both output streams in `out`. */
static int scctl(struct harness *h, const char *const *args)
{
    return harness_run(h, SCCTL, args, out, sizeof out);
}

/* The repository's root, from this file's path (CMake compiles by full path). */
static const char *source_root(void)
{
    static char root[1024];
    const char *tail = "tests/integration/test_scctl.c";
    size_t n = strlen(__FILE__), t = strlen(tail);

    if (n < t || strcmp(__FILE__ + n - t, tail) != 0)
        return ".";
    snprintf(root, sizeof root, "%.*s", (int)(n - t), __FILE__);
    return root;
}

/* Is every `"key":\tN` of a JSON output 0? */
static bool all_zero(const char *text, const char *key)
{
    char pat[64];
    const char *p = text;

    snprintf(pat, sizeof pat, "\"%s\":\t", key);
    while ((p = strstr(p, pat)) != NULL) {
        p += strlen(pat);
        if (p[0] != '0' || (p[1] >= '0' && p[1] <= '9'))
            return false;
    }
    return true;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* md5 of every master-data row (master_version aside). */
static int snapshot(struct harness *h, char *buf, size_t len)
{
    static const char sql[] =
        "SELECT md5(string_agg(j, '|' ORDER BY j)) FROM ("
        " SELECT row_to_json(x)::text j FROM setting x UNION ALL"
        " SELECT row_to_json(x)::text FROM province x UNION ALL"
        " SELECT row_to_json(x)::text FROM calendar x UNION ALL"
        " SELECT row_to_json(x)::text FROM customer x UNION ALL"
        " SELECT row_to_json(x)::text FROM site x UNION ALL"
        " SELECT row_to_json(x)::text FROM device x UNION ALL"
        " SELECT row_to_json(x)::text FROM engineer x UNION ALL"
        " SELECT row_to_json(x)::text FROM partner x UNION ALL"
        " SELECT row_to_json(x)::text FROM alert_rule x UNION ALL"
        " SELECT row_to_json(x)::text FROM alarm_code x UNION ALL"
        " SELECT row_to_json(x)::text FROM request_rule x UNION ALL"
        " SELECT row_to_json(x)::text FROM sla_policy x UNION ALL"
        " SELECT row_to_json(x)::text FROM escalation_level x) s";
    PGconn *c = harness_pg(h);
    PGresult *r = c ? PQexec(c, sql) : NULL;
    int rc = -1;

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
        rc = 0;
    } else {
        fprintf(stderr, "snapshot: %s\n", c ? PQerrorMessage(c) : "no connection");
    }
    PQclear(r);
    return rc;
}

struct bad_file {
    const char *name;
    const char *json;
    const char *error; /* expected in the output */
};

/* Each must fail with exit 1, name the entry, and change nothing. */
static const struct bad_file bad_files[] = {
    {"fk", "{\"devices\": [{\"id\": \"D0001\", \"site_id\": \"S001\", \"model\": \"XJ-PR900\"},"
           " {\"id\": \"D9999\", \"site_id\": \"S999\", \"model\": \"XJ-PR900\"}]}",
     "scctl: import: devices[1] (id \"D9999\"): site_id \"S999\" is not a known site"},
    /* The first sections are valid and would change rows: all or nothing. */
    {"late", "{\"provinces\": [{\"code\": \"HA\", \"name\": \"Renamed\"}],"
             " \"sites\": [{\"id\": \"S001\", \"customer_id\": \"C999\", \"province\": \"HA\"}]}",
     "sites[0] (id \"S001\"): customer_id \"C999\" is not a known customer"},
    {"coverage", "{\"engineers\": [{\"id\": \"E001\", \"province\": \"HA\", \"coverage\": [\"HA\", \"XX\"]}]}",
     "engineers[0] (id \"E001\"): coverage \"XX\" is not a known province"},
    {"shift", "{\"engineers\": [{\"id\": \"E001\", \"province\": \"HA\", \"shift\": \"cn-1999\"}]}",
     "shift \"cn-1999\" is not a known calendar"},
    {"tz", "{\"calendars\": [{\"id\": \"x\", \"tz\": \"Mars/Olympus_Mons\"}]}",
     "calendars[0] (id \"x\"): tz \"Mars/Olympus_Mons\" is not a time zone"},
    {"unknown_field", "{\"customers\": [{\"id\": \"C001\", \"colour\": \"red\"}]}",
     "customers[0] (id \"C001\"): unknown field \"colour\""},
    {"unknown_section", "{\"colours\": []}", "unknown section \"colours\""},
    {"setting", "{\"settings\": {\"travel_kmh\": -5}}", "settings: travel_kmh: must be greater than 0"},
    {"grade", "{\"partners\": [{\"id\": \"P001\", \"skills\": {\"metering\": 5}}]}",
     "partners[0] (id \"P001\"): skills.metering: must be a grade 1 to 4"},
    {"lat", "{\"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 134.7}]}",
     "provinces[0] (code \"HA\"): lat: must be between -90 and 90"},
    {"dup", "{\"customers\": [{\"id\": \"C1\"}, {\"id\": \"C2\"}, {\"id\": \"C1\"}]}",
     "customers[2] (id \"C1\"): duplicate of customers[0]"},
    {"not_json", "{\"provinces\": [", "not valid JSON"},
    {"dup_key", "{\"provinces\": [], \"provinces\": []}", "key \"provinces\" appears twice"},
};

int main(void)
{
    struct harness *h = harness_start();
    char country[1200], path[1200], before[64], after[64];
    regex_t token_re;
    bool re_ok = false;
    int rc = 1;

    CHECK(h != NULL);
    snprintf(country, sizeof country, "%sdeploy/demo/country.json", source_root());

    /* ---- usage and configuration ---- */
    {
        const char *help[] = {"--help", NULL};
        const char *bogus[] = {"frobnicate", NULL};
        const char *flag[] = {"--frobnicate", "migrate", NULL};

        CHECK(scctl(h, help) == 0);
        CHECK_OUT(out, "usage: scctl");
        CHECK(scctl(h, bogus) == 2);
        CHECK(scctl(h, flag) == 2);
        CHECK(sh(h, "SC_LOG_LEVEL=shouty $SCCTL migrate") == 1);
        CHECK_OUT(out, "SC_LOG_LEVEL");
    }

    /* ---- migrate: three at once on a fresh database, then twice here ---- */
    CHECK(harness_sql_exec(h, "CREATE DATABASE race") == 0);
    CHECK(sh(h, "export SC_PG_DSN=\"$SC_PG_DSN dbname=race\";"
                " $SCCTL migrate & p1=$!; $SCCTL migrate & p2=$!; $SCCTL migrate;"
                " s=$?; wait $p1 || s=1; wait $p2 || s=1; exit $s") == 0);
    CHECK(sh(h, "SC_PG_DSN=\"$SC_PG_DSN dbname=race\" $SCCTL migrate") == 0);
    CHECK_OUT(out, "schema is current");
    {
        const char *args[] = {"migrate", NULL};

        CHECK(scctl(h, args) == 0);
        CHECK_OUT(out, "applied 001_base");
        CHECK(scctl(h, args) == 0);
        CHECK_OUT(out, "schema is current (version ");
        CHECK(harness_sql_long(h, "SELECT count(*) FROM schema_migration WHERE version = 1") == 1);
    }

    /* ---- import the demo country, twice ---- */
    {
        const char *args[] = {"import", country, NULL};
        const char *json_args[] = {"--json", "import", country, NULL};

        CHECK(scctl(h, args) == 0);
        CHECK_OUT(out, "master data version 1");
        CHECK(harness_sql_long(h, "SELECT count(*) FROM province") == 3);
        CHECK(harness_sql_long(h, "SELECT count(*) FROM device") >= 40);
        CHECK(harness_sql_long(h, "SELECT count(*) FROM engineer WHERE kind = 'remote'") == 3);
        CHECK(harness_sql_long(h, "SELECT count(*) FROM sla_policy") == 9);
        CHECK(harness_sql_long(h, "SELECT count(*) FROM calendar WHERE id = 'cn-2026'"
                                  " AND day_start = '08:30' AND weekdays = '{1,2,3,4,5}'") == 1);
        /* coverage defaults to the engineer's own province */
        CHECK(harness_sql_long(h, "SELECT count(*) FROM engineer WHERE kind = 'onsite'"
                                  " AND NOT province = ANY (coverage)") == 0);
        CHECK(snapshot(h, before, sizeof before) == 0);

        CHECK(scctl(h, json_args) == 0);
        CHECK_OUT(out, "\"master_version\":\t2");
        CHECK(all_zero(out, "inserted") && all_zero(out, "updated"));
        CHECK(harness_sql_long(h, "SELECT version FROM master_version") == 2);
        /* Nothing but the version moved. */
        CHECK(snapshot(h, after, sizeof after) == 0);
        CHECK(strcmp(before, after) == 0);
    }

    /* ---- bad files: exit 1, the entry named, the database unchanged ---- */
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        const struct bad_file *b = &bad_files[i];
        const char *args[] = {"import", path, NULL};

        snprintf(path, sizeof path, "%s/bad_%s.json", harness_dir(h), b->name);
        CHECK(write_file(path, b->json) == 0);
        CHECK(snapshot(h, before, sizeof before) == 0);
        if (scctl(h, args) != 1) {
            fprintf(stderr, "bad file %s was accepted:\n%s\n", b->name, out);
            goto out;
        }
        CHECK_OUT(out, b->error);
        CHECK(snapshot(h, after, sizeof after) == 0);
        if (strcmp(before, after) != 0 ||
            harness_sql_long(h, "SELECT version FROM master_version") != 2) {
            fprintf(stderr, "bad file %s changed the database\n", b->name);
            goto out;
        }
    }
    {
        const char *args[] = {"import", "/nonexistent/file.json", NULL};
        const char *none[] = {"import", NULL};

        CHECK(scctl(h, args) == 1);
        CHECK(scctl(h, none) == 2);
        /* Over 64 MiB: refused before it is read. */
        snprintf(path, sizeof path, "%s/huge.json", harness_dir(h));
        CHECK(write_file(path, "{}") == 0);
        CHECK(truncate(path, 64 * 1024 * 1024 + 1) == 0);
        {
            const char *huge[] = {"import", path, NULL};

            CHECK(scctl(h, huge) == 1);
            CHECK_OUT(out, "64 MiB");
        }
        CHECK(unlink(path) == 0);
    }

    /* ---- tokens ---- */
    CHECK(regcomp(&token_re, "^sct_[0-9a-f]{64}\n$", REG_EXTENDED) == 0);
    re_ok = true;
    /* stdout alone holds the token */
    CHECK(sh(h, "$SCCTL token create --role dispatcher --zone HA 2>/dev/null") == 0);
    CHECK(regexec(&token_re, out, 0, NULL, 0) == 0);
    {
        char sql[512];

        /* The regex matched: out is "sct_" + 64 hex digits + "\n". */
        snprintf(sql, sizeof sql,
                 "SELECT id FROM api_token WHERE token_hash = sha256(convert_to('%.68s', 'UTF8'))"
                 " AND role = 'dispatcher' AND zone = 'HA' AND revoked_at IS NULL", out);
        CHECK(harness_sql_long(h, sql) == 1);
    }
    CHECK(sh(h, "$SCCTL token create --role engineer --engineer E001 2>/dev/null") == 0);
    CHECK(regexec(&token_re, out, 0, NULL, 0) == 0);
    CHECK(sh(h, "$SCCTL token create --role partner --partner P001 2>/dev/null") == 0);
    CHECK(sh(h, "$SCCTL token create --role hq 2>/dev/null") == 0);
    CHECK(sh(h, "$SCCTL token create --role dispatcher") == 2);   /* no --zone */
    CHECK(sh(h, "$SCCTL token create --role emperor") == 2);
    CHECK(sh(h, "$SCCTL token create --role hq --bogus") == 2);
    CHECK(sh(h, "$SCCTL token create --role partner --partner P999") == 1);
    CHECK_OUT(out, "P999");
    CHECK(sh(h, "$SCCTL token create --role engineer --engineer E999") == 1);
    CHECK(harness_sql_long(h, "SELECT count(*) FROM api_token") == 4);
    CHECK(sh(h, "$SCCTL token revoke 1") == 0);
    CHECK(harness_sql_long(h, "SELECT count(*) FROM api_token WHERE id = 1"
                              " AND revoked_at IS NOT NULL") == 1);
    CHECK(sh(h, "$SCCTL token revoke 1") == 0);
    CHECK(sh(h, "$SCCTL token revoke 99") == 1);
    CHECK(sh(h, "$SCCTL token revoke one") == 2);
    CHECK(sh(h, "$SCCTL token list") == 0);
    CHECK_OUT(out, "dispatcher");
    CHECK(strstr(out, "sct_") == NULL);
    CHECK(sh(h, "$SCCTL --json token list 2>/dev/null") == 0);
    CHECK_OUT(out, "\"items\"");
    CHECK_OUT(out, "\"engineer_id\":\t\"E001\"");
    CHECK(strstr(out, "sct_") == NULL);

    CHECK(harness_check_logs(h) == 0);
    rc = 0;
out:
    if (re_ok)
        regfree(&token_re);
    harness_stop(h);
    fprintf(stderr, "scctl: %s\n", rc == 0 ? "ok" : "FAILED");
    return rc;
}

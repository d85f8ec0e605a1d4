/*
 * SQL helpers: one synchronous libpq connection per harness, for tests to
 * prepare data and check what the programs wrote.
 */
#include <stdlib.h>
#include <string.h>

#include "harness_internal.h"

/* Between two polls of harness_wait_sql(). */
#define WAIT_POLL_MS 50

void harness_pg_close(struct harness *h)
{
    PQfinish(h->pg);
    h->pg = NULL;
}

/* The connection, reconnected if it is broken; NULL with a message (if
 * verbose) when the server cannot be reached. */
static PGconn *connection(struct harness *h, bool verbose)
{
    if (h->pg != NULL && PQstatus(h->pg) == CONNECTION_OK)
        return h->pg;
    harness_pg_close(h);
    h->pg = PQconnectdb(h->dsn);
    if (PQstatus(h->pg) != CONNECTION_OK) {
        if (verbose)
            harness_log("connect %s: %s", h->dsn, PQerrorMessage(h->pg));
        harness_pg_close(h);
        return NULL;
    }
    return h->pg;
}

PGconn *harness_pg(struct harness *h)
{
    return connection(h, true);
}

/* Runs sql; the result (caller clears) if its status is one of ok1/ok2,
 * else NULL with a message if verbose. */
static PGresult *run(struct harness *h, const char *sql, bool verbose,
                     ExecStatusType ok1, ExecStatusType ok2)
{
    PGconn *conn = connection(h, verbose);
    PGresult *res;
    ExecStatusType st;

    if (conn == NULL)
        return NULL;
    res = PQexec(conn, sql);
    st = PQresultStatus(res);
    if (st == ok1 || st == ok2)
        return res;
    if (verbose)
        harness_log("sql failed: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    /* A server restart breaks the connection; the next call reconnects. */
    if (PQstatus(conn) != CONNECTION_OK)
        harness_pg_close(h);
    return NULL;
}

static long sql_long(struct harness *h, const char *sql, bool verbose)
{
    PGresult *res = run(h, sql, verbose, PGRES_TUPLES_OK, PGRES_TUPLES_OK);
    long value = -1;
    char *end;

    if (res == NULL)
        return -1;
    if (PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
        if (verbose)
            harness_log("sql gave no value: %s", sql);
        goto out;
    }
    value = strtol(PQgetvalue(res, 0, 0), &end, 10);
    /* Booleans read as 1/0, so a test can wait for an EXISTS. */
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        value = 1;
    else if (strcmp(PQgetvalue(res, 0, 0), "f") == 0)
        value = 0;
    else if (*end != '\0' && *end != '.') {
        if (verbose)
            harness_log("sql value is not a number: %s: %s", sql, PQgetvalue(res, 0, 0));
        value = -1;
    }
out:
    PQclear(res);
    return value;
}

long harness_sql_long(struct harness *h, const char *sql)
{
    return sql_long(h, sql, true);
}

int harness_sql_exec(struct harness *h, const char *sql)
{
    PGresult *res = run(h, sql, true, PGRES_COMMAND_OK, PGRES_TUPLES_OK);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

bool harness_wait_sql(struct harness *h, const char *sql, long expected,
                      int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    long value;

    for (;;) {
        /* Quiet while polling: the database may be restarting. */
        value = sql_long(h, sql, false);
        if (value == expected)
            return true;
        if (harness_now_ms() >= deadline)
            break;
        harness_sleep_ms(WAIT_POLL_MS);
    }
    harness_log("waited %d ms for %ld, last value %ld: %s", timeout_ms, expected,
                value, sql);
    /* Once more, verbose, to show an SQL error if there is one. */
    (void)sql_long(h, sql, true);
    return false;
}

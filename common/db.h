#ifndef SC_COMMON_DB_H
#define SC_COMMON_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

struct event_base;

/*
 * One PostgreSQL connection driven by libpq in non-blocking mode on a
 * libevent loop: the loop never waits on the database.
 *
 * Work is a FIFO of jobs, each one statement (a prepared statement or SQL
 * text with parameters), sent one at a time. A statement is its own
 * transaction unless it is one of a sequence the caller frames with BEGIN
 * and COMMIT jobs; the services avoid that by calling the sc_* SQL functions
 * (one statement, one transaction, one round trip).
 *
 * Connection loss: the module reconnects with exponential backoff (100 ms
 * doubling to 5 s), re-prepares every registered statement, re-issues every
 * LISTEN, calls the connect callback, then resends the job that was in
 * flight and the queued ones. A statement whose commit was in flight may
 * thus run twice: every statement the services send is idempotent for that
 * reason. A job whose statement fails in the server (an SQL error) is not
 * retried: its callback gets the error.
 *
 * All callbacks run on the loop thread. Not thread-safe: use from the loop
 * thread only.
 */

struct db;

/* Outcome of a job, valid during the callback only. */
struct db_reply {
	PGresult *res;        /* result of the statement; NULL on failure */
	const char *error;    /* NULL on success, else a one-line message */
	const char *sqlstate; /* SQLSTATE on a server error, else "" */
};

typedef void (*db_result_cb)(void *arg, const struct db_reply *r);
typedef void (*db_notify_cb)(void *arg, const char *channel, const char *payload);
/* Called after every (re)connect, once statements and LISTENs are in place. */
typedef void (*db_connect_cb)(void *arg);

/*
 * Makes the connection object and starts connecting. `name` labels log
 * lines. Returns NULL on allocation failure.
 */
struct db *db_new(struct event_base *base, const char *dsn, const char *name)
	__attribute__((warn_unused_result));

/* Closes the connection; pending callbacks are not called. NULL is a no-op. */
void db_free(struct db *db);

bool db_connected(const struct db *db);

/* Jobs queued or in flight. */
size_t db_pending(const struct db *db);

/* Adds a callback run after every (re)connect (in the order added). 0 or -1. */
int db_on_connect(struct db *db, db_connect_cb cb, void *arg)
	__attribute__((warn_unused_result));

/*
 * Registers a prepared statement (prepared now if connected, and after every
 * reconnect). Returns 0 or -1 (allocation failure, duplicate name).
 */
int db_prepare(struct db *db, const char *name, const char *sql, int nparams)
	__attribute__((warn_unused_result));

/* LISTENs on `channel` now and after every reconnect. Returns 0 or -1. */
int db_listen(struct db *db, const char *channel, db_notify_cb cb, void *arg)
	__attribute__((warn_unused_result));

/*
 * Queues a statement: `stmt` is the name of a registered prepared statement,
 * or, when `is_sql` is true, SQL text sent with PQsendQueryParams. Params
 * are text, NULL for SQL NULL; they are copied. cb may be NULL. Returns 0 or
 * -1 on allocation failure (cb is then not called).
 */
int db_exec(struct db *db, const char *stmt, bool is_sql, int nparams,
	    const char *const *values, db_result_cb cb, void *arg)
	__attribute__((warn_unused_result));

/* Shorthands. */
#define db_exec_prepared(db, name, n, vals, cb, arg) db_exec(db, name, false, n, vals, cb, arg)
#define db_exec_sql(db, sql, n, vals, cb, arg) db_exec(db, sql, true, n, vals, cb, arg)

#endif

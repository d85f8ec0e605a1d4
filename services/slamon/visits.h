#ifndef SC_SERVICES_SLAMON_VISITS_H
#define SC_SERVICES_SLAMON_VISITS_H

struct event_base;
struct db;

/*
 * Return visits (contract section 2.5, schema/033_return_visits.sql): one
 * libevent timer armed at the instant the next visit falls due or times
 * out. When it goes off, sc_return_visit_tick() works off what is due (in
 * the database, over partial indexes: no scan of tickets) and answers the
 * next instant. NOTIFY return_visit (a ticket resolved: its visit's due
 * instant) re-arms the timer when that is earlier. The wait is capped at
 * VISITS_MAX_WAIT_S so a changed setting (return_visit_timeout_s by an
 * import) takes effect without a notification.
 */

#define VISITS_MAX_WAIT_S 30

struct visits;

/* Registers the statement, the LISTEN and the connect hook on db. db and
 * base must outlive it. NULL on failure (logged). */
struct visits *visits_new(struct event_base *base, struct db *db)
	__attribute__((warn_unused_result));

/* Stops the timer (shutdown); a tick in flight still completes. */
void visits_stop(struct visits *v);

/* 1 while a tick is queued or running, else 0. */
int visits_in_flight(const struct visits *v);

/* Free after the loop stopped, before db_free. NULL is a no-op. */
void visits_free(struct visits *v);

#endif

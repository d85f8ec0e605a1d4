#ifndef SC_SERVICES_SLAMON_CLOCKS_H
#define SC_SERVICES_SLAMON_CLOCKS_H

struct event_base;
struct db;
struct metrics;

/*
 * The gauge sc_slamon_clocks_open{clock="respond"|"arrive"|"resolve"}
 * (contract section 5): running sla_clock rows per clock, refreshed every
 * CLOCKS_REFRESH_S by one count over the partial index of running clocks
 * (schema/006_slamon.sql), never per ticket, and only when the table
 * changed since the last count (sc_sla_clock_counts, schema/034_kpi.sql):
 * an idle monitor with a million open clocks counts nothing.
 */

#define CLOCKS_REFRESH_S 5

struct clocks;

/* Starts the refresh on db (the first once connected). db, base and m must
 * outlive it. NULL on failure (logged). */
struct clocks *clocks_new(struct event_base *base, struct db *db, struct metrics *m)
	__attribute__((warn_unused_result));

/* Stops refreshing (shutdown); a count in flight still completes. */
void clocks_stop(struct clocks *c);

/* Free after the loop stopped, before db_free. NULL is a no-op. */
void clocks_free(struct clocks *c);

#endif

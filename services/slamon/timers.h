#ifndef SC_SERVICES_SLAMON_TIMERS_H
#define SC_SERVICES_SLAMON_TIMERS_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct db;
struct metrics;

/*
 * SLA timers: loads the unfired rows of sla_timer that fall due within the
 * horizon (TIMERS_HORIZON_S) into a min-heap and fires each on time with
 * sc_sla_fire(id), which stores and publishes the warning, breach or
 * escalation once (its fired_at guard makes a repeat harmless).
 *
 * Loading: at every (re)connect, every TIMERS_HORIZON_S / 2, and on NOTIFY
 * sla_timer (at most every TIMERS_NOTIFY_GAP_MS, and only when the payload,
 * the earliest new due time, is before the next periodic load; an empty
 * payload always loads). One query over the partial index
 * sla_timer_pending, never a scan of tickets; a set of loaded ids keeps a
 * timer from being held twice. Timers already past due (after a crash or an
 * outage) are fired at once.
 *
 * Firing: one libevent timer armed at the earliest due time; when it goes
 * off every due timer is popped and fired with sc_sla_fire_many, in batches
 * of up to TIMERS_FIRE_BATCH timers per statement (one round trip and one
 * commit for all of them: schema/035_sla_fire_many.sql), at most
 * TIMERS_MAX_BATCHES statements queued at a time, so a backlog of a million
 * timers is worked off in order without flooding memory. A batch never
 * waits to fill: it takes what is due when it is sent. A batch whose
 * statement failed is retried with backoff; a timer refused as early (its
 * deadline moved) is put back at its new due time.
 *
 * Metrics: sc_slamon_events_total{kind} (fires that published an event, by
 * the timer's kind: sc_sla_fire returns true only then, so an escalation
 * timer whose level was already reached by another clock counts nothing),
 * sc_slamon_timers_loaded_total, sc_slamon_timers_pending,
 * sc_slamon_fire_lag_seconds (database now() - due_at of the fires that
 * published), sc_slamon_fire_errors_total.
 */

#define TIMERS_HORIZON_S 120
#define TIMERS_NOTIFY_GAP_MS 100
#define TIMERS_FIRE_BATCH 200
#define TIMERS_MAX_BATCHES 4

struct timers;

/*
 * Registers the statements, the LISTEN and the connect hook on db; the
 * first load runs once db is connected. db, base and m must outlive the
 * returned object. NULL on failure (logged).
 */
struct timers *timers_new(struct event_base *base, struct db *db, struct metrics *m)
	__attribute__((warn_unused_result));

/* Frees everything; callbacks of jobs still queued on db must not run after
 * this (free before db_free, after the loop stopped). NULL is a no-op. */
void timers_free(struct timers *t);

/* Stops loading and firing (shutdown); fires in flight still complete. */
void timers_stop(struct timers *t);

/* Timers in sc_sla_fire_many statements queued or running. */
size_t timers_in_flight(const struct timers *t);

/* Timers held in memory (loaded, not yet fired). */
size_t timers_pending(const struct timers *t);

#endif

#ifndef SC_SERVICES_SLAMON_KPI_H
#define SC_SERVICES_SLAMON_KPI_H

struct event_base;
struct db;

/*
 * Province KPIs (schema/034_kpi.sql): sc_kpi_publish() once connected and
 * then every kpi_interval_s (the function answers the setting, so an
 * import changes the period at the next round). Each round stores a
 * kpi_snapshot per province and queues it, retained, on
 * sc/v1/ops/{province}/kpi.
 */

struct kpi;

/* db and base must outlive it. NULL on failure (logged). */
struct kpi *kpi_new(struct event_base *base, struct db *db) __attribute__((warn_unused_result));

/* Stops the rounds (shutdown); one in flight still completes. */
void kpi_stop(struct kpi *k);

/* 1 while a round is queued or running, else 0. */
int kpi_in_flight(const struct kpi *k);

/* Free after the loop stopped, before db_free. NULL is a no-op. */
void kpi_free(struct kpi *k);

#endif

#ifndef SC_SERVICES_SLAMON_FEEDBACK_H
#define SC_SERVICES_SLAMON_FEEDBACK_H

#include <stddef.h>

struct service;
struct mqsub_msg;

/*
 * Return-visit feedback from sc/v1/requests/{request_id}/feedback (contract
 * section 2.5), taken through a shared subscription (several instances
 * split it). The payload is checked in C (payload_feedback_parse: bad_json,
 * too_large, schema); what passes is one statement, sc_feedback_message
 * (schema/033_return_visits.sql), which stores it or rejects it (unknown
 * request, wrong ticket, ticket not resolved) in the same transaction.
 * Anything refused is kept and announced through sc_reject. Each message
 * is acknowledged to the broker after its commit (or its rejection's).
 *
 * Metric: sc_slamon_feedback_total{result="recorded"|"repeat"|"rejected"}.
 */

struct feedback;

/* Registers statements and the subscription on svc (before service_run).
 * svc must outlive it. NULL on failure (logged). */
struct feedback *feedback_new(struct service *svc)
	__attribute__((warn_unused_result));

/* service_def.on_message: app is the struct feedback. */
void feedback_on_message(void *app, const struct mqsub_msg *m);

/* Messages taken and not yet acknowledged. */
size_t feedback_in_flight(const struct feedback *f);

/* NULL is a no-op. */
void feedback_free(struct feedback *f);

#endif

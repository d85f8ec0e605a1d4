#ifndef SC_COMMON_TOPIC_H
#define SC_COMMON_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The inbound topics of contract section 2 and their identifier part.
 */

enum topic_kind {
	TOPIC_UNKNOWN = 0,
	TOPIC_TELEMETRY,        /* sc/v1/dev/{device_id}/telemetry */
	TOPIC_ALARM,            /* sc/v1/dev/{device_id}/alarm */
	TOPIC_REQUEST_NEW,      /* sc/v1/requests/new */
	TOPIC_FEEDBACK,         /* sc/v1/requests/{request_id}/feedback */
	TOPIC_ENGINEER_EVENTS,  /* sc/v1/engineers/{engineer_id}/events */
	TOPIC_ENGINEER_STATUS,  /* sc/v1/engineers/{engineer_id}/status */
	TOPIC_PARTNER_EVENTS,   /* sc/v1/partners/{partner_id}/events */
};

#define TOPIC_ID_MAX 64

struct topic_info {
	enum topic_kind kind;
	char id[TOPIC_ID_MAX + 1]; /* the {id} segment, "" for requests/new */
};

/*
 * Classifies a topic. A topic of a known shape whose id breaks the
 * identifier rule is TOPIC_UNKNOWN (rejected as bad_topic). Returns kind.
 */
enum topic_kind topic_parse(const char *topic, struct topic_info *out);

/* Label of the kind for metrics: telemetry, alarm, request, feedback, event, status. */
const char *topic_kind_name(enum topic_kind k);

#endif

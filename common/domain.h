#ifndef SC_COMMON_DOMAIN_H
#define SC_COMMON_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Domain vocabulary of contract sections 3 and 6: one enum per concept and
 * the one place that maps it to and from its wire spelling. The database
 * stores the same spellings (text columns with CHECK constraints).
 *
 * Every *_parse returns 0 and sets *out, or -1 for an unknown spelling.
 * Every *_name returns a static string.
 */

enum tier { TIER_VIP, TIER_KEY, TIER_STANDARD };
enum severity { SEVERITY_CRITICAL, SEVERITY_MAJOR, SEVERITY_MINOR };
enum grade { GRADE_JUNIOR = 1, GRADE_INTERMEDIATE = 2, GRADE_SENIOR = 3, GRADE_EXPERT = 4 };
enum mode { MODE_ONSITE, MODE_REMOTE, MODE_OUTSOURCED };
enum channel { CHANNEL_HOTLINE, CHANNEL_WEB, CHANNEL_APP, CHANNEL_EMAIL };
enum category {
	CATEGORY_FAULT, CATEGORY_MAINTENANCE, CATEGORY_INSTALLATION,
	CATEGORY_TRAINING, CATEGORY_CONSULTATION, CATEGORY_COMPLAINT,
};
enum ticket_state {
	TICKET_NEW, TICKET_OFFERED, TICKET_ASSIGNED, TICKET_EN_ROUTE,
	TICKET_ON_SITE, TICKET_RESOLVED, TICKET_CLOSED, TICKET_MANUAL,
	TICKET_CANCELLED, TICKET_CLEARED,
};
enum order_state {
	ORDER_OFFERED, ORDER_ACCEPTED, ORDER_DECLINED, ORDER_EXPIRED,
	ORDER_WITHDRAWN, ORDER_EN_ROUTE, ORDER_ON_SITE, ORDER_RESOLVED,
	ORDER_UNRESOLVED,
};
enum order_event {
	ORDER_EVENT_ACCEPT, ORDER_EVENT_DECLINE, ORDER_EVENT_EN_ROUTE,
	ORDER_EVENT_ON_SITE, ORDER_EVENT_RESOLVED, ORDER_EVENT_UNRESOLVED,
};
enum engineer_kind { ENGINEER_ONSITE, ENGINEER_REMOTE };
enum engineer_avail { AVAIL_AVAILABLE, AVAIL_BUSY, AVAIL_OFF };
enum sla_clock { SLA_CLOCK_RESPOND, SLA_CLOCK_ARRIVE, SLA_CLOCK_RESOLVE };

int tier_parse(const char *s, enum tier *out) __attribute__((warn_unused_result));
const char *tier_name(enum tier v);
int severity_parse(const char *s, enum severity *out) __attribute__((warn_unused_result));
const char *severity_name(enum severity v);
int mode_parse(const char *s, enum mode *out) __attribute__((warn_unused_result));
const char *mode_name(enum mode v);
int channel_parse(const char *s, enum channel *out) __attribute__((warn_unused_result));
const char *channel_name(enum channel v);
int category_parse(const char *s, enum category *out) __attribute__((warn_unused_result));
const char *category_name(enum category v);
int ticket_state_parse(const char *s, enum ticket_state *out) __attribute__((warn_unused_result));
const char *ticket_state_name(enum ticket_state v);
int order_state_parse(const char *s, enum order_state *out) __attribute__((warn_unused_result));
const char *order_state_name(enum order_state v);
int order_event_parse(const char *s, enum order_event *out) __attribute__((warn_unused_result));
const char *order_event_name(enum order_event v);
int engineer_kind_parse(const char *s, enum engineer_kind *out) __attribute__((warn_unused_result));
const char *engineer_kind_name(enum engineer_kind v);
int engineer_avail_parse(const char *s, enum engineer_avail *out) __attribute__((warn_unused_result));
const char *engineer_avail_name(enum engineer_avail v);
int sla_clock_parse(const char *s, enum sla_clock *out) __attribute__((warn_unused_result));
const char *sla_clock_name(enum sla_clock v);

/* Grade 1..4; returns 0 or -1. */
int grade_check(long g) __attribute__((warn_unused_result));

/* A ticket is open until resolved, cancelled or cleared (contract section 6). */
bool ticket_state_is_open(enum ticket_state s);

/*
 * Identifier rule of contract section 2: 1-64 characters of [A-Za-z0-9._-].
 * Metric names: [a-z0-9_]{1,32}.
 */
bool domain_id_valid(const char *s);
bool domain_metric_name_valid(const char *s);

#endif

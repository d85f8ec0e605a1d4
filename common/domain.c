/*
 * Wire spellings of the domain vocabulary (contract sections 2, 3 and 6).
 * Each table is indexed by its enum, so adding a value means adding one
 * line here; the static asserts catch a table that falls out of step.
 */
#include "domain.h"

#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const tier_names[] = {
	[TIER_VIP] = "vip",
	[TIER_KEY] = "key",
	[TIER_STANDARD] = "standard",
};
static const char *const severity_names[] = {
	[SEVERITY_CRITICAL] = "critical",
	[SEVERITY_MAJOR] = "major",
	[SEVERITY_MINOR] = "minor",
};
static const char *const mode_names[] = {
	[MODE_ONSITE] = "onsite",
	[MODE_REMOTE] = "remote",
	[MODE_OUTSOURCED] = "outsourced",
};
static const char *const channel_names[] = {
	[CHANNEL_HOTLINE] = "hotline",
	[CHANNEL_WEB] = "web",
	[CHANNEL_APP] = "app",
	[CHANNEL_EMAIL] = "email",
};
static const char *const category_names[] = {
	[CATEGORY_FAULT] = "fault",
	[CATEGORY_MAINTENANCE] = "maintenance",
	[CATEGORY_INSTALLATION] = "installation",
	[CATEGORY_TRAINING] = "training",
	[CATEGORY_CONSULTATION] = "consultation",
	[CATEGORY_COMPLAINT] = "complaint",
};
static const char *const ticket_state_names[] = {
	[TICKET_NEW] = "new",
	[TICKET_OFFERED] = "offered",
	[TICKET_ASSIGNED] = "assigned",
	[TICKET_EN_ROUTE] = "en_route",
	[TICKET_ON_SITE] = "on_site",
	[TICKET_RESOLVED] = "resolved",
	[TICKET_CLOSED] = "closed",
	[TICKET_MANUAL] = "manual",
	[TICKET_CANCELLED] = "cancelled",
	[TICKET_CLEARED] = "cleared",
};
static const char *const order_state_names[] = {
	[ORDER_OFFERED] = "offered",
	[ORDER_ACCEPTED] = "accepted",
	[ORDER_DECLINED] = "declined",
	[ORDER_EXPIRED] = "expired",
	[ORDER_WITHDRAWN] = "withdrawn",
	[ORDER_EN_ROUTE] = "en_route",
	[ORDER_ON_SITE] = "on_site",
	[ORDER_RESOLVED] = "resolved",
	[ORDER_UNRESOLVED] = "unresolved",
};
static const char *const order_event_names[] = {
	[ORDER_EVENT_ACCEPT] = "accept",
	[ORDER_EVENT_DECLINE] = "decline",
	[ORDER_EVENT_EN_ROUTE] = "en_route",
	[ORDER_EVENT_ON_SITE] = "on_site",
	[ORDER_EVENT_RESOLVED] = "resolved",
	[ORDER_EVENT_UNRESOLVED] = "unresolved",
};
static const char *const engineer_kind_names[] = {
	[ENGINEER_ONSITE] = "onsite",
	[ENGINEER_REMOTE] = "remote",
};
static const char *const engineer_avail_names[] = {
	[AVAIL_AVAILABLE] = "available",
	[AVAIL_BUSY] = "busy",
	[AVAIL_OFF] = "off",
};
static const char *const sla_clock_names[] = {
	[SLA_CLOCK_RESPOND] = "respond",
	[SLA_CLOCK_ARRIVE] = "arrive",
	[SLA_CLOCK_RESOLVE] = "resolve",
};

_Static_assert(COUNT(tier_names) == TIER_STANDARD + 1, "tier table");
_Static_assert(COUNT(severity_names) == SEVERITY_MINOR + 1, "severity table");
_Static_assert(COUNT(mode_names) == MODE_OUTSOURCED + 1, "mode table");
_Static_assert(COUNT(channel_names) == CHANNEL_EMAIL + 1, "channel table");
_Static_assert(COUNT(category_names) == CATEGORY_COMPLAINT + 1, "category table");
_Static_assert(COUNT(ticket_state_names) == TICKET_CLEARED + 1, "ticket state table");
_Static_assert(COUNT(order_state_names) == ORDER_UNRESOLVED + 1, "order state table");
_Static_assert(COUNT(order_event_names) == ORDER_EVENT_UNRESOLVED + 1, "order event table");
_Static_assert(COUNT(engineer_kind_names) == ENGINEER_REMOTE + 1, "engineer kind table");
_Static_assert(COUNT(engineer_avail_names) == AVAIL_OFF + 1, "availability table");
_Static_assert(COUNT(sla_clock_names) == SLA_CLOCK_RESOLVE + 1, "sla clock table");

/* Index of s in names, or -1. Exact, case-sensitive: the wire is lowercase. */
static int lookup(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static const char *name_of(const char *const *names, size_t n, int v)
{
	/* An out-of-range value is a bug; a visible word beats a crash in a log line. */
	if (v < 0 || (size_t)v >= n)
		return "invalid";
	return names[v];
}

/* Defines NAME_parse and NAME_name over the table NAME_names. */
#define DOMAIN_ENUM(NAME)                                                   \
	int NAME##_parse(const char *s, enum NAME *out)                     \
	{                                                                   \
		int i = lookup(NAME##_names, COUNT(NAME##_names), s);       \
		if (i < 0)                                                  \
			return -1;                                          \
		*out = (enum NAME)i;                                        \
		return 0;                                                   \
	}                                                                   \
	const char *NAME##_name(enum NAME v)                                \
	{                                                                   \
		return name_of(NAME##_names, COUNT(NAME##_names), (int)v);  \
	}

DOMAIN_ENUM(tier)
DOMAIN_ENUM(severity)
DOMAIN_ENUM(mode)
DOMAIN_ENUM(channel)
DOMAIN_ENUM(category)
DOMAIN_ENUM(ticket_state)
DOMAIN_ENUM(order_state)
DOMAIN_ENUM(order_event)
DOMAIN_ENUM(engineer_kind)
DOMAIN_ENUM(engineer_avail)
DOMAIN_ENUM(sla_clock)

int grade_check(long g)
{
	return g >= GRADE_JUNIOR && g <= GRADE_EXPERT ? 0 : -1;
}

bool ticket_state_is_open(enum ticket_state s)
{
	/* closed only follows resolved, so it is not open either. */
	switch (s) {
	case TICKET_RESOLVED:
	case TICKET_CLOSED:
	case TICKET_CANCELLED:
	case TICKET_CLEARED:
		return false;
	default:
		return true;
	}
}

bool domain_id_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];

		if (n >= 64)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

bool domain_metric_name_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];

		if (n >= 32)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return n > 0;
}

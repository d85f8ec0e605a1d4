/* Inbound topic shapes (see topic.h). */
#include "topic.h"

#include <string.h>

#include "domain.h"

struct shape {
	const char *prefix;   /* up to the id */
	const char *suffix;   /* after the id, "" for none */
	enum topic_kind kind;
};

static const struct shape shapes[] = {
	{ "sc/v1/dev/", "/telemetry", TOPIC_TELEMETRY },
	{ "sc/v1/dev/", "/alarm", TOPIC_ALARM },
	{ "sc/v1/requests/", "/feedback", TOPIC_FEEDBACK },
	{ "sc/v1/engineers/", "/events", TOPIC_ENGINEER_EVENTS },
	{ "sc/v1/engineers/", "/status", TOPIC_ENGINEER_STATUS },
	{ "sc/v1/partners/", "/events", TOPIC_PARTNER_EVENTS },
};

enum topic_kind topic_parse(const char *topic, struct topic_info *out)
{
	out->kind = TOPIC_UNKNOWN;
	out->id[0] = '\0';
	if (strcmp(topic, "sc/v1/requests/new") == 0) {
		out->kind = TOPIC_REQUEST_NEW;
		return out->kind;
	}
	size_t tl = strlen(topic);
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *s = &shapes[i];
		size_t pl = strlen(s->prefix), sl = strlen(s->suffix);
		if (tl <= pl + sl || strncmp(topic, s->prefix, pl) != 0 ||
		    strcmp(topic + tl - sl, s->suffix) != 0)
			continue;
		size_t il = tl - pl - sl;
		if (il > TOPIC_ID_MAX)
			return TOPIC_UNKNOWN;
		memcpy(out->id, topic + pl, il);
		out->id[il] = '\0';
		if (!domain_id_valid(out->id)) {
			out->id[0] = '\0';
			return TOPIC_UNKNOWN;
		}
		out->kind = s->kind;
		return out->kind;
	}
	return TOPIC_UNKNOWN;
}

const char *topic_kind_name(enum topic_kind k)
{
	switch (k) {
	case TOPIC_TELEMETRY: return "telemetry";
	case TOPIC_ALARM: return "alarm";
	case TOPIC_REQUEST_NEW: return "request";
	case TOPIC_FEEDBACK: return "feedback";
	case TOPIC_ENGINEER_EVENTS: return "event";
	case TOPIC_ENGINEER_STATUS: return "status";
	case TOPIC_PARTNER_EVENTS: return "event";
	default: return "unknown";
	}
}

/*
 * Province endpoints: KPIs, engineers with their load, recent escalations,
 * partners with their open orders (contract section 4; the zone dashboard
 * reads them). hq sees every
 * province, province and dispatcher tokens their own zone only (checked in
 * sc_api_sees_province, inside each statement).
 *
 * KPIs: sc_api_kpi_compute (schema/040_api.sql), the SLA monitor's sc_kpi
 * plus the dashboard's SLA-risk and 24-hour counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "api.h"

#define ESCALATIONS_DEFAULT 20
#define ESCALATIONS_MAX 200

void provinces_kpi(struct api_call *c)
{
	const char *params[1] = { c->params[0] };
	api_relay(c, "api_province_kpi", 1, params);
}

void provinces_engineers(struct api_call *c)
{
	const char *params[1] = { c->params[0] };
	api_relay(c, "api_province_engineers", 1, params);
}

void provinces_partners(struct api_call *c)
{
	const char *params[1] = { c->params[0] };
	api_relay(c, "api_province_partners", 1, params);
}

void provinces_escalations(struct api_call *c)
{
	char v[16], limit[16];
	int rc = api_query_get(c, "limit", v, sizeof(v));
	snprintf(limit, sizeof(limit), "%d", ESCALATIONS_DEFAULT);
	if (rc == 1) {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < 1 || n > ESCALATIONS_MAX)
			rc = -1;
		else
			snprintf(limit, sizeof(limit), "%ld", n);
	}
	if (rc < 0) {
		api_reply_error(c, 400, "bad_request", "limit: must be an integer from 1 to 200");
		return;
	}
	const char *params[2] = { c->params[0], limit };
	api_relay(c, "api_province_escalations", 2, params);
}

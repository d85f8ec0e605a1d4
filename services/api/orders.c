/*
 * Work-order endpoints: the caller's orders, and the events and status that
 * engineers and partners may post over HTTP instead of MQTT (contract
 * sections 2.3 and 4). An event through the API follows the MQTT event's
 * rules exactly: common/payload.c checks it (400 with reason bad_json,
 * schema or bad_timestamp as "error"), then sc_dispatch_event applies it,
 * ignores an exact repeat, and keeps a refusal (unknown_order,
 * not_your_order, bad_transition) in `rejected` like the MQTT path does.
 */
#include <string.h>

#include "api.h"
#include "domain.h"
#include "json.h"
#include "payload.h"
#include "timeutil.h"

void orders_list(struct api_call *c)
{
	char province[API_ID_MAX + 1], state[32], limit[16], cursor[128], mine[8];
	/* mine=1: partners and engineers always get only their own orders;
	 * for the other roles "mine" is their scope. Accepted, checked, and
	 * otherwise without effect. */
	int rc = api_query_get(c, "mine", mine, sizeof(mine));
	if (rc < 0 || (rc == 1 && strcmp(mine, "1") != 0 && strcmp(mine, "0") != 0)) {
		api_reply_error(c, 400, "bad_request", "mine: 0 or 1");
		return;
	}
	if (api_list_filters(c, province, sizeof(province), state, sizeof(state), true) != 0 ||
	    api_list_args(c, limit, sizeof(limit), cursor, sizeof(cursor)) != 0)
		return;
	const char *params[4] = { province[0] ? province : NULL, state[0] ? state : NULL, limit,
				  cursor[0] ? cursor : NULL };
	api_relay(c, "api_orders", 4, params);
}

void orders_event(struct api_call *c)
{
	struct payload_event ev;
	struct json_err e = { 0 };
	if (payload_event_parse(c->body != NULL ? c->body : "", c->body_len, time_now_us(), &ev,
				&e) != 0) {
		api_reply_error(c, 400, e.reason, e.detail);
		return;
	}
	if (strcmp(ev.order_id, c->params[0]) != 0) {
		api_reply_error(c, 400, "schema", "order_id: does not match the path");
	} else {
		const char *params[1] = { c->body };
		api_relay(c, "api_order_event", 1, params);
	}
	payload_free(ev.root);
}

void engineers_status(struct api_call *c)
{
	struct payload_status st;
	struct json_err e = { 0 };
	if (payload_status_parse(c->body != NULL ? c->body : "", c->body_len, time_now_us(), &st,
				 &e) != 0) {
		api_reply_error(c, 400, e.reason, e.detail);
		return;
	}
	const char *params[2] = { c->params[0], c->body };
	api_relay(c, "api_engineer_status", 2, params);
	payload_free(st.root);
}

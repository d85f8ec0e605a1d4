/*
 * Ticket endpoints: list, one ticket, assign/reassign, cancel, feedback
 * (contract section 4). Input is checked here (400 with the contract's
 * reasons bad_json / schema as "error"); scope and the transition are one
 * sc_api_* statement each (schema/040_api.sql).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "domain.h"
#include "json.h"
#include "payload.h"

#define REASON_MAX 1024

void tickets_list(struct api_call *c)
{
	char province[API_ID_MAX + 1], state[32], limit[16], cursor[128];
	if (api_list_filters(c, province, sizeof(province), state, sizeof(state), false) != 0 ||
	    api_list_args(c, limit, sizeof(limit), cursor, sizeof(cursor)) != 0)
		return;
	const char *params[4] = { province[0] ? province : NULL, state[0] ? state : NULL, limit,
				  cursor[0] ? cursor : NULL };
	api_relay(c, "api_tickets", 4, params);
}

void tickets_get(struct api_call *c)
{
	const char *params[1] = { c->params[0] };
	api_relay(c, "api_ticket", 1, params);
}

/* Parses the body as a JSON object (an empty body is {} when
 * `empty_ok`). NULL after answering 400. */
static cJSON *body_object(struct api_call *c, bool empty_ok)
{
	struct json_err e = { 0 };
	if (c->body == NULL && empty_ok)
		return cJSON_CreateObject();
	cJSON *o = json_parse_object(c->body != NULL ? c->body : "", c->body_len, &e);
	if (o == NULL)
		api_reply_error(c, e.reason == NULL || strcmp(e.reason, "too_large") != 0 ? 400 : 413,
				e.reason != NULL ? e.reason : "bad_json", e.detail);
	return o;
}

/* assign and reassign: one body, `replace` says whether an accepted order
 * in progress may be withdrawn (reassign) or refuses (assign). */
static void assign(struct api_call *c, bool replace)
{
	struct json_err e = { 0 };
	const char *engineer = NULL, *partner = NULL, *mode = NULL;
	enum mode m;
	char actor[64];
	cJSON *o = body_object(c, false);
	if (o == NULL)
		return;
	if (json_get_str(o, "engineer_id", JSON_ID, API_ID_MAX, &engineer, &e) < 0 ||
	    json_get_str(o, "partner_id", JSON_ID, API_ID_MAX, &partner, &e) < 0 ||
	    json_get_str(o, "mode", 0, 16, &mode, &e) < 0) {
		api_reply_error(c, 400, e.reason, e.detail);
		goto out;
	}
	if ((engineer == NULL) == (partner == NULL)) {
		api_reply_error(c, 400, "schema", "engineer_id, partner_id: exactly one is required");
		goto out;
	}
	if (mode != NULL && mode_parse(mode, &m) != 0) {
		api_reply_error(c, 400, "schema", "mode: onsite, remote or outsourced");
		goto out;
	}
	api_actor(c, actor, sizeof(actor));
	const char *params[6] = { c->params[0], engineer, partner, mode,
				  replace ? "true" : "false", actor };
	api_relay(c, "api_assign", 6, params);
out:
	cJSON_Delete(o);
}

void tickets_assign(struct api_call *c)
{
	assign(c, false);
}

void tickets_reassign(struct api_call *c)
{
	assign(c, true);
}

void tickets_cancel(struct api_call *c)
{
	struct json_err e = { 0 };
	const char *reason = NULL;
	char actor[64];
	cJSON *o = body_object(c, true);
	if (o == NULL)
		return;
	if (json_get_str(o, "reason", 0, REASON_MAX, &reason, &e) < 0) {
		api_reply_error(c, 400, e.reason, e.detail);
		goto out;
	}
	api_actor(c, actor, sizeof(actor));
	const char *params[3] = { c->params[0], reason, actor };
	api_relay(c, "api_cancel", 3, params);
out:
	cJSON_Delete(o);
}

void tickets_feedback(struct api_call *c)
{
	struct payload_feedback f;
	struct json_err e = { 0 };
	char actor[64];
	if (payload_feedback_parse(c->body != NULL ? c->body : "", c->body_len, &f, &e) != 0) {
		api_reply_error(c, 400, e.reason, e.detail);
		return;
	}
	if (strcmp(f.ticket_id, c->params[0]) != 0) {
		api_reply_error(c, 400, "schema", "ticket_id: does not match the path");
	} else {
		api_actor(c, actor, sizeof(actor));
		const char *params[3] = { c->params[0], c->body, actor };
		api_relay(c, "api_feedback", 3, params);
	}
	payload_free(f.root);
}

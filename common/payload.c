/*
 * Payload parsers (see payload.h). Each checks the fields in the order the
 * contract lists them, so the first broken field is the one named.
 */
#include "payload.h"

#include <math.h>
#include <string.h>

const char *const payload_dimension_names[5] = {
	"reliability", "responsiveness", "assurance", "empathy", "tangibles",
};

void payload_free(cJSON *root)
{
	cJSON_Delete(root);
}

/* A required ts: RFC 3339, not more than PAYLOAD_MAX_FUTURE_S ahead. */
static int get_ts(const cJSON *o, const char *key, unsigned flags, int64_t now_us,
		  int64_t *out, struct json_err *e)
{
	int rc = json_get_time(o, key, flags, out, e);
	if (rc != 0)
		return rc;
	if (*out > now_us + (int64_t)PAYLOAD_MAX_FUTURE_S * 1000000) {
		json_err_set(e, "bad_timestamp", "%s: more than %d s in the future", key,
			     PAYLOAD_MAX_FUTURE_S);
		return -1;
	}
	return 0;
}

static int get_grade(const cJSON *o, const char *key, int *out, struct json_err *e)
{
	int64_t g = 0;
	int rc = json_get_int(o, key, 0, 1, 4, &g, e);
	if (rc < 0)
		return -1;
	*out = rc == 0 ? (int)g : 0;
	return 0;
}

/* Optional free text: string of at most PAYLOAD_TEXT_MAX bytes, "" when absent. */
static int get_text(const cJSON *o, const char *key, const char **out, struct json_err *e)
{
	const char *s = "";
	int rc = json_get_str(o, key, 0, PAYLOAD_TEXT_MAX, &s, e);
	if (rc < 0)
		return -1;
	*out = rc == 0 ? s : "";
	return 0;
}

static int check_metrics(const cJSON *root, const cJSON **out, struct json_err *e)
{
	const cJSON *m = NULL;
	if (json_get_object(root, "metrics", JSON_REQUIRED, &m, e) != 0)
		return -1;
	int n = 0;
	for (const cJSON *c = m->child; c != NULL; c = c->next) {
		if (++n > PAYLOAD_MAX_METRICS) {
			json_err_set(e, "schema", "metrics: more than %d entries", PAYLOAD_MAX_METRICS);
			return -1;
		}
		if (!domain_metric_name_valid(c->string)) {
			json_err_set(e, "bad_metric", "metrics: bad name \"%.40s\"", c->string);
			return -1;
		}
		if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble)) {
			json_err_set(e, "bad_metric", "metrics.%s: not a finite number", c->string);
			return -1;
		}
	}
	if (n == 0) {
		json_err_set(e, "schema", "metrics: must have at least one entry");
		return -1;
	}
	*out = m;
	return 0;
}

/* Does the JSON text hold an exponent outside its strings? */
static bool has_exponent(const char *raw, size_t n)
{
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		if (raw[i] == '"')
			in_str = !in_str;
		else if (in_str && raw[i] == '\\')
			i++;
		else if (!in_str && (raw[i] == 'e' || raw[i] == 'E'))
			return true;
	}
	return false;
}

/* The raw spans of a payload the tree parser accepted (see payload.h). */
static void raw_spans(const char *buf, size_t len, struct payload_telemetry *t)
{
	const char *raw;
	size_t n;
	if (json_raw_member(buf, len, "metrics", &raw, &n) == 0 && !has_exponent(raw, n)) {
		t->metrics_raw = raw;
		t->metrics_len = n;
	}
	if (t->has_run_hours && json_raw_member(buf, len, "run_hours", &raw, &n) == 0 && n < 32 &&
	    !has_exponent(raw, n)) {
		t->run_hours_raw = raw;
		t->run_hours_len = n;
	}
}

int payload_telemetry_parse(const char *buf, size_t len, int64_t now_us,
			    struct payload_telemetry *out, struct json_err *e)
{
	if (payload_telemetry_fast(buf, len, now_us, out) == 0)
		return 0;
	return payload_telemetry_parse_tree(buf, len, now_us, out, e);
}

int payload_telemetry_parse_tree(const char *buf, size_t len, int64_t now_us,
				 struct payload_telemetry *out, struct json_err *e)
{
	struct payload_telemetry t = { 0 };
	t.root = json_parse_object(buf, len, e);
	if (t.root == NULL)
		return -1;
	int rc;
	if (json_get_u64(t.root, "seq", JSON_REQUIRED, &t.seq, e) != 0 ||
	    get_ts(t.root, "ts", JSON_REQUIRED, now_us, &t.ts_us, e) != 0)
		goto fail;
	rc = json_get_num(t.root, "run_hours", 0, &t.run_hours, e);
	if (rc < 0)
		goto fail;
	if (rc == 0 && t.run_hours < 0) {
		json_err_set(e, "schema", "run_hours: must not be negative");
		goto fail;
	}
	t.has_run_hours = rc == 0;
	if (check_metrics(t.root, &t.metrics, e) != 0)
		goto fail;
	raw_spans(buf, len, &t);
	*out = t;
	return 0;
fail:
	cJSON_Delete(t.root);
	return -1;
}

int payload_alarm_parse(const char *buf, size_t len, int64_t now_us,
			struct payload_alarm *out, struct json_err *e)
{
	struct payload_alarm a = { 0 };
	const char *state = NULL;
	a.root = json_parse_object(buf, len, e);
	if (a.root == NULL)
		return -1;
	if (json_get_u64(a.root, "seq", JSON_REQUIRED, &a.seq, e) != 0 ||
	    get_ts(a.root, "ts", JSON_REQUIRED, now_us, &a.ts_us, e) != 0 ||
	    json_get_str(a.root, "code", JSON_REQUIRED | JSON_ID, 64, &a.code, e) != 0 ||
	    json_get_str(a.root, "state", JSON_REQUIRED, 16, &state, e) != 0 ||
	    get_text(a.root, "text", &a.text, e) != 0)
		goto fail;
	if (strcmp(state, "raised") == 0) {
		a.raised = true;
	} else if (strcmp(state, "cleared") != 0) {
		json_err_set(e, "schema", "state: must be raised or cleared");
		goto fail;
	}
	*out = a;
	return 0;
fail:
	cJSON_Delete(a.root);
	return -1;
}

/* Optional enum field through a domain parser. Returns 0 set, 1 absent, -1 bad. */
#define GET_ENUM(root, key, flags, parse, outp, e, words)                              \
	({                                                                             \
		const char *s_ = NULL;                                                 \
		int r_ = json_get_str(root, key, flags, 32, &s_, e);                   \
		if (r_ == 0 && parse(s_, outp) != 0) {                                 \
			json_err_set(e, "schema", "%s: must be one of %s", key, words); \
			r_ = -1;                                                       \
		}                                                                      \
		r_;                                                                    \
	})

int payload_request_parse(const char *buf, size_t len, int64_t now_us,
			  struct payload_request *out, struct json_err *e)
{
	struct payload_request r = { 0 };
	int rc;
	r.root = json_parse_object(buf, len, e);
	if (r.root == NULL)
		return -1;
	if (json_get_str(r.root, "request_id", JSON_REQUIRED | JSON_ID, 64, &r.request_id, e) != 0 ||
	    GET_ENUM(r.root, "channel", JSON_REQUIRED, channel_parse, &r.channel, e,
		     "hotline, web, app, email") != 0 ||
	    json_get_str(r.root, "customer_id", JSON_REQUIRED | JSON_ID, 64, &r.customer_id, e) != 0 ||
	    json_get_str(r.root, "site_id", JSON_REQUIRED | JSON_ID, 64, &r.site_id, e) != 0)
		goto fail;
	rc = json_get_str(r.root, "device_id", JSON_ID, 64, &r.device_id, e);
	if (rc < 0)
		goto fail;
	if (rc == 1)
		r.device_id = NULL;
	if (GET_ENUM(r.root, "category", JSON_REQUIRED, category_parse, &r.category, e,
		     "fault, maintenance, installation, training, consultation, complaint") != 0)
		goto fail;
	rc = GET_ENUM(r.root, "severity", 0, severity_parse, &r.severity, e,
		      "critical, major, minor");
	if (rc < 0)
		goto fail;
	r.has_severity = rc == 0;
	rc = json_get_str(r.root, "skill", JSON_ID, 64, &r.skill, e);
	if (rc < 0)
		goto fail;
	if (rc == 1)
		r.skill = NULL;
	if (get_grade(r.root, "min_grade", &r.min_grade, e) != 0 ||
	    get_text(r.root, "description", &r.description, e) != 0)
		goto fail;
	rc = json_get_object(r.root, "contact", 0, &r.contact, e);
	if (rc < 0)
		goto fail;
	if (rc == 1)
		r.contact = NULL;
	if (get_ts(r.root, "ts", JSON_REQUIRED, now_us, &r.ts_us, e) != 0)
		goto fail;
	*out = r;
	return 0;
fail:
	cJSON_Delete(r.root);
	return -1;
}

int payload_event_parse(const char *buf, size_t len, int64_t now_us,
			struct payload_event *out, struct json_err *e)
{
	struct payload_event v = { 0 };
	int rc;
	v.root = json_parse_object(buf, len, e);
	if (v.root == NULL)
		return -1;
	if (json_get_str(v.root, "order_id", JSON_REQUIRED | JSON_ID, 64, &v.order_id, e) != 0 ||
	    GET_ENUM(v.root, "event", JSON_REQUIRED, order_event_parse, &v.event, e,
		     "accept, decline, en_route, on_site, resolved, unresolved") != 0 ||
	    get_ts(v.root, "ts", JSON_REQUIRED, now_us, &v.ts_us, e) != 0)
		goto fail;
	rc = json_get_time(v.root, "eta", 0, &v.eta_us, e);
	if (rc < 0)
		goto fail;
	v.has_eta = rc == 0;
	if (get_text(v.root, "reason", &v.reason, e) != 0 ||
	    get_text(v.root, "notes", &v.notes, e) != 0 ||
	    get_text(v.root, "technician", &v.technician, e) != 0)
		goto fail;
	rc = json_get_bool(v.root, "first_time_fix", 0, &v.first_time_fix, e);
	if (rc < 0)
		goto fail;
	v.has_first_time_fix = rc == 0;
	if (v.event == ORDER_EVENT_RESOLVED && !v.has_first_time_fix) {
		json_err_set(e, "schema", "first_time_fix: required with resolved");
		goto fail;
	}
	*out = v;
	return 0;
fail:
	cJSON_Delete(v.root);
	return -1;
}

int payload_status_parse(const char *buf, size_t len, int64_t now_us,
			 struct payload_status *out, struct json_err *e)
{
	struct payload_status s = { 0 };
	int rl, ro;
	s.root = json_parse_object(buf, len, e);
	if (s.root == NULL)
		return -1;
	if (get_ts(s.root, "ts", JSON_REQUIRED, now_us, &s.ts_us, e) != 0 ||
	    GET_ENUM(s.root, "state", JSON_REQUIRED, engineer_avail_parse, &s.state, e,
		     "available, busy, off") != 0)
		goto fail;
	rl = json_get_num(s.root, "lat", 0, &s.lat, e);
	if (rl < 0)
		goto fail;
	ro = json_get_num(s.root, "lon", 0, &s.lon, e);
	if (ro < 0)
		goto fail;
	if (rl != ro) {
		json_err_set(e, "schema", "%s: lat and lon go together", rl == 0 ? "lon" : "lat");
		goto fail;
	}
	if (rl == 0 && (s.lat < -90 || s.lat > 90 || s.lon < -180 || s.lon > 180)) {
		json_err_set(e, "schema", "%s: out of range", (s.lat < -90 || s.lat > 90) ? "lat" : "lon");
		goto fail;
	}
	s.has_position = rl == 0;
	*out = s;
	return 0;
fail:
	cJSON_Delete(s.root);
	return -1;
}

int payload_feedback_parse(const char *buf, size_t len, struct payload_feedback *out,
			   struct json_err *e)
{
	struct payload_feedback f = { 0 };
	f.root = json_parse_object(buf, len, e);
	if (f.root == NULL)
		return -1;
	const cJSON *dims = NULL;
	int rc;
	int64_t v;
	if (json_get_str(f.root, "ticket_id", JSON_REQUIRED | JSON_ID, 64, &f.ticket_id, e) != 0)
		goto fail;
	rc = json_get_int(f.root, "score", 0, 1, 5, &v, e);
	if (rc < 0)
		goto fail;
	f.score = rc == 0 ? (int)v : 0;
	rc = json_get_object(f.root, "dimensions", 0, &dims, e);
	if (rc < 0)
		goto fail;
	for (int i = 0; rc == 0 && i < 5; i++) {
		int r2 = json_get_int(dims, payload_dimension_names[i], 0, 1, 5, &v, e);
		if (r2 < 0)
			goto fail;
		f.dims[i] = r2 == 0 ? (int)v : 0;
	}
	if (get_text(f.root, "comment", &f.comment, e) != 0)
		goto fail;
	*out = f;
	return 0;
fail:
	cJSON_Delete(f.root);
	return -1;
}

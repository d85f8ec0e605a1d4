#ifndef SC_COMMON_PAYLOAD_H
#define SC_COMMON_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "domain.h"
#include "json.h"

/*
 * Parsers of every payload that comes from outside over MQTT or HTTP
 * (contract sections 2.1, 2.2, 2.3, 2.5), with the contract's rules and
 * rejection reasons (section 2.6). Each parse fills *out and returns 0, or
 * returns -1 with *e naming the reason and field. On success out->root owns
 * the tree that the string pointers point into: release it with
 * payload_free(out->root). Unknown fields are ignored (the contract is
 * extended by adding fields).
 *
 * now_us is the receiver's clock: a ts more than PAYLOAD_MAX_FUTURE_S
 * ahead of it is "bad_timestamp".
 */

#define PAYLOAD_MAX_FUTURE_S 300
#define PAYLOAD_MAX_METRICS 64
#define PAYLOAD_TEXT_MAX 4096   /* description, text, notes, comment */

struct payload_telemetry {
	cJSON *root;            /* NULL when the fast path parsed it */
	uint64_t seq;
	int64_t ts_us;
	bool has_run_hours;
	double run_hours;
	/*
	 * The run hours and the metrics object as the device wrote them (spans
	 * of the payload), when PostgreSQL reads that text exactly as this
	 * parser did: no exponent anywhere in it (cJSON turns 1e-5000 into 0,
	 * numeric refuses it; 1e400 is inf to cJSON), run hours under 32 bytes.
	 * NULL otherwise: then print run_hours and metrics.
	 */
	const char *run_hours_raw, *metrics_raw;
	size_t run_hours_len, metrics_len;
	const cJSON *metrics;   /* object of 1..64 finite numbers, names checked;
				 * NULL when the fast path parsed it (metrics_raw is set) */
};

struct payload_alarm {
	cJSON *root;
	uint64_t seq;
	int64_t ts_us;
	const char *code;
	bool raised;            /* state "raised" (else "cleared") */
	const char *text;       /* "" when absent */
};

struct payload_request {
	cJSON *root;
	const char *request_id;
	enum channel channel;
	const char *customer_id;
	const char *site_id;
	const char *device_id;  /* NULL when absent */
	enum category category;
	bool has_severity;
	enum severity severity;
	const char *skill;      /* NULL when absent */
	int min_grade;          /* 0 when absent */
	const char *description;
	const cJSON *contact;   /* NULL when absent */
	int64_t ts_us;
};

struct payload_event {
	cJSON *root;
	const char *order_id;
	enum order_event event;
	int64_t ts_us;
	bool has_eta;
	int64_t eta_us;
	const char *reason;     /* decline */
	bool has_first_time_fix;
	bool first_time_fix;    /* resolved: required */
	const char *notes;
	const char *technician; /* partners */
};

struct payload_status {
	cJSON *root;
	int64_t ts_us;
	enum engineer_avail state;
	bool has_position;
	double lat, lon;
};

struct payload_feedback {
	cJSON *root;
	const char *ticket_id;
	int score;              /* 0 when absent */
	int dims[5];            /* reliability, responsiveness, assurance, empathy, tangibles; 0 absent */
	const char *comment;
};

extern const char *const payload_dimension_names[5];

/*
 * Telemetry, the bulk of what comes in: payload_telemetry_fast first, the
 * general parser (payload_telemetry_parse_tree) for anything it leaves.
 */
int payload_telemetry_parse(const char *buf, size_t len, int64_t now_us,
			    struct payload_telemetry *out, struct json_err *e)
	__attribute__((warn_unused_result));
/*
 * One pass, no allocation, for the plain shape devices send: ASCII, no
 * escapes, only the fields seq, ts, run_hours and metrics, each once, plain
 * decimal numbers. Returns 0 with *out filled (root and metrics NULL, the
 * raw spans set) only for a payload the general parser accepts with the same
 * values (fuzz.payload checks that on every input); 1 for anything else,
 * valid or not, left to the general parser for its verdict and reason.
 */
int payload_telemetry_fast(const char *buf, size_t len, int64_t now_us,
			   struct payload_telemetry *out) __attribute__((warn_unused_result));
int payload_telemetry_parse_tree(const char *buf, size_t len, int64_t now_us,
				 struct payload_telemetry *out, struct json_err *e)
	__attribute__((warn_unused_result));
int payload_alarm_parse(const char *buf, size_t len, int64_t now_us,
			struct payload_alarm *out, struct json_err *e)
	__attribute__((warn_unused_result));
int payload_request_parse(const char *buf, size_t len, int64_t now_us,
			  struct payload_request *out, struct json_err *e)
	__attribute__((warn_unused_result));
int payload_event_parse(const char *buf, size_t len, int64_t now_us,
			struct payload_event *out, struct json_err *e)
	__attribute__((warn_unused_result));
int payload_status_parse(const char *buf, size_t len, int64_t now_us,
			 struct payload_status *out, struct json_err *e)
	__attribute__((warn_unused_result));
int payload_feedback_parse(const char *buf, size_t len, struct payload_feedback *out,
			   struct json_err *e) __attribute__((warn_unused_result));

void payload_free(cJSON *root);

#endif

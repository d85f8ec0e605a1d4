/*
 * The fast path of telemetry parsing (payload.h, payload_telemetry_fast).
 *
 * The general parser validates UTF-8, lexes the whole payload, copies it,
 * builds a cJSON tree (a malloc per node, strtod per number), sorts keys to
 * find duplicates and then looks fields up: about half of sc-ingest's CPU
 * per message. Devices send one plain shape; this reads that shape in one
 * pass without allocating, and hands anything else (an escape, a byte
 * outside printable ASCII, an unknown or repeated field, an exponent, a
 * huge number, a missing field, any error) to the general parser, which
 * decides and names the reason. So it never rejects anything itself, and
 * what it accepts the general parser accepts with the same values
 * (tests/fuzz/fuzz_payload.c checks both on every input).
 */
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "payload.h"
#include "timeutil.h"

/* A decimal number of at most this many bytes (no exponent) is finite. */
#define PLAIN_NUMBER_MAX 300
#define SEQ_MAX UINT64_C(9007199254740991) /* the general parser's integer limit */

struct cur {
	const char *p, *end;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void skip_ws(struct cur *c)
{
	while (c->p < c->end && is_ws(*c->p))
		c->p++;
}

/* Consumes ch (after white space). */
static bool expect(struct cur *c, char ch)
{
	skip_ws(c);
	if (c->p >= c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

/* A string of printable ASCII without escapes: its content. */
static bool string(struct cur *c, const char **s, size_t *n)
{
	if (c->p >= c->end || *c->p != '"')
		return false;
	const char *q = c->p + 1;
	for (; q < c->end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
			return false;
	if (q >= c->end)
		return false;
	*s = c->p + 1;
	*n = (size_t)(q - *s);
	c->p = q + 1;
	return true;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)? followed by white space, ',' or '}'. */
static bool number(struct cur *c, const char **s, size_t *n)
{
	const char *q = c->p;
	if (q < c->end && *q == '-')
		q++;
	if (q >= c->end || !is_digit(*q))
		return false;
	if (*q == '0')
		q++;
	else
		while (q < c->end && is_digit(*q))
			q++;
	if (q < c->end && *q == '.') {
		q++;
		if (q >= c->end || !is_digit(*q))
			return false;
		while (q < c->end && is_digit(*q))
			q++;
	}
	if (q >= c->end || !(is_ws(*q) || *q == ',' || *q == '}'))
		return false;
	if (q - c->p > PLAIN_NUMBER_MAX)
		return false;
	*s = c->p;
	*n = (size_t)(q - c->p);
	c->p = q;
	return true;
}

/* strtod of a span (it is followed by a delimiter, not NUL: copy it). */
static double number_value(const char *s, size_t n)
{
	char tmp[PLAIN_NUMBER_MAX + 1];
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return strtod(tmp, NULL);
}

static bool seq_field(struct cur *c, uint64_t *out)
{
	const char *s;
	size_t n;
	if (!number(c, &s, &n) || n > 16)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false; /* '-' or '.' */
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > SEQ_MAX)
		return false;
	*out = v;
	return true;
}

static bool ts_field(struct cur *c, int64_t now_us, int64_t *out)
{
	const char *s;
	size_t n;
	char tmp[64];
	if (!string(c, &s, &n) || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return time_parse_rfc3339(tmp, out) == 0 &&
	       *out <= now_us + (int64_t)PAYLOAD_MAX_FUTURE_S * 1000000;
}

static bool run_hours_field(struct cur *c, struct payload_telemetry *t)
{
	const char *s;
	size_t n;
	if (c->p < c->end && *c->p == '-')
		return false; /* negative: the general parser's error */
	if (!number(c, &s, &n) || n >= 32)
		return false;
	t->has_run_hours = true;
	t->run_hours = number_value(s, n);
	t->run_hours_raw = s;
	t->run_hours_len = n;
	return true;
}

static bool metric_name(const char *s, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* {"name": number, ...}: 1..PAYLOAD_MAX_METRICS names, each once. */
static bool metrics_field(struct cur *c, struct payload_telemetry *t)
{
	const char *start = c->p, *names[PAYLOAD_MAX_METRICS];
	size_t lens[PAYLOAD_MAX_METRICS], count = 0;
	if (!expect(c, '{'))
		return false;
	for (;;) {
		const char *k, *v;
		size_t kn, vn;
		skip_ws(c);
		if (count == PAYLOAD_MAX_METRICS || !string(c, &k, &kn) || !metric_name(k, kn))
			return false;
		for (size_t i = 0; i < count; i++)
			if (lens[i] == kn && memcmp(names[i], k, kn) == 0)
				return false;
		names[count] = k;
		lens[count++] = kn;
		if (!expect(c, ':'))
			return false;
		skip_ws(c);
		if (!number(c, &v, &vn))
			return false;
		skip_ws(c);
		if (c->p < c->end && *c->p == '}')
			break;
		if (!expect(c, ','))
			return false;
	}
	c->p++;
	t->metrics_raw = start;
	t->metrics_len = (size_t)(c->p - start);
	return true;
}

int payload_telemetry_fast(const char *buf, size_t len, int64_t now_us,
			   struct payload_telemetry *out)
{
	struct payload_telemetry t = { 0 };
	struct cur c = { buf, buf + len };
	bool seen[4] = { false, false, false, false }; /* seq, ts, run_hours, metrics */
	static const char *const fields[4] = { "seq", "ts", "run_hours", "metrics" };

	if (buf == NULL || len == 0 || len > JSON_MAX_PAYLOAD || !expect(&c, '{'))
		return 1;
	for (;;) {
		const char *k;
		size_t kn;
		int f;
		skip_ws(&c);
		if (!string(&c, &k, &kn))
			return 1;
		for (f = 0; f < 4; f++)
			if (strlen(fields[f]) == kn && memcmp(fields[f], k, kn) == 0)
				break;
		if (f == 4 || seen[f] || !expect(&c, ':'))
			return 1;
		seen[f] = true;
		skip_ws(&c);
		bool ok = f == 0   ? seq_field(&c, &t.seq)
			  : f == 1 ? ts_field(&c, now_us, &t.ts_us)
			  : f == 2 ? run_hours_field(&c, &t)
				   : metrics_field(&c, &t);
		if (!ok)
			return 1;
		skip_ws(&c);
		if (c.p < c.end && *c.p == '}')
			break;
		if (!expect(&c, ','))
			return 1;
	}
	c.p++;
	skip_ws(&c);
	if (c.p != c.end || !seen[0] || !seen[1] || !seen[3])
		return 1;
	*out = t;
	return 0;
}

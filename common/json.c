/*
 * Strict JSON from outside, on top of cJSON 1.7.15.
 *
 * cJSON is lenient in ways a contract must not be: it skips any byte
 * <= 0x20 as whitespace, keeps raw control characters inside strings,
 * accepts numbers such as "01", "1." and "-.5" (it hands a run of number
 * characters to strtod), silently truncates strings at "\u0000", keeps the
 * last of repeated keys invisible behind the first, and turns 1e999 into
 * inf. So before cJSON sees a payload, one pass here checks the lexical
 * rules of RFC 8259 that cJSON skips; after it, one walk refuses repeated
 * keys; and the getters refuse non-finite numbers.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "timeutil.h"

/*
 * Largest integer a double holds exactly together with all smaller ones
 * (2^53 - 1): 2^53 + 1 would silently read as 2^53, so 2^53 is refused too.
 */
#define JSON_INT_MAX 9007199254740991.0

void json_err_set(struct json_err *e, const char *reason, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}

bool json_utf8_valid(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation byte, 0xc0/0xc1 overlong, or > U+10FFFF */
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, UTF-16 surrogates, beyond Unicode. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Checks one number token at buf[*i] against RFC 8259:
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
 * and that no number character follows it. Advances *i past it.
 */
static int lex_number(const char *buf, size_t len, size_t *i)
{
	size_t p = *i;

	if (p < len && buf[p] == '-')
		p++;
	if (p >= len || !is_digit(buf[p]))
		return -1;
	if (buf[p] == '0') {
		p++;
	} else {
		while (p < len && is_digit(buf[p]))
			p++;
	}
	if (p < len && buf[p] == '.') {
		p++;
		if (p >= len || !is_digit(buf[p]))
			return -1;
		while (p < len && is_digit(buf[p]))
			p++;
	}
	if (p < len && (buf[p] == 'e' || buf[p] == 'E')) {
		p++;
		if (p < len && (buf[p] == '+' || buf[p] == '-'))
			p++;
		if (p >= len || !is_digit(buf[p]))
			return -1;
		while (p < len && is_digit(buf[p]))
			p++;
	}
	if (p < len && (is_digit(buf[p]) || buf[p] == '.' || buf[p] == '+' || buf[p] == '-' ||
			buf[p] == 'e' || buf[p] == 'E'))
		return -1;
	*i = p;
	return 0;
}

/*
 * The lexical rules cJSON does not enforce (see the top of the file). The
 * grammar itself (brackets, commas, literals, escapes) is left to cJSON.
 */
static int lex_check(const char *buf, size_t len, struct json_err *e)
{
	size_t i = 0;

	while (i < len) {
		char c = buf[i];

		if (c == '"') {
			for (i++;; i++) {
				if (i >= len) {
					json_err_set(e, "bad_json", "unterminated string");
					return -1;
				}
				c = buf[i];
				if (c == '"')
					break;
				if ((unsigned char)c < 0x20) {
					json_err_set(e, "bad_json", "control character in string at byte %zu", i);
					return -1;
				}
				if (c == '\\') {
					/* cJSON checks escapes; we only refuse what it would truncate. */
					if (i + 5 < len && memcmp(buf + i + 1, "u0000", 5) == 0) {
						json_err_set(e, "bad_json", "\\u0000 in string at byte %zu", i);
						return -1;
					}
					i++;
				}
			}
			i++;
		} else if (c == '-' || is_digit(c)) {
			if (lex_number(buf, len, &i) < 0) {
				json_err_set(e, "bad_json", "malformed number at byte %zu", i);
				return -1;
			}
		} else if ((unsigned char)c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			json_err_set(e, "bad_json", "control character at byte %zu", i);
			return -1;
		} else {
			i++;
		}
	}
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuses an object, at any depth, that names a key twice. */
static int check_dup_keys(const cJSON *v, struct json_err *e)
{
	const cJSON *c;
	size_t n = 0, k = 0;
	const char **keys = NULL;
	int rc = -1;

	for (c = v->child; c; c = c->next) {
		n++;
		if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && check_dup_keys(c, e) < 0)
			return -1;
	}
	if (!cJSON_IsObject(v) || n < 2)
		return 0;
	/* Sorting, not comparing all pairs: a 64 KiB object has ~10,000 keys. */
	keys = malloc(n * sizeof(*keys));
	if (!keys) {
		json_err_set(e, "bad_json", "out of memory");
		return -1;
	}
	for (c = v->child; c; c = c->next)
		keys[k++] = c->string ? c->string : "";
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (k = 1; k < n; k++) {
		if (strcmp(keys[k - 1], keys[k]) == 0) {
			json_err_set(e, "bad_json", "%.100s: duplicate key", keys[k]);
			goto out;
		}
	}
	rc = 0;
out:
	free(keys);
	return rc;
}

cJSON *json_parse_object(const char *buf, size_t len, struct json_err *e)
{
	char *copy = NULL;
	cJSON *root = NULL;

	if (len > JSON_MAX_PAYLOAD) {
		json_err_set(e, "too_large", "payload of %zu bytes exceeds %d", len, JSON_MAX_PAYLOAD);
		goto out;
	}
	if (!buf || len == 0) {
		json_err_set(e, "bad_json", "empty payload");
		goto out;
	}
	if (!json_utf8_valid(buf, len)) {
		json_err_set(e, "bad_json", "invalid UTF-8");
		goto out;
	}
	/* A NUL would end cJSON's view early and hide whatever follows it. */
	if (memchr(buf, '\0', len)) {
		json_err_set(e, "bad_json", "NUL byte in payload");
		goto out;
	}
	if (lex_check(buf, len, e) < 0)
		goto out;
	/*
	 * MQTT payloads are not NUL-terminated. With require_null_terminated,
	 * cJSON wants the terminator inside the length it is given, and that
	 * is how it refuses trailing garbage: copy and terminate.
	 */
	copy = malloc(len + 1);
	if (!copy) {
		json_err_set(e, "bad_json", "out of memory");
		goto out;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, 1);
	if (!root) {
		json_err_set(e, "bad_json", "not valid JSON");
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		json_err_set(e, "schema", "top level must be an object");
		goto fail;
	}
	if (check_dup_keys(root, e) < 0)
		goto fail;
	goto out;
fail:
	cJSON_Delete(root);
	root = NULL;
out:
	free(copy);
	return root;
}

/*
 * Common start of every getter: finds key. Returns 0 with *item set, 1 when
 * absent (or null) and optional, -1 when absent and required.
 */
static int find(const cJSON *o, const char *key, unsigned flags, const cJSON **item,
		struct json_err *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v)) {
		if (flags & JSON_REQUIRED) {
			json_err_set(e, "schema", "%s: is required", key);
			return -1;
		}
		return 1;
	}
	*item = v;
	return 0;
}

int json_get_str(const cJSON *o, const char *key, unsigned flags, size_t max_len,
		 const char **out, struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);

	if (rc != 0)
		return rc;
	if (!cJSON_IsString(v) || !v->valuestring) {
		json_err_set(e, "schema", "%s: must be a string", key);
		return -1;
	}
	if (flags & JSON_ID) {
		if (!domain_id_valid(v->valuestring)) {
			json_err_set(e, "schema", "%s: must be 1-64 characters of [A-Za-z0-9._-]", key);
			return -1;
		}
	}
	if (max_len > 0 && strlen(v->valuestring) > max_len) {
		json_err_set(e, "schema", "%s: longer than %zu bytes", key, max_len);
		return -1;
	}
	*out = v->valuestring;
	return 0;
}

/* A number that is an integer within +-JSON_INT_MAX? */
static bool exact_int(const cJSON *v)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	return isfinite(d) && d == floor(d) && fabs(d) <= JSON_INT_MAX;
}

int json_get_int(const cJSON *o, const char *key, unsigned flags, int64_t min, int64_t max,
		 int64_t *out, struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);
	int64_t n;

	if (rc != 0)
		return rc;
	if (!exact_int(v)) {
		json_err_set(e, "schema", "%s: must be an integer", key);
		return -1;
	}
	n = (int64_t)v->valuedouble;
	if (n < min || n > max) {
		json_err_set(e, "schema", "%s: must be between %lld and %lld", key, (long long)min,
			     (long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

int json_get_u64(const cJSON *o, const char *key, unsigned flags, uint64_t *out,
		 struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);

	if (rc != 0)
		return rc;
	if (!exact_int(v) || v->valuedouble < 0) {
		json_err_set(e, "schema", "%s: must be an unsigned integer", key);
		return -1;
	}
	*out = (uint64_t)v->valuedouble;
	return 0;
}

int json_get_num(const cJSON *o, const char *key, unsigned flags, double *out,
		 struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);

	if (rc != 0)
		return rc;
	/* 1e999 parses to inf in cJSON: refuse it here, once for all callers. */
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
		json_err_set(e, "schema", "%s: must be a finite number", key);
		return -1;
	}
	*out = v->valuedouble;
	return 0;
}

int json_get_bool(const cJSON *o, const char *key, unsigned flags, bool *out,
		  struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);

	if (rc != 0)
		return rc;
	if (!cJSON_IsBool(v)) {
		json_err_set(e, "schema", "%s: must be true or false", key);
		return -1;
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

int json_get_time(const cJSON *o, const char *key, unsigned flags, int64_t *out_us,
		  struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);
	int64_t us;

	if (rc != 0)
		return rc;
	if (!cJSON_IsString(v) || !v->valuestring) {
		json_err_set(e, "schema", "%s: must be an RFC 3339 timestamp string", key);
		return -1;
	}
	if (time_parse_rfc3339(v->valuestring, &us) < 0) {
		json_err_set(e, "bad_timestamp", "%s: not an RFC 3339 timestamp", key);
		return -1;
	}
	*out_us = us;
	return 0;
}

int json_get_object(const cJSON *o, const char *key, unsigned flags, const cJSON **out,
		    struct json_err *e)
{
	const cJSON *v = NULL;
	int rc = find(o, key, flags, &v, e);

	if (rc != 0)
		return rc;
	if (!cJSON_IsObject(v)) {
		json_err_set(e, "schema", "%s: must be an object", key);
		return -1;
	}
	*out = v;
	return 0;
}

char *json_print(const cJSON *v)
{
	return v ? cJSON_PrintUnformatted(v) : NULL;
}

static size_t skip_ws(const char *buf, size_t len, size_t i)
{
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	return i;
}

/* buf[i] is the opening quote of a string: the index after its closing one. */
static size_t skip_string(const char *buf, size_t len, size_t i, bool *escaped)
{
	for (i++; i < len && buf[i] != '"'; i++) {
		if (buf[i] == '\\') {
			i++;
			*escaped = true;
		}
	}
	return i + 1;
}

/* buf[i] starts a value: the index after its last byte. */
static size_t skip_value(const char *buf, size_t len, size_t i)
{
	bool esc = false;
	int depth = 0;

	if (buf[i] == '"')
		return skip_string(buf, len, i, &esc);
	if (buf[i] != '{' && buf[i] != '[') {
		while (i < len && buf[i] != ',' && buf[i] != '}' && buf[i] != ']' && buf[i] != ' ' &&
		       buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
			i++;
		return i;
	}
	for (; i < len; i++) {
		if (buf[i] == '"') {
			i = skip_string(buf, len, i, &esc) - 1;
		} else if (buf[i] == '{' || buf[i] == '[') {
			depth++;
		} else if (buf[i] == '}' || buf[i] == ']') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return i;
}

int json_raw_member(const char *buf, size_t len, const char *key, const char **val,
		    size_t *val_len)
{
	size_t klen = strlen(key);
	size_t i = skip_ws(buf, len, 0);

	if (i >= len || buf[i] != '{')
		return -1;
	for (i = skip_ws(buf, len, i + 1); i < len && buf[i] == '"';) {
		bool escaped = false;
		size_t k = i + 1;
		i = skip_string(buf, len, i, &escaped);
		if (escaped)
			return -1; /* "\u006detrics" would be "metrics" to cJSON */
		bool match = i - 1 - k == klen && memcmp(buf + k, key, klen) == 0;
		i = skip_ws(buf, len, i);
		if (i >= len || buf[i] != ':')
			return -1;
		i = skip_ws(buf, len, i + 1);
		if (i >= len)
			return -1;
		size_t start = i;
		i = skip_value(buf, len, i);
		if (match) {
			*val = buf + start;
			*val_len = i - start;
			return 0;
		}
		i = skip_ws(buf, len, i);
		if (i < len && buf[i] == ',')
			i = skip_ws(buf, len, i + 1);
	}
	return 1;
}

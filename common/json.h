#ifndef SC_COMMON_JSON_H
#define SC_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/*
 * Strict validation of JSON from outside on top of cJSON.
 *
 * Every getter takes an object, a key and flags, and either sets *out and
 * returns 0, returns 1 when the key is absent and not JSON_REQUIRED (out
 * untouched), or returns -1 and fills *e. A JSON null counts as absent.
 * Strings returned point into the cJSON tree (owned by it).
 */

#define JSON_MAX_PAYLOAD (64 * 1024)

enum json_flags {
	JSON_REQUIRED = 1 << 0,
	JSON_ID = 1 << 1, /* string must follow the identifier rule (domain_id_valid) */
};

/* Why a payload was refused: `reason` is a contract section 2.6 reason. */
struct json_err {
	const char *reason;  /* "bad_json", "too_large", "schema", "bad_metric", "bad_timestamp" */
	char detail[160];    /* e.g. "seq: must be an unsigned integer" */
};

/* Fills e (NULL is allowed); reason must be a static string. */
void json_err_set(struct json_err *e, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Parses a payload from outside: at most JSON_MAX_PAYLOAD bytes
 * ("too_large"), valid UTF-8 and valid JSON with nothing after it
 * ("bad_json"), an object at the top ("schema"), no key repeated in any
 * object ("bad_json"). Stricter than cJSON alone: raw control characters,
 * NUL bytes, "\u0000" and numbers outside the RFC 8259 grammar ("01",
 * "1.", "-.5") are "bad_json" too; NaN and Infinity are not JSON. buf
 * need not be NUL-terminated. Returns the tree (caller frees with
 * cJSON_Delete) or NULL with *e filled.
 */
cJSON *json_parse_object(const char *buf, size_t len, struct json_err *e)
	__attribute__((warn_unused_result));

/* Is the buffer valid UTF-8 (no overlongs, no surrogates)? */
bool json_utf8_valid(const char *buf, size_t len);

int json_get_str(const cJSON *o, const char *key, unsigned flags, size_t max_len,
		 const char **out, struct json_err *e) __attribute__((warn_unused_result));
/* Integer in [min, max] (no fraction, within +-(2^53 - 1)). */
int json_get_int(const cJSON *o, const char *key, unsigned flags, int64_t min,
		 int64_t max, int64_t *out, struct json_err *e) __attribute__((warn_unused_result));
/*
 * Unsigned integer 0..2^53 - 1. cJSON keeps numbers as doubles, which hold
 * every integer only up to there (2^53 + 1 would read as 2^53), so larger
 * values are refused rather than silently rounded: a documented limit of
 * the 64-bit `seq` of the contract.
 */
int json_get_u64(const cJSON *o, const char *key, unsigned flags, uint64_t *out,
		 struct json_err *e) __attribute__((warn_unused_result));
/* Finite number: 1e999 (inf in cJSON) is "schema"; map it to "bad_metric" where apt. */
int json_get_num(const cJSON *o, const char *key, unsigned flags, double *out,
		 struct json_err *e) __attribute__((warn_unused_result));
int json_get_bool(const cJSON *o, const char *key, unsigned flags, bool *out,
		  struct json_err *e) __attribute__((warn_unused_result));
/* RFC 3339 timestamp; an unparsable string is "bad_timestamp", a non-string "schema". */
int json_get_time(const cJSON *o, const char *key, unsigned flags, int64_t *out_us,
		  struct json_err *e) __attribute__((warn_unused_result));
/* Object member (returned pointer owned by the tree). */
int json_get_object(const cJSON *o, const char *key, unsigned flags, const cJSON **out,
		    struct json_err *e) __attribute__((warn_unused_result));

/* Serialises compactly; caller frees with free(). NULL on allocation failure. */
char *json_print(const cJSON *v);

/*
 * The text of a top-level member's value as it stands in buf, a payload
 * json_parse_object accepted (so it is valid JSON): *val points into buf,
 * *val_len bytes. Lets a caller pass a validated object on as it came,
 * instead of printing the parsed tree again (cJSON prints a number with up
 * to three printf/scanf calls). Returns 0, 1 when the object has no such
 * key, -1 when it cannot tell (a key written with escapes): print the tree
 * then.
 */
int json_raw_member(const char *buf, size_t len, const char *key, const char **val,
		    size_t *val_len) __attribute__((warn_unused_result));

#endif

/*
 * Checks the master-data file against the section tables of
 * import_sections.c before any of it reaches the database, and turns each
 * entry into the text parameters of its section's upsert.
 *
 * One generic walk validates an entry field by field (types, ranges, the
 * identifier rule, dates, RFC 3339, calendars' hours, skills); unknown
 * fields and sections, and two entries with the same identity, are errors.
 */
#include "import.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "json.h"
#include "timeutil.h"

/* Longest free text (names, addresses) accepted. */
#define TEXT_MAX 4096
/* Most elements in one list field (coverage, holidays, ...). */
#define LIST_MAX 10000

static void err_set(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static bool has(const cJSON *e, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);

	return v && !cJSON_IsNull(v);
}

static const char *str_of(const cJSON *e, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int import_param_index(const struct import_section *s, size_t field)
{
	int p = 0;

	for (size_t i = 0; i < field && i < s->nfields; i++)
		p += s->fields[i].type == IMPORT_HOURS ? 2 : 1;
	return p;
}

int import_nparams(const struct import_section *s)
{
	return s->object ? 2 : import_param_index(s, s->nfields);
}

/* ---- a growing string --------------------------------------------------- */

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_addf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_addf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *grown = realloc(b->p, cap);
		if (!grown) {
			b->oom = true;
			return;
		}
		b->p = grown;
		b->cap = cap;
	}
}

/* Takes the string (NULL when out of memory). */
static char *sb_take(struct sb *b)
{
	if (b->oom) {
		free(b->p);
		b->p = NULL;
	}
	if (!b->p)
		return b->oom ? NULL : strdup("");
	return b->p;
}

/* ---- labels ------------------------------------------------------------- */

/* `devices[3] (id "D0004")`: the entry as a reader finds it in the file. */
static char *make_label(const struct import_section *s, size_t index, const cJSON *e)
{
	struct sb b = {0};
	bool first = true;

	sb_addf(&b, "%s[%zu]", s->name, index);
	for (size_t f = 0; cJSON_IsObject(e) && f < s->nfields; f++) {
		const cJSON *v;

		if (!(s->fields[f].flags & IMPORT_KEY))
			continue;
		v = cJSON_GetObjectItemCaseSensitive(e, s->fields[f].key);
		if (cJSON_IsString(v)) {
			char clean[65];
			size_t n = 0;

			/* Shown on a terminal: no control characters from the file. */
			for (const char *c = v->valuestring; *c && n < sizeof(clean) - 1; c++)
				clean[n++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
			clean[n] = '\0';
			sb_addf(&b, "%s%s \"%s%s\"", first ? " (" : ", ", s->fields[f].key, clean,
				strlen(v->valuestring) > n ? "..." : "");
		} else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
			sb_addf(&b, "%s%s %g", first ? " (" : ", ", s->fields[f].key, v->valuedouble);
		} else {
			continue;
		}
		first = false;
	}
	if (!first)
		sb_addf(&b, ")");
	return sb_take(&b);
}

/* ---- one field ---------------------------------------------------------- */

static const char *range_text(const struct import_field *f, char *buf, size_t len)
{
	bool lo = f->flags & (IMPORT_MIN | IMPORT_MIN_EXCL);
	bool hi = f->flags & (IMPORT_MAX | IMPORT_MAX_EXCL);

	if ((f->flags & IMPORT_MIN) && (f->flags & IMPORT_MAX))
		snprintf(buf, len, "must be between %g and %g", f->min, f->max);
	else if (lo && hi)
		snprintf(buf, len, "must be %s %g and %s %g",
			 f->flags & IMPORT_MIN ? "at least" : "greater than", f->min,
			 f->flags & IMPORT_MAX ? "at most" : "less than", f->max);
	else if (lo)
		snprintf(buf, len, "must be %s %g",
			 f->flags & IMPORT_MIN ? "at least" : "greater than", f->min);
	else
		snprintf(buf, len, "must be %s %g",
			 f->flags & IMPORT_MAX ? "at most" : "less than", f->max);
	return buf;
}

static bool in_range(const struct import_field *f, double v)
{
	if ((f->flags & IMPORT_MIN) && v < f->min)
		return false;
	if ((f->flags & IMPORT_MIN_EXCL) && v <= f->min)
		return false;
	if ((f->flags & IMPORT_MAX) && v > f->max)
		return false;
	if ((f->flags & IMPORT_MAX_EXCL) && v >= f->max)
		return false;
	return true;
}

/* "HH:MM" with HH 00..24 (24 only as 24:00); minutes of the day, or -1. */
static int parse_hhmm(const char *s)
{
	int h, m;

	if (!(s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':' &&
	      s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9'))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || (h == 24 && m != 0))
		return -1;
	return h * 60 + m;
}

/* Checks the elements of a list field and writes its array literal. */
static int build_list(const struct import_field *f, const cJSON *v, char **out, char *err,
		      size_t len)
{
	struct sb b = {0};
	const cJSON *el;
	int n = 0;
	bool seen[8] = {false};

	if (!cJSON_IsArray(v)) {
		err_set(err, len, "%s: must be an array", f->key);
		return -1;
	}
	if (cJSON_GetArraySize(v) > LIST_MAX) {
		err_set(err, len, "%s: more than %d elements", f->key, LIST_MAX);
		return -1;
	}
	if ((f->flags & IMPORT_NONEMPTY) && cJSON_GetArraySize(v) == 0) {
		err_set(err, len, "%s: must not be empty", f->key);
		return -1;
	}
	sb_addf(&b, "{");
	cJSON_ArrayForEach(el, v) {
		int64_t us;

		if (n > 0)
			sb_addf(&b, ",");
		switch (f->type) {
		case IMPORT_ID_LIST:
			/* Identifiers need no quoting inside an array literal. */
			if (!cJSON_IsString(el) || !domain_id_valid(el->valuestring)) {
				err_set(err, len, "%s[%d]: must be an identifier (1-64 characters of "
					"[A-Za-z0-9._-])", f->key, n);
				goto fail;
			}
			sb_addf(&b, "%s", el->valuestring);
			break;
		case IMPORT_WEEKDAYS: {
			double d = cJSON_IsNumber(el) ? el->valuedouble : 0;

			if (!cJSON_IsNumber(el) || d != floor(d) || d < 1 || d > 7) {
				err_set(err, len, "%s[%d]: must be an ISO weekday 1 (Monday) to 7 (Sunday)",
					f->key, n);
				goto fail;
			}
			if (seen[(int)d]) {
				err_set(err, len, "%s[%d]: %d appears twice", f->key, n, (int)d);
				goto fail;
			}
			seen[(int)d] = true;
			sb_addf(&b, "%d", (int)d);
			break;
		}
		case IMPORT_DATE_LIST:
			if (!cJSON_IsString(el) || time_parse_date(el->valuestring, &us) < 0) {
				err_set(err, len, "%s[%d]: must be a date YYYY-MM-DD", f->key, n);
				goto fail;
			}
			sb_addf(&b, "%s", el->valuestring);
			break;
		default:
			err_set(err, len, "%s: internal error: not a list", f->key);
			goto fail;
		}
		n++;
	}
	sb_addf(&b, "}");
	*out = sb_take(&b);
	if (!*out) {
		err_set(err, len, "out of memory");
		return -1;
	}
	return 0;
fail:
	free(sb_take(&b));
	return -1;
}

static int build_skills(const struct import_field *f, const cJSON *v, char **out, char *err,
			size_t len)
{
	struct sb b = {0};
	const cJSON *el;
	bool first = true;

	if (!cJSON_IsObject(v)) {
		err_set(err, len, "%s: must be an object of skill name -> grade 1..4", f->key);
		return -1;
	}
	sb_addf(&b, "{");
	cJSON_ArrayForEach(el, v) {
		double g = cJSON_IsNumber(el) ? el->valuedouble : 0;

		if (!domain_id_valid(el->string)) {
			err_set(err, len, "%s: skill name \"%.64s\" must be 1-64 characters of "
				"[A-Za-z0-9._-]", f->key, el->string);
			goto fail;
		}
		if (!cJSON_IsNumber(el) || g != floor(g) || grade_check((long)g) < 0) {
			err_set(err, len, "%s.%s: must be a grade 1 to 4", f->key, el->string);
			goto fail;
		}
		/* Skill names follow the identifier rule: no JSON escaping needed. */
		sb_addf(&b, "%s\"%s\":%d", first ? "" : ",", el->string, (int)g);
		first = false;
	}
	sb_addf(&b, "}");
	*out = sb_take(&b);
	if (!*out) {
		err_set(err, len, "out of memory");
		return -1;
	}
	return 0;
fail:
	free(sb_take(&b));
	return -1;
}

static char *dup_text(const char *s, char *err, size_t len)
{
	char *p = strdup(s);

	if (!p)
		err_set(err, len, "out of memory");
	return p;
}

static char *format_num(double d, char *err, size_t len)
{
	char buf[40];

	/* %.17g round-trips a double exactly through PostgreSQL's float8in. */
	snprintf(buf, sizeof(buf), "%.17g", d);
	return dup_text(buf, err, len);
}

/*
 * Validates field f of entry e and writes its parameter(s) to params[0]
 * (and params[1] for hours). Absent fields take their default. 0 or -1.
 */
static int build_field(const struct import_field *f, const cJSON *e, char **params, char *err,
		       size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, f->key);
	struct json_err je = {0};
	char buf[160];

	if (!v || cJSON_IsNull(v)) {
		if (f->flags & IMPORT_REQUIRED) {
			err_set(err, len, "%s: is required", f->key);
			return -1;
		}
		if (f->dflt_from && has(e, f->dflt_from)) {
			/* Already validated as an identifier by its own field. */
			snprintf(buf, sizeof(buf), "{%s}", str_of(e, f->dflt_from));
			return (params[0] = dup_text(buf, err, len)) ? 0 : -1;
		}
		if (f->dflt && !(params[0] = dup_text(f->dflt, err, len)))
			return -1;
		return 0;
	}
	switch (f->type) {
	case IMPORT_ID:
	case IMPORT_MODEL:
	case IMPORT_METRIC:
	case IMPORT_TEXT:
	case IMPORT_TZ:
	case IMPORT_ENUM:
	case IMPORT_DATE:
	case IMPORT_HOURS: {
		const char *s;

		if (!cJSON_IsString(v)) {
			err_set(err, len, "%s: must be a string", f->key);
			return -1;
		}
		s = v->valuestring;
		if (f->type == IMPORT_ID && !domain_id_valid(s)) {
			err_set(err, len, "%s: must be 1-64 characters of [A-Za-z0-9._-]", f->key);
			return -1;
		}
		if (f->type == IMPORT_MODEL && strcmp(s, "*") != 0 && !domain_id_valid(s)) {
			err_set(err, len, "%s: must be \"*\" or 1-64 characters of [A-Za-z0-9._-]",
				f->key);
			return -1;
		}
		if (f->type == IMPORT_METRIC && !domain_metric_name_valid(s)) {
			err_set(err, len, "%s: must be 1-32 characters of [a-z0-9_]", f->key);
			return -1;
		}
		if (f->type == IMPORT_TEXT && strlen(s) > TEXT_MAX) {
			err_set(err, len, "%s: longer than %d bytes", f->key, TEXT_MAX);
			return -1;
		}
		if (f->type == IMPORT_TEXT && (f->flags & IMPORT_NONEMPTY) && !*s) {
			err_set(err, len, "%s: must not be empty", f->key);
			return -1;
		}
		if (f->type == IMPORT_TZ && (!*s || strlen(s) > 64)) {
			err_set(err, len, "%s: must be a time zone name such as Asia/Shanghai", f->key);
			return -1;
		}
		if (f->type == IMPORT_ENUM) {
			struct sb b = {0};
			size_t i;

			for (i = 0; f->choices[i]; i++)
				if (strcmp(f->choices[i], s) == 0)
					break;
			if (!f->choices[i]) {
				for (i = 0; f->choices[i]; i++)
					sb_addf(&b, "%s%s", i ? ", " : "", f->choices[i]);
				err_set(err, len, "%s: must be one of %s", f->key, b.p ? b.p : "?");
				free(sb_take(&b));
				return -1;
			}
		}
		if (f->type == IMPORT_DATE) {
			int64_t us;

			if (time_parse_date(s, &us) < 0) {
				err_set(err, len, "%s: must be a date YYYY-MM-DD", f->key);
				return -1;
			}
		}
		if (f->type == IMPORT_HOURS) {
			int start = strlen(s) == 11 && s[5] == '-' ? parse_hhmm(s) : -1;
			int end = start >= 0 ? parse_hhmm(s + 6) : -1;

			if (start < 0 || end < 0 || start >= 24 * 60) {
				err_set(err, len, "%s: must be \"HH:MM-HH:MM\" (local time, e.g. "
					"\"08:30-17:30\")", f->key);
				return -1;
			}
			/* An end of 00:00 means midnight, as in the calendar functions. */
			if (end != 0 && end <= start) {
				err_set(err, len, "%s: the end must be after the start", f->key);
				return -1;
			}
			snprintf(buf, sizeof(buf), "%.5s", s);
			if (!(params[0] = dup_text(buf, err, len)))
				return -1;
			return (params[1] = dup_text(s + 6, err, len)) ? 0 : -1;
		}
		return (params[0] = dup_text(s, err, len)) ? 0 : -1;
	}
	case IMPORT_TIMESTAMP: {
		int64_t us;

		if (json_get_time(e, f->key, 0, &us, &je) < 0) {
			err_set(err, len, "%s", je.detail);
			return -1;
		}
		/* PostgreSQL reads RFC 3339 itself, to the microsecond. */
		return (params[0] = dup_text(v->valuestring, err, len)) ? 0 : -1;
	}
	case IMPORT_NUM: {
		double d;

		if (json_get_num(e, f->key, 0, &d, &je) < 0) {
			err_set(err, len, "%s", je.detail);
			return -1;
		}
		if (!in_range(f, d)) {
			err_set(err, len, "%s: %s", f->key, range_text(f, buf, sizeof(buf)));
			return -1;
		}
		return (params[0] = format_num(d, err, len)) ? 0 : -1;
	}
	case IMPORT_INT: {
		int64_t n;

		if (json_get_int(e, f->key, 0, (int64_t)f->min, (int64_t)f->max, &n, &je) < 0) {
			err_set(err, len, "%s", je.detail);
			return -1;
		}
		snprintf(buf, sizeof(buf), "%lld", (long long)n);
		return (params[0] = dup_text(buf, err, len)) ? 0 : -1;
	}
	case IMPORT_BOOL: {
		bool b;

		if (json_get_bool(e, f->key, 0, &b, &je) < 0) {
			err_set(err, len, "%s", je.detail);
			return -1;
		}
		return (params[0] = dup_text(b ? "true" : "false", err, len)) ? 0 : -1;
	}
	case IMPORT_SKILLS:
		return build_skills(f, v, &params[0], err, len);
	case IMPORT_ID_LIST:
	case IMPORT_WEEKDAYS:
	case IMPORT_DATE_LIST:
		return build_list(f, v, &params[0], err, len);
	}
	err_set(err, len, "%s: internal error: unknown field type", f->key);
	return -1;
}

/* ---- sections ----------------------------------------------------------- */

static void row_free(struct import_row *r)
{
	free(r->label);
	for (int i = 0; i < IMPORT_MAX_PARAMS; i++)
		free(r->params[i]);
}

/* Checks one array entry and fills row. On failure err holds the reason
 * (without the label, which row->label holds if it could be made). */
static int build_entry(const struct import_section *s, const cJSON *e, struct import_row *row,
		       char *err, size_t len)
{
	const cJSON *member;

	if (!cJSON_IsObject(e)) {
		err_set(err, len, "must be an object");
		return -1;
	}
	cJSON_ArrayForEach(member, e) {
		size_t f;

		for (f = 0; f < s->nfields; f++)
			if (strcmp(s->fields[f].key, member->string) == 0)
				break;
		if (f == s->nfields) {
			err_set(err, len, "unknown field \"%.64s\"", member->string);
			return -1;
		}
	}
	for (size_t f = 0; f < s->nfields; f++) {
		if (build_field(&s->fields[f], e, &row->params[import_param_index(s, f)], err,
				len) < 0)
			return -1;
		if (has(e, s->fields[f].key))
			row->given |= 1UL << f;
	}
	if (s->check && s->check(e, err, len) < 0)
		return -1;
	return 0;
}

/* The settings object: one row (key, value) per key present. */
static int build_settings(const struct import_section *s, const cJSON *obj,
			  struct import_rows *out, char *err, size_t len)
{
	const cJSON *member;
	char why[256];

	if (!cJSON_IsObject(obj)) {
		err_set(err, len, "%s: must be an object", s->name);
		return -1;
	}
	out->rows = calloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof(*out->rows));
	if (!out->rows) {
		err_set(err, len, "out of memory");
		return -1;
	}
	cJSON_ArrayForEach(member, obj) {
		struct import_row *row = &out->rows[out->n];
		size_t f;

		for (f = 0; f < s->nfields; f++)
			if (strcmp(s->fields[f].key, member->string) == 0)
				break;
		if (f == s->nfields) {
			err_set(err, len, "%s: unknown key \"%.64s\" (the keys are offer_timeout_s, "
				"max_offer_attempts, travel_kmh, return_visit_after_s, kpi_interval_s, "
				"lifecycle_scan_s, complaint_reply_s, complaint_resolve_s, "
				"complaint_escalation_level, return_visit_timeout_s)",
				s->name, member->string);
			return -1;
		}
		out->n++;
		if (build_field(&s->fields[f], obj, &row->params[1], why, sizeof(why)) < 0) {
			err_set(err, len, "%s: %s", s->name, why);
			return -1;
		}
		if (!row->params[1]) {
			err_set(err, len, "%s: %s: must be a number", s->name, member->string);
			return -1;
		}
		row->params[0] = strdup(member->string);
		row->label = malloc(strlen(s->name) + strlen(member->string) + 2);
		if (!row->params[0] || !row->label) {
			err_set(err, len, "out of memory");
			return -1;
		}
		snprintf(row->label, strlen(s->name) + strlen(member->string) + 2, "%s.%s",
			 s->name, member->string);
	}
	return 0;
}

struct key_ref {
	char *key;    /* the entry's identity, key fields joined by \x1f */
	size_t index;
};

static int cmp_key_ref(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Refuses two entries of one section with the same identity: the second
 * would silently overwrite the first, which is always a mistake in the
 * file. Reports the earliest entry that repeats an earlier one.
 */
static int check_duplicates(const struct import_rows *r, char *err, size_t len)
{
	const struct import_section *s = r->section;
	struct key_ref *keys = NULL;
	size_t bad = SIZE_MAX, first = 0;
	int rc = -1;

	if (r->n < 2)
		return 0;
	keys = calloc(r->n, sizeof(*keys));
	if (!keys)
		goto oom;
	for (size_t i = 0; i < r->n; i++) {
		struct sb b = {0};

		for (size_t f = 0; f < s->nfields; f++)
			if (s->fields[f].flags & IMPORT_KEY)
				sb_addf(&b, "%s\x1f", r->rows[i].params[import_param_index(s, f)]);
		keys[i].key = sb_take(&b);
		keys[i].index = i;
		if (!keys[i].key)
			goto oom;
	}
	qsort(keys, r->n, sizeof(*keys), cmp_key_ref);
	/* Sorted by (key, index): the first of each run is the original. */
	for (size_t i = 1, g = 0; i < r->n; i++) {
		if (strcmp(keys[i].key, keys[g].key) != 0) {
			g = i;
			continue;
		}
		if (keys[i].index < bad) {
			bad = keys[i].index;
			first = keys[g].index;
		}
	}
	rc = 0;
	if (bad != SIZE_MAX) {
		err_set(err, len, "%s: duplicate of %s[%zu]", r->rows[bad].label, s->name, first);
		rc = -1;
	}
	goto out;
oom:
	err_set(err, len, "out of memory");
out:
	if (keys)
		for (size_t i = 0; i < r->n; i++)
			free(keys[i].key);
	free(keys);
	return rc;
}

static int build_section(const struct import_section *s, const cJSON *v, struct import_rows *out,
			 char *err, size_t len)
{
	size_t n;
	char why[512];

	out->present = true;
	if (s->object)
		return build_settings(s, v, out, err, len);
	if (!cJSON_IsArray(v)) {
		err_set(err, len, "%s: must be an array", s->name);
		return -1;
	}
	n = (size_t)cJSON_GetArraySize(v);
	out->rows = calloc(n + 1, sizeof(*out->rows));
	if (!out->rows) {
		err_set(err, len, "out of memory");
		return -1;
	}
	for (const cJSON *e = v->child; e; e = e->next) {
		struct import_row *row = &out->rows[out->n];

		out->n++;
		row->label = make_label(s, out->n - 1, e);
		if (!row->label) {
			err_set(err, len, "out of memory");
			return -1;
		}
		if (build_entry(s, e, row, why, sizeof(why)) < 0) {
			err_set(err, len, "%s: %s", row->label, why);
			return -1;
		}
	}
	return check_duplicates(out, err, len);
}

void import_data_free(struct import_data *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nsections; i++) {
		struct import_rows *r = &d->sections[i];

		for (size_t k = 0; k < r->n; k++)
			row_free(&r->rows[k]);
		free(r->rows);
	}
	free(d->sections);
	free(d);
}

struct import_data *import_build(const cJSON *root, char *err, size_t errlen)
{
	struct import_data *d = NULL;
	const cJSON *member;

	if (!cJSON_IsObject(root)) {
		err_set(err, errlen, "the file must hold a JSON object");
		return NULL;
	}
	cJSON_ArrayForEach(member, root) {
		size_t i;

		for (i = 0; i < import_nsections; i++)
			if (strcmp(import_sections[i].name, member->string) == 0)
				break;
		if (i == import_nsections) {
			err_set(err, errlen, "unknown section \"%.64s\" (the sections are settings, "
				"provinces, calendars, customers, sites, devices, engineers, partners, "
				"alert_rules, alarm_codes, request_rules, sla_policies, escalation)",
				member->string);
			return NULL;
		}
	}
	d = calloc(1, sizeof(*d));
	if (d)
		d->sections = calloc(import_nsections, sizeof(*d->sections));
	if (!d || !d->sections) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	d->nsections = import_nsections;
	for (size_t i = 0; i < import_nsections; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, import_sections[i].name);

		d->sections[i].section = &import_sections[i];
		/* The tables above must fit struct import_row. */
		if (import_nparams(&import_sections[i]) > IMPORT_MAX_PARAMS ||
		    import_sections[i].nfields > 32) {
			err_set(err, errlen, "%s: internal error: too many fields",
				import_sections[i].name);
			goto fail;
		}
		if (!v || cJSON_IsNull(v))
			continue;
		if (build_section(&import_sections[i], v, &d->sections[i], err, errlen) < 0)
			goto fail;
	}
	return d;
fail:
	import_data_free(d);
	return NULL;
}

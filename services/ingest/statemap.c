/*
 * The latest state of each device since the last apply (statemap.h): a
 * dense array of entries with an open-addressing index by device id. Entries
 * are only added, never removed one by one; statemap_take hands them all
 * over and starts empty, so the index needs no tombstones.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "statemap.h"
#include "strbuf.h"

struct statemap {
	struct dev_state *e;
	size_t n, cap;
	uint32_t *idx;  /* entry index + 1; 0 = free; idxcap is a power of 2 */
	size_t idxcap;
	int64_t *batches;
	size_t nbatches, capbatches;
};

/* FNV-1a. */
static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct statemap *statemap_new(void)
{
	return calloc(1, sizeof(struct statemap));
}

static void clear(struct statemap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].metrics);
	free(m->e);
	free(m->idx);
	free(m->batches);
	m->e = NULL;
	m->idx = NULL;
	m->batches = NULL;
	m->n = m->cap = m->idxcap = m->nbatches = m->capbatches = 0;
}

void statemap_free(struct statemap *m)
{
	if (m == NULL)
		return;
	clear(m);
	free(m);
}

size_t statemap_count(const struct statemap *m)
{
	return m->n;
}

size_t statemap_batches(const struct statemap *m)
{
	return m->nbatches;
}

static int reindex(struct statemap *m, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (idx == NULL)
		return -1;
	for (size_t i = 0; i < m->n; i++) {
		size_t s = hash(m->e[i].device) & (cap - 1);
		while (idx[s] != 0)
			s = (s + 1) & (cap - 1);
		idx[s] = (uint32_t)(i + 1);
	}
	free(m->idx);
	m->idx = idx;
	m->idxcap = cap;
	return 0;
}

/* The entry of device, made (zeroed but for the id) if absent; NULL: out of memory. */
static struct dev_state *entry(struct statemap *m, const char *device, bool *made)
{
	*made = false;
	if (m->idxcap > 0) {
		for (size_t s = hash(device) & (m->idxcap - 1); m->idx[s] != 0;
		     s = (s + 1) & (m->idxcap - 1))
			if (strcmp(m->e[m->idx[s] - 1].device, device) == 0)
				return &m->e[m->idx[s] - 1];
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct dev_state *e = realloc(m->e, cap * sizeof(*e));
		if (e == NULL)
			return NULL;
		m->e = e;
		m->cap = cap;
	}
	/* Load factor at most 1/2. */
	if ((m->n + 1) * 2 > m->idxcap && reindex(m, m->idxcap ? m->idxcap * 2 : 512) != 0)
		return NULL;
	struct dev_state *d = &m->e[m->n];
	memset(d, 0, sizeof(*d));
	snprintf(d->device, sizeof(d->device), "%s", device);
	size_t s = hash(d->device) & (m->idxcap - 1);
	while (m->idx[s] != 0)
		s = (s + 1) & (m->idxcap - 1);
	m->idx[s] = (uint32_t)(++m->n);
	*made = true;
	return d;
}

/* One "name": value member of a flat metrics object, as spans of the text. */
struct member {
	const char *key, *val;
	size_t klen, vlen;
};

struct members {
	struct member *v;
	size_t n, cap;
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * Splits {"k": number, ...} into members. -1 for anything else (a key with
 * an escape, a value that is not a plain number, out of memory): the caller
 * merges with cJSON then.
 */
static int scan(const char *text, struct members *out)
{
	out->n = 0;
	const char *p = skip_ws(text);
	if (*p++ != '{')
		return -1;
	p = skip_ws(p);
	if (*p == '}')
		return *skip_ws(p + 1) == '\0' ? 0 : -1;
	for (;;) {
		if (*p++ != '"')
			return -1;
		const char *k = p;
		while (*p != '"' && *p != '\\' && *p != '\0')
			p++;
		if (*p != '"')
			return -1;
		size_t klen = (size_t)(p - k);
		p = skip_ws(p + 1);
		if (*p++ != ':')
			return -1;
		p = skip_ws(p);
		const char *v = p;
		while ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' ||
		       *p == 'e' || *p == 'E')
			p++;
		if (p == v)
			return -1;
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 16;
			struct member *nv = realloc(out->v, cap * sizeof(*nv));
			if (nv == NULL)
				return -1;
			out->v = nv;
			out->cap = cap;
		}
		out->v[out->n++] = (struct member){ k, v, klen, (size_t)(p - v) };
		p = skip_ws(p);
		if (*p == '}')
			return *skip_ws(p + 1) == '\0' ? 0 : -1;
		if (*p++ != ',')
			return -1;
		p = skip_ws(p);
	}
}

static bool has_key(const struct members *m, const struct member *x)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].klen == x->klen && memcmp(m->v[i].key, x->key, x->klen) == 0)
			return true;
	return false;
}

/* base with over's members on top, by cJSON (the rare texts scan refuses). */
static char *merge_json(const char *base, const char *over)
{
	cJSON *b = cJSON_Parse(base), *o = cJSON_Parse(over);
	char *out = NULL;
	if (cJSON_IsObject(b) && cJSON_IsObject(o)) {
		for (cJSON *it = o->child; it != NULL; it = it->next) {
			cJSON *copy = cJSON_Duplicate(it, true);
			if (copy == NULL)
				goto done;
			cJSON_DeleteItemFromObjectCaseSensitive(b, it->string);
			cJSON_AddItemToObject(b, it->string, copy);
		}
		out = cJSON_PrintUnformatted(b);
	}
done:
	cJSON_Delete(b);
	cJSON_Delete(o);
	return out;
}

/*
 * The metrics object of base with over's values on top (the last value of
 * each metric). Takes *over when it already holds every metric of base.
 * NULL: out of memory (base and *over untouched).
 */
static char *merge_metrics(const char *base, char **over)
{
	struct members b = { 0 }, o = { 0 };
	char *out = NULL;
	if (scan(base, &b) != 0 || scan(*over, &o) != 0) {
		out = merge_json(base, *over);
		goto done;
	}
	size_t only_base = 0;
	for (size_t i = 0; i < b.n; i++)
		only_base += !has_key(&o, &b.v[i]);
	if (only_base == 0) {
		out = *over;
		*over = NULL;
		goto done;
	}
	struct strbuf s;
	strbuf_init(&s);
	strbuf_putc(&s, '{');
	bool first = true;
	for (size_t i = 0; i < b.n; i++) {
		if (has_key(&o, &b.v[i]))
			continue;
		strbuf_puts(&s, first ? "\"" : ",\"");
		strbuf_append(&s, b.v[i].key, b.v[i].klen);
		strbuf_puts(&s, "\":");
		strbuf_append(&s, b.v[i].val, b.v[i].vlen);
		first = false;
	}
	for (size_t i = 0; i < o.n; i++) {
		strbuf_puts(&s, first ? "\"" : ",\"");
		strbuf_append(&s, o.v[i].key, o.v[i].klen);
		strbuf_puts(&s, "\":");
		strbuf_append(&s, o.v[i].val, o.v[i].vlen);
		first = false;
	}
	strbuf_putc(&s, '}');
	out = strbuf_take(&s);
done:
	free(b.v);
	free(o.v);
	return out;
}

/* Is (ts, seq) of a at or after that of b? */
static bool not_older(int64_t ats, uint64_t aseq, int64_t bts, uint64_t bseq)
{
	return ats > bts || (ats == bts && aseq >= bseq);
}

int statemap_fold(struct statemap *m, struct dev_state *src)
{
	bool made;
	struct dev_state *d = entry(m, src->device, &made);
	if (d == NULL)
		return -1;
	if (made) {
		*d = *src;
		src->metrics = NULL;
		return 0;
	}
	bool newer = not_older(src->ts_us, src->seq, d->ts_us, d->seq);
	if (src->metrics != NULL) {
		char *merged;
		if (d->metrics == NULL) {
			merged = src->metrics;
			src->metrics = NULL;
		} else if (newer) {
			merged = merge_metrics(d->metrics, &src->metrics);
		} else {
			merged = merge_metrics(src->metrics, &d->metrics);
		}
		if (merged == NULL)
			return -1;
		free(d->metrics);
		d->metrics = merged;
	}
	if (newer) {
		d->ts_us = src->ts_us;
		d->seq = src->seq;
	}
	if (src->recv_us > d->recv_us)
		d->recv_us = src->recv_us;
	if (src->run_hours[0] != '\0' &&
	    (d->run_hours[0] == '\0' ||
	     not_older(src->hours_ts_us, src->hours_seq, d->hours_ts_us, d->hours_seq))) {
		memcpy(d->run_hours, src->run_hours, sizeof(d->run_hours));
		d->hours_ts_us = src->hours_ts_us;
		d->hours_seq = src->hours_seq;
	}
	return 0;
}

int statemap_add_batch(struct statemap *m, int64_t batch_id)
{
	if (m->nbatches == m->capbatches) {
		size_t cap = m->capbatches ? m->capbatches * 2 : 64;
		int64_t *b = realloc(m->batches, cap * sizeof(*b));
		if (b == NULL)
			return -1;
		m->batches = b;
		m->capbatches = cap;
	}
	m->batches[m->nbatches++] = batch_id;
	return 0;
}

static int cmp_device(const void *a, const void *b)
{
	return strcmp(((const struct dev_state *)a)->device, ((const struct dev_state *)b)->device);
}

void statemap_take(struct statemap *m, struct state_set *out)
{
	out->e = m->e;
	out->n = m->n;
	out->batches = m->batches;
	out->nbatches = m->nbatches;
	if (out->n > 1)
		qsort(out->e, out->n, sizeof(*out->e), cmp_device);
	free(m->idx);
	memset(m, 0, sizeof(*m));
}

int statemap_put_back(struct statemap *m, struct state_set *s)
{
	int rc = 0;
	for (size_t i = 0; i < s->n; i++)
		if (statemap_fold(m, &s->e[i]) != 0)
			rc = -1;
	for (size_t i = 0; i < s->nbatches; i++)
		if (statemap_add_batch(m, s->batches[i]) != 0)
			rc = -1;
	state_set_free(s);
	return rc;
}

void state_set_free(struct state_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].metrics);
	free(s->e);
	free(s->batches);
	memset(s, 0, sizeof(*s));
}

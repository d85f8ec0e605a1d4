/* Master data version watcher and the id map (see master.h). */
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "db.h"
#include "log.h"

struct master_watch {
	struct db *db;
	struct event *timer;
	master_changed_cb changed;
	void *arg;
	long long version;  /* -1 until the first read */
	bool querying;
};

static void check(struct master_watch *w);

static void on_version(void *arg, const struct db_reply *r)
{
	struct master_watch *w = arg;
	w->querying = false;
	if (r->error != NULL) {
		log_warn("master: version query failed: %s", r->error);
		return;
	}
	if (PQntuples(r->res) != 1)
		return;
	long long v = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
	if (v != w->version) {
		if (w->version >= 0)
			log_info("master data changed version=%lld", v);
		w->version = v;
		w->changed(w->arg, v);
	}
}

static void check(struct master_watch *w)
{
	if (w->querying || !db_connected(w->db))
		return;
	w->querying = true;
	if (db_exec_sql(w->db, "SELECT version FROM master_version WHERE id = 1", 0, NULL,
			on_version, w) != 0)
		w->querying = false;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	check(arg);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	check(arg);
}

static void on_connect(void *arg)
{
	check(arg);
}

struct master_watch *master_watch_new(struct event_base *base, struct db *db,
				      master_changed_cb changed, void *arg)
{
	struct master_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->db = db;
	w->changed = changed;
	w->arg = arg;
	w->version = -1;
	w->timer = event_new(base, -1, EV_PERSIST, on_timer, w);
	if (w->timer == NULL || db_listen(db, "master", on_notify, w) != 0 ||
	    db_on_connect(db, on_connect, w) != 0) {
		master_watch_free(w);
		return NULL;
	}
	struct timeval tv = { MASTER_POLL_MS / 1000, (MASTER_POLL_MS % 1000) * 1000 };
	event_add(w->timer, &tv);
	return w;
}

void master_watch_free(struct master_watch *w)
{
	if (w == NULL)
		return;
	if (w->timer != NULL)
		event_free(w->timer);
	free(w);
}

struct idmap_entry {
	char *key;
	void *value;
	size_t order; /* insertion order, so the last duplicate wins */
};

struct idmap {
	struct idmap_entry *e;
	size_t n, cap;
};

struct idmap *idmap_new(void)
{
	return calloc(1, sizeof(struct idmap));
}

void idmap_free(struct idmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].key);
	free(m->e);
	free(m);
}

int idmap_add(struct idmap *m, const char *key, void *value)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct idmap_entry *e = realloc(m->e, cap * sizeof(*e));
		if (e == NULL)
			return -1;
		m->e = e;
		m->cap = cap;
	}
	char *k = strdup(key);
	if (k == NULL)
		return -1;
	m->e[m->n] = (struct idmap_entry){ k, value, m->n };
	m->n++;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct idmap_entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

void idmap_seal(struct idmap *m)
{
	if (m->n == 0)
		return;
	qsort(m->e, m->n, sizeof(*m->e), cmp_entry);
	/* Keep the last of each run of equal keys. */
	size_t w = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (i + 1 < m->n && strcmp(m->e[i].key, m->e[i + 1].key) == 0) {
			free(m->e[i].key);
			continue;
		}
		m->e[w++] = m->e[i];
	}
	m->n = w;
}

bool idmap_find(const struct idmap *m, const char *key, void **value)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, m->e[mid].key);
		if (c == 0) {
			if (value != NULL)
				*value = m->e[mid].value;
			return true;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

size_t idmap_count(const struct idmap *m)
{
	return m->n;
}

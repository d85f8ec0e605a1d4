/*
 * The rule state of every (device, rule) in memory: a hash map of entries,
 * each holding the committed state (what rule_state says) and, during a
 * round, the working state the round's samples advance. Only a committed
 * apply turns work into committed (state_commit), so a failed round leaves
 * nothing behind (state_discard).
 *
 * Loading reads the cursor and all of rule_state in one statement (one
 * snapshot), builds a new map, and swaps it in only when complete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alertd.h"
#include "db.h"
#include "log.h"

#define STATE_MIN_BUCKETS 1024

struct alertd_state {
	struct alertd_entry **buckets;
	size_t nbuckets;                 /* a power of two */
	size_t n;
	struct alertd_entry *dirty;      /* entries touched this round */
};

/* FNV-1a over "device\0rule". */
static uint64_t hash_key(const char *device, const char *rule)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = device; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = rule; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

struct alertd_state *state_new(void)
{
	struct alertd_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->buckets = calloc(STATE_MIN_BUCKETS, sizeof(*st->buckets));
	if (st->buckets == NULL) {
		free(st);
		return NULL;
	}
	st->nbuckets = STATE_MIN_BUCKETS;
	return st;
}

void state_free(struct alertd_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nbuckets; i++) {
		struct alertd_entry *e = st->buckets[i];
		while (e != NULL) {
			struct alertd_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(st->buckets);
	free(st);
}

size_t state_count(const struct alertd_state *st)
{
	return st->n;
}

struct alertd_entry *state_find(struct alertd_state *st, const char *device, const char *rule)
{
	uint64_t h = hash_key(device, rule);
	for (struct alertd_entry *e = st->buckets[h & (st->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->device, device) == 0 && strcmp(e->rule, rule) == 0)
			return e;
	return NULL;
}

/* Doubles the table; on allocation failure the map just stays slower. */
static void grow(struct alertd_state *st)
{
	size_t nb = st->nbuckets * 2;
	struct alertd_entry **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < st->nbuckets; i++) {
		struct alertd_entry *e = st->buckets[i];
		while (e != NULL) {
			struct alertd_entry *next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = next;
		}
	}
	free(st->buckets);
	st->buckets = b;
	st->nbuckets = nb;
}

static struct alertd_entry *add(struct alertd_state *st, const char *device, const char *rule)
{
	size_t dl = strlen(device), rl = strlen(rule);
	struct alertd_entry *e = calloc(1, sizeof(*e) + dl + rl + 2);
	if (e == NULL)
		return NULL;
	memcpy(e->key, device, dl + 1);
	memcpy(e->key + dl + 1, rule, rl + 1);
	e->device = e->key;
	e->rule = e->key + dl + 1;
	e->hash = hash_key(device, rule);
	rules_state_init(&e->committed);
	if (st->n >= st->nbuckets)
		grow(st);
	size_t i = e->hash & (st->nbuckets - 1);
	e->next = st->buckets[i];
	st->buckets[i] = e;
	st->n++;
	return e;
}

struct alertd_entry *state_seed(struct alertd_state *st, const char *device, const char *rule)
{
	struct alertd_entry *e = state_find(st, device, rule);

	return e != NULL ? e : add(st, device, rule);
}

struct alertd_entry *state_touch(struct alertd_state *st, const char *device, const char *rule)
{
	struct alertd_entry *e = state_find(st, device, rule);
	if (e == NULL && (e = add(st, device, rule)) == NULL)
		return NULL;
	if (!e->dirty) {
		e->dirty = true;
		e->work = e->committed;
		e->dirty_next = st->dirty;
		st->dirty = e;
	}
	return e;
}

enum alertd_source state_entry_source(const struct alertd_entry *e, const char **ref)
{
	static const size_t plen = sizeof(ALERTD_ALARM_PREFIX) - 1;

	if (strncmp(e->rule, ALERTD_ALARM_PREFIX, plen) == 0) {
		*ref = e->rule + plen;
		return ALERTD_SOURCE_ALARM;
	}
	*ref = e->rule;
	return ALERTD_SOURCE_RULE;
}

const char *alertd_source_name(enum alertd_source s)
{
	static const char *const names[ALERTD_NSOURCES] = { "rule", "alarm", "lifecycle" };

	return (unsigned)s < ALERTD_NSOURCES ? names[s] : "rule";
}

void state_foreach(struct alertd_state *st, void (*fn)(struct alertd_entry *e, void *arg),
		   void *arg)
{
	for (size_t i = 0; i < st->nbuckets; i++)
		for (struct alertd_entry *e = st->buckets[i]; e != NULL; e = e->next)
			fn(e, arg);
}

struct alertd_entry *state_dirty(struct alertd_state *st)
{
	return st->dirty;
}

static void end_round(struct alertd_state *st, bool commit)
{
	struct alertd_entry *e = st->dirty;
	while (e != NULL) {
		struct alertd_entry *next = e->dirty_next;
		if (commit)
			e->committed = e->work;
		e->dirty = false;
		e->dirty_next = NULL;
		e = next;
	}
	st->dirty = NULL;
}

void state_commit(struct alertd_state *st)
{
	end_round(st, true);
}

void state_discard(struct alertd_state *st)
{
	end_round(st, false);
}

/*
 * The cursors of the held partitions and every rule_state row of their
 * devices in one snapshot (columns of 004 and 013). Cursor rows have a
 * partition and no device; state rows a device and no partition. A state
 * counts as firing only while its alert still fires (an operator may have
 * cleared it by hand). $1: P, $2: held partitions (int[]).
 */
static const char load_sql[] =
	"SELECT p.part, coalesce(sc.seq, 0), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
	" NULL, NULL, NULL"
	" FROM unnest($2::int[]) p(part)"
	" LEFT JOIN stream_cursor sc ON sc.consumer = sc_alertd_consumer(p.part)"
	" UNION ALL"
	" SELECT NULL, NULL, rs.device_id, rs.rule_id,"
	" (extract(epoch FROM rs.pending_since) * 1000000)::bigint, a.id,"
	" (extract(epoch FROM rs.last_ts) * 1000000)::bigint, rs.last_seq,"
	" coalesce(rs.firing, true), rs.flapping, rs.cycles,"
	" (extract(epoch FROM rs.window_start) * 1000000)::bigint,"
	" (extract(epoch FROM rs.quiet_since) * 1000000)::bigint"
	" FROM rule_state rs"
	" LEFT JOIN alert a ON a.id = rs.alert_id AND a.state = 'firing'"
	" WHERE sc_alertd_partition(rs.device_id, $1::int) = ANY($2::int[])";

enum {
	L_PART, L_CURSOR, L_DEVICE, L_RULE, L_PENDING, L_ALERT, L_LAST_TS, L_LAST_SEQ,
	L_COND, L_FLAPPING, L_CYCLES, L_WINDOW_START, L_QUIET_SINCE,
};

/* Every device of the held partitions that reported, with its last
 * arrival (silent_seed). $1: P, $2: held partitions. */
static const char seen_sql[] =
	"SELECT device_id, (extract(epoch FROM last_seen_at) * 1000000)::bigint, last_seq,"
	" metrics::text FROM device_state"
	" WHERE sc_alertd_partition(device_id, $1::int) = ANY($2::int[])";

int state_init(struct alertd *a)
{
	a->state = state_new();
	if (a->state == NULL)
		return -1;
	return db_prepare(a->db, "alertd_state", load_sql, 2) != 0 ||
	       db_prepare(a->db, "alertd_seen", seen_sql, 2) != 0 ? -1 : 0;
}

static long long col_ll(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Builds a map from the rows of load_sql, and the cursors into a. NULL on
 * allocation failure. */
static struct alertd_state *build(struct alertd *a, const PGresult *res)
{
	struct alertd_state *st = state_new();
	int n = PQntuples(res);

	if (st == NULL)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (!PQgetisnull(res, i, L_PART)) {
			partition_set_cursor(a, (int)col_ll(res, i, L_PART), col_ll(res, i, L_CURSOR));
			continue;
		}
		struct alertd_entry *e = add(st, PQgetvalue(res, i, L_DEVICE),
					     PQgetvalue(res, i, L_RULE));
		if (e == NULL) {
			state_free(st);
			return NULL;
		}
		struct rules_state *s = &e->committed;
		s->seen = !PQgetisnull(res, i, L_LAST_TS);
		s->last_ts_us = col_ll(res, i, L_LAST_TS);
		s->last_seq = col_ll(res, i, L_LAST_SEQ);
		s->pending = !PQgetisnull(res, i, L_PENDING);
		s->pending_since_us = col_ll(res, i, L_PENDING);
		e->alert_id = col_ll(res, i, L_ALERT);
		/* rule_state.firing is the condition's view (a flapping alert
		 * fires on while its condition is clear); rows written before
		 * it existed leave it NULL: the alert says. */
		s->firing = e->alert_id != 0 && PQgetvalue(res, i, L_COND)[0] == 't';
		s->flapping = e->alert_id != 0 && PQgetvalue(res, i, L_FLAPPING)[0] == 't';
		s->cycles = (int)col_ll(res, i, L_CYCLES);
		s->window_start_us = col_ll(res, i, L_WINDOW_START);
		s->quiet_since_us = col_ll(res, i, L_QUIET_SINCE);
	}
	return st;
}

/* $1 P, $2 held partitions, for load_sql and seen_sql; they live in a
 * until the next load. */
static const char *const *load_params(struct alertd *a)
{
	a->load_params[0] = a->load_nparts;
	a->load_params[1] = a->load_held;
	return a->load_params;
}

/* The map in a->state is complete: timers from it, and go. */
static void loaded(struct alertd *a)
{
	a->state_loaded = true;
	silent_rebuild(a);
	consumer_loaded(a, true);
}

static void on_seen(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;

	if (r->error != NULL || silent_seed(a, r->res) != 0) {
		log_error("rule state load failed: %s", r->error ? r->error : "out of memory");
		consumer_loaded(a, false);
		return;
	}
	loaded(a);
}

static void on_state(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;
	struct alertd_state *st = NULL;

	if (r->error != NULL) {
		log_error("rule state load failed: %s", r->error);
		consumer_loaded(a, false);
		return;
	}
	char *held_now = partition_held_array(a);
	bool same = held_now != NULL && a->load_held != NULL && strcmp(held_now, a->load_held) == 0;

	free(held_now);
	if (!same) {
		log_info("rule state load repeated: the partitions held changed meanwhile");
		consumer_loaded(a, false);
		return;
	}
	if ((st = build(a, r->res)) == NULL) {
		log_error("rule state load failed: out of memory");
		consumer_loaded(a, false);
		return;
	}
	state_free(a->state);
	a->state = st;
	partition_advance(a, 0);
	log_info("rule state loaded partitions=%s cursor=%lld states=%zu", a->load_held, a->cursor,
		 state_count(st));
	if (a->rules == NULL || a->rules->nsilent == 0) {
		loaded(a);
		return;
	}
	/* Devices that reported before sc-alertd watched them for silence. */
	if (db_exec_prepared(a->db, "alertd_seen", 2, load_params(a), on_seen, a) != 0) {
		log_error("rule state load failed: out of memory");
		consumer_loaded(a, false);
	}
}

void state_load(struct alertd *a)
{
	free(a->load_held);
	a->load_held = partition_held_array(a);
	snprintf(a->load_nparts, sizeof(a->load_nparts), "%d", a->nparts);
	a->phase = ALERTD_LOADING;
	a->state_loaded = false;
	if (a->load_held == NULL ||
	    db_exec_prepared(a->db, "alertd_state", 2, load_params(a), on_state, a) != 0) {
		log_error("rule state load failed: out of memory");
		consumer_loaded(a, false);
	}
}

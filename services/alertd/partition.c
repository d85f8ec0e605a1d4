/*
 * Which devices this instance evaluates (docs/alerts.md "Instances";
 * schema/015). Devices fall into SC_ALERTD_PARTITIONS partitions
 * (sc_alertd_partition: md5 of the id); every instance claims a share of
 * them with session advisory locks on its own database connection
 * (sc_alertd_claim, every SC_SWEEP_MS while the consumer is idle, and at
 * once after every (re)connect, since a lost connection lost its locks).
 * Each partition has its own cursor ('sc-alertd/p03'); a round evaluates
 * the rows of the held partitions past their own cursors and moves all of
 * them in its apply (consumer.c, apply.c). When the set changes, the state
 * is loaded again for the new set.
 *
 * Correctness does not rest on the locks: an apply checks and moves every
 * cursor it names in one transaction, so a partition two instances think
 * they hold for a moment is still applied once (the loser reloads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alertd.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

/* Cursor of a partition that is not held, in the rows query: past every
 * batch, so none of its rows is read. */
#define PARTITION_NOT_HELD "9223372036854775807"

void partition_name(int part, char *buf, size_t len)
{
	snprintf(buf, len, "sc-alertd/p%02d", part);
}

int partition_scope_json(const struct alertd *a, cJSON *p)
{
	cJSON *arr = cJSON_AddArrayToObject(p, "partitions");

	if (arr == NULL || cJSON_AddNumberToObject(p, "nparts", a->nparts) == NULL)
		return -1;
	for (int i = 0; i < a->nparts; i++) {
		if (!a->held[i])
			continue;
		cJSON *n = cJSON_CreateNumber(i);
		if (n == NULL || !cJSON_AddItemToArray(arr, n)) {
			cJSON_Delete(n);
			return -1;
		}
	}
	return 0;
}

bool partition_any(const struct alertd *a)
{
	return a->nheld > 0;
}

char *partition_held_array(const struct alertd *a)
{
	size_t cap = 3 + (size_t)a->nparts * 4, len = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	s[len++] = '{';
	for (int i = 0; i < a->nparts; i++) {
		if (!a->held[i])
			continue;
		len += (size_t)snprintf(s + len, cap - len, "%s%d", len > 1 ? "," : "", i);
	}
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

char *partition_cursor_array(const struct alertd *a)
{
	size_t cap = 3 + (size_t)a->nparts * 21, len = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	s[len++] = '{';
	for (int i = 0; i < a->nparts; i++) {
		if (a->held[i])
			len += (size_t)snprintf(s + len, cap - len, "%s%lld", i ? "," : "",
						a->cursors[i]);
		else
			len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "",
						PARTITION_NOT_HELD);
	}
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

int partition_apply_json(const struct alertd *a, cJSON *p)
{
	cJSON *arr = cJSON_AddArrayToObject(p, "consumers");
	char name[32], from[24];

	if (arr == NULL)
		return -1;
	for (int i = 0; i < a->nparts; i++) {
		if (!a->held[i])
			continue;
		cJSON *o = cJSON_CreateObject();
		if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			return -1;
		}
		partition_name(i, name, sizeof(name));
		snprintf(from, sizeof(from), "%lld", a->cursors[i]);
		if (cJSON_AddStringToObject(o, "consumer", name) == NULL ||
		    cJSON_AddStringToObject(o, "from", from) == NULL)
			return -1;
	}
	return 0;
}

void partition_advance(struct alertd *a, long long to)
{
	long long min = -1;

	for (int i = 0; i < a->nparts; i++) {
		if (!a->held[i])
			continue;
		if (a->cursors[i] < to)
			a->cursors[i] = to;
		if (min < 0 || a->cursors[i] < min)
			min = a->cursors[i];
	}
	a->cursor = min < 0 ? 0 : min;
}

void partition_set_cursor(struct alertd *a, int part, long long seq)
{
	if (part >= 0 && part < a->nparts)
		a->cursors[part] = seq;
}

/* Parses "{1,3,5}" into a held[] array; -1 on a number out of range. */
static int parse_held(const char *s, bool *held, int nparts, int *count)
{
	int n = 0;

	memset(held, 0, (size_t)nparts * sizeof(*held));
	for (const char *p = s; *p != '\0';) {
		char *end;
		long v;

		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		v = strtol(p, &end, 10);
		if (v < 0 || v >= nparts)
			return -1;
		if (!held[v])
			n++;
		held[v] = true;
		p = end;
	}
	*count = n;
	return 0;
}

static void on_claimed(void *arg, const struct db_reply *r)
{
	struct alertd *a = arg;
	bool *held = NULL;
	int n = 0;
	char *list = NULL;

	a->claiming = false;
	if (r->error != NULL) {
		log_error("partition claim failed: %s", r->error);
		goto out;
	}
	held = calloc((size_t)a->nparts, sizeof(*held));
	if (held == NULL || PQntuples(r->res) != 1 ||
	    parse_held(PQgetvalue(r->res, 0, 0), held, a->nparts, &n) != 0) {
		log_error("partition claim failed: %s", held == NULL ? "out of memory"
								  : "unreadable answer");
		goto out;
	}
	if (memcmp(held, a->held, (size_t)a->nparts * sizeof(*held)) != 0) {
		memcpy(a->held, held, (size_t)a->nparts * sizeof(*held));
		a->nheld = n;
		/* The state of other devices: read again for this set. */
		a->state_loaded = false;
		metric_set(a->m.partitions, n);
		list = partition_held_array(a);
		log_info("partitions changed: this instance evaluates their devices now held=%s"
			 " count=%d nparts=%d", list ? list : "?", n, a->nparts);
	}
	consumer_wake(a);
out:
	free(list);
	free(held);
}

void partition_claim(struct alertd *a)
{
	char n[16];
	const char *params[1] = { n };

	if (a->claiming || a->svc->stopping)
		return;
	snprintf(n, sizeof(n), "%d", a->nparts);
	a->claiming = true;
	if (db_exec_prepared(a->db, "alertd_claim", 1, params, on_claimed, a) != 0) {
		a->claiming = false;
		log_error("partition claim failed: out of memory");
	}
}

void partition_lost(struct alertd *a)
{
	if (a->nheld > 0)
		log_warn("partitions lost with the database connection: claiming again held=%d",
			 a->nheld);
	memset(a->held, 0, (size_t)a->nparts * sizeof(*a->held));
	a->nheld = 0;
	a->state_loaded = false;
	metric_set(a->m.partitions, 0);
}

int partition_init(struct alertd *a)
{
	a->nparts = a->svc->cfg.alertd_partitions;
	a->held = calloc((size_t)a->nparts, sizeof(*a->held));
	a->cursors = calloc((size_t)a->nparts, sizeof(*a->cursors));
	if (a->held == NULL || a->cursors == NULL)
		return -1;
	return db_prepare(a->db, "alertd_claim", "SELECT sc_alertd_claim($1::int)::text", 1);
}

void partition_free(struct alertd *a)
{
	free(a->held);
	free(a->cursors);
	free(a->load_held);
	a->held = NULL;
	a->cursors = NULL;
	a->load_held = NULL;
}

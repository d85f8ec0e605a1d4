/*
 * sc-api's database connections: SC_API_DB_CONNECTIONS of them, each a
 * common/db.c connection with its own FIFO, so one slow statement (a heavy
 * KPI, a write waiting on a row lock) holds one connection and the other
 * requests go to the others.
 *
 * Connection 0 is the service's own (svc->db: /healthz of the metrics
 * listener and the stop sequence look at it); the others are made here.
 * Every statement is prepared on every connection. Each statement is its
 * own transaction (a call of an sc_api_* function), so which connection
 * runs it does not matter; a client that waits for one answer before its
 * next request sees its own writes whatever connection runs the next one.
 *
 * A request goes to the connected connection with the fewest jobs queued or
 * in flight (db_pending); ties go round-robin, so idle connections share the
 * work and each stays warm.
 */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "db.h"
#include "service.h"

struct pool {
	struct db **db;   /* db[0] is svc->db (not owned), the rest owned */
	int n;
	int next;         /* where the tie-breaking scan starts */
};

struct pool *pool_new(struct service *svc, int n)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (p == NULL || n < 1 || (p->db = calloc((size_t)n, sizeof(*p->db))) == NULL)
		goto fail;
	p->db[0] = svc->db;
	p->n = 1;
	for (int i = 1; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%s-db-%d", API_PROGRAM, i);
		if ((p->db[i] = db_new(svc->base, svc->cfg.pg_dsn, name)) == NULL)
			goto fail;
		p->n++;
	}
	return p;
fail:
	pool_free(p);
	return NULL;
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	for (int i = 1; i < p->n; i++)
		db_free(p->db[i]);
	free(p->db);
	free(p);
}

int pool_prepare(struct pool *p, const char *name, const char *sql, int nparams)
{
	for (int i = 0; i < p->n; i++)
		if (db_prepare(p->db[i], name, sql, nparams) != 0)
			return -1;
	return 0;
}

struct db *pool_pick(struct pool *p)
{
	struct db *best = NULL;
	size_t best_pending = 0;
	int best_i = 0;
	for (int k = 0; k < p->n; k++) {
		int i = (p->next + k) % p->n;
		if (!db_connected(p->db[i]))
			continue;
		size_t pending = db_pending(p->db[i]);
		if (best == NULL || pending < best_pending) {
			best = p->db[i];
			best_pending = pending;
			best_i = i;
		}
	}
	if (best != NULL)
		p->next = (best_i + 1) % p->n;
	return best;
}

bool pool_connected(const struct pool *p)
{
	for (int i = 0; i < p->n; i++)
		if (db_connected(p->db[i]))
			return true;
	return false;
}

int pool_size(const struct pool *p)
{
	return p->n;
}

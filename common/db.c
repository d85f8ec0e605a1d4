/*
 * Non-blocking libpq on the libevent loop (see db.h for the contract).
 *
 * States: DISCONNECTED (waiting for the backoff timer) -> CONNECTING
 * (PQconnectPoll driven by socket readiness) -> READY. In READY the head of
 * the queue is sent; its results are read as the socket becomes readable.
 * Prepared statements and LISTENs are sent as internal jobs at the front of
 * the queue after every connect.
 */
#include "db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"

#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000

enum db_state { DB_DISCONNECTED, DB_CONNECTING, DB_READY };

enum job_kind { JOB_USER, JOB_SESSION, JOB_PREPARE, JOB_LISTEN, JOB_CONNECTED };

struct db_job {
	struct db_job *next;
	enum job_kind kind;
	char *stmt;        /* prepared name, or SQL text */
	char *sql;         /* JOB_PREPARE: the statement text */
	bool is_sql;
	int nparams;
	char **values;
	db_result_cb cb;
	void *arg;
};

struct db_prepared {
	struct db_prepared *next;
	char *name;
	char *sql;
	int nparams;
};

struct db_listener {
	struct db_listener *next;
	char *channel;
	db_notify_cb cb;
	void *arg;
};

struct db_connect_hook {
	struct db_connect_hook *next;
	db_connect_cb cb;
	void *arg;
};

struct db {
	struct event_base *base;
	char *dsn;
	char *name;
	PGconn *conn;
	enum db_state state;
	struct event *sock_ev;      /* readiness of the libpq socket */
	int sock_fd;
	short sock_what;
	struct event *retry_ev;     /* backoff timer */
	int backoff_ms;
	struct db_job *head, *tail; /* queue; head is in flight when `busy` */
	size_t njobs;
	bool busy;                  /* head was sent, results pending */
	bool flushing;              /* PQflush returned 1: wait for writability */
	PGresult *last;             /* last result of the job in flight */
	struct db_prepared *prepared;
	struct db_listener *listeners;
	struct db_connect_hook *hooks;
};

static void db_schedule_reconnect(struct db *db);
static void db_pump(struct db *db);
static void db_on_socket(evutil_socket_t fd, short what, void *arg);

static void job_free(struct db_job *j)
{
	if (j == NULL)
		return;
	for (int i = 0; i < j->nparams; i++)
		free(j->values[i]);
	free(j->values);
	free(j->stmt);
	free(j->sql);
	free(j);
}

static struct db_job *job_new(enum job_kind kind, const char *stmt, bool is_sql, int nparams,
			      const char *const *values)
{
	struct db_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->kind = kind;
	j->is_sql = is_sql;
	j->stmt = strdup(stmt);
	if (j->stmt == NULL)
		goto fail;
	if (nparams > 0) {
		j->values = calloc((size_t)nparams, sizeof(char *));
		if (j->values == NULL)
			goto fail;
		j->nparams = nparams;
		for (int i = 0; i < nparams; i++) {
			if (values[i] == NULL)
				continue;
			j->values[i] = strdup(values[i]);
			if (j->values[i] == NULL)
				goto fail;
		}
	}
	return j;
fail:
	job_free(j);
	return NULL;
}

static void queue_push_back(struct db *db, struct db_job *j)
{
	j->next = NULL;
	if (db->tail != NULL)
		db->tail->next = j;
	else
		db->head = j;
	db->tail = j;
	db->njobs++;
}

/* Inserts after the internal jobs already at the front (keeps their order). */
static struct db_job **front_slot(struct db *db)
{
	struct db_job **p = &db->head;
	while (*p != NULL && (*p)->kind != JOB_USER)
		p = &(*p)->next;
	return p;
}

static void queue_insert(struct db *db, struct db_job **slot, struct db_job *j)
{
	j->next = *slot;
	*slot = j;
	if (j->next == NULL)
		db->tail = j;
	db->njobs++;
}

static struct db_job *queue_pop(struct db *db)
{
	struct db_job *j = db->head;
	if (j == NULL)
		return NULL;
	db->head = j->next;
	if (db->head == NULL)
		db->tail = NULL;
	db->njobs--;
	return j;
}

static void set_socket_event(struct db *db, short what)
{
	int fd = PQsocket(db->conn);
	if (db->sock_ev != NULL && fd == db->sock_fd && what == db->sock_what)
		return;
	if (db->sock_ev != NULL) {
		event_free(db->sock_ev);
		db->sock_ev = NULL;
	}
	db->sock_fd = fd;
	db->sock_what = what;
	if (fd < 0)
		return;
	db->sock_ev = event_new(db->base, fd, what | EV_PERSIST, db_on_socket, db);
	if (db->sock_ev != NULL)
		event_add(db->sock_ev, NULL);
}

static void drop_connection(struct db *db, const char *why)
{
	if (db->state != DB_DISCONNECTED)
		log_warn("database connection lost: %s db=%s", why, db->name);
	if (db->sock_ev != NULL) {
		event_free(db->sock_ev);
		db->sock_ev = NULL;
	}
	db->sock_fd = -1;
	if (db->last != NULL) {
		PQclear(db->last);
		db->last = NULL;
	}
	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	/* The job in flight stays at the head: it is sent again after reconnect.
	 * Internal jobs are dropped: a reconnect queues them afresh. */
	struct db_job **p = &db->head;
	while (*p != NULL) {
		if ((*p)->kind != JOB_USER) {
			struct db_job *dead = *p;
			*p = dead->next;
			db->njobs--;
			job_free(dead);
		} else {
			p = &(*p)->next;
		}
	}
	db->tail = NULL;
	for (struct db_job *j = db->head; j != NULL; j = j->next)
		db->tail = j;
	db->busy = false;
	db->flushing = false;
	db->state = DB_DISCONNECTED;
	db_schedule_reconnect(db);
}

/*
 * Session settings sent first on every connection. Parallel query: the
 * services run small indexed statements, many per second; once a table is
 * large (telemetry after minutes at 10k rows/s) the planner starts
 * parallel workers for them, ~50 ms of start-up for a 1 ms query, which
 * halved sc-alertd's rate in the soak. Never worth it here.
 */
static const char session_sql[] = "SET max_parallel_workers_per_gather = 0";

static void queue_internal_jobs(struct db *db)
{
	struct db_job **slot = front_slot(db);
	struct db_job *session = job_new(JOB_SESSION, session_sql, true, 0, NULL);
	if (session != NULL) {
		queue_insert(db, slot, session);
		slot = &session->next;
	}
	for (struct db_prepared *p = db->prepared; p != NULL; p = p->next) {
		struct db_job *j = job_new(JOB_PREPARE, p->name, false, 0, NULL);
		if (j == NULL)
			continue;
		j->sql = strdup(p->sql);
		j->nparams = 0;
		queue_insert(db, slot, j);
		slot = &j->next;
	}
	for (struct db_listener *l = db->listeners; l != NULL; l = l->next) {
		char *q = PQescapeIdentifier(db->conn, l->channel, strlen(l->channel));
		if (q == NULL)
			continue;
		size_t n = strlen(q) + 8;
		char *sql = malloc(n);
		if (sql != NULL) {
			snprintf(sql, n, "LISTEN %s", q);
			struct db_job *j = job_new(JOB_LISTEN, sql, true, 0, NULL);
			if (j != NULL) {
				queue_insert(db, slot, j);
				slot = &j->next;
			}
			free(sql);
		}
		PQfreemem(q);
	}
	struct db_job *j = job_new(JOB_CONNECTED, "connected", true, 0, NULL);
	if (j != NULL)
		queue_insert(db, slot, j);
}

/* Server notices (and libpq's own) go through our logger, one line each. */
static void on_notice(void *arg, const char *message)
{
	struct db *db = arg;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", message);
	msg[strcspn(msg, "\n")] = '\0';
	log_info("database notice: %s db=%s", msg, db->name);
}

static void on_connected(struct db *db)
{
	db->state = DB_READY;
	db->backoff_ms = DB_BACKOFF_MIN_MS;
	log_info("database connected db=%s", db->name);
	queue_internal_jobs(db);
	set_socket_event(db, EV_READ);
	db_pump(db);
}

static void continue_connect(struct db *db)
{
	switch (PQconnectPoll(db->conn)) {
	case PGRES_POLLING_READING:
		set_socket_event(db, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		set_socket_event(db, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(db->conn, 1) != 0) {
			drop_connection(db, "cannot set non-blocking mode");
			return;
		}
		on_connected(db);
		break;
	default: {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		msg[strcspn(msg, "\n")] = '\0';
		drop_connection(db, msg);
		break;
	}
	}
}

static void start_connect(struct db *db)
{
	db->conn = PQconnectStart(db->dsn);
	if (db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s",
			 db->conn ? PQerrorMessage(db->conn) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		log_warn("database connect failed: %s db=%s", msg, db->name);
		if (db->conn != NULL) {
			PQfinish(db->conn);
			db->conn = NULL;
		}
		db_schedule_reconnect(db);
		return;
	}
	PQsetNoticeProcessor(db->conn, on_notice, db);
	db->state = DB_CONNECTING;
	continue_connect(db);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	start_connect(db);
}

static void db_schedule_reconnect(struct db *db)
{
	struct timeval tv = { db->backoff_ms / 1000, (db->backoff_ms % 1000) * 1000 };
	db->backoff_ms *= 2;
	if (db->backoff_ms > DB_BACKOFF_MAX_MS)
		db->backoff_ms = DB_BACKOFF_MAX_MS;
	db->state = DB_DISCONNECTED;
	evtimer_add(db->retry_ev, &tv);
}

static void deliver_notifies(struct db *db)
{
	PGnotify *n;
	while (db->conn != NULL && (n = PQnotifies(db->conn)) != NULL) {
		for (struct db_listener *l = db->listeners; l != NULL; l = l->next) {
			if (strcmp(l->channel, n->relname) == 0)
				l->cb(l->arg, n->relname, n->extra);
		}
		PQfreemem(n);
	}
}

/* The head job finished with db->last (or a connection-less error). */
static void finish_job(struct db *db)
{
	struct db_job *j = queue_pop(db);
	PGresult *res = db->last;
	db->last = NULL;
	db->busy = false;

	struct db_reply r = { NULL, NULL, "" };
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char msg[512];
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		r.res = res;
	} else {
		snprintf(msg, sizeof(msg), "%s",
			 res ? PQresultErrorMessage(res) : "no result");
		msg[strcspn(msg, "\n")] = '\0';
		r.error = msg;
		const char *ss = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		r.sqlstate = ss ? ss : "";
	}
	switch (j->kind) {
	case JOB_USER:
		if (j->cb != NULL)
			j->cb(j->arg, &r);
		else if (r.error != NULL)
			log_error("statement failed: %s db=%s stmt=%.40s", r.error, db->name, j->stmt);
		break;
	case JOB_PREPARE:
		/* 42P05: already prepared (a retried prepare): harmless. */
		if (r.error != NULL && strcmp(r.sqlstate, "42P05") != 0)
			log_error("prepare failed: %s db=%s stmt=%s", r.error, db->name, j->stmt);
		break;
	case JOB_SESSION:
		if (r.error != NULL)
			log_error("session setting failed: %s db=%s", r.error, db->name);
		break;
	case JOB_LISTEN:
		if (r.error != NULL)
			log_error("listen failed: %s db=%s", r.error, db->name);
		break;
	case JOB_CONNECTED:
		break;
	}
	if (res != NULL)
		PQclear(res);
	job_free(j);
}

static void send_head(struct db *db)
{
	struct db_job *j = db->head;
	int ok;
	if (j->kind == JOB_CONNECTED) {
		/* Marker: everything before it is in place; tell the owner. */
		queue_pop(db);
		job_free(j);
		for (struct db_connect_hook *h = db->hooks; h != NULL; h = h->next)
			h->cb(h->arg);
		return;
	}
	if (j->kind == JOB_PREPARE)
		ok = PQsendPrepare(db->conn, j->stmt, j->sql, 0, NULL);
	else if (j->is_sql)
		ok = PQsendQueryParams(db->conn, j->stmt, j->nparams, NULL,
				       (const char *const *)j->values, NULL, NULL, 0);
	else
		ok = PQsendQueryPrepared(db->conn, j->stmt, j->nparams,
					 (const char *const *)j->values, NULL, NULL, 0);
	if (!ok) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		msg[strcspn(msg, "\n")] = '\0';
		drop_connection(db, msg);
		return;
	}
	db->busy = true;
	int f = PQflush(db->conn);
	if (f < 0) {
		drop_connection(db, "flush failed");
		return;
	}
	db->flushing = (f == 1);
	set_socket_event(db, db->flushing ? (EV_READ | EV_WRITE) : EV_READ);
}

/* Reads what is available; completes jobs; sends the next. */
static void db_pump(struct db *db)
{
	while (db->state == DB_READY) {
		if (db->busy) {
			if (db->flushing) {
				int f = PQflush(db->conn);
				if (f < 0) {
					drop_connection(db, "flush failed");
					return;
				}
				db->flushing = (f == 1);
				set_socket_event(db, db->flushing ? (EV_READ | EV_WRITE) : EV_READ);
			}
			if (PQisBusy(db->conn))
				return;
			PGresult *res = PQgetResult(db->conn);
			if (res != NULL) {
				if (db->last != NULL)
					PQclear(db->last);
				db->last = res;
				continue;
			}
			finish_job(db);
			continue;
		}
		if (db->head == NULL)
			return;
		send_head(db);
	}
}

static void db_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	if (db->state == DB_CONNECTING) {
		continue_connect(db);
		return;
	}
	if (db->state != DB_READY)
		return;
	if ((what & EV_READ) && !PQconsumeInput(db->conn)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		msg[strcspn(msg, "\n")] = '\0';
		drop_connection(db, msg);
		return;
	}
	deliver_notifies(db);
	db_pump(db);
	if (db->state == DB_READY)
		deliver_notifies(db);
}

struct db *db_new(struct event_base *base, const char *dsn, const char *name)
{
	struct db *db = calloc(1, sizeof(*db));
	if (db == NULL)
		return NULL;
	db->base = base;
	db->sock_fd = -1;
	db->backoff_ms = DB_BACKOFF_MIN_MS;
	db->dsn = strdup(dsn);
	db->name = strdup(name);
	db->retry_ev = evtimer_new(base, on_retry, db);
	if (db->dsn == NULL || db->name == NULL || db->retry_ev == NULL) {
		db_free(db);
		return NULL;
	}
	/* Connect from the loop, so callbacks registered after db_new see it. */
	struct timeval now = { 0, 0 };
	evtimer_add(db->retry_ev, &now);
	return db;
}

void db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->sock_ev != NULL)
		event_free(db->sock_ev);
	if (db->retry_ev != NULL)
		event_free(db->retry_ev);
	if (db->last != NULL)
		PQclear(db->last);
	if (db->conn != NULL)
		PQfinish(db->conn);
	struct db_job *j;
	while ((j = queue_pop(db)) != NULL)
		job_free(j);
	while (db->prepared != NULL) {
		struct db_prepared *p = db->prepared;
		db->prepared = p->next;
		free(p->name);
		free(p->sql);
		free(p);
	}
	while (db->hooks != NULL) {
		struct db_connect_hook *h = db->hooks;
		db->hooks = h->next;
		free(h);
	}
	while (db->listeners != NULL) {
		struct db_listener *l = db->listeners;
		db->listeners = l->next;
		free(l->channel);
		free(l);
	}
	free(db->dsn);
	free(db->name);
	free(db);
}

bool db_connected(const struct db *db)
{
	return db != NULL && db->state == DB_READY;
}

size_t db_pending(const struct db *db)
{
	size_t n = 0;
	for (const struct db_job *j = db->head; j != NULL; j = j->next)
		n += (j->kind == JOB_USER);
	return n;
}

int db_on_connect(struct db *db, db_connect_cb cb, void *arg)
{
	struct db_connect_hook *h = calloc(1, sizeof(*h)), **p = &db->hooks;
	if (h == NULL)
		return -1;
	h->cb = cb;
	h->arg = arg;
	while (*p != NULL)
		p = &(*p)->next;
	*p = h;
	return 0;
}

int db_prepare(struct db *db, const char *name, const char *sql, int nparams)
{
	for (struct db_prepared *p = db->prepared; p != NULL; p = p->next) {
		if (strcmp(p->name, name) == 0) {
			log_error("prepared statement registered twice: name=%s", name);
			return -1;
		}
	}
	struct db_prepared *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	p->name = strdup(name);
	p->sql = strdup(sql);
	p->nparams = nparams;
	if (p->name == NULL || p->sql == NULL) {
		free(p->name);
		free(p->sql);
		free(p);
		return -1;
	}
	p->next = db->prepared;
	db->prepared = p;
	if (db->state == DB_READY) {
		struct db_job *j = job_new(JOB_PREPARE, name, false, 0, NULL);
		if (j == NULL)
			return -1;
		j->sql = strdup(sql);
		/* Before user jobs not yet sent (the one in flight stays first). */
		struct db_job **slot = db->busy ? &db->head->next : &db->head;
		queue_insert(db, slot, j);
		db_pump(db);
	}
	return 0;
}

int db_listen(struct db *db, const char *channel, db_notify_cb cb, void *arg)
{
	struct db_listener *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -1;
	l->channel = strdup(channel);
	if (l->channel == NULL) {
		free(l);
		return -1;
	}
	l->cb = cb;
	l->arg = arg;
	l->next = db->listeners;
	db->listeners = l;
	if (db->state == DB_READY) {
		char *q = PQescapeIdentifier(db->conn, channel, strlen(channel));
		if (q == NULL)
			return -1;
		char sql[256];
		snprintf(sql, sizeof(sql), "LISTEN %s", q);
		PQfreemem(q);
		struct db_job *j = job_new(JOB_LISTEN, sql, true, 0, NULL);
		if (j == NULL)
			return -1;
		struct db_job **slot = db->busy ? &db->head->next : &db->head;
		queue_insert(db, slot, j);
		db_pump(db);
	}
	return 0;
}

int db_exec(struct db *db, const char *stmt, bool is_sql, int nparams,
	    const char *const *values, db_result_cb cb, void *arg)
{
	struct db_job *j = job_new(JOB_USER, stmt, is_sql, nparams, values);
	if (j == NULL)
		return -1;
	j->cb = cb;
	j->arg = arg;
	queue_push_back(db, j);
	db_pump(db);
	return 0;
}

/*
 * bench-ingest-watch: watches what sc-ingest commits during the full-path
 * phase and measures, afterwards, throughput and ingest lag.
 *
 * sc-ingest commits every batch of device messages with the next
 * ingest_batch.seq, and the same transaction sends NOTIFY ingest_batch with
 * that seq (schema: sc_ingest_batch_commit; seq order is commit order). The
 * watcher LISTENs and notes when each seq arrived: PostgreSQL delivers a
 * notification once its transaction has committed, so "seq s at time t" means
 * every row of the batches up to s was committed and readable by t. It also
 * polls max(seq) every --poll-ms, in case a notification is missed (then that
 * batch is at most one poll late). Nothing heavier runs during the phase.
 *
 * After SIGUSR1 (the publisher has finished) it keeps watching until no new
 * batch has come for --idle-ms (sc-ingest has worked off the broker's
 * backlog), or --drain-max-s, then reads the phase's rows once:
 *   - timeline: "epoch_ms rows_committed" per change, to --timeline;
 *   - lag of every row whose ts (the publisher's send time, in ms) lies in
 *     [--window-start, --window-end): publish -> committed (the time its
 *     batch's seq arrived minus ts) and publish -> received by sc-ingest
 *     (received_at minus ts), p50/p99/max;
 * and prints one summary line "key=value ..." on stdout for run.sh.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "benchutil.h"

struct obs {
	int64_t t_ms;   /* when */
	long long seq;  /* max(ingest_batch.seq) seen then */
};

struct obs_log {
	struct obs *v;
	size_t n, cap;
};

static int obs_add(struct obs_log *l, int64_t t, long long seq)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		struct obs *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct obs){ t, seq };
	return 0;
}

/* First time seq s was seen (observations are in time order, seq not decreasing). */
static int64_t seen_at(const struct obs_log *l, long long s)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->v[mid].seq >= s)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo < l->n ? l->v[lo].t_ms : -1;
}

static long long max_seq(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT coalesce(max(seq), 0) FROM ingest_batch");
	long long s = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		s = atoll(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "bench-watch: poll: %s", PQerrorMessage(c));
	PQclear(r);
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array (q in 0..1). */
static double pct(const double *v, size_t n, double q)
{
	if (n == 0)
		return -1;
	size_t i = (size_t)(q * (double)n);
	return v[i >= n ? n - 1 : i];
}

/* Writes the committed-rows timeline: per observation, rows of batches up to its seq. */
static int write_timeline(PGconn *c, const struct obs_log *l, long long seq0, const char *path)
{
	char p0[32];
	const char *params[] = { p0 };
	PGresult *r;
	FILE *f = NULL;
	int rc = -1;

	snprintf(p0, sizeof(p0), "%lld", seq0);
	r = PQexecParams(c,
			 "SELECT b.seq, count(*) FROM ingest_batch b "
			 "JOIN telemetry t ON t.batch_id = b.batch_id "
			 "WHERE b.seq > $1::bigint GROUP BY b.seq ORDER BY b.seq",
			 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench-watch: rows per batch: %s", PQerrorMessage(c));
		goto out;
	}
	f = fopen(path ? path : "/dev/null", "w");
	if (f == NULL) {
		fprintf(stderr, "bench-watch: cannot open %s\n", path);
		goto out;
	}
	int nb = PQntuples(r), j = 0;
	unsigned long long rows = 0;
	for (size_t i = 0; i < l->n; i++) {
		while (j < nb && atoll(PQgetvalue(r, j, 0)) <= l->v[i].seq)
			rows += strtoull(PQgetvalue(r, j++, 1), NULL, 10);
		fprintf(f, "%lld %llu\n", (long long)l->v[i].t_ms, rows);
	}
	while (j < nb)
		rows += strtoull(PQgetvalue(r, j++, 1), NULL, 10);
	printf("rows=%llu batches=%d ", rows, nb);
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	PQclear(r);
	return rc;
}

/* Lag of the rows published inside the window. */
static int lags(PGconn *c, const struct obs_log *l, long long seq0, long long w0, long long w1)
{
	char p0[32], p1[32], p2[32];
	const char *params[] = { p0, p1, p2 };
	double *commit = NULL, *recv = NULL;
	PGresult *r;
	int rc = -1;

	snprintf(p0, sizeof(p0), "%lld", seq0);
	snprintf(p1, sizeof(p1), "%lld", w0);
	snprintf(p2, sizeof(p2), "%lld", w1);
	r = PQexecParams(c,
			 "SELECT b.seq, extract(epoch FROM t.ts) * 1000, "
			 "       extract(epoch FROM t.received_at) * 1000 "
			 "  FROM telemetry t JOIN ingest_batch b ON b.batch_id = t.batch_id "
			 " WHERE b.seq > $1::bigint "
			 "   AND t.ts >= to_timestamp($2::float8 / 1000) "
			 "   AND t.ts < to_timestamp($3::float8 / 1000)",
			 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench-watch: lag rows: %s", PQerrorMessage(c));
		goto out;
	}
	size_t n = (size_t)PQntuples(r), m = 0;
	commit = malloc((n ? n : 1) * sizeof(*commit));
	recv = malloc((n ? n : 1) * sizeof(*recv));
	if (commit == NULL || recv == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int64_t seen = seen_at(l, atoll(PQgetvalue(r, (int)i, 0)));
		double ts = atof(PQgetvalue(r, (int)i, 1));
		if (seen < 0)
			continue; /* committed after we stopped looking */
		commit[m] = (double)seen - ts;
		recv[m] = atof(PQgetvalue(r, (int)i, 2)) - ts;
		m++;
	}
	qsort(commit, m, sizeof(*commit), cmp_double);
	qsort(recv, m, sizeof(*recv), cmp_double);
	printf("lag_rows=%zu commit_p50_ms=%.1f commit_p99_ms=%.1f commit_max_ms=%.1f "
	       "recv_p50_ms=%.1f recv_p99_ms=%.1f ",
	       m, pct(commit, m, 0.50), pct(commit, m, 0.99), m ? commit[m - 1] : -1.0,
	       pct(recv, m, 0.50), pct(recv, m, 0.99));
	rc = 0;
out:
	free(commit);
	free(recv);
	PQclear(r);
	return rc;
}

int main(int argc, char **argv)
{
	const char *dsn = "dbname=servicecloud", *timeline_path = NULL, *ready = NULL;
	long long poll_ms = 100, idle_ms = 3000, drain_max_s = 300, w0 = 0, w1 = 0;
	const struct bu_opt opts[] = {
		{ "dsn", BU_STR, &dsn, "libpq connection string of sc-ingest's database" },
		{ "poll-ms", BU_INT, &poll_ms, "poll interval besides LISTEN" },
		{ "idle-ms", BU_INT, &idle_ms, "after SIGUSR1, stop when no batch came for this long" },
		{ "drain-max-s", BU_INT, &drain_max_s, "after SIGUSR1, stop after this long anyway" },
		{ "window-start", BU_INT, &w0, "epoch ms: lag of rows with ts from here" },
		{ "window-end", BU_INT, &w1, "epoch ms: ... to here" },
		{ "timeline", BU_STR, &timeline_path, "file for 'epoch_ms rows_committed'" },
		{ "ready", BU_STR, &ready, "file made once watching" },
		{ NULL, BU_INT, NULL, NULL },
	};
	struct obs_log l = { 0 };
	PGconn *c = NULL;
	int rc = 1;

	int prc = bu_parse(argc, argv, "Watches sc-ingest's commits; prints throughput and lag.",
			   opts);
	if (prc != 0)
		return prc > 0 ? 0 : 2;
	if (poll_ms < 1) {
		fprintf(stderr, "bench-watch: bad --poll-ms\n");
		return 2;
	}
	bu_signals();
	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench-watch: connect: %s", PQerrorMessage(c));
		goto out;
	}
	PGresult *lr = PQexec(c, "LISTEN ingest_batch");
	bool listening = PQresultStatus(lr) == PGRES_COMMAND_OK;
	PQclear(lr);
	if (!listening) {
		fprintf(stderr, "bench-watch: LISTEN: %s", PQerrorMessage(c));
		goto out;
	}
	long long seq0 = max_seq(c);
	if (seq0 < 0 || obs_add(&l, bu_now_ms(), seq0) != 0)
		goto out;
	if (ready != NULL && bu_touch(ready) != 0)
		goto out;

	int64_t drain_start = 0, last_change = bu_now_ms(), next_poll = bu_now_ms() + poll_ms;
	while (!bu_stop) {
		struct pollfd pfd = { PQsocket(c), POLLIN, 0 };
		int64_t now = bu_now_ms();
		long long s = -1;

		if (poll(&pfd, 1, (int)(next_poll > now ? next_poll - now : 0)) < 0 &&
		    errno != EINTR) {
			perror("bench-watch: poll");
			goto out;
		}
		now = bu_now_ms();
		if (PQconsumeInput(c) != 1) {
			fprintf(stderr, "bench-watch: %s", PQerrorMessage(c));
			goto out;
		}
		PGnotify *n;
		while ((n = PQnotifies(c)) != NULL) {
			long long ns = atoll(n->extra);
			if (ns > s)
				s = ns;
			PQfreemem(n);
		}
		if (now >= next_poll) {
			long long ps = max_seq(c);
			if (ps < 0)
				goto out;
			if (ps > s)
				s = ps;
			next_poll = now + poll_ms;
		}
		if (s > l.v[l.n - 1].seq) {
			if (obs_add(&l, now, s) != 0)
				goto out;
			last_change = now;
		}
		if (bu_drain && drain_start == 0)
			drain_start = now;
		if (drain_start > 0 &&
		    (now - last_change >= idle_ms || now - drain_start >= drain_max_s * 1000))
			break;
	}
	/* Drained: the last batch came idle_ms before we stopped looking. */
	int64_t drained_ms = drain_start > 0 ? last_change - drain_start : -1;
	if (write_timeline(c, &l, seq0, timeline_path) != 0 || lags(c, &l, seq0, w0, w1) != 0)
		goto out;
	printf("drain_ms=%lld drain_timeout=%d\n", (long long)(drained_ms < 0 ? 0 : drained_ms),
	       drain_start > 0 && bu_now_ms() - drain_start >= drain_max_s * 1000);
	fflush(stdout);
	rc = 0;
out:
	PQfinish(c);
	free(l.v);
	return rc;
}

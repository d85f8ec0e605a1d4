/*
 * bench-ingest-copy: the PostgreSQL-alone baseline. One libpq connection
 * writes the rows sc-ingest would write for the benchmark's telemetry (gen.h:
 * same devices, metrics, values) into a `telemetry` table made by the same
 * migrations, with COPY, --batch rows per COPY and so per transaction
 * (autocommit: one commit per batch, as sc-ingest commits one statement per
 * batch; its default SC_INGEST_BATCH_MAX is 1000). Nothing else runs: what it
 * reaches is what PostgreSQL on this machine can store.
 *
 * The database must be migrated (scctl migrate); the table is emptied first
 * and today's partitions made, as sc-ingest makes them on connect.
 *
 * --mode batch sends the same rows as sc-ingest does instead: its statement
 * (sc_ingest_batch, parameters built by services/ingest/params.c), one per
 * batch, into a database with the devices imported (device_state refers to
 * them); the table is not emptied then. Beside COPY it shows what the
 * statement costs PostgreSQL per row, without MQTT or sc-ingest around it.
 *
 * After each commit it appends "epoch_ms rows" to --timeline; at the end it
 * prints one summary line "key=value ..." on stdout for run.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "benchutil.h"
#include "gen.h"
#include "ingest.h"
#include "strbuf.h"
#include "timeutil.h"

/* Executes a statement that returns nothing we need. 0 or -1 (printed). */
static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "bench-copy: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* "2026-11-23 08:00:00.250123+00": microseconds, as sc-ingest stores received_at. */
static void format_us(int64_t us, char *buf, size_t len)
{
	time_t secs = (time_t)(us / TIME_US_PER_S);
	struct tm tm;
	char day[24];

	gmtime_r(&secs, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06d+00", day, (int)(us % TIME_US_PER_S));
}

/* Appends one row in COPY text format; our data holds no tab, newline or backslash. */
static void put_row(struct strbuf *b, const char *dev, uint64_t seq, const char *ts,
		    const char *recv, unsigned nmetrics, long long batch_id)
{
	char metrics[GEN_PAYLOAD_MAX];

	gen_metrics(metrics, sizeof(metrics), nmetrics, seq);
	strbuf_printf(b, "%s\t%llu\t%s\t%s\t%.1f\t%s\t%lld\n", dev, (unsigned long long)seq, ts,
		      recv, gen_run_hours(seq), metrics, batch_id);
}

/* One batch in one COPY (its own transaction). 0 or -1 (printed). */
static int copy_batch(PGconn *c, const struct strbuf *rows)
{
	PGresult *r = PQexec(c, "COPY telemetry (device_id, seq, ts, received_at, run_hours, "
				"metrics, batch_id) FROM STDIN");
	int rc = -1;

	if (PQresultStatus(r) != PGRES_COPY_IN) {
		fprintf(stderr, "bench-copy: COPY: %s", PQerrorMessage(c));
		goto out;
	}
	if (PQputCopyData(c, rows->data, (int)rows->len) != 1 || PQputCopyEnd(c, NULL) != 1) {
		fprintf(stderr, "bench-copy: COPY data: %s", PQerrorMessage(c));
		goto out;
	}
	PQclear(r);
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench-copy: COPY end: %s", PQerrorMessage(c));
		goto out;
	}
	rc = 0;
out:
	PQclear(r);
	/* Drain to the end of the command so the connection is ready again. */
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
	return rc;
}

/* Rows k .. k+n-1 in one COPY. 0 or -1 (printed). */
static int copy_rows(PGconn *c, struct strbuf *rows, char (*ids)[GEN_DEVICE_ID_LEN],
		     long long devices, long long seq_start, unsigned nmetrics,
		     unsigned long long k, long long n, long long batch_id, int64_t now)
{
	char ts[48], recv[48];

	/* The publisher's ts has milliseconds, sc-ingest's received_at µs. */
	format_us(now / 1000 * 1000, ts, sizeof(ts));
	format_us(now, recv, sizeof(recv));
	strbuf_reset(rows);
	for (long long i = 0; i < n; i++, k++)
		put_row(rows, ids[k % (unsigned long long)devices],
			(uint64_t)seq_start + k / (unsigned long long)devices, ts, recv, nmetrics,
			batch_id);
	if (!strbuf_ok(rows)) {
		fprintf(stderr, "bench-copy: out of memory\n");
		return -1;
	}
	return copy_batch(c, rows);
}

/* Rows k .. k+n-1 as sc-ingest's batch, sent as its statement. 0 or -1 (printed). */
static int send_batch(PGconn *c, char (*ids)[GEN_DEVICE_ID_LEN], long long devices,
		      long long seq_start, unsigned nmetrics, unsigned long long k, long long n,
		      int64_t now)
{
	struct item *items = calloc((size_t)n, sizeof(*items));
	struct tele_info *tele = calloc((size_t)n, sizeof(*tele));
	struct batch b = { items, (size_t)n, (size_t)n, 0 };
	char *params[BP_COUNT];
	char metrics[GEN_PAYLOAD_MAX];
	PGresult *r = NULL;
	int rc = -1;
	bool built = false;

	if (items == NULL || tele == NULL)
		goto out;
	for (long long i = 0; i < n; i++, k++) {
		uint64_t seq = (uint64_t)seq_start + k / (unsigned long long)devices;
		if (gen_metrics(metrics, sizeof(metrics), nmetrics, seq) < 0 ||
		    (items[i].row = strdup(metrics)) == NULL)
			goto out;
		snprintf(tele[i].device, sizeof(tele[i].device), "%s",
			 ids[k % (unsigned long long)devices]);
		tele[i].seq = seq;
		tele[i].ts_us = now / 1000 * 1000;
		tele[i].recv_us = now;
		snprintf(tele[i].run_hours, sizeof(tele[i].run_hours), "%.1f", gen_run_hours(seq));
		items[i].kind = ITEM_TELEMETRY;
		items[i].tele = &tele[i];
	}
	if (batch_params(&b, params) != 0)
		goto out;
	built = true;
	r = PQexecParams(c, INGEST_BATCH_SQL, BP_COUNT, NULL, (const char *const *)params, NULL,
			 NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench-copy: sc_ingest_batch: %s", PQerrorMessage(c));
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && !built)
		fprintf(stderr, "bench-copy: out of memory\n");
	PQclear(r);
	if (built)
		for (int p = 0; p < BP_COUNT; p++)
			free(params[p]);
	for (long long i = 0; items != NULL && i < n; i++)
		free(items[i].row);
	free(items);
	free(tele);
	return rc;
}

int main(int argc, char **argv)
{
	const char *dsn = "dbname=servicecloud", *timeline_path = NULL, *mode = "copy";
	long long seconds = 20, batch = 1000, devices = 1000, metrics = 4, seq_start = 1,
		  start_at = 0;
	const struct bu_opt opts[] = {
		{ "dsn", BU_STR, &dsn, "libpq connection string of a migrated database" },
		{ "mode", BU_STR, &mode, "copy (COPY rows) or batch (sc-ingest's statement)" },
		{ "seconds", BU_INT, &seconds, "how long to write" },
		{ "batch", BU_INT, &batch, "rows per COPY (= per transaction)" },
		{ "devices", BU_INT, &devices, "devices, round-robin" },
		{ "metrics", BU_INT, &metrics, "metrics per row" },
		{ "seq-start", BU_INT, &seq_start, "seq of each device's first row" },
		{ "start-at", BU_INT, &start_at, "epoch ms to start at (0: at once)" },
		{ "timeline", BU_STR, &timeline_path, "file for 'epoch_ms rows' after each commit" },
		{ NULL, BU_INT, NULL, NULL },
	};
	PGconn *c = NULL;
	FILE *timeline = NULL;
	struct strbuf rows;
	char (*ids)[GEN_DEVICE_ID_LEN] = NULL;
	int rc = 1;

	strbuf_init(&rows);
	int prc = bu_parse(argc, argv, "COPYs benchmark telemetry rows into PostgreSQL.", opts);
	if (prc != 0)
		return prc > 0 ? 0 : 2;
	bool copy = strcmp(mode, "copy") == 0;
	if (batch < 1 || devices < 1 || metrics < 1 || metrics > GEN_MAX_METRICS || seconds < 1 ||
	    (!copy && strcmp(mode, "batch") != 0)) {
		fprintf(stderr, "bench-copy: bad option value (see --help)\n");
		return 2;
	}
	bu_signals();
	timeline = fopen(timeline_path ? timeline_path : "/dev/null", "w");
	ids = calloc((size_t)devices, sizeof(*ids));
	if (timeline == NULL || ids == NULL) {
		fprintf(stderr, "bench-copy: cannot open timeline or out of memory\n");
		goto out;
	}
	for (long long i = 0; i < devices; i++)
		gen_device_id((unsigned)i, ids[i], sizeof(ids[i]));
	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench-copy: connect: %s", PQerrorMessage(c));
		goto out;
	}
	if ((copy && exec_ok(c, "TRUNCATE telemetry") != 0) ||
	    exec_ok(c, "SELECT sc_telemetry_partitions(1, 3)") != 0)
		goto out;
	if (start_at > 0)
		bu_sleep_until_ms(start_at);

	int64_t end = bu_now_ms() + seconds * 1000;
	unsigned long long k = 0, total = 0;
	long long batch_id = 1, batches = 0;
	while (!bu_stop && bu_now_ms() < end) {
		int64_t now = time_now_us();
		if (copy ? copy_rows(c, &rows, ids, devices, seq_start, (unsigned)metrics, k, batch,
				     batch_id, now) != 0
			 : send_batch(c, ids, devices, seq_start, (unsigned)metrics, k, batch, now) != 0)
			goto out;
		k += (unsigned long long)batch;
		total += (unsigned long long)batch;
		batch_id++;
		batches++;
		fprintf(timeline, "%lld %llu\n", (long long)bu_now_ms(), total);
	}
	printf("rows=%llu batches=%lld\n", total, batches);
	fflush(stdout);
	rc = 0;
out:
	strbuf_free(&rows);
	PQfinish(c);
	if (timeline != NULL)
		fclose(timeline);
	free(ids);
	return rc;
}

/*
 * sc-faultcheck: the checker of the fault suite (docs/faults.md). Loads
 * what was sent (sc-sim --journal) and what was received (sc-faultrec's
 * recording) into the fault_* tables of schema/047_fault_check.sql, runs
 * sc_check_state() and sc_check_delivery(), prints one line per check and
 * exits 1 if any check found a violation.
 *
 *   sc-faultcheck --dsn DSN [--journal FILE] [--recording FILE]
 *
 * Without --journal and --recording only sc_check_state() runs (any
 * database; it reads and writes nothing else). With them the fault_sent
 * and fault_recv tables are replaced by the files' contents. Synchronous
 * libpq: a test tool, not a service.
 *
 * Exit status: 0 every check passed, 1 a violation, 2 bad usage or a
 * failure (database, file).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* Sends a file's lines through COPY ... FROM STDIN; journal lines have
 * their backslashes doubled (they are plain text), recordings are already
 * in COPY text format. Returns rows sent, or -1. */
static long copy_file(PGconn *c, const char *sql, const char *path, bool escape)
{
	FILE *f = fopen(path, "rb");
	PGresult *res = NULL;
	char line[1 << 16];
	long n = -1, rows = 0;
	if (f == NULL) {
		fprintf(stderr, "sc-faultcheck: cannot open %s\n", path);
		return -1;
	}
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		fprintf(stderr, "sc-faultcheck: copy failed: %s", PQerrorMessage(c));
		goto out;
	}
	PQclear(res);
	res = NULL;
	char *big = NULL;
	size_t cap = 0;
	/* getline: recordings may hold payloads up to 64 KiB and more */
	ssize_t len;
	while ((len = getline(&big, &cap, f)) > 0) {
		if (big[len - 1] != '\n')
			continue; /* a torn last line (writer killed): not a message */
		if (escape) {
			size_t o = 0;
			for (ssize_t i = 0; i < len && o + 2 < sizeof(line); i++) {
				if (big[i] == '\\')
					line[o++] = '\\';
				line[o++] = big[i];
			}
			if (PQputCopyData(c, line, (int)o) != 1)
				break;
		} else if (PQputCopyData(c, big, (int)len) != 1) {
			break;
		}
		rows++;
	}
	free(big);
	if (PQputCopyEnd(c, NULL) != 1) {
		fprintf(stderr, "sc-faultcheck: copy failed: %s", PQerrorMessage(c));
		goto out;
	}
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "sc-faultcheck: copy of %s failed: %s", path, PQerrorMessage(c));
		goto out;
	}
	n = rows;
out:
	PQclear(res);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	fclose(f);
	return n;
}

static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK
			 ? 0
			 : -1;
	if (rc != 0)
		fprintf(stderr, "sc-faultcheck: %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	return rc;
}

/* Runs one sc_check_* function and prints its rows. Returns the violations
 * found, or -1. */
static long run_checks(PGconn *c, const char *fn)
{
	char sql[128];
	long bad = 0;
	snprintf(sql, sizeof(sql), "SELECT name, checked, violations, detail FROM %s()", fn);
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "sc-faultcheck: %s failed: %s", fn, PQerrorMessage(c));
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		long v = atol(PQgetvalue(res, i, 2));
		printf("%-4s %-34s checked %8s  violations %6ld  %s\n", v > 0 ? "FAIL" : "ok",
		       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), v, PQgetvalue(res, i, 3));
		bad += v;
	}
	PQclear(res);
	return bad;
}

int main(int argc, char **argv)
{
	const char *dsn = NULL, *journal = NULL, *recording = NULL;
	PGconn *c = NULL;
	int rc = 2;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: sc-faultcheck --dsn DSN [--journal FILE] [--recording FILE]\n"
			       "exit 0: every check passed; 1: a violation; 2: usage or failure\n");
			return 0;
		} else if (i + 1 < argc && strcmp(argv[i], "--dsn") == 0) {
			dsn = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--journal") == 0) {
			journal = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--recording") == 0) {
			recording = argv[++i];
		} else {
			fprintf(stderr, "sc-faultcheck: unknown argument %s (see --help)\n", argv[i]);
			return 2;
		}
	}
	if (dsn == NULL || (journal == NULL) != (recording == NULL)) {
		fprintf(stderr, "sc-faultcheck: --dsn is required; --journal and --recording go "
				"together (see --help)\n");
		return 2;
	}
	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "sc-faultcheck: cannot connect: %s", PQerrorMessage(c));
		goto out;
	}
	if (journal != NULL) {
		long ns, nr;
		if (exec_ok(c, "TRUNCATE fault_sent, fault_recv") != 0)
			goto out;
		ns = copy_file(c, "COPY fault_sent (kind, topic, key, note) FROM STDIN", journal, true);
		nr = copy_file(c, "COPY fault_recv (topic, payload) FROM STDIN", recording, false);
		if (ns < 0 || nr < 0 || exec_ok(c, "ANALYZE fault_sent") != 0 ||
		    exec_ok(c, "ANALYZE fault_recv") != 0)
			goto out;
		printf("loaded: sent %ld (journal), received %ld (recording)\n", ns, nr);
	}
	long bad = run_checks(c, "sc_check_state");
	if (bad < 0)
		goto out;
	if (journal != NULL) {
		long more = run_checks(c, "sc_check_delivery");
		if (more < 0)
			goto out;
		bad += more;
	}
	printf("%s: %ld violation%s\n", bad == 0 ? "PASS" : "FAIL", bad, bad == 1 ? "" : "s");
	rc = bad == 0 ? 0 : 1;
out:
	PQfinish(c);
	return rc;
}

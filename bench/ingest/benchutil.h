#ifndef SC_BENCH_INGEST_BENCHUTIL_H
#define SC_BENCH_INGEST_BENCHUTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What the benchmark programs share: command-line options, the wall clock in
 * milliseconds (all programs of a run compare times with each other and with
 * the `ts` stored in PostgreSQL, so it is the wall clock, not a monotonic
 * one), and the signals run.sh uses to steer them.
 */

enum bu_type { BU_INT, BU_STR };

/* One option "--name value"; the table ends with a NULL name. */
struct bu_opt {
	const char *name;  /* without the dashes */
	enum bu_type type;
	void *ptr;         /* long long * for BU_INT, const char ** for BU_STR */
	const char *help;
};

/*
 * Fills the options from argv. Unknown options, missing or bad values and
 * --help print the usage (summary, then every option with its default) to
 * stderr; the function then returns -1 (2 meant as the exit status), or 1
 * after --help. 0 on success.
 */
int bu_parse(int argc, char **argv, const char *summary, const struct bu_opt *opts);

/* Wall-clock milliseconds since the epoch. */
int64_t bu_now_ms(void);

/* Sleeps until the wall clock reaches t_ms (returns at once if it has). */
void bu_sleep_until_ms(int64_t t_ms);

/* Sleeps ms milliseconds. */
void bu_sleep_ms(int64_t ms);

/*
 * SIGINT/SIGTERM set bu_stop (stop now), SIGUSR1 sets bu_drain (the offered
 * load has ended: finish what is still arriving, then stop). Installed
 * explicitly because a background job of a script starts with SIGINT ignored.
 */
extern volatile sig_atomic_t bu_stop, bu_drain;
void bu_signals(void);

/*
 * Splits "tcp://host:port" (for finding our socket to the broker and setting
 * TCP_NODELAY on it). Returns the port and host in buf, or -1.
 */
int bu_url_host_port(const char *url, char *host, size_t len);

/* Creates (or truncates) path: tells run.sh that we are ready. 0 or -1. */
int bu_touch(const char *path);

#endif

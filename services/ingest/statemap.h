#ifndef SC_INGEST_STATEMAP_H
#define SC_INGEST_STATEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Each device's latest state folded from its committed telemetry, waiting to
 * be written to device_state (state.c), with the batches it covers. No
 * libevent or database here (unit.test_statemap).
 *
 * Folding keeps what sc_device_state_apply keeps: the newest seq and ts (by
 * ts, then seq), the latest arrival, the run hours of the newest message that
 * carried them, and the last value of each metric (a newer message's values
 * replace an older one's, metrics it lacks stay). Messages may be folded in
 * any order.
 */

struct dev_state {
	char device[65];
	uint64_t seq;          /* of the newest message */
	int64_t ts_us;         /* newest device ts */
	int64_t recv_us;       /* latest arrival */
	char run_hours[32];    /* float8 literal; "" = none yet */
	int64_t hours_ts_us;   /* ts and seq of the message the run hours came from */
	uint64_t hours_seq;
	char *metrics;         /* JSON object; owned; NULL = none */
};

/* What statemap_take hands over: states sorted by device (byte order). */
struct state_set {
	struct dev_state *e;
	size_t n;
	int64_t *batches;
	size_t nbatches;
};

struct statemap;

struct statemap *statemap_new(void) __attribute__((warn_unused_result));
void statemap_free(struct statemap *m);
/* Devices waiting, batches waiting. */
size_t statemap_count(const struct statemap *m);
size_t statemap_batches(const struct statemap *m);

/*
 * Folds src into its device's entry. src->metrics may be taken (set to
 * NULL); the caller frees what is left in it. 0, or -1 when out of memory
 * (the entry is as it was, or holds part of src: never anything wrong).
 */
int statemap_fold(struct statemap *m, struct dev_state *src) __attribute__((warn_unused_result));
/* Records a batch whose messages were all folded. 0 or -1 (out of memory). */
int statemap_add_batch(struct statemap *m, int64_t batch_id) __attribute__((warn_unused_result));
/* Moves everything into out (sorted by device) and leaves m empty. */
void statemap_take(struct statemap *m, struct state_set *out);
/* Folds a set that could not be written back in (it is freed). 0 or -1. */
int statemap_put_back(struct statemap *m, struct state_set *s) __attribute__((warn_unused_result));
void state_set_free(struct state_set *s);

#endif

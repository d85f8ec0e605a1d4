#ifndef SC_INGEST_INGEST_H
#define SC_INGEST_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "payload.h"
#include "statemap.h"

struct service;
struct idmap;
struct master_watch;
struct metric;
struct event;
struct mqsub_msg;

/*
 * sc-ingest: the front door for device messages and customer requests
 * (contract sections 2.1, 2.2, 2.6).
 *
 * intake.c classifies and validates each message; valid device messages
 * and every rejection go into the open batch (batch.c), which one statement
 * (sc_ingest_batch) commits; requests go one statement each
 * (requests.c, sc_request_submit). registry.c keeps the known device ids
 * and the telemetry partitions.
 */

/* One entry of a batch. */
enum item_kind { ITEM_TELEMETRY, ITEM_ALARM, ITEM_REJECT };

/* A telemetry item's columns besides its metrics (params.c). */
struct tele_info {
	char device[65];
	uint64_t seq;
	int64_t ts_us;
	int64_t recv_us;
	char run_hours[32]; /* as a float8 literal; "" when the message had none */
};

struct item {
	enum item_kind kind;
	char *row;       /* telemetry: its metrics object as JSON; alarm, reject:
			  * its JSON object for sc_ingest_batch's `other` */
	struct tele_info *tele; /* telemetry only, owned; NULL otherwise */
	int64_t ts_us;   /* device ts, for the lag histogram */
	char *topic;     /* for turning it into a reject if its row fails */
	char *raw;       /* payload as received */
	size_t raw_len;
	unsigned long long token; /* inbound message to acknowledge after commit */
};

struct batch {
	struct item *items;
	size_t n, cap;
	int64_t opened_us; /* monotonic time of the first item */
};

/*
 * One batch statement in flight on its own database connection. Several
 * slots (SC_INGEST_PIPELINE) overlap the database's work on one batch with
 * the next.
 */
struct slot {
	struct ingest *in;
	struct db *db;
	struct batch sending;            /* in flight (n == 0: idle) */
	/* Sub-batches still to send after a failed batch was split. */
	struct batch *retry;
	size_t nretry, capretry;
};

struct ingest_metrics {
	struct metric *stored[3], *duplicate[3], *rejected[3]; /* by ingest_kind */
	struct metric *rejected_other;   /* bad_topic and the like */
	struct metric *lag[3];
	struct metric *batch_rows;
	struct metric *batch_seconds;
	struct metric *batch_splits;
};

/* device_state on its own cadence (state.c). */
struct ingest_state {
	struct statemap *pending;        /* folded since the last apply */
	int64_t since_us;                /* monotonic time of its first fold */
	struct state_set sending;        /* the apply in flight */
	int64_t sending_since_us;
	bool busy;                       /* an apply or a repair in flight */
	int64_t next_repair_us;          /* monotonic */
	bool repaired_once;              /* the start-up pass is done */
	bool last_was_repair;            /* the last statement sent */
	int64_t started_us;              /* wall clock at start */
	struct db *db;
	struct event *timer;
	struct metric *m_rows, *m_repaired, *m_failures, *m_pending, *m_age;
};

/* Kinds for metrics labels. */
enum ingest_kind { KIND_TELEMETRY, KIND_ALARM, KIND_REQUEST };

struct ingest {
	struct service *svc;
	struct idmap *devices;           /* known device ids */
	struct master_watch *master;
	bool devices_loading;
	long long devices_version;

	struct batch open;               /* filling */
	struct slot *slots;
	int nslots;
	struct event *flush_timer;
	size_t requests_in_flight;

	struct ingest_state state;

	struct event *maint_timer;
	int64_t last_retention_us;

	struct ingest_metrics m;
};

/* intake.c */
void intake_on_message(void *arg, const struct mqsub_msg *m);

/* batch.c */
int batch_init(struct ingest *in) __attribute__((warn_unused_result));
void batch_free_all(struct ingest *in);
/*
 * Takes ownership of row and tele (telemetry only, else NULL); copies topic and raw. The message of `token` is
 * acknowledged to the broker once the batch holding it is committed.
 * Returns 0 or -1 (out of memory: the message is not acknowledged, so the
 * broker delivers it again).
 */
int batch_add(struct ingest *in, enum item_kind kind, char *row, struct tele_info *tele,
	      int64_t ts_us, const char *topic, const char *raw, size_t raw_len,
	      unsigned long long token)
	__attribute__((warn_unused_result));
/* Adds a rejection of a message (reason/detail of contract section 2.6). */
void batch_reject(struct ingest *in, const char *topic, const char *reason,
		  const char *detail, const char *raw, size_t raw_len, unsigned long long token);
bool batch_idle(const struct ingest *in);
/* Counts a rejection in sc_ingest_rejected_total{reason}. */
void ingest_count_rejected(struct ingest *in, const char *reason);

/* params.c: the parameters of sc_ingest_batch (schema/048_device_state_deferred.sql)
 * for a batch, in this order; out[] gets malloc'd strings. 0 or -1 (out of
 * memory, nothing to free). */
enum batch_param {
	BP_T_DEV, BP_T_SEQ, BP_T_TS, BP_T_RECV, BP_T_HOURS, BP_T_METRICS,
	BP_OTHER, BP_COUNT
};
int batch_params(const struct batch *b, char *out[BP_COUNT]) __attribute__((warn_unused_result));
/* The statement those parameters are for (also bench/ingest/copy.c's). */
#define INGEST_BATCH_SQL                                                              \
	"SELECT sc_ingest_batch($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],"  \
	" $5::float8[], $6::jsonb[], $7::jsonb)"

/* state.c */
int state_init(struct ingest *in) __attribute__((warn_unused_result));
void state_free(struct ingest *in);
/* Folds a committed batch's telemetry (items' rows may be taken) and
 * records the batch as covered. */
void state_fold_batch(struct ingest *in, struct batch *b, int64_t batch_id);
/* Sends what waits; true when nothing waits and nothing is in flight. */
bool state_idle(struct ingest *in);
void tele_info_free(struct tele_info *t);

/* requests.c */
void requests_submit(struct ingest *in, const struct payload_request *r, const char *topic,
		     const char *raw, size_t raw_len, unsigned long long token);

/* registry.c */
int registry_init(struct ingest *in) __attribute__((warn_unused_result));
void registry_free(struct ingest *in);
bool registry_has_device(const struct ingest *in, const char *id);

#endif

#ifndef SC_ALERTD_ALERTD_H
#define SC_ALERTD_ALERTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "rules.h"

struct service;
struct db;
struct event;
struct idmap;
struct master_watch;
struct metric;

/*
 * sc-alertd: the alert evaluator (contract sections 1, 3, 5, 6;
 * docs/architecture.md "How services hand work to each other").
 *
 * sc-ingest commits device messages in batches and appends each batch to
 * the commit-ordered log `ingest_batch`. sc-alertd follows that log with a
 * cursor (stream_cursor, consumer "sc-alertd"), one round at a time and
 * strictly serially:
 *
 *   consumer.c  reads up to ALERTD_ROUND_BATCHES batches past the cursor
 *               and their telemetry (device, ts, seq order);
 *   evaluate.c  runs every sample through the rules of the device's model
 *               (common/rules.c) on a working copy of the rule state;
 *   apply.c     sends the round's raises, clears, changed states and the
 *               new cursor as ONE statement, sc_alertd_apply(), and only
 *               when it committed makes the working copy the state.
 *
 * So a kill -9 replays exactly the batches whose effects were not
 * committed, and the in-memory state (state.c) always equals rule_state.
 * ruleset.c keeps the master data the rules need (alert rules, device ->
 * model) and reloads it within seconds of an import (common/master.h).
 *
 * Later issues extend this without changing its shape: device alarms are
 * one more query of the same batches feeding the same apply (source
 * "alarm"), silent rules and the lifecycle scan are timers that queue their
 * events into the next round, and several instances take one consumer
 * name (cursor) each.
 */

/* Batches read per round: a few, so a round stays short and a crash
 * replays little, yet a backlog drains in big enough statements. */
#define ALERTD_ROUND_BATCHES 8

/* State key of a device alarm code: prefix + code (rule ids hold no ':'). */
#define ALERTD_ALARM_PREFIX "alarm:"

/* Columns of the round's rows (consumer.c's query): telemetry and device
 * alarms of the round's batches in device, ts, seq order. */
enum alertd_row_col {
	ROW_DEVICE,   /* device_id */
	ROW_SEQ,      /* seq */
	ROW_TS,       /* device ts, us */
	ROW_BODY,     /* telemetry: metrics json; alarm: its text */
	ROW_KIND,     /* 't' telemetry, 'a' alarm */
	ROW_CODE,     /* alarm code (NULL for telemetry) */
	ROW_STATE,    /* alarm state raised | cleared (NULL for telemetry) */
	ROW_RECEIVED, /* arrival time (received_at), us */
};

/* Period of the lifecycle scan without the setting (contract section 3
 * default), and the shortest one taken (a typo must not hammer the
 * database). */
#define ALERTD_LIFECYCLE_SCAN_S 3600
#define ALERTD_LIFECYCLE_SCAN_MIN_S 1

/* Backoff after a failed statement: doubling from MIN to MAX ms. */
#define ALERTD_BACKOFF_MIN_MS 200
#define ALERTD_BACKOFF_MAX_MS 10000

/* ---- master data (ruleset.c) ------------------------------------------- */

/* One snapshot of the master data the evaluator uses; immutable once built. */
struct alertd_ruleset {
	struct rules_rule *rules; /* threshold rules, by id; silent ones left out */
	size_t nrules;
	struct rules_rule *silent; /* silent rules, by id (silent.c) */
	size_t nsilent;
	struct idmap *models;     /* device id -> model (char *, owned by `strings`) */
	char **strings;           /* model names the map points to */
	size_t nstrings;
	long long version;        /* master_version it was loaded for */
	double lifecycle_scan_s;  /* setting lifecycle_scan_s (lifecycle.c) */
};

/* ---- rule state (state.c) ---------------------------------------------- */

/* State of one (device, rule) or (device, alarm code), as committed and as
 * being worked on. */
struct alertd_entry {
	struct alertd_entry *next;       /* hash chain */
	struct alertd_entry *dirty_next; /* list of entries touched this round */
	bool dirty;                      /* on that list; `work` is live */
	bool silent;                     /* a silent rule's state (silent.c):
					  * last_ts_us is the last arrival */
	int64_t timer_key;               /* silent: key of its one heap entry,
					  * 0 when it has none */
	struct rules_state committed;    /* equals the rule_state row */
	struct rules_state work;         /* committed + this round's samples */
	long long alert_id;              /* the firing alert, 0 when none */
	const char *device;              /* points into key */
	const char *rule;                /* points into key: rule id, or
					  * ALERTD_ALARM_PREFIX + code */
	uint64_t hash;
	char key[];                      /* "device\0rule\0" */
};

/* Hash map (device, rule) -> entry, with the round's dirty list. */
struct alertd_state;

/* ---- metrics ------------------------------------------------------------ */

/* Alert sources of contract section 5, in label order. */
enum alertd_source { ALERTD_SOURCE_RULE, ALERTD_SOURCE_ALARM, ALERTD_SOURCE_LIFECYCLE };
#define ALERTD_NSOURCES 3

struct alertd_metrics {
	struct metric *raised[ALERTD_NSOURCES];  /* sc_alertd_alerts_total{state="raised"} */
	struct metric *cleared[ALERTD_NSOURCES]; /* sc_alertd_alerts_total{state="cleared"} */
	struct metric *batches;         /* sc_alertd_batches_applied_total */
	struct metric *samples;         /* sc_alertd_samples_evaluated_total */
	struct metric *alarms;          /* sc_alertd_alarms_evaluated_total */
	struct metric *unknown_codes;   /* sc_alertd_alarm_unknown_codes_total */
	struct metric *flapping;        /* sc_alertd_flapping_total */
	struct metric *partitions;      /* sc_alertd_partitions_held */
	struct metric *lag_batches;     /* sc_alertd_cursor_lag_batches */
	struct metric *lag_seconds;     /* sc_alertd_cursor_lag_seconds */
	struct metric *apply_errors;    /* sc_alertd_apply_errors_total */
	struct metric *apply_seconds;   /* sc_alertd_apply_seconds */
	struct metric *lifecycle_scans; /* sc_alertd_lifecycle_scans_total */
	struct metric *lifecycle_errors; /* sc_alertd_lifecycle_scan_errors_total */
	struct metric *lifecycle_due;   /* sc_alertd_lifecycle_due */
	struct metric *lifecycle_seconds; /* sc_alertd_lifecycle_scan_seconds */
};

/* ---- the service -------------------------------------------------------- */

enum alertd_phase {
	ALERTD_IDLE,      /* waiting for a notification or the sweep */
	ALERTD_LOADING,   /* reading the cursor and rule_state */
	ALERTD_BATCHES,   /* reading batches past the cursor */
	ALERTD_TELEMETRY, /* reading their telemetry */
	ALERTD_APPLYING,  /* sc_alertd_apply in flight */
	ALERTD_BACKOFF,   /* waiting to retry after a failure */
};

/* What one round read and produced. */
struct alertd_round {
	long long from;        /* cursor when the round started */
	long long to;          /* seq of the last batch read */
	size_t nbatches;
	long long head;        /* ingest_head.seq when the batches were read */
	double age_s;          /* age of the newest batch read, at read time */
	int64_t started_mono;  /* time_mono_us() when the batches were read */
	int64_t apply_mono;    /* time_mono_us() when the apply was sent */
	char *batch_ids;       /* "{id,id,...}" for the telemetry query */
	char *cursors;         /* partition_cursor_array() for the telemetry query */
	cJSON *events;         /* raise/clear events in evaluation order */
	size_t nsamples;       /* telemetry rows evaluated */
	size_t nalarms;        /* device alarm rows evaluated */
};

struct alertd {
	struct service *svc;
	struct db *db;

	/* Partitions (partition.c): the devices this instance evaluates. */
	int nparts;                     /* P, SC_ALERTD_PARTITIONS */
	bool *held;                     /* [P]: held by this instance */
	int nheld;
	long long *cursors;             /* [P]: cursor of each held partition */
	bool claiming;                  /* sc_alertd_claim in flight */
	char *load_held;                /* held set the state load in flight is for */
	char load_nparts[16];           /* its P as text */
	const char *load_params[2];     /* parameters of the load statements */

	/* Master data. */
	struct master_watch *master;
	struct alertd_ruleset *rules;   /* NULL until first loaded */
	bool rules_loading;             /* reload query in flight */
	bool rules_again;               /* master changed while loading */
	struct event *rules_retry;      /* retries a failed load */
	long long master_version;       /* newest master_version seen */

	/* Rule state and cursors, as committed. */
	struct alertd_state *state;
	bool state_loaded;              /* state and cursors match the database */
	long long cursor;               /* smallest cursor of the held partitions */

	/* Consumer. */
	enum alertd_phase phase;
	bool wanted;                    /* woken while busy: read again afterwards */
	struct event *sweep;            /* safety-net poll every SC_SWEEP_MS */
	struct event *retry;            /* backoff timer */
	int backoff_ms;
	struct alertd_round round;

	/* Flapping (common/rules.h rules_flap), from SC_ALERT_FLAP_*. */
	struct rules_flap_cfg flap;

	/* Lifecycle scan (lifecycle.c). */
	struct event *lifecycle_timer;  /* next scan */
	double lifecycle_period_s;      /* period the timer was armed with */
	bool lifecycle_running;         /* a scan statement is in flight */

	/* Silent rules (silent.c). */
	struct heap *timers;            /* (deadline, entry) of silent states */
	struct event *silent_timer;     /* wakes the consumer at the next deadline */

	struct alertd_metrics m;
};

/* ruleset.c */
int ruleset_init(struct alertd *a) __attribute__((warn_unused_result));
void ruleset_free_all(struct alertd *a);
/* Reloads now (SIGHUP); a reload in flight is followed by another. */
void ruleset_reload(struct alertd *a);
/* The silent rule `id`, NULL when there is none. */
const struct rules_rule *ruleset_silent(const struct alertd_ruleset *rs, const char *id);
/* Model of a device, NULL when unknown. */
const char *ruleset_model(const struct alertd_ruleset *rs, const char *device);
/*
 * Builds a snapshot from the rows of ruleset.c's query (kind, id, model,
 * metric, op, threshold, for_s, clear). Rules that do not check out are
 * left out with a warning. NULL on allocation failure.
 */
struct alertd_ruleset *ruleset_build(const PGresult *res, long long version)
	__attribute__((warn_unused_result));
void ruleset_free(struct alertd_ruleset *rs);

/* state.c */
struct alertd_state *state_new(void) __attribute__((warn_unused_result));
void state_free(struct alertd_state *st);
size_t state_count(const struct alertd_state *st);
/*
 * The entry of (device, rule) for this round: found or made (committed
 * state empty), put on the dirty list with work = committed on its first
 * touch. NULL on allocation failure.
 */
struct alertd_entry *state_touch(struct alertd_state *st, const char *device, const char *rule)
	__attribute__((warn_unused_result));
/* The entry of (device, rule), found or made, without touching it (not
 * dirty, so not written unless a round changes it). NULL on allocation
 * failure. */
struct alertd_entry *state_seed(struct alertd_state *st, const char *device, const char *rule)
	__attribute__((warn_unused_result));
/* Finds an entry without touching it; NULL when absent. */
struct alertd_entry *state_find(struct alertd_state *st, const char *device, const char *rule);
/* Source of an entry (rule or alarm, from its key) and into *ref the rule
 * id or alarm code. */
enum alertd_source state_entry_source(const struct alertd_entry *e, const char **ref);
/* Label spelling of a source ("rule", "alarm", "lifecycle"). */
const char *alertd_source_name(enum alertd_source s);
/* First entry touched this round (then ->dirty_next), NULL when none. */
struct alertd_entry *state_dirty(struct alertd_state *st);
/* The round committed: committed = work for every touched entry. */
void state_commit(struct alertd_state *st);
/* The round failed: forget the work. */
void state_discard(struct alertd_state *st);
/* Starts reading the cursor and rule_state into a new map (swapped in when
 * complete); phase ALERTD_LOADING until then. */
void state_load(struct alertd *a);
/* Registers the prepared statement state_load uses. 0 or -1. */
int state_init(struct alertd *a) __attribute__((warn_unused_result));

/* consumer.c */
int consumer_init(struct alertd *a) __attribute__((warn_unused_result));
void consumer_free(struct alertd *a);
/* Something may be waiting (notification, sweep, master or state loaded). */
void consumer_wake(struct alertd *a);
/* The apply of the round finished: `failed` means retry after a backoff,
 * from the state and cursor the database holds. */
void consumer_round_done(struct alertd *a, bool failed);
/* State and cursor were (re)loaded; `ok` false: retry after a backoff. */
void consumer_loaded(struct alertd *a, bool ok);
/* True when no statement of the consumer is in flight (for drain). */
bool consumer_idle(const struct alertd *a);
void round_reset(struct alertd_round *r);

/* evaluate.c */
/*
 * Runs the round's rows (enum alertd_row_col) through the rules of the
 * current ruleset (telemetry) and the alarm states (device alarms) on the
 * working state, appending raise and clear events to a->round.events. Returns 0, or -1 on allocation failure
 * (the round must then be discarded).
 */
int evaluate_rows(struct alertd *a, const PGresult *res) __attribute__((warn_unused_result));
/* A new event {"op", "source", "device", "rule" (the state key), "ref",
 * "ts", "seq"} appended to events (owned by it); NULL on allocation
 * failure. */
cJSON *evaluate_new_event(cJSON *events, const char *op, const char *source,
			  const struct alertd_entry *e, const char *ref, int64_t ts_us,
			  long long seq) __attribute__((warn_unused_result));

/* silent.c: silent rules (contract sections 3 and 6), measured on arrival
 * time with one heap entry per (device, silent rule). */
int silent_init(struct alertd *a) __attribute__((warn_unused_result));
void silent_free(struct alertd *a);
/* One arriving row (enum alertd_row_col; metrics NULL for an alarm) of a
 * device of `model`: every silent rule it counts for is fed. 0 or -1. */
int silent_observe(struct alertd *a, const char *device, const char *model,
		   const cJSON *metrics, int64_t received_us, long long seq)
	__attribute__((warn_unused_result));
/* Is a deadline due at now_us? */
bool silent_due(const struct alertd *a, int64_t now_us);
/* Raises every silent state whose deadline passed by now_us into the
 * round (work state and events). 0 or -1. */
int silent_fire_due(struct alertd *a, int64_t now_us) __attribute__((warn_unused_result));
/* The round committed: timers for the silent states it changed (call
 * before state_commit), then the wake-up re-armed. */
void silent_committed(struct alertd *a);
/* Rebuilds the heap from the whole state (after a load or a failed
 * round) and re-arms the wake-up. */
void silent_rebuild(struct alertd *a);
/* Rows of the device_state query (device, last_seen_at us, last_seq, metrics
 * json): devices that reported before sc-alertd knew them get a silent
 * state with that arrival. 0 or -1. */
int silent_seed(struct alertd *a, const PGresult *res) __attribute__((warn_unused_result));
/* Calls fn for every entry of the map. */
void state_foreach(struct alertd_state *st, void (*fn)(struct alertd_entry *e, void *arg),
		   void *arg);

/* lifecycle.c: the periodic lifecycle scan (preventive maintenance). */
int lifecycle_init(struct alertd *a) __attribute__((warn_unused_result));
void lifecycle_free(struct alertd *a);
/* Master data loaded: (re)arms the scan with the period of the setting,
 * the first scan soon after start. */
void lifecycle_schedule(struct alertd *a);
/* True when no scan statement is in flight (for drain). */
bool lifecycle_idle(const struct alertd *a);

/* partition.c: the devices this instance evaluates. */
int partition_init(struct alertd *a) __attribute__((warn_unused_result));
void partition_free(struct alertd *a);
/* Sends sc_alertd_claim unless one is in flight; a changed set makes the
 * state load again. */
void partition_claim(struct alertd *a);
/* The connection was lost, and with it the locks: nothing is held. */
void partition_lost(struct alertd *a);
/* "sc-alertd/p03": the cursor name of a partition. */
void partition_name(int part, char *buf, size_t len);
/* Adds "partitions" (held ones) and "nparts" (the scope of a statement)
 * to p. 0 or -1. */
int partition_scope_json(const struct alertd *a, cJSON *p) __attribute__((warn_unused_result));
/* Adds "consumers": [{"consumer", "from"}] of the held partitions. 0 or -1. */
int partition_apply_json(const struct alertd *a, cJSON *p) __attribute__((warn_unused_result));
/* "{0,3,5}": int[] literal of the held partitions; caller frees; NULL on
 * allocation failure. */
char *partition_held_array(const struct alertd *a) __attribute__((warn_unused_result));
/* "{c0,c1,...}": bigint[] literal of every partition's cursor (past every
 * batch for those not held); caller frees; NULL on allocation failure. */
char *partition_cursor_array(const struct alertd *a) __attribute__((warn_unused_result));
/* The cursor of a partition as loaded. */
void partition_set_cursor(struct alertd *a, int part, long long seq);
/* A round up to `to` committed: every held cursor is at least `to`; sets
 * a->cursor to the smallest. */
void partition_advance(struct alertd *a, long long to);
/* Does this instance hold any devices now? */
bool partition_any(const struct alertd *a);

/* apply.c */
int apply_init(struct alertd *a) __attribute__((warn_unused_result));
/* Sends the round (events, changed states, cursor from -> to). */
void apply_round(struct alertd *a);

#endif

#ifndef SC_SERVICES_DISPATCH_DISPATCH_H
#define SC_SERVICES_DISPATCH_DISPATCH_H

/*
 * sc-dispatch inside: tickets in state `new` become work orders offered to
 * one qualified engineer or partner (contract sections 2.3 and 6).
 *
 *   candidates.c  the sweep: woken by NOTIFY ticket_new, every SC_SWEEP_MS
 *                 and whenever capacity frees; reads one snapshot
 *                 (sc_dispatch_snapshot_delta), lets common/dispatch_choose.c
 *                 decide, hands the decisions to offers.c
 *   people.c      the engineers and partners kept between sweeps: master
 *                 data reloaded when it changed, status, shifts and loads
 *                 merged from each snapshot
 *   offers.c      offers and manual-queue moves (one SQL function call
 *                 each), one libevent timer per open offer for its expiry
 *   replan.c      escalation re-plans: on an SLA warning (NOTIFY
 *                 sla_warning), move an order not yet on site to somebody
 *                 who arrives earlier
 *   events.c      MQTT: engineers' and partners' order events, engineers'
 *                 status; rejected input
 *
 * Everything runs on the loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dispatch_choose.h"
#include "domain.h"

struct service;
struct metric;
struct mqsub_msg;
struct sweep;
struct offers;
struct replan;
struct people;

#define DISPATCH_PROGRAM "sc-dispatch"

/* Results of sc_dispatch_offers_total (contract section 5). */
enum dispatch_result {
	DISPATCH_OFFERED,
	DISPATCH_ACCEPTED,
	DISPATCH_DECLINED,
	DISPATCH_EXPIRED,
	DISPATCH_WITHDRAWN,
	DISPATCH_NRESULTS,
};

#define DISPATCH_NMODES 3 /* enum mode: onsite, remote, outsourced */

struct dispatch {
	struct service *svc;
	struct sweep *sweep;           /* candidates.c */
	struct offers *offers;         /* offers.c */
	struct replan *replan;         /* replan.c */
	struct people *people;         /* people.c */
	bool stopping;                 /* SIGTERM: start no new sweep */
	struct metric *offers_total[DISPATCH_NMODES][DISPATCH_NRESULTS];
	struct metric *decision_seconds;
};

/* Counts one sc_dispatch_offers_total{mode,result}. */
void dispatch_count(struct dispatch *d, enum mode mode, enum dispatch_result r);

/* ---- candidates.c ---------------------------------------------------- */

/* Registers the snapshot statement, LISTEN ticket_new and the sweep timer.
 * 0 or -1. */
int sweep_init(struct dispatch *d) __attribute__((warn_unused_result));
void sweep_free(struct dispatch *d);

/* Asks for a sweep soon; requests while one runs make one more after it. */
void sweep_request(struct dispatch *d);

/* No sweep running. */
bool sweep_idle(const struct dispatch *d);

/* offers.c reports each decision statement of a sweep back: `again` asks
 * for another sweep (the decision met a state the snapshot did not show). */
void sweep_decision_done(struct dispatch *d, bool again);

/*
 * One snapshot document (sc_dispatch_snapshot, sc_dispatch_replan_view),
 * parsed. Every string points into root; the arrays the choose structs
 * point to are in blocks.
 */
struct dispatch_snapshot {
	cJSON *root;
	struct choose_world world;
	struct choose_ticket *tickets;
	size_t ntickets;
	bool more;                     /* more tickets wait than were returned */
	void **blocks;
	size_t nblocks, capblocks;
};

/* Parses a snapshot document into s (zeroed by the caller); every open
 * offer it lists gets an expiry timer. 0, or -1 with the reason logged;
 * dispatch_snapshot_free(s) either way. */
int dispatch_snapshot_parse(struct dispatch *d, const char *text, size_t len,
			    struct dispatch_snapshot *s) __attribute__((warn_unused_result));

/* As dispatch_snapshot_parse, on a document already parsed into s->root
 * (owned by s). */
int dispatch_snapshot_parse_json(struct dispatch *d, struct dispatch_snapshot *s)
	__attribute__((warn_unused_result));

/* ---- people.c -------------------------------------------------------- */

/* The cache and its connect hook (a reconnect drops it). 0 or -1. */
int people_init(struct dispatch *d) __attribute__((warn_unused_result));
void people_free(struct dispatch *d);

/* Drops the cache: the next snapshot brings everything. */
void people_reset(struct dispatch *d);

/* Changes whenever the engineers and partners handed out by people_apply
 * are freed or replaced (pointers into them are then stale). */
unsigned people_gen(const struct dispatch *d);

/* Parameters of the next sc_dispatch_snapshot_delta: the people version
 * held (has_version false: none, pass NULL) and the `now` of the last
 * status read (has_since false: pass NULL). */
void people_params(const struct dispatch *d, char *version, size_t vlen, char *since, size_t slen,
		   bool *has_version, bool *has_since);

/*
 * Merges the people parts of a sc_dispatch_snapshot_delta document (root;
 * its "people" member is taken over) into the cache and points w's
 * engineers and partners at it (valid until the next call; w->now_us must
 * be set). 0, or -1 with the reason logged and the cache dropped.
 */
int people_apply(struct dispatch *d, cJSON *root, struct choose_world *w)
	__attribute__((warn_unused_result));
void dispatch_snapshot_free(struct dispatch_snapshot *s);

/* ---- offers.c -------------------------------------------------------- */

/* Registers the offer, manual, expire statements and the connect hook that
 * loads every open offer's timer. 0 or -1. */
int offers_init(struct dispatch *d) __attribute__((warn_unused_result));

/* Cancels every timer and frees. */
void offers_free(struct dispatch *d);

/* At most this many offers per sc_dispatch_offer_many statement: a sweep
 * chunk's offers (candidates.c, SWEEP_CHUNK) go in one. */
#define OFFER_BATCH 1000

/*
 * Offers tickets[i] to engineers[i] or partners[i] (the other NULL) in
 * modes[i], i < n <= OFFER_BATCH, in one statement (sc_dispatch_offer_many,
 * each offer as sc_dispatch_offer in its own subtransaction). Calls
 * sweep_decision_done() once when it returned. 0, or -1 when it could not
 * be queued (nothing called).
 */
int offers_send_batch(struct dispatch *d, size_t n, const char *const *tickets,
		      const char *const *engineers, const char *const *partners,
		      const enum mode *modes) __attribute__((warn_unused_result));

/* Sends ticket to the manual queue (sc_dispatch_manual); calls
 * sweep_decision_done() once when the statement returned. */
int offers_manual(struct dispatch *d, const char *ticket, const char *reason)
	__attribute__((warn_unused_result));

/*
 * Keeps an expiry timer for an open offer (at expires_us, wall clock).
 * Known already: the expiry is updated. mine: this instance made the offer
 * (a withdrawal is then counted here, once).
 */
void offers_track(struct dispatch *d, const char *order_id, enum mode mode,
		  int64_t expires_us, bool mine);

/* The offer was answered: its timer is not needed any more. */
void offers_forget(struct dispatch *d, const char *order_id);

/* ---- replan.c -------------------------------------------------------- */

/* LISTEN sla_warning, the catch-up timer and statements. 0 or -1. */
int replan_init(struct dispatch *d) __attribute__((warn_unused_result));
void replan_free(struct dispatch *d);

/* No re-plan statement in flight. */
bool replan_idle(const struct dispatch *d);

/* ---- events.c -------------------------------------------------------- */

/* Registers the event, status and reject statements and subscribes. 0 or -1. */
int events_init(struct dispatch *d) __attribute__((warn_unused_result));

/* service_def.on_message: arg is the struct dispatch. */
void events_on_message(void *arg, const struct mqsub_msg *m);

#endif

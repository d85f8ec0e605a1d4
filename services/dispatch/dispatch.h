#ifndef SC_SERVICES_DISPATCH_DISPATCH_H
#define SC_SERVICES_DISPATCH_DISPATCH_H

/*
 * sc-dispatch inside: tickets in state `new` become work orders offered to
 * one qualified engineer or partner (contract sections 2.3 and 6).
 *
 *   candidates.c  the sweep: woken by NOTIFY ticket_new, every SC_SWEEP_MS
 *                 and whenever capacity frees; reads one snapshot
 *                 (sc_dispatch_snapshot), lets common/dispatch_choose.c
 *                 decide, hands the decisions to offers.c
 *   offers.c      offers and manual-queue moves (one SQL function call
 *                 each), one libevent timer per open offer for its expiry
 *   events.c      MQTT: engineers' and partners' order events, engineers'
 *                 status; rejected input
 *
 * Everything runs on the loop thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"

struct service;
struct metric;
struct mqsub_msg;
struct sweep;
struct offers;

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

/* ---- offers.c -------------------------------------------------------- */

/* Registers the offer, manual, expire statements and the connect hook that
 * loads every open offer's timer. 0 or -1. */
int offers_init(struct dispatch *d) __attribute__((warn_unused_result));

/* Cancels every timer and frees. */
void offers_free(struct dispatch *d);

/*
 * Offers ticket to engineer (or partner, the other NULL) in mode through
 * sc_dispatch_offer. Calls sweep_decision_done() once when the statement
 * returned. 0, or -1 when it could not be queued (nothing called).
 */
int offers_send(struct dispatch *d, const char *ticket, const char *engineer,
		const char *partner, enum mode mode) __attribute__((warn_unused_result));

/* Sends ticket to the manual queue (sc_dispatch_manual), then as offers_send. */
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

/* ---- events.c -------------------------------------------------------- */

/* Registers the event, status and reject statements and subscribes. 0 or -1. */
int events_init(struct dispatch *d) __attribute__((warn_unused_result));

/* service_def.on_message: arg is the struct dispatch. */
void events_on_message(void *arg, const struct mqsub_msg *m);

#endif

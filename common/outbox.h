#ifndef SC_COMMON_OUTBOX_H
#define SC_COMMON_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct mq;
struct metrics;

/*
 * Relays the `outbox` table to the broker: every event a transaction wrote
 * there is published after its commit, at least once, also across kill -9
 * and broker or database restarts.
 *
 * Every service runs a relay; the one holding the PostgreSQL advisory lock
 * OUTBOX_LOCK_KEY (on the relay's own connection) publishes, the others
 * wait to take over. The leader reads the oldest rows in id order, publishes
 * them (QoS as stored), and deletes each only after the broker acknowledged
 * it; then reads again. A crash between PUBACK and delete publishes that
 * row again: consumers see at-least-once. Rows of one ticket are written in
 * commit order under its row lock, so they are published in that order.
 */

#define OUTBOX_LOCK_KEY 7301001

struct outbox;

/* Starts the relay on its own connection to dsn. NULL on failure. */
struct outbox *outbox_new(struct event_base *base, const char *dsn, struct mq *mq,
			  struct metrics *m) __attribute__((warn_unused_result));
void outbox_free(struct outbox *o);

/* Publishes still waiting for the broker's acknowledgement. */
size_t outbox_in_flight(const struct outbox *o);

/* True while this relay is the leader. */
bool outbox_is_leader(const struct outbox *o);

/* Stop fetching new rows (shutdown); in-flight publishes still complete. */
void outbox_stop(struct outbox *o);

#endif

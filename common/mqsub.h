#ifndef SC_COMMON_MQSUB_H
#define SC_COMMON_MQSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/*
 * The receiving side of MQTT: a small MQTT 5 subscriber of our own on the
 * libevent loop (no threads), so that a QoS 1 message is acknowledged to the
 * broker only when the application says it is durably handled.
 *
 * Why not Paho: Paho MQTT C sends PUBACK as soon as it has queued an
 * incoming PUBLISH, before our callback runs (shared/measured-facts.md). A
 * process killed after that PUBACK and before its commit loses the message
 * and nobody resends it. Here the PUBACK for a message goes out only after
 * mqsub_ack() for it (and for every QoS 1 message that arrived before it on
 * the same connection: MQTT requires PUBACKs in arrival order). Paho stays
 * for publishing (mqtt.h, the outbox relay).
 *
 * Guarantee: a QoS 1 message the application has not acked is redelivered by
 * the broker (DUP set) on the next connection of the same client id, as long
 * as the broker keeps the session (session expiry, persistence on). So the
 * application sees every message at least once; it must recognise a repeat
 * (the services' writes are idempotent). A message acked before a crash may
 * also come again if the crash hit before the PUBACK left the socket. QoS 0
 * messages have no such guarantee: at most once.
 *
 * Connection: MQTT 5 over TCP (tcp://host:port) or TLS (ssl://host:port,
 * the server verified against `cafile` and its name or address), clean
 * start off (a persistent session), TCP_NODELAY set on our socket. Every
 * subscription is sent again on every connect. Lost connections, a missing
 * PINGRESP, a DISCONNECT from the broker and malformed packets all end in a
 * reconnect with backoff (100 ms doubling to 5 s); nothing from the broker
 * can crash the process.
 *
 * Host names: a numeric address (127.0.0.1, [::1]) is parsed once; a name is
 * resolved with getaddrinfo() before each connect attempt, which BLOCKS the
 * loop for the lookup. Configuration names the broker, usually by address, so
 * this is acceptable; give an address where a slow resolver would hurt.
 *
 * Threads: none. Every function must be called from the loop thread, and
 * every callback runs on it. Do not call mqsub_free() inside a callback of
 * the same client.
 */

struct mqsub;

/*
 * A received message; every pointer is valid during the callback only.
 * `token` identifies it to mqsub_ack(): 0 for QoS 0 (nothing to ack),
 * otherwise unique within this client.
 */
struct mqsub_msg {
	const char *topic;   /* NUL-terminated */
	const char *payload; /* len bytes, NOT NUL-terminated */
	size_t len;
	int qos;             /* 0 or 1 */
	bool dup;            /* the broker may have delivered it before */
	bool retained;
	uint64_t token;
};

typedef void (*mqsub_message_cb)(void *arg, const struct mqsub_msg *m);
/* true after the broker accepted a connection (subscriptions sent); false
 * when a connection that was reported up ends, for whatever reason. */
typedef void (*mqsub_conn_cb)(void *arg, bool connected);

/* Settings; strings are copied by mqsub_new(). A 0 number takes its default. */
struct mqsub_options {
	const char *url;           /* tcp://host:port or ssl://host:port */
	const char *client_id;     /* must differ from every other client's, Paho's included */
	const char *user;          /* NULL: none */
	const char *pass;          /* NULL: none */
	const char *cafile;        /* ssl://: CA bundle (PEM); NULL: the system's */
	uint32_t session_expiry_s; /* how long the broker keeps our session; 0: 604800 (a week) */
	uint16_t keepalive_s;      /* 0: 30; a PINGREQ every keepalive/2 */
	uint32_t max_packet;       /* largest packet we accept; 0: 4 MiB + 1 KiB */
};

/*
 * Makes a client (not connected; see mqsub_connect()). cb (required) gets
 * every message. NULL on a bad option (bad url, no client id, unreadable
 * cafile) or allocation failure, the reason logged.
 */
struct mqsub *mqsub_new(struct event_base *base, const struct mqsub_options *o,
			mqsub_message_cb cb, void *arg) __attribute__((warn_unused_result));

/*
 * Frees the client at once. An open connection is closed WITHOUT a DISCONNECT
 * and without the PUBACKs not yet written: the broker keeps the session and
 * redelivers every message whose PUBACK it has not received. For a clean end
 * call mqsub_disconnect() and run the loop until mqsub_connected() is false
 * (conn_cb(false) if it was up) first. No callback is called. NULL is a no-op.
 */
void mqsub_free(struct mqsub *s);

/* Sets (or clears, with NULL) the connection callback. */
void mqsub_set_conn_cb(struct mqsub *s, mqsub_conn_cb cb, void *arg);

/*
 * Adds a subscription at QoS 0 or 1 (QoS 2 is refused: we never ask for it).
 * It is remembered and sent on every connect, and at once if connected.
 * Filters are sent as given: `$share/group/...` makes a shared subscription.
 * Returns 0, or -1 on a bad filter or qos (logged) or allocation failure.
 */
int mqsub_subscribe(struct mqsub *s, const char *filter, int qos)
	__attribute__((warn_unused_result));

/*
 * Starts connecting and keeps the client connected from then on, reconnecting
 * by itself with backoff, until mqsub_disconnect(). Calling it while started
 * does nothing. Returns 0: a failed attempt is logged and retried, not
 * reported (conn_cb tells when the client is up).
 */
int mqsub_connect(struct mqsub *s) __attribute__((warn_unused_result));

/*
 * The application is done with the message of `token` (committed it, or
 * decided to drop it). Its PUBACK is sent once every QoS 1 message that
 * arrived before it on this connection is acked too; due PUBACKs are written
 * together once per loop iteration. Token 0 (QoS 0), an unknown token, a
 * repeated ack and a token of an earlier connection (the broker redelivers
 * that message) are ignored.
 *
 * The broker sends at most its in-flight limit of QoS 1 messages not yet
 * PUBACKed (mosquitto's max_inflight_messages, 1000 in
 * deploy/mosquitto.conf.in) and then waits: an application that collects
 * messages into a batch must also commit on a timer, not only on a count,
 * or it may wait for messages that never come.
 */
void mqsub_ack(struct mqsub *s, uint64_t token);

/*
 * paused true: no message is delivered and the socket is no longer read, so
 * the broker queues for our session (back-pressure) instead of memory
 * growing here. Takes effect at once, also inside the message callback (the
 * messages after the current one wait). false: delivery resumes, starting
 * with what was already read. Acks keep working while paused. A paused
 * client does not time out a missing PINGRESP (it is not reading them).
 */
void mqsub_set_paused(struct mqsub *s, bool paused);

/*
 * Stops: writes the PUBACKs due, then DISCONNECT (reason: normal; the broker
 * keeps the session for session_expiry_s and queues for it), and closes the
 * socket once they are written; no reconnect follows. Messages not acked by
 * then are redelivered on the next connection of this client id. Run the
 * loop until mqsub_connected() is false before mqsub_free(). mqsub_connect()
 * may start it again.
 */
void mqsub_disconnect(struct mqsub *s);

/* true between CONNACK and the end of that connection. */
bool mqsub_connected(const struct mqsub *s);

/*
 * true when connected and the broker has granted every subscription on this
 * connection (a SUBACK came for each, none refused): messages of every
 * filter now reach us. A refused filter keeps it false until the next
 * connection (readiness, service.c).
 */
bool mqsub_subscribed(const struct mqsub *s);

/*
 * QoS 1 messages delivered on the current connection and not yet acked.
 * Falls to 0 when a connection ends: the broker redelivers those.
 */
size_t mqsub_unacked(const struct mqsub *s);

#endif

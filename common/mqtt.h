#ifndef SC_COMMON_MQTT_H
#define SC_COMMON_MQTT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/*
 * MQTT client of every service: Paho MQTTAsync, MQTT 5, persistent session
 * (clean start off, session expiry one week), automatic reconnect, the
 * subscriptions renewed after every connect, TCP_NODELAY set on the socket
 * after every connect (Paho has no option for it; see mqtt.c).
 *
 * Threads: Paho calls back on its own threads. Those callbacks only copy
 * what arrived into a queue guarded by a mutex and wake the loop with
 * event_active(); every callback of this module runs on the loop thread.
 * The inbound queue is bounded: when it is full the Paho thread waits until
 * the loop has drained it, so back-pressure reaches the broker through TCP
 * (the broker queues for our persistent session) instead of memory growing.
 *
 * Delivery: Paho acknowledges a QoS 1 message to the broker before our
 * callback runs (shared/measured-facts.md). This module cannot close that
 * window; the paths that must lose nothing close it at the application level
 * (docs/guarantees.md).
 */

struct mq;

/* A received message, valid during the callback only. */
struct mq_msg {
	const char *topic;
	const char *payload; /* not NUL-terminated in general; len bytes */
	size_t len;
	int qos;
	bool retained;
};

typedef void (*mq_message_cb)(void *arg, const struct mq_msg *m);
/* status 0: delivered (QoS 1: the broker's PUBACK; QoS 0: written). <0 failed. */
typedef void (*mq_publish_cb)(void *arg, int status);
typedef void (*mq_conn_cb)(void *arg, bool connected);

struct mq_options {
	const char *url;       /* tcp://host:port or ssl://host:port */
	const char *client_id; /* {program}-{instance} */
	const char *user;      /* NULL: none */
	const char *pass;
	const char *cafile;    /* ssl://: CA bundle, NULL for the system's */
	size_t inbound_max;    /* messages queued for the loop before Paho waits; 0: 10000 */
};

/* Creates the client (not yet connected). NULL on failure (logged). */
struct mq *mq_new(struct event_base *base, const struct mq_options *o,
		  mq_message_cb on_msg, void *arg) __attribute__((warn_unused_result));

/* Disconnects (the broker keeps the session) and frees. NULL is a no-op. */
void mq_free(struct mq *mq);

void mq_set_conn_cb(struct mq *mq, mq_conn_cb cb, void *arg);

/* Adds a subscription, made now if connected and after every connect. */
int mq_subscribe(struct mq *mq, const char *filter, int qos)
	__attribute__((warn_unused_result));

/* Starts connecting; retries with backoff until connected. Returns 0 or -1. */
int mq_connect(struct mq *mq) __attribute__((warn_unused_result));

/*
 * Stops taking messages: disconnects cleanly so the broker keeps the
 * session and queues what arrives for the next start. Messages already in
 * the inbound queue are still delivered to the loop.
 */
void mq_disconnect(struct mq *mq);

bool mq_connected(const struct mq *mq);

/*
 * Holds inbound messages in the queue instead of delivering them (the
 * program is busy); once the queue is full Paho's thread waits, and the
 * broker queues for us. mq_set_paused(mq, false) resumes delivery.
 */
void mq_set_paused(struct mq *mq, bool paused);

/* Messages received but not yet handed to on_msg, and publishes in flight. */
size_t mq_inbound_pending(struct mq *mq);
size_t mq_publish_pending(struct mq *mq);

/*
 * Publishes. cb (may be NULL) runs on the loop thread with the outcome.
 * Returns 0 when handed to Paho, -1 when not (not connected, Paho queue
 * full): cb is then not called and the caller retries later.
 */
int mq_publish(struct mq *mq, const char *topic, const void *payload, size_t len,
	       int qos, bool retain, mq_publish_cb cb, void *arg)
	__attribute__((warn_unused_result));

/*
 * Sets TCP_NODELAY on every TCP socket of this process connected to
 * host:port (what Paho cannot do itself). Returns how many were set.
 */
int mq_set_nodelay(const char *host, int port);

#endif

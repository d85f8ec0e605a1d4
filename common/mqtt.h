#ifndef SC_COMMON_MQTT_H
#define SC_COMMON_MQTT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/*
 * The publishing MQTT client of every service: Paho MQTTAsync, MQTT 5,
 * automatic reconnect, TCP_NODELAY set on the socket after every connect
 * (Paho has no option for it; see mqtt.c). Receiving is mqsub.h's job:
 * Paho acknowledges a QoS 1 message to the broker before the application
 * sees it (shared/measured-facts.md), which would lose messages on a crash.
 *
 * Threads: Paho calls back on its own threads. Those callbacks only queue
 * the outcome under a mutex and wake the loop with event_active(); every
 * callback of this module runs on the loop thread.
 */

struct mq;

/* status 0: delivered (QoS 1: the broker's PUBACK; QoS 0: written). <0 failed. */
typedef void (*mq_publish_cb)(void *arg, int status);
typedef void (*mq_conn_cb)(void *arg, bool connected);

struct mq_options {
	const char *url;       /* tcp://host:port or ssl://host:port */
	const char *client_id; /* {program}-{instance} */
	const char *user;      /* NULL: none */
	const char *pass;
	const char *cafile;    /* ssl://: CA bundle, NULL for the system's */
	bool clean_start;      /* true: no session at the broker (publishers need none) */
};

/* Creates the client (not yet connected). NULL on failure (logged). */
struct mq *mq_new(struct event_base *base, const struct mq_options *o)
	__attribute__((warn_unused_result));

/* Disconnects (the broker keeps the session) and frees. NULL is a no-op. */
void mq_free(struct mq *mq);

void mq_set_conn_cb(struct mq *mq, mq_conn_cb cb, void *arg);

/* Starts connecting; retries with backoff until connected. Returns 0 or -1. */
int mq_connect(struct mq *mq) __attribute__((warn_unused_result));

/* Disconnects cleanly; no reconnect follows. */
void mq_disconnect(struct mq *mq);

bool mq_connected(const struct mq *mq);

/* Publishes handed to Paho whose outcome has not reached the loop yet. */
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

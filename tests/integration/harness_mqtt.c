/*
 * MQTT helpers on Paho's synchronous MQTTClient: a test publishes like a
 * device or an engineer and watches what the programs publish.
 *
 * Paho delivers messages on its own thread; on_message copies each into a
 * mutex-protected FIFO that harness_mqtt_wait() takes from.
 *
 * The session is persistent (clean session off, after one clean connect that
 * discards whatever an earlier client of the same id left), so when the broker
 * restarts (harness_restart_broker) the client reconnects on next use and the
 * broker gives back its subscriptions and the QoS 1 messages it queued.
 * MQTTClient has no automatic reconnect; publish, subscribe and wait reconnect
 * from the test's thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTClient.h>

#include "harness_internal.h"
#include "mqtt.h"

#define CONNECT_TIMEOUT_S 2
#define KEEPALIVE_S 20
#define COMPLETION_TIMEOUT_MS 10000
/* How long publish/subscribe keep trying to reconnect to a restarting broker. */
#define RECONNECT_PATIENCE_MS 10000

/* One received message. */
struct harness_msg {
    struct harness_msg *next;
    char *topic;                /* NUL-terminated */
    char *payload;              /* payload bytes + a NUL */
};

struct harness_mqtt {
    MQTTClient client;
    char id[64];                /* client id */
    int port;                   /* the broker's, for TCP_NODELAY */
    char *user;                 /* NULL: none */
    char *pass;                 /* NULL: none */
    char cafile[256];           /* "" = plain TCP; else TLS verified against it */
    /* The last QoS 1 publish the broker acknowledged (deliveryComplete):
     * waiting on it is immediate, where MQTTClient_waitForCompletion polls
     * in 100 ms steps in threaded mode. Guarded by lock. */
    MQTTClient_deliveryToken delivered;
    bool delivered_set;
    pthread_mutex_t lock;       /* guards the fields below */
    pthread_cond_t arrived;     /* signalled per message (CLOCK_MONOTONIC) */
    struct harness_msg *head;   /* FIFO of messages not yet taken */
    struct harness_msg **tail;
    size_t count;
    bool lost;                  /* the connection broke; reconnect on next use */
};

/* Paho's thread: copy and queue. Returning 0 makes Paho offer it again. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTClient_message *msg)
{
    struct harness_mqtt *m = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    struct harness_msg *node = calloc(1, sizeof *node);

    if (node == NULL)
        return 0;
    node->topic = malloc(tlen + 1);
    node->payload = malloc((size_t)msg->payloadlen + 1);
    if (node->topic == NULL || node->payload == NULL) {
        free(node->topic);
        free(node->payload);
        free(node);
        return 0;
    }
    memcpy(node->topic, topic, tlen);
    node->topic[tlen] = '\0';
    if (msg->payloadlen > 0)
        memcpy(node->payload, msg->payload, (size_t)msg->payloadlen);
    node->payload[msg->payloadlen] = '\0';

    pthread_mutex_lock(&m->lock);
    *m->tail = node;
    m->tail = &node->next;
    m->count++;
    pthread_cond_broadcast(&m->arrived);
    pthread_mutex_unlock(&m->lock);

    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    return 1;
}

static void on_lost(void *ctx, char *cause)
{
    struct harness_mqtt *m = ctx;

    pthread_mutex_lock(&m->lock);
    m->lost = true;
    pthread_mutex_unlock(&m->lock);
    harness_log("mqtt %s: connection lost%s%s", m->id, cause ? ": " : "", cause ? cause : "");
}

static void on_delivered(void *ctx, MQTTClient_deliveryToken dt)
{
    struct harness_mqtt *m = ctx;

    pthread_mutex_lock(&m->lock);
    m->delivered = dt;
    m->delivered_set = true;
    pthread_cond_broadcast(&m->arrived);
    pthread_mutex_unlock(&m->lock);
}

/* Waits until the broker acknowledged `token` (or the connection broke). */
static int wait_delivered(struct harness_mqtt *m, MQTTClient_deliveryToken token)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += COMPLETION_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&m->lock);
    while (!(m->delivered_set && m->delivered == token)) {
        if (m->lost || pthread_cond_timedwait(&m->arrived, &m->lock, &until) != 0) {
            rc = m->delivered_set && m->delivered == token ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int connect_once(struct harness_mqtt *m, bool clean, bool verbose)
{
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    int rc;

    opts.keepAliveInterval = KEEPALIVE_S;
    opts.cleansession = clean;
    opts.connectTimeout = CONNECT_TIMEOUT_S;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.username = m->user;
    opts.password = m->pass;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    if (m->cafile[0] != '\0') {
        ssl.trustStore = m->cafile;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        opts.ssl = &ssl;
    }
    rc = MQTTClient_connect(m->client, &opts);
    if (rc != MQTTCLIENT_SUCCESS) {
        if (verbose)
            harness_log("mqtt %s: connect failed: %s", m->id, MQTTClient_strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    m->lost = false;
    pthread_mutex_unlock(&m->lock);
    /* Without it every synchronous QoS 1 publish waits out the peer's
     * delayed ACK (~40 ms): a stream of test messages would crawl. */
    mq_set_nodelay("127.0.0.1", m->port);
    return 0;
}

/* Reconnects if the connection broke. 0 if connected afterwards. */
static int ensure_connected(struct harness_mqtt *m, bool verbose)
{
    if (MQTTClient_isConnected(m->client))
        return 0;
    if (connect_once(m, false, verbose) != 0)
        return -1;
    harness_log("mqtt %s: reconnected", m->id);
    return 0;
}

/* ensure_connected(), retrying for up to RECONNECT_PATIENCE_MS. */
static int ensure_connected_patiently(struct harness_mqtt *m)
{
    long long deadline = harness_now_ms() + RECONNECT_PATIENCE_MS;

    while (ensure_connected(m, false) != 0) {
        if (harness_now_ms() >= deadline)
            return ensure_connected(m, true);
        harness_sleep_ms(100);
    }
    return 0;
}

struct harness_mqtt *harness_mqtt_connect(struct harness *h, const char *client_id)
{
    struct harness_mqtt_opts o = {.client_id = client_id};

    return harness_mqtt_connect_opts(h, &o);
}

struct harness_mqtt *harness_mqtt_connect_opts(struct harness *h,
                                               const struct harness_mqtt_opts *o)
{
    const char *client_id = o->client_id;
    struct harness_mqtt *m = calloc(1, sizeof *m);
    pthread_condattr_t attr;
    char url[64];
    int rc;

    if (m == NULL) {
        harness_log("out of memory");
        return NULL;
    }
    snprintf(m->id, sizeof m->id, "%s", client_id);
    m->port = o->port > 0 ? o->port : h->mqtt_port;
    snprintf(m->cafile, sizeof m->cafile, "%s", h->mqtt_cafile);
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", m->cafile[0] ? "ssl" : "tcp", m->port);
    if ((o->user != NULL && (m->user = strdup(o->user)) == NULL) ||
        (o->pass != NULL && (m->pass = strdup(o->pass)) == NULL)) {
        harness_log("out of memory");
        free(m->user);
        free(m);
        return NULL;
    }
    m->tail = &m->head;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->arrived, &attr);
    pthread_condattr_destroy(&attr);

    rc = MQTTClient_create(&m->client, url, client_id,
                           MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (rc != MQTTCLIENT_SUCCESS) {
        harness_log("mqtt %s: create failed: %s", client_id, MQTTClient_strerror(rc));
        m->client = NULL;
        goto fail;
    }
    rc = MQTTClient_setCallbacks(m->client, m, on_lost, on_message, on_delivered);
    if (rc != MQTTCLIENT_SUCCESS) {
        harness_log("mqtt %s: set callbacks failed: %s", client_id, MQTTClient_strerror(rc));
        goto fail;
    }
    /* A clean connect drops any session of this id, then the persistent one. */
    if (connect_once(m, true, !o->quiet) != 0)
        goto fail;
    MQTTClient_disconnect(m->client, 1000);
    if (connect_once(m, false, true) != 0)
        goto fail;
    return m;
fail:
    harness_mqtt_free(m);
    return NULL;
}

int harness_mqtt_publish_raw(struct harness_mqtt *m, const char *topic,
                             const void *payload, size_t len, int qos, bool retain)
{
    MQTTClient_message msg = MQTTClient_message_initializer;
    MQTTClient_deliveryToken token = 0;
    long long deadline = harness_now_ms() + RECONNECT_PATIENCE_MS;
    int rc;

    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retain;
    for (;;) {
        if (ensure_connected_patiently(m) != 0)
            return -1;
        pthread_mutex_lock(&m->lock);
        m->delivered_set = false;
        pthread_mutex_unlock(&m->lock);
        rc = MQTTClient_publishMessage(m->client, topic, &msg, &token);
        if (rc == MQTTCLIENT_SUCCESS)
            break;
        /* The connection may break between the check and the publish. */
        if (rc != MQTTCLIENT_DISCONNECTED || harness_now_ms() >= deadline) {
            harness_log("mqtt %s: publish to %s failed: %s", m->id, topic,
                        MQTTClient_strerror(rc));
            return -1;
        }
    }
    if (qos > 0 && wait_delivered(m, token) != 0) {
        harness_log("mqtt %s: publish to %s not acknowledged", m->id, topic);
        return -1;
    }
    return 0;
}

int harness_mqtt_publish(struct harness_mqtt *m, const char *topic,
                         const char *payload, int qos)
{
    return harness_mqtt_publish_raw(m, topic, payload, strlen(payload), qos, false);
}

int harness_mqtt_subscribe(struct harness_mqtt *m, const char *filter)
{
    int rc;

    if (ensure_connected_patiently(m) != 0)
        return -1;
    /* Waits for the SUBACK; a refused filter is MQTT_BAD_SUBSCRIBE (0x80). */
    rc = MQTTClient_subscribe(m->client, filter, 1);
    if (rc != MQTTCLIENT_SUCCESS) {
        harness_log("mqtt %s: subscribe %s failed: %s (%d)", m->id, filter,
                    rc == MQTT_BAD_SUBSCRIBE ? "refused" : MQTTClient_strerror(rc), rc);
        return -1;
    }
    return 0;
}

/* Unlinks and returns the first message whose topic contains sub. Locked. */
static struct harness_msg *take(struct harness_mqtt *m, const char *sub)
{
    for (struct harness_msg **pp = &m->head; *pp != NULL; pp = &(*pp)->next) {
        struct harness_msg *msg = *pp;

        if (sub == NULL || *sub == '\0' || strstr(msg->topic, sub) != NULL) {
            *pp = msg->next;
            if (m->tail == &msg->next)
                m->tail = pp;
            m->count--;
            return msg;
        }
    }
    return NULL;
}

char *harness_mqtt_wait(struct harness_mqtt *m, const char *topic_substring,
                        int timeout_ms, char **topic_out)
{
    long long deadline = harness_now_ms() + timeout_ms;
    struct harness_msg *msg = NULL;
    char *payload;

    for (;;) {
        long long left;
        bool lost;

        pthread_mutex_lock(&m->lock);
        msg = take(m, topic_substring);
        lost = m->lost;
        left = deadline - harness_now_ms();
        if (msg == NULL && left > 0 && !lost) {
            /* Wake at least every 100 ms to notice a lost connection. */
            long long slice = left < 100 ? left : 100;
            struct timespec until;

            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += slice / 1000;
            until.tv_nsec += (slice % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&m->arrived, &m->lock, &until);
            msg = take(m, topic_substring);
        }
        pthread_mutex_unlock(&m->lock);
        if (msg != NULL || harness_now_ms() >= deadline)
            break;
        /* The broker keeps our session: reconnecting brings the queued messages. */
        if (lost && ensure_connected(m, false) != 0)
            harness_sleep_ms(100);
    }
    if (msg == NULL)
        return NULL;
    payload = msg->payload;
    if (topic_out != NULL)
        *topic_out = msg->topic;
    else
        free(msg->topic);
    free(msg);
    return payload;
}

size_t harness_mqtt_pending(struct harness_mqtt *m)
{
    size_t n;

    pthread_mutex_lock(&m->lock);
    n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void harness_mqtt_free(struct harness_mqtt *m)
{
    if (m == NULL)
        return;
    if (m->client != NULL) {
        if (MQTTClient_isConnected(m->client)) {
            MQTTClient_disconnect(m->client, 1000);
            /* Leave no persistent session behind in the broker. */
            if (connect_once(m, true, false) == 0)
                MQTTClient_disconnect(m->client, 1000);
        }
        MQTTClient_destroy(&m->client);
    }
    while (m->head != NULL) {
        struct harness_msg *next = m->head->next;

        free(m->head->topic);
        free(m->head->payload);
        free(m->head);
        m->head = next;
    }
    pthread_cond_destroy(&m->arrived);
    pthread_mutex_destroy(&m->lock);
    free(m->user);
    free(m->pass);
    free(m);
}

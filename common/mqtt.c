/*
 * Paho MQTTAsync for publishing, on a libevent loop (see mqtt.h).
 *
 * Hand-off: Paho's threads append publish outcomes and connection changes to
 * `done` under the mutex and call event_active(wake); the loop's wake
 * callback takes the list and runs the application callbacks without it.
 */
#include "mqtt.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <MQTTAsync.h>
#include <event2/event.h>

#include "log.h"

#define MQ_SESSION_EXPIRY_S 604800  /* a week: a stopped service resumes its queue */
#define MQ_RETRY_S 1

struct mq_node {
	struct mq_node *next;
	/* completion */
	mq_publish_cb cb;
	void *arg;
	int status;
	int conn_change;            /* 1 connected, -1 lost, -2 connect failed, 0 none */
};

struct mq {
	struct event_base *base;
	MQTTAsync client;
	char *url;
	char *host;
	int port;
	char *user;
	char *pass;
	char *cafile;
	bool clean_start;
	mq_conn_cb conn_cb;
	void *conn_arg;

	pthread_mutex_t lock;       /* guards everything below until `wake` */
	struct mq_node *done_head, *done_tail;
	bool connected;
	size_t publishing;          /* publishes handed to Paho, not yet completed */

	struct event *wake;
	struct event *retry_ev;
	bool want_connected;
};

static void node_free(struct mq_node *n)
{
	free(n);
}

static void push_done(struct mq *mq, struct mq_node *n)
{
	pthread_mutex_lock(&mq->lock);
	if (mq->done_tail != NULL)
		mq->done_tail->next = n;
	else
		mq->done_head = n;
	mq->done_tail = n;
	pthread_mutex_unlock(&mq->lock);
	event_active(mq->wake, EV_READ, 0);
}

/* --- TCP_NODELAY ---------------------------------------------------------- */

static bool peer_matches(const struct sockaddr_storage *ss, const struct addrinfo *ai, int port)
{
	int pport = -1;
	if (ss->ss_family == AF_INET)
		pport = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	else if (ss->ss_family == AF_INET6)
		pport = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	if (pport != port)
		return false;
	if (ai == NULL)
		return true;
	for (; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != ss->ss_family)
			continue;
		if (ss->ss_family == AF_INET &&
		    memcmp(&((const struct sockaddr_in *)ss)->sin_addr,
			   &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, 4) == 0)
			return true;
		if (ss->ss_family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr,
			   &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16) == 0)
			return true;
	}
	return false;
}

/*
 * Paho keeps its socket private, so we find it: the TCP sockets of this
 * process whose peer is the broker. Setting TCP_NODELAY on another client's
 * socket to the same broker (a second struct mq) is what that one wants too.
 */
int mq_set_nodelay(const char *host, int port)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		ai = NULL;
	int set = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		goto out;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end != '\0' || fd < 0 || fd == dirfd(d))
			continue;
		struct stat st;
		if (fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		int type = 0;
		socklen_t tl = sizeof(type);
		if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
			continue;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getpeername((int)fd, (struct sockaddr *)&ss, &sl) != 0)
			continue;
		if (!peer_matches(&ss, ai, port))
			continue;
		int one = 1;
		if (setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
			set++;
	}
	closedir(d);
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	return set;
}

/* --- Paho callbacks (Paho threads) ----------------------------------------- */

static void on_connected(void *ctx, char *cause)
{
	struct mq *mq = ctx;
	int n = mq_set_nodelay(mq->host, mq->port);
	if (n == 0)
		log_warn("mqtt: could not set TCP_NODELAY: broker socket not found");
	struct mq_node *node = calloc(1, sizeof(*node));
	if (node == NULL)
		return;
	node->conn_change = 1;
	push_done(mq, node);
}

static void on_connection_lost(void *ctx, char *cause)
{
	struct mq *mq = ctx;
	struct mq_node *node = calloc(1, sizeof(*node));
	if (node == NULL)
		return;
	node->conn_change = -1;
	push_done(mq, node);
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData5 *resp)
{
	struct mq *mq = ctx;
	log_warn("mqtt connect failed: %s code=%d url=%s",
		 resp && resp->message ? resp->message : "no reason given",
		 resp ? resp->code : 0, mq->url);
	struct mq_node *node = calloc(1, sizeof(*node));
	if (node == NULL)
		return;
	node->conn_change = -2;
	push_done(mq, node);
}

static int on_unexpected_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

struct pub_ctx {
	struct mq *mq;
	mq_publish_cb cb;
	void *arg;
};

static void pub_complete(struct pub_ctx *p, int status)
{
	struct mq_node *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		/* Cannot tell the loop; the counter must still fall. */
		pthread_mutex_lock(&p->mq->lock);
		p->mq->publishing--;
		pthread_mutex_unlock(&p->mq->lock);
		free(p);
		return;
	}
	n->cb = p->cb;
	n->arg = p->arg;
	n->status = status;
	push_done(p->mq, n);
	free(p);
}

/*
 * An MQTT 5 broker answers a publish it will not take (mosquitto: a topic
 * outside the ACL, 0x87 not authorized) with a PUBACK carrying a reason code
 * of 0x80 or more, and drops the message. That is a failure, not a delivery:
 * the outbox keeps the row instead of deleting it.
 */
static void on_pub_success(void *ctx, MQTTAsync_successData5 *resp)
{
	if (resp != NULL && resp->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
		log_warn("mqtt publish refused by the broker: %s reason=0x%02x",
			 MQTTReasonCode_toString(resp->reasonCode), (unsigned)resp->reasonCode);
		pub_complete(ctx, -1);
		return;
	}
	pub_complete(ctx, 0);
}

static void on_pub_failure(void *ctx, MQTTAsync_failureData5 *resp)
{
	if (resp != NULL && resp->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
		log_warn("mqtt publish refused by the broker: %s reason=0x%02x",
			 MQTTReasonCode_toString(resp->reasonCode), (unsigned)resp->reasonCode);
	pub_complete(ctx, resp && resp->code < 0 ? resp->code : -1);
}

/* --- loop side -------------------------------------------------------------- */

static int start_connect(struct mq *mq);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct mq *mq = arg;
	if (mq->want_connected && !mq_connected(mq) && start_connect(mq) != 0) {
		struct timeval tv = { MQ_RETRY_S, 0 };
		evtimer_add(mq->retry_ev, &tv);
	}
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct mq *mq = arg;

	pthread_mutex_lock(&mq->lock);
	struct mq_node *done = mq->done_head;
	mq->done_head = mq->done_tail = NULL;
	pthread_mutex_unlock(&mq->lock);

	while (done != NULL) {
		struct mq_node *n = done;
		done = n->next;
		if (n->conn_change != 0) {
			bool up = n->conn_change == 1;
			pthread_mutex_lock(&mq->lock);
			mq->connected = up;
			pthread_mutex_unlock(&mq->lock);
			if (up)
				log_info("mqtt connected url=%s", mq->url);
			else if (n->conn_change == -1)
				log_warn("mqtt connection lost: reconnecting url=%s", mq->url);
			if (n->conn_change == -2 && mq->want_connected) {
				struct timeval tv = { MQ_RETRY_S, 0 };
				evtimer_add(mq->retry_ev, &tv);
			}
			if (mq->conn_cb != NULL && n->conn_change != -2)
				mq->conn_cb(mq->conn_arg, up);
		} else {
			pthread_mutex_lock(&mq->lock);
			mq->publishing--;
			pthread_mutex_unlock(&mq->lock);
			if (n->cb != NULL)
				n->cb(n->arg, n->status);
		}
		node_free(n);
	}
}

static int parse_url(struct mq *mq, const char *url)
{
	const char *p = strstr(url, "://");
	if (p == NULL)
		return -1;
	p += 3;
	const char *colon = strrchr(p, ':');
	if (colon == NULL || colon == p)
		return -1;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' && *end != '/')
		return -1;
	if (port <= 0 || port > 65535)
		return -1;
	size_t hl = (size_t)(colon - p);
	if (*p == '[' && hl >= 2 && p[hl - 1] == ']') {
		p++;
		hl -= 2;
	}
	mq->host = strndup(p, hl);
	mq->port = (int)port;
	return mq->host != NULL ? 0 : -1;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct mq *mq_new(struct event_base *base, const struct mq_options *o)
{
	struct mq *mq = calloc(1, sizeof(*mq));
	if (mq == NULL)
		return NULL;
	pthread_mutex_init(&mq->lock, NULL);
	mq->base = base;
	mq->clean_start = o->clean_start;
	mq->url = strdup(o->url);
	mq->user = dup_or_null(o->user);
	mq->pass = dup_or_null(o->pass);
	mq->cafile = dup_or_null(o->cafile);
	if (mq->url == NULL || parse_url(mq, o->url) != 0) {
		log_error("mqtt: bad broker url: %s", o->url);
		goto fail;
	}
	mq->wake = event_new(base, -1, 0, on_wake, mq);
	mq->retry_ev = evtimer_new(base, on_retry, mq);
	if (mq->wake == NULL || mq->retry_ev == NULL)
		goto fail;

	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	co.sendWhileDisconnected = 0;
	/* Paho refuses publishes past this many queued commands (-12). */
	co.maxBufferedMessages = 100000;
	int rc = MQTTAsync_createWithOptions(&mq->client, o->url, o->client_id,
					     MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: cannot create client: code=%d url=%s", rc, o->url);
		goto fail;
	}
	/* Paho insists on a message callback; nothing is subscribed, so it is
	 * never called. */
	MQTTAsync_setCallbacks(mq->client, mq, on_connection_lost, on_unexpected_message, NULL);
	MQTTAsync_setConnected(mq->client, mq, on_connected);
	return mq;
fail:
	mq_free(mq);
	return NULL;
}

void mq_free(struct mq *mq)
{
	if (mq == NULL)
		return;
	if (mq->client != NULL) {
		if (MQTTAsync_isConnected(mq->client)) {
			MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
			d.timeout = 1000;
			(void)MQTTAsync_disconnect(mq->client, &d);
			for (int i = 0; i < 100 && MQTTAsync_isConnected(mq->client); i++)
				usleep(10000);
		}
		MQTTAsync_destroy(&mq->client);
	}
	if (mq->wake != NULL)
		event_free(mq->wake);
	if (mq->retry_ev != NULL)
		event_free(mq->retry_ev);
	struct mq_node *n;
	while ((n = mq->done_head) != NULL) {
		mq->done_head = n->next;
		node_free(n);
	}
	pthread_mutex_destroy(&mq->lock);
	free(mq->url);
	free(mq->host);
	free(mq->user);
	free(mq->pass);
	free(mq->cafile);
	free(mq);
}

void mq_set_conn_cb(struct mq *mq, mq_conn_cb cb, void *arg)
{
	mq->conn_cb = cb;
	mq->conn_arg = arg;
}

static int start_connect(struct mq *mq)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p;
	p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
	p.value.integer4 = mq->clean_start ? 0 : MQ_SESSION_EXPIRY_S;
	MQTTProperties_add(&props, &p);
	co.keepAliveInterval = 10;
	co.cleanstart = mq->clean_start ? 1 : 0;
	co.automaticReconnect = 1;
	co.minRetryInterval = 1;
	co.maxRetryInterval = 5;
	co.connectTimeout = 5;
	co.connectProperties = &props;
	co.onFailure5 = on_connect_failure;
	co.context = mq;
	co.username = mq->user;
	co.password = mq->pass;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	if (strncmp(mq->url, "ssl://", 6) == 0) {
		ssl.trustStore = mq->cafile;
		ssl.enableServerCertAuth = 1;
		ssl.verify = 1;
		co.ssl = &ssl;
	}
	int rc = MQTTAsync_connect(mq->client, &co);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		log_warn("mqtt connect failed: code=%d url=%s", rc, mq->url);
		return -1;
	}
	return 0;
}

int mq_connect(struct mq *mq)
{
	mq->want_connected = true;
	if (start_connect(mq) != 0) {
		struct timeval tv = { MQ_RETRY_S, 0 };
		evtimer_add(mq->retry_ev, &tv);
	}
	return 0;
}

void mq_disconnect(struct mq *mq)
{
	mq->want_connected = false;
	evtimer_del(mq->retry_ev);
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
	d.timeout = 1000;
	if (MQTTAsync_isConnected(mq->client))
		(void)MQTTAsync_disconnect(mq->client, &d);
}

bool mq_connected(const struct mq *mq)
{
	struct mq *m = (struct mq *)mq;
	pthread_mutex_lock(&m->lock);
	bool up = m->connected;
	pthread_mutex_unlock(&m->lock);
	return up;
}

size_t mq_publish_pending(struct mq *mq)
{
	pthread_mutex_lock(&mq->lock);
	size_t n = mq->publishing;
	pthread_mutex_unlock(&mq->lock);
	return n;
}

int mq_publish(struct mq *mq, const char *topic, const void *payload, size_t len,
	       int qos, bool retain, mq_publish_cb cb, void *arg)
{
	if (!mq_connected(mq))
		return -1;
	struct pub_ctx *p = malloc(sizeof(*p));
	if (p == NULL)
		return -1;
	p->mq = mq;
	p->cb = cb;
	p->arg = arg;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	m.qos = qos;
	m.retained = retain;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	ro.onSuccess5 = on_pub_success;
	ro.onFailure5 = on_pub_failure;
	ro.context = p;
	pthread_mutex_lock(&mq->lock);
	mq->publishing++;
	pthread_mutex_unlock(&mq->lock);
	int rc = MQTTAsync_sendMessage(mq->client, topic, &m, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&mq->lock);
		mq->publishing--;
		pthread_mutex_unlock(&mq->lock);
		free(p);
		log_debug("mqtt publish refused: code=%d topic=%s", rc, topic);
		return -1;
	}
	return 0;
}

/*
 * Paho MQTTAsync on a libevent loop (see mqtt.h for the contract).
 *
 * Hand-off: Paho's threads append to `inbound` (bounded; they wait on
 * `space` when it is full) or to `done` (publish outcomes and connection
 * changes, unbounded: they must never wait, or a Paho thread blocked on a
 * full inbound queue could stall its own acknowledgements) and then call
 * event_active(wake). The loop's wake callback takes a slice of both lists
 * under the mutex and runs the application callbacks without it.
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
#define MQ_WAKE_SLICE 2000          /* messages handled per wake before yielding */
#define MQ_RETRY_S 1

struct mq_node {
	struct mq_node *next;
	/* inbound message */
	char *topic;
	char *payload;
	size_t len;
	int qos;
	bool retained;
	/* completion */
	mq_publish_cb cb;
	void *arg;
	int status;
	int conn_change;            /* 1 connected, -1 lost, -2 connect failed, 0 none */
};

struct mq_sub {
	struct mq_sub *next;
	char *filter;
	int qos;
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
	mq_message_cb on_msg;
	void *msg_arg;
	mq_conn_cb conn_cb;
	void *conn_arg;

	pthread_mutex_t lock;       /* guards everything below until `wake` */
	pthread_cond_t space;
	struct mq_node *in_head, *in_tail;
	size_t in_count;
	size_t in_max;
	struct mq_node *done_head, *done_tail;
	struct mq_sub *subs;
	bool closing;               /* Paho threads must not wait any more */
	bool connected;
	size_t publishing;          /* publishes handed to Paho, not yet completed */

	struct event *wake;
	struct event *retry_ev;
	bool want_connected;
	bool paused;                /* loop thread only: hold inbound messages */
};

static void node_free(struct mq_node *n)
{
	if (n == NULL)
		return;
	free(n->topic);
	free(n->payload);
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

static void subscribe_all(struct mq *mq);

static void on_connected(void *ctx, char *cause)
{
	struct mq *mq = ctx;
	int n = mq_set_nodelay(mq->host, mq->port);
	if (n == 0)
		log_warn("mqtt: could not set TCP_NODELAY: broker socket not found");
	subscribe_all(mq);
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

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct mq *mq = ctx;
	struct mq_node *n = calloc(1, sizeof(*n));
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	if (n != NULL) {
		n->topic = malloc(tl + 1);
		n->payload = malloc((size_t)m->payloadlen + 1);
	}
	if (n == NULL || n->topic == NULL || n->payload == NULL) {
		/* Returning 0 makes Paho call us again later with the same message. */
		node_free(n);
		return 0;
	}
	memcpy(n->topic, topic, tl);
	n->topic[tl] = '\0';
	memcpy(n->payload, m->payload, (size_t)m->payloadlen);
	n->payload[m->payloadlen] = '\0';
	n->len = (size_t)m->payloadlen;
	n->qos = m->qos;
	n->retained = m->retained != 0;
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);

	pthread_mutex_lock(&mq->lock);
	while (mq->in_count >= mq->in_max && !mq->closing)
		pthread_cond_wait(&mq->space, &mq->lock);
	if (mq->in_tail != NULL)
		mq->in_tail->next = n;
	else
		mq->in_head = n;
	mq->in_tail = n;
	mq->in_count++;
	pthread_mutex_unlock(&mq->lock);
	event_active(mq->wake, EV_READ, 0);
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

static void on_pub_success(void *ctx, MQTTAsync_successData5 *resp)
{
	pub_complete(ctx, 0);
}

static void on_pub_failure(void *ctx, MQTTAsync_failureData5 *resp)
{
	pub_complete(ctx, resp && resp->code < 0 ? resp->code : -1);
}

static void subscribe_all(struct mq *mq)
{
	pthread_mutex_lock(&mq->lock);
	for (struct mq_sub *s = mq->subs; s != NULL; s = s->next) {
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
		int rc = MQTTAsync_subscribe(mq->client, s->filter, s->qos, &ro);
		if (rc != MQTTASYNC_SUCCESS)
			log_error("mqtt subscribe failed: code=%d filter=%s", rc, s->filter);
	}
	pthread_mutex_unlock(&mq->lock);
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
	struct mq_node *in = mq->in_head, *last = NULL;
	size_t taken = 0;
	for (struct mq_node *n = in; n != NULL && taken < MQ_WAKE_SLICE && !mq->paused; n = n->next) {
		last = n;
		taken++;
	}
	if (last != NULL) {
		mq->in_head = last->next;
		if (mq->in_head == NULL)
			mq->in_tail = NULL;
		last->next = NULL;
		mq->in_count -= taken;
		pthread_cond_broadcast(&mq->space);
	} else {
		in = NULL;
	}
	bool more = mq->in_head != NULL && !mq->paused;
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
	while (in != NULL) {
		struct mq_node *n = in;
		in = n->next;
		struct mq_msg m = { n->topic, n->payload, n->len, n->qos, n->retained };
		mq->on_msg(mq->msg_arg, &m);
		node_free(n);
	}
	if (more)
		event_active(mq->wake, EV_READ, 0);
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

struct mq *mq_new(struct event_base *base, const struct mq_options *o,
		  mq_message_cb on_msg, void *arg)
{
	struct mq *mq = calloc(1, sizeof(*mq));
	if (mq == NULL)
		return NULL;
	pthread_mutex_init(&mq->lock, NULL);
	pthread_cond_init(&mq->space, NULL);
	mq->base = base;
	mq->on_msg = on_msg;
	mq->msg_arg = arg;
	mq->in_max = o->inbound_max ? o->inbound_max : 10000;
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
	MQTTAsync_setCallbacks(mq->client, mq, on_connection_lost, on_message, NULL);
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
	pthread_mutex_lock(&mq->lock);
	mq->closing = true;
	pthread_cond_broadcast(&mq->space);
	pthread_mutex_unlock(&mq->lock);
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
	while ((n = mq->in_head) != NULL) {
		mq->in_head = n->next;
		node_free(n);
	}
	while ((n = mq->done_head) != NULL) {
		mq->done_head = n->next;
		node_free(n);
	}
	while (mq->subs != NULL) {
		struct mq_sub *s = mq->subs;
		mq->subs = s->next;
		free(s->filter);
		free(s);
	}
	pthread_cond_destroy(&mq->space);
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

int mq_subscribe(struct mq *mq, const char *filter, int qos)
{
	struct mq_sub *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->filter = strdup(filter)) == NULL) {
		free(s);
		return -1;
	}
	s->qos = qos;
	pthread_mutex_lock(&mq->lock);
	s->next = mq->subs;
	mq->subs = s;
	bool up = mq->connected;
	pthread_mutex_unlock(&mq->lock);
	if (up) {
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
		if (MQTTAsync_subscribe(mq->client, filter, qos, &ro) != MQTTASYNC_SUCCESS)
			return -1;
	}
	return 0;
}

static int start_connect(struct mq *mq)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p;
	p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
	p.value.integer4 = MQ_SESSION_EXPIRY_S;
	MQTTProperties_add(&props, &p);
	co.keepAliveInterval = 10;
	co.cleanstart = 0;
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

void mq_set_paused(struct mq *mq, bool paused)
{
	mq->paused = paused;
	if (!paused)
		event_active(mq->wake, EV_READ, 0);
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

size_t mq_inbound_pending(struct mq *mq)
{
	pthread_mutex_lock(&mq->lock);
	size_t n = mq->in_count;
	pthread_mutex_unlock(&mq->lock);
	return n;
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

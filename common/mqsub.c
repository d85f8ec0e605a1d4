/*
 * MQTT 5 subscriber on the loop (see mqsub.h for the contract); packets are
 * built and parsed by mqsub_codec.c, connections opened by mqsub_net.c.
 *
 * States of the connection:
 *   IDLE       no socket; if `running`, the backoff timer will start one
 *   CONNECTING TCP connect (and TLS handshake) under way
 *   CONNACK    CONNECT sent, waiting for CONNACK
 *   UP         CONNACK success: subscriptions sent, messages flow
 *   CLOSING    DISCONNECT written, waiting for the output to drain
 * Every way out of a connection goes through close_conn(), which bumps the
 * connection generation, forgets what was in flight (the broker redelivers
 * it) and schedules the next attempt.
 *
 * Acknowledgement: every QoS 1 PUBLISH gets an entry in a FIFO (a ring) in
 * arrival order. mqsub_ack() marks its entry; the work event then writes the
 * PUBACKs of the acked prefix of the FIFO in one write. Tokens of one
 * connection are consecutive, so an entry is found by subtraction.
 *
 * Re-entrancy: the application may call anything but mqsub_free() from a
 * callback, so after each callback the reader checks the generation and
 * stops if the connection it was reading is gone; it never touches that
 * connection's buffer again.
 */
#include "mqsub.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "mqsub_codec.h"
#include "mqsub_net.h"
#include "strbuf.h"
#include "timeutil.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* TCP connect, TLS handshake and CONNACK together. */
#define CONNECT_TIMEOUT_S 10
/* How long mqsub_disconnect() waits for DISCONNECT to be written. */
#define CLOSE_TIMEOUT_S 2
#define DEFAULT_SESSION_EXPIRY_S 604800
#define DEFAULT_KEEPALIVE_S 30
#define DEFAULT_MAX_PACKET (4u * 1024 * 1024 + 1024)
#define RECEIVE_MAX 65535
/* A token is generation (24 bits) << 40 | sequence on that connection (40 bits). */
#define TOKEN_SEQ_BITS 40
#define TOKEN_SEQ_MAX ((UINT64_C(1) << TOKEN_SEQ_BITS) - 1)
#define TOKEN_GEN_MASK 0xFFFFFFu

enum state { ST_IDLE, ST_CONNECTING, ST_CONNACK, ST_UP, ST_CLOSING };

/* A QoS 1 message delivered and not yet PUBACKed. */
struct inflight {
	uint64_t token;
	uint16_t packet_id;
	bool acked;
};

struct mqsub {
	struct event_base *base;
	mqsub_message_cb msg_cb;
	void *msg_arg;
	mqsub_conn_cb conn_cb;
	void *conn_arg;

	/* configuration */
	struct mqsub_net net;       /* url, address, TLS */
	char *client_id;
	char *user;
	char *pass;
	uint32_t session_expiry_s;
	uint16_t keepalive_s;
	uint32_t max_packet;

	/* subscriptions: filters (owned copies) and the packet id of the
	 * SUBSCRIBE that last carried each, to match SUBACK codes to filters */
	struct mqsub_filter *subs;
	uint16_t *sub_packet;
	size_t nsubs;
	uint16_t last_packet_id;    /* of our last SUBSCRIBE */
	size_t subs_unanswered;     /* filters sent on this connection without a SUBACK yet */
	bool subs_refused;          /* a SUBACK of this connection refused a filter */

	/* connection */
	enum state state;
	bool running;               /* between mqsub_connect() and mqsub_disconnect() */
	bool paused;
	bool reported_up;           /* conn_cb(true) was called for this connection */
	bool ever_up;               /* a session existed before: warn if the broker lost it */
	struct bufferevent *bev;
	uint32_t gen;               /* bumped when a connection ends */
	uint64_t seq;               /* QoS 1 messages on this connection */
	int backoff_ms;             /* delay before the next attempt */
	int64_t up_since_us;        /* CONNACK of this connection (time_mono_us) */
	int ping_ticks;             /* ping ticks since our PINGREQ, -1: none outstanding */

	/* QoS 1 messages in arrival order, a ring */
	struct inflight *fifo;
	size_t fifo_cap;
	size_t fifo_head;
	size_t fifo_len;
	size_t unacked;

	struct strbuf out;          /* scratch for outgoing packets */
	struct event *timer_ev;     /* backoff, connect deadline, close deadline */
	struct event *ping_ev;      /* every keepalive/2 while UP */
	struct event *work_ev;      /* PUBACKs due, input left by a pause */
	bool acks_due;              /* work_ev: the FIFO's head was acked */
	bool input_due;             /* work_ev: resumed, read what is buffered */
};

static void close_conn(struct mqsub *s);
static void read_packets(struct mqsub *s);

static void set_timer(struct mqsub *s, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(s->timer_ev, &tv);
}

static uint16_t next_packet_id(struct mqsub *s)
{
	if (++s->last_packet_id == 0)
		s->last_packet_id = 1;
	return s->last_packet_id;
}

/*
 * Writes the packets in s->out, which the encoders (returning `encoded`)
 * built. Fields were checked before, so a failure is memory: it ends the
 * connection (logged) and the next one starts over.
 */
static int send_out(struct mqsub *s, int encoded, const char *what)
{
	if (encoded == 0 && bufferevent_write(s->bev, s->out.data, s->out.len) == 0)
		return 0;
	log_error("mqtt send failed: cannot queue %s: out of memory url=%s", what, s->net.url);
	close_conn(s);
	return -1;
}

/* Reading is on while waiting for CONNACK and while UP unless paused. */
static void update_reading(struct mqsub *s)
{
	if (s->state == ST_CONNACK || (s->state == ST_UP && !s->paused))
		bufferevent_enable(s->bev, EV_READ);
	else if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ);
}

/* --- the FIFO of QoS 1 messages ------------------------------------------ */

static int fifo_push(struct mqsub *s, uint16_t packet_id, uint64_t *token)
{
	if (s->fifo_len == s->fifo_cap) {
		size_t cap = s->fifo_cap ? s->fifo_cap * 2 : 1024;
		struct inflight *f = malloc(cap * sizeof(*f));
		if (f == NULL)
			return -1;
		for (size_t i = 0; i < s->fifo_len; i++)
			f[i] = s->fifo[(s->fifo_head + i) % s->fifo_cap];
		free(s->fifo);
		s->fifo = f;
		s->fifo_cap = cap;
		s->fifo_head = 0;
	}
	struct inflight *e = &s->fifo[(s->fifo_head + s->fifo_len) % s->fifo_cap];
	e->token = (uint64_t)(s->gen & TOKEN_GEN_MASK) << TOKEN_SEQ_BITS | ++s->seq;
	e->packet_id = packet_id;
	e->acked = false;
	s->fifo_len++;
	s->unacked++;
	*token = e->token;
	return 0;
}

/* Writes the PUBACKs of the acked prefix of the FIFO, in order, at once. */
static void flush_acks(struct mqsub *s)
{
	if (s->state != ST_UP)
		return;
	strbuf_reset(&s->out);
	size_t n = 0;
	int rc = 0;
	while (s->fifo_len > 0 && s->fifo[s->fifo_head].acked) {
		rc |= mqsub_encode_puback(&s->out, s->fifo[s->fifo_head].packet_id);
		s->fifo_head = (s->fifo_head + 1) % s->fifo_cap;
		s->fifo_len--;
		n++;
	}
	if (n > 0)
		(void)send_out(s, rc, "puback");
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
	struct mqsub *s = arg;
	if (s->acks_due) {
		s->acks_due = false;
		flush_acks(s);
	}
	if (s->input_due) {
		s->input_due = false;
		if (s->state == ST_UP && !s->paused)
			read_packets(s);
	}
}

/* --- connection lifecycle ------------------------------------------------ */

static void schedule_retry(struct mqsub *s)
{
	set_timer(s, s->backoff_ms);
	s->backoff_ms *= 2;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
}

/*
 * Ends the connection in whatever state (no DISCONNECT: the caller has sent
 * it or has a reason not to), forgets what was in flight and schedules the
 * next attempt if still running. conn_cb(false) comes last, so the
 * application sees a consistent client.
 */
static void close_conn(struct mqsub *s)
{
	bool was_up = s->reported_up;
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	evtimer_del(s->timer_ev);
	evtimer_del(s->ping_ev);
	s->state = ST_IDLE;
	s->reported_up = false;
	s->gen++;
	s->seq = 0;
	s->fifo_head = s->fifo_len = 0;
	s->unacked = 0;
	s->subs_unanswered = 0;
	s->subs_refused = false;
	s->acks_due = s->input_due = false;
	if (s->running) {
		/* A connection that lasted starts the backoff afresh; one the broker
		 * ends right after CONNACK (a client id taken over, say) does not. */
		if (was_up && time_mono_us() - s->up_since_us >= BACKOFF_MAX_MS * INT64_C(1000))
			s->backoff_ms = BACKOFF_MIN_MS;
		schedule_retry(s);
	}
	if (was_up && s->conn_cb != NULL)
		s->conn_cb(s->conn_arg, false);
}

static void protocol_error(struct mqsub *s, const char *why)
{
	log_error("mqtt packet from broker refused: %s: reconnecting url=%s", why, s->net.url);
	close_conn(s);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void start_attempt(struct mqsub *s)
{
	s->bev = mqsub_net_connect(&s->net, s->base, on_read, on_write, on_event, s);
	if (s->bev == NULL) {
		schedule_retry(s);
		return;
	}
	s->state = ST_CONNECTING;
	set_timer(s, CONNECT_TIMEOUT_S * 1000);
}

static void send_connect(struct mqsub *s)
{
	struct mqsub_connect_fields c = {
		.client_id = s->client_id,
		.user = s->user,
		.pass = s->pass,
		.keepalive_s = s->keepalive_s,
		.session_expiry_s = s->session_expiry_s,
		.receive_max = RECEIVE_MAX,
		.max_packet = s->max_packet,
	};
	strbuf_reset(&s->out);
	if (send_out(s, mqsub_encode_connect(&s->out, &c), "connect") != 0)
		return;
	s->state = ST_CONNACK;
	update_reading(s);
}

/* Sends the subscriptions first..first+n-1 in one SUBSCRIBE. */
static int send_subscribe(struct mqsub *s, size_t first, size_t n)
{
	uint16_t id = next_packet_id(s);
	strbuf_reset(&s->out);
	int rc = mqsub_encode_subscribe(&s->out, id, s->subs + first, n);
	for (size_t i = first; i < first + n; i++)
		s->sub_packet[i] = id;
	s->subs_unanswered += n;
	return send_out(s, rc, "subscribe");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mqsub *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		send_connect(s);
		return;
	}
	char buf[300];
	const char *why = mqsub_net_error(&s->net, bev, what, buf, sizeof(buf));
	if (s->state == ST_UP)
		log_warn("mqtt connection lost: %s: reconnecting url=%s", why, s->net.url);
	else if (s->state != ST_CLOSING)
		log_warn("mqtt connect failed: %s url=%s", why, s->net.url);
	close_conn(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct mqsub *s = arg;
	/* Called once the output has drained: DISCONNECT is out. */
	if (s->state == ST_CLOSING) {
		log_info("mqtt disconnected url=%s", s->net.url);
		close_conn(s);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mqsub *s = arg;
	switch (s->state) {
	case ST_IDLE:
		if (s->running)
			start_attempt(s);
		break;
	case ST_CONNECTING:
	case ST_CONNACK:
		log_warn("mqtt connect failed: no connack within %d s url=%s", CONNECT_TIMEOUT_S,
			 s->net.url);
		close_conn(s);
		break;
	case ST_CLOSING:
		log_warn("mqtt disconnect: output not written within %d s: closing url=%s",
			 CLOSE_TIMEOUT_S, s->net.url);
		close_conn(s);
		break;
	case ST_UP:
		break;
	}
}

/*
 * Every keepalive/2: a PINGREQ, unless one is outstanding; none answered
 * after a whole keepalive ends the connection. While paused we read no
 * PINGRESP, so the count stands still, but PINGREQs still go out: the
 * broker must hear from us within 1.5 keepalive or it drops us.
 */
static void on_ping(evutil_socket_t fd, short what, void *arg)
{
	struct mqsub *s = arg;
	if (s->state != ST_UP)
		return;
	if (s->ping_ticks >= 0 && !s->paused && ++s->ping_ticks >= 2) {
		log_warn("mqtt connection lost: no pingresp within keepalive: reconnecting "
			 "keepalive_s=%u url=%s", (unsigned)s->keepalive_s, s->net.url);
		close_conn(s);
		return;
	}
	if (s->ping_ticks < 0 || s->paused) {
		strbuf_reset(&s->out);
		if (send_out(s, mqsub_encode_pingreq(&s->out), "pingreq") == 0 && s->ping_ticks < 0)
			s->ping_ticks = 0;
	}
}

/* --- inbound packets ----------------------------------------------------- */

static void on_connack(struct mqsub *s, const struct mqsub_packet *pk)
{
	if (pk->reason >= 0x80) {
		log_error("mqtt connect refused: reason=0x%02x text=\"%.*s\" client_id=%s url=%s",
			  pk->reason, (int)pk->reason_string_len,
			  pk->reason_string ? pk->reason_string : "", s->client_id, s->net.url);
		close_conn(s);
		return;
	}
	s->state = ST_UP;
	evtimer_del(s->timer_ev);
	s->up_since_us = time_mono_us();
	/* The broker may impose its own keepalive (Server Keep Alive). */
	unsigned keepalive = pk->server_keepalive >= 0 ? (unsigned)pk->server_keepalive
						       : s->keepalive_s;
	s->ping_ticks = -1;
	if (keepalive > 0) {
		struct timeval tv = { keepalive / 2, (keepalive % 2) * 500000 };
		evtimer_add(s->ping_ev, &tv);
	}
	log_info("mqtt connected url=%s client_id=%s session_present=%d keepalive_s=%u",
		 s->net.url, s->client_id, pk->session_present ? 1 : 0, keepalive);
	if (s->ever_up && !pk->session_present)
		log_warn("mqtt session lost by the broker: messages queued for us are gone "
			 "client_id=%s url=%s", s->client_id, s->net.url);
	s->ever_up = true;
	if (s->nsubs > 0 && send_subscribe(s, 0, s->nsubs) != 0)
		return;
	update_reading(s);
	s->reported_up = true;
	if (s->conn_cb != NULL)
		s->conn_cb(s->conn_arg, true);
}

static void on_suback(struct mqsub *s, const struct mqsub_packet *pk)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nsubs; i++) {
		if (s->sub_packet[i] != pk->packet_id)
			continue;
		if (s->subs_unanswered > 0)
			s->subs_unanswered--;
		if (k < pk->payload_len) {
			uint8_t code = pk->payload[k];
			if (code >= 0x80) {
				s->subs_refused = true;
				log_error("mqtt subscribe refused: reason=0x%02x filter=%s url=%s",
					  code, s->subs[i].filter, s->net.url);
			} else if (code < s->subs[i].qos) {
				log_warn("mqtt subscribe granted a lower qos: qos=%u filter=%s url=%s",
					 code, s->subs[i].filter, s->net.url);
			}
		}
		k++;
	}
	if (k != pk->payload_len)
		log_warn("mqtt suback does not match a subscribe: codes=%zu filters=%zu "
			 "packet_id=%u url=%s", pk->payload_len, k, pk->packet_id, s->net.url);
}

static void on_publish(struct mqsub *s, const struct mqsub_packet *pk)
{
	if (pk->qos == 2) {
		protocol_error(s, "qos 2 publish although we subscribe at qos 1 at most");
		return;
	}
	struct mqsub_msg m = {
		.topic = pk->topic,
		.payload = (const char *)pk->payload,
		.len = pk->payload_len,
		.qos = pk->qos,
		.dup = pk->dup,
		.retained = pk->retain,
		.token = 0,
	};
	if (pk->qos == 1) {
		if (s->seq == TOKEN_SEQ_MAX) {
			/* 2^40 messages on one connection; start a new one. */
			protocol_error(s, "tokens of this connection used up");
			return;
		}
		if (fifo_push(s, pk->packet_id, &m.token) != 0) {
			log_error("mqtt receive failed: out of memory: reconnecting url=%s", s->net.url);
			close_conn(s);
			return;
		}
	}
	s->msg_cb(s->msg_arg, &m);
}

static void handle_packet(struct mqsub *s, uint8_t *p, size_t n)
{
	struct mqsub_packet pk;
	if (mqsub_decode(p, n, &pk) != 0) {
		protocol_error(s, pk.error);
		return;
	}
	if ((pk.type == MQSUB_CONNACK) != (s->state == ST_CONNACK)) {
		protocol_error(s, pk.type == MQSUB_CONNACK ? "second connack" : "packet before connack");
		return;
	}
	switch (pk.type) {
	case MQSUB_CONNACK:
		on_connack(s, &pk);
		break;
	case MQSUB_PUBLISH:
		on_publish(s, &pk);
		break;
	case MQSUB_SUBACK:
		on_suback(s, &pk);
		break;
	case MQSUB_PINGRESP:
		s->ping_ticks = -1;
		break;
	case MQSUB_DISCONNECT:
		log_warn("mqtt disconnected by the broker: reconnecting reason=0x%02x text=\"%.*s\" "
			 "url=%s", pk.reason, (int)pk.reason_string_len,
			 pk.reason_string ? pk.reason_string : "", s->net.url);
		close_conn(s);
		break;
	}
}

/*
 * Decodes and handles every whole packet in the input, stopping at a PUBLISH
 * while paused. A packet is pulled up into one piece and drained only after
 * its handling, so topic and payload point into the buffer during the
 * callback.
 */
static void read_packets(struct mqsub *s)
{
	uint32_t gen = s->gen;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	while (s->state == ST_CONNACK || s->state == ST_UP) {
		uint8_t hdr[MQSUB_FIXED_HEADER_MAX];
		size_t hl;
		uint32_t rem;
		ev_ssize_t got = evbuffer_copyout(in, hdr, sizeof(hdr));
		if (got <= 0)
			return;
		int rc = mqsub_fixed_header(hdr, (size_t)got, &hl, &rem);
		if (rc == 0)
			return;
		if (rc < 0) {
			protocol_error(s, "remaining length longer than 4 bytes");
			return;
		}
		size_t n = hl + rem;
		if (n > s->max_packet) {
			protocol_error(s, "packet larger than our maximum packet size");
			return;
		}
		if (evbuffer_get_length(in) < n)
			return;
		if (s->paused && s->state == ST_UP && hdr[0] >> 4 == MQSUB_PUBLISH)
			return;
		uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
		if (p == NULL) {
			log_error("mqtt receive failed: out of memory: reconnecting url=%s", s->net.url);
			close_conn(s);
			return;
		}
		/* Whatever arrives shows the connection alive, even when a long
		 * backlog delays the PINGRESP behind it. */
		if (s->ping_ticks > 0)
			s->ping_ticks = 0;
		handle_packet(s, p, n);
		if (s->gen != gen)
			return;
		evbuffer_drain(in, n);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	read_packets(arg);
}

/* --- public functions ---------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct mqsub *mqsub_new(struct event_base *base, const struct mqsub_options *o,
			mqsub_message_cb cb, void *arg)
{
	struct mqsub *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	strbuf_init(&s->out);
	s->base = base;
	s->msg_cb = cb;
	s->msg_arg = arg;
	s->gen = 1;
	s->backoff_ms = BACKOFF_MIN_MS;
	s->session_expiry_s = o->session_expiry_s ? o->session_expiry_s : DEFAULT_SESSION_EXPIRY_S;
	s->keepalive_s = o->keepalive_s ? o->keepalive_s : DEFAULT_KEEPALIVE_S;
	s->max_packet = o->max_packet ? o->max_packet : DEFAULT_MAX_PACKET;
	if (mqsub_net_init(&s->net, o->url, o->cafile) != 0)
		goto fail;
	if (cb == NULL || o->client_id == NULL || o->client_id[0] == '\0') {
		log_error("mqtt: no client id or no message callback url=%s", s->net.url);
		goto fail;
	}
	s->client_id = strdup(o->client_id);
	s->user = dup_or_null(o->user);
	s->pass = dup_or_null(o->pass);
	if (s->client_id == NULL || (o->user != NULL && s->user == NULL) ||
	    (o->pass != NULL && s->pass == NULL))
		goto fail;
	/* Check the CONNECT fields now rather than on every attempt. */
	struct mqsub_connect_fields c = { s->client_id, s->user, s->pass, s->keepalive_s,
					   s->session_expiry_s, RECEIVE_MAX, s->max_packet };
	if (mqsub_encode_connect(&s->out, &c) != 0) {
		log_error("mqtt: bad client id, user or password (not utf-8 or too long) "
			  "client_id=%s", s->client_id);
		goto fail;
	}
	s->timer_ev = evtimer_new(base, on_timer, s);
	s->ping_ev = event_new(base, -1, EV_PERSIST, on_ping, s);
	s->work_ev = event_new(base, -1, 0, on_work, s);
	if (s->timer_ev == NULL || s->ping_ev == NULL || s->work_ev == NULL)
		goto fail;
	return s;
fail:
	mqsub_free(s);
	return NULL;
}

void mqsub_free(struct mqsub *s)
{
	if (s == NULL)
		return;
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->timer_ev != NULL)
		event_free(s->timer_ev);
	if (s->ping_ev != NULL)
		event_free(s->ping_ev);
	if (s->work_ev != NULL)
		event_free(s->work_ev);
	for (size_t i = 0; i < s->nsubs; i++)
		free((char *)s->subs[i].filter);
	free(s->subs);
	free(s->sub_packet);
	free(s->fifo);
	strbuf_free(&s->out);
	mqsub_net_clear(&s->net);
	free(s->client_id);
	free(s->user);
	free(s->pass);
	free(s);
}

void mqsub_set_conn_cb(struct mqsub *s, mqsub_conn_cb cb, void *arg)
{
	s->conn_cb = cb;
	s->conn_arg = arg;
}

int mqsub_subscribe(struct mqsub *s, const char *filter, int qos)
{
	struct mqsub_filter f = { filter, qos };
	strbuf_reset(&s->out);
	if (mqsub_encode_subscribe(&s->out, 1, &f, 1) != 0) {
		if (!strbuf_ok(&s->out))
			return -1;
		log_error("mqtt subscribe refused: bad filter or qos (want qos 0 or 1) qos=%d "
			  "filter=%s", qos, filter);
		return -1;
	}
	struct mqsub_filter *subs = realloc(s->subs, (s->nsubs + 1) * sizeof(*subs));
	if (subs == NULL)
		return -1;
	s->subs = subs;
	uint16_t *ids = realloc(s->sub_packet, (s->nsubs + 1) * sizeof(*ids));
	if (ids == NULL)
		return -1;
	s->sub_packet = ids;
	char *copy = strdup(filter);
	if (copy == NULL)
		return -1;
	s->subs[s->nsubs].filter = copy;
	s->subs[s->nsubs].qos = qos;
	s->sub_packet[s->nsubs] = 0;
	s->nsubs++;
	if (s->state == ST_UP)
		(void)send_subscribe(s, s->nsubs - 1, 1); /* a failure reconnects, which resends */
	return 0;
}

int mqsub_connect(struct mqsub *s)
{
	if (s->running)
		return 0;
	s->running = true;
	s->backoff_ms = BACKOFF_MIN_MS;
	/* CLOSING: the retry follows when the socket is closed. */
	if (s->state == ST_IDLE) {
		evtimer_del(s->timer_ev);
		start_attempt(s);
	}
	return 0;
}

void mqsub_ack(struct mqsub *s, uint64_t token)
{
	if (token == 0 || s->fifo_len == 0)
		return;
	uint64_t first = s->fifo[s->fifo_head].token;
	if (token < first || token - first >= s->fifo_len)
		return;
	size_t idx = (size_t)(token - first);
	struct inflight *e = &s->fifo[(s->fifo_head + idx) % s->fifo_cap];
	if (e->token != token || e->acked)
		return;
	e->acked = true;
	s->unacked--;
	if (idx == 0 && !s->acks_due) {
		s->acks_due = true;
		event_active(s->work_ev, 0, 0);
	}
}

void mqsub_set_paused(struct mqsub *s, bool paused)
{
	if (s->paused == paused)
		return;
	s->paused = paused;
	if (s->bev != NULL && (s->state == ST_UP || s->state == ST_CONNACK))
		update_reading(s);
	if (!paused) {
		/* A PINGREQ outstanding gets a whole keepalive from now. */
		if (s->ping_ticks > 0)
			s->ping_ticks = 0;
		s->input_due = true;
		event_active(s->work_ev, 0, 0);
	}
}

void mqsub_disconnect(struct mqsub *s)
{
	s->running = false;
	switch (s->state) {
	case ST_IDLE:
		evtimer_del(s->timer_ev);
		break;
	case ST_CONNECTING:
	case ST_CONNACK:
		close_conn(s);
		break;
	case ST_UP:
		flush_acks(s);
		if (s->state != ST_UP)
			break;
		strbuf_reset(&s->out);
		if (send_out(s, mqsub_encode_disconnect(&s->out), "disconnect") != 0)
			break;
		s->state = ST_CLOSING;
		update_reading(s);
		evtimer_del(s->ping_ev);
		set_timer(s, CLOSE_TIMEOUT_S * 1000);
		break;
	case ST_CLOSING:
		break;
	}
}

bool mqsub_subscribed(const struct mqsub *s)
{
	return s->state == ST_UP && s->subs_unanswered == 0 && !s->subs_refused;
}

bool mqsub_connected(const struct mqsub *s)
{
	return s->state == ST_UP || s->state == ST_CLOSING;
}

size_t mqsub_unacked(const struct mqsub *s)
{
	return s->unacked;
}

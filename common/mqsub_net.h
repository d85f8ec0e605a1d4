#ifndef SC_COMMON_MQSUB_NET_H
#define SC_COMMON_MQSUB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

struct event_base;

/*
 * Where and how mqsub (mqsub.h) connects: the broker URL, its address (a
 * numeric one parsed once, a name looked up before every attempt, which
 * blocks), a TCP or TLS bufferevent on a socket with TCP_NODELAY, and the
 * reason a connection failed. Used by mqsub.c only.
 */
struct mqsub_net {
	char *url;                 /* as configured, for log lines */
	char *host;                /* name or address: lookup, SNI, certificate check */
	char *port;
	bool numeric;              /* host is an address, parsed into addr */
	struct sockaddr_storage addr;
	int addr_len;
	SSL_CTX *ssl_ctx;          /* ssl:// only: verifies the server */
	unsigned attempt;          /* rotates through the addresses of a name */
};

/*
 * Parses url (tcp://host:port or ssl://host:port; host a name, an IPv4 or
 * a [IPv6] address) and for ssl:// loads the CA file (NULL: the system's
 * CAs). Returns 0, or -1 with the reason logged. Call mqsub_net_clear()
 * afterwards in both cases.
 */
int mqsub_net_init(struct mqsub_net *n, const char *url, const char *cafile)
	__attribute__((warn_unused_result));

/* Frees what mqsub_net_init() made; n is left zeroed. */
void mqsub_net_clear(struct mqsub_net *n);

/*
 * Starts one connection attempt, TLS for ssl://, with the callbacks set.
 * The outcome comes to eventcb: BEV_EVENT_CONNECTED (after the TLS
 * handshake and the server's verification) or an error. Returns the
 * bufferevent (caller frees; it owns socket and TLS state), or NULL when the
 * attempt could not start (logged).
 */
struct bufferevent *mqsub_net_connect(struct mqsub_net *n, struct event_base *base,
				      bufferevent_data_cb readcb, bufferevent_data_cb writecb,
				      bufferevent_event_cb eventcb, void *arg)
	__attribute__((warn_unused_result));

/*
 * Why bev failed, given the events of its event callback, for a log line:
 * end of file, the TLS error or certificate problem, or the socket error.
 * Returns a static string or buf.
 */
const char *mqsub_net_error(const struct mqsub_net *n, struct bufferevent *bev, short what,
			    char *buf, size_t len);

#endif

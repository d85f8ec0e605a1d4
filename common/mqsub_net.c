/*
 * Connections of mqsub: URL, address, TCP or TLS (see mqsub_net.h).
 */
#include "mqsub_net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"

static int parse_url(struct mqsub_net *n, const char *url, bool *tls)
{
	*tls = strncmp(url, "ssl://", 6) == 0;
	if (!*tls && strncmp(url, "tcp://", 6) != 0)
		return -1;
	const char *hp = url + 6;
	const char *colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp)
		return -1;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port <= 0 || port > 65535)
		return -1;
	const char *h = hp;
	size_t hl = (size_t)(colon - hp);
	if (*h == '[') {
		if (hl < 3 || h[hl - 1] != ']')
			return -1;
		h++;
		hl -= 2;
	}
	n->host = strndup(h, hl);
	n->port = strdup(colon + 1);
	if (n->host == NULL || n->port == NULL)
		return -1;
	/* Numeric only if the parsed address carries our port: unbracketed
	 * "::1:1883" parses as an address without a port. */
	n->addr_len = (int)sizeof(n->addr);
	if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&n->addr, &n->addr_len) == 0) {
		const struct sockaddr *sa = (const struct sockaddr *)&n->addr;
		int p = sa->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
			: sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
			: -1;
		n->numeric = p == port;
	}
	return 0;
}

static int setup_tls(struct mqsub_net *n, const char *cafile)
{
	n->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (n->ssl_ctx == NULL) {
		log_error("mqtt: cannot make a tls context: out of memory url=%s", n->url);
		return -1;
	}
	SSL_CTX_set_min_proto_version(n->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(n->ssl_ctx, SSL_VERIFY_PEER, NULL);
	int ok = cafile != NULL ? SSL_CTX_load_verify_locations(n->ssl_ctx, cafile, NULL)
				: SSL_CTX_set_default_verify_paths(n->ssl_ctx);
	if (ok != 1) {
		char err[200];
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		log_error("mqtt: cannot load ca file: %s cafile=%s", err, cafile ? cafile : "(system)");
		return -1;
	}
	return 0;
}

int mqsub_net_init(struct mqsub_net *n, const char *url, const char *cafile)
{
	bool tls;
	memset(n, 0, sizeof(*n));
	if (url == NULL || (n->url = strdup(url)) == NULL || parse_url(n, url, &tls) != 0) {
		log_error("mqtt: bad broker url: want tcp://host:port or ssl://host:port url=%s",
			  url ? url : "(none)");
		return -1;
	}
	return tls ? setup_tls(n, cafile) : 0;
}

void mqsub_net_clear(struct mqsub_net *n)
{
	if (n->ssl_ctx != NULL)
		SSL_CTX_free(n->ssl_ctx);
	free(n->url);
	free(n->host);
	free(n->port);
	memset(n, 0, sizeof(*n));
}

static int resolve(struct mqsub_net *n, struct sockaddr_storage *ss, int *len)
{
	if (n->numeric) {
		*ss = n->addr;
		*len = n->addr_len;
		return 0;
	}
	/* Blocking, by design (mqsub.h): configuration names the broker. */
	struct addrinfo hints = { 0 }, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(n->host, n->port, &hints, &ai);
	if (rc != 0) {
		log_warn("mqtt connect failed: cannot resolve host: %s host=%s url=%s",
			 gai_strerror(rc), n->host, n->url);
		return -1;
	}
	size_t count = 0;
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next)
		count++;
	struct addrinfo *a = ai;
	for (size_t i = n->attempt % count; i > 0; i--)
		a = a->ai_next;
	memcpy(ss, a->ai_addr, a->ai_addrlen);
	*len = (int)a->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static struct bufferevent *new_bev(struct mqsub_net *n, struct event_base *base)
{
	if (n->ssl_ctx == NULL)
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	SSL *ssl = SSL_new(n->ssl_ctx);
	if (ssl == NULL)
		return NULL;
	/* The server must present a certificate for the address or name we
	 * dialled; a name is also sent as SNI. */
	int ok;
	if (n->numeric)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), n->host);
	else
		ok = SSL_set_tlsext_host_name(ssl, n->host) == 1 && SSL_set1_host(ssl, n->host) == 1;
	struct bufferevent *bev = NULL;
	if (ok == 1)
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						     BEV_OPT_CLOSE_ON_FREE);
	/* Once the bufferevent exists it owns ssl (BEV_OPT_CLOSE_ON_FREE). */
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

struct bufferevent *mqsub_net_connect(struct mqsub_net *n, struct event_base *base,
				      bufferevent_data_cb readcb, bufferevent_data_cb writecb,
				      bufferevent_event_cb eventcb, void *arg)
{
	struct sockaddr_storage ss;
	int len;
	n->attempt++;
	if (resolve(n, &ss, &len) != 0)
		return NULL;
	struct bufferevent *bev = new_bev(n, base);
	if (bev == NULL) {
		log_error("mqtt connect failed: cannot make a connection: out of memory url=%s", n->url);
		return NULL;
	}
	bufferevent_setcb(bev, readcb, writecb, eventcb, arg);
	/* Failures after this point come to eventcb, later: libevent defers them. */
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, len) != 0) {
		log_warn("mqtt connect failed: %s url=%s", strerror(errno), n->url);
		bufferevent_free(bev);
		return NULL;
	}
	/* Nagle would hold our PUBACKs for the broker's delayed ACK (~30 ms a
	 * round trip, shared/measured-facts.md); the socket is ours to set. */
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(bev);
	if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		log_warn("mqtt: cannot set TCP_NODELAY: %s url=%s", strerror(errno), n->url);
	return bev;
}

const char *mqsub_net_error(const struct mqsub_net *n, struct bufferevent *bev, short what,
			    char *buf, size_t len)
{
	if (what & BEV_EVENT_EOF)
		return "closed by the broker";
	if (what & BEV_EVENT_TIMEOUT)
		return "timed out";
	unsigned long e = n->ssl_ctx != NULL ? bufferevent_get_openssl_error(bev) : 0;
	if (e == 0) {
		int err = EVUTIL_SOCKET_ERROR();
		return strerror(err != 0 ? err : EIO);
	}
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v != X509_V_OK) {
		snprintf(buf, len, "tls: certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
		return buf;
	}
	char err[200];
	ERR_error_string_n(e, err, sizeof(err));
	snprintf(buf, len, "tls: %s", err);
	return buf;
}

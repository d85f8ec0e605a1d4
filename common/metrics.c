/*
 * Prometheus registry and the /metrics + /healthz listener.
 *
 * Structure (families, series) is changed and read only on the loop
 * thread; the values are C11 atomics so any thread may update them. A
 * double lives in an atomic uint64 as its bit pattern: C11 has no atomic
 * floating-point add, so an add is a compare-and-swap loop on the bits.
 * Histogram buckets are counted per bucket and made cumulative when
 * rendered, so an observation is one increment, not one per bucket.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"

static const double default_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					 0.25,  0.5,    1,     2.5,  5,     10,   30,  60 };

struct family;

/* One series: a family plus one label set. */
struct metric {
	struct family *family;  /* owning family */
	char *labels;           /* label body without braces, "" for none */
	_Atomic uint64_t value; /* counter/gauge value, or histogram sum (double bits) */
	_Atomic uint64_t *buckets; /* histogram: per-bucket counts, nbounds + 1 (+Inf last) */
};

struct family {
	char *name;
	char *help;
	enum metric_type type;
	double *bounds;          /* histogram upper bounds, ascending, +Inf implied */
	size_t nbounds;
	struct metric **series;  /* sorted by labels, so output is stable */
	size_t nseries, cap;
};

struct metrics {
	struct family **families; /* sorted by name */
	size_t nfamilies, cap;
};

static uint64_t dbl_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old, dbl_bits(bits_dbl(old) + v),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

static void metric_free(struct metric *s)
{
	if (!s)
		return;
	free(s->labels);
	free((void *)s->buckets);
	free(s);
}

static void family_free(struct family *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nseries; i++)
		metric_free(f->series[i]);
	free(f->series);
	free(f->bounds);
	free(f->help);
	free(f->name);
	free(f);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfamilies; i++)
		family_free(m->families[i]);
	free(m->families);
	free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool valid_metric_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return false;
	return true;
}

/*
 * A label body: name="value"(,name="value")* with value escapes \\ \" \n
 * only. Histograms must not use "le", which the buckets need.
 */
static bool valid_labels(const char *s, bool histogram)
{
	while (*s) {
		const char *name = s;

		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
			return false;
		while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		       (*s >= '0' && *s <= '9') || *s == '_')
			s++;
		if (histogram && s - name == 2 && memcmp(name, "le", 2) == 0)
			return false;
		if (*s++ != '=' || *s++ != '"')
			return false;
		while (*s != '"') {
			if (*s == '\0' || *s == '\n')
				return false;
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return false;
			}
			s++;
		}
		s++;
		if (*s == ',' && s[1] != '\0')
			s++;
		else if (*s != '\0')
			return false;
	}
	return true;
}

int metrics_labels(char *buf, size_t len, ...)
{
	va_list ap;
	size_t n = 0;
	const char *k;
	int rc = -1;

	if (len == 0)
		return -1;
	va_start(ap, len);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		int w = snprintf(buf + n, len - n, "%s%s=\"", n ? "," : "", k);

		if (w < 0 || (size_t)w >= len - n)
			goto out;
		n += (size_t)w;
		for (; v && *v; v++) {
			const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
			size_t el = esc ? 2 : 1;

			if (n + el >= len)
				goto out;
			memcpy(buf + n, esc ? esc : v, el);
			n += el;
		}
		if (n + 1 >= len)
			goto out;
		buf[n++] = '"';
	}
	rc = 0;
out:
	va_end(ap);
	buf[rc == 0 ? n : 0] = '\0';
	return rc;
}

/*
 * Binary search of a sorted array of structs by the string at offset off
 * (family name, series labels): index, or -(insertion point) - 1.
 */
static long find_sorted(void *const *arr, size_t n, size_t off, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(*(const char *const *)(const void *)((const char *)arr[mid] + off), key);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

/* Inserts p at index at of a growing pointer array. */
static int insert_ptr(void ***arr, size_t *n, size_t *cap, size_t at, void *p)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		void **a = realloc(*arr, ncap * sizeof(*a));

		if (!a)
			return -1;
		*arr = a;
		*cap = ncap;
	}
	memmove(*arr + at + 1, *arr + at, (*n - at) * sizeof(**arr));
	(*arr)[at] = p;
	(*n)++;
	return 0;
}

static struct family *family_get(struct metrics *m, const char *name, const char *help,
				 enum metric_type type, const double *bounds, size_t nbounds)
{
	long at = find_sorted((void *const *)m->families, m->nfamilies,
			      offsetof(struct family, name), name);
	struct family *f = NULL;

	if (at >= 0) {
		f = m->families[at];
		if (f->type != type || strcmp(f->help, help) != 0 ||
		    (type == METRIC_HISTOGRAM &&
		     (f->nbounds != nbounds ||
		      (nbounds && memcmp(f->bounds, bounds, nbounds * sizeof(*bounds)) != 0)))) {
			log_error("metrics: %s registered again with another type, help or buckets", name);
			return NULL;
		}
		return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto fail;
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help);
	if (!f->name || !f->help)
		goto fail;
	if (type == METRIC_HISTOGRAM && nbounds) {
		f->bounds = malloc(nbounds * sizeof(*bounds));
		if (!f->bounds)
			goto fail;
		memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
		f->nbounds = nbounds;
	}
	if (insert_ptr((void ***)&m->families, &m->nfamilies, &m->cap, (size_t)(-at - 1), f) < 0)
		goto fail;
	return f;
fail:
	log_error("metrics: cannot register %s: out of memory", name);
	family_free(f);
	return NULL;
}

static struct metric *series_get(struct metrics *m, const char *name, const char *help,
				 const char *labels, enum metric_type type,
				 const double *bounds, size_t nbounds)
{
	struct family *f;
	struct metric *s = NULL;
	long at;

	if (!m)
		return NULL;
	if (!labels)
		labels = "";
	if (!help)
		help = "";
	if (!valid_metric_name(name) || !valid_labels(labels, type == METRIC_HISTOGRAM)) {
		log_error("metrics: bad metric name or labels: %s{%s}", name ? name : "(null)", labels);
		return NULL;
	}
	if (!(f = family_get(m, name, help, type, bounds, nbounds)))
		return NULL;
	at = find_sorted((void *const *)f->series, f->nseries, offsetof(struct metric, labels),
			 labels);
	if (at >= 0)
		return f->series[at];
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->family = f;
	atomic_init(&s->value, dbl_bits(0.0));
	s->labels = strdup(labels);
	if (!s->labels)
		goto fail;
	if (type == METRIC_HISTOGRAM) {
		s->buckets = calloc(nbounds + 1, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail;
		for (size_t i = 0; i <= nbounds; i++)
			atomic_init(&s->buckets[i], 0);
	}
	if (insert_ptr((void ***)&f->series, &f->nseries, &f->cap, (size_t)(-at - 1), s) < 0)
		goto fail;
	return s;
fail:
	log_error("metrics: cannot register %s{%s}: out of memory", name, labels);
	metric_free(s);
	return NULL;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       const char *labels)
{
	return series_get(m, name, help, labels, METRIC_COUNTER, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     const char *labels)
{
	return series_get(m, name, help, labels, METRIC_GAUGE, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
				 const char *labels, const double *bounds, size_t nbounds)
{
	if (!bounds) {
		bounds = default_bounds;
		nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
			log_error("metrics: %s: bucket bounds must be finite and ascending",
				  name ? name : "(null)");
			return NULL;
		}
	}
	return series_get(m, name, help, labels, METRIC_HISTOGRAM, bounds, nbounds);
}

void metric_add(struct metric *c, double v)
{
	if (!c || c->family->type == METRIC_HISTOGRAM)
		return;
	/* A counter only goes up; a negative add is a bug and would break rate(). */
	if (c->family->type == METRIC_COUNTER && !(v >= 0))
		return;
	atomic_add_double(&c->value, v);
}

void metric_set(struct metric *g, double v)
{
	if (!g || g->family->type != METRIC_GAUGE)
		return;
	atomic_store_explicit(&g->value, dbl_bits(v), memory_order_relaxed);
}

void metric_observe(struct metric *h, double v)
{
	const struct family *f;
	size_t i = 0;

	if (!h || h->family->type != METRIC_HISTOGRAM || isnan(v))
		return;
	f = h->family;
	/* Prometheus buckets are "less than or equal". */
	while (i < f->nbounds && v > f->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_add_double(&h->value, v);
}

double metric_value(const struct metric *c)
{
	uint64_t n = 0;

	if (!c)
		return 0;
	if (c->family->type != METRIC_HISTOGRAM)
		return bits_dbl(atomic_load_explicit(&c->value, memory_order_relaxed));
	for (size_t i = 0; i <= c->family->nbounds; i++)
		n += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
	return (double)n;
}

/* Growing output buffer; on allocation failure `failed` sticks. */
struct strbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 : b->len + (size_t)n + 1;
		char *np = realloc(b->p, ncap);

		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/*
 * Shortest "%g" that reads back as the same double, in the spelling
 * Prometheus parses (+Inf, -Inf, NaN).
 */
static const char *fmt_double(double v, char *buf, size_t len)
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static void render_help(struct strbuf *b, const struct family *f)
{
	sb_printf(b, "# HELP %s ", f->name);
	for (const char *s = f->help; *s; s++) {
		if (*s == '\\')
			sb_printf(b, "\\\\");
		else if (*s == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *s);
	}
	sb_printf(b, "\n");
}

static void render_histogram(struct strbuf *b, const struct family *f, const struct metric *s)
{
	const char *sep = s->labels[0] ? "," : "";
	const char *lb = s->labels[0] ? "{" : "", *rb = s->labels[0] ? "}" : "";
	char num[32], le[32];
	uint64_t cum = 0;

	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
		sb_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep,
			  i < f->nbounds ? fmt_double(f->bounds[i], le, sizeof(le)) : "+Inf",
			  (unsigned long long)cum);
	}
	/* _count is the +Inf bucket, so the two always agree in one scrape. */
	sb_printf(b, "%s_sum%s%s%s %s\n", f->name, lb, s->labels, rb,
		  fmt_double(bits_dbl(atomic_load(&s->value)), num, sizeof(num)));
	sb_printf(b, "%s_count%s%s%s %llu\n", f->name, lb, s->labels, rb,
		  (unsigned long long)cum);
}

char *metrics_render(struct metrics *m, size_t *len)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	struct strbuf b = { 0 };
	char num[32];

	if (!m)
		return NULL;
	b.cap = 4096;
	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	for (size_t i = 0; i < m->nfamilies; i++) {
		const struct family *f = m->families[i];

		render_help(&b, f);
		sb_printf(&b, "# TYPE %s %s\n", f->name, type_names[f->type]);
		for (size_t k = 0; k < f->nseries; k++) {
			const struct metric *s = f->series[k];

			if (f->type == METRIC_HISTOGRAM) {
				render_histogram(&b, f, s);
				continue;
			}
			sb_printf(&b, "%s%s%s%s %s\n", f->name, s->labels[0] ? "{" : "", s->labels,
				  s->labels[0] ? "}" : "",
				  fmt_double(bits_dbl(atomic_load(&s->value)), num, sizeof(num)));
		}
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

int metrics_split_addr(const char *addr, char *host, size_t hostlen, unsigned short *port)
{
	const char *colon, *h, *p;
	size_t hl;
	char *end;
	unsigned long v;

	if (!addr)
		return -1;
	if (addr[0] == '[') {
		/* [v6]:port */
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -1;
		h = addr + 1;
		hl = (size_t)(close - h);
		p = close + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -1; /* a bare IPv6 address needs brackets */
		h = addr;
		hl = (size_t)(colon - addr);
		p = colon + 1;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || *end != '\0' || v > 65535 || end - p > 5)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (unsigned short)v;
	return 0;
}

struct metrics_http {
	struct evhttp *http;
	struct evhttp_bound_socket *sock; /* owned by http */
	struct metrics *m;                /* not owned */
	metrics_health_cb health;
	void *arg;
};

static void reply(struct evhttp_request *req, int code, const char *reason,
		  const char *ctype, const char *body, size_t len)
{
	struct evbuffer *out = evbuffer_new();

	if (!out) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void http_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	static const char text[] = "text/plain; charset=utf-8";
	bool metrics_path, health_path;

	if (!path)
		path = "";
	metrics_path = strcmp(path, "/metrics") == 0;
	health_path = strcmp(path, "/healthz") == 0;
	if (!metrics_path && !health_path) {
		reply(req, HTTP_NOTFOUND, "Not Found", text, "not found\n", 10);
		return;
	}
	/* HEAD is GET without a body; evhttp drops the body itself. */
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply(req, 405, "Method Not Allowed", text, "method not allowed\n", 19);
		return;
	}
	if (health_path) {
		if (!h->health || h->health(h->arg))
			reply(req, HTTP_OK, "OK", text, "ok\n", 3);
		else
			reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", text, "unavailable\n", 12);
		return;
	}
	size_t len = 0;
	char *body = metrics_render(h->m, &len);

	if (!body) {
		reply(req, HTTP_INTERNAL, "Internal Server Error", text, "out of memory\n", 14);
		return;
	}
	reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4", body, len);
	free(body);
}

struct metrics_http *metrics_http_new(struct event_base *base, const char *addr,
				      struct metrics *m, metrics_health_cb health, void *arg)
{
	struct metrics_http *h = NULL;
	char host[256];
	unsigned short port;

	if (metrics_split_addr(addr, host, sizeof(host), &port) < 0) {
		log_error("metrics: bad listen address \"%s\" (expected host:port)",
			  addr ? addr : "");
		goto fail;
	}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->http = evhttp_new(base))) {
		log_error("metrics: cannot listen on %s: out of memory", addr);
		goto fail;
	}
	h->m = m;
	h->health = health;
	h->arg = arg;
	/* Every method reaches http_cb, so the answer is 405, not evhttp's 501. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	/* A scraper sends no body; a slow or stuck peer must not hold a socket. */
	evhttp_set_max_body_size(h->http, 4096);
	evhttp_set_max_headers_size(h->http, 16384);
	evhttp_set_timeout(h->http, 30);
	evhttp_set_gencb(h->http, http_cb, h);
	h->sock = evhttp_bind_socket_with_handle(h->http, host, port);
	if (!h->sock) {
		log_error("metrics: cannot listen on %s: %s", addr, strerror(errno));
		goto fail;
	}
	return h;
fail:
	metrics_http_free(h);
	return NULL;
}

int metrics_http_port(const struct metrics_http *h)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!h || !h->sock)
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

void metrics_http_free(struct metrics_http *h)
{
	if (!h)
		return;
	if (h->http)
		evhttp_free(h->http);
	free(h);
}

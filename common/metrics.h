#ifndef SC_COMMON_METRICS_H
#define SC_COMMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/*
 * Prometheus metrics (text exposition format 0.0.4) and the /metrics and
 * /healthz listener of every service (contract section 5).
 *
 * A series is registered once (name + fixed label set) and then updated
 * through its handle, so the hot path is one addition. Series are owned by
 * the registry and live until metrics_free. Updates are lock-free relaxed
 * atomics, so any thread may update; registration is loop thread only.
 */

struct metrics;
struct metric;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Returns the series of `name` with `labels` (Prometheus label body, e.g.
 * "kind=\"telemetry\",result=\"stored\"", or "" for none), creating it.
 * The same name must always be given the same type and help. Histograms
 * take their upper bounds (ascending, +Inf implied); NULL selects the
 * default latency buckets 0.001 .. 60 s. Returns NULL on allocation failure
 * or misuse (logged).
 */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     const char *labels);
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
				 const char *labels, const double *bounds, size_t nbounds);

/*
 * Builds a label body with escaped values (backslash, quote, newline) into
 * buf from name/value pairs ended by NULL:
 *   metrics_labels(buf, sizeof(buf), "kind", "telemetry", "result", "stored", NULL)
 * gives kind="telemetry",result="stored". Names are not checked here (the
 * registration does). Returns 0, or -1 with buf "" when it does not fit.
 */
int metrics_labels(char *buf, size_t len, ...)
	__attribute__((sentinel, warn_unused_result));

/*
 * All of these accept NULL and do nothing then; an update of the wrong type
 * (metric_set on a counter...) does nothing too.
 */
void metric_add(struct metric *c, double v);   /* counter or gauge; counters ignore v < 0 */
void metric_set(struct metric *g, double v);   /* gauge */
void metric_observe(struct metric *h, double v); /* histogram; NaN is ignored */
/* Counter/gauge value; for a histogram its observation count. For tests. */
double metric_value(const struct metric *c);

/*
 * Renders every series in text format 0.0.4 (# HELP, # TYPE, samples);
 * families sorted by name, series by label body. Returns a NUL-terminated
 * string the caller frees, its length in *len (may be NULL); NULL on
 * allocation failure.
 */
char *metrics_render(struct metrics *m, size_t *len);

/* Health: true when the service is connected to the database and the broker. */
typedef bool (*metrics_health_cb)(void *arg);

struct metrics_http;

/*
 * Listens on addr ("host:port", "[v6]:port"; port 0 picks a free one) with
 * evhttp on base: GET /metrics (Content-Type text/plain; version=0.0.4)
 * and GET /healthz (200 "ok\n", or 503 "unavailable\n" when health
 * returns false; a NULL health is always healthy). HEAD is answered like
 * GET; other methods on those paths get 405, other paths 404. m and arg
 * are not owned and must outlive the listener. Returns NULL when addr is
 * bad or it cannot bind (logged).
 */
struct metrics_http *metrics_http_new(struct event_base *base, const char *addr,
				      struct metrics *m, metrics_health_cb health, void *arg);
void metrics_http_free(struct metrics_http *h);

/* The port actually bound (useful after port 0), or -1. */
int metrics_http_port(const struct metrics_http *h);

/*
 * Splits "host:port" or "[v6host]:port" into host (copied into buf,
 * brackets removed) and port 0..65535. The host must not be empty.
 * Returns 0 or -1.
 */
int metrics_split_addr(const char *addr, char *host, size_t hostlen, unsigned short *port)
	__attribute__((warn_unused_result));

#endif

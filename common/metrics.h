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

/* All of these accept NULL and do nothing then. */
void metric_add(struct metric *c, double v);   /* counter or gauge */
void metric_set(struct metric *g, double v);   /* gauge */
void metric_observe(struct metric *h, double v); /* histogram */
double metric_value(const struct metric *c);   /* counter/gauge value, for tests */

/* Renders every series; caller frees. Families sorted by name. */
char *metrics_render(struct metrics *m, size_t *len);

/* Health: true when the service is connected to the database and the broker. */
typedef bool (*metrics_health_cb)(void *arg);

struct metrics_http;

/*
 * Listens on addr ("host:port") with evhttp on base: GET /metrics and
 * GET /healthz (200 "ok" or 503 "unavailable" from health). Returns NULL
 * when it cannot bind (logged).
 */
struct metrics_http *metrics_http_new(struct event_base *base, const char *addr,
				      struct metrics *m, metrics_health_cb health, void *arg);
void metrics_http_free(struct metrics_http *h);

/* Splits "host:port" into host (copied into buf) and port. Returns 0 or -1. */
int metrics_split_addr(const char *addr, char *host, size_t hostlen, unsigned short *port)
	__attribute__((warn_unused_result));

#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <pthread.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <cmocka.h>

#include "log.h"
#include "metrics.h"

static char *render(struct metrics *m)
{
	size_t len = 0;
	char *s = metrics_render(m, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_render_exact(void **state)
{
	static const double bounds[] = { 0.5, 1 };
	struct metrics *m = metrics_new();
	struct metric *stored, *rejected, *up, *lag;
	char *out;

	(void)state;
	assert_non_null(m);
	/* Registered out of order: the output is sorted by name, then labels. */
	up = metrics_gauge(m, "sc_up", "1 while the service runs.", "");
	stored = metrics_counter(m, "sc_ingest_messages_total", "Messages by kind and result.",
				 "kind=\"telemetry\",result=\"stored\"");
	rejected = metrics_counter(m, "sc_ingest_messages_total", "Messages by kind and result.",
				   "kind=\"alarm\",result=\"rejected\"");
	lag = metrics_histogram(m, "sc_ingest_lag_seconds", "Publish to commit.", "kind=\"alarm\"",
				bounds, 2);
	assert_non_null(up);
	assert_non_null(stored);
	assert_non_null(rejected);
	assert_non_null(lag);
	/* The same name and labels give the same series. */
	assert_ptr_equal(metrics_counter(m, "sc_ingest_messages_total",
					 "Messages by kind and result.",
					 "kind=\"telemetry\",result=\"stored\""),
			 stored);

	metric_set(up, 1);
	metric_add(stored, 2);
	metric_add(stored, 1);
	metric_add(rejected, 1);
	metric_observe(lag, 0.25);
	metric_observe(lag, 0.5); /* on the bound: counts in le="0.5" */
	metric_observe(lag, 0.75);
	metric_observe(lag, 2);
	assert_true(metric_value(stored) == 3);
	assert_true(metric_value(lag) == 4);

	out = render(m);
	assert_string_equal(out,
		"# HELP sc_ingest_lag_seconds Publish to commit.\n"
		"# TYPE sc_ingest_lag_seconds histogram\n"
		"sc_ingest_lag_seconds_bucket{kind=\"alarm\",le=\"0.5\"} 2\n"
		"sc_ingest_lag_seconds_bucket{kind=\"alarm\",le=\"1\"} 3\n"
		"sc_ingest_lag_seconds_bucket{kind=\"alarm\",le=\"+Inf\"} 4\n"
		"sc_ingest_lag_seconds_sum{kind=\"alarm\"} 3.5\n"
		"sc_ingest_lag_seconds_count{kind=\"alarm\"} 4\n"
		"# HELP sc_ingest_messages_total Messages by kind and result.\n"
		"# TYPE sc_ingest_messages_total counter\n"
		"sc_ingest_messages_total{kind=\"alarm\",result=\"rejected\"} 1\n"
		"sc_ingest_messages_total{kind=\"telemetry\",result=\"stored\"} 3\n"
		"# HELP sc_up 1 while the service runs.\n"
		"# TYPE sc_up gauge\n"
		"sc_up 1\n");
	free(out);
	metrics_free(m);
}

static void test_values(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *c = metrics_counter(m, "c_total", "c", NULL);
	struct metric *g = metrics_gauge(m, "g", "g", "");
	char *out;

	(void)state;
	metric_add(c, 1.5);
	metric_add(c, -1);   /* counters never go down */
	metric_set(c, 100);  /* not a gauge: ignored */
	metric_observe(c, 1);
	assert_true(metric_value(c) == 1.5);
	metric_set(g, 10);
	metric_add(g, -2.5);
	assert_true(metric_value(g) == 7.5);
	metric_add(NULL, 1);
	metric_set(NULL, 1);
	metric_observe(NULL, 1);
	assert_true(metric_value(NULL) == 0);

	metric_set(g, 0.1);
	out = render(m);
	assert_non_null(strstr(out, "\nc_total 1.5\n"));
	assert_non_null(strstr(out, "\ng 0.1\n")); /* shortest round-trip form */
	free(out);
	metric_set(g, INFINITY);
	out = render(m);
	assert_non_null(strstr(out, "\ng +Inf\n"));
	free(out);
	metric_set(g, 123456789012.0);
	out = render(m);
	assert_non_null(strstr(out, "\ng 123456789012\n"));
	free(out);
	metrics_free(m);
	metrics_free(NULL);
}

static void test_histogram_default(void **state)
{
	static const char *const les[] = { "0.001", "0.0025", "0.005", "0.01", "0.025",
					   "0.05",  "0.1",    "0.25",  "0.5",  "1",
					   "2.5",   "5",      "10",    "30",   "60",  "+Inf" };
	static const unsigned cum[] = { 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 4 };
	struct metrics *m = metrics_new();
	struct metric *h = metrics_histogram(m, "d_seconds", "d", "", NULL, 0);
	char *out, line[128];

	(void)state;
	assert_non_null(h);
	metric_observe(h, 0.0001);
	metric_observe(h, 0.3);
	metric_observe(h, 60);
	metric_observe(h, 1000);
	metric_observe(h, NAN); /* ignored */
	out = render(m);
	const char *p = out;
	for (size_t i = 0; i < 16; i++) {
		snprintf(line, sizeof(line), "d_seconds_bucket{le=\"%s\"} %u\n", les[i], cum[i]);
		p = strstr(p, line);
		if (!p)
			fail_msg("missing or out of order: %s in\n%s", line, out);
	}
	assert_non_null(strstr(out, "\nd_seconds_count 4\n"));
	assert_non_null(strstr(out, "\nd_seconds_sum 1060.3001\n"));
	free(out);
	metrics_free(m);
}

static void test_misuse(void **state)
{
	static const double down[] = { 1, 0.5 };
	static const double b1[] = { 1 }, b2[] = { 2 };
	struct metrics *m = metrics_new();

	(void)state;
	log_set_level(LOG_ERROR);
	log_set_fd(-1); /* the misuse is logged; keep the test output clean */
	assert_non_null(metrics_counter(m, "x_total", "help", ""));
	assert_null(metrics_gauge(m, "x_total", "help", ""));             /* other type */
	assert_null(metrics_counter(m, "x_total", "other help", ""));      /* other help */
	assert_null(metrics_counter(m, "1x", "h", ""));                    /* bad name */
	assert_null(metrics_counter(m, "a-b", "h", ""));
	assert_null(metrics_counter(m, "", "h", ""));
	assert_null(metrics_counter(m, NULL, "h", ""));
	assert_null(metrics_counter(m, "y", "h", "kind=telemetry"));       /* unquoted */
	assert_null(metrics_counter(m, "y", "h", "kind=\"a\","));          /* trailing comma */
	assert_null(metrics_counter(m, "y", "h", "kind=\"a\"x"));
	assert_null(metrics_counter(m, "y", "h", "kind=\"a"));
	assert_null(metrics_counter(m, "y", "h", "kind=\"a\\t\""));        /* bad escape */
	assert_null(metrics_counter(m, "y", "h", "1k=\"a\""));
	assert_non_null(metrics_counter(m, "y", "h", "k=\"a\\\"b\\\\c\\n\",k2=\"\""));
	assert_null(metrics_histogram(m, "h", "h", "le=\"1\"", NULL, 0)); /* reserved */
	assert_null(metrics_histogram(m, "h", "h", "", down, 2));
	assert_non_null(metrics_histogram(m, "h", "h", "", b1, 1));
	assert_null(metrics_histogram(m, "h", "h", "a=\"b\"", b2, 1));    /* other buckets */
	assert_non_null(metrics_histogram(m, "h", "h", "a=\"b\"", b1, 1));
	assert_null(metrics_counter(NULL, "z", "h", ""));
	log_set_fd(2);
	log_set_level(LOG_INFO);
	metrics_free(m);
}

static void test_labels_escape(void **state)
{
	struct metrics *m = metrics_new();
	char buf[128], small[16];
	char *out;

	(void)state;
	assert_int_equal(metrics_labels(buf, sizeof(buf), "kind", "tele\"me\\try\nx", "result",
					"stored", NULL), 0);
	assert_string_equal(buf, "kind=\"tele\\\"me\\\\try\\nx\",result=\"stored\"");
	assert_int_equal(metrics_labels(buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "");
	assert_int_equal(metrics_labels(small, sizeof(small), "kind", "telemetry", NULL), -1);
	assert_string_equal(small, "");
	/* Exactly fitting: kind="ab" is 9 characters plus NUL. */
	assert_int_equal(metrics_labels(small, 10, "kind", "ab", NULL), 0);
	assert_int_equal(metrics_labels(small, 9, "kind", "ab", NULL), -1);

	assert_int_equal(metrics_labels(buf, sizeof(buf), "path", "a\"b", NULL), 0);
	metric_add(metrics_counter(m, "e_total", "Help with \\ and\nnewline.", buf), 1);
	out = render(m);
	assert_string_equal(out, "# HELP e_total Help with \\\\ and\\nnewline.\n"
				 "# TYPE e_total counter\n"
				 "e_total{path=\"a\\\"b\"} 1\n");
	free(out);
	metrics_free(m);
}

#define THREADS 4
#define ADDS 20000

static void *adder(void *arg)
{
	struct metric **s = arg;

	for (int i = 0; i < ADDS; i++) {
		metric_add(s[0], 1);
		metric_observe(s[1], 0.5);
	}
	return NULL;
}

/* The CAS loop loses no update under contention. */
static void test_concurrent(void **state)
{
	struct metrics *m = metrics_new();
	struct metric *s[2];
	pthread_t t[THREADS];
	char *out, want[64];

	(void)state;
	s[0] = metrics_counter(m, "n_total", "n", "");
	s[1] = metrics_histogram(m, "o", "o", "", NULL, 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, s), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_true(metric_value(s[0]) == THREADS * ADDS);
	assert_true(metric_value(s[1]) == THREADS * ADDS);
	out = render(m);
	snprintf(want, sizeof(want), "\no_sum %d\n", THREADS * ADDS / 2);
	assert_non_null(strstr(out, want));
	free(out);
	metrics_free(m);
}

static void test_split_addr(void **state)
{
	char host[64];
	unsigned short port = 0;

	(void)state;
	assert_int_equal(metrics_split_addr("127.0.0.1:9101", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9101);
	assert_int_equal(metrics_split_addr("localhost:0", host, sizeof(host), &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(metrics_split_addr("[::1]:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 65535);
	port = 7;
	static const char *const bad[] = { "", "127.0.0.1", ":9101", "h:", "h:65536", "h:-1",
					   "h:+1", "h:1x", "::1:80", "[::1]80", "[::1]:",
					   "h:000080", "off", NULL };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (metrics_split_addr(bad[i], host, sizeof(host), &port) != -1)
			fail_msg("accepted address \"%s\"", bad[i] ? bad[i] : "(null)");
	assert_int_equal(port, 7);
	assert_int_equal(metrics_split_addr("averyveryverylonghostname:1", host, 8, &port), -1);
}

/* One HTTP exchange with the listener, on the same loop. */
struct resp {
	struct event_base *base;
	int code;
	char ctype[64];
	char body[4096];
};

static void on_resp(struct evhttp_request *req, void *arg)
{
	struct resp *r = arg;

	r->code = req ? evhttp_request_get_response_code(req) : -1;
	if (req) {
		const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
						    "Content-Type");
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(in);

		snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
		if (n >= sizeof(r->body))
			n = sizeof(r->body) - 1;
		evbuffer_remove(in, r->body, n);
		r->body[n] = '\0';
	}
	event_base_loopexit(r->base, NULL);
}

static void request(struct event_base *base, int port, enum evhttp_cmd_type cmd,
		    const char *path, struct resp *r)
{
	struct evhttp_connection *conn;
	struct evhttp_request *req;

	memset(r, 0, sizeof(*r));
	r->base = base;
	conn = evhttp_connection_base_new(base, NULL, "127.0.0.1", (unsigned short)port);
	assert_non_null(conn);
	evhttp_connection_set_timeout(conn, 5);
	req = evhttp_request_new(on_resp, r);
	assert_non_null(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	assert_int_equal(evhttp_make_request(conn, req, cmd, path), 0);
	event_base_dispatch(base);
	evhttp_connection_free(conn);
}

static bool healthy;

static bool health(void *arg)
{
	(void)arg;
	return healthy;
}

static void test_http(void **state)
{
	struct event_base *base = event_base_new();
	struct metrics *m = metrics_new();
	struct metrics_http *h, *h2;
	struct resp r;
	char addr[32];
	int port;

	(void)state;
	metric_add(metrics_counter(m, "sc_test_total", "Test.", "k=\"v\""), 7);
	h = metrics_http_new(base, "127.0.0.1:0", m, health, NULL);
	assert_non_null(h);
	port = metrics_http_port(h);
	assert_true(port > 0);

	request(base, port, EVHTTP_REQ_GET, "/metrics", &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.ctype, "text/plain; version=0.0.4");
	assert_string_equal(r.body, "# HELP sc_test_total Test.\n"
				    "# TYPE sc_test_total counter\n"
				    "sc_test_total{k=\"v\"} 7\n");

	request(base, port, EVHTTP_REQ_GET, "/metrics?name=x", &r);
	assert_int_equal(r.code, 200);

	healthy = true;
	request(base, port, EVHTTP_REQ_GET, "/healthz", &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body, "ok\n");
	healthy = false;
	request(base, port, EVHTTP_REQ_GET, "/healthz", &r);
	assert_int_equal(r.code, 503);
	assert_string_equal(r.body, "unavailable\n");

	request(base, port, EVHTTP_REQ_GET, "/", &r);
	assert_int_equal(r.code, 404);
	request(base, port, EVHTTP_REQ_GET, "/metricsx", &r);
	assert_int_equal(r.code, 404);
	request(base, port, EVHTTP_REQ_POST, "/metrics", &r);
	assert_int_equal(r.code, 405);
	request(base, port, EVHTTP_REQ_DELETE, "/healthz", &r);
	assert_int_equal(r.code, 405);
	request(base, port, EVHTTP_REQ_HEAD, "/healthz", &r);
	assert_int_equal(r.code, 503);

	/* The port is taken now: a second listener fails (and says so). */
	log_set_fd(-1);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	h2 = metrics_http_new(base, addr, m, NULL, NULL);
	assert_null(h2);
	assert_null(metrics_http_new(base, "nonsense", m, NULL, NULL));
	log_set_fd(2);

	metrics_http_free(h);
	metrics_http_free(NULL);
	assert_int_equal(metrics_http_port(NULL), -1);

	/* A NULL health callback is always healthy. */
	h = metrics_http_new(base, "127.0.0.1:0", m, NULL, NULL);
	assert_non_null(h);
	request(base, metrics_http_port(h), EVHTTP_REQ_GET, "/healthz", &r);
	assert_int_equal(r.code, 200);
	metrics_http_free(h);
	metrics_free(m);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_histogram_default),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_labels_escape),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_split_addr),
		cmocka_unit_test(test_http),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

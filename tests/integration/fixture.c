/* Shared integration-test set-up (see fixture.h). */
#include "fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char fixture_country[] =
	"{\"settings\": {\"offer_timeout_s\": 120, \"max_offer_attempts\": 3, \"travel_kmh\": 60},"
	" \"provinces\": [{\"code\": \"HA\", \"name\": \"Henan\", \"lat\": 34.76, \"lon\": 113.65},"
	"                 {\"code\": \"HB\", \"name\": \"Hubei\", \"lat\": 30.59, \"lon\": 114.30}],"
	" \"customers\": [{\"id\": \"C1\", \"name\": \"Zhengzhou Grid\", \"tier\": \"vip\", \"province\": \"HA\"},"
	"                 {\"id\": \"C2\", \"name\": \"Wuhan Metro\", \"tier\": \"standard\", \"province\": \"HB\"}],"
	" \"sites\": [{\"id\": \"S1\", \"customer_id\": \"C1\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62, \"address\": \"Zhengzhou\"},"
	"             {\"id\": \"S2\", \"customer_id\": \"C2\", \"province\": \"HB\", \"lat\": 30.60, \"lon\": 114.31, \"address\": \"Wuhan\"}],"
	" \"devices\": [{\"id\": \"D1\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D2\", \"site_id\": \"S1\", \"model\": \"XJ-PR900\"},"
	"               {\"id\": \"D3\", \"site_id\": \"S2\", \"model\": \"XJ-PR900\"}],"
	" \"engineers\": [{\"id\": \"E-HA-3\", \"name\": \"Wang\", \"kind\": \"onsite\", \"province\": \"HA\", \"lat\": 34.70, \"lon\": 113.60,"
	"                  \"skills\": {\"relay_protection\": 3}, \"max_concurrent\": 2},"
	"                 {\"id\": \"E-HA-1\", \"name\": \"Zhao\", \"kind\": \"onsite\", \"province\": \"HA\", \"lat\": 34.75, \"lon\": 113.62,"
	"                  \"skills\": {\"relay_protection\": 1}, \"max_concurrent\": 2},"
	"                 {\"id\": \"E-HB-3\", \"name\": \"Chen\", \"kind\": \"onsite\", \"province\": \"HB\", \"lat\": 34.75, \"lon\": 113.62,"
	"                  \"skills\": {\"relay_protection\": 4}, \"max_concurrent\": 2}],"
	" \"alert_rules\": [{\"id\": \"R-temp\", \"model\": \"*\", \"metric\": \"temp_c\", \"op\": \">\", \"threshold\": 85,"
	"                    \"for_s\": 2, \"clear\": 80, \"severity\": \"major\", \"skill\": \"relay_protection\","
	"                    \"min_grade\": 2, \"category\": \"fault\", \"remote_ok\": false}],"
	" \"request_rules\": [{\"category\": \"fault\", \"model\": \"*\", \"skill\": \"relay_protection\", \"min_grade\": 2, \"remote_ok\": false}],"
	" \"sla_policies\": [{\"tier\": \"vip\", \"severity\": \"major\", \"respond_s\": 3600, \"arrive_s\": 14400,"
	"                     \"resolve_s\": 28800, \"calendar\": \"24x7\", \"warn_pct\": 75}]"
	"}";

int fixture_import(struct harness *h, const char *json)
{
	char path[512], out[4096];
	static int n;
	snprintf(path, sizeof(path), "%s/import-%d.json", harness_dir(h), ++n);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(json, f);
	fclose(f);
	const char *args[] = { "import", path, NULL };
	int rc = harness_run(h, "scctl", args, out, sizeof(out));
	if (rc != 0)
		fprintf(stderr, "fixture: scctl import failed (%d): %s\n", rc, out);
	return rc == 0 ? 0 : -1;
}

struct harness *fixture_start(const char *import_json)
{
	char out[4096];
	struct harness *h = harness_start();
	if (h == NULL)
		return NULL;
	const char *args[] = { "migrate", NULL };
	int rc = harness_run(h, "scctl", args, out, sizeof(out));
	if (rc != 0) {
		fprintf(stderr, "fixture: scctl migrate failed (%d): %s\n", rc, out);
		harness_stop(h);
		return NULL;
	}
	if (import_json != NULL && fixture_import(h, import_json) != 0) {
		harness_stop(h);
		return NULL;
	}
	return h;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *fixture_wait_payload(struct harness_mqtt *m, const char *topic, const char *needle,
			   int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	for (;;) {
		long long left = end - now_ms();
		if (left <= 0)
			return NULL;
		char *p = harness_mqtt_wait(m, topic, (int)left, NULL);
		if (p == NULL)
			return NULL;
		if (needle == NULL || strstr(p, needle) != NULL)
			return p;
		free(p);
	}
}

double fixture_metric(struct harness *h, pid_t pid, const char *series)
{
	int port = harness_metrics_port(h, pid);
	if (port <= 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	static char page[1 << 20];
	size_t len = 0;
	double v = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto out;
	const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
		goto out;
	ssize_t n;
	while (len < sizeof(page) - 1 && (n = read(fd, page + len, sizeof(page) - 1 - len)) > 0)
		len += (size_t)n;
	page[len] = '\0';
	size_t sl = strlen(series);
	for (char *line = page; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (strncmp(line, series, sl) == 0 && line[sl] == ' ') {
			v = strtod(line + sl + 1, NULL);
			break;
		}
		line = next != NULL ? next + 1 : NULL;
	}
out:
	close(fd);
	return v;
}

double fixture_wait_metric(struct harness *h, pid_t pid, const char *series, double want,
			   int timeout_ms)
{
	const struct timespec step = { .tv_nsec = 20 * 1000 * 1000 };
	double v = fixture_metric(h, pid, series);
	for (int waited = 0; v != want && waited < timeout_ms; waited += 20) {
		nanosleep(&step, NULL);
		v = fixture_metric(h, pid, series);
	}
	return v;
}

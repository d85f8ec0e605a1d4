/* Options, clock and signals of the benchmark programs (see benchutil.h). */
#include "benchutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t bu_stop, bu_drain;

static void usage(const char *prog, const char *summary, const struct bu_opt *opts)
{
	fprintf(stderr, "usage: %s [options]\n%s\n\noptions:\n", prog, summary);
	for (const struct bu_opt *o = opts; o->name != NULL; o++) {
		if (o->type == BU_INT)
			fprintf(stderr, "  --%-14s %s (default %lld)\n", o->name, o->help,
				*(long long *)o->ptr);
		else
			fprintf(stderr, "  --%-14s %s (default %s)\n", o->name, o->help,
				*(const char **)o->ptr ? *(const char **)o->ptr : "none");
	}
}

int bu_parse(int argc, char **argv, const char *summary, const struct bu_opt *opts)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const struct bu_opt *o = NULL;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(argv[0], summary, opts);
			return 1;
		}
		if (strncmp(arg, "--", 2) == 0)
			for (o = opts; o->name != NULL && strcmp(o->name, arg + 2) != 0; o++)
				;
		if (o == NULL || o->name == NULL || i + 1 >= argc) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], arg,
				o == NULL || o->name == NULL ? "unknown option" : "value missing");
			usage(argv[0], summary, opts);
			return -1;
		}
		const char *val = argv[++i];
		if (o->type == BU_STR) {
			*(const char **)o->ptr = val;
			continue;
		}
		char *end;
		errno = 0;
		long long v = strtoll(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0') {
			fprintf(stderr, "%s: --%s: not an integer: %s\n", argv[0], o->name, val);
			return -1;
		}
		*(long long *)o->ptr = v;
	}
	return 0;
}

int64_t bu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bu_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	if (ms > 0)
		nanosleep(&ts, NULL);
}

void bu_sleep_until_ms(int64_t t_ms)
{
	/* In steps, so a signal asking us to stop is seen within 100 ms. */
	for (int64_t now = bu_now_ms(); now < t_ms && !bu_stop; now = bu_now_ms())
		bu_sleep_ms(t_ms - now < 100 ? t_ms - now : 100);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		bu_drain = 1;
	else
		bu_stop = 1;
}

void bu_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
}

int bu_url_host_port(const char *url, char *host, size_t len)
{
	const char *h = strstr(url, "://");
	const char *colon = strrchr(url, ':');

	h = h ? h + 3 : url;
	if (colon == NULL || colon < h || (size_t)(colon - h) >= len)
		return -1;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	return atoi(colon + 1);
}

int bu_touch(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

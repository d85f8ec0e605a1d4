#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "timeutil.h"

/* Each test logs into its own temp file (O_APPEND, like a shared stderr). */
struct capture {
	char path[64];
	int fd;
};

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->path, sizeof(c->path), "/tmp/sc-test-log-XXXXXX");
	c->fd = mkstemp(c->path);
	if (c->fd < 0) {
		free(c);
		return -1;
	}
	if (fcntl(c->fd, F_SETFL, O_APPEND) < 0) {
		close(c->fd);
		unlink(c->path);
		free(c);
		return -1;
	}
	log_init("sc-test");
	log_set_level(LOG_INFO);
	log_set_fd(c->fd);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct capture *c = *state;

	log_set_fd(2);
	close(c->fd);
	unlink(c->path);
	free(c);
	return 0;
}

/* The whole captured output, NUL-terminated; caller frees. */
static char *slurp(struct capture *c, size_t *len)
{
	off_t size = lseek(c->fd, 0, SEEK_END);
	char *buf = malloc((size_t)size + 1);

	assert_non_null(buf);
	assert_int_equal(pread(c->fd, buf, (size_t)size, 0), size);
	buf[size] = '\0';
	if (len)
		*len = (size_t)size;
	return buf;
}

/* "2026-11-23T08:00:00.123Z sc-test info: " and returns the message after it. */
static const char *check_prefix(const char *line, const char *level)
{
	char ts[25], expect[64];
	int64_t us;

	memcpy(ts, line, 24);
	ts[24] = '\0';
	assert_int_equal(time_parse_rfc3339(ts, &us), 0);
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
	/* Written just now, give or take a minute. */
	assert_true(llabs((long long)(us - time_now_us())) < 60 * TIME_US_PER_S);
	snprintf(expect, sizeof(expect), " sc-test %s: ", level);
	assert_memory_equal(line + 24, expect, strlen(expect));
	return line + 24 + strlen(expect);
}

static void test_format(void **state)
{
	struct capture *c = *state;
	char *out;

	log_info("batch committed rows=%d seq=%s", 500, "17");
	out = slurp(c, NULL);
	assert_string_equal(check_prefix(out, "info"), "batch committed rows=500 seq=17\n");
	free(out);
}

static void test_levels(void **state)
{
	struct capture *c = *state;
	enum log_level l;
	char *out;

	log_set_level(LOG_WARN);
	assert_int_equal(log_get_level(), LOG_WARN);
	log_debug("hidden %d", 1);
	log_info("hidden %d", 2);
	log_warn("shown %d", 3);
	log_error("shown %d", 4);
	out = slurp(c, NULL);
	char *second = strchr(out, '\n');
	assert_non_null(second);
	assert_string_equal(check_prefix(second + 1, "error"), "shown 4\n");
	*second = '\0';
	assert_string_equal(check_prefix(out, "warn"), "shown 3");
	free(out);

	log_set_level(LOG_DEBUG);
	log_debug("now %s", "visible");
	out = slurp(c, NULL);
	assert_non_null(strstr(out, " sc-test debug: now visible\n"));
	free(out);

	log_set_level((enum log_level)9); /* ignored */
	assert_int_equal(log_get_level(), LOG_DEBUG);

	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_INFO);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("shouty", &l), -1);
	assert_int_equal(log_level_parse("INFO", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(log_level_parse(NULL, &l), -1);
	assert_string_equal(log_level_name(LOG_WARN), "warn");
}

static void test_one_line(void **state)
{
	struct capture *c = *state;
	char *out;

	/* Text from outside must not start a forged line. */
	log_warn("alarm text=%s", "CT open\n2026-01-01T00:00:00.000Z sc-test error: forged\r");
	out = slurp(c, NULL);
	assert_string_equal(check_prefix(out, "warn"),
			    "alarm text=CT open?2026-01-01T00:00:00.000Z sc-test error: forged?\n");
	free(out);
}

static void test_truncate(void **state)
{
	struct capture *c = *state;
	char *big = malloc(10000), *out;
	size_t len;

	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_info("big=%s", big);
	log_info("after");
	out = slurp(c, &len);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_int_equal(nl - out + 1, LOG_LINE_MAX);
	assert_memory_equal(nl - 3, "...", 3);
	assert_string_equal(check_prefix(nl + 1, "info"), "after\n");
	free(out);
	free(big);
}

static void test_errno_kept(void **state)
{
	(void)state;
	errno = EAGAIN;
	log_info("x");
	assert_int_equal(errno, EAGAIN);
	log_set_fd(-1); /* a failing write must not leak EBADF either */
	errno = ENOENT;
	log_error("lost");
	assert_int_equal(errno, ENOENT);
}

#define THREADS 8
#define LINES 500

static void *writer(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < LINES; i++)
		log_info("thread=%ld line=%d pad=%0300d", id, i, i);
	return NULL;
}

/* Lines from many threads arrive whole and none is lost. */
static void test_threads(void **state)
{
	struct capture *c = *state;
	pthread_t t[THREADS];
	int seen[THREADS] = { 0 };
	size_t len, lines = 0;
	char *out, *p;

	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	out = slurp(c, &len);
	for (p = out; *p; lines++) {
		char *nl = strchr(p, '\n');
		long id;
		int n, pad, used = 0;

		assert_non_null(nl);
		*nl = '\0';
		assert_int_equal(sscanf(check_prefix(p, "info"), "thread=%ld line=%d pad=%d%n", &id,
					&n, &pad, &used), 3);
		assert_int_equal(strlen(check_prefix(p, "info")), (size_t)used);
		assert_true(id >= 0 && id < THREADS);
		assert_int_equal(n, seen[id]); /* in order per thread */
		assert_int_equal(pad, n);
		seen[id]++;
		p = nl + 1;
	}
	assert_int_equal(lines, THREADS * LINES);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

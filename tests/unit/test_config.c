#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "config.h"

extern char **environ;

static char file_path[64];

/* Every test starts with no SC_* variable and no file. */
static int setup(void **state)
{
	char **e;

	(void)state;
	for (;;) {
		char name[128];

		for (e = environ; *e && strncmp(*e, "SC_", 3) != 0; e++)
			;
		if (!*e)
			break;
		size_t n = strcspn(*e, "=");
		if (n >= sizeof(name))
			return -1;
		memcpy(name, *e, n);
		name[n] = '\0';
		unsetenv(name);
	}
	file_path[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (file_path[0])
		unlink(file_path);
	return 0;
}

/* Writes text to a new temp file; returns its path. */
static const char *write_file(const char *text)
{
	int fd;

	if (file_path[0])
		unlink(file_path);
	snprintf(file_path, sizeof(file_path), "/tmp/sc-test-cfg-XXXXXX");
	fd = mkstemp(file_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return file_path;
}

/* Loads and expects failure with exactly this message (file path as %s). */
static void expect_error(const char *program, const char *file, const char *want)
{
	struct config c;
	char err[512] = "", expect[512];

	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(config_load(&c, program, file, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect), want, file ? file : "");
	assert_string_equal(err, expect);
	/* Left zeroed: nothing to free, nothing dangling. */
	assert_null(c.pg_dsn);
	assert_null(c.instance);
	config_free(&c);
}

static void load_ok(struct config *c, const char *program, const char *file)
{
	char err[512] = "";

	if (config_load(c, program, file, err, sizeof(err)) != 0)
		fail_msg("config_load failed: %s", err);
}

static void test_defaults(void **state)
{
	struct config c;
	char host[256];

	(void)state;
	load_ok(&c, "sc-ingest", NULL);
	assert_string_equal(c.pg_dsn, "postgresql:///servicecloud");
	assert_string_equal(c.mqtt_url, "tcp://127.0.0.1:1883");
	assert_null(c.mqtt_user);
	assert_null(c.mqtt_pass);
	assert_null(c.mqtt_cafile);
	assert_string_equal(c.http_addr, "127.0.0.1:8080");
	assert_string_equal(c.metrics_addr, "127.0.0.1:9101");
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(c.instance, host);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.batch_max, 1000);
	assert_int_equal(c.batch_delay_ms, 5);
	assert_int_equal(c.telemetry_retention_days, 90);
	assert_int_equal(c.sweep_ms, 2000);
	config_free(&c);
	config_free(&c); /* fields were reset: safe twice */
}

static void test_metrics_default_per_program(void **state)
{
	static const char *const prog[] = { "sc-ingest", "sc-alertd", "sc-dispatch", "sc-slamon",
					    "sc-api", "sc-sim", "scctl" };
	static const char *const addr[] = { "127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103",
					    "127.0.0.1:9104", "127.0.0.1:9105", "127.0.0.1:9106",
					    "off" };
	struct config c;

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		load_ok(&c, prog[i], NULL);
		assert_string_equal(c.metrics_addr, addr[i]);
		config_free(&c);
	}
	expect_error("sc-bogus", NULL, "unknown program sc-bogus");
}

static void test_file(void **state)
{
	struct config c;
	const char *f = write_file(
		"# site configuration\n"
		"\n"
		"   # indented comment\n"
		"; also a comment\n"
		"SC_PG_DSN=host=db1 dbname=sc\n"
		"SC_MQTT_URL = ssl://broker.example:8883  \n"
		"SC_MQTT_USER=\"svc user\"\n"
		"SC_MQTT_PASS='p#ss \"x\"'\n"
		"SC_MQTT_CAFILE=\"/etc/ssl/a \\\"b\\\" \\\\c\"\n"
		"SC_LOG_LEVEL=debug\r\n"
		"SC_INSTANCE=node-2.a_b\n"
		"SC_INGEST_BATCH_MAX=100000\n"
		"SC_INGEST_BATCH_DELAY_MS=0\n"
		"SC_METRICS_ADDR=[::1]:9999\n"
		"SC_SWEEP_MS=\n"
		"\t\n");

	(void)state;
	/* An empty SC_SWEEP_MS is not an integer. */
	expect_error("sc-ingest", f,
		     "config file %s line 15: SC_SWEEP_MS: bad value \"\" (expected an integer "
		     "from 100 to 600000)");

	f = write_file("SC_PG_DSN=host=db1 dbname=sc\n"
		       "SC_MQTT_URL = ssl://broker.example:8883  \n"
		       "SC_MQTT_USER=\"svc user\"\n"
		       "SC_MQTT_PASS='p#ss \"x\"'\n"
		       "SC_MQTT_CAFILE=\"/etc/ssl/a \\\"b\\\" \\\\c\"\n"
		       "SC_LOG_LEVEL=debug\r\n"
		       "# SC_BOGUS=1 commented out\n"
		       "SC_INSTANCE=node-2.a_b\n"
		       "SC_INGEST_BATCH_MAX=100000\n"
		       "SC_INGEST_BATCH_DELAY_MS=0\n"
		       "SC_METRICS_ADDR=[::1]:9999\n"
		       "SC_HTTP_ADDR=0.0.0.0:80");
	load_ok(&c, "sc-api", f);
	assert_string_equal(c.pg_dsn, "host=db1 dbname=sc");
	assert_string_equal(c.mqtt_url, "ssl://broker.example:8883");
	assert_string_equal(c.mqtt_user, "svc user");
	assert_string_equal(c.mqtt_pass, "p#ss \"x\"");
	assert_string_equal(c.mqtt_cafile, "/etc/ssl/a \"b\" \\c");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.instance, "node-2.a_b");
	assert_int_equal(c.batch_max, 100000);
	assert_int_equal(c.batch_delay_ms, 0);
	assert_string_equal(c.metrics_addr, "[::1]:9999");
	assert_string_equal(c.http_addr, "0.0.0.0:80"); /* last line without newline */
	config_free(&c);
}

static void test_file_errors(void **state)
{
	(void)state;
	expect_error("sc-ingest", write_file("SC_LOG_LEVEL=info\n\nSC_BOGUS=1\n"),
		     "config file %s line 3: unknown key SC_BOGUS");
	expect_error("sc-ingest", write_file("SC_LOG_LEVEL=shouty\n"),
		     "config file %s line 1: SC_LOG_LEVEL: bad value \"shouty\" (expected debug, "
		     "info, warn, error)");
	expect_error("sc-ingest", write_file("export SC_LOG_LEVEL=info\n"),
		     "config file %s line 1: unknown key export SC_LOG_LEVEL");
	expect_error("sc-ingest", write_file("# x\nSC_LOG_LEVEL\n"),
		     "config file %s line 2: expected KEY=value");
	expect_error("sc-ingest", write_file("SC_MQTT_USER=\"abc\n"),
		     "config file %s line 1: SC_MQTT_USER: bad quoting");
	expect_error("sc-ingest", write_file("SC_MQTT_USER=\"abc\" x\n"),
		     "config file %s line 1: SC_MQTT_USER: bad quoting");
	expect_error("sc-ingest", write_file("SC_LOG_LEVEL=info\nSC_LOG_LEVEL=warn\n"),
		     "config file %s line 2: SC_LOG_LEVEL: set twice (first on line 1)");
	expect_error("sc-ingest", write_file("SC_INGEST_BATCH_MAX=0\n"),
		     "config file %s line 1: SC_INGEST_BATCH_MAX: bad value \"0\" (expected an "
		     "integer from 1 to 100000)");
	expect_error("sc-ingest", write_file("SC_INGEST_BATCH_MAX=100001\n"),
		     "config file %s line 1: SC_INGEST_BATCH_MAX: bad value \"100001\" (expected "
		     "an integer from 1 to 100000)");
	expect_error("sc-ingest", write_file("SC_INGEST_BATCH_MAX=12abc\n"),
		     "config file %s line 1: SC_INGEST_BATCH_MAX: bad value \"12abc\" (expected "
		     "an integer from 1 to 100000)");
	expect_error("sc-ingest", write_file("SC_TELEMETRY_RETENTION_DAYS=99999999999999999999\n"),
		     "config file %s line 1: SC_TELEMETRY_RETENTION_DAYS: bad value "
		     "\"99999999999999999999\" (expected an integer from 1 to 36500)");
	expect_error("sc-ingest", write_file("SC_MQTT_URL=mqtt://h:1883\n"),
		     "config file %s line 1: SC_MQTT_URL: bad value \"mqtt://h:1883\" (expected "
		     "tcp://host:port or ssl://host:port)");
	expect_error("sc-ingest", write_file("SC_MQTT_URL=tcp://h\n"),
		     "config file %s line 1: SC_MQTT_URL: bad value \"tcp://h\" (expected "
		     "tcp://host:port or ssl://host:port)");
	expect_error("sc-ingest", write_file("SC_HTTP_ADDR=8080\n"),
		     "config file %s line 1: SC_HTTP_ADDR: bad value \"8080\" (expected "
		     "host:port)");
	expect_error("sc-ingest", write_file("SC_HTTP_ADDR=off\n"),
		     "config file %s line 1: SC_HTTP_ADDR: bad value \"off\" (expected "
		     "host:port)");
	expect_error("sc-ingest", write_file("SC_METRICS_ADDR=h:0\n"),
		     "config file %s line 1: SC_METRICS_ADDR: bad value \"h:0\" (expected "
		     "host:port or off)");
	expect_error("sc-ingest", write_file("SC_INSTANCE=a/b\n"),
		     "config file %s line 1: SC_INSTANCE: bad value \"a/b\" (expected 1-64 "
		     "characters of [A-Za-z0-9._-])");
	expect_error("sc-ingest", write_file("SC_INSTANCE=\n"),
		     "config file %s line 1: SC_INSTANCE: bad value \"\" (expected 1-64 "
		     "characters of [A-Za-z0-9._-])");
	expect_error("sc-ingest", "/nonexistent/sc.env",
		     "config file %s: No such file or directory");
}

static void test_env_overrides_file(void **state)
{
	struct config c;
	const char *f = write_file("SC_LOG_LEVEL=warn\nSC_PG_DSN=file-dsn\nSC_SWEEP_MS=500\n");

	(void)state;
	setenv("SC_LOG_LEVEL", "error", 1);
	setenv("SC_INSTANCE", "envhost", 1);
	load_ok(&c, "sc-dispatch", f);
	assert_int_equal(c.log_level, LOG_ERROR); /* environment wins */
	assert_string_equal(c.pg_dsn, "file-dsn"); /* file beats default */
	assert_int_equal(c.sweep_ms, 500);
	assert_string_equal(c.instance, "envhost");
	config_free(&c);

	/* The file is checked whole: a bad value the environment overrides still fails. */
	f = write_file("SC_LOG_LEVEL=shouty\n");
	expect_error("sc-dispatch", f,
		     "config file %s line 1: SC_LOG_LEVEL: bad value \"shouty\" (expected debug, "
		     "info, warn, error)");
	f = write_file("SC_OTHER=1\n");
	expect_error("sc-dispatch", f, "config file %s line 1: unknown key SC_OTHER");
}

static void test_env_errors(void **state)
{
	struct config c;

	(void)state;
	setenv("SC_LOG_LEVEL", "shouty", 1);
	expect_error("sc-ingest", NULL,
		     "SC_LOG_LEVEL: bad value \"shouty\" (expected debug, info, warn, error)");
	setenv("SC_LOG_LEVEL", "warn", 1);
	load_ok(&c, "sc-ingest", NULL);
	assert_int_equal(c.log_level, LOG_WARN);
	config_free(&c);

	setenv("SC_BOGUS", "1", 1);
	expect_error("sc-ingest", NULL, "environment: unknown key SC_BOGUS");
	unsetenv("SC_BOGUS");
	/* Not ours: other prefixes are none of our business. */
	setenv("SCX_FOO", "1", 1);
	setenv("XSC_FOO", "1", 1);
	load_ok(&c, "sc-ingest", NULL);
	config_free(&c);
	unsetenv("SCX_FOO");
	unsetenv("XSC_FOO");

	setenv("SC_SWEEP_MS", "99", 1);
	expect_error("scctl", NULL,
		     "SC_SWEEP_MS: bad value \"99\" (expected an integer from 100 to 600000)");
	setenv("SC_SWEEP_MS", "100", 1);
	load_ok(&c, "scctl", NULL); /* every program accepts every key */
	assert_int_equal(c.sweep_ms, 100);
	config_free(&c);
}

static void test_empty_values(void **state)
{
	struct config c;

	(void)state;
	setenv("SC_MQTT_USER", "", 1);
	setenv("SC_MQTT_PASS", "secret", 1);
	setenv("SC_METRICS_ADDR", "", 1);
	setenv("SC_PG_DSN", "", 1);
	load_ok(&c, "sc-alertd", write_file("SC_MQTT_USER=someone\n"));
	assert_null(c.mqtt_user);            /* empty: unset, even over the file */
	assert_string_equal(c.mqtt_pass, "secret");
	assert_string_equal(c.metrics_addr, "off");
	assert_string_equal(c.pg_dsn, "");   /* libpq defaults */
	config_free(&c);
}

/* Runs config_usage into a string. */
static char *usage(const char *program)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_usage(f, program);
	fclose(f);
	return buf;
}

static void test_usage(void **state)
{
	char *u;

	(void)state;
	u = usage("sc-ingest");
	assert_non_null(strstr(u, "SC_PG_DSN"));
	assert_non_null(strstr(u, "postgresql:///servicecloud"));
	assert_non_null(strstr(u, "SC_LOG_LEVEL"));
	assert_non_null(strstr(u, "SC_INGEST_BATCH_MAX"));
	assert_non_null(strstr(u, "1..100000, default 1000"));
	assert_non_null(strstr(u, "127.0.0.1:9101"));
	assert_null(strstr(u, "SC_HTTP_ADDR"));
	assert_null(strstr(u, "SC_SWEEP_MS"));
	free(u);

	u = usage("sc-api");
	assert_non_null(strstr(u, "SC_HTTP_ADDR"));
	assert_non_null(strstr(u, "127.0.0.1:9105"));
	assert_null(strstr(u, "SC_INGEST_BATCH_MAX"));
	free(u);

	u = usage("sc-dispatch");
	assert_non_null(strstr(u, "SC_SWEEP_MS"));
	assert_non_null(strstr(u, "SC_MQTT_URL"));
	assert_null(strstr(u, "SC_HTTP_ADDR"));
	free(u);

	u = usage("scctl");
	assert_non_null(strstr(u, "SC_PG_DSN"));
	assert_non_null(strstr(u, "SC_LOG_LEVEL"));
	assert_null(strstr(u, "SC_METRICS_ADDR"));
	assert_null(strstr(u, "SC_MQTT_URL"));
	free(u);
}

/* config_template() into a string. */
static char *template_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_template(f);
	fclose(f);
	return buf;
}

/*
 * The site template names every key of the table (as --help of an unknown
 * program lists them: no list to keep here), and uncommenting every line
 * that shows a default gives a file every program loads, at the defaults.
 */
static void test_template(void **state)
{
	char *u = usage(NULL), *t = template_text(), *line, *save = NULL;
	char want[128], *file = NULL;
	size_t nkeys = 0, len = 0;
	FILE *f;
	struct config c;
	static const char *const programs[] = {
		"sc-ingest", "sc-alertd", "sc-dispatch", "sc-slamon", "sc-api", "sc-sim", "scctl",
	};

	(void)state;
	for (line = strtok_r(u, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[64];

		if (sscanf(line, "  %63[A-Z0-9_]", key) != 1 || strncmp(key, "SC_", 3) != 0)
			continue;
		snprintf(want, sizeof(want), "\n# %s: ", key);
		if (strstr(t, want) == NULL)
			fail_msg("template lacks %s", key);
		nkeys++;
	}
	assert_true(nkeys >= 9); /* the contract's keys at least */
	assert_non_null(strstr(t, "\n#SC_INGEST_BATCH_MAX=1000\n"));
	assert_non_null(strstr(t, "#   sc-ingest    127.0.0.1:9101\n"));

	/* Every "#SC_KEY=default" line uncommented. */
	f = open_memstream(&file, &len);
	assert_non_null(f);
	save = NULL;
	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(f, "%s\n", strncmp(line, "#SC_", 4) == 0 ? line + 1 : line);
	fclose(f);
	write_file(file);
	for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
		load_ok(&c, programs[i], file_path);
		assert_string_equal(c.pg_dsn, "postgresql:///servicecloud");
		assert_int_equal(c.batch_max, 1000);
		assert_null(c.mqtt_user);
		config_free(&c);
	}
	free(file);
	free(t);
	free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_default_per_program, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_template, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

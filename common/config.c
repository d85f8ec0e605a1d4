/*
 * Configuration: one table drives the defaults, the --config file, the
 * environment and --help, so a key cannot be documented but not read, or
 * read but not validated.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain.h"
#include "metrics.h"

extern char **environ;

/* Programs, as bits of config_key.programs. */
enum {
	P_INGEST = 1 << 0,
	P_ALERTD = 1 << 1,
	P_DISPATCH = 1 << 2,
	P_SLAMON = 1 << 3,
	P_API = 1 << 4,
	P_CTL = 1 << 5,
	P_SIM = 1 << 6,
	P_ALL = (1 << 7) - 1,
	P_SERVICES = P_ALL & ~P_CTL, /* the long-running ones (and sc-sim) */
};

static const struct program {
	const char *name;
	unsigned bit;
	const char *metrics_addr; /* default SC_METRICS_ADDR */
} programs[] = {
	{ "sc-ingest", P_INGEST, "127.0.0.1:9101" },
	{ "sc-alertd", P_ALERTD, "127.0.0.1:9102" },
	{ "sc-dispatch", P_DISPATCH, "127.0.0.1:9103" },
	{ "sc-slamon", P_SLAMON, "127.0.0.1:9104" },
	{ "sc-api", P_API, "127.0.0.1:9105" },
	{ "sc-sim", P_SIM, "127.0.0.1:9106" },
	{ "scctl", P_CTL, "off" },
};

enum key_type {
	KEY_STRING,    /* any text; with a NULL default, empty means unset (NULL) */
	KEY_INT,       /* decimal integer in [min, max] */
	KEY_LOG_LEVEL, /* debug, info, warn, error */
	KEY_ADDR,      /* host:port, port 1..65535 */
	KEY_LISTEN,    /* host:port, or "off" / "" to disable */
	KEY_URL,       /* tcp://host:port or ssl://host:port */
	KEY_INSTANCE,  /* identifier rule of contract section 2 */
};

/* Sentinel defaults resolved at load time. */
#define DEF_PER_PROGRAM "\001program"
#define DEF_HOSTNAME "\001hostname"

static const struct config_key {
	const char *name;
	enum key_type type;
	size_t offset;    /* of the field in struct config */
	const char *def;  /* NULL: unset */
	const char *help;
	unsigned programs; /* who lists it in --help (every program accepts every key) */
	long min, max;    /* KEY_INT only */
} keys[] = {
	{ "SC_PG_DSN", KEY_STRING, offsetof(struct config, pg_dsn), "postgresql:///servicecloud",
	  "libpq connection string", P_ALL, 0, 0 },
	{ "SC_MQTT_URL", KEY_URL, offsetof(struct config, mqtt_url), "tcp://127.0.0.1:1883",
	  "MQTT broker, tcp://host:port or ssl://host:port", P_SERVICES, 0, 0 },
	{ "SC_MQTT_USER", KEY_STRING, offsetof(struct config, mqtt_user), NULL,
	  "MQTT user name", P_SERVICES, 0, 0 },
	{ "SC_MQTT_PASS", KEY_STRING, offsetof(struct config, mqtt_pass), NULL,
	  "MQTT password", P_SERVICES, 0, 0 },
	{ "SC_MQTT_CAFILE", KEY_STRING, offsetof(struct config, mqtt_cafile), NULL,
	  "CA bundle (PEM) for ssl://, unset = system store", P_SERVICES, 0, 0 },
	{ "SC_HTTP_ADDR", KEY_ADDR, offsetof(struct config, http_addr), "127.0.0.1:8080",
	  "HTTP API listen address, host:port", P_API | P_SIM, 0, 0 },
	{ "SC_METRICS_ADDR", KEY_LISTEN, offsetof(struct config, metrics_addr), DEF_PER_PROGRAM,
	  "/metrics and /healthz listen address, host:port or off", P_SERVICES, 0, 0 },
	{ "SC_INSTANCE", KEY_INSTANCE, offsetof(struct config, instance), DEF_HOSTNAME,
	  "instance name; MQTT client id is {program}-{instance}", P_SERVICES, 0, 0 },
	{ "SC_LOG_LEVEL", KEY_LOG_LEVEL, offsetof(struct config, log_level), "info",
	  "debug, info, warn or error", P_ALL, 0, 0 },
	{ "SC_INGEST_BATCH_MAX", KEY_INT, offsetof(struct config, batch_max), "1000",
	  "rows per ingest transaction", P_INGEST, 1, 100000 },
	{ "SC_INGEST_BATCH_DELAY_MS", KEY_INT, offsetof(struct config, batch_delay_ms), "5",
	  "longest wait to fill an ingest batch, ms", P_INGEST, 0, 10000 },
	{ "SC_INGEST_STATE_MS", KEY_INT, offsetof(struct config, state_ms), "1000",
	  "longest wait before a device's latest state (device_state) follows its committed "
	  "telemetry, ms", P_INGEST, 10, 60000 },
	{ "SC_INGEST_PIPELINE", KEY_INT, offsetof(struct config, pipeline), "2",
	  "ingest batches in flight at once, each on its own database connection", P_INGEST, 1, 8 },
	{ "SC_TELEMETRY_RETENTION_DAYS", KEY_INT, offsetof(struct config, telemetry_retention_days),
	  "90", "days of telemetry kept", P_INGEST | P_CTL, 1, 36500 },
	{ "SC_SWEEP_MS", KEY_INT, offsetof(struct config, sweep_ms), "2000",
	  "safety-net poll of the database, ms", P_ALERTD | P_DISPATCH | P_SLAMON, 100, 600000 },
	{ "SC_LIFECYCLE_LEAD_DAYS", KEY_INT, offsetof(struct config, lifecycle_lead_days), "30",
	  "maintenance (calendar) and design-life tickets open this many days before the limit",
	  P_ALERTD, 0, 3650 },
	{ "SC_LIFECYCLE_LEAD_HOURS", KEY_INT, offsetof(struct config, lifecycle_lead_hours), "200",
	  "run-hours maintenance tickets open this many run hours before the interval",
	  P_ALERTD, 0, 1000000 },
	{ "SC_ALERT_FLAP_CYCLES", KEY_INT, offsetof(struct config, alert_flap_cycles), "5",
	  "an alert firing and clearing more often than this within the window is held as one"
	  " flapping alert (0: never)", P_ALERTD, 0, 10000 },
	{ "SC_ALERT_FLAP_WINDOW_S", KEY_INT, offsetof(struct config, alert_flap_window_s), "600",
	  "window of SC_ALERT_FLAP_CYCLES and quiet time that ends flapping, s (device time)",
	  P_ALERTD, 1, 604800 },
	{ "SC_ALERTD_PARTITIONS", KEY_INT, offsetof(struct config, alertd_partitions), "8",
	  "device partitions the sc-alertd instances share (the same for every instance)",
	  P_ALERTD, 1, 64 },
	{ "SC_API_DB_CONNECTIONS", KEY_INT, offsetof(struct config, api_db_connections), "4",
	  "sc-api database connections; each request goes to the least busy one", P_API, 1, 64 },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct program *find_program(const char *name)
{
	for (size_t i = 0; name && i < sizeof(programs) / sizeof(programs[0]); i++)
		if (strcmp(programs[i].name, name) == 0)
			return &programs[i];
	return NULL;
}

static const struct config_key *find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

/* host:port with port 1..65535 (port 0 only makes sense in tests). */
static bool addr_valid(const char *v)
{
	char host[256];
	unsigned short port;

	return metrics_split_addr(v, host, sizeof(host), &port) == 0 && port > 0;
}

static const char *expected(const struct config_key *k, char *buf, size_t len)
{
	switch (k->type) {
	case KEY_INT:
		snprintf(buf, len, "an integer from %ld to %ld", k->min, k->max);
		return buf;
	case KEY_LOG_LEVEL:
		return "debug, info, warn, error";
	case KEY_ADDR:
		return "host:port";
	case KEY_LISTEN:
		return "host:port or off";
	case KEY_URL:
		return "tcp://host:port or ssl://host:port";
	case KEY_INSTANCE:
		return "1-64 characters of [A-Za-z0-9._-]";
	case KEY_STRING:
		break;
	}
	return "text";
}

/*
 * Validates value for k and stores it in c (replacing what was there).
 * Returns 0, or -1 with err = "KEY: bad value ..." after prefix.
 */
static int set_value(struct config *c, const struct config_key *k, const char *value,
		     const char *prefix, char *err, size_t errlen)
{
	char *field = (char *)c + k->offset;
	char buf[64];
	char *copy = NULL;

	switch (k->type) {
	case KEY_INT: {
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0' || v < k->min || v > k->max)
			goto bad;
		*(int *)(void *)field = (int)v;
		return 0;
	}
	case KEY_LOG_LEVEL: {
		enum log_level l;

		if (log_level_parse(value, &l) < 0)
			goto bad;
		*(enum log_level *)(void *)field = l;
		return 0;
	}
	case KEY_ADDR:
		if (!addr_valid(value))
			goto bad;
		break;
	case KEY_LISTEN:
		/* "" disables too, so an env file can say SC_METRICS_ADDR= */
		if (value[0] == '\0')
			value = "off";
		if (strcmp(value, "off") != 0 && !addr_valid(value))
			goto bad;
		break;
	case KEY_URL:
		if ((strncmp(value, "tcp://", 6) != 0 && strncmp(value, "ssl://", 6) != 0) ||
		    !addr_valid(value + 6))
			goto bad;
		break;
	case KEY_INSTANCE:
		if (!domain_id_valid(value))
			goto bad;
		break;
	case KEY_STRING:
		break;
	}
	/* Only strings are left. An optional string left empty is unset. */
	if (!(k->type == KEY_STRING && k->def == NULL && value[0] == '\0')) {
		copy = strdup(value);
		if (!copy) {
			snprintf(err, errlen, "%s%s: out of memory", prefix, k->name);
			return -1;
		}
	}
	free(*(char **)(void *)field);
	*(char **)(void *)field = copy;
	return 0;
bad:
	snprintf(err, errlen, "%s%s: bad value \"%.64s\" (expected %s)", prefix, k->name, value,
		 expected(k, buf, sizeof(buf)));
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

/*
 * Removes one level of quotes in place, as systemd does for an
 * EnvironmentFile: '...' is literal, "..." knows \" \\ \$ \`. Returns the
 * value, or NULL when a quote is not closed or text follows it.
 */
static char *unquote(char *v)
{
	char q = v[0], *r, *w;

	if (q != '"' && q != '\'')
		return v;
	for (r = v + 1, w = v; *r && *r != q; r++) {
		if (q == '"' && *r == '\\' && r[1] && strchr("\"\\$`", r[1]))
			r++;
		*w++ = *r;
	}
	if (*r != q || r[1] != '\0')
		return NULL;
	*w = '\0';
	return v;
}

/* Reads and checks the whole file into c. */
static int load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = NULL;
	char *line = NULL, prefix[320];
	size_t cap = 0;
	unsigned lineno = 0;
	unsigned seen[NKEYS] = { 0 }; /* line where each key was set */
	int rc = -1;

	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
		goto out;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *s = trim(line), *eq, *key, *val;
		const struct config_key *k;

		lineno++;
		snprintf(prefix, sizeof(prefix), "config file %s line %u: ", path, lineno);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%sexpected KEY=value", prefix);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		k = find_key(key, strlen(key));
		if (!k) {
			snprintf(err, errlen, "%sunknown key %.64s", prefix, key);
			goto out;
		}
		if (seen[k - keys]) {
			snprintf(err, errlen, "%s%s: set twice (first on line %u)", prefix, k->name,
				 seen[k - keys]);
			goto out;
		}
		seen[k - keys] = lineno;
		val = unquote(trim(eq + 1));
		if (!val) {
			snprintf(err, errlen, "%s%s: bad quoting", prefix, k->name);
			goto out;
		}
		if (set_value(c, k, val, prefix, err, errlen) < 0)
			goto out;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "config file %s: read error", path);
		goto out;
	}
	rc = 0;
out:
	free(line);
	if (f)
		fclose(f);
	return rc;
}

/* Every SC_* variable must be a key of the table. */
static int load_env(struct config *c, char *err, size_t errlen)
{
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		const struct config_key *k;

		if (strncmp(*e, "SC_", 3) != 0 || !eq)
			continue;
		k = find_key(*e, (size_t)(eq - *e));
		if (!k) {
			snprintf(err, errlen, "environment: unknown key %.*s", (int)(eq - *e), *e);
			return -1;
		}
		if (set_value(c, k, eq + 1, "", err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int default_instance(struct config *c, char *err, size_t errlen)
{
	char host[HOST_NAME_MAX + 1];

	if (gethostname(host, sizeof(host)) < 0) {
		snprintf(err, errlen, "SC_INSTANCE: unset and the host name is unknown: %s",
			 strerror(errno));
		return -1;
	}
	host[sizeof(host) - 1] = '\0';
	if (!domain_id_valid(host)) {
		snprintf(err, errlen,
			 "SC_INSTANCE: unset, and the host name \"%.64s\" is not 1-64 characters "
			 "of [A-Za-z0-9._-]; set SC_INSTANCE",
			 host);
		return -1;
	}
	c->instance = strdup(host);
	if (!c->instance) {
		snprintf(err, errlen, "SC_INSTANCE: out of memory");
		return -1;
	}
	return 0;
}

int config_load(struct config *out, const char *program, const char *file, char *err,
		size_t errlen)
{
	const struct program *p = find_program(program);
	struct config c = { 0 };

	if (!p) {
		snprintf(err, errlen, "unknown program %s", program ? program : "(null)");
		goto fail;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const char *def = keys[i].def;

		if (def == NULL || strcmp(def, DEF_HOSTNAME) == 0)
			continue;
		if (strcmp(def, DEF_PER_PROGRAM) == 0)
			def = p->metrics_addr;
		if (set_value(&c, &keys[i], def, "default ", err, errlen) < 0)
			goto fail;
	}
	/* The file is checked whole before the environment, keys it overrides included. */
	if (file && load_file(&c, file, err, errlen) < 0)
		goto fail;
	if (load_env(&c, err, errlen) < 0)
		goto fail;
	/* Only now: a host name that breaks the rule is fine if SC_INSTANCE is set. */
	if (!c.instance && default_instance(&c, err, errlen) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	config_free(&c);
	memset(out, 0, sizeof(*out));
	return -1;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type == KEY_INT || keys[i].type == KEY_LOG_LEVEL)
			continue;
		char **field = (char **)(void *)((char *)cfg + keys[i].offset);

		free(*field);
		*field = NULL;
	}
}

void config_usage(FILE *out, const char *program)
{
	const struct program *p = find_program(program);
	unsigned bit = p ? p->bit : P_ALL;

	fprintf(out, "Configuration: environment variables, or KEY=value lines in --config FILE\n"
		     "(the environment wins):\n");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &keys[i];
		const char *def = k->def;

		if (!(k->programs & bit))
			continue;
		if (def && strcmp(def, DEF_PER_PROGRAM) == 0)
			def = p ? p->metrics_addr : "per program";
		else if (def && strcmp(def, DEF_HOSTNAME) == 0)
			def = "host name";
		if (k->type == KEY_INT)
			fprintf(out, "  %-28s %s (%ld..%ld, default %s)\n", k->name, k->help, k->min,
				k->max, def);
		else
			fprintf(out, "  %-28s %s (default %s)\n", k->name, k->help,
				def ? def : "unset");
	}
	fprintf(out, "The keys of the other Service Cloud programs are accepted too.\n");
}

/* "sc-ingest, scctl" or "every program" for a key's program bits. */
static void print_programs(FILE *out, unsigned bits)
{
	const char *sep = "";

	if ((bits & P_ALL) == P_ALL) {
		fputs("every program", out);
		return;
	}
	for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
		if (bits & programs[i].bit) {
			fprintf(out, "%s%s", sep, programs[i].name);
			sep = ", ";
		}
	}
}

void config_template(FILE *out)
{
	char buf[64];

	fprintf(out,
		"# Service Cloud %s: configuration of one site, /etc/service-cloud/SITE.env\n"
		"#\n"
		"# Generated by `scctl config-template` from the configuration table of the\n"
		"# programs (common/config.c), so it lists every key there is. Every service of\n"
		"# the site reads this file (systemd units sc-*@SITE.service); a key that only\n"
		"# one of them may have differently goes in SITE.d/PROGRAM.env instead, which is\n"
		"# read after this one. Lines are KEY=value as in a systemd EnvironmentFile,\n"
		"# '#' starts a comment. Each key is shown commented out with its default:\n"
		"# uncomment a line to change it. An unknown SC_* key stops the programs with\n"
		"# a message naming it. Keep the file private (chmod 600): it holds passwords.\n",
		SC_VERSION);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &keys[i];

		fprintf(out, "\n# %s: %s\n# used by: ", k->name, k->help);
		print_programs(out, k->programs);
		fprintf(out, "\n# value: %s\n", expected(k, buf, sizeof(buf)));
		if (k->def != NULL && strcmp(k->def, DEF_PER_PROGRAM) == 0) {
			/* One value for the whole site would clash: list them all. */
			fputs("# default differs per program, so set it in SITE.d/PROGRAM.env, not here:\n",
			      out);
			for (size_t j = 0; j < sizeof(programs) / sizeof(programs[0]); j++)
				fprintf(out, "#   %-12s %s\n", programs[j].name, programs[j].metrics_addr);
		} else if (k->def != NULL && strcmp(k->def, DEF_HOSTNAME) == 0) {
			fputs("# default: the host name\n", out);
		} else {
			fprintf(out, "#%s=%s\n", k->name, k->def != NULL ? k->def : "");
		}
	}
}

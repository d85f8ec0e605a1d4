#ifndef SC_COMMON_CONFIG_H
#define SC_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/*
 * Configuration of every program (contract section 1).
 *
 * One table in config.c lists every key of the whole suite with its type,
 * default, help text and the programs that use it. Every program accepts
 * every key of the table (so one environment file per site serves all
 * services, see deploy/); --help lists the keys the program uses.
 *
 * Sources, later wins: built-in default < --config FILE < environment.
 * The file is "KEY=value" lines as in a systemd EnvironmentFile: blank
 * lines and '#' comments are skipped, the value may be wrapped in single or
 * double quotes ("..." knows \" \\ \$ \`). A key set twice in the file is
 * an error. The file is checked whole, keys the environment overrides
 * included. An unknown key (in the file, or an SC_* variable in the
 * environment) or a bad value is an error naming the key:
 *   SC_LOG_LEVEL: bad value "shouty" (expected debug, info, warn, error)
 *   config file site.env line 3: unknown key SC_BOGUS
 * An empty value of a key whose default is "unset" (SC_MQTT_USER, ...)
 * means unset; an empty SC_METRICS_ADDR means "off".
 */

struct config {
	char *pg_dsn;          /* SC_PG_DSN: libpq connection string */
	char *mqtt_url;        /* SC_MQTT_URL: tcp://host:port or ssl://host:port */
	char *mqtt_user;       /* SC_MQTT_USER: NULL when unset */
	char *mqtt_pass;       /* SC_MQTT_PASS: NULL when unset */
	char *mqtt_cafile;     /* SC_MQTT_CAFILE: CA bundle for ssl://, NULL = system */
	char *http_addr;       /* SC_HTTP_ADDR: sc-api listen host:port */
	char *metrics_addr;    /* SC_METRICS_ADDR: host:port, or "off" (also given as "") */
	char *instance;        /* SC_INSTANCE: default hostname */
	enum log_level log_level; /* SC_LOG_LEVEL */
	/* Tunables. */
	int batch_max;         /* SC_INGEST_BATCH_MAX: rows per ingest transaction */
	int batch_delay_ms;    /* SC_INGEST_BATCH_DELAY_MS: max wait to fill a batch */
	int state_ms;          /* SC_INGEST_STATE_MS: device_state write period */
	int pipeline;          /* SC_INGEST_PIPELINE: batches in flight at once */
	int telemetry_retention_days; /* SC_TELEMETRY_RETENTION_DAYS */
	int sweep_ms;          /* SC_SWEEP_MS: safety-net poll of the database */
	int lifecycle_lead_days;  /* SC_LIFECYCLE_LEAD_DAYS: calendar and design-life lead */
	int lifecycle_lead_hours; /* SC_LIFECYCLE_LEAD_HOURS: run-hours lead */
	int alert_flap_cycles;    /* SC_ALERT_FLAP_CYCLES: fire/clear cycles before folding, 0 off */
	int alert_flap_window_s;  /* SC_ALERT_FLAP_WINDOW_S: window the cycles are counted in */
	int alertd_partitions;    /* SC_ALERTD_PARTITIONS: device partitions shared by sc-alertd instances */
	int api_db_connections;   /* SC_API_DB_CONNECTIONS: sc-api's database connections */
};

/*
 * Fills *out for `program` (one of sc-ingest, sc-alertd, sc-dispatch,
 * sc-slamon, sc-api, sc-sim, scctl; another name is an error) from
 * defaults, the file (NULL: none) and the environment. Returns 0, or -1
 * with a one-line reason naming the key in err. On failure *out is zeroed
 * (nothing to free).
 */
int config_load(struct config *out, const char *program, const char *file,
		char *err, size_t errlen) __attribute__((warn_unused_result));

/* Frees the strings of cfg (not cfg itself); safe on a zeroed struct. */
void config_free(struct config *cfg);

/*
 * Prints the keys `program` uses with their defaults and help, for --help
 * (every key for an unknown program).
 */
void config_usage(FILE *out, const char *program);

/*
 * Writes a commented environment file for one site listing every key of the
 * table with its help, the programs that use it, the values it takes and its
 * default (scctl config-template; the packages install it as
 * /etc/service-cloud/site.env.example). Uncommenting a line that shows a
 * default gives a valid file.
 */
void config_template(FILE *out);

#endif

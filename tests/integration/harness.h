#ifndef SC_TESTS_INTEGRATION_HARNESS_H
#define SC_TESTS_INTEGRATION_HARNESS_H

/*
 * Integration-test harness: a private PostgreSQL 15 and mosquitto in a short
 * temp dir on free 127.0.0.1 ports, the real programs of build/bin started
 * against them, and synchronous SQL and MQTT helpers to drive and observe.
 *
 * Every process the harness starts is stopped by PID: by harness_stop(), at
 * exit, on SIGINT/SIGTERM/SIGABRT/SIGSEGV/SIGBUS and on a sanitizer's fatal
 * report in the test itself. As a last resort each child gets a parent-death
 * signal (prctl PR_SET_PDEATHSIG), so even a test killed with SIGKILL (a ctest
 * timeout) leaves nothing behind. That signal fires when the *thread* that
 * started the child exits: call the start/spawn/restart functions from the
 * test's main thread.
 *
 * Run as root (CI), PostgreSQL runs as user postgres and mosquitto as user
 * mosquitto; run as anybody else, both run as that user.
 *
 * The harness is not thread-safe, except struct harness_mqtt whose receive
 * side is filled by Paho's thread. Failures print one line to stderr saying
 * what failed and why; functions return NULL, -1 or false.
 *
 * Environment: SCTEST_KEEP_DIR (any value) keeps the temp dir (logs,
 * data) after harness_stop() for a post-mortem.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

struct harness;
struct harness_mqtt;

/* ---- lifecycle -------------------------------------------------------- */

/* Creates the temp dir (/tmp/scXXXXXX), initdb + starts PostgreSQL with
 * database `servicecloud`, starts mosquitto with deploy/mosquitto.conf.in's
 * settings, and waits until both accept connections. Returns NULL (after
 * cleaning up what it started) on failure. Release with harness_stop(). */
struct harness *harness_start(void) __attribute__((warn_unused_result));

/* Stops every program still running (SIGTERM, then SIGKILL after 10 s),
 * mosquitto and PostgreSQL, closes the harness's connections, removes the
 * temp dir unless SCTEST_KEEP_DIR is set, frees h. harness_stop(NULL) does
 * nothing. */
void harness_stop(struct harness *h);

/* libpq keyword DSN of the test database over TCP 127.0.0.1, as user
 * postgres (trust). Owned by h. */
const char *harness_dsn(const struct harness *h);

/* "tcp://127.0.0.1:PORT" of the test broker. Owned by h. */
const char *harness_mqtt_url(const struct harness *h);

/* The temp dir (logs: <dir>/<program>-<n>.log, postgres.log,
 * mqtt/mosquitto.log). Owned by h. */
const char *harness_dir(const struct harness *h);

/* ---- programs under test ---------------------------------------------- */

/* Starts SC_BIN_DIR/<program> (build/bin) with args (NULL-terminated, not
 * counting argv[0]; NULL for none) and the environment of the test plus
 * SC_PG_DSN, SC_MQTT_URL, SC_INSTANCE=test, SC_METRICS_ADDR=127.0.0.1:<free
 * port>, SC_LOG_LEVEL=debug, then extra_env ("KEY=value", NULL-terminated,
 * may be NULL; overrides the ones before). stdout and stderr go to
 * <dir>/<program>-<n>.log. Returns the PID (kept by h), or -1. */
pid_t harness_spawn(struct harness *h, const char *program,
                    const char *const *extra_env, const char *const *args)
    __attribute__((warn_unused_result));

/* The SC_METRICS_ADDR port given to a program spawned by harness_spawn(),
 * or -1 if pid is not one of them. */
int harness_metrics_port(const struct harness *h, pid_t pid);

/* Sends sig (SIGTERM usually) to a program started by harness_spawn(), waits
 * up to 10 s, then SIGKILLs it. Returns its exit status (0-255) if it exited,
 * 128 + signal number if a signal ended it, -1 if pid is not a running
 * program of h. */
int harness_stop_program(struct harness *h, pid_t pid, int sig);

/* kill -9 a program started by harness_spawn() and reap it. Returns 0 or -1. */
int harness_kill9(struct harness *h, pid_t pid);

/* Runs SC_BIN_DIR/<program> with args (as harness_spawn(), NULL-terminated)
 * to completion, killing it after 120 s. Its stdout and stderr together are
 * copied into out (NUL-terminated, truncated to out_len - 1; out may be NULL)
 * and into <dir>/<program>-<n>.log. Returns the exit status as
 * harness_stop_program() does, or -1 if it could not be run. */
int harness_run(struct harness *h, const char *program,
                const char *const *args, char *out, size_t out_len);

/* Scans every program log for sanitizer reports ("ERROR: AddressSanitizer",
 * "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer"),
 * prints each offending line, and returns how many there are. */
int harness_check_logs(struct harness *h);

/* ---- servers ---------------------------------------------------------- */

/* Stops mosquitto (SIGTERM: it saves its persistence file) and starts it
 * again on the same port and data, waiting until it accepts. 0 or -1. */
int harness_restart_broker(struct harness *h) __attribute__((warn_unused_result));

/* Stops PostgreSQL (fast shutdown) and starts it again on the same port and
 * data, waiting until it accepts. The harness's own connection is closed and
 * reopened on next use. 0 or -1. */
int harness_restart_pg(struct harness *h) __attribute__((warn_unused_result));

/*
 * Restarts the test broker with the configuration template template_path
 * (e.g. deploy/mosquitto-prod.conf.in) instead of deploy/mosquitto.conf.in.
 * The harness fills @PORT@ (its port: harness_mqtt_url()), @ADDR@
 * (127.0.0.1), @DATA_DIR@, @PID_FILE@, @LOG_FILE@; subst adds more
 * ("@KEY@=value", NULL-terminated, may be NULL). With cafile (the CA that
 * signed the broker's certificate; NULL: plain TCP) harness_mqtt_url()
 * becomes ssl://127.0.0.1:PORT, programs spawned afterwards get
 * SC_MQTT_CAFILE=cafile, and the harness's MQTT clients verify the broker
 * against it. Files the broker reads must be readable by user mosquitto
 * (when the test runs as root). harness_restart_broker() keeps this
 * configuration. 0 or -1.
 */
int harness_broker_config(struct harness *h, const char *template_path,
                          const char *const *subst, const char *cafile)
    __attribute__((warn_unused_result));

/*
 * Makes a throwaway PKI in dir (created if missing, files mode 0644 so user
 * mosquitto reads them): ca.crt/ca.key, a CA; srv.crt/srv.key, a server
 * certificate of that CA for IP 127.0.0.1 and DNS localhost; other.crt, a
 * CA that signed nothing of this server's. Uses the openssl command. 0 or -1.
 */
int harness_make_certs(struct harness *h, const char *dir)
    __attribute__((warn_unused_result));

/* A free TCP port on 127.0.0.1, or -1. The port is found by binding port 0;
 * if hold is not NULL the bound socket is left open in *hold (the caller
 * closes it), so that further calls cannot return the same port. */
int harness_free_port(int *hold);

/* True when something accepts TCP connections on 127.0.0.1:port. */
bool harness_port_accepts(int port);

/* ---- SQL (libpq, synchronous) ------------------------------------------ */

/* The harness's connection to the test database, (re)connected on demand;
 * owned by h. NULL if it cannot connect. */
PGconn *harness_pg(struct harness *h);

/* First column of the first row of sql as a long; -1 on error, no row or
 * NULL. */
long harness_sql_long(struct harness *h, const char *sql);

/* Runs sql (several statements allowed). 0 or -1. */
int harness_sql_exec(struct harness *h, const char *sql);

/* Polls harness_sql_long(sql) every 50 ms until it returns expected (true) or
 * timeout_ms has passed (false, printing the last value). */
bool harness_wait_sql(struct harness *h, const char *sql, long expected,
                      int timeout_ms);

/* ---- MQTT (Paho MQTTClient, synchronous) -------------------------------- */

/* Connects a clean-session MQTT 3.1.1 client to the test broker. Messages of
 * its subscriptions are buffered until harness_mqtt_wait() takes them.
 * NULL on failure. Release with harness_mqtt_free(). */
struct harness_mqtt *harness_mqtt_connect(struct harness *h,
                                          const char *client_id)
    __attribute__((warn_unused_result));

/* How harness_mqtt_connect_opts() connects. */
struct harness_mqtt_opts {
    const char *client_id;      /* required */
    const char *user;           /* NULL: none */
    const char *pass;           /* NULL: none */
    int port;                   /* 0: the harness broker's port */
    bool quiet;                 /* do not log a refused connect (expected) */
};

/* As harness_mqtt_connect() with a user name and password, or to another
 * listener of the broker (over TLS when harness_broker_config() gave a CA).
 * NULL if the broker refuses. */
struct harness_mqtt *harness_mqtt_connect_opts(struct harness *h,
                                               const struct harness_mqtt_opts *o)
    __attribute__((warn_unused_result));

/* Publishes a NUL-terminated payload and, for QoS 1/2, waits for completion.
 * 0 or -1. */
int harness_mqtt_publish(struct harness_mqtt *m, const char *topic,
                         const char *payload, int qos);

/* As harness_mqtt_publish() with a payload of len bytes (may hold NULs),
 * and retained if retain is true. */
int harness_mqtt_publish_raw(struct harness_mqtt *m, const char *topic,
                             const void *payload, size_t len, int qos,
                             bool retain);

/* Subscribes to filter at QoS 1 and waits for the SUBACK. 0 or -1. */
int harness_mqtt_subscribe(struct harness_mqtt *m, const char *filter);

/* Takes the oldest buffered message whose topic contains topic_substring
 * (NULL or "" matches any), waiting up to timeout_ms for one to arrive.
 * Returns its payload, NUL-terminated, which the caller frees; if topic_out
 * is not NULL it receives the topic (caller frees). NULL on timeout. Messages
 * on other topics stay buffered. */
char *harness_mqtt_wait(struct harness_mqtt *m, const char *topic_substring,
                        int timeout_ms, char **topic_out);

/* Number of messages buffered and not yet taken. */
size_t harness_mqtt_pending(struct harness_mqtt *m);

/* Disconnects and frees m. harness_mqtt_free(NULL) does nothing. */
void harness_mqtt_free(struct harness_mqtt *m);

#endif /* SC_TESTS_INTEGRATION_HARNESS_H */

#ifndef SC_TESTS_INTEGRATION_HARNESS_INTERNAL_H
#define SC_TESTS_INTEGRATION_HARNESS_INTERNAL_H

/*
 * Shared between the harness's own files (harness.c: temp dir, servers,
 * cleanup; harness_proc.c: child processes and programs under test;
 * harness_pg.c; harness_mqtt.c). Not for tests: they use harness.h.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "harness.h"

/* Programs one harness can start over its life (harness_spawn() and
 * harness_run() together). A fixed array, not a growing one: the signal
 * handler walks it, and must never see it half-moved by realloc(). */
#define HARNESS_MAX_PROGRAMS 1024

/* One program started by harness_spawn() or harness_run(). Records stay after
 * the program ends so harness_check_logs() still finds its log. */
struct harness_program {
    volatile pid_t pid;     /* running child, 0 once reaped (signal handler reads it) */
    char name[64];          /* program name, e.g. "sc-ingest" */
    char log[128];          /* <dir>/<name>-<n>.log */
    int metrics_port;       /* port given in SC_METRICS_ADDR */
};

/* Credentials a server child switches to before exec (when we are root).
 * Supplementary groups become just gid: the servers need no others. */
struct harness_cred {
    bool drop;              /* false: keep ours (we are not root) */
    uid_t uid;
    gid_t gid;
};

struct harness {
    char dir[32];           /* /tmp/scXXXXXX, short for Unix socket paths */
    char pg_data[64];       /* <dir>/pg: the cluster */
    char pg_sock[64];       /* <dir>/sock: PostgreSQL's Unix socket dir */
    char mqtt_conf[64];     /* <dir>/mosquitto.conf */
    int pg_port;
    int mqtt_port;
    /* Read by the signal handler, hence volatile: the children we own. */
    volatile pid_t pg_pid;  /* postmaster, our direct child; 0 if not running */
    volatile pid_t mqtt_pid; /* mosquitto, our direct child; 0 if not running */
    char dsn[192];          /* harness_dsn() */
    char mqtt_url[48];      /* harness_mqtt_url() */
    char mqtt_template[256]; /* broker config template: deploy/mosquitto.conf.in
                             * or harness_broker_config()'s */
    char mqtt_cafile[256];  /* CA of the broker's TLS listeners; "" = plain TCP */
    struct harness_cred pg_cred;   /* user postgres when we are root */
    struct harness_cred mqtt_cred; /* user mosquitto when we are root */
    struct harness_program programs[HARNESS_MAX_PROGRAMS]; /* every program started */
    size_t nprograms;       /* records used in programs */
    PGconn *pg;             /* harness_pg()'s connection, NULL until used */
};

/* How harness_child_start() runs a child. */
struct harness_child {
    const char *path;             /* executable */
    char *const *argv;            /* NULL-terminated */
    char *const *envp;            /* NULL: the test's environment */
    int out_fd;                   /* becomes stdout and stderr; -1: /dev/null */
    const struct harness_cred *cred; /* NULL: keep ours */
    int deathsig;                 /* sent to the child when we die; 0: none */
};

/* Forks and execs c. Everything the child needs is prepared by the caller, so
 * the child calls only async-signal-safe functions (the test may run Paho
 * threads). Returns the PID or -1 (message printed). */
pid_t harness_child_start(const struct harness_child *c);

/* Waits up to timeout_ms (< 0: forever) for child pid to end. Returns its
 * exit status (0-255, or 128 + signal), or -1 if it is still running or not
 * our child. */
int harness_child_wait(pid_t pid, int timeout_ms);

/* Sends sig, waits up to timeout_ms, then SIGKILLs and waits. Returns the
 * exit status as harness_child_wait(). */
int harness_child_stop(pid_t pid, int sig, int timeout_ms);

/* Sleeps ms milliseconds. */
void harness_sleep_ms(int ms);

/* Milliseconds of a monotonic clock. */
long long harness_now_ms(void);

/* Prints "harness: " + message to stderr. */
void harness_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the last lines of a file to stderr, for a failed start. */
void harness_log_tail(const char *path, int lines);

/* Stops every running program of h with SIGTERM (SIGKILL after 10 s). */
void harness_stop_programs(struct harness *h);

/* Closes the harness's own PostgreSQL connection, if open. */
void harness_pg_close(struct harness *h);

#endif /* SC_TESTS_INTEGRATION_HARNESS_INTERNAL_H */

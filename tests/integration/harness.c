/*
 * Harness lifecycle: the temp dir, PostgreSQL and mosquitto, and the cleanup
 * that stops them whatever way the test ends.
 *
 * Both servers are direct children of the test (PostgreSQL is started as
 * `postgres -D`, not through pg_ctl, which would detach it): the harness
 * knows their PIDs, reaps them, and gives them a parent-death signal, so not
 * even a SIGKILLed test leaves a server behind. Readiness is polled as
 * `pg_ctl -w` does (PQping) and for mosquitto by connecting to its port.
 */
/* nftw(), pipe2(): GNU/XSI extensions beyond the project-wide POSIX 2008. */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_internal.h"

#ifndef SC_SOURCE_DIR
#error "SC_SOURCE_DIR must be defined (the source tree, for deploy/mosquitto.conf.in)"
#endif

/* PostgreSQL server binaries; SC_PG_BINDIR overrides. */
#define PG_BINDIR_DEFAULT "/usr/lib/postgresql/15/bin"
/* mosquitto; SC_MOSQUITTO overrides. */
#define MOSQUITTO_DEFAULT "/usr/sbin/mosquitto"
#define DB_NAME "servicecloud"

#define INITDB_TIMEOUT_MS (120 * 1000)
#define PG_READY_TIMEOUT_MS (60 * 1000)
#define PG_STOP_TIMEOUT_MS (30 * 1000)
#define MQTT_READY_TIMEOUT_MS (10 * 1000)
#define MQTT_STOP_TIMEOUT_MS (10 * 1000)

/* Harnesses with something running, for the exit and signal hooks. */
#define MAX_LIVE 8
static struct harness *volatile live[MAX_LIVE];

/* Signals after which the children must not outlive the test. */
static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
                                    SIGSEGV, SIGBUS, SIGFPE, SIGILL};
static struct sigaction old_actions[NSIG];
static bool hooks_installed;
/* The test process: a forked child still running our handler (before its
 * execve) must not stop the test's servers. */
static pid_t hooks_pid;

/* Set when a sanitizer in the test process reports a fatal error: it then
 * exits with _exit(), skipping atexit(). Weak: absent without sanitizers. */
extern void __sanitizer_set_death_callback(void (*callback)(void))
    __attribute__((weak));

/* ---- emergency cleanup (async-signal-safe) ------------------------------ */

static void say_safe(const char *a, const char *b)
{
    (void)!write(STDERR_FILENO, a, strlen(a));
    if (b != NULL)
        (void)!write(STDERR_FILENO, b, strlen(b));
    (void)!write(STDERR_FILENO, "\n", 1);
}

/* Reaps pid if it has ended; true when it is gone. ECHILD: not (or no longer)
 * our child, so nothing we could wait for. */
static bool reaped(pid_t pid)
{
    pid_t r = waitpid(pid, NULL, WNOHANG);

    return r == pid || (r < 0 && errno == ECHILD);
}

/* Stops everything of h without stdio or malloc: programs SIGKILL,
 * mosquitto SIGTERM, PostgreSQL SIGQUIT (immediate shutdown: it stops its
 * backends and frees its shared memory), then waits up to 5 s. */
static void emergency_stop(struct harness *h)
{
    pid_t mqtt = h->mqtt_pid, pg = h->pg_pid;
    struct timespec tick = {0, 10 * 1000000L};
    bool all_gone = false, any = mqtt > 0 || pg > 0;

    for (size_t i = 0; i < h->nprograms; i++) {
        if (h->programs[i].pid > 0) {
            kill(h->programs[i].pid, SIGKILL);
            any = true;
        }
    }
    if (!any) /* stopped already (a second fatal signal) */
        return;
    if (mqtt > 0)
        kill(mqtt, SIGTERM);
    if (pg > 0)
        kill(pg, SIGQUIT);
    for (int tries = 0; tries < 500 && !all_gone; tries++) {
        if (mqtt > 0 && reaped(mqtt))
            mqtt = 0;
        if (pg > 0 && reaped(pg))
            pg = 0;
        all_gone = mqtt == 0 && pg == 0;
        for (size_t i = 0; i < h->nprograms; i++) {
            pid_t pid = h->programs[i].pid;

            if (pid > 0 && reaped(pid))
                h->programs[i].pid = 0;
            else if (pid > 0)
                all_gone = false;
        }
        if (!all_gone)
            nanosleep(&tick, NULL);
    }
    h->mqtt_pid = 0;
    h->pg_pid = 0;
    say_safe("harness: stopped all test processes; test dir kept: ", h->dir);
}

static void emergency_stop_all(void)
{
    static volatile sig_atomic_t busy;

    if (busy)
        return;
    busy = 1;
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] != NULL)
            emergency_stop(live[i]);
    busy = 0;
}

static void on_fatal_signal(int sig, siginfo_t *si, void *ctx)
{
    int saved = errno;
    bool fault = (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
                  sig == SIGILL) && si != NULL && si->si_code > 0;

    (void)ctx;
    if (getpid() == hooks_pid)
        emergency_stop_all();
    /* Hand the signal to whoever had it before (a sanitizer's handler or the
     * default action). A fault returns to the faulting instruction and
     * faults again; anything else is raised again, delivered when we return. */
    sigaction(sig, &old_actions[sig], NULL);
    if (!fault)
        raise(sig);
    errno = saved;
}

static void stop_all(struct harness *h, bool keep_dir);

static void at_exit_cleanup(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        struct harness *h = live[i];

        if (h != NULL) {
            harness_log("test exits without harness_stop(): stopping its processes");
            stop_all(h, true);
        }
    }
}

static void install_hooks(void)
{
    struct sigaction sa;

    if (hooks_installed)
        return;
    hooks_installed = true;
    hooks_pid = getpid();
    atexit(at_exit_cleanup);
    if (__sanitizer_set_death_callback != NULL)
        __sanitizer_set_death_callback(emergency_stop_all);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        int sig = fatal_signals[i];

        /* An ignored signal stays ignored (SIGINT in a background job). */
        if (sigaction(sig, NULL, &old_actions[sig]) == 0 &&
            old_actions[sig].sa_handler != SIG_IGN)
            sigaction(sig, &sa, NULL);
    }
}

static int live_add(struct harness *h)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live[i] == NULL) {
            live[i] = h;
            return 0;
        }
    }
    harness_log("more than %d harnesses at once", MAX_LIVE);
    return -1;
}

static void live_remove(struct harness *h)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == h)
            live[i] = NULL;
}

/* ---- small helpers ------------------------------------------------------- */

static const char *env_or(const char *key, const char *fallback)
{
    const char *v = getenv(key);

    return v != NULL && *v != '\0' ? v : fallback;
}

/* mkdir path (mode 0700) owned by cred's user. 0 or -1. */
static int make_dir(const char *path, const struct harness_cred *cred)
{
    if (mkdir(path, 0700) != 0) {
        harness_log("mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    if (cred->drop && chown(path, cred->uid, cred->gid) != 0) {
        harness_log("chown %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int lookup_user(const char *name, struct harness_cred *cred)
{
    struct passwd *pw;

    cred->drop = geteuid() == 0;
    if (!cred->drop)
        return 0;
    pw = getpwnam(name);
    if (pw == NULL) {
        harness_log("we are root but there is no user %s to run its server "
                    "(deploy/install-deps.sh creates it)", name);
        return -1;
    }
    cred->uid = pw->pw_uid;
    cred->gid = pw->pw_gid;
    return 0;
}

static int open_log(const struct harness *h, const char *name, bool append)
{
    char path[128];
    int fd;

    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0)
        harness_log("open %s: %s", path, strerror(errno));
    return fd;
}

static void tail_log(const struct harness *h, const char *name)
{
    char path[128];

    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    harness_log_tail(path, 30);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        harness_log("remove %s: %s", path, strerror(errno));
    return 0;
}

/* ---- PostgreSQL --------------------------------------------------------- */

static int pg_init(struct harness *h)
{
    char initdb[256], conf[128];
    char *argv[] = {"initdb", "-D", h->pg_data, "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-locale", "--no-sync",
                    "--no-instructions", NULL};
    struct harness_child c = {.path = initdb, .argv = argv, .out_fd = -1,
                              .cred = &h->pg_cred, .deathsig = SIGKILL};
    FILE *f = NULL;
    pid_t pid;
    int rc = -1;

    snprintf(initdb, sizeof initdb, "%s/initdb", env_or("SC_PG_BINDIR", PG_BINDIR_DEFAULT));
    if (make_dir(h->pg_data, &h->pg_cred) != 0 || make_dir(h->pg_sock, &h->pg_cred) != 0)
        goto out;
    c.out_fd = open_log(h, "initdb.log", false);
    if (c.out_fd < 0)
        goto out;
    pid = harness_child_start(&c);
    if (pid < 0 || harness_child_wait(pid, INITDB_TIMEOUT_MS) != 0) {
        if (pid > 0)
            harness_child_stop(pid, SIGKILL, 1000);
        harness_log("initdb failed");
        tail_log(h, "initdb.log");
        goto out;
    }
    /* Our settings go after initdb's; the last one of a key wins. */
    snprintf(conf, sizeof conf, "%s/postgresql.conf", h->pg_data);
    f = fopen(conf, "a");
    if (f == NULL) {
        harness_log("open %s: %s", conf, strerror(errno));
        goto out;
    }
    fprintf(f,
            "\n# integration-test harness\n"
            "listen_addresses = '127.0.0.1'\n"
            "port = %d\n"
            "unix_socket_directories = '%s'\n"
            "fsync = off              # a test cluster need not survive a power cut\n"
            "full_page_writes = off\n"
            "shared_buffers = 16MB\n"
            "max_connections = 100\n"
            "timezone = 'UTC'\n"
            "log_timezone = 'UTC'\n"
            "log_line_prefix = '%%m [%%p] '\n",
            h->pg_port, h->pg_sock);
    if (fclose(f) != 0) {
        f = NULL;
        harness_log("write %s: %s", conf, strerror(errno));
        goto out;
    }
    f = NULL;
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    if (c.out_fd >= 0)
        close(c.out_fd);
    return rc;
}

static int pg_start(struct harness *h)
{
    char postgres[256], ping_dsn[192];
    char *argv[] = {"postgres", "-D", h->pg_data, NULL};
    /* SIGQUIT is immediate shutdown: PostgreSQL still stops its backends and
     * frees its shared memory, which SIGKILL would leave behind. */
    struct harness_child c = {.path = postgres, .argv = argv,
                              .cred = &h->pg_cred, .deathsig = SIGQUIT};
    long long deadline = harness_now_ms() + PG_READY_TIMEOUT_MS;
    pid_t pid;

    snprintf(postgres, sizeof postgres, "%s/postgres", env_or("SC_PG_BINDIR", PG_BINDIR_DEFAULT));
    snprintf(ping_dsn, sizeof ping_dsn,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=2",
             h->pg_port);
    c.out_fd = open_log(h, "postgres.log", true);
    if (c.out_fd < 0)
        return -1;
    pid = harness_child_start(&c);
    close(c.out_fd);
    if (pid < 0)
        return -1;
    h->pg_pid = pid;
    for (;;) {
        int status;

        if (PQping(ping_dsn) == PQPING_OK)
            return 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            h->pg_pid = 0;
            harness_log("postgres exited during start");
            break;
        }
        if (harness_now_ms() > deadline) {
            harness_log("postgres does not accept connections after %d s",
                        PG_READY_TIMEOUT_MS / 1000);
            break;
        }
        harness_sleep_ms(50);
    }
    tail_log(h, "postgres.log");
    return -1;
}

static void pg_stop(struct harness *h)
{
    pid_t pid = h->pg_pid;

    harness_pg_close(h);
    if (pid <= 0)
        return;
    /* SIGINT is fast shutdown: roll back, checkpoint, exit. */
    (void)harness_child_stop(pid, SIGINT, PG_STOP_TIMEOUT_MS);
    h->pg_pid = 0;
}

static int pg_createdb(struct harness *h)
{
    char dsn[192];
    PGconn *conn;
    PGresult *res = NULL;
    int rc = -1;

    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d user=postgres dbname=postgres",
             h->pg_port);
    conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        harness_log("connect to postgres: %s", PQerrorMessage(conn));
        goto out;
    }
    res = PQexec(conn, "CREATE DATABASE " DB_NAME);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        harness_log("create database: %s", PQerrorMessage(conn));
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

/* ---- mosquitto ---------------------------------------------------------- */

/* Writes h->mqtt_conf from h->mqtt_template (deploy/mosquitto.conf.in: the
 * deployed settings) with this harness's port and paths, and subst
 * ("@KEY@=value", NULL-terminated, may be NULL). */
static int mqtt_write_conf(struct harness *h, const char *const *subst)
{
    const char *template_path = h->mqtt_template;
    char data_dir[64], pid_file[96], log_file[96], port[16];
    const struct {
        const char *key;
        const char *value;
    } own[] = {
        {"@PORT@", port}, {"@DATA_DIR@", data_dir}, {"@ADDR@", "127.0.0.1"},
        {"@PID_FILE@", pid_file}, {"@LOG_FILE@", log_file},
    };
    FILE *in = NULL, *out = NULL;
    int ch, rc = -1;

    snprintf(data_dir, sizeof data_dir, "%s/mqtt", h->dir);
    snprintf(pid_file, sizeof pid_file, "%s/mosquitto.pid", data_dir);
    snprintf(log_file, sizeof log_file, "%s/mosquitto.log", data_dir);
    snprintf(port, sizeof port, "%d", h->mqtt_port);
    /* Reconfigured (harness_broker_config), the broker keeps its data dir. */
    if (access(data_dir, F_OK) != 0 && make_dir(data_dir, &h->mqtt_cred) != 0)
        goto out;
    in = fopen(template_path, "r");
    out = fopen(h->mqtt_conf, "w");
    if (in == NULL || out == NULL) {
        harness_log("%s: %s", in == NULL ? template_path : h->mqtt_conf, strerror(errno));
        goto out;
    }
    /* Copy, replacing each @KEY@; an unknown @ is copied as it is. */
    while ((ch = fgetc(in)) != EOF) {
        char word[32];
        size_t n = 0;
        bool replaced = false;

        if (ch != '@') {
            fputc(ch, out);
            continue;
        }
        word[n++] = '@';
        while (n < sizeof word - 1 && (ch = fgetc(in)) != EOF) {
            word[n++] = (char)ch;
            if (ch == '@' || ch == '\n')
                break;
        }
        word[n] = '\0';
        for (size_t i = 0; i < sizeof own / sizeof own[0] && !replaced; i++) {
            if (strcmp(word, own[i].key) == 0) {
                fputs(own[i].value, out);
                replaced = true;
            }
        }
        for (const char *const *x = subst; x != NULL && *x != NULL && !replaced; x++) {
            size_t klen = strlen(word);

            if (strncmp(*x, word, klen) == 0 && (*x)[klen] == '=') {
                fputs(*x + klen + 1, out);
                replaced = true;
            }
        }
        if (!replaced)
            fputs(word, out);
    }
    if (ferror(in)) {
        harness_log("read %s failed", template_path);
        goto out;
    }
    rc = 0;
out:
    if (in != NULL)
        fclose(in);
    if (out != NULL && fclose(out) != 0 && rc == 0) {
        harness_log("write %s: %s", h->mqtt_conf, strerror(errno));
        rc = -1;
    }
    return rc;
}

bool harness_port_accepts(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return false;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static int mqtt_start(struct harness *h)
{
    const char *mosquitto = env_or("SC_MOSQUITTO", MOSQUITTO_DEFAULT);
    char *argv[] = {"mosquitto", "-c", h->mqtt_conf, NULL};
    /* Run as user mosquitto from the start (if we are root), rather than
     * letting mosquitto switch itself, which would clear the death signal. */
    struct harness_child c = {.path = mosquitto, .argv = argv,
                              .cred = &h->mqtt_cred, .deathsig = SIGTERM};
    long long deadline = harness_now_ms() + MQTT_READY_TIMEOUT_MS;
    pid_t pid;

    /* Only what mosquitto says before its log file is open lands here. */
    c.out_fd = open_log(h, "mosquitto.out", true);
    if (c.out_fd < 0)
        return -1;
    pid = harness_child_start(&c);
    close(c.out_fd);
    if (pid < 0)
        return -1;
    h->mqtt_pid = pid;
    for (;;) {
        int status;

        if (harness_port_accepts(h->mqtt_port))
            return 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            h->mqtt_pid = 0;
            harness_log("mosquitto exited during start");
            break;
        }
        if (harness_now_ms() > deadline) {
            harness_log("mosquitto does not accept connections after %d s",
                        MQTT_READY_TIMEOUT_MS / 1000);
            break;
        }
        harness_sleep_ms(20);
    }
    tail_log(h, "mosquitto.out");
    tail_log(h, "mqtt/mosquitto.log");
    return -1;
}

static void mqtt_stop(struct harness *h)
{
    pid_t pid = h->mqtt_pid;

    if (pid <= 0)
        return;
    /* SIGTERM: mosquitto writes its persistence file, then exits. */
    (void)harness_child_stop(pid, SIGTERM, MQTT_STOP_TIMEOUT_MS);
    h->mqtt_pid = 0;
}

/* ---- public ------------------------------------------------------------- */

struct harness *harness_start(void)
{
    struct harness *h = calloc(1, sizeof *h);
    int hold_pg = -1, hold_mqtt = -1;

    if (h == NULL) {
        harness_log("out of memory");
        return NULL;
    }
    install_hooks();
    if (lookup_user("postgres", &h->pg_cred) != 0 ||
        lookup_user("mosquitto", &h->mqtt_cred) != 0) {
        free(h);
        return NULL;
    }
    snprintf(h->dir, sizeof h->dir, "/tmp/scXXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        harness_log("mkdtemp %s: %s", h->dir, strerror(errno));
        free(h);
        return NULL;
    }
    /* The servers run as their own users and must reach their subdirs. */
    if (chmod(h->dir, 0755) != 0) {
        harness_log("chmod %s: %s", h->dir, strerror(errno));
        rmdir(h->dir);
        free(h);
        return NULL;
    }
    if (live_add(h) != 0) {
        rmdir(h->dir);
        free(h);
        return NULL;
    }
    snprintf(h->pg_data, sizeof h->pg_data, "%s/pg", h->dir);
    snprintf(h->pg_sock, sizeof h->pg_sock, "%s/sock", h->dir);
    snprintf(h->mqtt_conf, sizeof h->mqtt_conf, "%s/mosquitto.conf", h->dir);
    snprintf(h->mqtt_template, sizeof h->mqtt_template, "%s",
             SC_SOURCE_DIR "/deploy/mosquitto.conf.in");

    /* Hold the first port while finding the second, so they differ. */
    h->pg_port = harness_free_port(&hold_pg);
    h->mqtt_port = harness_free_port(&hold_mqtt);
    if (hold_pg >= 0)
        close(hold_pg);
    if (hold_mqtt >= 0)
        close(hold_mqtt);
    if (h->pg_port < 0 || h->mqtt_port < 0)
        goto fail;
    snprintf(h->dsn, sizeof h->dsn,
             "host=127.0.0.1 port=%d user=postgres dbname=" DB_NAME " connect_timeout=5",
             h->pg_port);
    snprintf(h->mqtt_url, sizeof h->mqtt_url, "tcp://127.0.0.1:%d", h->mqtt_port);

    if (pg_init(h) != 0 || pg_start(h) != 0 || pg_createdb(h) != 0 ||
        mqtt_write_conf(h, NULL) != 0 || mqtt_start(h) != 0)
        goto fail;
    harness_log("up: dir=%s postgres pid=%d port=%d, mosquitto pid=%d port=%d",
                h->dir, (int)h->pg_pid, h->pg_port, (int)h->mqtt_pid, h->mqtt_port);
    return h;
fail:
    harness_log("start failed");
    stop_all(h, getenv("SCTEST_KEEP_DIR") != NULL);
    return NULL;
}

static void stop_all(struct harness *h, bool keep_dir)
{
    harness_stop_programs(h);
    mqtt_stop(h);
    pg_stop(h);
    live_remove(h);
    if (keep_dir) {
        harness_log("test dir kept: %s", h->dir);
    } else if (nftw(h->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        harness_log("remove %s: %s", h->dir, strerror(errno));
    }
    free(h);
}

void harness_stop(struct harness *h)
{
    if (h == NULL)
        return;
    stop_all(h, getenv("SCTEST_KEEP_DIR") != NULL);
}

int harness_restart_broker(struct harness *h)
{
    mqtt_stop(h);
    if (mqtt_start(h) != 0)
        return -1;
    harness_log("mosquitto restarted pid=%d port=%d", (int)h->mqtt_pid, h->mqtt_port);
    return 0;
}

int harness_broker_config(struct harness *h, const char *template_path,
                          const char *const *subst, const char *cafile)
{
    int n1 = snprintf(h->mqtt_template, sizeof h->mqtt_template, "%s", template_path);
    int n2 = snprintf(h->mqtt_cafile, sizeof h->mqtt_cafile, "%s", cafile ? cafile : "");

    if (n1 < 0 || (size_t)n1 >= sizeof h->mqtt_template || n2 < 0 ||
        (size_t)n2 >= sizeof h->mqtt_cafile) {
        harness_log("broker config: path too long");
        return -1;
    }
    snprintf(h->mqtt_url, sizeof h->mqtt_url, "%s://127.0.0.1:%d", cafile ? "ssl" : "tcp",
             h->mqtt_port);
    mqtt_stop(h);
    if (mqtt_write_conf(h, subst) != 0 || mqtt_start(h) != 0)
        return -1;
    harness_log("mosquitto reconfigured from %s pid=%d url=%s", template_path,
                (int)h->mqtt_pid, h->mqtt_url);
    return 0;
}

int harness_make_certs(struct harness *h, const char *dir)
{
    char script[2048];
    const char *args[] = {"-c", script, NULL};
    int n = snprintf(script, sizeof script,
                     "set -e; mkdir -p '%s'; cd '%s'; "
                     "k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
                     "openssl req -x509 $k -keyout ca.key -out ca.crt -subj /CN=sc-test-ca "
                     "-days 2; "
                     "openssl req -x509 $k -keyout other.key -out other.crt -subj /CN=other-ca "
                     "-days 2; "
                     "openssl req $k -keyout srv.key -out srv.csr -subj /CN=localhost; "
                     "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext; "
                     "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                     "-out srv.crt -days 2 -extfile ext; chmod 755 .; chmod 644 *",
                     dir, dir);

    if (n < 0 || (size_t)n >= sizeof script || harness_run(h, "/bin/sh", args, NULL, 0) != 0) {
        harness_log("cannot make the test certificates in %s", dir);
        return -1;
    }
    return 0;
}

int harness_restart_pg(struct harness *h)
{
    pg_stop(h);
    if (pg_start(h) != 0)
        return -1;
    harness_log("postgres restarted pid=%d port=%d", (int)h->pg_pid, h->pg_port);
    return 0;
}

const char *harness_dsn(const struct harness *h)
{
    return h->dsn;
}

const char *harness_mqtt_url(const struct harness *h)
{
    return h->mqtt_url;
}

const char *harness_dir(const struct harness *h)
{
    return h->dir;
}

/*
 * Readiness for systemd (Type=notify units, common/sdnotify.c): the real
 * programs send their notifications to a datagram socket of the test, which
 * stands in for the service manager's $NOTIFY_SOCKET.
 *
 * - sc-ingest on an empty database says what it waits for and is not ready;
 *   after `scctl migrate` it sends READY=1 (broker connected, subscriptions
 *   granted), pings the watchdog at half $WATCHDOG_USEC, and sends
 *   STOPPING=1 on SIGTERM before it exits 0.
 * - sc-api, at an abstract socket name, is ready once the schema is there.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "timeutil.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* A free port on 127.0.0.1 for sc-api's listener (it refuses port 0). */
static int pick_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    int p = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        p = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return p;
}

/*
 * Waits up to timeout_ms for a program of h to end by itself, then reaps it
 * through the harness. Returns its exit status as harness_stop_program()
 * does, or -1 if it is still running.
 */
static int wait_exit(struct harness *h, pid_t pid, int timeout_ms)
{
    int64_t end = time_mono_us() + (int64_t)timeout_ms * 1000;

    while (time_mono_us() < end) {
        siginfo_t si = {0};

        /* WNOWAIT: leave the zombie for the harness to reap. */
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == pid)
            return harness_stop_program(h, pid, SIGTERM);
        usleep(50 * 1000);
    }
    return -1;
}

/* The stand-in service manager: what it received so far. */
struct manager {
    int fd;
    char name[108];  /* $NOTIFY_SOCKET */
    int ready;       /* READY=1 datagrams */
    int stopping;    /* STOPPING=1 */
    int watchdog;    /* WATCHDOG=1 */
    char status[256]; /* last STATUS= */
};

/* Binds at name ('@': abstract). 0 or -1. */
static int manager_bind(struct manager *m, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);

    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (m->fd < 0 || n >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    else
        len++;
    return bind(m->fd, (struct sockaddr *)&sa, len);
}

/* Counts one datagram's assignments. */
static void manager_take(struct manager *m, char *msg)
{
    for (char *line = strtok(msg, "\n"); line; line = strtok(NULL, "\n")) {
        if (strcmp(line, "READY=1") == 0)
            m->ready++;
        else if (strcmp(line, "STOPPING=1") == 0)
            m->stopping++;
        else if (strcmp(line, "WATCHDOG=1") == 0)
            m->watchdog++;
        else if (strncmp(line, "STATUS=", 7) == 0)
            snprintf(m->status, sizeof m->status, "%s", line + 7);
        else
            fprintf(stderr, "unexpected notification: %s\n", line);
    }
}

/* Reads datagrams until done(m) holds (true) or timeout_ms passed (false). */
static bool manager_wait(struct manager *m, bool (*done)(const struct manager *),
                         int timeout_ms)
{
    int64_t end = time_mono_us() + (int64_t)timeout_ms * 1000;
    char buf[2048];

    while (!done(m)) {
        int64_t left = (end - time_mono_us()) / 1000;
        struct pollfd p = {.fd = m->fd, .events = POLLIN};

        if (left <= 0)
            return false;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = recv(m->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (n < 0)
            continue;
        buf[n] = '\0';
        manager_take(m, buf);
    }
    return true;
}

static bool schema_old(const struct manager *m)
{
    return strstr(m->status, "database schema older than this build") != NULL;
}

static bool is_ready(const struct manager *m) { return m->ready > 0; }
static bool is_stopping(const struct manager *m) { return m->stopping > 0; }
static bool two_pings(const struct manager *m) { return m->watchdog >= 2; }

int main(void)
{
    struct harness *h = harness_start();
    struct manager ingest = {.fd = -1}, api = {.fd = -1};
    char env_socket[160], env_api[160], env_http[64], path[128], out[4096];
    const char *migrate[] = {"migrate", NULL};
    pid_t pid;
    int rc = 1;

    CHECK(h != NULL);
    snprintf(path, sizeof path, "%s/notify", harness_dir(h));
    CHECK(manager_bind(&ingest, path) == 0);
    snprintf(env_socket, sizeof env_socket, "NOTIFY_SOCKET=%s", path);

    /* Empty database: says why, and ends with status 1 before READY=1 (the
     * unit's Restart=on-failure starts it again). */
    const char *ingest_env[] = {env_socket, "WATCHDOG_USEC=400000", NULL};
    pid = harness_spawn(h, "sc-ingest", ingest_env, NULL);
    CHECK(pid > 0);
    CHECK(manager_wait(&ingest, schema_old, 20000));
    fprintf(stderr, "status before migrate: %s\n", ingest.status);
    CHECK(strstr(ingest.status, "0 of") != NULL);
    CHECK(wait_exit(h, pid, 10000) == 1);
    CHECK(ingest.ready == 0);

    /* Migrated: started again, READY=1, watchdog pings at half the interval. */
    CHECK(harness_run(h, "scctl", migrate, out, sizeof out) == 0);
    pid = harness_spawn(h, "sc-ingest", ingest_env, NULL);
    CHECK(pid > 0);
    CHECK(manager_wait(&ingest, is_ready, 30000));
    CHECK(strcmp(ingest.status, "running") == 0);
    CHECK(ingest.ready == 1);
    CHECK(manager_wait(&ingest, two_pings, 5000));

    /* SIGTERM: STOPPING=1, then a clean exit. */
    CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
    CHECK(manager_wait(&ingest, is_stopping, 1000));
    CHECK(strstr(ingest.status, "draining") != NULL);

    /* An abstract socket name ("@..."); the schema is current already. */
    snprintf(path, sizeof path, "@sc-test-notify-%ld", (long)getpid());
    CHECK(manager_bind(&api, path) == 0);
    snprintf(env_api, sizeof env_api, "NOTIFY_SOCKET=%s", path);
    snprintf(env_http, sizeof env_http, "SC_HTTP_ADDR=127.0.0.1:%d", pick_port());
    const char *api_env[] = {env_api, env_http, NULL};
    pid = harness_spawn(h, "sc-api", api_env, NULL);
    CHECK(pid > 0);
    CHECK(manager_wait(&api, is_ready, 30000));
    CHECK(api.watchdog == 0); /* no WATCHDOG_USEC, no pings */
    CHECK(harness_stop_program(h, pid, SIGTERM) == 0);
    CHECK(manager_wait(&api, is_stopping, 1000));

    CHECK(harness_check_logs(h) == 0);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "notify: ready=%d stopping=%d watchdog=%d status=\"%s\"\n",
                ingest.ready, ingest.stopping, ingest.watchdog, ingest.status);
    harness_stop(h);
    if (ingest.fd >= 0)
        close(ingest.fd);
    if (api.fd >= 0)
        close(api.fd);
    return rc;
}

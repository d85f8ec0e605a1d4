/*
 * Child processes: the fork/exec every server and program goes through, and
 * the programs under test (harness_spawn, harness_run, their stop and logs).
 */
/* nftw(), pipe2(): GNU/XSI extensions beyond the project-wide POSIX 2008. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_internal.h"

#ifndef SC_BIN_DIR
#error "SC_BIN_DIR must be defined (the build's bin directory)"
#endif

/* How long harness_run() lets a program run before it kills it. */
#define RUN_TIMEOUT_MS (120 * 1000)
/* How long harness_stop_program() waits after the signal before SIGKILL. */
#define STOP_TIMEOUT_MS (10 * 1000)

extern char **environ;

void harness_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "harness: %s\n", line);
}

void harness_log_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    char buf[16384];
    size_t n;
    long size;
    char *start;
    int seen = 0;

    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Walk back over `lines` newlines (ignoring a final one). */
    start = buf + n;
    if (start > buf && start[-1] == '\n')
        start--;
    while (start > buf && seen < lines) {
        start--;
        if (*start == '\n')
            seen++;
    }
    if (*start == '\n')
        start++;
    fprintf(stderr, "harness: --- last lines of %s ---\n%s", path, start);
    if (n > 0 && buf[n - 1] != '\n')
        fputc('\n', stderr);
    fprintf(stderr, "harness: ---\n");
}

long long harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int harness_free_port(int *hold)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;

    if (fd < 0) {
        harness_log("socket: %s", strerror(errno));
        return -1;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        harness_log("cannot find a free port: %s", strerror(errno));
        goto out;
    }
    port = ntohs(sa.sin_port);
    if (hold != NULL) {
        *hold = fd;
        fd = -1;
    }
out:
    if (fd >= 0)
        close(fd);
    return port;
}

/* Child side of harness_child_start(): only async-signal-safe calls. */
static void child_exec(const struct harness_child *c, int out, pid_t parent,
                       char *const *envp)
{
    static const char setid_failed[] = "harness: cannot switch user\n";
    static const char exec_failed[] = "harness: exec failed: ";
    sigset_t none;
    int in;

    /* Own process group: a Ctrl-C in the terminal reaches only the test,
     * whose handler stops the children in order. */
    setpgid(0, 0);
    in = open("/dev/null", O_RDONLY);
    if (in >= 0 && in != STDIN_FILENO) {
        dup2(in, STDIN_FILENO);
        close(in);
    }
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    /* Sockets of the test (libpq, Paho) must not live on in the child. */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
    {
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    }
    /* Signals are blocked since before fork (harness_child_start). Until
     * execve the test's handlers are still installed here and would run
     * the harness's emergency stop in the child: reset them first. SIGPIPE
     * too, which the test's libraries may ignore. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;

        if (sigaction(sig, NULL, &sa) == 0 &&
            (sa.sa_handler != SIG_IGN || sig == SIGPIPE) && sa.sa_handler != SIG_DFL) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            sigaction(sig, &sa, NULL);
        }
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (c->cred != NULL && c->cred->drop) {
        if (setgroups(1, &c->cred->gid) != 0 || setgid(c->cred->gid) != 0 ||
            setuid(c->cred->uid) != 0) {
            (void)!write(STDERR_FILENO, setid_failed, sizeof setid_failed - 1);
            _exit(127);
        }
    }
    /* After the user switch: changing credentials clears the setting. */
    if (c->deathsig != 0) {
        prctl(PR_SET_PDEATHSIG, c->deathsig);
        if (getppid() != parent) /* the test died before prctl */
            _exit(127);
    }
    execve(c->path, c->argv, envp);
    (void)!write(STDERR_FILENO, exec_failed, sizeof exec_failed - 1);
    (void)!write(STDERR_FILENO, c->path, strlen(c->path));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
}

pid_t harness_child_start(const struct harness_child *c)
{
    char *const *envp = c->envp != NULL ? c->envp : environ;
    pid_t parent = getpid();
    int devnull = -1;
    int out = c->out_fd;
    sigset_t all, saved;
    pid_t pid;

    if (out < 0) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0) {
            harness_log("open /dev/null: %s", strerror(errno));
            return -1;
        }
        out = devnull;
    }
    /* Whatever stdio holds would be written twice (by us and the child). */
    fflush(NULL);
    /* No signal handler may run in the child before it has reset them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid = fork();
    if (pid == 0)
        child_exec(c, out, parent, envp);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0)
        harness_log("fork %s: %s", c->path, strerror(errno));
    if (devnull >= 0)
        close(devnull);
    return pid;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int harness_child_wait(pid_t pid, int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, timeout_ms < 0 ? 0 : WNOHANG);

        if (r == pid)
            return decode_status(status);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r == 0) {
            if (harness_now_ms() >= deadline)
                return -1;
            harness_sleep_ms(10);
        }
    }
}

int harness_child_stop(pid_t pid, int sig, int timeout_ms)
{
    int status;

    if (kill(pid, sig) != 0 && errno != ESRCH)
        return -1;
    status = harness_child_wait(pid, timeout_ms);
    if (status >= 0)
        return status;
    harness_log("pid=%d still running %d ms after signal %d: SIGKILL", (int)pid,
                timeout_ms, sig);
    kill(pid, SIGKILL);
    return harness_child_wait(pid, -1);
}

/* ---- programs under test ------------------------------------------------ */

static const char *bin_dir(void)
{
    const char *e = getenv("SC_BIN_DIR");

    return e != NULL && *e != '\0' ? e : SC_BIN_DIR;
}

static struct harness_program *find_program(struct harness *h, pid_t pid)
{
    for (size_t i = 0; i < h->nprograms; i++)
        if (pid > 0 && h->programs[i].pid == pid)
            return &h->programs[i];
    return NULL;
}

/* A record for a new run of `name`, with its log path; NULL when full. */
static struct harness_program *program_add(struct harness *h, const char *name)
{
    struct harness_program *p;
    char log[sizeof p->log];
    int n = 1;

    if (h->nprograms == HARNESS_MAX_PROGRAMS) {
        harness_log("more than %d programs started", HARNESS_MAX_PROGRAMS);
        return NULL;
    }
    for (size_t i = 0; i < h->nprograms; i++)
        if (strcmp(h->programs[i].name, name) == 0)
            n++;
    p = &h->programs[h->nprograms];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(log, sizeof log, "%s/%s-%d.log", h->dir, p->name, n);
    memcpy(p->log, log, sizeof p->log);
    h->nprograms++;
    return p;
}

/* A NULL-terminated array of malloc'd "KEY=value" strings. */
struct envv {
    char **v;
    size_t n;
    size_t cap;
};

static void envv_free(struct envv *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

/* Sets kv ("KEY=value"), replacing an entry with the same key. 0 or -1. */
static int envv_set(struct envv *e, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) + 1 : strlen(kv);
    char *copy = strdup(kv);

    if (copy == NULL)
        return -1;
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], kv, klen) == 0) {
            free(e->v[i]);
            e->v[i] = copy;
            return 0;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        char **v = realloc(e->v, cap * sizeof *v);

        if (v == NULL) {
            free(copy);
            return -1;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = copy;
    e->v[e->n] = NULL;
    return 0;
}

/* The environment of a program: ours, the harness's keys, then extra_env. */
static int build_env(struct harness *h, int metrics_port,
                     const char *const *extra_env, struct envv *out)
{
    struct envv e = {0};
    char kv[512];
    int rc = -1;

    for (char **p = environ; *p != NULL; p++)
        if (envv_set(&e, *p) != 0)
            goto out;
    snprintf(kv, sizeof kv, "SC_PG_DSN=%s", h->dsn);
    if (envv_set(&e, kv) != 0)
        goto out;
    snprintf(kv, sizeof kv, "SC_MQTT_URL=%s", h->mqtt_url);
    if (envv_set(&e, kv) != 0 || envv_set(&e, "SC_INSTANCE=test") != 0 ||
        envv_set(&e, "SC_LOG_LEVEL=debug") != 0)
        goto out;
    snprintf(kv, sizeof kv, "SC_METRICS_ADDR=127.0.0.1:%d", metrics_port);
    if (envv_set(&e, kv) != 0)
        goto out;
    /* A TLS broker (harness_broker_config()): verify it against its CA. */
    snprintf(kv, sizeof kv, "SC_MQTT_CAFILE=%s", h->mqtt_cafile);
    if (h->mqtt_cafile[0] != '\0' && envv_set(&e, kv) != 0)
        goto out;
    for (const char *const *x = extra_env; x != NULL && *x != NULL; x++)
        if (envv_set(&e, *x) != 0)
            goto out;
    *out = e;
    e = (struct envv){0};
    rc = 0;
out:
    envv_free(&e);
    return rc;
}

/* argv for program: { name, args..., NULL }; malloc'd array, borrowed strings. */
static char **build_argv(const char *name, const char *const *args)
{
    size_t n = 0;
    char **argv;

    while (args != NULL && args[n] != NULL)
        n++;
    argv = calloc(n + 2, sizeof *argv);
    if (argv == NULL)
        return NULL;
    argv[0] = (char *)name;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    return argv;
}

/* Everything a program needs before it is forked. */
struct prepared {
    char path[512];
    const char *name;
    struct harness_program *rec;
    struct envv env;
    char **argv;
};

static void prepared_free(struct prepared *p)
{
    envv_free(&p->env);
    free(p->argv);
}

static int prepare(struct harness *h, const char *program,
                   const char *const *extra_env, const char *const *args,
                   struct prepared *p)
{
    const char *slash = strrchr(program, '/');
    int port;

    memset(p, 0, sizeof *p);
    /* A bare name is a program of the build; a path is taken as it is. */
    if (slash != NULL)
        snprintf(p->path, sizeof p->path, "%s", program);
    else
        snprintf(p->path, sizeof p->path, "%s/%s", bin_dir(), program);
    p->name = slash != NULL ? slash + 1 : program;
    if (access(p->path, X_OK) != 0) {
        harness_log("cannot run %s: %s (is it built?)", p->path, strerror(errno));
        return -1;
    }
    port = harness_free_port(NULL);
    if (port < 0)
        return -1;
    p->rec = program_add(h, p->name);
    if (p->rec == NULL)
        return -1;
    p->rec->metrics_port = port;
    p->argv = build_argv(p->name, args);
    if (p->argv == NULL || build_env(h, port, extra_env, &p->env) != 0) {
        harness_log("out of memory");
        prepared_free(p);
        return -1;
    }
    return 0;
}

pid_t harness_spawn(struct harness *h, const char *program,
                    const char *const *extra_env, const char *const *args)
{
    struct prepared p;
    struct harness_child c = {0};
    int fd = -1;
    pid_t pid = -1;

    if (prepare(h, program, extra_env, args, &p) != 0)
        return -1;
    fd = open(p.rec->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        harness_log("open %s: %s", p.rec->log, strerror(errno));
        goto out;
    }
    c.path = p.path;
    c.argv = p.argv;
    c.envp = p.env.v;
    c.out_fd = fd;
    /* A program outliving a killed test would hold ports and the broker
     * session of the next run. */
    c.deathsig = SIGKILL;
    pid = harness_child_start(&c);
    if (pid > 0) {
        p.rec->pid = pid;
        harness_log("started %s pid=%d metrics=127.0.0.1:%d log=%s", p.name,
                    (int)pid, p.rec->metrics_port, p.rec->log);
    }
out:
    if (fd >= 0)
        close(fd);
    prepared_free(&p);
    return pid;
}

int harness_metrics_port(const struct harness *h, pid_t pid)
{
    for (size_t i = 0; i < h->nprograms; i++)
        if (h->programs[i].pid == pid && pid > 0)
            return h->programs[i].metrics_port;
    return -1;
}

int harness_stop_program(struct harness *h, pid_t pid, int sig)
{
    struct harness_program *p = find_program(h, pid);
    int status;

    if (p == NULL) {
        harness_log("stop: pid=%d is not a running program of this harness", (int)pid);
        return -1;
    }
    status = harness_child_stop(pid, sig, STOP_TIMEOUT_MS);
    p->pid = 0;
    harness_log("%s pid=%d ended status=%d", p->name, (int)pid, status);
    return status;
}

int harness_kill9(struct harness *h, pid_t pid)
{
    struct harness_program *p = find_program(h, pid);

    if (p == NULL) {
        harness_log("kill9: pid=%d is not a running program of this harness", (int)pid);
        return -1;
    }
    kill(pid, SIGKILL);
    harness_child_wait(pid, -1);
    p->pid = 0;
    harness_log("%s pid=%d killed with SIGKILL", p->name, (int)pid);
    return 0;
}

void harness_stop_programs(struct harness *h)
{
    for (size_t i = 0; i < h->nprograms; i++)
        if (h->programs[i].pid > 0)
            (void)harness_stop_program(h, h->programs[i].pid, SIGTERM);
}

int harness_run(struct harness *h, const char *program,
                const char *const *args, char *out, size_t out_len)
{
    struct prepared p;
    struct harness_child c = {0};
    int pipefd[2] = {-1, -1};
    int logfd = -1;
    size_t used = 0;
    long long deadline;
    bool killed = false;
    pid_t pid;
    int status = -1;

    if (out != NULL && out_len > 0)
        out[0] = '\0';
    if (prepare(h, program, NULL, args, &p) != 0)
        return -1;
    logfd = open(p.rec->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
        harness_log("run %s: %s", p.name, strerror(errno));
        goto out;
    }
    c.path = p.path;
    c.argv = p.argv;
    c.envp = p.env.v;
    c.out_fd = pipefd[1];
    c.deathsig = SIGKILL;
    pid = harness_child_start(&c);
    close(pipefd[1]);
    pipefd[1] = -1;
    if (pid < 0)
        goto out;
    p.rec->pid = pid;

    deadline = harness_now_ms() + RUN_TIMEOUT_MS;
    for (;;) {
        struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
        long long left = deadline - harness_now_ms();
        char buf[4096];
        ssize_t n;

        if (left <= 0) {
            if (killed) /* something else holds the pipe open */
                break;
            harness_log("%s pid=%d still running after %d s: SIGKILL", p.name,
                        (int)pid, RUN_TIMEOUT_MS / 1000);
            kill(pid, SIGKILL);
            killed = true;
            deadline = harness_now_ms() + 1000;
            continue;
        }
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        (void)!write(logfd, buf, (size_t)n);
        if (out != NULL && out_len > 0) {
            size_t take = (size_t)n;

            if (take > out_len - 1 - used)
                take = out_len - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
            out[used] = '\0';
        }
    }
    status = harness_child_wait(pid, -1);
    p.rec->pid = 0;
    harness_log("ran %s: status=%d log=%s", p.name, status, p.rec->log);
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (logfd >= 0)
        close(logfd);
    prepared_free(&p);
    return status;
}

int harness_check_logs(struct harness *h)
{
    static const char *const patterns[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
        "ERROR: UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer",
    };
    int total = 0;

    for (size_t i = 0; i < h->nprograms; i++) {
        FILE *f = fopen(h->programs[i].log, "r");
        char *line = NULL;
        size_t cap = 0;

        if (f == NULL)
            continue;
        while (getline(&line, &cap, f) > 0) {
            for (size_t k = 0; k < sizeof patterns / sizeof patterns[0]; k++) {
                if (strstr(line, patterns[k]) != NULL) {
                    if (total < 50)
                        fprintf(stderr, "harness: sanitizer report in %s: %s",
                                h->programs[i].log, line);
                    total++;
                    break;
                }
            }
        }
        free(line);
        fclose(f);
    }
    if (total > 0)
        harness_log("%d sanitizer report line(s) in program logs", total);
    return total;
}

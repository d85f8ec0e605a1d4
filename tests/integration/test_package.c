/*
 * The Debian package (deploy/CMakeLists.txt): built with cpack from this
 * build tree, its control data and contents checked with dpkg-deb, then
 * extracted (never installed on this machine) and used:
 *
 * - control: name, library dependencies found by dpkg-shlibdeps, maintainer
 *   scripts (valid sh; postinst makes the user once, run against stand-ins),
 *   the example configuration as a conffile;
 * - contents: every program, every unit, every schema file of the source
 *   tree (byte for byte, and embedded as such in the installed scctl), the
 *   example configuration and the documents;
 * - the units: the settings docs/operations.md promises, and a clean
 *   `systemd-analyze verify` (skipped only where systemd-analyze is absent);
 * - the example configuration: what the installed scctl generates from the
 *   configuration table, and valid with every default line uncommented;
 * - the installed scctl migrates an empty database (from its embedded SQL)
 *   to exactly the installed schema files, and a second run changes nothing.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"
#include "timeutil.h"

#ifndef SC_BUILD_DIR
#error "SC_BUILD_DIR must be defined (the build tree cpack packages)"
#endif
#ifndef SC_SOURCE_DIR
#error "SC_SOURCE_DIR must be defined"
#endif
#ifndef SC_CPACK
#error "SC_CPACK must be defined (the cpack of this CMake)"
#endif

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* Output must contain text (printed on failure). */
#define CHECK_OUT(text)                                                     \
    do {                                                                    \
        if (strstr(out, (text)) == NULL) {                                  \
            fprintf(stderr, "%s:%d: output lacks \"%s\":\n%s\n", __FILE__,  \
                    __LINE__, (text), out);                                 \
            goto out;                                                       \
        }                                                                   \
    } while (0)

static const char *const programs[] = {
    "sc-ingest", "sc-alertd", "sc-dispatch", "sc-slamon", "sc-api", "scctl", "sc-sim",
};
/* The services with a unit (sc-sim is a tool). */
static const char *const services[] = {
    "sc-ingest", "sc-alertd", "sc-dispatch", "sc-slamon", "sc-api",
};
#define NPROGRAMS (sizeof programs / sizeof programs[0])
#define NSERVICES (sizeof services / sizeof services[0])

static char out[1 << 17];

/* Runs a shell command line; output (both streams) in `out`. */
static int sh(struct harness *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sh(struct harness *h, const char *fmt, ...)
{
    char line[8192];
    const char *args[] = {"-c", line, NULL};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return harness_run(h, "/bin/sh", args, out, sizeof out);
}

/*
 * cpack may take longer than harness_run() allows on a busy machine: start
 * it as a program of the harness (stopped with the test whatever happens)
 * and wait for it. Returns its exit status, or -1.
 */
static int build_package(struct harness *h, const char *outdir)
{
    char line[2048];
    const char *args[] = {"-c", line, NULL};
    int64_t end = time_mono_us() + INT64_C(540) * 1000000;
    pid_t pid;

    snprintf(line, sizeof line, "cd '%s' && exec '%s' -G DEB -B '%s'", SC_BUILD_DIR,
             SC_CPACK, outdir);
    pid = harness_spawn(h, "/bin/sh", NULL, args);
    if (pid < 0)
        return -1;
    while (time_mono_us() < end) {
        siginfo_t si = {0};

        /* WNOWAIT: the harness reaps it (and learns its status). */
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == pid)
            return harness_stop_program(h, pid, SIGTERM);
        usleep(100 * 1000);
    }
    fprintf(stderr, "cpack still running after 540 s\n");
    harness_stop_program(h, pid, SIGTERM);
    return -1;
}

/* The whole file, NUL-terminated; *len its size. NULL if unreadable. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)size + 1)) != NULL) {
        if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        } else {
            buf[size] = '\0';
            *len = (size_t)size;
        }
    }
    fclose(f);
    return buf;
}

static int is_sql(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 4 && strcmp(d->d_name + n - 4, ".sql") == 0;
}

/* The migration files of the source tree, sorted (scandir). */
static int schema_files(struct dirent ***names)
{
    return scandir(SC_SOURCE_DIR "/schema", names, is_sql, alphasort);
}

int main(void)
{
    struct harness *h = harness_start();
    struct dirent **schema = NULL;
    int nschema = -1, rc = 1;
    char dir[512], deb[600], root[600], want[8192];
    PGresult *res = NULL;
    char *scctl_bin = NULL;
    size_t scctl_len = 0;

    CHECK(h != NULL);
    nschema = schema_files(&schema);
    CHECK(nschema > 0);
    snprintf(dir, sizeof dir, "%s/pkg", harness_dir(h));
    snprintf(root, sizeof root, "%s/root", dir);

    /* Build: one .deb in a directory of our own. */
    CHECK(build_package(h, dir) == 0);
    CHECK(sh(h, "ls %s/*.deb", dir) == 0);
    CHECK(sscanf(out, "%599s", deb) == 1);
    fprintf(stderr, "package: %s\n", deb);

    /* Control data. */
    CHECK(sh(h, "dpkg-deb -f %s Package Architecture Version Depends", deb) == 0);
    CHECK_OUT("Package: service-cloud\n");
    CHECK_OUT("Version: " SC_VERSION "\n");
    /* dpkg-shlibdeps found the libraries (Debian 12 package names). */
    CHECK_OUT("adduser");
    CHECK_OUT("libpq5");
    CHECK_OUT("libpaho-mqtt1.3");
    CHECK_OUT("libcjson1");
    CHECK_OUT("libevent-core-2.1-7");
    CHECK_OUT("libssl3");
    CHECK_OUT("libc6");
    CHECK(sh(h, "dpkg-deb -I %s", deb) == 0);
    CHECK_OUT(" postinst ");
    CHECK_OUT(" prerm ");
    CHECK_OUT(" postrm ");
    CHECK_OUT(" conffiles ");
    CHECK(sh(h, "dpkg-deb -I %s conffiles", deb) == 0);
    CHECK(strcmp(out, "/etc/service-cloud/site.env.example\n") == 0);
    CHECK(sh(h, "dpkg-deb -I %s postinst", deb) == 0);
    CHECK_OUT("adduser --system");
    CHECK_OUT("servicecloud");
    CHECK_OUT("daemon-reload");

    /* Contents. */
    CHECK(sh(h, "dpkg-deb -c %s", deb) == 0);
    for (size_t i = 0; i < NPROGRAMS; i++) {
        snprintf(want, sizeof want, " ./usr/bin/%s\n", programs[i]);
        CHECK_OUT(want);
    }
    for (size_t i = 0; i < NSERVICES; i++) {
        snprintf(want, sizeof want, " ./lib/systemd/system/%s@.service\n", services[i]);
        CHECK_OUT(want);
    }
    CHECK_OUT(" ./lib/systemd/system/service-cloud@.target\n");
    CHECK_OUT(" ./etc/service-cloud/site.env.example\n");
    CHECK_OUT(" ./usr/share/doc/service-cloud/README.md\n");
    CHECK_OUT(" ./usr/share/doc/service-cloud/operations.md\n");
    for (int i = 0; i < nschema; i++) {
        snprintf(want, sizeof want, " ./usr/share/service-cloud/schema/%s\n",
                 schema[i]->d_name);
        CHECK_OUT(want);
    }

    /* Extracted, not installed. The schema is the source tree's, byte for byte. */
    CHECK(sh(h, "dpkg-deb -x %s %s", deb, root) == 0);
    CHECK(sh(h, "ls %s/usr/share/service-cloud/schema | wc -l", root) == 0);
    CHECK(atoi(out) == nschema);
    for (int i = 0; i < nschema; i++)
        CHECK(sh(h, "cmp %s/schema/%s %s/usr/share/service-cloud/schema/%s", SC_SOURCE_DIR,
                 schema[i]->d_name, root, schema[i]->d_name) == 0);
    /* The installed scctl embeds exactly these texts (cmake/embed_sql.cmake
     * writes each file's bytes, NUL-terminated, into the binary). */
    snprintf(want, sizeof want, "%s/usr/bin/scctl", root);
    scctl_bin = slurp(want, &scctl_len);
    CHECK(scctl_bin != NULL);
    for (int i = 0; i < nschema; i++) {
        size_t n = 0;
        char *sql;

        snprintf(want, sizeof want, "%s/usr/share/service-cloud/schema/%s", root,
                 schema[i]->d_name);
        sql = slurp(want, &n);
        CHECK(sql != NULL);
        /* With its terminating NUL: the whole text, not a prefix of a longer one. */
        bool found = memmem(scctl_bin, scctl_len, sql, n + 1) != NULL;
        free(sql);
        if (!found)
            fprintf(stderr, "the installed scctl does not embed %s\n", schema[i]->d_name);
        CHECK(found);
    }
    /* The installed programs run from where they are (no build-tree paths). */
    for (size_t i = 0; i < NPROGRAMS; i++) {
        CHECK(sh(h, "%s/usr/bin/%s --help", root, programs[i]) == 0);
        CHECK_OUT("usage:");
        CHECK(sh(h, "readelf -d %s/usr/bin/%s | grep -E 'RPATH|RUNPATH' || true", root,
                 programs[i]) == 0);
        CHECK(out[0] == '\0');
    }
    CHECK(sh(h, "for s in postinst prerm postrm; do dpkg-deb -I %s $s > %s/$s && "
                "sh -n %s/$s || exit 1; done", deb, dir, dir) == 0);
    /* postinst's logic with stand-ins for getent, adduser and systemctl
     * that only record their arguments (nothing changes on this machine). */
    CHECK(sh(h, "set -e; mkdir %s/stub; cd %s/stub; "
                "printf '#!/bin/sh\\necho \"$(basename $0) $*\" >> %s/calls\\n"
                "[ \"$(basename $0)\" != getent ] || [ -e %s/user ]\\n' > getent; "
                "cp getent adduser; cp getent systemctl; chmod +x getent adduser systemctl; "
                "PATH=%s/stub:$PATH sh %s/postinst configure; "
                "touch %s/user; PATH=%s/stub:$PATH sh %s/postinst configure; cat %s/calls",
             dir, dir, dir, dir, dir, dir, dir, dir, dir, dir) == 0);
    /* First run: no user yet, so it is made; second run: it exists. */
    CHECK_OUT("getent passwd servicecloud\nadduser --system --group --no-create-home "
              "--home /nonexistent --gecos Service Cloud servicecloud\n");
    CHECK(strstr(strstr(out, "adduser") + 1, "adduser") == NULL);

    /* Units: the promised settings, then systemd's own check. */
    for (size_t i = 0; i < NSERVICES; i++) {
        static const char *const settings[] = {
            "Type=notify\n", "Restart=on-failure\n", "User=servicecloud\n",
            "EnvironmentFile=/etc/service-cloud/%i.env\n", "NoNewPrivileges=yes\n",
            "ProtectSystem=strict\n", "TimeoutStopSec=45s\n", "WatchdogSec=60s\n",
            "PartOf=service-cloud@%i.target\n",
        };
        CHECK(sh(h, "cat %s/lib/systemd/system/%s@.service", root, services[i]) == 0);
        snprintf(want, sizeof want, "ExecStart=/usr/bin/%s\n", services[i]);
        CHECK_OUT(want);
        snprintf(want, sizeof want,
                 "EnvironmentFile=-/etc/service-cloud/%%i.d/%s.env\n", services[i]);
        CHECK_OUT(want);
        for (size_t k = 0; k < sizeof settings / sizeof settings[0]; k++)
            CHECK_OUT(settings[k]);
    }
    if (sh(h, "command -v systemd-analyze") != 0) {
        fprintf(stderr, "SKIP systemd-analyze verify: systemd-analyze is not installed\n");
    } else {
        /* An instance of each template (site "t1"), the programs named where
         * they were extracted: verify checks that ExecStart exists. Warnings
         * do not change its exit status, so any output fails. */
        CHECK(sh(h,
                 "set -e; mkdir %s/units; cd %s/lib/systemd/system; "
                 "for u in *@.service; do "
                 "sed 's|^ExecStart=/usr/bin/|ExecStart=%s/usr/bin/|' $u "
                 "> %s/units/${u%%@.service}@t1.service; done; "
                 "cp service-cloud@.target %s/units/service-cloud@t1.target; "
                 "systemd-analyze verify --man=no %s/units/*",
                 dir, root, root, dir, dir, dir) == 0);
        if (out[0] != '\0') {
            fprintf(stderr, "systemd-analyze verify:\n%s\n", out);
            CHECK(out[0] == '\0');
        }
    }

    /* The example configuration: the installed scctl's, from the table. */
    CHECK(sh(h, "%s/usr/bin/scctl config-template | cmp - %s/etc/service-cloud/site.env.example",
             root, root) == 0);
    CHECK(sh(h, "cat %s/etc/service-cloud/site.env.example", root) == 0);
    CHECK_OUT("#SC_PG_DSN=postgresql:///servicecloud\n");
    CHECK_OUT("#SC_LOG_LEVEL=info\n");
    CHECK_OUT("SC_METRICS_ADDR");
    CHECK_OUT("SC_INSTANCE");
    CHECK(sh(h, "sed 's/^#SC_/SC_/' %s/etc/service-cloud/site.env.example > %s/all.env", root,
             dir) == 0);

    /* The installed scctl migrates the empty database (SC_PG_DSN of the
     * harness wins over the file's default), from its embedded SQL. */
    CHECK(harness_sql_long(h, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0);
    CHECK(sh(h, "%s/usr/bin/scctl --config %s/all.env --json migrate", root, dir) == 0);
    CHECK(harness_sql_long(h, "SELECT count(*) FROM schema_migration") == nschema);
    /* Exactly the installed files, in order: names and versions. */
    res = PQexec(harness_pg(h),
                 "SELECT string_agg(name || '.sql', ',' ORDER BY version) FROM schema_migration");
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    want[0] = '\0';
    for (int i = 0; i < nschema; i++) {
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, "%s%s", i ? "," : "", schema[i]->d_name);
    }
    if (strcmp(PQgetvalue(res, 0, 0), want) != 0) {
        fprintf(stderr, "applied: %s\nfiles:   %s\n", PQgetvalue(res, 0, 0), want);
        CHECK(false);
    }
    CHECK(sh(h, "%s/usr/bin/scctl migrate", root) == 0);
    CHECK_OUT("schema is current");

    CHECK(harness_check_logs(h) == 0);
    rc = 0;
out:
    PQclear(res);
    free(scctl_bin);
    for (int i = 0; i < nschema; i++)
        free(schema[i]);
    free(schema);
    harness_stop(h);
    return rc;
}

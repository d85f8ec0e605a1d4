/*
 * The harness itself: both servers come up, answer, survive a restart, and
 * everything is gone after harness_stop().
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            goto out;                                                       \
        }                                                                   \
    } while (0)

/* Publishes payload on topic and expects it back through the subscription. */
static int round_trip(struct harness_mqtt *pub, struct harness_mqtt *sub,
                      const char *topic, const char *payload)
{
    char *got = NULL, *got_topic = NULL;
    int rc = -1;

    CHECK(harness_mqtt_publish(pub, topic, payload, 1) == 0);
    got = harness_mqtt_wait(sub, topic, 5000, &got_topic);
    CHECK(got != NULL);
    CHECK(strcmp(got, payload) == 0);
    CHECK(strcmp(got_topic, topic) == 0);
    rc = 0;
out:
    free(got);
    free(got_topic);
    return rc;
}

int main(void)
{
    struct harness *h = harness_start();
    struct harness_mqtt *pub = NULL, *sub = NULL;
    char out[256];
    int rc = 1;

    CHECK(h != NULL);
    CHECK(strstr(harness_dsn(h), "host=127.0.0.1") != NULL);
    CHECK(strncmp(harness_mqtt_url(h), "tcp://127.0.0.1:", 16) == 0);

    /* PostgreSQL */
    CHECK(harness_sql_long(h, "select 1") == 1);
    CHECK(harness_sql_exec(h, "create table smoke (id int primary key); "
                              "insert into smoke values (1), (2), (3)") == 0);
    CHECK(harness_wait_sql(h, "select count(*) from smoke", 3, 1000));
    CHECK(harness_sql_long(h, "select current_database() = 'servicecloud'") == 1);
    CHECK(harness_sql_exec(h, "select * from no_such_table") == -1);

    /* MQTT */
    pub = harness_mqtt_connect(h, "smoke-pub");
    sub = harness_mqtt_connect(h, "smoke-sub");
    CHECK(pub != NULL && sub != NULL);
    CHECK(harness_mqtt_subscribe(sub, "smoke/#") == 0);
    CHECK(round_trip(pub, sub, "smoke/a", "{\"n\":1}") == 0);
    CHECK(harness_mqtt_wait(sub, "smoke/", 200, NULL) == NULL);

    /* Programs: a plain command stands in for the services here. */
    {
        const char *args[] = {"-c", "echo \"instance=$SC_INSTANCE\"; exit 3", NULL};

        CHECK(harness_run(h, "/bin/sh", args, out, sizeof out) == 3);
        CHECK(strstr(out, "instance=test") != NULL);
    }
    {
        const char *args[] = {"-c", "exec sleep 60", NULL};
        pid_t pid = harness_spawn(h, "/bin/sh", NULL, args);

        CHECK(pid > 0);
        CHECK(harness_metrics_port(h, pid) > 0);
        CHECK(harness_stop_program(h, pid, SIGTERM) == 128 + SIGTERM);
        pid = harness_spawn(h, "/bin/sh", NULL, args);
        CHECK(pid > 0);
        CHECK(harness_kill9(h, pid) == 0);
        CHECK(harness_stop_program(h, pid, SIGTERM) == -1);
    }
    CHECK(harness_check_logs(h) == 0);
    {
        /* A sanitizer report in a program's output is found. */
        const char *args[] = {"-c", "echo '==1==ERROR: AddressSanitizer: fake'", NULL};

        CHECK(harness_run(h, "/bin/sh", args, NULL, 0) == 0);
        CHECK(harness_check_logs(h) == 1);
    }

    /* The broker restarts with the subscriber's session: the subscription
     * survives, and a message published while the subscriber is away waits. */
    CHECK(harness_restart_broker(h) == 0);
    CHECK(round_trip(pub, sub, "smoke/b", "{\"n\":2}") == 0);

    /* PostgreSQL restarts with its data. */
    CHECK(harness_restart_pg(h) == 0);
    CHECK(harness_sql_long(h, "select count(*) from smoke") == 3);

    rc = 0;
out:
    harness_mqtt_free(pub);
    harness_mqtt_free(sub);
    harness_stop(h);
    fprintf(stderr, "harness_smoke: %s\n", rc == 0 ? "ok" : "FAILED");
    return rc;
}

#ifndef SC_TESTS_INTEGRATION_FIXTURE_H
#define SC_TESTS_INTEGRATION_FIXTURE_H

/*
 * Shared set-up of the integration tests on top of the harness: servers up,
 * schema migrated with `scctl migrate`, master data loaded with
 * `scctl import`, plus small helpers every test uses.
 */

#include <stdbool.h>
#include <stdio.h>

#include "harness.h"

/* Fails the current test: prints where and jumps to the function's `out`. */
#define CHECK(cond)                                                             \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,  \
				__LINE__, #cond);                               \
			goto out;                                               \
		}                                                               \
	} while (0)

/*
 * A small country for the slice tests: provinces HA and HB; customer C1
 * (vip, HA) with site S1 and devices D1, D2 (model XJ-PR900); customer C2
 * (standard, HB) with site S2 and device D3; engineers E-HA-3 (HA, relay
 * grade 3), E-HA-1 (HA, grade 1), E-HB-3 (HB, grade 3); rule R-temp
 * (temp_c > 85 for 2 s, clear 80, major, relay_protection grade 2);
 * SLA policy vip/major respond 3600 s.
 */
extern const char fixture_country[];

/*
 * Starts the harness, migrates and imports `import_json` (NULL: none).
 * Returns NULL on failure (logged).
 */
struct harness *fixture_start(const char *import_json);

/* Writes json to a file in the harness dir and runs `scctl import` on it. */
int fixture_import(struct harness *h, const char *json);

/* Waits for a message whose topic contains `topic` and whose payload
 * contains `needle`; other messages on that topic are taken and dropped.
 * Returns the payload (caller frees) or NULL on timeout. */
char *fixture_wait_payload(struct harness_mqtt *m, const char *topic, const char *needle,
			   int timeout_ms);

/*
 * Reads one series from the /metrics page of a program the harness started:
 * `series` is the exact text before the value, e.g.
 * `sc_ingest_messages_total{kind="telemetry",result="stored"}`.
 * Returns its value, or -1 when the page or the series is not there.
 */
double fixture_metric(struct harness *h, pid_t pid, const char *series);

/*
 * Polls fixture_metric until the series reads `want` or timeout_ms passes;
 * returns the last value read. A service counts an event when its commit
 * is answered, a little after the rows are visible to the test.
 */
double fixture_wait_metric(struct harness *h, pid_t pid, const char *series, double want,
			   int timeout_ms);

#endif

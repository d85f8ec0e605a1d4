#ifndef SC_BENCH_INGEST_GEN_H
#define SC_BENCH_INGEST_GEN_H

#include <stddef.h>
#include <stdint.h>

/*
 * The benchmark's device telemetry, made in one place so that what the
 * publisher sends over MQTT (pub.c) and what COPY writes straight into
 * PostgreSQL (copy.c) are the same data: same device ids, same metric names
 * and values, the same ~200-byte JSON.
 *
 * Device i (0-based) is "BD%05u" of i + 1, the ids run.sh imports. Message k
 * of a run goes to device k % ndevices with seq = seq_start + k / ndevices,
 * so every device's seq increases and runs with different seq_start never
 * collide with each other's (device_id, seq).
 */

#define GEN_DEVICE_ID_LEN 16
#define GEN_MAX_METRICS 64
/* Large enough for GEN_MAX_METRICS metrics. */
#define GEN_PAYLOAD_MAX 4096

/* Writes device i's id into buf (GEN_DEVICE_ID_LEN bytes). */
void gen_device_id(unsigned i, char *buf, size_t len);

/*
 * Writes the "metrics" object of one message, {"winding_temp_c": 71.234, ...}
 * with nmetrics entries (1..GEN_MAX_METRICS), values derived from seq.
 * Returns its length, or -1 if it does not fit.
 */
int gen_metrics(char *buf, size_t len, unsigned nmetrics, uint64_t seq);

/*
 * Writes a whole telemetry payload of contract section 2.1:
 * {"seq": 1000000042, "ts": "2026-11-23T08:00:00.250Z", "run_hours": 10042.1,
 *  "metrics": {...}} with ts = ts_us (millisecond precision).
 * Returns its length, or -1 if it does not fit.
 */
int gen_payload(char *buf, size_t len, uint64_t seq, int64_t ts_us, unsigned nmetrics);

/* The run_hours value gen_payload puts in a message of this seq. */
double gen_run_hours(uint64_t seq);

#endif

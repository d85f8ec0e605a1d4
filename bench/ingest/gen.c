/* The benchmark's telemetry payloads and rows (see gen.h). */
#include "gen.h"

#include <stdio.h>

#include "timeutil.h"

/* Names a substation device might report; past these, "<name>_<n>". */
static const char *const names[] = {
	"winding_temp_c", "load_pct", "busbar_voltage_kv", "feeder_current_a",
	"oil_temp_c", "frequency_hz", "power_factor", "humidity_pct",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

void gen_device_id(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "BD%05u", i + 1);
}

double gen_run_hours(uint64_t seq)
{
	return 10000.0 + (double)(seq % 1000000) / 10.0;
}

int gen_metrics(char *buf, size_t len, unsigned nmetrics, uint64_t seq)
{
	size_t off = 0;

	if (nmetrics < 1 || nmetrics > GEN_MAX_METRICS)
		return -1;
	for (unsigned i = 0; i < nmetrics; i++) {
		/* A value that changes with seq and metric but costs no libm:
		 * 10.000 .. 109.999 with three decimals, like real readings. */
		unsigned v = (unsigned)((seq * 2654435761u + i * 40503u) % 100000u);
		int n;

		if (i < NNAMES)
			n = snprintf(buf + off, len - off, "%s\"%s\": %u.%03u", i ? ", " : "{",
				     names[i], 10 + v / 1000, v % 1000);
		else
			n = snprintf(buf + off, len - off, ", \"%s_%u\": %u.%03u",
				     names[i % NNAMES], (unsigned)(i / NNAMES), 10 + v / 1000, v % 1000);
		if (n < 0 || (size_t)n >= len - off)
			return -1;
		off += (size_t)n;
	}
	if (off + 2 > len)
		return -1;
	buf[off++] = '}';
	buf[off] = '\0';
	return (int)off;
}

int gen_payload(char *buf, size_t len, uint64_t seq, int64_t ts_us, unsigned nmetrics)
{
	char ts[TIME_RFC3339_LEN], metrics[GEN_PAYLOAD_MAX];
	int n;

	if (time_format_rfc3339(ts_us, ts, sizeof(ts)) == NULL ||
	    gen_metrics(metrics, sizeof(metrics), nmetrics, seq) < 0)
		return -1;
	n = snprintf(buf, len, "{\"seq\": %llu, \"ts\": \"%s\", \"run_hours\": %.1f, \"metrics\": %s}",
		     (unsigned long long)seq, ts, gen_run_hours(seq), metrics);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

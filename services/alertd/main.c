/* sc-alertd: boot, signals and the loop; the work is in consumer.c,
 * evaluate.c, apply.c, state.c and ruleset.c (overview in alertd.h). */
#include <stdio.h>

#include "alertd.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

static const struct service_def def = {
	.program = "sc-alertd",
	.summary = "Alert evaluator: threshold, duration and hysteresis rules on device telemetry,\n"
		   "device alarm codes, silent devices, lifecycle (preventive maintenance) scan;\n"
		   "raises and clears alerts and opens their tickets.",
	/* No subscriptions: the MQTT client carries the outbox relay only. */
	.run_outbox = true,
};

static void register_metrics(struct alertd *a, struct metrics *m)
{
	static const char *alerts = "Alerts raised and cleared by sc-alertd, by source";
	char labels[80];

	/* Every source exists from the start, at 0, so dashboards see all
	 * series before the first alarm or lifecycle alert. */
	for (int s = 0; s < ALERTD_NSOURCES; s++) {
		snprintf(labels, sizeof(labels), "source=\"%s\",state=\"raised\"", alertd_source_name((enum alertd_source)s));
		a->m.raised[s] = metrics_counter(m, "sc_alertd_alerts_total", alerts, labels);
		snprintf(labels, sizeof(labels), "source=\"%s\",state=\"cleared\"", alertd_source_name((enum alertd_source)s));
		a->m.cleared[s] = metrics_counter(m, "sc_alertd_alerts_total", alerts, labels);
	}
	a->m.batches = metrics_counter(m, "sc_alertd_batches_applied_total",
				       "Ingest batches evaluated and applied", "");
	a->m.samples = metrics_counter(m, "sc_alertd_samples_evaluated_total",
				       "Telemetry samples run through the rules", "");
	a->m.alarms = metrics_counter(m, "sc_alertd_alarms_evaluated_total",
				      "Device alarm messages evaluated", "");
	a->m.flapping = metrics_counter(m, "sc_alertd_flapping_total",
					"Alerts folded as flapping (held firing instead of cleared)", "");
	a->m.partitions = metrics_gauge(m, "sc_alertd_partitions_held",
					"Device partitions this instance evaluates", "");
	a->m.unknown_codes = metrics_counter(m, "sc_alertd_alarm_unknown_codes_total",
					     "Device alarms raised whose code is not in the"
					     " alarm-code table of the device's model", "");
	a->m.lag_batches = metrics_gauge(m, "sc_alertd_cursor_lag_batches",
					 "Committed ingest batches not yet applied, as of the last read",
					 "");
	a->m.lag_seconds = metrics_gauge(m, "sc_alertd_cursor_lag_seconds",
					 "Age of the newest applied batch when it was applied", "");
	a->m.apply_errors = metrics_counter(m, "sc_alertd_apply_errors_total",
					    "Applies that failed and were retried", "");
	a->m.lifecycle_scans = metrics_counter(m, "sc_alertd_lifecycle_scans_total",
					       "Lifecycle scans completed", "");
	a->m.lifecycle_errors = metrics_counter(m, "sc_alertd_lifecycle_scan_errors_total",
						"Lifecycle scans that failed (retried next period)", "");
	a->m.lifecycle_due = metrics_gauge(m, "sc_alertd_lifecycle_due",
					   "(device, reason) pairs due for maintenance at the last scan",
					   "");
	a->m.lifecycle_seconds = metrics_histogram(m, "sc_alertd_lifecycle_scan_seconds",
						   "Duration of one lifecycle scan", "", NULL, 0);
	a->m.apply_seconds = metrics_histogram(m, "sc_alertd_apply_seconds",
					       "Duration of one apply statement", "", NULL, 0);
}

static bool drain(void *arg)
{
	struct alertd *a = arg;
	return consumer_idle(a) && lifecycle_idle(a);
}

static void reload(void *arg)
{
	ruleset_reload(arg);
}

int main(int argc, char **argv)
{
	static struct service svc;
	static struct alertd a;
	int rc = service_init(&svc, &def, argc, argv);

	if (rc != 0 || svc.base == NULL) {
		service_done(&svc);
		return rc;
	}
	a.svc = &svc;
	a.db = svc.db;
	svc.app = &a;
	svc.drain = drain;
	svc.reload = reload;
	a.flap.max_cycles = svc.cfg.alert_flap_cycles;
	a.flap.window_us = (int64_t)svc.cfg.alert_flap_window_s * 1000000;
	register_metrics(&a, svc.metrics);
	if (partition_init(&a) != 0 || state_init(&a) != 0 || apply_init(&a) != 0 ||
	    consumer_init(&a) != 0 ||
	    silent_init(&a) != 0 || lifecycle_init(&a) != 0 || ruleset_init(&a) != 0) {
		log_error("cannot start: out of memory");
		rc = 1;
		goto out;
	}
	rc = service_run(&svc);
out:
	/* Our events before the loop they belong to. */
	consumer_free(&a);
	silent_free(&a);
	lifecycle_free(&a);
	ruleset_free_all(&a);
	service_done(&svc);
	state_free(a.state);
	partition_free(&a);
	return rc;
}

/*
 * What sc-ingest keeps of the master data: the set of known device ids
 * (reloaded within seconds of an import), and the upkeep of the telemetry
 * partitions (made ahead, dropped after SC_TELEMETRY_RETENTION_DAYS).
 *
 * Until the first device list is loaded, MQTT delivery stays paused: a
 * message can only be judged "unknown_device" against a loaded registry.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "db.h"
#include "ingest.h"
#include "log.h"
#include "master.h"
#include "service.h"
#include "timeutil.h"

#define MAINT_INTERVAL_S 3600
#define PARTITIONS_BACK 1
#define PARTITIONS_AHEAD 3

static void on_devices(void *arg, const struct db_reply *r)
{
	struct ingest *in = arg;
	in->devices_loading = false;
	if (r->error != NULL) {
		log_error("device list not loaded: %s", r->error);
		return;
	}
	struct idmap *m = idmap_new();
	if (m == NULL)
		return;
	int n = PQntuples(r->res);
	for (int i = 0; i < n; i++) {
		if (idmap_add(m, PQgetvalue(r->res, i, 0), NULL) != 0) {
			idmap_free(m);
			log_error("device list not loaded: out of memory");
			return;
		}
	}
	idmap_seal(m);
	bool first = in->devices == NULL;
	idmap_free(in->devices);
	in->devices = m;
	log_info("device registry loaded devices=%d", n);
	if (first)
		service_pause_intake(in->svc, false);
}

static void on_master(void *arg, long long version)
{
	struct ingest *in = arg;
	if (in->devices_loading)
		return;
	in->devices_loading = true;
	if (db_exec_sql(in->svc->db, "SELECT id FROM device", 0, NULL, on_devices, in) != 0)
		in->devices_loading = false;
}

static void on_maint_done(void *arg, const struct db_reply *r)
{
	if (r->error != NULL)
		log_error("telemetry partition upkeep failed: %s", r->error);
	else
		log_debug("telemetry partitions made=%s", PQgetvalue(r->res, 0, 0));
}

static void maintain(struct ingest *in)
{
	char back[16], ahead[16], keep[16];
	snprintf(back, sizeof(back), "%d", PARTITIONS_BACK);
	snprintf(ahead, sizeof(ahead), "%d", PARTITIONS_AHEAD);
	const char *p1[] = { back, ahead };
	if (db_exec_sql(in->svc->db, "SELECT sc_telemetry_partitions($1::int, $2::int)", 2, p1,
			on_maint_done, in) != 0)
		log_error("telemetry partition upkeep not queued: out of memory");
	int64_t now = time_now_us();
	if (now - in->last_retention_us >= 86400 * TIME_US_PER_S) {
		in->last_retention_us = now;
		snprintf(keep, sizeof(keep), "%d", in->svc->cfg.telemetry_retention_days);
		const char *p2[] = { keep };
		if (db_exec_sql(in->svc->db, "SELECT sc_telemetry_retention($1::int)", 1, p2,
				on_maint_done, in) != 0)
			log_error("telemetry retention not queued: out of memory");
	}
}

static void on_maint_timer(evutil_socket_t fd, short what, void *arg)
{
	maintain(arg);
}

static void on_connect(void *arg)
{
	maintain(arg);
}

int registry_init(struct ingest *in)
{
	in->master = master_watch_new(in->svc->base, in->svc->db, on_master, in);
	in->maint_timer = event_new(in->svc->base, -1, EV_PERSIST, on_maint_timer, in);
	if (in->master == NULL || in->maint_timer == NULL)
		return -1;
	struct timeval tv = { MAINT_INTERVAL_S, 0 };
	event_add(in->maint_timer, &tv);
	service_pause_intake(in->svc, true);
	return db_on_connect(in->svc->db, on_connect, in);
}

void registry_free(struct ingest *in)
{
	master_watch_free(in->master);
	if (in->maint_timer != NULL)
		event_free(in->maint_timer);
	idmap_free(in->devices);
	in->master = NULL;
	in->maint_timer = NULL;
	in->devices = NULL;
}

bool registry_has_device(const struct ingest *in, const char *id)
{
	return in->devices != NULL && idmap_find(in->devices, id, NULL);
}

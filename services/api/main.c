/* sc-api: boot, signals and the loop; the work is in http.c (server,
 * routes, limits, metrics), auth.c (tokens), scope.c (the caller's scope in
 * every statement) and the endpoint files. */
#include <stdbool.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "service.h"

static const struct service_def def = {
	.program = API_PROGRAM,
	.summary = "HTTP API and zone dashboard for dispatchers, partners, engineers and\n"
		   "province service centers (SC_HTTP_ADDR); every call scoped by its token.",
};

static struct api app;

/* GET /healthz (no token): 200 when a database connection is up. */
void health_get(struct api_call *c)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	if (pool_connected(c->api->pool))
		api_reply_json(c, 200, ok, sizeof(ok) - 1);
	else
		api_reply_error(c, 503, "unavailable", "the database is not reachable");
}

/* Stop: accept no new connection; done once every answer went out. */
static bool drain(void *arg)
{
	struct api *a = arg;
	http_stop_accepting(a);
	return a->inflight_n == 0;
}

int main(int argc, char **argv)
{
	static struct service svc;
	int rc = service_init(&svc, &def, argc, argv);
	if (rc != 0 || svc.base == NULL)
		goto out;
	app.svc = &svc;
	svc.app = &app;
	svc.drain = drain;
	if ((app.pool = pool_new(&svc, svc.cfg.api_db_connections)) == NULL ||
	    (app.auth = auth_new(&app)) == NULL || scope_prepare(app.pool) != 0) {
		log_error("cannot start: out of memory");
		rc = 1;
		goto out;
	}
	if (http_init(&app) != 0) {
		rc = 1;
		goto out;
	}
	rc = service_run(&svc);
out:
	/* The server before the loop it lives on. */
	http_free(&app);
	auth_free(app.auth);
	pool_free(app.pool);
	service_done(&svc);
	return rc;
}

/*
 * The master-data file of contract section 3, section by section: the
 * fields each entry may hold (type, range, default, what it refers to),
 * the rules across fields that one field cannot state, and the upsert.
 * import_build.c walks these tables; import.c runs the upserts.
 */
#include "import.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define INT32_TOP 2147483647.0

/* ---- vocabulary (spellings as in domain.h and the schema's CHECKs) ----- */

static const char *const tiers[] = {"vip", "key", "standard", NULL};
static const char *const severities[] = {"critical", "major", "minor", NULL};
static const char *const categories[] = {"fault", "maintenance", "installation", "training",
					 "consultation", "complaint", NULL};
static const char *const kinds[] = {"onsite", "remote", NULL};
static const char *const ops[] = {">", ">=", "<", "<=", "==", "!=", "silent", NULL};

/* ---- upserts ------------------------------------------------------------ */

/*
 * Every upsert writes only when something differs, and says whether it
 * inserted: xmax is 0 on a freshly inserted row version and set (to our
 * own transaction, by the conflict's row lock) on an updated one.
 */
#define CHANGED " WHERE (t.*) IS DISTINCT FROM (EXCLUDED.*) RETURNING (t.xmax = 0)"

#define FK(noun) .ref = (noun)
/* Designated initializers, so unnamed attributes are zero without -Wextra
 * asking for every one of them. */
#define F(k, t, fl, ...) {.key = (k), .type = (t), .flags = (fl), __VA_ARGS__}
/* Unknown values of a text[] parameter. */
#define UNKNOWN_IN(table, col) \
	"SELECT x FROM unnest($1::text[]) AS x WHERE NOT EXISTS " \
	"(SELECT 1 FROM " table " WHERE " col " = x) LIMIT 1"

static const struct import_field settings_fields[] = {
	F("offer_timeout_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("max_offer_attempts", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 1, .max = 1000),
	F("travel_kmh", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("return_visit_after_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("kpi_interval_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("lifecycle_scan_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	/* Extensions (issue 6, docs/sla.md): complaint policy, return visits. */
	F("complaint_reply_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("complaint_resolve_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("complaint_escalation_level", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 1, .max = 3),
	F("return_visit_timeout_s", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
};

static const struct import_field province_fields[] = {
	F("code", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("name", IMPORT_TEXT, IMPORT_REQUIRED),
	F("lat", IMPORT_NUM, IMPORT_MIN | IMPORT_MAX, .min = -90, .max = 90),
	F("lon", IMPORT_NUM, IMPORT_MIN | IMPORT_MAX, .min = -180, .max = 180),
};

static const struct import_field calendar_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("tz", IMPORT_TZ, 0, .dflt = "Asia/Shanghai"),
	F("hours", IMPORT_HOURS, 0),
	F("weekdays", IMPORT_WEEKDAYS, IMPORT_NONEMPTY, .dflt = "{1,2,3,4,5,6,7}"),
	F("holidays", IMPORT_DATE_LIST, 0, .dflt = "{}"),
	F("workdays", IMPORT_DATE_LIST, 0, .dflt = "{}"),
};

static const struct import_field customer_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("name", IMPORT_TEXT, 0, .dflt = ""),
	F("tier", IMPORT_ENUM, 0, .choices = tiers, .dflt = "standard"),
	F("province", IMPORT_ID, 0, FK("province")),
};

static const struct import_field site_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("customer_id", IMPORT_ID, IMPORT_REQUIRED, FK("customer")),
	F("province", IMPORT_ID, IMPORT_REQUIRED, FK("province")),
	F("lat", IMPORT_NUM, IMPORT_MIN | IMPORT_MAX, .min = -90, .max = 90),
	F("lon", IMPORT_NUM, IMPORT_MIN | IMPORT_MAX, .min = -180, .max = 180),
	F("address", IMPORT_TEXT, 0, .dflt = ""),
};

static const struct import_field device_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("site_id", IMPORT_ID, IMPORT_REQUIRED, FK("site")),
	F("model", IMPORT_ID, IMPORT_REQUIRED),
	F("commissioned_on", IMPORT_DATE, 0),
	F("design_life_years", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("maint_interval_hours", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("maint_interval_days", IMPORT_NUM, IMPORT_MIN_EXCL, .min = 0),
	F("last_maintenance_at", IMPORT_TIMESTAMP, 0),
	F("last_maintenance_run_hours", IMPORT_NUM, IMPORT_MIN, .min = 0),
	F("run_hours", IMPORT_NUM, IMPORT_MIN, .min = 0),
};

static const struct import_field engineer_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("name", IMPORT_TEXT, 0, .dflt = ""),
	F("kind", IMPORT_ENUM, 0, .choices = kinds, .dflt = "onsite"),
	F("province", IMPORT_ID, 0, FK("province")),
	F("coverage", IMPORT_ID_LIST, 0, .dflt = "{}", .dflt_from = "province", .ref = "province",
	 .ref_sql = UNKNOWN_IN("province", "code")),
	F("lat", IMPORT_NUM, IMPORT_MIN | IMPORT_MAX, .min = -90, .max = 90),
	F("lon", IMPORT_NUM, IMPORT_MIN | IMPORT_MAX, .min = -180, .max = 180),
	F("skills", IMPORT_SKILLS, 0, .dflt = "{}"),
	F("max_concurrent", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 0, .max = 1000, .dflt = "1"),
	F("shift", IMPORT_ID, 0, .dflt = "24x7", .ref = "calendar",
	 .ref_sql = "SELECT $1::text WHERE NOT EXISTS (SELECT 1 FROM calendar WHERE id = $1)"),
};

static const struct import_field partner_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("name", IMPORT_TEXT, 0, .dflt = ""),
	F("provinces", IMPORT_ID_LIST, 0, .dflt = "{}", .ref = "province",
	 .ref_sql = UNKNOWN_IN("province", "code")),
	F("skills", IMPORT_SKILLS, 0, .dflt = "{}"),
	F("capacity", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 0, .max = 1000000, .dflt = "1"),
	F("certified_until", IMPORT_DATE, 0),
	F("response_s", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 0, .max = INT32_TOP,
	 .dflt = "7200"),
	F("cost_per_job", IMPORT_NUM, IMPORT_MIN, .min = 0, .dflt = "0"),
};

static const struct import_field alert_rule_fields[] = {
	F("id", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("model", IMPORT_MODEL, 0, .dflt = "*"),
	F("metric", IMPORT_METRIC, 0),
	F("op", IMPORT_ENUM, IMPORT_REQUIRED, .choices = ops),
	F("threshold", IMPORT_NUM, 0),
	F("for_s", IMPORT_NUM, IMPORT_MIN, .min = 0, .dflt = "0"),
	F("clear", IMPORT_NUM, 0),
	F("severity", IMPORT_ENUM, 0, .choices = severities, .dflt = "major"),
	F("skill", IMPORT_ID, IMPORT_REQUIRED),
	F("min_grade", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 1, .max = 4, .dflt = "1"),
	F("category", IMPORT_ENUM, 0, .choices = categories, .dflt = "fault"),
	F("remote_ok", IMPORT_BOOL, 0, .dflt = "false"),
};

static const struct import_field alarm_code_fields[] = {
	F("model", IMPORT_MODEL, IMPORT_REQUIRED | IMPORT_KEY),
	F("code", IMPORT_ID, IMPORT_REQUIRED | IMPORT_KEY),
	F("severity", IMPORT_ENUM, 0, .choices = severities, .dflt = "major"),
	F("skill", IMPORT_ID, IMPORT_REQUIRED),
	F("min_grade", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 1, .max = 4, .dflt = "1"),
	F("remote_ok", IMPORT_BOOL, 0, .dflt = "false"),
	F("category", IMPORT_ENUM, 0, .choices = categories, .dflt = "fault"),
};

static const struct import_field request_rule_fields[] = {
	F("category", IMPORT_ENUM, IMPORT_REQUIRED | IMPORT_KEY, .choices = categories),
	F("model", IMPORT_MODEL, IMPORT_KEY, .dflt = "*"),
	F("skill", IMPORT_ID, IMPORT_REQUIRED),
	F("min_grade", IMPORT_INT, IMPORT_MIN | IMPORT_MAX, .min = 1, .max = 4, .dflt = "1"),
	F("remote_ok", IMPORT_BOOL, 0, .dflt = "false"),
};

static const struct import_field sla_policy_fields[] = {
	F("tier", IMPORT_ENUM, IMPORT_REQUIRED | IMPORT_KEY, .choices = tiers),
	F("severity", IMPORT_ENUM, IMPORT_REQUIRED | IMPORT_KEY, .choices = severities),
	F("respond_s", IMPORT_INT, IMPORT_REQUIRED | IMPORT_MIN | IMPORT_MAX, .min = 1, .max = INT32_TOP),
	F("arrive_s", IMPORT_INT, IMPORT_REQUIRED | IMPORT_MIN | IMPORT_MAX, .min = 1, .max = INT32_TOP),
	F("resolve_s", IMPORT_INT, IMPORT_REQUIRED | IMPORT_MIN | IMPORT_MAX, .min = 1, .max = INT32_TOP),
	F("calendar", IMPORT_ID, 0, .dflt = "24x7", FK("calendar")),
	F("warn_pct", IMPORT_NUM, IMPORT_MIN_EXCL | IMPORT_MAX_EXCL, .min = 0, .max = 100,
	 .dflt = "75"),
};

static const struct import_field escalation_fields[] = {
	F("level", IMPORT_INT, IMPORT_REQUIRED | IMPORT_KEY | IMPORT_MIN | IMPORT_MAX, .min = 1,
	 .max = 3),
	F("at_pct", IMPORT_NUM, IMPORT_REQUIRED | IMPORT_MIN_EXCL, .min = 0),
	F("role", IMPORT_TEXT, IMPORT_REQUIRED | IMPORT_NONEMPTY),
};

static void err_set(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static bool has(const cJSON *e, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);

	return v && !cJSON_IsNull(v);
}

static const char *str_of(const cJSON *e, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int check_calendar(const cJSON *e, char *err, size_t len)
{
	const char *id = str_of(e, "id");

	/* The contract defines these two; redefining them would change
	 * every SLA that names them behind the reader's back. */
	if (strcmp(id, "24x7") == 0 || strcmp(id, "business") == 0) {
		err_set(err, len, "id: \"%s\" is a built-in calendar and cannot be redefined", id);
		return -1;
	}
	return 0;
}

static int check_engineer(const cJSON *e, char *err, size_t len)
{
	const char *kind = str_of(e, "kind");

	if ((!kind || strcmp(kind, "onsite") == 0) && !has(e, "province")) {
		err_set(err, len, "province: is required for an onsite engineer");
		return -1;
	}
	return 0;
}

static int check_alert_rule(const cJSON *e, char *err, size_t len)
{
	const char *op = str_of(e, "op");
	const cJSON *threshold = cJSON_GetObjectItemCaseSensitive(e, "threshold");
	const cJSON *clear = cJSON_GetObjectItemCaseSensitive(e, "clear");

	if (strcmp(op, "silent") == 0) {
		if (has(e, "threshold") || has(e, "clear")) {
			err_set(err, len, "%s: not allowed with op \"silent\"",
				has(e, "threshold") ? "threshold" : "clear");
			return -1;
		}
		return 0;
	}
	if (!has(e, "metric") || !has(e, "threshold")) {
		err_set(err, len, "%s: is required with op \"%s\"",
			has(e, "metric") ? "threshold" : "metric", op);
		return -1;
	}
	if (!has(e, "clear"))
		return 0;
	/* Hysteresis (contract section 6): a rising rule clears at or below
	 * `clear`, so `clear` above the threshold could never hold while firing. */
	if (op[0] == '>' && clear->valuedouble > threshold->valuedouble) {
		err_set(err, len, "clear: must be at or below threshold for op \"%s\"", op);
		return -1;
	}
	if (op[0] == '<' && clear->valuedouble < threshold->valuedouble) {
		err_set(err, len, "clear: must be at or above threshold for op \"%s\"", op);
		return -1;
	}
	if (op[0] == '=' || op[0] == '!') {
		err_set(err, len, "clear: only for ops >, >=, < and <=");
		return -1;
	}
	return 0;
}

#define FIELDS(a) .fields = (a), .nfields = sizeof(a) / sizeof((a)[0])

/* In dependency order: what an entry refers to is upserted before it. */
const struct import_section import_sections[] = {
	{.name = "settings", .table = "setting", .object = true, FIELDS(settings_fields),
	 .sql = "INSERT INTO setting AS t (key, value) VALUES ($1, $2::float8)"
		" ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value" CHANGED},
	{.name = "provinces", .table = "province", FIELDS(province_fields),
	 .sql = "INSERT INTO province AS t (code, name, lat, lon)"
		" VALUES ($1, $2, $3::float8, $4::float8)"
		" ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, lat = EXCLUDED.lat,"
		" lon = EXCLUDED.lon" CHANGED},
	{.name = "calendars", .table = "calendar", FIELDS(calendar_fields), .check = check_calendar,
	 .sql = "INSERT INTO calendar AS t (id, tz, day_start, day_end, weekdays, holidays, workdays)"
		" VALUES ($1, $2, $3::time, $4::time, $5::int[], $6::date[], $7::date[])"
		" ON CONFLICT (id) DO UPDATE SET tz = EXCLUDED.tz, day_start = EXCLUDED.day_start,"
		" day_end = EXCLUDED.day_end, weekdays = EXCLUDED.weekdays,"
		" holidays = EXCLUDED.holidays, workdays = EXCLUDED.workdays" CHANGED},
	{.name = "customers", .table = "customer", FIELDS(customer_fields),
	 .sql = "INSERT INTO customer AS t (id, name, tier, province) VALUES ($1, $2, $3, $4)"
		" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, tier = EXCLUDED.tier,"
		" province = EXCLUDED.province" CHANGED},
	{.name = "sites", .table = "site", FIELDS(site_fields),
	 .sql = "INSERT INTO site AS t (id, customer_id, province, lat, lon, address)"
		" VALUES ($1, $2, $3, $4::float8, $5::float8, $6)"
		" ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id,"
		" province = EXCLUDED.province, lat = EXCLUDED.lat, lon = EXCLUDED.lon,"
		" address = EXCLUDED.address" CHANGED},
	{.name = "devices", .table = "device", FIELDS(device_fields),
	 .sql = "INSERT INTO device AS t (id, site_id, model, commissioned_on, design_life_years,"
		" maint_interval_hours, maint_interval_days, last_maintenance_at,"
		" last_maintenance_run_hours, run_hours)"
		" VALUES ($1, $2, $3, $4::date, $5::float8, $6::float8, $7::float8,"
		" $8::timestamptz, $9::float8, $10::float8)"
		" ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id, model = EXCLUDED.model,"
		" commissioned_on = EXCLUDED.commissioned_on,"
		" design_life_years = EXCLUDED.design_life_years,"
		" maint_interval_hours = EXCLUDED.maint_interval_hours,"
		" maint_interval_days = EXCLUDED.maint_interval_days,"
		" last_maintenance_at = EXCLUDED.last_maintenance_at,"
		" last_maintenance_run_hours = EXCLUDED.last_maintenance_run_hours,"
		" run_hours = EXCLUDED.run_hours" CHANGED},
	{.name = "engineers", .table = "engineer", FIELDS(engineer_fields), .check = check_engineer,
	 .sql = "INSERT INTO engineer AS t (id, name, kind, province, coverage, lat, lon, skills,"
		" max_concurrent, shift)"
		" VALUES ($1, $2, $3, $4, $5::text[], $6::float8, $7::float8, $8::jsonb, $9::int, $10)"
		" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
		" province = EXCLUDED.province, coverage = EXCLUDED.coverage, lat = EXCLUDED.lat,"
		" lon = EXCLUDED.lon, skills = EXCLUDED.skills,"
		" max_concurrent = EXCLUDED.max_concurrent, shift = EXCLUDED.shift" CHANGED},
	{.name = "partners", .table = "partner", FIELDS(partner_fields),
	 .sql = "INSERT INTO partner AS t (id, name, provinces, skills, capacity, certified_until,"
		" response_s, cost_per_job)"
		" VALUES ($1, $2, $3::text[], $4::jsonb, $5::int, $6::date, $7::int, $8::float8)"
		" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, provinces = EXCLUDED.provinces,"
		" skills = EXCLUDED.skills, capacity = EXCLUDED.capacity,"
		" certified_until = EXCLUDED.certified_until, response_s = EXCLUDED.response_s,"
		" cost_per_job = EXCLUDED.cost_per_job" CHANGED},
	{.name = "alert_rules", .table = "alert_rule", FIELDS(alert_rule_fields),
	 .check = check_alert_rule,
	 .sql = "INSERT INTO alert_rule AS t (id, model, metric, op, threshold, for_s, clear,"
		" severity, skill, min_grade, category, remote_ok)"
		" VALUES ($1, $2, $3, $4, $5::float8, $6::float8, $7::float8, $8, $9, $10::int, $11,"
		" $12::boolean)"
		" ON CONFLICT (id) DO UPDATE SET model = EXCLUDED.model, metric = EXCLUDED.metric,"
		" op = EXCLUDED.op, threshold = EXCLUDED.threshold, for_s = EXCLUDED.for_s,"
		" clear = EXCLUDED.clear, severity = EXCLUDED.severity, skill = EXCLUDED.skill,"
		" min_grade = EXCLUDED.min_grade, category = EXCLUDED.category,"
		" remote_ok = EXCLUDED.remote_ok" CHANGED},
	{.name = "alarm_codes", .table = "alarm_code", FIELDS(alarm_code_fields),
	 .sql = "INSERT INTO alarm_code AS t (model, code, severity, skill, min_grade, remote_ok,"
		" category) VALUES ($1, $2, $3, $4, $5::int, $6::boolean, $7)"
		" ON CONFLICT (model, code) DO UPDATE SET severity = EXCLUDED.severity,"
		" skill = EXCLUDED.skill, min_grade = EXCLUDED.min_grade,"
		" remote_ok = EXCLUDED.remote_ok, category = EXCLUDED.category" CHANGED},
	{.name = "request_rules", .table = "request_rule", FIELDS(request_rule_fields),
	 .sql = "INSERT INTO request_rule AS t (category, model, skill, min_grade, remote_ok)"
		" VALUES ($1, $2, $3, $4::int, $5::boolean)"
		" ON CONFLICT (category, model) DO UPDATE SET skill = EXCLUDED.skill,"
		" min_grade = EXCLUDED.min_grade, remote_ok = EXCLUDED.remote_ok" CHANGED},
	{.name = "sla_policies", .table = "sla_policy", FIELDS(sla_policy_fields),
	 .sql = "INSERT INTO sla_policy AS t (tier, severity, respond_s, arrive_s, resolve_s,"
		" calendar, warn_pct) VALUES ($1, $2, $3::int, $4::int, $5::int, $6, $7::float8)"
		" ON CONFLICT (tier, severity) DO UPDATE SET respond_s = EXCLUDED.respond_s,"
		" arrive_s = EXCLUDED.arrive_s, resolve_s = EXCLUDED.resolve_s,"
		" calendar = EXCLUDED.calendar, warn_pct = EXCLUDED.warn_pct" CHANGED},
	{.name = "escalation", .table = "escalation_level", FIELDS(escalation_fields),
	 .sql = "INSERT INTO escalation_level AS t (level, at_pct, role)"
		" VALUES ($1::int, $2::float8, $3)"
		" ON CONFLICT (level) DO UPDATE SET at_pct = EXCLUDED.at_pct, role = EXCLUDED.role"
		CHANGED,
	 /* Levels fire in order (contract section 6), so their thresholds must
	  * grow; checked on the table, as a file may change one level only. */
	 .after_sql = "SELECT format('at_pct must grow with the level, but level %s has %s"
		      " and level %s has %s', prev_level, prev_pct, level, at_pct)"
		      " FROM (SELECT level, at_pct, lag(level) OVER w AS prev_level,"
		      " lag(at_pct) OVER w AS prev_pct FROM escalation_level"
		      " WINDOW w AS (ORDER BY level)) s"
		      " WHERE at_pct <= prev_pct ORDER BY level LIMIT 1"},
};

const size_t import_nsections = sizeof(import_sections) / sizeof(import_sections[0]);


/*
 * scctl broker-auth --out DIR [--frontdesk NAME]...: the broker's accounts
 * made from the master data (docs/broker-security.md).
 *
 * Writes three files into DIR for deploy/mosquitto-prod.conf.in:
 *   passwd       mosquitto password_file, PBKDF2-SHA512 ("$7$") hashes
 *   acl          mosquitto acl_file
 *   credentials  each account's user name and password in clear (0600),
 *                "KIND USER PASSWORD" per line, for handing out
 *
 * Accounts: one per device, engineer and partner (the user name is the id),
 * one per front desk (--frontdesk, default "frontdesk") and one per service
 * that talks MQTT (sc-ingest, sc-alertd, sc-dispatch, sc-slamon, sc-sim;
 * sc-api and scctl never connect to the broker).
 *
 * Devices, engineers and partners get their rights from ACL `pattern` lines
 * with %u, so the ACL file stays the same size for 100k devices. A pattern
 * applies to every user, so a user name must never be the id of an actor of
 * another kind (engineer E1 would also be device E1): a clash is refused.
 * Ids starting with "sc-" are refused too: the actors' listener makes the
 * client id the user name, and "sc-" client ids are the services'.
 *
 * Re-running is idempotent: an account that exists in DIR/credentials with
 * the same kind keeps its password (and its passwd line, if it still
 * verifies); new actors get a fresh one; actors gone from the database are
 * left out of all three files. Each file is replaced atomically.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "scctl.h"

#define WHAT "broker-auth"

/* mosquitto 2.0's own choice (mosquitto_passwd): PBKDF2-SHA512, 101 rounds,
 * 12-byte salt, 64-byte hash, standard base64. */
#define HASH_ROUNDS 101
#define SALT_LEN 12
#define HASH_LEN 64
/* 24 random bytes: 192 bits, 32 characters of base64url. */
#define PASS_BYTES 24
#define ID_MAX 64

/* Services and what each may do besides its outbox relay (common/outbox.h):
 * the subscriptions in its code, and sc-sim's traffic as every actor. */
struct service_acl {
	const char *name;
	bool outbox;                 /* runs an outbox relay: may publish every outbox topic */
	const char *const *read;     /* NULL-terminated */
	const char *const *write;    /* NULL-terminated */
};

static const char *const none[] = {NULL};
static const char *const ingest_read[] = {"sc/v1/dev/#", "sc/v1/requests/new", NULL};
static const char *const dispatch_read[] = {"sc/v1/engineers/+/events", "sc/v1/partners/+/events",
					    "sc/v1/engineers/+/status", NULL};
static const char *const slamon_read[] = {"sc/v1/requests/+/feedback", NULL};
static const char *const sim_read[] = {"sc/v1/engineers/+/orders", "sc/v1/partners/+/orders", NULL};
static const char *const sim_write[] = {"sc/v1/dev/+/telemetry", "sc/v1/dev/+/alarm",
					"sc/v1/requests/new", "sc/v1/engineers/+/events",
					"sc/v1/engineers/+/status", "sc/v1/partners/+/events", NULL};

static const struct service_acl services[] = {
	{"sc-ingest", true, ingest_read, none},
	{"sc-alertd", true, none, none},
	{"sc-dispatch", true, dispatch_read, none},
	{"sc-slamon", true, slamon_read, none},
	{"sc-sim", false, sim_read, sim_write},
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

/* Every topic the schema's sc_outbox() calls write (the schema files): whichever
 * service leads the relay publishes all of them. A publish the ACL refuses
 * is acknowledged and dropped by the broker, and the relay would delete the
 * row: this list must follow the schema. */
static const char *const outbox_topics[] = {
	"sc/v1/ops/+/tickets", "sc/v1/ops/+/sla", "sc/v1/ops/+/escalations", "sc/v1/ops/+/kpi",
	"sc/v1/requests/+/status", "sc/v1/engineers/+/orders", "sc/v1/partners/+/orders",
	"sc/v1/rejected", NULL,
};

/* What a front desk (hotline, web, app, e-mail gateway) does: contract 2.2, 2.5. */
static const char *const frontdesk_read[] = {"sc/v1/requests/+/status", NULL};
static const char *const frontdesk_write[] = {"sc/v1/requests/new", "sc/v1/requests/+/feedback",
					      NULL};

/* One account, or one line of an old file (then `secret` is its password
 * or passwd hash). */
struct account {
	const char *kind;   /* "service", "frontdesk", "device", "engineer", "partner" */
	char *name;         /* user name */
	char *secret;       /* password (NULL until chosen) */
	char *kind_old;     /* kind read from an old credentials file, else NULL */
	char *hash;         /* passwd hash "$7$...", NULL until made */
};

struct accounts {
	struct account *v;
	size_t n, cap;
};

static void accounts_free(struct accounts *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].name);
		if (a->v[i].secret != NULL) {
			OPENSSL_cleanse(a->v[i].secret, strlen(a->v[i].secret));
			free(a->v[i].secret);
		}
		free(a->v[i].kind_old);
		free(a->v[i].hash);
	}
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

/* Appends an account named name (copied). Returns it, or NULL (printed). */
static struct account *accounts_add(struct accounts *a, const char *kind, const char *name)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct account *v = realloc(a->v, cap * sizeof(*v));
		if (v == NULL) {
			scctl_error(WHAT, "out of memory");
			return NULL;
		}
		a->v = v;
		a->cap = cap;
	}
	struct account *ac = &a->v[a->n];
	memset(ac, 0, sizeof(*ac));
	ac->kind = kind;
	if ((ac->name = strdup(name)) == NULL) {
		scctl_error(WHAT, "out of memory");
		return NULL;
	}
	a->n++;
	return ac;
}

static int by_name(const void *x, const void *y)
{
	return strcmp(((const struct account *)x)->name, ((const struct account *)y)->name);
}

static struct account *accounts_find(const struct accounts *a, const char *name)
{
	struct account key = {.name = (char *)name};
	return a->n ? bsearch(&key, a->v, a->n, sizeof(a->v[0]), by_name) : NULL;
}

/* Contract section 2: ids are 1-64 characters of [A-Za-z0-9._-]. The ACL
 * substitutes user names into topics, so nothing else may pass ('+', '#',
 * '/' would widen a pattern; ':' would break the passwd line). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* ---- secrets ---------------------------------------------------------- */

/* A fresh password: PASS_BYTES random bytes as base64url. NULL (printed). */
static char *password_new(void)
{
	unsigned char raw[PASS_BYTES];
	char *out = malloc(PASS_BYTES / 3 * 4 + 1);
	if (out == NULL || RAND_bytes(raw, sizeof(raw)) != 1) {
		scctl_error(WHAT, "cannot make a password: %s", out ? "no randomness" : "out of memory");
		free(out);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
	/* base64url: the password goes into environment files and shells. */
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	OPENSSL_cleanse(raw, sizeof(raw));
	return out;
}

/* "$7$ROUNDS$salt$hash" of pass with the given salt, into out. 0 or -1. */
static int hash_with_salt(const char *pass, const unsigned char *salt, int rounds, char *out,
			  size_t outlen)
{
	unsigned char h[HASH_LEN];
	char salt64[SALT_LEN / 3 * 4 + 1], hash64[(HASH_LEN + 2) / 3 * 4 + 1];
	if (PKCS5_PBKDF2_HMAC(pass, (int)strlen(pass), salt, SALT_LEN, rounds, EVP_sha512(),
			      HASH_LEN, h) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)salt64, salt, SALT_LEN);
	EVP_EncodeBlock((unsigned char *)hash64, h, HASH_LEN);
	int n = snprintf(out, outlen, "$7$%d$%s$%s", rounds, salt64, hash64);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

#define HASH_LINE_MAX 160

/* Does hash ("$7$ROUNDS$salt$hash", as written by us or mosquitto_passwd)
 * belong to pass? Anything unparsable is simply "no": it gets a new hash. */
static bool hash_matches(const char *hash, const char *pass)
{
	unsigned char salt[SALT_LEN + 3];
	char mine[HASH_LINE_MAX];
	char *end = NULL;
	if (strncmp(hash, "$7$", 3) != 0)
		return false;
	long rounds = strtol(hash + 3, &end, 10);
	if (rounds < 1 || rounds > 1000000 || *end != '$' || strlen(end + 1) < SALT_LEN / 3 * 4 + 1 ||
	    end[1 + SALT_LEN / 3 * 4] != '$')
		return false;
	if (EVP_DecodeBlock(salt, (const unsigned char *)end + 1, SALT_LEN / 3 * 4) != SALT_LEN)
		return false;
	if (hash_with_salt(pass, salt, (int)rounds, mine, sizeof(mine)) != 0)
		return false;
	size_t n = strlen(mine);
	return strlen(hash) == n && CRYPTO_memcmp(mine, hash, n) == 0;
}

/* A new "$7$" hash of pass. NULL (printed). */
static char *hash_new(const char *pass)
{
	unsigned char salt[SALT_LEN];
	char line[HASH_LINE_MAX];
	char *out = NULL;
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    hash_with_salt(pass, salt, HASH_ROUNDS, line, sizeof(line)) != 0 ||
	    (out = strdup(line)) == NULL)
		scctl_error(WHAT, "cannot hash a password");
	return out;
}

/* ---- the old files ---------------------------------------------------- */

/*
 * Reads an earlier run's file: credentials ("KIND USER PASSWORD") when
 * creds, else passwd ("USER:HASH"). A missing file is empty. Sorted by name.
 * 0 or -1 (printed).
 */
static int load_old(const char *path, bool creds, struct accounts *out)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = -1;

	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		scctl_error(WHAT, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *kind = NULL, *name = line, *secret;
		if (creds) {
			kind = line;
			name = strchr(kind, ' ');
			if (name == NULL)
				continue;
			*name++ = '\0';
			secret = strchr(name, ' ');
		} else {
			secret = strchr(name, ':');
		}
		if (secret == NULL)
			continue;
		*secret++ = '\0';
		struct account *ac = accounts_add(out, "", name);
		if (ac == NULL)
			goto out;
		if ((ac->secret = strdup(secret)) == NULL ||
		    (kind != NULL && (ac->kind_old = strdup(kind)) == NULL)) {
			scctl_error(WHAT, "out of memory");
			goto out;
		}
	}
	if (ferror(f)) {
		scctl_error(WHAT, "cannot read %s", path);
		goto out;
	}
	qsort(out->v, out->n, sizeof(out->v[0]), by_name);
	rc = 0;
out:
	if (line != NULL)
		OPENSSL_cleanse(line, cap);
	free(line);
	fclose(f);
	return rc;
}

/* ---- the accounts ----------------------------------------------------- */

/* Devices, engineers and partners from the database. 0 or -1 (printed). */
static int load_actors(PGconn *conn, struct accounts *a)
{
	static const char *const kinds[] = {"device", "engineer", "partner"};
	PGresult *res = PQexecParams(conn,
				     "SELECT 0, id FROM device UNION ALL SELECT 1, id FROM engineer"
				     " UNION ALL SELECT 2, id FROM partner",
				     0, NULL, NULL, NULL, NULL, 0);
	char why[512];
	int rc = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		scctl_error(WHAT, "%s", scctl_pg_why(conn, res, why, sizeof(why)));
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *kind = kinds[atoi(PQgetvalue(res, i, 0))];
		const char *id = PQgetvalue(res, i, 1);
		if (!name_ok(id)) {
			scctl_error(WHAT, "%s id \"%s\" cannot be a broker user name "
				    "(1-64 characters of A-Z a-z 0-9 . _ -)", kind, id);
			goto out;
		}
		if (strncmp(id, "sc-", 3) == 0) {
			scctl_error(WHAT, "%s id \"%s\": ids starting with \"sc-\" are the services' "
				    "client ids on the broker", kind, id);
			goto out;
		}
		if (accounts_add(a, kind, id) == NULL)
			goto out;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* Sorts a and refuses a user name given twice. 0 or -1 (printed). */
static int check_unique(struct accounts *a)
{
	qsort(a->v, a->n, sizeof(a->v[0]), by_name);
	for (size_t i = 1; i < a->n; i++) {
		if (strcmp(a->v[i - 1].name, a->v[i].name) == 0) {
			scctl_error(WHAT, "\"%s\" is both a %s and a %s: broker user names must be "
				    "unique (ACL patterns apply to every user)",
				    a->v[i].name, a->v[i - 1].kind, a->v[i].kind);
			return -1;
		}
	}
	return 0;
}

/* Gives each account its old password and hash where they still hold, new
 * ones otherwise. Counts the accounts that are new. 0 or -1 (printed). */
static int choose_secrets(struct accounts *a, const struct accounts *old_creds,
			  const struct accounts *old_hashes, size_t *fresh)
{
	*fresh = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct account *ac = &a->v[i];
		const struct account *oc = accounts_find(old_creds, ac->name);
		/* Same name, other kind: another actor, which must not inherit. */
		if (oc != NULL && oc->kind_old != NULL && strcmp(oc->kind_old, ac->kind) == 0 &&
		    name_ok(oc->secret)) {
			if ((ac->secret = strdup(oc->secret)) == NULL) {
				scctl_error(WHAT, "out of memory");
				return -1;
			}
		} else {
			if ((ac->secret = password_new()) == NULL)
				return -1;
			(*fresh)++;
		}
		const struct account *oh = accounts_find(old_hashes, ac->name);
		if (oh != NULL && hash_matches(oh->secret, ac->secret))
			ac->hash = strdup(oh->secret);
		else
			ac->hash = hash_new(ac->secret);
		if (ac->hash == NULL) {
			scctl_error(WHAT, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* ---- writing ---------------------------------------------------------- */

/*
 * Opens tmp, the new version of path, with mode (whatever the umask). It
 * keeps the group of an existing path: the operator gives passwd to group
 * mosquitto once (docs/broker-security.md), and later runs must not take
 * it back. NULL (printed).
 */
static FILE *open_tmp(const char *tmp, const char *path, mode_t mode)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f = NULL;
	struct stat st;
	if (fd < 0 || fchmod(fd, mode) != 0)
		goto fail;
	if (stat(path, &st) == 0 && fchown(fd, (uid_t)-1, st.st_gid) != 0)
		log_warn("cannot keep the group of %s: %s gid=%u", path, strerror(errno),
			 (unsigned)st.st_gid);
	if ((f = fdopen(fd, "w")) == NULL)
		goto fail;
	return f;
fail:
	scctl_error(WHAT, "cannot write %s: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Flushes f to disk, closes it and renames tmp to path. 0 or -1 (printed). */
static int commit_tmp(FILE *f, const char *tmp, const char *path)
{
	bool ok = !ferror(f) && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0) {
		scctl_error(WHAT, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void write_topics(FILE *f, const char *access, const char *const *topics)
{
	for (size_t i = 0; topics[i] != NULL; i++)
		fprintf(f, "topic %s %s\n", access, topics[i]);
}

static void write_acl(FILE *f, const struct accounts *a)
{
	fputs("# mosquitto acl_file, written by `scctl broker-auth` from the master data.\n"
	      "# Do not edit: the next run rewrites it (docs/broker-security.md).\n"
	      "#\n"
	      "# Devices, engineers and partners: their user name is their id (%u), unique\n"
	      "# across all kinds, so each pattern grants one actor its own topics only.\n"
	      "pattern write sc/v1/dev/%u/telemetry\n"
	      "pattern write sc/v1/dev/%u/alarm\n"
	      "pattern read sc/v1/engineers/%u/orders\n"
	      "pattern write sc/v1/engineers/%u/events\n"
	      "pattern write sc/v1/engineers/%u/status\n"
	      "pattern read sc/v1/partners/%u/orders\n"
	      "pattern write sc/v1/partners/%u/events\n", f);
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->v[i].kind, "frontdesk") != 0)
			continue;
		fprintf(f, "\n# front desk: customer requests, their status, return-visit results\n"
			   "user %s\n", a->v[i].name);
		write_topics(f, "write", frontdesk_write);
		write_topics(f, "read", frontdesk_read);
	}
	for (size_t i = 0; i < NSERVICES; i++) {
		fprintf(f, "\n# service: its subscriptions%s\nuser %s\n",
			services[i].outbox ? " and the outbox relay's topics" : " and publishes",
			services[i].name);
		write_topics(f, "read", services[i].read);
		write_topics(f, "write", services[i].write);
		if (services[i].outbox)
			write_topics(f, "write", outbox_topics);
	}
}

/* Writes the three files. 0 or -1 (printed). */
static int write_files(const char *dir, const struct accounts *a)
{
	char path[4096], tmp[4096];
	FILE *f = NULL;

	/* credentials first: once it is down, a crash before the others leaves
	 * passwords that the next run keeps. */
	snprintf(path, sizeof(path), "%s/credentials", dir);
	snprintf(tmp, sizeof(tmp), "%s/.credentials.tmp", dir);
	if ((f = open_tmp(tmp, path, 0600)) == NULL)
		return -1;
	fputs("# Broker accounts, written by `scctl broker-auth`: KIND USER PASSWORD.\n"
	      "# Secret: hand each actor its own line only.\n", f);
	for (size_t i = 0; i < a->n; i++)
		fprintf(f, "%s %s %s\n", a->v[i].kind, a->v[i].name, a->v[i].secret);
	if (commit_tmp(f, tmp, path) != 0)
		return -1;

	/* 0640: mosquitto reads it through its group (docs/broker-security.md). */
	snprintf(path, sizeof(path), "%s/passwd", dir);
	snprintf(tmp, sizeof(tmp), "%s/.passwd.tmp", dir);
	if ((f = open_tmp(tmp, path, 0640)) == NULL)
		return -1;
	for (size_t i = 0; i < a->n; i++)
		fprintf(f, "%s:%s\n", a->v[i].name, a->v[i].hash);
	if (commit_tmp(f, tmp, path) != 0)
		return -1;

	snprintf(path, sizeof(path), "%s/acl", dir);
	snprintf(tmp, sizeof(tmp), "%s/.acl.tmp", dir);
	if ((f = open_tmp(tmp, path, 0644)) == NULL)
		return -1;
	write_acl(f, a);
	return commit_tmp(f, tmp, path);
}

/* The summary: accounts per kind. 0 or -1. */
static int print_summary(const struct scctl *ctx, const struct accounts *a, size_t fresh,
			 size_t removed)
{
	static const char *const kinds[] = {"service", "frontdesk", "device", "engineer", "partner"};
	size_t count[5] = {0};
	for (size_t i = 0; i < a->n; i++)
		for (size_t k = 0; k < 5; k++)
			if (strcmp(a->v[i].kind, kinds[k]) == 0)
				count[k]++;
	if (ctx->json) {
		cJSON *o = cJSON_CreateObject();
		bool ok = o != NULL;
		for (size_t k = 0; k < 5 && ok; k++)
			ok = cJSON_AddNumberToObject(o, kinds[k], (double)count[k]) != NULL;
		ok = ok && cJSON_AddNumberToObject(o, "new", (double)fresh) != NULL &&
		     cJSON_AddNumberToObject(o, "removed", (double)removed) != NULL &&
		     scctl_print_json(o) == 0;
		cJSON_Delete(o);
		return ok ? 0 : -1;
	}
	static const char *const headers[] = {"kind", "accounts"};
	struct scctl_table *t = scctl_table_new(2, headers);
	int rc = t != NULL ? 0 : -1;
	char n[32];
	if (t != NULL)
		scctl_table_right(t, 1);
	for (size_t k = 0; k < 5 && rc == 0; k++) {
		snprintf(n, sizeof(n), "%zu", count[k]);
		const char *row[] = {kinds[k], n};
		rc = scctl_table_add(t, row);
	}
	if (rc == 0) {
		scctl_table_print(t, stdout);
		printf("%zu new, %zu kept, %zu removed\n", fresh, a->n - fresh, removed);
	}
	scctl_table_free(t);
	return rc;
}

int scctl_broker_auth(struct scctl *ctx, int argc, char **argv)
{
	const char *dir = NULL;
	const char **desks = NULL;
	size_t ndesks = 0;
	struct accounts acc = {0}, old_creds = {0}, old_hashes = {0};
	PGconn *conn = NULL;
	char path[4096];
	size_t fresh = 0, removed = 0;
	int rc = SCCTL_FAIL;

	if ((desks = calloc((size_t)argc, sizeof(*desks))) == NULL) {
		scctl_error(WHAT, "out of memory");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		int m;
		if (scctl_common_flag(ctx, argv[i]))
			continue;
		if ((m = scctl_flag_value(WHAT, argc, argv, &i, "--out", &dir)) == 0 &&
		    (m = scctl_flag_value(WHAT, argc, argv, &i, "--frontdesk", &v)) == 0) {
			scctl_error(WHAT, "unknown argument \"%s\"", argv[i]);
			rc = SCCTL_USAGE;
			goto out;
		}
		if (m < 0) {
			rc = SCCTL_USAGE;
			goto out;
		}
		if (v != NULL) {
			if (!name_ok(v) || strncmp(v, "sc-", 3) == 0) {
				scctl_error(WHAT, "--frontdesk \"%s\": want 1-64 characters of "
					    "A-Z a-z 0-9 . _ -, not starting with \"sc-\"", v);
				rc = SCCTL_USAGE;
				goto out;
			}
			desks[ndesks++] = v;
		}
	}
	if (dir == NULL) {
		scctl_error(WHAT, "--out DIR is required");
		rc = SCCTL_USAGE;
		goto out;
	}
	if (ndesks == 0)
		desks[ndesks++] = "frontdesk";

	for (size_t i = 0; i < NSERVICES; i++)
		if (accounts_add(&acc, "service", services[i].name) == NULL)
			goto out;
	for (size_t i = 0; i < ndesks; i++)
		if (accounts_add(&acc, "frontdesk", desks[i]) == NULL)
			goto out;
	if ((conn = scctl_connect(ctx, WHAT, true)) == NULL || load_actors(conn, &acc) != 0 ||
	    check_unique(&acc) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/credentials", dir);
	if (load_old(path, true, &old_creds) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/passwd", dir);
	if (load_old(path, false, &old_hashes) != 0)
		goto out;
	if (choose_secrets(&acc, &old_creds, &old_hashes, &fresh) != 0 || write_files(dir, &acc) != 0)
		goto out;
	for (size_t i = 0; i < old_creds.n; i++)
		if (accounts_find(&acc, old_creds.v[i].name) == NULL)
			removed++;
	log_info("broker accounts written dir=%s accounts=%zu new=%zu removed=%zu", dir, acc.n,
		 fresh, removed);
	if (print_summary(ctx, &acc, fresh, removed) != 0) {
		scctl_error(WHAT, "cannot print the summary");
		goto out;
	}
	rc = SCCTL_OK;
out:
	PQfinish(conn);
	accounts_free(&old_hashes);
	accounts_free(&old_creds);
	accounts_free(&acc);
	free(desks);
	return rc;
}

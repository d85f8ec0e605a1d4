#ifndef SC_COMMON_MASTER_H
#define SC_COMMON_MASTER_H

#include <stdbool.h>
#include <stddef.h>

struct db;
struct event_base;

/*
 * Watches the master data version (contract section 6: an import takes
 * effect in the running services within 5 seconds). `scctl import` bumps
 * master_version and NOTIFYs `master`; the watcher listens on its db and
 * also polls every MASTER_POLL_MS in case a notification was lost. It
 * calls `changed` on the loop thread once at the first connect and after
 * every version change; the service then reloads what it keeps in memory.
 */

#define MASTER_POLL_MS 2000

struct master_watch;

typedef void (*master_changed_cb)(void *arg, long long version);

struct master_watch *master_watch_new(struct event_base *base, struct db *db,
				      master_changed_cb changed, void *arg)
	__attribute__((warn_unused_result));
void master_watch_free(struct master_watch *w);

/*
 * A sorted map from string ids to caller data, for master data kept in
 * memory (device -> model, ...). Keys are copied; values are borrowed.
 */
struct idmap;

struct idmap *idmap_new(void) __attribute__((warn_unused_result));
void idmap_free(struct idmap *m);
/* Adds a key (duplicates: the last one wins after idmap_seal). 0 or -1. */
int idmap_add(struct idmap *m, const char *key, void *value) __attribute__((warn_unused_result));
/* Sorts; call once after the last add, before finds. */
void idmap_seal(struct idmap *m);
/* Finds a key; returns true and sets *value (may be NULL). */
bool idmap_find(const struct idmap *m, const char *key, void **value);
size_t idmap_count(const struct idmap *m);

#endif

#ifndef SC_SERVICES_SLAMON_TIMERSET_H
#define SC_SERVICES_SLAMON_TIMERSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The SLA timers sc-slamon holds in memory, by sla_timer.id: a hash table
 * (open addressing, linear probing, backward-shift deletion: no tombstones)
 * that says whether an id is loaded, what due time the database gave it,
 * and which heap entry is the live one. It is what keeps a reload of the
 * horizon from loading a timer twice, and lets a moved deadline replace the
 * old heap entry without searching the heap (timers.c).
 *
 * 24 bytes per slot, at most 70 % full, grows and shrinks by halves.
 * Not thread-safe.
 */

/* timerset_entry.key while the timer's sc_sla_fire is queued or running. */
#define TIMERSET_IN_FLIGHT INT64_MIN

struct timerset_entry {
	int64_t id;  /* sla_timer.id, > 0 (0 marks a free slot) */
	int64_t due; /* due_at as last read from the database, µs */
	int64_t key; /* key of the live heap entry, or TIMERSET_IN_FLIGHT */
};

struct timerset;

/* An empty set. NULL on allocation failure. */
struct timerset *timerset_new(void) __attribute__((warn_unused_result));

/* timerset_free(NULL) does nothing. */
void timerset_free(struct timerset *s);

/*
 * The entry of id, or NULL. The pointer is valid until the next
 * timerset_add or timerset_remove.
 */
struct timerset_entry *timerset_find(struct timerset *s, int64_t id);

/*
 * The entry of id, made if absent (then *added is true and due and key are
 * 0 for the caller to fill). id must be > 0. NULL when memory ran out (the
 * set is unchanged). The pointer is valid until the next add or remove.
 */
struct timerset_entry *timerset_add(struct timerset *s, int64_t id, bool *added)
	__attribute__((warn_unused_result));

/* Removes id; returns false when it was not there. */
bool timerset_remove(struct timerset *s, int64_t id);

size_t timerset_count(const struct timerset *s);

#endif

#ifndef SC_COMMON_HEAP_H
#define SC_COMMON_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A binary min-heap of (key, id) pairs: the timer structure of the services
 * (sc-slamon's SLA timers, offer expiries), where key is a due time in
 * microseconds and id names what is due. Push and pop are O(log n), peek and
 * size O(1). Entries are ordered by key, then by id, so equal due times come
 * out in a fixed order (ids grow with creation order in the database).
 *
 * The heap does not look at ids: the same id may be pushed twice. Callers
 * that move a deadline push the new one and skip the old when it comes out
 * (lazy deletion), which keeps the heap free of a position index.
 *
 * Memory: 16 bytes per entry in one array that doubles when full and halves
 * when it is less than a quarter used (so a drained backlog of a million
 * entries gives its memory back). Not thread-safe.
 */

struct heap;

struct heap_item {
	int64_t key; /* due time, microseconds since the epoch */
	int64_t id;  /* what is due (e.g. sla_timer.id) */
};

/* An empty heap. NULL on allocation failure. Free with heap_free. */
struct heap *heap_new(void) __attribute__((warn_unused_result));

/* Frees the heap; heap_free(NULL) does nothing. */
void heap_free(struct heap *h);

/* Adds an entry. Returns 0, or -1 when memory ran out (the heap is unchanged). */
int heap_push(struct heap *h, int64_t key, int64_t id) __attribute__((warn_unused_result));

/* The smallest entry into *out without removing it; false when empty. */
bool heap_peek(const struct heap *h, struct heap_item *out);

/* Removes the smallest entry into *out (may be NULL); false when empty. */
bool heap_pop(struct heap *h, struct heap_item *out);

size_t heap_size(const struct heap *h);

/* Removes every entry (keeps the smallest allocation). */
void heap_clear(struct heap *h);

#endif

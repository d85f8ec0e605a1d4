/*
 * Hash table of loaded SLA timers (see timerset.h).
 */
#include "timerset.h"

#include <stdlib.h>

#define TIMERSET_MIN_CAP 1024 /* a power of two */

struct timerset {
	struct timerset_entry *slots; /* cap slots; id 0 = free */
	size_t cap;                   /* a power of two */
	size_t n;                     /* used slots */
};

/*
 * Fibonacci hashing: ids are consecutive integers, which a plain mask
 * would cluster; multiplying by 2^64/phi spreads them over the table.
 */
static size_t slot_of(const struct timerset *s, int64_t id)
{
	return (size_t)(((uint64_t)id * UINT64_C(11400714819323198485)) >> 32) & (s->cap - 1);
}

struct timerset *timerset_new(void)
{
	struct timerset *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->slots = calloc(TIMERSET_MIN_CAP, sizeof(*s->slots));
	if (s->slots == NULL) {
		free(s);
		return NULL;
	}
	s->cap = TIMERSET_MIN_CAP;
	return s;
}

void timerset_free(struct timerset *s)
{
	if (s == NULL)
		return;
	free(s->slots);
	free(s);
}

/* Rebuilds the table with cap slots. 0 or -1 (the table is unchanged). */
static int rehash(struct timerset *s, size_t cap)
{
	struct timerset_entry *old = s->slots;
	size_t old_cap = s->cap;
	struct timerset_entry *slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -1;
	s->slots = slots;
	s->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].id == 0)
			continue;
		size_t j = slot_of(s, old[i].id);
		while (slots[j].id != 0)
			j = (j + 1) & (cap - 1);
		slots[j] = old[i];
	}
	free(old);
	return 0;
}

struct timerset_entry *timerset_find(struct timerset *s, int64_t id)
{
	if (id <= 0)
		return NULL;
	for (size_t i = slot_of(s, id);; i = (i + 1) & (s->cap - 1)) {
		if (s->slots[i].id == id)
			return &s->slots[i];
		if (s->slots[i].id == 0)
			return NULL;
	}
}

struct timerset_entry *timerset_add(struct timerset *s, int64_t id, bool *added)
{
	if (id <= 0)
		return NULL;
	struct timerset_entry *e = timerset_find(s, id);
	if (e != NULL) {
		*added = false;
		return e;
	}
	/* Keep at most 70 % full so probe runs stay short. */
	if ((s->n + 1) * 10 > s->cap * 7) {
		if (s->cap > SIZE_MAX / 2 / sizeof(*s->slots) || rehash(s, s->cap * 2) != 0)
			return NULL;
	}
	size_t i = slot_of(s, id);
	while (s->slots[i].id != 0)
		i = (i + 1) & (s->cap - 1);
	s->slots[i] = (struct timerset_entry){ .id = id };
	s->n++;
	*added = true;
	return &s->slots[i];
}

bool timerset_remove(struct timerset *s, int64_t id)
{
	struct timerset_entry *e = timerset_find(s, id);
	if (e == NULL)
		return false;
	size_t mask = s->cap - 1;
	size_t hole = (size_t)(e - s->slots);
	/*
	 * Backward-shift deletion: pull later members of the probe run into
	 * the hole when their home slot does not lie (cyclically) between the
	 * hole and where they sit, so every lookup still finds them.
	 */
	for (size_t j = (hole + 1) & mask; s->slots[j].id != 0; j = (j + 1) & mask) {
		size_t home = slot_of(s, s->slots[j].id);
		bool stays = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		s->slots[hole] = s->slots[j];
		hole = j;
	}
	s->slots[hole].id = 0;
	s->n--;
	/* Give memory back after a backlog drained; failing to is harmless. */
	if (s->cap > TIMERSET_MIN_CAP && s->n * 8 < s->cap)
		(void)rehash(s, s->cap / 2);
	return true;
}

size_t timerset_count(const struct timerset *s)
{
	return s->n;
}

/*
 * Binary min-heap in an array (see heap.h): the children of slot i are
 * 2i+1 and 2i+2.
 */
#include "heap.h"

#include <stdlib.h>

/* Smallest allocation; a heap never shrinks below it. */
#define HEAP_MIN_CAP 64

struct heap {
	struct heap_item *items;
	size_t n;   /* entries in use */
	size_t cap; /* entries allocated */
};

static bool less(const struct heap_item *a, const struct heap_item *b)
{
	return a->key < b->key || (a->key == b->key && a->id < b->id);
}

struct heap *heap_new(void)
{
	struct heap *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->items = malloc(HEAP_MIN_CAP * sizeof(*h->items));
	if (h->items == NULL) {
		free(h);
		return NULL;
	}
	h->cap = HEAP_MIN_CAP;
	return h;
}

void heap_free(struct heap *h)
{
	if (h == NULL)
		return;
	free(h->items);
	free(h);
}

static int resize(struct heap *h, size_t cap)
{
	struct heap_item *p = realloc(h->items, cap * sizeof(*p));
	if (p == NULL)
		return -1;
	h->items = p;
	h->cap = cap;
	return 0;
}

int heap_push(struct heap *h, int64_t key, int64_t id)
{
	if (h->n == h->cap) {
		if (h->cap > SIZE_MAX / 2 / sizeof(*h->items) || resize(h, h->cap * 2) != 0)
			return -1;
	}
	struct heap_item it = { key, id };
	/* Sift up: move parents down until the hole fits the new entry. */
	size_t i = h->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!less(&it, &h->items[parent]))
			break;
		h->items[i] = h->items[parent];
		i = parent;
	}
	h->items[i] = it;
	return 0;
}

bool heap_peek(const struct heap *h, struct heap_item *out)
{
	if (h->n == 0)
		return false;
	*out = h->items[0];
	return true;
}

bool heap_pop(struct heap *h, struct heap_item *out)
{
	if (h->n == 0)
		return false;
	if (out != NULL)
		*out = h->items[0];
	struct heap_item last = h->items[--h->n];
	/* Sift down: move the smaller child up until the hole fits `last`. */
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && less(&h->items[c + 1], &h->items[c]))
			c++;
		if (!less(&h->items[c], &last))
			break;
		h->items[i] = h->items[c];
		i = c;
	}
	if (h->n > 0)
		h->items[i] = last;
	/* Give memory back after a backlog drained; a failed shrink is harmless. */
	if (h->cap > HEAP_MIN_CAP && h->n < h->cap / 4)
		(void)resize(h, h->cap / 2);
	return true;
}

size_t heap_size(const struct heap *h)
{
	return h->n;
}

void heap_clear(struct heap *h)
{
	h->n = 0;
	if (h->cap > HEAP_MIN_CAP)
		(void)resize(h, HEAP_MIN_CAP);
}

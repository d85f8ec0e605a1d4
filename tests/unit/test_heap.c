#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "heap.h"

static void test_empty(void **state)
{
	struct heap *h = heap_new();
	struct heap_item it = { 7, 7 };

	(void)state;
	assert_non_null(h);
	assert_int_equal(heap_size(h), 0);
	assert_false(heap_peek(h, &it));
	assert_false(heap_pop(h, &it));
	/* A failed peek/pop leaves *out alone. */
	assert_int_equal(it.key, 7);
	assert_int_equal(it.id, 7);
	heap_free(h);
	heap_free(NULL);
}

static void test_order_and_ties(void **state)
{
	struct heap *h = heap_new();
	struct heap_item it;
	/* Equal keys come out by id: breach before the escalation made after it. */
	static const int64_t in[][2] = {
		{ 50, 5 }, { 10, 3 }, { 30, 1 }, { 10, 2 }, { -5, 9 }, { 30, 0 }, { 10, 1 },
	};
	static const int64_t want[][2] = {
		{ -5, 9 }, { 10, 1 }, { 10, 2 }, { 10, 3 }, { 30, 0 }, { 30, 1 }, { 50, 5 },
	};

	(void)state;
	assert_non_null(h);
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_int_equal(heap_push(h, in[i][0], in[i][1]), 0);
	assert_int_equal(heap_size(h), 7);
	assert_true(heap_peek(h, &it));
	assert_int_equal(it.key, -5);
	assert_int_equal(heap_size(h), 7);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_true(heap_pop(h, &it));
		assert_int_equal(it.key, want[i][0]);
		assert_int_equal(it.id, want[i][1]);
	}
	assert_false(heap_pop(h, NULL));
	heap_free(h);
}

static void test_duplicates_and_extremes(void **state)
{
	struct heap *h = heap_new();
	struct heap_item it;

	(void)state;
	assert_non_null(h);
	assert_int_equal(heap_push(h, INT64_MAX, 1), 0);
	assert_int_equal(heap_push(h, INT64_MIN, 1), 0);
	assert_int_equal(heap_push(h, 0, 1), 0);
	assert_int_equal(heap_push(h, 0, 1), 0);
	assert_true(heap_pop(h, &it));
	assert_int_equal(it.key, INT64_MIN);
	assert_true(heap_pop(h, &it));
	assert_int_equal(it.key, 0);
	assert_true(heap_pop(h, &it));
	assert_int_equal(it.key, 0);
	assert_true(heap_pop(h, NULL));
	assert_int_equal(heap_size(h), 0);
	heap_free(h);
}

/* Compares against qsort over many random pushes and pops, interleaved. */
static int cmp_item(const void *a, const void *b)
{
	const struct heap_item *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void test_random_against_sort(void **state)
{
	enum { N = 2000 };
	struct heap *h = heap_new();
	struct heap_item *ref = calloc(N, sizeof(*ref));
	size_t nref = 0;
	struct heap_item it;
	unsigned seed = 12345;

	(void)state;
	assert_non_null(h);
	assert_non_null(ref);
	for (int round = 0; round < 3 * N; round++) {
		seed = seed * 1103515245u + 12345u;
		bool push = nref == 0 || (nref < N && (seed >> 16) % 3 != 0);
		if (push) {
			int64_t key = (int64_t)((seed >> 8) % 1000) - 500;
			int64_t id = (int64_t)((seed >> 4) % 97);
			assert_int_equal(heap_push(h, key, id), 0);
			ref[nref].key = key;
			ref[nref].id = id;
			nref++;
		} else {
			/* The popped entry is the smallest of those in the reference. */
			size_t min = 0;
			for (size_t i = 1; i < nref; i++)
				if (cmp_item(&ref[i], &ref[min]) < 0)
					min = i;
			assert_true(heap_pop(h, &it));
			assert_int_equal(it.key, ref[min].key);
			assert_int_equal(it.id, ref[min].id);
			ref[min] = ref[--nref];
		}
		assert_int_equal(heap_size(h), nref);
	}
	/* Drain: sorted order. */
	qsort(ref, nref, sizeof(*ref), cmp_item);
	for (size_t i = 0; i < nref; i++) {
		assert_true(heap_pop(h, &it));
		assert_int_equal(it.key, ref[i].key);
		assert_int_equal(it.id, ref[i].id);
	}
	assert_int_equal(heap_size(h), 0);
	free(ref);
	heap_free(h);
}

/* A million entries (the design size of sc-slamon) grow, drain and shrink. */
static void test_million(void **state)
{
	enum { N = 1000000 };
	struct heap *h = heap_new();
	struct heap_item it, prev = { INT64_MIN, INT64_MIN };
	uint64_t x = 88172645463325252u;

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < N; i++) {
		/* xorshift64: keys spread over a day in microseconds. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		assert_int_equal(heap_push(h, (int64_t)(x % (86400ull * 1000000)), i), 0);
	}
	assert_int_equal(heap_size(h), N);
	for (int i = 0; i < N; i++) {
		assert_true(heap_pop(h, &it));
		assert_true(cmp_item(&prev, &it) <= 0);
		prev = it;
	}
	assert_int_equal(heap_size(h), 0);
	/* Reusable after draining and after a clear. */
	assert_int_equal(heap_push(h, 3, 3), 0);
	assert_int_equal(heap_push(h, 1, 1), 0);
	heap_clear(h);
	assert_int_equal(heap_size(h), 0);
	assert_false(heap_peek(h, &it));
	assert_int_equal(heap_push(h, 2, 2), 0);
	assert_true(heap_peek(h, &it));
	assert_int_equal(it.id, 2);
	heap_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_order_and_ties),
		cmocka_unit_test(test_duplicates_and_extremes),
		cmocka_unit_test(test_random_against_sort),
		cmocka_unit_test(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

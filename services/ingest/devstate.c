/*
 * The device_state part of a batch, computed here rather than in SQL: one
 * entry per device with its newest ts/seq (and run hours), its latest
 * arrival and the last value of every metric the batch carried. The
 * database then merges one small row per device into device_state, instead
 * of picking apart every telemetry row (the costliest part of the batch
 * statement when it was done in SQL).
 */
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "strbuf.h"

void tele_info_free(struct tele_info *t)
{
	if (t == NULL)
		return;
	cJSON_Delete(t->metrics);
	free(t);
}

/* Orders a device's samples oldest first, so later values win. */
static int cmp_tele(const void *a, const void *b)
{
	const struct tele_info *x = *(const struct tele_info *const *)a;
	const struct tele_info *y = *(const struct tele_info *const *)b;
	int c = strcmp(x->device, y->device);
	if (c != 0)
		return c;
	if (x->ts_us != y->ts_us)
		return x->ts_us < y->ts_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends one device's entry from its samples t[0..n-1] (oldest first). */
static void put_device(struct strbuf *s, struct tele_info **t, size_t n)
{
	const struct tele_info *last = t[n - 1];
	int64_t recv = 0;
	const struct tele_info *hours = NULL;
	for (size_t i = 0; i < n; i++) {
		if (t[i]->recv_us > recv)
			recv = t[i]->recv_us;
		if (t[i]->has_run_hours)
			hours = t[i];
	}
	strbuf_puts(s, "{\"d\":");
	strbuf_json_str(s, last->device);
	strbuf_printf(s, ",\"s\":%llu,\"t\":%.6f,\"r\":%.6f", (unsigned long long)last->seq,
		      (double)last->ts_us / 1e6, (double)recv / 1e6);
	if (hours != NULL)
		strbuf_printf(s, ",\"h\":%.17g", hours->run_hours);
	/* Last value of each metric: walk newest first, keep the first seen. */
	cJSON *merged = cJSON_CreateObject();
	for (size_t i = n; merged != NULL && i-- > 0;) {
		for (const cJSON *m = t[i]->metrics ? t[i]->metrics->child : NULL; m; m = m->next) {
			if (cJSON_GetObjectItemCaseSensitive(merged, m->string) == NULL &&
			    cJSON_AddNumberToObject(merged, m->string, m->valuedouble) == NULL) {
				cJSON_Delete(merged);
				merged = NULL;
				break;
			}
		}
	}
	char *text = merged != NULL ? cJSON_PrintUnformatted(merged) : NULL;
	cJSON_Delete(merged);
	if (text == NULL) {
		s->failed = true; /* the caller sees it through strbuf_take */
		return;
	}
	strbuf_puts(s, ",\"m\":");
	strbuf_puts(s, text);
	free(text);
	strbuf_putc(s, '}');
}

char *devstate_json(const struct batch *b)
{
	struct tele_info **t = NULL;
	size_t n = 0;
	struct strbuf s;
	strbuf_init(&s);
	strbuf_putc(&s, '[');
	if (b->n > 0) {
		t = malloc(b->n * sizeof(*t));
		if (t == NULL)
			goto fail;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].kind == ITEM_TELEMETRY && b->items[i].tele != NULL)
			t[n++] = b->items[i].tele;
	qsort(t, n, sizeof(*t), cmp_tele);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && strcmp(t[j]->device, t[i]->device) == 0)
			j++;
		if (i > 0)
			strbuf_putc(&s, ',');
		put_device(&s, t + i, j - i);
		i = j;
	}
	strbuf_putc(&s, ']');
	free(t);
	return strbuf_take(&s);
fail:
	strbuf_free(&s);
	return NULL;
}

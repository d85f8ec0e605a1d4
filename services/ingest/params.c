/*
 * The parameters of sc_ingest_batch (schema/048_device_state_deferred.sql)
 * for one batch: telemetry as one PostgreSQL array literal per column
 * (typed arrays cost the database next to nothing to read), alarms and
 * rejections as a small jsonb.
 *
 * Telemetry goes out sorted by device, ts and seq. device_state is not in
 * the batch: state.c writes it from the committed batches on its own
 * cadence.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "strbuf.h"

void tele_info_free(struct tele_info *t)
{
	free(t);
}

/* Orders messages by device, then oldest first. */
static int cmp_item(const void *a, const void *b)
{
	const struct tele_info *x = (*(const struct item *const *)a)->tele;
	const struct tele_info *y = (*(const struct item *const *)b)->tele;
	int c = strcmp(x->device, y->device);
	if (c != 0)
		return c;
	if (x->ts_us != y->ts_us)
		return x->ts_us < y->ts_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends "," before every element but the first of an array literal. */
static void sep(struct strbuf *s, size_t i)
{
	strbuf_putc(s, i == 0 ? '{' : ',');
}

static void put_hours(struct strbuf *s, const struct tele_info *t)
{
	if (t != NULL && t->run_hours[0] != '\0')
		strbuf_puts(s, t->run_hours);
	else
		strbuf_puts(s, "NULL");
}

/* The telemetry columns t_*, items in t[0..n-1]. */
static void put_telemetry(struct strbuf p[], struct item **t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct tele_info *ti = t[i]->tele;
		for (int k = BP_T_DEV; k <= BP_T_METRICS; k++)
			sep(&p[k], i);
		strbuf_array_elem(&p[BP_T_DEV], ti->device, strlen(ti->device));
		strbuf_int(&p[BP_T_SEQ], (long long)ti->seq);
		strbuf_int(&p[BP_T_TS], ti->ts_us);
		strbuf_int(&p[BP_T_RECV], ti->recv_us);
		put_hours(&p[BP_T_HOURS], ti);
		strbuf_array_elem(&p[BP_T_METRICS], t[i]->row, strlen(t[i]->row));
	}
}

/* {"alarms":[...],"rejects":[...]}: each item's row is its JSON object. */
static void put_other(struct strbuf *s, const struct batch *b)
{
	static const char *const names[] = { "alarms", "rejects" };
	static const enum item_kind kinds[] = { ITEM_ALARM, ITEM_REJECT };
	strbuf_putc(s, '{');
	for (int k = 0; k < 2; k++) {
		strbuf_puts(s, k ? ",\"" : "\"");
		strbuf_puts(s, names[k]);
		strbuf_puts(s, "\":[");
		bool first = true;
		for (size_t i = 0; i < b->n; i++) {
			if (b->items[i].kind != kinds[k])
				continue;
			if (!first)
				strbuf_putc(s, ',');
			strbuf_puts(s, b->items[i].row);
			first = false;
		}
		strbuf_putc(s, ']');
	}
	strbuf_putc(s, '}');
}

int batch_params(const struct batch *b, char *out[BP_COUNT])
{
	struct strbuf p[BP_COUNT];
	struct item **t = NULL;
	size_t n = 0;
	int rc = -1;

	for (int k = 0; k < BP_COUNT; k++) {
		strbuf_init(&p[k]);
		out[k] = NULL;
	}
	if (b->n > 0 && (t = malloc(b->n * sizeof(*t))) == NULL)
		goto out;
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].kind == ITEM_TELEMETRY)
			t[n++] = &b->items[i];
	if (n > 0)
		qsort(t, n, sizeof(*t), cmp_item);
	put_telemetry(p, t, n);
	for (int k = 0; k < BP_OTHER; k++)
		strbuf_puts(&p[k], n > 0 ? "}" : "{}");
	put_other(&p[BP_OTHER], b);
	for (int k = 0; k < BP_COUNT; k++)
		if (!strbuf_ok(&p[k]))
			goto out;
	for (int k = 0; k < BP_COUNT; k++)
		out[k] = strbuf_take(&p[k]);
	rc = 0;
out:
	for (int k = 0; k < BP_COUNT; k++)
		strbuf_free(&p[k]);
	free(t);
	return rc;
}

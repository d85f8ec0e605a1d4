/*
 * The aligned text tables every scctl view prints (scctl.h). Columns are
 * padded by display width, not bytes: master data holds Chinese names,
 * which take two terminal columns per character.
 */
#include "scctl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct scctl_table {
	size_t ncols;
	char **cells;     /* (nrows + 1) * ncols, the header row first */
	size_t nrows;     /* rows after the header */
	size_t cap;       /* rows allocated, header included */
	bool *right;      /* per column: right-aligned */
	bool header;      /* print the header row (false: a key/value block) */
};

/* [first, last] code point ranges. */
struct range {
	uint32_t first, last;
};

/* Combining marks and zero-width characters: no column of their own. */
static const struct range zero_width[] = {
	{0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a},
	{0x064b, 0x065f}, {0x0e31, 0x0e31}, {0x0e34, 0x0e3a}, {0x0e47, 0x0e4e},
	{0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x200b, 0x200f}, {0x202a, 0x202e},
	{0x2060, 0x2064}, {0x20d0, 0x20ff}, {0x302a, 0x302d}, {0x3099, 0x309a},
	{0xfe00, 0xfe0f}, {0xfe20, 0xfe2f}, {0xfeff, 0xfeff}, {0xe0100, 0xe01ef},
};

/* East Asian Wide and Fullwidth (Unicode UAX #11): two columns. */
static const struct range wide[] = {
	{0x1100, 0x115f}, {0x231a, 0x231b}, {0x2329, 0x232a}, {0x2e80, 0x303e},
	{0x3041, 0x33ff}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff}, {0xa000, 0xa4cf},
	{0xa960, 0xa97f}, {0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xfe10, 0xfe19},
	{0xfe30, 0xfe6f}, {0xff00, 0xff60}, {0xffe0, 0xffe6}, {0x1f300, 0x1f64f},
	{0x1f900, 0x1f9ff}, {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
};

static bool in_ranges(uint32_t c, const struct range *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c >= r[i].first && c <= r[i].last)
			return true;
	return false;
}

/*
 * Decodes one UTF-8 sequence at s (not at its NUL). Returns its length and
 * sets *cp; an invalid or truncated sequence is one byte of U+FFFD, so any
 * byte string has a width.
 */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {  /* also stops at the NUL */
			*cp = 0xfffd;
			return 1;
		}
		c = (c << 6) | (s[i] & 0x3f);
	}
	*cp = c;
	return n;
}

size_t scctl_display_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;

	while (*p) {
		uint32_t c;

		p += utf8_next(p, &c);
		if (in_ranges(c, zero_width, sizeof(zero_width) / sizeof(zero_width[0])))
			continue;
		w += in_ranges(c, wide, sizeof(wide) / sizeof(wide[0])) ? 2 : 1;
	}
	return w;
}

/*
 * A cell's text: NULL prints as "-"; control characters (a newline in a
 * description, a tab) would break the row, so each becomes a space.
 */
static char *cell_dup(const char *s)
{
	char *d = strdup(s ? s : "-");

	if (d)
		for (char *p = d; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	return d;
}

struct scctl_table *scctl_table_new(size_t ncols, const char *const *headers)
{
	struct scctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->cap = 16;
	t->header = headers != NULL;
	t->cells = calloc(t->cap * ncols, sizeof(*t->cells));
	t->right = calloc(ncols, sizeof(*t->right));
	if (!t->cells || !t->right)
		goto fail;
	for (size_t c = 0; c < ncols; c++) {
		t->cells[c] = cell_dup(headers ? headers[c] : "");
		if (!t->cells[c])
			goto fail;
	}
	return t;
fail:
	scctl_table_free(t);
	return NULL;
}

void scctl_table_right(struct scctl_table *t, size_t col)
{
	if (col < t->ncols)
		t->right[col] = true;
}

int scctl_table_add(struct scctl_table *t, const char *const *cells)
{
	char **row;

	if (t->nrows + 1 >= t->cap) {
		size_t cap = t->cap * 2;
		char **grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));

		if (!grown)
			return -1;
		memset(grown + t->cap * t->ncols, 0, (cap - t->cap) * t->ncols * sizeof(*grown));
		t->cells = grown;
		t->cap = cap;
	}
	row = t->cells + (t->nrows + 1) * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		row[c] = cell_dup(cells[c]);
		if (!row[c]) {
			while (c > 0) {
				c--;
				free(row[c]);
				row[c] = NULL;
			}
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

size_t scctl_table_rows(const struct scctl_table *t)
{
	return t->nrows;
}

void scctl_table_print(const struct scctl_table *t, FILE *out)
{
	size_t first = t->header ? 0 : 1;
	size_t *w = calloc(t->ncols, sizeof(*w));

	if (!w)
		return;
	for (size_t r = first; r <= t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t cw = scctl_display_width(t->cells[r * t->ncols + c]);

			if (cw > w[c])
				w[c] = cw;
		}
	for (size_t r = first; r <= t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t pad = w[c] - scctl_display_width(s);
			bool last = c + 1 == t->ncols;

			if (c > 0)
				fputs("  ", out);
			if (t->right[c])
				fprintf(out, "%*s%s", (int)pad, "", s);
			else
				fprintf(out, "%s%*s", s, last ? 0 : (int)pad, "");
		}
		fputc('\n', out);
	}
	free(w);
}

void scctl_table_free(struct scctl_table *t)
{
	if (!t)
		return;
	if (t->cells)
		for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++)
			free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

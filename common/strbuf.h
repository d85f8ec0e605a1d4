#ifndef SC_COMMON_STRBUF_H
#define SC_COMMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A growable NUL-terminated byte buffer for building statements'
 * parameters and payloads. An allocation failure latches `failed`: later
 * appends do nothing and strbuf_ok() tells, so callers check once at the end.
 */
struct strbuf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	bool failed;
};

void strbuf_init(struct strbuf *b);
void strbuf_free(struct strbuf *b);       /* frees data, leaves b empty */
void strbuf_reset(struct strbuf *b);      /* len 0, keeps the memory */
bool strbuf_ok(const struct strbuf *b);

void strbuf_append(struct strbuf *b, const char *s, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_putc(struct strbuf *b, char c);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal with quotes, escaping as RFC 8259 requires. */
void strbuf_json_str(struct strbuf *b, const char *s);
/* Appends n bytes as lowercase hex (for bytea parameters: prefix "\\x" yourself). */
void strbuf_hex(struct strbuf *b, const void *p, size_t n);

/* Appends v in decimal (no printf: batches format many of them). */
void strbuf_int(struct strbuf *b, long long v);
/*
 * Appends the n bytes at s as one double-quoted element of a PostgreSQL
 * array literal ({"a","b\"c"}), escaping '"' and '\'.
 */
void strbuf_array_elem(struct strbuf *b, const char *s, size_t n);

/* Takes the data out (caller frees); b is left empty. NULL if failed. */
char *strbuf_take(struct strbuf *b);

#endif

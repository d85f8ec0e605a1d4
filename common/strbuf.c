/* Growable string buffer (see strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void strbuf_free(struct strbuf *b)
{
	free(b->data);
	strbuf_init(b);
}

void strbuf_reset(struct strbuf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

bool strbuf_ok(const struct strbuf *b)
{
	return !b->failed;
}

static bool grow(struct strbuf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (d == NULL) {
		b->failed = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void strbuf_append(struct strbuf *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void strbuf_puts(struct strbuf *b, const char *s)
{
	strbuf_append(b, s, strlen(s));
}

void strbuf_putc(struct strbuf *b, char c)
{
	strbuf_append(b, &c, 1);
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void strbuf_json_str(struct strbuf *b, const char *s)
{
	static const char hexd[] = "0123456789abcdef";
	strbuf_putc(b, '"');
	const char *run = s;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		strbuf_append(b, run, (size_t)(s - run));
		run = s + 1;
		char esc[7] = { '\\', 0 };
		switch (c) {
		case '"': esc[1] = '"'; strbuf_append(b, esc, 2); break;
		case '\\': esc[1] = '\\'; strbuf_append(b, esc, 2); break;
		case '\n': esc[1] = 'n'; strbuf_append(b, esc, 2); break;
		case '\r': esc[1] = 'r'; strbuf_append(b, esc, 2); break;
		case '\t': esc[1] = 't'; strbuf_append(b, esc, 2); break;
		default:
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hexd[c >> 4]; esc[5] = hexd[c & 15];
			strbuf_append(b, esc, 6);
		}
	}
	strbuf_append(b, run, (size_t)(s - run));
	strbuf_putc(b, '"');
}

void strbuf_hex(struct strbuf *b, const void *p, size_t n)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *u = p;
	if (!grow(b, n * 2))
		return;
	for (size_t i = 0; i < n; i++) {
		b->data[b->len++] = hexd[u[i] >> 4];
		b->data[b->len++] = hexd[u[i] & 15];
	}
	b->data[b->len] = '\0';
}

char *strbuf_take(struct strbuf *b)
{
	if (b->failed) {
		strbuf_free(b);
		return NULL;
	}
	if (b->data == NULL && !grow(b, 0))
		return NULL;
	char *d = b->data;
	strbuf_init(b);
	return d;
}

void strbuf_int(struct strbuf *b, long long v)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	/* Negate as unsigned: -LLONG_MIN does not fit a long long. */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		tmp[--i] = '-';
	strbuf_append(b, tmp + i, sizeof(tmp) - i);
}

void strbuf_array_elem(struct strbuf *b, const char *s, size_t n)
{
	const char *run = s, *end = s + n;

	strbuf_putc(b, '"');
	for (; s < end; s++) {
		if (*s != '"' && *s != '\\')
			continue;
		strbuf_append(b, run, (size_t)(s - run));
		strbuf_putc(b, '\\');
		run = s;
	}
	strbuf_append(b, run, (size_t)(s - run));
	strbuf_putc(b, '"');
}

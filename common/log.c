/*
 * The logger. Each line is formatted into a stack buffer and handed to the
 * kernel in one write(2): lines from different threads never interleave
 * (a write of at most PIPE_BUF bytes to a pipe is atomic, and so is an
 * O_APPEND write to a file), and no lock is needed, so a Paho thread
 * blocked in the logger can never hold up the loop.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "timeutil.h"

/* Atomic so that log_init after threads started is still well defined. */
static const char *_Atomic log_program = "sc";
static atomic_int log_level = LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_init(const char *program)
{
	if (program)
		atomic_store_explicit(&log_program, program, memory_order_relaxed);
}

void log_set_level(enum log_level level)
{
	if (level >= LOG_ERROR && level <= LOG_DEBUG)
		atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_set_fd(int fd)
{
	atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

int log_level_parse(const char *text, enum log_level *out)
{
	if (!text)
		return -1;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if (level < LOG_ERROR || level > LOG_DEBUG)
		return "?";
	return level_names[level];
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	char ts[TIME_RFC3339_LEN];
	static const char trunc[] = "...";
	va_list ap;
	size_t head, len;
	int n, saved_errno = errno;

	if (level < LOG_ERROR || level > LOG_DEBUG || level > log_get_level())
		return;
	if (!time_format_rfc3339(time_now_us(), ts, sizeof(ts)))
		ts[0] = '\0';
	n = snprintf(line, sizeof(line), "%s %s %s: ", ts,
		     atomic_load_explicit(&log_program, memory_order_relaxed), level_names[level]);
	if (n < 0)
		goto out;
	head = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

	va_start(ap, fmt);
	n = vsnprintf(line + head, sizeof(line) - head, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	len = head + (size_t)n;
	/* Keep one byte for the newline; mark a cut line so nobody trusts its tail. */
	if (len > sizeof(line) - 1) {
		len = sizeof(line) - 1;
		memcpy(line + len - (sizeof(trunc) - 1), trunc, sizeof(trunc) - 1);
	}
	/*
	 * One event, one line: a newline or other control character coming
	 * from outside input (a device's alarm text) must not forge a line.
	 */
	for (size_t i = head; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			line[i] = '?';
	}
	line[len++] = '\n';

	int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
	const char *p = line;

	/* A short write only happens on a full disk or a signal; finish the line. */
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
out:
	/* Callers log and then look at errno; logging must not change it. */
	errno = saved_errno;
}

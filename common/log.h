#ifndef SC_COMMON_LOG_H
#define SC_COMMON_LOG_H

/*
 * One printf-checked logger for every program. One line per event on
 * stderr:
 *
 *   2026-11-23T08:00:00.123Z sc-ingest info: batch committed rows=500 seq=17
 *
 * Messages are lowercase "what failed: why" followed by key=value fields.
 * Thread-safe (one write(2) per line), so Paho threads may log too.
 */

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/*
 * Longest line written, newline included; longer messages are cut and end
 * in "...". Equal to Linux PIPE_BUF, so a line is written atomically even
 * into a pipe. Control characters in a message are replaced by '?', so
 * text from outside cannot forge a line.
 */
#define LOG_LINE_MAX 4096

/* Sets the program name printed on every line (not copied: pass a literal). */
void log_init(const char *program);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Static name of a level ("info"), "?" when out of range. */
const char *log_level_name(enum log_level level);

/* Sends lines to fd instead of stderr (tests). The fd is not owned. */
void log_set_fd(int fd);

/* Parses "debug", "info", "warn", "error". Returns 0 or -1 when unknown. */
int log_level_parse(const char *text, enum log_level *out)
	__attribute__((warn_unused_result));

/* Writes one line if level is enabled; errno is preserved. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif

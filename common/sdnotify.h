#ifndef SC_COMMON_SDNOTIFY_H
#define SC_COMMON_SDNOTIFY_H

#include <stdint.h>

/*
 * The service manager's notification protocol (systemd's sd_notify(3)),
 * written here rather than linked from libsystemd: one datagram of
 * newline-separated "KEY=value" assignments sent to the AF_UNIX socket named
 * by $NOTIFY_SOCKET. A name starting with '@' is an abstract socket (the '@'
 * stands for the leading NUL byte); any other name must be an absolute path.
 *
 * What the services send (service.c): "READY=1" once the database is
 * connected at this build's schema and the broker connected and subscribed
 * (units use Type=notify), "STOPPING=1" when SIGTERM starts the drain,
 * "STATUS=..." lines for `systemctl status`, and "WATCHDOG=1" every half
 * $WATCHDOG_USEC while the loop runs (units with WatchdogSec=).
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or by a unit of another
 * Type=) nothing is sent and the calls succeed. The environment is read on
 * every call and never changed: the variable stays for later messages.
 */

/*
 * Sends `state` ("READY=1", "STATUS=waiting for the broker", several lines
 * joined by '\n') in one datagram, without blocking: a socket whose queue is
 * full drops the message (the manager is not answering; nothing to wait
 * for). Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset or empty, -1 on
 * failure (bad socket name, send error) with errno set. Logs nothing: the
 * caller decides whether a failure matters.
 */
int sdnotify(const char *state) __attribute__((warn_unused_result));

/* As sdnotify(), the message formatted printf-style (up to 1 KiB). */
int sdnotifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2), warn_unused_result));

/*
 * The watchdog interval the manager expects pings at, from $WATCHDOG_USEC
 * (and $WATCHDOG_PID, which when set must be this process). Returns the
 * interval in microseconds, or 0 when no watchdog is asked of this process
 * (unset, empty, malformed, 0, or meant for another PID).
 */
uint64_t sdnotify_watchdog_usec(void);

#endif

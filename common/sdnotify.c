/*
 * sd_notify(3) without libsystemd (see sdnotify.h): the protocol is one
 * datagram, and a library dependency for it would tie every program to
 * systemd's headers and ABI.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Fills *sa from $NOTIFY_SOCKET's value. Returns the address length, or -1
 * (errno EINVAL) for a name that is neither absolute nor abstract (systemd
 * also knows "vsock:", which a host service never gets) or too long.
 */
static int notify_addr(const char *name, struct sockaddr_un *sa)
{
	size_t n = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof(sa->sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa->sun_path, name, n);
	/* Abstract names are length-delimited, not NUL-terminated: the length
	 * must not count a NUL, or it names another socket. */
	if (name[0] == '@') {
		sa->sun_path[0] = '\0';
		return (int)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

int sdnotify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	int fd = -1, len, rc = -1, saved;

	if (name == NULL || name[0] == '\0')
		return 0;
	len = notify_addr(name, &sa);
	if (len < 0)
		return -1;
	/* Non-blocking: a manager that does not read must not stall the loop. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto out;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa,
		   (socklen_t)len) < 0)
		goto out;
	rc = 1;
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return rc;
}

int sdnotifyf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return sdnotify(buf);
}

/* A whole decimal number > 0 (strtoull alone takes "-1" and "12abc"). */
static uint64_t parse_positive(const char *s)
{
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	return (uint64_t)v;
}

uint64_t sdnotify_watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");

	/* systemd sets WATCHDOG_PID so that a child that inherited the
	 * environment does not ping for its parent. */
	if (pid != NULL && pid[0] != '\0' && parse_positive(pid) != (uint64_t)getpid())
		return 0;
	return parse_positive(getenv("WATCHDOG_USEC"));
}

/*
 * common/sdnotify.c against real AF_UNIX datagram sockets: a path socket and
 * an abstract one stand in for systemd's notification socket.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

/* The stand-in manager: a bound datagram socket and its $NOTIFY_SOCKET. */
struct manager {
	int fd;
	char dir[64];   /* temp dir of a path socket, "" for an abstract one */
	char name[108]; /* the value of $NOTIFY_SOCKET */
};

static void manager_bind(struct manager *m, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	size_t n;

	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(m->fd >= 0);
	if (abstract) {
		m->dir[0] = '\0';
		snprintf(m->name, sizeof(m->name), "@sc-test-sdnotify-%ld", (long)getpid());
	} else {
		snprintf(m->dir, sizeof(m->dir), "/tmp/sc-sdn-XXXXXX");
		assert_non_null(mkdtemp(m->dir));
		snprintf(m->name, sizeof(m->name), "%s/notify", m->dir);
	}
	n = strlen(m->name);
	memcpy(sa.sun_path, m->name, n);
	if (abstract) {
		sa.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	assert_int_equal(bind(m->fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", m->name, 1), 0);
}

static void manager_close(struct manager *m)
{
	char path[128];

	unsetenv("NOTIFY_SOCKET");
	close(m->fd);
	if (m->dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/notify", m->dir);
		unlink(path);
		rmdir(m->dir);
	}
}

/* The next datagram, NUL-terminated; fails the test if none is waiting. */
static const char *manager_recv(struct manager *m)
{
	static char buf[2048];
	ssize_t n = recv(m->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void test_unset_sends_nothing(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sdnotify("READY=1"), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	assert_int_equal(sdnotify("READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

static void test_path_socket(void **state)
{
	struct manager m;

	manager_bind(&m, false);
	assert_int_equal(sdnotify("READY=1"), 1);
	assert_string_equal(manager_recv(&m), "READY=1");
	assert_int_equal(sdnotifyf("STATUS=waiting for schema %d of %d", 3, 7), 1);
	assert_string_equal(manager_recv(&m), "STATUS=waiting for schema 3 of 7");
	/* Several assignments travel in one datagram. */
	assert_int_equal(sdnotify("STOPPING=1\nSTATUS=draining"), 1);
	assert_string_equal(manager_recv(&m), "STOPPING=1\nSTATUS=draining");
	/* The variable stays for the next message. */
	assert_string_equal(getenv("NOTIFY_SOCKET"), m.name);
	manager_close(&m);
}

static void test_abstract_socket(void **state)
{
	struct manager m;

	manager_bind(&m, true);
	assert_int_equal(sdnotify("READY=1"), 1);
	assert_string_equal(manager_recv(&m), "READY=1");
	assert_int_equal(sdnotify("WATCHDOG=1"), 1);
	assert_string_equal(manager_recv(&m), "WATCHDOG=1");
	manager_close(&m);
}

static void test_bad_names(void **state)
{
	char longname[200];

	assert_int_equal(setenv("NOTIFY_SOCKET", "relative/notify", 1), 0);
	errno = 0;
	assert_int_equal(sdnotify("READY=1"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(setenv("NOTIFY_SOCKET", "@", 1), 0);
	assert_int_equal(sdnotify("READY=1"), -1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", longname, 1), 0);
	assert_int_equal(sdnotify("READY=1"), -1);
	assert_int_equal(errno, EINVAL);
	/* Nobody bound there. */
	assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/sc-notify", 1), 0);
	assert_int_equal(sdnotify("READY=1"), -1);
	assert_int_equal(errno, ENOENT);
	unsetenv("NOTIFY_SOCKET");
}

/* A manager that stops reading fills its queue: we get EAGAIN, never block. */
static void test_full_queue_does_not_block(void **state)
{
	struct manager m;
	int rc = 1, sent = 0;

	manager_bind(&m, false);
	while (rc == 1 && sent < 100000) {
		rc = sdnotify("WATCHDOG=1");
		sent += rc == 1;
	}
	assert_int_equal(rc, -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	assert_true(sent > 0);
	assert_string_equal(manager_recv(&m), "WATCHDOG=1");
	manager_close(&m);
}

static void test_watchdog_usec(void **state)
{
	char pid[32];

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	assert_int_equal(setenv("WATCHDOG_USEC", "60000000", 1), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 60000000);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 60000000);
	/* Meant for another process (our parent, say). */
	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	assert_int_equal(setenv("WATCHDOG_USEC", "-5", 1), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	assert_int_equal(setenv("WATCHDOG_USEC", "12abc", 1), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	assert_int_equal(setenv("WATCHDOG_USEC", "", 1), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset_sends_nothing),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_full_queue_does_not_block),
		cmocka_unit_test(test_watchdog_usec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: a control client starved of CPU does not fail for it (userspace/lib/control.h).
 * A real control server in this process, run by a thread of its own as the agent's loop would;
 * the client is the library's (control_request()), starved where a loaded head unit starves a
 * CLI: between its connect and its request, or halfway through a bundle. connect() and send()
 * are this file's own (they take libc's place in the whole program): in the main thread, while a
 * test asks, they hold the connection until the server has dropped it, then go on as the real
 * ones. The server tells a client it drops before the request was whole why, and that it read
 * nothing; the client then sends the request again, a bounded number of times, and never sends
 * again a request the server may have carried out.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control_server.h"

/* ---- the starved client: connect() and send() of this program -------------------------------- */

static struct {
	int stall_connects; /* connections held after connect, before their first byte */
	int stall_sends;    /* connections held once stall_after bytes are sent */
	size_t stall_after;
	int connects; /* connections made */
	int send_fd;  /* the connection held in send(), or -1 */
	size_t sent;
	int dropped; /* held connections the server dropped meanwhile */
} hook;
static __thread bool hooked; /* the thread the test starves (not the server's) */

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait, reading nothing, until the server has closed fd (within ms). */
static bool wait_closed(int fd, int ms)
{
	uint64_t end = ms_now() + (uint64_t)ms;

	while (ms_now() < end) {
		struct pollfd p = { .fd = fd, .events = POLLRDHUP };

		if (poll(&p, 1, (int)(end - ms_now())) > 0 && p.revents)
			return true;
	}
	return false;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int r = (int)syscall(SYS_connect, fd, sa, len);

	if (r < 0 || !hooked)
		return r;
	hook.connects++;
	hook.send_fd = -1;
	if (hook.stall_connects > 0) {
		hook.stall_connects--;
		hook.dropped += wait_closed(fd, CONTROL_FIRST_BYTE_TIMEOUT_MS + 2000);
	} else if (hook.stall_sends > 0) {
		hook.stall_sends--;
		hook.send_fd = fd;
		hook.sent = 0;
	}
	return r;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	ssize_t n;

	if (hooked && fd == hook.send_fd) {
		if (hook.sent >= hook.stall_after) {
			hook.dropped += wait_closed(fd, CONTROL_IDLE_TIMEOUT_MS + 2000);
			hook.send_fd = -1;
		} else if (len > hook.stall_after - hook.sent) {
			len = hook.stall_after - hook.sent;
		}
	}
	n = (ssize_t)syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
	if (hooked && n > 0 && fd == hook.send_fd)
		hook.sent += (size_t)n;
	return n;
}

/* ---- the server, run by a thread ------------------------------------------------------------- */

struct fixture {
	char dir[64];
	struct control_server *server;
	pthread_t thread;
	atomic_bool stop;
	atomic_int calls; /* requests the handler carried out */
	char line[CONTROL_MAX_REQUEST];
	char *payload;
	size_t payload_size;
};

/* "vanish" (as the line, or a bundle starting so): carried out, then no reply (an internal
 * error: the server closes the connection). Anything else: {"ok":true}. */
static struct json_object *handler(const struct control_request *req, void *userdata)
{
	struct fixture *f = userdata;
	struct json_object *o;

	f->calls++;
	snprintf(f->line, sizeof(f->line), "%s", req->line);
	free(f->payload);
	f->payload = NULL;
	f->payload_size = req->payload_size;
	if (req->payload) {
		f->payload = malloc(req->payload_size);
		assert_non_null(f->payload);
		memcpy(f->payload, req->payload, req->payload_size);
	}
	if (!strcmp(req->line, "vanish") ||
	    (req->payload && req->payload_size >= 6 && !memcmp(req->payload, "vanish", 6)))
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

/* The server's loop, bounded: until the test stops it, 30 s at most. */
static void *serve(void *userdata)
{
	struct fixture *f = userdata;
	uint64_t end = ms_now() + 30000;

	while (!atomic_load(&f->stop) && ms_now() < end) {
		struct pollfd p = { .fd = control_server_fd(f->server), .events = POLLIN };

		if (poll(&p, 1, 10) > 0)
			control_server_process(f->server);
	}
	return NULL;
}

static int setup_dir(struct fixture **ret)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/carwall-test-ctlretry.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	memset(&hook, 0, sizeof(hook));
	hook.send_fd = -1;
	hooked = false;
	*ret = f;
	return 0;
}

/* The server serves root only (without a control group, which needs root to set). */
static int setup(void **state)
{
	struct fixture *f;

	if (setup_dir(&f) < 0)
		return -1;
	*state = f;
	if (geteuid() != 0)
		return 0;
	if (control_server_new(f->dir, CONTROL_NO_GROUP, handler, f, &f->server) < 0 ||
	    pthread_create(&f->thread, NULL, serve, f) != 0) {
		control_server_free(f->server);
		f->server = NULL;
		return -1;
	}
	return 0;
}

static void stop_server(struct fixture *f)
{
	if (!f->server)
		return;
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	control_server_free(f->server);
	f->server = NULL;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	hooked = false;
	stop_server(f);
	snprintf(path, sizeof(path), "%s/%s", f->dir, CONTROL_SOCKET_NAME);
	unlink(path);
	rmdir(f->dir);
	free(f->payload);
	free(f);
	return 0;
}

/* ---- a raw client ---------------------------------------------------------------------------- */

static int raw_client(const struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", f->dir, CONTROL_SOCKET_NAME);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_text(int fd, const char *text)
{
	assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* What the server sends until it closes the connection (within ms; else *ret_eof false). */
static char *receive(int fd, int ms, bool *ret_eof)
{
	char *buf = calloc(1, 4096);
	size_t len = 0;
	uint64_t end = ms_now() + (uint64_t)ms;

	assert_non_null(buf);
	*ret_eof = false;
	while (ms_now() < end && len < 4095) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, (int)(end - ms_now())) <= 0)
			continue;
		n = recv(fd, buf + len, 4095 - len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			*ret_eof = true;
			break;
		}
		if (n > 0)
			len += (size_t)n;
	}
	return buf;
}

/* The reply of a dropped client: an error with the reason, and the not-read mark. */
static void assert_not_read(struct json_object *o, const char *reason)
{
	struct json_object *v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "error", &v));
	assert_non_null(strstr(json_object_get_string(v), reason));
	assert_non_null(strstr(json_object_get_string(v), "did not read the request"));
	assert_true(json_object_object_get_ex(o, CONTROL_REPLY_NOT_READ, &v));
	assert_true(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
}

/* The same as the raw client reads it: one JSON line. */
static void assert_not_read_reply(const char *reply, const char *reason)
{
	size_t len = strlen(reply);
	struct json_object *o;

	assert_true(len > 0);
	assert_int_equal(reply[len - 1], '\n');
	o = json_tokener_parse(reply);
	assert_not_read(o, reason);
	json_object_put(o);
}

/*
 * A forked child as nobody: connects, says nothing, and writes to report_fd whether the server
 * closed the connection, the bytes it read meanwhile and after how long. System calls only (a
 * child of a process with threads).
 */
static void silent_peer_as_nobody(const char *dir, int report_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t t0, end;
	size_t got = 0;
	bool eof = false;
	char buf[512];
	int fd;

	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		_exit(2);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, CONTROL_SOCKET_NAME);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(3);
	t0 = ms_now();
	end = t0 + CONTROL_FIRST_BYTE_TIMEOUT_MS + 2000;
	while (!eof && ms_now() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, (int)(end - ms_now())) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			eof = true;
		else if (n > 0)
			got += (size_t)n;
	}
	dprintf(report_fd, "eof=%d bytes=%zu ms=%llu", eof, got,
		(unsigned long long)(ms_now() - t0));
	_exit(0);
}

/* ---- the server tells why -------------------------------------------------------------------- */

/*
 * Clients that send half a line or half a bundle are dropped after CONTROL_IDLE_TIMEOUT_MS, one
 * that sends nothing after CONTROL_FIRST_BYTE_TIMEOUT_MS: each reads why, and that the server
 * read nothing, before the end of its connection (not an empty read).
 */
static void test_server_tells_a_dropped_client_why_and_that_it_did_nothing(void **state)
{
	struct fixture *f = *state;
	if (!f->server)
		skip();
	uint64_t t0 = ms_now();
	int silent = raw_client(f), half = raw_client(f), half_install = raw_client(f);
	bool eof;
	char *reply;

	send_text(half, "stat");
	send_text(half_install, "install 1000\nxyz");

	reply = receive(half, CONTROL_IDLE_TIMEOUT_MS + 2000, &eof);
	assert_true(eof);
	assert_not_read_reply(reply, "it sent half a request line");
	free(reply);
	reply = receive(half_install, CONTROL_IDLE_TIMEOUT_MS + 2000, &eof);
	assert_true(eof);
	assert_not_read_reply(reply, "its request stopped before the end");
	free(reply);

	/* Meanwhile the silent one is still connected: its first byte may come later. */
	assert_true(ms_now() - t0 < CONTROL_FIRST_BYTE_TIMEOUT_MS);
	struct pollfd p = { .fd = silent, .events = POLLIN | POLLRDHUP };
	assert_int_equal(poll(&p, 1, 0), 0);

	reply = receive(silent, CONTROL_FIRST_BYTE_TIMEOUT_MS + 2000, &eof);
	assert_true(eof);
	assert_true(ms_now() - t0 >= CONTROL_FIRST_BYTE_TIMEOUT_MS);
	assert_not_read_reply(reply, "it sent no request");
	free(reply);
	assert_int_equal(f->calls, 0);
	close(silent);
	close(half);
	close(half_install);
}

/*
 * A peer the server refuses (not root nor of its groups; the socket open to all for the
 * consent group) keeps the idle limit before its first byte, and is dropped with no reply: it
 * learns nothing more than before.
 */
static void test_server_tells_a_refused_peer_nothing(void **state)
{
	struct fixture *f = *state;
	if (!f->server)
		skip();
	int pipefd[2];
	pid_t pid;
	char report[64] = "";

	/* A control group and another consent group: the socket is 0666, each peer checked. */
	stop_server(f);
	assert_int_equal(control_server_new(f->dir, 64998, handler, f, &f->server), 0);
	assert_int_equal(control_server_set_consent_group(f->server, 64999), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	atomic_store(&f->stop, false);
	assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		silent_peer_as_nobody(f->dir, pipefd[1]);
	}
	close(pipefd[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(read(pipefd[0], report, sizeof(report) - 1) > 0);
	close(pipefd[0]);

	unsigned eof, bytes;
	unsigned long long ms;
	assert_int_equal(sscanf(report, "eof=%u bytes=%u ms=%llu", &eof, &bytes, &ms), 3);
	assert_int_equal(eof, 1);
	assert_int_equal(bytes, 0);
	assert_true(ms < CONTROL_FIRST_BYTE_TIMEOUT_MS);
	assert_int_equal(f->calls, 0);
}

/* ---- the client sends again what was not read ------------------------------------------------ */

/* Starved between its connect and its request for longer than the server waits: the request is
 * sent again on a new connection, and carried out once. */
static void test_client_sends_again_a_request_dropped_before_it_was_sent(void **state)
{
	struct fixture *f = *state;
	if (!f->server)
		skip();
	struct json_object *reply = NULL, *v;

	hook.stall_connects = 1;
	hooked = true;
	assert_int_equal(control_request(f->dir, "status", &reply), 0);
	hooked = false;
	assert_int_equal(hook.dropped, 1);
	assert_int_equal(hook.connects, 2);
	assert_true(json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v));
	assert_int_equal(f->calls, 1);
	assert_string_equal(f->line, "status");
	json_object_put(reply);
}

/* Starved halfway through a bundle: the whole bundle is sent again, and installed once. */
static void test_client_sends_again_an_install_dropped_halfway(void **state)
{
	struct fixture *f = *state;
	if (!f->server)
		skip();
	size_t size = 64u << 10;
	char *bundle = malloc(size);
	struct json_object *reply = NULL, *v;

	assert_non_null(bundle);
	for (size_t i = 0; i < size; i++)
		bundle[i] = (char)('a' + i % 26);
	hook.stall_sends = 1;
	hook.stall_after = 1000; /* the line and some of the bundle */
	hooked = true;
	assert_int_equal(control_request_payload(f->dir, "install", bundle, size, &reply), 0);
	hooked = false;
	assert_int_equal(hook.dropped, 1);
	assert_int_equal(hook.connects, 2);
	assert_true(json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v));
	assert_int_equal(f->calls, 1);
	assert_string_equal(f->line, "install 65536");
	assert_int_equal(f->payload_size, size);
	assert_memory_equal(f->payload, bundle, size);
	json_object_put(reply);
	free(bundle);
}

/* Starved at every attempt: CONTROL_CLIENT_ATTEMPTS connections, then the server's reason. */
static void test_client_gives_up_after_its_attempts(void **state)
{
	struct fixture *f = *state;
	if (!f->server)
		skip();
	char bundle[4096];
	struct json_object *reply = NULL;

	memset(bundle, 'b', sizeof(bundle));
	hook.stall_sends = CONTROL_CLIENT_ATTEMPTS + 1;
	hook.stall_after = 100;
	hooked = true;
	assert_int_equal(control_request_payload(f->dir, "install", bundle, sizeof(bundle), &reply),
			 0);
	hooked = false;
	assert_int_equal(hook.connects, CONTROL_CLIENT_ATTEMPTS);
	assert_int_equal(hook.dropped, CONTROL_CLIENT_ATTEMPTS);
	assert_not_read(reply, "its request stopped before the end");
	assert_int_equal(f->calls, 0);
	json_object_put(reply);
}

/* ---- and never what may have been carried out ------------------------------------------------ */

/*
 * A request sent whole, carried out, and then the connection closed without a reply: not sent
 * again, and a clear error rather than an unparseable reply ("Bad message"). A refusal (a reply
 * without the mark) is not sent again either.
 */
static void test_client_never_sends_again_a_request_carried_out(void **state)
{
	struct fixture *f = *state;
	if (!f->server)
		skip();
	struct json_object *reply = NULL, *v;
	char bundle[] = "vanish: a bundle";

	hooked = true;
	assert_int_equal(control_request(f->dir, "vanish", &reply), -ECONNABORTED);
	assert_int_equal(hook.connects, 1);
	assert_int_equal(f->calls, 1);
	assert_non_null(strstr(control_strerror(-ECONNABORTED), "may have been carried out"));

	assert_int_equal(control_request_payload(f->dir, "install", bundle, strlen(bundle), &reply),
			 -ECONNABORTED);
	assert_int_equal(hook.connects, 2);
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->payload_size, strlen(bundle));

	assert_int_equal(control_request(f->dir, "install /tmp/bundle", &reply), 0);
	hooked = false;
	assert_int_equal(hook.connects, 3);
	assert_int_equal(f->calls, 2);
	assert_true(json_object_object_get_ex(reply, "error", &v));
	assert_false(json_object_object_get_ex(reply, CONTROL_REPLY_NOT_READ, &v));
	json_object_put(reply);
}

#define SERVER_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		SERVER_TEST(test_server_tells_a_dropped_client_why_and_that_it_did_nothing),
		SERVER_TEST(test_server_tells_a_refused_peer_nothing),
		SERVER_TEST(test_client_sends_again_a_request_dropped_before_it_was_sent),
		SERVER_TEST(test_client_sends_again_an_install_dropped_halfway),
		SERVER_TEST(test_client_gives_up_after_its_attempts),
		SERVER_TEST(test_client_never_sends_again_a_request_carried_out),
	};
	return cmocka_run_group_tests_name("control_retry", tests, NULL, NULL);
}

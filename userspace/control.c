// SPDX-License-Identifier: GPL-2.0-only
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define CONTROL_IO_TIMEOUT_MS 2000

const char *control_run_dir(const char *option)
{
	const char *env;

	if (option)
		return option;
	env = getenv("CARWALL_RUN_DIR");
	if (env && *env)
		return env;
	return CONTROL_DEFAULT_RUN_DIR;
}

static int control_address(const char *run_dir, struct sockaddr_un *sa, socklen_t *ret_len)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", run_dir, CONTROL_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

int control_listen(const char *run_dir, gid_t group, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	socklen_t len;
	int r;

	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	r = control_address(run_dir, &sa, &len);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	/* A stale socket from a killed agent; the caller holds the run folder's lock. */
	if (unlink(sa.sun_path) < 0 && errno != ENOENT)
		return negative_errno();
	/* Root only: the socket is created 0600 (umask), then checked per peer too. */
	mode_t old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, len);
	umask(old);
	if (r < 0)
		return negative_errno();
	if (group != CONTROL_NO_GROUP &&
	    (chown(sa.sun_path, 0, group) < 0 || chmod(sa.sun_path, 0660) < 0))
		return negative_errno();
	if (listen(fd, 16) < 0)
		return negative_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Wait until fd is readable or writable, within the deadline. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return negative_errno();
	return r == 0 ? -ETIMEDOUT : 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* A client that hung up must not kill the agent with SIGPIPE. */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int r = wait_fd(fd, POLLOUT, CONTROL_IO_TIMEOUT_MS);
				if (r < 0)
					return r;
				continue;
			}
			return negative_errno();
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Root, or a member of the configured group (primary or supplementary). */
static bool control_peer_allowed(int fd, const struct ucred *cred, gid_t group)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (cred->uid == 0)
		return true;
	if (group == CONTROL_NO_GROUP)
		return false;
	if (cred->gid == group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			return true;
	return false;
}

int control_serve_one(int listen_fd, gid_t group, control_handler_t handler, void *userdata)
{
	_cleanup_close_ int fd = -1;
	struct json_object *reply = NULL;
	char req[CONTROL_MAX_REQUEST + 1];
	struct ucred cred;
	socklen_t len = sizeof(cred);
	size_t got = 0;
	int r;

	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return errno == EAGAIN ? 0 : negative_errno();
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return negative_errno();

	/* One line, bounded in size and time. Read from every peer, a refused one too: a
	 * request left unread when the socket closes resets the connection, and the peer
	 * would never see why it was refused. */
	while (got < CONTROL_MAX_REQUEST) {
		ssize_t n = read(fd, req + got, CONTROL_MAX_REQUEST - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return negative_errno();
			r = wait_fd(fd, POLLIN, CONTROL_IO_TIMEOUT_MS);
			if (r < 0)
				return r;
			continue;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (memchr(req, '\n', got))
			break;
	}
	req[got] = '\0';
	char *nl = strchr(req, '\n');
	if (nl)
		*nl = '\0';
	else if (got == CONTROL_MAX_REQUEST)
		return -EMSGSIZE;

	if (!control_peer_allowed(fd, &cred, group)) {
		reply = json_object_new_object();
		json_object_object_add(reply, "error",
				       json_object_new_string("permission denied: root or the "
							      "control group only"));
	} else {
		reply = handler(req, userdata);
	}
	if (!reply)
		return -ENOMEM;
	const char *text = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	r = write_all(fd, text, strlen(text));
	if (r == 0)
		r = write_all(fd, "\n", 1);
	json_object_put(reply);
	return r;
}

int control_request(const char *run_dir, const char *request, struct json_object **ret_reply)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct sockaddr_un sa;
	size_t got = 0, cap = 4096;
	socklen_t len;
	int r;

	r = control_address(run_dir, &sa, &len);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		return negative_errno();
	r = write_all(fd, request, strlen(request));
	if (r == 0)
		r = write_all(fd, "\n", 1);
	if (r < 0)
		return r;
	shutdown(fd, SHUT_WR);

	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		/* A reload of a large policy takes a while; wait generously but not forever. */
		r = wait_fd(fd, POLLIN, 30000);
		if (r < 0)
			return r;
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) {
			if (cap >= CONTROL_MAX_REPLY)
				return -EMSGSIZE;
			char *b = realloc(buf, cap * 2 + 1);
			if (!b)
				return -ENOMEM;
			buf = b;
			cap *= 2;
		}
	}
	buf[got] = '\0';

	enum json_tokener_error jerr;
	struct json_object *reply = json_tokener_parse_verbose(buf, &jerr);
	if (!reply || !json_object_is_type(reply, json_type_object)) {
		json_object_put(reply);
		return -EBADMSG;
	}
	*ret_reply = reply;
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-only
#include "control.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* The client: how long it waits for the agent to accept its bytes, and for the reply. */
#define CONTROL_CLIENT_SEND_TIMEOUT_MS 30000
#define CONTROL_CLIENT_REPLY_TIMEOUT_MS 30000 /* a reload of a large policy takes a while */
#define CONTROL_CLIENT_BACKOFF_MS 100	      /* before attempt N + 1: N times this */
_Static_assert(CONTROL_CLIENT_SEND_TIMEOUT_MS == 30000 && CONTROL_CLIENT_REPLY_TIMEOUT_MS == 30000,
	       "control_strerror() says so");

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

int control_address(const char *run_dir, struct sockaddr_un *sa, socklen_t *ret_len)
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

/* ---- the protocol ---------------------------------------------------------------------------- */

#define INSTALL_VERB "install"
_Static_assert(CONTROL_MAX_PAYLOAD == (16u << 20) + 4096, "the error message below says so");

int control_parse_request(const char *buf, size_t len, bool eof, struct control_header *ret,
			  const char **ret_error)
{
	size_t scan = len < CONTROL_MAX_REQUEST ? len : CONTROL_MAX_REQUEST;
	const char *nl = memchr(buf, '\n', scan);
	size_t line_len, header_len, verb_len;
	const char *arg;
	uint64_t size = 0;

	*ret_error = NULL;
	if (nl) {
		line_len = (size_t)(nl - buf);
		header_len = line_len + 1;
	} else if (len >= CONTROL_MAX_REQUEST) {
		*ret_error = "request line too long";
		return -EMSGSIZE;
	} else if (!eof) {
		return -EAGAIN;
	} else {
		line_len = header_len = len;
	}
	if (line_len == 0) {
		*ret_error = "empty request";
		return -EBADMSG;
	}
	for (size_t i = 0; i < line_len; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e) {
			*ret_error = "the request line is not printable ASCII";
			return -EBADMSG;
		}

	for (verb_len = 0; verb_len < line_len && buf[verb_len] != ' '; verb_len++)
		;
	if (verb_len == strlen(INSTALL_VERB) && !memcmp(buf, INSTALL_VERB, verb_len)) {
		if (verb_len == line_len || line_len == verb_len + 1) {
			*ret_error = "install needs the size of the bundle that follows";
			return -EINVAL;
		}
		arg = buf + verb_len + 1;
		if (arg[0] == '/') {
			*ret_error = "install by path is not supported: the agent opens no file a "
				     "client names; update the carwall CLI, which sends the bundle";
			return -EPERM;
		}
		for (const char *p = arg; p < buf + line_len; p++) {
			if (*p < '0' || *p > '9' || (p == arg && *p == '0')) {
				*ret_error = "install SIZE: SIZE must be a decimal number of bytes";
				return -EINVAL;
			}
			size = size * 10 + (uint64_t)(*p - '0');
			if (size > CONTROL_MAX_PAYLOAD) {
				*ret_error = "the bundle is too large: at most 16 MiB and 4 KiB";
				return -EFBIG;
			}
		}
		/* What the client sent before its eof cannot be followed by a payload. */
		if (eof && !nl) {
			*ret_error = "install SIZE: the bundle is missing";
			return -EBADMSG;
		}
	}
	*ret = (struct control_header){
		.line_len = line_len,
		.header_len = header_len,
		.payload_size = (size_t)size,
	};
	return 0;
}

/* ---- client ---------------------------------------------------------------------------------- */

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
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int r = wait_fd(fd, POLLOUT, CONTROL_CLIENT_SEND_TIMEOUT_MS);
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

/* Whether a reply says the agent did not read the request (CONTROL_REPLY_NOT_READ). */
static bool reply_not_read(struct json_object *reply)
{
	struct json_object *v;

	return json_object_object_get_ex(reply, CONTROL_REPLY_NOT_READ, &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/*
 * Read the reply until the agent closes the connection. A reset counts as its end: the agent
 * closing with bytes of ours unread resets it, and what it wrote before stays readable.
 */
static int reply_read(int fd, char **ret_buf, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t got = 0, cap = 4096;
	int r;

	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		r = wait_fd(fd, POLLIN, CONTROL_CLIENT_REPLY_TIMEOUT_MS);
		if (r < 0)
			return r;
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET)
				break;
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
	*ret_buf = TAKE_PTR(buf);
	*ret_len = got;
	return 0;
}

/*
 * One connection: send head (the line and its newline) and the payload, read the reply.
 * *ret_again: the agent did not carry the request out, for certain, and may if asked again:
 * it said it did not read it, or the connection ended before the request was sent whole
 * without a reply byte.
 */
static int request_once(const struct sockaddr_un *sa, socklen_t sa_len, const char *head,
			const void *payload, size_t size, struct json_object **ret_reply,
			bool *ret_again)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct json_object *reply;
	bool sent;
	size_t got;
	int r;

	*ret_again = false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (const struct sockaddr *)sa, sa_len) < 0)
		return negative_errno();
	r = write_all(fd, head, strlen(head));
	if (r == 0 && size)
		r = write_all(fd, payload, size);
	/* The agent answers a request it refused at once: read its reason rather than EPIPE. */
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		return r;
	sent = r == 0;
	shutdown(fd, SHUT_WR);

	r = reply_read(fd, &buf, &got);
	if (r < 0)
		return r;
	if (got == 0) {
		/* The handler runs on a whole request only: one not sent whole was not run. */
		*ret_again = !sent;
		return sent ? -ECONNABORTED : -EPIPE;
	}
	/* A reply ends with its newline: without it, it was cut short. */
	reply = buf[got - 1] == '\n' ? json_tokener_parse(buf) : NULL;
	if (!reply || !json_object_is_type(reply, json_type_object)) {
		json_object_put(reply);
		return -EBADMSG;
	}
	*ret_again = reply_not_read(reply);
	*ret_reply = reply;
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Send the request, again while the agent did not read it (control.h): the last outcome. */
static int request_send(const char *run_dir, const char *line, const void *payload, size_t size,
			struct json_object **ret_reply)
{
	_cleanup_free_ char *head = NULL;
	struct sockaddr_un sa;
	socklen_t sa_len;
	uint64_t start = mono_ms();
	int r;

	r = control_address(run_dir, &sa, &sa_len);
	if (r < 0)
		return r;
	/* The line and its newline in one write: never half a line for the agent to wait on. */
	if (asprintf(&head, "%s\n", line) < 0) {
		head = NULL; /* undefined after a failure */
		return -ENOMEM;
	}
	for (unsigned attempt = 1;; attempt++) {
		struct json_object *reply = NULL;
		bool again;

		r = request_once(&sa, sa_len, head, payload, size, &reply, &again);
		if (!again || attempt >= CONTROL_CLIENT_ATTEMPTS ||
		    mono_ms() - start >= CONTROL_CLIENT_RETRY_MS) {
			if (r == 0)
				*ret_reply = reply;
			return r;
		}
		json_object_put(reply);
		/* A short back-off: the agent was busy, or this client was starved. */
		struct timespec ts = { 0, (long)attempt * CONTROL_CLIENT_BACKOFF_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

const char *control_strerror(int r)
{
	switch (r) {
	case -EPIPE:
		return "the agent closed the connection before the request was sent whole: "
		       "nothing was done";
	case -ECONNABORTED:
		return "the agent closed the connection without a reply: the request may have "
		       "been carried out";
	case -EBADMSG:
		return "the agent's reply was cut short or is not a JSON object: the request may "
		       "have been carried out";
	case -ETIMEDOUT:
		return "the agent did not answer within 30 s: the request may have been carried "
		       "out";
	default:
		return strerror(-r);
	}
}
int control_request(const char *run_dir, const char *request, struct json_object **ret_reply)
{
	return request_send(run_dir, request, NULL, 0, ret_reply);
}

int control_request_payload(const char *run_dir, const char *verb, const void *payload,
			    size_t size, struct json_object **ret_reply)
{
	char line[CONTROL_MAX_REQUEST];

	if (!size || size > CONTROL_MAX_PAYLOAD)
		return size ? -EFBIG : -EINVAL;
	if ((size_t)snprintf(line, sizeof(line), "%s %zu", verb, size) >= sizeof(line))
		return -EINVAL;
	return request_send(run_dir, line, payload, size, ret_reply);
}

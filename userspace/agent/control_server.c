// SPDX-License-Identifier: GPL-2.0-only
#include "control_server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* The server reads at most this much from one client per turn, so that others get theirs. */
#define CONTROL_READ_PER_TURN (4u << 20)

/* ---- server ---------------------------------------------------------------------------------- */

struct control_client {
	int fd;
	struct ucred peer;
	bool refused; /* not root nor of the control group: its request is read, then refused */
	bool consent_only; /* of the consent group only: consent requests, nothing else */
	bool writing; /* the reply is being sent */
	char head[CONTROL_MAX_REQUEST + 1];
	size_t head_len;
	bool have_header;
	struct control_header hdr;
	char *payload; /* install: payload_size + 1 bytes */
	size_t payload_got;
	char *reply; /* JSON and its newline */
	size_t reply_len, reply_sent;
	uint64_t started_ms, progress_ms;
};

struct control_server {
	int listen_fd;
	int ep;	      /* listen_fd, timer_fd and every client */
	int timer_fd; /* the next client deadline */
	bool listen_paused;
	gid_t group;
	gid_t consent_group; /* CONTROL_NO_GROUP: none */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	control_handler_t handler;
	void *userdata;
	struct control_client *clients[CONTROL_MAX_CLIENTS];
	size_t reply_bytes; /* queued in replies, all clients together */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int control_listen(const char *run_dir, gid_t group, int *ret_fd)
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

static int server_watch(struct control_server *s, int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(s->ep, op, fd, &ev) < 0 ? negative_errno() : 0;
}

int control_server_new(const char *run_dir, gid_t group, control_handler_t handler,
		       void *userdata, struct control_server **ret)
{
	struct control_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->listen_fd = s->ep = s->timer_fd = -1;
	s->group = group;
	s->consent_group = CONTROL_NO_GROUP;
	s->handler = handler;
	s->userdata = userdata;
	r = control_listen(run_dir, group, &s->listen_fd);
	if (r >= 0) {
		struct sockaddr_un sa;
		socklen_t len;

		r = control_address(run_dir, &sa, &len);
		if (r >= 0)
			snprintf(s->path, sizeof(s->path), "%s", sa.sun_path);
	}
	if (r >= 0) {
		s->ep = epoll_create1(EPOLL_CLOEXEC);
		s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (s->ep < 0 || s->timer_fd < 0)
			r = negative_errno();
	}
	if (r >= 0)
		r = server_watch(s, EPOLL_CTL_ADD, s->listen_fd, EPOLLIN, &s->listen_fd);
	if (r >= 0)
		r = server_watch(s, EPOLL_CTL_ADD, s->timer_fd, EPOLLIN, &s->timer_fd);
	if (r < 0) {
		control_server_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

int control_server_fd(const struct control_server *s)
{
	return s->ep;
}

int control_server_set_consent_group(struct control_server *s, gid_t group)
{
	if (group == CONTROL_NO_GROUP || group == s->group) {
		s->consent_group = group;
		return 0;
	}
	/*
	 * The socket has one group. Without a control group it is the consent group's (0660);
	 * with another control group, every user may connect (0666) and each connection is
	 * checked (SO_PEERCRED, SO_PEERGROUPS) before anything it asks is done.
	 */
	if (s->group == CONTROL_NO_GROUP) {
		if (chown(s->path, 0, group) < 0 || chmod(s->path, 0660) < 0)
			return negative_errno();
	} else if (chmod(s->path, 0666) < 0) {
		return negative_errno();
	}
	s->consent_group = group;
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

static void client_free(struct control_server *s, size_t i)
{
	struct control_client *c = i < CONTROL_MAX_CLIENTS ? s->clients[i] : NULL;

	if (!c)
		return;
	s->reply_bytes -= c->reply_len - c->reply_sent;
	/*
	 * What the client sent and nobody read (a request refused before its end, what follows the
	 * line) would make the kernel reset the connection on close (AF_UNIX), so that the client
	 * loses the reply it has not read yet: read it away first, a bounded amount, never waiting.
	 */
	for (int k = 0; k < 16; k++) {
		char buf[4096];

		if (recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	}
	close(c->fd); /* also removes it from the epoll set */
	free(c->payload);
	free(c->reply);
	free(c);
	s->clients[i] = NULL;
	if (s->listen_paused &&
	    server_watch(s, EPOLL_CTL_MOD, s->listen_fd, EPOLLIN, &s->listen_fd) >= 0)
		s->listen_paused = false;
}

void control_server_free(struct control_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		client_free(s, i);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->ep >= 0)
		close(s->ep);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	free(s);
}

static size_t client_index(const struct control_server *s, const struct control_client *c)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (s->clients[i] == c)
			return i;
	return CONTROL_MAX_CLIENTS;
}

static void client_drop(struct control_server *s, struct control_client *c, const char *why)
{
	log_warning("Control client (pid %d, uid %u) dropped: %s", (int)c->peer.pid,
		    (unsigned)c->peer.uid, why);
	client_free(s, client_index(s, c));
}

/* Send what the socket takes now. Returns true when the client is done with (and freed). */
static bool client_write(struct control_server *s, struct control_client *c)
{
	while (c->reply_sent < c->reply_len) {
		/* A client that hung up must not kill the agent with SIGPIPE. */
		ssize_t n = send(c->fd, c->reply + c->reply_sent, c->reply_len - c->reply_sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return false;
			/* It went away: nothing to tell it. */
			client_free(s, client_index(s, c));
			return true;
		}
		c->reply_sent += (size_t)n;
		s->reply_bytes -= (size_t)n;
		c->progress_ms = mono_ms();
	}
	client_free(s, client_index(s, c));
	return true;
}

/* Queue the reply (the object is consumed) and start sending it. */
static void client_reply(struct control_server *s, struct control_client *c,
			 struct json_object *reply)
{
	const char *text;
	size_t len;

	free(c->payload); /* the request is done with */
	c->payload = NULL;
	text = reply ? json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN) : NULL;
	len = text ? strlen(text) : 0;
	if (!text || len + 1 > CONTROL_MAX_REPLY || !(c->reply = malloc(len + 1))) {
		json_object_put(reply);
		client_drop(s, c, reply ? "reply too large or out of memory" : "internal error");
		return;
	}
	memcpy(c->reply, text, len);
	c->reply[len] = '\n';
	c->reply_len = len + 1;
	s->reply_bytes += c->reply_len;
	json_object_put(reply);
	c->writing = true;
	c->progress_ms = mono_ms();
	if (server_watch(s, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c) < 0) {
		client_drop(s, c, "epoll");
		return;
	}
	client_write(s, c);
}

static struct json_object *json_error_new(const char *message)
{
	struct json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, "error", json_object_new_string(message));
	return o;
}

static bool install_in_progress(const struct control_server *s, const struct control_client *self)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (s->clients[i] && s->clients[i] != self && s->clients[i]->payload)
			return true;
	return false;
}

/* The whole request is in: ask the handler. */
static void client_answer(struct control_server *s, struct control_client *c)
{
	struct control_request req = {
		.line = c->head,
		.payload = c->payload,
		.payload_size = c->hdr.payload_size,
		.peer = c->peer,
		.consent_only = c->consent_only,
	};

	c->head[c->hdr.line_len] = '\0';
	if (s->reply_bytes > CONTROL_MAX_REPLY) {
		/* Clients that do not read hold that much already: no more until they are gone. */
		client_reply(s, c, json_error_new("the agent is busy: replies are waiting to be "
						  "read; try again"));
		return;
	}
	client_reply(s, c, s->handler(&req, s->userdata));
}

/* The request line is in head[]: check it, and start on the payload if one follows. Returns
 * true when the client has been answered. */
static bool client_header(struct control_server *s, struct control_client *c, bool eof)
{
	const char *error;
	size_t extra;
	int r = control_parse_request(c->head, c->head_len, eof, &c->hdr, &error);

	if (r == -EAGAIN)
		return false;
	if (r < 0) {
		log_warning("Control client (pid %d, uid %u): refused request: %s",
			    (int)c->peer.pid, (unsigned)c->peer.uid, error);
		client_reply(s, c, json_error_new(error));
		return true;
	}
	c->have_header = true;
	if (c->refused) {
		client_reply(s, c, json_error_new("permission denied: root or the control group "
						  "only"));
		return true;
	}
	if (c->consent_only && c->hdr.payload_size) {
		client_reply(s, c, json_error_new("permission denied: the consent group may only "
						  "list and set consent switches"));
		return true;
	}
	if (!c->hdr.payload_size) {
		/* One request per connection: what follows the line is not read. */
		client_answer(s, c);
		return true;
	}
	if (install_in_progress(s, c)) {
		client_reply(s, c, json_error_new("another install is being received; try again"));
		return true;
	}
	c->payload = malloc(c->hdr.payload_size + 1);
	if (!c->payload) {
		client_reply(s, c, json_error_new("out of memory for the bundle"));
		return true;
	}
	extra = c->head_len - c->hdr.header_len;
	if (extra > c->hdr.payload_size)
		extra = c->hdr.payload_size;
	memcpy(c->payload, c->head + c->hdr.header_len, extra);
	c->payload_got = extra;
	return false;
}

/* Whether the request is complete: then answer it. */
static bool client_complete(struct control_server *s, struct control_client *c)
{
	if (!c->have_header || c->payload_got < c->hdr.payload_size)
		return false;
	c->payload[c->payload_got] = '\0';
	client_answer(s, c);
	return true;
}

/* Read what the client sent so far (a bounded amount per turn). */
static void client_read(struct control_server *s, struct control_client *c)
{
	size_t budget = CONTROL_READ_PER_TURN;

	while (budget > 0) {
		char *dst;
		size_t want;
		ssize_t n;

		if (!c->have_header) {
			dst = c->head + c->head_len;
			want = CONTROL_MAX_REQUEST - c->head_len;
		} else {
			dst = c->payload + c->payload_got;
			want = c->hdr.payload_size - c->payload_got;
		}
		if (want > budget)
			want = budget;
		n = recv(c->fd, dst, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				client_drop(s, c, strerror(errno));
			return;
		}
		if (n == 0) {
			char msg[128];

			if (c->have_header) {
				snprintf(msg, sizeof(msg),
					 "the request ended after %zu of %zu bytes",
					 c->payload_got, c->hdr.payload_size);
				client_reply(s, c, json_error_new(msg));
			} else if (c->head_len == 0) {
				client_free(s, client_index(s, c)); /* connected, said nothing */
			} else {
				client_header(s, c, true);
			}
			return;
		}
		budget -= (size_t)n;
		c->progress_ms = mono_ms();
		if (!c->have_header) {
			c->head_len += (size_t)n;
			if (client_header(s, c, false))
				return;
		} else {
			c->payload_got += (size_t)n;
		}
		if (client_complete(s, c))
			return;
	}
}

static void server_accept(struct control_server *s)
{
	for (;;) {
		struct control_client *c;
		socklen_t len = sizeof(c->peer);
		size_t i;
		int fd;

		for (i = 0; i < CONTROL_MAX_CLIENTS && s->clients[i]; i++)
			;
		if (i == CONTROL_MAX_CLIENTS) {
			/* Full: the next ones wait in the backlog until a slot is free. */
			if (server_watch(s, EPOLL_CTL_MOD, s->listen_fd, 0, &s->listen_fd) >= 0)
				s->listen_paused = true;
			return;
		}
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning_errno(negative_errno(), "Control socket: accept: %m");
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->started_ms = c->progress_ms = mono_ms();
		s->clients[i] = c;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0 ||
		    server_watch(s, EPOLL_CTL_ADD, fd, EPOLLIN, c) < 0) {
			client_drop(s, c, "cannot serve it");
			continue;
		}
		if (!control_peer_allowed(fd, &c->peer, s->group) &&
		    s->consent_group != CONTROL_NO_GROUP &&
		    control_peer_allowed(fd, &c->peer, s->consent_group)) {
			c->consent_only = true;
		} else if (!control_peer_allowed(fd, &c->peer, s->group)) {
			/* Its request line is read first, then refused (client_header()): a reply
			 * before the client has sent anything could be lost to its own send. */
			log_warning("Control client (pid %d, uid %u) refused: root or the control "
				    "group only",
				    (int)c->peer.pid, (unsigned)c->peer.uid);
			c->refused = true;
		}
	}
}

/* How long the client may make no progress now (control.h). */
static uint64_t client_idle_limit_ms(const struct control_client *c)
{
	if (!c->refused && !c->writing && c->head_len == 0)
		return CONTROL_FIRST_BYTE_TIMEOUT_MS;
	return CONTROL_IDLE_TIMEOUT_MS;
}

static uint64_t client_deadline(const struct control_client *c)
{
	uint64_t idle = c->progress_ms + client_idle_limit_ms(c);
	uint64_t total = c->started_ms + CONTROL_EXCHANGE_TIMEOUT_MS;

	return idle < total ? idle : total;
}

/*
 * A client dropped before its request was whole: tell it why, and that the agent did not read
 * the request and did nothing (CONTROL_REPLY_NOT_READ: it may send it again). Best effort: what
 * its socket takes at once, never waited for (a reply being sent to it is none of this). Not to
 * a refused peer: it learns no more than it did before its request line.
 */
static void client_tell_not_read(const struct control_client *c, const char *why)
{
	uint64_t now = mono_ms();
	struct json_object *o;
	const char *text;
	char msg[256];

	if (c->refused || c->writing)
		return;
	if (now - c->started_ms >= CONTROL_EXCHANGE_TIMEOUT_MS)
		snprintf(msg, sizeof(msg),
			 "dropped: the request was not whole after %d s; the agent did not read it "
			 "and did nothing: it may be sent again",
			 CONTROL_EXCHANGE_TIMEOUT_MS / 1000);
	else
		snprintf(msg, sizeof(msg),
			 "dropped: %s (nothing for %.1f s); the agent did not read the request and "
			 "did nothing: it may be sent again",
			 why, (double)client_idle_limit_ms(c) / 1000.0);
	o = json_error_new(msg);
	if (!o)
		return;
	json_object_object_add(o, CONTROL_REPLY_NOT_READ, json_object_new_boolean(1));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (text) {
		/* A few hundred bytes to a socket nothing was written to yet: taken whole (one
		 * cut short would not pass for a reply: it lacks its newline). */
		size_t len = strlen(text);
		char buf[512];

		if (len + 1 <= sizeof(buf)) {
			memcpy(buf, text, len);
			buf[len] = '\n';
			(void)send(c->fd, buf, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
	json_object_put(o);
}

/* Serve a client as far as it can go now. */
static void client_step(struct control_server *s, struct control_client *c)
{
	if (c->writing)
		client_write(s, c);
	else
		client_read(s, c);
}

/*
 * Drop the clients that are late, and arm the timer for the next deadline. A late client gets
 * one last turn first: what it sent while the agent was busy elsewhere counts.
 */
static void server_expire(struct control_server *s)
{
	uint64_t next = 0;

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *c = s->clients[i];

		if (c && client_deadline(c) <= mono_ms()) {
			client_step(s, c);
			c = s->clients[i];
		}
		if (c && client_deadline(c) <= mono_ms()) {
			const char *why = c->writing ? "it does not read its reply"
					  : c->have_header ? "its request stopped before the end"
					  : c->head_len ? "it sent half a request line"
							: "it sent no request";

			client_tell_not_read(c, why);
			client_drop(s, c, why);
			continue;
		}
		if (c && (!next || client_deadline(c) < next))
			next = client_deadline(c);
	}

	struct itimerspec its = {};
	uint64_t now = mono_ms();
	/* Relative, and at least 1 ms: 0 would disarm the timer. */
	uint64_t ms = next > now ? next - now : 1;
	if (next) {
		its.it_value.tv_sec = (time_t)(ms / 1000);
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	}
	timerfd_settime(s->timer_fd, 0, &its, NULL);
}

void control_server_process(struct control_server *s)
{
	struct epoll_event events[CONTROL_MAX_CLIENTS + 2];
	int n = epoll_wait(s->ep, events, ARRAY_SIZE(events), 0);

	for (int i = 0; i < n; i++) {
		void *ptr = events[i].data.ptr;

		if (ptr == &s->listen_fd) {
			server_accept(s);
		} else if (ptr == &s->timer_fd) {
			uint64_t expirations;
			if (read(s->timer_fd, &expirations, sizeof(expirations)) < 0 &&
			    errno != EAGAIN)
				log_warning_errno(negative_errno(), "Control socket: timer: %m");
		} else {
			struct control_client *c = ptr;

			/* Freed by an earlier event of this batch? (Not expected; checked.) */
			if (client_index(s, c) == CONTROL_MAX_CLIENTS)
				continue;
			client_step(s, c);
		}
	}
	server_expire(s);
}

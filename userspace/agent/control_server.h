/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's side of the control socket (lib/control.h: the protocol): a non-blocking server
 * driven by the agent's event loop, one small state machine per connection.
 */
#pragma once

#include <json-c/json.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "control.h"
#include "util.h"

/* A whole request, as the handler sees it. */
struct control_request {
	const char *line;    /* NUL-terminated, without the newline */
	const char *payload; /* install: the bytes that followed the line; else NULL */
	size_t payload_size;
	struct ucred peer; /* the client, from SO_PEERCRED */
	/* Not root nor of the control group, but of the consent group: only consent requests
	 * may be answered (the handler refuses the others). */
	bool consent_only;
};

/* Answer one request: return a JSON object (owned by the caller) or NULL for an internal
 * error. Called from control_server_process(), in the agent's loop. */
typedef struct json_object *(*control_handler_t)(const struct control_request *req,
						 void *userdata);

/* Server side. group: the group that may use the socket besides root, or CONTROL_NO_GROUP. */
struct control_server;
int control_server_new(const char *run_dir, gid_t group, control_handler_t handler,
		       void *userdata, struct control_server **ret);
void control_server_free(struct control_server *s);
/*
 * The group whose members (not root, not of the control group) may send consent requests only
 * (`carwalld --consent-group`, the HMI's user): the socket is made reachable for them. 0 or a
 * negative errno.
 */
int control_server_set_consent_group(struct control_server *s, gid_t group);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct control_server *, control_server_free);
/* An fd that is readable when the server has work (a connection, a client, a deadline): add it
 * to the event loop and call control_server_process() when it is. */
int control_server_fd(const struct control_server *s);
/* Do what can be done without blocking: accept, read, answer, write, drop late clients. */
void control_server_process(struct control_server *s);

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's control socket: a Unix stream socket <run-dir>/carwalld.sock for root, or also
 * for one configured group (mode 0660), checked per connection with SO_PEERCRED and
 * SO_PEERGROUPS. A client sends one request line ("status", "reload",
 * "app-cgroup ID", "cgroup-managed PATH") and reads one JSON object back, then the connection
 * closes.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

#define CONTROL_NO_GROUP ((gid_t)-1)

#define CONTROL_DEFAULT_RUN_DIR "/run/carwall"
#define CONTROL_SOCKET_NAME "carwalld.sock"
#define CONTROL_MAX_REQUEST 512
#define CONTROL_MAX_REPLY (64u << 20) /* `stats` of a policy with 131072 rules fits */

/* The run folder: the option if given, else $CARWALL_RUN_DIR, else the default. */
const char *control_run_dir(const char *option);

/* Server side. group: the group that may use the socket besides root, or CONTROL_NO_GROUP. */
int control_listen(const char *run_dir, gid_t group, int *ret_fd);

/* Answer one request: the handler gets the request line (no newline) and returns a JSON
 * object (owned by the caller) or NULL for an internal error. */
typedef struct json_object *(*control_handler_t)(const char *request, void *userdata);

/* Accept one connection on listen_fd and serve it (bounded in time). */
int control_serve_one(int listen_fd, gid_t group, control_handler_t handler, void *userdata);

/* Client side: send a request and parse the JSON reply. -ENOENT/-ECONNREFUSED: no agent. */
int control_request(const char *run_dir, const char *request, struct json_object **ret_reply);

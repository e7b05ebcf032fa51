/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's control socket, what both sides share: the protocol, its parser and the client
 * (the server is the agent's, agent/control_server.h). A Unix stream socket
 * <run-dir>/carwalld.sock for root, or also for one configured group (mode 0660), checked per
 * connection with SO_PEERCRED and SO_PEERGROUPS; a consent group (the HMI's user) may send the
 * two consent requests and nothing else.
 *
 * Protocol: a client sends one request and reads one JSON object back (an "error" member when
 * refused), then the connection closes. A request is one line of printable ASCII ending in
 * '\n', at most CONTROL_MAX_REQUEST bytes with the newline:
 *
 *   status | stats | reload | app-cgroup ID    the line alone
 *   cgroup-managed PATH                         the line alone (PATH: a cgroup, as in
 *                                               /proc/self/cgroup)
 *   consent-list | consent-set NAME on|off      the line alone: the driver's consent switches
 *   install SIZE                                followed by exactly SIZE bytes (decimal, 1 to
 *                                               CONTROL_MAX_PAYLOAD): the bundle itself
 *
 * The agent never opens a path a client names: the client reads its file with its own
 * privileges and sends the bytes ("install /PATH", the old form, is refused with a reason).
 * A client that shuts its side down after the line may leave out the newline.
 *
 * The server never blocks on a client: every socket is non-blocking, each connection is a small
 * state machine driven by the agent's event loop, and a client that makes no progress for
 * CONTROL_IDLE_TIMEOUT_MS (half a request, does not read its reply) or whose exchange lasts more
 * than CONTROL_EXCHANGE_TIMEOUT_MS is dropped. Before its first byte a client of root, the
 * control group or the consent group may wait CONTROL_FIRST_BYTE_TIMEOUT_MS: a CLI starved of
 * CPU between its connect and its request (a loaded head unit at boot) keeps its turn. Those
 * clients are privileged (the socket is 0600 or 0660): one that holds the 16 slots on purpose
 * could do worse anyway, and the idle limit between later reads stays. A peer that is refused
 * (any user when the socket is 0666, for a consent group besides the control group) keeps the
 * idle limit before its first byte too, and is dropped without a reply, as before.
 *
 * A client dropped before its request was whole gets, when its socket takes it at once (best
 * effort, never waited for), one error reply with CONTROL_REPLY_NOT_READ true: the agent did not
 * read the request and did nothing. The client (control_request()) then sends the request again,
 * as it does when the connection ended, without a reply byte, before the request was sent
 * whole; at most CONTROL_CLIENT_ATTEMPTS attempts, none started CONTROL_CLIENT_RETRY_MS after
 * the first. A request sent whole and answered with nothing, or with a reply cut short, is
 * never sent again: the agent may have carried it out.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "bundle.h"
#include "util.h"

#define CONTROL_NO_GROUP ((gid_t)-1)

#define CONTROL_DEFAULT_RUN_DIR "/run/carwall"
#define CONTROL_SOCKET_NAME "carwalld.sock"
#define CONTROL_MAX_REQUEST 512		     /* the request line, newline included */
#define CONTROL_MAX_PAYLOAD BUNDLE_MAX_BYTES /* what follows `install SIZE` */
#define CONTROL_MAX_REPLY (64u << 20)	     /* `stats` of a policy with 131072 rules fits */
#define CONTROL_MAX_CLIENTS 16		     /* connections served at once; more wait */
#define CONTROL_IDLE_TIMEOUT_MS 1000	     /* a client that makes no progress this long goes */
#define CONTROL_FIRST_BYTE_TIMEOUT_MS 5000   /* a privileged client before its first byte */
#define CONTROL_EXCHANGE_TIMEOUT_MS 30000    /* and one whose exchange lasts longer */
#define CONTROL_CLIENT_ATTEMPTS 3	     /* a request the agent did not read: sent again */
#define CONTROL_CLIENT_RETRY_MS 60000	     /* no attempt starts later after the first */

/* The member of an error reply that says the agent did not read the request (true). */
#define CONTROL_REPLY_NOT_READ "not_read"

/* The run folder: the option if given, else $CARWALL_RUN_DIR, else the default. */
const char *control_run_dir(const char *option);

/* The socket's address in run_dir. */
int control_address(const char *run_dir, struct sockaddr_un *sa, socklen_t *ret_len);

/* A request line parsed by control_parse_request(). */
struct control_header {
	size_t line_len;     /* the line without its newline */
	size_t header_len;   /* the line with its newline: where the payload starts */
	size_t payload_size; /* install: SIZE; else 0 */
};

/*
 * Parse the request line at the start of buf[0..len) (a pure function: no I/O, no allocation).
 * eof: the client sent nothing more, so a line without its newline ends at len.
 * Returns 0 with *ret filled, -EAGAIN when more bytes are needed, or a negative errno with
 * *ret_error set to a one-line reason for the client: -EMSGSIZE (line too long), -EBADMSG
 * (empty, or not printable ASCII), -EINVAL (a bad install size), -EFBIG (install larger than
 * CONTROL_MAX_PAYLOAD), -EPERM (install by path, the old form).
 */
int control_parse_request(const char *buf, size_t len, bool eof, struct control_header *ret,
			  const char **ret_error);

/*
 * Client side: send a request and parse the JSON reply, sent again while the agent did not read
 * it (above). -ENOENT/-ECONNREFUSED: no agent; -EPIPE: every attempt was dropped before the
 * request was sent; -ECONNABORTED: the request was sent whole and the connection ended without
 * a reply; -EBADMSG: the reply is cut short or not a JSON object. control_strerror() says so.
 */
int control_request(const char *run_dir, const char *request, struct json_object **ret_reply);
/* The same with a payload: sends "VERB SIZE\n" and the bytes. */
int control_request_payload(const char *run_dir, const char *verb, const void *payload,
			    size_t size, struct json_object **ret_reply);

/* A client error for a person: what control_request() returned (a negative errno) means. */
const char *control_strerror(int r);

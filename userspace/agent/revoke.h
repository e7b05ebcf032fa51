/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Revocation of established flows: after a reload, cut the connections of managed apps that the
 * new policy no longer allows, so that an upload already under way cannot outlive the rule that
 * let it start. Allowed flows, and every socket outside the managed cgroups, are left alone.
 *
 * One pass (revoke_run()):
 *   1. The network namespaces to visit: the caller's own, and that of every process in every
 *      managed or guard cgroup subtree (cgroup.procs, recursively, then /proc/PID/ns/net),
 *      deduplicated. sock_diag only sees the namespace of the socket that asks, so each one is
 *      visited by a short-lived thread that setns()es into it; the calling thread never changes
 *      namespace.
 *   2. In each namespace, NETLINK_SOCK_DIAG dumps (libnl-3) of TCP sockets in every state but
 *      LISTEN, TIME_WAIT and CLOSE, and of connected UDP sockets (remote port != 0), IPv4 and
 *      IPv6, each with its carwall socket storage (cw_sk_state, INET_DIAG_REQ_SK_BPF_STORAGES),
 *      for the rule on accepted sockets below.
 *   3. A socket's cgroup comes from the kernel (attribute INET_DIAG_CGROUP_ID, Linux >= 5.7),
 *      is turned into a path with open_by_handle_at() on the cgroup2 mount, and belongs to the
 *      deepest managed or guard cgroup that is that cgroup or one of its ancestors (path prefix
 *      on component boundaries). A socket without the attribute, or whose cgroup cannot be
 *      resolved (removed since), is counted as unjudged and never touched: no guessing.
 *      Sockets of cgroups that are not managed are never touched.
 *   4. A managed socket is judged with policy_maps_lookup() on the NEW policy's maps: (app,
 *      family, remote address, protocol, remote port); one that a learned host name connected
 *      (CW_SK_F_BY_NAME in its storage, with the name) is kept too while that name is still
 *      the app's, with its port and protocol, as the egress program judges it. A refused one is destroyed with
 *      SOCK_DESTROY, addressed by its exact inet_diag_sockid, cookie included: a TCP peer gets
 *      a RST and the owner sees ECONNABORTED; a connected UDP socket is disconnected and its
 *      owner sees ECONNABORTED (then EDESTADDRREQ on send()).
 *
 * The rule on accepted (server-side) sockets, the egress program's (bpf/skb.bpf.c): a TCP socket
 * whose storage says the kernel accepted it (CW_SK_F_PASSIVE, set by bpf/sock_ops.bpf.c) and
 * that the app never connected (no CW_SK_F_ACTIVE) is judged by its peer's address alone: kept
 * when the app may reach that address over TCP on some port, since the peer's port is the
 * client's ephemeral one that no rule is about. Which sockets are accepted is the kernel's word,
 * never inferred from ports: an outgoing connection made from the port of the app's own
 * listener (SO_REUSEPORT) is judged like any connection it made. Every other socket, one
 * without storage included (it predates carwall, or no map was given), is judged by remote
 * address, port and protocol.
 *
 * Apps and guards. Each managed cgroup carries the index of its app in the policy the maps were
 * compiled from. An app index of REVOKE_APP_DENY_ALL, or any index >= n_apps (the agent gives
 * its guard cgroup the index n_apps), means "every flow refused": every socket there is
 * destroyed, except server-side ones.
 *
 * Needs root (CAP_NET_ADMIN in each namespace, CAP_SYS_ADMIN for setns(), CAP_DAC_READ_SEARCH
 * for open_by_handle_at()) and a kernel with CONFIG_INET_DIAG_DESTROY for the destruction;
 * without it, revoke_probe() and revoke_run() say -EOPNOTSUPP and nothing is cut.
 */
#pragma once

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy_compile.h"

/* App index of a cgroup whose every flow is refused (a guard). Any index >= n_apps is too. */
#define REVOKE_APP_DENY_ALL UINT32_MAX

/* Limits of one pass, all enforced. */
#define REVOKE_MAX_CGROUPS 4096	       /* managed + guard cgroups given to one pass */
#define REVOKE_MAX_WALK_DIRS 8192      /* cgroup folders walked to find processes */
#define REVOKE_MAX_WALK_DEPTH 32       /* below each managed cgroup */
#define REVOKE_MAX_PIDS 65536	       /* processes looked at to find namespaces */
#define REVOKE_MAX_NETNS 64	       /* network namespaces visited */
#define REVOKE_MAX_SOCKETS 65536       /* sockets judged per namespace */
#define REVOKE_CGROUP_CACHE 1024       /* cgroup id -> managed cgroup, per pass */
#define REVOKE_DEFAULT_TIMEOUT_MS 5000 /* a whole pass */
#define REVOKE_NETLINK_TIMEOUT_MS 1000 /* one netlink reply */
#define REVOKE_DUMP_TRIES 3	       /* an interrupted dump is asked again, this many tries */

struct revoke_cgroup {
	const char *path; /* absolute path of the cgroup, below the cgroup2 mount */
	uint32_t app;	  /* app index in the maps; REVOKE_APP_DENY_ALL, >= n_apps: deny all */
};

struct revoke_params {
	const char *cgroup_mount;	     /* the cgroup2 mount point (cgroup_find_mount()) */
	const struct revoke_cgroup *cgroups; /* managed and guard cgroups, any order */
	size_t n_cgroups;
	const struct policy_maps *maps; /* the NEW policy; may be NULL only when n_apps is 0 */
	uint32_t n_apps;		/* apps in the policy the maps were compiled from */
	unsigned timeout_ms;		/* 0: REVOKE_DEFAULT_TIMEOUT_MS */
	/* carwall's cw_sk_state map (how each socket came to be); <= 0: none (left out of an
	 * initializer), and then no socket is taken for accepted. */
	int sk_state_fd;
};

/*
 * What one pass saw and did. seen = unmanaged + unjudged + judged; judged = kept + refused;
 * refused = destroyed + gone + errors. The sockets of a namespace that failed are not counted
 * in full: a namespace that could not be enumerated is never "nothing to cut".
 */
struct revoke_stats {
	unsigned netns;	      /* network namespaces visited, and one for those hidden (below) */
	/* ... of which entering, the dump or a destruction failed, or (counted as one) that of a
	 * live process in a managed cgroup could not be opened, so not visited */
	unsigned netns_failed;
	int netns_error;       /* the first such failure, a negative errno, or 0 */
	const char *netns_failed_at; /* ... what failed there (a static string), or NULL */
	unsigned dumps_interrupted; /* dumps the kernel flagged inconsistent (NLM_F_DUMP_INTR) */
	unsigned seen;	      /* TCP (not LISTEN/TIME_WAIT/CLOSE) and connected UDP sockets */
	unsigned unmanaged;   /* in no managed or guard cgroup: never touched */
	unsigned unjudged;    /* no cgroup id from the kernel, or its cgroup cannot be resolved */
	unsigned judged;      /* in a managed or guard cgroup */
	unsigned kept;	      /* allowed by the new policy */
	unsigned server_side; /* ... of which accepted sockets kept for their peer's address */
	unsigned refused;     /* not allowed by the new policy */
	unsigned destroyed;   /* ... and destroyed */
	unsigned gone;	      /* ... closed before SOCK_DESTROY reached them */
	unsigned errors;      /* ... SOCK_DESTROY failed (see first_error) */
	int first_error;      /* the first per-socket failure, a negative errno, or 0 */
	bool destroy_unsupported; /* the kernel has no SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY) */
	bool truncated;		  /* a REVOKE_MAX_* limit was reached: not all was seen */
	bool timed_out;		  /* the pass ran out of time */
	uint64_t elapsed_us;
};

/*
 * Run one revocation pass. *ret_stats (optional) is filled in every case, also on failure.
 * Returns 0 when every namespace was visited and every refused socket handled (per-socket
 * failures are only counted); -EOPNOTSUPP when the kernel cannot destroy sockets; -ETIMEDOUT
 * when the pass ran out of time; -E2BIG when a limit cut it short; the first namespace's failure
 * otherwise (netns_error, netns_failed_at: a live process's namespace that cannot be opened,
 * setns(), a netlink error, a dump still interrupted after REVOKE_DUMP_TRIES tries: -EINTR);
 * -EINVAL, -ENOMEM, ... when it could not start.
 */
int revoke_run(const struct revoke_params *p, struct revoke_stats *ret_stats);

/*
 * Whether this kernel can destroy sockets: asks it to destroy a TCP socket that cannot exist.
 * 0 when it can, -EOPNOTSUPP when it cannot, another negative errno when asking failed (-EPERM
 * without CAP_NET_ADMIN).
 */
int revoke_probe(void);

/* ---- pure parts, exposed for the unit tests -------------------------------------------------- */

/* One socket from a sock_diag dump. */
struct revoke_sock {
	uint8_t family;	  /* AF_INET or AF_INET6 */
	uint8_t protocol; /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t state;	  /* TCP_* of <netinet/tcp.h> (UDP: TCP_ESTABLISHED when connected) */
	bool has_cgroup_id;
	uint64_t cgroup_id;
	uint32_t sk_flags; /* CW_SK_F_* of its cw_sk_state, 0 when it has none */
	/* CW_SK_F_BY_NAME: the name that connected it, and where (cw_sk_state.name_*) */
	uint64_t name_hash;
	uint32_t name_kind;
	uint8_t name_addr[16];
	struct inet_diag_sockid id; /* as the kernel gave it: the address of SOCK_DESTROY */
};

/*
 * Parse one SOCK_DIAG_BY_FAMILY reply (struct inet_diag_msg and its attributes) of a dump of
 * `protocol`. sk_state_map_id: the id of carwall's cw_sk_state map, whose value in the reply's
 * INET_DIAG_SK_BPF_STORAGES gives sk_flags (0: none asked for). Returns 0, or -EBADMSG when the
 * message is too short, its attributes are malformed or its family is neither AF_INET nor
 * AF_INET6. A missing INET_DIAG_CGROUP_ID is not an error: has_cgroup_id is false; a missing
 * storage neither: sk_flags is 0.
 */
int revoke_parse_diag(const struct nlmsghdr *nlh, uint8_t protocol, uint32_t sk_state_map_id,
		      struct revoke_sock *ret);

/*
 * The replies to sock_diag dumps of one namespace, fed one netlink message at a time. Each dump
 * (one request) is an attempt: revoke_dump_start(), revoke_dump_feed() until it returns 1, then
 * revoke_dump_end(). The sockets of every complete attempt accumulate in v[0..n).
 */
struct revoke_dump {
	uint8_t protocol;	  /* of the current request */
	uint32_t seq;		  /* ... whose replies are taken; others are ignored */
	uint32_t sk_state_map_id; /* see revoke_parse_diag() */
	struct revoke_sock *v;	  /* the sockets (free() it) */
	size_t n, cap, max;	  /* max: at most this many sockets, then truncated */
	size_t attempt_n;	  /* n when the current attempt started */
	unsigned bad;		  /* malformed replies */
	unsigned attempt_bad;	  /* bad when the current attempt started */
	bool truncated;		  /* more than max sockets */
	bool interrupted;	  /* the current attempt's replies were flagged NLM_F_DUMP_INTR */
	bool done;		  /* the current attempt ended (NLMSG_DONE or NLMSG_ERROR) */
	int err;		  /* how it ended: 0 (DONE), the kernel's error, -ENOMEM */
};

/* Start an attempt: a dump of `protocol` requested with sequence number seq. */
void revoke_dump_start(struct revoke_dump *d, uint8_t protocol, uint32_t seq);

/*
 * Take one reply message. Returns 0 to read on, 1 when the attempt ended. Connected sockets are
 * appended (UDP: remote port != 0); a malformed one is counted in bad.
 */
int revoke_dump_feed(struct revoke_dump *d, const struct nlmsghdr *nlh);

/*
 * End an attempt. Returns 0 when the dump was complete and consistent; -EINTR when the kernel
 * flagged it interrupted (its sockets are dropped again: ask again); the kernel's error (an
 * NLMSG_ERROR; -EPROTO for one that says 0, since a dump does not end with an ack); -ENOMEM;
 * -EINPROGRESS when it has not ended.
 */
int revoke_dump_end(struct revoke_dump *d);

/*
 * The deepest of cgroups[] that is `path` or an ancestor of it (path prefix on component
 * boundaries; trailing slashes ignored). Returns 0 and *ret_index, or -ENOENT.
 */
int revoke_match_cgroup(const struct revoke_cgroup *cgroups, size_t n, const char *path,
			size_t *ret_index);

/* The rule on accepted sockets: whether s is judged by its peer's address alone. */
bool revoke_is_server_side(const struct revoke_sock *s);

enum revoke_verdict {
	REVOKE_KEEP_ALLOWED,
	REVOKE_KEEP_SERVER_SIDE,
	REVOKE_DESTROY,
};

/* The verdict for socket s of app `app` (see the header comment for apps and guards). */
enum revoke_verdict revoke_judge(const struct revoke_sock *s, uint32_t app, uint32_t n_apps,
				 const struct policy_maps *maps);

// SPDX-License-Identifier: GPL-2.0-only
#include "revoke.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <bpf/bpf.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "util.h"

/* TCP states judged: everything but LISTEN, TIME_WAIT, CLOSE (and request sockets). */
#define REVOKE_TCP_STATES                                                                          \
	((1u << TCP_ESTABLISHED) | (1u << TCP_SYN_SENT) | (1u << TCP_SYN_RECV) |                   \
	 (1u << TCP_FIN_WAIT1) | (1u << TCP_FIN_WAIT2) | (1u << TCP_CLOSE_WAIT) |                  \
	 (1u << TCP_LAST_ACK) | (1u << TCP_CLOSING))

/* A UDP socket is TCP_ESTABLISHED once connect()ed. */
#define REVOKE_UDP_STATES (1u << TCP_ESTABLISHED)

/* The cgroup id cache: value of a cgroup that is in no managed cgroup, or cannot be resolved. */
#define CACHE_UNMANAGED (-1)
#define CACHE_UNRESOLVABLE (-2)
#define CACHE_SLOTS (2 * REVOKE_CGROUP_CACHE) /* power of two, at most half full */

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_msg *, nlmsg_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cb *, nl_cb_put)

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* libnl's NLE_* codes (negative) back to a negative errno, as far as they map. */
static int nl_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case 0:
		return 0;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_PROTO_MISMATCH:
		return -EPROTONOSUPPORT;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_MSG_OVERFLOW:
		return -ENOBUFS;
	case NLE_MSG_TRUNC:
		return -EMSGSIZE;
	case NLE_DUMP_INTR:
		return -EINTR;
	case NLE_SEQ_MISMATCH:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* ---- pure parts ------------------------------------------------------------------------------ */

/*
 * The flags of carwall's storage among the INET_DIAG_SK_BPF_STORAGES of a reply, 0 when none,
 * and the name that connected the socket (CW_SK_F_BY_NAME).
 */
static int parse_sk_storages(struct nlattr *storages, uint32_t map_id, struct revoke_sock *ret)
{
	static const struct nla_policy policy[SK_DIAG_BPF_STORAGE_MAX + 1] = {
		[SK_DIAG_BPF_STORAGE_MAP_ID] = { .type = NLA_U32 },
	};
	struct nlattr *one;
	int rem;

	ret->sk_flags = 0;
	nla_for_each_nested(one, storages, rem) {
		struct nlattr *tb[SK_DIAG_BPF_STORAGE_MAX + 1] = {};
		struct cw_sk_state st;

		if (nla_type(one) != SK_DIAG_BPF_STORAGE)
			continue;
		if (nla_parse_nested(tb, SK_DIAG_BPF_STORAGE_MAX, one, policy) < 0)
			return -EBADMSG;
		if (!tb[SK_DIAG_BPF_STORAGE_MAP_ID] || !tb[SK_DIAG_BPF_STORAGE_MAP_VALUE] ||
		    nla_get_u32(tb[SK_DIAG_BPF_STORAGE_MAP_ID]) != map_id)
			continue;
		if (nla_len(tb[SK_DIAG_BPF_STORAGE_MAP_VALUE]) < (int)sizeof(st))
			return -EBADMSG;
		memcpy(&st, nla_data(tb[SK_DIAG_BPF_STORAGE_MAP_VALUE]), sizeof(st));
		ret->sk_flags = st.flags;
		ret->name_hash = st.name_hash;
		ret->name_kind = st.name_kind;
		memcpy(ret->name_addr, st.name_addr, sizeof(ret->name_addr));
	}
	return 0;
}

int revoke_parse_diag(const struct nlmsghdr *nlh, uint8_t protocol, uint32_t sk_state_map_id,
		      struct revoke_sock *ret)
{
	static const struct nla_policy policy[INET_DIAG_MAX + 1] = {
		[INET_DIAG_CGROUP_ID] = { .type = NLA_U64 },
		[INET_DIAG_SK_BPF_STORAGES] = { .type = NLA_NESTED },
	};
	struct nlattr *tb[INET_DIAG_MAX + 1] = {};
	const struct inet_diag_msg *msg;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*msg)))
		return -EBADMSG;
	msg = NLMSG_DATA(nlh);
	if (msg->idiag_family != AF_INET && msg->idiag_family != AF_INET6)
		return -EBADMSG;
	if (nla_parse(tb, INET_DIAG_MAX, nlmsg_attrdata(nlh, sizeof(*msg)),
		      nlmsg_attrlen(nlh, sizeof(*msg)), policy) < 0)
		return -EBADMSG;

	memset(ret, 0, sizeof(*ret));
	ret->family = msg->idiag_family;
	ret->protocol = protocol;
	ret->state = msg->idiag_state;
	ret->id = msg->id;
	if (tb[INET_DIAG_CGROUP_ID]) {
		ret->has_cgroup_id = true;
		ret->cgroup_id = nla_get_u64(tb[INET_DIAG_CGROUP_ID]);
	}
	if (sk_state_map_id && tb[INET_DIAG_SK_BPF_STORAGES] &&
	    parse_sk_storages(tb[INET_DIAG_SK_BPF_STORAGES], sk_state_map_id, ret) < 0)
		return -EBADMSG;
	return 0;
}

static size_t trimmed_len(const char *path)
{
	size_t n = strlen(path);

	while (n > 0 && path[n - 1] == '/')
		n--;
	return n;
}

/* a (length a_len, no trailing slash) is path or one of its ancestors. */
static bool path_within(const char *a, size_t a_len, const char *path, size_t path_len)
{
	if (a_len > path_len || strncmp(path, a, a_len) != 0)
		return false;
	return a_len == path_len || path[a_len] == '/';
}

int revoke_match_cgroup(const struct revoke_cgroup *cgroups, size_t n, const char *path,
			size_t *ret_index)
{
	size_t path_len = trimmed_len(path), best = 0, best_len = 0;
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		size_t len = trimmed_len(cgroups[i].path);

		if (!path_within(cgroups[i].path, len, path, path_len))
			continue;
		if (!found || len > best_len) {
			found = true;
			best = i;
			best_len = len;
		}
	}
	if (!found)
		return -ENOENT;
	*ret_index = best;
	return 0;
}

bool revoke_is_server_side(const struct revoke_sock *s)
{
	return s->protocol == IPPROTO_TCP &&
	       (s->sk_flags & (CW_SK_F_PASSIVE | CW_SK_F_ACTIVE)) == CW_SK_F_PASSIVE;
}

/* Whether app `app` may reach `s`'s peer address over TCP on some port (bpf/skb.bpf.c's
 * cw_judge_peer, which does not apply consent: neither does this). */
static bool peer_allowed(const struct revoke_sock *s, uint32_t app, const struct policy_maps *maps)
{
	_cleanup_free_ struct policy_port_span *spans = NULL;
	struct policy_maps all_on = *maps; /* a shallow copy: only read */
	uint32_t portset;
	size_t n = 0;

	all_on.consent_deny = 0;
	if (!policy_maps_lookup_dst(maps, app, s->family, (const uint8_t *)s->id.idiag_dst,
				    &portset))
		return false;
	return policy_maps_port_spans(&all_on, portset, IPPROTO_TCP, &spans, &n) == 0 && n > 0;
}

/*
 * Home-only residency (bpf/cw_dest.bpf.h, cw_judge_home()): the flow port set `portset` allows
 * to s's peer is refused when its rule is not cross-border and the peer is not at home.
 */
static bool region_refuses(const struct policy_maps *maps, uint32_t portset,
			   const struct revoke_sock *s)
{
	struct cw_port_val val;

	if (!maps->home_only ||
	    !policy_maps_lookup_port(maps, portset, s->protocol, ntohs(s->id.idiag_dport), &val))
		return false;
	return policy_maps_region_refuses(maps, s->family, (const uint8_t *)s->id.idiag_dst, &val);
}

/* The flow the destination tries allow to s's peer is refused by home-only residency. */
static bool dst_region_refuses(const struct policy_maps *maps, uint32_t app,
			       const struct revoke_sock *s)
{
	uint32_t portset;

	if (!maps->home_only ||
	    !policy_maps_lookup_dst(maps, app, s->family, (const uint8_t *)s->id.idiag_dst, &portset))
		return false;
	return region_refuses(maps, portset, s);
}

/*
 * A socket connected by a learned name (bpf/skb.bpf.c): kept while that name is still one of the
 * app's in the new policy with the socket's port and protocol, whatever its TTL.
 */
static bool name_allowed(const struct revoke_sock *s, uint32_t app, const struct policy_maps *maps)
{
	_cleanup_free_ struct policy_port_span *spans = NULL;
	const uint8_t *dst = (const uint8_t *)s->id.idiag_dst;
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	uint8_t addr[16] = {};
	uint16_t port = ntohs(s->id.idiag_dport);
	size_t n = 0;

	if (!(s->sk_flags & CW_SK_F_BY_NAME))
		return false;
	/* The address as the programs store it: IPv4 (mapped ones too) in the first 4 bytes. */
	if (s->family == AF_INET)
		memcpy(addr, dst, 4);
	else if (!memcmp(dst, v4_mapped, sizeof(v4_mapped)))
		memcpy(addr, dst + 12, 4);
	else
		memcpy(addr, dst, 16);
	if (memcmp(addr, s->name_addr, sizeof(addr)))
		return false;
	for (size_t i = 0; i < maps->n_names; i++) {
		const struct policy_name_entry *e = &maps->names[i];

		if ((e->key.scope & CW_SCOPE_ID_MASK) != app || e->key.kind != s->name_kind ||
		    e->key.hash != s->name_hash)
			continue;
		if (policy_maps_port_spans(maps, e->val.portset, s->protocol, &spans, &n) < 0)
			return false;
		for (size_t k = 0; k < n; k++)
			if (port >= spans[k].first && port <= spans[k].last)
				return !region_refuses(maps, e->val.portset, s);
		return false;
	}
	return false;
}

enum revoke_verdict revoke_judge(const struct revoke_sock *s, uint32_t app, uint32_t n_apps,
				 const struct policy_maps *maps)
{
	/* A guard, or an app the maps do not know: every flow is refused. */
	if (app == REVOKE_APP_DENY_ALL || app >= n_apps || !maps)
		return REVOKE_DESTROY;
	if (revoke_is_server_side(s))
		return peer_allowed(s, app, maps) ? REVOKE_KEEP_SERVER_SIDE : REVOKE_DESTROY;
	if (policy_maps_lookup(maps, app, s->family, (const uint8_t *)s->id.idiag_dst, s->protocol,
			       ntohs(s->id.idiag_dport), NULL))
		return dst_region_refuses(maps, app, s) ? REVOKE_DESTROY : REVOKE_KEEP_ALLOWED;
	if (name_allowed(s, app, maps))
		return REVOKE_KEEP_ALLOWED;
	return REVOKE_DESTROY;
}

/* ---- one pass: context -------------------------------------------------------------------- */

struct cache_slot {
	uint64_t id;
	int32_t value; /* index into ctx.cgroups, CACHE_UNMANAGED or CACHE_UNRESOLVABLE */
	bool used;
};

struct revoke_ctx {
	const struct revoke_params *p;
	struct revoke_cgroup *cgroups; /* normalized copies of p->cgroups (owned paths) */
	size_t n_cgroups;
	int mount_fd;
	uint32_t sk_state_map_id; /* of p->sk_state_fd; 0: none */
	uint64_t deadline_us;
	bool destroy_unsupported;
	struct cache_slot cache[CACHE_SLOTS];
	size_t n_cache;
};

static void ctx_free(struct revoke_ctx *ctx)
{
	if (!ctx)
		return;
	for (size_t i = 0; i < ctx->n_cgroups; i++)
		free((char *)ctx->cgroups[i].path);
	free(ctx->cgroups);
	if (ctx->mount_fd >= 0)
		close(ctx->mount_fd);
	free(ctx);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct revoke_ctx *, ctx_free)

/* Which managed cgroup a socket's cgroup id belongs to (cached for the pass). */
static int32_t ctx_lookup_cgroup(struct revoke_ctx *ctx, uint64_t id)
{
	size_t slot = (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (CACHE_SLOTS - 1);
	char path[PATH_MAX];
	size_t index;
	int32_t value;

	for (size_t probe = 0; probe < CACHE_SLOTS && ctx->cache[slot].used; probe++) {
		if (ctx->cache[slot].id == id)
			return ctx->cache[slot].value;
		slot = (slot + 1) & (CACHE_SLOTS - 1);
	}

	if (cgroup_path_of_id(ctx->mount_fd, id, path, sizeof(path)) < 0)
		value = CACHE_UNRESOLVABLE;
	else if (revoke_match_cgroup(ctx->cgroups, ctx->n_cgroups, path, &index) < 0)
		value = CACHE_UNMANAGED;
	else
		value = (int32_t)index;

	if (ctx->n_cache < REVOKE_CGROUP_CACHE && !ctx->cache[slot].used) {
		ctx->cache[slot] = (struct cache_slot){ .id = id, .value = value, .used = true };
		ctx->n_cache++;
	}
	return value;
}

/* ---- finding the network namespaces ------------------------------------------------------- */

struct netns_set {
	int fds[REVOKE_MAX_NETNS];
	dev_t dev[REVOKE_MAX_NETNS];
	ino_t ino[REVOKE_MAX_NETNS];
	size_t n;
	unsigned pids;
	unsigned dirs;
	bool truncated;
	int unreadable; /* 0, or why a live process's namespace could not be opened */
};

static void netns_set_clear(struct netns_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		close(s->fds[i]);
	s->n = 0;
}

/* Add the namespace behind fd (taken over) unless it is known already. */
static int netns_set_add(struct netns_set *s, int fd)
{
	_cleanup_close_ int owned = fd;
	struct stat st;

	if (fstat(owned, &st) < 0)
		return negative_errno();
	for (size_t i = 0; i < s->n; i++)
		if (s->dev[i] == st.st_dev && s->ino[i] == st.st_ino)
			return 0;
	if (s->n >= REVOKE_MAX_NETNS) {
		s->truncated = true;
		return 0;
	}
	s->dev[s->n] = st.st_dev;
	s->ino[s->n] = st.st_ino;
	s->fds[s->n++] = TAKE_FD(owned);
	return 0;
}

/* The namespaces of the processes listed in dir/cgroup.procs. A vanished cgroup or process is
 * not an error. */
static int netns_from_procs(struct netns_set *s, const char *dir)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	long pid;

	if (asprintf(&path, "%s/cgroup.procs", dir) < 0)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT || errno == ENODEV ? 0 : negative_errno();
	while (fscanf(f, "%ld", &pid) == 1) {
		char ns[64];
		int fd;

		if (s->pids >= REVOKE_MAX_PIDS) {
			s->truncated = true;
			break;
		}
		s->pids++;
		if (pid <= 0)
			continue;
		snprintf(ns, sizeof(ns), "/proc/%ld/ns/net", pid);
		fd = open(ns, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			/* ENOENT, ESRCH: the process exited (or is exiting). Anything else hides a
			 * namespace from the pass: it fails, not silently. */
			if (errno != ENOENT && errno != ESRCH && !s->unreadable)
				s->unreadable = negative_errno();
			continue;
		}
		int r = netns_set_add(s, fd);
		if (r < 0)
			return r;
	}
	return 0;
}

struct walk_item {
	char *path;
	unsigned depth;
};

/* Depth-first walk of one managed cgroup subtree, bounded in folders and depth. */
static int netns_walk(struct revoke_ctx *ctx, struct netns_set *s, const char *root)
{
	_cleanup_free_ struct walk_item *stack = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	stack = malloc(sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	cap = 1;
	stack[n].path = strdup(root);
	stack[n].depth = 0;
	if (!stack[n].path)
		return -ENOMEM;
	n++;

	while (n > 0) {
		struct walk_item it = stack[--n];
		_cleanup_free_ char *dir_path = it.path;
		_cleanup_(closedirp) DIR *dir = NULL;
		struct dirent *de;

		if (s->dirs >= REVOKE_MAX_WALK_DIRS) {
			s->truncated = true;
			break;
		}
		if (now_us() >= ctx->deadline_us) {
			r = -ETIMEDOUT;
			break;
		}
		s->dirs++;
		r = netns_from_procs(s, dir_path);
		if (r < 0)
			break;
		if (it.depth >= REVOKE_MAX_WALK_DEPTH)
			continue;
		dir = opendir(dir_path);
		if (!dir)
			continue; /* removed meanwhile */
		while ((de = readdir(dir))) {
			struct stat st;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (de->d_type != DT_DIR) {
				if (de->d_type != DT_UNKNOWN ||
				    fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
				    !S_ISDIR(st.st_mode))
					continue;
			}
			if (n + s->dirs >= REVOKE_MAX_WALK_DIRS) {
				s->truncated = true;
				break;
			}
			if (n == cap) {
				struct walk_item *more;

				more = reallocarray(stack, cap * 2, sizeof(*stack));
				if (!more) {
					r = -ENOMEM;
					break;
				}
				stack = more;
				cap *= 2;
			}
			if (asprintf(&stack[n].path, "%s/%s", dir_path, de->d_name) < 0) {
				r = -ENOMEM;
				break;
			}
			stack[n++].depth = it.depth + 1;
		}
		if (r < 0)
			break;
	}
	for (size_t i = 0; i < n; i++)
		free(stack[i].path);
	return r;
}

/* The caller's own namespace first, then those of every managed subtree's processes. */
static int netns_collect(struct revoke_ctx *ctx, struct netns_set *s)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return negative_errno();
	r = netns_set_add(s, fd);
	if (r < 0)
		return r;

	for (size_t i = 0; i < ctx->n_cgroups; i++) {
		const char *path = ctx->cgroups[i].path;
		size_t len = trimmed_len(path);
		bool nested = false;

		/* A subtree inside another managed one is walked with it. */
		for (size_t j = 0; j < ctx->n_cgroups && !nested; j++) {
			size_t jlen = trimmed_len(ctx->cgroups[j].path);

			nested = jlen < len && path_within(ctx->cgroups[j].path, jlen, path, len);
		}
		if (nested)
			continue;
		r = netns_walk(ctx, s, path);
		if (r < 0)
			return r;
		if (s->truncated)
			break;
	}
	return 0;
}

/* ---- sock_diag ---------------------------------------------------------------------------- */

void revoke_dump_start(struct revoke_dump *d, uint8_t protocol, uint32_t seq)
{
	d->protocol = protocol;
	d->seq = seq;
	d->attempt_n = d->n;
	d->attempt_bad = d->bad;
	d->interrupted = false;
	d->done = false;
	d->err = 0;
}

static int dump_append(struct revoke_dump *d, const struct revoke_sock *s)
{
	if (d->n >= d->max) {
		d->truncated = true;
		return 0;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct revoke_sock *v = reallocarray(d->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = *s;
	return 0;
}

int revoke_dump_feed(struct revoke_dump *d, const struct nlmsghdr *nlh)
{
	struct revoke_sock s;
	int r;

	if (d->done)
		return 1;
	if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_seq != d->seq)
		return 0; /* not a reply to this request */
	/* The kernel's word that the tables changed under the dump: set on any part, DONE too. */
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		d->interrupted = true;

	switch (nlh->nlmsg_type) {
	case NLMSG_DONE:
		d->done = true;
		return 1;
	case NLMSG_ERROR: {
		const struct nlmsgerr *e = NLMSG_DATA(nlh);

		d->done = true;
		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(e->error)))
			d->err = -EBADMSG;
		else
			d->err = e->error < 0 ? e->error : -EPROTO; /* a dump never ends with an ack */
		return 1;
	}
	case SOCK_DIAG_BY_FAMILY:
		break;
	default:
		return 0;
	}

	if (revoke_parse_diag(nlh, d->protocol, d->sk_state_map_id, &s) < 0) {
		d->bad++;
		return 0;
	}
	if (d->protocol == IPPROTO_UDP && s.id.idiag_dport == 0)
		return 0; /* not connected */
	r = dump_append(d, &s);
	if (r < 0) {
		d->done = true;
		d->err = r;
		return 1;
	}
	return 0;
}

int revoke_dump_end(struct revoke_dump *d)
{
	if (!d->done)
		return -EINPROGRESS;
	if (d->err)
		return d->err;
	if (d->interrupted) {
		/* Some sockets may be missing or twice: none of this attempt is taken. */
		d->n = d->attempt_n;
		d->bad = d->attempt_bad;
		return -EINTR;
	}
	return 0;
}

/* libnl hands every message of the socket here first, and does nothing else with it. */
static int dump_msg_in(struct nl_msg *msg, void *arg)
{
	return revoke_dump_feed(arg, nlmsg_hdr(msg)) ? NL_STOP : NL_SKIP;
}

/* Wait until the netlink socket has something to read, bounded by the pass's deadline. */
static int nl_wait(struct nl_sock *sk, uint64_t deadline_us)
{
	uint64_t now = now_us();
	struct pollfd pfd = { .fd = nl_socket_get_fd(sk), .events = POLLIN };
	int timeout_ms, r;

	if (now >= deadline_us)
		return -ETIMEDOUT;
	timeout_ms = (int)((deadline_us - now + 999) / 1000);
	if (timeout_ms > REVOKE_NETLINK_TIMEOUT_MS)
		timeout_ms = REVOKE_NETLINK_TIMEOUT_MS;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return negative_errno();
	return r == 0 ? -ETIMEDOUT : 0;
}

/*
 * Dump the sockets of `protocol` and one family in `states` into d (appending). A dump the
 * kernel flags interrupted is asked again, REVOKE_DUMP_TRIES tries in all, then -EINTR.
 */
static int dump_sockets(struct nl_sock *sk, struct revoke_dump *d, int sk_state_fd,
			uint8_t protocol, uint8_t family, uint32_t states, uint64_t deadline_us,
			unsigned *ret_interrupted)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = family,
		.sdiag_protocol = protocol,
		.idiag_states = states,
	};
	_cleanup_(nl_cb_putp) struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r = -EINTR;

	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_MSG_IN, NL_CB_CUSTOM, dump_msg_in, d);

	for (unsigned try = 0; try < REVOKE_DUMP_TRIES && r == -EINTR; try++) {
		_cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(SOCK_DIAG_BY_FAMILY,
									       NLM_F_DUMP);

		if (!msg)
			return -ENOMEM;
		r = nlmsg_append(msg, &req, sizeof(req), NLMSG_ALIGNTO);
		if (r < 0)
			return nl_to_errno(r);
		if (sk_state_fd > 0) {
			struct nlattr *nest = nla_nest_start(msg, INET_DIAG_REQ_SK_BPF_STORAGES);

			if (!nest)
				return -ENOMEM;
			r = nla_put_u32(msg, SK_DIAG_BPF_STORAGE_REQ_MAP_FD, (uint32_t)sk_state_fd);
			if (r < 0)
				return nl_to_errno(r);
			nla_nest_end(msg, nest);
		}
		r = nl_send_auto(sk, msg);
		if (r < 0)
			return nl_to_errno(r);
		revoke_dump_start(d, protocol, nlmsg_hdr(msg)->nlmsg_seq);
		while (!d->done) {
			r = nl_wait(sk, deadline_us);
			if (r < 0)
				return r;
			r = nl_recvmsgs(sk, cb);
			if (r < 0 && !d->done)
				return nl_to_errno(r);
		}
		r = revoke_dump_end(d);
		if (r == -EINTR)
			(*ret_interrupted)++;
	}
	return r;
}

struct ack {
	uint32_t seq;
	bool done;
	int err;
};

static int ack_ok(struct nl_msg *msg, void *arg)
{
	struct ack *a = arg;

	if (nlmsg_hdr(msg)->nlmsg_seq != a->seq)
		return NL_SKIP;
	a->done = true;
	a->err = 0;
	return NL_STOP;
}

static int ack_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct ack *a = arg;

	(void)nla;
	if (e->msg.nlmsg_seq != a->seq)
		return NL_SKIP;
	a->done = true;
	a->err = e->error;
	return NL_STOP;
}

/* SOCK_DESTROY one socket by its exact id. Returns 0 or the kernel's answer (-ENOENT: gone). */
static int destroy_socket(struct nl_sock *sk, const struct revoke_sock *s, uint64_t deadline_us)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = s->family,
		.sdiag_protocol = s->protocol,
		.idiag_states = ~0u,
		.id = s->id,
	};
	_cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(SOCK_DESTROY, NLM_F_ACK);
	_cleanup_(nl_cb_putp) struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	struct ack a = {};
	int r;

	if (!msg || !cb)
		return -ENOMEM;
	r = nlmsg_append(msg, &req, sizeof(req), NLMSG_ALIGNTO);
	if (r < 0)
		return nl_to_errno(r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ack_ok, &a);
	nl_cb_err(cb, NL_CB_CUSTOM, ack_error, &a);

	r = nl_send_auto(sk, msg);
	if (r < 0)
		return nl_to_errno(r);
	a.seq = nlmsg_hdr(msg)->nlmsg_seq;
	while (!a.done) {
		r = nl_wait(sk, deadline_us);
		if (r < 0)
			return r;
		r = nl_recvmsgs(sk, cb);
		if (r < 0 && !a.done)
			return nl_to_errno(r);
	}
	return a.err;
}

static int diag_socket_open(struct nl_sock **ret)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();
	struct timeval tv = { .tv_sec = REVOKE_NETLINK_TIMEOUT_MS / 1000,
			      .tv_usec = (REVOKE_NETLINK_TIMEOUT_MS % 1000) * 1000 };
	int r;

	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (r < 0)
		return nl_to_errno(r);
	/* Flags are set on each request; replies are matched by sequence number. */
	nl_socket_disable_auto_ack(sk);
	/* A safety net under nl_wait(): libnl reads the parts of a dump back to back. */
	if (setsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return negative_errno();
	*ret = TAKE_PTR(sk);
	return 0;
}

int revoke_probe(void)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	/* No socket has ports 0 -> 0, and this cookie is never handed out (cookies count up). */
	struct revoke_sock s = {
		.family = AF_INET,
		.protocol = IPPROTO_TCP,
		.id.idiag_cookie = { 0xfffffffeu, 0xffffffffu },
	};
	int r;

	r = diag_socket_open(&sk);
	if (r < 0)
		return r;
	r = destroy_socket(sk, &s, now_us() + REVOKE_NETLINK_TIMEOUT_MS * 1000ull);
	if (r == 0 || r == -ENOENT || r == -ESTALE)
		return 0;
	return r;
}

/* ---- one namespace ------------------------------------------------------------------------ */

struct netns_pass {
	struct revoke_ctx *ctx;
	int netns_fd;
	struct revoke_stats st;
	int r;
	const char *at; /* what failed, when r < 0 */
};

static void revoke_dump_freep(struct revoke_dump *d)
{
	free(d->v);
}

static void note_error(struct revoke_stats *st, int r)
{
	st->errors++;
	if (!st->first_error)
		st->first_error = r;
}

static int netns_pass_run(struct netns_pass *np)
{
	struct revoke_ctx *ctx = np->ctx;
	const struct revoke_params *p = ctx->p;
	struct revoke_stats *st = &np->st;
	_cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
	_cleanup_(revoke_dump_freep) struct revoke_dump socks = {
		.max = REVOKE_MAX_SOCKETS,
		.sk_state_map_id = ctx->sk_state_map_id,
	};
	static const struct {
		uint8_t protocol, family;
		uint32_t states;
		const char *what, *interrupted;
	} dumps[] = {
		{ IPPROTO_TCP, AF_INET, REVOKE_TCP_STATES, "the TCP/IPv4 dump",
		  "the TCP/IPv4 dump (interrupted at every try)" },
		{ IPPROTO_TCP, AF_INET6, REVOKE_TCP_STATES, "the TCP/IPv6 dump",
		  "the TCP/IPv6 dump (interrupted at every try)" },
		{ IPPROTO_UDP, AF_INET, REVOKE_UDP_STATES, "the UDP/IPv4 dump",
		  "the UDP/IPv4 dump (interrupted at every try)" },
		{ IPPROTO_UDP, AF_INET6, REVOKE_UDP_STATES, "the UDP/IPv6 dump",
		  "the UDP/IPv6 dump (interrupted at every try)" },
	};
	int r;

	r = diag_socket_open(&sk);
	if (r < 0) {
		np->at = "opening a sock_diag socket";
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dumps); i++) {
		r = dump_sockets(sk, &socks, p->sk_state_fd, dumps[i].protocol, dumps[i].family,
				 dumps[i].states, ctx->deadline_us, &st->dumps_interrupted);
		if (r < 0) {
			np->at = r == -EINTR ? dumps[i].interrupted : dumps[i].what;
			return r;
		}
	}
	if (socks.truncated)
		st->truncated = true;
	st->seen += socks.bad;
	st->unjudged += socks.bad;

	for (size_t i = 0; i < socks.n; i++) {
		const struct revoke_sock *s = &socks.v[i];
		int32_t idx;

		if (now_us() >= ctx->deadline_us) {
			np->at = "judging its sockets";
			return -ETIMEDOUT;
		}
		st->seen++;
		if (!s->has_cgroup_id) {
			st->unjudged++; /* Linux < 5.7: never guess */
			continue;
		}
		idx = ctx_lookup_cgroup(ctx, s->cgroup_id);
		if (idx == CACHE_UNRESOLVABLE) {
			st->unjudged++;
			continue;
		}
		if (idx == CACHE_UNMANAGED) {
			st->unmanaged++;
			continue;
		}
		st->judged++;
		switch (revoke_judge(s, ctx->cgroups[idx].app, p->n_apps, p->maps)) {
		case REVOKE_KEEP_SERVER_SIDE:
			st->server_side++;
			/* fall through */
		case REVOKE_KEEP_ALLOWED:
			st->kept++;
			continue;
		case REVOKE_DESTROY:
			break;
		}
		st->refused++;
		if (ctx->destroy_unsupported) {
			note_error(st, -EOPNOTSUPP);
			continue;
		}
		r = destroy_socket(sk, s, ctx->deadline_us);
		if (r == 0) {
			st->destroyed++;
		} else if (r == -ENOENT || r == -ESTALE) {
			st->gone++;
		} else {
			note_error(st, r);
			if (r == -EOPNOTSUPP)
				ctx->destroy_unsupported = true;
			if (r == -ETIMEDOUT) {
				np->at = "destroying a socket";
				return r; /* the socket is out of step: stop here */
			}
		}
	}
	return 0;
}

static void *netns_thread(void *arg)
{
	struct netns_pass *np = arg;

	/* Only this thread enters the namespace; it ends with the pass. */
	if (setns(np->netns_fd, CLONE_NEWNET) < 0) {
		np->r = negative_errno();
		np->at = "entering it (setns)";
		return NULL;
	}
	np->r = netns_pass_run(np);
	return NULL;
}

/* Run one namespace's pass in a short-lived thread that never takes a signal. */
static int netns_pass_in_thread(struct netns_pass *np)
{
	sigset_t all, old;
	pthread_t t;
	int r;

	sigfillset(&all);
	r = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (r)
		return -r;
	r = pthread_create(&t, NULL, netns_thread, np);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	r = pthread_join(t, NULL);
	if (r)
		return -r;
	return 0;
}

static void stats_add(struct revoke_stats *to, const struct revoke_stats *from)
{
	to->seen += from->seen;
	to->unmanaged += from->unmanaged;
	to->unjudged += from->unjudged;
	to->judged += from->judged;
	to->kept += from->kept;
	to->server_side += from->server_side;
	to->refused += from->refused;
	to->destroyed += from->destroyed;
	to->gone += from->gone;
	to->errors += from->errors;
	to->dumps_interrupted += from->dumps_interrupted;
	if (!to->first_error)
		to->first_error = from->first_error;
	to->truncated |= from->truncated;
}

/* Normalized copies of the managed cgroups: symlinks resolved, no trailing slash. */
static int ctx_new(const struct revoke_params *p, struct revoke_ctx **ret)
{
	_cleanup_(ctx_freep) struct revoke_ctx *ctx = calloc(1, sizeof(*ctx));
	unsigned timeout = p->timeout_ms ? p->timeout_ms : REVOKE_DEFAULT_TIMEOUT_MS;

	if (!ctx)
		return -ENOMEM;
	ctx->mount_fd = -1;
	ctx->p = p;
	ctx->deadline_us = now_us() + (uint64_t)timeout * 1000u;
	ctx->cgroups = calloc(p->n_cgroups + 1, sizeof(*ctx->cgroups));
	if (!ctx->cgroups)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_cgroups; i++) {
		const char *path = p->cgroups[i].path;
		char *copy = realpath(path, NULL);

		if (!copy)
			copy = strndup(path, trimmed_len(path) ? trimmed_len(path) : 1);
		if (!copy)
			return -ENOMEM;
		ctx->cgroups[ctx->n_cgroups].path = copy;
		ctx->cgroups[ctx->n_cgroups].app = p->cgroups[i].app;
		ctx->n_cgroups++;
	}
	ctx->mount_fd = open(p->cgroup_mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->mount_fd < 0)
		return negative_errno();
	if (p->sk_state_fd > 0) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(p->sk_state_fd, &info, &len) < 0)
			return negative_errno();
		if (info.type != BPF_MAP_TYPE_SK_STORAGE)
			return -EINVAL;
		ctx->sk_state_map_id = info.id;
	}
	*ret = TAKE_PTR(ctx);
	return 0;
}

static int revoke_run_pass(const struct revoke_params *p, struct revoke_stats *st)
{
	_cleanup_(ctx_freep) struct revoke_ctx *ctx = NULL;
	struct netns_set set = {};
	int r, first = 0;

	if (!p || !p->cgroup_mount || (p->n_cgroups && !p->cgroups) ||
	    p->n_cgroups > REVOKE_MAX_CGROUPS || (p->n_apps && !p->maps))
		return -EINVAL;
	for (size_t i = 0; i < p->n_cgroups; i++)
		if (!p->cgroups[i].path || p->cgroups[i].path[0] != '/')
			return -EINVAL;
	if (p->n_cgroups == 0)
		return 0; /* nothing is managed: nothing to cut */

	r = ctx_new(p, &ctx);
	if (r < 0)
		return r;

	r = netns_collect(ctx, &set);
	st->truncated |= set.truncated;
	if (r < 0 && r != -ETIMEDOUT) {
		netns_set_clear(&set);
		return r;
	}
	if (r == -ETIMEDOUT)
		st->timed_out = true;
	if (set.unreadable) {
		/* How many namespaces are hidden is unknown: at least one, not visited. */
		st->netns++;
		st->netns_failed++;
		st->netns_error = first = set.unreadable;
		st->netns_failed_at = "opening a process's /proc/PID/ns/net";
	}

	for (size_t i = 0; i < set.n && !st->timed_out; i++) {
		struct netns_pass np = { .ctx = ctx, .netns_fd = set.fds[i] };

		r = netns_pass_in_thread(&np);
		if (r < 0)
			np.at = "starting its thread";
		else
			r = np.r;
		st->netns++;
		stats_add(st, &np.st);
		if (r == -ETIMEDOUT)
			st->timed_out = true;
		if (r < 0) {
			st->netns_failed++;
			if (!first) {
				first = r;
				st->netns_error = r;
				st->netns_failed_at = np.at ? np.at : "enumerating it";
			}
		}
	}
	netns_set_clear(&set);
	st->destroy_unsupported = ctx->destroy_unsupported;

	if (st->destroy_unsupported)
		return -EOPNOTSUPP;
	if (st->timed_out)
		return -ETIMEDOUT;
	if (st->truncated)
		return -E2BIG;
	return first;
}

int revoke_run(const struct revoke_params *p, struct revoke_stats *ret_stats)
{
	struct revoke_stats st = {};
	uint64_t start = now_us();
	int r = revoke_run_pass(p, &st);

	st.elapsed_us = now_us() - start;
	if (ret_stats)
		*ret_stats = st;
	return r;
}

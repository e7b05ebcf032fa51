// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench: the hot loops and helpers of `make bench`; scripts/bench.sh drives it (read its header
 * for what is measured and the JSON schema). Linked with libbpf (the floor) and libcarwall.a.
 *
 *   bench serve  --port P [--netns PATH] [--cgroup DIR] [--max-seconds S]
 *       Servers on 127.0.0.1 and ::1: TCP accept-and-close on P, a UDP sink on P+1, a TCP bulk
 *       sink on P+2. Nothing listens on P+3 (the refused port). Prints "ready" once bound.
 *   bench client --test T --family 4|6 --port P --ms D [--count N] [--warmup-ms W] [--netns]
 *                [--cgroup]
 *       One timed loop (D ms, or N operations when --count is given, without warm-up); prints
 *       one line:
 *         value=<ns per op, or MB/s for tcp_bulk> ops=N eperm=N errors=N ns=N bytes=N err=<text>
 *       T: tcp_connect (socket, connect, abortive close), udp_sendto (unconnected, 64 B),
 *          udp_connect (connect() again and again on one UDP socket: the hook alone),
 *          tcp_bulk (one connection, 128 KiB writes), udp_refused (sendto to P+3, which every
 *          filter refuses: counts EPERM; the event-rate load and the filter check),
 *          resolve_connect (a stub resolver's lookup of BENCH_NAME, A or AAAA, through the
 *          resolver at 127.0.0.1:53 on a new UDP socket, then tcp_connect to the address it
 *          answered: an app of a host-name rule).
 *   bench compare --test T --family 4|6 --port P --ms D --rounds R [--warmup-ms W]
 *                 --variant NAME --netns PATH --cgroup DIR [--variant ...]...
 *       The interleaved rounds: one worker per variant joins its netns and cgroup once and
 *       warms up; then each round runs a D ms slice of every variant back to back, the first
 *       variant rotating from round to round. One line per slice:
 *         round=R variant=NAME value=V wall=W ops=N eperm=N errors=N ns=N cpu_ns=N err=<text>
 *       V is measured on the worker thread's CPU time (time spent descheduled by other load
 *       does not count; loopback work done in its softirqs does), W on the wall clock.
 *       Exit status 1 when a slice had an error. A slice in which no operation completed
 *       prints value=- wall=- (no figure).
 *   bench policy --rules N --port P --yaml FILE [--revision R] [--bundle-id ID
 *                --bundle-version V --bundle-target T] [--nft FILE --nft-table NAME
 *                --nft-cgroup PREFIX --nft-level L]
 *       A deterministic policy (format v1) of N rules for BENCH_APPS apps (app00..app15, in
 *       their default AGL cgroups), plus app09's host-name rule for resolve_connect (BENCH_NAME
 *       on P/tcp, resolver 127.0.0.1; not in the nftables ruleset, which has no names), and the
 *       nftables ruleset that enforces the same allow-lists
 *       (PREFIX: the folder of the agl-app@ cgroups as nft names it, L: their cgroup level).
 *       Revision R changes one rule (app00's first), so that consecutive reloads differ. With
 *       --bundle-*, the policy carries the `bundle:` metadata a signed bundle needs (valid from
 *       2020 to 9999), ready for `carwall bundle sign`.
 *   bench floor --rules N --port P [--revision R] --apps DIR --attach CGROUP
 *               --mark-apps DIR --mark CGROUP --empty CGROUP --pin-dir DIR
 *       Loads tests/bench/floor.bpf.c with the prefixes of `bench policy --rules N --port P
 *       --revision R`, each keyed by the cgroup id of its app's cgroup DIR/agl-app@appNN.service
 *       (tests/bench/floor.h), in the floor's tries for the --apps DIR and in the mark's for the
 *       --mark-apps DIR; attaches its floor_* programs at CGROUP (--attach), its mark_* programs
 *       at the --mark CGROUP (policy epoch 1) and its empty_* programs at the --empty CGROUP,
 *       and pins their links as PIN_DIR/{floor,mark,empty}/links/HOOK (removing PIN_DIR detaches
 *       them). Prints "ready ...".
 *   bench bpfstats PIN_DIR
 *       For each link pinned in PIN_DIR/links: "link prog_id prog_name run_cnt run_time_ns".
 *   bench yaml-floor FILE
 *       libyaml alone reading every event of FILE, and one Ed25519 signature of its bytes
 *       checked: the least CPU time of 5 passes of each, "us=N events=N verify_us=N". What any
 *       reload of that policy costs at least in an agent that takes only signed policies and
 *       parses them with libyaml.
 *   bench rss-floor EVENTS_MAP
 *       The resident memory any agent built like carwalld has at least ("rss_kib=N hwm_kib=N"):
 *       the same libraries, the agent's pinned ring buffer (EVENTS_MAP) mapped as the agent
 *       maps it, each library used once as a reload uses it.
 *   bench report RAW.tsv OUT.json
 *       Medians, ranges and ratios from the raw samples scripts/bench.sh wrote; writes the JSON
 *       and prints the table and the closing note.
 *
 * Every loop is bounded in time or in count; a server lives at most --max-seconds, a worker no
 * longer than the compare process that started it.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <math.h> /* isnan, NAN: macros, no libm */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <yaml.h>

#include "bench_floor.skel.h"
#include "cgroup.h"
#include "fileio.h"
#include "floor.h"
#include "util.h"

#define BENCH_APPS 16
#define BENCH_APP_INDEX 8 /* the app the benchmark's flows belong to: app08, mid-list */
#define BENCH_MAX_RULES 131072 /* POLICY_MAX_RULES */
#define BENCH_MAX_MS 600000
#define BENCH_MAX_OPS 2000000000ull
#define BENCH_UDP_PAYLOAD 64
#define BENCH_BULK_CHUNK (128 * 1024)
#define BENCH_CLOCK_EVERY 16 /* operations between two clock reads */
/*
 * resolve_connect: the name an app looks up before it connects, allowed by a host-name rule of
 * BENCH_NAMES_APP alone (whose prefixes never hold 127/8 nor ::1); the resolver (dnsmasq, started
 * by scripts/bench.sh) answers it with 127.0.0.1 and ::1, where the TCP server listens.
 */
#define BENCH_NAME "svc.bench.example"
#define BENCH_NAMES_APP_INDEX 9

enum port_offset {
	PORT_TCP = 0,
	PORT_UDP = 1,
	PORT_BULK = 2,
	PORT_REFUSED = 3,
	PORT_COUNT = 4,
};

static void die(const char *what, int err) __attribute__((noreturn));
static void die(const char *what, int err)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(err));
	exit(EXIT_FAILURE);
}

static void usage_die(const char *msg) __attribute__((noreturn));
static void usage_die(const char *msg)
{
	fprintf(stderr, "bench: %s (see the header of tests/bench/bench.c)\n", msg);
	exit(2);
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static long parse_long(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "bench: %s: '%s' is not a number in [%ld, %ld]\n", what, s, min,
			max);
		exit(2);
	}
	return v;
}

/* Enter a network namespace (a /run/netns file) and/or move this process into a cgroup. */
static int enter(const char *netns, const char *cgroup)
{
	if (netns) {
		_cleanup_close_ int fd = open(netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			return negative_errno();
	}
	if (cgroup) {
		_cleanup_free_ char *path = NULL;
		_cleanup_close_ int fd = -1;
		char pid[32];
		int n;

		if (asprintf(&path, "%s/cgroup.procs", cgroup) < 0)
			return -ENOMEM;
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return negative_errno();
		n = snprintf(pid, sizeof(pid), "%d\n", getpid());
		if (write(fd, pid, (size_t)n) != n)
			return negative_errno();
	}
	return 0;
}

static socklen_t loopback(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_loopback;
	return sizeof(*sin6);
}

/* ---- serve ---------------------------------------------------------------------------------- */

struct server_sock {
	int fd;
	int kind; /* PORT_TCP, PORT_UDP, PORT_BULK */
};

static int server_bind(int family, int type, uint16_t port)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	int one = 1;

	fd = socket(family == 4 ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == 6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return negative_errno();
	if (type == SOCK_STREAM && listen(fd, 4096) < 0)
		return negative_errno();
	return TAKE_FD(fd);
}

static char server_sink[256 * 1024]; /* contents never read: shared by every thread */
static int server_bulk_active;	     /* bulk connections being drained */
#define SERVER_MAX_BULK 64

/* Drains one bulk connection until its client closes it. */
static void *server_bulk_thread(void *arg)
{
	int c = (int)(intptr_t)arg;

	while (read(c, server_sink, sizeof(server_sink)) > 0)
		;
	close(c);
	__atomic_sub_fetch(&server_bulk_active, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *server_thread(void *arg)
{
	const struct server_sock *s = arg;
	char *sink = server_sink;

	for (;;) {
		if (s->kind == PORT_UDP) {
			struct mmsghdr msgs[64];
			struct iovec iov[64];

			for (unsigned i = 0; i < ARRAY_SIZE(msgs); i++) {
				iov[i].iov_base = sink + i * 2048;
				iov[i].iov_len = 2048;
				memset(&msgs[i], 0, sizeof(msgs[i]));
				msgs[i].msg_hdr.msg_iov = &iov[i];
				msgs[i].msg_hdr.msg_iovlen = 1;
			}
			for (;;)
				recvmmsg(s->fd, msgs, ARRAY_SIZE(msgs), MSG_WAITFORONE, NULL);
		}
		int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		pthread_t t;

		if (c < 0)
			continue;
		/* Each bulk connection gets its own reader, so that idle ones block nobody. */
		if (s->kind == PORT_BULK &&
		    __atomic_add_fetch(&server_bulk_active, 1, __ATOMIC_RELAXED) <= SERVER_MAX_BULK &&
		    pthread_create(&t, NULL, server_bulk_thread, (void *)(intptr_t)c) == 0) {
			pthread_detach(t);
			continue;
		}
		if (s->kind == PORT_BULK)
			__atomic_sub_fetch(&server_bulk_active, 1, __ATOMIC_RELAXED);
		close(c);
	}
	return NULL;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "netns", required_argument, NULL, 'n' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{},
	};
	static struct server_sock socks[6];
	const char *netns = NULL, *cgroup = NULL;
	long port = 0, max_s = 3600;
	unsigned n = 0;
	int o, r;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			port = parse_long(optarg, 1, 65535 - PORT_COUNT, "--port");
			break;
		case 'n':
			netns = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'm':
			max_s = parse_long(optarg, 1, 86400, "--max-seconds");
			break;
		default:
			usage_die("bad serve option");
		}
	}
	if (!port)
		usage_die("serve needs --port");
	r = enter(netns, cgroup);
	if (r < 0)
		die("entering the netns/cgroup", -r);

	for (int family = 4; family <= 6; family += 2) {
		const int kinds[] = { PORT_TCP, PORT_UDP, PORT_BULK };

		for (unsigned k = 0; k < ARRAY_SIZE(kinds); k++) {
			int fd = server_bind(family, kinds[k] == PORT_UDP ? SOCK_DGRAM : SOCK_STREAM,
					     (uint16_t)(port + kinds[k]));
			if (fd < 0)
				die("binding a server socket", -fd);
			socks[n].fd = fd;
			socks[n].kind = kinds[k];
			n++;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_t t;

		r = pthread_create(&t, NULL, server_thread, &socks[i]);
		if (r)
			die("pthread_create", r);
		pthread_detach(t);
	}
	/* Bounded: SIGALRM's default action ends the process if nobody stopped it before. */
	alarm((unsigned)max_s);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

/* ---- client --------------------------------------------------------------------------------- */

enum test {
	TEST_TCP_CONNECT,
	TEST_UDP_SENDTO,
	TEST_UDP_CONNECT,
	TEST_TCP_BULK,
	TEST_UDP_REFUSED,
	TEST_RESOLVE_CONNECT,
};

static const char *const test_names[] = { "tcp_connect", "udp_sendto",	"udp_connect",
					  "tcp_bulk",	 "udp_refused", "resolve_connect" };

struct client {
	enum test test;
	int family;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int fd; /* the long-lived socket of udp_* and tcp_bulk */
	uint64_t ops, eperm, errors, bytes;
	uint64_t cpu_ns; /* CPU time of this thread in the last client_loop() */
	int first_errno;
	uint16_t dns_id;
	char buf[BENCH_BULK_CHUNK];
};

static void client_error(struct client *c, int err)
{
	if (err == EPERM) {
		c->eperm++;
		return;
	}
	c->errors++;
	if (!c->first_errno)
		c->first_errno = err;
}

static int client_setup(struct client *c)
{
	int af = c->family == 4 ? AF_INET : AF_INET6;

	switch (c->test) {
	case TEST_UDP_SENDTO:
	case TEST_UDP_CONNECT:
	case TEST_UDP_REFUSED:
		c->fd = socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		return c->fd < 0 ? negative_errno() : 0;
	case TEST_TCP_BULK: {
		/* A send that cannot progress returns within 50 ms, so a slice ends on time. */
		struct timeval tv = { .tv_usec = 50000 };

		c->fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			return negative_errno();
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(c->fd, (struct sockaddr *)&c->dst, c->dst_len) < 0)
			return negative_errno();
		return 0;
	}
	case TEST_TCP_CONNECT:
	case TEST_RESOLVE_CONNECT:
		return 0;
	}
	return -EINVAL;
}

/*
 * What a stub resolver does for one lookup of BENCH_NAME (A for IPv4, AAAA for IPv6): a new UDP
 * socket connected to the resolver at 127.0.0.1:53, the query, the answer (1 s at most), the
 * first address of the asked type into c->dst (port `port`). 0, or a positive errno.
 */
static int client_resolve(struct client *c, uint16_t port)
{
	int type = c->family == 4 ? ns_t_a : ns_t_aaaa;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage dns;
	socklen_t dns_len = loopback(4, 53, &dns);
	unsigned char q[512], ans[1024];
	struct pollfd pfd;
	ns_msg msg;
	int qlen;
	ssize_t n;

	if (fd < 0)
		return errno;
	qlen = res_mkquery(ns_o_query, BENCH_NAME, ns_c_in, type, NULL, 0, NULL, q, sizeof(q));
	if (qlen < 12)
		return EINVAL;
	c->dns_id++;
	q[0] = (unsigned char)(c->dns_id >> 8);
	q[1] = (unsigned char)c->dns_id;
	if (connect(fd, (struct sockaddr *)&dns, dns_len) < 0 || send(fd, q, (size_t)qlen, 0) < 0)
		return errno;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 1000) <= 0)
		return ETIMEDOUT;
	n = recv(fd, ans, sizeof(ans), 0);
	if (n < 0)
		return errno;
	if (n < 12 || ans[0] != q[0] || ans[1] != q[1] || ns_initparse(ans, (int)n, &msg) < 0)
		return EBADMSG;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return EBADMSG;
		if ((int)ns_rr_type(rr) != type ||
		    ns_rr_rdlen(rr) != (c->family == 4 ? 4 : 16))
			continue;
		c->dst_len = loopback(c->family, port, &c->dst);
		if (c->family == 4)
			memcpy(&((struct sockaddr_in *)&c->dst)->sin_addr, ns_rr_rdata(rr), 4);
		else
			memcpy(&((struct sockaddr_in6 *)&c->dst)->sin6_addr, ns_rr_rdata(rr), 16);
		return 0;
	}
	return ENOENT;
}

/* One operation; errors are counted, never fatal. */
static void client_op(struct client *c)
{
	int af = c->family == 4 ? AF_INET : AF_INET6;

	switch (c->test) {
	case TEST_RESOLVE_CONNECT: {
		/* The lookup, then the connection to the address it gave (as tcp_connect). */
		uint16_t port = ntohs(((struct sockaddr_in *)&c->dst)->sin_port);
		int e = client_resolve(c, port);

		if (e) {
			client_error(c, e);
			return;
		}
	}
		/* fall through */
	case TEST_TCP_CONNECT: {
		/* Abortive close (RST): no TIME_WAIT, so the ephemeral ports never run out. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			client_error(c, errno);
			return;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(fd, (struct sockaddr *)&c->dst, c->dst_len) < 0)
			client_error(c, errno);
		else
			c->ops++;
		close(fd);
		return;
	}
	case TEST_UDP_SENDTO:
	case TEST_UDP_REFUSED:
		if (sendto(c->fd, c->buf, BENCH_UDP_PAYLOAD, 0, (struct sockaddr *)&c->dst,
			   c->dst_len) < 0)
			client_error(c, errno);
		else
			c->ops++;
		return;
	case TEST_UDP_CONNECT:
		if (connect(c->fd, (struct sockaddr *)&c->dst, c->dst_len) < 0)
			client_error(c, errno);
		else
			c->ops++;
		return;
	case TEST_TCP_BULK: {
		ssize_t n = send(c->fd, c->buf, sizeof(c->buf), MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return; /* the send timeout: no progress, not an error */
		if (n < 0) {
			client_error(c, errno);
			return;
		}
		c->ops++;
		c->bytes += (uint64_t)n;
		return;
	}
	}
}

/* Run operations until `ns` have passed or `max_ops` were tried; returns the time spent. */
static uint64_t client_loop(struct client *c, uint64_t ns, uint64_t max_ops)
{
	uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), start = now_ns(), t = start;

	for (uint64_t i = 0; i < max_ops; i++) {
		client_op(c);
		if (i % BENCH_CLOCK_EVERY == BENCH_CLOCK_EVERY - 1 || c->test == TEST_TCP_BULK) {
			t = now_ns();
			if (t - start >= ns)
				break;
		}
		/* A client that only fails stops early: its result is void anyway. */
		if (c->errors > 1000)
			break;
	}
	t = now_ns();
	c->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	return t - start;
}

static int parse_test(const char *s)
{
	for (unsigned i = 0; i < ARRAY_SIZE(test_names); i++)
		if (!strcmp(s, test_names[i]))
			return (int)i;
	usage_die("unknown --test");
}

static int parse_family(const char *s)
{
	int f = (int)parse_long(s, 4, 6, "--family");

	if (f == 5)
		usage_die("--family is 4 or 6");
	return f;
}

/* Make a client for one test, inside the netns and cgroup (every socket is created in them). */
static int client_new(enum test test, int family, long port, const char *netns, const char *cgroup,
		      struct client **ret)
{
	static const int offsets[] = { PORT_TCP,  PORT_UDP,	PORT_UDP,
				       PORT_BULK, PORT_REFUSED, PORT_TCP };
	struct client *c;
	int r;

	r = enter(netns, cgroup);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->test = test;
	c->family = family;
	c->fd = -1;
	c->dst_len = loopback(family, (uint16_t)(port + offsets[test]), &c->dst);
	memset(c->buf, 'x', sizeof(c->buf));
	r = client_setup(c);
	if (r < 0)
		client_error(c, -r);
	*ret = c;
	return 0;
}

static void client_reset(struct client *c)
{
	c->ops = c->eperm = c->errors = c->bytes = 0;
	c->first_errno = 0;
}

/* The figure of a run: ns per operation (per refusal for udp_refused), MB/s for tcp_bulk. */
static double client_value(const struct client *c, uint64_t elapsed)
{
	if (c->test == TEST_TCP_BULK)
		return elapsed ? (double)c->bytes / 1e6 / ((double)elapsed / 1e9) : 0;
	if (c->test == TEST_UDP_REFUSED)
		return c->eperm ? (double)elapsed / (double)c->eperm : 0;
	return c->ops ? (double)elapsed / (double)c->ops : 0;
}

static int cmd_client(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "test", required_argument, NULL, 't' },
		{ "family", required_argument, NULL, 'f' },
		{ "port", required_argument, NULL, 'p' },
		{ "ms", required_argument, NULL, 'm' },
		{ "warmup-ms", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'k' },
		{ "netns", required_argument, NULL, 'n' },
		{ "cgroup", required_argument, NULL, 'c' },
		{},
	};
	const char *netns = NULL, *cgroup = NULL;
	long port = 0, ms = 0, warmup_ms = -1, count = 0;
	int o, r, test = -1, family = 0;
	_cleanup_free_ struct client *c = NULL;
	uint64_t elapsed = 0;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			test = parse_test(optarg);
			break;
		case 'f':
			family = parse_family(optarg);
			break;
		case 'p':
			port = parse_long(optarg, 1, 65535 - PORT_COUNT, "--port");
			break;
		case 'm':
			ms = parse_long(optarg, 1, BENCH_MAX_MS, "--ms");
			break;
		case 'w':
			warmup_ms = parse_long(optarg, 0, BENCH_MAX_MS, "--warmup-ms");
			break;
		case 'k':
			count = parse_long(optarg, 1, 1000000000, "--count");
			break;
		case 'n':
			netns = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		default:
			usage_die("bad client option");
		}
	}
	if (test < 0 || !family || !port || !ms)
		usage_die("client needs --test, --family, --port and --ms");
	if (warmup_ms < 0)
		warmup_ms = count ? 0 : ms / 4 < 50 ? ms / 4 : 50;

	r = client_new((enum test)test, family, port, netns, cgroup, &c);
	if (r < 0)
		die("entering the netns/cgroup", -r);
	if (!c->errors) {
		if (warmup_ms)
			client_loop(c, (uint64_t)warmup_ms * 1000000ull, BENCH_MAX_OPS);
		client_reset(c);
		elapsed = client_loop(c, (uint64_t)ms * 1000000ull,
				      count ? (uint64_t)count : BENCH_MAX_OPS);
	}
	printf("value=%.3f ops=%" PRIu64 " eperm=%" PRIu64 " errors=%" PRIu64 " ns=%" PRIu64
	       " bytes=%" PRIu64 " err=%s\n",
	       client_value(c, elapsed), c->ops, c->eperm, c->errors, elapsed, c->bytes,
	       c->first_errno ? strerrorname_np(c->first_errno) : "-");
	if (c->fd >= 0)
		close(c->fd);
	return c->errors ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- compare -------------------------------------------------------------------------------- */

#define MAX_VARIANTS 5
#define COMPARE_TIMEOUT_MS 30000 /* a worker that does not answer within this is given up */

struct slice_result {
	double value, wall_value;
	uint64_t ops, eperm, errors, elapsed, cpu_ns;
	int first_errno;
};

struct worker {
	const char *name, *netns, *cgroup;
	pid_t pid;
	int cmd_fd, res_fd; /* parent's ends */
};

static int read_full(int fd, void *buf, size_t size, int timeout_ms)
{
	for (size_t got = 0; got < size;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? negative_errno() : -ETIMEDOUT;
		n = read(fd, (char *)buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? negative_errno() : -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

/*
 * A worker: joins its variant's netns and cgroup once, warms up, then runs one slice per command
 * (the slice length in ns; 0 ends it) and answers with its result.
 */
static void worker_main(enum test test, int family, long port, const struct worker *w, int cmd_fd,
			int res_fd, long warmup_ms)
{
	struct client *c = NULL;
	uint64_t slice_ns;
	int r = client_new(test, family, port, w->netns, w->cgroup, &c);

	if (r < 0)
		die("entering the netns/cgroup", -r);
	if (!c->errors && warmup_ms)
		client_loop(c, (uint64_t)warmup_ms * 1000000ull, BENCH_MAX_OPS);
	for (;;) {
		struct slice_result res = {};

		if (read_full(cmd_fd, &slice_ns, sizeof(slice_ns), -1) < 0 || !slice_ns)
			_exit(0);
		if (!c->errors || c->ops) {
			client_reset(c);
			res.elapsed = client_loop(c, slice_ns, BENCH_MAX_OPS);
			res.cpu_ns = c->cpu_ns;
		}
		/* The cost in CPU time of this thread: time spent descheduled does not count. */
		res.value = client_value(c, res.cpu_ns);
		res.wall_value = client_value(c, res.elapsed);
		res.ops = c->ops;
		res.eperm = c->eperm;
		res.errors = c->errors;
		res.first_errno = c->first_errno;
		if (write(res_fd, &res, sizeof(res)) != sizeof(res))
			_exit(1);
	}
}

static void workers_stop(struct worker *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (w[i].pid <= 0)
			continue;
		kill(w[i].pid, SIGKILL);
		waitpid(w[i].pid, NULL, 0);
		w[i].pid = 0;
	}
}

static int cmd_compare(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "test", required_argument, NULL, 't' },
		{ "family", required_argument, NULL, 'f' },
		{ "port", required_argument, NULL, 'p' },
		{ "ms", required_argument, NULL, 'm' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "warmup-ms", required_argument, NULL, 'w' },
		{ "variant", required_argument, NULL, 'v' },
		{ "netns", required_argument, NULL, 'n' },
		{ "cgroup", required_argument, NULL, 'c' },
		{},
	};
	struct worker w[MAX_VARIANTS] = {};
	long port = 0, ms = 0, rounds = 0, warmup_ms = 50;
	int o, test = -1, family = 0, failed = 0;
	unsigned n = 0;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			test = parse_test(optarg);
			break;
		case 'f':
			family = parse_family(optarg);
			break;
		case 'p':
			port = parse_long(optarg, 1, 65535 - PORT_COUNT, "--port");
			break;
		case 'm':
			ms = parse_long(optarg, 1, BENCH_MAX_MS, "--ms");
			break;
		case 'r':
			rounds = parse_long(optarg, 1, 1000, "--rounds");
			break;
		case 'w':
			warmup_ms = parse_long(optarg, 0, BENCH_MAX_MS, "--warmup-ms");
			break;
		case 'v':
			if (n == MAX_VARIANTS)
				usage_die("too many --variant");
			w[n++].name = optarg;
			break;
		case 'n':
		case 'c':
			if (!n)
				usage_die("--netns and --cgroup follow their --variant");
			*(o == 'n' ? &w[n - 1].netns : &w[n - 1].cgroup) = optarg;
			break;
		default:
			usage_die("bad compare option");
		}
	}
	if (test < 0 || !family || !port || !ms || !rounds || !n)
		usage_die("compare needs --test, --family, --port, --ms, --rounds and a --variant");

	for (unsigned i = 0; i < n; i++) {
		int cmd[2], res[2];

		if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0)
			die("pipe", errno);
		fflush(stdout);
		w[i].pid = fork();
		if (w[i].pid < 0)
			die("fork", errno);
		if (w[i].pid == 0) {
			close(cmd[1]);
			close(res[0]);
			worker_main((enum test)test, family, port, &w[i], cmd[0], res[1], warmup_ms);
		}
		close(cmd[0]);
		close(res[1]);
		w[i].cmd_fd = cmd[1];
		w[i].res_fd = res[0];
	}

	/* Round r runs every variant once, back to back, starting with variant r mod n. */
	for (long r = 1; r <= rounds && !failed; r++) {
		for (unsigned k = 0; k < n && !failed; k++) {
			struct worker *x = &w[(k + (unsigned)r) % n];
			uint64_t slice = (uint64_t)ms * 1000000ull;
			struct slice_result res;
			int e;

			if (write(x->cmd_fd, &slice, sizeof(slice)) != sizeof(slice)) {
				fprintf(stderr, "bench: worker %s is gone\n", x->name);
				failed = 1;
				break;
			}
			e = read_full(x->res_fd, &res, sizeof(res), (int)ms + COMPARE_TIMEOUT_MS);
			if (e < 0) {
				fprintf(stderr, "bench: worker %s: %s\n", x->name, strerror(-e));
				failed = 1;
				break;
			}
			/* A slice in which nothing completed (a bulk receiver descheduled for the
			 * whole slice, on a busy machine) has no figure: "-". */
			if (res.ops)
				printf("round=%ld variant=%s value=%.3f wall=%.3f", r, x->name,
				       res.value, res.wall_value);
			else
				printf("round=%ld variant=%s value=- wall=-", r, x->name);
			printf(" ops=%" PRIu64 " eperm=%" PRIu64 " errors=%" PRIu64 " ns=%" PRIu64
			       " cpu_ns=%" PRIu64 " err=%s\n",
			       res.ops, res.eperm, res.errors, res.elapsed, res.cpu_ns,
			       res.first_errno ? strerrorname_np(res.first_errno) : "-");
			fflush(stdout);
			if (res.errors)
				failed = 1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t zero = 0;

		if (write(w[i].cmd_fd, &zero, sizeof(zero)) < 0)
			continue;
	}
	for (unsigned i = 0; i < n; i++) {
		/* Bounded: a worker that does not end within a second is killed. */
		for (int t = 0; t < 100 && w[i].pid > 0; t++) {
			if (waitpid(w[i].pid, NULL, WNOHANG) == w[i].pid)
				w[i].pid = 0;
			else
				usleep(10000);
		}
		close(w[i].cmd_fd);
		close(w[i].res_fd);
	}
	workers_stop(w, n);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- policy --------------------------------------------------------------------------------- */

/* xorshift64*: deterministic, so that every run benchmarks the same policy. */
#define RNG_SEED 0x9e3779b97f4a7c15ull
static uint64_t rng_state = RNG_SEED;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

struct rule {
	uint8_t family; /* 4 or 6 */
	uint8_t len;	/* prefix length */
	uint8_t ports;	/* index in port_sets */
	uint8_t proto;	/* 0 any, 6 tcp, 17 udp */
	uint16_t app;
	uint8_t addr[16];
};

/* The port lists rules use, as the policy writes them and as nftables does ("any" = all). */
static const struct {
	const char *yaml;
	const char *nft[2];
	uint8_t proto;
} port_sets[] = {
	{ "[443]", { "443" }, 6 },
	{ "[443, 8443-8450]", { "443", "8443-8450" }, 6 },
	{ "[80, 443]", { "80", "443" }, 6 },
	{ "[53]", { "53" }, 0 },
	{ NULL, { "0-65535" }, 6 },
	{ "[1883, 8883]", { "1883", "8883" }, 6 },
	{ "[123]", { "123" }, 17 },
	{ "[5000-5100]", { "5000-5100" }, 17 },
};
#define PORTS_BENCH 0xff /* the benchmark's own rule: its ports P..P+2, any protocol */

/* A set of prefixes, to keep the generated ones unique (nftables refuses overlapping ones). */
struct seen {
	uint64_t *slots;
	size_t cap;
};

static uint64_t rule_hash(const struct rule *r)
{
	uint64_t h = 1469598103934665603ull ^ ((uint64_t)r->family << 8 | r->len);

	for (unsigned i = 0; i < (r->family == 4 ? 4u : 16u); i++)
		h = (h ^ r->addr[i]) * 1099511628211ull;
	return h | 1; /* 0 marks an empty slot */
}

/* True when the prefix was new (and is now in the set). Hash collisions just redraw. */
static bool seen_add(struct seen *s, const struct rule *r)
{
	uint64_t h = rule_hash(r);

	for (size_t i = h % s->cap, n = 0; n < s->cap; i = (i + 1) % s->cap, n++) {
		if (s->slots[i] == h)
			return false;
		if (!s->slots[i]) {
			s->slots[i] = h;
			return true;
		}
	}
	return false;
}

/* A realistic destination: v4 /32 and /24, v6 /128 and /48, from disjoint ranges (no overlap). */
static void rule_random(struct rule *r)
{
	unsigned kind = (unsigned)(rnd() % 100);
	uint64_t x = rnd(), y = rnd();

	memset(r->addr, 0, sizeof(r->addr));
	if (kind < 75) {
		uint32_t a;

		r->family = 4;
		if (kind < 50) {
			/* /32 in 128.0.0.0-223.255.255.255 */
			a = (uint32_t)(128 + x % 96) << 24 | (uint32_t)(y & 0xffffff);
			r->len = 32;
		} else {
			/* /24 in 1.0.0.0-126.255.255.0 */
			a = (uint32_t)(1 + x % 126) << 24 | (uint32_t)(y & 0xffff00);
			r->len = 24;
		}
		a = htonl(a);
		memcpy(r->addr, &a, 4);
	} else {
		r->family = 6;
		if (kind < 90) {
			/* /128 in 2a00::/12 */
			r->addr[0] = 0x2a;
			r->addr[1] = (uint8_t)(x & 0x0f);
			memcpy(r->addr + 2, &y, 8);
			uint64_t z = rnd();
			memcpy(r->addr + 10, &z, 6);
			r->len = 128;
		} else {
			/* /48 in 2400::/12 */
			r->addr[0] = 0x24;
			r->addr[1] = (uint8_t)(x & 0x0f);
			memcpy(r->addr + 2, &y, 4);
			r->len = 48;
		}
	}
	r->ports = (uint8_t)(rnd() % ARRAY_SIZE(port_sets));
	r->proto = port_sets[r->ports].proto;
}

static void addr_text(const struct rule *r, char *buf, size_t size)
{
	inet_ntop(r->family == 4 ? AF_INET : AF_INET6, r->addr, buf, (socklen_t)size);
}

static const char *proto_text(uint8_t proto)
{
	return proto == 6 ? "tcp" : proto == 17 ? "udp" : "any";
}

struct bundle_meta {
	const char *id, *target;
	long version;
};

static void write_yaml(FILE *f, const struct rule *rules, size_t n, long port,
		       const struct bundle_meta *b)
{
	fprintf(f, "# Generated by `bench policy --rules %zu` (tests/bench/bench.c) for make bench.\n",
		n);
	if (b->id)
		fprintf(f, "bundle:\n  id: %s\n  version: %ld\n  target: %s\n"
			   "  not-before: 2020-01-01T00:00:00Z\n  not-after: 9999-12-31T23:59:59Z\n",
			b->id, b->version, b->target);
	/* The resolver of resolve_connect (dnsmasq, in each variant's netns). */
	fprintf(f, "version: 1\nresolvers: [127.0.0.1]\napps:\n");
	for (unsigned app = 0; app < BENCH_APPS; app++) {
		bool any = false;

		fprintf(f, "  app%02u:\n    allow:", app);
		for (size_t i = 0; i < n; i++) {
			const struct rule *r = &rules[i];
			char a[INET6_ADDRSTRLEN];

			if (r->app != app)
				continue;
			any = true;
			addr_text(r, a, sizeof(a));
			fprintf(f, "\n      - to: \"%s/%u\"\n", a, r->len);
			if (r->ports == PORTS_BENCH)
				fprintf(f, "        ports: [%ld-%ld]\n", port, port + PORT_BULK);
			else if (port_sets[r->ports].yaml)
				fprintf(f, "        ports: %s\n", port_sets[r->ports].yaml);
			fprintf(f, "        proto: %s", proto_text(r->proto));
		}
		if (app == BENCH_NAMES_APP_INDEX) {
			/* resolve_connect's name, last: learned addresses are judged after the
			 * app's prefixes refused them. */
			fprintf(f, "\n      - to: [%s]\n        ports: [%ld]\n        proto: tcp",
				BENCH_NAME, port + PORT_TCP);
			any = true;
		}
		fprintf(f, "%s\n", any ? "" : " []");
	}
}

static void write_nft(FILE *f, const struct rule *rules, size_t n, long port, const char *table,
		      const char *cgroup_prefix, long level)
{
	fprintf(f, "# Generated by `bench policy` (tests/bench/bench.c): the policy's allow-lists as\n"
		   "# nftables rules, one chain and two interval sets per app.\n"
		   "table inet %s {\n",
		table);
	for (unsigned app = 0; app < BENCH_APPS; app++) {
		for (int family = 4; family <= 6; family += 2) {
			bool first = true;

			fprintf(f, "\tset app%02u_v%d {\n\t\ttype %s . inet_proto . inet_service\n"
				   "\t\tflags interval\n",
				app, family, family == 4 ? "ipv4_addr" : "ipv6_addr");
			for (size_t i = 0; i < n; i++) {
				const struct rule *r = &rules[i];
				char a[INET6_ADDRSTRLEN], range[32];

				if (r->app != app || r->family != family)
					continue;
				addr_text(r, a, sizeof(a));
				for (unsigned p = 0; p < 2; p++) {
					const char *ports = NULL;

					if (r->ports == PORTS_BENCH) {
						if (p)
							break;
						snprintf(range, sizeof(range), "%ld-%ld", port,
							 port + PORT_BULK);
						ports = range;
					} else {
						ports = port_sets[r->ports].nft[p];
					}
					if (!ports)
						break;
					for (unsigned pr = 0; pr < 2; pr++) {
						uint8_t proto = pr ? 17 : 6;

						if (r->proto && r->proto != proto)
							continue;
						fprintf(f, "%s%s/%u . %s . %s",
							first ? "\t\telements = {\n\t\t\t" : ",\n\t\t\t",
							a, r->len, proto_text(proto), ports);
						first = false;
					}
				}
			}
			fprintf(f, "%s\t}\n", first ? "" : "\n\t\t}\n");
		}
		fprintf(f, "\tchain app%02u {\n"
			   "\t\tip daddr . meta l4proto . th dport @app%02u_v4 accept\n"
			   "\t\tip6 daddr . meta l4proto . th dport @app%02u_v6 accept\n"
			   "\t\treject with icmpx admin-prohibited\n\t}\n",
			app, app, app);
	}
	fprintf(f, "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n");
	for (unsigned app = 0; app < BENCH_APPS; app++)
		fprintf(f, "\t\tsocket cgroupv2 level %ld \"%s/agl-app@app%02u.service\" goto app%02u\n",
			level, cgroup_prefix, app, app);
	fprintf(f, "\t}\n}\n");
}

/*
 * The benchmark policy's rules, the same for the same (n, revision) in every process: `bench
 * policy` writes them as YAML and nftables, `bench floor` loads them into the floor's tries.
 *
 * The benchmark's app (app08) reaches 127.0.0.1 and ::1 on the benchmark's ports, in the middle
 * of its rules, next to neighbours that make the lookup walk deep (127.0.0.2, 127.0.0.3, ... and
 * ::2, ::3, ...). Every other rule is random, spread over the 16 apps. No two rules have the same
 * prefix, and no prefix contains another.
 */
static struct rule *policy_rules(long n, long revision)
{
	_cleanup_free_ struct rule *rules = NULL;
	struct seen seen = {};
	size_t k, extra, done = 0;

	rng_state = RNG_SEED;
	rules = calloc((size_t)n, sizeof(*rules));
	seen.cap = (size_t)n * 4 + 64;
	seen.slots = calloc(seen.cap, sizeof(*seen.slots));
	if (!rules || !seen.slots)
		die("policy", ENOMEM);

	extra = (size_t)n / 128 < 32 ? (size_t)n / 128 : 32;
	if (extra < 1)
		extra = 1;
	for (size_t i = 0; i < (size_t)n; i++) {
		struct rule *r = &rules[i];

		r->app = (uint16_t)(i % BENCH_APPS);
		if (r->app == BENCH_APP_INDEX && done < 2 * extra + 2 && i >= (size_t)n / 4) {
			/* 0, 1: the benchmark's flows; then the neighbours. */
			memset(r->addr, 0, sizeof(r->addr));
			r->family = done % 2 ? 6 : 4;
			r->len = r->family == 4 ? 32 : 128;
			k = done / 2; /* 0 for the flows, then 1.. */
			if (r->family == 4) {
				r->addr[0] = 127;
				r->addr[3] = (uint8_t)(k + 1);
			} else {
				r->addr[15] = (uint8_t)(k + 1);
			}
			r->ports = k ? 0 : PORTS_BENCH;
			r->proto = k ? 6 : 0;
			seen_add(&seen, r);
			done++;
			continue;
		}
		for (unsigned tries = 0; tries < 1000; tries++) {
			rule_random(r);
			if (seen_add(&seen, r))
				break;
		}
	}
	free(seen.slots);
	/* A revision: app00's first rule reaches 127.1.R/32 (no random rule is in 127/8). */
	if (revision) {
		memset(rules[0].addr, 0, sizeof(rules[0].addr));
		rules[0].family = 4;
		rules[0].len = 32;
		rules[0].addr[0] = 127;
		rules[0].addr[1] = 1;
		rules[0].addr[2] = (uint8_t)(revision >> 8);
		rules[0].addr[3] = (uint8_t)revision;
		rules[0].ports = 0;
		rules[0].proto = port_sets[0].proto;
	}
	if (done < 2)
		die("policy: too few rules for the benchmark's app", EINVAL);
	return TAKE_PTR(rules);
}

static int cmd_policy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rules", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "yaml", required_argument, NULL, 'y' },
		{ "nft", required_argument, NULL, 'n' },
		{ "nft-table", required_argument, NULL, 't' },
		{ "nft-cgroup", required_argument, NULL, 'c' },
		{ "nft-level", required_argument, NULL, 'l' },
		{ "revision", required_argument, NULL, 'v' },
		{ "bundle-id", required_argument, NULL, 'I' },
		{ "bundle-version", required_argument, NULL, 'V' },
		{ "bundle-target", required_argument, NULL, 'T' },
		{},
	};
	struct bundle_meta bundle = {};
	const char *yaml = NULL, *nft = NULL, *table = NULL, *cg = NULL;
	long n = 0, port = 0, level = -1, revision = 0;
	_cleanup_free_ struct rule *rules = NULL;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			n = parse_long(optarg, 64, BENCH_MAX_RULES, "--rules");
			break;
		case 'p':
			port = parse_long(optarg, 1, 65535 - PORT_COUNT, "--port");
			break;
		case 'y':
			yaml = optarg;
			break;
		case 'n':
			nft = optarg;
			break;
		case 't':
			table = optarg;
			break;
		case 'c':
			cg = optarg;
			break;
		case 'l':
			level = parse_long(optarg, 1, 31, "--nft-level");
			break;
		case 'v':
			revision = parse_long(optarg, 0, 65535, "--revision");
			break;
		case 'I':
			bundle.id = optarg;
			break;
		case 'V':
			bundle.version = parse_long(optarg, 1, 1000000000, "--bundle-version");
			break;
		case 'T':
			bundle.target = optarg;
			break;
		default:
			usage_die("bad policy option");
		}
	}
	if (!!bundle.id != !!bundle.target || !!bundle.id != !!bundle.version)
		usage_die("--bundle-id, --bundle-version and --bundle-target go together");
	if (!n || !port || !yaml || (nft && (!table || !cg || level < 0)))
		usage_die("policy needs --rules, --port, --yaml (and --nft-table, --nft-cgroup, "
			  "--nft-level with --nft)");

	rules = policy_rules(n, revision);
	_cleanup_fclose_ FILE *fy = fopen(yaml, "we");
	if (!fy)
		die(yaml, errno);
	write_yaml(fy, rules, (size_t)n, port, &bundle);
	if (fflush(fy) != 0 || ferror(fy))
		die(yaml, errno);
	if (nft) {
		_cleanup_fclose_ FILE *fn = fopen(nft, "we");
		if (!fn)
			die(nft, errno);
		write_nft(fn, rules, (size_t)n, port, table, cg, level);
		if (fflush(fn) != 0 || ferror(fn))
			die(nft, errno);
	}
	return EXIT_SUCCESS;
}

/* ---- floor ---------------------------------------------------------------------------------- */

static void floor_skel_freep(struct bench_floor_bpf **p)
{
	bench_floor_bpf__destroy(*p);
}

/* "443" or "8443-8450" (port_sets' nftables spelling) as an inclusive range. */
static void floor_range_of(const char *text, uint16_t *ret_lo, uint16_t *ret_hi)
{
	char *end;
	unsigned long lo = strtoul(text, &end, 10), hi = lo;

	if (*end == '-')
		hi = strtoul(end + 1, &end, 10);
	if (*end || lo > hi || hi > 65535)
		die("floor: a port list of the policy", EINVAL);
	*ret_lo = (uint16_t)lo;
	*ret_hi = (uint16_t)hi;
}

/* What one rule allows, folded into the value of its prefix. */
static void floor_val_of(const struct rule *r, long port, struct floor_val *v)
{
	memset(v, 0, sizeof(*v));
	if (r->ports == PORTS_BENCH) {
		v->range[0].lo = (uint16_t)port;
		v->range[0].hi = (uint16_t)(port + PORT_BULK);
		v->range[0].proto = r->proto;
		v->n = 1;
		return;
	}
	for (unsigned p = 0; p < ARRAY_SIZE(port_sets[r->ports].nft); p++) {
		if (!port_sets[r->ports].nft[p])
			break;
		_Static_assert(ARRAY_SIZE(port_sets[0].nft) <= FLOOR_MAX_RANGES, "port sets fit");
		floor_range_of(port_sets[r->ports].nft[p], &v->range[v->n].lo, &v->range[v->n].hi);
		v->range[v->n].proto = r->proto;
		v->n++;
	}
}

/* Pin the link of one program: DIR/KIND/links/HOOK, as bench bpfstats reads them. */
static void floor_attach(struct bpf_program *prog, int cgroup_fd, const char *pin_dir,
			 const char *kind, const char *hook)
{
	struct bpf_link *link = bpf_program__attach_cgroup(prog, cgroup_fd);
	_cleanup_free_ char *path = NULL;
	int r;

	if (!link)
		die(bpf_program__name(prog), errno);
	if (asprintf(&path, "%s/%s/links/%s", pin_dir, kind, hook) < 0)
		die("floor", ENOMEM);
	r = bpf_link__pin(link, path);
	if (r < 0)
		die(path, -r);
	/* The pin keeps the link (and the program attached) after this process. */
	bpf_link__destroy(link);
}

/* The cgroup ids of the apps' cgroups DIR/agl-app@appNN.service. */
static void floor_app_ids(const char *apps, uint64_t ret_ids[BENCH_APPS])
{
	for (unsigned app = 0; app < BENCH_APPS; app++) {
		_cleanup_free_ char *path = NULL;
		int r;

		if (asprintf(&path, "%s/agl-app@app%02u.service", apps, app) < 0)
			die("floor", ENOMEM);
		r = cgroup_get_id(path, &ret_ids[app]);
		if (r < 0)
			die(path, -r);
	}
}

/* The policy's prefixes into one pair of tries, keyed by the apps' cgroup ids. */
static void floor_fill(struct bpf_map *dst4, struct bpf_map *dst6, const struct rule *rules,
		       size_t n, long port, const uint64_t cgroup_ids[BENCH_APPS], size_t *ret_n4,
		       size_t *ret_n6)
{
	size_t n4 = 0, n6 = 0;

	/* No two rules of the policy share a prefix (policy_rules()): a duplicate is a bug here. */
	for (size_t i = 0; i < n; i++) {
		const struct rule *x = &rules[i];
		struct floor_val val;
		int r;

		floor_val_of(x, port, &val);
		if (x->family == 4) {
			struct floor_key4 key = { .prefixlen = FLOOR_CGROUP_BITS + x->len };

			memcpy(key.cgroup, &cgroup_ids[x->app], sizeof(key.cgroup));
			memcpy(&key.addr_be, x->addr, sizeof(key.addr_be));
			r = bpf_map__update_elem(dst4, &key, sizeof(key), &val, sizeof(val),
						 BPF_NOEXIST);
			n4++;
		} else {
			struct floor_key6 key = { .prefixlen = FLOOR_CGROUP_BITS + x->len };

			memcpy(key.cgroup, &cgroup_ids[x->app], sizeof(key.cgroup));
			memcpy(key.addr_be, x->addr, sizeof(key.addr_be));
			r = bpf_map__update_elem(dst6, &key, sizeof(key), &val, sizeof(val),
						 BPF_NOEXIST);
			n6++;
		}
		if (r < 0)
			die("floor: writing a prefix", -r);
	}
	*ret_n4 = n4;
	*ret_n6 = n6;
}

static int cmd_floor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rules", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "revision", required_argument, NULL, 'v' },
		{ "apps", required_argument, NULL, 'a' },
		{ "attach", required_argument, NULL, 'c' },
		{ "mark-apps", required_argument, NULL, 'A' },
		{ "mark", required_argument, NULL, 'm' },
		{ "empty", required_argument, NULL, 'e' },
		{ "pin-dir", required_argument, NULL, 'd' },
		{},
	};
	/* The program sets by name prefix: where each is attached, and its pin folder. */
	static const char *const kinds[] = { "floor", "mark", "empty" };
	_cleanup_(floor_skel_freep) struct bench_floor_bpf *skel = NULL;
	_cleanup_close_ int floor_fd = -1, mark_fd = -1, empty_fd = -1;
	_cleanup_free_ struct rule *rules = NULL;
	const char *apps = NULL, *attach = NULL, *mark_apps = NULL, *mark = NULL, *empty = NULL,
		   *pin_dir = NULL;
	uint64_t floor_ids[BENCH_APPS], mark_ids[BENCH_APPS];
	long n = 0, port = 0, revision = 0;
	size_t n4 = 0, n6 = 0, m4 = 0, m6 = 0;
	struct bpf_program *prog;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			n = parse_long(optarg, 64, BENCH_MAX_RULES, "--rules");
			break;
		case 'p':
			port = parse_long(optarg, 1, 65535 - PORT_COUNT, "--port");
			break;
		case 'v':
			revision = parse_long(optarg, 0, 65535, "--revision");
			break;
		case 'a':
			apps = optarg;
			break;
		case 'c':
			attach = optarg;
			break;
		case 'A':
			mark_apps = optarg;
			break;
		case 'm':
			mark = optarg;
			break;
		case 'e':
			empty = optarg;
			break;
		case 'd':
			pin_dir = optarg;
			break;
		default:
			usage_die("bad floor option");
		}
	}
	if (!n || !port || !apps || !attach || !mark_apps || !mark || !empty || !pin_dir)
		usage_die("floor needs --rules, --port, --apps, --attach, --mark-apps, --mark, "
			  "--empty and --pin-dir");

	rules = policy_rules(n, revision);
	floor_app_ids(apps, floor_ids);
	floor_app_ids(mark_apps, mark_ids);
	floor_fd = open(attach, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (floor_fd < 0)
		die(attach, errno);
	mark_fd = open(mark, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mark_fd < 0)
		die(mark, errno);
	empty_fd = open(empty, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (empty_fd < 0)
		die(empty, errno);

	skel = bench_floor_bpf__open_and_load();
	if (!skel)
		die("loading tests/bench/floor.bpf.c", errno);
	floor_fill(skel->maps.floor_dst4, skel->maps.floor_dst6, rules, (size_t)n, port, floor_ids,
		   &n4, &n6);
	floor_fill(skel->maps.mark_dst4, skel->maps.mark_dst6, rules, (size_t)n, port, mark_ids,
		   &m4, &m6);
	if (m4 != n4 || m6 != n6)
		die("floor: the mark's tries differ from the floor's", EINVAL);
	/*
	 * The policy epoch in force, in the mapped .bss (mark_skb_egress reads it with a plain
	 * load); a mark written in another epoch would no longer pass.
	 */
	if (!skel->bss)
		die("floor: the .bss of tests/bench/floor.bpf.c is not mapped", ENOTSUP);
	skel->bss->mark_epoch = 1;

	if (mkdir(pin_dir, 0700) < 0)
		die(pin_dir, errno);
	for (unsigned k = 0; k < ARRAY_SIZE(kinds); k++) {
		_cleanup_free_ char *kind = NULL, *links = NULL;

		if (asprintf(&kind, "%s/%s", pin_dir, kinds[k]) < 0 ||
		    asprintf(&links, "%s/links", kind) < 0)
			die("floor", ENOMEM);
		if (mkdir(kind, 0700) < 0 || mkdir(links, 0700) < 0)
			die(links, errno);
	}
	/* floor_HOOK at --attach, mark_HOOK at --mark, empty_HOOK at --empty, pinned by hook. */
	bpf_object__for_each_program(prog, skel->obj) {
		const char *name = bpf_program__name(prog);

		if (!strncmp(name, "floor_", 6))
			floor_attach(prog, floor_fd, pin_dir, "floor", name + 6);
		else if (!strncmp(name, "mark_", 5))
			floor_attach(prog, mark_fd, pin_dir, "mark", name + 5);
		else if (!strncmp(name, "empty_", 6))
			floor_attach(prog, empty_fd, pin_dir, "empty", name + 6);
		else
			die(name, EINVAL);
	}
	printf("ready prefixes4=%zu prefixes6=%zu\n", n4, n6);
	return EXIT_SUCCESS;
}

/* ---- bpfstats ------------------------------------------------------------------------------- */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return r < 0 ? negative_errno() : (int)r;
}

static int link_prog(const char *path, struct bpf_prog_info *ret)
{
	_cleanup_close_ int link_fd = -1, prog_fd = -1;
	struct bpf_link_info li = {};
	union bpf_attr attr = {};
	int r;

	attr.pathname = (uint64_t)(uintptr_t)path;
	link_fd = sys_bpf(BPF_OBJ_GET, &attr);
	if (link_fd < 0)
		return link_fd;
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)link_fd;
	attr.info.info_len = sizeof(li);
	attr.info.info = (uint64_t)(uintptr_t)&li;
	r = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
	if (r < 0)
		return r;
	memset(&attr, 0, sizeof(attr));
	attr.prog_id = li.prog_id;
	prog_fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
	if (prog_fd < 0)
		return prog_fd;
	memset(ret, 0, sizeof(*ret));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)prog_fd;
	attr.info.info_len = sizeof(*ret);
	attr.info.info = (uint64_t)(uintptr_t)ret;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
}

static int cmd_bpfstats(int argc, char **argv)
{
	_cleanup_free_ char *dir = NULL;
	struct dirent **names = NULL;
	int n;

	if (argc != 2)
		usage_die("bpfstats PIN_DIR");
	if (asprintf(&dir, "%s/links", argv[1]) < 0)
		die("bpfstats", ENOMEM);
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		die(dir, errno);
	for (int i = 0; i < n; i++) {
		struct bpf_prog_info info;
		char path[4096];
		int r = 0;

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			r = link_prog(path, &info);
			if (r < 0)
				fprintf(stderr, "bench: %s: %s\n", path, strerror(-r));
			else
				printf("%s\t%u\t%s\t%" PRIu64 "\t%" PRIu64 "\n", names[i]->d_name,
				       info.id, info.name[0] ? info.name : "-",
				       (uint64_t)info.run_cnt, (uint64_t)info.run_time_ns);
		}
		free(names[i]);
	}
	free(names);
	return EXIT_SUCCESS;
}

/* ---- floors of the agent ------------------------------------------------------------------- */

/*
 * yaml-floor FILE: the floor of a reload of FILE in production mode, in two parts, each the
 * least CPU time of 5 passes: libyaml alone reading every event of FILE (what any parse of it
 * with libyaml costs at least: no schema, no allocation of its own), and one Ed25519 signature
 * of the same bytes checked with libcrypto (what any agent that takes only signed policies does
 * before it trusts them; the key and the signature are made before, untimed).
 */
static int cmd_yaml_floor(int argc, char **argv)
{
	_cleanup_free_ char *data = NULL;
	uint64_t best = UINT64_MAX, best_verify = UINT64_MAX, events = 0;
	unsigned char sig[64];
	size_t size, sig_len = sizeof(sig);
	EVP_MD_CTX *ctx;
	EVP_PKEY *key;
	int r;

	if (argc != 2)
		usage_die("yaml-floor FILE");
	r = read_file_limited(argv[1], 64u << 20, &data, &size);
	if (r < 0)
		die("reading the policy", -r);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ctx = EVP_MD_CTX_new();
	if (!key || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)data, size) != 1)
		die("libcrypto: signing the policy", EIO);
	for (int pass = 0; pass < 5; pass++) {
		uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t;
		yaml_parser_t y;
		yaml_event_t e;
		bool end = false;

		if (!yaml_parser_initialize(&y))
			die("yaml_parser_initialize", ENOMEM);
		yaml_parser_set_input_string(&y, (const unsigned char *)data, size);
		for (events = 0; !end; events++) {
			if (!yaml_parser_parse(&y, &e))
				die("the policy is not YAML", EINVAL);
			end = e.type == YAML_STREAM_END_EVENT;
			yaml_event_delete(&e);
		}
		yaml_parser_delete(&y);
		t = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		if (t < best)
			best = t;

		t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1 ||
		    EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data, size) != 1)
			die("libcrypto: the signature just made does not verify", EIO);
		t = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		if (t < best_verify)
			best_verify = t;
	}
	printf("us=%" PRIu64 " events=%" PRIu64 " verify_us=%" PRIu64 "\n", best / 1000, events,
	       best_verify / 1000);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return 0;
}

static int rss_floor_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

/* VmRSS and VmHWM of this process, in KiB. */
static void rss_of_self(long *ret_rss, long *ret_hwm)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];

	*ret_rss = *ret_hwm = -1;
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", ret_rss);
		sscanf(line, "VmHWM: %ld", ret_hwm);
	}
}

/*
 * rss-floor EVENTS_MAP: the resident memory any agent built like carwalld has at least: this
 * program links the same libraries, maps the agent's pinned ring buffer (EVENTS_MAP) the way the
 * agent does (libbpf's ring_buffer__new()), and uses each library once as a reload does: a PEM
 * public key read and an Ed25519 signature checked (libcrypto), SHA-256, a small YAML document
 * parsed, a JSON reply made. Nothing of carwall's own state.
 */
static int cmd_rss_floor(int argc, char **argv)
{
	static const char yaml_doc[] = "version: 1\napps:\n  a:\n    allow: []\n";
	unsigned char md[EVP_MAX_MD_SIZE], sig[64], msg[1024] = { 0 };
	size_t sig_len = sizeof(sig);
	unsigned md_len = 0;
	struct ring_buffer *rb;
	EVP_PKEY *key, *pub;
	EVP_MD_CTX *ctx;
	BIO *bio;
	yaml_parser_t y;
	yaml_event_t e;
	struct json_object *o;
	long rss, hwm;
	int fd;

	if (argc != 2)
		usage_die("rss-floor EVENTS_MAP");
	fd = bpf_obj_get(argv[1]);
	if (fd < 0)
		die("opening the pinned ring buffer", errno);
	rb = ring_buffer__new(fd, rss_floor_event, NULL, NULL);
	if (!rb)
		die("ring_buffer__new", errno);
	ring_buffer__consume(rb);

	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	bio = BIO_new(BIO_s_mem());
	if (!key || !bio || PEM_write_bio_PUBKEY(bio, key) != 1)
		die("libcrypto", EIO);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	ctx = EVP_MD_CTX_new();
	if (!pub || !ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, msg, sizeof(msg)) != 1 ||
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) != 1 ||
	    EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)) != 1 ||
	    !EVP_Digest(msg, sizeof(msg), md, &md_len, EVP_sha256(), NULL))
		die("libcrypto", EIO);

	if (!yaml_parser_initialize(&y))
		die("yaml_parser_initialize", ENOMEM);
	yaml_parser_set_input_string(&y, (const unsigned char *)yaml_doc, sizeof(yaml_doc) - 1);
	for (bool end = false; !end;) {
		if (!yaml_parser_parse(&y, &e))
			die("libyaml", EINVAL);
		end = e.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&y);

	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	if (!json_object_to_json_string(o))
		die("json-c", ENOMEM);

	rss_of_self(&rss, &hwm);
	printf("rss_kib=%ld hwm_kib=%ld\n", rss, hwm);
	json_object_put(o);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(key);
	BIO_free(bio);
	ring_buffer__free(rb);
	close(fd);
	return 0;
}

/* ---- report --------------------------------------------------------------------------------- */

#define MAX_ROUNDS 1000
#define MAX_FIELDS 16
#define MAX_KERNEL 4096 /* program x flow x round samples: 27 programs x 6 flows, 25 rounds */
#define MAX_RELOADS 64
#define MAX_META 64
#define REPORT_LINE 4096

/* mark: the floor with the socket's mark and the per-packet check of it ("floor+mark"). */
enum variant { V_NONE, V_CARWALL, V_NFT, V_FLOOR, V_MARK, N_VARIANTS };
static const char *const variant_names[N_VARIANTS] = { "none", "carwall", "nftables", "floor",
						       "mark" };
#define MARK_LABEL "floor+mark"

/* The in-kernel measurement: whose programs, over which flows. */
enum kvariant { K_CARWALL, K_FLOOR, K_MARK, K_EMPTY, N_KVARIANTS };
static const char *const kvariant_names[N_KVARIANTS] = { "carwall", "floor", "mark", "empty" };
static const char *const ktests[] = { "tcp_connect_v4", "tcp_connect_v6", "udp_sendto_v4",
				      "udp_sendto_v6",	"udp_connect_v4", "udp_connect_v6" };
#define N_KTESTS ARRAY_SIZE(ktests)

/* The datapath measurements; ratio targets apply to carwall. */
static const struct dp_test {
	const char *name, *label, *unit;
	bool throughput; /* a higher value is better (MB/s), else a time per operation (ns) */
	double target;	 /* 0: none; else max time ratio, or min throughput ratio */
	/*
	 * Figures on the wall clock, not on the client's CPU time: part of the work is done in
	 * another process's context (the resolver's answer is received, and parsed by carwall's
	 * ingress program, in the softirq of dnsmasq's send).
	 */
	bool wall;
} dp_tests[] = {
	{ "tcp_connect_v4", "TCP connect+close, IPv4", "ns/op", false, 1.03, false },
	{ "tcp_connect_v6", "TCP connect+close, IPv6", "ns/op", false, 1.03, false },
	{ "udp_sendto_v4", "UDP sendto 64 B, IPv4", "ns/op", false, 1.10, false },
	{ "udp_sendto_v6", "UDP sendto 64 B, IPv6", "ns/op", false, 1.10, false },
	{ "udp_connect_v4", "UDP connect(), IPv4", "ns/op", false, 1.15, false },
	{ "udp_connect_v6", "UDP connect(), IPv6", "ns/op", false, 1.15, false },
	{ "tcp_bulk_v4", "TCP bulk, IPv4", "MB/s", true, 0.98, false },
	{ "tcp_bulk_v6", "TCP bulk, IPv6", "MB/s", true, 0.98, false },
	/* Issue 13: an app of a host-name rule; carwall and no filter only. */
	{ "resolve_connect_v4", "resolve+connect, IPv4", "ns/op", false, 0, true },
	{ "resolve_connect_v6", "resolve+connect, IPv6", "ns/op", false, 0, true },
	/* CPU-time figures: ns of the client thread's CPU per operation, MB per CPU-second. */
};
#define N_DP ARRAY_SIZE(dp_tests)

/* In-kernel targets, net of bpf_stats' own cost. */
#define TARGET_SOCK_ADDR_NS 150.0   /* each connect/sendmsg program, per run */
#define TARGET_SOCK_CREATE_NS 50.0  /* sock_create, per run */
#define TARGET_TCP_CONNECTION_NS 400.0 /* every program together, per new TCP connection */
#define TARGET_RELOAD_10K_MS 10.0
#define TARGET_RELOAD_100K_MS 100.0
#define TARGET_RSS_KIB 4096.0
#define TARGET_IDLE_WAKEUPS 0.0
#define TARGET_EVENTS_PER_S 100000.0

struct kv {
	char key[64];
	char val[1024];
};

/* One program's counters over one in-kernel run (one flow, one round). */
struct kernel_prog {
	size_t variant; /* enum kvariant */
	size_t test;	/* index in ktests */
	char hook[64], name[64];
	double runs, time_ns;
};

/* Reload phases as the agent reports them in timing_us, in this order. */
static const char *const reload_phases[] = { "read",  "verify", "parse", "compile",
					    "apply", "total",  "cpu" };
enum { PHASE_PARSE = 2, PHASE_COMPILE = 3, PHASE_APPLY = 4, PHASE_TOTAL = 5, PHASE_CPU = 6 };
#define N_PHASES ARRAY_SIZE(reload_phases)

struct reload_size {
	long rules;
	size_t n, n_check;
	double check_us[MAX_RELOADS]; /* `carwall policy check` of the same file */
	double rt_us[MAX_RELOADS];
	double phase_us[N_PHASES][MAX_RELOADS];
	size_t n_phase[N_PHASES];
	double yaml_floor_us;	/* libyaml alone over the same policy (NAN: not measured) */
	double verify_floor_us; /* one Ed25519 check of its bytes (NAN: not measured) */
};

/* The floor of a reload at this size: libyaml's parse and one signature check (NAN: either
 * not measured). */
static double reload_floor_us(const struct reload_size *z)
{
	return z->yaml_floor_us + z->verify_floor_us;
}

struct report {
	double dp[N_DP][N_VARIANTS][MAX_ROUNDS];  /* on CPU time */
	double dpw[N_DP][N_VARIANTS][MAX_ROUNDS]; /* on the wall clock */
	bool dp_has[N_DP][N_VARIANTS][MAX_ROUNDS];
	int max_round;
	struct kv meta[MAX_META], status[MAX_META], agent[MAX_META], events[MAX_META],
		check[MAX_META];
	size_t n_meta, n_status, n_agent, n_events, n_check;
	struct kernel_prog kernel[MAX_KERNEL];
	size_t n_kernel;
	double kops[N_KVARIANTS][N_KTESTS]; /* the client's operations in those runs */
	struct reload_size reload[8];
	size_t n_reload;
};

static void kv_add(struct kv *arr, size_t *n, const char *key, const char *val)
{
	if (*n >= MAX_META)
		return;
	snprintf(arr[*n].key, sizeof(arr[*n].key), "%s", key);
	snprintf(arr[*n].val, sizeof(arr[*n].val), "%s", val);
	(*n)++;
}

static const char *kv_get(const struct kv *arr, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(arr[i].key, key))
			return arr[i].val;
	return NULL;
}

/* A number from a kv list; NAN when absent or not a number. */
static double kv_num(const struct kv *arr, size_t n, const char *key)
{
	const char *s = kv_get(arr, n, key);
	char *end;
	double v;

	if (!s || !*s)
		return NAN;
	v = strtod(s, &end);
	return *end ? NAN : v;
}

static bool is_int(double v)
{
	return v > -9e15 && v < 9e15 && v == (double)(int64_t)v;
}

static double absd(double v)
{
	return v < 0 ? -v : v;
}

static double num(const char *s)
{
	char *end;
	double v;

	if (!s || !*s || !strcmp(s, "-"))
		return NAN;
	v = strtod(s, &end);
	return *end ? NAN : v;
}

static int report_parse(struct report *rp, FILE *f)
{
	char line[REPORT_LINE];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		char *field[MAX_FIELDS], *save = NULL;
		size_t nf = 0;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		/* Tab-separated; the last field of meta/status lines may hold spaces. */
		for (char *t = strtok_r(line, "\t", &save); t && nf < MAX_FIELDS;
		     t = strtok_r(NULL, "\t", &save))
			field[nf++] = t;
		if (nf == 0)
			continue;
		if (!strcmp(field[0], "dp") && nf == 6) {
			size_t t, v;
			long round = strtol(field[3], NULL, 10);

			for (t = 0; t < N_DP && strcmp(dp_tests[t].name, field[1]); t++)
				;
			for (v = 0; v < N_VARIANTS && strcmp(variant_names[v], field[2]); v++)
				;
			if (t == N_DP || v == N_VARIANTS || round < 1 || round > MAX_ROUNDS)
				goto bad;
			rp->dp[t][v][round - 1] = num(field[4]);
			rp->dpw[t][v][round - 1] = num(field[5]);
			rp->dp_has[t][v][round - 1] = !isnan(rp->dp[t][v][round - 1]) &&
						      !isnan(rp->dpw[t][v][round - 1]);
			if (round > rp->max_round)
				rp->max_round = (int)round;
		} else if ((!strcmp(field[0], "kernel") && nf == 7) ||
			   (!strcmp(field[0], "kops") && nf == 4)) {
			size_t v, t;

			for (v = 0; v < N_KVARIANTS && strcmp(kvariant_names[v], field[1]); v++)
				;
			for (t = 0; t < N_KTESTS && strcmp(ktests[t], field[2]); t++)
				;
			if (v == N_KVARIANTS || t == N_KTESTS)
				goto bad;
			if (!strcmp(field[0], "kops")) {
				rp->kops[v][t] += num(field[3]);
				continue;
			}
			if (rp->n_kernel >= MAX_KERNEL)
				goto bad;
			struct kernel_prog *k = &rp->kernel[rp->n_kernel++];

			k->variant = v;
			k->test = t;
			snprintf(k->hook, sizeof(k->hook), "%s", field[3]);
			snprintf(k->name, sizeof(k->name), "%s", field[4]);
			k->runs = num(field[5]);
			k->time_ns = num(field[6]);
			if (isnan(k->runs) || isnan(k->time_ns))
				goto bad;
		} else if (!strcmp(field[0], "reload") && nf == 3 + N_PHASES) {
			long rules = strtol(field[1], NULL, 10);
			struct reload_size *s = NULL;

			for (size_t i = 0; i < rp->n_reload; i++)
				if (rp->reload[i].rules == rules)
					s = &rp->reload[i];
			if (!s) {
				if (rp->n_reload >= ARRAY_SIZE(rp->reload))
					goto bad;
				s = &rp->reload[rp->n_reload++];
				s->rules = rules;
				s->yaml_floor_us = s->verify_floor_us = NAN;
			}
			if (s->n >= MAX_RELOADS)
				continue;
			s->rt_us[s->n++] = num(field[2]);
			for (size_t p = 0; p < N_PHASES; p++) {
				double v = num(field[3 + p]);

				if (!isnan(v))
					s->phase_us[p][s->n_phase[p]++] = v;
			}
		} else if (!strcmp(field[0], "reload_floor") && nf == 4) {
			long rules = strtol(field[1], NULL, 10);

			for (size_t i = 0; i < rp->n_reload; i++)
				if (rp->reload[i].rules == rules) {
					rp->reload[i].yaml_floor_us = num(field[2]);
					rp->reload[i].verify_floor_us = num(field[3]);
				}
		} else if (!strcmp(field[0], "reload_check") && nf == 3) {
			long rules = strtol(field[1], NULL, 10);
			struct reload_size *z = NULL;

			for (size_t i = 0; i < rp->n_reload; i++)
				if (rp->reload[i].rules == rules)
					z = &rp->reload[i];
			if (z && z->n_check < MAX_RELOADS)
				z->check_us[z->n_check++] = num(field[2]);
		} else if (nf == 3 && !strcmp(field[0], "meta")) {
			kv_add(rp->meta, &rp->n_meta, field[1], field[2]);
		} else if (nf == 3 && !strcmp(field[0], "status")) {
			kv_add(rp->status, &rp->n_status, field[1], field[2]);
		} else if (nf == 3 && !strcmp(field[0], "agent")) {
			kv_add(rp->agent, &rp->n_agent, field[1], field[2]);
		} else if (nf == 3 && !strcmp(field[0], "events")) {
			kv_add(rp->events, &rp->n_events, field[1], field[2]);
		} else if (nf == 3 && !strcmp(field[0], "check")) {
			kv_add(rp->check, &rp->n_check, field[1], field[2]);
		} else {
			goto bad;
		}
	}
	return 0;
bad:
	fprintf(stderr, "bench: report: line %u is not understood\n", lineno);
	return -EINVAL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	size_t n;
	double median, min, max;
};

static struct stats stats_of(const double *v, size_t n)
{
	struct stats s = { .n = n, .median = NAN, .min = NAN, .max = NAN };
	double sorted[MAX_ROUNDS > MAX_RELOADS ? MAX_ROUNDS : MAX_RELOADS];

	if (!n)
		return s;
	memcpy(sorted, v, n * sizeof(*v));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	s.min = sorted[0];
	s.max = sorted[n - 1];
	s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	return s;
}

/*
 * Samples of one variant, its per-round ratios to a base variant (no filter, or the floor) and
 * per-round differences; on CPU time, or on the wall clock.
 */
static struct stats dp_stats_base(const struct report *rp, size_t t, size_t v, size_t base,
				  bool wall, struct stats *ret_ratio, struct stats *ret_delta)
{
	double vals[MAX_ROUNDS], ratios[MAX_ROUNDS], deltas[MAX_ROUNDS];
	const double(*dp)[N_VARIANTS][MAX_ROUNDS] = wall ? rp->dpw : rp->dp;
	size_t n = 0, nr = 0;

	for (int r = 0; r < rp->max_round; r++) {
		if (!rp->dp_has[t][v][r])
			continue;
		vals[n++] = dp[t][v][r];
		if (rp->dp_has[t][base][r] && dp[t][base][r] > 0) {
			ratios[nr] = dp[t][v][r] / dp[t][base][r];
			deltas[nr++] = dp[t][v][r] - dp[t][base][r];
		}
	}
	if (ret_ratio)
		*ret_ratio = stats_of(ratios, nr);
	if (ret_delta)
		*ret_delta = stats_of(deltas, nr);
	return stats_of(vals, n);
}

static struct stats dp_stats_of(const struct report *rp, size_t t, size_t v, bool wall,
				struct stats *ret_ratio, struct stats *ret_delta)
{
	return dp_stats_base(rp, t, v, V_NONE, wall, ret_ratio, ret_delta);
}

/* The figures of a test: on CPU time, or on the wall clock for a `wall` test. */
static struct stats dp_stats(const struct report *rp, size_t t, size_t v, struct stats *ret_ratio,
			     struct stats *ret_delta)
{
	return dp_stats_of(rp, t, v, dp_tests[t].wall, ret_ratio, ret_delta);
}

/* ---- in-kernel costs ---- */

/* Runs, run time and run time net of bpf_stats' own cost, of some programs over some flows. */
struct kcost {
	double runs, ns, net_ns;
};

/* bpf_stats' own cost per run of a hook: its empty program's run time per run (NAN: none). */
static double kernel_empty_ns(const struct report *rp, const char *hook)
{
	double runs = 0, ns = 0;

	for (size_t i = 0; i < rp->n_kernel; i++) {
		const struct kernel_prog *k = &rp->kernel[i];

		if (k->variant == K_EMPTY && !strcmp(k->hook, hook)) {
			runs += k->runs;
			ns += k->time_ns;
		}
	}
	return runs > 0 ? ns / runs : NAN;
}

static bool is_sock_addr_hook(const char *hook)
{
	return !strncmp(hook, "connect", 7) || !strncmp(hook, "sendmsg", 7);
}

#define KTEST_ALL ((size_t)-1)
#define KHOOK_SOCK_ADDR "(connect and sendmsg)"

/*
 * The programs of variant v with the given hook (NULL: all; KHOOK_SOCK_ADDR: the connect and
 * sendmsg ones) over flow t (KTEST_ALL: all). net_ns is NAN when a program ran whose hook has no
 * measured empty program.
 */
static struct kcost kernel_cost(const struct report *rp, size_t v, size_t t, const char *hook)
{
	struct kcost c = {};

	for (size_t i = 0; i < rp->n_kernel; i++) {
		const struct kernel_prog *k = &rp->kernel[i];

		if (k->variant != v || (t != KTEST_ALL && k->test != t) || k->runs <= 0)
			continue;
		if (hook && (!strcmp(hook, KHOOK_SOCK_ADDR) ? !is_sock_addr_hook(k->hook)
							     : strcmp(hook, k->hook)))
			continue;
		c.runs += k->runs;
		c.ns += k->time_ns;
		c.net_ns += k->time_ns - k->runs * kernel_empty_ns(rp, k->hook);
	}
	return c;
}

static double per(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

/* The hooks of a variant's programs, in the order they were first read; returns how many. */
static size_t kernel_hooks(const struct report *rp, size_t v, const char **ret, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < rp->n_kernel; i++) {
		const struct kernel_prog *k = &rp->kernel[i];
		bool seen = false;

		if (k->variant != v)
			continue;
		for (size_t j = 0; j < n; j++)
			seen = seen || !strcmp(ret[j], k->hook);
		if (!seen && n < max)
			ret[n++] = k->hook;
	}
	return n;
}

/* The name of a variant's program on a hook. */
static const char *kernel_prog_name(const struct report *rp, size_t v, const char *hook)
{
	for (size_t i = 0; i < rp->n_kernel; i++)
		if (rp->kernel[i].variant == v && !strcmp(rp->kernel[i].hook, hook))
			return rp->kernel[i].name;
	return "-";
}

/* Net ns per run of one hook's program of variant v, over every flow. */
static double kernel_net_per_run(const struct report *rp, size_t v, const char *hook)
{
	struct kcost c = kernel_cost(rp, v, KTEST_ALL, hook);

	return per(c.net_ns, c.runs);
}

/* Every program of variant v together, net ns per operation of flow t. */
static double kernel_net_per_op(const struct report *rp, size_t v, size_t t)
{
	return per(kernel_cost(rp, v, t, NULL).net_ns, rp->kops[v][t]);
}

static size_t ktest_index(const char *name)
{
	for (size_t t = 0; t < N_KTESTS; t++)
		if (!strcmp(ktests[t], name))
			return t;
	return KTEST_ALL;
}

/* A tiny streaming JSON writer: commas and indentation by nesting level. */
struct jw {
	FILE *f;
	int depth;
	bool first[32];
};

static void jw_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void jw_item(struct jw *w, const char *key)
{
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	fprintf(w->f, "\n%*s", 2 * w->depth + 2, "");
	if (key) {
		jw_string(w->f, key);
		fputs(": ", w->f);
	}
}

static void jw_open(struct jw *w, const char *key, char c)
{
	if (w->depth >= 0)
		jw_item(w, key);
	fputc(c, w->f);
	w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	if (!w->first[w->depth])
		fprintf(w->f, "\n%*s", 2 * w->depth, "");
	w->depth--;
	fputc(c, w->f);
}

static void jw_str(struct jw *w, const char *key, const char *val)
{
	jw_item(w, key);
	if (val)
		jw_string(w->f, val);
	else
		fputs("null", w->f);
}

/* A number with `prec` decimals; null for NaN. */
static void jw_num(struct jw *w, const char *key, double v, int prec)
{
	jw_item(w, key);
	if (isnan(v) || isinf(v))
		fputs("null", w->f);
	else
		fprintf(w->f, "%.*f", prec, v);
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_item(w, key);
	fputs(v ? "true" : "false", w->f);
}

static void jw_stats(struct jw *w, const char *key, struct stats s, int prec)
{
	jw_open(w, key, '{');
	jw_num(w, "median", s.median, prec);
	jw_num(w, "min", s.min, prec);
	jw_num(w, "max", s.max, prec);
	jw_num(w, "n", (double)s.n, 0);
	jw_close(w, '}');
}

/* What a target is about: the closing note says once per kind what would close it. */
enum target_kind {
	TK_CONNECT,
	TK_SENDTO,
	TK_UDP_CONNECT,
	TK_BULK,
	TK_DECISION,
	TK_CONNECTION,
	TK_RELOAD,
	TK_RSS,
	TK_IDLE,
	TK_EVENTS,
};

/* One target: what was measured against what was wanted. */
struct target {
	enum target_kind kind;
	char name[96];
	char measured[96];
	char wanted[64];
	char missed_by[96]; /* "" when met, or when not measured */
	const char *status; /* "met", "missed", or "not measured: why" */
	char to_close[3584]; /* what the numbers point at, then what would help */
};

#define MAX_TARGETS 32

static struct target *target_new(struct target *t, size_t *n, enum target_kind kind,
				 const char *name)
{
	struct target *x = &t[(*n)++];

	memset(x, 0, sizeof(*x));
	x->kind = kind;
	snprintf(x->name, sizeof(x->name), "%s", name);
	return x;
}

/* How each target could be closed, after what this run measured (see report_explain()). */
static const char *const close_connect =
	"on a new socket connect4/6 creates the socket's local storage (bpf_sk_storage_get with "
	"F_CREATE), most of its run time there against the connect4 run time above on sockets "
	"that have it; that storage carries the mark that tells a connection carwall judged at "
	"connect() from one the app accepted (issue 11: an outgoing connection must not pass "
	"for an accepted one) and the socket's verdict cache. Creating it later only moved the "
	"cost to the first egress packet; a carrier of the mark that needs no allocation is "
	"what is left to find";
static const char *const close_sendto =
	"a datagram to its socket's last allowed destination is counted from the socket's "
	"cached verdict without a lookup; what is left is the cgroup-BPF dispatch of "
	"sendmsg4/6 and of the per-packet cgroup_skb egress program (the floor attaches none), "
	"which reads the socket's storage once";
static const char *const close_bulk =
	"carwall judges connect() once per connection and its egress program reads the "
	"socket's storage once per packet; a bulk gap larger than the run-to-run spread "
	"(ratio_min/ratio_max) points at that per-packet path, a smaller one is noise on a "
	"busy machine: rerun";
static const char *const close_decision =
	"a decision finds the app (cgroup id, its ancestors), the destination (one hash lookup "
	"for host rules, the LPM tries for prefixes only) and the ports, and writes the "
	"socket's verdict cache; a datagram that repeats its socket's last allowed flow skips "
	"all of it";
/* Reload, by the phase that takes the most. */
static const char *const close_reload_parse =
	"parsing (with the signature check) is the largest part, and most of it is libyaml's "
	"own (its floor above: it allocates and copies every token and event, some ten per "
	"rule); below that floor only another input does: shipping the policy compiled (a "
	"signed binary bundle the head unit checks and maps instead of parsing YAML), or "
	"parsing only the apps whose text changed";
static const char *const close_reload_compile =
	"compiling is the largest part: merging the port sets of overlapping prefixes and "
	"deduplicating them; sorting prefixes once and keeping the port sets of the policy in "
	"force to reuse would cut it";
static const char *const close_reload_apply =
	"writing the maps is the largest part: only what changed is written, in batches, but a "
	"reload that comes within a grace period of the last one waits for it (two "
	"generations); the per-rule counters are zeroed at every reload";

static const char *const close_rss =
	"above the floor, the agent keeps the parsed policy in force (to register app cgroups "
	"again and to answer stats and explain), what it last wrote into the generation in force "
	"and how the other one differs (to write only what changed) and the bundle's bytes (to "
	"verify it again at every reload); "
	"below the floor, a smaller ring buffer, or libcrypto's pages given back after a reload, "
	"would lower it";
static const char *const close_idle =
	"the agent should sleep in epoll_wait with no timeout when idle; a periodic timer or a "
	"polled ring buffer shows up as wake-ups";
static const char *const close_events =
	"read the ring buffer in larger batches per wake-up (ring_buffer__consume after "
	"epoll), keep formatting and logging off that path, and aggregate identical refused "
	"flows in the kernel before they reach the agent";

static void target_ratio(struct target *t, double ratio, double want, bool at_least)
{
	snprintf(t->measured, sizeof(t->measured), "%.3fx", ratio);
	snprintf(t->wanted, sizeof(t->wanted), "%s %.2fx", at_least ? ">=" : "<=", want);
	if (isnan(ratio)) {
		t->status = "not measured";
		snprintf(t->measured, sizeof(t->measured), "-");
		return;
	}
	if (at_least ? ratio >= want : ratio <= want) {
		t->status = "met";
		return;
	}
	t->status = "missed";
	snprintf(t->missed_by, sizeof(t->missed_by), "%.3fx (%.1f%% %s)",
		 at_least ? want - ratio : ratio - want,
		 100.0 * absd(ratio - want) / want, at_least ? "too slow" : "over");
}

static void target_max(struct target *t, double v, double want, const char *unit, int prec)
{
	snprintf(t->wanted, sizeof(t->wanted), "<= %.*f %s", prec, want, unit);
	if (isnan(v)) {
		t->status = "not measured";
		snprintf(t->measured, sizeof(t->measured), "-");
		return;
	}
	snprintf(t->measured, sizeof(t->measured), "%.*f %s", prec, v, unit);
	if (v <= want) {
		t->status = "met";
		return;
	}
	t->status = "missed";
	if (want > 0)
		snprintf(t->missed_by, sizeof(t->missed_by), "%.*f %s (%.0f%% over)", prec,
			 v - want, unit, 100.0 * (v - want) / want);
	else
		snprintf(t->missed_by, sizeof(t->missed_by), "%.*f %s", prec, v - want, unit);
}

static void target_min(struct target *t, double v, double want, const char *unit)
{
	snprintf(t->wanted, sizeof(t->wanted), ">= %.0f %s", want, unit);
	if (isnan(v)) {
		t->status = "not measured";
		snprintf(t->measured, sizeof(t->measured), "-");
		return;
	}
	snprintf(t->measured, sizeof(t->measured), "%.0f %s", v, unit);
	if (v >= want) {
		t->status = "met";
		return;
	}
	t->status = "missed";
	snprintf(t->missed_by, sizeof(t->missed_by), "%.0f %s (%.0f%% short)", want - v, unit,
		 100.0 * (want - v) / want);
}

/* The floors' figures next to a run-time target's measure. */
static void target_floor(struct target *t, double floor, double mark)
{
	size_t len = strlen(t->measured);

	if (!isnan(floor) && !isnan(mark))
		snprintf(t->measured + len, sizeof(t->measured) - len,
			 " (floor %.0f ns, " MARK_LABEL " %.0f ns)", floor, mark);
	else if (!isnan(floor))
		snprintf(t->measured + len, sizeof(t->measured) - len, " (floor %.0f ns)", floor);
}

/*
 * Appends to buf where the floor stands against a run-time target: met by the floor, or past it,
 * and then no design doing one LPM-trie lookup per decision meets the target on this machine.
 */
static void floor_note(char *buf, size_t size, const char *what, double floor, double want)
{
	size_t len = strlen(buf);

	if (isnan(floor) || len >= size)
		return;
	snprintf(buf + len, size - len,
		 floor > want ? "The floor's %s (one LPM-trie lookup, net) runs %.0f ns here, past "
				"the %.0f ns target: no design doing one LPM-trie lookup per "
				"decision meets it on this machine (most rules are host addresses, "
				"which a hash answers faster than a trie). "
			      : "The floor's %s (one LPM-trie lookup, net) runs %.0f ns here, within "
				"the %.0f ns target. ",
		 what, floor, want);
}

/* Appends to buf (a NUL-terminated string), truncating at its size. */
static void buf_append(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void buf_append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* Net ns per operation of flow t of variant v's program on one hook; its runs per operation. */
static double kernel_hook_per_op(const struct report *rp, size_t v, size_t t, const char *hook,
				 double *ret_runs)
{
	struct kcost c = kernel_cost(rp, v, t, hook);

	if (ret_runs)
		*ret_runs = per(c.runs, rp->kops[v][t]);
	return c.runs > 0 ? per(c.net_ns, rp->kops[v][t]) : NAN;
}

/*
 * Appends what floor+mark's two additions cost per new TCP connection (flow kt): its connect
 * against the floor's (the difference: creating the socket's storage), and its egress program.
 */
static void mark_connection_costs(char *buf, size_t size, const struct report *rp, size_t kt,
				  bool v6)
{
	const char *hook = v6 ? "connect6" : "connect4";
	double mc = kernel_hook_per_op(rp, K_MARK, kt, hook, NULL);
	double fc = kernel_hook_per_op(rp, K_FLOOR, kt, hook, NULL);
	double runs, eg = kernel_hook_per_op(rp, K_MARK, kt, "skb_egress", &runs);

	buf_append(buf, size,
		   "In the kernel, per new TCP connection, its %s runs %.0f ns net against the "
		   "floor's %.0f ns (the mark: creating the socket's storage, %.0f ns) and its "
		   "egress program %.0f ns (%.1f packets: the backstop). ",
		   hook, mc, fc, mc - fc, eg, runs);
}

/*
 * Appends where floor+mark stands against datapath target t: the floor plus the socket's mark
 * and the per-packet check of it, the least a design with carwall's guarantees does; past the
 * target, no such design meets it on this machine. Then what the two additions cost.
 */
static void mark_note(char *buf, size_t size, const struct report *rp, size_t t)
{
	const struct dp_test *d = &dp_tests[t];
	bool v6 = d->name[strlen(d->name) - 1] == '6';
	size_t kt = ktest_index(d->name);
	struct stats ratio;

	dp_stats(rp, t, V_MARK, &ratio, NULL);
	if (isnan(ratio.median))
		return;
	buf_append(buf, size,
		   MARK_LABEL " (the floor, plus the socket's mark written at an allowed connect() "
			      "and checked on every outgoing packet) is at %.3fx%s. ",
		   ratio.median,
		   (d->throughput ? ratio.median < d->target : ratio.median > d->target)
			   ? ", itself past the target: the floor of any design with the mark and "
			     "the per-packet backstop (a connection the app made never passes for "
			     "an accepted one, a reload revokes what it no longer allows) on this "
			     "machine"
			   : ", within the target");
	if (!strncmp(d->name, "tcp_connect", 11)) {
		mark_connection_costs(buf, size, rp, kt, v6);
	} else if (!strncmp(d->name, "udp_sendto", 10)) {
		const char *hook = v6 ? "sendmsg6" : "sendmsg4";

		buf_append(buf, size,
			   "In the kernel, per datagram, its %s runs %.0f ns net (the floor's "
			   "%.0f ns) and its egress program %.0f ns (the backstop, which the floor "
			   "lacks). ",
			   hook, kernel_hook_per_op(rp, K_MARK, kt, hook, NULL),
			   kernel_hook_per_op(rp, K_FLOOR, kt, hook, NULL),
			   kernel_hook_per_op(rp, K_MARK, kt, "skb_egress", NULL));
	} else if (!strncmp(d->name, "udp_connect", 11)) {
		const char *hook = v6 ? "connect6" : "connect4";

		buf_append(buf, size,
			   "In the kernel, per UDP connect(), its %s runs %.0f ns net against the "
			   "floor's %.0f ns (the mark written into the socket's storage, created "
			   "at its first connect()). ",
			   hook, kernel_hook_per_op(rp, K_MARK, kt, hook, NULL),
			   kernel_hook_per_op(rp, K_FLOOR, kt, hook, NULL));
	} else {
		buf_append(buf, size,
			   "In the kernel, its egress program runs %.0f ns net per packet (over "
			   "the in-kernel flows): the backstop, on every packet of the transfer. ",
			   kernel_net_per_run(rp, K_MARK, "skb_egress"));
	}
}

static void print_rule(void)
{
	printf("%.*s\n", 100, "------------------------------------------------------------------"
			      "------------------------------------------------------------------");
}

/* A variant's name in the tables. */
static const char *kvariant_label(size_t v)
{
	return v == K_EMPTY ? "empty program" : v == K_MARK ? MARK_LABEL : kvariant_names[v];
}

/* The in-kernel part of the table: per program, per operation, carwall next to the floors. */
static void print_kernel(const struct report *rp)
{
	static const size_t floors[] = { K_FLOOR, K_MARK };
	const char *hooks[16];
	size_t nh = kernel_hooks(rp, K_CARWALL, hooks, ARRAY_SIZE(hooks));
	char label[32];

	printf("in-kernel ns per run, net of bpf_stats' own cost (raw)\n%-19s", "");
	for (size_t h = 0; h < nh; h++)
		printf("%12s", hooks[h]);
	for (size_t v = 0; v < N_KVARIANTS; v++) {
		printf("\n%-19s", kvariant_label(v));
		for (size_t h = 0; h < nh; h++) {
			struct kcost c = kernel_cost(rp, v, KTEST_ALL, hooks[h]);
			char cell[48];

			if (!(c.runs > 0))
				snprintf(cell, sizeof(cell), "-");
			else if (v == K_EMPTY)
				snprintf(cell, sizeof(cell), "%.0f", c.ns / c.runs);
			else
				snprintf(cell, sizeof(cell), "%.0f (%.0f)", c.net_ns / c.runs,
					 c.ns / c.runs);
			printf("%12s", cell);
		}
	}
	for (size_t f = 0; f < ARRAY_SIZE(floors); f++) {
		snprintf(label, sizeof(label), "carwall/%s", kvariant_label(floors[f]));
		printf("\n%-19s", label);
		for (size_t h = 0; h < nh; h++) {
			double r = per(kernel_net_per_run(rp, K_CARWALL, hooks[h]),
				       kernel_net_per_run(rp, floors[f], hooks[h]));
			char cell[48] = "-";

			if (!isnan(r))
				snprintf(cell, sizeof(cell), "%.2fx", r);
			printf("%12s", cell);
		}
	}
	printf("\nevery program per operation, net ns\n%-19s", "");
	for (size_t t = 0; t < N_KTESTS; t++)
		printf("%15s", ktests[t]);
	for (size_t v = 0; v < K_EMPTY; v++) {
		printf("\n%-19s", kvariant_label(v));
		for (size_t t = 0; t < N_KTESTS; t++)
			printf("%15.0f", kernel_net_per_op(rp, v, t));
	}
	for (size_t f = 0; f < ARRAY_SIZE(floors); f++) {
		snprintf(label, sizeof(label), "carwall/%s", kvariant_label(floors[f]));
		printf("\n%-19s", label);
		for (size_t t = 0; t < N_KTESTS; t++) {
			char cell[48];

			snprintf(cell, sizeof(cell), "%.2fx",
				 per(kernel_net_per_op(rp, K_CARWALL, t),
				     kernel_net_per_op(rp, floors[f], t)));
			printf("%15s", cell);
		}
	}
	printf("\n");
}

static int cmd_report(int argc, char **argv)
{
	static struct report rp;
	static struct target targets[MAX_TARGETS];
	size_t n_targets = 0;
	_cleanup_fclose_ FILE *in = NULL, *out = NULL;
	struct jw w = { .depth = -1 };
	const char *s;
	int r;

	if (argc != 3)
		usage_die("report RAW.tsv OUT.json");
	in = fopen(argv[1], "re");
	if (!in)
		die(argv[1], errno);
	r = report_parse(&rp, in);
	if (r < 0)
		return EXIT_FAILURE;
	out = fopen(argv[2], "we");
	if (!out)
		die(argv[2], errno);
	w.f = out;

	/* ---- the JSON ---- */
	jw_open(&w, NULL, '{');
	jw_str(&w, "schema", "carwall-bench/3");
	jw_open(&w, "run", '{');
	for (size_t i = 0; i < rp.n_meta; i++) {
		double v = num(rp.meta[i].val);

		/* Numbers stay numbers; versions and names stay strings. */
		if (!isnan(v) && strcmp(rp.meta[i].key, "kernel") && strcmp(rp.meta[i].key, "carwall"))
			jw_num(&w, rp.meta[i].key, v, is_int(v) ? 0 : 3);
		else
			jw_str(&w, rp.meta[i].key, rp.meta[i].val);
	}
	jw_close(&w, '}');

	jw_open(&w, "filter_check", '{');
	for (size_t i = 0; i < rp.n_check; i++)
		jw_str(&w, rp.check[i].key, rp.check[i].val);
	jw_close(&w, '}');

	jw_open(&w, "datapath", '{');
	for (size_t t = 0; t < N_DP; t++) {
		const struct dp_test *d = &dp_tests[t];

		jw_open(&w, d->name, '{');
		jw_str(&w, "what", d->label);
		jw_str(&w, "unit", d->unit);
		jw_str(&w, "measured_on",
		       d->wall ? "the wall clock: elapsed time per operation (the resolver's answer "
				 "is received and parsed in dnsmasq's context, not on the client's "
				 "CPU time); wall_clock: the same"
		       : d->throughput ? "the sending thread's CPU time: MB sent per CPU-second "
					 "(wall_clock: MB/s)"
				       : "the client thread's CPU time per operation (wall_clock: "
					 "elapsed time per operation)");
		jw_str(&w, "ratio_meaning",
		       d->throughput ? "throughput / no filter's (>= 1 is as fast)"
				     : "time per operation / no filter's (<= 1 is as fast)");
		for (size_t v = 0; v < N_VARIANTS; v++) {
			struct stats ratio, delta, st = dp_stats(&rp, t, v, &ratio, &delta);
			char why[64];

			snprintf(why, sizeof(why), "%s_datapath", variant_names[v]);
			jw_open(&w, variant_names[v], '{');
			if ((s = kv_get(rp.status, rp.n_status, why)))
				jw_str(&w, "status", s);
			jw_num(&w, "median", st.median, 1);
			jw_num(&w, "min", st.min, 1);
			jw_num(&w, "max", st.max, 1);
			jw_num(&w, "n", (double)st.n, 0);
			if (v != V_NONE) {
				jw_num(&w, "ratio", ratio.median, 4);
				jw_num(&w, "ratio_min", ratio.min, 4);
				jw_num(&w, "ratio_max", ratio.max, 4);
				/* What the filter adds per operation (or takes from throughput). */
				jw_num(&w, d->throughput ? "delta_mb_s" : "delta_ns", delta.median, 1);
			}
			if (v == V_CARWALL) {
				struct stats to_floor, to_mark;

				dp_stats_base(&rp, t, v, V_FLOOR, false, &to_floor, NULL);
				jw_num(&w, "ratio_to_floor", to_floor.median, 4);
				dp_stats_base(&rp, t, v, V_MARK, false, &to_mark, NULL);
				jw_num(&w, "ratio_to_mark", to_mark.median, 4);
			}
			/* The same on the wall clock, which other load on the machine disturbs. */
			struct stats wratio, wst = dp_stats_of(&rp, t, v, true, &wratio, NULL);
			jw_open(&w, "wall_clock", '{');
			jw_num(&w, "median", wst.median, 1);
			jw_num(&w, "min", wst.min, 1);
			jw_num(&w, "max", wst.max, 1);
			if (v != V_NONE)
				jw_num(&w, "ratio", wratio.median, 4);
			jw_close(&w, '}');
			if (v == V_CARWALL && d->target > 0) {
				jw_num(&w, "target_ratio", d->target, 2);
				jw_bool(&w, "target_met",
					!isnan(ratio.median) && (d->throughput ? ratio.median >= d->target
									       : ratio.median <= d->target));
			}
			jw_close(&w, '}');
		}
		jw_close(&w, '}');
	}
	jw_close(&w, '}');

	/* In-kernel cost, from the BPF run-time statistics, raw and net of their own cost. */
	jw_open(&w, "in_kernel", '{');
	if ((s = kv_get(rp.status, rp.n_status, "in_kernel")))
		jw_str(&w, "status", s);
	jw_str(&w, "method",
	       "kernel.bpf_stats_enabled=1 only while the in-kernel flows run, in rounds, under "
	       "carwall, the floor, floor+mark (mark) and the empty programs (one per hook, "
	       "returning allow); "
	       "ns_per_run: run_time_ns / run_cnt of each program, which includes bpf_stats' own "
	       "clock reads; net_ns_per_run: less the empty program's ns_per_run of the same hook; "
	       "per_op: every program of the variant together per operation of the flow "
	       "(the client's operations, no warm-up); the net run time of a program doing "
	       "next to nothing is within the noise of the subtraction (a few ns either way, "
	       "more under load); udp_connect_*_delta_ns: what each variant "
	       "adds to a UDP connect() in the datapath rounds, without statistics, as a "
	       "cross-check");
	jw_num(&w, "rounds", kv_num(rp.meta, rp.n_meta, "kernel_rounds"), 0);
	for (size_t v = 0; v < N_KVARIANTS; v++) {
		const char *hooks[16];
		size_t nh = kernel_hooks(&rp, v, hooks, ARRAY_SIZE(hooks));

		jw_open(&w, kvariant_names[v], '{');
		jw_open(&w, "programs", '[');
		for (size_t h = 0; h < nh; h++) {
			struct kcost c = kernel_cost(&rp, v, KTEST_ALL, hooks[h]);

			jw_open(&w, NULL, '{');
			jw_str(&w, "hook", hooks[h]);
			jw_str(&w, "program", kernel_prog_name(&rp, v, hooks[h]));
			jw_num(&w, "runs", c.runs, 0);
			jw_num(&w, "ns_per_run", per(c.ns, c.runs), 1);
			if (v != K_EMPTY)
				jw_num(&w, "net_ns_per_run", per(c.net_ns, c.runs), 1);
			jw_close(&w, '}');
		}
		jw_close(&w, ']');
		if (v != K_EMPTY) {
			struct kcost d = kernel_cost(&rp, v, KTEST_ALL, KHOOK_SOCK_ADDR);
			double worst = NAN;

			for (size_t h = 0; h < nh; h++) {
				double x = kernel_net_per_run(&rp, v, hooks[h]);

				if (isnan(worst) || x > worst)
					worst = x;
			}
			jw_num(&w, "decision_ns", per(d.ns, d.runs), 1);
			jw_num(&w, "decision_net_ns", per(d.net_ns, d.runs), 1);
			jw_num(&w, "worst_program_net_ns", worst, 1);
			jw_open(&w, "per_op", '{');
			for (size_t t = 0; t < N_KTESTS; t++) {
				struct kcost c = kernel_cost(&rp, v, t, NULL);

				jw_open(&w, ktests[t], '{');
				jw_num(&w, "ops", rp.kops[v][t], 0);
				jw_num(&w, "ns", per(c.ns, rp.kops[v][t]), 1);
				jw_num(&w, "net_ns", per(c.net_ns, rp.kops[v][t]), 1);
				jw_close(&w, '}');
			}
			jw_close(&w, '}');
		}
		jw_close(&w, '}');
	}
	/* carwall against each floor, net of the statistics' cost: per hook both have, per op. */
	static const size_t kfloors[] = { K_FLOOR, K_MARK };

	for (size_t i = 0; i < ARRAY_SIZE(kfloors); i++) {
		const char *hooks[16];
		size_t f = kfloors[i], nh = kernel_hooks(&rp, K_CARWALL, hooks, ARRAY_SIZE(hooks));
		struct kcost dc = kernel_cost(&rp, K_CARWALL, KTEST_ALL, KHOOK_SOCK_ADDR),
			     df = kernel_cost(&rp, f, KTEST_ALL, KHOOK_SOCK_ADDR);
		char key[64];

		snprintf(key, sizeof(key), "carwall_to_%s", kvariant_names[f]);
		jw_open(&w, key, '{');
		/* null where the floor has no program on the hook, or one costing nothing net. */
		for (size_t h = 0; h < nh; h++)
			if (kernel_cost(&rp, f, KTEST_ALL, hooks[h]).runs > 0)
				jw_num(&w, hooks[h],
				       per(kernel_net_per_run(&rp, K_CARWALL, hooks[h]),
					   kernel_net_per_run(&rp, f, hooks[h])),
				       3);
		jw_num(&w, "decision", per(per(dc.net_ns, dc.runs), per(df.net_ns, df.runs)), 3);
		for (size_t t = 0; t < N_KTESTS; t++) {
			snprintf(key, sizeof(key), "per_op_%s", ktests[t]);
			jw_num(&w, key,
			       per(kernel_net_per_op(&rp, K_CARWALL, t),
				   kernel_net_per_op(&rp, f, t)),
			       3);
		}
		jw_close(&w, '}');
	}
	/*
	 * A cross-check without bpf_stats: what carwall and the floors add to a UDP connect(),
	 * which runs their connect4/6 programs and nothing else of theirs.
	 */
	for (size_t t = 0; t < N_DP; t++) {
		char key[64];

		if (strncmp(dp_tests[t].name, "udp_connect", 11))
			continue;
		snprintf(key, sizeof(key), "%s_delta_ns", dp_tests[t].name);
		static const size_t filters[] = { V_CARWALL, V_FLOOR, V_MARK };

		jw_open(&w, key, '{');
		for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
			struct stats delta;

			dp_stats(&rp, t, filters[i], NULL, &delta);
			jw_num(&w, variant_names[filters[i]], delta.median, 1);
		}
		jw_close(&w, '}');
	}
	jw_open(&w, "targets_ns", '{');
	jw_num(&w, "sock_addr_program", TARGET_SOCK_ADDR_NS, 0);
	jw_num(&w, "sock_create", TARGET_SOCK_CREATE_NS, 0);
	jw_num(&w, "per_tcp_connection", TARGET_TCP_CONNECTION_NS, 0);
	jw_close(&w, '}');
	jw_close(&w, '}');

	/* Reload. */
	jw_open(&w, "reload", '{');
	if ((s = kv_get(rp.status, rp.n_status, "reload")))
		jw_str(&w, "status", s);
	if ((s = kv_get(rp.status, rp.n_status, "reload_timing")))
		jw_str(&w, "agent_timing_status", s);
	jw_open(&w, "sizes", '[');
	for (size_t i = 0; i < rp.n_reload; i++) {
		const struct reload_size *z = &rp.reload[i];
		struct stats rt = stats_of(z->rt_us, z->n);

		jw_open(&w, NULL, '{');
		jw_num(&w, "rules", (double)z->rules, 0);
		rt.median /= 1000, rt.min /= 1000, rt.max /= 1000;
		jw_stats(&w, "round_trip_ms", rt, 3);
		if (z->n_check) {
			struct stats ck = stats_of(z->check_us, z->n_check);

			ck.median /= 1000, ck.min /= 1000, ck.max /= 1000;
			jw_stats(&w, "policy_check_ms", ck, 3);
		}
		if (!isnan(z->yaml_floor_us))
			jw_num(&w, "libyaml_floor_ms", z->yaml_floor_us / 1000, 3);
		if (!isnan(z->verify_floor_us))
			jw_num(&w, "verify_floor_ms", z->verify_floor_us / 1000, 3);
		if (!isnan(reload_floor_us(z)))
			jw_num(&w, "floor_ms", reload_floor_us(z) / 1000, 3);
		jw_open(&w, "agent_timing_us", '{');
		for (size_t p = 0; p < N_PHASES; p++)
			if (z->n_phase[p])
				jw_stats(&w, reload_phases[p], stats_of(z->phase_us[p], z->n_phase[p]),
					 0);
		jw_close(&w, '}');
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_close(&w, '}');

	jw_open(&w, "agent", '{');
	for (size_t i = 0; i < rp.n_agent; i++) {
		double v = num(rp.agent[i].val);

		if (!strcmp(rp.agent[i].val, "-"))
			jw_str(&w, rp.agent[i].key, NULL);
		else if (isnan(v))
			jw_str(&w, rp.agent[i].key, rp.agent[i].val);
		else
			jw_num(&w, rp.agent[i].key, v, is_int(v) ? 0 : 3);
	}
	jw_close(&w, '}');

	jw_open(&w, "events", '{');
	double ev_rate = NAN, ev_wall_rate = NAN;
	if ((s = kv_get(rp.status, rp.n_status, "events"))) {
		jw_str(&w, "status", s);
	} else {
		double secs = kv_num(rp.events, rp.n_events, "seconds");
		double got = kv_num(rp.events, rp.n_events, "received");

		for (size_t i = 0; i < rp.n_events; i++) {
			double v = num(rp.events[i].val);

			if (!strcmp(rp.events[i].val, "-"))
				jw_str(&w, rp.events[i].key, NULL);
			else if (isnan(v))
				jw_str(&w, rp.events[i].key, rp.events[i].val);
			else
				jw_num(&w, rp.events[i].key, v, is_int(v) ? 0 : 3);
		}
		double cpu = kv_num(rp.events, rp.n_events, "agent_cpu_seconds");

		ev_wall_rate = secs > 0 ? got / secs : NAN;
		jw_num(&w, "received_per_s", ev_wall_rate, 0);
		/* What it keeps up with on a CPU of its own: robust to other load on the machine. */
		ev_rate = cpu > 0 ? got / cpu : ev_wall_rate;
		jw_num(&w, "received_per_agent_cpu_s", cpu > 0 ? got / cpu : NAN, 0);
	}
	jw_close(&w, '}');

	/* ---- targets ---- */
	for (size_t t = 0; t < N_DP; t++) {
		const struct dp_test *d = &dp_tests[t];
		bool v6 = d->name[strlen(d->name) - 1] == '6';
		struct stats ratio, delta, floor_ratio;
		size_t kt = ktest_index(d->name);
		struct target *x;
		char name[96], floor_why[1024] = "";

		if (d->target <= 0)
			continue;
		dp_stats(&rp, t, V_CARWALL, &ratio, &delta);
		dp_stats(&rp, t, V_FLOOR, &floor_ratio, NULL);
		snprintf(name, sizeof(name), "carwall %s", d->label);
		if (!isnan(floor_ratio.median))
			snprintf(floor_why, sizeof(floor_why),
				 "The floor (one LPM lookup per decision) is at %.3fx%s. ",
				 floor_ratio.median,
				 (d->throughput ? floor_ratio.median < d->target
						: floor_ratio.median > d->target)
					 ? ", itself past the target: no BPF design with one LPM-trie "
					   "lookup per decision meets it on this machine"
					 : "");
		mark_note(floor_why, sizeof(floor_why), &rp, t);
		if (!strncmp(d->name, "tcp_connect", 11)) {
			x = target_new(targets, &n_targets, TK_CONNECT, name);
			snprintf(x->to_close, sizeof(x->to_close),
				 "carwall adds %.0f ns per connection (median of per-round differences); "
				 "its programs together run %.0f ns per connection net of bpf_stats "
				 "(the floor's %.0f ns), the rest is spent around them (cgroup-BPF "
				 "dispatch, and what the programs leave for the kernel to do later). "
				 "%sThen: %s",
				 delta.median, kernel_net_per_op(&rp, K_CARWALL, kt),
				 kernel_net_per_op(&rp, K_FLOOR, kt), floor_why, close_connect);
		} else if (!strncmp(d->name, "udp_sendto", 10)) {
			x = target_new(targets, &n_targets, TK_SENDTO, name);
			snprintf(x->to_close, sizeof(x->to_close),
				 "carwall adds %.0f ns per datagram; its programs run %.0f ns of it net "
				 "(the floor's %.0f ns). %sThen: %s",
				 delta.median, kernel_net_per_op(&rp, K_CARWALL, kt),
				 kernel_net_per_op(&rp, K_FLOOR, kt), floor_why, close_sendto);
		} else if (!strncmp(d->name, "udp_connect", 11)) {
			x = target_new(targets, &n_targets, TK_UDP_CONNECT, name);
			snprintf(x->to_close, sizeof(x->to_close),
				 "a UDP connect() runs connect%d and nothing else: carwall adds %.0f ns, "
				 "its program runs %.0f ns net (the floor's %.0f ns). %sThen: %s",
				 v6 ? 6 : 4, delta.median, kernel_net_per_op(&rp, K_CARWALL, kt),
				 kernel_net_per_op(&rp, K_FLOOR, kt), floor_why, close_decision);
		} else {
			x = target_new(targets, &n_targets, TK_BULK, name);
			snprintf(x->to_close, sizeof(x->to_close),
				 "the gap is %.0f MB/s; the hooks attached: %s. %sThen: %s",
				 -delta.median, kv_get(rp.meta, rp.n_meta, "hooks") ?: "?",
				 floor_why, close_bulk);
		}
		target_ratio(x, ratio.median, d->target, d->throughput);
	}

	/* In-kernel targets, net of bpf_stats' own cost, each next to the floor's figure. */
	double cw_create = kernel_net_per_run(&rp, K_CARWALL, "sock_create");
	double cw_connect4 = kernel_net_per_run(&rp, K_CARWALL, "connect4");
	double fl_worst = NAN;
	static const char *const sock_addr_hooks[] = { "connect4", "connect6", "sendmsg4",
						       "sendmsg6" };
	char decision_why[1024];
	struct target *x;

	snprintf(decision_why, sizeof(decision_why),
		 "sock_create, which checks the socket's type and protocol only, runs %.0f ns; "
		 "connect4 runs %.0f ns for a whole decision (net of bpf_stats' clock reads). ",
		 cw_create, cw_connect4);
	for (size_t i = 0; i < ARRAY_SIZE(sock_addr_hooks); i++) {
		double f = kernel_net_per_run(&rp, K_FLOOR, sock_addr_hooks[i]);

		if (isnan(fl_worst) || f > fl_worst)
			fl_worst = f;
	}
	floor_note(decision_why, sizeof(decision_why), "slowest connect/sendmsg program", fl_worst,
		   TARGET_SOCK_ADDR_NS);
	for (size_t i = 0; i < ARRAY_SIZE(sock_addr_hooks) + 1; i++) {
		const char *hook = i < ARRAY_SIZE(sock_addr_hooks) ? sock_addr_hooks[i] : "sock_create";
		double want = i < ARRAY_SIZE(sock_addr_hooks) ? TARGET_SOCK_ADDR_NS
							       : TARGET_SOCK_CREATE_NS;
		char name[96];

		snprintf(name, sizeof(name), "carwall %s run time, net", hook);
		x = target_new(targets, &n_targets, TK_DECISION, name);
		target_max(x, kernel_net_per_run(&rp, K_CARWALL, hook), want, "ns", 1);
		target_floor(x, kernel_net_per_run(&rp, K_FLOOR, hook),
			     kernel_net_per_run(&rp, K_MARK, hook));
		snprintf(x->to_close, sizeof(x->to_close), "%sThen: %s", decision_why,
			 close_decision);
	}
	for (size_t i = 0; i < 2; i++) {
		size_t kt = ktest_index(i ? "tcp_connect_v6" : "tcp_connect_v4");
		double fl = kernel_net_per_op(&rp, K_FLOOR, kt), ops = rp.kops[K_CARWALL][kt];
		double mk = kernel_net_per_op(&rp, K_MARK, kt);
		const char *hooks[16];
		size_t nh = kernel_hooks(&rp, K_CARWALL, hooks, ARRAY_SIZE(hooks)), len;
		char name[96];

		snprintf(name, sizeof(name),
			 "carwall programs per new TCP connection, IPv%d, net", i ? 6 : 4);
		x = target_new(targets, &n_targets, TK_CONNECTION, name);
		target_max(x, kernel_net_per_op(&rp, K_CARWALL, kt), TARGET_TCP_CONNECTION_NS, "ns",
			   0);
		target_floor(x, fl, mk);
		/* What each program adds to a connection: its runs and net run time per connect. */
		len = (size_t)snprintf(x->to_close, sizeof(x->to_close), "Per connection:");
		for (size_t h = 0; h < nh && len < sizeof(x->to_close); h++) {
			struct kcost c = kernel_cost(&rp, K_CARWALL, kt, hooks[h]);

			if (c.runs > 0)
				len += (size_t)snprintf(x->to_close + len, sizeof(x->to_close) - len,
							" %s %.0f ns (%.1f runs)", hooks[h],
							per(c.net_ns, ops), per(c.runs, ops));
		}
		if (len < sizeof(x->to_close))
			snprintf(x->to_close + len, sizeof(x->to_close) - len, ". ");
		floor_note(x->to_close, sizeof(x->to_close),
			   "sock_create and connect together", fl, TARGET_TCP_CONNECTION_NS);
		if (!isnan(mk)) {
			buf_append(x->to_close, sizeof(x->to_close),
				   MARK_LABEL "'s programs together run %.0f ns per new TCP "
					      "connection net%s. ",
				   mk,
				   mk > TARGET_TCP_CONNECTION_NS
					   ? ", past the target: the floor of a design with the "
					     "mark and the per-packet backstop on this machine"
					   : ", within the target");
			mark_connection_costs(x->to_close, sizeof(x->to_close), &rp, kt, i);
		}
		buf_append(x->to_close, sizeof(x->to_close), "Then: %s", close_connect);
	}

	char reload_why[2560] = "";
	const char *reload_fix = close_reload_apply;
	for (size_t i = 0; i < rp.n_reload; i++) {
		const struct reload_size *z = &rp.reload[i];
		double want = z->rules == 10000 ? TARGET_RELOAD_10K_MS
			      : z->rules == 100000 ? TARGET_RELOAD_100K_MS
						   : 0;
		size_t tp = PHASE_TOTAL;
		double rt = stats_of(z->rt_us, z->n).median / 1000;
		double check = stats_of(z->check_us, z->n_check).median / 1000;
		char name[96];
		double v;
		size_t len = strlen(reload_why);

		if (want <= 0)
			continue;
		/* The agent's own end-to-end figure when it reports one, else the round trip. */
		if (z->n_phase[tp]) {
			v = stats_of(z->phase_us[tp], z->n_phase[tp]).median / 1000;
			snprintf(name, sizeof(name), "reload %ld rules (agent total)", z->rules);
			double ph[N_PHASES];

			len += (size_t)snprintf(reload_why + len, sizeof(reload_why) - len,
						"At %ld rules the agent spends", z->rules);
			for (size_t p = 0; p < N_PHASES; p++) {
				ph[p] = z->n_phase[p]
						? stats_of(z->phase_us[p], z->n_phase[p]).median / 1000
						: 0;
				if (p != tp && p != PHASE_CPU && z->n_phase[p] && len < sizeof(reload_why))
					len += (size_t)snprintf(reload_why + len,
								sizeof(reload_why) - len,
								" %s %.1f", reload_phases[p], ph[p]);
			}
			if (len < sizeof(reload_why))
				len += (size_t)snprintf(reload_why + len, sizeof(reload_why) - len,
							" ms");
			if (z->n_phase[PHASE_CPU] && len < sizeof(reload_why))
				len += (size_t)snprintf(reload_why + len, sizeof(reload_why) - len,
							", %.1f ms of the total on the agent's CPU (the "
							"rest: waiting for a CPU or for the kernel)",
							ph[PHASE_CPU]);
			if (len < sizeof(reload_why))
				len += (size_t)snprintf(reload_why + len, sizeof(reload_why) - len,
							". ");
			/* The floor: libyaml alone reading the same file, and one signature check. */
			if (!isnan(reload_floor_us(z)) && len < sizeof(reload_why)) {
				double floor_ms = reload_floor_us(z) / 1000;
				char rest[160];

				if (floor_ms > want)
					snprintf(rest, sizeof(rest), ", itself past the target");
				else
					snprintf(rest, sizeof(rest),
						 ", which leaves %.1f ms of the target for building the "
						 "policy from those events, compiling it and writing the "
						 "maps",
						 want - floor_ms);
				snprintf(reload_why + len, sizeof(reload_why) - len,
					 "libyaml alone reads the events of the same file in %.1f ms "
					 "of CPU and one Ed25519 check of its bytes takes %.1f ms: "
					 "%.1f ms, the floor of any agent that takes only signed "
					 "policies and parses them with libyaml%s. ",
					 z->yaml_floor_us / 1000, z->verify_floor_us / 1000, floor_ms,
					 rest);
			}
			/* The phase to attack: the largest one at this size (the last size wins). */
			reload_fix = ph[PHASE_PARSE] >= ph[PHASE_COMPILE] &&
						     ph[PHASE_PARSE] >= ph[PHASE_APPLY]
					     ? close_reload_parse
				     : ph[PHASE_COMPILE] >= ph[PHASE_APPLY] ? close_reload_compile
									    : close_reload_apply;
		} else {
			v = rt;
			snprintf(name, sizeof(name), "reload %ld rules (carwall reload round trip)",
				 z->rules);
			if (!isnan(check)) {
				snprintf(reload_why + len, sizeof(reload_why) - len,
					 "At %ld rules `carwall policy check` (read, parse, compile, "
					 "no map) takes %.1f of the %.1f ms, so writing the maps and "
					 "the flip take about %.1f ms. ",
					 z->rules, check, rt, rt - check);
				reload_fix = check > rt - check ? close_reload_parse
								: close_reload_apply;
			}
		}
		x = target_new(targets, &n_targets, TK_RELOAD, name);
		target_max(x, v, want, "ms", 2);
	}
	for (size_t i = 0; i < n_targets; i++)
		if (targets[i].kind == TK_RELOAD)
			snprintf(targets[i].to_close, sizeof(targets[i].to_close), "%sThen: %s",
				 reload_why, reload_fix);

	x = target_new(targets, &n_targets, TK_RSS, "agent steady RSS (10k rules)");
	target_max(x, kv_num(rp.agent, rp.n_agent, "rss_kib") / 1024, TARGET_RSS_KIB / 1024, "MiB",
		   2);
	double rss_floor = kv_num(rp.agent, rp.n_agent, "rss_floor_kib") / 1024;

	snprintf(x->to_close, sizeof(x->to_close),
		 "VmRSS %.2f MiB with the 10k policy (peak %.2f MiB), %.2f MiB with the 100k policy "
		 "in force, %.2f MiB back at the 10k policy after it. The floor: %.2f MiB resident in a program that links the same libraries, "
		 "maps the agent's ring buffer (cw_events) as the agent does and uses each library "
		 "once as a reload does (bench rss-floor)%s. Then: %s",
		 kv_num(rp.agent, rp.n_agent, "rss_kib") / 1024,
		 kv_num(rp.agent, rp.n_agent, "hwm_kib") / 1024,
		 kv_num(rp.agent, rp.n_agent, "rss_100k_kib") / 1024,
		 kv_num(rp.agent, rp.n_agent, "rss_after_reloads_kib") / 1024, rss_floor,
		 rss_floor > TARGET_RSS_KIB / 1024 ? ", itself past the target" : "", close_rss);
	x = target_new(targets, &n_targets, TK_IDLE, "agent wake-ups while idle");
	target_max(x, kv_num(rp.agent, rp.n_agent, "idle_wakeups"), TARGET_IDLE_WAKEUPS, "wake-ups",
		   0);
	snprintf(x->to_close, sizeof(x->to_close), "%s", close_idle);
	x = target_new(targets, &n_targets, TK_EVENTS,
		       "refused-flow events the agent keeps up with (per agent CPU-second)");
	target_min(x, ev_rate, TARGET_EVENTS_PER_S, "/s");
	if ((s = kv_get(rp.status, rp.n_status, "events")))
		x->status = s;
	snprintf(x->to_close, sizeof(x->to_close),
		 "of %.32s refused flows in %.32s s, the agent received %.32s (%.32s not) in %.32s "
		 "s, using %.32s s of CPU (%.0f/s on the wall clock). Then: %s",
		 kv_get(rp.events, rp.n_events, "attempts") ?: "?",
		 kv_get(rp.events, rp.n_events, "flood_seconds") ?: "?",
		 kv_get(rp.events, rp.n_events, "received") ?: "?",
		 kv_get(rp.events, rp.n_events, "not_received") ?: "?",
		 kv_get(rp.events, rp.n_events, "seconds") ?: "?",
		 kv_get(rp.events, rp.n_events, "agent_cpu_seconds") ?: "?", ev_wall_rate,
		 close_events);

	jw_open(&w, "targets", '[');
	for (size_t i = 0; i < n_targets; i++) {
		jw_open(&w, NULL, '{');
		jw_str(&w, "name", targets[i].name);
		jw_str(&w, "measured", targets[i].measured);
		jw_str(&w, "target", targets[i].wanted);
		jw_str(&w, "status", targets[i].status);
		if (targets[i].missed_by[0]) {
			jw_str(&w, "missed_by", targets[i].missed_by);
			jw_str(&w, "to_close", targets[i].to_close);
		}
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_close(&w, '}');
	fputc('\n', out);
	if (fflush(out) != 0 || ferror(out))
		die(argv[2], errno);

	/* ---- the table ---- */
	printf("\n");
	print_rule();
	printf("carwall bench: %s cpus, %s, kernel %s; %s rounds of %s ms; %s-rule policy, %s apps\n",
	       kv_get(rp.meta, rp.n_meta, "nproc") ?: "?", kv_get(rp.meta, rp.n_meta, "cpu") ?: "?",
	       kv_get(rp.meta, rp.n_meta, "kernel") ?: "?",
	       kv_get(rp.meta, rp.n_meta, "rounds") ?: "?",
	       kv_get(rp.meta, rp.n_meta, "measure_ms") ?: "?",
	       kv_get(rp.meta, rp.n_meta, "policy_rules") ?: "?",
	       kv_get(rp.meta, rp.n_meta, "apps") ?: "?");
	if (kv_get(rp.meta, rp.n_meta, "loadavg_start"))
		printf("load average %s at the start, %s at the end; figures on CPU time per "
		       "operation (or per MB)\n",
		       kv_get(rp.meta, rp.n_meta, "loadavg_start"),
		       kv_get(rp.meta, rp.n_meta, "loadavg_end") ?: "?");
	print_rule();
	printf("%-26s %15s %18s %18s %18s %18s\n", "median (ratio to none)", "no filter", "carwall",
	       "nftables", "floor", MARK_LABEL);
	for (size_t t = 0; t < N_DP; t++) {
		const struct dp_test *d = &dp_tests[t];
		char cell[N_VARIANTS][48];

		for (size_t v = 0; v < N_VARIANTS; v++) {
			struct stats ratio, st = dp_stats(&rp, t, v, &ratio, NULL);

			if (isnan(st.median))
				snprintf(cell[v], sizeof(cell[v]), "-");
			else if (v == V_NONE)
				snprintf(cell[v], sizeof(cell[v]), "%.0f %s", st.median, d->unit);
			else
				snprintf(cell[v], sizeof(cell[v]), "%.0f (%.3fx)", st.median,
					 ratio.median);
		}
		printf("%-26s %15s %18s %18s %18s %18s%s\n", d->label, cell[0], cell[1], cell[2],
		       cell[3], cell[4], d->wall ? "  (wall clock)" : "");
	}
	print_rule();
	if ((s = kv_get(rp.status, rp.n_status, "in_kernel")))
		printf("in-kernel                 %s\n", s);
	else
		print_kernel(&rp);
	for (size_t i = 0; i < rp.n_reload; i++) {
		const struct reload_size *z = &rp.reload[i];
		size_t tp = PHASE_TOTAL;

		printf("reload %6ld rules       round trip %.1f ms", z->rules,
		       stats_of(z->rt_us, z->n).median / 1000);
		if (z->n_phase[tp]) {
			printf(", agent");
			for (size_t p = 0; p < N_PHASES; p++)
				if (z->n_phase[p])
					printf(" %s %.1f", reload_phases[p],
					       stats_of(z->phase_us[p], z->n_phase[p]).median / 1000);
			printf(" ms");
		}
		if (!isnan(reload_floor_us(z)))
			printf(", floor %.1f ms (libyaml %.1f, Ed25519 check %.1f)",
			       reload_floor_us(z) / 1000, z->yaml_floor_us / 1000,
			       z->verify_floor_us / 1000);
		printf("\n");
	}
	if ((s = kv_get(rp.status, rp.n_status, "reload_timing")))
		printf("                          (%s)\n", s);
	printf("agent                     RSS %.2f MiB (floor %.2f MiB), %s wake-ups in %s s idle\n",
	       kv_num(rp.agent, rp.n_agent, "rss_kib") / 1024,
	       kv_num(rp.agent, rp.n_agent, "rss_floor_kib") / 1024,
	       kv_get(rp.agent, rp.n_agent, "idle_wakeups") ?: "?",
	       kv_get(rp.agent, rp.n_agent, "idle_seconds") ?: "?");
	if ((s = kv_get(rp.status, rp.n_status, "events")))
		printf("events                    %s\n", s);
	else
		printf("events                    %.0f per agent CPU-second (%.0f/s on the wall clock): "
		       "%s of %s refused flows received in %s s, %s not, agent CPU %s s\n",
		       ev_rate, ev_wall_rate, kv_get(rp.events, rp.n_events, "received") ?: "?",
		       kv_get(rp.events, rp.n_events, "attempts") ?: "?",
		       kv_get(rp.events, rp.n_events, "seconds") ?: "?",
		       kv_get(rp.events, rp.n_events, "not_received") ?: "?",
		       kv_get(rp.events, rp.n_events, "agent_cpu_seconds") ?: "?");
	print_rule();

	/* The closing note: every target, and for a missed one by how much and what would help. */
	size_t missed = 0;
	for (size_t i = 0; i < n_targets; i++) {
		const struct target *t = &targets[i];

		printf("%-7s %s: %s (target %s)%s%s\n",
		       !strcmp(t->status, "met")      ? "met"
		       : !strcmp(t->status, "missed") ? "MISSED"
						      : "n/a",
		       t->name, t->measured, t->wanted, t->missed_by[0] ? ", by " : "",
		       t->missed_by);
		if (t->missed_by[0])
			missed++;
		else if (strcmp(t->status, "met"))
			printf("        %s\n", t->status);
	}
	if (missed) {
		printf("\nWhat would close the missed targets:\n");
		for (size_t i = 0; i < n_targets; i++) {
			bool dup = false;

			if (!targets[i].missed_by[0])
				continue;
			for (size_t j = 0; j < i; j++)
				if (targets[j].missed_by[0] && targets[j].kind == targets[i].kind &&
				    !strcmp(targets[j].to_close, targets[i].to_close))
					dup = true;
			if (!dup)
				printf("- %s: %s.\n", targets[i].name, targets[i].to_close);
		}
	}
	printf("\nJSON: %s\n", argv[2]);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_die("a command is needed: serve, client, compare, policy, floor, bpfstats, "
			  "report, yaml-floor, rss-floor");
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (!strcmp(argv[1], "client"))
		return cmd_client(argc - 1, argv + 1);
	if (!strcmp(argv[1], "compare"))
		return cmd_compare(argc - 1, argv + 1);
	if (!strcmp(argv[1], "policy"))
		return cmd_policy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "floor"))
		return cmd_floor(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bpfstats"))
		return cmd_bpfstats(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return cmd_report(argc - 1, argv + 1);
	if (!strcmp(argv[1], "yaml-floor"))
		return cmd_yaml_floor(argc - 1, argv + 1);
	if (!strcmp(argv[1], "rss-floor"))
		return cmd_rss_floor(argc - 1, argv + 1);
	usage_die("unknown command");
}

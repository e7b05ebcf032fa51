// SPDX-License-Identifier: GPL-2.0-only
/*
 * flowprobe: a small traffic tool for carwall's tests and demo.
 *
 * Client modes make exactly one flow and print exactly one line on stdout:
 *
 *     result=<ok|ERRNO NAME> stage=<socket|connect|send|recv>
 *
 * "stage" is where the flow ended (recv for a flow that succeeded). The exit code is 0 for
 * ok, 1 for EPERM or EACCES at any stage (what carwall's cgroup programs return), 2 for
 * anything else, including a timeout while waiting for the echo. Usage errors print a
 * message on stderr, no result line, and exit 2.
 *
 * A flow succeeds only when the server's echo "OK <token>\n" comes back, so delivery is
 * confirmed end to end.
 *
 * Server mode listens on TCP and UDP ports, logs one line per received token to a file and
 * echoes "OK <token>\n" back; see usage().
 *
 * Hold mode keeps one established flow up (for the revocation tests): it prints
 * "established us=N pid=P" once the echo came back, then sends the token again every 100 ms
 * (and "<token>-markerN" once after its Nth SIGUSR1, so a test can prove the flow still
 * delivers after an event) and ends with the result line when the connection breaks
 * (stage=send or recv) or lasted its time (result=ok stage=hold). Its server is
 * `serve --hold`, which keeps TCP connections open and logs every line that differs from the
 * first.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define DEFAULT_TIMEOUT_MS 2000
#define TOKEN_MAX 200
#define LINE_BUF 512		/* a request line longer than this is dropped */
#define CONN_DEADLINE_MS 3000	/* per-connection read deadline in the server */
#define MAX_CONNS 256
#define MAX_PORTS 64
#define MAX_BINDS 16
#define HOLD_TICK_MS 100		/* hold mode: one line per tick */
#define DEFAULT_HOLD_MS 10000
#define WIRE_HDR_MAX 8		/* an ICMP echo or a UDP header before the line */
#define SRH_MAX_VISITS 8	/* --srh: segments before the destination */

enum exit_code {
	EXIT_OK = 0,
	EXIT_DENIED = 1,
	EXIT_OTHER = 2,
};

static void usage(FILE *f)
{
	fputs("Usage:\n"
	      "  flowprobe tcp ADDR PORT [--token T] [--timeout-ms N] [--socket6]\n"
	      "  flowprobe udp ADDR PORT [--token T] [--timeout-ms N] [--socket6]\n"
	      "  flowprobe udp-connect ADDR PORT [--token T] [--timeout-ms N] [--socket6]\n"
	      "  flowprobe hold ADDR PORT [--udp] [--hold-ms N] [--token T] [--timeout-ms N]\n"
	      "                 [--socket6]\n"
	      "  flowprobe serve --log FILE [--tcp PORT]... [--udp PORT]... [--udplite PORT]...\n"
	      "                  [--bind ADDR]... [--hold]\n"
	      "  flowprobe --help\n"
	      "\n"
	      "Client modes send \"T\\n\" and wait for the server's echo \"OK T\\n\", then\n"
	      "print one line:\n"
	      "  result=<ok|ERRNO NAME> stage=<socket|connect|send|recv>\n"
	      "Exit code: 0 ok, 1 EPERM/EACCES at any stage, 2 any other error (incl. timeout).\n"
	      "  tcp          connect, send, wait for the echo line\n"
	      "  udp          unconnected socket: sendto once, wait for the reply with recvfrom\n"
	      "  udp-connect  connect() the UDP socket, then send() and recv()\n"
	      "  ADDR         IPv4 or IPv6 literal (IPv6 with or without brackets)\n"
	      "  --token T    printable ASCII without spaces, at most 200 chars\n"
	      "               (default: fp<pid>-<time>)\n"
	      "  --timeout-ms N  overall deadline for the flow (default 2000)\n"
	      "  --socket6    use an AF_INET6 socket (IPV6_V6ONLY off); an IPv4 ADDR is sent to\n"
	      "               the IPv4-mapped address ::ffff:a.b.c.d\n"
	      "  --ipproto N  the socket's protocol number (default 0): 136 UDP-Lite with udp\n"
	      "               modes, 1 (IPv4) or 58 (IPv6) an ICMP ping socket with udp-connect\n"
	      "               (the line goes in an echo request; the echo reply is the answer),\n"
	      "               262 MPTCP or 132 SCTP with tcp\n"
	      "  --source A   bind the socket to local address A first\n"
	      "  --srh A[,A]  IPv6: a segment routing header (IPV6_RTHDR, type 4) that sends the\n"
	      "               packets through the addresses A, in this order, before ADDR (the\n"
	      "               first A is the packets' IPv6 destination)\n"
	      "  --raw        a SOCK_RAW socket of protocol --ipproto (udp-connect mode); with\n"
	      "               --ipproto 17 the line goes out in a UDP datagram built by flowprobe,\n"
	      "               and any datagram that ends with \"OK T\\n\" is the answer\n"
	      "  --repeat N   make the flow N times (a flood); print one line\n"
	      "               repeat=N ok=N denied=N other=N; exit code of the last flow\n"
	      "  The result line ends with us=N, microseconds since the socket was created.\n"
	      "  A TCP flow that failed other than by EPERM/EACCES then tells why, from its\n"
	      "  connection and its process: retrans=N (segments the kernel sent again, the\n"
	      "  SYN included: one of its packets was lost or very late), unacked=N (segments\n"
	      "  sent, the SYN included, that the server's kernel has not acknowledged),\n"
	      "  outq=N (bytes written that it has not acknowledged, sent or not: a packet\n"
	      "  dropped on its way out leaves its bytes unsent; retrans=0 unacked=0 outq=0:\n"
	      "  the server's kernel has everything, nothing was lost), runq_ms=N (how long\n"
	      "  flowprobe waited for a CPU during the flow; absent without\n"
	      "  /proc/self/schedstat).\n"
	      "  hold         a TCP connection (or with --udp a connected UDP socket) made as\n"
	      "               in tcp/udp-connect; once the echo is back it prints\n"
	      "               \"established us=N\", then sends \"T\\n\" every 100 ms until the\n"
	      "               connection breaks or --hold-ms N (default 10000) passes; after\n"
	      "               its Nth SIGUSR1 it sends \"T-markerN\\n\" once. It ends\n"
	      "               with the result line: result=ok stage=hold when the connection\n"
	      "               lasted; stage=send with the socket's pending error (ECONNABORTED\n"
	      "               for a socket the kernel destroyed) or else send()'s errno;\n"
	      "               stage=recv ECONNRESET when the peer closed. Exit code as above.\n"
	      "\n"
	      "Server mode listens on every --tcp and --udp port on every --bind address\n"
	      "(default 0.0.0.0 and :: with IPV6_V6ONLY on). For each TCP connection it reads one\n"
	      "line, appends \"tcp PORT PEERADDR TOKEN\" to the log, replies \"OK TOKEN\\n\" and\n"
	      "closes; for each UDP datagram it appends \"udp PORT PEERADDR TOKEN\" and replies\n"
	      "\"OK TOKEN\\n\" to the sender, from the address the datagram was sent to (UDP-Lite\n"
	      "the same, logged as \"udplite\"). The log\n"
	      "line is written before the reply. Tokens are cut at 200 chars, non-printable bytes\n"
	      "become '_', an empty token is logged as \"-\". It prints \"ready\" once every\n"
	      "socket listens and exits 0 on SIGTERM or SIGINT (1 on a setup error).\n"
	      "With --hold a TCP connection stays open after the echo (no read deadline); the\n"
	      "lines that follow are read until the client closes, and each one that differs\n"
	      "from the first is logged like a token (\"tcp PORT PEERADDR LINE\").\n",
	      f);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static const char *errno_name(int err)
{
	static char buf[32];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

static bool parse_port(const char *s, uint16_t *ret)
{
	unsigned long v;

	if (!parse_uint(s, 1, 65535, &v))
		return false;
	*ret = (uint16_t)v;
	return true;
}

/* IPv4 or IPv6 literal (IPv6 optionally in brackets) into a sockaddr with the given port. */
static bool parse_addr(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);

	memset(ss, 0, sizeof(*ss));
	if (n >= sizeof(buf))
		return false;
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, s, n + 1);
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			*len = sizeof(*sin);
			return true;
		}
	}

	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return true;
	}
	return false;
}

/* Turn an IPv4 sockaddr into its IPv4-mapped IPv6 form (::ffff:a.b.c.d). */
static void map_v4(struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in sin = *(struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = sin.sin_port;
	sin6->sin6_addr.s6_addr[10] = 0xff;
	sin6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&sin6->sin6_addr.s6_addr[12], &sin.sin_addr, 4);
	*len = sizeof(*sin6);
}

static bool token_valid(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > TOKEN_MAX)
		return false;
	for (; *t; t++)
		if (*t <= 0x20 || *t >= 0x7f)
			return false;
	return true;
}

/* ---- client ---------------------------------------------------------------------------- */

enum stage {
	STAGE_SOCKET,
	STAGE_CONNECT,
	STAGE_SEND,
	STAGE_RECV,
	STAGE_HOLD,
};

static const char *const stage_names[] = {
	[STAGE_SOCKET] = "socket",
	[STAGE_CONNECT] = "connect",
	[STAGE_SEND] = "send",
	[STAGE_RECV] = "recv",
	[STAGE_HOLD] = "hold",
};

enum client_mode {
	MODE_TCP,
	MODE_UDP,
	MODE_UDP_CONNECT,
};

struct client {
	enum client_mode mode;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	char token[TOKEN_MAX + 1];
	char request[WIRE_HDR_MAX + TOKEN_MAX + 2];	/* [header] "T\n" */
	char expect[WIRE_HDR_MAX + TOKEN_MAX + 5];	/* "OK T\n", or an echo reply of the request */
	size_t request_len, expect_len;
	bool ping;			/* ICMP ping socket: request and expect are echo messages */
	bool raw_udp;			/* raw socket: flowprobe writes the UDP header */
	int64_t deadline;
	unsigned long hold_ms;		/* hold mode: keep the flow up this long (0: no) */
	struct sockaddr_storage src;	/* --source: bind here first (ss_family 0: no) */
	uint8_t srh[8 + 16 * (SRH_MAX_VISITS + 1)];	/* --srh: the routing header */
	size_t srh_len;			/* 0: none */
	socklen_t src_len;
};

/* When the flow's first socket call started, for the us= field of the result line. */
static struct timespec flow_start;

static long flow_elapsed_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - flow_start.tv_sec) * 1000000L +
	       (now.tv_nsec - flow_start.tv_nsec) / 1000L;
}

/* --repeat: only the summary is printed. */
static bool report_quiet;

/* How long this process has waited on a run queue, in ns: 0, or a negative errno. */
static int runq_wait_ns(uint64_t *ret_ns)
{
	char buf[128];
	unsigned long long run_ns, wait_ns;
	int fd = open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &run_ns, &wait_ns) != 2)
		return -EIO;
	*ret_ns = wait_ns;
	return 0;
}

/* The run-queue wait when the flow started, when the kernel tells it. */
static uint64_t flow_start_runq_ns;
static bool flow_start_runq_known;

/*
 * Why a TCP flow failed, as its connection and its process tell (see usage()), appended to the
 * result line; empty otherwise.
 */
static char failure_why[96];

static void note_tcp_failure(int fd)
{
	struct tcp_info ti = {};
	socklen_t len = sizeof(ti);
	uint64_t runq_ns;
	int outq;
	size_t n;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_total_retrans) + sizeof(ti.tcpi_total_retrans) ||
	    ioctl(fd, SIOCOUTQ, &outq) < 0)
		return;
	snprintf(failure_why, sizeof(failure_why), " retrans=%u unacked=%u outq=%d",
		 ti.tcpi_total_retrans, ti.tcpi_unacked, outq);
	n = strlen(failure_why);
	if (flow_start_runq_known && runq_wait_ns(&runq_ns) == 0)
		snprintf(failure_why + n, sizeof(failure_why) - n, " runq_ms=%llu",
			 (unsigned long long)((runq_ns - flow_start_runq_ns) / 1000000));
}

/* Prints the result line and returns the exit code. err is 0 for success. */
static int report(enum stage stage, int err)
{
	long us = flow_elapsed_us();

	if (report_quiet)
		goto out;
	if (err == 0)
		printf("result=ok stage=%s us=%ld\n", stage_names[stage], us);
	else
		printf("result=%s stage=%s us=%ld%s\n", errno_name(err), stage_names[stage], us,
		       failure_why);
	fflush(stdout);
out:
	if (err == 0)
		return EXIT_OK;
	if (err == EPERM || err == EACCES)
		return EXIT_DENIED;
	return EXIT_OTHER;
}

/* Waits for events on fd until the deadline. Returns 0, or a positive errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, remaining_ms(deadline));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return ETIMEDOUT;
		return 0;
	}
}

static int pending_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static int client_connect(struct client *c, int fd)
{
	if (connect(fd, (struct sockaddr *)&c->dst, c->dst_len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return errno;

	int r = wait_fd(fd, POLLOUT, c->deadline);

	if (r)
		return r;
	return pending_error(fd);
}

static int client_send(struct client *c, int fd, bool to_dst)
{
	size_t off = 0;

	while (off < c->request_len) {
		ssize_t n;

		if (to_dst)
			n = sendto(fd, c->request, c->request_len, MSG_NOSIGNAL,
				   (struct sockaddr *)&c->dst, c->dst_len);
		else
			n = send(fd, c->request + off, c->request_len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			/* A datagram goes out whole or not at all. */
			off = c->mode == MODE_TCP ? off + (size_t)n : c->request_len;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;

		int r = wait_fd(fd, POLLOUT, c->deadline);

		if (r)
			return r;
	}
	return 0;
}

/* TCP: read until the first newline; it must be exactly the expected echo. */
static int client_recv_stream(struct client *c, int fd)
{
	char buf[sizeof(c->expect) + 1];
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);

		if (n > 0) {
			len += (size_t)n;
			char *nl = memchr(buf, '\n', len);

			if (nl) {
				if ((size_t)(nl - buf) + 1 == c->expect_len &&
				    memcmp(buf, c->expect, c->expect_len) == 0)
					return 0;
				fprintf(stderr, "flowprobe: unexpected reply from server: %.*s\n",
					(int)(nl - buf), buf);
				return EPROTO;
			}
			if (len == sizeof(buf)) {
				fprintf(stderr, "flowprobe: overlong reply from server\n");
				return EPROTO;
			}
			continue;
		}
		if (n == 0) {
			fprintf(stderr, "flowprobe: connection closed before the echo\n");
			return ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;

		int r = wait_fd(fd, POLLIN, c->deadline);

		if (r)
			return r;
	}
}

/*
 * The answer: exactly the expected echo; for a ping socket an echo reply (its identifier and
 * checksum are the kernel's) with the request's data; for a raw socket anything that ends with
 * the expected echo (IPv4 raw sockets see the IP and UDP headers too).
 */
static bool dgram_matches(const struct client *c, const char *buf, size_t n)
{
	if (c->raw_udp)
		return n >= c->expect_len &&
		       memcmp(buf + n - c->expect_len, c->expect, c->expect_len) == 0;
	if (n != c->expect_len)
		return false;
	if (c->ping)
		return buf[0] == c->expect[0] &&
		       memcmp(buf + WIRE_HDR_MAX, c->expect + WIRE_HDR_MAX, n - WIRE_HDR_MAX) == 0;
	return memcmp(buf, c->expect, n) == 0;
}

/* UDP: wait for a datagram that is the expected answer; others are ignored. */
static int client_recv_dgram(struct client *c, int fd)
{
	for (;;) {
		char buf[LINE_BUF];
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);

		if (n >= 0) {
			if (dgram_matches(c, buf, (size_t)n))
				return 0;
			if (remaining_ms(c->deadline) == 0)
				return ETIMEDOUT;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;

		int r = wait_fd(fd, POLLIN, c->deadline);

		if (r)
			return r;
	}
}

/*
 * Hold mode, once the flow is established: send the request line again every HOLD_TICK_MS
 * (draining the echoes in between) until the connection breaks or hold_ms passes. Prints the
 * result line and returns the exit code. A failed send reports the socket's pending error (what
 * the kernel or the peer did to the connection) rather than send()'s own errno.
 */
static volatile sig_atomic_t markers_asked;

static void on_sigusr1(int sig)
{
	(void)sig;
	markers_asked++;
}

static int client_hold(struct client *c, int fd)
{
	int64_t end = now_ms() + (int64_t)c->hold_ms;
	bool broken = false;
	sig_atomic_t markers_sent = 0;

	printf("established us=%ld pid=%ld\n", flow_elapsed_us(), (long)getpid());
	fflush(stdout);
	for (;;) {
		char marker[TOKEN_MAX + 32];
		const char *line = c->request;
		size_t line_len = c->request_len;
		ssize_t n;

		if (markers_sent != markers_asked) {
			markers_sent++;
			line = marker;
			line_len = (size_t)snprintf(marker, sizeof(marker), "%s-marker%d\n",
						    c->token, (int)markers_sent);
		}
		do
			n = send(fd, line, line_len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			int err = errno, pending = pending_error(fd);

			return report(STAGE_SEND, pending ? pending : err);
		}
		if (broken) {
			/* An error or hang-up that a send does not show (an ICMP error on UDP). */
			int pending = pending_error(fd);

			return report(STAGE_HOLD, pending ? pending : EPIPE);
		}

		int64_t tick = now_ms() + HOLD_TICK_MS;

		if (tick > end)
			tick = end;
		while (!broken) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			char buf[LINE_BUF];
			int r = poll(&p, 1, remaining_ms(tick));

			if (r < 0 && errno == EINTR) {
				if (markers_sent != markers_asked)
					break;	/* send the marker now */
				continue;
			}
			if (r < 0)
				return report(STAGE_HOLD, errno);
			if (r == 0)
				break;
			if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
				broken = true;	/* the next send tells what happened */
				break;
			}
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0 && c->mode == MODE_TCP) {
				fprintf(stderr, "flowprobe: connection closed by the peer\n");
				return report(STAGE_RECV, ECONNRESET);
			}
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				broken = true;
		}
		if (!broken && remaining_ms(end) == 0 && markers_sent == markers_asked)
			return report(STAGE_HOLD, 0);
	}
}

static int run_client(struct client *c, bool socket6, int ipproto, bool raw)
{
	int family = c->dst.ss_family;
	int type = raw ? SOCK_RAW : c->mode == MODE_TCP ? SOCK_STREAM : SOCK_DGRAM;
	int fd, err;
	enum stage stage = STAGE_SOCKET;

	if (socket6 && family == AF_INET) {
		map_v4(&c->dst, &c->dst_len);
		family = AF_INET6;
	}

	failure_why[0] = '\0';
	flow_start_runq_known = runq_wait_ns(&flow_start_runq_ns) == 0;
	clock_gettime(CLOCK_MONOTONIC, &flow_start);
	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, ipproto);
	if (fd < 0)
		return report(stage, errno);
	if (socket6) {
		int off = 0;

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
			err = errno;
			close(fd);
			return report(stage, err);
		}
	}

	if (c->srh_len &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, c->srh, (socklen_t)c->srh_len) < 0) {
		err = errno;
		close(fd);
		return report(stage, err);
	}

	if (c->raw_udp && family == AF_INET6) {
		int offset = offsetof(struct udphdr, uh_sum);	/* the kernel fills it in */

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &offset, sizeof(offset)) < 0) {
			err = errno;
			close(fd);
			return report(stage, err);
		}
	}

	if (c->src.ss_family && bind(fd, (struct sockaddr *)&c->src, c->src_len) < 0) {
		err = errno;
		close(fd);
		return report(stage, err);
	}

	if (c->mode != MODE_UDP) {
		stage = STAGE_CONNECT;
		err = client_connect(c, fd);
		if (err)
			goto out;
	}

	stage = STAGE_SEND;
	err = client_send(c, fd, c->mode == MODE_UDP);
	if (err)
		goto out;

	stage = STAGE_RECV;
	if (c->mode == MODE_TCP)
		err = client_recv_stream(c, fd);
	else
		err = client_recv_dgram(c, fd);
	if (!err && c->hold_ms) {
		int ret = client_hold(c, fd);

		close(fd);
		return ret;
	}
out:
	if (err && err != EPERM && err != EACCES && type == SOCK_STREAM &&
	    (ipproto == 0 || ipproto == IPPROTO_TCP))
		note_tcp_failure(fd);
	close(fd);
	return report(stage, err);
}

/*
 * --srh A1,...,Ak: a segment routing header (RFC 8754) with segments[0] left for the kernel,
 * which puts the destination there, and Ak..A1 in segments[1..k]: the packet goes to A1 first
 * (segments_left = k), then on to A2 ... Ak and the destination.
 */
static bool parse_srh(const char *arg, struct client *c)
{
	char buf[SRH_MAX_VISITS * (INET6_ADDRSTRLEN + 1)];
	struct in6_addr visits[SRH_MAX_VISITS];
	size_t k = 0;
	char *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		return false;
	strcpy(buf, arg);
	for (char *a = strtok_r(buf, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		if (k == SRH_MAX_VISITS || inet_pton(AF_INET6, a, &visits[k]) != 1)
			return false;
		k++;
	}
	if (k == 0)
		return false;
	memset(c->srh, 0, sizeof(c->srh));
	c->srh[1] = (uint8_t)(2 * (k + 1));	/* hdrlen: 8-octet units after the first 8 */
	c->srh[2] = 4;				/* type: segment routing */
	c->srh[3] = (uint8_t)k;			/* segments left */
	c->srh[4] = (uint8_t)k;			/* last entry */
	for (size_t i = 0; i < k; i++)
		memcpy(c->srh + 8 + 16 * (k - i), &visits[i], 16);
	c->srh_len = 8 + 16 * (k + 1);
	return true;
}

/* The bytes sent and the answer awaited, with the header --ipproto/--raw call for. */
static void build_wire(struct client *c, uint16_t port)
{
	size_t hdr = c->ping || c->raw_udp ? WIRE_HDR_MAX : 0;
	int line = snprintf(c->request + hdr, sizeof(c->request) - hdr, "%s\n", c->token);

	c->request_len = hdr + (size_t)line;
	c->expect_len = (size_t)snprintf(c->expect, sizeof(c->expect), "OK %s\n", c->token);
	if (c->ping) {
		bool v6 = c->dst.ss_family == AF_INET6;
		struct icmphdr h = {
			.type = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO,
			.un.echo.sequence = htons(1),
		};

		memcpy(c->request, &h, sizeof(h));
		memcpy(c->expect, c->request, c->request_len);
		c->expect[0] = (char)(v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY);
		c->expect_len = c->request_len;
	} else if (c->raw_udp) {
		struct udphdr h = {
			.uh_sport = htons((uint16_t)(40000 + getpid() % 20000)),
			.uh_dport = htons(port),
			.uh_ulen = htons((uint16_t)c->request_len),
		};

		memcpy(c->request, &h, sizeof(h));
	}
}

static int client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "token", required_argument, NULL, 't' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "socket6", no_argument, NULL, '6' },
		{ "source", required_argument, NULL, 'S' },
		{ "ipproto", required_argument, NULL, 'P' },
		{ "raw", no_argument, NULL, 'R' },
		{ "srh", required_argument, NULL, 'Y' },
		{ "repeat", required_argument, NULL, 'N' },
		{ "udp", no_argument, NULL, 'U' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct client c = {};
	unsigned long ipproto = 0;
	unsigned long repeat = 1;
	unsigned long hold_ms = DEFAULT_HOLD_MS;
	bool raw = false, hold = strcmp(argv[0], "hold") == 0;
	const char *token = NULL;
	unsigned long timeout = DEFAULT_TIMEOUT_MS;
	bool socket6 = false;
	uint16_t port;
	int opt;

	if (strcmp(argv[0], "tcp") == 0 || hold)
		c.mode = MODE_TCP;
	else if (strcmp(argv[0], "udp") == 0)
		c.mode = MODE_UDP;
	else
		c.mode = MODE_UDP_CONNECT;

	/* GNU getopt permutes: options may come before or after ADDR PORT. */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			token = optarg;
			break;
		case 'T':
			if (!parse_uint(optarg, 1, 3600000, &timeout)) {
				fprintf(stderr, "flowprobe: bad --timeout-ms: %s\n", optarg);
				return EXIT_OTHER;
			}
			break;
		case '6':
			socket6 = true;
			break;
		case 'S':
			if (!parse_addr(optarg, 0, &c.src, &c.src_len)) {
				fprintf(stderr, "flowprobe: bad --source: %s\n", optarg);
				return EXIT_OTHER;
			}
			break;
		case 'Y':
			if (!parse_srh(optarg, &c)) {
				fprintf(stderr, "flowprobe: bad --srh (1-%d IPv6 addresses, comma "
						"separated): %s\n", SRH_MAX_VISITS, optarg);
				return EXIT_OTHER;
			}
			break;
		case 'R':
			raw = true;
			break;
		case 'N':
			if (!parse_uint(optarg, 1, 10000000, &repeat)) {
				fprintf(stderr, "flowprobe: bad --repeat: %s\n", optarg);
				return EXIT_OTHER;
			}
			break;
		case 'U':
		case 'H':
			if (!hold) {
				fprintf(stderr, "flowprobe: --udp, --hold-ms: hold mode only\n");
				return EXIT_OTHER;
			}
			if (opt == 'U') {
				c.mode = MODE_UDP_CONNECT;
			} else if (!parse_uint(optarg, 1, 3600000, &hold_ms)) {
				fprintf(stderr, "flowprobe: bad --hold-ms: %s\n", optarg);
				return EXIT_OTHER;
			}
			break;
		case 'P':
			if (!parse_uint(optarg, 0, 65535, &ipproto)) {
				fprintf(stderr, "flowprobe: bad --ipproto: %s\n", optarg);
				return EXIT_OTHER;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_OTHER;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "flowprobe: %s needs ADDR and PORT\n", argv[0]);
		return EXIT_OTHER;
	}
	const char *addr = argv[optind], *port_s = argv[optind + 1];

	if (!parse_port(port_s, &port)) {
		fprintf(stderr, "flowprobe: bad port: %s\n", port_s);
		return EXIT_OTHER;
	}
	if (!parse_addr(addr, port, &c.dst, &c.dst_len)) {
		fprintf(stderr, "flowprobe: bad address (IPv4 or IPv6 literal expected): %s\n",
			addr);
		return EXIT_OTHER;
	}

	if (token) {
		if (!token_valid(token)) {
			fprintf(stderr, "flowprobe: bad token (1-%d printable chars, no spaces)\n",
				TOKEN_MAX);
			return EXIT_OTHER;
		}
		snprintf(c.token, sizeof(c.token), "%s", token);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(c.token, sizeof(c.token), "fp%ld-%lx%05lx", (long)getpid(),
			 (unsigned long)ts.tv_sec & 0xfffff, (unsigned long)ts.tv_nsec >> 10);
	}
	c.ping = !raw && c.mode != MODE_TCP &&
		 ((c.dst.ss_family == AF_INET && ipproto == IPPROTO_ICMP && !socket6) ||
		  (c.dst.ss_family == AF_INET6 && ipproto == IPPROTO_ICMPV6));
	c.raw_udp = raw && ipproto == IPPROTO_UDP && !socket6;
	build_wire(&c, port);
	c.deadline = now_ms() + (int64_t)timeout;
	c.hold_ms = hold ? hold_ms : 0;

	signal(SIGPIPE, SIG_IGN);
	if (hold) {
		struct sigaction sa = { .sa_handler = on_sigusr1 };	/* no SA_RESTART */

		sigaction(SIGUSR1, &sa, NULL);
	}
	if (repeat <= 1)
		return run_client(&c, socket6, (int)ipproto, raw);

	/* The same flow `repeat` times (a flood); one summary line, the last flow's exit code. */
	unsigned long n_ok = 0, n_denied = 0, n_other = 0;
	int rc = EXIT_OTHER;
	report_quiet = true;
	for (unsigned long i = 0; i < repeat; i++) {
		struct client again = c;

		again.deadline = now_ms() + (int64_t)timeout;
		rc = run_client(&again, socket6, (int)ipproto, raw);
		n_ok += rc == EXIT_OK;
		n_denied += rc == EXIT_DENIED;
		n_other += rc == EXIT_OTHER;
	}
	printf("repeat=%lu ok=%lu denied=%lu other=%lu\n", repeat, n_ok, n_denied, n_other);
	fflush(stdout);
	return rc;
}

/* ---- server ---------------------------------------------------------------------------- */

enum source_kind {
	SRC_SIGNAL,
	SRC_TCP_LISTEN,
	SRC_UDP,
	SRC_CONN,
};

struct source {
	enum source_kind kind;
	int fd;
	uint16_t port;
	const char *proto;	/* in the log: tcp, udp or udplite */
};

struct conn {
	struct source src;	/* first: epoll data.ptr points here */
	bool used;
	char peer[INET6_ADDRSTRLEN];
	size_t len;
	char buf[LINE_BUF];
	int64_t deadline;
	bool held;		/* --hold: echoed, kept open, further lines logged if new */
	char first[TOKEN_MAX + 1];	/* --hold: the first line's token */
};

struct server {
	int epfd;
	int log_fd;
	const char *log_path;
	bool log_warned;
	bool hold;		/* --hold */
	struct source sig;
	struct source *socks;
	size_t n_socks;
	struct conn conns[MAX_CONNS];
};

static void format_peer(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET ?
				(const void *)&((const struct sockaddr_in *)ss)->sin_addr :
				(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/*
 * Turns the first len bytes of buf into a token: the part before the first newline, without
 * a trailing '\r', with every byte that is not printable ASCII (NUL included) replaced by '_'.
 * buf must have room for len + 1 bytes.
 */
static void sanitize_token(char *buf, size_t len)
{
	char *nl = memchr(buf, '\n', len);

	if (nl)
		len = (size_t)(nl - buf);
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > TOKEN_MAX)
		len = TOKEN_MAX;
	for (size_t i = 0; i < len; i++)
		if (buf[i] <= 0x20 || buf[i] >= 0x7f)
			buf[i] = '_';
	buf[len] = '\0';
}

static void log_flow(struct server *s, const char *proto, uint16_t port, const char *peer,
		     const char *token)
{
	char line[LINE_BUF + 128];
	int n = snprintf(line, sizeof(line), "%s %u %s %s\n", proto, (unsigned)port, peer,
			 *token ? token : "-");

	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (write(s->log_fd, line, (size_t)n) != n && !s->log_warned) {
		fprintf(stderr, "flowprobe: writing %s: %m\n", s->log_path);
		s->log_warned = true;
	}
}

static int epoll_add(struct server *s, struct source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, src->fd, &ev);
}

static int open_listener(struct server *s, int type, int protocol, const char *bind_addr,
			 uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	if (!parse_addr(bind_addr, port, &ss, &len)) {
		fprintf(stderr, "flowprobe: bad --bind address: %s\n", bind_addr);
		return -1;
	}
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	if (fd < 0) {
		fprintf(stderr, "flowprobe: socket: %m\n");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			goto fail;
		if (type == SOCK_DGRAM &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0)
			goto fail;
	} else if (type == SOCK_DGRAM &&
		   setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0) {
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		goto fail;

	struct source *src = &s->socks[s->n_socks];

	*src = (struct source){
		.kind = type == SOCK_STREAM ? SRC_TCP_LISTEN : SRC_UDP,
		.fd = fd,
		.port = port,
		.proto = type == SOCK_STREAM	    ? "tcp" :
			 protocol == IPPROTO_UDPLITE ? "udplite" :
						       "udp",
	};
	if (epoll_add(s, src, EPOLLIN) < 0)
		goto fail;
	s->n_socks++;
	return 0;
fail:
	fprintf(stderr, "flowprobe: %s %s port %u: %m\n",
		type == SOCK_STREAM ? "tcp" : protocol ? "udplite" : "udp", bind_addr,
		(unsigned)port);
	close(fd);
	return -1;
}

static void conn_close(struct server *s, struct conn *c)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->src.fd, NULL);
	close(c->src.fd);
	c->used = false;
}

static void handle_accept(struct server *s, struct source *l)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd =
		    accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;	/* EAGAIN, or a connection that went away: nothing to do */

		struct conn *c = NULL;

		for (size_t j = 0; j < ARRAY_SIZE(s->conns); j++)
			if (!s->conns[j].used) {
				c = &s->conns[j];
				break;
			}
		if (!c) {
			close(fd);
			continue;
		}
		c->src = (struct source){ .kind = SRC_CONN, .fd = fd, .port = l->port };
		c->len = 0;
		c->held = false;
		c->deadline = now_ms() + CONN_DEADLINE_MS;
		format_peer(&peer, c->peer, sizeof(c->peer));
		if (epoll_add(s, &c->src, EPOLLIN | EPOLLRDHUP) < 0) {
			close(fd);
			continue;
		}
		c->used = true;
	}
}

static void conn_reply(struct server *s, struct conn *c)
{
	char reply[LINE_BUF + 8];

	sanitize_token(c->buf, c->len);
	log_flow(s, "tcp", c->src.port, c->peer, c->buf);

	int n = snprintf(reply, sizeof(reply), "OK %s\n", c->buf);

	/* A few bytes into an empty socket buffer: never blocks in practice; ignore failure. */
	if (n > 0 && send(c->src.fd, reply, (size_t)n, MSG_NOSIGNAL) < 0)
		(void)0;
	if (s->hold) {
		size_t first_len = strnlen(c->buf, TOKEN_MAX);	/* sanitized: at most that */

		memcpy(c->first, c->buf, first_len);
		c->first[first_len] = '\0';
		c->len = 0;
		c->held = true;
		c->deadline = INT64_MAX;	/* open until the client closes */
		return;
	}
	shutdown(c->src.fd, SHUT_WR);
	conn_close(s, c);
}

/*
 * A held connection: read line by line; log each line that differs from the first (a marker
 * the client sent after some event), drop the repeats; close on EOF or error.
 */
static void handle_held(struct server *s, struct conn *c)
{
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(c->src.fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);

		if (n > 0) {
			char *nl;

			c->len += (size_t)n;
			while ((nl = memchr(c->buf, '\n', c->len))) {
				size_t line = (size_t)(nl - c->buf) + 1;
				char tok[LINE_BUF];

				memcpy(tok, c->buf, line);
				sanitize_token(tok, line);
				if (strcmp(tok, c->first) != 0)
					log_flow(s, "tcp", c->src.port, c->peer, tok);
				memmove(c->buf, c->buf + line, c->len - line);
				c->len -= line;
			}
			if (c->len >= sizeof(c->buf) - 1)
				c->len = 0;	/* no newline within the bound: drop */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(s, c);
		return;
	}
}

static void handle_conn(struct server *s, struct conn *c)
{
	if (c->held) {
		handle_held(s, c);
		return;
	}
	for (;;) {
		if (c->len >= sizeof(c->buf) - 1) {
			conn_close(s, c);	/* no newline within the bound: drop */
			return;
		}

		ssize_t n = recv(c->src.fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);

		if (n > 0) {
			char *nl = memchr(c->buf + c->len, '\n', (size_t)n);

			c->len += (size_t)n;
			if (nl) {
				c->len = (size_t)(nl - c->buf);
				conn_reply(s, c);
				return;
			}
			continue;
		}
		if (n == 0) {
			/* EOF: accept an unterminated line, drop an empty connection. */
			if (c->len > 0)
				conn_reply(s, c);
			else
				conn_close(s, c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_close(s, c);
		return;
	}
}

static void handle_udp(struct server *s, struct source *u)
{
	for (int i = 0; i < 64; i++) {
		char buf[LINE_BUF];
		char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			  CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct sockaddr_storage peer;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = {
			.msg_name = &peer,
			.msg_namelen = sizeof(peer),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf,
			.msg_controllen = sizeof(cbuf),
		};
		ssize_t n = recvmsg(u->fd, &mh, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;	/* EAGAIN, or a pending ICMP error: nothing to do */
		}
		if (mh.msg_flags & MSG_TRUNC)
			continue;	/* overlong datagram: drop */
		sanitize_token(buf, (size_t)n);

		char peer_s[INET6_ADDRSTRLEN];

		format_peer(&peer, peer_s, sizeof(peer_s));
		log_flow(s, u->proto, u->port, peer_s, buf);

		/* Reply from the address the datagram was sent to, so that a connected client
		 * socket accepts it: keep the destination address in the pktinfo, drop the
		 * interface so the route decides. */
		char rbuf[CMSG_SPACE(sizeof(struct in6_pktinfo))] = {};
		struct msghdr rh = {
			.msg_name = &peer,
			.msg_namelen = mh.msg_namelen,
			.msg_iov = &iov,
			.msg_iovlen = 1,
		};

		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				pi.ipi_spec_dst = pi.ipi_addr;
				pi.ipi_ifindex = 0;
				rh.msg_control = rbuf;
				rh.msg_controllen = CMSG_SPACE(sizeof(pi));
				struct cmsghdr *rc = CMSG_FIRSTHDR(&rh);

				rc->cmsg_level = IPPROTO_IP;
				rc->cmsg_type = IP_PKTINFO;
				rc->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(rc), &pi, sizeof(pi));
			} else if (cm->cmsg_level == IPPROTO_IPV6 &&
				   cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				pi.ipi6_ifindex = 0;
				rh.msg_control = rbuf;
				rh.msg_controllen = CMSG_SPACE(sizeof(pi));
				struct cmsghdr *rc = CMSG_FIRSTHDR(&rh);

				rc->cmsg_level = IPPROTO_IPV6;
				rc->cmsg_type = IPV6_PKTINFO;
				rc->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(rc), &pi, sizeof(pi));
			}
		}

		char reply[LINE_BUF + 8];
		int r = snprintf(reply, sizeof(reply), "OK %s\n", buf);

		if (r <= 0)
			continue;
		iov.iov_base = reply;
		iov.iov_len = (size_t)r;
		if (sendmsg(u->fd, &rh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && rh.msg_control) {
			/* The pktinfo source may be refused (e.g. the address went away):
			 * fall back to the route's choice. */
			rh.msg_control = NULL;
			rh.msg_controllen = 0;
			(void)sendmsg(u->fd, &rh, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
}

static void expire_conns(struct server *s)
{
	int64_t now = now_ms();

	for (size_t i = 0; i < ARRAY_SIZE(s->conns); i++)
		if (s->conns[i].used && s->conns[i].deadline <= now)
			conn_close(s, &s->conns[i]);
}

static int next_timeout(struct server *s)
{
	int64_t first = INT64_MAX;

	for (size_t i = 0; i < ARRAY_SIZE(s->conns); i++)
		if (s->conns[i].used && s->conns[i].deadline < first)
			first = s->conns[i].deadline;
	if (first == INT64_MAX)
		return -1;
	return remaining_ms(first);
}

static int serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "tcp", required_argument, NULL, 't' },
		{ "udp", required_argument, NULL, 'u' },
		{ "udplite", required_argument, NULL, 'L' },
		{ "bind", required_argument, NULL, 'b' },
		{ "hold", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static struct server s;
	uint16_t tcp_ports[MAX_PORTS], udp_ports[MAX_PORTS], udplite_ports[MAX_PORTS];
	size_t n_tcp = 0, n_udp = 0, n_udplite = 0, n_binds = 0;
	const char *binds[MAX_BINDS];
	int opt, ret = 1;	/* server: 0 after a signal, 1 on a setup or runtime error */
	sigset_t mask;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			s.log_path = optarg;
			break;
		case 't':
		case 'u':
		case 'L': {
			uint16_t *ports = opt == 't' ? tcp_ports : opt == 'u' ? udp_ports : udplite_ports;
			size_t *n = opt == 't' ? &n_tcp : opt == 'u' ? &n_udp : &n_udplite;

			if (*n >= MAX_PORTS || !parse_port(optarg, &ports[*n])) {
				fprintf(stderr, "flowprobe: bad or too many ports: %s\n", optarg);
				return EXIT_OTHER;
			}
			(*n)++;
			break;
		}
		case 'b':
			if (n_binds >= MAX_BINDS) {
				fprintf(stderr, "flowprobe: too many --bind addresses\n");
				return EXIT_OTHER;
			}
			binds[n_binds++] = optarg;
			break;
		case 'H':
			s.hold = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_OTHER;
		}
	}
	if (optind != argc || !s.log_path || n_tcp + n_udp + n_udplite == 0) {
		fprintf(stderr,
			"flowprobe: serve needs --log FILE and at least one --tcp, --udp or --udplite "
			"port\n");
		return EXIT_OTHER;
	}
	if (n_binds == 0) {
		binds[n_binds++] = "0.0.0.0";
		binds[n_binds++] = "::";
	}

	/* Signals arrive through a signalfd so the loop ends cleanly between events. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return EXIT_OTHER;
	signal(SIGPIPE, SIG_IGN);

	s.epfd = -1;
	s.sig.fd = -1;
	s.log_fd = open(s.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (s.log_fd < 0) {
		fprintf(stderr, "flowprobe: %s: %m\n", s.log_path);
		return 1;
	}
	s.socks = calloc((n_tcp + n_udp + n_udplite) * n_binds, sizeof(*s.socks));
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	s.sig = (struct source){.kind = SRC_SIGNAL,
				.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)};
	if (!s.socks || s.epfd < 0 || s.sig.fd < 0 || epoll_add(&s, &s.sig, EPOLLIN) < 0) {
		fprintf(stderr, "flowprobe: setup: %m\n");
		goto out;
	}

	for (size_t b = 0; b < n_binds; b++) {
		for (size_t i = 0; i < n_tcp; i++)
			if (open_listener(&s, SOCK_STREAM, 0, binds[b], tcp_ports[i]) < 0)
				goto out;
		for (size_t i = 0; i < n_udp; i++)
			if (open_listener(&s, SOCK_DGRAM, 0, binds[b], udp_ports[i]) < 0)
				goto out;
		for (size_t i = 0; i < n_udplite; i++)
			if (open_listener(&s, SOCK_DGRAM, IPPROTO_UDPLITE, binds[b],
					  udplite_ports[i]) < 0)
				goto out;
	}

	fputs("ready\n", stdout);
	fflush(stdout);

	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(s.epfd, evs, ARRAY_SIZE(evs), next_timeout(&s));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "flowprobe: epoll_wait: %m\n");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct source *src = evs[i].data.ptr;

			switch (src->kind) {
			case SRC_SIGNAL:
				ret = EXIT_OK;
				goto out;
			case SRC_TCP_LISTEN:
				handle_accept(&s, src);
				break;
			case SRC_UDP:
				handle_udp(&s, src);
				break;
			case SRC_CONN: {
				struct conn *c = (struct conn *)src;

				if (c->used)
					handle_conn(&s, c);
				break;
			}
			}
		}
		expire_conns(&s);
	}
out:
	for (size_t i = 0; i < ARRAY_SIZE(s.conns); i++)
		if (s.conns[i].used)
			conn_close(&s, &s.conns[i]);
	for (size_t i = 0; i < s.n_socks; i++)
		close(s.socks[i].fd);
	free(s.socks);
	if (s.sig.fd >= 0)
		close(s.sig.fd);
	if (s.epfd >= 0)
		close(s.epfd);
	close(s.log_fd);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_OTHER;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "tcp") == 0 || strcmp(argv[1], "udp") == 0 ||
	    strcmp(argv[1], "udp-connect") == 0 || strcmp(argv[1], "hold") == 0)
		return client_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "serve") == 0)
		return serve_main(argc - 1, argv + 1);
	fprintf(stderr, "flowprobe: unknown mode: %s\n", argv[1]);
	usage(stderr);
	return EXIT_OTHER;
}

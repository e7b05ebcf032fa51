// SPDX-License-Identifier: GPL-2.0-only
/*
 * verdict_probe: asks the kernel for its verdict on many flows, sending nothing.
 *
 * Reads one case per line on stdin, "PROTO ADDR PORT" (PROTO tcp or udp; ADDR an IPv4 or IPv6
 * literal, ::ffff:a.b.c.d included; PORT 0-65535), and for each opens a fresh socket of ADDR's
 * family and calls connect() on it: a nonblocking TCP connect, or a UDP connect (which sends
 * nothing). With --udp-sendto, a UDP case calls sendto() of an empty datagram instead, so that
 * the cgroup sendmsg hooks judge it (port 0 is refused by sendto itself, with EINVAL).
 *
 * Prints one line per case, in order: the errno name of the result (EPERM, ENETUNREACH, ...),
 * or OK when the call succeeded. Run in a network namespace with only `lo` up and no routes,
 * a flow that the cgroup hooks allow fails at the route lookup with ENETUNREACH and one they
 * refuse fails before it with EPERM; either way no packet leaves.
 *
 * Exit code: 0 when every line was a case (whatever the verdicts), 2 on a usage error or a
 * malformed line (named on stderr; the cases before it are printed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE_MAX_LINE	256	/* longer lines are malformed */
#define PROBE_MAX_CASES 1000000 /* more lines are refused */

static void usage(FILE *f)
{
	fputs("Usage: verdict_probe [--udp-sendto] < CASES\n"
	      "  CASES: one \"PROTO ADDR PORT\" per line (tcp|udp, an IP literal, 0-65535)\n"
	      "  prints one line per case: OK or the errno name (EPERM, ENETUNREACH, ...)\n",
	      f);
}

/* One case: its result as an errno (0 = the call succeeded). */
static int probe(bool tcp, int family, const struct sockaddr *sa, socklen_t len, bool sendto_udp)
{
	int type = (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
	int fd = socket(family, type, tcp ? IPPROTO_TCP : IPPROTO_UDP);
	int r, err = 0;

	if (fd < 0)
		return errno;
	if (!tcp && sendto_udp)
		r = (int)sendto(fd, "", 0, 0, sa, len);
	else
		r = connect(fd, sa, len);
	if (r < 0)
		err = errno;
	close(fd);
	return err;
}

static int parse_case(char *line, bool *ret_tcp, struct sockaddr_storage *ss, socklen_t *ret_len)
{
	char proto[8], addr[INET6_ADDRSTRLEN + 1], extra[2];
	unsigned long port;
	char *end;
	char portstr[8];

	if (sscanf(line, "%7s %46s %7s %1s", proto, addr, portstr, extra) != 3)
		return -EINVAL;
	if (!strcmp(proto, "tcp"))
		*ret_tcp = true;
	else if (!strcmp(proto, "udp"))
		*ret_tcp = false;
	else
		return -EINVAL;
	errno = 0;
	port = strtoul(portstr, &end, 10);
	if (errno || *end || end == portstr || portstr[0] == '-' || port > 65535)
		return -EINVAL;

	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*s4);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char line[PROBE_MAX_LINE + 2];
	bool sendto_udp = false;
	unsigned long n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--udp-sendto")) {
			sendto_udp = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}

	while (fgets(line, sizeof(line), stdin)) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		size_t l = strlen(line);
		bool tcp = false;
		int err;

		n++;
		if (n > PROBE_MAX_CASES) {
			fprintf(stderr, "verdict_probe: more than %d cases\n", PROBE_MAX_CASES);
			return 2;
		}
		if (l == 0 || line[l - 1] != '\n') {
			if (l > PROBE_MAX_LINE) {
				fprintf(stderr, "verdict_probe: line %lu is too long\n", n);
				return 2;
			}
		} else {
			line[--l] = '\0';
		}
		if (parse_case(line, &tcp, &ss, &len) < 0) {
			fprintf(stderr,
				"verdict_probe: line %lu: want \"PROTO ADDR PORT\", got '%s'\n", n,
				line);
			return 2;
		}
		err = probe(tcp, ss.ss_family, (struct sockaddr *)&ss, len, sendto_udp);
		if (err == 0)
			puts("OK");
		else {
			const char *name = strerrorname_np(err);
			if (name)
				puts(name);
			else
				printf("E%d\n", err);
		}
	}
	if (ferror(stdin)) {
		perror("verdict_probe: reading stdin");
		return 2;
	}
	return fflush(stdout) == 0 ? 0 : 2;
}

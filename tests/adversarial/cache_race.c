// SPDX-License-Identifier: GPL-2.0-only
/*
 * cache_race: two threads sending on ONE unconnected UDP socket at once, for
 * tests/adversarial/test_verdict_cache_threads.sh. Thread "a" sends datagrams "TOKEN-a" to
 * ADDR_A PORT_A, thread "b" datagrams "TOKEN-b" to ADDR_B PORT_B, each as fast as it can, until
 * --ms milliseconds passed (checked every 256 datagrams) or --max datagrams each were tried
 * (both bounds hold; at least min(256, --max) each). The kernel
 * judges each datagram and caches its verdict in the socket's storage from both threads at once:
 * what one thread writes must never let the other's datagram through.
 *
 * Prints one line: "a_sent=N a_eperm=N a_other=N b_sent=N b_eperm=N b_other=N first_other=ERRNO"
 * (sent: sendto() succeeded; eperm: refused with EPERM; other: any other error, the first one
 * named). Exit code 0 when it ran (whatever the counts), 2 on a usage or setup error.
 *
 * Usage: cache_race ADDR_A PORT_A ADDR_B PORT_B --token T [--ms N] [--max N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RACE_MAX_MS	 60000	   /* --ms at most */
#define RACE_MAX_SENDS	 10000000L /* --max at most */
#define RACE_TOKEN_MAX	 64
#define RACE_CHECK_EVERY 256 /* datagrams between two reads of the clock */

struct side {
	struct sockaddr_storage to;
	socklen_t to_len;
	char payload[RACE_TOKEN_MAX + 4];
	size_t payload_len;
	long sent, eperm, other;
	int first_other; /* errno of the first other error, 0: none */
};

static int race_fd = -1;
static long race_max;
static uint64_t race_deadline_ns;
static atomic_bool race_go;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_addr(const char *addr, const char *port, int family, struct side *s)
{
	char *end;
	long p;

	errno = 0;
	p = strtol(port, &end, 10);
	if (errno || *end || p < 1 || p > 65535)
		return -EINVAL;
	memset(&s->to, 0, sizeof(s->to));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&s->to;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
			return -EINVAL;
		s->to_len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s->to;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
			return -EINVAL;
		s->to_len = sizeof(*in6);
	}
	return 0;
}

static void *side_run(void *arg)
{
	struct side *s = arg;

	while (!atomic_load(&race_go))
		; /* both threads start together */
	/*
	 * The first RACE_CHECK_EVERY datagrams (or --max) are always tried: a thread that a loaded
	 * machine schedules only after the deadline still sends.
	 */
	for (long i = 0; i < race_max; i++) {
		if (i > 0 && i % RACE_CHECK_EVERY == 0 && now_ns() >= race_deadline_ns)
			break;
		if (sendto(race_fd, s->payload, s->payload_len, 0, (struct sockaddr *)&s->to,
			   s->to_len) >= 0) {
			s->sent++;
		} else if (errno == EPERM) {
			s->eperm++;
		} else {
			if (!s->first_other)
				s->first_other = errno;
			s->other++;
		}
	}
	return NULL;
}

static void usage(void)
{
	fputs(
	    "Usage: cache_race ADDR_A PORT_A ADDR_B PORT_B --token T [--ms N] [--max N]\n"
	    "  two threads, one unconnected UDP socket: a sends to A, b to B; prints the counts\n",
	    stderr);
}

int main(int argc, char **argv)
{
	struct side a = {}, b = {};
	const char *token = NULL;
	long ms = 5000, max = 1000000;
	pthread_t ta, tb;
	int family;

	if (argc < 5) {
		usage();
		return 2;
	}
	for (int i = 5; i < argc; i++) {
		char *end;

		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		errno = 0;
		if (!strcmp(argv[i], "--token")) {
			token = argv[++i];
		} else if (!strcmp(argv[i], "--ms")) {
			ms = strtol(argv[++i], &end, 10);
			if (errno || *end || ms < 1 || ms > RACE_MAX_MS) {
				fprintf(stderr, "cache_race: --ms: 1 to %d\n", RACE_MAX_MS);
				return 2;
			}
		} else if (!strcmp(argv[i], "--max")) {
			max = strtol(argv[++i], &end, 10);
			if (errno || *end || max < 1 || max > RACE_MAX_SENDS) {
				fprintf(stderr, "cache_race: --max: 1 to %ld\n", RACE_MAX_SENDS);
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	if (!token || !*token || strlen(token) > RACE_TOKEN_MAX || strchr(token, ' ')) {
		fprintf(stderr, "cache_race: --token: 1 to %d characters, no space\n",
			RACE_TOKEN_MAX);
		return 2;
	}
	family = strchr(argv[1], ':') ? AF_INET6 : AF_INET;
	if ((strchr(argv[3], ':') ? AF_INET6 : AF_INET) != family ||
	    parse_addr(argv[1], argv[2], family, &a) < 0 ||
	    parse_addr(argv[3], argv[4], family, &b) < 0) {
		fprintf(stderr, "cache_race: two addresses of one family and two ports 1-65535\n");
		return 2;
	}
	a.payload_len = (size_t)snprintf(a.payload, sizeof(a.payload), "%s-a\n", token);
	b.payload_len = (size_t)snprintf(b.payload, sizeof(b.payload), "%s-b\n", token);

	race_fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (race_fd < 0) {
		perror("cache_race: socket");
		return 2;
	}
	race_max = max;
	race_deadline_ns = now_ns() + (uint64_t)ms * 1000000ull;
	if (pthread_create(&ta, NULL, side_run, &a)) {
		fprintf(stderr, "cache_race: cannot start a thread\n");
		return 2;
	}
	if (pthread_create(&tb, NULL, side_run, &b)) {
		race_max = 0; /* a stops at once */
		atomic_store(&race_go, true);
		pthread_join(ta, NULL);
		fprintf(stderr, "cache_race: cannot start a thread\n");
		return 2;
	}
	atomic_store(&race_go, true);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	close(race_fd);
	printf("a_sent=%ld a_eperm=%ld a_other=%ld b_sent=%ld b_eperm=%ld b_other=%ld "
	       "first_other=%s\n",
	       a.sent, a.eperm, a.other, b.sent, b.eperm, b.other,
	       b.first_other   ? strerror(b.first_other)
	       : a.first_other ? strerror(a.first_other)
			       : "-");
	return 0;
}

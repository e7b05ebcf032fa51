// SPDX-License-Identifier: GPL-2.0-only
/*
 * thread_hold: holds the next thread a process starts, before it runs a single instruction of
 * its own, until told to let it go: for tests/integration/test_stats_during_flip.sh, which holds
 * the agent's thread that waits for the grace period after a flip (userspace/agent/loader.c),
 * with no hook in the agent.
 *
 *     thread_hold PID TIMEOUT_MS
 *
 * Traces PID (PTRACE_SEIZE with PTRACE_O_TRACECLONE) and prints "attached". The first thread
 * PID starts is traced too and stays in its first stop; PID is let go at once and prints
 * "held TID". SIGUSR1 lets the thread go ("released"; exit 0), or TIMEOUT_MS ("released after
 * the time-out"; exit 1); so does the kernel should this process end any other way. Exit 1 too
 * when no thread started within TIMEOUT_MS, 2 on an error.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

/* Milliseconds left until deadline (CLOCK_MONOTONIC), 0 when it is past. */
static long left_ms(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* The time ms milliseconds from now (CLOCK_MONOTONIC). */
static void deadline_in(struct timespec *deadline, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += ms / 1000;
	deadline->tv_nsec += (ms % 1000) * 1000000;
	if (deadline->tv_nsec >= 1000000000) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000;
	}
}

/* Wait for one of the blocked signals in set, at most until deadline: the signal, or 0. */
static int wait_signal(const sigset_t *set, const struct timespec *deadline)
{
	long ms = left_ms(deadline);
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	int sig = sigtimedwait(set, NULL, &t);

	return sig > 0 ? sig : 0;
}

int main(int argc, char **argv)
{
	struct timespec deadline;
	sigset_t set;
	pid_t pid, tid = 0;
	bool released = false;
	long timeout_ms;
	unsigned long msg;
	int status;

	if (argc != 3 || (pid = atoi(argv[1])) <= 0 || (timeout_ms = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: thread_hold PID TIMEOUT_MS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACECLONE) < 0) {
		fprintf(stderr, "thread_hold: PTRACE_SEIZE %d: %s\n", pid, strerror(errno));
		return 2;
	}
	printf("attached\n");

	/* Until PID starts a thread: its other stops (a signal) are passed on. */
	deadline_in(&deadline, timeout_ms);
	while (!tid) {
		pid_t w = waitpid(pid, &status, __WALL | WNOHANG);

		if (w < 0) {
			fprintf(stderr, "thread_hold: waitpid %d: %s\n", pid, strerror(errno));
			return 2;
		}
		if (w == 0) {
			if (!left_ms(&deadline)) {
				fprintf(stderr, "thread_hold: %d started no thread in %ld ms\n", pid,
					timeout_ms);
				return 1;
			}
			wait_signal(&set, &deadline);
			continue;
		}
		if (!WIFSTOPPED(status)) {
			fprintf(stderr, "thread_hold: %d ended\n", pid);
			return 2;
		}
		if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_CLONE << 8))) {
			if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) < 0)
				return 2;
			tid = (pid_t)msg;
			ptrace(PTRACE_DETACH, pid, 0, 0);
		} else {
			/* A signal-delivery stop passes the signal on; another stop, nothing. */
			int sig = status >> 16 == 0 ? WSTOPSIG(status) : 0;

			ptrace(PTRACE_CONT, pid, 0, sig);
		}
	}
	/* The new thread's first stop (PTRACE_EVENT_STOP): it is held there. */
	if (waitpid(tid, &status, __WALL) != tid || !WIFSTOPPED(status)) {
		fprintf(stderr, "thread_hold: thread %d did not stop\n", tid);
		return 2;
	}
	printf("held %d\n", tid);

	deadline_in(&deadline, timeout_ms);
	while (left_ms(&deadline) && !released)
		released = wait_signal(&set, &deadline) == SIGUSR1;
	if (ptrace(PTRACE_DETACH, tid, 0, 0) < 0) {
		fprintf(stderr, "thread_hold: PTRACE_DETACH %d: %s\n", tid, strerror(errno));
		return 2;
	}
	printf("released%s\n", released ? "" : " after the time-out");
	return released ? 0 : 1;
}

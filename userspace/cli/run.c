// SPDX-License-Identifier: GPL-2.0-only
/* `carwall run --app ID CMD`: run a command as an app, in a sub-cgroup of the app's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cgroup.h"
#include "control.h"
#include "util.h"

static pid_t run_child_pid;

static void run_forward_signal(int sig)
{
	if (run_child_pid > 0)
		kill(run_child_pid, sig);
}

/* Start argv as a child born in the cgroup (clone3 CLONE_INTO_CGROUP), or moved there before
 * exec on kernels without it. */
static pid_t run_spawn(const char *cgroup, int cgroup_fd, char **argv, const char *app)
{
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (__u64)cgroup_fd,
	};
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));

	if (pid < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		pid = fork();
		if (pid == 0 && cgroup_attach_pid(cgroup, 0) < 0) {
			fprintf(stderr, "carwall: cannot join cgroup %s: %s\n", cgroup,
				strerror(errno));
			_exit(127);
		}
	}
	if (pid != 0)
		return pid;

	setenv("CARWALL_APP", app, 1);
	execvp(argv[0], argv);
	fprintf(stderr, "carwall: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL;
	_cleanup_free_ char *sub = NULL;
	_cleanup_close_ int cgfd = -1;
	int i, r, status;

	i = cli_parse(c, argc, argv, true, false);
	if (i < 0)
		return EXIT_USAGE;
	if (!c->app) {
		fprintf(stderr, "carwall run: --app ID is required\n");
		return EXIT_USAGE;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "carwall run: no command given\n");
		return EXIT_USAGE;
	}
	if (!policy_app_id_valid(c->app))
		return cli_fail(c, "'%s' is not a valid app id", c->app);

	/* The agent knows where the app's cgroup is and makes sure it is enforced. */
	char request[CONTROL_MAX_REQUEST];
	snprintf(request, sizeof(request), "app-cgroup %s", c->app);
	r = cli_request(c, request, "", &reply);
	if (r < 0)
		return -r;
	const char *cgroup = json_str(reply, "cgroup");
	if (!cgroup) {
		json_object_put(reply);
		return cli_fail(c, "the agent sent no cgroup");
	}

	/*
	 * A sub-cgroup of the app's: judged as the app, and no process is added to a cgroup
	 * systemd manages for a unit. Removed when the command ends.
	 */
	r = asprintf(&sub, "%s/carwall-run.%d", cgroup, (int)getpid());
	json_object_put(reply);
	if (r < 0)
		return cli_fail(c, "out of memory");
	if (mkdir(sub, 0755) < 0 && errno != EEXIST)
		return cli_fail(c, "cannot create cgroup %s: %s", sub, strerror(errno));
	cgfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		r = cli_fail(c, "cannot open cgroup %s: %s", sub, strerror(errno));
		rmdir(sub);
		return r;
	}

	struct sigaction sa = { .sa_handler = run_forward_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* The terminal sends SIGINT/SIGQUIT to the child too; let it decide. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);

	run_child_pid = run_spawn(sub, cgfd, argv + i, c->app);
	if (run_child_pid < 0) {
		r = cli_fail(c, "cannot start %s: %s", argv[i], strerror(errno));
		rmdir(sub);
		return r;
	}
	while (waitpid(run_child_pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	}

	/* The cgroup empties once its last process is reaped; bounded retries. */
	for (int tries = 0; tries < 100 && rmdir(sub) < 0 && errno == EBUSY; tries++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_FAILURE;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * revoke_tool: runs one revocation pass (userspace/agent/revoke.c) without the agent, for
 * tests/integration/test_revoke.sh.
 *
 *   revoke_tool --policy FILE --cgroup-root DIR [--app ID[=PATH]]... [--guard PATH]...
 *               [--timeout-ms N]
 *   revoke_tool --probe
 *
 * The policy is parsed and compiled as the agent does; each --app names an app of the policy
 * and its cgroup (default: the policy's cgroup for it, under --cgroup-root; a relative PATH is
 * under --cgroup-root too); each --guard is a cgroup whose every flow is refused. Prints one
 * line:
 *
 *   seen=N judged=N kept=N server_side=N refused=N destroyed=N gone=N errors=N unmanaged=N
 *   unjudged=N netns=N netns_failed=N dumps_interrupted=N unsupported=0|1 truncated=0|1
 *   timed_out=0|1 us=N
 *
 * and, when a namespace failed, what failed in the first one on stderr.
 * Exit code: 0 the pass completed, 4 the kernel cannot destroy sockets, 1 anything else (with a
 * message on stderr). --probe prints nothing and exits 0 when the kernel can destroy sockets, 4
 * when it cannot, 1 when asking failed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "policy.h"
#include "policy_compile.h"
#include "revoke.h"
#include "util.h"

#define EXIT_UNSUPPORTED 4
#define MAX_ARGS 64

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_maps *, policy_maps_free)

static void usage(FILE *f)
{
	fputs("Usage: revoke_tool --policy FILE --cgroup-root DIR [--app ID[=PATH]]...\n"
	      "                   [--guard PATH]... [--timeout-ms N]\n"
	      "       revoke_tool --probe\n",
	      f);
}

/* PATH if absolute, else root/PATH, into a new string. */
static char *cgroup_path(const char *root, const char *path)
{
	char *s;

	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&s, "%s/%s", root, path) < 0)
		return NULL;
	return s;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "cgroup-root", required_argument, NULL, 'r' },
		{ "app", required_argument, NULL, 'a' },
		{ "guard", required_argument, NULL, 'g' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "probe", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *policy_path = NULL, *root = NULL, *apps[MAX_ARGS], *guards[MAX_ARGS];
	size_t n_apps = 0, n_guards = 0, n = 0;
	_cleanup_(policy_freep) struct policy *pol = NULL;
	_cleanup_(policy_maps_freep) struct policy_maps *maps = NULL;
	struct revoke_cgroup cgroups[2 * MAX_ARGS];
	char *paths[2 * MAX_ARGS] = {};
	struct revoke_stats st;
	struct policy_error perr = {};
	char mount[PATH_MAX], reason[512];
	unsigned long timeout = 0;
	bool probe = false;
	int opt, r, ret = 1;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			policy_path = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'a':
		case 'g':
			if ((opt == 'a' ? n_apps : n_guards) >= MAX_ARGS) {
				fprintf(stderr, "revoke_tool: too many --app, --guard\n");
				return 1;
			}
			if (opt == 'a')
				apps[n_apps++] = optarg;
			else
				guards[n_guards++] = optarg;
			break;
		case 't': {
			char *end;

			errno = 0;
			timeout = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || timeout > 600000) {
				fprintf(stderr, "revoke_tool: bad --timeout-ms: %s\n", optarg);
				return 1;
			}
			break;
		}
		case 'P':
			probe = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}

	if (probe) {
		r = revoke_probe();
		if (r == -EOPNOTSUPP)
			return EXIT_UNSUPPORTED;
		if (r < 0) {
			fprintf(stderr, "revoke_tool: probing SOCK_DESTROY: %s\n", strerror(-r));
			return 1;
		}
		return 0;
	}

	if (!policy_path || !root) {
		usage(stderr);
		return 1;
	}
	r = policy_parse_file(policy_path, &pol, &perr);
	if (r < 0) {
		policy_error_format(&perr, reason, sizeof(reason));
		fprintf(stderr, "revoke_tool: %s\n", reason);
		return 1;
	}
	r = policy_compile(pol, 0, &maps, reason, sizeof(reason));
	if (r < 0) {
		fprintf(stderr, "revoke_tool: compiling %s: %s\n", policy_path,
			*reason ? reason : strerror(-r));
		return 1;
	}
	r = cgroup_find_mount(mount, sizeof(mount));
	if (r < 0) {
		fprintf(stderr, "revoke_tool: no cgroup2 mount: %s\n", strerror(-r));
		return 1;
	}

	for (size_t i = 0; i < n_apps; i++) {
		_cleanup_free_ char *id = strdup(apps[i]);
		char *eq = id ? strchr(id, '=') : NULL;
		const struct policy_app *app;

		if (!id)
			goto oom;
		if (eq)
			*eq = '\0';
		app = policy_find_app(pol, id);
		if (!app) {
			fprintf(stderr, "revoke_tool: no app '%s' in %s\n", id, policy_path);
			goto out;
		}
		paths[n] = cgroup_path(root, eq ? eq + 1 : app->cgroup);
		if (!paths[n])
			goto oom;
		cgroups[n] = (struct revoke_cgroup){ .path = paths[n],
						     .app = (uint32_t)(app - pol->apps) };
		n++;
	}
	for (size_t i = 0; i < n_guards; i++) {
		paths[n] = cgroup_path(root, guards[i]);
		if (!paths[n])
			goto oom;
		cgroups[n] = (struct revoke_cgroup){ .path = paths[n], .app = REVOKE_APP_DENY_ALL };
		n++;
	}

	r = revoke_run(&(struct revoke_params){ .cgroup_mount = mount,
						.cgroups = cgroups,
						.n_cgroups = n,
						.maps = maps,
						.n_apps = (uint32_t)pol->n_apps,
						.timeout_ms = (unsigned)timeout },
		       &st);
	printf("seen=%u judged=%u kept=%u server_side=%u refused=%u destroyed=%u gone=%u errors=%u "
	       "unmanaged=%u unjudged=%u netns=%u netns_failed=%u dumps_interrupted=%u "
	       "unsupported=%d truncated=%d timed_out=%d us=%llu\n",
	       st.seen, st.judged, st.kept, st.server_side, st.refused, st.destroyed, st.gone,
	       st.errors, st.unmanaged, st.unjudged, st.netns, st.netns_failed,
	       st.dumps_interrupted, st.destroy_unsupported, st.truncated, st.timed_out,
	       (unsigned long long)st.elapsed_us);
	fflush(stdout);
	if (st.netns_failed)
		fprintf(stderr, "revoke_tool: %u of %u network namespaces not enumerated in full; "
				"the first failed at %s: %s\n",
			st.netns_failed, st.netns, st.netns_failed_at, strerror(-st.netns_error));
	if (st.first_error)
		fprintf(stderr, "revoke_tool: first per-socket error: %s\n",
			strerror(-st.first_error));
	if (r == -EOPNOTSUPP) {
		ret = EXIT_UNSUPPORTED;
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "revoke_tool: revocation pass: %s\n", strerror(-r));
		goto out;
	}
	ret = 0;
	goto out;
oom:
	fprintf(stderr, "revoke_tool: out of memory\n");
out:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwalld: the carwall agent. Loads the BPF programs, fills their maps from the policy,
 * attaches them at the cgroup root with pinned bpf_links (enforcement outlives this process),
 * and answers the CLI on its control socket. Foreground process, logs to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "control.h"
#include "fileio.h"
#include "loader.h"
#include "log.h"
#include "policy.h"
#include "policy_compile.h"
#include "util.h"

#define DEFAULT_POLICY "/etc/carwall/policy.yaml"
#define DEFAULT_STATE_DIR "/var/lib/carwall"

struct agent {
	/* Options. */
	const char *policy_path;
	const char *pin_dir;
	const char *run_dir;
	const char *state_dir;
	char cgroup_root[4096];
	char cgroup_mount[4096];

	struct loader *loader;

	/* The policy in force, with what it was resolved to on this host. */
	struct policy *policy;
	char policy_sha256[65];
	struct loader_cgroup *cgroups; /* one per app, same order as policy->apps */
	char **cgroup_paths;
	time_t loaded_at;
	struct policy_maps_stats {
		size_t dst4, dst6, ports, portsets;
	} stats;

	/* The last refused policy, "" when the last attempt succeeded. */
	char last_error[1024];
};

static void agent_free_resolved(size_t n_apps, struct loader_cgroup *cgroups, char **paths)
{
	if (paths)
		for (size_t i = 0; i < n_apps; i++)
			free(paths[i]);
	free(paths);
	free(cgroups);
}

/*
 * Make `p` the policy in force: create and resolve each app's cgroup, compile for the inactive
 * generation, write it and flip. On failure the policy in force is untouched and *reason says
 * why and p stays the caller's. On success the agent owns p (it may be the policy in force,
 * applied again to register a recreated cgroup).
 */
static int agent_apply(struct agent *a, struct policy *p, const char *sha256, char *reason,
		       size_t reason_size)
{
	struct loader_cgroup *cgroups = calloc(p->n_apps + 1, sizeof(*cgroups));
	char **paths = calloc(p->n_apps + 1, sizeof(*paths));
	struct policy_maps *maps = NULL;
	int r;

	if (!cgroups || !paths) {
		r = -ENOMEM;
		snprintf(reason, reason_size, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < p->n_apps; i++) {
		if (asprintf(&paths[i], "%s/%s", a->cgroup_root, p->apps[i].cgroup) < 0) {
			paths[i] = NULL;
			r = -ENOMEM;
			snprintf(reason, reason_size, "out of memory");
			goto fail;
		}
		/* Created now, so that the app is judged from its first connect() on. */
		r = cgroup_create(paths[i]);
		if (r >= 0)
			r = cgroup_get_id(paths[i], &cgroups[i].id);
		if (r >= 0)
			r = cgroup_get_level(a->cgroup_mount, paths[i], &cgroups[i].level);
		if (r < 0) {
			snprintf(reason, reason_size, "app '%s': cgroup %s: %s", p->apps[i].id,
				 paths[i], strerror(-r));
			goto fail;
		}
		cgroups[i].app = (uint32_t)i;
	}

	r = policy_compile(p, loader_next_gen(a->loader), &maps, reason, reason_size);
	if (r < 0) {
		if (!reason[0])
			snprintf(reason, reason_size, "compiling the policy: %s", strerror(-r));
		goto fail;
	}
	r = loader_apply(a->loader, maps, cgroups, p->n_apps);
	if (r < 0) {
		snprintf(reason, reason_size, "writing the policy into the BPF maps: %s",
			 strerror(-r));
		goto fail;
	}

	if (a->policy)
		agent_free_resolved(a->policy->n_apps, a->cgroups, a->cgroup_paths);
	if (a->policy != p)
		policy_free(a->policy);
	a->policy = p;
	a->cgroups = cgroups;
	a->cgroup_paths = paths;
	a->loaded_at = time(NULL);
	a->stats.dst4 = maps->n_dst4;
	a->stats.dst6 = maps->n_dst6;
	a->stats.ports = maps->n_ports;
	a->stats.portsets = maps->n_portsets;
	snprintf(a->policy_sha256, sizeof(a->policy_sha256), "%s", sha256);
	policy_maps_free(maps);
	return 0;
fail:
	policy_maps_free(maps);
	agent_free_resolved(p->n_apps, cgroups, paths);
	return r;
}

static int sha256_hex(const void *data, size_t size, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) || len != 32)
		return -EIO;
	for (unsigned i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/*
 * Read, parse, validate, compile and apply the policy file. A policy that fails at any step
 * leaves the one in force untouched; the reason is logged and kept for `carwall status`.
 */
static int agent_load_policy(struct agent *a)
{
	_cleanup_free_ char *data = NULL;
	struct policy_error perr = {};
	struct policy *p = NULL;
	char reason[1024] = "";
	char sha[65];
	size_t size;
	int r;

	r = read_file_limited(a->policy_path, POLICY_MAX_FILE_BYTES, &data, &size);
	if (r == -EFBIG)
		snprintf(reason, sizeof(reason), "%s: larger than %u bytes", a->policy_path,
			 POLICY_MAX_FILE_BYTES);
	else if (r < 0)
		snprintf(reason, sizeof(reason), "%s: %s", a->policy_path, strerror(-r));
	if (r >= 0) {
		r = sha256_hex(data, size, sha);
		if (r < 0)
			snprintf(reason, sizeof(reason), "%s: hashing failed", a->policy_path);
	}
	if (r >= 0) {
		r = policy_parse_buffer(a->policy_path, data, size, &p, &perr);
		if (r < 0)
			policy_error_format(&perr, reason, sizeof(reason));
	}
	if (r >= 0) {
		r = agent_apply(a, p, sha, reason, sizeof(reason));
		if (r < 0)
			policy_free(p);
	}

	if (r < 0) {
		snprintf(a->last_error, sizeof(a->last_error), "%s", reason);
		if (a->policy || loader_has_policy(a->loader))
			log_error("Policy refused, the last good policy stays in force: %s", reason);
		else
			log_error("Policy refused: %s", reason);
		return r;
	}
	a->last_error[0] = '\0';
	log_info("Policy %s in force: %zu apps, %zu rules, generation %u (%zu IPv4 and %zu IPv6 "
		 "prefixes, %zu port entries in %zu port sets), sha256 %s",
		 a->policy_path, a->policy->n_apps, a->policy->n_rules,
		 !loader_next_gen(a->loader), a->stats.dst4, a->stats.dst6, a->stats.ports,
		 a->stats.portsets, a->policy_sha256);
	return 0;
}

static struct json_object *json_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct json_object *json_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(buf));
	return o;
}

static struct json_object *agent_status_json(struct agent *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *hooks = json_object_new_array();
	char when[64] = "";

	for (unsigned i = 0; loader_hook_names[i]; i++)
		json_object_array_add(hooks, json_object_new_string(loader_hook_names[i]));
	json_object_object_add(o, "agent", json_object_new_string("running"));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "enforcing", json_object_new_boolean(a->policy != NULL));
	json_object_object_add(o, "cgroup_root", json_object_new_string(a->cgroup_root));
	json_object_object_add(o, "pin_dir", json_object_new_string(a->pin_dir));
	json_object_object_add(o, "hooks", hooks);
	json_object_object_add(o, "generation",
			       json_object_new_int((int)!loader_next_gen(a->loader)));
	if (a->policy) {
		struct json_object *pol = json_object_new_object();
		struct json_object *apps = json_object_new_array();

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&a->loaded_at));
		json_object_object_add(pol, "path", json_object_new_string(a->policy_path));
		json_object_object_add(pol, "sha256", json_object_new_string(a->policy_sha256));
		json_object_object_add(pol, "loaded_at", json_object_new_string(when));
		json_object_object_add(pol, "apps", json_object_new_int64((int64_t)a->policy->n_apps));
		json_object_object_add(pol, "rules",
				       json_object_new_int64((int64_t)a->policy->n_rules));
		json_object_object_add(pol, "ipv4_prefixes", json_object_new_int64((int64_t)a->stats.dst4));
		json_object_object_add(pol, "ipv6_prefixes", json_object_new_int64((int64_t)a->stats.dst6));
		json_object_object_add(pol, "port_entries", json_object_new_int64((int64_t)a->stats.ports));
		json_object_object_add(o, "policy", pol);
		for (size_t i = 0; i < a->policy->n_apps; i++) {
			struct json_object *app = json_object_new_object();
			json_object_object_add(app, "id", json_object_new_string(a->policy->apps[i].id));
			json_object_object_add(app, "cgroup", json_object_new_string(a->cgroup_paths[i]));
			json_object_object_add(app, "rules",
					       json_object_new_int64((int64_t)a->policy->apps[i].n_rules));
			json_object_array_add(apps, app);
		}
		json_object_object_add(o, "apps", apps);
	}
	json_object_object_add(o, "last_error", a->last_error[0]
							 ? json_object_new_string(a->last_error)
							 : NULL);
	return o;
}

/* The cgroup of an app, created and registered again if it was removed since the policy was
 * applied (a stopped systemd unit removes its cgroup). */
static struct json_object *agent_app_cgroup_json(struct agent *a, const char *id)
{
	char reason[1024] = "";
	uint64_t cgid = 0;
	size_t i;

	if (!a->policy)
		return json_error("no policy in force");
	for (i = 0; i < a->policy->n_apps; i++)
		if (!strcmp(a->policy->apps[i].id, id))
			break;
	if (i == a->policy->n_apps)
		return json_error("app '%s' is not in the policy in force (%s)", id, a->policy_path);

	if (cgroup_get_id(a->cgroup_paths[i], &cgid) < 0 || cgid != a->cgroups[i].id) {
		/* Re-apply the policy in force (not the file, which may have changed). */
		char sha[65];

		log_info("The cgroup of app '%s' was removed or recreated; registering it again", id);
		snprintf(sha, sizeof(sha), "%s", a->policy_sha256);
		if (agent_apply(a, a->policy, sha, reason, sizeof(reason)) < 0) {
			log_error("Could not register the cgroup of app '%s': %s", id, reason);
			return json_error("could not register the cgroup of app '%s': %s", id, reason);
		}
	}

	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "app", json_object_new_string(id));
	json_object_object_add(o, "cgroup", json_object_new_string(a->cgroup_paths[i]));
	return o;
}

static struct json_object *agent_handle(const char *request, void *userdata)
{
	struct agent *a = userdata;

	if (!strcmp(request, "status"))
		return agent_status_json(a);
	if (!strcmp(request, "reload")) {
		log_info("Reload requested over the control socket");
		if (agent_load_policy(a) < 0)
			return json_error("%s", a->last_error);
		return agent_status_json(a);
	}
	if (!strncmp(request, "app-cgroup ", strlen("app-cgroup ")))
		return agent_app_cgroup_json(a, request + strlen("app-cgroup "));
	return json_error("unknown request '%.64s'", request);
}

static void help(void)
{
	printf("Usage: carwalld [OPTIONS]\n"
	       "\n"
	       "carwall's agent: enforces per-app egress allow-lists with cgroup BPF programs.\n"
	       "\n"
	       "  -p --policy FILE       policy to enforce (default %s)\n"
	       "  -c --cgroup-root DIR   cgroup v2 folder to attach at (default: the cgroup2 mount)\n"
	       "  -b --pin-dir DIR       bpffs folder for pinned links and maps (default %s)\n"
	       "  -r --run-dir DIR       folder of the control socket (default %s)\n"
	       "  -s --state-dir DIR     folder for persistent state (default %s)\n"
	       "  -v --verbose           log debug messages, libbpf's included\n"
	       "  -h --help              show this help\n"
	       "\n"
	       "Signals: SIGHUP reloads the policy; SIGTERM/SIGINT stop the agent and leave\n"
	       "enforcement in force (remove it with `carwall unload`).\n",
	       DEFAULT_POLICY, LOADER_DEFAULT_PIN_DIR, CONTROL_DEFAULT_RUN_DIR, DEFAULT_STATE_DIR);
}

static int agent_parse_args(struct agent *a, int argc, char **argv, bool *verbose)
{
	static const struct option options[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "cgroup-root", required_argument, NULL, 'c' },
		{ "pin-dir", required_argument, NULL, 'b' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *root = NULL;
	int c, r;

	a->policy_path = DEFAULT_POLICY;
	a->pin_dir = LOADER_DEFAULT_PIN_DIR;
	a->run_dir = NULL;
	a->state_dir = DEFAULT_STATE_DIR;
	while ((c = getopt_long(argc, argv, "p:c:b:r:s:vh", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			a->policy_path = optarg;
			break;
		case 'c':
			root = optarg;
			break;
		case 'b':
			a->pin_dir = optarg;
			break;
		case 'r':
			a->run_dir = optarg;
			break;
		case 's':
			a->state_dir = optarg;
			break;
		case 'v':
			*verbose = true;
			break;
		case 'h':
			help();
			exit(EXIT_SUCCESS);
		default:
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("Unexpected argument '%s'; see --help", argv[optind]);
		return -EINVAL;
	}
	a->run_dir = control_run_dir(a->run_dir);
	if (a->pin_dir[0] != '/')
		return log_error_errno(-EINVAL, "--pin-dir must be an absolute path");

	r = cgroup_find_mount(a->cgroup_mount, sizeof(a->cgroup_mount));
	if (r < 0)
		return log_error_errno(r, "No cgroup2 file system is mounted (/proc/self/mountinfo): "
					  "carwall needs cgroup v2");
	if (!root)
		root = a->cgroup_mount;
	if (!realpath(root, a->cgroup_root))
		return log_error_errno(negative_errno(), "Cannot use cgroup root %s: %m", root);
	return 0;
}

/* One agent per run folder: a second one would fight over the pins. */
static int agent_lock(const char *run_dir, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	if (asprintf(&path, "%s/carwalld.lock", run_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return negative_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int agent_run(struct agent *a)
{
	_cleanup_close_ int lock_fd = -1, listen_fd = -1, sig_fd = -1, ep = -1;
	char missing[256];
	sigset_t mask;
	int r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "carwalld must run as root");

	r = loader_probe(a->cgroup_root, missing, sizeof(missing));
	if (r < 0)
		return log_error_errno(r, "This kernel lacks what carwall needs: %s. Refusing to start.",
				       missing);

	r = agent_lock(a->run_dir, &lock_fd);
	if (r == -EWOULDBLOCK)
		return log_error_errno(r, "Another carwalld is running with run folder %s", a->run_dir);
	if (r < 0)
		return log_error_errno(r, "Cannot lock run folder %s: %m", a->run_dir);
	if (mkdir(a->state_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(negative_errno(), "Cannot create state folder %s: %m",
				       a->state_dir);

	r = loader_prepare_pin_dir(a->pin_dir);
	if (r == -EMEDIUMTYPE)
		return log_error_errno(r, "Pin folder %s is not on a bpf file system (mount bpffs)",
				       a->pin_dir);
	if (r < 0)
		return log_error_errno(r, "Cannot prepare pin folder %s: %m", a->pin_dir);
	r = loader_open(a->pin_dir, &a->loader);
	if (r < 0)
		return log_error_errno(r,
				       "Failed to load the BPF programs (pins in %s from an "
				       "incompatible build? `carwall unload` removes them): %m",
				       a->pin_dir);
	if (loader_has_policy(a->loader))
		log_info("Adopted the policy pinned in %s by an earlier agent", a->pin_dir);

	r = agent_load_policy(a);
	if (r < 0 && !loader_has_policy(a->loader))
		return log_error_errno(r, "No valid policy to enforce; refusing to start");

	r = loader_attach(a->loader, a->cgroup_root);
	if (r == -EXDEV)
		return log_error_errno(r,
				       "Links pinned in %s are attached to another cgroup or hook; "
				       "remove them with `carwall unload --pin-dir %s`",
				       a->pin_dir, a->pin_dir);
	if (r < 0)
		return log_error_errno(r, "Failed to attach the programs at %s: %m", a->cgroup_root);
	log_info("Enforcing at cgroup %s (connect4, connect6, sendmsg4, sendmsg6, sock_create), "
		 "pins in %s",
		 a->cgroup_root, a->pin_dir);

	r = control_listen(a->run_dir, &listen_fd);
	if (r < 0)
		return log_error_errno(r, "Cannot listen on %s/%s: %m", a->run_dir,
				       CONTROL_SOCKET_NAME);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sig_fd < 0 || ep < 0)
		return log_error_errno(negative_errno(), "Cannot set up the event loop: %m");
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = sig_fd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev) < 0)
		return log_error_errno(negative_errno(), "epoll: %m");
	ev.data.fd = listen_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
		return log_error_errno(negative_errno(), "epoll: %m");

	log_info("Ready; control socket %s/%s", a->run_dir, CONTROL_SOCKET_NAME);
	for (;;) {
		struct epoll_event events[4];
		int n = epoll_wait(ep, events, ARRAY_SIZE(events), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(negative_errno(), "epoll_wait: %m");
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.fd == listen_fd) {
				r = control_serve_one(listen_fd, agent_handle, a);
				if (r < 0)
					log_warning_errno(r, "Control request failed: %m");
				continue;
			}
			struct signalfd_siginfo si;
			while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					log_info("SIGHUP: reloading %s", a->policy_path);
					agent_load_policy(a);
					continue;
				}
				log_info("Stopping on signal %u; enforcement stays in force (pinned "
					 "in %s)",
					 si.ssi_signo, a->pin_dir);
				return 0;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct agent a = {};
	bool verbose = false;
	int r;

	log_setup("carwalld", LOG_LEVEL_INFO);
	r = agent_parse_args(&a, argc, argv, &verbose);
	if (r < 0)
		return EXIT_FAILURE;
	if (verbose)
		log_setup("carwalld", LOG_LEVEL_DEBUG);
	log_setup_libbpf();

	r = agent_run(&a);
	loader_free(a.loader);
	if (a.policy)
		agent_free_resolved(a.policy->n_apps, a.cgroups, a.cgroup_paths);
	policy_free(a.policy);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

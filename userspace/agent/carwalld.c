// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwalld: the carwall agent. Loads the BPF programs, fills their maps from the policy,
 * attaches them at the cgroup root with pinned bpf_links (enforcement outlives this process),
 * reloads the policy atomically (control socket, SIGHUP, a change of the file), registers app
 * cgroups that appear later, and answers the CLI. Foreground process, logs to stderr.
 *
 * Fail closed: the "guard" cgroups (by default AGL's three app slices, where every
 * agl-app@<id>.service, agl-app-web@<id>.service and agl-app-flutter@<id>.service lives) are
 * registered as an app with no rules, so a cgroup that appears under one is refused everything
 * until it is registered as its app, and every app there is refused everything while no valid
 * policy has been loaded.
 *
 * This file owns main, the options and the event loop, which only dispatches: the policy
 * lifecycle is lifecycle.c's, the app registry registry.c's, the evidence evidence.c's and the
 * control API api.c's (agent.h: what they share).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "message_ids.h"

#define DEFAULT_POLICY "/etc/carwall/policy.yaml"
#define DEFAULT_STATE_DIR "/var/lib/carwall"
#define DEFAULT_EVENT_RATE 10000
#define DEFAULT_FLOW_REPORT_S 10
#define MAX_FLOW_REPORT_S 3600
#define DEFAULT_INVENTORY_SAVE_S 5
#define MAX_INVENTORY_SAVE_S 3600
#define DEFAULT_BOOT_ID_FILE BOOT_ID_PATH
#define DEFAULT_TRUST_DIR "/etc/carwall/keys"
#define DEFAULT_TARGET_FILE "/etc/carwall/target"
#define DEFAULT_BUNDLE_ID_FILE "/etc/carwall/bundle-id"

/* A change of the policy file is applied once writes have settled for this long. */
#define RELOAD_DEBOUNCE_MS 100

static void help(void)
{
	printf("Usage: carwalld [OPTIONS]\n"
	       "\n"
	       "carwall's agent: enforces per-app egress allow-lists with cgroup BPF programs.\n"
	       "\n"
	       "  -p --policy FILE         policy to enforce (default %s)\n"
	       "  -c --cgroup-root DIR     cgroup v2 folder to attach at (default: the cgroup2 mount)\n"
	       "  -g --guard-cgroup REL    cgroup below the root where apps live; anything below it\n"
	       "                           that is not a registered app is refused everything\n"
	       "                           (repeatable, at most %d; '' alone: none); default\n"
	       "                           AGL's three app slices:\n"
	       "                             %s\n"
	       "                             %s\n"
	       "                             %s\n"
	       "  -b --pin-dir DIR         bpffs folder for pinned links and maps (default %s)\n"
	       "  -r --run-dir DIR         folder of the control socket (default %s)\n"
	       "  -s --state-dir DIR       folder for persistent state (default %s)\n"
	       "  -G --control-group NAME  group that may use the control socket besides root\n"
	       "  -C --consent-group NAME  group that may only list and set consent switches\n"
	       "                           (the HMI's user)\n"
	       "  -T --trust-dir DIR       trusted public keys for signed bundles (default %s)\n"
	       "  -t --target ID           this head unit's hardware id, bundles must name it\n"
	       "                           (default: the first line of %s)\n"
	       "  -i --bundle-id ID[,ID]   bundle ids this head unit accepts (repeatable; default:\n"
	       "                           the ids in %s, separated by commas, blanks\n"
	       "                           or lines; without it, those recorded in the\n"
	       "                           anti-rollback state); a bundle with another id is\n"
	       "                           refused\n"
	       "  -m --threshold M         valid signatures a bundle needs (default 1)\n"
	       "  -D --developer-mode      accept unsigned policies (loudly logged; never on a\n"
	       "                           vehicle). Without it only verified bundles are loaded.\n"
	       "  -e --event-rate N        refused-flow events per app and second (default %d;\n"
	       "                           0: no limit); more are counted as dropped; as many\n"
	       "                           allowed-flow reports, a budget of their own\n"
	       "  -y --geo-db FILE         the country database (MaxMind DB) for a policy with\n"
	       "                           'residency-enforce: home-only', read again at every\n"
	       "                           load; without it such a policy is refused\n"
	       "  -F --flow-report-interval S\n"
	       "                           seconds between two reports of one destination's\n"
	       "                           allowed flows to the flow inventory (default %d)\n"
	       "  -N --inventory-max-records N\n"
	       "                           records the flow inventory keeps (default %u, %u..%u);\n"
	       "                           the oldest refused one-time flows age out first\n"
	       "  -S --inventory-save-interval S\n"
	       "                           seconds between two saves of a changed inventory\n"
	       "                           (default %d): what a power cut may lose\n"
	       "  -B --boot-id-file FILE   this boot's id (a UUID): the boots the inventory\n"
	       "                           counts, the drive per-drive consent lasts (default\n"
	       "                           %s)\n"
	       "  -v --verbose             log debug messages, libbpf's included\n"
	       "  -h --help                show this help\n"
	       "\n"
	       "The policy is reloaded on SIGHUP, on `carwall reload` and when the file changes.\n"
	       "In production mode the bundle in force is verified again at every reload (and its\n"
	       "file at start): once it no longer verifies (key revoked or removed, threshold,\n"
	       "target or bundle ids changed, floor above it), every app below the guard is\n"
	       "refused everything until a bundle that verifies is installed.\n"
	       "SIGTERM/SIGINT stop the agent and leave enforcement in force (remove it with\n"
	       "`carwall unload`).\n",
	       DEFAULT_POLICY, AGENT_MAX_GUARDS, policy_agl_slices[0], policy_agl_slices[1],
	       policy_agl_slices[2], PINS_DEFAULT_DIR, CONTROL_DEFAULT_RUN_DIR,
	       DEFAULT_STATE_DIR, DEFAULT_TRUST_DIR, DEFAULT_TARGET_FILE, DEFAULT_BUNDLE_ID_FILE,
	       DEFAULT_EVENT_RATE, DEFAULT_FLOW_REPORT_S, INVENTORY_DEFAULT_MAX_RECORDS,
	       INVENTORY_MIN_RECORDS, INVENTORY_MAX_RECORDS, DEFAULT_INVENTORY_SAVE_S,
	       DEFAULT_BOOT_ID_FILE);
}

/* Add the bundle ids in `list` (separated by commas, blanks or newlines) to those accepted. */
static int agent_add_bundle_ids(struct agent *a, const char *list, const char *from)
{
	_cleanup_free_ char *copy = strdup(list);
	char *save = NULL;

	if (!copy)
		return log_error_errno(-ENOMEM, "Out of memory");
	for (char *id = strtok_r(copy, ", \t\r\n", &save); id; id = strtok_r(NULL, ", \t\r\n", &save)) {
		bool known = false;

		if (!policy_app_id_valid(id))
			return log_error_errno(-EINVAL, "Bad bundle id '%.64s' in %s", id, from);
		for (size_t i = 0; i < a->n_bundle_ids; i++)
			known = known || !strcmp(a->bundle_ids[i], id);
		if (known)
			continue;
		if (a->n_bundle_ids >= BUNDLE_MAX_ACCEPTED_IDS)
			return log_error_errno(-E2BIG, "More than %d bundle ids (%s)",
					       BUNDLE_MAX_ACCEPTED_IDS, from);
		snprintf(a->bundle_ids[a->n_bundle_ids], sizeof(a->bundle_ids[0]), "%s", id);
		a->bundle_id_list[a->n_bundle_ids] = a->bundle_ids[a->n_bundle_ids];
		a->n_bundle_ids++;
	}
	return 0;
}

static int agent_parse_args(struct agent *a, int argc, char **argv, bool *verbose)
{
	static const struct option options[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "cgroup-root", required_argument, NULL, 'c' },
		{ "guard-cgroup", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'b' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "control-group", required_argument, NULL, 'G' },
		{ "consent-group", required_argument, NULL, 'C' },
		{ "event-rate", required_argument, NULL, 'e' },
		{ "flow-report-interval", required_argument, NULL, 'F' },
		{ "inventory-max-records", required_argument, NULL, 'N' },
		{ "inventory-save-interval", required_argument, NULL, 'S' },
		{ "boot-id-file", required_argument, NULL, 'B' },
		{ "trust-dir", required_argument, NULL, 'T' },
		{ "target", required_argument, NULL, 't' },
		{ "bundle-id", required_argument, NULL, 'i' },
		{ "threshold", required_argument, NULL, 'm' },
		{ "developer-mode", no_argument, NULL, 'D' },
		{ "geo-db", required_argument, NULL, 'y' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *root = NULL, *group = NULL, *consent_group = NULL, *target = NULL;
	const char *guards[AGENT_MAX_GUARDS];
	size_t n_guards = 0;
	bool no_guard = false;
	int c, r;

	a->policy_path = DEFAULT_POLICY;
	a->pin_dir = PINS_DEFAULT_DIR;
	a->run_dir = NULL;
	a->state_dir = DEFAULT_STATE_DIR;
	a->control_group = CONTROL_NO_GROUP;
	a->consent_group = CONTROL_NO_GROUP;
	a->event_rate = DEFAULT_EVENT_RATE;
	a->flow_report_s = DEFAULT_FLOW_REPORT_S;
	a->inventory_max = INVENTORY_DEFAULT_MAX_RECORDS;
	a->inventory_save_s = DEFAULT_INVENTORY_SAVE_S;
	a->boot_id_file = DEFAULT_BOOT_ID_FILE;
	a->trust_dir = DEFAULT_TRUST_DIR;
	a->threshold = 1;
	while ((c = getopt_long(argc, argv, "p:c:g:b:r:s:G:C:e:F:N:S:B:T:t:i:m:Dy:vh", options,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			a->policy_path = optarg;
			break;
		case 'c':
			root = optarg;
			break;
		case 'g':
			if (!optarg[0]) {
				no_guard = true;
				break;
			}
			if (n_guards >= AGENT_MAX_GUARDS)
				return log_error_errno(-E2BIG, "More than %d --guard-cgroup",
						       AGENT_MAX_GUARDS);
			guards[n_guards++] = optarg;
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
		case 'G':
			group = optarg;
			break;
		case 'C':
			consent_group = optarg;
			break;
		case 'T':
			a->trust_dir = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'i':
			r = agent_add_bundle_ids(a, optarg, "--bundle-id");
			if (r < 0)
				return r;
			break;
		case 'm': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > BUNDLE_MAX_SIGNATURES)
				return log_error_errno(-EINVAL, "Bad --threshold '%s' (1..%d)", optarg,
						       BUNDLE_MAX_SIGNATURES);
			a->threshold = (unsigned)v;
			break;
		}
		case 'D':
			a->developer_mode = true;
			break;
		case 'y':
			if (optarg[0] != '/')
				return log_error_errno(-EINVAL, "--geo-db must be an absolute path");
			a->geo_db_path = optarg;
			break;
		case 'e': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v > UINT32_MAX)
				return log_error_errno(-EINVAL, "Bad --event-rate '%s'", optarg);
			a->event_rate = (uint32_t)v;
			break;
		}
		case 'F': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > MAX_FLOW_REPORT_S)
				return log_error_errno(-EINVAL, "Bad --flow-report-interval '%s' (1..%d)",
						       optarg, MAX_FLOW_REPORT_S);
			a->flow_report_s = (uint32_t)v;
			break;
		}
		case 'N': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < INVENTORY_MIN_RECORDS || v > INVENTORY_MAX_RECORDS)
				return log_error_errno(-EINVAL, "Bad --inventory-max-records '%s' (%u..%u)",
						       optarg, INVENTORY_MIN_RECORDS,
						       INVENTORY_MAX_RECORDS);
			a->inventory_max = (uint32_t)v;
			break;
		}
		case 'S': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > MAX_INVENTORY_SAVE_S)
				return log_error_errno(-EINVAL, "Bad --inventory-save-interval '%s' (1..%d)",
						       optarg, MAX_INVENTORY_SAVE_S);
			a->inventory_save_s = (uint32_t)v;
			break;
		}
		case 'B':
			a->boot_id_file = optarg;
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
	if (optind < argc)
		return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help", argv[optind]);
	a->run_dir = control_run_dir(a->run_dir);
	if (a->pin_dir[0] != '/')
		return log_error_errno(-EINVAL, "--pin-dir must be an absolute path");
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr)
			return log_error_errno(-ENOENT, "No group '%s' for --control-group", group);
		a->control_group = gr->gr_gid;
	}
	if (consent_group) {
		struct group *gr = getgrnam(consent_group);
		if (!gr)
			return log_error_errno(-ENOENT, "No group '%s' for --consent-group",
					       consent_group);
		a->consent_group = gr->gr_gid;
	}

	if (!a->developer_mode) {
		_cleanup_free_ char *data = NULL;
		size_t size;

		if (!target) {
			r = read_file_limited(DEFAULT_TARGET_FILE, 256, &data, &size);
			if (r < 0)
				return log_error_errno(r, "No target: production mode needs this head "
							  "unit's hardware id (--target, or %s): %m",
						       DEFAULT_TARGET_FILE);
			data[strcspn(data, "\r\n")] = '\0';
			target = data;
		}
		if (!policy_app_id_valid(target))
			return log_error_errno(-EINVAL, "Bad target '%s'", target);
		snprintf(a->target, sizeof(a->target), "%s", target);
	}
	if (!a->developer_mode && a->n_bundle_ids == 0) {
		_cleanup_free_ char *ids = NULL;
		size_t size;

		/* Without it, any bundle id signed by a trusted key would replace the policy,
		 * whatever its version: the floor is per id. */
		r = read_file_limited(DEFAULT_BUNDLE_ID_FILE, 4096, &ids, &size);
		if (r == -ENOENT) {
			log_warning("No bundle id configured (--bundle-id, or %s): only the ids "
				    "recorded in the anti-rollback state are accepted, and a unit that "
				    "never accepted a bundle takes the id of its first one. Configure "
				    "the ids this head unit accepts.",
				    DEFAULT_BUNDLE_ID_FILE);
			goto ids_done;
		}
		if (r < 0)
			return log_error_errno(r, "Cannot read the bundle ids this head unit accepts "
						  "(%s): %m",
					       DEFAULT_BUNDLE_ID_FILE);
		if (memchr(ids, '\0', size))
			return log_error_errno(-EINVAL, "%s contains a NUL byte", DEFAULT_BUNDLE_ID_FILE);
		r = agent_add_bundle_ids(a, ids, DEFAULT_BUNDLE_ID_FILE);
		if (r < 0)
			return r;
		if (a->n_bundle_ids == 0)
			return log_error_errno(-EINVAL, "No bundle id in %s", DEFAULT_BUNDLE_ID_FILE);
	}
ids_done:

	r = cgroup_find_mount(a->cgroup_mount, sizeof(a->cgroup_mount));
	if (r < 0)
		return log_error_errno(r, "No cgroup2 file system is mounted (/proc/self/mountinfo): "
					  "carwall needs cgroup v2");
	/* App cgroups are found by level (bpf_get_current_ancestor_cgroup_id()), computed from
	 * paths below the mount: they must be the kernel's. */
	char why[1024];
	r = cgroup_check_hierarchy(a->cgroup_mount, why, sizeof(why));
	if (r < 0)
		return log_error_errno(r, "Refusing to start: %s", why);
	if (!root)
		root = a->cgroup_mount;
	if (!realpath(root, a->cgroup_root))
		return log_error_errno(negative_errno(), "Cannot use cgroup root %s: %m", root);
	if (no_guard && n_guards)
		return log_error_errno(-EINVAL, "--guard-cgroup '' (no guard) with other guards");
	if (!no_guard && !n_guards)
		for (size_t i = 0; i < POLICY_AGL_TEMPLATES; i++)
			guards[n_guards++] = policy_agl_slices[i];
	for (size_t i = 0; i < n_guards; i++) {
		size_t o = strlen(a->guards_text);

		if (guards[i][0] == '/' || strstr(guards[i], ".."))
			return log_error_errno(-EINVAL,
					       "--guard-cgroup '%s' must be relative to the root",
					       guards[i]);
		if (asprintf(&a->guard_paths[i], "%s/%s", a->cgroup_root, guards[i]) < 0)
			return log_error_errno(-ENOMEM, "Out of memory");
		a->n_guards = i + 1;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(a->guard_paths[j], a->guard_paths[i]))
				return log_error_errno(-EINVAL, "--guard-cgroup '%s' given twice",
						       guards[i]);
		snprintf(a->guards_text + o, sizeof(a->guards_text) - o, "%s%s", i ? ", " : "",
			 a->guard_paths[i]);
	}
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

static int epoll_add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? negative_errno() : 0;
}

static void agent_arm_reload(struct agent *a)
{
	struct itimerspec its = { .it_value.tv_nsec = RELOAD_DEBOUNCE_MS * 1000000L };

	timerfd_settime(a->timer_fd, 0, &its, NULL);
}

/* Returns true when the agent should stop. */
static bool agent_handle_signals(struct agent *a, int sig_fd)
{
	struct signalfd_siginfo si;

	while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			agent_load_policy(a, "SIGHUP");
			continue;
		}
		log_struct(LOG_LEVEL_INFO, CW_MESSAGE_STOPPING, NULL, 0,
			   "Stopping on signal %u; enforcement stays in force (pinned in %s)",
			   si.ssi_signo, a->pin_dir);
		return true;
	}
	return false;
}

static void agent_handle_watch(struct agent *a)
{
	bool file_changed, dir_changed;
	int r = watch_read(a->watch, &file_changed, &dir_changed);

	if (r < 0) {
		log_warning_errno(r, "inotify: %m");
		return;
	}
	if (file_changed)
		agent_arm_reload(a);
	if (dir_changed)
		agent_refresh(a, "an app cgroup folder was removed or made again");
}

static void agent_handle_expiry(struct agent *a)
{
	uint64_t expirations;

	if (read(a->expiry_fd, &expirations, sizeof(expirations)) > 0)
		log_warning("The bundle in force expired; it stays in force (enforcement is never "
			    "loosened) until a newer bundle is installed. After a restart an expired "
			    "bundle is refused and every app below the guards is refused "
			    "everything.");
}

static void agent_handle_reload_timer(struct agent *a)
{
	uint64_t expirations;

	if (read(a->timer_fd, &expirations, sizeof(expirations)) > 0)
		agent_load_policy(a, "the file changed");
}

/*
 * Everything before the loop: the kernel probed, the run folder locked, the policy loaded into
 * the maps, the programs attached and the app cgroups followed.
 */
static int agent_start(struct agent *a, int *lock_fd)
{
	char missing[256];
	int r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "carwalld must run as root");

	r = loader_probe(a->cgroup_root, missing, sizeof(missing));
	if (r < 0)
		return log_error_errno(r, "This kernel lacks what carwall needs: %s. Refusing to start.",
				       missing);

	r = agent_lock(a->run_dir, lock_fd);
	if (r == -EWOULDBLOCK)
		return log_error_errno(r, "Another carwalld is running with run folder %s", a->run_dir);
	if (r < 0)
		return log_error_errno(r, "Cannot lock run folder %s: %m", a->run_dir);
	if (mkdir(a->state_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(negative_errno(), "Cannot create state folder %s: %m",
				       a->state_dir);

	r = watch_new(&a->watch);
	if (r >= 0)
		r = watch_set_file(a->watch, a->policy_path);
	if (r < 0)
		return log_error_errno(r, "Cannot watch %s: %m", a->policy_path);
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->expiry_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->timer_fd < 0 || a->expiry_fd < 0)
		return log_error_errno(negative_errno(), "timerfd: %m");
	if (a->developer_mode)
		log_warning("DEVELOPER MODE: unsigned policies are accepted. Never run a vehicle "
			    "like this.");
	else {
		char ids[BUNDLE_MAX_ACCEPTED_IDS * (POLICY_MAX_ID_LEN + 1)] = "";
		_cleanup_free_ char *state = NULL;

		for (size_t i = 0; i < a->n_bundle_ids; i++)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s", i ? "," : "",
				 a->bundle_ids[i]);
		log_info("Production mode: only bundles signed by %u of the keys in %s, for target "
			 "%s, with bundle id %s, are loaded",
			 a->threshold, a->trust_dir, a->target,
			 ids[0] ? ids : "(none configured: those of the anti-rollback state)");
		if (asprintf(&state, "%s/%s", a->state_dir, BUNDLE_STATE_FILE) < 0)
			state = NULL;
		else if (access(state, F_OK) < 0 && errno == ENOENT)
			log_warning("No anti-rollback state %s: there is no floor, any version of an "
				    "accepted bundle id is accepted until one is installed (first "
				    "start, or the state was lost)",
				    state);
	}

	r = loader_prepare_pin_dir(a->pin_dir);
	if (r == -EMEDIUMTYPE)
		return log_error_errno(r, "Pin folder %s is not on a bpf file system (mount bpffs)",
				       a->pin_dir);
	if (r < 0)
		return log_error_errno(r, "Cannot prepare pin folder %s: %m", a->pin_dir);
	struct loader_options lopts = { .event_rate = a->event_rate,
					.flow_report_s = a->flow_report_s };
	r = loader_open(a->pin_dir, &lopts, &a->loader);
	if (r < 0)
		return log_error_errno(r,
				       "Failed to load the BPF programs (pins in %s from an "
				       "incompatible build? `carwall unload` removes them): %m",
				       a->pin_dir);

	/* This boot's id, before the first policy: consent's per-drive switches, the inventory. */
	r = read_boot_id(a->boot_id_file, a->boot_id);
	if (r < 0)
		log_warning_errno(r, "Cannot read the boot id from %s (%m): per-drive consent "
				  "switches go back to their defaults at every start, and the flow "
				  "inventory does not count boots", a->boot_id_file);

	/* The maps are filled before the programs are attached: no window without a policy. */
	r = agent_first_policy(a);
	if (r < 0)
		return r;

	r = loader_attach(a->loader, a->cgroup_root);
	if (r == -EXDEV)
		return log_error_errno(r,
				       "Links pinned in %s are attached to another cgroup or hook; "
				       "remove them with `carwall unload --pin-dir %s`",
				       a->pin_dir, a->pin_dir);
	if (r < 0)
		return log_error_errno(r, "Failed to attach the programs at %s: %m", a->cgroup_root);
	log_info("Enforcing at cgroup %s (connect4, connect6, sendmsg4, sendmsg6, sock_create, "
		 "skb_egress, sock_ops, skb_ingress), pins in %s",
		 a->cgroup_root, a->pin_dir);

	/*
	 * Follow the app cgroups from now on; with adopted pins, the guard may have been made
	 * again while no agent ran.
	 */
	agent_refresh(a, "start");
	json_object_put(agent_check_overriders(a, true));
	return 0;
}

static int agent_run(struct agent *a)
{
	_cleanup_close_ int lock_fd = -1, sig_fd = -1, ep = -1;
	_cleanup_(control_server_freep) struct control_server *control = NULL;
	sigset_t mask;
	int r;

	r = agent_start(a, &lock_fd);
	if (r < 0)
		return r;
	r = evidence_open(a);
	if (r < 0)
		return r;

	r = control_server_new(a->run_dir, a->control_group, agent_handle, a, &control);
	if (r < 0)
		return log_error_errno(r, "Cannot listen on %s/%s: %m", a->run_dir,
				       CONTROL_SOCKET_NAME);
	r = control_server_set_consent_group(control, a->consent_group);
	if (r < 0)
		return log_error_errno(r, "Cannot open %s/%s to the consent group: %m", a->run_dir,
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
	r = epoll_add(ep, sig_fd);
	if (r >= 0)
		r = epoll_add(ep, control_server_fd(control));
	if (r >= 0)
		r = epoll_add(ep, watch_fd(a->watch));
	if (r >= 0)
		r = epoll_add(ep, a->timer_fd);
	if (r >= 0)
		r = epoll_add(ep, a->expiry_fd);
	if (r >= 0)
		r = epoll_add(ep, ring_buffer__epoll_fd(a->events_rb));
	if (r >= 0)
		r = epoll_add(ep, a->events_tick_fd);
	if (r < 0)
		return log_error_errno(r, "epoll: %m");

	/* Ready means enforced: systemd starts the app units only after this. */
	notify_send(a->policy ? "READY=1\nSTATUS=Enforcing" : "READY=1\nSTATUS=No valid policy: apps refused");
	log_struct(LOG_LEVEL_INFO, CW_MESSAGE_READY, NULL, 0, "Ready; control socket %s/%s",
		   a->run_dir, CONTROL_SOCKET_NAME);
	/*
	 * The log is written in blocks and flushed once per wake-up: a burst of events costs one
	 * write, not one per line. Nothing wakes the loop but its inputs and the evidence timer,
	 * armed only while evidence work is pending (evidence_schedule()).
	 */
	setvbuf(stderr, NULL, _IOFBF, 1 << 16);
	for (;;) {
		struct epoll_event events[8];
		int n;

		evidence_schedule(a);
		fflush(stderr);
		n = epoll_wait(ep, events, ARRAY_SIZE(events), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(negative_errno(), "epoll_wait: %m");
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == control_server_fd(control)) {
				control_server_process(control);
			} else if (fd == sig_fd) {
				if (agent_handle_signals(a, sig_fd)) {
					notify_send("STOPPING=1");
					fflush(stderr);
					return 0;
				}
			} else if (fd == ring_buffer__epoll_fd(a->events_rb)) {
				evidence_consume(a);
			} else if (fd == a->events_tick_fd) {
				evidence_tick(a);
			} else if (fd == a->expiry_fd) {
				agent_handle_expiry(a);
			} else if (fd == a->timer_fd) {
				agent_handle_reload_timer(a);
			} else {
				agent_handle_watch(a);
			}
		}
	}
}

/*
 * The allocator's settings for a long-lived agent whose large buffers (a policy's rules and map
 * entries, the tables of the evidence and the inventory) come and go with reloads: every block
 * from AGENT_MMAP_THRESHOLD up is a mapping of its own, unmapped when freed (glibc would
 * otherwise raise the threshold after the first such free and serve the next ones from the heap,
 * where a freed block in the middle stays resident), and one arena for every thread (the
 * agent's few threads allocate little; an arena each would keep its own free memory).
 */
#define AGENT_MMAP_THRESHOLD (64 * 1024)

static void agent_malloc_setup(void)
{
#ifndef __SANITIZE_ADDRESS__ /* AddressSanitizer's allocator is not glibc's: nothing to set */
	if (!mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_THRESHOLD) || !mallopt(M_ARENA_MAX, 1))
		log_warning("Cannot set the allocator's options: memory freed after a reload may "
			    "stay resident");
#endif
}

int main(int argc, char **argv)
{
	struct agent a = { .timer_fd = -1, .expiry_fd = -1, .events_tick_fd = -1 };
	bool verbose = false;
	int r;

	log_setup("carwalld", LOG_LEVEL_INFO);
	agent_malloc_setup();
	r = agent_parse_args(&a, argc, argv, &verbose);
	if (r < 0)
		return EXIT_FAILURE;
	if (verbose)
		log_setup("carwalld", LOG_LEVEL_DEBUG);
	log_setup_libbpf();

	r = agent_run(&a);
	evidence_close(&a);
	loader_free(a.loader);
	watch_free(a.watch);
	if (a.timer_fd >= 0)
		close(a.timer_fd);
	if (a.expiry_fd >= 0)
		close(a.expiry_fd);
	free(a.cgroups);
	free_paths(a.cgroup_paths, a.n_cgroups);
	policy_free(a.policy);
	geo_free(a.geo_db);
	free(a.bundle_data);
	for (size_t g = 0; g < a.n_guards; g++)
		free(a.guard_paths[g]);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

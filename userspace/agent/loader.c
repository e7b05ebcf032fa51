// SPDX-License-Identifier: GPL-2.0-only
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "pins.h"
#include "sock_addr.skel.h"
#include "sock_create.skel.h"
#include "sock_ops.skel.h"
#include "skb.skel.h"
#include "dns.skel.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct sock_addr_bpf *, sock_addr_bpf__destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sock_create_bpf *, sock_create_bpf__destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sock_ops_bpf *, sock_ops_bpf__destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct skb_bpf *, skb_bpf__destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct dns_bpf *, dns_bpf__destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bpf_link *, bpf_link__destroy);

/* The policy maps, in the order of struct loader_written. */
enum {
	MAP_CGROUPS,
	MAP_DST4,
	MAP_DST6,
	MAP_PORTS,
	MAP_HOSTS,
	MAP_NAMES,
	MAP_RESOLVERS,
	MAP_HOME4,
	MAP_HOME6,
	_MAP_MAX
};

/* Entries of one map, {key, value} back to back, in the compiler's order. */
struct loader_entries {
	char *v;
	size_t n;
};

/*
 * What the loader last wrote into a generation, so that a reload writes only what changed. The
 * generation in force holds its entries (maps); the other one, written with the policy before,
 * mostly the same, only how it differs from the one in force (delta): in maps, its entries that
 * one does not hold or holds with another value; in absent, the keys of that one it does not
 * hold (its own generation in every key).
 */
struct loader_written {
	bool known; /* false: unknown (adopted from pins, or a write failed half-way) */
	bool delta; /* maps and absent are the difference to the other generation's entries */
	struct loader_entries maps[_MAP_MAX];
	struct loader_entries absent[_MAP_MAX]; /* keys only */
};

struct loader {
	struct sock_addr_bpf *sock_addr;     /* bpf/sock_addr.bpf.c */
	struct sock_create_bpf *sock_create; /* bpf/sock_create.bpf.c */
	struct sock_ops_bpf *sock_ops;	     /* bpf/sock_ops.bpf.c */
	struct skb_bpf *skb;		     /* bpf/skb.bpf.c */
	struct dns_bpf *dns;		     /* bpf/dns.bpf.c */
	struct bpf_link *links[PINS_N_HOOKS];
	struct cw_state *state; /* cw_state's element, mmapped */
	/*
	 * An array of maps that no program uses: updating it from userspace makes the kernel wait
	 * for an RCU grace period (synchronize_rcu()), i.e. until every program that was running
	 * has finished, preempted ones included. See loader_wait_for_programs().
	 */
	int sync_outer_fd, sync_inner_fd;
	bool inactive_unused; /* no program can still be deciding on the inactive generation */
	/* The wait after a flip, in a thread of its own so that a reload does not wait for it. */
	pthread_t sync_thread;
	bool sync_running;
	int sync_result;
	/*
	 * The counters only the generation in force is read for (per rule, per app's region
	 * refusals) are zeroed by that thread once the generation just left is unused, so that a
	 * reload does not wait for it. rule_hwm[g]: g's rule counters from this index on are zero
	 * (CW_MAX_RULES: not known); region_zero[g]: its region counters are.
	 */
	uint32_t sync_gen; /* the generation just left, zeroed by the thread */
	uint32_t rule_hwm[CW_GENERATIONS];
	bool region_zero[CW_GENERATIONS];
	/*
	 * Rule counts of the policy in force from the generations that held it before the active
	 * one (a re-registration of app cgroups writes the same policy into the other generation):
	 * added by the thread, before it zeroes the generation just left, when the flip kept the
	 * policy (keep_next at the flip; carry_pending until they are added). rules[g]: the rule
	 * count of the policy written into g. carry_lock guards carry_pending, rule_carry and
	 * n_rule_carry, which loader_rule_hits_in_force() reads while the thread may add to them:
	 * the thread adds and clears carry_pending in one hold of it, so that a reader finds the
	 * counts of the generation left either in the carry or still in that generation, never in
	 * both or neither. Only the thread, or loader_apply() while no thread runs, writes them.
	 */
	bool keep_next;
	pthread_mutex_t carry_lock;
	bool carry_pending;
	uint64_t *rule_carry;
	uint32_t n_rule_carry;
	uint32_t rules[CW_GENERATIONS];
	char *pin_dir;
	struct loader_written written[CW_GENERATIONS];
};

/* The program of each hook, in pins_hook_names order. */
static struct bpf_program *loader_hook_prog(struct loader *l, unsigned i)
{
	struct bpf_program *progs[PINS_N_HOOKS] = {
		l->sock_addr->progs.cw_connect4,    l->sock_addr->progs.cw_connect6,
		l->sock_addr->progs.cw_sendmsg4,    l->sock_addr->progs.cw_sendmsg6,
		l->sock_create->progs.cw_sock_create, l->skb->progs.cw_skb_egress,
		l->sock_ops->progs.cw_sock_ops,	      l->dns->progs.cw_skb_ingress,
	};
	return progs[i];
}

int loader_probe(const char *cgroup_root, char *missing, size_t missing_size)
{
	int r;

#define MISSING(err, ...)                                                                          \
	do {                                                                                       \
		snprintf(missing, missing_size, __VA_ARGS__);                                      \
		return (err);                                                                      \
	} while (0)

	r = cgroup_check_v2(cgroup_root);
	if (r == -EMEDIUMTYPE)
		MISSING(r, "cgroup v2 at %s (it is not a cgroup2 file system)", cgroup_root);
	if (r < 0)
		MISSING(r, "cgroup v2 at %s (%s)", cgroup_root, strerror(-r));
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF program type cgroup_sock_addr (CONFIG_CGROUP_BPF)");
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF program type cgroup_sock (CONFIG_CGROUP_BPF)");
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF program type cgroup_skb (CONFIG_CGROUP_BPF)");
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF program type sock_ops (CONFIG_CGROUP_BPF)");
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_ARRAY_OF_MAPS, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF map type array_of_maps");
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF map type ringbuf (Linux 5.8)");
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF map type sk_storage");
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF map type lpm_trie");
	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
				    BPF_FUNC_get_current_ancestor_cgroup_id, NULL) <= 0)
		MISSING(-EOPNOTSUPP,
			"BPF helper get_current_ancestor_cgroup_id for cgroup_sock_addr programs");
	/* The DNS answer parser of the ingress program (bpf/cw_dns.bpf.h). */
	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_loop, NULL) <= 0)
		MISSING(-EOPNOTSUPP, "BPF helper bpf_loop for cgroup_skb programs (Linux 5.17)");
#undef MISSING
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

static bool is_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

int loader_prepare_pin_dir(const char *pin_dir)
{
	_cleanup_free_ char *parent = strdup(pin_dir);
	_cleanup_free_ char *sub = NULL;
	char *slash;
	int r;

	if (!parent)
		return -ENOMEM;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -EINVAL;
	*slash = '\0';

	if (!is_bpffs(parent)) {
		/* systemd mounts /sys/fs/bpf; a minimal head-unit init may not have. */
		if (strncmp(pin_dir, "/sys/fs/bpf/", strlen("/sys/fs/bpf/")) != 0)
			return -EMEDIUMTYPE;
		if (mount("bpf", "/sys/fs/bpf", "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") <
		    0)
			return negative_errno();
		if (!is_bpffs(parent))
			return -EMEDIUMTYPE;
	}
	if (asprintf(&sub, "%s/maps", pin_dir) < 0)
		return -ENOMEM;
	r = mkdir_p(sub, 0700);
	if (r < 0)
		return r;
	free(sub);
	if (asprintf(&sub, "%s/links", pin_dir) < 0) {
		sub = NULL;
		return -ENOMEM;
	}
	return mkdir_p(sub, 0700);
}

/*
 * Every map of every object is pinned under pin_dir/maps by name. Maps pinned by an earlier
 * agent are reused as they are (the policy in force stays), and the objects loaded after the
 * first share its maps the same way.
 */
static int loader_set_pin_paths(struct bpf_object *obj, const char *pin_dir)
{
	struct bpf_map *map;
	int r;

	bpf_object__for_each_map(map, obj)
	{
		char path[4096];

		/* .rodata is per object and per build: never pinned, never reused. */
		if (bpf_map__is_internal(map))
			continue;
		snprintf(path, sizeof(path), "%s/maps/%s", pin_dir, bpf_map__name(map));
		r = bpf_map__set_pin_path(map, path);
		if (r < 0)
			return r;
	}
	return 0;
}

int loader_open(const char *pin_dir, const struct loader_options *opts, struct loader **ret)
{
	_cleanup_(sock_addr_bpf__destroyp) struct sock_addr_bpf *sock_addr = NULL;
	_cleanup_(sock_create_bpf__destroyp) struct sock_create_bpf *sock_create = NULL;
	_cleanup_(sock_ops_bpf__destroyp) struct sock_ops_bpf *sock_ops = NULL;
	_cleanup_(skb_bpf__destroyp) struct skb_bpf *skb = NULL;
	_cleanup_(dns_bpf__destroyp) struct dns_bpf *dns = NULL;
	_cleanup_close_ int sync_outer_fd = -1, sync_inner_fd = -1;
	_cleanup_free_ struct loader *l = NULL;
	long page = sysconf(_SC_PAGESIZE);
	void *state;
	int r;

	sock_addr = sock_addr_bpf__open();
	if (!sock_addr)
		return negative_errno();
	r = loader_set_pin_paths(sock_addr->obj, pin_dir);
	if (r < 0)
		return r;
	sock_addr->rodata->cw_event_rate = opts->event_rate;
	sock_addr->rodata->cw_flow_report_s = opts->flow_report_s;
	r = sock_addr_bpf__load(sock_addr);
	if (r < 0)
		return r;

	sock_create = sock_create_bpf__open();
	if (!sock_create)
		return negative_errno();
	r = loader_set_pin_paths(sock_create->obj, pin_dir);
	if (r < 0)
		return r;
	sock_create->rodata->cw_event_rate = opts->event_rate;
	r = sock_create_bpf__load(sock_create);
	if (r < 0)
		return r;

	sock_ops = sock_ops_bpf__open();
	if (!sock_ops)
		return negative_errno();
	r = loader_set_pin_paths(sock_ops->obj, pin_dir);
	if (r < 0)
		return r;
	sock_ops->rodata->cw_event_rate = opts->event_rate;
	r = sock_ops_bpf__load(sock_ops);
	if (r < 0)
		return r;

	skb = skb_bpf__open();
	if (!skb)
		return negative_errno();
	r = loader_set_pin_paths(skb->obj, pin_dir);
	if (r < 0)
		return r;
	skb->rodata->cw_event_rate = opts->event_rate;
	r = skb_bpf__load(skb);
	if (r < 0)
		return r;

	dns = dns_bpf__open();
	if (!dns)
		return negative_errno();
	r = loader_set_pin_paths(dns->obj, pin_dir);
	if (r < 0)
		return r;
	dns->rodata->cw_event_rate = opts->event_rate;
	r = dns_bpf__load(dns);
	if (r < 0)
		return r;

	sync_inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cw_sync_inner", 4, 4, 1, NULL);
	if (sync_inner_fd < 0)
		return negative_errno();
	sync_outer_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "cw_sync", 4, 4, 1,
				       &(struct bpf_map_create_opts){
					       .sz = sizeof(struct bpf_map_create_opts),
					       .inner_map_fd = (__u32)sync_inner_fd,
				       });
	if (sync_outer_fd < 0)
		return negative_errno();

	state = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(sock_addr->maps.cw_state), 0);
	if (state == MAP_FAILED)
		return negative_errno();

	l = calloc(1, sizeof(*l));
	if (!l || !(l->pin_dir = strdup(pin_dir))) {
		munmap(state, (size_t)page);
		return -ENOMEM;
	}
	l->state = state;
	l->carry_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	l->sync_outer_fd = TAKE_FD(sync_outer_fd);
	l->sync_inner_fd = TAKE_FD(sync_inner_fd);
	/* An earlier agent may have flipped just before it stopped: wait before the first write. */
	l->inactive_unused = false;
	for (unsigned g = 0; g < CW_GENERATIONS; g++)
		l->rule_hwm[g] = CW_MAX_RULES; /* pinned counters may hold anything */
	l->sock_addr = TAKE_PTR(sock_addr);
	l->sock_create = TAKE_PTR(sock_create);
	l->sock_ops = TAKE_PTR(sock_ops);
	l->skb = TAKE_PTR(skb);
	l->dns = TAKE_PTR(dns);
	*ret = TAKE_PTR(l);
	return 0;
}

uint32_t loader_next_gen(const struct loader *l)
{
	return !(__atomic_load_n(&l->state->active_gen, __ATOMIC_ACQUIRE) & 1);
}

uint32_t loader_active_gen(const struct loader *l)
{
	return __atomic_load_n(&l->state->active_gen, __ATOMIC_ACQUIRE) & 1;
}

int loader_events_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_events);
}

int loader_sk_state_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_sk_state);
}

/* Sum one entry of a per-CPU array of u64 fields over every CPU. */
static int read_percpu_u64s(int fd, uint32_t key, uint64_t *sum, size_t n_fields)
{
	int ncpu = libbpf_num_possible_cpus();
	_cleanup_free_ uint64_t *values = NULL;

	if (ncpu < 0)
		return ncpu;
	values = calloc((size_t)ncpu * n_fields, sizeof(*values));
	if (!values)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, values) < 0)
		return negative_errno();
	memset(sum, 0, n_fields * sizeof(*sum));
	for (int cpu = 0; cpu < ncpu; cpu++)
		for (size_t f = 0; f < n_fields; f++)
			sum[f] += values[(size_t)cpu * n_fields + f];
	return 0;
}

/*
 * Add entries first..first+n-1 of a per-CPU array of u64, each summed over every CPU, to
 * sums[0..n-1]: in batches (the batch token of an array is the key before the next one), or one
 * entry at a time on kernels without batch lookups of per-CPU arrays.
 */
static int add_percpu_u64_range(int fd, uint32_t first, uint32_t n, uint64_t *sums)
{
	int ncpu = libbpf_num_possible_cpus();
	const uint32_t chunk = 4096;
	_cleanup_free_ uint32_t *keys = NULL;
	_cleanup_free_ uint64_t *values = NULL;
	uint32_t done = 0;

	if (ncpu < 0)
		return ncpu;
	keys = calloc(chunk, sizeof(*keys));
	values = calloc((size_t)chunk * (size_t)ncpu, sizeof(*values));
	if (!keys || !values)
		return -ENOMEM;
	while (done < n) {
		uint32_t want = n - done < chunk ? n - done : chunk, count = want;
		uint32_t token = first + done - 1, out = 0;

		if (bpf_map_lookup_batch(fd, first + done ? &token : NULL, &out, keys, values, &count,
					 NULL) < 0 && errno != ENOENT)
			break;
		if (count != want)
			break;
		for (uint32_t i = 0; i < count; i++)
			for (int cpu = 0; cpu < ncpu; cpu++)
				sums[done + i] += values[(size_t)i * (size_t)ncpu + (size_t)cpu];
		done += count;
	}
	for (; done < n; done++) {
		uint64_t v;
		int r = read_percpu_u64s(fd, first + done, &v, 1);

		if (r < 0)
			return r;
		sums[done] += v;
	}
	return 0;
}

int loader_read_app_counters(const struct loader *l, uint32_t gen, uint32_t app,
			     struct cw_app_counters *ret)
{
	uint64_t sum[5];
	int r;

	_Static_assert(sizeof(sum) == sizeof(struct cw_app_counters), "every counter read");
	if (gen >= CW_GENERATIONS || app >= CW_APP_SLOTS)
		return -ERANGE;
	r = read_percpu_u64s(bpf_map__fd(l->sock_addr->maps.cw_app_stats), gen * CW_APP_SLOTS + app,
			     sum, 5);
	if (r < 0)
		return r;
	ret->allowed = sum[0];
	ret->refused = sum[1];
	ret->audited = sum[2];
	ret->events_dropped = sum[3];
	ret->refused_consent = sum[4];
	return 0;
}

int loader_names_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_names);
}

int loader_learned_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_learned);
}

int loader_seen_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_seen);
}

int loader_seen_keys_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_seen_keys);
}

int loader_ratelimit_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock_addr->maps.cw_ratelimit);
}

int loader_learn_count_fd(const struct loader *l)
{
	return bpf_map__fd(l->dns->maps.cw_learn_count);
}

int loader_active_apps(const struct loader *l, struct learned_app **ret, size_t *ret_n)
{
	int fd = bpf_map__fd(l->sock_addr->maps.cw_cgroups);
	uint32_t gen = loader_active_gen(l);
	_cleanup_free_ struct learned_app *apps = calloc(CW_APP_SLOTS, sizeof(*apps));
	struct cw_cgroup_key key, next;
	struct cw_app_val val;
	void *prev = NULL;
	size_t n = 0;

	if (!apps)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		bool known = false;

		key = next;
		prev = &key;
		if (key.gen != gen || bpf_map_lookup_elem(fd, &key, &val) < 0 ||
		    (val.flags & CW_APP_F_GUARD) || !val.uid)
			continue;
		for (size_t i = 0; i < n && !known; i++)
			known = apps[i].uid == val.uid;
		if (known || n == CW_APP_SLOTS)
			continue;
		apps[n++] = (struct learned_app){ .uid = val.uid, .app = val.app };
	}
	*ret = TAKE_PTR(apps);
	*ret_n = n;
	return 0;
}

int loader_read_region_refusals(const struct loader *l, uint32_t gen, uint32_t app, uint64_t *ret)
{
	if (gen >= CW_GENERATIONS || app >= CW_APP_SLOTS)
		return -ERANGE;
	return read_percpu_u64s(bpf_map__fd(l->sock_addr->maps.cw_region_stats),
				gen * CW_APP_SLOTS + app, ret, 1);
}

int loader_read_dns_counters(const struct loader *l, uint32_t gen, uint32_t app,
			     struct cw_dns_counters *ret)
{
	_Static_assert(sizeof(struct cw_dns_counters) % sizeof(uint64_t) == 0, "u64 fields only");

	if (gen >= CW_GENERATIONS || app >= CW_APP_SLOTS)
		return -ERANGE;
	return read_percpu_u64s(bpf_map__fd(l->dns->maps.cw_dns_stats), gen * CW_APP_SLOTS + app,
				(uint64_t *)ret, sizeof(*ret) / sizeof(uint64_t));
}

int loader_read_rule_hits(const struct loader *l, uint32_t gen, uint32_t rule, uint64_t *ret)
{
	if (gen >= CW_GENERATIONS || rule >= CW_MAX_RULES)
		return -ERANGE;
	return read_percpu_u64s(bpf_map__fd(l->sock_addr->maps.cw_rule_stats),
				gen * CW_MAX_RULES + rule, ret, 1);
}

void loader_keep_rule_hits(struct loader *l, bool keep)
{
	l->keep_next = keep;
}

/*
 * Add the rule counts of generation gen, left by a flip that kept the policy and no longer
 * used, to what the policy in force counted before (before they are zeroed). Read first without
 * carry_lock (no program counts there any more), then added under it: a reader never waits for
 * the map reads.
 */
static void loader_carry_rule_hits(struct loader *l, uint32_t gen)
{
	uint32_t n = l->rules[gen];
	_cleanup_free_ uint64_t *hits = n ? calloc(n, sizeof(*hits)) : NULL;
	int r = n && !hits ? -ENOMEM : 0;

	if (r == 0)
		r = add_percpu_u64_range(bpf_map__fd(l->sock_addr->maps.cw_rule_stats),
					 gen * CW_MAX_RULES, n, hits);
	pthread_mutex_lock(&l->carry_lock);
	if (r == 0 && n > l->n_rule_carry) {
		uint64_t *c = reallocarray(l->rule_carry, n, sizeof(*c));

		if (c) {
			memset(c + l->n_rule_carry, 0, (n - l->n_rule_carry) * sizeof(*c));
			l->rule_carry = c;
			l->n_rule_carry = n;
		} else {
			r = -ENOMEM;
		}
	}
	/* On an error, the counts of gen are lost (it is zeroed next), never invented. */
	for (uint32_t i = 0; r == 0 && i < n; i++)
		l->rule_carry[i] += hits[i];
	l->carry_pending = false;
	pthread_mutex_unlock(&l->carry_lock);
}

int loader_rule_hits_in_force(struct loader *l, uint32_t rule, uint64_t *ret)
{
	uint32_t gen = loader_active_gen(l);
	uint64_t other = 0;
	int r;

	r = loader_read_rule_hits(l, gen, rule, ret);
	if (r < 0)
		return r;
	/*
	 * The generation just left, until the thread added it to the carry (or when it could not
	 * wait for that generation's programs: neither added nor zeroed then): read under
	 * carry_lock, so that the thread cannot add and zero it in between. Never waits for the
	 * thread's grace period.
	 */
	pthread_mutex_lock(&l->carry_lock);
	if (rule < l->n_rule_carry)
		*ret += l->rule_carry[rule];
	if (l->carry_pending && loader_read_rule_hits(l, !gen, rule, &other) == 0)
		*ret += other;
	pthread_mutex_unlock(&l->carry_lock);
	return 0;
}

uint64_t loader_epoch(const struct loader *l)
{
	uint64_t a = l->state->gen[0].epoch, b = l->state->gen[1].epoch;

	return a > b ? a : b;
}

bool loader_has_policy(const struct loader *l)
{
	uint32_t gen = __atomic_load_n(&l->state->active_gen, __ATOMIC_ACQUIRE) & 1;

	return l->state->gen[gen].flags & CW_GEN_F_VALID;
}

/* The generation a key of each policy map belongs to. */
static uint32_t cgroup_key_gen(const void *key)
{
	return ((const struct cw_cgroup_key *)key)->gen;
}

static uint32_t dst4_key_gen(const void *key)
{
	return ((const struct cw_dst4_key *)key)->scope >> CW_SCOPE_GEN_SHIFT;
}

static uint32_t dst6_key_gen(const void *key)
{
	return ((const struct cw_dst6_key *)key)->scope >> CW_SCOPE_GEN_SHIFT;
}

static uint32_t port_key_gen(const void *key)
{
	return ((const struct cw_port_key *)key)->scope >> CW_SCOPE_GEN_SHIFT;
}

static uint32_t host_key_gen(const void *key)
{
	return ((const struct cw_host_key *)key)->scope >> CW_SCOPE_GEN_SHIFT;
}

static uint32_t name_key_gen(const void *key)
{
	return ((const struct cw_name_key *)key)->scope >> CW_SCOPE_GEN_SHIFT;
}

static uint32_t resolver_key_gen(const void *key)
{
	return ((const struct cw_resolver_key *)key)->gen;
}

static uint32_t home4_key_gen(const void *key)
{
	return ((const struct cw_home4_key *)key)->gen;
}

static uint32_t home6_key_gen(const void *key)
{
	return ((const struct cw_home6_key *)key)->gen;
}

/* The same key in generation gen (defined with loader_read_active()). */
static void cgroup_key_set_gen(void *key, uint32_t gen);
static void dst4_key_set_gen(void *key, uint32_t gen);
static void dst6_key_set_gen(void *key, uint32_t gen);
static void port_key_set_gen(void *key, uint32_t gen);
static void host_key_set_gen(void *key, uint32_t gen);
static void name_key_set_gen(void *key, uint32_t gen);
static void resolver_key_set_gen(void *key, uint32_t gen);
static void home4_key_set_gen(void *key, uint32_t gen);
static void home6_key_set_gen(void *key, uint32_t gen);

struct policy_map {
	int fd;
	size_t key_size;
	uint32_t (*key_gen)(const void *key);
	void (*key_set_gen)(void *key, uint32_t gen);
};

/* Delete every entry of generation `gen` from one map. */
static int loader_clear_gen(const struct policy_map *m, uint32_t gen)
{
	int fd = m->fd;
	size_t key_size = m->key_size;
	_cleanup_free_ char *keys = NULL;
	size_t n = 0, cap = 0;
	char key[64], next[64];
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		if (m->key_gen(next) == gen) {
			if (n == cap) {
				size_t c = cap ? cap * 2 : 256;
				char *k = reallocarray(keys, c, key_size);
				if (!k)
					return -ENOMEM;
				keys = k;
				cap = c;
			}
			memcpy(keys + n * key_size, next, key_size);
			n++;
		}
		memcpy(key, next, key_size);
		prev = key;
	}
	if (errno != ENOENT)
		return negative_errno();
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, keys + i * key_size) < 0 && errno != ENOENT)
			return negative_errno();
	return 0;
}

/* Whether none of the policy maps holds an entry (of either generation). */
static bool loader_maps_empty(const struct policy_map *specs)
{
	char key[64];

	for (unsigned m = 0; m < _MAP_MAX; m++)
		if (bpf_map_get_next_key(specs[m].fd, NULL, key) == 0 || errno != ENOENT)
			return false;
	return true;
}

/* Set entries first..first+n-1 of a per-CPU array of u64-multiple values to zero. */
static int zero_percpu(int fd, uint32_t first, uint32_t n, size_t value_size)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t stride = (value_size + 7) & ~(size_t)7;
	_cleanup_free_ uint32_t *keys = NULL;
	_cleanup_free_ void *zeros = NULL;
	uint32_t count = n;

	if (ncpu < 0)
		return ncpu;
	if (n == 0)
		return 0;
	keys = calloc(n, sizeof(*keys));
	zeros = calloc((size_t)n * (size_t)ncpu, stride);
	if (!keys || !zeros)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		keys[i] = first + i;
	if (bpf_map_update_batch(fd, keys, zeros, &count, NULL) == 0)
		return 0;
	/* Kernels without batch updates of per-CPU arrays: one entry at a time. */
	for (uint32_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &keys[i], zeros, BPF_ANY) < 0)
			return negative_errno();
	return 0;
}

/* Rule and region counters of generation gen, no longer in force and unused, to zero. */
static void loader_zero_retired(struct loader *l, uint32_t gen)
{
	struct sock_addr_bpf *s = l->sock_addr;

	if (l->carry_pending)
		loader_carry_rule_hits(l, gen);
	if (zero_percpu(bpf_map__fd(s->maps.cw_rule_stats), gen * CW_MAX_RULES, l->rule_hwm[gen],
			sizeof(uint64_t)) == 0)
		l->rule_hwm[gen] = 0;
	l->region_zero[gen] = zero_percpu(bpf_map__fd(s->maps.cw_region_stats),
					  gen * CW_APP_SLOTS, CW_APP_SLOTS, sizeof(uint64_t)) == 0;
}

/*
 * The new generation's counters start at zero (they still hold the one before the last): those
 * of its apps and guard (app indexes below n_app_slots) and of its rules. No program of this
 * generation counts for another index, and nothing reads one: what an earlier, larger policy
 * left above is zeroed before a policy that uses it goes in force. Rule and region counters
 * zeroed when the generation was left (loader_zero_retired()) are not written again.
 */
static int loader_zero_counters(struct loader *l, uint32_t gen, uint32_t n_app_slots,
				const struct policy_maps *maps)
{
	struct sock_addr_bpf *s = l->sock_addr;
	uint32_t n_rules = 0;
	int r;

	for (size_t i = 0; i < maps->n_ports; i++)
		if (maps->ports[i].val.rule + 1 > n_rules)
			n_rules = maps->ports[i].val.rule + 1;
	if (n_app_slots > CW_APP_SLOTS || n_rules > CW_MAX_RULES)
		return -E2BIG;
	r = zero_percpu(bpf_map__fd(s->maps.cw_app_stats), gen * CW_APP_SLOTS, n_app_slots,
			sizeof(struct cw_app_counters));
	if (r < 0)
		return r;
	r = zero_percpu(bpf_map__fd(l->dns->maps.cw_dns_stats), gen * CW_APP_SLOTS, n_app_slots,
			sizeof(struct cw_dns_counters));
	if (r < 0)
		return r;
	/* Zeroed when the generation was left, unless that could not be done. */
	if (!l->region_zero[gen]) {
		r = zero_percpu(bpf_map__fd(s->maps.cw_region_stats), gen * CW_APP_SLOTS,
				CW_APP_SLOTS, sizeof(uint64_t));
		if (r < 0)
			return r;
	}
	l->region_zero[gen] = false;
	if (l->rule_hwm[gen] > 0) {
		r = zero_percpu(bpf_map__fd(s->maps.cw_rule_stats), gen * CW_MAX_RULES, n_rules,
				sizeof(uint64_t));
		if (r < 0)
			return r;
	}
	/* The policy counts below n_rules; what an earlier one left above may stay. */
	l->rule_hwm[gen] = l->rule_hwm[gen] > n_rules ? l->rule_hwm[gen] : n_rules;
	l->rules[gen] = n_rules;
	return 0;
}

static void loader_written_clear(struct loader_written *w)
{
	for (unsigned m = 0; m < _MAP_MAX; m++) {
		free(w->maps[m].v);
		free(w->absent[m].v);
	}
	memset(w, 0, sizeof(*w));
}

/* The key of entry i, and its value (right after the key). */
static const char *entry(const struct loader_entries *e, size_t i, size_t stride)
{
	return e->v + i * stride;
}

static int copy_entries(struct loader_entries *out, const void *entries, size_t n, size_t stride)
{
	out->n = n;
	out->v = malloc(n * stride + 1);
	if (!out->v)
		return -ENOMEM;
	if (n == 0)
		return 0; /* entries may be NULL */
	memcpy(out->v, entries, n * stride);
	return 0;
}

/* A hash of a map key (every key of bpf/carwall.h is a whole number of 32-bit words). */
static uint64_t key_hash(const char *key, size_t ks)
{
	uint64_t h = ks;

	for (size_t i = 0; i + 4 <= ks; i += 4) {
		uint32_t w;

		memcpy(&w, key + i, 4);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return h;
}

/* Update many entries: one batch where the kernel has it, else one at a time. */
static int map_update_many(int fd, const void *keys, const void *vals, uint32_t n, size_t ks,
			   size_t vs)
{
	uint32_t count = n;

	if (n == 0)
		return 0;
	if (bpf_map_update_batch(fd, keys, vals, &count, NULL) == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, (const char *)keys + i * ks, (const char *)vals + i * vs,
					BPF_ANY) < 0)
			return negative_errno();
	return 0;
}

static int map_delete_many(int fd, const void *keys, uint32_t n, size_t ks)
{
	uint32_t count = n;

	if (n == 0)
		return 0;
	if (bpf_map_delete_batch(fd, keys, &count, NULL) == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, (const char *)keys + i * ks) < 0 && errno != ENOENT)
			return negative_errno();
	return 0;
}

/*
 * Bring one map's entries of a generation from `old` to `new` (each key at most once in each,
 * in any order): delete what is gone, write what is new or changed. The old keys are indexed in
 * an open-addressing hash table (at most half full), so that the diff costs O(n), not a sort.
 */
static int write_diff(int fd, size_t ks, size_t vs, const struct loader_entries *old,
		      const struct loader_entries *new)
{
	size_t stride = ks + vs, n_del = 0, n_upd = 0, cap = 16;
	_cleanup_free_ char *del = NULL, *upd_k = NULL, *upd_v = NULL;
	_cleanup_free_ uint32_t *slots = NULL; /* old entry index + 1; 0: free */
	_cleanup_free_ bool *kept = NULL;
	int r;

	if (old->n >= UINT32_MAX / 2)
		return -E2BIG;
	while (cap < 2 * old->n)
		cap *= 2;
	del = malloc(old->n * ks + 1);
	upd_k = malloc(new->n * ks + 1);
	upd_v = malloc(new->n * vs + 1);
	slots = calloc(cap, sizeof(*slots));
	kept = calloc(old->n + 1, sizeof(*kept));
	if (!del || !upd_k || !upd_v || !slots || !kept)
		return -ENOMEM;
	for (size_t i = 0; i < old->n; i++) {
		size_t h = key_hash(entry(old, i, stride), ks) & (cap - 1);

		while (slots[h])
			h = (h + 1) & (cap - 1);
		slots[h] = (uint32_t)i + 1;
	}
	for (size_t j = 0; j < new->n; j++) {
		const char *e = entry(new, j, stride);
		size_t h = key_hash(e, ks) & (cap - 1);
		bool same = false;

		for (; slots[h]; h = (h + 1) & (cap - 1)) {
			const char *o = entry(old, slots[h] - 1, stride);

			/* An old entry pairs with one new entry at most (were a key ever given
			 * twice, each copy would pair with its own, as the map holds it once). */
			if (kept[slots[h] - 1] || memcmp(o, e, ks))
				continue;
			kept[slots[h] - 1] = true;
			same = !memcmp(o + ks, e + ks, vs);
			break;
		}
		if (same)
			continue;
		memcpy(upd_k + n_upd * ks, e, ks);
		memcpy(upd_v + n_upd++ * vs, e + ks, vs);
	}
	for (size_t i = 0; i < old->n; i++)
		if (!kept[i])
			memcpy(del + n_del++ * ks, entry(old, i, stride), ks);
	r = map_delete_many(fd, del, (uint32_t)n_del, ks);
	if (r < 0)
		return r;
	return map_update_many(fd, upd_k, upd_v, (uint32_t)n_upd, ks, vs);
}

/* An index of the keys of entries (each key at most once): open addressing, at most half full. */
struct entry_index {
	uint32_t *slot; /* entry index + 1; 0: free */
	size_t mask;
};

static int entry_index_build(struct entry_index *ix, const struct loader_entries *e, size_t ks,
			     size_t stride)
{
	size_t cap = 16;

	if (e->n >= UINT32_MAX / 2)
		return -E2BIG;
	while (cap < 2 * e->n)
		cap *= 2;
	ix->slot = calloc(cap, sizeof(*ix->slot));
	if (!ix->slot)
		return -ENOMEM;
	ix->mask = cap - 1;
	for (size_t i = 0; i < e->n; i++) {
		size_t h = key_hash(entry(e, i, stride), ks) & ix->mask;

		while (ix->slot[h])
			h = (h + 1) & ix->mask;
		ix->slot[h] = (uint32_t)i + 1;
	}
	return 0;
}

/* The index in e of the entry with key, or SIZE_MAX. */
static size_t entry_index_find(const struct entry_index *ix, const struct loader_entries *e,
			       size_t ks, size_t stride, const char *key)
{
	for (size_t h = key_hash(key, ks) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask)
		if (!memcmp(entry(e, ix->slot[h] - 1, stride), key, ks))
			return ix->slot[h] - 1;
	return SIZE_MAX;
}

/* How an entry of the reference generation pairs with the entries written next. */
enum { PAIR_NONE, PAIR_CHANGED, PAIR_SAME };
#define PAIR_NO_ENTRY UINT32_MAX

/*
 * Pair the entries of two generations by key, but for the generation in it: ref's (keys of
 * generation rgen) with next's (the other): ret_pair[j], the index in ref of next's entry j, or
 * PAIR_NO_ENTRY; ret_state[i], whether ref's entry i has a pair, with the same value or not.
 */
static int entries_pair(const struct loader_entries *ref, const struct loader_entries *next,
			size_t ks, size_t vs, void (*set_gen)(void *key, uint32_t gen), uint32_t rgen,
			uint32_t **ret_pair, uint8_t **ret_state)
{
	size_t stride = ks + vs;
	_cleanup_free_ uint32_t *pair = malloc(next->n * sizeof(*pair) + 1);
	_cleanup_free_ uint8_t *state = calloc(ref->n + 1, sizeof(*state));
	struct entry_index ix = {};
	char k[64];
	int r;

	if (!pair || !state)
		return -ENOMEM;
	r = entry_index_build(&ix, ref, ks, stride);
	if (r < 0)
		return r;
	for (size_t j = 0; j < next->n; j++) {
		const char *e = entry(next, j, stride);
		size_t i;

		memcpy(k, e, ks);
		set_gen(k, rgen);
		i = entry_index_find(&ix, ref, ks, stride, k);
		pair[j] = i == SIZE_MAX ? PAIR_NO_ENTRY : (uint32_t)i;
		if (i != SIZE_MAX)
			state[i] = memcmp(entry(ref, i, stride) + ks, e + ks, vs) ? PAIR_CHANGED
									    : PAIR_SAME;
	}
	free(ix.slot);
	*ret_pair = TAKE_PTR(pair);
	*ret_state = TAKE_PTR(state);
	return 0;
}

/*
 * Bring one map's entries of generation gen to next, gen holding the reference generation's
 * entries (ref, paired with next by entries_pair()) but for its delta (only, absent: struct
 * loader_written): what differs from ref is in the delta or in the pairing, so that nothing
 * else is looked at.
 */
static int write_from_delta(int fd, size_t ks, size_t vs, void (*set_gen)(void *key, uint32_t gen),
			    uint32_t gen, const struct loader_entries *ref,
			    const struct loader_entries *only, const struct loader_entries *absent,
			    const struct loader_entries *next, const uint32_t *pair,
			    const uint8_t *state)
{
	size_t stride = ks + vs, n_del = 0, n_upd = 0;
	_cleanup_free_ char *del = malloc((ref->n + only->n) * ks + 1);
	_cleanup_free_ char *upd_k = malloc(next->n * ks + 1), *upd_v = malloc(next->n * vs + 1);
	_cleanup_free_ bool *only_kept = calloc(only->n + 1, sizeof(bool));
	struct entry_index ix_only = {}, ix_absent = {};
	int r;

	if (!del || !upd_k || !upd_v || !only_kept)
		return -ENOMEM;
	r = entry_index_build(&ix_only, only, ks, stride);
	if (r == 0)
		r = entry_index_build(&ix_absent, absent, ks, ks);
	for (size_t j = 0; r == 0 && j < next->n; j++) {
		const char *e = entry(next, j, stride), *held = NULL;
		size_t x = entry_index_find(&ix_only, only, ks, stride, e);

		if (x != SIZE_MAX) {
			held = entry(only, x, stride) + ks;
			only_kept[x] = true;
		} else if (pair[j] != PAIR_NO_ENTRY &&
			   entry_index_find(&ix_absent, absent, ks, ks, e) == SIZE_MAX) {
			held = entry(ref, pair[j], stride) + ks;
		}
		if (held && !memcmp(held, e + ks, vs))
			continue;
		memcpy(upd_k + n_upd * ks, e, ks);
		memcpy(upd_v + n_upd++ * vs, e + ks, vs);
	}
	/* What gen holds that next does not: ref's keys next lost, and its own. */
	for (size_t i = 0; r == 0 && i < ref->n; i++) {
		char *k = del + n_del * ks;

		if (state[i] != PAIR_NONE)
			continue;
		memcpy(k, entry(ref, i, stride), ks);
		set_gen(k, gen);
		if (entry_index_find(&ix_only, only, ks, stride, k) == SIZE_MAX &&
		    entry_index_find(&ix_absent, absent, ks, ks, k) == SIZE_MAX)
			n_del++;
	}
	for (size_t x = 0; r == 0 && x < only->n; x++)
		if (!only_kept[x])
			memcpy(del + n_del++ * ks, entry(only, x, stride), ks);
	free(ix_only.slot);
	free(ix_absent.slot);
	if (r < 0)
		return r;
	r = map_delete_many(fd, del, (uint32_t)n_del, ks);
	if (r < 0)
		return r;
	return map_update_many(fd, upd_k, upd_v, (uint32_t)n_upd, ks, vs);
}

/*
 * The delta of the reference generation (ref, keys of rgen) to next, from their pairing: ref's
 * entries next does not hold as they are, and next's keys (moved to rgen) ref does not hold.
 */
static int delta_from_pair(const struct loader_entries *ref, const struct loader_entries *next,
			   size_t ks, size_t vs, void (*set_gen)(void *key, uint32_t gen),
			   uint32_t rgen, const uint32_t *pair, const uint8_t *state,
			   struct loader_entries *ret_only, struct loader_entries *ret_absent)
{
	size_t stride = ks + vs, n_only = 0, n_absent = 0;
	_cleanup_free_ char *only = NULL, *absent = NULL;

	for (size_t i = 0; i < ref->n; i++)
		n_only += state[i] != PAIR_SAME;
	for (size_t j = 0; j < next->n; j++)
		n_absent += pair[j] == PAIR_NO_ENTRY;
	only = malloc(n_only * stride + 1);
	absent = malloc(n_absent * ks + 1);
	if (!only || !absent)
		return -ENOMEM;
	n_only = n_absent = 0;
	for (size_t i = 0; i < ref->n; i++)
		if (state[i] != PAIR_SAME)
			memcpy(only + n_only++ * stride, entry(ref, i, stride), stride);
	for (size_t j = 0; j < next->n; j++) {
		if (pair[j] != PAIR_NO_ENTRY)
			continue;
		memcpy(absent + n_absent * ks, entry(next, j, stride), ks);
		set_gen(absent + n_absent++ * ks, rgen);
	}
	*ret_only = (struct loader_entries){ .v = TAKE_PTR(only), .n = n_only };
	*ret_absent = (struct loader_entries){ .v = TAKE_PTR(absent), .n = n_absent };
	return 0;
}

/*
 * Wait until no program can still be running on what it read before now: an update of an array
 * of maps from userspace returns only after an RCU grace period (the kernel's
 * maybe_wait_bpf_programs()). carwall's programs run under rcu_read_lock(), with migration but
 * not preemption disabled; a preempted one is still inside its read-side section, so the grace
 * period waits for it too.
 */
static int loader_wait_for_programs(struct loader *l)
{
	__u32 zero = 0, inner = (__u32)l->sync_inner_fd;

	if (bpf_map_update_elem(l->sync_outer_fd, &zero, &inner, BPF_ANY) < 0)
		return negative_errno();
	return 0;
}

static void *loader_sync_thread(void *arg)
{
	struct loader *l = arg;

	l->sync_result = loader_wait_for_programs(l);
	if (l->sync_result == 0)
		loader_zero_retired(l, l->sync_gen);
	return NULL;
}

/* Start waiting for the programs that took the generation just left, without blocking. */
static void loader_sync_start(struct loader *l)
{
	sigset_t all, old;

	sigfillset(&all);
	/* The thread takes no signal: the agent's are read from a signalfd. */
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		return;
	l->sync_running = pthread_create(&l->sync_thread, NULL, loader_sync_thread, l) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The wait started after the last flip is over: then the inactive generation is unused. */
static void loader_sync_end(struct loader *l)
{
	if (!l->sync_running)
		return;
	pthread_join(l->sync_thread, NULL);
	l->sync_running = false;
	if (l->sync_result == 0)
		l->inactive_unused = true;
}

int loader_apply(struct loader *l, const struct policy_maps *maps, const struct loader_cgroup *cgroups,
		 size_t n_cgroups, uint32_t n_app_slots)
{
	struct sock_addr_bpf *s = l->sock_addr;
	const struct policy_map specs[_MAP_MAX] = {
		[MAP_CGROUPS] = { bpf_map__fd(s->maps.cw_cgroups), sizeof(struct cw_cgroup_key),
				  cgroup_key_gen, cgroup_key_set_gen },
		[MAP_DST4] = { bpf_map__fd(s->maps.cw_dst4), sizeof(struct cw_dst4_key), dst4_key_gen,
			       dst4_key_set_gen },
		[MAP_DST6] = { bpf_map__fd(s->maps.cw_dst6), sizeof(struct cw_dst6_key), dst6_key_gen,
			       dst6_key_set_gen },
		[MAP_PORTS] = { bpf_map__fd(s->maps.cw_ports), sizeof(struct cw_port_key),
				port_key_gen, port_key_set_gen },
		[MAP_HOSTS] = { bpf_map__fd(s->maps.cw_hosts), sizeof(struct cw_host_key),
				host_key_gen, host_key_set_gen },
		[MAP_NAMES] = { bpf_map__fd(s->maps.cw_names), sizeof(struct cw_name_key),
				name_key_gen, name_key_set_gen },
		[MAP_RESOLVERS] = { bpf_map__fd(s->maps.cw_resolvers),
				    sizeof(struct cw_resolver_key), resolver_key_gen,
				    resolver_key_set_gen },
		[MAP_HOME4] = { bpf_map__fd(s->maps.cw_home4), sizeof(struct cw_home4_key),
				home4_key_gen, home4_key_set_gen },
		[MAP_HOME6] = { bpf_map__fd(s->maps.cw_home6), sizeof(struct cw_home6_key),
				home6_key_gen, home6_key_set_gen },
	};
	const size_t val_sizes[_MAP_MAX] = {
		sizeof(struct cw_app_val),  sizeof(struct cw_dst_val),	sizeof(struct cw_dst_val),
		sizeof(struct cw_port_val), sizeof(struct cw_port_val), sizeof(struct cw_name_val),
		sizeof(__u32),		    sizeof(struct cw_home_val), sizeof(struct cw_home_val),
	};
	_cleanup_free_ struct {
		struct cw_resolver_key key;
		__u32 val;
	} *res = calloc(maps->n_resolvers + 1, sizeof(*res));
	/* Apps with host names: their decisions and DNS answers look at cw_names. */
	_cleanup_free_ bool *has_names = calloc(CW_APP_SLOTS, sizeof(bool));
	struct {
		struct cw_cgroup_key key;
		struct cw_app_val val;
	} *cg = calloc(n_cgroups + 1, sizeof(*cg));
	struct loader_written next = { .known = true };
	uint32_t gen = loader_next_gen(l);
	struct loader_written *cur = &l->written[gen], *ref = &l->written[!gen];
	struct loader_entries only[_MAP_MAX] = {}, absent[_MAP_MAX] = {};
	uint32_t *pair[_MAP_MAX] = {};
	uint8_t *state[_MAP_MAX] = {};
	bool paired = false;
	size_t whole_bytes = 0, delta_bytes = 0;
	uint32_t level_mask = 0;
	int r = 0;

	if (!cg || !res || !has_names) {
		free(cg);
		l->keep_next = false;
		return -ENOMEM;
	}
	if (maps->gen != gen)
		r = -ESTALE;
	else if (n_app_slots > CW_APP_SLOTS || n_cgroups > CW_MAX_CGROUPS / CW_GENERATIONS ||
		 maps->n_names > CW_MAX_NAMES / CW_GENERATIONS || maps->n_resolvers > CW_MAX_RESOLVERS ||
		 maps->n_home4 > POLICY_MAPS_MAX_HOME4 || maps->n_home6 > POLICY_MAPS_MAX_HOME6)
		r = -E2BIG;
	/* Home-only with no home prefix would refuse every flow a rule allows: never asked. */
	else if (maps->home_only && maps->n_home4 + maps->n_home6 == 0)
		r = -EINVAL;
	for (size_t i = 0; r == 0 && i < maps->n_home4; i++)
		if (maps->home4[i].key.gen != gen)
			r = -ERANGE;
	for (size_t i = 0; r == 0 && i < maps->n_home6; i++)
		if (maps->home6[i].key.gen != gen)
			r = -ERANGE;
	for (size_t i = 0; r == 0 && i < maps->n_names; i++) {
		uint32_t app = maps->names[i].key.scope & CW_SCOPE_ID_MASK;

		if (app >= CW_APP_SLOTS || maps->names[i].key.scope >> CW_SCOPE_GEN_SHIFT != gen)
			r = -ERANGE;
		else
			has_names[app] = true;
	}
	for (size_t i = 0; r == 0 && i < maps->n_resolvers; i++) {
		res[i].key = maps->resolvers[i];
		if (res[i].key.gen != gen)
			r = -ERANGE;
	}
	for (size_t i = 0; r == 0 && i < n_cgroups; i++) {
		if (cgroups[i].level > CW_MAX_CGROUP_LEVEL || cgroups[i].app >= n_app_slots) {
			r = -ERANGE;
			break;
		}
		level_mask |= 1u << cgroups[i].level;
		cg[i].key = (struct cw_cgroup_key){ .cgroup_id = cgroups[i].id, .gen = gen };
		cg[i].val = (struct cw_app_val){ .app = cgroups[i].app,
						 .flags = cgroups[i].flags,
						 .uid = cgroups[i].uid };
		if (cgroups[i].app < CW_APP_SLOTS && has_names[cgroups[i].app] &&
		    !(cgroups[i].flags & CW_APP_F_GUARD))
			cg[i].val.flags |= CW_APP_F_NAMES;
	}
	if (r == 0)
		r = copy_entries(&next.maps[MAP_CGROUPS], cg, n_cgroups, sizeof(*cg));
	free(cg);
	if (r == 0)
		r = copy_entries(&next.maps[MAP_DST4], maps->dst4, maps->n_dst4, sizeof(*maps->dst4));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_DST6], maps->dst6, maps->n_dst6, sizeof(*maps->dst6));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_PORTS], maps->ports, maps->n_ports,
				sizeof(*maps->ports));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_HOSTS], maps->hosts, maps->n_hosts,
				sizeof(*maps->hosts));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_NAMES], maps->names, maps->n_names,
				sizeof(*maps->names));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_RESOLVERS], res, maps->n_resolvers, sizeof(*res));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_HOME4], maps->home4, maps->n_home4,
				sizeof(*maps->home4));
	if (r == 0)
		r = copy_entries(&next.maps[MAP_HOME6], maps->home6, maps->n_home6,
				sizeof(*maps->home6));
	if (r < 0)
		goto out;

	/*
	 * The inactive generation still holds the policy before the last flip. A program reads the
	 * active index once per decision, and may have read it just before that flip and still be
	 * deciding on this generation (preempted, on a PREEMPT or PREEMPT_RT kernel): a grace
	 * period after the flip guarantees none is left (a thread starts waiting for one right
	 * after each flip, and is joined here; an agent that adopted pins, or whose thread could
	 * not start or failed, waits here). Then bring it to the new policy,
	 * writing only what differs from what is there, and flip. Contents not known (adopted from
	 * pins) are cleared entry by entry first.
	 */
	loader_sync_end(l);
	if (!l->inactive_unused) {
		r = loader_wait_for_programs(l);
		if (r < 0)
			goto out;
		l->inactive_unused = true;
	}
	if (l->carry_pending)
		loader_carry_rule_hits(l, gen);
	l->state->gen[gen].flags = 0;
	/*
	 * Nothing written by this loader yet and the maps empty (made at this start, not adopted):
	 * both generations are known to hold nothing, and the other one needs no clearing later.
	 */
	if (!cur->known && !ref->known && loader_maps_empty(specs))
		cur->known = ref->known = true;
	/* A difference to what the other generation no longer holds as known says nothing. */
	if (cur->delta && (!ref->known || ref->delta))
		cur->known = false;
	if (!cur->known) {
		loader_written_clear(cur);
		for (unsigned m = 0; m < _MAP_MAX; m++) {
			r = loader_clear_gen(&specs[m], gen);
			if (r < 0)
				goto out;
		}
		cur->known = true;
	}
	/*
	 * The policy in force (ref, its entries known) paired with the next one: what gen holds
	 * differs from it by gen's delta, and what it keeps of it after the flip is its delta to
	 * the next one.
	 */
	paired = ref->known && !ref->delta;
	for (unsigned m = 0; paired && m < _MAP_MAX; m++) {
		r = entries_pair(&ref->maps[m], &next.maps[m], specs[m].key_size, val_sizes[m],
				 specs[m].key_set_gen, !gen, &pair[m], &state[m]);
		if (r < 0)
			goto out;
	}
	for (unsigned m = 0; m < _MAP_MAX; m++) {
		if (cur->delta)
			r = write_from_delta(specs[m].fd, specs[m].key_size, val_sizes[m],
					     specs[m].key_set_gen, gen, &ref->maps[m], &cur->maps[m],
					     &cur->absent[m], &next.maps[m], pair[m], state[m]);
		else
			r = write_diff(specs[m].fd, specs[m].key_size, val_sizes[m], &cur->maps[m],
				       &next.maps[m]);
		if (r < 0) {
			cur->known = false; /* written half-way */
			goto out;
		}
	}
	r = loader_zero_counters(l, gen, n_app_slots, maps);
	if (r < 0)
		goto out;

	l->state->gen[gen].level_mask = level_mask;
	l->state->gen[gen].ttl_min_s = maps->ttl_min_s;
	l->state->gen[gen].ttl_max_s = maps->ttl_max_s;
	l->state->gen[gen].grace_s = maps->grace_s;
	l->state->gen[gen].learn_quota = maps->learn_quota;
	l->state->gen[gen].consent_deny = maps->consent_deny & ~CW_PURPOSE_NONE;
	l->state->gen[gen].epoch = loader_epoch(l) + 1;
	l->state->gen[gen].flags = CW_GEN_F_VALID | (maps->home_only ? CW_GEN_F_HOME_ONLY : 0);
	/* The flip: one aligned 32-bit store that orders everything above before it. */
	__atomic_store_n(&l->state->active_gen, gen, __ATOMIC_RELEASE);
	l->inactive_unused = false;
	loader_written_clear(cur);
	*cur = next;
	next = (struct loader_written){};
	/*
	 * The generation just left holds the policy before, mostly the same: kept as its delta to
	 * the one in force, or whole when that is not smaller (a policy far from this one, none)
	 * or cannot be had.
	 */
	for (unsigned m = 0; paired && m < _MAP_MAX && r == 0; m++) {
		size_t ks = specs[m].key_size, stride = ks + val_sizes[m];

		r = delta_from_pair(&ref->maps[m], &cur->maps[m], ks, val_sizes[m],
				    specs[m].key_set_gen, !gen, pair[m], state[m], &only[m],
				    &absent[m]);
		whole_bytes += ref->maps[m].n * stride;
		delta_bytes += only[m].n * stride + absent[m].n * ks;
	}
	if (paired && r == 0 && delta_bytes < whole_bytes) {
		for (unsigned m = 0; m < _MAP_MAX; m++) {
			free(ref->maps[m].v);
			ref->maps[m] = only[m];
			ref->absent[m] = absent[m];
			only[m] = absent[m] = (struct loader_entries){};
		}
		ref->delta = true;
	}
	r = 0;
	/*
	 * The new policy is in force. Start waiting, in the background, for the programs that
	 * took the old generation to finish, so that the next reload may rewrite it at once; its
	 * rule and region counters are zeroed then.
	 */
	l->sync_gen = !gen;
	pthread_mutex_lock(&l->carry_lock);
	l->carry_pending = l->keep_next;
	if (!l->keep_next) {
		free(l->rule_carry);
		l->rule_carry = NULL;
		l->n_rule_carry = 0;
	}
	pthread_mutex_unlock(&l->carry_lock);
	loader_sync_start(l);
out:
	l->keep_next = false;
	loader_written_clear(&next);
	for (unsigned m = 0; m < _MAP_MAX; m++) {
		free(pair[m]);
		free(state[m]);
		free(only[m].v);
		free(absent[m].v);
	}
	return r;
}

int loader_lookup_cgroup(const struct loader *l, uint64_t id, unsigned level,
			 struct cw_app_val *ret)
{
	uint32_t gen = loader_active_gen(l);
	struct cw_cgroup_key key = { .cgroup_id = id, .gen = gen };

	/* As the programs look: a valid generation, a level they look at, then the entry. */
	if (!(l->state->gen[gen].flags & CW_GEN_F_VALID) || level > CW_MAX_CGROUP_LEVEL ||
	    !(l->state->gen[gen].level_mask & (1u << level)))
		return -ENOENT;
	if (bpf_map_lookup_elem(bpf_map__fd(l->sock_addr->maps.cw_cgroups), &key, ret) < 0)
		return negative_errno();
	return 0;
}

/*
 * Every entry of generation `from` of one map into `out` (an array of {key, value} of `stride`
 * bytes, grown as needed), with set_gen() moving each key to generation `to`.
 */
static int read_gen(int fd, size_t ks, size_t stride, uint32_t (*key_gen)(const void *key),
		    void (*set_gen)(void *key, uint32_t gen), uint32_t from, uint32_t to,
		    void **out, size_t *ret_n)
{
	char key[64], next[64];
	void *prev = NULL;
	size_t n = 0, cap = 0;
	char *v = NULL;

	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, ks);
		prev = key;
		if (key_gen(key) != from)
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 256;
			char *nv = reallocarray(v, c, stride);
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = c;
		}
		if (bpf_map_lookup_elem(fd, key, v + n * stride + ks) < 0) {
			if (errno == ENOENT)
				continue; /* deleted meanwhile */
			free(v);
			return negative_errno();
		}
		memcpy(v + n * stride, key, ks);
		set_gen(v + n * stride, to);
		n++;
	}
	if (errno != ENOENT) {
		int r = negative_errno();
		free(v);
		return r;
	}
	*out = v;
	*ret_n = n;
	return 0;
}

static void cgroup_key_set_gen(void *key, uint32_t gen)
{
	((struct cw_cgroup_key *)key)->gen = gen;
}

static void dst4_key_set_gen(void *key, uint32_t gen)
{
	struct cw_dst4_key *k = key;

	k->scope = cw_scope(gen, k->scope & CW_SCOPE_ID_MASK);
}

static void dst6_key_set_gen(void *key, uint32_t gen)
{
	struct cw_dst6_key *k = key;

	k->scope = cw_scope(gen, k->scope & CW_SCOPE_ID_MASK);
}

static void port_key_set_gen(void *key, uint32_t gen)
{
	struct cw_port_key *k = key;

	k->scope = cw_scope(gen, k->scope & CW_SCOPE_ID_MASK);
}

static void host_key_set_gen(void *key, uint32_t gen)
{
	struct cw_host_key *k = key;

	k->scope = cw_scope(gen, k->scope & CW_SCOPE_ID_MASK);
}

static void name_key_set_gen(void *key, uint32_t gen)
{
	struct cw_name_key *k = key;

	k->scope = cw_scope(gen, k->scope & CW_SCOPE_ID_MASK);
}

static void resolver_key_set_gen(void *key, uint32_t gen)
{
	((struct cw_resolver_key *)key)->gen = gen;
}

static void home4_key_set_gen(void *key, uint32_t gen)
{
	((struct cw_home4_key *)key)->gen = gen;
}

static void home6_key_set_gen(void *key, uint32_t gen)
{
	((struct cw_home6_key *)key)->gen = gen;
}

/* The home region of generation `from` (its prefixes and CW_GEN_F_HOME_ONLY) into m. */
static int loader_read_home(const struct loader *l, uint32_t from, uint32_t to,
			    struct policy_maps *m)
{
	struct sock_addr_bpf *s = l->sock_addr;
	void *v = NULL;
	int r;

	r = read_gen(bpf_map__fd(s->maps.cw_home4), sizeof(struct cw_home4_key),
		     sizeof(*m->home4), home4_key_gen, home4_key_set_gen, from, to, &v,
		     &m->n_home4);
	if (r < 0)
		return r;
	m->home4 = v;
	r = read_gen(bpf_map__fd(s->maps.cw_home6), sizeof(struct cw_home6_key),
		     sizeof(*m->home6), home6_key_gen, home6_key_set_gen, from, to, &v,
		     &m->n_home6);
	if (r < 0)
		return r;
	m->home6 = v;
	m->home_only = l->state->gen[from].flags & CW_GEN_F_HOME_ONLY;
	policy_maps_sort_home(m);
	return 0;
}

/* The resolvers of generation `from` as policy_maps entries of generation `to`. */
static int loader_read_resolvers(const struct loader *l, uint32_t from, uint32_t to,
				 struct policy_maps *m)
{
	struct {
		struct cw_resolver_key key;
		__u32 val;
	} *e = NULL;
	void *v = NULL;
	size_t n = 0;
	int r;

	r = read_gen(bpf_map__fd(l->sock_addr->maps.cw_resolvers), sizeof(e->key), sizeof(*e),
		     resolver_key_gen, resolver_key_set_gen, from, to, &v, &n);
	if (r < 0)
		return r;
	e = v;
	m->resolvers = calloc(n + 1, sizeof(*m->resolvers));
	if (!m->resolvers) {
		free(e);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		m->resolvers[i] = e[i].key;
	m->n_resolvers = n;
	free(e);
	m->ttl_min_s = l->state->gen[from].ttl_min_s;
	m->ttl_max_s = l->state->gen[from].ttl_max_s;
	m->grace_s = l->state->gen[from].grace_s;
	m->learn_quota = l->state->gen[from].learn_quota;
	m->consent_deny = l->state->gen[from].consent_deny;
	return 0;
}

int loader_read_active(const struct loader *l, struct policy_maps **ret_maps,
		       struct loader_active_cgroup **ret_cgroups, size_t *ret_n)
{
	struct sock_addr_bpf *s = l->sock_addr;
	uint32_t from = loader_active_gen(l), to = !from;
	struct policy_maps *m = calloc(1, sizeof(*m));
	struct loader_active_cgroup *cg = NULL;
	size_t n_cg = 0;
	void *v = NULL;
	int r;

	_Static_assert(sizeof(struct loader_active_cgroup) ==
			       sizeof(struct cw_cgroup_key) + sizeof(struct cw_app_val),
		       "loader_active_cgroup is a cw_cgroups entry");
	if (!m)
		return -ENOMEM;
	m->gen = to;
	r = read_gen(bpf_map__fd(s->maps.cw_dst4), sizeof(struct cw_dst4_key), sizeof(*m->dst4),
		     dst4_key_gen, dst4_key_set_gen, from, to, &v, &m->n_dst4);
	m->dst4 = v;
	if (r == 0)
		r = read_gen(bpf_map__fd(s->maps.cw_dst6), sizeof(struct cw_dst6_key),
			     sizeof(*m->dst6), dst6_key_gen, dst6_key_set_gen, from, to, &v,
			     &m->n_dst6);
	if (r == 0)
		m->dst6 = v;
	if (r == 0)
		r = read_gen(bpf_map__fd(s->maps.cw_ports), sizeof(struct cw_port_key),
			     sizeof(*m->ports), port_key_gen, port_key_set_gen, from, to, &v,
			     &m->n_ports);
	if (r == 0)
		m->ports = v;
	if (r == 0)
		r = read_gen(bpf_map__fd(s->maps.cw_hosts), sizeof(struct cw_host_key),
			     sizeof(*m->hosts), host_key_gen, host_key_set_gen, from, to, &v,
			     &m->n_hosts);
	if (r == 0)
		m->hosts = v;
	if (r == 0)
		r = read_gen(bpf_map__fd(s->maps.cw_names), sizeof(struct cw_name_key),
			     sizeof(*m->names), name_key_gen, name_key_set_gen, from, to, &v,
			     &m->n_names);
	if (r == 0)
		m->names = v;
	if (r == 0)
		r = loader_read_resolvers(l, from, to, m);
	if (r == 0)
		r = loader_read_home(l, from, to, m);
	if (r == 0)
		r = read_gen(bpf_map__fd(s->maps.cw_cgroups), sizeof(struct cw_cgroup_key),
			     sizeof(*cg), cgroup_key_gen, cgroup_key_set_gen, from, to, &v, &n_cg);
	if (r < 0) {
		policy_maps_free(m);
		return r;
	}
	cg = v;
	for (size_t i = 0; i < m->n_ports; i++) {
		size_t ps = m->ports[i].key.scope & CW_SCOPE_ID_MASK;

		if (ps + 1 > m->n_portsets)
			m->n_portsets = ps + 1;
	}
	*ret_maps = m;
	*ret_cgroups = cg;
	*ret_n = n_cg;
	return 0;
}

int loader_attach(struct loader *l, const char *cgroup_root)
{
	_cleanup_close_ int cgfd = -1;
	uint64_t cgid;
	int r;

	r = cgroup_get_id(cgroup_root, &cgid);
	if (r < 0)
		return r;
	cgfd = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return negative_errno();

	for (unsigned i = 0; i < PINS_N_HOOKS; i++) {
		_cleanup_(bpf_link__destroyp) struct bpf_link *link = NULL;
		struct bpf_program *prog = loader_hook_prog(l, i);
		char path[4096];

		r = pins_link_path(l->pin_dir, i, path, sizeof(path));
		if (r < 0)
			return r;

		/* A pin from an earlier agent: adopt it. */
		if (access(path, F_OK) == 0) {
			link = bpf_link__open(path);
			if (!link)
				return negative_errno();
			struct bpf_link_info info = {};
			__u32 len = sizeof(info);

			/* Adopt: the link must be attached where we were asked to enforce. */
			if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len) < 0)
				return negative_errno();
			if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != cgid ||
			    info.cgroup.attach_type != bpf_program__expected_attach_type(prog))
				return -EXDEV;
			/* Swap the program in place: enforcement never pauses. */
			r = bpf_link__update_program(link, prog);
			if (r < 0)
				return r;
		} else {
			link = bpf_program__attach_cgroup(prog, cgfd);
			if (!link)
				return negative_errno();
			r = bpf_link__pin(link, path);
			if (r < 0)
				return r;
		}
		bpf_link__destroy(l->links[i]);
		l->links[i] = TAKE_PTR(link);
	}
	return 0;
}

static int prog_id_of_fd(int fd, uint32_t *ret)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return negative_errno();
	*ret = info.id;
	return 0;
}

int loader_find_overriders(struct loader *l, const char *cgroup_root, struct loader_foreign *ret,
			   size_t max, size_t *ret_n)
{
	_cleanup_close_ int cgfd = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n = 0;

	if (cgfd < 0)
		return negative_errno();
	/* The destination hooks only: the others cannot change where a packet goes. */
	for (unsigned i = 0; i < 4; i++) {
		struct bpf_program *prog = loader_hook_prog(l, i);
		__u32 ids[64], cnt = ARRAY_SIZE(ids), flags = 0;
		uint32_t ours;
		bool after = false;
		int r;

		r = prog_id_of_fd(bpf_program__fd(prog), &ours);
		if (r < 0)
			return r;
		if (bpf_prog_query(cgfd, bpf_program__expected_attach_type(prog),
				   BPF_F_QUERY_EFFECTIVE, &flags, ids, &cnt) < 0)
			return negative_errno();
		/* Effective order is run order: the deepest cgroup's programs first. */
		for (__u32 k = 0; k < cnt; k++) {
			if (ids[k] == ours) {
				after = true;
				continue;
			}
			if (!after || n >= max)
				continue;
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			_cleanup_close_ int fd = bpf_prog_get_fd_by_id(ids[k]);

			ret[n].hook = pins_hook_names[i];
			ret[n].prog_id = ids[k];
			ret[n].prog_name[0] = '\0';
			if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
				snprintf(ret[n].prog_name, sizeof(ret[n].prog_name), "%s", info.name);
			n++;
		}
	}
	*ret_n = n;
	return 0;
}

void loader_free(struct loader *l)
{
	if (!l)
		return;
	/* Destroying a pinned link only drops our reference: the pin keeps it attached. */
	for (unsigned i = 0; i < PINS_N_HOOKS; i++)
		bpf_link__destroy(l->links[i]);
	if (l->state)
		munmap(l->state, (size_t)sysconf(_SC_PAGESIZE));
	for (unsigned g = 0; g < CW_GENERATIONS; g++)
		loader_written_clear(&l->written[g]);
	loader_sync_end(l);
	free(l->rule_carry);
	if (l->sync_outer_fd >= 0)
		close(l->sync_outer_fd);
	if (l->sync_inner_fd >= 0)
		close(l->sync_inner_fd);
	dns_bpf__destroy(l->dns);
	skb_bpf__destroy(l->skb);
	sock_ops_bpf__destroy(l->sock_ops);
	sock_create_bpf__destroy(l->sock_create);
	sock_addr_bpf__destroy(l->sock_addr);
	free(l->pin_dir);
	free(l);
}

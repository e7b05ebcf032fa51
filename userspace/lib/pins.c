// SPDX-License-Identifier: GPL-2.0-only
#include "pins.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "carwall.h"
#include "util.h"

const char *const pins_hook_names[] = { "connect4",	 "connect6",   "sendmsg4",
					"sendmsg6",	 "sock_create", "skb_egress",
					"sock_ops",	 "skb_ingress", NULL };

const char *const pins_map_names[PINS_N_MAPS] = {
	"cw_state",	"cw_cgroups",	 "cw_dst4",	 "cw_dst6",	 "cw_ports",	"cw_hosts",
	"cw_events",	"cw_app_stats", "cw_rule_stats", "cw_ratelimit", "cw_sk_state",
	"cw_names",	"cw_resolvers", "cw_learned",	 "cw_learn_count", "cw_dns_stats",
	"cw_dns_scratch", "cw_home4",	"cw_home6",	 "cw_region_stats", "cw_seen",
	"cw_seen_keys",
};

int pins_link_path(const char *pin_dir, unsigned hook, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/links/%s", pin_dir, pins_hook_names[hook]);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int pins_read(const char *pin_dir, struct pins_status *ret)
{
	char path[4096];
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->links_total = PINS_N_HOOKS;
	for (unsigned i = 0; i < PINS_N_HOOKS; i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		_cleanup_close_ int fd = -1;

		r = pins_link_path(pin_dir, i, path, sizeof(path));
		if (r < 0)
			return r;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.cgroup.cgroup_id) {
			ret->links_attached++;
			ret->cgroup_id = info.cgroup.cgroup_id;
		}
	}

	snprintf(path, sizeof(path), "%s/maps/cw_state", pin_dir);
	_cleanup_close_ int state_fd = bpf_obj_get(path);
	if (state_fd < 0)
		return 0;
	ret->maps_present = true;

	struct cw_state st = {};
	__u32 zero = 0;
	if (bpf_map_lookup_elem(state_fd, &zero, &st) < 0)
		return negative_errno();
	ret->active_gen = st.active_gen & 1;
	ret->policy_valid = st.gen[ret->active_gen].flags & CW_GEN_F_VALID;

	snprintf(path, sizeof(path), "%s/maps/cw_cgroups", pin_dir);
	_cleanup_close_ int cg_fd = bpf_obj_get(path);
	if (cg_fd >= 0) {
		struct cw_cgroup_key key, next;
		void *prev = NULL;

		while (bpf_map_get_next_key(cg_fd, prev, &next) == 0) {
			if (next.gen == ret->active_gen)
				ret->n_cgroups++;
			key = next;
			prev = &key;
		}
	}
	return 0;
}

int pins_remove(const char *pin_dir)
{
	char path[4096];
	int r = 0;

	for (unsigned i = 0; i < PINS_N_HOOKS; i++) {
		_cleanup_close_ int fd = -1;

		if (pins_link_path(pin_dir, i, path, sizeof(path)) < 0)
			return -ENAMETOOLONG;
		fd = bpf_obj_get(path);
		if (fd < 0) {
			if (errno != ENOENT && r == 0)
				r = negative_errno();
			continue;
		}
		/* Detach first: the link object may outlive its pin while someone holds it. */
		if (bpf_link_detach(fd) < 0 && errno != ENOLINK && r == 0)
			r = negative_errno();
		if (unlink(path) < 0 && r == 0)
			r = negative_errno();
	}
	for (unsigned i = 0; i < ARRAY_SIZE(pins_map_names); i++) {
		snprintf(path, sizeof(path), "%s/maps/%s", pin_dir, pins_map_names[i]);
		if (unlink(path) < 0 && errno != ENOENT && r == 0)
			r = negative_errno();
	}
	const char *subdirs[] = { "links", "maps" };
	for (unsigned i = 0; i < ARRAY_SIZE(subdirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, subdirs[i]);
		if (rmdir(path) < 0 && errno != ENOENT && r == 0)
			r = negative_errno();
	}
	if (rmdir(pin_dir) < 0 && errno != ENOENT && r == 0)
		r = negative_errno();
	return r;
}

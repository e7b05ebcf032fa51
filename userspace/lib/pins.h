/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the agent pins, as both programs see it (a system helper: it reads bpffs, loads nothing):
 * the pin layout, reading the state of what is pinned, and removing it (`carwall unload`).
 * Loading, attaching and writing policy is the agent's loader (agent/loader.h).
 *
 * Pin layout under the pin folder (default /sys/fs/bpf/carwall):
 *   maps/cw_state maps/cw_cgroups maps/cw_dst4 maps/cw_dst6 maps/cw_ports maps/cw_hosts
 *   maps/cw_events
 *   maps/cw_app_stats maps/cw_rule_stats maps/cw_ratelimit maps/cw_sk_state
 *   maps/cw_names maps/cw_resolvers maps/cw_learned maps/cw_learn_count maps/cw_dns_stats
 *   maps/cw_dns_scratch maps/cw_home4 maps/cw_home6
 *   maps/cw_region_stats maps/cw_seen maps/cw_seen_keys
 *   links/connect4 links/connect6 links/sendmsg4 links/sendmsg6 links/sock_create
 *   links/skb_egress links/sock_ops links/skb_ingress
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PINS_DEFAULT_DIR "/sys/fs/bpf/carwall"

#define PINS_N_HOOKS 8
#define PINS_N_MAPS 22

/* Names of the hooks (links/<name>), for status output; NULL-terminated. */
extern const char *const pins_hook_names[];
/* Names of the pinned maps (maps/<name>). */
extern const char *const pins_map_names[PINS_N_MAPS];

/* The pin path of a hook's link into buf; -ENAMETOOLONG when it does not fit. */
int pins_link_path(const char *pin_dir, unsigned hook, char *buf, size_t size);

/* What is pinned under pin_dir, read without loading anything. */
struct pins_status {
	bool maps_present;
	unsigned links_attached; /* pinned links that are still attached to a cgroup */
	unsigned links_total;	 /* number of hooks carwall attaches */
	uint64_t cgroup_id;	 /* where the links are attached */
	bool policy_valid;	 /* the active generation holds a policy */
	uint32_t active_gen;
	unsigned n_cgroups;	 /* managed cgroups in the active generation */
};
int pins_read(const char *pin_dir, struct pins_status *ret);

/* Detach the pinned links and remove every pin under pin_dir, then the folder. */
int pins_remove(const char *pin_dir);

// SPDX-License-Identifier: GPL-2.0-only
/*
 * kernel_hide: an LD_PRELOAD library for tests/integration/test_kernel_probe.sh that makes the
 * bpf() system call answer as a kernel without one feature would, so that the agent's start-up
 * probe can be seen refusing to start and naming it. CW_HIDE names the feature:
 *   prog:cgroup_sock_addr | prog:cgroup_sock | prog:cgroup_skb   BPF_PROG_LOAD of that type: EINVAL
 *   map:ringbuf | map:sk_storage | map:lpm_trie                  BPF_MAP_CREATE of that type: EINVAL
 *   helper:get_current_ancestor_cgroup_id                        BPF_PROG_LOAD calling it: EINVAL,
 *                                                                "invalid func" in the log
 * libbpf calls bpf() through libc's syscall(), which this library replaces. Without CW_HIDE it
 * changes nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *name;
	int cmd;	/* BPF_PROG_LOAD: a program type or a helper; BPF_MAP_CREATE: a map type */
	bool helper;
	unsigned value;
} features[] = {
	{ "prog:cgroup_sock_addr", BPF_PROG_LOAD, false, BPF_PROG_TYPE_CGROUP_SOCK_ADDR },
	{ "prog:cgroup_sock", BPF_PROG_LOAD, false, BPF_PROG_TYPE_CGROUP_SOCK },
	{ "prog:cgroup_skb", BPF_PROG_LOAD, false, BPF_PROG_TYPE_CGROUP_SKB },
	{ "map:ringbuf", BPF_MAP_CREATE, false, BPF_MAP_TYPE_RINGBUF },
	{ "map:sk_storage", BPF_MAP_CREATE, false, BPF_MAP_TYPE_SK_STORAGE },
	{ "map:lpm_trie", BPF_MAP_CREATE, false, BPF_MAP_TYPE_LPM_TRIE },
	{ "helper:get_current_ancestor_cgroup_id", BPF_PROG_LOAD, true,
	  BPF_FUNC_get_current_ancestor_cgroup_id },
};

static bool calls_helper(const union bpf_attr *attr, unsigned helper)
{
	const struct bpf_insn *insns = (const struct bpf_insn *)(unsigned long)attr->insns;

	for (unsigned i = 0; insns && i < attr->insn_cnt; i++)
		if (insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == 0 &&
		    insns[i].imm == (int)helper)
			return true;
	return false;
}

static bool hidden(long cmd, const union bpf_attr *attr)
{
	const char *want = getenv("CW_HIDE");

	if (!want || !attr)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		if (strcmp(want, features[i].name) != 0 || cmd != features[i].cmd)
			continue;
		if (features[i].helper) {
			if (!calls_helper(attr, features[i].value))
				return false;
			if (attr->log_level && attr->log_buf && attr->log_size > 32)
				snprintf((char *)(unsigned long)attr->log_buf, attr->log_size,
					 "invalid func unknown#%u\n", features[i].value);
			return true;
		}
		return cmd == BPF_PROG_LOAD ? attr->prog_type == features[i].value
					    : attr->map_type == features[i].value;
	}
	return false;
}

long syscall(long number, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	va_start(ap, number);
	for (size_t i = 0; i < ARRAY_SIZE(a); i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_bpf && hidden(a[0], (const union bpf_attr *)a[1])) {
		errno = EINVAL;
		return -1;
	}
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# carwall needs no kernel BTF (AGL kernels are built without DEBUG_INFO_BTF): with
# /sys/kernel/btf/vmlinux hidden (an empty file bind-mounted over it by scripts/vm/init
# before systemd started), the agent loads its programs from scratch (pins removed)
# and enforces. Control: this kernel does have BTF (module BTF beside it).
set -u
. "$(dirname "$0")/lib.sh"
sd_require
if ! sd_net_create; then
	tap_bail_out "cannot make the server's network namespace"
	exit 1
fi

tap_check "control: the kernel has BTF (module BTF in /sys/kernel/btf)" \
	bash -c 'ls /sys/kernel/btf | grep -vqx vmlinux'
tap_check "/sys/kernel/btf/vmlinux is hidden: empty" bash -c '[[ $(wc -c </sys/kernel/btf/vmlinux) == 0 ]]'
tap_check "libbpf cannot read kernel BTF (bpftool btf dump fails)" \
	bash -c '! bpftool btf dump file /sys/kernel/btf/vmlinux >/dev/null 2>&1'
tap_check "a fresh load: agent stopped, pins removed" bash -c \
	'systemctl stop carwalld.service && carwall unload && ! ls -A /sys/fs/bpf/carwall 2>/dev/null | grep -q .'
tap_check "carwalld starts without kernel BTF" systemctl start carwalld.service
pid=$(sd_agent_pid)
tap_check "the agent's own view of /sys/kernel/btf/vmlinux is empty too" \
	bash -c '[[ $(wc -c <"/proc/$1/root/sys/kernel/btf/vmlinux") == 0 ]]' _ "$pid"
tap_check "the pins are back" bash -c 'ls -A /sys/fs/bpf/carwall | grep -q .'
sd_app_flows agl-app "${SD_APP_OF[agl-app]}" "without kernel BTF"
tap_done

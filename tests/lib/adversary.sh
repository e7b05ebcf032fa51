# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Another agent's BPF programs in a test that sources scripts/sandbox.sh: an object built from
# tests/adversarial/NAME.bpf.c (build/tests/NAME.bpf.o), whose program for a hook HOOK is
# NAME_HOOK (SEC("cgroup/HOOK")), loaded into a pin folder of this run's own and attached to one
# cgroup at a time after what is there (`multi`). adversary_cleanup detaches and unpins them; a
# test runs it on exit:
#
#     trap adversary_cleanup EXIT # before sandbox_create, which keeps it and runs it first

ADV_PIN=/sys/fs/bpf/carwall-adv-$$ # the programs' pins: ADV_PIN/NAME_HOOK
ADV_NAME=                          # the object's NAME
ADV_HOOKS=()                       # the hooks its programs are attached to
ADV_CG=                            # the cgroup they are attached to now ("": none)
ADVERSARY=                         # the object's path

# adversary_load NAME HOOK...: loads every program of NAME's object (CARWALL_BIN_DIR's, else
# build/'s); the later attaches are of its programs for HOOK....
adversary_load() {
	local bin=${CARWALL_BIN_DIR:-$SANDBOX_REPO/build}

	ADV_NAME=$1
	shift
	ADV_HOOKS=("$@")
	ADVERSARY=$bin/tests/$ADV_NAME.bpf.o
	[[ -f $ADVERSARY ]] || ADVERSARY=$SANDBOX_REPO/build/tests/$ADV_NAME.bpf.o
	bpftool prog loadall "$ADVERSARY" "$ADV_PIN"
}

# adversary_attach CGROUP: attaches the programs to CGROUP, after the programs already there.
adversary_attach() {
	local h

	ADV_CG=$1
	for h in "${ADV_HOOKS[@]}"; do
		bpftool cgroup attach "$ADV_CG" "$h" pinned "$ADV_PIN/${ADV_NAME}_$h" multi || return 1
	done
}

# adversary_detach: detaches the programs from the cgroup they are attached to, if any.
adversary_detach() {
	local h

	[[ -n $ADV_CG ]] || return 0
	for h in "${ADV_HOOKS[@]}"; do
		bpftool cgroup detach "$ADV_CG" "$h" pinned "$ADV_PIN/${ADV_NAME}_$h" 2>/dev/null
	done
	ADV_CG=
}

# adversary_cleanup: detaches and unpins the programs.
adversary_cleanup() {
	adversary_detach
	[[ -d $ADV_PIN ]] && rm -rf -- "$ADV_PIN"
	return 0
}

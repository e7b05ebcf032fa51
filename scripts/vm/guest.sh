#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The testers' VM, inside the guest: PID 1 after scripts/vm/init switched into the root.
# Mounts what the tests need (cgroup2, bpffs, fresh tmpfs on /tmp and /run, devpts), then:
#   cw.mode=check  runs each test file of cw.tests with the binaries of cw.bin, its TAP,
#                  stderr, exit status and time into the output share
#                  (/mnt/cw-out/NAME.{tap,err,rc,secs}), with uname, boot (uptime at the
#                  first test), uptime (at the end) and result, then powers off;
#   cw.mode=systemd  (the x86_64-6.1-systemd guest: a service of carwall-vm.target, systemd
#                  being PID 1) installs carwall as an integrator does, adds AGL's user and app
#                  templates, starts carwalld.service, then runs the files of cw.tests as
#                  check does (tests/systemd/test_reboot.sh last); the unit powers the guest
#                  off when this ends. With cw.reboot=1 the first boot ends with `systemctl
#                  reboot` instead (result "reboot"); on the second boot (cw.boot=2, the same
#                  persistent disk: carwall installed and enabled) only test_reboot.sh runs,
#                  its files named boot2-test_reboot.*;
#   cw.mode=shell  builds the demo sandbox (scripts/sandbox.sh) with carwalld enforcing
#                  policies/demo.yaml and gives an interactive shell in the head-unit network
#                  namespace; leaving the shell powers off.
# Never exits as PID 1: that would panic the kernel.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
# Tests may read this to know they run under emulation (TCG: every exec is ~10x slower).
export CARWALL_VM=1
unset TMPDIR

out=/mnt/cw-out
mode=check repo='' run='' bin='' tests='' size='' boot=1 reboot=0
for arg in $(cat /proc/cmdline); do
	case $arg in
	cw.boot=*) boot=${arg#cw.boot=} ;;
	cw.reboot=*) reboot=${arg#cw.reboot=} ;;
	cw.mode=*) mode=${arg#cw.mode=} ;;
	cw.repo=*) repo=${arg#cw.repo=} ;;
	cw.run=*) run=${arg#cw.run=} ;;
	cw.bin=*) bin=${arg#cw.bin=} ;;
	cw.tests=*) tests=${arg#cw.tests=} ;;
	cw.size=*) size=${arg#cw.size=} ;;
	esac
done

say() { printf 'carwall-vm: %s\n' "$*" >/dev/console; }

poweroff_now() {
	sync
	echo s >/proc/sysrq-trigger 2>/dev/null
	echo o >/proc/sysrq-trigger 2>/dev/null
	# The power-off runs in a kernel worker and shuts the 9p shares down first, so nothing may
	# be executed from them while it runs (an exec of sleep failed with EIO, then the crash
	# below fired before the power-off ended): wait with bash's own builtins.
	local end=$((SECONDS + 30))
	while ((SECONDS < end)); do :; done
	# Still here after 30 s: make QEMU exit anyway (panic=-1 with -no-reboot).
	echo c >/proc/sysrq-trigger
}

setup() {
	local p keep=()
	# A fresh /tmp (the host's is under the overlay); a repository or run folder in the host's
	# /tmp (a CI clone, say) is carried over.
	for p in "$repo" "$run"; do
		[[ $p == /tmp/* ]] || continue
		mkdir -p "/mnt/keep$p" && mount --bind "$p" "/mnt/keep$p" && keep+=("$p")
	done
	mount -t tmpfs -o mode=1777 tmpfs /tmp
	for p in "${keep[@]}"; do
		mkdir -p "$p" && mount --move "/mnt/keep$p" "$p" || return 1
	done
	mount -t tmpfs -o mode=0755 tmpfs /run
	mkdir -p /run/netns /run/lock /dev/pts /dev/shm
	# What udev would have made: bash's process substitution needs /dev/fd.
	ln -sfn /proc/self/fd /dev/fd
	ln -sfn /proc/self/fd/0 /dev/stdin
	ln -sfn /proc/self/fd/1 /dev/stdout
	ln -sfn /proc/self/fd/2 /dev/stderr
	mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts 2>/dev/null
	mount -t tmpfs tmpfs /dev/shm
	mkdir -p /sys/fs/cgroup /sys/fs/bpf
	mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || return 1
	mount -t bpf -o mode=0700 bpf /sys/fs/bpf || return 1
	# Controllers as a systemd host has them, for tests that look.
	echo "+cpu +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	hostname carwall-vm 2>/dev/null
	ip link set lo up
	[[ -d $repo/scripts/vm ]] || return 1
}

# The systemd guest, as a head unit is set up: carwall from `make install-only` (the binaries
# of the run folder, no compiler), in developer mode with the suite's policy; AGL's user
# agl-driver (uid 1001) and app templates (tests/systemd/units, stand-ins for meta-agl's);
# then carwalld.service enabled and started (scripts/vm/init hid kernel BTF before systemd
# started: AGL kernels have none, carwall must not need it). On the second boot all that is
# on the persistent disk already: only the tests' folders in /run are made again.
systemd_setup() {
	local d=/usr/local/libexec/carwall-test
	export CARWALL_VM_BOOT=$boot
	if [[ $boot == 2 ]]; then
		install -d /run/carwall-test/apps && install -d -o agl-driver -g agl-driver \
			/run/carwall-test/out || return 1
		export CARWALL_VM_SYSTEMD=1
		return 0
	fi
	make -C "$repo" --no-print-directory install-only BUILD="$bin" >"$out/install.log" 2>&1 ||
		return 1
	install -m 0644 "$repo/tests/systemd/policy.yaml" /etc/carwall/policy.yaml &&
		echo 'CARWALLD_ARGS="--developer-mode"' >/etc/default/carwall || return 1
	getent passwd agl-driver >/dev/null ||
		useradd --uid 1001 --user-group --create-home --shell /usr/sbin/nologin agl-driver ||
		return 1
	install -m 0644 "$repo"/tests/systemd/units/*.service /etc/systemd/system/ &&
		install -d "$d" /run/carwall-test/apps && install -m 0755 "$bin/flowprobe" "$d/" &&
		install -d -o agl-driver -g agl-driver /run/carwall-test/out || return 1
	systemctl daemon-reload && systemctl enable carwalld.service >>"$out/install.log" 2>&1 &&
		systemctl start carwalld.service || return 1
	export CARWALL_VM_SYSTEMD=1
}

run_checks() {
	local t name rc start d list=()
	if [[ -n $tests ]]; then
		IFS=, read -r -a list <<<"$tests"
	else
		list=("$repo"/tests/integration/test_*.sh "$repo"/tests/adversarial/test_*.sh)
	fi
	for t in "${list[@]}"; do
		[[ $t == /* ]] || t=$repo/$t
		[[ -f $t ]] || continue
		# As scripts/vm/vm.sh's test_name: test_flows, adversarial-test_paths.
		name=${t##*/}
		name=${name%.sh}
		[[ $t == */integration/* ]] || { d=${t%/*}; name=${d##*/}-$name; }
		((boot == 1)) || name=boot$boot-$name
		say "running $name"
		rc=0
		start=$(awk '{ print $1 }' /proc/uptime)
		(cd "$repo" && CARWALL_BIN_DIR=$bin timeout -k 10 900 bash "$t") \
			</dev/null >"$out/$name.tap" 2>"$out/$name.err" || rc=$?
		echo "$rc" >"$out/$name.rc"
		awk -v s="$start" '{ printf "%.1f\n", $1 - s }' /proc/uptime >"$out/$name.secs"
		say "$name: exit $rc, $(grep -c '^ok ' "$out/$name.tap") ok," \
			"$(grep -c '^not ok ' "$out/$name.tap") not ok, $(cat "$out/$name.secs")s"
	done
}

shell() {
	local tty
	. "$repo/scripts/sandbox.sh"
	export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
	SANDBOX_POLICY=$repo/policies/demo.yaml
	if ! sandbox_create vm >/dev/null || ! sandbox_agent_start; then
		say "could not start the demo sandbox; a plain root shell instead"
	fi
	tty=$(awk '{ print $1; exit }' /proc/consoles 2>/dev/null)
	tty=/dev/${tty:-console}
	export CARWALL_RUN_DIR=${SANDBOX_RUN_DIR:-/run/carwall}
	export PATH=$bin:$PATH TERM=${TERM:-vt220} PS1='carwall-vm(head unit)# '
	[[ $size =~ ^([0-9]+)x([0-9]+)$ ]] &&
		stty rows "${BASH_REMATCH[1]}" cols "${BASH_REMATCH[2]}" <"$tty" 2>/dev/null
	cat >"$tty" <<-EOF

		carwall testers' VM: kernel $(uname -r), $(uname -m)
		  carwalld enforces $SANDBOX_POLICY (log: ${SANDBOX_DIR:-?}/agent.log)
		  this shell is in the head-unit network namespace ($SANDBOX_HU_NETNS); the "internet"
		  namespace has the OEM backend 198.51.100.20 / 2001:db8:51::20, the OEM maps
		  198.51.100.80 / 2001:db8:100::80 and the offshore tracker 203.0.113.7 / 2001:db8:bad::7,
		  with a flowprobe server on TCP 443 8443 9000 and UDP 514 9000.
		  Try:
		    carwall status
		    carwall run --app mediaplayer -- flowprobe tcp 198.51.100.20 443     # allowed
		    carwall run --app mediaplayer -- flowprobe tcp 203.0.113.7 443       # EPERM
		    carwall run --app navigation -- flowprobe tcp 2001:db8:100::80 8443   # allowed
		    flowprobe udp 2001:db8:bad::7 514          # not an app: not judged
		  'exit' powers the VM off.

	EOF
	if [[ -e /run/netns/${SANDBOX_HU_NETNS:-none} ]]; then
		setsid -c -w nsenter --net="/run/netns/$SANDBOX_HU_NETNS" -- bash --norc -i \
			<"$tty" >"$tty" 2>&1
	else
		setsid -c -w bash --norc -i <"$tty" >"$tty" 2>&1
	fi
	sandbox_destroy
}

if [[ $mode == systemd ]]; then
	setup=systemd_setup
	tests=${tests:-$(cd "$repo" && ls tests/systemd/test_*.sh | paste -sd,)}
	# test_reboot.sh last on the first boot (it prepares the second), alone on the second.
	if [[ ,$tests, == *,tests/systemd/test_reboot.sh,* ]]; then
		tests=$(tr , '\n' <<<"$tests" | grep -vx tests/systemd/test_reboot.sh | paste -sd,)
		if [[ $boot == 2 ]]; then
			tests=tests/systemd/test_reboot.sh
		else
			tests=${tests:+$tests,}tests/systemd/test_reboot.sh
		fi
	elif [[ $boot == 2 ]]; then
		tests=''
	fi
else
	setup=setup
fi
if ! $setup; then
	say "guest setup failed"
	echo "setup-failed" >"$out/result" 2>/dev/null
	poweroff_now
fi
uname -r >"$out/uname"
sfx=''
[[ $boot == 1 ]] || sfx=$boot
awk '{ print $1; exit }' /proc/uptime >"$out/boot$sfx"
case $mode in
check | systemd)
	run_checks
	awk '{ print $1; exit }' /proc/uptime >"$out/uptime$sfx"
	if [[ $mode == systemd && $boot == 1 && $reboot == 1 ]]; then
		# The harness boots the same disk again when QEMU has exited (-no-reboot).
		echo "reboot" >"$out/result"
		say "rebooting"
		sync
		systemctl reboot && exit 0
		say "systemctl reboot failed"
		echo "reboot-failed" >"$out/result"
		poweroff_now
	fi
	echo "done" >"$out/result"
	say "done"
	;;
shell) shell ;;
*) say "unknown cw.mode=$mode" ;;
esac
# Under systemd, carwall-vm.service powers off when this ends.
[[ $mode == systemd ]] && exit 0
poweroff_now

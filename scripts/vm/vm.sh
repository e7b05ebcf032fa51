#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The testers' VM: carwall's integration and adversarial tests (tests/integration/test_*.sh,
# tests/adversarial/test_*.sh) run inside QEMU guests booted on Debian kernels other than the
# host's. `make vm-check` and `make vm-shell` call this; README "Testers' VM" is the user's guide.
#
#   scripts/vm/vm.sh check [KERNEL...]   run the tests on each kernel (default: all)
#   scripts/vm/vm.sh shell [KERNEL]      boot one guest with carwalld enforcing the demo policy
#                                        and give an interactive shell on the console
#   scripts/vm/vm.sh fetch [KERNEL...]   only download and prepare (kernels, arm64 userland)
#   scripts/vm/vm.sh list                the kernels this script knows
#
# Kernels: x86_64-6.1 (bookworm's linux-image-amd64), x86_64-6.12 (bookworm-backports'),
# arm64-6.1 (bookworm's linux-image-arm64, under qemu-system-aarch64), and x86_64-6.1-systemd:
# the 6.1 kernel with the host's systemd as PID 1 running the tests/systemd/ suite (see below).
#
# How a guest is made:
# - The kernel .deb is fetched with `apt-get download` through a private apt state (its own
#   sources.list with bookworm-backports, its own lists) and unpacked without installing: the
#   host's apt configuration is never touched. Everything downloaded lives in $CARWALL_VM_CACHE
#   (default /var/cache/carwall-vm as root, else ~/.cache/carwall-vm), outside the repository.
#   The kernel's module tree gets its modules.dep from depmod, as the package's postinst would.
# - The initramfs is busybox-static, scripts/vm/init and the modules the guest needs before its
#   root exists (virtio_pci, 9p, overlay, veth and their dependencies, in dependency order,
#   decompressed). The whole module tree is a 9p share too, so the guest kernel loads what else
#   it needs (sock_diag, nf_tables...) through modprobe.
# - x86_64 guests boot on the HOST's root filesystem shared read-only over virtio-9p, under a
#   tmpfs overlay: bash, iproute2, openssl... are the host's, the repository is at the same path.
#   The binaries under test are a copy of build/ (`make all tests`) in the run folder. arm64
#   guests boot on an arm64 userland unpacked from Debian's arm64 .debs into the cache, with the
#   repository and the run folder as 9p shares at the same paths, and carwall cross-built
#   statically into the cache (`make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- STATIC=1
#   SYSROOT=...`, the arm64 -dev packages unpacked into a cache sysroot).
# - scripts/vm/guest.sh runs the test files, writes each one's TAP, stderr, exit status and time
#   into a writable 9p share (the guest's out/ in the run folder), then powers off. The console
#   goes to console.log beside it. TCG only (`-accel tcg,thread=single`: KVM does not work on the
#   machines this runs on), so the test files are dealt to CARWALL_VM_JOBS guests booted at once
#   (default: the CPU count), longest first by the durations of the previous run.
# - x86_64-6.1-systemd: the same root, but scripts/vm/init hands over to systemd
#   (init=/lib/systemd/systemd on the kernel command line) with the target carwall-vm.target,
#   which runs scripts/vm/guest.sh as a service (cw.mode=systemd): it installs carwall with
#   `make install-only` from the run folder's binaries, enables and starts carwalld.service,
#   adds AGL's user and app templates, and runs tests/systemd/test_*.sh in one guest (they
#   share the system's state). Kernel BTF is hidden there (AGL kernels have none). Its overlay's
#   upper layer is an ext4 image of the run folder on a virtio disk (the initramfs gets
#   virtio_blk and ext4 too), so what the guest installs survives a reboot: when
#   tests/systemd/test_reboot.sh is among its tests, the first boot ends with `systemctl reboot`
#   (QEMU exits: -no-reboot) and the harness boots the same disk a second time (cw.boot=2),
#   which runs test_reboot.sh's second half; the two boots count as one guest.
# - A guest that makes no progress for CARWALL_VM_IDLE_TIMEOUT seconds (its console and its
#   TAP files, which the tests write as they go, do not grow) is killed and reported as hung,
#   and so is one still running after CARWALL_VM_TIMEOUT seconds in all (a bound on the run, far
#   above what the slowest guest takes: a suite that grows, or a slower machine, is not a hang);
#   a panic (panic=-1 with -no-reboot ends QEMU at once; oops=panic) is read off the console.
#
# Output of `check`: per kernel, the guest's `uname -r`, each test file's counts and time, every
# failed test, every skipped test with its reason and kernel, the kernel's totals and times;
# then one last line "N passed, N failed, N skipped" over all kernels. Exit status: 0 only if no
# test failed and no guest hung, panicked or failed to boot (each counts as a failure).
#
# Environment: CARWALL_VM_CACHE, CARWALL_VM_IDLE_TIMEOUT (seconds without progress, default
# 900), CARWALL_VM_TIMEOUT (seconds per guest in all, default 3600),
# CARWALL_VM_JOBS, CARWALL_VM_MEM (MiB per guest, default 1024), CARWALL_VM_TESTS (test files,
# space-separated), CARWALL_VM_REFRESH=1 (re-read the package lists now; otherwise weekly),
# CARWALL_VM_KEEP=1 (keep the run folder; a failed run's is always kept).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd -P)
vmdir=$top/scripts/vm

ALL_KERNELS=(x86_64-6.1 x86_64-6.12 arm64-6.1 x86_64-6.1-systemd)
# Bumped when what kernel_prepare leaves in the cache changes.
LAYOUT=2
# Modules the initramfs loads (their dependencies are added): the 9p root and its transport,
# the overlay on it, and what the tests need that Debian builds as modules.
GUEST_MODULES=(virtio_pci 9pnet_virtio 9p overlay veth)
# The systemd guest's persistent upper layer: an ext4 virtio disk (crc32c_generic: ext4's and
# jbd2's checksums, which the kernel would otherwise modprobe, and the initramfs cannot).
SYSTEMD_GUEST_MODULES=(crc32c_generic virtio_blk ext4)
# Its size (a sparse file): the installed files, the journal, the tests' state.
SYSTEMD_DISK_MIB=1024
# The arm64 guest's userland, and the static libraries carwall links against for arm64.
ARM64_ROOTFS_PKGS=(bash coreutils dash grep sed gawk findutils iproute2 util-linux mount procps
	openssl busybox-static libc-bin kmod bpftool diffutils gzip tar hostname iputils-ping xxd jq
	python3 dnsmasq-base libmaxmind-db-writer-perl patch)
# Pulled in only through alternatives or maintainer scripts; never run in the guest.
ARM64_ROOTFS_SKIP=(usrmerge libfile-find-rule-perl
	libnumber-compare-perl libtext-glob-perl cdebconf libelogind0 libdebian-installer4
	libnewt0.52 libslang2 libtextwrap1 install-info)
ARM64_SYSROOT_PKGS=(libbpf-dev libelf-dev zlib1g-dev libzstd-dev libyaml-dev libjson-c-dev
	libssl-dev libnl-3-dev libcmocka-dev linux-libc-dev libpsl-dev libidn2-dev libunistring-dev
	libmaxminddb-dev)
HOST_PKGS=(qemu-system-x86 qemu-system-arm busybox-static gcc-aarch64-linux-gnu
	libc6-dev-arm64-cross kmod cpio xz-utils e2fsprogs)

if [[ -n ${CARWALL_VM_CACHE:-} ]]; then
	cache=$CARWALL_VM_CACHE
elif [[ $(id -u) == 0 ]]; then
	cache=/var/cache/carwall-vm
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/carwall-vm
fi
timeout_s=${CARWALL_VM_TIMEOUT:-3600}
idle_s=${CARWALL_VM_IDLE_TIMEOUT:-900}
jobs=${CARWALL_VM_JOBS:-$(nproc)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || jobs=1
mem=${CARWALL_VM_MEM:-1024}
# Paths go on the kernel command line (split on spaces) and into QEMU options (split on commas).
[[ $top$cache != *[[:space:],]* ]] ||
	{ echo "vm: the repository and cache paths must have no space or comma: $top $cache" >&2; exit 1; }

log() { printf 'vm: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

usage() {
	sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

# ---- host tools ----------------------------------------------------------------------------
install_host_deps() {
	local p missing=()

	for p in "${HOST_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing packages: ${missing[*]}; run as root or install them"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null || {
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends "${missing[@]}" >/dev/null
	} || die "could not install ${missing[*]}"
}

# ---- private apt state ---------------------------------------------------------------------
# host_archive SUITE: the URI of the Debian archive that the host's apt reads SUITE from.
host_archive() {
	apt-cache policy 2>/dev/null |
		awk -v s="$1/main" '$3 == s && $2 ~ /^(https?|file):/ { print $2; exit }'
}

# apt_setup ARCH: a private apt state under $cache/apt-ARCH whose native architecture is ARCH
# (so dependencies resolve to ARCH packages), reading bookworm, -updates, -security and
# -backports from the archives the host's apt is set up with. Sets APT_OPTS. The package lists
# are refreshed when older than a week.
apt_setup() {
	local arch=$1 d=$cache/apt-$1 stamp main security key=/usr/share/keyrings/debian-archive-keyring.gpg

	main=$(host_archive bookworm)
	security=$(host_archive bookworm-security)
	if [[ -z $main ]]; then
		log "the host's apt has no Debian bookworm archive (apt-cache policy)"
		return 1
	fi
	mkdir -p "$d/lists/partial" "$d/archives/partial" "$d/sources.list.d" "$d/preferences.d"
	[[ -e $d/status ]] || : >"$d/status"
	{
		echo "deb [signed-by=$key] $main bookworm main"
		echo "deb [signed-by=$key] $main bookworm-updates main"
		echo "deb [signed-by=$key] $main bookworm-backports main"
		[[ -z $security ]] || echo "deb [signed-by=$key] $security bookworm-security main"
	} >"$d/sources.list.new"
	if ! cmp -s "$d/sources.list.new" "$d/sources.list"; then
		mv "$d/sources.list.new" "$d/sources.list"
		rm -f "$d/lists/.updated"
	fi
	rm -f "$d/sources.list.new"
	APT_OPTS=(-q -o "Dir::State=$d" -o "Dir::State::Lists=$d/lists"
		-o "Dir::State::status=$d/status" -o "Dir::Cache=$d" -o "Dir::Cache::archives=$d/archives"
		-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/sources.list.d"
		-o "Dir::Etc::Preferences=$d/preferences" -o "Dir::Etc::PreferencesParts=$d/preferences.d"
		-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
		-o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
	stamp=$d/lists/.updated
	if [[ ${CARWALL_VM_REFRESH:-0} == 1 || ! -e $stamp ||
		-n $(find "$stamp" -mtime +7 2>/dev/null) ]]; then
		log "reading Debian's package lists for $arch (private apt state $d)"
		apt-get "${APT_OPTS[@]}" update >"$d/update.log" 2>&1 || {
			sed 's/^/  /' "$d/update.log" >&2
			return 1
		}
		touch "$stamp"
	fi
}

# apt_download DIR PKG...: the .debs of PKG... (already resolved names) into DIR, once.
apt_download() {
	local dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && apt-get "${APT_OPTS[@]}" download "$@" >"$dir/.download.log" 2>&1) || {
		sed 's/^/  /' "$dir/.download.log" >&2
		return 1
	}
}

# ---- kernels -------------------------------------------------------------------------------
# kernel_spec ID: sets K_ARCH (deb arch), K_QEMU_ARCH, K_META, K_RELEASE (apt -t, or empty),
# K_SERIES (the kernel series ID names) and K_SYSTEMD (1: systemd as PID 1, the systemd suite).
kernel_spec() {
	local base=${1%-systemd}
	K_SYSTEMD=0
	[[ $base == "$1" ]] || K_SYSTEMD=1
	[[ $K_SYSTEMD == 0 || $base == x86_64-* ]] || return 1
	K_SERIES=${base##*-}
	case $base in
	x86_64-6.1) K_ARCH=amd64 K_QEMU_ARCH=x86_64 K_META=linux-image-amd64 K_RELEASE='' ;;
	x86_64-6.12)
		K_ARCH=amd64 K_QEMU_ARCH=x86_64 K_META=linux-image-amd64
		K_RELEASE=bookworm-backports
		;;
	arm64-6.1) K_ARCH=arm64 K_QEMU_ARCH=aarch64 K_META=linux-image-arm64 K_RELEASE='' ;;
	*) return 1 ;;
	esac
}

# module_file MODDIR NAME: the file of module NAME ('-' and '_' are the same in names).
module_file() {
	local n=$1/kernel m=$2 f
	f=$(find "$n" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \
		-o -name "${m//_/-}.ko" -o -name "${m//_/-}.ko.xz" -o -name "${m//_/-}.ko.zst" \) \
		-print -quit)
	[[ -n $f ]] && printf '%s' "$f"
}

# modules_closure MODDIR NAME...: NAME... and their dependencies, each after what it needs.
modules_closure() {
	local moddir=$1 m
	shift
	declare -gA _MC_SEEN=()
	_MC_ORDER=()
	for m in "$@"; do _modules_visit "$moddir" "$m" || return 1; done
	printf '%s\n' "${_MC_ORDER[@]}"
}

_modules_visit() {
	local moddir=$1 m=${2//-/_} f deps d
	[[ -n ${_MC_SEEN[$m]:-} ]] && return 0
	_MC_SEEN[$m]=1
	if ! f=$(module_file "$moddir" "$m"); then
		# Built into this kernel?
		grep -q "/${m}.ko\$\|/${m//_/-}.ko\$" "$moddir/modules.builtin" 2>/dev/null && return 0
		log "module $m: not found in $moddir and not built in"
		return 1
	fi
	deps=$(modinfo -F depends "$f") || return 1
	for d in ${deps//,/ }; do _modules_visit "$moddir" "$d" || return 1; done
	_MC_ORDER+=("$f")
}

# kernel_prepare ID: the kernel image, its version and its initramfs modules under
# $cache/kernels/PKG_VERSION (downloaded and unpacked once). Sets K_DIR. Returns 2, with the
# reason in UNAVAILABLE, when Debian's archive does not have that kernel (or cannot be reached).
kernel_prepare() {
	local id=$1 pkg ver dir tmp moddir f name d
	kernel_spec "$id" || die "unknown kernel $id (known: ${ALL_KERNELS[*]})"
	if ! apt_setup "$K_ARCH"; then
		UNAVAILABLE="cannot read Debian's $K_ARCH package lists (see the apt output above)"
		return 2
	fi
	pkg=$(apt-cache "${APT_OPTS[@]}" ${K_RELEASE:+-t "$K_RELEASE"} depends "$K_META" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	if [[ -z $pkg ]]; then
		UNAVAILABLE="$K_META${K_RELEASE:+ of $K_RELEASE} is not in Debian's $K_ARCH package lists"
		return 2
	fi
	if [[ $pkg != "linux-image-$K_SERIES".* ]]; then
		UNAVAILABLE="$K_META${K_RELEASE:+ of $K_RELEASE} is now $pkg, not a $K_SERIES kernel"
		return 2
	fi
	ver=$(apt-cache "${APT_OPTS[@]}" ${K_RELEASE:+-t "$K_RELEASE"} policy "$pkg" 2>/dev/null |
		awk '$1 == "Candidate:" { print $2; exit }')
	dir=$cache/kernels/${pkg}_$ver
	K_DIR=$dir
	# Kernels no run has used for a month (superseded by an update) go.
	for d in "$cache"/kernels/*; do
		[[ -e $d/.used && -n $(find "$d/.used" -mtime +30) ]] && rm -rf "$d"
	done
	if [[ -e $dir/.ready-$LAYOUT ]]; then
		touch "$dir/.used"
		return 0
	fi

	log "$id: fetching $pkg $ver"
	rm -rf "$dir"
	mkdir -p "$dir/modules"
	if ! apt_download "$cache/debs" "$pkg"; then
		UNAVAILABLE="apt-get download $pkg failed (see above)"
		return 2
	fi
	rm -rf "$cache"/unpack.*
	tmp=$(mktemp -d "$cache/unpack.XXXXXX")
	dpkg-deb -x "$(ls "$cache/debs/${pkg}_"*"_$K_ARCH.deb" | head -1)" "$tmp" &&
		cp "$tmp"/boot/vmlinu[xz]-* "$dir/vmlinuz" &&
		cp "$tmp"/boot/config-* "$dir/config" &&
		moddir=$(ls -d "$tmp"/lib/modules/* | head -1) || {
		rm -rf "$tmp"
		return 1
	}
	basename "$moddir" >"$dir/release"
	# The whole module tree, with the modules.dep that the package's postinst would have made,
	# is shared with the guest: the kernel loads what else it needs (sock_diag, nf_tables...)
	# through modprobe, as on an installed system.
	mkdir -p "$dir/root/lib/modules"
	mv "$moddir" "$dir/root/lib/modules/" &&
		depmod -b "$dir/root" "$(cat "$dir/release")" || {
		rm -rf "$tmp"
		return 1
	}
	moddir=$dir/root/lib/modules/$(cat "$dir/release")
	rm -f "$cache/debs/${pkg}_"*.deb
	: >"$dir/modules/order"
	while IFS= read -r f; do
		name=${f##*/}
		case $name in
		*.ko.xz) xz -dc "$f" >"$dir/modules/${name%.xz}" ;;
		*.ko.zst) zstd -qdc "$f" >"$dir/modules/${name%.zst}" ;;
		*) cp "$f" "$dir/modules/$name" ;;
		esac
		echo "${name%.ko*}.ko" >>"$dir/modules/order"
	done < <(modules_closure "$moddir" "${GUEST_MODULES[@]}")
	rm -rf "$tmp"
	[[ $(wc -l <"$dir/modules/order") -ge ${#GUEST_MODULES[@]} ]] || {
		log "$id: the guest modules ${GUEST_MODULES[*]} were not all found"
		return 1
	}
	touch "$dir/.ready-$LAYOUT" "$dir/.used"
}

# ---- arm64 userland and cross build --------------------------------------------------------
# arm64_prepare: $cache/arm64/rootfs (the guest's userland) and $cache/arm64/sysroot (-dev
# packages for the static cross build), each unpacked from Debian's arm64 .debs once.
arm64_prepare() {
	local d=$cache/arm64 pkgs p deb skip key
	apt_setup arm64 || return 1
	# Made again when the package lists above or what rootfs_finish makes (the 3) change.
	key=$(printf '%s ' 3 "${ARM64_ROOTFS_PKGS[@]}" - "${ARM64_ROOTFS_SKIP[@]}" - \
		"${ARM64_SYSROOT_PKGS[@]}" | md5sum | cut -c1-12)
	if [[ ! -e $d/rootfs/.ready-$key ]]; then
		log "arm64: fetching the guest userland"
		pkgs=$(apt-cache "${APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests \
			--no-conflicts --no-breaks --no-replaces --no-enhances "${ARM64_ROOTFS_PKGS[@]}" |
			grep -E '^[a-z0-9]' | sort -u) || return 1
		skip=" ${ARM64_ROOTFS_SKIP[*]} "
		p=()
		for deb in $pkgs; do [[ $skip == *" $deb "* ]] || p+=("$deb"); done
		rm -rf "$d/rootfs" "$d/debs-rootfs"
		apt_download "$d/debs-rootfs" "${p[@]}" || return 1
		mkdir -p "$d/rootfs"
		for deb in "$d"/debs-rootfs/*.deb; do dpkg-deb -x "$deb" "$d/rootfs" || return 1; done
		rootfs_finish "$d/rootfs" || return 1
		rm -rf "$d/debs-rootfs"
		touch "$d/rootfs/.ready-$key"
	fi
	if [[ ! -e $d/sysroot/.ready-$key ]]; then
		log "arm64: fetching the static libraries for the cross build"
		rm -rf "$d/sysroot" "$d/debs-sysroot"
		apt_download "$d/debs-sysroot" "${ARM64_SYSROOT_PKGS[@]}" || return 1
		mkdir -p "$d/sysroot"
		for deb in "$d"/debs-sysroot/*.deb; do dpkg-deb -x "$deb" "$d/sysroot" || return 1; done
		rm -rf "$d/debs-sysroot"
		touch "$d/sysroot/.ready-$key"
	fi
}

# rootfs_finish DIR: what maintainer scripts would have made and a booting system needs.
rootfs_finish() {
	local r=$1 d
	# Merged /usr, as on a bookworm install: the packages ship under both /bin and /usr/bin.
	for d in bin sbin lib; do
		if [[ -d $r/$d && ! -L $r/$d ]]; then
			mkdir -p "$r/usr/$d"
			cp -a "$r/$d/." "$r/usr/$d/"
			rm -rf "${r:?}/$d"
		fi
		ln -sfn "usr/$d" "$r/$d"
	done
	mkdir -p "$r"/{etc,proc,sys,dev,run,tmp,root,mnt,var/tmp,var/lib,work}
	printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
		>"$r/etc/passwd"
	# users: a group that is not root's, as on a Debian install (the consent tests use it).
	printf 'root:x:0:\nusers:x:100:\nnogroup:x:65534:\n' >"$r/etc/group"
	echo carwall-vm >"$r/etc/hostname"
	: >"$r/etc/fstab"
	# Tests bind-mount their own resolver configuration over it; lookups go to files, then DNS.
	: >"$r/etc/resolv.conf"
	echo "hosts: files dns" >"$r/etc/nsswitch.conf"
	[[ -e $r/usr/bin/awk ]] || ln -s gawk "$r/usr/bin/awk"
	[[ -e $r/usr/bin/sh ]] || ln -s dash "$r/usr/bin/sh"
	# The dynamic linker's cache, made on the host for the arm64 tree.
	ldconfig -r "$r" 2>/dev/null || true
}

# arm64_build: carwall, flowprobe and the integration tests' helper programs (the prerequisites
# of `make tests` but the cmocka unit tests: Debian ships no static cmocka), statically
# cross-built into $cache/arm64/build.
arm64_build() {
	local sysroot=$cache/arm64/sysroot helpers
	local args=(-C "$top" --no-print-directory BUILD="$cache/arm64/build" ARCH=arm64
		CROSS_COMPILE=aarch64-linux-gnu- STATIC=1 SYSROOT="$sysroot")
	export PKG_CONFIG_SYSROOT_DIR=$sysroot
	export PKG_CONFIG_LIBDIR=$sysroot/usr/lib/aarch64-linux-gnu/pkgconfig:$sysroot/usr/share/pkgconfig
	helpers=$(make "${args[@]}" -pn tests 2>/dev/null |
		awk '/^tests:/ { for (i = 2; i <= NF; i++) print $i; exit }' | grep -v '/tests/test_') || true
	log "arm64: cross-building carwall into $cache/arm64/build"
	# shellcheck disable=SC2086 # one target per word
	make "${args[@]}" all $helpers >&2
}

# new_run ID: a run folder under $cache/runs with a copy of the binaries of $BIN_SRC in bin/
# (so a rebuild of build/ during the run changes nothing); sets RUN and BIN_DIR. Run folders
# older than a week are removed.
new_run() {
	local f
	mkdir -p "$cache/runs"
	find "$cache/runs" -mindepth 1 -maxdepth 1 -mtime +7 -exec rm -rf {} + 2>/dev/null || true
	RUN=$(mktemp -d "$cache/runs/$1.XXXXXX")
	BIN_DIR=$RUN/bin
	mkdir -p "$BIN_DIR"
	for f in "$BIN_SRC"/*; do
		[[ -f $f && -x $f ]] && cp "$f" "$BIN_DIR/"
	done
	# The tests' own artefacts (the adversarial tests' BPF objects...).
	if [[ -d $BIN_SRC/tests ]]; then
		mkdir -p "$BIN_DIR/tests"
		for f in "$BIN_SRC"/tests/*; do
			[[ -f $f && $f != *.d ]] && cp "$f" "$BIN_DIR/tests/"
		done
	fi
	chmod 0755 "$RUN"
}

# ---- initramfs and QEMU --------------------------------------------------------------------
# make_initramfs KDIR BUSYBOX OUT [MODULE...]: MODULE... (and what they need) are added from
# the kernel's module tree, loaded after the others.
make_initramfs() {
	local kdir=$1 busybox=$2 out=$3 t f name extra
	shift 3
	t=$(mktemp -d)
	mkdir -p "$t/bin" "$t/modules" "$t/proc" "$t/sys" "$t/dev" "$t/mnt" "$t/newroot"
	cp "$busybox" "$t/bin/busybox"
	cp "$vmdir/init" "$t/init"
	chmod 0755 "$t/init" "$t/bin/busybox"
	cp "$kdir"/modules/*.ko "$kdir/modules/order" "$t/modules/"
	if (($#)); then
		extra=$(modules_closure "$kdir/root/lib/modules/$(cat "$kdir/release")" "$@") || {
			rm -rf "$t"
			return 1
		}
		while IFS= read -r f; do
			name=${f##*/}
			grep -qx "${name%.ko*}.ko" "$t/modules/order" && continue
			case $name in
			*.ko.xz) xz -dc "$f" >"$t/modules/${name%.xz}" ;;
			*.ko.zst) zstd -qdc "$f" >"$t/modules/${name%.zst}" ;;
			*) cp "$f" "$t/modules/$name" ;;
			esac
			echo "${name%.ko*}.ko" >>"$t/modules/order"
		done <<<"$extra"
	fi
	(cd "$t" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
	rm -rf "$t"
}

# qemu_cmd ID KDIR INITRD OUTDIR MODE [TESTS]: sets QEMU, the command line of a guest that
# runs TESTS (comma-separated test files) or gives a shell (MODE shell).
qemu_cmd() {
	local id=$1 kdir=$2 initrd=$3 out=$4 mode=$5 tests=${6:-} append root
	kernel_spec "$id"
	if [[ $K_SYSTEMD == 1 && $mode == check ]]; then
		# scripts/vm/init hands over to init=; systemd starts carwall-vm.target only (what
		# the host's other targets want does not start), on the unified cgroup hierarchy.
		mode=systemd
		append="init=/lib/systemd/systemd systemd.unit=carwall-vm.target"
		append+=" systemd.unified_cgroup_hierarchy=1 systemd.show_status=0 systemd.log_level=notice "
	fi
	append+="panic=-1 oops=panic loglevel=4 cw.mode=$mode cw.repo=$top cw.run=$RUN cw.tests=$tests"
	append+=" ${EXTRA_APPEND:-}"
	# The systemd guest's disk: its persistent upper layer (scripts/vm/init); which boot.
	[[ -z ${GUEST_DISK:-} ]] || append+=" cw.upper=vda cw.boot=${GUEST_BOOT:-1}${GUEST_REBOOT:+ cw.reboot=1}"
	if [[ $K_QEMU_ARCH == x86_64 ]]; then
		root=/
		# -cpu qemu64: glibc then picks its SSE2 string functions, which TCG runs several
		# times faster than the AVX2 ones it picks on -cpu max.
		QEMU=(qemu-system-x86_64 -machine pc -cpu qemu64
			-append "console=ttyS0 $append cw.bin=$BIN_DIR")
	else
		root=$cache/arm64/rootfs
		QEMU=(qemu-system-aarch64 -machine virt -cpu cortex-a72
			-append "console=ttyAMA0 $append cw.bin=$BIN_DIR"
			-virtfs "local,path=$top,mount_tag=cwrepo,security_model=none,readonly=on,multidevs=remap")
	fi
	# shellcheck disable=SC2054 # commas inside QEMU options
	QEMU+=(-accel tcg,thread=single -smp 1 -m "$mem" -nodefaults -no-user-config -no-reboot
		-kernel "$kdir/vmlinuz" -initrd "$initrd"
		-virtfs "local,path=$root,mount_tag=cwroot,security_model=none,readonly=on,multidevs=remap"
		-virtfs "local,path=$kdir/root/lib/modules,mount_tag=cwmods,security_model=none,readonly=on,multidevs=remap"
		-virtfs "local,path=$RUN,mount_tag=cwrun,security_model=none,readonly=on,multidevs=remap"
		-virtfs "local,path=$out,mount_tag=cwout,security_model=none,multidevs=remap")
	[[ -z ${GUEST_DISK:-} ]] ||
		QEMU+=(-drive "file=$GUEST_DISK,if=virtio,format=raw,cache=unsafe,discard=unmap")
}

# prepare ID: everything a guest for ID needs; sets K_DIR, BUSYBOX and BIN_SRC (the build
# folder with the binaries the tests use).
prepare() {
	local id=$1
	kernel_spec "$id" || die "unknown kernel $id (known: ${ALL_KERNELS[*]})"
	kernel_prepare "$id" || return
	if [[ $K_ARCH == arm64 ]]; then
		arm64_prepare || return 1
		arm64_build || return 1
		BUSYBOX=$cache/arm64/rootfs/usr/bin/busybox
		BIN_SRC=$cache/arm64/build
	else
		make -C "$top" --no-print-directory all tests >&2 || return 1
		BUSYBOX=/bin/busybox
		BIN_SRC=$top/build
	fi
	[[ -x $BUSYBOX ]] || {
		log "busybox (static) not found at $BUSYBOX"
		return 1
	}
}

# ---- check ---------------------------------------------------------------------------------
TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0

# tap_counts FILE: "PASSED FAILED SKIPPED" of a TAP file.
tap_counts() {
	awk '
		/^ok [0-9]+/ { if ($0 ~ /# SKIP/) s++; else p++ }
		/^not ok [0-9]+/ { f++ }
		END { printf "%d %d %d\n", p, f, s }' "$1"
}

# skip_reason ID FILE: why a guest of ID cannot run the test file FILE (empty: it can). Only for
# what the guest's userland cannot do; a kernel that lacks a feature is the test's to report.
skip_reason() {
	case $1:${2##*/} in
	arm64-*:test_install.sh | arm64-*:test_install_templates.sh)
		echo "runs 'make install' of the host's build tree: needs the host's toolchain, which the arm64 guest has not (the packaging does not depend on the kernel; make check runs it)"
		;;
	arm64-*:test_journal_fields.sh)
		echo "the static arm64 build has no libsystemd (WITH_SYSTEMD=0: Debian ships no static libsystemd); the x86_64 guests and make check run it"
		;;
	esac
}

# test_name FILE: the name of a test file in reports and result files: test_flows for
# tests/integration/test_flows.sh, adversarial-test_paths for tests/adversarial/test_paths.sh.
# (scripts/vm/guest.sh names them the same way.)
test_name() {
	local base=${1##*/} dir=${1%/*}
	base=${base%.sh}
	dir=${dir##*/}
	if [[ $dir == integration || $dir == "$1" ]]; then
		printf '%s' "$base"
	else
		printf '%s-%s' "$dir" "$base"
	fi
}

# test_list ID: the test files to run on ID, relative to the repository (or absolute). A
# systemd guest runs tests/systemd/ only, the others never do.
test_list() {
	kernel_spec "$1"
	if [[ -n ${CARWALL_VM_TESTS:-} ]]; then
		# shellcheck disable=SC2086 # a space-separated list
		if [[ $K_SYSTEMD == 1 ]]; then
			printf '%s\n' $CARWALL_VM_TESTS | grep /systemd/ || true
		else
			printf '%s\n' $CARWALL_VM_TESTS | grep -v /systemd/ || true
		fi
	elif [[ $K_SYSTEMD == 1 ]]; then
		(cd "$top" && ls tests/systemd/test_*.sh 2>/dev/null)
	elif [[ $K_ARCH == amd64 ]]; then
		(cd "$top" && ls tests/integration/test_*.sh tests/adversarial/test_*.sh 2>/dev/null) |
			grep -vxF -f <(printf 'tests/integration/%s.sh\n' "${HOST_ONLY_TESTS[@]}")
	else
		(cd "$top" && ls tests/integration/test_*.sh tests/adversarial/test_*.sh 2>/dev/null)
	fi
}

# Tests that involve no kernel (no agent, no program, no socket: the CLI's files and output,
# the manual pages, `make install` into a folder). An x86_64 guest runs the host's own binaries on
# the host's root file system, so there they would repeat what `make check` ran, byte for byte:
# not listed for x86_64 guests. An arm64 guest runs them on its own (cross-built) binaries.
HOST_ONLY_TESTS=(test_bundle_cli test_install test_install_templates test_man_pages
	test_policy_names_cli)

# watch_progress PID GUEST CONSOLE START: while QEMU (PID, or `timeout` around it) runs, looks
# every 5 s at the size of the guest's console and of its out/ folder (the TAP files grow with
# every test's "ok"); after idle_s seconds without a change it writes GUEST/idle (the guest's
# seconds so far) and ends QEMU: TERM, then KILL 10 s later. Returns when PID has exited (the
# `timeout` around QEMU bounds that).
watch_progress() {
	local pid=$1 dir=$2 console=$3 start=$4 seen= now size last i
	last=$(date +%s)
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		size=$(cat "$console" "$dir"/out/* 2>/dev/null | wc -c) || true
		now=$(date +%s)
		if [[ $size != "$seen" ]]; then
			seen=$size last=$now
		elif ((now - last >= idle_s)); then
			awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%d\n", b - a }' >"$dir/idle"
			kill -TERM "$pid" 2>/dev/null || true # `timeout` passes it on to QEMU
			for ((i = 0; i < 10; i++)); do
				kill -0 "$pid" 2>/dev/null || return 0
				sleep 1
			done
			pkill -KILL -P "$pid" 2>/dev/null || true
			kill -KILL "$pid" 2>/dev/null || true
			return 0
		fi
	done
}

# split_tests ID N: deals the test files to N guests, longest first (durations of the last run
# on ID on this machine, else those recorded in scripts/vm/durations/ID, else 60 s), each to the
# guest with the least work so far. Prints "GUEST FILE".
split_tests() {
	local id=$1 n=$2
	# The systemd suite shares one system's state (units, the agent, its pins): one guest.
	kernel_spec "$id"
	[[ $K_SYSTEMD == 0 ]] || n=1
	test_list "$id" | while IFS= read -r f; do
		[[ -z $(skip_reason "$id" "$f") ]] || continue
		n_=$(test_name "$f")
		d=$(awk -v t="$n_" '$1 == t { print $2; exit }' "$cache/durations-$id" 2>/dev/null) || d=
		[[ -n $d ]] ||
			d=$(awk -v t="$n_" '$1 == t { print $2; exit }' "$vmdir/durations/$id" 2>/dev/null) || d=
		echo "${d:-60} $f"
	done | sort -rn | awk -v n="$n" '{
		best = 0
		for (g = 1; g < n; g++) if (load[g] < load[best]) best = g
		load[best] += $1
		print best, $2
	}'
}

# guest_report ID RUN RC SECS: reads one guest's results, prints them, adds to the totals.
guest_report() {
	local id=$1 run=$2 rc=$3 secs=$4 out=$2/out t name tp tf ts why st
	local n_pass=0 n_fail=0 n_skip=0
	for t in "$out"/*.tap; do
		[[ -e $t ]] || continue
		name=${t##*/}
		name=${name%.tap}
		read -r tp tf ts < <(tap_counts "$t")
		st=$(cat "$out/$name.rc" 2>/dev/null) || st=
		if [[ -z $st ]]; then
			echo "not ok - $id: $name did not finish"
			tf=$((tf + 1))
		elif [[ $st != 0 ]] && ((tf == 0)); then
			# A test file that exits non-zero without a "not ok" counts as one failure.
			echo "not ok - $id: $name exited with status $st without reporting a failure"
			tf=1
			tail -5 "$out/$name.err" 2>/dev/null | sed 's/^/#     /'
		elif ((tp + tf + ts == 0)); then
			echo "not ok - $id: $name ran no test"
			tf=1
		fi
		sed -n "s/^not ok [0-9]* - /#   $id $name: not ok - /p" "$t"
		sed -En "s/^ok [0-9]+ - (.*) # SKIP (.*)/#   SKIP on $id (kernel $RELEASE): \\1: \\2/p" "$t"
		echo "#   $name: $tp passed, $tf failed, $ts skipped in $(cat "$out/$name.secs" 2>/dev/null || echo '?')s"
		[[ -e $out/$name.secs ]] && echo "$name $(cat "$out/$name.secs")" >>"$DURATIONS"
		n_pass=$((n_pass + tp)) n_fail=$((n_fail + tf)) n_skip=$((n_skip + ts))
	done
	why=
	if grep -q 'Kernel panic' "$run/console.log" 2>/dev/null; then
		why="kernel panic: $(grep -m1 -E '\] (Oops|BUG:|general protection fault|Kernel panic)' \
			"$run/console.log" | sed 's/^\[[^]]*\] //')"
	elif [[ ! -e $out/result ]]; then
		if [[ -e $run/idle ]]; then
			why="hung: no progress for ${idle_s}s (console and TAP files unchanged), killed after $(cat "$run/idle")s"
		elif ((rc == 124 || rc == 137)); then
			why="hung: no result after ${timeout_s}s"
		else
			why="the guest stopped without a result (qemu exit $rc)"
		fi
	elif [[ $(cat "$out/result") == reboot ]]; then
		why="the second boot gave no result (qemu exit $rc)"
	elif [[ $(cat "$out/result") != "done" ]]; then
		why="guest setup failed: $(cat "$out/result")"
	fi
	if [[ -n $why ]]; then
		echo "not ok - $id: $why"
		echo "#   console log (last 25 lines), $run/console.log:"
		tail -25 "$run/console.log" 2>/dev/null | sed 's/^/#   | /'
		n_fail=$((n_fail + 1))
	fi
	echo "#   guest: booted in $(cat "$out/boot" 2>/dev/null || echo '?')s, result after" \
		"$(cat "$out/uptime" 2>/dev/null || echo '?')s (guest clock)$([[ ! -e $out/boot2 ]] ||
			echo "; second boot: booted in $(cat "$out/boot2")s, result after $(cat "$out/uptime2" 2>/dev/null || echo '?')s");" \
		"QEMU ran ${secs}s"
	K_PASSED=$((K_PASSED + n_pass)) K_FAILED=$((K_FAILED + n_fail)) K_SKIPPED=$((K_SKIPPED + n_skip))
}

# check_one ID: boots guests for ID (CARWALL_VM_JOBS of them at once, each running a share of
# the test files), prints the report, adds to the totals.
check_one() {
	local id=$1 run start end n g files pids=() t0 f why rc
	echo "# ---- $id"
	start=$(date +%s)
	# The cache is shared with other runs: prepare under its lock.
	exec 8>"$cache/.lock"
	UNAVAILABLE=''
	rc=0
	flock -w 1800 8 || die "another vm.sh holds $cache/.lock for 30 minutes"
	prepare "$id" >"$cache/prepare-$id.log" 2>&1 || rc=$?
	exec 8>&-
	if ((rc == 2)) && [[ -n $UNAVAILABLE ]]; then
		sed 's/^/#   /' "$cache/prepare-$id.log"
		echo "#   SKIP on $id: this kernel cannot be had here: $UNAVAILABLE"
		echo "# $id: 0 passed, 0 failed, 1 skipped"
		TOTAL_SKIPPED=$((TOTAL_SKIPPED + 1))
		return 0
	elif ((rc != 0)); then
		sed 's/^/#   /' "$cache/prepare-$id.log"
		echo "not ok - $id: could not prepare the guest (see above)"
		TOTAL_FAILED=$((TOTAL_FAILED + 1))
		return 0
	fi
	exec 8>&-
	RELEASE=$(cat "$K_DIR/release")
	new_run "$id"
	run=$RUN
	if [[ $K_SYSTEMD == 1 ]]; then
		make_initramfs "$K_DIR" "$BUSYBOX" "$run/initrd.gz" "${SYSTEMD_GUEST_MODULES[@]}" ||
			die "$id: the modules ${SYSTEMD_GUEST_MODULES[*]} were not all found"
	else
		make_initramfs "$K_DIR" "$BUSYBOX" "$run/initrd.gz"
	fi
	split_tests "$id" "$jobs" >"$run/split"
	n=$(awk '{ print $1 }' "$run/split" | sort -u | wc -l)
	t0=$(date +%s.%N)
	for ((g = 0; g < n; g++)); do
		mkdir -p "$run/g$g/out"
		files=$(awk -v g="$g" '$1 == g { print $2 }' "$run/split" | paste -sd,)
		GUEST_DISK='' GUEST_REBOOT=''
		if [[ $K_SYSTEMD == 1 ]]; then
			GUEST_DISK=$run/g$g/upper.img
			mkfs.ext4 -q -F -L cwupper "$GUEST_DISK" "${SYSTEMD_DISK_MIB}M" >/dev/null ||
				die "mkfs.ext4 $GUEST_DISK failed"
			[[ ,$files, != *,tests/systemd/test_reboot.sh,* ]] || GUEST_REBOOT=1
		fi
		(
			s=$(date +%s.%N)
			rc=0
			# A second boot of the same disk when the first asked for it (systemctl reboot).
			for boot in 1 2; do
				GUEST_BOOT=$boot
				qemu_cmd "$id" "$K_DIR" "$run/initrd.gz" "$run/g$g/out" check "$files"
				timeout --kill-after=10 "$timeout_s" "${QEMU[@]}" -display none -monitor none \
					-serial "file:$run/g$g/console-boot$boot.log" </dev/null \
					>>"$run/g$g/qemu.log" 2>&1 &
				qemu_pid=$!
				watch_progress "$qemu_pid" "$run/g$g" "$run/g$g/console-boot$boot.log" "$s"
				wait "$qemu_pid" || rc=$?
				cat "$run/g$g/console-boot$boot.log" >>"$run/g$g/console.log"
				rm -f "$run/g$g/console-boot$boot.log"
				[[ -n $GUEST_REBOOT && $rc == 0 && $(cat "$run/g$g/out/result" 2>/dev/null) == reboot ]] ||
					break
				GUEST_REBOOT=''
			done
			echo "$rc" >"$run/g$g/rc"
			awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' >"$run/g$g/secs"
		) &
		pids+=($!)
	done
	for f in "${pids[@]}"; do wait "$f" || true; done
	end=$(date +%s)

	K_PASSED=0 K_FAILED=0 K_SKIPPED=0
	while IFS= read -r f; do
		why=$(skip_reason "$id" "$f")
		[[ -n $why ]] || continue
		echo "#   SKIP on $id (kernel $RELEASE): $(test_name "$f"): $why"
		K_SKIPPED=$((K_SKIPPED + 1))
	done < <(test_list "$id")
	DURATIONS=$run/durations
	: >"$DURATIONS"
	for ((g = 0; g < n; g++)); do
		echo "#   guest $((g + 1))/$n: $(awk -v g="$g" '$1 == g { printf "%s ", $2 }' "$run/split")"
		guest_report "$id" "$run/g$g" "$(cat "$run/g$g/rc")" "$(cat "$run/g$g/secs")"
	done
	# This run's durations replace the previous ones of the same test files.
	if [[ -s $DURATIONS ]]; then
		awk 'NR == FNR { t[$1] = $2; next } !($1 in t) { t[$1] = $2 }
			END { for (n in t) print n, t[n] }' "$DURATIONS" "$cache/durations-$id" \
			2>/dev/null >"$DURATIONS.all" || cp "$DURATIONS" "$DURATIONS.all"
		mv "$DURATIONS.all" "$cache/durations-$id"
	fi
	echo "# $id: kernel $RELEASE ($K_QEMU_ARCH): $K_PASSED passed, $K_FAILED failed," \
		"$K_SKIPPED skipped; $n guest(s) in parallel, $(awk -v a="$t0" -v b="$end" \
		'BEGIN { printf "%d", b - a }')s; $((end - start))s in all with the preparation"
	TOTAL_PASSED=$((TOTAL_PASSED + K_PASSED))
	TOTAL_FAILED=$((TOTAL_FAILED + K_FAILED))
	TOTAL_SKIPPED=$((TOTAL_SKIPPED + K_SKIPPED))
	if [[ ${CARWALL_VM_KEEP:-0} == 1 || $K_FAILED -gt 0 ]]; then
		echo "# $id: console logs and TAP files kept in $run"
	else
		rm -rf "$run"
	fi
}

cmd_check() {
	local k kernels=("$@")
	((${#kernels[@]})) || kernels=("${ALL_KERNELS[@]}")
	for k in "${kernels[@]}"; do
		kernel_spec "$k" || die "unknown kernel $k (known: ${ALL_KERNELS[*]})"
	done
	install_host_deps
	mkdir -p "$cache"
	for k in "${kernels[@]}"; do check_one "$k"; done
	echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
	((TOTAL_FAILED == 0))
}

cmd_shell() {
	local id=${1:-x86_64-6.1} run
	kernel_spec "$id" || die "unknown kernel $id (known: ${ALL_KERNELS[*]})"
	[[ $K_SYSTEMD == 0 ]] || die "$id runs the systemd suite only; vm-shell takes ${id%-systemd}"
	install_host_deps
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock -w 1800 9 || die "another vm.sh holds $cache/.lock"
	prepare "$id" || die "could not prepare the $id guest${UNAVAILABLE:+: $UNAVAILABLE}"
	exec 9>&-
	new_run "$id"
	run=$RUN
	mkdir -p "$run/out"
	make_initramfs "$K_DIR" "$BUSYBOX" "$run/initrd.gz"
	# The console knows nothing of the terminal's size: pass it on.
	EXTRA_APPEND="cw.size=$(stty size 2>/dev/null | tr ' ' x)"
	qemu_cmd "$id" "$K_DIR" "$run/initrd.gz" "$run/out" shell
	log "booting $id (TCG: about 10 s); leave the shell with 'exit' (or Ctrl-A X)"
	"${QEMU[@]}" -nographic -serial mon:stdio || true
	rm -rf "$run"
}

cmd_fetch() {
	local k kernels=("$@")
	((${#kernels[@]})) || kernels=("${ALL_KERNELS[@]}")
	install_host_deps
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock -w 1800 9 || die "another vm.sh holds $cache/.lock"
	for k in "${kernels[@]}"; do
		prepare "$k" || die "could not prepare $k${UNAVAILABLE:+: $UNAVAILABLE}"
		echo "$k: $(cat "$K_DIR/release") in $K_DIR"
	done
}

case ${1:-} in
check) shift && cmd_check "$@" ;;
shell) shift && cmd_shell "$@" ;;
fetch) shift && cmd_fetch "$@" ;;
list) printf '%s\n' "${ALL_KERNELS[@]}" ;;
*) usage ;;
esac

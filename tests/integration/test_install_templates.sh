#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `make install` covers every app template applaunchd starts apps from (agl-app@,
# agl-app-web@, agl-app-flutter@): the carwall drop-in is installed for each, with the
# closing directives (address families, capabilities, name lookups); the agent is ordered
# before all three slices; `make install-only` copies a prebuilt tree without building, and
# `make uninstall` removes every drop-in.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
unitdir=$dest/usr/lib/systemd/system
templates=(agl-app@ agl-app-web@ agl-app-flutter@)
slices=('system-agl\x2dapp.slice' 'system-agl\x2dapp\x2dweb.slice' 'system-agl\x2dapp\x2dflutter.slice')

tap_check "make install succeeds" make -C "$top" -s install DESTDIR="$dest" PREFIX=/usr
for t in "${templates[@]}"; do
	f=$unitdir/$t.service.d/carwall.conf
	tap_check "$t.service: the drop-in is installed" test -f "$f"
	tap_check "$t.service: the app starts only once the agent manages its cgroup" \
		grep -qx 'ExecStartPre=+/usr/bin/carwall app wait-managed --timeout 10' "$f"
	tap_check "$t.service: only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK sockets" \
		grep -qx 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK' "$f"
	tap_check "$t.service: no capabilities, no new privileges" bash -c \
		"grep -qx 'CapabilityBoundingSet=' '$f' && grep -qx 'AmbientCapabilities=' '$f' && grep -qx 'NoNewPrivileges=yes' '$f'"
	tap_check "$t.service: lookups cannot go through systemd-resolved or nscd" \
		grep -qx 'InaccessiblePaths=-/run/systemd/resolve/io.systemd.Resolve -/run/nscd/socket' "$f"
done
for s in "${slices[@]}"; do
	tap_check "carwalld.service is ordered before $s" bash -c \
		'grep "^Before=" "$1" | tr " =" "\n\n" | grep -qxF "$2"' _ "$unitdir/carwalld.service" "$s"
done
if command -v systemd-analyze >/dev/null; then
	out=$(cd "$unitdir" && systemd-analyze verify carwalld.service 2>&1)
	tap_check "systemd-analyze verify: nothing wrong but the DESTDIR binary" \
		bash -c "! grep -v 'is not executable' <<<\"\$1\" | grep -q ." _ "$out"
else
	tap_skip "systemd-analyze verify" "systemd-analyze is not installed"
fi

# install-only: what $(BUILD) holds, nothing built (a BUILD without sources' objects).
bin=$dest/prebuilt
mkdir -p "$bin"
cp "$top/build/carwalld" "$top/build/carwall" "$bin/"
tap_check "make install-only copies a prebuilt tree" \
	make -C "$top" -s install-only BUILD="$bin" DESTDIR="$dest/only" PREFIX=/usr
tap_check "install-only compiled nothing into the prebuilt tree" \
	bash -c '[[ $(ls "$1" | sort | paste -sd " ") == "carwall carwalld" ]]' _ "$bin"
tap_check "install-only installed the drop-in of the flutter template" \
	test -f "$dest/only/usr/lib/systemd/system/agl-app-flutter@.service.d/carwall.conf"

tap_check "make uninstall succeeds" make -C "$top" -s uninstall DESTDIR="$dest" PREFIX=/usr
for t in "${templates[@]}"; do
	tap_check "$t.service: uninstall removed the drop-in and its folder" \
		test ! -e "$unitdir/$t.service.d"
done
tap_done

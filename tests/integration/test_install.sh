#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `make install DESTDIR=... PREFIX=...` installs binaries, the systemd unit with its paths filled
# in, the AGL drop-in, default options, a default policy and the documentation.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
tap_check "make install succeeds" make -C "$top" -s install DESTDIR="$dest" PREFIX=/usr
for f in usr/sbin/carwalld usr/bin/carwall usr/lib/systemd/system/carwalld.service \
	'usr/lib/systemd/system/agl-app@.service.d/carwall.conf' etc/default/carwall \
	etc/carwall/policy.yaml usr/share/doc/carwall/README.md \
	usr/share/doc/carwall/policy.example.yaml usr/share/doc/carwall/policy-format.md; do
	tap_check "installed: /$f" test -f "$dest/$f"
done
tap_check "installed: the trust folder /etc/carwall/keys" test -d "$dest/etc/carwall/keys"
tap_check "the unit runs the installed agent" grep -q '^ExecStart=/usr/sbin/carwalld ' \
	"$dest/usr/lib/systemd/system/carwalld.service"
tap_check "the unit is Type=notify and hardened" bash -c "grep -q '^Type=notify' '$dest/usr/lib/systemd/system/carwalld.service' && grep -q '^NoNewPrivileges=yes' '$dest/usr/lib/systemd/system/carwalld.service' && grep -q '^CapabilityBoundingSet=' '$dest/usr/lib/systemd/system/carwalld.service'"
tap_check "no placeholder is left in the installed units" \
	bash -c "! grep -rq '@[A-Z]*@' '$dest/usr/lib/systemd/system'"
tap_check "the AGL drop-in waits until the agent manages the unit's cgroup before an app starts" \
	grep -qx 'ExecStartPre=+/usr/bin/carwall app wait-managed --timeout 10' \
	"$dest/usr/lib/systemd/system/agl-app@.service.d/carwall.conf"
tap_check "the installed default policy is valid" "$dest/usr/bin/carwall" policy check "$dest/etc/carwall/policy.yaml"
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify "$dest/usr/lib/systemd/system/carwalld.service" 2>&1)
	# The only complaint allowed: the binary is in DESTDIR, not at /usr/sbin on this machine.
	tap_check "systemd-analyze finds nothing wrong with the unit" \
		bash -c "! grep -v 'is not executable' <<<\"\$1\" | grep -q ." _ "$out"
else
	tap_skip "systemd-analyze verify" "systemd-analyze is not installed"
fi
tap_done

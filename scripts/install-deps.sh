#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Install the Debian packages carwall needs to build, test and run its demo, if any is missing.
# Used by `make demo` and `make check`; needs root on Debian 12.
set -euo pipefail

packages=(
	make gcc clang llvm pkg-config
	libbpf-dev bpftool libelf-dev zlib1g-dev
	libyaml-dev libjson-c-dev libssl-dev libnl-3-dev libpsl-dev
	libmaxminddb-dev # the country database of data residency and its report (userspace/lib/geo.c)
	libmaxmind-db-writer-perl # the residency tests write their own small country database
	libcmocka-dev libclang-rt-14-dev
	libsystemd-dev # journald's native protocol (Makefile WITH_SYSTEMD=1)
	iproute2 util-linux procps openssl python3 scdoc
	patch # tests only: `policy suggest --base` prints a diff the tests apply
	dnsmasq-base # the DNS server of the host-name tests (the binary: no system service)
	chromium # tests only: the residency report's HTML page rendered headless
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

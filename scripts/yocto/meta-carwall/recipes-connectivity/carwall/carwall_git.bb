# SPDX-License-Identifier: GPL-2.0-only
SUMMARY = "carwall: per-app egress firewall for AGL head units (cgroup eBPF)"
DESCRIPTION = "carwalld attaches BPF programs to the cgroup socket hooks and refuses every \
connection or datagram of an AGL app (agl-app@, agl-app-web@, agl-app-flutter@ units) to a \
destination its policy does not list; carwall is the command line for testers and integrators."
HOMEPAGE = "https://example.invalid/carwall"
SECTION = "net"
LICENSE = "GPL-2.0-only"
# The SPDX line heading the Makefile (the repository carries no separate licence text yet).
LIC_FILES_CHKSUM = "file://Makefile;beginline=1;endline=1;md5=829e563511c9a1d6d41f17a7a4989d6a"

# Set CARWALL_GIT_URI and SRCREV (a release commit) in local.conf or a bbappend.
CARWALL_GIT_URI ??= "git://example.invalid/carwall.git;protocol=https;branch=main"
SRC_URI = "${CARWALL_GIT_URI}"
SRCREV ??= "${AUTOREV}"
PV = "0.1+git${SRCPV}"
S = "${WORKDIR}/git"

# BPF programs: clang -target bpf, skeletons from bpftool gen skeleton; userspace links libbpf,
# libelf, zlib, libyaml, json-c, libcrypto, libnl-3, libpsl and libmaxminddb (meta-oe: the
# country database of data residency and its report, userspace/lib/geo.c).
DEPENDS = "libbpf bpftool-native clang-native libyaml openssl json-c libnl elfutils zlib libpsl \
	libmaxminddb"
# Userspace builds with the target gcc; clang-native compiles only the BPF programs (-target bpf).
TOOLCHAIN = "gcc"

inherit systemd pkgconfig

# Optional parts:
#   agl-dropins     carwall's drop-in for agl-app@, agl-app-web@ and agl-app-flutter@ (default)
#   kernel-check    /usr/libexec/carwall/check-kernel-config + the fragment: names each CONFIG_
#                   option the running kernel lacks
#   docs            README, policy format and the example policy in ${docdir}/carwall
#   developer-mode  carwalld accepts unsigned policies (/etc/default/carwall); test images only,
#                   never a vehicle
#   systemd         journald's native protocol through libsystemd (the Makefile's
#                   WITH_SYSTEMD=1): each flow record's fields as journal fields (default)
PACKAGECONFIG ??= "agl-dropins kernel-check systemd"
PACKAGECONFIG[agl-dropins] = ""
PACKAGECONFIG[kernel-check] = ",,,bash gzip"
PACKAGECONFIG[docs] = ""
PACKAGECONFIG[developer-mode] = ""
PACKAGECONFIG[systemd] = "WITH_SYSTEMD=1,WITH_SYSTEMD=0,systemd"

# Linux's name of the target architecture, for the BPF programs (__TARGET_ARCH_*).
def carwall_bpf_arch(d):
    a = d.getVar('TARGET_ARCH')
    return {'aarch64': 'arm64', 'x86_64': 'x86', 'i686': 'x86', 'arm': 'arm',
            'riscv64': 'riscv', 'powerpc64le': 'powerpc'}.get(a, a)

# CC, AR, CFLAGS and LDFLAGS come from the environment bitbake exports (the Makefile adds its
# own flags to them); the rest on the command line. SYSROOT: the target sysroot's headers also
# serve the BPF programs (linux/bpf.h, bpf/bpf_helpers.h), after clang's own.
EXTRA_OEMAKE = " \
    ARCH=${@carwall_bpf_arch(d)} CLANG=clang BPFTOOL=bpftool PKG_CONFIG=pkg-config \
    SYSROOT=${STAGING_DIR_TARGET} \
    BPF_EXTRA_CFLAGS='-fdebug-prefix-map=${WORKDIR}=/usr/src/debug/${PN}/${PV}' \
    PREFIX=${prefix} BINDIR=${bindir} SBINDIR=${sbindir} SYSCONFDIR=${sysconfdir} \
    DOCDIR=${docdir}/carwall UNITDIR=${systemd_system_unitdir} \
    ${PACKAGECONFIG_CONFARGS} \
"

do_compile() {
    oe_runmake all
}

do_install() {
    # Binaries, carwalld.service, the drop-ins, /etc/default/carwall, the default (deny-all)
    # policy /etc/carwall/policy.yaml, the trust folder, the documentation.
    oe_runmake install-only DESTDIR=${D}
    if ${@bb.utils.contains('PACKAGECONFIG', 'agl-dropins', 'false', 'true', d)}; then
        rm -rf ${D}${systemd_system_unitdir}/agl-app*@.service.d
    fi
    if ${@bb.utils.contains('PACKAGECONFIG', 'docs', 'false', 'true', d)}; then
        rm -rf ${D}${docdir}/carwall
    fi
    if ${@bb.utils.contains('PACKAGECONFIG', 'kernel-check', 'true', 'false', d)}; then
        install -d ${D}${libexecdir}/carwall
        install -m 0755 ${S}/scripts/kernel/check-config.sh ${D}${libexecdir}/carwall/check-kernel-config
        install -m 0644 ${S}/scripts/kernel/carwall.cfg ${D}${libexecdir}/carwall/carwall.cfg
    fi
    if ${@bb.utils.contains('PACKAGECONFIG', 'developer-mode', 'true', 'false', d)}; then
        echo 'CARWALLD_ARGS="--developer-mode"' > ${D}${sysconfdir}/default/carwall
    fi
}

SYSTEMD_SERVICE:${PN} = "carwalld.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

FILES:${PN} += "${systemd_system_unitdir} ${libexecdir}/carwall"
# The head unit's configuration: an upgrade keeps the integrator's policy and options.
CONFFILES:${PN} = "${sysconfdir}/carwall/policy.yaml ${sysconfdir}/default/carwall"

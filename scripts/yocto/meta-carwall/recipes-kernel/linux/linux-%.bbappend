# SPDX-License-Identifier: GPL-2.0-only
# carwall's kernel configuration fragment (scripts/kernel/carwall.cfg: cgroup BPF, sock_diag
# with SOCK_DESTROY, seccomp for the app drop-in, RDS off), merged by AGL's kernel recipes:
# those that require linux-yocto-agl.inc fetch every name of AGL_KCONFIG_FRAGMENTS from the
# recipe's files and merge it into .config. files/carwall.cfg is a link to scripts/kernel/.
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
AGL_KCONFIG_FRAGMENTS += "carwall.cfg"

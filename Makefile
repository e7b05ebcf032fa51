# SPDX-License-Identifier: GPL-2.0-only
#
# carwall. The two commands of the README:
#   make demo    install what is missing, build, play the seed scenario in a throwaway sandbox
#   make check   install what is missing, build (plain and ASan+UBSan), run every test suite
#
# Other targets: all (default), tests, fuzz, man, install, install-only, uninstall, clean,
#   vm-check, vm-shell, geo-db (a real country database from the npm registry, never by tests).
# Variables: V=1 (verbose), SAN=1 (build with AddressSanitizer and UBSan into build-san/),
#   CROSS_COMPILE=aarch64-linux-gnu- ARCH=arm64 (head-unit SoC), DESTDIR, PREFIX,
#   STATIC=1 (static binaries), WITH_SYSTEMD=0|1 (journald's native protocol through libsystemd:
#   each event's fields as journal fields; default 1, 0 with STATIC=1), SYSROOT=DIR (target -dev packages unpacked in DIR, for a cross
#   build: headers and libraries are looked up there after the toolchain's; export
#   PKG_CONFIG_SYSROOT_DIR and PKG_CONFIG_LIBDIR for its .pc files). A build system's own CC, AR,
#   CFLAGS, LDFLAGS (environment or command line: they are added to, not replaced),
#   BPF_EXTRA_CFLAGS, CLANG, BPFTOOL, PKG_CONFIG and the folders (BINDIR, SBINDIR, SYSCONFDIR,
#   DOCDIR, UNITDIR) are honoured (scripts/yocto/meta-carwall passes them).

.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
msg = $(if $(filter 1,$(V)),,@printf '  %-8s %s\n' '$(1)' '$(2)';)

SAN ?= 0
STATIC ?= 0
SYSROOT ?=
ifeq ($(SAN),1)
BUILD ?= build-san
else
BUILD ?= build
endif

CROSS_COMPILE ?=
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
# CC and AR from the environment or the command line win over make's defaults (cc, ar).
ifeq ($(origin CC),default)
CC := $(CROSS_COMPILE)gcc
endif
ifeq ($(origin AR),default)
AR := $(CROSS_COMPILE)ar
endif
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
DOCDIR ?= $(PREFIX)/share/doc/carwall
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system

WARNINGS := -Wall -Wextra -Werror -Wformat=2 -Wshadow
CFLAGS ?= -O2 -g
# `override`: a CFLAGS or LDFLAGS given on the command line is added to, not replacing these.
override CFLAGS += -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -DCARWALL_VERSION='"$(VERSION)"' \
	  -Iuserspace/lib -Ibpf -I$(BUILD) -MMD -MP
LDLIBS := -lbpf -lelf -lz -lyaml -ljson-c -lcrypto
# libmaxminddb: the country database of data residency and its report (userspace/lib/geo.c)
LDLIBS += -lmaxminddb
# libnl-3: sock_diag in userspace/agent/revoke.c
override CFLAGS += $(shell $(PKG_CONFIG) --cflags libnl-3.0)
LDLIBS += $(shell $(PKG_CONFIG) --libs libnl-3.0)
# libpsl: the public suffix list of `policy check`'s warnings (userspace/policy_lint.c)
LDLIBS += -lpsl

# libsystemd: journald's native protocol (userspace/lib/log.c). Without it (WITH_SYSTEMD=0, the
# default of static builds: Debian ships no static libsystemd) the agent writes "<N>"-prefixed
# lines to the journal stream, which journald stores as MESSAGE and PRIORITY only.
WITH_SYSTEMD ?= $(if $(filter 1,$(STATIC)),0,1)
ifeq ($(WITH_SYSTEMD),1)
override CFLAGS += -DCARWALL_WITH_SYSTEMD=1 $(shell $(PKG_CONFIG) --cflags libsystemd)
LDLIBS += $(shell $(PKG_CONFIG) --libs libsystemd)
else ifneq ($(WITH_SYSTEMD),0)
$(error WITH_SYSTEMD must be 0 or 1, not '$(WITH_SYSTEMD)')
endif
ifneq ($(SYSROOT),)
override CFLAGS += -idirafter $(SYSROOT)/usr/include $(if $(MULTIARCH),-idirafter $(SYSROOT)/usr/include/$(MULTIARCH))
override LDFLAGS += $(foreach d,usr/lib/$(MULTIARCH) lib/$(MULTIARCH) usr/lib,-L$(SYSROOT)/$(d))
endif
ifeq ($(STATIC),1)
# The static libraries' own dependencies (libelf's zstd...), after the list above.
override LDFLAGS += -static
# libpsl's .pc names no private libraries, but its static library needs libidn2 and libunistring.
LDLIBS += $(shell $(PKG_CONFIG) --static --libs libbpf libelf libcrypto libpsl) -lidn2 -lunistring
endif
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
override CFLAGS += $(SANFLAGS)
override LDFLAGS += $(SANFLAGS)
endif

# The target's headers (linux/bpf.h, bpf/bpf_helpers.h) come after clang's: a SYSROOT's own.
BPF_EXTRA_CFLAGS ?=
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ibpf \
	      $(if $(MULTIARCH),-idirafter $(SYSROOT)/usr/include/$(MULTIARCH)) \
	      $(if $(SYSROOT),-idirafter $(SYSROOT)/usr/include) $(BPF_EXTRA_CFLAGS)

BPF_PROGS := sock_addr sock_create sock_ops skb dns
BPF_SKELS := $(patsubst %,$(BUILD)/%.skel.h,$(BPF_PROGS))

# userspace/README.md: lib/ is used by both programs (libcarwall.a), agent/ only by carwalld
# (its modules in libcarwalld.a, for the unit tests), cli/ only by carwall. The agent's and the
# CLI's files see lib/ (-Iuserspace/lib) and their own folder, never each other's.
LIB_SRCS := $(wildcard userspace/lib/*.c)
LIB_OBJS := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
AGENT_OBJS := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(wildcard userspace/agent/*.c))
CLI_OBJS := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(wildcard userspace/cli/*.c))

LIB_UNIT_TESTS := $(patsubst tests/unit/lib/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/lib/test_*.c))
AGENT_UNIT_TESTS := $(patsubst tests/unit/agent/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/agent/test_*.c))
UNIT_TESTS := $(LIB_UNIT_TESTS) $(AGENT_UNIT_TESTS)
# BPF programs the adversarial tests attach next to carwall's (the "other agent").
ADVERSARY_OBJS := $(patsubst tests/adversarial/%.bpf.c,$(BUILD)/tests/%.bpf.o,$(wildcard tests/adversarial/*.bpf.c))
# The DNS parser's tests: the userspace twin (crafted responses, libresolv agreement) and the
# kernel parser through BPF_PROG_TEST_RUN (root; SKIPs otherwise). Both run in the unit suite.
DNS_TESTS := $(BUILD)/tests/test_dns $(BUILD)/tests/test_dns_kernel
DNS_TEST_SRCS := tests/dns/dns_cases.c tests/dns/dns_oracle.c
DNS_BPF_HDRS := bpf/cw_dns.h bpf/cw_dns_parse.h bpf/cw_dns.bpf.h
FUZZERS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

BINS := $(BUILD)/carwalld $(BUILD)/carwall $(BUILD)/flowprobe

.PHONY: all tests check demo bench fuzz man install uninstall clean deps
all: $(BINS)
# kernel_hide.so is preloaded into a dynamically linked agent only: not built with STATIC=1.
tests: $(UNIT_TESTS) $(ADVERSARY_OBJS) $(BUILD)/verdict_probe $(BUILD)/revoke_tool $(DNS_TESTS) \
	$(BUILD)/cache_race $(BUILD)/thread_hold \
	$(if $(filter 1,$(STATIC)),,$(BUILD)/tests/kernel_hide.so)

deps:
	$(Q)scripts/install-deps.sh

# A real country database for `carwall geo` and `carwalld --geo-db`: ip-location-db's
# geo-whois-asn-country (CC0-1.0, MaxMind DB format), fetched from the npm registry with npm.
# Only this target fetches it; no test needs it (they write their own small database).
GEO_DB_PACKAGE ?= @ip-location-db/geo-whois-asn-country-mmdb
.PHONY: geo-db
geo-db: | $(BUILD)
	$(call msg,NPM,$(BUILD)/geo/country.mmdb)
	$(Q)rm -rf $(BUILD)/geo && mkdir -p $(BUILD)/geo
	$(Q)cd $(BUILD)/geo && npm pack --silent $(GEO_DB_PACKAGE) >/dev/null && \
		tar -xzf ./*.tgz && mmdb=$$(find package -name '*.mmdb' | head -n 1) && \
		test -n "$$mmdb" && mv "$$mmdb" country.mmdb && \
		{ cat package/LICENSE* 2>/dev/null | head -n 3 || true; }

# ---- BPF ----------------------------------------------------------------------------------------
$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/carwall.h bpf/cw_app.bpf.h bpf/cw_dest.bpf.h $(DNS_BPF_HDRS) | $(BUILD)
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# ---- userspace ----------------------------------------------------------------------------------
$(BUILD)/obj/%.o: userspace/%.c $(BPF_SKELS) | $(BUILD)/obj
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcarwall.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/libcarwalld.a: $(filter-out %/carwalld.o,$(AGENT_OBJS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/carwalld: $(BUILD)/obj/agent/carwalld.o $(BUILD)/libcarwalld.a $(BUILD)/libcarwall.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o %.a,$^) $(LDLIBS) -o $@

$(BUILD)/carwall: $(CLI_OBJS) $(BUILD)/libcarwall.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o %.a,$^) $(LDLIBS) -o $@

$(BUILD)/flowprobe: scripts/flowprobe.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

# ---- manual pages -------------------------------------------------------------------------------
# One scdoc source each, next to what it documents; tests/integration/test_man_pages.sh checks
# them against --help.
MAN_SRCS := userspace/cli/carwall.8.scd userspace/agent/carwalld.8.scd policies/carwall-policy.5.scd
MAN_PAGES := $(patsubst %.scd,$(BUILD)/man/%,$(notdir $(MAN_SRCS)))
SCDOC ?= scdoc
vpath %.scd $(sort $(dir $(MAN_SRCS)))

man: $(MAN_PAGES)

$(BUILD)/man/%: %.scd | $(BUILD)/man
	$(call msg,SCDOC,$@)
	$(Q)$(SCDOC) < $< > $@

# ---- tests --------------------------------------------------------------------------------------
# Their dependency files go to tests/deps/ (named for the binary, not the source, which moves).
$(LIB_UNIT_TESTS): $(BUILD)/tests/%: tests/unit/lib/%.c $(BUILD)/libcarwall.a | $(BUILD)/tests/deps
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -MF $(BUILD)/tests/deps/$*.d $(LDFLAGS) $(filter %.c %.a,$^) $(LDLIBS) -lcmocka -o $@

$(AGENT_UNIT_TESTS): $(BUILD)/tests/%: tests/unit/agent/%.c $(BUILD)/libcarwalld.a $(BUILD)/libcarwall.a | $(BUILD)/tests/deps
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -MF $(BUILD)/tests/deps/$*.d -Iuserspace/agent $(LDFLAGS) $(filter %.c %.a,$^) $(LDLIBS) -lcmocka -o $@

# The kernel-verdict probe of tests/integration/test_explain_agrees.sh.
$(BUILD)/verdict_probe: tests/integration/verdict_probe.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

# Holds the agent's next thread (ptrace), for tests/integration/test_stats_during_flip.sh.
$(BUILD)/thread_hold: tests/integration/thread_hold.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

# Two threads sending on one UDP socket, for tests/adversarial/test_verdict_cache_threads.sh.
$(BUILD)/cache_race: tests/adversarial/cache_race.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -pthread $< -o $@

# The revocation pass driver of tests/integration/test_revoke.sh.
$(BUILD)/revoke_tool: tests/integration/revoke_tool.c $(BUILD)/libcarwalld.a $(BUILD)/libcarwall.a | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iuserspace/agent $(LDFLAGS) $(filter %.c %.a,$^) $(LDLIBS) -o $@

# The LD_PRELOAD library of tests/integration/test_kernel_probe.sh: never sanitized (it is
# preloaded into the sanitized agent too).
$(BUILD)/tests/kernel_hide.so: tests/integration/kernel_hide.c | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -g -std=gnu11 $(WARNINGS) -shared -fPIC $< -o $@

$(BUILD)/tests/%.bpf.o: tests/adversarial/%.bpf.c | $(BUILD)/tests
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/tests/test_dns: tests/dns/test_dns.c $(DNS_TEST_SRCS) $(BUILD)/libcarwall.a | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/dns $(LDFLAGS) $(filter %.c %.a,$^) $(LDLIBS) -lcmocka -lresolv -o $@

$(BUILD)/tests/dns_parse.bpf.o: tests/dns/dns_parse.bpf.c tests/dns/dns_test.h $(DNS_BPF_HDRS) | $(BUILD)/tests
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itests/dns -c $< -o $@

$(BUILD)/tests/dns_parse.skel.h: $(BUILD)/tests/dns_parse.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name dns_parse_bpf > $@

$(BUILD)/tests/test_dns_kernel: tests/dns/test_dns_kernel.c $(DNS_TEST_SRCS) $(BUILD)/tests/dns_parse.skel.h \
				$(BUILD)/libcarwall.a | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/dns -I$(BUILD)/tests $(LDFLAGS) $(filter %.c %.a,$^) $(LDLIBS) \
		-lcmocka -lresolv -o $@

# libFuzzer targets, always built with clang, ASan and UBSan (outside the SAN switch).
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iuserspace/lib -Ibpf -Itests/dns \
	       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRCS := $(patsubst %,userspace/lib/%.c,policy fileio bundle bundle_digest bundle_state control log inventory \
	     policy_compile policy_lint policy_region geo explain dns events report report_render) tests/dns/dns_oracle.c
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) userspace/lib/*.h $(DNS_BPF_HDRS) tests/dns/dns_oracle.c | build-fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_SRCS) -lyaml -lcrypto -ljson-c -lbpf -lresolv -lpsl -lmaxminddb -o $@

# Each target keeps what it finds in build-fuzz/corpus-NAME (read again by the next run), starts
# from tests/fuzz/corpus/NAME and uses tests/fuzz/NAME.dict when there is one.
FUZZ_SECONDS ?= 300
fuzz: $(FUZZERS)
	$(Q)for f in $(FUZZERS); do \
		n=$${f##*/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build-fuzz/$$n- \
			$$(test -f tests/fuzz/$$n.dict && echo -dict=tests/fuzz/$$n.dict) \
			build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# The builds of `make check` use every CPU (CHECK_JOBS=1 for a serial build).
CHECK_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
check:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory -j$(CHECK_JOBS) all tests
	$(Q)$(MAKE) --no-print-directory -j$(CHECK_JOBS) SAN=1 all tests
	$(Q)$(MAKE) --no-print-directory -j$(CHECK_JOBS) fuzzers man
	$(Q)tests/run.sh

.PHONY: fuzzers
fuzzers: $(FUZZERS)

demo:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# The benchmark (scripts/bench.sh): QUICK=1 for a look in under a minute. Its own deps (nftables,
# jq) are installed here only, so `make check` never needs them. The floor variant, floor+mark
# and the empty programs (tests/bench/floor.bpf.c) are loaded by `bench floor`.
$(BUILD)/tests/bench_floor.bpf.o: tests/bench/floor.bpf.c tests/bench/floor.h | $(BUILD)/tests
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/tests/bench_floor.skel.h: $(BUILD)/tests/bench_floor.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name bench_floor_bpf > $@

$(BUILD)/bench: tests/bench/bench.c tests/bench/floor.h $(BUILD)/tests/bench_floor.skel.h \
		$(BUILD)/libcarwall.a | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -I$(BUILD)/tests $(LDFLAGS) $< $(BUILD)/libcarwall.a $(LDLIBS) -lresolv -o $@

bench:
	$(Q)scripts/install-deps.sh
	$(Q)scripts/bench.sh --install-deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/bench
	$(Q)CARWALL_BIN_DIR=$(CURDIR)/$(BUILD) scripts/bench.sh $(if $(filter 1,$(QUICK)),--quick)

# The testers' VM (scripts/vm/vm.sh, README "Testers' VM"): the integration tests inside QEMU
# guests on Debian's 6.1 and 6.12 x86_64 kernels and its 6.1 arm64 kernel (carwall cross-built).
# VM_KERNELS: a subset of x86_64-6.1 x86_64-6.12 arm64-6.1 x86_64-6.1-systemd (default all; the
# last boots systemd as PID 1 and runs tests/systemd/); VM_KERNEL: vm-shell's.
VM_KERNELS ?=
VM_KERNEL ?= x86_64-6.1
.PHONY: vm-check vm-shell
vm-check:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)scripts/vm/vm.sh check $(VM_KERNELS)

vm-shell:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)scripts/vm/vm.sh shell $(VM_KERNEL)

# ---- install ----------------------------------------------------------------------------------
# Binaries, the systemd unit and the drop-in for AGL's three app templates, default options, a
# default (deny-all) policy when there is none, the manual pages, and the documentation with an
# example policy. `install` builds first; `install-only` copies what $(BUILD) has (a packager's
# or a guest's prebuilt tree: no compiler needed; the manual pages when they were built).
AGL_TEMPLATES := agl-app@ agl-app-web@ agl-app-flutter@
SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	    -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'
.PHONY: install-only
install: all man
	$(Q)$(MAKE) --no-print-directory install-only
install-only:
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/carwall $(DESTDIR)$(SYSCONFDIR)/carwall/keys \
		$(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/carwalld $(DESTDIR)$(SBINDIR)/carwalld
	install -m 0755 $(BUILD)/carwall $(DESTDIR)$(BINDIR)/carwall
	$(SUBST) scripts/systemd/carwalld.service.in > $(DESTDIR)$(UNITDIR)/carwalld.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/carwalld.service
	for t in $(AGL_TEMPLATES); do \
		install -d $(DESTDIR)$(UNITDIR)/$$t.service.d && \
		$(SUBST) scripts/systemd/agl-app-carwall.conf.in \
			> $(DESTDIR)$(UNITDIR)/$$t.service.d/carwall.conf && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$t.service.d/carwall.conf || exit 1; \
	done
	test -e $(DESTDIR)$(SYSCONFDIR)/default/carwall || \
		install -m 0644 scripts/systemd/carwall.default $(DESTDIR)$(SYSCONFDIR)/default/carwall
	test -e $(DESTDIR)$(SYSCONFDIR)/carwall/policy.yaml || \
		install -m 0644 policies/default.yaml $(DESTDIR)$(SYSCONFDIR)/carwall/policy.yaml
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 policies/agl-demo.yaml $(DESTDIR)$(DOCDIR)/policy.example.yaml
	install -m 0644 policies/README.md $(DESTDIR)$(DOCDIR)/policy-format.md
	for m in $(MAN_PAGES); do \
		test -f $$m || continue; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; \
	done

# Stops the agent where systemd runs it, removes enforcement, then the files (the policy in
# /etc/carwall stays: it is the head unit's configuration).
uninstall:
	-[ -n "$(DESTDIR)" ] || ! command -v systemctl >/dev/null || systemctl stop carwalld 2>/dev/null
	-[ -n "$(DESTDIR)" ] || $(BINDIR)/carwall unload
	rm -f $(DESTDIR)$(SBINDIR)/carwalld $(DESTDIR)$(BINDIR)/carwall \
		$(DESTDIR)$(UNITDIR)/carwalld.service $(DESTDIR)$(SYSCONFDIR)/default/carwall \
		$(DESTDIR)$(MANDIR)/man8/carwall.8 $(DESTDIR)$(MANDIR)/man8/carwalld.8 \
		$(DESTDIR)$(MANDIR)/man5/carwall-policy.5
	-for t in $(AGL_TEMPLATES); do \
		rm -f $(DESTDIR)$(UNITDIR)/$$t.service.d/carwall.conf; \
		rmdir $(DESTDIR)$(UNITDIR)/$$t.service.d 2>/dev/null; \
	done
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-san build-fuzz

$(BUILD) $(BUILD)/obj $(BUILD)/tests $(BUILD)/tests/deps $(BUILD)/man build-fuzz:
	$(Q)mkdir -p $@

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/tests/deps/*.d)

# SPDX-License-Identifier: GPL-2.0-only
#
# carwall. The two commands of the README:
#   make demo    install what is missing, build, play the seed scenario in a throwaway sandbox
#   make check   install what is missing, build (plain and ASan+UBSan), run every test suite
#
# Other targets: all (default), tests, fuzz, install, uninstall, clean.
# Variables: V=1 (verbose), SAN=1 (build with AddressSanitizer and UBSan into build-san/),
#   CROSS_COMPILE=aarch64-linux-gnu- ARCH=arm64 (head-unit SoC), DESTDIR, PREFIX.

.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
msg = $(if $(filter 1,$(V)),,@printf '  %-8s %s\n' '$(1)' '$(2)';)

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
else
BUILD ?= build
endif

CROSS_COMPILE ?=
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CC := $(CROSS_COMPILE)gcc
AR := $(CROSS_COMPILE)ar
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

WARNINGS := -Wall -Wextra -Werror -Wformat=2 -Wshadow
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -DCARWALL_VERSION='"$(VERSION)"' \
	  -Iuserspace -Ibpf -I$(BUILD) -MMD -MP
LDLIBS := -lbpf -lelf -lz -lyaml -ljson-c -lcrypto
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS += $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ibpf \
	      $(if $(MULTIARCH),-idirafter /usr/include/$(MULTIARCH))

BPF_PROGS := sock_addr sock_create
BPF_SKELS := $(patsubst %,$(BUILD)/%.skel.h,$(BPF_PROGS))

# Library modules: everything in userspace/ but the two mains.
LIB_SRCS := $(filter-out userspace/carwalld.c userspace/carwall.c,$(wildcard userspace/*.c))
LIB_OBJS := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
FUZZERS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

BINS := $(BUILD)/carwalld $(BUILD)/carwall $(BUILD)/flowprobe

.PHONY: all tests check demo bench fuzz install uninstall clean deps
all: $(BINS)
tests: $(UNIT_TESTS)

deps:
	$(Q)scripts/install-deps.sh

# ---- BPF ----------------------------------------------------------------------------------------
$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/carwall.h bpf/cw_app.bpf.h | $(BUILD)
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# ---- userspace ----------------------------------------------------------------------------------
$(BUILD)/obj/%.o: userspace/%.c $(BPF_SKELS) | $(BUILD)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcarwall.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/carwalld $(BUILD)/carwall: $(BUILD)/%: $(BUILD)/obj/%.o $(BUILD)/libcarwall.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o %.a,$^) $(LDLIBS) -o $@

$(BUILD)/flowprobe: scripts/flowprobe.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

# ---- tests --------------------------------------------------------------------------------------
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcarwall.a | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.c %.a,$^) $(LDLIBS) -lcmocka -o $@

# libFuzzer targets, always built with clang, ASan and UBSan (outside the SAN switch).
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iuserspace -Ibpf \
	       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) userspace/*.h | build-fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< userspace/policy.c userspace/fileio.c -lyaml -o $@

FUZZ_SECONDS ?= 300
fuzz: $(FUZZERS)
	$(Q)for f in $(FUZZERS); do \
		n=$${f##*/fuzz_}; mkdir -p build-fuzz/corpus-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

check:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)$(MAKE) --no-print-directory SAN=1 all tests
	$(Q)$(MAKE) --no-print-directory fuzzers
	$(Q)tests/run.sh

.PHONY: fuzzers
fuzzers: $(FUZZERS)

demo:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# ---- install ------------------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/carwall \
		$(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/carwalld $(DESTDIR)$(SBINDIR)/carwalld
	install -m 0755 $(BUILD)/carwall $(DESTDIR)$(BINDIR)/carwall
	install -m 0644 policies/agl-demo.yaml $(DESTDIR)$(DOCDIR)/policy.example.yaml
	install -m 0644 policies/README.md $(DESTDIR)$(DOCDIR)/policy-format.md

uninstall:
	-$(BINDIR)/carwall unload 2>/dev/null
	rm -f $(DESTDIR)$(SBINDIR)/carwalld $(DESTDIR)$(BINDIR)/carwall
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-san build-fuzz

$(BUILD) $(BUILD)/obj $(BUILD)/tests build-fuzz:
	$(Q)mkdir -p $@

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d)

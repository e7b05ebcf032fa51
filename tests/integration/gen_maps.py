#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Helpers of test_reload_writes_exact.sh.

gen_maps.py policy SEED VARIANT OUT: a policy of 4 apps and about 300 rules (IPv4 and IPv6 hosts
and prefixes, port lists and ranges, tcp/udp/any, a host name), VARIANT 0..4 of it: 0 the base;
1 some of its last rules with other destinations, ports or protocols, and some added after them;
2 more of them changed, the ones 1 added dropped and others added; 3 a third of 0; 4 twice 0.
Deterministic for one SEED.

gen_maps.py dump PIN_DIR: the policy maps' entries of each generation, one line each, the
generation left out of the key ("MAP KEYHEX VALHEX", sorted), into two sections "gen 0" and
"gen 1"; and the active generation on the first line ("active N", from cw_state).
"""
import json
import random
import subprocess
import sys

APPS = ["mediaplayer", "navigation", "telemetry", "voice"]

# Where each policy map's key holds the generation: (byte offset, "u32" or "scope": bit 31).
GEN_AT = {
    "cw_cgroups": (8, "u32"),
    "cw_dst4": (4, "scope"),
    "cw_dst6": (4, "scope"),
    "cw_ports": (4, "scope"),
    "cw_hosts": (0, "scope"),
    "cw_names": (0, "scope"),
    "cw_resolvers": (0, "u32"),
    "cw_home4": (4, "u32"),
    "cw_home6": (4, "u32"),
}


def rule(rng, i):
    kind = i % 5
    if kind == 0:
        to = "198.18.%d.%d" % (i // 250 % 250, i % 250 + 1)
    elif kind == 1:
        to = "10.%d.%d.0/24" % (i // 250 % 250, i % 250)
    elif kind == 2:
        to = "2001:db8:%x::%x" % (i // 60000 + 1, i % 60000 + 1)
    elif kind == 3:
        to = "2001:db8:%x:%x::/64" % (i // 60000 + 0x100, i % 60000)
    else:
        to = "svc%d.example.com" % i
    ports = rng.choice(["[443]", "[53, 123]", "[8443-8450]", "[5000-5100, 443]", "[80]"])
    proto = rng.choice(["tcp", "udp", "any"])
    return '      - to: "%s"\n        ports: %s\n        proto: %s\n' % (to, ports, proto)


def policy(seed, variant, out):
    base = list(range(300))
    # The last rules of the file (the last app's), where a change leaves the ids of every rule
    # and port set before it as they are: the reloads between such policies write a little.
    last = sorted(i for i in base if i % len(APPS) == len(APPS) - 1)[-12:]
    tag = {}
    if variant == 1:
        tag = {i: 1 for i in last[:5]}
        base += [303, 307, 311]
    elif variant == 2:
        tag = {i: 1 if i in last[:5] else 2 for i in last[:10]}
        base += [315, 319]
    elif variant == 3:
        base = base[::3]
    elif variant == 4:
        base = list(range(600))
    texts = {i: rule(random.Random(seed * 1000 + i + 100000 * tag.get(i, 0)), i) for i in base}
    lines = ["version: 1\n", "resolvers: [192.0.2.53]\n", "apps:\n"]
    for a, app in enumerate(APPS):
        lines.append("  %s:\n    allow:\n" % app)
        mine = [i for i in base if i % len(APPS) == a]
        lines += [texts[i] for i in mine] if mine else ['      - to: "198.51.100.1"\n']
    with open(out, "w") as f:
        f.write("".join(lines))


def hexbytes(v):
    return "".join("%02x" % int(b, 16) for b in v)


def dump(pin_dir):
    # One bpftool for every map (a batch): fewer processes on a busy machine.
    maps = ["cw_state"] + list(GEN_AT)
    batch = "".join("map dump pinned %s/maps/%s\n" % (pin_dir, m) for m in maps)
    out = subprocess.run(["bpftool", "-j", "batch", "file", "/dev/stdin"], input=batch,
                         check=True, capture_output=True, text=True).stdout
    dumps = {m: r["output"] for m, r in zip(maps, json.loads(out))}
    active = int(dumps["cw_state"][0]["value"][0], 16) & 1  # active_gen, little endian
    gens = {0: [], 1: []}
    for m, (off, how) in GEN_AT.items():
        for e in dumps[m]:
            key = bytearray(int(b, 16) for b in e["key"])
            word = int.from_bytes(key[off:off + 4], "little")
            if how == "u32":
                gen, word = word, 0
            else:
                gen, word = word >> 31, word & 0x7FFFFFFF
            key[off:off + 4] = word.to_bytes(4, "little")
            gens[gen].append("%s %s %s" % (m, key.hex(), hexbytes(e["value"])))
    print("active %d" % active)
    for g in (0, 1):
        print("gen %d" % g)
        for line in sorted(gens[g]):
            print(line)


if __name__ == "__main__":
    if sys.argv[1] == "policy":
        policy(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        sys.exit("usage: gen_maps.py policy SEED VARIANT OUT | dump PIN_DIR")

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""
Write the seed corpus of tests/fuzz/fuzz_dns.c (tests/fuzz/corpus/dns/): DNS messages as resolvers
send them (systemd-resolved's stub, a CDN's chain of CNAMEs), compressed the way servers compress
(every name points at the first copy of its longest known suffix), and a few hostile ones.
Deterministic; no network.

With --dnsmasq, also the answers of a real dnsmasq (Debian's dnsmasq-base) started on the loopback
of a network namespace of its own (unshare -n; root), to files named dnsmasq-*.bin: what a real
encoder writes, which tests/dns/test_dns.c requires to be learnable.

Usage: scripts/make-dns-corpus.py [--dnsmasq] [DIR]
"""
import ipaddress
import os
import socket
import subprocess
import struct
import sys
import time

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, OPT, RRSIG, HTTPS = 1, 2, 5, 6, 12, 15, 16, 28, 41, 46, 65
IN = 1


class Msg:
    def __init__(self, ident, flags):
        self.ident, self.flags = ident, flags
        self.sections = [[], [], [], []]
        self.names = {}  # lowercased suffix -> offset of its first copy
        self.buf = b""

    def name(self, text, compress=True):
        labels = [l for l in text.split(".") if l]
        out = b""
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            if compress and suffix in self.names:
                return out + struct.pack(">H", 0xC000 | self.names[suffix])
            if len(self.buf) + len(out) < 0x3FFF:
                self.names.setdefault(suffix, len(self.buf) + len(out))
            out += bytes([len(labels[i])]) + labels[i].encode()
        return out + b"\0"

    def build(self, question, answers=(), authority=(), additional=(), edns=False):
        self.buf = struct.pack(">HHHHHH", self.ident, self.flags, 1 if question else 0,
                               len(answers), len(authority), len(additional) + (1 if edns else 0))
        if question:
            qname, qtype = question
            self.buf += self.name(qname) + struct.pack(">HH", qtype, IN)
        for section in (answers, authority, additional):
            for owner, rtype, ttl, data in section:
                self.buf += self.name(owner) + struct.pack(">HHI", rtype, IN, ttl)
                rdata = self.rdata(rtype, data)
                self.buf += struct.pack(">H", len(rdata)) + rdata
        if edns:
            self.buf += b"\0" + struct.pack(">HHIH", OPT, 1232, 0, 0)
        return self.buf

    def rdata(self, rtype, data):
        if rtype == A:
            return ipaddress.IPv4Address(data).packed
        if rtype == AAAA:
            return ipaddress.IPv6Address(data).packed
        if rtype in (CNAME, NS, PTR):
            start = len(self.buf) + 2
            saved, self.buf = self.buf, self.buf + b"\0\0"
            out = self.name(data)
            self.buf = saved
            del start
            return out
        if rtype == SOA:
            mname, rname = data
            saved, self.buf = self.buf, self.buf + b"\0\0"
            out = self.name(mname)
            self.buf += out
            out2 = self.name(rname)
            self.buf = saved
            return out + out2 + struct.pack(">IIIII", 2026113001, 7200, 3600, 1209600, 300)
        return data


RESP = 0x8180


def msg(flags=RESP, ident=0x1234, **kw):
    return Msg(ident, flags).build(**kw)


def seeds():
    soa = ("oem.example", 0, SOA, 300, ("ns1.oem.example", "hostmaster.oem.example"))
    soa = (soa[0], soa[2], soa[3], soa[4])
    yield "a-two-records", msg(question=("tiles.oem.example", A), edns=True, answers=[
        ("tiles.oem.example", A, 300, "198.51.100.20"),
        ("tiles.oem.example", A, 300, "198.51.100.21")])
    yield "aaaa-two-records", msg(question=("tiles.oem.example", AAAA), edns=True, answers=[
        ("tiles.oem.example", AAAA, 300, "2001:db8::20"),
        ("tiles.oem.example", AAAA, 300, "2001:db8::21")])
    yield "cname-cdn-chain", msg(question=("maps.oem.example", A), answers=[
        ("maps.oem.example", CNAME, 3600, "maps.oem.example.cdn.provider.example"),
        ("maps.oem.example.cdn.provider.example", CNAME, 60, "d7f3a.edge.provider.example"),
        ("d7f3a.edge.provider.example", A, 20, "198.51.100.70"),
        ("d7f3a.edge.provider.example", A, 20, "198.51.100.71"),
        ("d7f3a.edge.provider.example", A, 20, "198.51.100.72"),
        ("d7f3a.edge.provider.example", A, 20, "198.51.100.73")])
    yield "cname-chain-aaaa", msg(question=("maps.oem.example", AAAA), answers=[
        ("maps.oem.example", CNAME, 3600, "maps.oem.example.cdn.provider.example"),
        ("maps.oem.example.cdn.provider.example", CNAME, 60, "d7f3a.edge.provider.example"),
        ("d7f3a.edge.provider.example", AAAA, 20, "2001:db8:70::1"),
        ("d7f3a.edge.provider.example", AAAA, 20, "2001:db8:70::2")])
    yield "cname-out-of-order", msg(question=("maps.oem.example", A), answers=[
        ("d7f3a.edge.provider.example", A, 20, "198.51.100.70"),
        ("maps.oem.example", CNAME, 3600, "d7f3a.edge.provider.example")])
    yield "mixed-case-0x20", msg(question=("TiLeS.oEm.ExAmPlE", A), answers=[
        ("TiLeS.oEm.ExAmPlE", A, 300, "198.51.100.20")])
    yield "dns64-synthesized", msg(question=("tiles.oem.example", AAAA), answers=[
        ("tiles.oem.example", AAAA, 300, "64:ff9b::c633:6414")])
    yield "nxdomain-soa", msg(flags=RESP | 3, question=("nothere.oem.example", A),
                              authority=[soa])
    yield "nodata-soa", msg(question=("tiles.oem.example", AAAA), authority=[soa], edns=True)
    yield "servfail", msg(flags=RESP | 2, question=("tiles.oem.example", A))
    yield "refused", msg(flags=RESP | 5, question=("tiles.oem.example", A))
    yield "truncated-tc", msg(flags=RESP | 0x0200, question=("big.oem.example", A))
    yield "query-edns", msg(flags=0x0120, question=("tiles.oem.example", A), edns=True)
    yield "glue-and-authority", msg(question=("tiles.oem.example", A), answers=[
        ("tiles.oem.example", A, 300, "198.51.100.20")], authority=[
        ("oem.example", NS, 86400, "ns1.oem.example"),
        ("oem.example", NS, 86400, "ns2.tracker.example")], additional=[
        ("ns1.oem.example", A, 86400, "198.51.100.53"),
        ("ns2.tracker.example", A, 86400, "203.0.113.53"),
        ("ns2.tracker.example", AAAA, 86400, "2001:db8::53")])
    yield "answer-for-other-name", msg(question=("tiles.oem.example", A), answers=[
        ("tiles.oem.example", A, 300, "198.51.100.20"),
        ("tracker.example", A, 300, "203.0.113.7")])
    yield "many-addresses", msg(question=("pool.oem.example", A), answers=[
        ("pool.oem.example", A, 60, "198.51.100.%d" % i) for i in range(1, 25)])
    yield "dnssec-rrsig", msg(question=("tiles.oem.example", A), answers=[
        ("tiles.oem.example", A, 300, "198.51.100.20"),
        ("tiles.oem.example", RRSIG, 300, bytes(range(40)))])
    yield "https-question", msg(question=("tiles.oem.example", HTTPS), answers=[
        ("tiles.oem.example", HTTPS, 300, b"\0\1\0\0\1\0\3\2h2")])
    yield "ptr-question", msg(question=("20.100.51.198.in-addr.arpa", PTR), answers=[
        ("20.100.51.198.in-addr.arpa", PTR, 300, "tiles.oem.example")])
    yield "mx-question", msg(question=("oem.example", MX), answers=[
        ("oem.example", MX, 300, b"\0\x0a\4mail\xc0\x0c")])
    yield "txt-ttl-high-bit", msg(question=("tiles.oem.example", A), answers=[
        ("tiles.oem.example", A, 0x80000010, "198.51.100.20"),
        ("tiles.oem.example", TXT, 300, b"\x05hello")])
    long = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    yield "name-255", msg(question=(long, A), answers=[(long, A, 5, "198.51.100.1")])
    deep = ".".join("l%d" % i for i in range(32))
    yield "labels-32", msg(question=(deep, A), answers=[(deep, A, 5, "198.51.100.1")])
    # Hostile: a pointer to itself, a forward pointer, a lying count, an oversized rdlength.
    base = msg(question=("tiles.oem.example", A), answers=[
        ("tiles.oem.example", A, 300, "198.51.100.20")])
    self_ptr = bytearray(base)
    at = 12 + 19 + 4
    self_ptr[at:at + 2] = struct.pack(">H", 0xC000 | at)
    yield "hostile-pointer-self", bytes(self_ptr)
    fwd = bytearray(base)
    fwd[12:12 + 19] = struct.pack(">H", 0xC000 | 12 + 19 + 4) + b"\0" * 17
    yield "hostile-pointer-forward", bytes(fwd)
    lying = bytearray(base)
    lying[6:8] = struct.pack(">H", 9)
    yield "hostile-lying-ancount", bytes(lying)
    big = bytearray(base)
    big[-6:-4] = struct.pack(">H", 0xFFFF)
    yield "hostile-rdlength", bytes(big)


DNSMASQ_ARGS = [
    "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--user=root",
    "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--pid-file=",
    "--local=/oem.example/", "--local=/cdn.example/",
    "--host-record=tiles.oem.example,198.51.100.20,2001:db8::20",
    "--cname=maps.oem.example,maps.edge.cdn.example",
    "--cname=maps.edge.cdn.example,e1.g.cdn.example",
    "--host-record=e1.g.cdn.example,198.51.100.70,2001:db8::70",
] + ["--host-record=pool.oem.example,198.51.100.%d" % i for i in range(1, 41)]

# (file name, question name, type, EDNS buffer size or 0)
DNSMASQ_QUERIES = [
    ("dnsmasq-a", "tiles.oem.example", A, 1232),
    ("dnsmasq-aaaa", "tiles.oem.example", AAAA, 1232),
    ("dnsmasq-mixed-case", "TiLeS.OeM.eXaMpLe", A, 0),
    ("dnsmasq-cname-chain-a", "maps.oem.example", A, 1232),
    ("dnsmasq-cname-chain-aaaa", "maps.oem.example", AAAA, 0),
    ("dnsmasq-many-a", "pool.oem.example", A, 1232),
    ("dnsmasq-tc", "pool.oem.example", A, 0),
    ("dnsmasq-nxdomain", "nothere.oem.example", A, 0),
    ("dnsmasq-nodata", "pool.oem.example", AAAA, 0),
]


def query(name, qtype, edns):
    q = struct.pack(">HHHHHH", 0x2a2a, 0x0100, 1, 0, 0, 1 if edns else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, IN)
    if edns:
        q += b"\0" + struct.pack(">HHIH", OPT, edns, 0, 0)
    return q


def dnsmasq_inside(out):
    """Run in a fresh network namespace: bring up lo, start dnsmasq, ask, stop it."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    proc = subprocess.Popen(["dnsmasq"] + DNSMASQ_ARGS)
    try:
        for name, qname, qtype, edns in DNSMASQ_QUERIES:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1.0)
            for attempt in range(20):  # dnsmasq binds within a second
                try:
                    sock.sendto(query(qname, qtype, edns), ("127.0.0.1", 53))
                    data = sock.recv(65535)
                    break
                except (socket.timeout, ConnectionRefusedError):
                    time.sleep(0.1)
            else:
                sys.exit("dnsmasq does not answer")
            sock.close()
            with open(os.path.join(out, name + ".bin"), "wb") as f:
                f.write(data)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--dnsmasq-inside":
        dnsmasq_inside(args[1])
        return
    use_dnsmasq = bool(args) and args[0] == "--dnsmasq"
    if use_dnsmasq:
        args = args[1:]
    out = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus", "dns")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    if use_dnsmasq:
        subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                        "--dnsmasq-inside", out], check=True)


if __name__ == "__main__":
    main()

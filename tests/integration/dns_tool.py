#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""DNS client, crafted responder and resolve-then-connect loop for tests/integration/test_names*.sh.

  dns_tool.py query --server ADDR [--port 53] [--tcp] [--type A|AAAA] NAME
      One query over plain UDP (or TCP), the name sent as given (mixed case stays mixed).
      Prints "addr ADDR" per A/AAAA record of the answer section, then "rcode N tc N".
      Exit 0 when an answer came back, 2 otherwise.
  dns_tool.py serve --bind ADDR --port P --mode MODE --ready FILE
      A crafted responder (UDP) that answers every query; MODE:
        spoof       the question's name -> 203.0.113.7 (a tracker)
        additional  the question's name -> 198.51.100.20 in the answer, and records of other
                    names -> 203.0.113.7 in the answer (owner outside the chain) and in the
                    additional section
  dns_tool.py listen --port P --ready FILE --seconds S
      A UDP socket bound to port P (IPv4) that receives one datagram without asking anything,
      waiting S seconds at most; prints "received N" (N: 0 or 1).
  dns_tool.py answer --source ADDR --sport P --to ADDR --dport P NAME IP
      Sends one unsolicited, well-formed answer "NAME A IP" from ADDR:P (both must be local).
  dns_tool.py loop --count N --seconds S --port P --token T NAME...
      N times: getaddrinfo(NAME) through the system resolver (round robin over the NAMEs),
      then a TCP connect to the first IPv4 address and a flowprobe exchange ("T\\n" -> "OK T").
      Prints "loops N ok N refused N other N"; exit 0 when every loop was ok.
"""
import argparse
import ipaddress
import socket
import struct
import sys
import time

T_A, T_AAAA, T_CNAME = 1, 28, 5


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def read_name(msg, off):
    """The name at off (compression followed) and the offset after it."""
    labels, end, jumps = [], None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 32:
                raise ValueError("pointer loop")
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def build_query(name, qtype, qid):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)


def parse_answers(msg):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    addrs = []
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == T_A and rdlen == 4:
            addrs.append(str(ipaddress.IPv4Address(rdata)))
        elif rtype == T_AAAA and rdlen == 16:
            addrs.append(str(ipaddress.IPv6Address(rdata)))
    return flags, addrs


def cmd_query(a):
    family = socket.AF_INET6 if ":" in a.server else socket.AF_INET
    qtype = T_AAAA if a.type == "AAAA" else T_A
    q = build_query(a.name, qtype, 0x1234)
    try:
        if a.tcp:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect((a.server, a.port))
            s.sendall(struct.pack("!H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            msg = buf[2:]
        else:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(q, (a.server, a.port))
            msg, _ = s.recvfrom(4096)
    except OSError as e:
        print(f"error {e.errno} {e}")
        return 1 if e.errno in (1, 13) else 2
    flags, addrs = parse_answers(msg)
    for ad in addrs:
        print(f"addr {ad}")
    print(f"rcode {flags & 0xF} tc {(flags >> 9) & 1}")
    return 0


def rr(owner_ptr_or_name, rtype, ttl, rdata):
    owner = owner_ptr_or_name if isinstance(owner_ptr_or_name, bytes) else encode_name(owner_ptr_or_name)
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def cmd_serve(a):
    family = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    with open(a.ready, "w") as f:
        f.write("ready\n")
    tracker = socket.inet_aton("203.0.113.7")
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 12:
            continue
        qid = struct.unpack("!H", q[:2])[0]
        _, qend = read_name(q, 12)
        question = q[12:qend + 4]
        qptr = b"\xc0\x0c"
        if a.mode == "spoof":
            answers = [rr(qptr, T_A, 300, tracker)]
            additional = []
        else:
            answers = [rr(qptr, T_A, 300, socket.inet_aton("198.51.100.20")),
                       rr("tracker.evil.example", T_A, 300, tracker)]
            additional = [rr("cdn.evil.example", T_A, 300, tracker)]
        hdr = struct.pack("!HHHHHH", qid, 0x8180, 1, len(answers), 0, len(additional))
        s.sendto(hdr + question + b"".join(answers) + b"".join(additional), peer)


def cmd_listen(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.port))
    s.settimeout(0.1)
    with open(a.ready, "w") as f:
        f.write("ready\n")
    n = 0
    deadline = time.monotonic() + a.seconds
    while n == 0 and time.monotonic() < deadline:
        try:
            s.recvfrom(4096)
            n += 1
        except socket.timeout:
            pass
    print(f"received {n}")
    return 0


def cmd_answer(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.source, a.sport))
    question = encode_name(a.name) + struct.pack("!HH", T_A, 1)
    hdr = struct.pack("!HHHHHH", 0x4242, 0x8180, 1, 1, 0, 0)
    s.sendto(hdr + question + rr(b"\xc0\x0c", T_A, 300, socket.inet_aton(a.ip)), (a.to, a.dport))
    return 0


def cmd_loop(a):
    ok = refused = other = 0
    deadline = time.monotonic() + a.seconds
    i = 0
    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        name = a.names[i % len(a.names)]
        try:
            infos = socket.getaddrinfo(name, a.port, socket.AF_INET, socket.SOCK_STREAM)
            addr = infos[0][4][0]
            s = socket.create_connection((addr, a.port), timeout=2)
            s.sendall(f"{a.token}\n".encode())
            reply = s.recv(256)
            s.close()
            if reply.startswith(f"OK {a.token}".encode()):
                ok += 1
            else:
                other += 1
        except PermissionError:
            refused += 1
        except OSError as e:
            other += 1
            if other <= 3:
                print(f"loop {i}: {name}: {e}", file=sys.stderr)
    loops = ok + refused + other
    print(f"loops {loops} ok {ok} refused {refused} other {other}")
    return 0 if loops and ok == loops else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("query")
    q.add_argument("--server", required=True)
    q.add_argument("--port", type=int, default=53)
    q.add_argument("--tcp", action="store_true")
    q.add_argument("--type", default="A", choices=["A", "AAAA"])
    q.add_argument("name")
    s = sub.add_parser("serve")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--mode", required=True, choices=["spoof", "additional"])
    s.add_argument("--ready", required=True)
    lp = sub.add_parser("loop")
    lp.add_argument("--count", type=int, required=True)
    lp.add_argument("--seconds", type=float, required=True)
    lp.add_argument("--port", type=int, required=True)
    lp.add_argument("--token", required=True)
    lp.add_argument("names", nargs="+")
    li = sub.add_parser("listen")
    li.add_argument("--port", type=int, required=True)
    li.add_argument("--ready", required=True)
    li.add_argument("--seconds", type=float, required=True)
    an = sub.add_parser("answer")
    an.add_argument("--source", required=True)
    an.add_argument("--sport", type=int, required=True)
    an.add_argument("--to", required=True)
    an.add_argument("--dport", type=int, required=True)
    an.add_argument("name")
    an.add_argument("ip")
    a = p.parse_args()
    return {"query": cmd_query, "serve": cmd_serve, "loop": cmd_loop, "listen": cmd_listen,
            "answer": cmd_answer}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

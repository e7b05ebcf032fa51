#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Traffic for test_consent_no_window.sh.

    consent_traffic.py send MODE ADDR PORT OUT STOPFILE   app side: one flow after another
    consent_traffic.py serve ADDR PORT OUT                "internet" side: log what arrives

send: MODE udp (sendto on one unconnected socket: each datagram judged by sendmsg), udp-connected
(one connect, then send: judged by the egress program, its cached verdict tied to the epoch) or
tcp (a new connection per flow). Writes one line per flow to OUT, flushed at once:
"SEQ START_NS END_NS RESULT" (CLOCK_MONOTONIC, RESULT ok or the errno name), every 2 ms, until
STOPFILE exists, at most 20000 flows or 60 s.

serve: logs "MODE SEQ" (the sender's) per datagram and per connection's line to OUT (flushed).
"""
import errno
import os
import selectors
import socket
import sys
import time

MAX_FLOWS = 20000
MAX_SECONDS = 60
PERIOD = 0.002


def send(mode, addr, port, out, stopfile):
    deadline = time.monotonic() + MAX_SECONDS
    udp = None
    if mode in ("udp", "udp-connected"):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if mode == "udp-connected":
            udp.connect((addr, port))
    with open(out, "w", buffering=1) as f:
        for seq in range(MAX_FLOWS):
            if os.path.exists(stopfile) or time.monotonic() > deadline:
                break
            payload = f"{mode} {seq}\n".encode()
            start = time.monotonic_ns()
            result = "ok"
            try:
                if mode == "udp":
                    udp.sendto(payload, (addr, port))
                elif mode == "udp-connected":
                    udp.send(payload)
                else:
                    with socket.create_connection((addr, port), timeout=2) as s:
                        s.sendall(payload)
            except OSError as e:
                result = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
            end = time.monotonic_ns()
            f.write(f"{seq} {start} {end} {result}\n")
            time.sleep(PERIOD)


def serve(addr, port, out):
    sel = selectors.DefaultSelector()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    u.bind((addr, port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(128)
    sel.register(u, selectors.EVENT_READ, "udp")
    sel.register(t, selectors.EVENT_READ, "listen")
    deadline = time.monotonic() + 10 * MAX_SECONDS
    with open(out, "w", buffering=1) as f:
        f.write("ready\n")
        while time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                if key.data == "udp":
                    data = u.recv(256).decode(errors="replace").split()
                    if len(data) == 2:
                        f.write(f"{data[0]} {data[1]}\n")
                elif key.data == "listen":
                    c, _ = t.accept()
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, b"")
                else:
                    c = key.fileobj
                    try:
                        chunk = c.recv(256)
                    except OSError:
                        chunk = b""
                    buf = key.data + chunk
                    if chunk and not buf.endswith(b"\n"):
                        sel.modify(c, selectors.EVENT_READ, buf)
                        continue
                    sel.unregister(c)
                    c.close()
                    data = buf.decode(errors="replace").split()
                    if len(data) == 2:
                        f.write(f"{data[0]} {data[1]}\n")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    elif len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Clients of carwalld's control socket that misbehave, for tests/adversarial/test_control_abuse.sh.

  control_client.py SOCKET abuse [--silent N] [--half N] [--half-install N] [--noread N]
                                 [--wait-s S] [--ready-s R]
      Opens the connections: silent ones send nothing; half ones send half a request line;
      half-install ones announce a bundle and send a few bytes of it; noread ones ask for
      `stats` and never read the reply. Prints "ready" once all have sent what they send and
      the agent has started every noread reply (within R seconds, default 30, else "not
      ready" and exit code 1), then
      waits S seconds (default 3) and checks, without blocking, which ones the agent has
      closed: prints "dropped K of N" and, for each noread client, "noread got=BYTES
      complete=0|1" (complete: the reply arrived whole, up to its final newline).
      Exit code 0 when every connection was dropped, 1 otherwise.

  control_client.py SOCKET request LINE [--timeout-s S]
      Sends LINE and a newline (nothing else, as an old client would), prints the reply or
      "timeout". Exit code 0 with a reply, 1 on time-out.

Every wait is bounded; nothing here runs longer than its --ready-s, --wait-s
(or --timeout-s) and a second.
"""
import argparse
import select
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
    return s


def drain(s, limit_s):
    """Reads what is there until EOF (True) or limit_s without data (False)."""
    got = b""
    end = time.monotonic() + limit_s
    s.setblocking(False)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got, False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return got, False
        try:
            chunk = s.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            return got, True
        except BlockingIOError:
            continue
        if not chunk:
            return got, True
        got += chunk


def abuse(args):
    conns = []  # (kind, socket)
    for _ in range(args.silent):
        conns.append(("silent", connect(args.socket)))
    for _ in range(args.half):
        s = connect(args.socket)
        s.sendall(b"stat")
        conns.append(("half", s))
    for _ in range(args.half_install):
        s = connect(args.socket)
        s.sendall(b"install 1000\n" + b"x" * 10)
        conns.append(("half-install", s))
    for _ in range(args.noread):
        s = connect(args.socket)
        s.sendall(b"stats\n")
        conns.append(("noread", s))
    # Ready once the agent has started every noread client's reply (bytes wait in its socket,
    # seen with MSG_PEEK, which reads nothing): from then on every client is parked, costs the
    # agent no work, and only waits to be dropped. Before that the agent is busy building the
    # replies: on an emulated, loaded guest that alone can take seconds, which is CPU, not
    # the agent waiting on a client.
    deadline = time.monotonic() + args.ready_s
    for kind, s in conns:
        if kind != "noread":
            continue
        while True:
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
            if r:
                try:
                    if s.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
            if time.monotonic() >= deadline:
                print("not ready: a noread client got no byte in %.0f s" % args.ready_s,
                      flush=True)
                return 1
    print("ready", flush=True)
    time.sleep(args.wait_s)
    dropped = 0
    lines = []
    for kind, s in conns:
        got, eof = drain(s, 0.2)
        dropped += eof
        if kind == "noread":
            complete = got.endswith(b"\n")
            lines.append("noread got=%d complete=%d" % (len(got), complete))
        s.close()
    print("dropped %d of %d" % (dropped, len(conns)))
    for line in lines:
        print(line)
    return 0 if dropped == len(conns) else 1


def request(args):
    try:
        s = connect(args.socket)
        s.sendall(args.line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("error %s" % e)
        return 1
    got, eof = drain(s, args.timeout_s)
    if not eof:
        print("timeout")
        return 1
    print(got.decode(errors="replace").strip())
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("socket")
    sub = p.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("abuse")
    a.add_argument("--silent", type=int, default=0)
    a.add_argument("--half", type=int, default=0)
    a.add_argument("--half-install", type=int, default=0)
    a.add_argument("--noread", type=int, default=0)
    a.add_argument("--wait-s", type=float, default=3)
    a.add_argument("--ready-s", type=float, default=30)
    r = sub.add_parser("request")
    r.add_argument("line")
    r.add_argument("--timeout-s", type=float, default=2)
    args = p.parse_args()
    return abuse(args) if args.mode == "abuse" else request(args)


if __name__ == "__main__":
    sys.exit(main())

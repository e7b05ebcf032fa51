#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Socket tricks an app could play, for tests/adversarial/test_cached_verdicts.sh.

  sockpeer.py record PORT LOG
      A TCP server (in the test's "internet" namespace): logs every line received, as
      "PEER LINE", flushed at once. Prints "ready".
  sockpeer.py app DST PORT [--source ADDR] [--reuseport-listen LPORT] [--leave-cgroup PROCS]
      A TCP connection to DST:PORT (an app's, or a client's in the "internet"), driven by
      commands on stdin, one per line:
        send TOKEN   send "TOKEN\\n"; prints "sent TOKEN" or "error ERRNO-NAME"
        quit
      Every line received is printed as "got LINE".
      --source ADDR: bind to this local address first.
      --reuseport-listen LPORT: first listen on 0.0.0.0:LPORT with SO_REUSEPORT, and bind the
        connection to the same port, so that it shares its local port with a listener of the
        app's own (it looks accepted to whoever guesses from ports).
      --leave-cgroup PROCS: once connected, move this process to the cgroup whose cgroup.procs
        is PROCS (the socket stays the app's; no process of the app is left to find it).
      Prints "connected LOCALPORT" or "error ERRNO-NAME" first.
  sockpeer.py accept PORT
      An app's listener on PORT: accepts one connection, echoes each line back as "OK LINE",
      prints "accepted PEER" and "echoed LINE" or "error ERRNO-NAME".
Every operation is bounded by a timeout; everything printed is flushed at once.
"""
import errno
import socket
import sys

TIMEOUT_S = 10


def say(*words):
    print(*words, flush=True)


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def record(port, log):
    srv = socket.create_server(("0.0.0.0", port), reuse_port=False)
    srv.settimeout(None)
    say("ready")
    with open(log, "a", buffering=1) as out:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(srv, selectors.EVENT_READ)
        bufs = {}
        while True:
            for key, _ in sel.select(timeout=120):
                s = key.fileobj
                if s is srv:
                    c, peer = srv.accept()
                    c.setblocking(False)
                    bufs[c] = (peer[0], b"")
                    sel.register(c, selectors.EVENT_READ)
                    continue
                peer, buf = bufs[s]
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    del bufs[s]
                    continue
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    out.write("%s %s\n" % (peer, line.decode(errors="replace")))
                bufs[s] = (peer, buf)


def print_received(c):
    buf = b""
    while True:
        try:
            data = c.recv(4096)
        except OSError:
            return
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            say("got", line.decode(errors="replace"))


def app(dst, port, source=None, reuseport_listen=None, leave_cgroup=None):
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    listener = None
    try:
        c = socket.socket(family, socket.SOCK_STREAM)
        c.settimeout(TIMEOUT_S)
        if source:
            c.bind((source, 0))
        if reuseport_listen:
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(("", reuseport_listen))
            listener.listen(8)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            c.bind(("", reuseport_listen))
        c.connect((dst, port))
    except OSError as e:
        say("error", err_name(e))
        return
    if leave_cgroup:
        with open(leave_cgroup, "w") as f:
            f.write("0\n")
    say("connected", c.getsockname()[1])
    c.settimeout(None)
    import threading
    threading.Thread(target=print_received, args=(c,), daemon=True).start()
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "send":
            try:
                c.sendall((words[1] + "\n").encode())
                say("sent", words[1])
            except OSError as e:
                say("error", err_name(e))


def accept(port):
    srv = socket.create_server(("0.0.0.0", port))
    srv.settimeout(TIMEOUT_S * 3)
    say("ready")
    try:
        c, peer = srv.accept()
    except OSError as e:
        say("error", err_name(e))
        return
    say("accepted", peer[0])
    c.settimeout(TIMEOUT_S * 6)
    buf = b""
    while True:
        try:
            data = c.recv(4096)
        except OSError as e:
            say("error", err_name(e))
            return
        if not data:
            say("closed")
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                c.sendall(b"OK " + line + b"\n")
                say("echoed", line.decode(errors="replace"))
            except OSError as e:
                say("error", err_name(e))


def main(argv):
    if len(argv) >= 3 and argv[0] == "record":
        record(int(argv[1]), argv[2])
    elif len(argv) >= 3 and argv[0] == "app":
        opts = dict(zip(argv[3::2], argv[4::2]))
        app(argv[1], int(argv[2]), opts.get("--source"),
            int(opts["--reuseport-listen"]) if "--reuseport-listen" in opts else None,
            opts.get("--leave-cgroup"))
    elif len(argv) >= 2 and argv[0] == "accept":
        accept(int(argv[1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

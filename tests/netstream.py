#!/usr/bin/env python3
"""A TCP client outside the checkpointed tree that streams a counted
sequence and checks its echo.

    netstream.py HOST PORT PROGRESS STOP

Connects once and sends the 32-bit big-endian integers 0, 1, 2, ...,
a little at a time, while reading the echo: every echoed byte must be the
next byte it sent (nothing lost, repeated or reordered). PROGRESS holds the
number of echoed bytes, rewritten as they come. Once the file STOP exists it
ends its stream (shutdown SHUT_WR), reads the rest of the echo until the
server closes, and prints one line: "PASS ..." (exit 0) or "FAIL: ..."
(exit 1). A connection reset, a reconnect, or 60 s without any echo while
data is outstanding fail.

STASIS_SABOTAGE=stream: once 64 KiB came back, one echoed byte is thrown
away unchecked, so the check must fail.
"""
import os
import select
import socket
import struct
import sys
import time

CHUNK = 256  # numbers per send (1 KiB)
INTERVAL = 0.005  # seconds between sends
STALL = 60.0


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def main():
    host, port, progress, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    sabotage = os.environ.get("STASIS_SABOTAGE") == "stream"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((host, port))
    local = s.getsockname()
    s.setblocking(False)
    print("connected from %s port %d" % (local[0], local[1]), flush=True)

    nxt = 0  # next number to send
    sent = 0  # bytes sent
    echoed = 0  # bytes echoed and checked
    pending = bytearray()  # chunk being sent
    outstanding = bytearray()  # sent, not yet echoed
    ended = False
    last_echo = time.monotonic()
    next_send = 0.0
    sabotaged = False
    while True:
        now = time.monotonic()
        if not ended and not pending and os.path.exists(stop):
            s.shutdown(socket.SHUT_WR)
            ended = True
        if not ended and not pending and now >= next_send:
            pending = bytearray(struct.pack(">%dI" % CHUNK, *range(nxt, nxt + CHUNK)))
            nxt += CHUNK
            next_send = now + INTERVAL
        want_w = [s] if pending else []
        r, w, _ = select.select([s], want_w, [], INTERVAL)
        if w:
            try:
                n = s.send(pending)
            except BlockingIOError:
                n = 0
            except OSError as e:
                fail("send after %d bytes: %s" % (sent, e))
            outstanding += pending[:n]
            del pending[:n]
            sent += n
        if r:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                fail("recv after %d echoed bytes: %s" % (echoed, e))
            if not data:
                break
            if sabotage and not sabotaged and echoed >= 65536:
                sabotaged = True
                data = data[1:]
            n = len(data)
            if n > len(outstanding):
                fail("%d bytes echoed at byte %d, only %d outstanding" % (n, echoed, len(outstanding)))
            if outstanding[:n] != data:
                at = next(i for i in range(n) if outstanding[i] != data[i])
                fail("echoed byte %d differs from the byte sent" % (echoed + at))
            del outstanding[:n]
            echoed += n
            last_echo = now
            with open(progress + ".tmp", "w") as f:
                f.write("%d\n" % echoed)
            os.replace(progress + ".tmp", progress)
        elif outstanding and now - last_echo > STALL:
            fail("no echo for %d s (%d bytes outstanding)" % (STALL, len(outstanding)))
        elif ended and not outstanding and now - last_echo > STALL:
            fail("the server did not close the connection")
    if pending or outstanding or echoed != sent:
        fail("the server closed with %d bytes sent, %d echoed" % (sent, echoed))
    print("PASS sent %d bytes, all echoed in order, one connection from port %d"
          % (sent, local[1]), flush=True)


if __name__ == "__main__":
    main()

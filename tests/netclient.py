#!/usr/bin/env python3
"""A client outside the checkpointed tree that holds one connection open
across the dump and the restore of a real server.

    netclient.py redis PORT GOFILE     redis-server on 127.0.0.1:PORT
    netclient.py http PORT GOFILE      an HTTP/1.1 server on 127.0.0.1:PORT

It connects once, does its first exchange, prints READY, and waits until
GOFILE exists (the server was dumped and restored meanwhile); then it does
the second exchange on the same connection and prints "PASS ..." (exit 0)
or "FAIL: ..." (exit 1).

redis: sets a data set (keys of several types, one value of 1 MiB) and
notes the connection's CLIENT ID; afterwards, on the same connection, the
CLIENT ID is the same and the data set reads back equal.
http: GET / with keep-alive; afterwards a second GET on the same
connection gets the same page.

STASIS_SABOTAGE=redis flushes the data set (from a second connection)
before the check; STASIS_SABOTAGE=http asks the server to close the
connection after the first response. The check must then fail.
"""
import os
import socket
import sys
import time


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def fill(self):
        try:
            d = self.s.recv(65536)
        except OSError as e:
            fail("recv: %s" % e)
        if not d:
            fail("the server closed the connection")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError as e:
            fail("send: %s" % e)


# ---- redis (RESP2)

def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_reply(c):
    ln = c.line()
    t, rest = ln[:1], ln[1:]
    if t in (b"+", b":"):
        return rest
    if t == b"-":
        fail("redis error: %s" % rest.decode(errors="replace"))
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        d = c.take(n + 2)
        return d[:-2]
    if t == b"*":
        n = int(rest)
        return [resp_reply(c) for _ in range(n)] if n >= 0 else None
    fail("bad redis reply %r" % ln)


def redis_call(c, *args):
    c.send(resp_cmd(*args))
    return resp_reply(c)


BIG = bytes((i * 131 + 7) % 256 for i in range(1 << 20))


def redis_state(c):
    return [
        redis_call(c, "GET", "stasis:str"),
        redis_call(c, "GET", "stasis:big"),
        redis_call(c, "LRANGE", "stasis:list", 0, -1),
        sorted(redis_call(c, "SMEMBERS", "stasis:set")),
        redis_call(c, "HGETALL", "stasis:hash"),
        redis_call(c, "ZRANGE", "stasis:zset", 0, -1, "WITHSCORES"),
        redis_call(c, "GET", "stasis:counter"),
        redis_call(c, "DBSIZE"),
    ]


def redis(port, gofile):
    c = Conn(port)
    redis_call(c, "SET", "stasis:str", "hello")
    redis_call(c, "SET", "stasis:big", BIG)
    redis_call(c, "RPUSH", "stasis:list", "a", "b", "c")
    redis_call(c, "SADD", "stasis:set", "x", "y", "z")
    redis_call(c, "HSET", "stasis:hash", "k1", "v1", "k2", "v2")
    redis_call(c, "ZADD", "stasis:zset", 1, "one", 2, "two")
    for _ in range(1000):
        redis_call(c, "INCR", "stasis:counter")
    cid = redis_call(c, "CLIENT", "ID")
    before = redis_state(c)
    print("READY", flush=True)
    wait_go(gofile)
    if os.environ.get("STASIS_SABOTAGE") == "redis":
        redis_call(Conn(port), "FLUSHALL")
    if redis_call(c, "CLIENT", "ID") != cid:
        fail("CLIENT ID changed: not the same connection")
    after = redis_state(c)
    if after != before:
        names = ["str", "big", "list", "set", "hash", "zset", "counter", "dbsize"]
        fail("the data set differs: %s" % ", ".join(n for n, a, b in zip(names, before, after) if a != b))
    if redis_call(c, "INCR", "stasis:counter") != b"1001":
        fail("INCR after the restore is not 1001")
    print("PASS same connection (client id %s), data set equal" % cid.decode(), flush=True)


# ---- http

def http_get(c, close=False):
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: %s\r\n\r\n"
           % (b"close" if close else b"keep-alive"))
    status = c.line()
    length = None
    while True:
        h = c.line()
        if not h:
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if length is None:
        fail("no Content-Length in the response")
    return status, c.take(length)


def http(port, gofile):
    c = Conn(port)
    first = http_get(c, close=os.environ.get("STASIS_SABOTAGE") == "http")
    if not first[0].startswith(b"HTTP/1.1 200"):
        fail("first response: %r" % first[0])
    print("READY", flush=True)
    wait_go(gofile)
    second = http_get(c)
    if second != first:
        fail("the second response differs: %r" % second[0])
    print("PASS two requests on one keep-alive connection", flush=True)


def wait_go(gofile):
    while not os.path.exists(gofile):
        time.sleep(0.01)


if __name__ == "__main__":
    mode, port, gofile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"redis": redis, "http": http}[mode](port, gofile)

#!/usr/bin/python3
"""bench/notify_load.py — the parts of bench/notify_run that need a program.

  notify_load.py tokens N JWT_KEY ISSUER AUDIENCE REDIS_PORT USER_IDS_FILE OUT
      mints an access token per user id (as core verifies them) and stores
      its session in Redis; writes "user_id token" lines to OUT.
  notify_load.py streams PORT TOKENS_FILE ROUNDS
      opens one Server-Sent Events stream per token, then ROUNDS times
      inserts one in-app row per user (psql, from the environment's PG*
      settings) and records, per stream, the delay from the INSERT's commit
      (psql returning) to the event's arrival. Prints the p50, p99 and max
      delay and the number of events seen.
"""
import json
import os
import selectors
import socket
import subprocess
import sys
import time
import uuid

import jwt


def tokens(n, key_file, issuer, audience, redis_port, ids_file, out):
    key = open(key_file).read()
    ids = [line.strip() for line in open(ids_file) if line.strip()][:int(n)]
    now = int(time.time())
    redis_cmds = []
    with open(out, "w") as f:
        for uid in ids:
            sid = str(uuid.uuid4())
            tok = jwt.encode({"iss": issuer, "aud": audience, "sub": uid, "role": "patient",
                              "sid": sid, "jti": str(uuid.uuid4()), "iat": now, "nbf": now,
                              "exp": now + 3600}, key, algorithm="RS256",
                             headers={"typ": "at+jwt"})
            f.write(f"{uid} {tok}\n")
            redis_cmds.append(f"SET bl:sess:{sid} {uid} EX 3600\n")
    subprocess.run(["redis-cli", "-p", str(redis_port)], input="".join(redis_cmds),
                   text=True, check=True, stdout=subprocess.DEVNULL)


def open_stream(port, token):
    """A stream, retried (as EventSource would) while a child is full."""
    for _ in range(50):
        try:
            return open_stream_once(port, token)
        except RuntimeError as e:
            if "503" not in str(e):
                raise
            time.sleep(0.2)
    raise RuntimeError("stream still refused after 50 tries")


def open_stream_once(port, token):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s.sendall((f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("stream closed before its head")
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status:
        s.close()
        raise RuntimeError(f"stream answered {status!r}")
    s.setblocking(False)
    return s


def streams(port, tokens_file, rounds):
    users = [line.split() for line in open(tokens_file) if line.strip()]
    sel = selectors.DefaultSelector()
    for uid, tok in users:
        sel.register(open_stream(port, tok), selectors.EVENT_READ, data=uid)
    time.sleep(1)
    delays = []
    for _ in range(int(rounds)):
        # drain what is pending (heartbeats), then one row per user
        for key, _ in sel.select(timeout=0):
            key.fileobj.recv(65536)
        ids = ",".join(f"'{uid}'" for uid, _ in users)
        subprocess.run(["psql", "-X", "-q", "-c",
                        "INSERT INTO notifications (user_id, channel, type, title, body) "
                        f"SELECT u, 'in_app', 'reminder.due', 'bench', 'bench' "
                        f"FROM unnest(ARRAY[{ids}]::uuid[]) u"], check=True)
        committed = time.time()
        waiting = {uid for uid, _ in users}
        deadline = committed + 10
        while waiting and time.time() < deadline:
            for key, _ in sel.select(timeout=0.5):
                data = key.fileobj.recv(65536)
                if b"event: notification" in data and key.data in waiting:
                    waiting.discard(key.data)
                    delays.append(max(0.0, time.time() - committed))
        time.sleep(0.5)
    delays.sort()
    n = len(delays)
    if not n:
        print("no events arrived")
        return
    pick = lambda q: delays[min(n - 1, int(q * n))]
    print(f"events: {n} of {len(users) * int(rounds)}; delay commit->event "
          f"p50 {pick(0.5) * 1000:.0f} ms, p99 {pick(0.99) * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"tokens": tokens, "streams": streams}[cmd](*args)

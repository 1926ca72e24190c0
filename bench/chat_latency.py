#!/usr/bin/python3
"""chat_latency.py - the delay from POST /chat/conversations/:id/messages to
the event on the other clients' open streams.

Usage: chat_latency.py BASE CONVERSATION SENDER_TOKEN LISTENER_TOKEN STREAMS MESSAGES

Opens STREAMS event streams of the conversation as the listener, then the
sender posts MESSAGES messages one after another (a short pause between
them); every stream's arrival time of every message counts. Prints p50,
p99 and max in milliseconds, and how many deliveries were missed.
"""

import http.client
import json
import selectors
import socket
import sys
import threading
import time
import urllib.parse


def open_stream(host, port, path, token):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (path, host, port, token)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("stream closed before its head")
        head += chunk
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise SystemExit("stream answered %s" % status.decode())
    s.setblocking(False)
    return s, head.split(b"\r\n\r\n", 1)[1]


def main():
    base, conv, sender, listener, nstreams, nmsgs = sys.argv[1:7]
    nstreams, nmsgs = int(nstreams), int(nmsgs)
    url = urllib.parse.urlsplit(base)
    host, port = url.hostname, url.port
    path = "/api/v1/chat/conversations/%s/events" % conv
    streams = [open_stream(host, port, path, listener) for _ in range(nstreams)]
    sent = {}
    arrivals = []
    done = threading.Event()

    def reader():
        sel = selectors.DefaultSelector()
        bufs = {}
        for i, (s, rest) in enumerate(streams):
            sel.register(s, selectors.EVENT_READ, i)
            bufs[i] = rest
        while not done.is_set():
            for key, _ in sel.select(timeout=0.2):
                i = key.data
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                now = time.monotonic()
                bufs[i] += data
                # Chunked framing aside, each event's data line is one JSON text.
                while b"\ndata: " in bufs[i]:
                    _, tail = bufs[i].split(b"\ndata: ", 1)
                    if b"\n" not in tail:
                        break
                    line, bufs[i] = tail.split(b"\n", 1)
                    try:
                        body = json.loads(line).get("body") or ""
                    except ValueError:
                        continue
                    if body.startswith("bench "):
                        arrivals.append((int(body[6:]), now))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(1.0)
    for n in range(nmsgs):
        body = json.dumps({"body": "bench %d" % n})
        # A connection per message, as clients mostly post: no keep-alive limit in play.
        conn = http.client.HTTPConnection(host, port, timeout=10)
        sent[n] = time.monotonic()
        conn.request("POST", "/api/v1/chat/conversations/%s/messages" % conv, body,
                     {"Content-Type": "application/json", "Authorization": "Bearer " + sender})
        r = conn.getresponse()
        r.read()
        conn.close()
        if r.status != 201:
            raise SystemExit("POST answered %d" % r.status)
        time.sleep(0.05)
    time.sleep(2.0)
    done.set()
    t.join()
    delays = sorted((at - sent[n]) * 1000.0 for n, at in arrivals if n in sent)
    expected = nstreams * nmsgs
    if not delays:
        raise SystemExit("no event arrived")
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
    print("streams %d, messages %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d of %d deliveries"
          % (nstreams, nmsgs, p(0.50), p(0.99), delays[-1], len(delays), expected))


if __name__ == "__main__":
    main()

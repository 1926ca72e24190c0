#!/usr/bin/python3
"""Mixed load through the cluster's front for bench/soak.

    soak_load.py FRONT_URL CA_FILE SECONDS WORKERS OUT_FILE

Registers WORKERS users, makes one public community they all join, then
runs WORKERS threads for SECONDS, each on its own keep-alive HTTPS
connection, picking by weight: logins, profile reads, feed reads, posts,
likes and reminder writes. Every request is one line of OUT_FILE:
"<epoch seconds> <operation> <status>" (status 0: no answer, connection
failed). Prints the requests/s of the run.
"""
import http.client
import json
import random
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

front, ca_file, seconds, workers, out_file = sys.argv[1:6]
seconds, workers = float(seconds), int(workers)
host = urllib.parse.urlsplit(front)
context = ssl.create_default_context(cafile=ca_file)
PASSWORD = "soak passphrase for the cluster 42"

WEIGHTS = [("login", 3), ("profile", 30), ("feed", 30), ("post", 10),
           ("like", 15), ("reminder", 12)]


class Client:
    def __init__(self):
        self.conn = None
        self.token = None

    def request(self, method, path, body=None):
        """(status, data); status 0 when the connection failed."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(host.hostname, host.port,
                                                        context=context, timeout=30)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                res = self.conn.getresponse()
                raw = res.read()
                if res.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                return res.status, data
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                # A keep-alive connection the front closed meanwhile: once more.
                if attempt == 2:
                    return 0, None
        return 0, None


def setup_user(client, email):
    client.request("POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD})
    status, data = client.request("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
    if status != 200:
        sys.exit("login failed during setup: %d" % status)
    client.token = data["data"]["access_token"]


def main():
    owner = Client()
    setup_user(owner, "soak-owner-%s@example.test" % uuid.uuid4())
    status, data = owner.request("POST", "/api/v1/communities",
                                 {"name": "Soak %s" % uuid.uuid4().hex[:8],
                                  "type": "general", "privacy": "public"})
    if status != 201:
        sys.exit("community not created: %d %s" % (status, data))
    cid = data["data"]["id"]
    posts = []
    for i in range(20):
        status, data = owner.request("POST", "/api/v1/communities/%s/posts" % cid,
                                     {"title": "seed %d" % i, "content": "seed post",
                                      "post_type": "discussion"})
        if status == 201:
            posts.append(data["data"]["id"])
    if not posts:
        sys.exit("no post created")

    clients = []
    for w in range(workers):
        c = Client()
        c.email = "soak-%d-%s@example.test" % (w, uuid.uuid4())
        setup_user(c, c.email)
        c.request("POST", "/api/v1/communities/%s/join" % cid)
        clients.append(c)

    lock = threading.Lock()
    out = open(out_file, "w")
    names = [n for n, _ in WEIGHTS]
    weights = [w for _, w in WEIGHTS]
    deadline = time.time() + seconds
    total = [0]

    def run(c):
        rnd = random.Random()
        lines = []
        while time.time() < deadline:
            op = rnd.choices(names, weights)[0]
            if op == "login":
                status, data = c.request("POST", "/api/v1/auth/login",
                                         {"email": c.email, "password": PASSWORD})
                if status == 200:
                    c.token = data["data"]["access_token"]
            elif op == "profile":
                status, _ = c.request("GET", "/api/v1/users/profile")
            elif op == "feed":
                status, _ = c.request("GET", "/api/v1/communities/%s/posts?per_page=20" % cid)
            elif op == "post":
                status, data = c.request("POST", "/api/v1/communities/%s/posts" % cid,
                                         {"title": "soak", "content": "a post under load",
                                          "post_type": "discussion"})
                if status == 201:
                    with lock:
                        posts.append(data["data"]["id"])
            elif op == "like":
                with lock:
                    pid = rnd.choice(posts)
                status, _ = c.request("POST", "/api/v1/posts/%s/like" % pid,
                                      {"liked": rnd.random() < 0.5})
            else:
                status, _ = c.request("POST", "/api/v1/reminders", {
                    "type": "medication", "title": "soak dose",
                    "medication": {"name": "Ondansetron", "dosage": "8 mg"},
                    "schedule": {"times": ["08:00"], "timezone": "UTC",
                                 "starts_at": "2026-12-01T00:00:00Z"},
                    "channels": ["in_app"]})
            lines.append("%.3f %s %d\n" % (time.time(), op, status))
            if len(lines) >= 200:
                with lock:
                    out.writelines(lines)
                    total[0] += len(lines)
                lines = []
        with lock:
            out.writelines(lines)
            total[0] += len(lines)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()
    print("%d requests in %.0f s: %.0f requests/s" % (total[0], time.time() - started,
                                                       total[0] / (time.time() - started)))


main()

#!/usr/bin/python3
"""A loopback stand-in for Twilio's Messages API that checks what it gets.

    twilio_fake.py PORT ACCOUNT_SID AUTH_TOKEN LOG PIDFILE

POST /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic
AccountSid:AuthToken and a form-encoded To, From, Body, as Twilio takes it.
Wrong credentials: 401 (code 20003); a missing field: 400 (code 21604).
Scripted numbers, like Twilio's test numbers:
  +15005550009  400, code 21211 (invalid 'To' number)
  +15005550010  400, code 21610 (unsubscribed recipient)
  +15005550001  500 the first time, then 201
Any other: 201 {"sid": "SM...", "status": "queued"}. Every request is
appended to LOG as one JSON line (path, auth_ok, form, status, sid)."""
import base64
import json
import os
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

PORT, SID, TOKEN, LOG, PIDFILE = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                  sys.argv[4], sys.argv[5])
lock = threading.Lock()
seen = {}


def record(entry):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, doc, entry):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        entry["status"] = status
        record(entry)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        auth = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        entry = {"path": self.path, "auth_ok": auth == expected, "form": form,
                 "content_type": self.headers.get("Content-Type", "")}
        if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
            return self.answer(404, {"code": 20404, "message": "not found"}, entry)
        if not entry["auth_ok"]:
            return self.answer(401, {"code": 20003, "message": "Authenticate"}, entry)
        if not entry["content_type"].startswith("application/x-www-form-urlencoded"):
            return self.answer(400, {"code": 21604, "message": "form expected"}, entry)
        if not all(form.get(k) for k in ("To", "From", "Body")):
            return self.answer(400, {"code": 21604, "message": "To, From and Body required"},
                               entry)
        to = form["To"]
        if to == "+15005550009":
            return self.answer(400, {"code": 21211, "status": 400, "message":
                                     f"The 'To' number {to} is not a valid phone number."},
                               entry)
        if to == "+15005550010":
            return self.answer(400, {"code": 21610, "status": 400,
                                     "message": "Attempt to send to unsubscribed recipient"},
                               entry)
        with lock:
            seen[to] = seen.get(to, 0) + 1
            first = seen[to] == 1
        if to == "+15005550001" and first:
            return self.answer(500, {"code": 20500, "message": "Internal Server Error"}, entry)
        sid = "SM" + uuid.uuid4().hex
        entry["sid"] = sid
        return self.answer(201, {"sid": sid, "status": "queued", "to": to,
                                 "from": form["From"], "body": form["Body"]}, entry)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
with open(PIDFILE + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(PIDFILE + ".tmp", PIDFILE)
server.serve_forever()

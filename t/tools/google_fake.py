#!/usr/bin/python3
"""google_fake.py - a loopback Google for the video-session suites: the
OAuth 2.0 token endpoint (JWT-bearer grant, RFC 7523) and the Calendar v3
events API (insert, get, patch, delete), checking what it receives.

Usage: google_fake.py --port N --credentials FILE

The credentials are the service-account JSON file httpd uses: the fake
verifies the RS256 assertion with the public half of its private_key,
and expects iss = client_email, aud = token_uri, scope = the calendar
scope, kid = private_key_id and a lifetime of at most an hour. Calendar
calls need a Bearer token it issued; an insert needs conferenceDataVersion=1,
a conferenceData.createRequest with a requestId and the hangoutsMeet
solution key, an id, a summary and start/end dateTimes.

Control (for the suite, not Google's):
  POST /_fake/fail   {"count": n, "status": s}  the next n Calendar calls answer s
  POST /_fake/reset  forget the log
  GET  /_fake/log    every request received, with the problems found
  GET  /_fake/events the events stored
"""

import argparse
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization

SCOPE = "https://www.googleapis.com/auth/calendar"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

state = {"tokens": set(), "events": {}, "log": [], "fail": {"count": 0, "status": 500}}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def record(self, entry):
        with lock:
            state["log"].append(entry)

    # ------------------------------------------------------------ dispatch

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        entry = {"method": method, "path": url.path, "query": url.query,
                 "body": body.decode("utf-8", "replace"), "problems": []}
        try:
            if url.path.startswith("/_fake/"):
                return self.control(method, url.path, body)
            if url.path == "/token" and method == "POST":
                return self.token(body, entry)
            if url.path.startswith("/calendar/v3/calendars/"):
                return self.calendar(method, url, body, entry)
            entry["problems"].append("unknown path")
            return self.reply(404, {"error": {"code": 404, "message": "Not Found"}})
        finally:
            if not url.path.startswith("/_fake/"):
                self.record(entry)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # ------------------------------------------------------------ control

    def control(self, method, path, body):
        if path == "/_fake/fail" and method == "POST":
            with lock:
                state["fail"] = json.loads(body or b"{}")
            return self.reply(200, {"ok": True})
        if path == "/_fake/reset" and method == "POST":
            with lock:
                state["log"] = []
            return self.reply(200, {"ok": True})
        if path == "/_fake/log":
            with lock:
                return self.reply(200, state["log"])
        if path == "/_fake/events":
            with lock:
                return self.reply(200, state["events"])
        return self.reply(404, {})

    # ------------------------------------------------------------ OAuth

    def token(self, body, entry):
        problems = entry["problems"]
        if self.headers.get("Content-Type", "").split(";")[0] != \
                "application/x-www-form-urlencoded":
            problems.append("token request is not a form")
        form = urllib.parse.parse_qs(body.decode(), strict_parsing=False)
        if form.get("grant_type") != [GRANT]:
            problems.append("wrong grant_type")
        assertion = (form.get("assertion") or [""])[0]
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, PUBLIC_KEY, algorithms=["RS256"],
                                audience=CREDS["token_uri"])
        except Exception as e:  # any defect in the assertion
            problems.append("assertion: %s" % e)
            return self.reply(400, {"error": "invalid_grant",
                                    "error_description": "bad assertion"})
        if header.get("kid") != CREDS["private_key_id"]:
            problems.append("kid is not the key id")
        if claims.get("iss") != CREDS["client_email"]:
            problems.append("iss is not the service account")
        if claims.get("scope") != SCOPE:
            problems.append("scope is not the calendar scope")
        if not (0 < claims.get("exp", 0) - claims.get("iat", 0) <= 3600):
            problems.append("assertion lifetime over an hour")
        if problems:
            return self.reply(400, {"error": "invalid_grant"})
        tok = "ya29.fake-" + secrets.token_urlsafe(24)
        with lock:
            state["tokens"].add(tok)
        entry["issued"] = True
        return self.reply(200, {"access_token": tok, "expires_in": 3599,
                                "token_type": "Bearer"})

    # ------------------------------------------------------------ Calendar

    def calendar(self, method, url, body, entry):
        problems = entry["problems"]
        auth = self.headers.get("Authorization", "")
        with lock:
            known = auth.startswith("Bearer ") and auth[7:] in state["tokens"]
        if not known:
            problems.append("no valid bearer token")
            return self.reply(401, {"error": {"code": 401, "message": "Invalid Credentials"}})
        with lock:
            fail = state["fail"]
            if fail.get("count", 0) > 0:
                fail["count"] -= 1
                entry["failed_on_purpose"] = fail.get("status", 500)
                return self.reply(fail.get("status", 500),
                                  {"error": {"code": fail.get("status", 500),
                                             "message": "Backend Error"}})
        parts = url.path.split("/")
        # /calendar/v3/calendars/<calendar>/events[/<id>]
        if len(parts) < 6 or parts[5] != "events":
            problems.append("not an events path")
            return self.reply(404, {"error": {"code": 404}})
        calendar = urllib.parse.unquote(parts[4])
        if calendar != CALENDAR_ID:
            problems.append("wrong calendar id %r" % calendar)
        event_id = parts[6] if len(parts) > 6 else None
        query = urllib.parse.parse_qs(url.query)
        if method == "POST" and event_id is None:
            return self.insert(body, query, problems)
        with lock:
            ev = state["events"].get(event_id)
        if ev is None or ev.get("status") == "cancelled":
            return self.reply(404 if ev is None else 410, {"error": {"code": 404}})
        if method == "GET":
            return self.reply(200, ev)
        if method == "PATCH":
            change = json.loads(body or b"{}")
            for key in ("summary", "description", "start", "end"):
                if key in change:
                    ev[key] = change[key]
            return self.reply(200, ev)
        if method == "DELETE":
            ev["status"] = "cancelled"
            return self.reply(204)
        return self.reply(405, {})

    def insert(self, body, query, problems):
        if query.get("conferenceDataVersion") != ["1"]:
            problems.append("conferenceDataVersion is not 1")
        try:
            ev = json.loads(body)
        except ValueError:
            problems.append("body is not JSON")
            return self.reply(400, {"error": {"code": 400}})
        req = ev.get("conferenceData", {}).get("createRequest", {})
        if not req.get("requestId"):
            problems.append("no createRequest.requestId")
        if req.get("conferenceSolutionKey", {}).get("type") != "hangoutsMeet":
            problems.append("conferenceSolutionKey.type is not hangoutsMeet")
        for key in ("summary", "start", "end", "id"):
            if key not in ev:
                problems.append("no %s" % key)
        if not ev.get("start", {}).get("dateTime") or not ev.get("end", {}).get("dateTime"):
            problems.append("start/end without dateTime")
        if problems:
            return self.reply(400, {"error": {"code": 400, "message": "; ".join(problems)}})
        with lock:
            if ev["id"] in state["events"]:
                return self.reply(409, {"error": {"code": 409,
                                                  "message": "The requested identifier already exists."}})
            code = secrets.token_hex(5)
            link = "https://meet.google.com/%s-%s-%s" % (code[:3], code[3:7], code[7:])
            ev["status"] = "confirmed"
            ev["hangoutLink"] = link
            ev["conferenceData"] = {
                "createRequest": {"requestId": req["requestId"],
                                  "conferenceSolutionKey": {"type": "hangoutsMeet"},
                                  "status": {"statusCode": "success"}},
                "entryPoints": [{"entryPointType": "video", "uri": link},
                                {"entryPointType": "more", "uri": "https://tel.meet/x"}],
                "conferenceSolution": {"key": {"type": "hangoutsMeet"}}}
            state["events"][ev["id"]] = ev
        return self.reply(200, ev)


def main():
    global CREDS, PUBLIC_KEY, CALENDAR_ID
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--calendar", required=True)
    args = ap.parse_args()
    with open(args.credentials) as f:
        CREDS = json.load(f)
    key = serialization.load_pem_private_key(CREDS["private_key"].encode(), password=None)
    PUBLIC_KEY = key.public_key()
    CALENDAR_ID = args.calendar
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()

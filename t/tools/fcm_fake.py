#!/usr/bin/python3
"""A loopback stand-in for FCM HTTP v1 and Google's OAuth 2.0 token
endpoint that checks what it gets.

    fcm_fake.py PORT PUBLIC_KEY_PEM CLIENT_EMAIL PROJECT_ID TOKEN_TTL LOG PIDFILE

POST /token: the JWT-bearer grant of RFC 7523 (grant_type
urn:ietf:params:oauth:grant-type:jwt-bearer, assertion). The assertion must
be RS256, verify with PUBLIC_KEY_PEM, and carry iss = CLIENT_EMAIL, scope =
the FCM scope, aud = this endpoint's URL, iat now, exp at most an hour on.
Answers {"access_token", "expires_in": TOKEN_TTL, "token_type": "Bearer"},
or 400 {"error": "invalid_grant"}.

POST /v1/projects/PROJECT_ID/messages:send with "Authorization: Bearer" an
issued, unexpired token (else 401 UNAUTHENTICATED) and a JSON body
{"message": {"token", "notification": {"title", "body"}, "data"}}. A
device token starting "dead-" is 404 with errorCode UNREGISTERED; others
200 {"name": "projects/PROJECT_ID/messages/N"}. Every request is appended
to LOG as one JSON line."""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt

PORT = int(sys.argv[1])
PUBLIC_KEY = open(sys.argv[2]).read()
CLIENT_EMAIL, PROJECT, TTL, LOG, PIDFILE = (sys.argv[3], sys.argv[4], int(sys.argv[5]),
                                            sys.argv[6], sys.argv[7])
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_URI = f"http://127.0.0.1:{PORT}/token"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
lock = threading.Lock()
tokens = {}          # access token -> expiry
counter = [0]


def record(entry):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def check_assertion(assertion):
    """The claims, or raises ValueError naming what is wrong."""
    header = jwt.get_unverified_header(assertion)
    if header.get("alg") != "RS256":
        raise ValueError("alg is not RS256")
    try:
        claims = jwt.decode(assertion, PUBLIC_KEY, algorithms=["RS256"], audience=TOKEN_URI,
                            options={"require": ["iss", "aud", "exp", "iat"]})
    except jwt.PyJWTError as e:
        raise ValueError(f"assertion rejected: {e}")
    if claims.get("iss") != CLIENT_EMAIL:
        raise ValueError("iss is not the client_email")
    if claims.get("scope") != SCOPE:
        raise ValueError("scope is not the FCM scope")
    now = time.time()
    if abs(claims["iat"] - now) > 60:
        raise ValueError("iat is not now")
    if claims["exp"] - claims["iat"] > 3600:
        raise ValueError("exp is more than an hour after iat")
    return claims, header


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, doc, entry):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        entry["status"] = status
        record(entry)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        if self.path == "/token":
            return self.token(raw)
        if self.path == f"/v1/projects/{PROJECT}/messages:send":
            return self.send_message(raw)
        return self.answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}},
                           {"kind": "other", "path": self.path})

    def token(self, raw):
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        entry = {"kind": "token",
                 "content_type": self.headers.get("Content-Type", "")}
        if form.get("grant_type") != GRANT:
            entry["reason"] = "wrong grant_type"
            return self.answer(400, {"error": "unsupported_grant_type"}, entry)
        try:
            claims, header = check_assertion(form.get("assertion", ""))
        except ValueError as e:
            entry["reason"] = str(e)
            return self.answer(400, {"error": "invalid_grant",
                                     "error_description": str(e)}, entry)
        with lock:
            counter[0] += 1
            access = f"ya29.fake-{counter[0]}-{os.urandom(6).hex()}"
            tokens[access] = time.time() + TTL
        entry.update({"ok": True, "claims": claims, "header": header, "access_token": access})
        return self.answer(200, {"access_token": access, "expires_in": TTL,
                                 "token_type": "Bearer"}, entry)

    def send_message(self, raw):
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:] if auth.startswith("Bearer ") else None
        entry = {"kind": "send", "bearer": bearer}
        with lock:
            valid = bearer in tokens and tokens[bearer] > time.time()
        if not valid:
            return self.answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                               "message": "invalid credentials"}}, entry)
        try:
            msg = json.loads(raw)["message"]
            device = msg["token"]
            entry.update({"device": device, "title": msg["notification"]["title"],
                          "data": msg.get("data")})
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}},
                               entry)
        if device.startswith("dead-"):
            return self.answer(404, {"error": {
                "code": 404, "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
                "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                             "errorCode": "UNREGISTERED"}]}}, entry)
        with lock:
            counter[0] += 1
            name = f"projects/{PROJECT}/messages/{counter[0]}"
        entry["name"] = name
        return self.answer(200, {"name": name}, entry)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
with open(PIDFILE + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(PIDFILE + ".tmp", PIDFILE)
server.serve_forever()

#!/usr/bin/python3
"""A loopback S3-compatible object store for the tests. It checks every
request's AWS Signature Version 4 with botocore (Debian python3-botocore),
an implementation written by AWS, not by us: the signature is recomputed
from the request as received (method, path, query, the headers named in
SignedHeaders, the body) and must match, and x-amz-content-sha256 must be
the body's SHA-256. A mismatch is answered 403 SignatureDoesNotMatch, as
S3 does, and counted.

    s3_fake.py PORT DIR ACCESS_KEY_ID SECRET_ACCESS_KEY REGION

Path-style addressing (/<bucket>/<key>). Supports PutObject, GetObject
(with Range), DeleteObject and multipart uploads (CreateMultipartUpload,
UploadPart, CompleteMultipartUpload, AbortMultipartUpload). Objects are
files under DIR/objects/<bucket>/<key>; pending multipart uploads live
under DIR/uploads/<id>/ until completed or aborted. DIR/stats.json keeps
counts of requests, signature failures and operations. Writes DIR/pid
once listening. Runs until killed (SIGTERM).
"""
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qsl

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PORT, DIR, AKID, SECRET, REGION = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
LOCK = threading.Lock()
STATS = {"requests": 0, "signature_failures": 0, "ops": {}}
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def save_stats():
    tmp = os.path.join(DIR, ".stats.tmp")
    with open(tmp, "w") as f:
        json.dump(STATS, f)
    os.replace(tmp, os.path.join(DIR, "stats.json"))


def count(op):
    with LOCK:
        STATS["ops"][op] = STATS["ops"].get(op, 0) + 1
        save_stats()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    # ------------------------------------------------------------ answers
    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        self.reply(status, ("<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>%s</Message></Error>"
                            % (code, message)).encode(), {"Content-Type": "application/xml"})

    # ------------------------------------------------------------ checks
    def verify(self, body):
        """The request's signature, recomputed by botocore; None when it holds."""
        auth = self.headers.get("Authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            return "no or malformed SigV4 Authorization header"
        akid, date, region, signed, signature = m.groups()
        if akid != AKID or region != REGION:
            return "unknown access key or region"
        amz_date = self.headers.get("x-amz-date", "")
        if not amz_date.startswith(date):
            return "x-amz-date does not match the credential scope"
        try:
            sent = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return "malformed x-amz-date"
        if abs((datetime.datetime.utcnow() - sent).total_seconds()) > 900:
            return "request time too skewed"
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names or "x-amz-content-sha256" not in names:
            return "host, x-amz-date and x-amz-content-sha256 must be signed"
        if self.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's SHA-256"
        headers = {n: self.headers.get(n, "") for n in names if n != "host"}
        url = "http://%s%s" % (self.headers.get("Host", ""), self.path)
        req = AWSRequest(method=self.command, url=url, data=body, headers=headers)
        req.context["timestamp"] = amz_date
        signer = S3SigV4Auth(Credentials(AKID, SECRET), "s3", REGION)
        signer._modify_request_before_signing(req)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        if signer.signed_headers(signer.headers_to_sign(req)) != signed:
            return "signed headers differ"
        if expected != signature:
            return "signature does not match"
        return None

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            STATS["requests"] += 1
        problem = self.verify(body)
        if problem:
            with LOCK:
                STATS["signature_failures"] += 1
                STATS["last_failure"] = problem
                save_stats()
            return self.error(403, "SignatureDoesNotMatch", problem)
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        segs = parts.path.lstrip("/").split("/", 1)
        if len(segs) != 2 or not segs[1] or ".." in segs[1]:
            return self.error(400, "InvalidRequest", "path-style /bucket/key expected")
        bucket, key = segs
        obj = os.path.join(DIR, "objects", bucket, key)
        return self.dispatch(query, obj, body)

    def dispatch(self, query, obj, body):
        m = self.command
        if m == "POST" and "uploads" in query:
            uid = uuid.uuid4().hex
            os.makedirs(os.path.join(DIR, "uploads", uid))
            with open(os.path.join(DIR, "uploads", uid, "target"), "w") as f:
                f.write(obj)
            count("create_multipart")
            return self.reply(200, ("<InitiateMultipartUploadResult><UploadId>%s</UploadId>"
                                    "</InitiateMultipartUploadResult>" % uid).encode())
        if "uploadId" in query:
            up = os.path.join(DIR, "uploads", os.path.basename(query["uploadId"]))
            if not os.path.isdir(up):
                return self.error(404, "NoSuchUpload", "no such upload")
            if m == "PUT" and "partNumber" in query:
                n = int(query["partNumber"])
                with open(os.path.join(up, "part%05d" % n), "wb") as f:
                    f.write(body)
                count("upload_part")
                return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
            if m == "POST":
                want = re.findall(r"<PartNumber>(\d+)</PartNumber><ETag>&quot;([0-9a-f]+)&quot;</ETag>",
                                  body.decode())
                if not want:
                    return self.error(400, "MalformedXML", "no parts")
                os.makedirs(os.path.dirname(obj), exist_ok=True)
                with open(obj + ".tmp", "wb") as out:
                    for i, (n, etag) in enumerate(want):
                        if int(n) != i + 1:
                            return self.error(400, "InvalidPartOrder", "parts out of order")
                        with open(os.path.join(up, "part%05d" % int(n)), "rb") as f:
                            data = f.read()
                        if hashlib.md5(data).hexdigest() != etag:
                            return self.error(400, "InvalidPart", "ETag mismatch")
                        out.write(data)
                os.replace(obj + ".tmp", obj)
                shutil.rmtree(up)
                count("complete_multipart")
                return self.reply(200, b"<CompleteMultipartUploadResult></CompleteMultipartUploadResult>")
            if m == "DELETE":
                shutil.rmtree(up)
                count("abort_multipart")
                return self.reply(204)
        if m == "PUT":
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            with open(obj + ".tmp", "wb") as f:
                f.write(body)
            os.replace(obj + ".tmp", obj)
            count("put")
            return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if m == "GET":
            if not os.path.isfile(obj):
                return self.error(404, "NoSuchKey", "no such key")
            with open(obj, "rb") as f:
                data = f.read()
            count("get")
            rng = self.headers.get("Range")
            if rng:
                mm = re.match(r"^bytes=(\d+)-(\d*)$", rng)
                if not mm or int(mm.group(1)) >= len(data):
                    return self.error(416, "InvalidRange", "bad range")
                a = int(mm.group(1))
                b = int(mm.group(2)) if mm.group(2) else len(data) - 1
                return self.reply(206, data[a:b + 1], {"Content-Range": "bytes %d-%d/%d" % (a, b, len(data))})
            return self.reply(200, data)
        if m == "DELETE":
            if os.path.isfile(obj):
                os.remove(obj)
            count("delete")
            return self.reply(204)
        return self.error(405, "MethodNotAllowed", "not supported here")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    os.makedirs(os.path.join(DIR, "objects"), exist_ok=True)
    os.makedirs(os.path.join(DIR, "uploads"), exist_ok=True)
    save_stats()
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    with open(os.path.join(DIR, "pid"), "w") as f:
        f.write(str(os.getpid()))
    server.serve_forever()


if __name__ == "__main__":
    main()

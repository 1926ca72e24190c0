#!/usr/bin/python3
"""openai_fake.py - a loopback OpenAI-compatible Chat Completions server for
the t/ai_*.t suites.

  openai_fake.py PORT API_KEY MODEL PIDFILE

POST /v1/chat/completions checks what it receives as the real API would,
and more strictly: the Bearer key (401 otherwise), the model (404), the
request shape (400: messages a list of {role, content} strings; the first
the system prompt; roles only system, user and assistant; the last from the
user; no tools, functions or tool_choice). Every request is recorded, with
what was wrong with it, for the tests to read.

How it answers is set per request by the test: POST /_control/modes
{"modes": [...]} queues behaviours taken one per call (default "ok"):

  ok        a normal answer (structured when response_format asks for it)
  slow      as ok, streamed one token every 0.3 s (a plain answer waits)
  stall     says nothing for 30 s
  429       429 with Retry-After: 1
  401       401, as for a revoked key (never worth retrying)
  500       500
  bad_json  structured content that breaks the schema
  not_json  prose where JSON was asked for
  bench     streamed: the first token after 50 ms, the rest at once
  hold      streamed: 20 tokens, one every 0.5 s

GET /_control/requests lists the recorded requests; POST /_control/reset
forgets them and the queue.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, API_KEY, MODEL, PIDFILE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
PROMPT_TOKENS, COMPLETION_TOKENS = 1000, 200
TOKENS = ["Rest ", "and ", "drink ", "water; ", "tell ", "your ", "care ", "team ",
          "if ", "it ", "gets ", "worse."]

lock = threading.Lock()
requests = []
modes = []


def problems_of(body):
    """What is wrong with a chat completion request, as a list of strings."""
    found = []
    if not isinstance(body, dict):
        return ["body is not an object"]
    for key in ("tools", "functions", "tool_choice", "function_call"):
        if key in body:
            found.append("has " + key)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return found + ["messages is not a non-empty list"]
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            found.append("message %d is not {role, content}" % i)
            continue
        if m["role"] not in ("system", "user", "assistant"):
            found.append("message %d has role %r" % (i, m["role"]))
        if not isinstance(m["content"], str) or not m["content"]:
            found.append("message %d has no text" % i)
        if m["role"] == "system" and i != 0:
            found.append("system message at %d" % i)
    if messages[0].get("role") != "system":
        found.append("first message is not the system prompt")
    if messages[-1].get("role") != "user":
        found.append("last message is not from the user")
    return found


def structured(schema_name, mode):
    if schema_name == "symptom_assessment":
        good = {"urgency": "routine", "possible_causes": ["a common side effect"],
                "self_care": ["rest", "drink water"],
                "when_to_call": "Call your team if it lasts more than two days.",
                "disclaimer": "I am not a clinician."}
        bad = dict(good, urgency="maybe", extra=True)
    else:
        good = {"interactions": [{"between": ["drug a", "drug b"], "severity": "moderate",
                                  "explanation": "They can add to each other's effect."}],
                "ask_your_pharmacist": "Ask whether to space the doses apart.",
                "disclaimer": "I am not a pharmacist."}
        bad = {"interactions": [{"between": ["only one"], "severity": "deadly"}]}
    if mode == "bad_json":
        return json.dumps(bad)
    if mode == "not_json":
        return "You will probably be fine, just rest."
    return json.dumps(good)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        self.raw_body = raw
        try:
            return json.loads(raw.decode() or "null")
        except ValueError:
            return None

    def do_GET(self):
        if self.path == "/_control/requests":
            with lock:
                self.reply(200, requests)
            return
        self.reply(404, {"error": {"message": "no such path"}})

    def do_POST(self):
        body = self.read_json()
        if self.path == "/_control/modes":
            with lock:
                modes.extend(body.get("modes", []))
            self.reply(200, {"queued": len(modes)})
            return
        if self.path == "/_control/reset":
            with lock:
                requests.clear()
                modes.clear()
            self.reply(200, {"reset": True})
            return
        if self.path != "/v1/chat/completions":
            self.reply(404, {"error": {"message": "no such path"}})
            return
        self.completion(body)

    def completion(self, body):
        with lock:
            mode = modes.pop(0) if modes else "ok"
        rec = {"mode": mode, "body": body, "received": time.time(),
               "auth": self.headers.get("Authorization"),
               "traceparent": self.headers.get("traceparent"),
               "problems": [], "cancelled": False, "tokens_sent": 0}
        with lock:
            requests.append(rec)
        if self.headers.get("Authorization") != "Bearer " + API_KEY:
            rec["problems"].append("bad key")
            self.reply(401, {"error": {"message": "Incorrect API key provided",
                                       "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        if not isinstance(body, dict):
            rec["problems"].append("body is not JSON: %r" % self.raw_body[:200])
            rec["headers"] = dict(self.headers)
            self.reply(400, {"error": {"message": "We could not parse the JSON body"}})
            return
        if body.get("model") != MODEL:
            rec["problems"].append("bad model")
            self.reply(404, {"error": {"message": "The model does not exist",
                                       "code": "model_not_found"}})
            return
        rec["problems"] = problems_of(body)
        if rec["problems"]:
            self.reply(400, {"error": {"message": "; ".join(rec["problems"]),
                                       "type": "invalid_request_error"}})
            return
        if mode == "429":
            self.reply(429, {"error": {"message": "Rate limit reached", "type": "requests"}},
                       {"Retry-After": "1"})
            return
        if mode == "401":
            self.reply(401, {"error": {"message": "Incorrect API key provided",
                                       "code": "invalid_api_key"}})
            return
        if mode == "500":
            self.reply(500, {"error": {"message": "The server had an error"}})
            return
        if mode == "stall":
            time.sleep(30)
            return
        fmt = body.get("response_format")
        if fmt:
            content = structured(fmt.get("json_schema", {}).get("name"), mode)
            pieces = [content]
        else:
            pieces = TOKENS
            content = "".join(pieces)
        if body.get("stream"):
            if mode == "bench":
                self.stream(rec, pieces, 0.0, first_delay=0.05)
            elif mode == "hold":
                self.stream(rec, ["tok "] * 20, 0.5)
            else:
                self.stream(rec, pieces, 0.3 if mode == "slow" else 0.0)
            return
        if mode == "slow":
            time.sleep(1.0)
        self.reply(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}})

    def stream(self, rec, pieces, delay, first_delay=0.0):
        def chunk(obj):
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": MODEL}
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(b": keep-alive\n\n")
            chunk(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}]))
            for p in pieces:
                if delay or (first_delay and not rec["tokens_sent"]):
                    time.sleep(delay or first_delay)
                chunk(dict(base, choices=[{"index": 0, "delta": {"content": p}}]))
                if not rec["tokens_sent"]:
                    rec["first_token"] = time.time()
                rec["tokens_sent"] += 1
            chunk(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
            chunk(dict(base, choices=[], usage={
                "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            rec["finished"] = time.time()
        except (BrokenPipeError, ConnectionResetError):
            rec["cancelled"] = True
            rec["finished"] = time.time()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    with open(PIDFILE, "w") as f:
        f.write("%d\n" % __import__("os").getpid())
    server.serve_forever()


if __name__ == "__main__":
    main()

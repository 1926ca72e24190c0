#!/usr/bin/env python3
"""A loopback stand-in for the Razorpay API, for the t/payment_*.t suites
and bench/payment_webhooks.

It speaks the parts of Razorpay's REST API that mod_beautiful_payment
uses, and checks what it receives the way Razorpay does: HTTP Basic with
the key id and secret (401 otherwise), JSON bodies with the documented
fields and types (400 BAD_REQUEST_ERROR otherwise).

    POST /v1/orders                    {amount, currency, receipt, notes}
    GET  /v1/orders/:id/payments
    GET  /v1/payments/:id
    POST /v1/payments/:id/capture      {amount, currency}
    POST /v1/subscriptions             {plan_id, total_count, quantity,
                                        customer_notify, notes}
    GET  /v1/subscriptions/:id
    POST /v1/subscriptions/:id/cancel  {cancel_at_cycle_end}

It also plays the browser and Razorpay's webhook sender, through control
routes under /_fake/ (no auth; loopback only):

    POST /_fake/checkout       {order_id, status?, amount?} -> the
         Checkout handler's {razorpay_order_id, razorpay_payment_id,
         razorpay_signature}, signed HMAC-SHA256(order_id|payment_id)
    POST /_fake/subscription_checkout {subscription_id} -> signed
         HMAC-SHA256(payment_id|subscription_id); the subscription is
         active for a month
    POST /_fake/subscription_state {subscription_id, status,
         current_start?, current_end?}
    POST /_fake/webhook        {url, event, order_id | payment_id |
         subscription_id, event_id?, created_at?, forge?} -> builds the
         event from the fake's state, signs the raw body with the webhook
         secret (X-Razorpay-Signature), sends it with X-Razorpay-Event-Id
         and returns {status, body, event_id, raw}
    POST /_fake/redeliver      {url, raw, event_id}
    POST /_fake/fail           {count, status}: the next count API calls
         answer status (e.g. 503)
    GET  /_fake/requests       what the API routes received
    GET  /_fake/state          orders, payments, subscriptions

Usage: razorpay_fake.py --port N --key-id ID --key-secret S
       --webhook-secret W [--plan PLAN_ID:AMOUNT ...] [--pidfile F]
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import string
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"orders": {}, "payments": {}, "subscriptions": {}, "refunds": {}}
REQUESTS = []
FAIL = {"count": 0, "status": 503}
ARGS = None
PLANS = {}


def new_id(prefix):
    return prefix + "_" + "".join(random.choice(string.ascii_letters + string.digits)
                                  for _ in range(14))


def sign(secret, message):
    return hmac.new(secret.encode(), message.encode() if isinstance(message, str) else message,
                    hashlib.sha256).hexdigest()


class Refused(Exception):
    def __init__(self, status, description, field=None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.field = field


def require(body, name, kind, required=True):
    if name not in body:
        if required:
            raise Refused(400, "The %s field is required." % name, name)
        return None
    value = body[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise Refused(400, "The %s must be an integer." % name, name)
    if kind is not int and not isinstance(value, kind):
        raise Refused(400, "The %s field is invalid." % name, name)
    return value


def refuse_extra(body, allowed):
    for k in body:
        if k not in allowed:
            raise Refused(400, "%s is/are not required and should not be sent" % k, k)


def check_notes(notes):
    if notes is None:
        return {}
    if not isinstance(notes, dict) or len(notes) > 15:
        raise Refused(400, "notes must be an object of at most 15 keys", "notes")
    for k, v in notes.items():
        if not isinstance(v, str) or len(v) > 256:
            raise Refused(400, "notes values are strings of at most 256 characters", "notes")
    return notes


# ------------------------------------------------------------------ the API

def create_order(body):
    refuse_extra(body, {"amount", "currency", "receipt", "notes", "partial_payment"})
    amount = require(body, "amount", int)
    currency = require(body, "currency", str)
    receipt = require(body, "receipt", str, required=False)
    notes = check_notes(body.get("notes"))
    if amount < 100:
        raise Refused(400, "The amount must be atleast INR 1.00", "amount")
    if len(currency) != 3 or currency != currency.upper():
        raise Refused(400, "The currency is invalid", "currency")
    if receipt is not None and len(receipt) > 40:
        raise Refused(400, "The receipt may not be greater than 40 characters.", "receipt")
    order = {"id": new_id("order"), "entity": "order", "amount": amount, "amount_paid": 0,
             "amount_due": amount, "currency": currency, "receipt": receipt,
             "offer_id": None, "status": "created", "attempts": 0, "notes": notes,
             "created_at": int(time.time())}
    STATE["orders"][order["id"]] = order
    return 200, order


def new_payment(order_id, amount, currency, status, extra=None):
    payment = {"id": new_id("pay"), "entity": "payment", "amount": amount,
               "currency": currency, "status": status, "order_id": order_id,
               "invoice_id": None, "international": False, "method": "card",
               "amount_refunded": 0, "refund_status": None,
               "captured": status == "captured", "description": None,
               "email": "void@razorpay.com", "contact": "+919999999999", "notes": [],
               "fee": None, "tax": None, "error_code": None, "error_description": None,
               "created_at": int(time.time())}
    if status == "failed":
        payment["error_code"] = "BAD_REQUEST_ERROR"
        payment["error_description"] = "Payment failed because the card was declined"
    if extra:
        payment.update(extra)
    STATE["payments"][payment["id"]] = payment
    return payment


def get_entity(kind, ident):
    entity = STATE[kind].get(ident)
    if entity is None:
        raise Refused(400, "The id provided does not exist")
    return entity


def capture_payment(payment_id, body):
    refuse_extra(body, {"amount", "currency"})
    payment = get_entity("payments", payment_id)
    amount = require(body, "amount", int)
    currency = require(body, "currency", str)
    if payment["status"] != "authorized":
        raise Refused(400, "This payment has already been captured")
    if amount != payment["amount"] or currency != payment["currency"]:
        raise Refused(400, "Capture amount must be equal to the amount authorized", "amount")
    payment["status"] = "captured"
    payment["captured"] = True
    order = STATE["orders"].get(payment["order_id"])
    if order:
        order["status"] = "paid"
        order["amount_paid"] = order["amount"]
        order["amount_due"] = 0
    return 200, payment


def create_subscription(body):
    refuse_extra(body, {"plan_id", "total_count", "quantity", "customer_notify", "notes",
                        "start_at", "expire_by"})
    plan_id = require(body, "plan_id", str)
    total = require(body, "total_count", int)
    quantity = require(body, "quantity", int, required=False)
    notify = require(body, "customer_notify", int, required=False)
    notes = check_notes(body.get("notes"))
    if plan_id not in PLANS:
        raise Refused(400, "The id provided does not exist", "plan_id")
    if total < 1 or (quantity is not None and quantity < 1) or notify not in (None, 0, 1):
        raise Refused(400, "The total_count, quantity or customer_notify is invalid")
    sub = {"id": new_id("sub"), "entity": "subscription", "plan_id": plan_id,
           "customer_id": None, "status": "created", "current_start": None,
           "current_end": None, "ended_at": None, "quantity": quantity or 1, "notes": notes,
           "charge_at": None, "start_at": None, "end_at": None, "auth_attempts": 0,
           "total_count": total, "paid_count": 0, "customer_notify": bool(notify),
           "created_at": int(time.time()), "expire_by": None,
           "short_url": "https://rzp.io/i/" + new_id("x")[2:12], "has_scheduled_changes": False,
           "remaining_count": total}
    STATE["subscriptions"][sub["id"]] = sub
    return 200, sub


def cancel_subscription(sub_id, body):
    refuse_extra(body, {"cancel_at_cycle_end"})
    sub = get_entity("subscriptions", sub_id)
    at_end = require(body, "cancel_at_cycle_end", int, required=False) or 0
    if at_end not in (0, 1):
        raise Refused(400, "cancel_at_cycle_end must be 0 or 1", "cancel_at_cycle_end")
    if sub["status"] in ("cancelled", "completed", "expired"):
        raise Refused(400, "Subscription is not cancellable in %s status" % sub["status"])
    if at_end:
        sub["has_scheduled_changes"] = True
    else:
        sub["status"] = "cancelled"
        sub["ended_at"] = int(time.time())
    return 200, sub


def api(method, path, body):
    parts = [p for p in path.split("/") if p]
    if method == "POST" and parts == ["v1", "orders"]:
        return create_order(body)
    if method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "orders"] \
            and parts[3] == "payments":
        get_entity("orders", parts[2])
        items = [p for p in STATE["payments"].values() if p["order_id"] == parts[2]]
        return 200, {"entity": "collection", "count": len(items), "items": items}
    if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payments"]:
        return 200, get_entity("payments", parts[2])
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "payments"] \
            and parts[3] == "capture":
        return capture_payment(parts[2], body)
    if method == "POST" and parts == ["v1", "subscriptions"]:
        return create_subscription(body)
    if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "subscriptions"]:
        return 200, get_entity("subscriptions", parts[2])
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "subscriptions"] \
            and parts[3] == "cancel":
        return cancel_subscription(parts[2], body)
    raise Refused(404, "The requested URL was not found on the server.")


# ------------------------------------------------------------------ control

def checkout(body):
    order = get_entity("orders", body["order_id"])
    status = body.get("status", "captured")
    payment = new_payment(order["id"], body.get("amount", order["amount"]),
                          body.get("currency", order["currency"]), status)
    order["attempts"] += 1
    order["status"] = "paid" if status == "captured" else "attempted"
    if status == "captured":
        order["amount_paid"] = order["amount"]
        order["amount_due"] = 0
    return {"razorpay_order_id": order["id"], "razorpay_payment_id": payment["id"],
            "razorpay_signature": sign(ARGS.key_secret, order["id"] + "|" + payment["id"])}


def subscription_checkout(body):
    sub = get_entity("subscriptions", body["subscription_id"])
    now = int(time.time())
    sub.update(status="active", current_start=now, current_end=now + 30 * 86400,
               charge_at=now + 30 * 86400, start_at=now, paid_count=1,
               remaining_count=sub["total_count"] - 1)
    payment = new_payment(new_id("order"), PLANS[sub["plan_id"]], "INR", "captured",
                          {"invoice_id": new_id("inv")})
    sub["_last_payment"] = payment["id"]
    return {"razorpay_subscription_id": sub["id"], "razorpay_payment_id": payment["id"],
            "razorpay_signature": sign(ARGS.key_secret, payment["id"] + "|" + sub["id"])}


def subscription_state(body):
    sub = get_entity("subscriptions", body["subscription_id"])
    for k in ("status", "current_start", "current_end"):
        if k in body:
            sub[k] = body[k]
    if body.get("renew"):
        # A new period, charged: the payment a subscription.charged carries.
        start = sub["current_end"] or int(time.time())
        sub.update(status="active", current_start=start, current_end=start + 30 * 86400,
                   paid_count=sub["paid_count"] + 1)
        payment = new_payment(new_id("order"), PLANS[sub["plan_id"]], "INR", "captured",
                              {"invoice_id": new_id("inv")})
        sub["_last_payment"] = payment["id"]
    return {k: v for k, v in sub.items() if not k.startswith("_")}


def public(entity):
    return {k: v for k, v in entity.items() if not k.startswith("_")}


def build_event(body):
    event = body["event"]
    payload, contains = {}, []
    if event.startswith("payment.") or event == "order.paid":
        if "payment_id" in body:
            payment = get_entity("payments", body["payment_id"])
        else:
            items = [p for p in STATE["payments"].values() if p["order_id"] == body["order_id"]]
            if not items:
                raise Refused(400, "no payment for that order at the fake")
            payment = items[-1]
        payload["payment"] = {"entity": public(payment)}
        contains.append("payment")
        if event == "order.paid":
            payload["order"] = {"entity": public(get_entity("orders", payment["order_id"]))}
            contains.append("order")
    elif event.startswith("refund."):
        payment = get_entity("payments", body["payment_id"])
        refund = {"id": new_id("rfnd"), "entity": "refund",
                  "amount": body.get("amount", payment["amount"]), "currency": payment["currency"],
                  "payment_id": payment["id"], "status": "processed",
                  "created_at": int(time.time())}
        STATE["refunds"][refund["id"]] = refund
        payment["amount_refunded"] = refund["amount"]
        if refund["amount"] >= payment["amount"]:
            payment["status"] = "refunded"
        payload["refund"] = {"entity": refund}
        payload["payment"] = {"entity": public(payment)}
        contains += ["refund", "payment"]
    elif event.startswith("subscription."):
        sub = get_entity("subscriptions", body["subscription_id"])
        payload["subscription"] = {"entity": public(sub)}
        contains.append("subscription")
        if event == "subscription.charged" and sub.get("_last_payment"):
            payload["payment"] = {"entity": public(STATE["payments"][sub["_last_payment"]])}
            contains.append("payment")
    else:
        payload = body.get("payload", {})
    return {"entity": "event", "account_id": "acc_BLfakeAccount01", "event": event,
            "contains": contains, "payload": payload,
            "created_at": body.get("created_at", int(time.time()))}


def deliver(url, raw, event_id, forge=False):
    signature = sign(ARGS.webhook_secret, raw)
    if forge:
        signature = sign("not-the-webhook-secret", raw)
    req = urllib.request.Request(url, data=raw, method="POST", headers={
        "Content-Type": "application/json", "X-Razorpay-Signature": signature,
        "X-Razorpay-Event-Id": event_id, "User-Agent": "Razorpay-Webhook/v1"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def control(method, path, body):
    if method == "GET" and path == "/_fake/requests":
        return 200, REQUESTS
    if method == "GET" and path == "/_fake/state":
        return 200, {k: {i: public(e) for i, e in v.items()} for k, v in STATE.items()}
    if method == "POST" and path == "/_fake/reset":
        REQUESTS.clear()
        return 200, {}
    if method == "POST" and path == "/_fake/fail":
        FAIL["count"] = int(body.get("count", 1))
        FAIL["status"] = int(body.get("status", 503))
        return 200, FAIL
    if method == "POST" and path == "/_fake/checkout":
        return 200, checkout(body)
    if method == "POST" and path == "/_fake/subscription_checkout":
        return 200, subscription_checkout(body)
    if method == "POST" and path == "/_fake/subscription_state":
        return 200, subscription_state(body)
    if method == "POST" and path == "/_fake/webhook":
        raw = json.dumps(build_event(body), separators=(",", ":")).encode()
        event_id = body.get("event_id") or new_id("evt")[4:]
        return 200, {"raw": raw.decode(), "event_id": event_id}
    raise Refused(404, "no such control route")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, data):
        out = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def refused(self, e):
        self.answer(e.status, {"error": {"code": "BAD_REQUEST_ERROR",
                                         "description": e.description, "source": "business",
                                         "step": "payment_initiation", "reason": "input_validation_failed",
                                         "metadata": {}, "field": e.field}})

    def auth_ok(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return False
        return hmac.compare_digest(user, ARGS.key_id) and \
            hmac.compare_digest(password, ARGS.key_secret)

    def handle_any(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        body = {}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        if path.startswith("/_fake/"):
            # The webhook sends without the lock: the server may call back.
            if method == "POST" and path in ("/_fake/webhook", "/_fake/redeliver"):
                return self.send_event(path, body)
            with LOCK:
                try:
                    return self.answer(*control(method, path, body or {}))
                except Refused as e:
                    return self.refused(e)
                except (KeyError, TypeError, ValueError) as e:
                    return self.refused(Refused(400, "bad control request: %r" % (e,)))
        with LOCK:
            record = {"method": method, "path": path, "auth_ok": self.auth_ok(),
                      "content_type": self.headers.get("Content-Type"),
                      "body": body if raw else None,
                      "traceparent": self.headers.get("traceparent")}
            REQUESTS.append(record)
            if FAIL["count"] > 0:
                FAIL["count"] -= 1
                return self.answer(FAIL["status"], {"error": {"code": "SERVER_ERROR",
                                                              "description": "fake outage"}})
            if not record["auth_ok"]:
                return self.answer(401, {"error": {"code": "BAD_REQUEST_ERROR",
                                                   "description": "Authentication failed"}})
            if raw and not (self.headers.get("Content-Type") or "").startswith("application/json"):
                return self.refused(Refused(400, "Content-Type must be application/json"))
            if body is None or not isinstance(body, dict):
                return self.refused(Refused(400, "The request body is not a JSON object"))
            try:
                return self.answer(*api(method, path, body))
            except Refused as e:
                return self.refused(e)

    def send_event(self, path, body):
        try:
            if path == "/_fake/webhook":
                with LOCK:
                    built = control("POST", path, body)[1]
                raw, event_id = built["raw"].encode(), built["event_id"]
            else:
                raw, event_id = body["raw"].encode(), body["event_id"]
            status, answer = deliver(body["url"], raw, event_id, bool(body.get("forge")))
        except Refused as e:
            return self.refused(e)
        except (KeyError, TypeError, ValueError) as e:
            return self.refused(Refused(400, "bad control request: %r" % (e,)))
        return self.answer(200, {"status": status, "body": answer, "event_id": event_id,
                                 "raw": raw.decode()})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--key-secret", required=True)
    parser.add_argument("--webhook-secret", required=True)
    parser.add_argument("--plan", action="append", default=[])
    parser.add_argument("--pidfile")
    ARGS = parser.parse_args()
    for p in ARGS.plan:
        plan_id, _, amount = p.partition(":")
        PLANS[plan_id] = int(amount)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    if ARGS.pidfile:
        with open(ARGS.pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(ARGS.pidfile + ".tmp", ARGS.pidfile)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

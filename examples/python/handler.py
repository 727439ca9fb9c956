#!/usr/bin/env python3
"""A Courier webhook handler in Python, standard library only (http.server, hmac, urllib.parse).

Courier POSTs each Kafka record here (contract: docs/handlers.md). This handler:
  - verifies the Standard Webhooks signature when WEBHOOK_SECRET (whsec_...) is set: 401 otherwise;
  - reads the CloudEvents attributes (ce-*), the Kafka coordinates (kafka-*) and the percent-decoded key;
  - treats ce-id as the idempotency key: a duplicate is acknowledged (200) without processing it again;
  - answers 422 for a record it will never accept (JSON body {"poison": true}): Courier dead-letters it;
  - answers 429 with Retry-After: 1 while MAX_CONCURRENCY pushes are in progress: Courier sends the record
    again a second later, counts no attempt (never the DLQ) and sends fewer pushes at once.
With COURIER_DELIVERY=batch Courier POSTs many records in one JSON request instead, to the same URL,
with a courier-batch-size header: this handler answers those too (handle_batch), record by record in array
order, with the same signature check, poison rule, ce-id store and MAX_CONCURRENCY, and lists the records
that failed in a 200 answer {"failures": [...]}.
It writes one JSON line per outcome to stdout (per record for a batch).

Run:  PORT=3000 WEBHOOK_SECRET=whsec_... python3 examples/python/handler.py
Env:  PORT (0 picks a free port), HOST (default 127.0.0.1: Courier runs beside the app), WEBHOOK_SECRET,
      MAX_CONCURRENCY (requests processed at once; one more gets the 429; default 16),
      PROCESSING_DELAY_MS (simulated work; the tests use it to hold requests and reach the limit).
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

TOLERANCE_SECONDS = 5 * 60  # Standard Webhooks: reject timestamps further than this from now
SECRET = os.environ.get("WEBHOOK_SECRET", "")
SIGNING_KEY = base64.b64decode(SECRET.removeprefix("whsec_")) if SECRET else None
MAX_CONCURRENCY = int(os.environ.get("MAX_CONCURRENCY", "16"))
PROCESSING_DELAY = int(os.environ.get("PROCESSING_DELAY_MS", "0")) / 1000

# ThreadingHTTPServer runs each request on its own thread: the slots are a semaphore, taken without waiting.
capacity = threading.BoundedSemaphore(MAX_CONCURRENCY)
# ce-id -> "processing" | "done". In memory for the example: a real app keeps this where its effects
# live, e.g. a unique constraint on ce-id in the same database transaction as the work it does.
seen: dict[str, str] = {}
seen_lock = threading.Lock()
stdout_lock = threading.Lock()


def emit(event: str, **fields) -> None:
    with stdout_lock:
        print(json.dumps({"event": event, **fields}), flush=True)


def signature_valid(headers, body: bytes) -> bool:
    """Standard Webhooks: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>.

    Done with hmac over the raw body bytes: the official `standardwebhooks` package decodes the body
    as UTF-8 first, and a Kafka record value need not be UTF-8.
    """
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures) or int_or_none(timestamp) is None:
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(SIGNING_KEY, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for candidate in signatures.split(" "):  # several during a secret rotation
        version, _, value = candidate.partition(",")
        try:
            if version == "v1" and hmac.compare_digest(base64.b64decode(value, validate=True), expected):
                return True
        except ValueError:
            continue
    return False


def int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def is_poison(body: bytes) -> bool:
    """This app's own rule for a record it can never handle."""
    try:
        value = json.loads(body)
    except ValueError:
        return False  # not JSON: this example treats the value as opaque bytes
    return is_poison_value(value)


def is_poison_value(value) -> bool:
    """The same rule on a value already parsed (a batch carries JSON values parsed)."""
    return isinstance(value, dict) and value.get("poison") is True


def batch_coordinates(item: dict, size: int) -> dict:
    """A batch record's fields for the event lines: those of a single record, plus the batch's size."""
    return {
        "ce_id": item.get("id"),
        "topic": item.get("topic"),
        "partition": item.get("partition"),
        "offset": int_or_none(str(item.get("offset"))),  # a string in the body: offsets can exceed 2^53
        "batch": size,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Courier reuses its connections

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))  # the record value, unchanged
        if self.headers.get("courier-batch-size") is not None:  # COURIER_DELIVERY=batch: same URL, JSON body
            return self.handle_batch(body)
        ce_id = self.headers.get("ce-id", "")  # the idempotency key: stable across attempts
        record = {
            "ce_id": ce_id,
            "topic": self.headers.get("kafka-topic"),
            "partition": int_or_none(self.headers.get("kafka-partition")),
            "offset": int_or_none(self.headers.get("kafka-offset")),
        }
        if SIGNING_KEY is not None and not signature_valid(self.headers, body):
            emit("bad_signature", **record)  # unverified values, for the log only
            return self.answer(401, {"error": "invalid signature"})  # Courier holds the record, never dead-letters it

        if not capacity.acquire(blocking=False):  # over the limit: say so rather than queue or fail
            emit("overloaded", **record)
            # 429 is overload to Courier (so is 503, but only with Retry-After): no attempt, no DLQ, fewer pushes.
            error = f"over the limit (MAX_CONCURRENCY={MAX_CONCURRENCY})"
            return self.answer(429, {"error": error}, {"Retry-After": "1"})  # the record comes again in 1 s
        try:
            if is_poison(body):
                emit("rejected", **record, status=422)
                return self.answer(422, {"error": "cannot process this record"})  # Courier dead-letters it at once

            with seen_lock:  # check and claim in one step: two deliveries of one event may race
                state = seen.get(ce_id)
                if state is None:
                    seen[ce_id] = "processing"
            if state == "done":
                emit("duplicate", **record)
                return self.answer(200, {"duplicate": True})  # acknowledged, not processed again
            if state == "processing":  # another delivery of this event is being processed right now
                emit("in_progress", **record)
                return self.answer(503, {"error": "in progress"}, {"Retry-After": "1"})  # not 409: 4xx dead-letters
            try:
                self.process(record, body)
            except Exception as error:
                with seen_lock:
                    del seen[ce_id]  # not done: a retry must process it
                emit("failed", **record, error=str(error))
                return self.answer(500, {"error": "failed"})  # Courier retries
            with seen_lock:
                seen[ce_id] = "done"
            return self.answer(200, {"ok": True})
        finally:
            capacity.release()

    def process(self, record: dict, body: bytes) -> None:
        """The real work goes here. Runs once per ce-id."""
        key_header = self.headers.get("kafka-key")  # percent-encoded bytes; absent for a null key
        key = unquote_to_bytes(key_header) if key_header is not None else None
        time.sleep(PROCESSING_DELAY)
        emit(
            "processed",
            **record,
            ce_source=self.headers.get("ce-source"),
            ce_type=self.headers.get("ce-type"),
            key=key.hex() if key is not None else None,
            bytes=len(body),
            attempt=int_or_none(self.headers.get("courier-attempt")),
        )

    def handle_batch(self, body: bytes):
        """A batch: {"records": [...]} in one request, answered 200 with the records that failed listed by id."""
        batch = {"ce_id": self.headers.get("webhook-id", ""), "batch": int_or_none(self.headers.get("courier-batch-size"))}
        if SIGNING_KEY is not None and not signature_valid(self.headers, body):  # the signature covers the whole body
            emit("bad_signature", **batch)  # one line: a body is not parsed before it is verified
            return self.answer(401, {"error": "invalid signature"})  # Courier holds the batch, never dead-letters it
        try:
            records = json.loads(body)["records"]
            if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in records):
                raise ValueError("records must be an array of objects with an id")
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            emit("rejected", **batch, status=400, error=str(error))
            return self.answer(400, {"error": "not a batch"})  # Courier splits it until the record at fault is alone

        if not capacity.acquire(blocking=False):  # a batch takes one slot, as a single record does
            for item in records:
                emit("overloaded", **batch_coordinates(item, len(records)))
            error = f"over the limit (MAX_CONCURRENCY={MAX_CONCURRENCY})"
            return self.answer(429, {"error": error}, {"Retry-After": "1"})  # the whole batch comes again in 1 s
        try:
            failures = []
            # Keys with a record listed for a retry: their later records wait for it (see batch_record).
            held: set[tuple] = set()
            for item in records:  # in array order: the partition's offset order
                failure = self.batch_record(item, len(records), held)
                if failure is not None:
                    failures.append(failure)
            # A record not listed is acknowledged; {"failures": []} (or an empty body) acknowledges them all.
            return self.answer(200, {"failures": failures})
        finally:
            capacity.release()

    def batch_record(self, item: dict, size: int, held: set) -> dict | None:
        """One record of a batch, as do_POST handles one record: None when it is done, else its failure."""
        record = batch_coordinates(item, size)
        record_id = item["id"]  # the record's ce-id: the idempotency key (webhook-id only names the batch)
        # Its key's order: a later record of a key whose earlier record comes again must not overtake it.
        lane = (item.get("topic"), item.get("partition"), item.get("key"))
        if lane in held:
            emit("held", **record)
            # Listed, not processed: a record left out of the listing would be acknowledged. 503 with
            # retryAfterMs is overload to Courier: it comes again after the record it waits for, at no attempt.
            reason = "held behind an earlier record of its key"
            return {"id": record_id, "status": 503, "retryAfterMs": 1000, "reason": reason}

        if "value" in item:  # JSON (content type application/json or *+json): parsed already
            poison = is_poison_value(item["value"])
        else:  # any other bytes, in base64; neither for a tombstone
            poison = is_poison(base64.b64decode(item.get("valueBase64", "")))
        if poison:
            emit("rejected", **record, status=422)
            # The reason goes to the DLQ record (error_message, app_response): say why, briefly.
            return {"id": record_id, "status": 422, "reason": "cannot process this record"}

        with seen_lock:  # the same store as for single records: check and claim in one step
            state = seen.get(record_id)
            if state is None:
                seen[record_id] = "processing"
        if state == "done":
            emit("duplicate", **record)
            return None  # acknowledged, not processed again
        if state == "processing":  # another delivery of this event is being processed right now
            emit("in_progress", **record)
            held.add(lane)
            return {"id": record_id, "status": 503, "retryAfterMs": 1000, "reason": "in progress"}
        try:
            self.process_batch_record(record, item)
        except Exception as error:
            with seen_lock:
                del seen[record_id]  # not done: a retry must process it
            emit("failed", **record, error=str(error))
            held.add(lane)
            return {"id": record_id, "status": 500, "reason": "failed"}  # Courier retries it (an attempt)
        with seen_lock:
            seen[record_id] = "done"
        return None

    def process_batch_record(self, record: dict, item: dict) -> None:
        """The real work for a record of a batch goes here, as in process(). Runs once per id."""
        key = base64.b64decode(item["key"]) if item.get("key") is not None else None  # base64; null for a null key
        # The value to work on: the parsed JSON (its bytes are not kept), the bytes, or None for a tombstone.
        if "value" in item:
            value, size = item["value"], None
        elif "valueBase64" in item:
            value = base64.b64decode(item["valueBase64"])
            size = len(value)
        else:
            value, size = None, 0
        time.sleep(PROCESSING_DELAY)
        emit("processed", **record, key=key.hex() if key is not None else None, bytes=size, attempt=item.get("attempt"))

    def answer(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # stdout carries the JSON event lines only


def main() -> None:
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "3000"))), Handler)
    server.daemon_threads = True
    emit("listening", port=server.server_address[1], verifying=SIGNING_KEY is not None)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())

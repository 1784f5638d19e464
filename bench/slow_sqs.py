"""A stand-in for SQS's SendMessageBatch on 127.0.0.1 whose every call takes a fixed round trip, for the
round-trip section: the function's delivery against a real network round trip, without moto's own cost
(moto's SendMessageBatch slows as a queue gets deep, which would measure moto instead).

It speaks the JSON protocol botocore uses for SQS, answers every entry as written after the delay, and
keeps every entry's body, so that the section can count each result exactly once (none lost, none
twice). Any other operation is answered with an error the function would log, never silently."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlowSqs:
    def __init__(self, delay_ms: float) -> None:
        self.delay_s = delay_ms / 1000
        self.bodies: Counter[str] = Counter()
        self.calls = 0
        self.other_calls: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue_url(self, name: str) -> str:
        return f"{self.url}/123456789012/{name}"

    def __enter__(self) -> SlowSqs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def reset(self) -> None:
        with self._lock:
            self.bodies.clear()
            self.other_calls.clear()
            self.calls = self.most_in_flight = 0

    def send_message_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            entries = request.get("Entries", [])
            with self._lock:
                self.bodies.update(entry["MessageBody"] for entry in entries)
        finally:
            with self._lock:
                self.in_flight -= 1
        return {
            "Successful": [
                {"Id": entry["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": ""}
                for entry in entries
            ],
            "Failed": [],
        }


def _handler(sqs: SlowSqs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the function's pooled connections stay open
        # Headers and body go out in two writes: with Nagle's algorithm the second waits for the client's
        # delayed ACK (tens of ms), which would add to every call.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
            if operation == "SendMessageBatch":
                self._answer(200, sqs.send_message_batch(request))
                return
            with sqs._lock:
                sqs.other_calls[operation] += 1
            self._answer(400, {"__type": "com.amazonaws.sqs#UnsupportedOperation", "message": operation})

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler

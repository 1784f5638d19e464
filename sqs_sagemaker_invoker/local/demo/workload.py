"""The demo's workload: a deterministic mix of requests, where each kind must end up, and sending them
paced so that the sends overlap the fault phases."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

RESULT = "result"
DLQ = "dlq"
# Messages the queue's redrive policy moved (no reason of the function's attached).
REDRIVE_POLICY = "redrive_policy"

# Kinds of request, their share of the workload and where each must end up.
KINDS: dict[str, tuple[float, str, str | None]] = {
    "json": (0.55, RESULT, None),
    "csv": (0.20, RESULT, None),
    "rejected": (0.10, DLQ, "model_error"),  # the model answers 4xx: ModelError, never retried
    "validation": (0.05, DLQ, "validation_error"),  # an unknown production variant
    "malformed": (0.10, DLQ, "invalid_message"),  # not an envelope at all
}

# Iris feature ranges: sepal length/width, petal length/width (cm).
_FEATURE_RANGES = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))


@dataclass
class Request:
    kind: str
    body: str
    request_id: str | None  # None when the body cannot carry one (the message id is used)
    message_id: str = ""
    sent_at: float = 0.0

    @property
    def expected(self) -> tuple[str, str | None]:
        _, place, reason = KINDS[self.kind]
        return place, reason


def _row(rng: random.Random) -> list[float]:
    return [round(rng.uniform(low, high), 1) for low, high in _FEATURE_RANGES]


def _json_request(rng: random.Random, index: int, rid: str) -> Request:
    rows = [_row(rng) for _ in range(rng.randint(1, 3))]
    return Request("json", json.dumps({"requestId": rid, "body": {"instances": rows}}), rid)


def _csv_request(rng: random.Random, index: int, rid: str) -> Request:
    text = "\n".join(",".join(str(v) for v in _row(rng)) for _ in range(rng.randint(1, 3)))
    envelope: dict[str, Any] = {"requestId": rid, "bodyText": text, "contentType": "text/csv"}
    return Request("csv", json.dumps(envelope), rid)


def _rejected_request(rng: random.Random, index: int, rid: str) -> Request:
    variants: list[dict[str, Any]] = [
        {"requestId": rid, "body": {"instances": [[1.0, 2.0]]}},  # 2 features, the model wants 4
        {"requestId": rid, "bodyText": "\x89PNG", "contentType": "image/png"},  # 415
    ]
    return Request("rejected", json.dumps(variants[index % 2]), rid)


def _validation_request(rng: random.Random, index: int, rid: str) -> Request:
    envelope = {"requestId": rid, "body": {"instances": [_row(rng)]}, "targetVariant": "NoSuchVariant"}
    return Request("validation", json.dumps(envelope), rid)


def _malformed_request(rng: random.Random, index: int, rid: str) -> Request:
    bodies = [
        "this is not JSON {",
        json.dumps([1, 2, 3]),
        json.dumps({"payload": {"instances": [_row(rng)]}}),
        json.dumps({"body": {"instances": [_row(rng)]}, "bodyText": "both"}),
    ]
    return Request("malformed", bodies[index % 4], None)


_BUILDERS: dict[str, Callable[[random.Random, int, str], Request]] = {
    "json": _json_request,
    "csv": _csv_request,
    "rejected": _rejected_request,
    "validation": _validation_request,
    "malformed": _malformed_request,
}


def build_workload(count: int, seed: int = 7) -> list[Request]:
    """A deterministic mix of ``count`` requests in shuffled order."""
    rng = random.Random(seed)
    kinds: list[str] = []
    for kind, (share, _, _) in KINDS.items():
        kinds += [kind] * round(count * share)
    kinds = (kinds + ["json"] * count)[:count]
    rng.shuffle(kinds)
    return [_BUILDERS[kind](rng, index, f"demo-{index:05d}") for index, kind in enumerate(kinds)]


def build_uniform_workload(count: int, seed: int = 7, kind: str = "json") -> list[Request]:
    """``count`` requests of one kind (the scaling scenario: every one must reach the results queue)."""
    rng = random.Random(seed)
    return [_BUILDERS[kind](rng, index, f"demo-{index:05d}") for index in range(count)]


class WorkloadSender:
    """Sends the requests in batches of ten at `rate` messages/s and remembers each one's message id."""

    def __init__(self, requests: list[Request], *, rate: float, seed: int, stop: threading.Event) -> None:
        self.requests = requests
        self.sent = 0
        self._rate = rate
        self._seed = seed
        self._stop = stop
        self._by_message: dict[str, Request] = {}
        self._lock = threading.Lock()

    def request_for(self, message_id: str) -> Request | None:
        with self._lock:
            return self._by_message.get(message_id)

    def sent_message_ids(self) -> set[str]:
        with self._lock:
            return set(self._by_message)

    def send_all(self, sqs: SQSClient, queue_url: str, *, fifo: bool, on_done: Callable[[], None]) -> None:
        started = time.monotonic()
        for start in range(0, len(self.requests), 10):
            if self._stop.is_set():
                return
            chunk = self.requests[start : start + 10]
            entries = [self._entry(start + i, i, request, fifo) for i, request in enumerate(chunk)]
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
            now = time.time()
            with self._lock:
                for entry_result in response["Successful"]:
                    request = chunk[int(entry_result["Id"])]
                    request.message_id = entry_result["MessageId"]
                    request.sent_at = now
                    self._by_message[request.message_id] = request
                self.sent += len(chunk)
            # Pace the sends so the workload overlaps the fault phases.
            due = started + (start + len(chunk)) / self._rate
            self._stop.wait(max(0.0, due - time.monotonic()))
        on_done()

    def _entry(
        self, number: int, index: int, request: Request, fifo: bool
    ) -> SendMessageBatchRequestEntryTypeDef:
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": request.body}
        if fifo:
            entry["MessageGroupId"] = f"group-{number % 16}"
            # Content-based deduplication would drop repeated bodies (the malformed ones).
            entry["MessageDeduplicationId"] = f"demo-{number}-{self._seed}"
        return entry

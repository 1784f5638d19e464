"""The system section's traffic: the messages a run sends, and the ledger of what became of each (a result,
a dead letter, or neither)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqs_sagemaker_invoker.local.demo.readback import drain

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.esm import BatchReport


_COMPACT = (",", ":")


# -- the messages and what became of them ---------------------------------------------------------------


def message_bodies(count: int, size: int, seed: int) -> list[tuple[str, str]]:
    """(request id, envelope) pairs of about `size` bytes each, the same for every run of a section."""
    out = []
    for index in range(count):
        request_id = f"sys-{seed:x}-{index:05d}"
        envelope = {"requestId": request_id, "body": {"index": index, "pad": ""}}
        pad = max(0, size - len(json.dumps(envelope, separators=_COMPACT)))
        envelope["body"] = {"index": index, "pad": "x" * pad}
        out.append((request_id, json.dumps(envelope, separators=_COMPACT)))
    return out


@dataclass
class Ledger:
    """Every request's send time and where it settled first (a result, a dead-letter copy or, for the
    textbook handler, the acknowledgement), by request id."""

    sent_at: dict[str, float] = field(default_factory=dict)
    request_of: dict[str, str] = field(default_factory=dict)  # SQS message id -> request id
    settled_at: dict[str, float] = field(default_factory=dict)
    results: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    duplicates: int = 0
    first_result: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, request_id: str, message_id: str, at: float) -> None:
        with self.lock:
            self.sent_at[request_id] = at
            self.request_of[message_id] = request_id

    def settle(self, request_id: str | None, at: float, *, dead: bool) -> None:
        if request_id is None or request_id not in self.sent_at:
            return
        with self.lock:
            seen = request_id in self.results or request_id in self.dead
            (self.dead if dead else self.results).add(request_id)
            if seen:
                # A second result (at-least-once delivery) or a result and a dead letter: not a loss.
                self.duplicates += 1
                return
            self.settled_at[request_id] = at
            if not dead and (self.first_result is None or at < self.first_result):
                self.first_result = at

    def settled(self) -> int:
        with self.lock:
            return len(self.settled_at)

    def on_batch(self, report: BatchReport) -> None:
        """The textbook handler delivers nothing: a message is done when the event source deletes it,
        which it does only for records absent from batchItemFailures (a successful call)."""
        for message_id in report.deleted:
            self.settle(self.request_of.get(message_id), report.ended, dead=False)

    def latencies(self) -> list[float]:
        with self.lock:
            return [at - self.sent_at[rid] for rid, at in self.settled_at.items()]

    def offsets(self, start: float) -> list[float]:
        with self.lock:
            return sorted(round(at - start, 3) for at in self.settled_at.values())


def send_all(sqs: SQSClient, queue_url: str, bodies: list[tuple[str, str]], ledger: Ledger) -> None:
    """SendMessageBatch of 10; each request's send time is taken just before its call (a latency counts
    the call, never less)."""
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        at = time.time()
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise RuntimeError(f"moto refused messages: {response['Failed']}")
        for entry in response["Successful"]:
            ledger.sent(chunk[int(entry["Id"])][0], entry["MessageId"], at)


def read_outcomes(sqs: SQSClient, results_url: str | None, dlq_url: str, ledger: Ledger) -> None:
    """Read and delete everything visible on the results queue and the DLQ. A result is settled when it
    reached the results queue (its SentTimestamp), a dead letter when it reached the DLQ."""
    for url, dead in ((results_url, False), (dlq_url, True)):
        if url is None:
            continue

        def settle(message: dict[str, Any], dead: bool = dead) -> None:
            at = int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000)) / 1000
            ledger.settle(_request_id(message, ledger, dead=dead), at, dead=dead)

        drain(sqs, url, settle)


def _request_id(message: Mapping[str, Any], ledger: Ledger, *, dead: bool) -> str | None:
    if not dead:
        document = json.loads(message["Body"])
        return str(document.get("requestId")) if document.get("requestId") else None
    attributes = message.get("MessageAttributes", {})
    for name in ("invoker.request_id", "invoker.message_id"):
        value = attributes.get(name, {}).get("StringValue")
        if value and name.endswith("request_id"):
            return str(value)
        if value:
            return ledger.request_of.get(str(value))
    # Moved by the queue's redrive policy: the same message id, none of the function's attributes.
    return ledger.request_of.get(str(message.get("MessageId")))


def queue_depth(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight + delayed): what the scaling policy reads as the backlog."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    visible = int(attributes.get("ApproximateNumberOfMessages", 0))
    hidden = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesDelayed", 0)
    )
    return visible, hidden

"""Reading the demo's outcomes back: results from the results queue, dead letters (with their reason)
from the DLQ, each recorded by SQS message id in a ledger."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoker.contract import LetterAttribute

from sqs_sagemaker_invoker.local.demo.workload import DLQ, REDRIVE_POLICY, RESULT

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.aws import RouteResources
    from sqs_sagemaker_invoker.local.demo.workload import WorkloadSender


@dataclass
class Outcome:
    place: str
    reason: str | None
    latency_ms: float | None = None
    end_to_end_ms: float | None = None
    receive_count: int | None = None


@dataclass
class Ledger:
    """Every outcome read back, by SQS message id (one request = one message)."""

    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def add(self, message_id: str, outcome: Outcome) -> None:
        self.outcomes.setdefault(message_id, []).append(outcome)

    def settled(self) -> int:
        return len(self.outcomes)

    def delivered(self) -> int:
        return sum(1 for outcomes in self.outcomes.values() if outcomes[0].place == RESULT)


def drain(sqs: SQSClient, url: str, handle: Callable[[dict[str, Any]], None]) -> int:
    """Read and delete everything visible now; returns how many messages were read."""
    total = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not messages:
            return total
        for message in messages:
            handle(dict(message))
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        total += len(messages)


def queue_counts(sqs: SQSClient, url: str) -> dict[str, int]:
    """The queue's visible, in-flight and delayed messages, by SQS attribute name."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {name: int(value) for name, value in attributes.items()}


def queue_empty(sqs: SQSClient, url: str) -> bool:
    return not any(queue_counts(sqs, url).values())


def still_queued_problem(counts: dict[str, int]) -> str | None:
    """What to say when the demo gave up with messages still in the request queue: requests that look
    lost may be among them (a received message stays invisible for its visibility timeout)."""
    if not any(counts.values()):
        return None
    return (
        f"the request queue still held {counts.get('ApproximateNumberOfMessages', 0)} visible,"
        f" {counts.get('ApproximateNumberOfMessagesNotVisible', 0)} in flight and"
        f" {counts.get('ApproximateNumberOfMessagesDelayed', 0)} delayed message(s) when the demo gave up:"
        " requests reported lost may be among them (not settled yet rather than lost)"
    )


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return value.get("StringValue") if value else None


class OutcomeReader:
    """Drains a route's results queue and DLQ into a ledger, timing results against their send."""

    def __init__(self, sender: WorkloadSender) -> None:
        self.ledger = Ledger()
        self._sender = sender

    def read(self, sqs: SQSClient, route: RouteResources) -> None:
        if route.results_queue_url:
            drain(sqs, route.results_queue_url, self._on_result)
        drain(sqs, route.dead_letter_queue_url, self._on_dead_letter)

    def _on_result(self, message: dict[str, Any]) -> None:
        document = json.loads(message["Body"])
        arrived = int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000)) / 1000
        request = self._sender.request_for(document.get("messageId", ""))
        end_to_end = (arrived - request.sent_at) * 1000 if request else None
        self.ledger.add(
            document.get("messageId", "?"),
            Outcome(RESULT, None, document.get("latencyMs"), end_to_end, document.get("receiveCount")),
        )

    def _on_dead_letter(self, message: dict[str, Any]) -> None:
        reason = _attribute(message, LetterAttribute.REASON)
        # The redrive policy moves a message without the function's attributes (same message id).
        message_id = _attribute(message, LetterAttribute.MESSAGE_ID) or message["MessageId"]
        self.ledger.add(message_id, Outcome(DLQ, reason or REDRIVE_POLICY))

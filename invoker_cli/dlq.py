"""Dead-letter queue: look without consuming (receive, then visibility 0) and redrive without losing.

A redrive sends each message to its request queue first and deletes it from the DLQ only after SQS
accepted the copy: an interruption between the two leaves a duplicate, never a gap.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from invoker_cli.errors import CliError, describe_aws_error
from invoker_cli.results import MAX_RECEIVE, release_messages

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

    from invoker_cli.target import Route, Target

INVOKER_PREFIX = "invoker."
# No invoker.reason: SQS itself moved the message (the request queue's maxReceiveCount), e.g. after the
# function failed whole batches. The local demo uses the same name.
UNKNOWN_REASON = "redrive_policy"


@dataclass
class DeadLetter:
    message: MessageTypeDef

    @property
    def message_id(self) -> str:
        return self.message["MessageId"]

    @property
    def receipt_handle(self) -> str:
        return self.message["ReceiptHandle"]

    @property
    def body(self) -> str:
        return self.message.get("Body", "")

    def attribute(self, name: str) -> str | None:
        value = self.message.get("MessageAttributes", {}).get(name)
        return value.get("StringValue") if value else None

    @property
    def reason(self) -> str:
        return self.attribute("invoker.reason") or UNKNOWN_REASON

    @property
    def request_id(self) -> str | None:
        found = self.attribute("invoker.request_id")
        if found:
            return found
        with contextlib.suppress(ValueError):
            document = json.loads(self.body)
            if isinstance(document, dict) and isinstance(document.get("requestId"), str):
                return str(document["requestId"])
        return None

    @property
    def group_id(self) -> str | None:
        return self.message.get("Attributes", {}).get("MessageGroupId")

    def matches(self, wanted: str) -> bool:
        return wanted in {
            self.message_id,
            self.request_id,
            self.attribute("invoker.message_id"),
            self.attribute("invoker.request_id"),
        }

    def producer_attributes(self) -> dict[str, MessageAttributeValueTypeDef]:
        """The message's own attributes without the invoker.* ones (which describe the dead-lettering)."""
        out: dict[str, MessageAttributeValueTypeDef] = {}
        for name, value in self.message.get("MessageAttributes", {}).items():
            if name.startswith(INVOKER_PREFIX):
                continue
            out[name] = _sendable(value)
        return out


def _sendable(value: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    attribute: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        attribute["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["BinaryValue"] = value["BinaryValue"]
    return attribute


class DeadLetterQueue:
    def __init__(self, target: Target, route: Route, *, visibility_timeout: int) -> None:
        self.target = target
        self.route = route
        self.url = route.dead_letter_queue_url
        self.sqs: SQSClient = target.sqs()
        self.visibility_timeout = visibility_timeout
        self._held: dict[str, str] = {}  # message id -> receipt handle, made visible again at the end

    def depth(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)), int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def receive(self, *, wait_seconds: int = 1) -> Iterator[list[DeadLetter]]:
        """Batches of messages not seen before in this run; ends when nothing new is visible."""
        seen: set[str] = set()
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=MAX_RECEIVE,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=self.visibility_timeout,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            fresh = []
            for message in messages:
                letter = DeadLetter(message)
                if letter.message_id in seen:
                    # Its hold expired while we worked: hold it again under the new handle.
                    if letter.message_id in self._held:
                        self._held[letter.message_id] = letter.receipt_handle
                    continue
                seen.add(letter.message_id)
                fresh.append(letter)
            if not fresh:
                return
            yield fresh

    def hold(self, letter: DeadLetter) -> None:
        self._held[letter.message_id] = letter.receipt_handle

    def release(self) -> None:
        handles, self._held = list(self._held.values()), {}
        release_messages(self.sqs, self.url, handles)

    def scan(
        self, *, limit: int | None = None, stop: Callable[[DeadLetter], bool] | None = None
    ) -> list[DeadLetter]:
        """Read (and hold) up to `limit` messages; the caller must `release()` them.

        Pass the queue's approximate depth as `limit` to spare the final, empty long poll.
        """
        letters: list[DeadLetter] = []
        for batch in self.receive():
            for letter in batch:
                self.hold(letter)  # every message received is put back, also past a match
            letters.extend(batch)
            if stop is not None and any(stop(letter) for letter in batch):
                break
            if limit is not None and len(letters) >= limit:
                break
        return letters


# ------------------------------------------------------------------------------------------------
# list


@dataclass
class ReasonSummary:
    reason: str
    count: int = 0
    status_codes: Counter[str] = field(default_factory=Counter)
    last_reasons: Counter[str] = field(default_factory=Counter)
    log_streams: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "originalStatusCodes": dict(self.status_codes),
            "lastReasons": dict(self.last_reasons),
            "logStreamArns": self.log_streams,
            "exampleRequestIds": self.request_ids,
        }


def summarize(letters: list[DeadLetter], *, examples: int = 3) -> list[ReasonSummary]:
    by_reason: dict[str, ReasonSummary] = {}
    for letter in letters:
        summary = by_reason.setdefault(letter.reason, ReasonSummary(letter.reason))
        summary.count += 1
        code = letter.attribute("invoker.original_status_code")
        if code:
            summary.status_codes[code] += 1
        last = letter.attribute("invoker.last_reason")
        if last:
            summary.last_reasons[last] += 1
        stream = letter.attribute("invoker.log_stream_arn")
        if stream and stream not in summary.log_streams and len(summary.log_streams) < examples:
            summary.log_streams.append(stream)
        request_id = letter.request_id or letter.message_id
        if len(summary.request_ids) < examples:
            summary.request_ids.append(request_id)
    return sorted(by_reason.values(), key=lambda s: (-s.count, s.reason))


# ------------------------------------------------------------------------------------------------
# redrive


@dataclass
class RedriveReport:
    redriven: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0  # not matching --reason: left in the DLQ
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # not sent: still in the DLQ
    duplicated: list[tuple[DeadLetter, str]] = field(default_factory=list)  # sent, but not deleted
    by_reason: Counter[str] = field(default_factory=Counter)
    destinations: Counter[str] = field(default_factory=Counter)
    move_task: str | None = None  # the StartMessageMoveTask handle, when used


class Redriver:
    def __init__(
        self,
        dlq: DeadLetterQueue,
        *,
        reasons: set[str] | None,
        limit: int | None,
        dry_run: bool,
        rate: float | None,
        on_progress: Callable[[int], None],
    ) -> None:
        self.dlq = dlq
        self.target = dlq.target
        self.route = dlq.route
        self.sqs = dlq.sqs
        self.reasons = reasons
        self.limit = limit
        self.dry_run = dry_run
        self.rate = rate
        self.on_progress = on_progress
        self.report = RedriveReport()
        self._queue_urls: dict[str, str] = {}
        self._blocked_groups: set[str] = set()

    def selected(self, letter: DeadLetter) -> bool:
        return self.reasons is None or letter.reason in self.reasons

    def run(self) -> RedriveReport:
        started = time.monotonic()
        try:
            for batch in self.dlq.receive():
                chosen: list[DeadLetter] = []
                for letter in batch:
                    if not self.selected(letter):
                        self.report.skipped += 1
                        self.dlq.hold(letter)  # left in the DLQ, visible again at the end
                        continue
                    if self.limit is not None and len(self.report.redriven) + len(chosen) >= self.limit:
                        self.dlq.hold(letter)
                        continue
                    chosen.append(letter)
                if self.dry_run:
                    for letter in chosen:
                        self.dlq.hold(letter)
                        self._count(letter)
                    self.on_progress(len(chosen))
                else:
                    if self.rate:
                        wait = started + len(self.report.redriven) / self.rate - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    self._move(chosen)
                if self.limit is not None and len(self.report.redriven) >= self.limit:
                    break
        finally:
            self.dlq.release()
        return self.report

    def _count(self, letter: DeadLetter) -> None:
        self.report.redriven.append(letter)
        self.report.by_reason[letter.reason] += 1
        self.report.destinations[self.destination_name(letter)] += 1

    def destination_arn(self, letter: DeadLetter) -> str | None:
        return letter.attribute("invoker.source_queue_arn") or self.route.request_queue_arn

    def destination_name(self, letter: DeadLetter) -> str:
        arn = self.destination_arn(letter)
        return arn.rsplit(":", 1)[-1] if arn else self.route.request_queue_name

    def destination_url(self, letter: DeadLetter) -> str:
        arn = self.destination_arn(letter)
        if arn is None or arn == self.route.request_queue_arn:
            return self.route.request_queue_url
        if arn not in self._queue_urls:
            parts = arn.split(":")
            if len(parts) != 6:
                raise CliError(
                    f"message {letter.message_id}: invoker.source_queue_arn {arn!r} is not a queue ARN"
                )
            if parts[5] == self.route.request_queue_name:
                self._queue_urls[arn] = self.route.request_queue_url
            else:
                self._queue_urls[arn] = self.sqs.get_queue_url(
                    QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
                )["QueueUrl"]
        return self._queue_urls[arn]

    def _move(self, letters: list[DeadLetter]) -> None:
        by_queue: dict[str, list[DeadLetter]] = defaultdict(list)
        for letter in letters:
            if letter.group_id is not None and letter.group_id in self._blocked_groups:
                # An earlier message of its FIFO group could not be sent: keep the group's order.
                self.report.failed.append((letter, "an earlier message of its FIFO group was not sent"))
                self.dlq.hold(letter)
                continue
            try:
                by_queue[self.destination_url(letter)].append(letter)
            except (ClientError, BotoCoreError) as exc:
                self.report.failed.append((letter, f"destination unknown: {describe_aws_error(exc) or exc}"))
                self.dlq.hold(letter)
        for url, group in by_queue.items():
            self._send_then_delete(url, group)

    def _send_then_delete(self, url: str, letters: list[DeadLetter]) -> None:
        fifo = url.endswith(".fifo")
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, letter in enumerate(letters):
            entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": letter.body}
            attributes = letter.producer_attributes()
            if attributes:
                entry["MessageAttributes"] = attributes
            if fifo:
                entry["MessageGroupId"] = letter.group_id or letter.request_id or letter.message_id
                # Unique per dead letter: a second redrive of a copy that was sent but not deleted
                # (interrupted run) within 5 minutes is deduplicated instead of processed twice.
                entry["MessageDeduplicationId"] = f"redrive-{letter.message_id}"
            entries.append(entry)
        try:
            response = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            why = describe_aws_error(exc) or str(exc)
            for letter in letters:
                self._fail(letter, f"send failed: {why}")
            return
        sent = {entry["Id"] for entry in response.get("Successful", [])}
        why_not = {
            f["Id"]: f"{f.get('Code', 'error')}: {f.get('Message', '')}" for f in response.get("Failed", [])
        }
        to_delete: list[DeadLetter] = []
        for index, letter in enumerate(letters):
            if str(index) in sent:
                to_delete.append(letter)
            else:
                self._fail(letter, f"send refused: {why_not.get(str(index), 'not in the response')}")
        # Only now, with the copies accepted by SQS, are the originals removed.
        self._delete(to_delete)

    def _fail(self, letter: DeadLetter, why: str) -> None:
        self.report.failed.append((letter, why))
        self.dlq.hold(letter)  # back to visible at the end: still in the DLQ
        if letter.group_id is not None:
            self._blocked_groups.add(letter.group_id)

    def _delete(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        try:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.dlq.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": letter.receipt_handle} for i, letter in enumerate(letters)
                ],
            )
            failed = {
                f["Id"]: f"{f.get('Code', 'error')}: {f.get('Message', '')}"
                for f in response.get("Failed", [])
            }
        except (ClientError, BotoCoreError) as exc:
            why = describe_aws_error(exc) or str(exc)
            failed = {str(i): why for i in range(len(letters))}
        for index, letter in enumerate(letters):
            self._count(letter)
            if str(index) in failed:
                self.report.duplicated.append((letter, failed[str(index)]))
        self.on_progress(len(letters))


def start_move_task(target: Target, route: Route) -> str:
    """StartMessageMoveTask from the DLQ to the route's request queue; raises ClientError if unavailable."""
    sqs: SQSClient = target.client("sqs", attempts=1)
    source = target.queue_arn(route.dead_letter_queue_url)
    destination = route.request_queue_arn or target.queue_arn(route.request_queue_url)
    # An explicit destination: the function's SendMessage copies carry no "source queue" of their own.
    response = sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)
    return response["TaskHandle"]


def wait_move_task(
    target: Target, route: Route, handle: str, on_status: Callable[[dict[str, Any]], None], timeout: float
) -> dict[str, Any]:
    sqs = target.sqs()
    source = target.queue_arn(route.dead_letter_queue_url)
    deadline = time.monotonic() + timeout
    latest: dict[str, Any] = {}
    while time.monotonic() < deadline:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=10).get("Results", [])
        for task in tasks:
            if task.get("TaskHandle") == handle:
                latest = dict(task)
        on_status(latest)
        if latest.get("Status") in ("COMPLETED", "CANCELLED", "FAILED"):
            break
        time.sleep(2)
    return latest

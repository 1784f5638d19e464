"""Dead-letter queue: look without consuming (receive, then visibility 0) and redrive without losing.

A redrive sends each message to its request queue first and deletes it from the DLQ only after SQS
accepted the copy: an interruption between the two leaves a duplicate, never a gap.

A redrive never feeds a loop: one run moves each letter at most once and covers what the DLQ held when
it started (a copy that fails again while the run goes on is left for the next run), and every copy
carries `invoker.redrive_count`, which the function keeps when it dead-letters the copy again; letters
redriven `max_redrives` times are held back unless forced.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import SQS_MAX_MESSAGE_ATTRIBUTES, SQS_MAX_MESSAGE_BYTES
from invoker.contract import LetterAttribute as Attr

from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error
from sqs_sagemaker_invoker.cli.results import MAX_RECEIVE, parse_s3_uri, release_messages

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

    from sqs_sagemaker_invoker.cli.target import Route, Target

INVOKER_PREFIX = Attr.PREFIX
# Shared with the function (README, "Dead-letter messages"): how often a letter was redriven, and where
# the original body of a letter too large to hold it next to its reason is kept.
REDRIVE_COUNT = Attr.REDRIVE_COUNT
BODY_S3_URI = Attr.BODY_S3_URI
DEFAULT_MAX_REDRIVES = 3
MAX_READ_COUNT = 10**9  # a larger redrive count reads as this (held back all the same)
MAX_MESSAGE_ATTRIBUTES = SQS_MAX_MESSAGE_ATTRIBUTES
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
        return self.attribute(Attr.REASON) or UNKNOWN_REASON

    @property
    def request_id(self) -> str | None:
        found = self.attribute(Attr.REQUEST_ID)
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

    @property
    def redrive_count(self) -> int:
        """Redrives so far: 0 when never redriven or not a number; any SQS Number form ("3", "3.0", "3e0")
        reads as its whole part, so no spelling of a count slips past --max-redrives."""
        text = (self.attribute(REDRIVE_COUNT) or "").strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            return 0
        if not value.is_finite() or value < 0:
            return 0
        # Capped before int(): "1e999999999" would otherwise build a billion-digit integer.
        return MAX_READ_COUNT if value >= MAX_READ_COUNT else int(value)

    @property
    def body_s3_uri(self) -> str | None:
        """Where the original body is when the letter is a pointer to it (too large for the DLQ)."""
        return self.attribute(BODY_S3_URI)

    @property
    def redriven_id(self) -> str | None:
        """The message id this letter had in the request queue (the id of a copy a redrive sent)."""
        return self.attribute(Attr.MESSAGE_ID)

    def matches(self, wanted: str) -> bool:
        return wanted in {
            self.message_id,
            self.request_id,
            self.attribute(Attr.MESSAGE_ID),
            self.attribute(Attr.REQUEST_ID),
        }

    def producer_attributes(self) -> dict[str, MessageAttributeValueTypeDef]:
        """The message's own attributes without the invoker.* ones (which describe the dead-lettering)."""
        out: dict[str, MessageAttributeValueTypeDef] = {}
        for name, value in self.message.get("MessageAttributes", {}).items():
            if name.startswith(INVOKER_PREFIX):
                continue
            out[name] = _sendable(value)
        return out


class BodyUnavailable(Exception):
    """The original body of a pointer letter cannot be read back from S3."""


def original_body(letter: DeadLetter, s3: S3Client) -> str:
    """The letter's original body: its own, or for a pointer letter the S3 object's exact bytes."""
    uri = letter.body_s3_uri
    if uri is None:
        return letter.body
    try:
        bucket, key = parse_s3_uri(uri)
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ValueError as exc:
        raise BodyUnavailable(f"{BODY_S3_URI} {uri!r} is not an s3://bucket/key URI") from exc
    except (ClientError, BotoCoreError) as exc:
        raise BodyUnavailable(f"original body at {uri} unreadable: {describe_aws_error(exc) or exc}") from exc
    try:
        # An SQS body is text: the object holds the UTF-8 bytes SQS delivered.
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyUnavailable(f"original body at {uri} is not UTF-8 text") from exc


def message_size(body: str, attributes: dict[str, MessageAttributeValueTypeDef]) -> int:
    """A message's size as SQS counts it: the body and each attribute's name, type and value."""
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(value.get("StringValue", "").encode())
        binary = value.get("BinaryValue")
        size += len(binary) if isinstance(binary, bytes | str) else 0
    return size


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

    def forget(self, letter: DeadLetter) -> None:
        self._held.pop(letter.message_id, None)

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
        code = letter.attribute(Attr.ORIGINAL_STATUS_CODE)
        if code:
            summary.status_codes[code] += 1
        last = letter.attribute(Attr.LAST_REASON)
        if last:
            summary.last_reasons[last] += 1
        stream = letter.attribute(Attr.LOG_STREAM_ARN)
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
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)  # left in the DLQ, with why
    held_back: list[DeadLetter] = field(default_factory=list)  # redriven max_redrives times already
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # not sent: still in the DLQ
    duplicated: list[tuple[DeadLetter, str]] = field(default_factory=list)  # sent, but not deleted
    by_reason: Counter[str] = field(default_factory=Counter)
    destinations: Counter[str] = field(default_factory=Counter)
    at_start: int = 0  # visible letters when the run started: what it goes through
    move_task: str | None = None  # the StartMessageMoveTask handle, when used

    @property
    def unreadable(self) -> list[tuple[DeadLetter, str]]:
        """Skipped because of a problem to fix (not a filter): their original body could not be read."""
        return [(letter, why) for letter, why in self.skipped if why.startswith(UNREADABLE)]

    def to_json(self, *, dry_run: bool) -> dict[str, Any]:
        return {
            "dryRun": dry_run,
            "atStart": self.at_start,
            "moved": len(self.redriven),
            "skipped": len(self.skipped),
            "heldBack": len(self.held_back),
            "failed": len(self.failed),
            "duplicated": len(self.duplicated),
            "movedByReason": dict(self.by_reason),
            "destinations": dict(self.destinations),
            "skippedWhy": dict(Counter(why for _, why in self.skipped)),
            "movedRequestIds": [letter.request_id or letter.message_id for letter in self.redriven],
            "heldBackRequestIds": [letter.request_id or letter.message_id for letter in self.held_back],
            "failedRequestIds": {letter.request_id or letter.message_id: why for letter, why in self.failed},
        }


UNREADABLE = "original body unavailable"
NOT_SELECTED = "not matching --reason"
AGAIN = "dead-lettered again after this run redrove it"
NO_ROOM = "10 producer attributes: no room for invoker.redrive_count (--force sends it without)"


@dataclass
class _Chosen:
    letter: DeadLetter
    body: str
    attributes: dict[str, MessageAttributeValueTypeDef]


class Redriver:
    def __init__(
        self,
        dlq: DeadLetterQueue,
        *,
        reasons: set[str] | None,
        limit: int | None,
        dry_run: bool,
        rate: float | None,
        max_redrives: int = DEFAULT_MAX_REDRIVES,
        force: bool = False,
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
        self.max_redrives = max_redrives
        self.force = force
        self.on_progress = on_progress
        self.report = RedriveReport()
        self._queue_urls: dict[str, str] = {}
        self._blocked_groups: set[str] = set()
        self._sent_ids: set[str] = set()  # request-queue message ids of the copies this run sent
        self._s3: S3Client | None = None

    def selected(self, letter: DeadLetter) -> bool:
        return self.reasons is None or letter.reason in self.reasons

    def run(self, *, at_start: int) -> RedriveReport:
        """Go through the `at_start` letters the DLQ held when the run started (the caller's snapshot of
        ApproximateNumberOfMessages), each at most once; letters arriving meanwhile wait for a next run."""
        self.report.at_start = at_start
        started = time.monotonic()
        budget = at_start
        try:
            for batch in self.dlq.receive():
                chosen: list[_Chosen] = []
                for letter in batch:
                    self.dlq.hold(letter)  # every letter not moved is visible again at the end
                    if letter.message_id in self._sent_ids or letter.redriven_id in self._sent_ids:
                        # A copy this run sent failed again already: moving it again is the loop.
                        self.report.skipped.append((letter, AGAIN))
                        continue
                    if budget <= 0:
                        continue  # arrived after the start: the next run's
                    budget -= 1
                    if self.limit is not None and len(self.report.redriven) + len(chosen) >= self.limit:
                        continue
                    item = self._choose(letter)
                    if item is not None:
                        chosen.append(item)
                if self.dry_run:
                    for item in chosen:
                        self._count(item.letter)
                    self.on_progress(len(chosen))
                elif chosen:
                    if self.rate:
                        wait = started + len(self.report.redriven) / self.rate - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    self._move(chosen)
                if budget <= 0 or (self.limit is not None and len(self.report.redriven) >= self.limit):
                    break
        finally:
            self.dlq.release()
        return self.report

    def _choose(self, letter: DeadLetter) -> _Chosen | None:
        """The copy to send for a letter, or None when it stays in the DLQ (counted, with why)."""
        if not self.selected(letter):
            self.report.skipped.append((letter, NOT_SELECTED))
            return None
        if letter.redrive_count >= self.max_redrives and not self.force:
            self.report.held_back.append(letter)
            return None
        attributes = letter.producer_attributes()
        if len(attributes) >= MAX_MESSAGE_ATTRIBUTES and not self.force:
            self.report.skipped.append((letter, NO_ROOM))
            return None
        if len(attributes) < MAX_MESSAGE_ATTRIBUTES:
            # The function keeps it when it dead-letters the copy again: the next run holds it back.
            attributes[REDRIVE_COUNT] = {"DataType": "Number", "StringValue": str(letter.redrive_count + 1)}
        try:
            body = self._original_body(letter)
        except BodyUnavailable as exc:
            self.report.skipped.append((letter, f"{UNREADABLE}: {exc}"))
            return None
        return _Chosen(letter, body, attributes)

    def _original_body(self, letter: DeadLetter) -> str:
        if letter.body_s3_uri is None:
            return letter.body
        if self._s3 is None:
            self._s3 = self.target.s3()
        return original_body(letter, self._s3)

    def _count(self, letter: DeadLetter) -> None:
        self.report.redriven.append(letter)
        self.report.by_reason[letter.reason] += 1
        self.report.destinations[self.destination_name(letter)] += 1

    def destination_arn(self, letter: DeadLetter) -> str | None:
        return letter.attribute(Attr.SOURCE_QUEUE_ARN) or self.route.request_queue_arn

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

    def _move(self, items: list[_Chosen]) -> None:
        by_queue: dict[str, list[_Chosen]] = defaultdict(list)
        for item in items:
            letter = item.letter
            if letter.group_id is not None and letter.group_id in self._blocked_groups:
                # An earlier message of its FIFO group could not be sent: keep the group's order.
                self.report.failed.append((letter, "an earlier message of its FIFO group was not sent"))
                continue
            try:
                by_queue[self.destination_url(letter)].append(item)
            except (ClientError, BotoCoreError) as exc:
                self.report.failed.append((letter, f"destination unknown: {describe_aws_error(exc) or exc}"))
        for url, group in by_queue.items():
            # SendMessageBatch takes at most 10 messages and 1 MiB in total (bodies fetched from S3 are large).
            chunk: list[_Chosen] = []
            total = 0
            for item in group:
                size = message_size(item.body, item.attributes)
                if chunk and (len(chunk) >= MAX_RECEIVE or total + size > SQS_MAX_MESSAGE_BYTES):
                    self._send_then_delete(url, chunk)
                    chunk, total = [], 0
                chunk.append(item)
                total += size
            if chunk:
                self._send_then_delete(url, chunk)

    def _send_then_delete(self, url: str, items: list[_Chosen]) -> None:
        fifo = url.endswith(".fifo")
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, item in enumerate(items):
            letter = item.letter
            entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": item.body}
            if item.attributes:
                entry["MessageAttributes"] = item.attributes
            if fifo:
                entry["MessageGroupId"] = letter.group_id or letter.request_id or letter.message_id
                # Unique per dead letter and per redrive: a second run over a copy that was sent but not
                # deleted (interrupted run) within 5 minutes is deduplicated instead of processed twice,
                # while the next redrive of the same request is not dropped as a duplicate.
                entry["MessageDeduplicationId"] = f"redrive-{letter.redrive_count + 1}-{letter.message_id}"
            entries.append(entry)
        try:
            response = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            why = describe_aws_error(exc) or str(exc)
            for item in items:
                self._fail(item.letter, f"send failed: {why}")
            return
        sent = {entry["Id"]: entry["MessageId"] for entry in response.get("Successful", [])}
        self._sent_ids.update(sent.values())
        why_not = {
            f["Id"]: f"{f.get('Code', 'error')}: {f.get('Message', '')}" for f in response.get("Failed", [])
        }
        to_delete: list[DeadLetter] = []
        for index, item in enumerate(items):
            if str(index) in sent:
                to_delete.append(item.letter)
            else:
                self._fail(item.letter, f"send refused: {why_not.get(str(index), 'not in the response')}")
        # Only now, with the copies accepted by SQS, are the originals removed.
        self._delete(to_delete)

    def _fail(self, letter: DeadLetter, why: str) -> None:
        self.report.failed.append((letter, why))  # held: back to visible at the end, still in the DLQ
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
            else:
                self.dlq.forget(letter)  # deleted: nothing to make visible again
        self.on_progress(len(letters))


@dataclass
class MoveCheck:
    """What a native move task would do wrong, found by reading the DLQ (and putting it back) first."""

    read: int = 0
    held_back: int = 0  # redriven max_redrives times already: the task would move them anyway
    pointers: int = 0  # bodies kept in S3: the task would move the pointer, not the body


def check_for_move_task(dlq: DeadLetterQueue, *, max_redrives: int) -> MoveCheck:
    visible, _ = dlq.depth()
    check = MoveCheck()
    try:
        letters = dlq.scan(limit=visible) if visible else []
    finally:
        dlq.release()  # the task skips messages in flight
    check.read = len(letters)
    check.held_back = sum(1 for letter in letters if letter.redrive_count >= max_redrives)
    check.pointers = sum(1 for letter in letters if letter.body_s3_uri is not None)
    return check


def start_move_task(target: Target, route: Route, *, rate: float | None = None) -> str:
    """StartMessageMoveTask from the DLQ to the route's request queue; raises ClientError if unavailable."""
    sqs: SQSClient = target.client("sqs", attempts=1)
    source = target.queue_arn(route.dead_letter_queue_url)
    destination = route.request_queue_arn or target.queue_arn(route.request_queue_url)
    # An explicit destination: the function's SendMessage copies carry no "source queue" of their own.
    if rate:
        # The task's rate is a whole number of messages per second, 1-500.
        response = sqs.start_message_move_task(
            SourceArn=source,
            DestinationArn=destination,
            MaxNumberOfMessagesPerSecond=max(1, min(MAX_MOVE_TASK_RATE, int(rate))),
        )
    else:
        response = sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)
    return response["TaskHandle"]


MAX_MOVE_TASK_RATE = 500


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

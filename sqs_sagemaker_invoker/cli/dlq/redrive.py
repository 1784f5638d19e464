"""Redrive without losing: each dead letter is sent to its request queue, then deleted from the DLQ.

An interruption between the two leaves a duplicate, never a gap. One run moves each letter at most once
and covers what the DLQ held when it started; every copy carries `invoker.redrive_count`, and letters
redriven `max_redrives` times are held back unless forced. A native message move task is the other way
(whole queue, no filter): `check_for_move_task` says when it would do what a redrive must not.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import SQS_MAX_MESSAGE_BYTES
from invoker.contract import LetterAttribute as Attr

from sqs_sagemaker_invoker.cli.dlq.letters import (
    DEFAULT_MAX_REDRIVES,
    MAX_MESSAGE_ATTRIBUTES,
    REDRIVE_COUNT,
    BodyUnavailable,
    DeadLetter,
    DeadLetterQueue,
    message_size,
    original_body,
)
from sqs_sagemaker_invoker.cli.errors import CliError, describe_aws_error
from sqs_sagemaker_invoker.cli.results.reader import MAX_RECEIVE

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

    from sqs_sagemaker_invoker.cli.target import Route, Target


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
    def __init__(  # noqa: PLR0913 - the redrive's options, one keyword each
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
                chosen, budget = self._pick(batch, budget)
                if self.dry_run:
                    for item in chosen:
                        self._count(item.letter)
                    self.on_progress(len(chosen))
                elif chosen:
                    self._pace(started)
                    self._move(chosen)
                if budget <= 0 or (self.limit is not None and len(self.report.redriven) >= self.limit):
                    break
        finally:
            self.dlq.release()
        return self.report

    def _pick(self, batch: list[DeadLetter], budget: int) -> tuple[list[_Chosen], int]:
        """The copies to send from one received batch, and the budget of start-time letters left."""
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
        return chosen, budget

    def _pace(self, started: float) -> None:
        """With --rate: wait until the copies sent so far are within the rate since the start."""
        if self.rate:
            wait = started + len(self.report.redriven) / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)

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

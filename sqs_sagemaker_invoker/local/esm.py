"""The Lambda SQS event source mapping, emulated: poll, batch, invoke the real handler, delete what succeeded.

The rules followed (from the Lambda developer guide, "Using Lambda with Amazon SQS", and the Lambda and
SQS quotas pages):

- Each of up to ``max_concurrency`` slots polls the queue and invokes its own warm execution environment,
  so at most that many batches are in flight. A slot asks for ``All`` attributes and message attributes,
  in ``ReceiveMessage`` calls of at most 10 messages, until the batch size is reached, the batching window
  (counted from the first message) has passed, or the 6 MB invocation payload limit would be exceeded. With
  no window a slot invokes as soon as one receive returns messages.
- With ``ReportBatchItemFailures`` the messages named in ``batchItemFailures`` stay on the queue and all
  others are deleted. A null or empty response, or one without ``batchItemFailures``, is full success. An
  invalid response (not an object, ``batchItemFailures`` not a list, an item without ``itemIdentifier``, an
  empty, null or unknown identifier), a handler error, a timeout or a crashed runtime fails the whole batch:
  nothing is deleted and the messages come back when their visibility timeout ends.
- The mapping never changes a message's visibility: whatever the function set with
  ``ChangeMessageVisibility`` (a retry backoff) stands.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import boto3
from botocore.config import Config

from sqs_sagemaker_invoker.local.aws import MAX_ATTEMPTS
from sqs_sagemaker_invoker.local.batch_response import parse_batch_response
from sqs_sagemaker_invoker.local.stand_ins import sqs_event, sqs_record_from_message
from sqs_sagemaker_invoker.local.worker import FunctionSpec, InvokeOutcome, LogLine, Worker, WorkerInitError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_MESSAGES_PER_RECEIVE = 10
# The event around the records ({"Records": [...]}) and a record's fields beyond the SQS message.
_EVENT_OVERHEAD = 64
_RECORD_OVERHEAD = 160

FailureKind = Literal["error", "timeout", "crash", "init_error", "invalid_response"]


@dataclass(frozen=True)
class EventSourceSpec:
    """One event source mapping: a queue feeding a function."""

    name: str
    queue_url: str
    queue_arn: str
    function: FunctionSpec
    batch_size: int = 10
    batching_window_s: float = 0.0
    max_concurrency: int = 2
    report_batch_item_failures: bool = True
    # The time the context reports and after which the invocation is killed (default: the function's).
    context_timeout_s: float | None = None
    # Long-poll slice: shorter than Lambda's 20 s so that a stop is prompt.
    poll_wait_s: int = 1


@dataclass
class BatchReport:
    source: str
    message_ids: list[str]
    receive_counts: dict[str, int]
    outcome: InvokeOutcome
    failure: FailureKind | None = None
    failure_detail: str | None = None
    item_failures: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    delete_errors: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0


@dataclass
class SourceStats:
    batches: int = 0
    records: int = 0
    deleted: int = 0
    item_failures: int = 0
    batch_failures: Counter[str] = field(default_factory=Counter)
    cold_starts: int = 0
    in_flight: int = 0


def _size(message: MessageTypeDef) -> int:
    return len(json.dumps(message, default=str)) + _RECORD_OVERHEAD


class EventSourceEmulator:
    """Runs every mapping's slots on threads, each slot with its own worker process."""

    def __init__(  # noqa: PLR0913 - the sources, then keyword-only options that all have defaults
        self,
        sources: Sequence[EventSourceSpec],
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        credentials: tuple[str, str] = ("testing", "testing"),
        log_sink: Callable[[LogLine], None] | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
        history: int = 10_000,
        prewarm: bool = False,
    ) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"event source names must be unique: {names}")
        self.sources = {s.name: s for s in sources}
        self._endpoint_url = endpoint_url
        self._region = region
        self._credentials = credentials
        self._sink = log_sink
        self._on_batch = on_batch
        self._stopping = threading.Event()
        self._enabled = {name: threading.Event() for name in self.sources}
        self._threads: list[threading.Thread] = []
        self._workers: dict[str, list[Worker]] = {name: [] for name in self.sources}
        self._stats = {name: SourceStats() for name in self.sources}
        self._lock = threading.Lock()
        self.history: deque[BatchReport] = deque(maxlen=history)
        self._context_timeout = {name: s.context_timeout_s for name, s in self.sources.items()}
        # Start every slot's execution environment before polling (Lambda's provisioned-concurrency feel).
        self._prewarm = prewarm

    # -- control ----------------------------------------------------------------------------------

    def start(self) -> EventSourceEmulator:
        for name, source in self.sources.items():
            self._enabled[name].set()
            for slot in range(source.max_concurrency):
                worker = Worker(source.function, self._sink)
                self._workers[name].append(worker)
                thread = threading.Thread(
                    target=self._run_slot, args=(source, worker), name=f"esm-{name}-{slot}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self, *, kill: bool = True, timeout: float = 30.0) -> None:
        """Stop polling and every worker process; ``kill`` ends running invocations at once (their
        messages reappear after their visibility timeout), otherwise they are waited for.

        Slot threads still in a long poll (at most ``poll_wait_s``) are joined for up to ``timeout``
        seconds; they cannot start a process any more, and exit on their own.
        """
        self._stopping.set()
        for workers in self._workers.values():
            for worker in workers:
                worker.stop(kill=kill)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> EventSourceEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def disable(self, name: str) -> None:
        """Like setting the mapping's Enabled to false: slots stop polling after their current batch."""
        self._enabled[name].clear()

    def enable(self, name: str) -> None:
        self._enabled[name].set()

    def set_context_timeout(self, name: str, seconds: float | None) -> None:
        """Change the time budget of the next invocations (tests of the deadline rule)."""
        self._context_timeout[name] = seconds

    def workers(self, name: str) -> list[Worker]:
        return list(self._workers[name])

    def stats(self, name: str) -> SourceStats:
        with self._lock:
            stats = self._stats[name]
            return SourceStats(
                batches=stats.batches,
                records=stats.records,
                deleted=stats.deleted,
                item_failures=stats.item_failures,
                batch_failures=Counter(stats.batch_failures),
                cold_starts=stats.cold_starts,
                in_flight=stats.in_flight,
            )

    # -- one slot ---------------------------------------------------------------------------------

    def _client(self) -> SQSClient:
        return boto3.client(
            "sqs",
            endpoint_url=self._endpoint_url,
            region_name=self._region,
            aws_access_key_id=self._credentials[0],
            aws_secret_access_key=self._credentials[1],
            config=Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}, read_timeout=60),
        )

    def _run_slot(self, source: EventSourceSpec, worker: Worker) -> None:
        sqs = self._client()
        enabled = self._enabled[source.name]
        if self._prewarm:
            try:
                worker.start()
            except WorkerInitError:
                log.exception(
                    "event source %s: init failed; it is retried on the first invocation", source.name
                )
        carry: list[MessageTypeDef] = []
        while not self._stopping.is_set():
            if not enabled.wait(timeout=0.2):
                continue
            try:
                messages = self._gather(sqs, source, carry)
                if messages and not self._stopping.is_set():
                    self._process(sqs, source, worker, messages)
            except Exception:
                if self._stopping.is_set():
                    break
                log.exception("event source %s: polling failed; backing off", source.name)
                self._stopping.wait(1.0)

    def _gather(
        self, sqs: SQSClient, source: EventSourceSpec, carry: list[MessageTypeDef]
    ) -> list[MessageTypeDef]:
        """One batch; messages received beyond the 6 MB payload limit are kept in ``carry`` for the next."""
        messages: list[MessageTypeDef] = []
        size = _EVENT_OVERHEAD
        first_at: float | None = None
        while not self._stopping.is_set():
            while carry and len(messages) < source.batch_size:
                message_size = _size(carry[0])
                if messages and size + message_size > MAX_PAYLOAD_BYTES:
                    return messages
                messages.append(carry.pop(0))
                size += message_size
                first_at = first_at or time.monotonic()
            room = min(MAX_MESSAGES_PER_RECEIVE, source.batch_size - len(messages))
            if room <= 0 or carry:
                break
            if first_at is None:
                wait = source.poll_wait_s
            elif source.batching_window_s <= 0:
                break
            else:
                remaining = source.batching_window_s - (time.monotonic() - first_at)
                if remaining <= 0:
                    break
                wait = min(int(remaining), source.poll_wait_s)
            response = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=room,
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            carry.extend(received)
            if received:
                continue  # moved into the batch (or left in carry if over the payload limit) above
            if first_at is None:
                if not self._enabled[source.name].is_set():
                    break
                continue
            if wait == 0:
                # Under a second of window left: short polls, without spinning.
                self._stopping.wait(0.05)
        return messages

    def _process(
        self, sqs: SQSClient, source: EventSourceSpec, worker: Worker, messages: list[MessageTypeDef]
    ) -> None:
        records = [sqs_record_from_message(m, source.queue_arn, self._region) for m in messages]
        ids = [r["messageId"] for r in records]
        report = BatchReport(
            source=source.name,
            message_ids=ids,
            receive_counts={
                r["messageId"]: int(r["attributes"].get("ApproximateReceiveCount", 0)) for r in records
            },
            outcome=InvokeOutcome("ok", ""),
            started=time.time(),
        )
        with self._lock:
            self._stats[source.name].in_flight += 1
        try:
            timeout = self._context_timeout[source.name]
            outcome = worker.invoke(sqs_event(records), timeout_s=timeout)
            report.outcome = outcome
            if outcome.status == "ok":
                if source.report_batch_item_failures:
                    failed, invalid = parse_batch_response(outcome.payload, ids)
                else:
                    failed, invalid = [], None
                if invalid is not None:
                    report.failure, report.failure_detail = "invalid_response", invalid
                else:
                    report.item_failures = failed
            else:
                report.failure = outcome.status
                report.failure_detail = f"{outcome.error_type}: {outcome.error_message}"
            if report.failure is not None:
                log.info(
                    "event source %s: batch of %d failed (%s)", source.name, len(ids), report.failure_detail
                )
            else:
                failed_set = set(report.item_failures)
                self._delete(sqs, source, [m for m in messages if m["MessageId"] not in failed_set], report)
        finally:
            report.ended = time.time()
            with self._lock:
                stats = self._stats[source.name]
                stats.in_flight -= 1
                stats.batches += 1
                stats.records += len(ids)
                stats.deleted += len(report.deleted)
                stats.item_failures += len(report.item_failures)
                stats.cold_starts += int(report.outcome.cold_start)
                if report.failure is not None:
                    stats.batch_failures[report.failure] += 1
                self.history.append(report)
        if self._on_batch is not None:
            self._on_batch(report)

    def _delete(
        self, sqs: SQSClient, source: EventSourceSpec, messages: list[MessageTypeDef], report: BatchReport
    ) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for entry in response.get("Successful", []):
                report.deleted.append(chunk[int(entry["Id"])]["MessageId"])
            for error in response.get("Failed", []):
                # A receipt handle gone stale (the message was received again meanwhile): it will be
                # processed again, which is at-least-once delivery, not a loss.
                report.delete_errors.append(chunk[int(error["Id"])]["MessageId"])
                log.warning("event source %s: delete failed: %s", source.name, error.get("Message"))

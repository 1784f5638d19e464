"""The splitter: a job's input lines become request messages on the route's queue, paced to the route's
capacity, checkpointed in the job's item after every send batch, and continued by a new invocation (a
control message) before this one's deadline."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from invoker.contract import SQS_MAX_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES, JobState, Reason, job_request_id
from invoker.contract import JobAttribute as J
from invoker.envelope import loads_strict, parse_envelope
from invoker.jobs.lines import Line, object_size, read_lines
from invoker.jobs.table import StateMoved
from invoker.outcomes import InvalidMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from invoker.jobs.config import JobsConfig
    from invoker.jobs.pacing import Pacer
    from invoker.jobs.table import JobTable

_SEND_ATTEMPTS: Final = 3
# A send batch: up to this many SendMessageBatch calls (of 10 messages, 1 MiB each) at once, between one
# state check and one checkpoint. 100 lines per round trip, and 3 job-item calls per 100 lines, not per 10.
SEND_CALLS: Final = 10
_INVALID: Final = f"{J.COUNTS}.{Reason.INVALID_MESSAGE.value}"


class Split(StrEnum):
    DONE = "done"  # every line sent or refused: the job is running
    CONTINUE = "continue"  # out of time (or waiting for room): a new invocation goes on from the checkpoint
    STOPPED = "stopped"  # the job is not splitting (cancelled, or a repeated control message)


# S3 errors below 500 that are still worth another try; any other 4xx means the input cannot be read.
_S3_TRANSIENT: Final = frozenset({"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"})


class InputUnreadable(Exception):
    """The job's input cannot be read (gone, access denied, ...): the job fails with this reason rather than
    coming back until its control message lands in the control DLQ."""

    def __init__(self, job_id: str, key: str, code: str) -> None:
        super().__init__(f"job {job_id}: its input {key} cannot be read: {code}")
        self.job_id, self.key, self.code = job_id, key, code


def _unreadable(exc: Exception) -> str | None:
    """The error code when an S3 failure is permanent, else None (it is retried with the control message)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = str(response.get("Error", {}).get("Code") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int) and 400 <= status < 500 and code not in _S3_TRANSIENT:
        return code or str(status)
    return None


class SendFailed(RuntimeError):
    """Some entries of a send batch failed every attempt: the control message comes back, and the split
    resumes from the last checkpoint (lines sent twice are one request: the ledger's claim)."""

    def __init__(self, job_id: str, codes: list[str]) -> None:
        super().__init__(f"job {job_id}: {len(codes)} messages not sent ({', '.join(sorted(set(codes)))})")
        self.codes = codes


@dataclass(slots=True)
class _Batch:
    """One send batch: its SendMessageBatch calls' entries, the refused lines, and the last line read."""

    calls: list[list[SendMessageBatchRequestEntryTypeDef]] = field(default_factory=lambda: [[]])
    refused: list[tuple[int, str]] = field(default_factory=list)
    size: int = 0  # bytes of the last call's entries
    last: Line | None = None

    @property
    def entries(self) -> list[SendMessageBatchRequestEntryTypeDef]:
        return [entry for call in self.calls for entry in call]

    calls_at_most: int = SEND_CALLS

    def add(self, body: str) -> bool:
        """Adds a message; False when it belongs to the next send batch (this one is full)."""
        size = len(body.encode())
        if len(self.calls[-1]) >= SQS_MAX_BATCH_ENTRIES or self.size + size > SQS_MAX_MESSAGE_BYTES:
            if len(self.calls) >= self.calls_at_most:
                return False
            self.calls.append([])
            self.size = 0
        self.calls[-1].append({"Id": str(len(self.calls[-1])), "MessageBody": body})
        self.size += size
        return True

    def full(self) -> bool:
        return len(self.entries) + len(self.refused) >= self.calls_at_most * SQS_MAX_BATCH_ENTRIES


@dataclass(frozen=True, slots=True)
class SplitReport:
    outcome: Split
    sent: int = 0
    refused: int = 0
    job: dict[str, Any] = field(default_factory=dict)  # the item after the split's last write


def request_body(job_id: str, line: Line, payload_s3_prefix: str | None) -> str:
    """The message for one line, or InvalidMessage naming what is wrong with it. The line's own bytes are
    kept as written (its numbers, its bodyText): only the job's keys are put in front."""
    if line.too_long:
        raise InvalidMessage(
            f"line {line.number} is longer than an SQS message can be (1 MiB): use bodyS3Uri"
        )
    try:
        text = line.text.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"line {line.number} is not UTF-8 text") from exc
    if not text:
        raise InvalidMessage(f"line {line.number} is empty")
    if not text.startswith("{"):
        loads_strict(text, f"line {line.number}")
        raise InvalidMessage(f"line {line.number} is not a JSON object")
    request_id = job_request_id(job_id, line.number)
    head = json.dumps({"requestId": request_id, "jobId": job_id, "line": line.number}, separators=(",", ":"))
    rest = text[1:].lstrip()
    body = head[:-1] + ("}" if rest.startswith("}") else "," + rest)
    # The function's own parser: a line it would refuse is refused here, before it costs a message.
    parse_envelope(body, request_id, payload_s3_prefix)
    if len(body.encode()) > SQS_MAX_MESSAGE_BYTES:
        raise InvalidMessage(
            f"line {line.number} is larger than an SQS message can be (1 MiB): use bodyS3Uri"
        )
    return body


class Splitter:
    def __init__(  # noqa: PLR0913 - its clients and collaborators
        self,
        config: JobsConfig,
        table: JobTable,
        s3: S3Client,
        sqs: SQSClient,
        pacer: Pacer,
        *,
        payload_s3_prefix: str | None = None,
        send_calls: int = SEND_CALLS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config, self._table, self._s3, self._sqs, self._pacer = config, table, s3, sqs, pacer
        self._payload_s3_prefix = payload_s3_prefix
        self._clock = clock
        # Created once: a warm container reuses its threads (the SQS client needs as many connections).
        self._send_calls = send_calls
        self._pool = ThreadPoolExecutor(max_workers=send_calls, thread_name_prefix="split")

    def split(self, job_id: str, remaining_ms: Callable[[], int]) -> SplitReport:
        try:
            return self._split(job_id, remaining_ms)
        except Exception as exc:
            code = _unreadable(exc)
            if code is None:
                raise
            key = str(self._table.get(job_id).get(J.INPUT) or "")
            raise InputUnreadable(job_id, key, code) from exc

    def _split(self, job_id: str, remaining_ms: Callable[[], int]) -> SplitReport:
        job = self._start(job_id)
        if job.get(J.STATE) != JobState.SPLITTING:
            return SplitReport(Split.STOPPED, job=job)
        margin_ms = self._config.deadline_margin_seconds * 1000

        def out_of_time() -> bool:
            return remaining_ms() < margin_ms

        key = str(job[J.INPUT])
        size = int(job.get(J.INPUT_BYTES) or object_size(self._s3, self._config.bucket, key))
        lines = read_lines(
            self._s3,
            self._config.bucket,
            key,
            size=size,
            offset=int(job.get(J.OFFSET) or 0),
            line=int(job.get(J.LINES) or 0),
        )
        counted = [0, 0, int(job.get(J.LINES) or 0)]  # sent, refused, lines checkpointed
        batch = _Batch(calls_at_most=self._send_calls)

        def flush() -> SplitReport | None:
            nonlocal batch
            report = self._flush(job_id, batch, out_of_time)
            if report is not None:
                return SplitReport(report.outcome, counted[0], counted[1], report.job)
            assert batch.last is not None
            counted[0] += len(batch.entries)
            counted[1] += len(batch.refused)
            counted[2] = batch.last.number
            batch = _Batch(calls_at_most=self._send_calls)
            return None

        for line in lines:
            why = ""
            try:
                body: str | None = request_body(job_id, line, self._payload_s3_prefix)
            except InvalidMessage as error:
                body, why = None, str(error)
            if body is not None and not batch.add(body):
                stopped = flush()  # the send batch is full: the line starts the next one
                if stopped is not None:
                    return stopped
                batch.add(body)
            if body is None:
                batch.refused.append((line.number, why))
            batch.last = line
            if batch.full():
                stopped = flush()
                if stopped is not None:
                    return stopped
        if batch.last is not None:
            stopped = flush()
            if stopped is not None:
                return stopped
        sent, refused, total = counted
        try:
            job = self._table.update(
                job_id,
                sets={J.STATE: JobState.RUNNING.value, J.TOTAL: total, J.SPLIT_AT: int(self._clock() * 1000)},
                from_states=[JobState.SPLITTING],
                return_new=True,
            )
        except StateMoved:
            return SplitReport(Split.STOPPED, sent, refused, self._table.get(job_id))
        return SplitReport(Split.DONE, sent, refused, job)

    def _start(self, job_id: str) -> dict[str, Any]:
        """The job's item, moved from submitted to splitting on its first control message."""
        job = self._table.get(job_id)
        if job.get(J.STATE) != JobState.SUBMITTED:
            return job
        try:
            return self._table.update(
                job_id,
                sets={J.STATE: JobState.SPLITTING.value, J.STARTED_AT: int(self._clock() * 1000)},
                from_states=[JobState.SUBMITTED],
                return_new=True,
            )
        except StateMoved:
            return self._table.get(job_id)

    def _flush(self, job_id: str, batch: _Batch, out_of_time: Callable[[], bool]) -> SplitReport | None:
        """Sends one batch and checkpoints after it; a report when the split stops here."""
        if out_of_time() or (batch.entries and not self._pacer.room(len(batch.entries), out_of_time)):
            return SplitReport(Split.CONTINUE)
        if batch.entries and self._table.state(job_id) != JobState.SPLITTING:
            # Checked before every send batch: a cancel stops what has not been sent yet.
            job = self._table.update(job_id, sets={}, return_new=True)
            return SplitReport(Split.STOPPED, job=job)
        for number, error in batch.refused:
            self._table.refuse_line(job_id, number, error)
        if batch.entries:
            self._send(job_id, [call for call in batch.calls if call])
            self._pacer.sent(len(batch.entries))
        assert batch.last is not None
        checkpoint = {J.OFFSET: batch.last.end, J.LINES: batch.last.number}
        adds = {J.SENT: len(batch.entries), J.ENDED: len(batch.refused)}
        if batch.refused:  # counts holds only the outcomes that happened
            adds[_INVALID] = len(batch.refused)
        try:
            # The write that checkpoints is also the check before the next send: a cancelled job stops here.
            self._table.update(job_id, sets=checkpoint, adds=adds, from_states=[JobState.SPLITTING])
        except StateMoved:
            # Cancelled meanwhile: what this batch sent still counts, so `cancel` can say how far it got.
            job = self._table.update(job_id, sets=checkpoint, adds=adds, return_new=True)
            return SplitReport(Split.STOPPED, job=job)
        return None

    def _send(self, job_id: str, calls: list[list[SendMessageBatchRequestEntryTypeDef]]) -> None:
        """The send batch's SendMessageBatch calls, at once; raises SendFailed when any entry failed every
        attempt (the split then resumes from the last checkpoint)."""
        failures = [codes for codes in self._pool.map(self._send_call, calls) if codes]
        if failures:
            raise SendFailed(job_id, [code for codes in failures for code in codes])

    def _send_call(self, entries: list[SendMessageBatchRequestEntryTypeDef]) -> list[str]:
        pending = entries
        codes: list[str] = []
        for attempt in range(_SEND_ATTEMPTS):
            answer = self._sqs.send_message_batch(QueueUrl=self._config.request_queue_url, Entries=pending)
            failed = {entry["Id"]: entry.get("Code", "") for entry in answer.get("Failed", [])}
            if not failed:
                return []
            pending = [entry for entry in pending if entry["Id"] in failed]
            codes = list(failed.values())
            time.sleep(0.1 * 2**attempt)
        return codes

"""The job control queue's messages and what each one does. Why a queue and not self re-invocation: a
continuation is a message that SQS keeps until it is done (a crash or a timeout brings it back after its
visibility timeout, and after maxReceiveCount it lands in the control queue's DLQ, visible), it needs no
lambda:InvokeFunction on itself, and the local stack runs it through the same event source emulator as
the route's own function."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from invoker.contract import JOB_ID_PATTERN, JobState
from invoker.contract import JobAttribute as J
from invoker.jobs.splitter import InputUnreadable, Split
from invoker.jobs.table import StateMoved

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sqs import SQSClient

    from invoker.jobs.assembler import Assembler
    from invoker.jobs.config import JobsConfig
    from invoker.jobs.splitter import Splitter
    from invoker.jobs.table import JobTable


class Kind(StrEnum):
    SPLIT = "split"  # start or continue splitting (the CLI's submit sends the first one)
    WATCH = "watch"  # the split is done: assemble when every line has ended, else look again later


class BadControlMessage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ControlMessage:
    kind: Kind
    job_id: str

    def body(self) -> str:
        return json.dumps({"kind": self.kind.value, "jobId": self.job_id})

    @classmethod
    def parse(cls, body: str) -> ControlMessage:
        try:
            document = json.loads(body)
            kind = Kind(document["kind"])
            job_id = str(document["jobId"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadControlMessage(f"not a job control message: {body[:200]!r}") from exc
        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise BadControlMessage(f"jobId {job_id!r} is not 1-64 of A-Z a-z 0-9 _ -")
        return cls(kind, job_id)


class Controller:
    def __init__(  # noqa: PLR0913 - the parts of the job machinery
        self,
        config: JobsConfig,
        table: JobTable,
        splitter: Splitter,
        assembler: Assembler,
        *,
        sqs: SQSClient,
        log: Any,
    ) -> None:
        self._config, self._table, self._splitter, self._assembler = config, table, splitter, assembler
        self._sqs, self._log = sqs, log

    def handle(self, message: ControlMessage, remaining_ms: Callable[[], int]) -> None:
        if message.kind is Kind.SPLIT:
            try:
                report = self._splitter.split(message.job_id, remaining_ms)
            except InputUnreadable as unreadable:
                self._fail(unreadable)
                return
            self._log.info(
                "job split",
                extra={
                    "job_id": message.job_id,
                    "outcome": report.outcome.value,
                    "sent": report.sent,
                    "refused": report.refused,
                },
            )
            if report.outcome is Split.CONTINUE:
                self._send(ControlMessage(Kind.SPLIT, message.job_id))
            elif report.outcome is Split.DONE:
                ready = self._assembler.ready(report.job)
                self._send(
                    ControlMessage(Kind.WATCH, message.job_id),
                    delay=0 if ready else self._config.watch_seconds,
                )
            return
        job = self._table.get(message.job_id)
        if not self._assembler.ready(job):
            if job.get(J.STATE) in {"running"}:
                self._send(message, delay=self._config.watch_seconds)
            return
        try:
            manifest = self._assembler.assemble(message.job_id)
        except StateMoved as moved:
            self._log.info("job not assembled", extra={"job_id": message.job_id, "state": moved.state})
            return
        self._log.info(
            "job assembled",
            extra={
                "job_id": message.job_id,
                "state": manifest["state"],
                "lines": manifest["lines"],
                "counts": manifest["counts"],
            },
        )

    def _fail(self, unreadable: InputUnreadable) -> None:
        """The job ends `failed` with the reason, and its Job Failed event is published."""
        self._log.error(
            "job failed: input unreadable",
            extra={"job_id": unreadable.job_id, "error_code": unreadable.code, "input": unreadable.key},
        )
        try:
            job = self._table.update(
                unreadable.job_id,
                sets={
                    J.STATE: JobState.FAILED.value,
                    J.ERROR: str(unreadable),
                    J.ENDED_AT: int(time.time() * 1000),
                },
                from_states=[JobState.SUBMITTED, JobState.SPLITTING],
                return_new=True,
            )
        except StateMoved:
            return  # cancelled meanwhile, or another delivery failed it first
        self._assembler.publish(
            JobState.FAILED,
            {
                "jobId": unreadable.job_id,
                "state": JobState.FAILED.value,
                "error": str(unreadable),
                "input": unreadable.key,
                "startedAt": job.get(J.STARTED_AT),
                "endedAt": job.get(J.ENDED_AT),
            },
        )

    def _send(self, message: ControlMessage, delay: int = 0) -> None:
        self._sqs.send_message(
            QueueUrl=self._config.control_queue_url, MessageBody=message.body(), DelaySeconds=min(delay, 900)
        )

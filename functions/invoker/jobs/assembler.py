"""The assembler: when every line of a job has ended, one output JSON Lines file in input order (each
line's result or its error, optionally with its input), a manifest, the job's final state, and an
EventBridge event. The input is read again, in order, beside the lines' ledger items (BatchGetItem, 100
lines a call): its line numbers are the output's order, and its text is what `join: input` adds."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from invoker.contract import (
    JOB_EVENT_DETAIL_TYPES,
    JOB_EVENT_SOURCE,
    JOB_SUCCEEDED_OUTCOME,
    JobState,
    JoinMode,
    LedgerState,
    job_manifest_key,
    job_output_key,
    job_request_id,
)
from invoker.contract import JobAttribute as J
from invoker.contract import LedgerAttribute as A
from invoker.jobs.lines import Line, object_size, read_lines
from invoker.jobs.multipart import MultipartWriter
from invoker.jobs.table import BATCH_GET_KEYS, StateMoved

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

    from invoker.jobs.config import JobsConfig
    from invoker.jobs.table import JobTable

MISSING: Final = "missing"  # a line with no ledger item at all (its item expired, or was never written)


def output_line(
    line: Line, item: dict[str, Any] | None, result: Any, join: JoinMode
) -> tuple[dict[str, Any], str]:
    """One output record and its outcome ("succeeded" or the failure's reason)."""
    record: dict[str, Any] = {"line": line.number, "requestId": None}
    if item is not None:
        record["requestId"] = item.get(A.REQUEST_ID)
    state = item.get(A.STATE) if item else None
    if state == LedgerState.DELIVERED:
        outcome = JOB_SUCCEEDED_OUTCOME
        record.update(status="succeeded", result=result)
    else:
        outcome = str(item.get(A.REASON) or state) if item else MISSING
        record.update(status="failed", reason=outcome, error=item.get(A.ERROR) if item else "no ledger item")
        if item is not None and item.get(A.LAST_REASON):
            record["lastReason"] = item[A.LAST_REASON]
    if join is JoinMode.INPUT:
        record["input"] = _input(line)
    return record, outcome


def _input(line: Line) -> Any:
    text = line.text.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON: kept as the text it was


class Assembler:
    def __init__(
        self,
        config: JobsConfig,
        table: JobTable,
        s3: S3Client,
        events: EventBridgeClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config, self._table, self._s3, self._events = config, table, s3, events
        self._clock = clock

    def ready(self, job: dict[str, Any]) -> bool:
        return job.get(J.STATE) in {JobState.RUNNING, JobState.ASSEMBLING} and int(
            job.get(J.ENDED) or 0
        ) >= int(job.get(J.TOTAL) or 0)

    def assemble(self, job_id: str) -> dict[str, Any]:
        """Writes the output and the manifest, publishes the event, and ends the job; returns the manifest.
        Raises StateMoved when the job is not ready (cancelled, or already assembled)."""
        # running -> assembling; assembling again is allowed (a retried control message after a crash): the
        # output only exists once its multipart upload completes, so a second pass writes the same file.
        job = self._table.update(
            job_id,
            sets={J.STATE: JobState.ASSEMBLING.value},
            from_states=[JobState.RUNNING, JobState.ASSEMBLING],
            return_new=True,
        )
        join = JoinMode(job.get(J.JOIN) or JoinMode.NONE.value)
        output_key = job_output_key(job_id)
        counts: Counter[str] = Counter()
        with MultipartWriter(
            self._s3,
            self._config.bucket,
            output_key,
            part_bytes=self._config.part_bytes,
            content_type="application/jsonl",
        ) as writer:
            for line, item in self._lines_in_order(job_id, job):
                result = self._result(item) if item and item.get(A.STATE) == LedgerState.DELIVERED else None
                record, outcome = output_line(line, item, result, join)
                counts[outcome] += 1
                writer.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        failed = sum(n for outcome, n in counts.items() if outcome != JOB_SUCCEEDED_OUTCOME)
        final = JobState.PARTIALLY_FAILED if failed else JobState.SUCCEEDED
        now_ms = int(self._clock() * 1000)
        manifest = {
            "jobId": job_id,
            "state": final.value,
            "endpoint": self._config.endpoint_name,
            "input": f"s3://{self._config.bucket}/{job[J.INPUT]}",
            "output": f"s3://{self._config.bucket}/{output_key}",
            "lines": sum(counts.values()),
            "succeeded": counts[JOB_SUCCEEDED_OUTCOME],
            "failed": failed,
            "counts": dict(sorted(counts.items())),
            "submittedAt": job.get(J.SUBMITTED_AT),
            "startedAt": job.get(J.STARTED_AT),
            "splitAt": job.get(J.SPLIT_AT),
            "endedAt": now_ms,
            "configuration": {
                "join": join.value,
                "maxBacklog": self._config.max_backlog,
                "partBytes": self._config.part_bytes,
            },
            "outputBytes": writer.bytes_written,
            "outputParts": len(writer.part_sizes),
        }
        manifest_key = job_manifest_key(job_id)
        self._s3.put_object(
            Bucket=self._config.bucket,
            Key=manifest_key,
            Body=json.dumps(manifest, indent=2).encode(),
            ContentType="application/json",
        )
        # Published before the final state: a crash between the two publishes twice (a retried control
        # message), never not at all. EventBridge itself delivers at least once.
        self.publish(final, manifest)
        # Another pass may have ended it first: same output, same counts.
        with contextlib.suppress(StateMoved):
            self._table.update(
                job_id,
                sets={
                    J.STATE: final.value,
                    J.ENDED_AT: now_ms,
                    J.OUTPUT: output_key,
                    J.MANIFEST: manifest_key,
                },
                from_states=[JobState.ASSEMBLING],
            )
        return manifest

    def _lines_in_order(
        self, job_id: str, job: dict[str, Any]
    ) -> Iterator[tuple[Line, dict[str, Any] | None]]:
        key = str(job[J.INPUT])
        size = int(job.get(J.INPUT_BYTES) or object_size(self._s3, self._config.bucket, key))
        pending: list[Line] = []
        for line in read_lines(self._s3, self._config.bucket, key, size=size):
            pending.append(line)
            if len(pending) == BATCH_GET_KEYS:
                yield from self._with_items(job_id, pending)
                pending = []
        if pending:
            yield from self._with_items(job_id, pending)

    def _with_items(self, job_id: str, lines: list[Line]) -> Iterator[tuple[Line, dict[str, Any] | None]]:
        items = self._table.lines(job_id, [line.number for line in lines])
        for line in lines:
            yield line, items.get(line.number)

    def _result(self, item: dict[str, Any]) -> Any:
        if item.get(A.RESULT) is not None:
            return json.loads(item[A.RESULT])
        uri = item.get(A.RESULT_S3_URI)
        if isinstance(uri, str) and uri.startswith("s3://"):
            bucket, _, key = uri[5:].partition("/")
            return json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return None

    def publish(self, final: JobState, manifest: dict[str, Any]) -> None:
        answer = self._events.put_events(
            Entries=[
                {
                    "Source": JOB_EVENT_SOURCE,
                    "DetailType": JOB_EVENT_DETAIL_TYPES[final],
                    "Detail": json.dumps(manifest),
                    "EventBusName": self._config.event_bus,
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            codes = [
                entry.get("ErrorCode", "") for entry in answer.get("Entries", []) if entry.get("ErrorCode")
            ]
            raise RuntimeError(
                f"job {manifest['jobId']}: completion event not published ({', '.join(codes)})"
            )


__all__ = ["Assembler", "StateMoved", "job_request_id"]

"""A route's jobs as the CLI handles them: submit (input to the route's bucket, the job's item, the first
control message), read, list and cancel, through the function's own job table code (invoker.jobs.table),
so the CLI writes exactly the item the splitter reads."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoker.contract import JOB_FINAL_STATES, JobState, job_input_key, ledger_key_prefix
from invoker.contract import JobAttribute as J
from invoker.jobs.control import ControlMessage, Kind
from invoker.jobs.lines import read_lines
from invoker.jobs.table import JobNotFound, JobTable, StateMoved

from sqs_sagemaker_invoker.cli.errors import CliError

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.cli.target import Route, Target

# `invoker job wait` exit codes: a script can tell the three endings apart.
EXIT_SUCCEEDED = 0
EXIT_PARTIALLY_FAILED = 1
EXIT_NOT_DONE = 2  # cancelled or failed
EXIT_CODES = {
    JobState.SUCCEEDED: EXIT_SUCCEEDED,
    JobState.PARTIALLY_FAILED: EXIT_PARTIALLY_FAILED,
    JobState.CANCELLED: EXIT_NOT_DONE,
    JobState.FAILED: EXIT_NOT_DONE,
}


@dataclass(frozen=True)
class JobRoute:
    route: Route
    table: JobTable
    bucket: str
    control_queue_url: str


def job_route(target: Target, route: Route) -> JobRoute:
    missing = [
        what
        for what, value in (
            ("jobs.enabled", route.job_control_queue_url),
            ("ledger.enabled", route.ledger_table),
            ("results.bucket", route.results_bucket),
        )
        if not value
    ]
    if missing:
        raise CliError(
            f"route {route.name} has no jobs (cdk.json: the route's {', '.join(missing)}, then deploy)"
        )
    assert route.ledger_table is not None
    assert route.results_bucket is not None
    assert route.job_control_queue_url is not None
    table = JobTable(
        target.client("dynamodb"),
        table=route.ledger_table,
        key_prefix=ledger_key_prefix(route.name),
        endpoint_name=route.endpoint_name or "",
    )
    return JobRoute(route, table, route.results_bucket, route.job_control_queue_url)


def new_job_id() -> str:
    """Sortable by submission time, unique by its random tail: 20261129T033000-9f1c2ab4."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def submit(target: Target, jobs: JobRoute, source: str, *, join: str, job_id: str | None = None) -> str:
    job_id = job_id or new_job_id()
    key = job_input_key(job_id)
    s3 = target.s3()
    if source.startswith("s3://"):
        bucket, _, source_key = source[5:].partition("/")
        if not bucket or not source_key:
            raise CliError(f"{source!r} is not an s3://bucket/key URI")
        size = s3.head_object(Bucket=bucket, Key=source_key)["ContentLength"]
        s3.copy({"Bucket": bucket, "Key": source_key}, jobs.bucket, key)  # managed: multipart when large
    else:
        path = Path(source)
        if not path.is_file():
            raise CliError(f"{source}: no such file")
        size = path.stat().st_size
        s3.upload_file(str(path), jobs.bucket, key)  # managed: multipart when large
    try:
        jobs.table.create(job_id, input_key=key, input_bytes=size, join=join)
    except StateMoved as taken:
        raise CliError(f"job {job_id} already exists") from taken
    target.sqs().send_message(
        QueueUrl=jobs.control_queue_url, MessageBody=ControlMessage(Kind.SPLIT, job_id).body()
    )
    return job_id


def read(jobs: JobRoute, job_id: str) -> dict[str, Any]:
    try:
        return jobs.table.get(job_id)
    except JobNotFound as exc:
        raise CliError(f"no job {job_id!r} on route {jobs.route.name}") from exc


def job_ids(target: Target, jobs: JobRoute) -> list[str]:
    """The route's jobs, from its bucket's jobs/ folders (a listing by job, not a scan of every request)."""
    ids: list[str] = []
    for page in (
        target.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=jobs.bucket, Prefix="jobs/", Delimiter="/")
    ):
        ids += [p["Prefix"].removeprefix("jobs/").rstrip("/") for p in page.get("CommonPrefixes", [])]
    return sorted(ids)


@dataclass(frozen=True)
class Cancelled:
    job: dict[str, Any]
    sent: int
    not_sent: int


def cancel(target: Target, jobs: JobRoute, job_id: str, *, settle_seconds: float = 1.0) -> Cancelled:
    try:
        job = jobs.table.update(
            job_id,
            sets={J.STATE: JobState.CANCELLED.value, J.ENDED_AT: int(time.time() * 1000)},
            from_states=[JobState.SUBMITTED, JobState.SPLITTING, JobState.RUNNING],
            return_new=True,
        )
    except JobNotFound as exc:
        raise CliError(f"no job {job_id!r} on route {jobs.route.name}") from exc
    except StateMoved as moved:
        raise CliError(f"job {job_id} is {moved.state}: nothing to cancel") from moved
    if job.get(J.TOTAL) is None:
        # The splitter checks the state before each send batch: give a batch under way time to be counted.
        time.sleep(settle_seconds)
        job = jobs.table.get(job_id)
    total = job.get(J.TOTAL)
    if total is None:
        lines = read_lines(
            target.s3(),
            jobs.bucket,
            str(job[J.INPUT]),
            size=int(job[J.INPUT_BYTES]),
            offset=int(job.get(J.OFFSET) or 0),
        )
        total = int(job.get(J.LINES) or 0) + sum(1 for _ in lines)
    sent = int(job.get(J.SENT) or 0)
    return Cancelled(job, sent, int(total) - sent)


def estimated_total(job: dict[str, Any]) -> int | None:
    """Every line, or while splitting an estimate from the bytes read so far."""
    if job.get(J.TOTAL) is not None:
        return int(job[J.TOTAL])
    offset, size, lines = (
        int(job.get(J.OFFSET) or 0),
        int(job.get(J.INPUT_BYTES) or 0),
        int(job.get(J.LINES) or 0),
    )
    if not offset or not lines:
        return None
    return max(lines, round(lines * size / offset))


def eta_seconds(job: dict[str, Any], now_ms: float | None = None) -> float | None:
    """From the rate at which lines have ended since the split started."""
    started, ended, total = job.get(J.STARTED_AT), int(job.get(J.ENDED) or 0), estimated_total(job)
    if started is None or not ended or total is None or job.get(J.STATE) in JOB_FINAL_STATES:
        return None
    elapsed = ((now_ms or time.time() * 1000) - int(started)) / 1000
    return max(0.0, (total - ended) / (ended / elapsed)) if elapsed > 0 else None

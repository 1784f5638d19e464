"""``demo --scenario job``: a JSON Lines file in, one file out, on the local stack.

A 10,000-line input (by default) with a share of bad lines (not JSON, a bad envelope: refused by the
splitter, never sent) and of lines the model rejects (2 features where it wants 4: ModelError) is submitted
to a route with the ledger and jobs enabled; the splitter sends the rest paced to the route, the function
invokes the scikit-learn model, and the assembler writes the output. The demo then downloads it and checks
it line by line against the input: every line present, in order, each the result or the error reason its
kind calls for, joined with its input. Exit 0 only if it all matches.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from invoker.contract import JOB_EVENT_SOURCE, JOB_FINAL_STATES, job_input_key, ledger_key_prefix
from invoker.contract import JobAttribute as J
from invoker.jobs.control import ControlMessage, Kind
from invoker.jobs.table import JobTable
from rich.console import Console

from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.context import read_context
from sqs_sagemaker_invoker.local.demo.workload import _row
from sqs_sagemaker_invoker.local.stack import ROOT, LocalStack, StackOptions

if TYPE_CHECKING:
    from pathlib import Path

ROUTE = "jobs"
JOB_ID = "demo-job"
# Share of each kind of line, and what its output line must say.
KINDS: tuple[tuple[str, float, str | None], ...] = (
    ("model_error", 0.03, "model_error"),
    ("not_json", 0.02, "invalid_message"),
    ("bad_envelope", 0.02, "invalid_message"),
)


@dataclass
class JobDemoConfig:
    lines: int = 10_000
    # 10,000 lines take 12-25 minutes here: the local pipeline runs 7-15 lines/s, bound by the one moto
    # server (every line is a few SQS, DynamoDB and S3 calls); `--requests 1000` runs in about 70 s.
    timeout_s: float = 2400.0
    # A shallow request queue: moto's receives cost more the deeper a queue is.
    max_backlog: int = 100
    seed: int = 7


@dataclass
class JobSummary:
    lines: int = 0
    seconds: float = 0.0
    state: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    output_bytes: int = 0
    event_seen: bool = False

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.state is not None and self.lines > 0


def build_input(lines: int, seed: int) -> tuple[bytes, list[str | None]]:
    """The input, and per line the failure reason its output must carry (None: a result)."""
    rng = random.Random(seed)
    texts: list[str] = []
    expected: list[str | None] = []
    for _ in range(lines):
        draw, kind, reason = rng.random(), "good", None
        for name, share, why in KINDS:
            if draw < share:
                kind, reason = name, why
                break
            draw -= share
        if kind == "model_error":
            texts.append(json.dumps({"body": {"instances": [[1.0, 2.0]]}}))
        elif kind == "not_json":
            texts.append("instances: [[5.1, 3.5, 1.4, 0.2]]")
        elif kind == "bad_envelope":
            texts.append(json.dumps({"body": {"instances": [_row(rng)]}, "bodyText": "two bodies"}))
        else:
            texts.append(json.dumps({"body": {"instances": [_row(rng)]}}))
        expected.append(reason)
    return ("\n".join(texts) + "\n").encode(), expected


class JobDemo:
    def __init__(
        self, config: JobDemoConfig, console: Console | None = None, state_dir: Path | None = None
    ) -> None:
        self.config = config
        self.console = console or Console()
        self.state_dir = state_dir

    def context(self) -> dict[str, Any]:
        context = read_context(ROOT / "cdk.json")
        app = context["invoker"]
        if isinstance(app, str):
            app = json.loads(app)
        base: dict[str, Any] = next((r for r in app.get("routes", []) if not r.get("fifo")), {})
        route = {
            **base,
            "name": ROUTE,
            "fifo": False,
            "maxConcurrency": 4,
            # The job's output is the results' reader: no results queue to fill (moto's SQS slows with depth).
            "results": {"queue": False, "bucket": True},
            "largePayloads": False,
            "capacity": {"mode": "perInstance"},
            "ledger": {"enabled": True},
            "jobs": {
                "enabled": True,
                "maxBacklog": self.config.max_backlog,
                "join": "input",
                "watchSeconds": 1,
            },
        }
        return {**context, "invoker": {**app, "routes": [route]}}

    def run(self) -> JobSummary:
        data, expected = build_input(self.config.lines, self.config.seed)
        options = StackOptions(context=self.context(), prewarm=True)
        if self.state_dir is not None:
            options.state_dir = self.state_dir
        self.console.print(f"[bold]Starting the local stack[/] (route [cyan]{ROUTE}[/], ledger and jobs on)")
        with LocalStack(options) as stack:
            resources = stack.route(ROUTE)
            events = self._event_queue(stack)
            assert resources.results_bucket is not None
            assert resources.ledger_table is not None
            table = JobTable(
                stack.dynamodb(),
                table=resources.ledger_table,
                key_prefix=ledger_key_prefix(ROUTE),
                endpoint_name=resources.route.endpoint_name,
            )
            key = job_input_key(JOB_ID)
            started = time.monotonic()
            stack.s3().put_object(Bucket=resources.results_bucket, Key=key, Body=data)
            table.create(JOB_ID, input_key=key, input_bytes=len(data), join="input")
            stack.sqs().send_message(
                QueueUrl=stack.jobs[ROUTE].control_queue_url,
                MessageBody=ControlMessage(Kind.SPLIT, JOB_ID).body(),
            )
            self.console.print(
                f"submitted job [cyan]{JOB_ID}[/]: {self.config.lines} lines, {len(data)} bytes"
            )
            job = self._wait(table, started)
            summary = JobSummary(
                lines=self.config.lines,
                seconds=time.monotonic() - started,
                state=job.get(J.STATE),
                counts=dict(job.get(J.COUNTS) or {}),
            )
            if job.get(J.STATE) not in JOB_FINAL_STATES:
                summary.mismatches.append(f"job still {job.get(J.STATE)} after {self.config.timeout_s:.0f} s")
                return summary
            body = (
                stack.s3().get_object(Bucket=resources.results_bucket, Key=str(job[J.OUTPUT]))["Body"].read()
            )
            summary.output_bytes = len(body)
            summary.mismatches += check_output(body, data, expected)
            summary.event_seen = self._event_seen(stack, events)
            return summary

    def _wait(self, table: JobTable, started: float) -> dict[str, Any]:
        last = ""
        while True:
            job = table.get(JOB_ID)
            line = f"{job.get(J.STATE)}: read {job.get(J.LINES)}, sent {job.get(J.SENT)}, ended {job.get(J.ENDED)}"
            if line != last:
                self.console.print(f"  {time.monotonic() - started:6.1f} s  {line}", highlight=False)
                last = line
            if job.get(J.STATE) in JOB_FINAL_STATES or time.monotonic() - started > self.config.timeout_s:
                return job
            time.sleep(2.0)

    def _event_queue(self, stack: LocalStack) -> str:
        """A rule on the default bus sending job events to a queue, as a user would wire one."""
        sqs = stack.sqs()
        url = sqs.create_queue(QueueName="job-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", **client_kwargs(stack.moto.url or ""))
        events.put_rule(Name="job-ends", EventPattern=json.dumps({"source": [JOB_EVENT_SOURCE]}))
        events.put_targets(Rule="job-ends", Targets=[{"Id": "queue", "Arn": arn}])
        return url

    def _event_seen(self, stack: LocalStack, url: str) -> bool:
        got = stack.sqs().receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
        return any(json.loads(m["Body"]).get("detail", {}).get("jobId") == JOB_ID for m in got)

    def print_summary(self, summary: JobSummary) -> None:
        failed = {k: v for k, v in summary.counts.items() if k != "succeeded"}
        self.console.print(
            f"\n[bold]job {JOB_ID}[/]: {summary.state}, {summary.lines} lines in {summary.seconds:.1f} s "
            f"({summary.lines / max(summary.seconds, 0.001):.0f} lines/s)\n"
            f"  results: {summary.counts.get('succeeded', 0)}\n"
            f"  errors by reason: {json.dumps(dict(sorted(failed.items())))}\n"
            f"  output: {summary.output_bytes} bytes; completion event on the default bus: "
            f"{'received' if summary.event_seen else 'not seen'}",
            highlight=False,
        )
        if summary.ok:
            self.console.print(
                "[bold green]PASS[/]: every line in order, each its result or its expected error"
            )
        else:
            self.console.print(f"[bold red]FAIL[/]: {len(summary.mismatches)} mismatches")
            for text in summary.mismatches[:20]:
                self.console.print(f"  {text}", highlight=False)


def check_output(body: bytes, data: bytes, expected: list[str | None]) -> list[str]:
    """Line by line: the output has every input line, in order, with its result or its expected reason."""
    mismatches: list[str] = []
    records = body.decode().splitlines()
    inputs = data.decode().splitlines()
    if len(records) != len(inputs):
        mismatches.append(f"{len(records)} output lines for {len(inputs)} input lines")
    tally: Counter[str] = Counter()
    for number, (text, record_text, reason) in enumerate(
        zip(inputs, records, expected, strict=False), start=1
    ):
        record = json.loads(record_text)
        try:
            joined = json.loads(text)
        except ValueError:
            joined = text
        problems = []
        if record.get("line") != number:
            problems.append(f"line {record.get('line')}")
        if record.get("input") != joined:
            problems.append("input not joined")
        if reason is None:
            if record.get("status") != "succeeded" or "predictions" not in json.dumps(record.get("result")):
                problems.append(f"expected a result, got {record.get('status')} {record.get('reason')}")
        elif (record.get("status"), record.get("reason")) != ("failed", reason):
            problems.append(f"expected {reason}, got {record.get('status')} {record.get('reason')}")
        tally["ok" if not problems else "bad"] += 1
        if problems:
            mismatches.append(f"line {number}: " + ", ".join(problems))
    return mismatches

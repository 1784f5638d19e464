"""`invoker job` against the local stack's moto: submit uploads the input, creates the job and starts its
split; the job machinery (the real splitter, ledger and assembler) runs in-process; status, wait (its exit
codes), list and cancel read and move what they wrote."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import boto3
from invoker.config import LedgerSettings
from invoker.contract import LedgerState, Reason
from invoker.envelope import parse_envelope
from invoker.jobs.assembler import Assembler
from invoker.jobs.config import JobsConfig
from invoker.jobs.control import Controller, ControlMessage
from invoker.jobs.pacing import Pacer
from invoker.jobs.splitter import Splitter
from invoker.jobs.table import JobTable
from invoker.ledger import Outcome, RequestLedger
from invoker.observability import BatchObservations
from invoker.records import RecordInfo
from invoker.writing import ResultWritten

from sqs_sagemaker_invoker.local.jobs import create_job_resources
from sqs_sagemaker_invoker.local.ledger_table import create_ledger_table
from tests.support.cli_stack import client_kwargs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.cli_stack import CliStack

ROUTES: list[dict[str, Any]] = [
    {
        "name": "demo",
        "endpointName": "demo-endpoint",
        "capacity": {"mode": "perInstance"},
        "results": {"queue": True, "bucket": True},
        "ledger": {"enabled": True},
        "jobs": {"enabled": True},
    },
    {"name": "plain", "endpointName": "plain-endpoint"},
]
GOOD = '{"body": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}'


class Machinery:
    """The job function's parts and the invoker function's ledger, on the stack's moto."""

    def __init__(self, stack: CliStack, table: str, control_url: str) -> None:
        def client(service: str) -> Any:
            return boto3.client(service, **client_kwargs(stack.moto_url))  # type: ignore[call-overload]

        route = stack.routes["demo"]
        assert route.results_bucket is not None
        self.config = JobsConfig(
            endpoint_name="demo-endpoint", table=table, key_prefix="demo/", expire_days=30,
            request_queue_url=route.request_queue_url, control_queue_url=control_url,
            bucket=route.results_bucket, max_backlog=1000, watch_seconds=1,
        )  # fmt: skip
        self.sqs, self.dynamodb = client("sqs"), client("dynamodb")
        jobs = JobTable.of(self.dynamodb, self.config)
        pacer = Pacer(self.sqs, route.request_queue_url, lambda: 1000)
        self.splitter = Splitter(self.config, jobs, client("s3"), self.sqs, pacer, send_calls=1)
        self.controller = Controller(
            self.config, jobs, self.splitter, Assembler(self.config, jobs, client("s3"), client("events")),
            sqs=self.sqs, log=_Quiet(),
        )  # fmt: skip
        self.ledger = RequestLedger(
            LedgerSettings(table=table, key_prefix="demo/", dedupe_seconds=86_400, expire_days=30),
            self.dynamodb,
            endpoint_name="demo-endpoint",
        )
        self.control_url = control_url

    def take_control(self) -> ControlMessage:
        [message] = self.sqs.receive_message(
            QueueUrl=self.control_url, MaxNumberOfMessages=1, WaitTimeSeconds=5
        )["Messages"]
        self.sqs.delete_message(QueueUrl=self.control_url, ReceiptHandle=message["ReceiptHandle"])
        return ControlMessage.parse(message["Body"])

    def end_every_sent_line(self, request_queue_url: str) -> None:
        """What the invoker function does: each request delivered, or a model error for line 3."""
        while messages := self.sqs.receive_message(QueueUrl=request_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                body = json.loads(message["Body"])
                info = RecordInfo(
                    message["MessageId"], 1, "", None, body["requestId"], body["jobId"], body["line"]
                )
                observed = BatchObservations()
                request = parse_envelope(message["Body"], info.message_id, None)
                claim = self.ledger.claim(
                    info, request, remaining_ms=60_000, redrive=False, observed=observed
                )
                outcome = (
                    Outcome(LedgerState.DEAD_LETTERED, reason=Reason.MODEL_ERROR, error="ModelError")
                    if body["line"] == 3
                    else Outcome(
                        LedgerState.DELIVERED, result=ResultWritten(document='{"body": {"ok": true}}')
                    )
                )
                self.ledger.record(info, outcome, claim=claim, observed=observed)
                self.ledger.drain(observed, None)
                self.sqs.delete_message(QueueUrl=request_queue_url, ReceiptHandle=message["ReceiptHandle"])


class _Quiet:
    def __getattr__(self, _name: str) -> Any:
        return lambda *_a, **_k: None


def _jobs_stack(make_cli_stack: Callable[..., CliStack]) -> tuple[CliStack, Machinery]:
    stack = make_cli_stack(ROUTES)
    table = create_ledger_table(stack.app, stack.moto_url)
    assert table is not None
    resources = dataclasses.replace(stack.routes["demo"], ledger_table=table)
    jobs = create_job_resources(stack.app, resources, stack.moto_url)
    # The outputs the local stack writes for a route with the ledger and jobs.
    stack.outputs.update({"RouteDemoLedgerTableName": table, **jobs.outputs("demo")})
    (stack.state_dir / "outputs.json").write_text(json.dumps(stack.outputs), encoding="utf-8")
    return stack, Machinery(stack, table, jobs.control_queue_url)


def _input(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "input.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_submit_wait_status_and_list(make_cli_stack: Callable[..., CliStack], tmp_path: Path) -> None:
    # GIVEN a route with jobs and a 5-line input, one of them not JSON
    stack, machinery = _jobs_stack(make_cli_stack)
    source = _input(tmp_path, [GOOD, GOOD, GOOD, "oops", GOOD])
    # WHEN it is submitted
    submitted = stack.invoke("job", "submit", str(source), "--route", "demo", "--join", "input")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    # THEN the split was started; AND WHEN the job function and the invoker function do their work
    start = machinery.take_control()
    assert (start.kind.value, start.job_id) == ("split", job_id)
    machinery.controller.handle(start, lambda: 600_000)
    machinery.end_every_sent_line(stack.routes["demo"].request_queue_url)
    machinery.controller.handle(machinery.take_control(), lambda: 600_000)  # the watch: every line ended
    # THEN wait exits 1 (partially failed) with the counts, status says the same, list shows the job
    waited = stack.invoke("job", "wait", job_id, "--route", "demo", "--interval", "0.2")
    status = stack.invoke("job", "status", job_id, "--route", "demo", "--json")
    listed = stack.invoke("job", "list", "--route", "demo")
    assert waited.exit_code == 1, waited.stderr
    summary = json.loads(status.stdout)
    assert summary["state"] == "partially_failed"
    assert summary["counts"] == {"succeeded": 3, "model_error": 1, "invalid_message": 1}
    assert json.loads(waited.stdout)["lines"] == 5
    assert job_id in listed.stdout
    assert "partially_failed" in listed.stdout
    output = stack.s3().get_object(Bucket=stack.routes["demo"].results_bucket or "", Key=summary["output"])
    records = [json.loads(line) for line in output["Body"].read().decode().splitlines()]
    assert [(r["line"], r["status"]) for r in records] == [
        (1, "succeeded"), (2, "succeeded"), (3, "failed"), (4, "failed"), (5, "succeeded"),
    ]  # fmt: skip


def test_cancel_says_how_many_lines_went(make_cli_stack: Callable[..., CliStack], tmp_path: Path) -> None:
    # GIVEN a 25-line job whose split sent one batch of 10 before its invocation ran out of time
    stack, machinery = _jobs_stack(make_cli_stack)
    job_id = stack.invoke(
        "job", "submit", str(_input(tmp_path, [GOOD] * 25)), "--route", "demo"
    ).stdout.strip()
    calls = iter([600_000, 0, 0, 0])
    machinery.controller.handle(machinery.take_control(), lambda: next(calls, 0))
    # WHEN it is cancelled
    cancelled = stack.invoke("job", "cancel", job_id, "--route", "demo")
    # THEN it says 10 lines went and 15 did not; wait exits 2; the continuation sends nothing more
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "10 lines sent, 15 not sent" in cancelled.stdout
    assert stack.invoke("job", "wait", job_id, "--route", "demo").exit_code == 2
    machinery.controller.handle(machinery.take_control(), lambda: 600_000)
    assert stack.counts(stack.routes["demo"].request_queue_url)[0] == 10


def test_a_route_without_jobs_is_a_one_line_error(
    make_cli_stack: Callable[..., CliStack], tmp_path: Path
) -> None:
    stack, _ = _jobs_stack(make_cli_stack)
    refused = stack.invoke("job", "submit", str(_input(tmp_path, [GOOD])), "--route", "plain")
    assert refused.exit_code != 0
    assert "route plain has no jobs" in refused.stderr

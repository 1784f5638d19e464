"""`invoker request ID` against the local stack's moto: the ledger as the function writes it (the real
RequestLedger), the result read from where the ledger says, clear errors otherwise."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from invoker.config import LedgerSettings
from invoker.contract import LedgerState, Reason
from invoker.envelope import parse_envelope
from invoker.ledger import Outcome, RequestLedger
from invoker.observability import BatchObservations
from invoker.records import RecordInfo
from invoker.writing import ResultWritten

from sqs_sagemaker_invoker.local.ledger_table import create_ledger_table
from tests.support.cli_stack import client_kwargs

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.cli_stack import CliStack

ROUTES: list[dict[str, Any]] = [
    {
        "name": "demo",
        "endpointName": "demo-endpoint",
        "results": {"queue": False, "bucket": True},
        "ledger": {"enabled": True},
    },
    {"name": "plain", "endpointName": "plain-endpoint"},
]


def _stack_with_ledger(make_cli_stack: Callable[..., CliStack]) -> tuple[CliStack, str]:
    stack = make_cli_stack(ROUTES)
    table = create_ledger_table(stack.app, stack.moto_url)
    assert table is not None
    # The outputs the local stack writes for a route with the ledger.
    stack.outputs["RouteDemoLedgerTableName"] = table
    (stack.state_dir / "outputs.json").write_text(json.dumps(stack.outputs), encoding="utf-8")
    return stack, table


def _write(table: str, url: str, request_id: str, outcome: Outcome) -> None:
    """What the function writes for one delivery: its claim, then its outcome."""
    ledger = RequestLedger(
        LedgerSettings(table=table, key_prefix="demo/", dedupe_seconds=86_400, expire_days=30),
        boto3.client("dynamodb", **client_kwargs(url)),
        endpoint_name="demo-endpoint",
    )
    body = json.dumps({"requestId": request_id, "body": 1, "jobId": "job-9", "line": 12})
    info = RecordInfo(
        message_id=f"m-{request_id}", receive_count=1, source_arn="", group_id=None, request_id=request_id
    )
    observed = BatchObservations()
    claim = ledger.claim(
        info,
        parse_envelope(body, info.message_id, None),
        remaining_ms=60_000,
        redrive=False,
        observed=observed,
    )
    assert claim is not None
    ledger.record(info, outcome, claim=claim, observed=observed)
    assert ledger.drain(observed, None)["failures"] == 0


def test_request_shows_the_timeline_and_the_result_from_s3(make_cli_stack: Callable[..., CliStack]) -> None:
    # GIVEN a delivered request whose result document is in the route's bucket
    stack, table = _stack_with_ledger(make_cli_stack)
    bucket = stack.routes["demo"].results_bucket
    assert bucket is not None
    s3 = boto3.client("s3", **client_kwargs(stack.moto_url))
    s3.put_object(
        Bucket=bucket, Key="results/r-1.json", Body=b'{"requestId": "r-1", "body": {"label": "setosa"}}'
    )
    _write(
        table,
        stack.moto_url,
        "r-1",
        Outcome(LedgerState.DELIVERED, result=ResultWritten(s3_uri=f"s3://{bucket}/results/r-1.json")),
    )
    # WHEN asked about it, as a table and as JSON
    shown = stack.invoke("request", "r-1", "--route", "demo")
    as_json = stack.invoke("request", "r-1", "--route", "demo", "--json")
    # THEN the timeline, the state, the job, the result and the trace command line are there
    assert shown.exit_code == as_json.exit_code == 0, (shown.stderr, as_json.stderr)
    assert "invoking" in shown.stdout
    assert "state: delivered" in shown.stdout
    assert "job-9, line 12" in shown.stdout
    assert "setosa" in shown.stdout
    assert "invoker trace r-1 --local --route demo" in shown.stdout
    document = json.loads(as_json.stdout)
    assert [step["state"] for step in document["timeline"]] == ["invoking", "delivered"]
    assert document["result"]["body"] == {"label": "setosa"}
    assert document["traceCommand"] == "invoker trace r-1 --local --route demo"


def test_request_shows_a_dead_letter_reason(make_cli_stack: Callable[..., CliStack]) -> None:
    stack, table = _stack_with_ledger(make_cli_stack)
    outcome = Outcome(
        LedgerState.DEAD_LETTERED,
        reason=Reason.MODEL_ERROR,
        error="ModelError",
        dead_letter_message_id="letter-1",
    )
    _write(table, stack.moto_url, "r-2", outcome)
    shown = stack.invoke("request", "r-2", "--route", "demo")
    assert shown.exit_code == 0, shown.stderr
    assert "dead-lettered: model_error: ModelError" in shown.stdout
    assert "letter letter-1" in shown.stdout


def test_request_errors_are_one_line(make_cli_stack: Callable[..., CliStack]) -> None:
    # GIVEN a stack with a ledger route and a route without
    stack, _ = _stack_with_ledger(make_cli_stack)
    # WHEN asked about an unknown id, a malformed one, and a route without the ledger
    unknown = stack.invoke("request", "never-sent", "--route", "demo")
    malformed = stack.invoke("request", "x y", "--route", "demo")
    no_ledger = stack.invoke("request", "r-1", "--route", "plain")
    # THEN each fails in one line saying why
    assert unknown.exit_code == malformed.exit_code == no_ledger.exit_code == 1
    assert unknown.stderr.startswith("error: no request 'never-sent' in the ledger of route demo")
    assert "is not a request id" in malformed.stderr
    assert no_ledger.stderr.startswith("error: route plain has no request ledger")
    assert all(r.stderr.count("\n") == 1 for r in (unknown, malformed, no_ledger))

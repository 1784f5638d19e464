"""`invoker status` and `invoker trace` against a moto server over HTTP (CloudWatch, Logs, SQS)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.local.aws import create_alarms
from tests.support.cli_stack import DEMO_ROUTE, STACK_NAME

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDatumTypeDef
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

    from tests.support.cli_stack import CliStack


SERVICE: list[DimensionTypeDef] = [{"Name": "service", "Value": "invoker"}]


def _metric(name: str, values: list[float], minutes_ago: int, **dims: str) -> MetricDatumTypeDef:
    dimensions: list[DimensionTypeDef] = [{"Name": "endpoint", "Value": "demo-endpoint"}, *SERVICE]
    dimensions += [{"Name": k, "Value": v} for k, v in dims.items()]
    return {
        "MetricName": name,
        "Dimensions": dimensions,
        "Values": values,
        "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes_ago),
        "Unit": "Milliseconds" if name == "InvocationLatency" else "Count",
    }


def test_status_shows_depths_dead_letters_alarms_and_metrics(make_cli_stack: Callable[..., CliStack]) -> None:
    # GIVEN a route with waiting requests, dead letters, the stack's alarms (one firing) and an hour of
    # the function's metrics as its EMF lines publish them ({service, endpoint} and {..., reason})
    stack = make_cli_stack([DEMO_ROUTE])
    route = stack.route()
    for i in range(4):
        stack.sqs().send_message(
            QueueUrl=route.request_queue_url, MessageBody=json.dumps({"bodyText": str(i)})
        )
    for i in range(3):
        stack.dead_letter("x", reason="model_error" if i else "invalid_message", request_id=f"d-{i}")
    alarms = create_alarms(stack.app, route, stack.moto_url, "arn:aws:sns:us-east-1:123456789012:alarms")
    stack.cloudwatch().set_alarm_state(AlarmName=alarms[0], StateValue="ALARM", StateReason="DLQ not empty")
    stack.cloudwatch().put_metric_data(
        Namespace="SqsSageMakerInvoker",
        MetricData=[
            _metric("Invocations", [5], 50),
            _metric("Invocations", [7], 10),
            _metric("Succeeded", [11], 10),
            _metric("InvocationLatency", [10.0, 20.0, 30.0], 10),
            _metric("DeadLettered", [1], 10, reason="model_error"),
            _metric("Retried", [3], 20, reason="throttled"),
        ],
    )

    # WHEN the status is shown, as text and as JSON
    text = stack.invoke("status")
    as_json = stack.invoke("status", "--json")

    # THEN every part is there
    assert text.exit_code == as_json.exit_code == 0, (text.stderr, as_json.stderr)
    (document,) = json.loads(as_json.stdout)
    queues = {q["queue"]: q for q in document["queues"]}
    assert queues[route.request_queue_url.rsplit("/", 1)[-1]]["visible"] == 4
    assert queues[route.dead_letter_queue_url.rsplit("/", 1)[-1]]["visible"] == 3
    assert document["deadLettersByReason"] == {"model_error": 2, "invalid_message": 1}
    states = {a["name"]: a["state"] for a in document["alarms"]}
    assert states[f"{STACK_NAME}-demo-dead-letters"] == "ALARM"
    assert len(states) == 4
    totals = {m["label"]: m["total"] for m in document["metrics"]}
    assert totals == {
        "Invocations": 12,
        "Succeeded": 11,
        "DeadLettered (model_error)": 1,
        "Retried (throttled)": 3,
    }
    assert document["latencyMs"]["Maximum"] == 30.0  # moto has no percentiles: the fallback statistics
    assert "model_error 2" in text.stdout
    assert "ALARM" in text.stdout
    assert "Retried (throttled)" in text.stdout
    sparklines = [line for line in text.stdout.splitlines() if "Invocations" in line]
    assert any("█" in line for line in sparklines)
    # AND the DLQ sample was put back
    assert stack.counts(route.dead_letter_queue_url) == (3, 0)


def _log(offset_ms: int, **fields: Any) -> InputLogEventTypeDef:
    document = {"level": "INFO", "service": "invoker", "endpoint": "demo-endpoint", **fields}
    return {"timestamp": int(time.time() * 1000) - 60_000 + offset_ms, "message": json.dumps(document)}


def _write_logs(stack: CliStack) -> None:
    logs = stack.logs()
    group = f"/aws/lambda/{stack.route().function_name}"
    for stream in ("2026/11/27/[$LATEST]aaa", "2026/11/27/[$LATEST]bbb"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/11/27/[$LATEST]aaa",
        logEvents=[
            {"timestamp": int(time.time() * 1000) - 61_000, "message": "START RequestId: 1 Version: $LATEST"},
            _log(
                0,
                message="retry later",
                request_id="t-1",
                message_id="m-1",
                disposition="retry",
                reason="throttled",
                receive_count=1,
            ),
            _log(
                10,
                message="delivered",
                request_id="other",
                message_id="m-9",
                disposition="deliver",
                receive_count=1,
            ),
            _log(
                2000,
                message="retry later",
                request_id="t-1",
                message_id="m-1",
                disposition="retry",
                reason="throttled",
                receive_count=2,
            ),
        ],
    )
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/11/27/[$LATEST]bbb",
        logEvents=[
            _log(
                5000,
                message="delivered",
                request_id="t-1",
                message_id="m-1",
                disposition="deliver",
                receive_count=3,
                latency_ms=21.5,
            ),
        ],
    )


@pytest.mark.parametrize("method", ["insights", "filter"])
def test_trace_shows_the_requests_timeline(cli_stack: CliStack, method: str) -> None:
    # GIVEN the function's log lines of two requests, one retried twice then delivered
    _write_logs(cli_stack)

    # WHEN the retried request is traced (as a table, and as JSON Lines)
    table = cli_stack.invoke("trace", "t-1", "--method", method)
    as_json = cli_stack.invoke("trace", "t-1", "--method", method, "--json", "--since", "1h")

    # THEN its three lines appear in time order across both log streams, and the outcome is summed up
    assert table.exit_code == as_json.exit_code == 0, (table.stderr, as_json.stderr)
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(x["message"]["disposition"], x["message"]["receive_count"]) for x in lines] == [
        ("retry", 1),
        ("retry", 2),
        ("deliver", 3),
    ]
    assert [x["logStream"][-3:] for x in lines] == ["aaa", "aaa", "bbb"]
    assert "other" not in table.stdout
    assert "outcome: delivered after 2 retries (throttled, throttled)" in table.stdout
    assert ("Logs Insights" if method == "insights" else "FilterLogEvents") in table.stdout


def test_trace_of_an_unknown_request_fails_in_one_line(cli_stack: CliStack) -> None:
    # GIVEN logs without the request
    _write_logs(cli_stack)

    # WHEN an unknown id and a malformed one are traced
    unknown = cli_stack.invoke("trace", "never-sent")
    malformed = cli_stack.invoke("trace", 'x" or 1=1')

    # THEN one-line errors, non-zero exits
    assert unknown.exit_code == malformed.exit_code == 1
    assert unknown.stderr.startswith("error: no log line mentions never-sent in /aws/lambda/")
    assert "is not a request id" in malformed.stderr
    assert unknown.stderr.count("\n") == malformed.stderr.count("\n") == 1

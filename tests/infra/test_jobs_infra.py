"""Jobs in the stack (cdk.json `jobs.enabled`): a route's control queue and its DLQ, the splitter/assembler
function fed by it with its environment, a role scoped to the route's own keys, objects and queues, its
outputs; a route without jobs gets none of it; a jobs route without its ledger or bucket fails synth."""

from __future__ import annotations

import re
from typing import Any

import pytest
from invoker.contract import Env

from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from tests.infra.conftest import Synth, synth

JOBS_ROUTE: dict[str, Any] = {
    "name": "scoring",
    "endpointName": "scorer",
    "results": {"queue": True, "bucket": True},
    "ledger": {"enabled": True},
    "jobs": {"enabled": True, "maxBacklog": 500, "join": "input"},
}
CONFIG: dict[str, Any] = {
    "stackName": "JobsInvoker",
    "routes": [
        JOBS_ROUTE,
        {"name": "plain", "endpointName": "plain-model", "capacity": {"mode": "perInstance"}},
    ],
}


@pytest.fixture(scope="module")
def jobs_stack(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # cdk-nag runs in synth: an unacknowledged finding would raise here
    return synth(CONFIG, tmp_path_factory.mktemp("jobs"))


def _job_function(shape: Synth) -> dict[str, Any]:
    [function] = [
        f for f in shape.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "invoker.jobs.handler.lambda_handler"
    ]  # fmt: skip
    return function


def _job_statements(shape: Synth) -> dict[str, dict[str, Any]]:
    policies = [p for k, p in shape.resources("AWS::IAM::Policy").items() if "JobFunctionRole" in k]
    return {s.get("Sid", ""): s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]}


def test_one_job_function_fed_by_its_control_queue(jobs_stack: Synth) -> None:
    # GIVEN a jobs route and a plain one WHEN synthesized
    function = _job_function(jobs_stack)
    variables = function["Properties"]["Environment"]["Variables"]
    # THEN the job function knows its route's resources and settings
    assert variables[Env.LEDGER_KEY_PREFIX] == "scoring/"
    assert variables[Env.JOB_MAX_BACKLOG] == "500"
    assert {Env.REQUEST_QUEUE_URL, Env.JOB_CONTROL_QUEUE_URL, Env.JOB_BUCKET, Env.CAPACITY_KEY} <= set(
        variables
    )
    # AND it is fed one control message at a time, with partial failures reported
    [mapping] = [
        m["Properties"] for m in jobs_stack.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["BatchSize"] == 1
    ]  # fmt: skip
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queues = [q["Properties"]["QueueName"] for q in jobs_stack.resources("AWS::SQS::Queue").values()]
    assert sum("jobs" in str(name) for name in queues) == 2  # the control queue and its DLQ
    outputs = jobs_stack.json["Outputs"]
    assert {"RouteScoringJobControlQueueUrl", "RouteScoringJobFunctionName"} <= set(outputs)
    assert not any(key.startswith("RoutePlainJob") for key in outputs)


def test_the_job_role_reaches_only_its_routes_keys_objects_queues_and_bus(jobs_stack: Synth) -> None:
    statements = _job_statements(jobs_stack)
    # GIVEN the job function's role THEN the ledger is scoped to the route's keys
    table = statements["OwnJobAndLineItems"]
    assert table["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["scoring/*"]}}
    assert set(table["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:BatchGetItem",
    }
    # AND S3 to jobs/* of its bucket, multipart included
    s3 = statements["ReadAndWriteOwnJobs"]
    assert "s3:AbortMultipartUpload" in s3["Action"]
    assert str(s3["Resource"]).endswith("/jobs/*']]}") or "/jobs/*" in str(s3["Resource"])
    # AND events only on the default bus
    assert statements["PublishJobEnds"]["Action"] == "events:PutEvents"
    assert "event-bus/default" in str(statements["PublishJobEnds"]["Resource"])
    assert "s3:DeleteObject" not in str(statements)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"results": {"bucket": True}}, "routes[0].jobs.enabled: needs ledger.enabled true"),
        ({"ledger": {"enabled": True}}, "routes[0].jobs.enabled: needs results.bucket true"),
        (
            {"fifo": True, "ledger": {"enabled": True}, "results": {"bucket": True}},
            "routes[0].jobs.enabled: needs a standard queue",
        ),
        (
            {
                "ledger": {"enabled": True},
                "results": {"bucket": True},
                "jobs": {"enabled": True, "join": "both"},
            },
            "jobs.join",
        ),
    ],
)
def test_a_jobs_route_without_what_it_needs_is_refused(route: dict[str, Any], message: str) -> None:
    # GIVEN a route enabling jobs without its ledger, its bucket, or on a FIFO queue WHEN loaded
    raw = {"name": "r", "endpointName": "e", "jobs": {"enabled": True}, **route}
    # THEN the error names the setting
    with pytest.raises(RouteConfigError, match=re.escape(message)):
        load_app_config({"invoker": {"routes": [raw]}})

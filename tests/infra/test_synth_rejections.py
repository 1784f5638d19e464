"""Invalid configurations are rejected at synth, with a message naming the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs

from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.infra.main import build_stack
from tests.infra.conftest import REPO, app_context

if TYPE_CHECKING:
    from pathlib import Path


def route(**overrides: Any) -> dict[str, Any]:
    return {"name": "r", "endpointName": "my-endpoint", **overrides}


REJECTED = [
    pytest.param(
        route(capacity={"mode": "perInstance"}, scaling={"targetBacklogPerInstance": 5}),
        "routes[0].scaling: needs capacity.mode shared",
        id="scaling-on-per-instance",
    ),
    pytest.param(
        route(
            capacity={"variantName": "AllTraffic"}, scaling={"minCapacity": 0, "targetBacklogPerInstance": 5}
        ),
        "routes[0].scaling.minCapacity: 0 instances is not allowed",
        id="scale-to-zero-on-a-variant",
    ),
    pytest.param(
        route(
            capacity={"inferenceComponentName": "ic-small"},
            scaling={"minCapacity": 0, "maxCapacity": 2, "targetBacklogPerInstance": 5},
        ),
        # 10 deliveries at 2 s doubling to 900 s: 1+2+4+...+256 = 511 s < 120 s + 600 s
        "routes[0].scaling.provisioningSeconds: a message that finds no capacity waits at least 511 s",
        id="retries-do-not-outlast-scale-out-from-zero",
    ),
    pytest.param(
        route(scaling={"targetBacklogPerInstance": 5}),
        "routes[0].capacity.variantName: required with scaling",
        id="scaling-a-variant-without-its-name",
    ),
    pytest.param(
        route(fifo=True, batchSize=11),
        "routes[0].batchSize: 11 is above 10, the limit for FIFO queues",
        id="fifo-batch-above-10",
    ),
    pytest.param(
        route(batchSize=50),
        "routes[0].batchSize: 50 is above 10, which needs maxBatchingWindowSeconds of at least 1",
        id="batch-above-10-without-window",
    ),
    pytest.param(
        route(fifo=True, maxBatchingWindowSeconds=2),
        "routes[0].maxBatchingWindowSeconds: 2 is not allowed on a FIFO queue",
        id="window-on-fifo",
    ),
    pytest.param(
        route(maxConcurrency=10, provisionedPollers={"min": 2, "max": 10}),
        "routes[0].maxConcurrency: cannot be combined with provisionedPollers",
        id="max-concurrency-with-provisioned-pollers",
    ),
    pytest.param(
        route(visibilityTimeoutMultiplier=3),
        "routes[0].visibilityTimeoutMultiplier: 3 is below 6",
        id="visibility-too-short",
    ),
    pytest.param(
        route(timeoutSeconds=800, visibilityTimeoutMultiplier=60),
        "routes[0].visibilityTimeoutMultiplier: 60 x timeoutSeconds 800 = 48000 s is above 43200 s",
        id="visibility-above-sqs-limit",
    ),
    pytest.param(
        route(timeoutSeconds=60),
        "routes[0].timeoutSeconds: 60 leaves no time for one endpoint call",
        id="timeout-too-short-for-deadline",
    ),
    pytest.param(
        route(largePayloads=True, results={"bucket": False}),
        "routes[0].largePayloads: needs results.bucket true",
        id="large-payloads-without-bucket",
    ),
    pytest.param(
        route(maxConcurrency=1),
        "routes[0].maxConcurrency: 1 is below 2",
        id="max-concurrency-below-2",
    ),
    pytest.param(
        route(functionConcurrency=8),
        "routes[0].functionConcurrency: renamed to endpointCallsInFlight; write endpointCallsInFlight instead",
        id="old-spelling-of-endpoint-calls-in-flight",
    ),
]


@pytest.mark.parametrize(("bad_route", "message"), REJECTED)
def test_invalid_combination_is_rejected_at_synth(bad_route: dict[str, Any], message: str) -> None:
    # GIVEN a valid first route and an invalid second one
    invoker = {"routes": [route(name="ok"), {**bad_route, "name": "bad"}]}
    app = cdk.App(context=app_context(invoker))
    # WHEN the app is built
    # THEN the RouteConfigError names routes[1] and the setting
    with pytest.raises(RouteConfigError) as info:
        build_stack(app)
    assert str(info.value).startswith(message.replace("routes[0]", "routes[1]"))
    # AND no stack was added to the app
    assert not any(isinstance(c, cdk.Stack) for c in app.node.children)


def test_app_py_exits_with_the_message(tmp_path: Path) -> None:
    # GIVEN the CDK CLI's way of passing context (CDK_CONTEXT_JSON) with a FIFO batch of 11
    context = app_context({"routes": [route(fifo=True, batchSize=11)]})
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    # WHEN app.py runs
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN it exits 1 with one readable line, no traceback
    assert done.returncode == 1
    assert (
        "Invalid configuration in cdk.json (context.invoker): "
        "routes[0].batchSize: 11 is above 10, the limit for FIFO queues"
    ) in done.stderr
    assert "Traceback" not in done.stderr


def test_unacknowledged_cdk_nag_finding_fails_synth(tmp_path: Path) -> None:
    # GIVEN the default app plus a queue without a DLQ or a TLS policy (two AwsSolutions findings)
    app = cdk.App(context=app_context(None), outdir=str(tmp_path))
    stack = build_stack(app)
    sqs.Queue(stack, "Careless")
    # WHEN it is synthesized
    # THEN synth fails and the report names the findings
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    violations = {
        v["ruleName"]: [c["constructPath"] for c in v["violatingConstructs"]]
        for r in report["pluginReports"]
        for v in r["violations"]
    }
    assert violations == {
        "AwsSolutions-SQS3": ["Invoker/Careless/Resource"],
        "AwsSolutions-SQS4": ["Invoker/Careless/Resource"],
    }

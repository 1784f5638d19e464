"""Synthesized stacks shared by the infra tests: one synth per stack shape (the first costs ~3 s)."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# jsii prints a banner on every import under Node 20; the tests do not need to see it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk import assertions

from sqs_sagemaker_invoker.infra.main import build_stack

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.stack import InvokerStack

REPO = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))


def app_context(invoker: dict[str, Any] | None) -> dict[str, Any]:
    """cdk.json's context (feature flags included) with another `invoker` value, bundling skipped."""
    context = dict(CDK_JSON["context"])
    if invoker is not None:
        context["invoker"] = invoker
    context["aws:cdk:bundling-stacks"] = []  # no asset bundling in unit tests (the rehearsal bundles)
    return context


@dataclass
class Synth:
    stack: InvokerStack
    template: assertions.Template
    report: dict[str, Any]

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def logical_id(self, construct: Any) -> str:
        child = construct.node.default_child
        return str(self.stack.resolve(self.stack.get_logical_id(child)))

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.template.find_resources(type_).items()}

    def props(self, construct: Any) -> dict[str, Any]:
        return self.json["Resources"][self.logical_id(construct)]["Properties"]  # type: ignore[no-any-return]


def synth(invoker: dict[str, Any] | None, outdir: Path) -> Synth:
    app = cdk.App(context=app_context(invoker), outdir=str(outdir))
    stack = build_stack(app)
    # Runs the cdk-nag validation plugin: raises on any unacknowledged finding.
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return Synth(stack=stack, template=assertions.Template.from_stack(stack), report=report)


FIFO_CONFIG: dict[str, Any] = {
    "stackName": "OrderedInvoker",
    "alarmEmail": "ops@example.com",
    "tags": {"team": "ml-platform"},
    "metricsNamespace": "Ordered",
    "serviceName": "ordered-invoker",
    "routes": [
        {
            "name": "orders",
            "endpointName": "Orders-Model-V2",
            "fifo": True,
            "batchSize": 10,
            "provisionedPollers": {"min": 2, "max": 40},
            "endpointCallsInFlight": 10,
            "memoryMb": 1024,
            "timeoutSeconds": 300,
            "visibilityTimeoutMultiplier": 8,
            "maxReceiveCount": 5,
            "retryBaseSeconds": 4,
            "retryMaxSeconds": 600,
            "messageFormat": "raw",
            "results": {"queue": False, "bucket": True, "expireDays": 3},
            "oldestMessageAlarmSeconds": 600,
            "logRetentionDays": 90,
            "logLevel": "DEBUG",
            "tracing": True,
            "runtime": "python3.13",
            # Each function instance limits itself: no capacity table in this stack.
            "capacity": {"mode": "perInstance"},
        }
    ],
}

TWO_ROUTE_CONFIG: dict[str, Any] = {
    "routes": [
        {"name": "demo", "endpointName": "demo-classifier"},
        {
            "name": "bulk-scoring",
            "endpointName": "bulk-scorer",
            "batchSize": 100,
            "maxBatchingWindowSeconds": 5,
            "maxConcurrency": 50,
            "results": {"queue": False, "bucket": False},
        },
    ]
}


# Three routes: a variant that scales, an inference component that scales from zero, one per instance.
SCALED_CONFIG: dict[str, Any] = {
    "stackName": "ScaledInvoker",
    "routes": [
        {
            "name": "variant",
            "endpointName": "Variant-Model",
            "capacity": {"variantName": "AllTraffic", "concurrencyPerInstance": 8},
            "scaling": {
                "minCapacity": 1,
                "maxCapacity": 6,
                "targetBacklogPerInstance": 40,
                "scaleOutCooldownSeconds": 120,
                "scaleInCooldownSeconds": 600,
            },
        },
        {
            "name": "components",
            "endpointName": "shared-endpoint",
            # 12 deliveries: 1+2+...+256 + 450 + 450 = 1411 s of waits >= 120 s + 600 s to scale out from zero
            "maxReceiveCount": 12,
            "capacity": {"inferenceComponentName": "IC-Small"},
            "scaling": {
                "minCapacity": 0,
                "maxCapacity": 4,
                "targetBacklogPerInstance": 25.5,
                "scaleFromZeroStep": 2,
            },
        },
        {"name": "alone", "endpointName": "alone-model", "capacity": {"mode": "perInstance"}},
    ],
}


@pytest.fixture(scope="session")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(SCALED_CONFIG, tmp_path_factory.mktemp("scaled"))


@pytest.fixture(scope="session")
def standard(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The committed cdk.json: one standard route `demo`."""
    return synth(None, tmp_path_factory.mktemp("standard"))


@pytest.fixture(scope="session")
def fifo(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(FIFO_CONFIG, tmp_path_factory.mktemp("fifo"))


@pytest.fixture(scope="session")
def two_routes(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(TWO_ROUTE_CONFIG, tmp_path_factory.mktemp("two"))


CONSTRUCT_EXAMPLE = REPO / "docs" / "examples" / "construct_app.py"


def load_construct_example() -> Any:
    """docs/examples/construct_app.py as a module (docs/ is no package: loaded by path)."""
    spec = importlib.util.spec_from_file_location("construct_app", CONSTRUCT_EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def construct_example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The docs' example app, synthesized as a team's own app would be: none of this repository's
    cdk.json feature flags, cdk-nag on (synth raises on any unacknowledged finding)."""
    outdir = tmp_path_factory.mktemp("construct-example")
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(outdir))
    stack = load_construct_example().build(app)
    app.synth()
    return dict(assertions.Template.from_stack(stack).to_json())

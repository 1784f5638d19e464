"""Route configuration parsing and the function environment contract (pure Python, no synth)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sqs_sagemaker_invoker.infra.config import (
    AppConfig,
    RouteConfig,
    RouteConfigError,
    function_environment,
    output_prefix,
    payload_s3_prefix,
)
from sqs_sagemaker_invoker.infra.config_loader import load_app_config, load_app_config_file

REPO = Path(__file__).resolve().parents[2]

# Every variable of the function contract (docs/design.md, "Function configuration").
CONTRACT_VARIABLES = {
    "ENDPOINT_NAME",
    "DEAD_LETTER_QUEUE_URL",
    "DEAD_LETTER_BUCKET",
    "DEAD_LETTER_PREFIX",
    "RESULTS_QUEUE_URL",
    "RESULTS_BUCKET",
    "RESULTS_PREFIX",
    "RESULTS_MODE",
    "MAX_RECEIVE_COUNT",
    "RETRY_BASE_SECONDS",
    "RETRY_MAX_SECONDS",
    "MAX_CONCURRENCY",
    "SQS_SENDS_IN_FLIGHT",
    "MESSAGE_FORMAT",
    "PAYLOAD_S3_PREFIX",
    "READ_TIMEOUT_SECONDS",
    "DEADLINE_MARGIN_SECONDS",
    "LOG_PAYLOADS",
    "ENABLE_TRACING",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "CAPACITY_MODE",
    "CAPACITY_TABLE",
    "CAPACITY_KEY",
    "CONCURRENCY_PER_INSTANCE",
    "CAPACITY_VARIANT",
    "CAPACITY_INFERENCE_COMPONENT",
    "CAPACITY_REFRESH_SECONDS",
}


def config(*routes: dict[str, Any], **app: Any) -> AppConfig:
    return load_app_config({"invoker": {**app, "routes": list(routes)}})


def route(**overrides: Any) -> dict[str, Any]:
    return {"name": "r", "endpointName": "my-endpoint", **overrides}


def error_of(*routes: dict[str, Any], **app: Any) -> str:
    with pytest.raises(RouteConfigError) as info:
        config(*routes, **app)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- defaults


def test_minimal_route_gets_safe_defaults() -> None:
    # GIVEN a route with only its name and endpoint
    # WHEN it is parsed
    cfg = config(route())
    # THEN the defaults are the documented, safe ones
    r = cfg.routes[0]
    assert cfg.stack_name == "SqsSageMakerInvoker"
    assert cfg.alarm_email is None
    assert cfg.metrics_namespace == "SqsSageMakerInvoker"
    assert cfg.service_name == "invoker"
    assert r.fifo is False
    assert r.batch_size == 10
    assert r.max_batching_window_seconds == 0
    assert r.max_concurrency == 2  # capped by default, so a burst cannot flood the endpoint
    assert r.provisioned_pollers is None
    assert r.endpoint_calls_in_flight == 16
    assert r.result_sends_in_flight == 4
    assert r.timeout_seconds == 180
    assert r.timeout_seconds > r.read_timeout_seconds + r.deadline_margin_seconds
    assert r.read_timeout_seconds == 70
    assert r.visibility_timeout_seconds == 6 * 180
    assert r.max_receive_count == 10
    assert r.results.queue is True
    assert r.results.bucket is False
    assert r.results.mode == "deliver"
    assert r.large_payloads is False
    assert r.runtime == "python3.12"
    assert r.architecture == "arm64"


def test_repository_cdk_json_holds_the_demo_route() -> None:
    # GIVEN the committed cdk.json
    # WHEN it is loaded
    cfg = load_app_config_file(REPO / "cdk.json")
    # THEN it holds one standard route "demo" for endpoint demo-classifier
    assert [r.name for r in cfg.routes] == ["demo"]
    demo = cfg.routes[0]
    assert demo.endpoint_name == "demo-classifier"
    assert demo.fifo is False


def test_context_value_may_be_a_json_string() -> None:
    # GIVEN the value `cdk synth -c invoker='{...}'` passes: a JSON string
    raw = json.dumps({"routes": [route(fifo=True)], "alarmEmail": "ops@example.com"})
    # WHEN it is parsed
    cfg = load_app_config({"invoker": raw})
    # THEN it is read like the object form
    assert cfg.routes[0].fifo is True
    assert cfg.alarm_email == "ops@example.com"


def test_provisioned_pollers_replace_the_concurrency_cap() -> None:
    cfg = config(route(provisionedPollers={"min": 3, "max": 50}))
    r = cfg.routes[0]
    assert r.max_concurrency is None
    assert r.provisioned_pollers is not None
    assert (r.provisioned_pollers.minimum, r.provisioned_pollers.maximum) == (3, 50)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("my-route", "RouteMyRoute"), ("demo", "RouteDemo"), ("a1-b2-c", "RouteA1B2C"), ("x", "RouteX")],
)
def test_output_prefix(name: str, prefix: str) -> None:
    assert output_prefix(name) == prefix


# ------------------------------------------------------------------------------------------- rejections

INVALID: list[tuple[dict[str, Any], str]] = [
    (route(fifo=True, batchSize=11), "routes[0].batchSize: 11 is above 10, the limit for FIFO queues"),
    (
        route(batchSize=11),
        "routes[0].batchSize: 11 is above 10, which needs maxBatchingWindowSeconds of at least 1",
    ),
    (route(batchSize=10_001, maxBatchingWindowSeconds=5), "routes[0].batchSize: 10001 is above 10000"),
    (
        route(fifo=True, maxBatchingWindowSeconds=1),
        "routes[0].maxBatchingWindowSeconds: 1 is not allowed on a FIFO queue",
    ),
    (route(maxBatchingWindowSeconds=301), "routes[0].maxBatchingWindowSeconds: 301 is above 300"),
    (
        route(maxConcurrency=5, provisionedPollers={"min": 2, "max": 10}),
        "routes[0].maxConcurrency: cannot be combined with provisionedPollers",
    ),
    (route(maxConcurrency=1), "routes[0].maxConcurrency: 1 is below 2"),
    (route(maxConcurrency=1001), "routes[0].maxConcurrency: 1001 is above 1000"),
    (route(provisionedPollers={"min": 1, "max": 10}), "routes[0].provisionedPollers.min: 1 is below 2"),
    (
        route(provisionedPollers={"min": 2, "max": 2001}),
        "routes[0].provisionedPollers.max: 2001 is above 2000",
    ),
    (
        route(provisionedPollers={"min": 20, "max": 10}),
        "routes[0].provisionedPollers.max: 10 is below min 20",
    ),
    (route(visibilityTimeoutMultiplier=5), "routes[0].visibilityTimeoutMultiplier: 5 is below 6"),
    (
        route(timeoutSeconds=900, visibilityTimeoutMultiplier=49),
        "routes[0].visibilityTimeoutMultiplier: 49 x timeoutSeconds 900 = 44100 s is above 43200 s",
    ),
    (
        route(timeoutSeconds=75),
        "routes[0].timeoutSeconds: 75 leaves no time for one endpoint call: it must be above "
        "readTimeoutSeconds + deadlineMarginSeconds = 70 + 5 = 75",
    ),
    (
        route(timeoutSeconds=100, readTimeoutSeconds=90, deadlineMarginSeconds=10),
        "routes[0].timeoutSeconds: 100 leaves no time",
    ),
    (route(timeoutSeconds=901), "routes[0].timeoutSeconds: 901 is above 900"),
    (route(endpointCallsInFlight=0), "routes[0].endpointCallsInFlight: 0 is below 1"),
    (route(endpointCallsInFlight=257), "routes[0].endpointCallsInFlight: 257 is above 256"),
    (route(resultSendsInFlight=0), "routes[0].resultSendsInFlight: 0 is below 1"),
    (route(resultSendsInFlight=33), "routes[0].resultSendsInFlight: 33 is above 32"),
    (route(memoryMb=64), "routes[0].memoryMb: 64 is below 128"),
    (route(maxReceiveCount=0), "routes[0].maxReceiveCount: 0 is below 1"),
    (
        route(retryBaseSeconds=10, retryMaxSeconds=5),
        "routes[0].retryMaxSeconds: 5 is below retryBaseSeconds 10",
    ),
    (route(retryMaxSeconds=43_201), "routes[0].retryMaxSeconds: 43201 is above 43200"),
    (route(messageFormat="xml"), "routes[0].messageFormat: 'xml' is not one of envelope, raw"),
    (route(largePayloads=True), "routes[0].largePayloads: needs results.bucket true"),
    (route(results={"expireDays": 0}), "routes[0].results.expireDays: 0 is below 1"),
    (route(results={"queue": "yes"}), "routes[0].results.queue: must be true or false, got string 'yes'"),
    (route(logRetentionDays=10), "routes[0].logRetentionDays: 10 is not a CloudWatch Logs retention"),
    (route(runtime="python3.11"), "routes[0].runtime: 'python3.11' is not one of python3.12, python3.13"),
    (route(architecture="x86_64"), "routes[0].architecture: 'x86_64' is not one of arm64"),
    (route(readTimeoutSeconds=0), "routes[0].readTimeoutSeconds: 0 is below 1"),
    (route(oldestMessageAlarmSeconds=10), "routes[0].oldestMessageAlarmSeconds: 10 is below 60"),
    (route(batchSize=True), "routes[0].batchSize: must be a whole number, got boolean true"),
    (route(batchSize=2.5), "routes[0].batchSize: must be a whole number, got number 2.5"),
    (route(batchSzie=5), "routes[0].batchSzie: unknown setting"),
    (route(name="Demo"), "routes[0].name: 'Demo' must be 1-31 chars"),
    (route(name="a" * 32), "routes[0].name:"),
    (route(endpointName="-bad"), "routes[0].endpointName: '-bad' is not a SageMaker endpoint name"),
    (route(endpointName="e" * 64), "routes[0].endpointName:"),
    ({"endpointName": "e"}, "routes[0].name: missing (required)"),
    ({"name": "r"}, "routes[0].endpointName: missing (required)"),
    (route(logLevel="TRACE"), "routes[0].logLevel: 'TRACE' is not one of"),
]


@pytest.mark.parametrize(("raw_route", "message"), INVALID)
def test_invalid_route_is_rejected_naming_the_setting(raw_route: dict[str, Any], message: str) -> None:
    # GIVEN a route with one invalid setting
    # WHEN the configuration is parsed
    # THEN RouteConfigError names the setting and why
    assert error_of(raw_route).startswith(message)


def test_error_path_names_the_route_index() -> None:
    # GIVEN a valid route followed by a FIFO route with a batch of 11
    # WHEN parsed
    # THEN the error names routes[1]
    assert error_of(route(), route(name="s", fifo=True, batchSize=11)) == (
        "routes[1].batchSize: 11 is above 10, the limit for FIFO queues"
    )


def test_duplicate_route_names_are_rejected() -> None:
    assert error_of(route(), route()).startswith("routes[1].name: 'r' clashes with routes[0]")


def test_route_names_with_the_same_output_prefix_are_rejected() -> None:
    # "a-b" and "a--b" both map to RouteAB
    assert error_of(route(name="a-b"), route(name="a--b")).startswith("routes[1].name: 'a--b' clashes")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "invoker: missing"),
        ({"invoker": "{not json"}, "invoker: not valid JSON"),
        ({"invoker": []}, "invoker: must be an object, got list"),
        ({"invoker": {}}, "routes: missing"),
        ({"invoker": {"routes": []}}, "routes: must be a non-empty list"),
        (
            {"invoker": {"routes": [route()], "alarmEmail": "nope"}},
            "alarmEmail: 'nope' is not an e-mail address",
        ),
        (
            {"invoker": {"routes": [route()], "stackName": "1stack"}},
            "stackName: '1stack' is not a CloudFormation",
        ),
        ({"invoker": {"routes": [route()], "tags": {"aws:x": "y"}}}, "tags.aws:x: not a valid tag key"),
        ({"invoker": {"routes": [route()], "tags": {"team": 1}}}, "tags.team: must be a string"),
        ({"invoker": {"routes": [route()], "metricsNamespace": "AWS/SQS"}}, "metricsNamespace: 'AWS/SQS'"),
        ({"invoker": {"routes": [route()], "colour": "red"}}, "colour: unknown setting"),
        ({"invoker": {"routes": ["demo"]}}, "routes[0]: must be an object, got string 'demo'"),
    ],
)
def test_invalid_app_settings_are_rejected(context: dict[str, Any], message: str) -> None:
    with pytest.raises(RouteConfigError) as info:
        load_app_config(context)
    assert str(info.value).startswith(message)


def test_limits_are_inclusive() -> None:
    # GIVEN settings exactly at their limits
    cfg = config(
        route(name="a", fifo=True, batchSize=10),
        route(name="b", batchSize=10_000, maxBatchingWindowSeconds=300, maxConcurrency=1000),
        route(name="c", timeoutSeconds=76, readTimeoutSeconds=70, deadlineMarginSeconds=5),
        route(name="d", timeoutSeconds=900, visibilityTimeoutMultiplier=48),
        route(name="e", provisionedPollers={"min": 2, "max": 2}),
    )
    # THEN they are accepted
    assert cfg.route("d").visibility_timeout_seconds == 43_200
    assert cfg.route("c").timeout_seconds == 76


# ------------------------------------------------------------------------------------- the environment


def env_for(r: RouteConfig, **kw: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "dlq_url": "https://sqs/dlq",
        "dead_letter_bucket": "dead-letter-bucket",
        "results_queue_url": "https://sqs/results" if r.results.queue else None,
        "results_bucket": "bucket" if r.results.bucket else None,
        "payload_s3_prefix": payload_s3_prefix("bucket") if r.large_payloads else None,
        "namespace": "Ns",
        "service": "svc",
        "capacity_table": "capacity-table" if r.capacity.shared else None,
        "capacity_key": "Stack/route" if r.capacity.shared else None,
    }
    args.update(kw)
    return function_environment(r, **args)


def test_environment_of_a_full_route_is_exactly_the_contract() -> None:
    # GIVEN a route with every optional feature on
    r = config(
        route(
            fifo=True,
            batchSize=5,
            endpointCallsInFlight=8,
            resultSendsInFlight=6,
            maxReceiveCount=7,
            retryBaseSeconds=3,
            retryMaxSeconds=600,
            messageFormat="raw",
            results={"queue": True, "bucket": True},
            largePayloads=True,
            readTimeoutSeconds=65,
            deadlineMarginSeconds=7,
            logLevel="DEBUG",
            logPayloads=True,
            tracing=True,
            capacity={"concurrencyPerInstance": 3, "variantName": "AllTraffic", "refreshSeconds": 20},
        )
    ).routes[0]
    # WHEN its environment is produced
    env = env_for(r)
    # THEN every contract variable is set but the inference component (exclusive with the variant)
    assert set(env) == CONTRACT_VARIABLES - {"CAPACITY_INFERENCE_COMPONENT"}
    assert env == {
        "ENDPOINT_NAME": "my-endpoint",
        "DEAD_LETTER_QUEUE_URL": "https://sqs/dlq",
        "DEAD_LETTER_BUCKET": "dead-letter-bucket",
        "DEAD_LETTER_PREFIX": "dead-letters/",
        "RESULTS_QUEUE_URL": "https://sqs/results",
        "RESULTS_BUCKET": "bucket",
        "RESULTS_PREFIX": "results/",
        "RESULTS_MODE": "deliver",
        "MAX_RECEIVE_COUNT": "7",
        "RETRY_BASE_SECONDS": "3",
        "RETRY_MAX_SECONDS": "600",
        "MAX_CONCURRENCY": "8",
        "SQS_SENDS_IN_FLIGHT": "6",
        "MESSAGE_FORMAT": "raw",
        "PAYLOAD_S3_PREFIX": "s3://bucket/requests/",
        "READ_TIMEOUT_SECONDS": "65",
        "DEADLINE_MARGIN_SECONDS": "7",
        "LOG_PAYLOADS": "true",
        "ENABLE_TRACING": "true",
        "POWERTOOLS_SERVICE_NAME": "svc",
        "POWERTOOLS_METRICS_NAMESPACE": "Ns",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "CAPACITY_MODE": "shared",
        "CAPACITY_TABLE": "capacity-table",
        "CAPACITY_KEY": "Stack/route",
        "CONCURRENCY_PER_INSTANCE": "3",
        "CAPACITY_VARIANT": "AllTraffic",
        "CAPACITY_REFRESH_SECONDS": "20",
    }


def test_environment_of_a_shared_inference_component_route() -> None:
    # GIVEN a shared route that counts an inference component's copies, defaults otherwise
    r = config(route(capacity={"inferenceComponentName": "ic-1"})).routes[0]
    env = env_for(r)
    # THEN the capacity variables name the component, the table, the key and the defaults
    assert {k: v for k, v in env.items() if k.startswith(("CAPACITY", "CONCURRENCY"))} == {
        "CAPACITY_MODE": "shared",
        "CAPACITY_TABLE": "capacity-table",
        "CAPACITY_KEY": "Stack/route",
        "CONCURRENCY_PER_INSTANCE": "4",
        "CAPACITY_INFERENCE_COMPONENT": "ic-1",
        "CAPACITY_REFRESH_SECONDS": "10",
    }


def test_environment_of_a_per_instance_route_names_no_table() -> None:
    # GIVEN a route whose instances limit themselves
    r = config(route(capacity={"mode": "perInstance"})).routes[0]
    env = env_for(r)
    # THEN only the mode is set: no table, key or shared-budget settings
    assert {k: v for k, v in env.items() if k.startswith(("CAPACITY", "CONCURRENCY"))} == {
        "CAPACITY_MODE": "per_instance"
    }
    # AND a table given to it is refused (the function would share a budget nobody else reads)
    with pytest.raises(ValueError, match="capacity_table and capacity_key"):
        env_for(r, capacity_table="t", capacity_key="k")


def test_environment_leaves_out_unused_destinations() -> None:
    # GIVEN a route with a results queue only
    env = env_for(config(route()).routes[0])
    # THEN the bucket and payload variables are absent (not empty strings)
    assert "RESULTS_BUCKET" not in env
    assert "RESULTS_PREFIX" not in env
    assert "PAYLOAD_S3_PREFIX" not in env
    assert env["RESULTS_QUEUE_URL"] == "https://sqs/results"
    assert env["LOG_PAYLOADS"] == "false"
    assert env["ENABLE_TRACING"] == "false"
    assert set(env) <= CONTRACT_VARIABLES


def test_route_without_results_discards_them() -> None:
    r = config(route(results={"queue": False, "bucket": False})).routes[0]
    env = env_for(r)
    assert env["RESULTS_MODE"] == "discard"
    assert "RESULTS_QUEUE_URL" not in env
    assert "RESULTS_BUCKET" not in env


def test_environment_refuses_arguments_that_disagree_with_the_route() -> None:
    r = config(route()).routes[0]
    with pytest.raises(ValueError, match="results_queue_url"):
        env_for(r, results_queue_url=None)
    with pytest.raises(ValueError, match="results_bucket"):
        env_for(r, results_bucket="b")
    with pytest.raises(ValueError, match="payload_s3_prefix"):
        env_for(r, payload_s3_prefix="s3://b/requests/")
    with pytest.raises(ValueError, match="capacity_table and capacity_key"):
        env_for(r, capacity_table=None)


def test_parsing_does_not_modify_the_context() -> None:
    raw = {"invoker": {"routes": [route(results={"bucket": True})]}}
    before = copy.deepcopy(raw)
    load_app_config(raw)
    assert raw == before

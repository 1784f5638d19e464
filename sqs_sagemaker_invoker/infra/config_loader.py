"""Reads the route configuration: cdk.json's `invoker` context value, or a construct's keyword props.

Both go through `parse_route`, so a route has one set of rules whichever way it is written. Pure Python
(no CDK import): the CDK app, the local stack and the CLI all read cdk.json through `load_app_config`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoker.contract import (
    DEADLINE_MARGIN_SECONDS_RANGE,
    DEFAULT_METRICS_NAMESPACE,
    DEFAULT_SERVICE_NAME,
    ENDPOINT_NAME,
    MAX_CONCURRENCY_RANGE,
    MAX_RECEIVE_COUNT_RANGE,
    READ_TIMEOUT_SECONDS_RANGE,
    RETRY_SECONDS_RANGE,
    SQS_MAX_VISIBILITY_SECONDS,
    SQS_SENDS_IN_FLIGHT_RANGE,
)

from sqs_sagemaker_invoker.infra.config import (
    CONTEXT_KEY,
    DEFAULT_STACK_NAME,
    FIFO_MAX_BATCH_SIZE,
    LAMBDA_MAX_TIMEOUT_SECONDS,
    LOG_LEVELS,
    LOG_RETENTION_DAYS,
    MAX_BATCHING_WINDOW_SECONDS,
    MESSAGE_FORMATS,
    MIN_VISIBILITY_MULTIPLIER,
    REQUESTS_PREFIX,
    RUNTIMES,
    STANDARD_MAX_BATCH_SIZE,
    UNBATCHED_MAX_BATCH_SIZE,
    AppConfig,
    ProvisionedPollers,
    RouteConfig,
    RouteConfigError,
)
from sqs_sagemaker_invoker.infra.json_object import JsonObject, describe
from sqs_sagemaker_invoker.infra.route_sections import (
    parse_capacity,
    parse_jobs,
    parse_ledger,
    parse_pollers,
    parse_results,
    parse_scaling,
)
from sqs_sagemaker_invoker.scaling import (
    ScalingConfigError,
    check_retries_outlast_scale_out,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

_ROUTE_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NAMESPACE = re.compile(r"[A-Za-z0-9._/#:-]{1,255}")
_TAG_KEY = re.compile(r"[\w .:/=+\-@]{1,128}")
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{0,256}")


def load_app_config(context: Mapping[str, Any]) -> AppConfig:
    """Parse the `invoker` value of a CDK context mapping (cdk.json's "context", or the app's context).

    The value may also be a JSON string, which is what `cdk synth -c invoker='{...}'` passes.
    """
    if CONTEXT_KEY not in context or context[CONTEXT_KEY] is None:
        raise RouteConfigError(
            f"{CONTEXT_KEY}: missing; cdk.json's context must hold the route configuration"
        )
    raw = context[CONTEXT_KEY]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RouteConfigError(f"{CONTEXT_KEY}: not valid JSON ({exc})") from exc
    return parse_app_config(raw)


def load_app_config_file(path: str | Path = "cdk.json") -> AppConfig:
    """Read a cdk.json file and parse its `context.invoker` value."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("context"), dict):
        raise RouteConfigError(f'{path}: has no "context" object')
    return load_app_config(data["context"])


_APP_KEYS = ("stackName", "alarmEmail", "tags", "metricsNamespace", "serviceName", "routes")


def parse_app_config(raw: Any) -> AppConfig:
    obj = JsonObject(raw, "", _APP_KEYS)
    stack_name = obj.string("stackName", DEFAULT_STACK_NAME)
    if not _STACK_NAME.fullmatch(stack_name):
        raise RouteConfigError(
            f"stackName: {stack_name!r} is not a CloudFormation stack name "
            "(a letter, then up to 127 letters, digits or hyphens)"
        )
    alarm_email = obj.optional_string("alarmEmail")
    if alarm_email is not None and not _EMAIL.fullmatch(alarm_email):
        raise RouteConfigError(f"alarmEmail: {alarm_email!r} is not an e-mail address")
    namespace = obj.string("metricsNamespace", DEFAULT_METRICS_NAMESPACE)
    service = obj.string("serviceName", DEFAULT_SERVICE_NAME)
    check_metric_names(namespace, service)
    tags = _parse_tags(obj.get("tags", {}))

    raw_routes = obj.get("routes", None)
    if raw_routes is None:
        raise RouteConfigError("routes: missing; configure at least one route")
    if not isinstance(raw_routes, list) or not raw_routes:
        raise RouteConfigError("routes: must be a non-empty list of route objects")
    routes = tuple(parse_route(item, f"routes[{i}]") for i, item in enumerate(raw_routes))

    seen: dict[str, int] = {}
    for i, route in enumerate(routes):
        # Two names may map to one output prefix ("a-b", "a--b"); the prefix must be unique too.
        for key in (route.name, route.output_prefix):
            if key in seen:
                raise RouteConfigError(
                    f"routes[{i}].name: {route.name!r} clashes with routes[{seen[key]}] "
                    f"(same name or output prefix {route.output_prefix!r})"
                )
            seen[key] = i
    return AppConfig(
        stack_name=stack_name,
        alarm_email=alarm_email,
        tags=tags,
        metrics_namespace=namespace,
        service_name=service,
        routes=routes,
    )


def check_metric_names(namespace: str, service: str, *, path: str = "") -> None:
    """The Powertools metrics namespace and service name (a dimension of every metric)."""
    where = f"{path}." if path else ""
    if not _NAMESPACE.fullmatch(namespace) or namespace.startswith("AWS/"):
        raise RouteConfigError(
            f"{where}metricsNamespace: {namespace!r} is not a valid custom CloudWatch namespace"
        )
    if not service.strip():
        raise RouteConfigError(f"{where}serviceName: must not be empty")


def _parse_tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise RouteConfigError("tags: must be an object of string keys and string values")
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise RouteConfigError(f"tags.{key}: must be a string, got {describe(value)}")
        if not _TAG_KEY.fullmatch(key) or key.lower().startswith("aws:"):
            raise RouteConfigError(f"tags.{key}: not a valid tag key (1-128 chars, no 'aws:' prefix)")
        if not _TAG_VALUE.fullmatch(value):
            raise RouteConfigError(f"tags.{key}: {value!r} is not a valid tag value (0-256 chars)")
        tags[key] = value
    return tags


_ROUTE_KEYS = (
    "name", "endpointName", "fifo", "batchSize", "maxBatchingWindowSeconds", "maxConcurrency",
    "provisionedPollers", "endpointCallsInFlight", "resultSendsInFlight", "memoryMb", "timeoutSeconds", "visibilityTimeoutMultiplier",
    "maxReceiveCount", "retryBaseSeconds", "retryMaxSeconds", "messageFormat", "results", "largePayloads",
    "oldestMessageAlarmSeconds", "readTimeoutSeconds", "deadlineMarginSeconds", "logRetentionDays",
    "logLevel", "logPayloads", "tracing", "runtime", "architecture", "capacity", "scaling", "ledger",
    "jobs",
)  # fmt: skip

_DEFAULTS = RouteConfig(name="x", endpoint_name="x")


def parse_route(raw: Any, path: str) -> RouteConfig:  # noqa: PLR0912, PLR0915 - one check per key, in order
    d = _DEFAULTS
    obj = JsonObject(raw, path, _ROUTE_KEYS)

    name = obj.required_string("name")
    if not _ROUTE_NAME.fullmatch(name):
        raise RouteConfigError(
            f"{path}.name: {name!r} must be 1-31 chars: a lowercase letter, then lowercase letters, "
            "digits or hyphens"
        )
    endpoint = obj.required_string("endpointName")
    if not ENDPOINT_NAME.fullmatch(endpoint):
        raise RouteConfigError(
            f"{path}.endpointName: {endpoint!r} is not a SageMaker endpoint name "
            "(1-63 letters, digits and hyphens, starting and ending with a letter or digit)"
        )

    fifo = obj.boolean("fifo", d.fifo)
    batch_size = obj.integer("batchSize", d.batch_size, 1, STANDARD_MAX_BATCH_SIZE)
    window = obj.integer(
        "maxBatchingWindowSeconds", d.max_batching_window_seconds, 0, MAX_BATCHING_WINDOW_SECONDS
    )
    if fifo and batch_size > FIFO_MAX_BATCH_SIZE:
        raise RouteConfigError(
            f"{path}.batchSize: {batch_size} is above {FIFO_MAX_BATCH_SIZE}, the limit for FIFO queues"
        )
    if fifo and window > 0:
        raise RouteConfigError(
            f"{path}.maxBatchingWindowSeconds: {window} is not allowed on a FIFO queue "
            "(Lambda supports no batching window for FIFO sources); remove it or set 0"
        )
    if batch_size > UNBATCHED_MAX_BATCH_SIZE and window < 1:
        raise RouteConfigError(
            f"{path}.batchSize: {batch_size} is above {UNBATCHED_MAX_BATCH_SIZE}, which needs "
            "maxBatchingWindowSeconds of at least 1"
        )

    pollers_raw = obj.get("provisionedPollers", None)
    has_concurrency = obj.has("maxConcurrency") and obj.get("maxConcurrency", None) is not None
    if pollers_raw is not None and has_concurrency:
        raise RouteConfigError(
            f"{path}.maxConcurrency: cannot be combined with provisionedPollers "
            "(Lambda rejects ScalingConfig together with ProvisionedPollerConfig); keep one of them"
        )
    pollers: ProvisionedPollers | None = None
    max_concurrency: int | None
    if pollers_raw is not None:
        pollers = parse_pollers(pollers_raw, f"{path}.provisionedPollers")
        max_concurrency = None
    else:
        # A cap by default: an uncapped mapping would let a burst of messages flood the endpoint.
        max_concurrency = obj.integer("maxConcurrency", d.max_concurrency or 2, 2, 1000)

    calls_in_flight = obj.integer("endpointCallsInFlight", d.endpoint_calls_in_flight, *MAX_CONCURRENCY_RANGE)
    sends_in_flight = obj.integer("resultSendsInFlight", d.result_sends_in_flight, *SQS_SENDS_IN_FLIGHT_RANGE)
    memory = obj.integer("memoryMb", d.memory_mb, 128, 10_240)
    read_timeout = obj.integer("readTimeoutSeconds", d.read_timeout_seconds, *READ_TIMEOUT_SECONDS_RANGE)
    margin = obj.integer("deadlineMarginSeconds", d.deadline_margin_seconds, *DEADLINE_MARGIN_SECONDS_RANGE)
    timeout = obj.integer("timeoutSeconds", d.timeout_seconds, 1, LAMBDA_MAX_TIMEOUT_SECONDS)
    if timeout <= read_timeout + margin:
        raise RouteConfigError(
            f"{path}.timeoutSeconds: {timeout} leaves no time for one endpoint call: it must be above "
            f"readTimeoutSeconds + deadlineMarginSeconds = {read_timeout} + {margin} = "
            f"{read_timeout + margin} (the function starts no call with less time left)"
        )
    multiplier = obj.integer(
        "visibilityTimeoutMultiplier", d.visibility_timeout_multiplier, 1, SQS_MAX_VISIBILITY_SECONDS
    )
    if multiplier < MIN_VISIBILITY_MULTIPLIER:
        raise RouteConfigError(
            f"{path}.visibilityTimeoutMultiplier: {multiplier} is below {MIN_VISIBILITY_MULTIPLIER}; "
            "the queue's visibility timeout must be at least 6x the function timeout "
            "(AWS's recommendation, so retried batches do not overlap)"
        )
    if multiplier * timeout > SQS_MAX_VISIBILITY_SECONDS:
        raise RouteConfigError(
            f"{path}.visibilityTimeoutMultiplier: {multiplier} x timeoutSeconds {timeout} = "
            f"{multiplier * timeout} s is above {SQS_MAX_VISIBILITY_SECONDS} s, the SQS visibility limit"
        )

    max_receive = obj.integer("maxReceiveCount", d.max_receive_count, *MAX_RECEIVE_COUNT_RANGE)
    retry_base = obj.integer("retryBaseSeconds", d.retry_base_seconds, *RETRY_SECONDS_RANGE)
    retry_max = obj.integer("retryMaxSeconds", d.retry_max_seconds, *RETRY_SECONDS_RANGE)
    if retry_max < retry_base:
        raise RouteConfigError(f"{path}.retryMaxSeconds: {retry_max} is below retryBaseSeconds {retry_base}")
    message_format = obj.choice("messageFormat", d.message_format, MESSAGE_FORMATS)

    results = parse_results(obj.get("results", {}), f"{path}.results")
    large_payloads = obj.boolean("largePayloads", d.large_payloads)
    if large_payloads and not results.bucket:
        raise RouteConfigError(
            f"{path}.largePayloads: needs results.bucket true (request payloads are read from the "
            f"route's bucket under {REQUESTS_PREFIX})"
        )
    alarm_age = obj.integer("oldestMessageAlarmSeconds", d.oldest_message_alarm_seconds, 60, 1_209_600)
    retention = obj.integer("logRetentionDays", d.log_retention_days, 1, 3653)
    if retention not in LOG_RETENTION_DAYS:
        raise RouteConfigError(
            f"{path}.logRetentionDays: {retention} is not a CloudWatch Logs retention; "
            f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    log_level = obj.choice("logLevel", d.log_level, LOG_LEVELS)
    log_payloads = obj.boolean("logPayloads", d.log_payloads)
    tracing = obj.boolean("tracing", d.tracing)
    runtime = obj.choice("runtime", d.runtime, RUNTIMES)
    obj.choice("architecture", "arm64", ("arm64",))
    capacity = parse_capacity(obj.get("capacity", {}), f"{path}.capacity")
    scaling = parse_scaling(obj.get("scaling", None), f"{path}.scaling", capacity)
    if scaling is not None:
        try:
            check_retries_outlast_scale_out(
                scaling,
                max_receive_count=max_receive,
                retry_base_seconds=retry_base,
                retry_max_seconds=retry_max,
                path=f"{path}.scaling",
            )
        except ScalingConfigError as exc:
            raise RouteConfigError(str(exc)) from exc

    ledger = parse_ledger(obj.get("ledger", {}), f"{path}.ledger")
    jobs = parse_jobs(obj.get("jobs", {}), f"{path}.jobs")
    if jobs.enabled:
        needs = [
            (ledger.enabled, "ledger.enabled true (the job and its lines are ledger items)"),
            (results.bucket, "results.bucket true (the input, the output and the manifest are in it)"),
            (not fifo, "a standard queue (fifo false: a job's lines are independent requests)"),
        ]
        for ok, what in needs:
            if not ok:
                raise RouteConfigError(f"{path}.jobs.enabled: needs {what}")
    return RouteConfig(
        name=name,
        endpoint_name=endpoint,
        fifo=fifo,
        batch_size=batch_size,
        max_batching_window_seconds=window,
        max_concurrency=max_concurrency,
        provisioned_pollers=pollers,
        endpoint_calls_in_flight=calls_in_flight,
        result_sends_in_flight=sends_in_flight,
        memory_mb=memory,
        timeout_seconds=timeout,
        visibility_timeout_multiplier=multiplier,
        max_receive_count=max_receive,
        retry_base_seconds=retry_base,
        retry_max_seconds=retry_max,
        message_format=message_format,  # type: ignore[arg-type]  # checked by choice()
        results=results,
        large_payloads=large_payloads,
        oldest_message_alarm_seconds=alarm_age,
        read_timeout_seconds=read_timeout,
        deadline_margin_seconds=margin,
        log_retention_days=retention,
        log_level=log_level,
        log_payloads=log_payloads,
        tracing=tracing,
        runtime=runtime,
        capacity=capacity,
        scaling=scaling,
        ledger=ledger,
        jobs=jobs,
    )

"""Route configuration: the `invoker` context value of cdk.json, parsed and validated.

Pure Python on purpose (no CDK import): the CDK app, the local stack and the CLI all read the same
configuration through `load_app_config`, and the function's environment is produced in one place
(`function_environment`) so the deployed stack and the local stack cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

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
    Env,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

CONTEXT_KEY: Final = "invoker"

# Key prefixes inside a route's bucket (the function contract's RESULTS_PREFIX default is "results/").
RESULTS_PREFIX: Final = "results/"
REQUESTS_PREFIX: Final = "requests/"
# Bodies of dead-letter copies too large for SQS with their reason (the function's DEAD_LETTER_PREFIX).
DEAD_LETTERS_PREFIX: Final = "dead-letters/"

# Every queue keeps messages 14 days (the SQS maximum): nothing expires while an operator looks away.
QUEUE_RETENTION_SECONDS: Final = 14 * 24 * 3600
# Request payloads (largePayloads) outlive the longest a message can wait in its queue.
REQUEST_PAYLOAD_EXPIRY_DAYS: Final = 15
# A stored dead-letter body lives as long as its letter can stay in the DLQ (plus a day of slack).
DEAD_LETTER_BODY_EXPIRY_DAYS: Final = QUEUE_RETENTION_SECONDS // 86_400 + 1

DEFAULT_STACK_NAME: Final = "SqsSageMakerInvoker"

# AWS limits, from the Lambda and SQS quotas pages and the event source mapping API reference.
FIFO_MAX_BATCH_SIZE: Final = 10
STANDARD_MAX_BATCH_SIZE: Final = 10_000
UNBATCHED_MAX_BATCH_SIZE: Final = 10
MAX_BATCHING_WINDOW_SECONDS: Final = 300
LAMBDA_MAX_TIMEOUT_SECONDS: Final = 900
MIN_VISIBILITY_MULTIPLIER: Final = 6
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
RUNTIMES: Final = ("python3.12", "python3.13")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_ROUTE_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NAMESPACE = re.compile(r"[A-Za-z0-9._/#:-]{1,255}")
_TAG_KEY = re.compile(r"[\w .:/=+\-@]{1,128}")
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{0,256}")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message starts with the setting's path."""


@dataclass(frozen=True)
class ProvisionedPollers:
    minimum: int
    maximum: int


@dataclass(frozen=True)
class ResultsConfig:
    queue: bool = True
    bucket: bool = False
    expire_days: int = 14

    @property
    def mode(self) -> Literal["deliver", "discard"]:
        # No destination at all means the route drops results on purpose (e.g. load tests).
        return "deliver" if self.queue or self.bucket else "discard"


@dataclass(frozen=True)
class RouteConfig:
    name: str
    endpoint_name: str
    fifo: bool = False
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    max_concurrency: int | None = 2
    provisioned_pollers: ProvisionedPollers | None = None
    function_concurrency: int = 16
    memory_mb: int = 512
    timeout_seconds: int = 180
    visibility_timeout_multiplier: int = 6
    max_receive_count: int = 10
    retry_base_seconds: int = 2
    retry_max_seconds: int = 900
    message_format: Literal["envelope", "raw"] = "envelope"
    results: ResultsConfig = field(default_factory=ResultsConfig)
    large_payloads: bool = False
    oldest_message_alarm_seconds: int = 1800
    read_timeout_seconds: int = 70
    deadline_margin_seconds: int = 5
    log_retention_days: int = 30
    log_level: str = "INFO"
    log_payloads: bool = False
    tracing: bool = False
    runtime: str = "python3.12"
    architecture: Literal["arm64"] = "arm64"

    @property
    def visibility_timeout_seconds(self) -> int:
        return self.visibility_timeout_multiplier * self.timeout_seconds

    @property
    def output_prefix(self) -> str:
        return output_prefix(self.name)

    @property
    def endpoint_name_lower(self) -> str:
        # SageMaker stores endpoint ARNs in lower case whatever the name's case.
        return self.endpoint_name.lower()


@dataclass(frozen=True)
class AppConfig:
    stack_name: str = DEFAULT_STACK_NAME
    alarm_email: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    service_name: str = DEFAULT_SERVICE_NAME
    routes: tuple[RouteConfig, ...] = ()

    def route(self, name: str) -> RouteConfig:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)


def output_prefix(route_name: str) -> str:
    """CloudFormation output prefix of a route: "my-route" -> "RouteMyRoute"."""
    return "Route" + "".join(part[:1].upper() + part[1:] for part in route_name.split("-"))


def queue_name(stack_name: str, route_name: str, kind: str, *, fifo: bool) -> str:
    """Physical queue name of a route's queue (kind: requests, dlq, results), unique per stack.

    SQS names are at most 80 characters including ".fifo"; a long stack name is shortened and made
    unique again with a hash of it. The stack names its queues explicitly because FIFO queues need the
    ".fifo" suffix (CloudFormation adds it to generated names, moto's CloudFormation does not) and
    operators find "<stack>-<route>-requests" in the console. No queue property that forces a
    replacement can change without changing the name, so a fixed name never blocks an update.
    """
    suffix = f"-{route_name}-{kind}" + (".fifo" if fifo else "")
    room = 80 - len(suffix)
    prefix = stack_name
    if len(prefix) > room:
        digest = hashlib.sha256(stack_name.encode()).hexdigest()[:6]
        prefix = stack_name[: room - 7] + "-" + digest
    return prefix + suffix


def payload_s3_prefix(bucket_name: str) -> str:
    """The `PAYLOAD_S3_PREFIX` of a route with large payloads (works with CDK string tokens too)."""
    return f"s3://{bucket_name}/{REQUESTS_PREFIX}"


def function_environment(
    route: RouteConfig,
    *,
    dlq_url: str,
    dead_letter_bucket: str,
    results_queue_url: str | None,
    results_bucket: str | None,
    payload_s3_prefix: str | None,
    namespace: str,
    service: str,
) -> dict[str, str]:
    """The function's environment variables, exactly as the contract in docs/design.md.

    Optional variables are left out (not set to "") when the route does not use them.
    """
    if (results_queue_url is not None) != route.results.queue:
        raise ValueError(f"route {route.name}: results_queue_url must be given iff results.queue is on")
    if (results_bucket is not None) != route.results.bucket:
        raise ValueError(f"route {route.name}: results_bucket must be given iff results.bucket is on")
    if (payload_s3_prefix is not None) != route.large_payloads:
        raise ValueError(f"route {route.name}: payload_s3_prefix must be given iff largePayloads is on")
    env = {
        Env.ENDPOINT_NAME: route.endpoint_name,
        Env.DEAD_LETTER_QUEUE_URL: dlq_url,
        Env.DEAD_LETTER_BUCKET: dead_letter_bucket,
        Env.DEAD_LETTER_PREFIX: DEAD_LETTERS_PREFIX,
        Env.RESULTS_MODE: route.results.mode,
        Env.MAX_RECEIVE_COUNT: str(route.max_receive_count),
        Env.RETRY_BASE_SECONDS: str(route.retry_base_seconds),
        Env.RETRY_MAX_SECONDS: str(route.retry_max_seconds),
        Env.MAX_CONCURRENCY: str(route.function_concurrency),
        Env.MESSAGE_FORMAT: route.message_format,
        Env.READ_TIMEOUT_SECONDS: str(route.read_timeout_seconds),
        Env.DEADLINE_MARGIN_SECONDS: str(route.deadline_margin_seconds),
        Env.LOG_PAYLOADS: _flag(route.log_payloads),
        Env.ENABLE_TRACING: _flag(route.tracing),
        Env.SERVICE_NAME: service,
        Env.METRICS_NAMESPACE: namespace,
        "POWERTOOLS_LOG_LEVEL": route.log_level,
    }
    if results_queue_url is not None:
        env[Env.RESULTS_QUEUE_URL] = results_queue_url
    if results_bucket is not None:
        env[Env.RESULTS_BUCKET] = results_bucket
        env[Env.RESULTS_PREFIX] = RESULTS_PREFIX
    if payload_s3_prefix is not None:
        env[Env.PAYLOAD_S3_PREFIX] = payload_s3_prefix
    return env


def _flag(value: bool) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------------------------------
# Parsing


def load_app_config(context: Mapping[str, Any]) -> AppConfig:
    """Parse the `invoker` value of a CDK context mapping (cdk.json's "context", or the app's context).

    The value may also be a JSON string, which is what `cdk synth -c invoker='{...}'` passes.
    """
    if CONTEXT_KEY not in context or context[CONTEXT_KEY] is None:
        raise ConfigError(f"{CONTEXT_KEY}: missing; cdk.json's context must hold the route configuration")
    raw = context[CONTEXT_KEY]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{CONTEXT_KEY}: not valid JSON ({exc})") from exc
    return parse_app_config(raw)


def load_app_config_file(path: str | Path = "cdk.json") -> AppConfig:
    """Read a cdk.json file and parse its `context.invoker` value."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("context"), dict):
        raise ConfigError(f'{path}: has no "context" object')
    return load_app_config(data["context"])


_APP_KEYS = ("stackName", "alarmEmail", "tags", "metricsNamespace", "serviceName", "routes")


def parse_app_config(raw: Any) -> AppConfig:
    obj = _Obj(raw, "", _APP_KEYS)
    stack_name = obj.string("stackName", DEFAULT_STACK_NAME)
    if not _STACK_NAME.fullmatch(stack_name):
        raise ConfigError(
            f"stackName: {stack_name!r} is not a CloudFormation stack name "
            "(a letter, then up to 127 letters, digits or hyphens)"
        )
    alarm_email = obj.optional_string("alarmEmail")
    if alarm_email is not None and not _EMAIL.fullmatch(alarm_email):
        raise ConfigError(f"alarmEmail: {alarm_email!r} is not an e-mail address")
    namespace = obj.string("metricsNamespace", DEFAULT_METRICS_NAMESPACE)
    if not _NAMESPACE.fullmatch(namespace) or namespace.startswith("AWS/"):
        raise ConfigError(f"metricsNamespace: {namespace!r} is not a valid custom CloudWatch namespace")
    service = obj.string("serviceName", DEFAULT_SERVICE_NAME)
    if not service.strip():
        raise ConfigError("serviceName: must not be empty")
    tags = _parse_tags(obj.get("tags", {}))

    raw_routes = obj.get("routes", None)
    if raw_routes is None:
        raise ConfigError("routes: missing; configure at least one route")
    if not isinstance(raw_routes, list) or not raw_routes:
        raise ConfigError("routes: must be a non-empty list of route objects")
    routes = tuple(_parse_route(item, f"routes[{i}]") for i, item in enumerate(raw_routes))

    seen: dict[str, int] = {}
    for i, route in enumerate(routes):
        # Two names may map to one output prefix ("a-b", "a--b"); the prefix must be unique too.
        for key in (route.name, route.output_prefix):
            if key in seen:
                raise ConfigError(
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


def _parse_tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError("tags: must be an object of string keys and string values")
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ConfigError(f"tags.{key}: must be a string, got {_describe(value)}")
        if not _TAG_KEY.fullmatch(key) or key.lower().startswith("aws:"):
            raise ConfigError(f"tags.{key}: not a valid tag key (1-128 chars, no 'aws:' prefix)")
        if not _TAG_VALUE.fullmatch(value):
            raise ConfigError(f"tags.{key}: {value!r} is not a valid tag value (0-256 chars)")
        tags[key] = value
    return tags


_ROUTE_KEYS = (
    "name", "endpointName", "fifo", "batchSize", "maxBatchingWindowSeconds", "maxConcurrency",
    "provisionedPollers", "functionConcurrency", "memoryMb", "timeoutSeconds", "visibilityTimeoutMultiplier",
    "maxReceiveCount", "retryBaseSeconds", "retryMaxSeconds", "messageFormat", "results", "largePayloads",
    "oldestMessageAlarmSeconds", "readTimeoutSeconds", "deadlineMarginSeconds", "logRetentionDays",
    "logLevel", "logPayloads", "tracing", "runtime", "architecture",
)  # fmt: skip

_DEFAULTS = RouteConfig(name="x", endpoint_name="x")


def _parse_route(raw: Any, path: str) -> RouteConfig:  # noqa: PLR0915 - one check per key, in order
    d = _DEFAULTS
    obj = _Obj(raw, path, _ROUTE_KEYS)

    name = obj.required_string("name")
    if not _ROUTE_NAME.fullmatch(name):
        raise ConfigError(
            f"{path}.name: {name!r} must be 1-31 chars: a lowercase letter, then lowercase letters, "
            "digits or hyphens"
        )
    endpoint = obj.required_string("endpointName")
    if not ENDPOINT_NAME.fullmatch(endpoint):
        raise ConfigError(
            f"{path}.endpointName: {endpoint!r} is not a SageMaker endpoint name "
            "(1-63 letters, digits and hyphens, starting and ending with a letter or digit)"
        )

    fifo = obj.boolean("fifo", d.fifo)
    batch_size = obj.integer("batchSize", d.batch_size, 1, STANDARD_MAX_BATCH_SIZE)
    window = obj.integer(
        "maxBatchingWindowSeconds", d.max_batching_window_seconds, 0, MAX_BATCHING_WINDOW_SECONDS
    )
    if fifo and batch_size > FIFO_MAX_BATCH_SIZE:
        raise ConfigError(
            f"{path}.batchSize: {batch_size} is above {FIFO_MAX_BATCH_SIZE}, the limit for FIFO queues"
        )
    if fifo and window > 0:
        raise ConfigError(
            f"{path}.maxBatchingWindowSeconds: {window} is not allowed on a FIFO queue "
            "(Lambda supports no batching window for FIFO sources); remove it or set 0"
        )
    if batch_size > UNBATCHED_MAX_BATCH_SIZE and window < 1:
        raise ConfigError(
            f"{path}.batchSize: {batch_size} is above {UNBATCHED_MAX_BATCH_SIZE}, which needs "
            "maxBatchingWindowSeconds of at least 1"
        )

    pollers_raw = obj.get("provisionedPollers", None)
    has_concurrency = obj.has("maxConcurrency") and obj.get("maxConcurrency", None) is not None
    if pollers_raw is not None and has_concurrency:
        raise ConfigError(
            f"{path}.maxConcurrency: cannot be combined with provisionedPollers "
            "(Lambda rejects ScalingConfig together with ProvisionedPollerConfig); keep one of them"
        )
    pollers: ProvisionedPollers | None = None
    max_concurrency: int | None
    if pollers_raw is not None:
        pollers = _parse_pollers(pollers_raw, f"{path}.provisionedPollers")
        max_concurrency = None
    else:
        # A cap by default: an uncapped mapping would let a burst of messages flood the endpoint.
        max_concurrency = obj.integer("maxConcurrency", d.max_concurrency or 2, 2, 1000)

    function_concurrency = obj.integer("functionConcurrency", d.function_concurrency, *MAX_CONCURRENCY_RANGE)
    memory = obj.integer("memoryMb", d.memory_mb, 128, 10_240)
    read_timeout = obj.integer("readTimeoutSeconds", d.read_timeout_seconds, *READ_TIMEOUT_SECONDS_RANGE)
    margin = obj.integer("deadlineMarginSeconds", d.deadline_margin_seconds, *DEADLINE_MARGIN_SECONDS_RANGE)
    timeout = obj.integer("timeoutSeconds", d.timeout_seconds, 1, LAMBDA_MAX_TIMEOUT_SECONDS)
    if timeout <= read_timeout + margin:
        raise ConfigError(
            f"{path}.timeoutSeconds: {timeout} leaves no time for one endpoint call: it must be above "
            f"readTimeoutSeconds + deadlineMarginSeconds = {read_timeout} + {margin} = "
            f"{read_timeout + margin} (the function starts no call with less time left)"
        )
    multiplier = obj.integer(
        "visibilityTimeoutMultiplier", d.visibility_timeout_multiplier, 1, SQS_MAX_VISIBILITY_SECONDS
    )
    if multiplier < MIN_VISIBILITY_MULTIPLIER:
        raise ConfigError(
            f"{path}.visibilityTimeoutMultiplier: {multiplier} is below {MIN_VISIBILITY_MULTIPLIER}; "
            "the queue's visibility timeout must be at least 6x the function timeout "
            "(AWS's recommendation, so retried batches do not overlap)"
        )
    if multiplier * timeout > SQS_MAX_VISIBILITY_SECONDS:
        raise ConfigError(
            f"{path}.visibilityTimeoutMultiplier: {multiplier} x timeoutSeconds {timeout} = "
            f"{multiplier * timeout} s is above {SQS_MAX_VISIBILITY_SECONDS} s, the SQS visibility limit"
        )

    max_receive = obj.integer("maxReceiveCount", d.max_receive_count, *MAX_RECEIVE_COUNT_RANGE)
    retry_base = obj.integer("retryBaseSeconds", d.retry_base_seconds, *RETRY_SECONDS_RANGE)
    retry_max = obj.integer("retryMaxSeconds", d.retry_max_seconds, *RETRY_SECONDS_RANGE)
    if retry_max < retry_base:
        raise ConfigError(f"{path}.retryMaxSeconds: {retry_max} is below retryBaseSeconds {retry_base}")
    message_format = obj.choice("messageFormat", d.message_format, ("envelope", "raw"))

    results = _parse_results(obj.get("results", {}), f"{path}.results")
    large_payloads = obj.boolean("largePayloads", d.large_payloads)
    if large_payloads and not results.bucket:
        raise ConfigError(
            f"{path}.largePayloads: needs results.bucket true (request payloads are read from the "
            f"route's bucket under {REQUESTS_PREFIX})"
        )
    alarm_age = obj.integer("oldestMessageAlarmSeconds", d.oldest_message_alarm_seconds, 60, 1_209_600)
    retention = obj.integer("logRetentionDays", d.log_retention_days, 1, 3653)
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(
            f"{path}.logRetentionDays: {retention} is not a CloudWatch Logs retention; "
            f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    log_level = obj.choice("logLevel", d.log_level, LOG_LEVELS)
    log_payloads = obj.boolean("logPayloads", d.log_payloads)
    tracing = obj.boolean("tracing", d.tracing)
    runtime = obj.choice("runtime", d.runtime, RUNTIMES)
    obj.choice("architecture", "arm64", ("arm64",))

    return RouteConfig(
        name=name,
        endpoint_name=endpoint,
        fifo=fifo,
        batch_size=batch_size,
        max_batching_window_seconds=window,
        max_concurrency=max_concurrency,
        provisioned_pollers=pollers,
        function_concurrency=function_concurrency,
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
    )


def _parse_pollers(raw: Any, path: str) -> ProvisionedPollers:
    obj = _Obj(raw, path, ("min", "max"))
    minimum = obj.integer("min", 2, 2, 200)
    maximum = obj.integer("max", 200, 2, 2000)
    if maximum < minimum:
        raise ConfigError(f"{path}.max: {maximum} is below min {minimum}")
    return ProvisionedPollers(minimum=minimum, maximum=maximum)


def _parse_results(raw: Any, path: str) -> ResultsConfig:
    d = ResultsConfig()
    obj = _Obj(raw, path, ("queue", "bucket", "expireDays"))
    return ResultsConfig(
        queue=obj.boolean("queue", d.queue),
        bucket=obj.boolean("bucket", d.bucket),
        expire_days=obj.integer("expireDays", d.expire_days, 1, 3650),
    )


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    return (
        type(value).__name__
        if not isinstance(value, (list, dict))
        else ("list" if isinstance(value, list) else "object")
    )


class _Obj:
    """A JSON object being read, with every error naming the key's path."""

    def __init__(self, raw: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{path or CONTEXT_KEY}: must be an object, got {_describe(raw)}")
        self.raw: dict[str, Any] = raw
        self.path = path
        unknown = [key for key in raw if key not in allowed]
        if unknown:
            # Typos would otherwise fall back to a default silently.
            raise ConfigError(
                f"{self._key(str(unknown[0]))}: unknown setting; allowed keys are {', '.join(allowed)}"
            )

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str, default: Any) -> Any:
        return self.raw.get(key, default)

    def required_string(self, key: str) -> str:
        if key not in self.raw or self.raw[key] is None:
            raise ConfigError(f"{self._key(key)}: missing (required)")
        return self.string(key, "")

    def string(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)}: must be a string, got {_describe(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self._key(key)}: must be a string, got {_describe(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)}: must be true or false, got {_describe(value)}")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw.get(key, default)
        # bool is an int subclass in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._key(key)}: must be a whole number, got {_describe(value)}")
        if value < minimum:
            raise ConfigError(f"{self._key(key)}: {value} is below {minimum}, the minimum")
        if value > maximum:
            raise ConfigError(f"{self._key(key)}: {value} is above {maximum}, the maximum")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise ConfigError(f"{self._key(key)}: {value!r} is not one of {', '.join(choices)}")
        return value

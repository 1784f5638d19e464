"""The route configuration schema: typed settings of the app and its routes, and what they derive.

Pure Python on purpose (no CDK import): the CDK app, the local stack and the CLI all read the same
configuration (cdk.json through config_loader.load_app_config, or the construct's keyword props), and the
function's environment is produced in one place (`function_environment`) so the deployed stack and the
local stack cannot drift apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from invoker.contract import (
    DEFAULT_LEDGER_DEDUPE_SECONDS,
    DEFAULT_LEDGER_EXPIRE_DAYS,
    DEFAULT_METRICS_NAMESPACE,
    DEFAULT_SERVICE_NAME,
    CapacityMode,
    Env,
    MessageFormat,
    ledger_key_prefix,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqs_sagemaker_invoker.scaling import ScalingPolicy

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

# AWS limits (the Lambda and SQS quotas pages); the SQS ones the function shares live in its contract.
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
MESSAGE_FORMATS: Final = tuple(MessageFormat)


def output_prefix(route_name: str) -> str:
    """CloudFormation output prefix of a route: "my-route" -> "RouteMyRoute"."""
    return "Route" + "".join(part[:1].upper() + part[1:] for part in route_name.split("-"))


class RouteConfigError(ValueError):
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
class CapacityConfig:
    """How the route's function instances share the endpoint (cdk.json `capacity`).

    Shared by default: with many instances against one endpoint, only a budget they all see keeps the
    calls within what the endpoint takes (per-instance limiting multiplies throttles with the instances).
    """

    mode: CapacityMode = CapacityMode.SHARED
    # Calls one instance (or copy) takes at once; the budget's ceiling is this times those serving. The
    # route-level AIMD finds a lower figure by itself, so a generous guess costs a few throttles only.
    concurrency_per_instance: int = 4
    variant_name: str | None = None
    inference_component_name: str | None = None
    refresh_seconds: int = 10

    @property
    def shared(self) -> bool:
        return self.mode is CapacityMode.SHARED

    @property
    def unit(self) -> Literal["instances", "copies"]:
        return "copies" if self.inference_component_name else "instances"


@dataclass(frozen=True)
class LedgerConfig:
    """The request ledger (cdk.json `ledger`): opt-in, one item per request in the stack's ledger table."""

    enabled: bool = False
    # A request that ended this recently is answered as a duplicate, not invoked again.
    dedupe_seconds: int = DEFAULT_LEDGER_DEDUPE_SECONDS
    expire_days: int = DEFAULT_LEDGER_EXPIRE_DAYS


@dataclass(frozen=True)
class JobsConfig:
    """Jobs (cdk.json `jobs`): opt-in; a JSON Lines file in, one output file (docs/function.md#jobs)."""

    enabled: bool = False
    # The request queue's backlog the splitter keeps under; None: the route's capacity ceiling x
    # JOB_BACKLOG_PER_SLOT (shared capacity), else JOB_DEFAULT_BACKLOG.
    max_backlog: int | None = None
    join: Literal["input", "none"] = "none"  # the default of `invoker job submit --join`
    watch_seconds: int = 10  # how often a running job's end is looked for
    timeout_seconds: int = 900  # the splitter/assembler function's timeout


@dataclass(frozen=True)
class RouteConfig:
    name: str
    endpoint_name: str
    fifo: bool = False
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    max_concurrency: int | None = 2
    provisioned_pollers: ProvisionedPollers | None = None
    # InvokeEndpoint calls in flight at once inside one function instance (MAX_CONCURRENCY); not
    # Lambda's reserved concurrency, which the event source mapping's max_concurrency caps instead.
    endpoint_calls_in_flight: int = 16
    # SendMessageBatch calls in flight per destination queue inside one instance (SQS_SENDS_IN_FLIGHT):
    # at a 20 ms round trip, one call at a time caps an instance near 500 results per second.
    result_sends_in_flight: int = 4
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
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    # Opt-in: the endpoint's variant (or inference component) scales with this route's backlog.
    scaling: ScalingPolicy | None = None
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)

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


def capacity_key(stack_name: str, route_name: str) -> str:
    """The route's item in the capacity table (CAPACITY_KEY); its IAM policy is scoped to it."""
    return f"{stack_name}/{route_name}"


def payload_s3_prefix(bucket_name: str) -> str:
    """The `PAYLOAD_S3_PREFIX` of a route with large payloads (works with CDK string tokens too)."""
    return f"s3://{bucket_name}/{REQUESTS_PREFIX}"


def function_environment(  # noqa: PLR0913 - one keyword per resource the environment names
    route: RouteConfig,
    *,
    dlq_url: str,
    dead_letter_bucket: str,
    results_queue_url: str | None,
    results_bucket: str | None,
    payload_s3_prefix: str | None,
    namespace: str,
    service: str,
    capacity_table: str | None = None,
    capacity_key: str | None = None,
    ledger_table: str | None = None,
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
    if (capacity_table is not None and capacity_key is not None) != route.capacity.shared:
        raise ValueError(
            f"route {route.name}: capacity_table and capacity_key must be given iff capacity.mode is shared"
        )
    if (ledger_table is not None) != route.ledger.enabled:
        raise ValueError(f"route {route.name}: ledger_table must be given iff ledger.enabled is on")
    env = {
        Env.ENDPOINT_NAME: route.endpoint_name,
        Env.DEAD_LETTER_QUEUE_URL: dlq_url,
        Env.DEAD_LETTER_BUCKET: dead_letter_bucket,
        Env.DEAD_LETTER_PREFIX: DEAD_LETTERS_PREFIX,
        Env.RESULTS_MODE: route.results.mode,
        Env.MAX_RECEIVE_COUNT: str(route.max_receive_count),
        Env.RETRY_BASE_SECONDS: str(route.retry_base_seconds),
        Env.RETRY_MAX_SECONDS: str(route.retry_max_seconds),
        Env.MAX_CONCURRENCY: str(route.endpoint_calls_in_flight),
        Env.SQS_SENDS_IN_FLIGHT: str(route.result_sends_in_flight),
        Env.MESSAGE_FORMAT: route.message_format,
        Env.READ_TIMEOUT_SECONDS: str(route.read_timeout_seconds),
        Env.DEADLINE_MARGIN_SECONDS: str(route.deadline_margin_seconds),
        Env.LOG_PAYLOADS: _flag(route.log_payloads),
        Env.ENABLE_TRACING: _flag(route.tracing),
        Env.SERVICE_NAME: service,
        Env.METRICS_NAMESPACE: namespace,
        Env.LOG_LEVEL: route.log_level,
    }
    if results_queue_url is not None:
        env[Env.RESULTS_QUEUE_URL] = results_queue_url
    if results_bucket is not None:
        env[Env.RESULTS_BUCKET] = results_bucket
        env[Env.RESULTS_PREFIX] = RESULTS_PREFIX
    if payload_s3_prefix is not None:
        env[Env.PAYLOAD_S3_PREFIX] = payload_s3_prefix
    env[Env.CAPACITY_MODE] = route.capacity.mode.value
    if capacity_table is not None and capacity_key is not None:
        capacity = route.capacity
        env[Env.CAPACITY_TABLE] = capacity_table
        env[Env.CAPACITY_KEY] = capacity_key
        env[Env.CONCURRENCY_PER_INSTANCE] = str(capacity.concurrency_per_instance)
        env[Env.CAPACITY_REFRESH_SECONDS] = str(capacity.refresh_seconds)
        if capacity.variant_name is not None:
            env[Env.CAPACITY_VARIANT] = capacity.variant_name
        if capacity.inference_component_name is not None:
            env[Env.CAPACITY_INFERENCE_COMPONENT] = capacity.inference_component_name
    if ledger_table is not None:
        env[Env.LEDGER_TABLE] = ledger_table
        env[Env.LEDGER_KEY_PREFIX] = ledger_key_prefix(route.name)
        env[Env.LEDGER_DEDUPE_SECONDS] = str(route.ledger.dedupe_seconds)
        env[Env.LEDGER_EXPIRE_DAYS] = str(route.ledger.expire_days)
    return env


def jobs_function_environment(  # noqa: PLR0913 - the resources the job function works with
    route: RouteConfig,
    *,
    request_queue_url: str,
    control_queue_url: str,
    bucket: str,
    ledger_table: str,
    service: str,
    capacity_table: str | None = None,
    capacity_key: str | None = None,
    payload_s3_prefix: str | None = None,
) -> dict[str, str]:
    """The splitter/assembler function's environment (invoker.jobs.config reads it)."""
    if not route.jobs.enabled:
        raise ValueError(f"route {route.name}: jobs are not enabled")
    env = {
        Env.ENDPOINT_NAME: route.endpoint_name,
        Env.LEDGER_TABLE: ledger_table,
        Env.LEDGER_KEY_PREFIX: ledger_key_prefix(route.name),
        Env.LEDGER_EXPIRE_DAYS: str(route.ledger.expire_days),
        Env.REQUEST_QUEUE_URL: request_queue_url,
        Env.JOB_CONTROL_QUEUE_URL: control_queue_url,
        Env.JOB_BUCKET: bucket,
        Env.JOB_WATCH_SECONDS: str(route.jobs.watch_seconds),
        Env.SERVICE_NAME: service,
        Env.LOG_LEVEL: route.log_level,
    }
    if route.jobs.max_backlog is not None:
        env[Env.JOB_MAX_BACKLOG] = str(route.jobs.max_backlog)
    if capacity_table is not None and capacity_key is not None:
        env[Env.CAPACITY_TABLE] = capacity_table
        env[Env.CAPACITY_KEY] = capacity_key
    if payload_s3_prefix is not None:
        env[Env.PAYLOAD_S3_PREFIX] = payload_s3_prefix
    return env


def _flag(value: bool) -> str:
    return "true" if value else "false"

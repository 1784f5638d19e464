"""The construct's keyword props: a route's settings in Python spelling, read by cdk.json's rules.

`route_config_from_props` turns SageMakerInvokerRoute's keywords into the cdk.json shape and parses it
with config_loader.parse_route, so a route has one set of rules whichever way it is written; its errors
name the props as the caller wrote them. `route_props` is the inverse, with which the cdk.json stack
builds its routes through the same construct. Pure Python (no CDK import).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from invoker.contract import CapacityMode

from sqs_sagemaker_invoker.infra.capacity_metrics import check_deployable_scaling
from sqs_sagemaker_invoker.infra.config import RouteConfig, RouteConfigError
from sqs_sagemaker_invoker.infra.config_loader import parse_route

# Keyword prop -> cdk.json key, for the flat props (results_* and provisioned_pollers are nested in JSON).
PROP_KEYS: dict[str, str] = {
    "route_name": "name",
    "endpoint_name": "endpointName",
    "fifo": "fifo",
    "batch_size": "batchSize",
    "max_batching_window_seconds": "maxBatchingWindowSeconds",
    "max_concurrency": "maxConcurrency",
    "endpoint_calls_in_flight": "endpointCallsInFlight",
    "result_sends_in_flight": "resultSendsInFlight",
    "memory_mb": "memoryMb",
    "timeout_seconds": "timeoutSeconds",
    "visibility_timeout_multiplier": "visibilityTimeoutMultiplier",
    "max_receive_count": "maxReceiveCount",
    "retry_base_seconds": "retryBaseSeconds",
    "retry_max_seconds": "retryMaxSeconds",
    "message_format": "messageFormat",
    "large_payloads": "largePayloads",
    "oldest_message_alarm_seconds": "oldestMessageAlarmSeconds",
    "read_timeout_seconds": "readTimeoutSeconds",
    "deadline_margin_seconds": "deadlineMarginSeconds",
    "log_retention_days": "logRetentionDays",
    "log_level": "logLevel",
    "log_payloads": "logPayloads",
    "tracing": "tracing",
    "runtime": "runtime",
}
NESTED_PROP_KEYS = {
    "results_queue": "results.queue",
    "results_bucket": "results.bucket",
    "results_expire_days": "results.expireDays",
    "provisioned_pollers": "provisionedPollers",
    "ledger": "ledger.enabled",
    "ledger_dedupe_seconds": "ledger.dedupeSeconds",
    "ledger_expire_days": "ledger.expireDays",
    "jobs": "jobs.enabled",
    "jobs_max_backlog": "jobs.maxBacklog",
    "jobs_join": "jobs.join",
    "jobs_watch_seconds": "jobs.watchSeconds",
    "jobs_timeout_seconds": "jobs.timeoutSeconds",
    "capacity_mode": "capacity.mode",
    "concurrency_per_instance": "capacity.concurrencyPerInstance",
    "capacity_variant_name": "capacity.variantName",
    "inference_component_name": "capacity.inferenceComponentName",
    "capacity_refresh_seconds": "capacity.refreshSeconds",
    "scaling": "scaling",
}
# capacity_mode takes the contract's values (CAPACITY_MODE); cdk.json spells per_instance "perInstance".
_CAPACITY_MODE_JSON = {CapacityMode.SHARED.value: "shared", CapacityMode.PER_INSTANCE.value: "perInstance"}


@dataclass(frozen=True)
class ScalingProps:
    """The `scaling=` prop (cdk.json `scaling`): the endpoint's variant or inference component follows the
    route's backlog. A mapping with these keys works too. None takes cdk.json's default."""

    target_backlog_per_instance: float
    min_capacity: int | None = None
    max_capacity: int | None = None
    scale_out_cooldown_seconds: int | None = None
    scale_in_cooldown_seconds: int | None = None
    scale_from_zero_step: int | None = None
    provisioning_seconds: int | None = None


# ScalingProps field -> cdk.json key under `scaling`.
SCALING_PROP_KEYS: dict[str, str] = {
    "target_backlog_per_instance": "targetBacklogPerInstance",
    "min_capacity": "minCapacity",
    "max_capacity": "maxCapacity",
    "scale_out_cooldown_seconds": "scaleOutCooldownSeconds",
    "scale_in_cooldown_seconds": "scaleInCooldownSeconds",
    "scale_from_zero_step": "scaleFromZeroStep",
    "provisioning_seconds": "provisioningSeconds",
}


def route_config_from_props(path: str, props: Mapping[str, Any]) -> RouteConfig:
    """A RouteConfig from keyword props (PROP_KEYS and results_*, provisioned_pollers=(min, max)).

    A prop given as None takes the default. Errors name the props as the caller wrote them.
    """
    raw: dict[str, Any] = {PROP_KEYS[key]: value for key, value in props.items() if key in PROP_KEYS}
    raw = {key: value for key, value in raw.items() if value is not None}
    results = {
        json_key: props[prop]
        for prop, json_key in (("results_queue", "queue"), ("results_bucket", "bucket"), ("results_expire_days", "expireDays"))
        if props.get(prop) is not None
    }  # fmt: skip
    if results:
        raw["results"] = results
    ledger = {
        json_key: props[prop]
        for prop, json_key in (("ledger", "enabled"), ("ledger_dedupe_seconds", "dedupeSeconds"), ("ledger_expire_days", "expireDays"))
        if props.get(prop) is not None
    }  # fmt: skip
    if ledger:
        raw["ledger"] = ledger
    jobs = {
        json_key: props[prop]
        for prop, json_key in (("jobs", "enabled"), ("jobs_max_backlog", "maxBacklog"), ("jobs_join", "join"),
                               ("jobs_watch_seconds", "watchSeconds"), ("jobs_timeout_seconds", "timeoutSeconds"))
        if props.get(prop) is not None
    }  # fmt: skip
    if jobs:
        raw["jobs"] = jobs
    pollers = props.get("provisioned_pollers")
    if pollers is not None:
        if not isinstance(pollers, tuple) or len(pollers) != 2:
            raise RouteConfigError(f"{path}: provisioned_pollers must be a (min, max) tuple, got {pollers!r}")
        raw["provisionedPollers"] = {"min": pollers[0], "max": pollers[1]}
    capacity = _capacity_json(path, props)
    if capacity:
        raw["capacity"] = capacity
    scaling = props.get("scaling")
    if scaling is not None:
        raw["scaling"] = _scaling_json(path, scaling)
    unknown = set(props) - set(PROP_KEYS) - set(NESTED_PROP_KEYS)
    if unknown:
        raise RouteConfigError(f"{path}: unknown props {', '.join(sorted(unknown))}")
    try:
        route = parse_route(raw, path)
        check_deployable_scaling(route, path)
    except RouteConfigError as exc:
        raise RouteConfigError(_in_prop_spelling(str(exc), path)) from exc
    return route


def _capacity_json(path: str, props: Mapping[str, Any]) -> dict[str, Any]:
    capacity: dict[str, Any] = {}
    mode = props.get("capacity_mode")
    if mode is not None:
        if str(mode) not in _CAPACITY_MODE_JSON:
            raise RouteConfigError(
                f"{path}: capacity_mode: must be one of {', '.join(_CAPACITY_MODE_JSON)}, got {mode!r}"
            )
        capacity["mode"] = _CAPACITY_MODE_JSON[str(mode)]
    for prop in ("concurrency_per_instance", "capacity_variant_name", "inference_component_name",
                 "capacity_refresh_seconds"):  # fmt: skip
        if props.get(prop) is not None:
            capacity[NESTED_PROP_KEYS[prop].removeprefix("capacity.")] = props[prop]
    return capacity


def _scaling_json(path: str, scaling: Any) -> dict[str, Any]:
    """ScalingProps, or a mapping of its field names, in cdk.json's shape (None values left out)."""
    if isinstance(scaling, ScalingProps):
        fields: Mapping[str, Any] = dataclasses.asdict(scaling)
    elif isinstance(scaling, Mapping):
        fields = scaling
    else:
        raise RouteConfigError(f"{path}: scaling must be a ScalingProps or a mapping, got {scaling!r}")
    unknown = set(fields) - set(SCALING_PROP_KEYS)
    if unknown:
        raise RouteConfigError(f"{path}: scaling: unknown keys {', '.join(sorted(map(str, unknown)))}")
    return {SCALING_PROP_KEYS[key]: value for key, value in fields.items() if value is not None}


def route_props(route: RouteConfig) -> dict[str, Any]:
    """The keyword props that make `route` again (route_config_from_props' inverse)."""
    props: dict[str, Any] = {
        "route_name": route.name,
        "endpoint_name": route.endpoint_name,
        "fifo": route.fifo,
        "batch_size": route.batch_size,
        "max_batching_window_seconds": route.max_batching_window_seconds,
        "max_concurrency": route.max_concurrency,
        "endpoint_calls_in_flight": route.endpoint_calls_in_flight,
        "result_sends_in_flight": route.result_sends_in_flight,
        "memory_mb": route.memory_mb,
        "timeout_seconds": route.timeout_seconds,
        "visibility_timeout_multiplier": route.visibility_timeout_multiplier,
        "max_receive_count": route.max_receive_count,
        "retry_base_seconds": route.retry_base_seconds,
        "retry_max_seconds": route.retry_max_seconds,
        "message_format": route.message_format,
        "results_queue": route.results.queue,
        "results_bucket": route.results.bucket,
        "results_expire_days": route.results.expire_days,
        "large_payloads": route.large_payloads,
        "oldest_message_alarm_seconds": route.oldest_message_alarm_seconds,
        "read_timeout_seconds": route.read_timeout_seconds,
        "deadline_margin_seconds": route.deadline_margin_seconds,
        "log_retention_days": route.log_retention_days,
        "log_level": route.log_level,
        "log_payloads": route.log_payloads,
        "tracing": route.tracing,
        "runtime": route.runtime,
        "capacity_mode": route.capacity.mode.value,
        "concurrency_per_instance": route.capacity.concurrency_per_instance,
        "capacity_variant_name": route.capacity.variant_name,
        "inference_component_name": route.capacity.inference_component_name,
        "capacity_refresh_seconds": route.capacity.refresh_seconds,
        "ledger": route.ledger.enabled,
        "ledger_dedupe_seconds": route.ledger.dedupe_seconds,
        "ledger_expire_days": route.ledger.expire_days,
        "jobs": route.jobs.enabled,
        "jobs_max_backlog": route.jobs.max_backlog,
        "jobs_join": route.jobs.join,
        "jobs_watch_seconds": route.jobs.watch_seconds,
        "jobs_timeout_seconds": route.jobs.timeout_seconds,
    }
    if route.scaling is not None:
        policy = route.scaling
        props["scaling"] = ScalingProps(
            target_backlog_per_instance=policy.target_backlog_per_instance,
            min_capacity=policy.min_capacity,
            max_capacity=policy.max_capacity,
            scale_out_cooldown_seconds=policy.scale_out_cooldown_seconds,
            scale_in_cooldown_seconds=policy.scale_in_cooldown_seconds,
            scale_from_zero_step=policy.scale_from_zero_step,
            provisioning_seconds=policy.provisioning_seconds,
        )
    if route.provisioned_pollers is not None:
        props["provisioned_pollers"] = (route.provisioned_pollers.minimum, route.provisioned_pollers.maximum)
    return props


_JSON_TO_PROP = {
    **{v: k for k, v in PROP_KEYS.items()},
    **{v: k for k, v in NESTED_PROP_KEYS.items()},
    **{f"scaling.{v}": f"scaling.{k}" for k, v in SCALING_PROP_KEYS.items()},
}
_POLLER_BOUND = {
    "provisionedPollers.min": "provisioned_pollers[0]",
    "provisionedPollers.max": "provisioned_pollers[1]",
}
# The keys a message names: nested ones, and camelCase words (plain words such as "name" are prose too).
_JSON_KEY = re.compile(
    r"\b(?:results\.\w+|ledger\.\w+|jobs\.\w+|provisionedPollers\.\w+|capacity\.\w+|scaling\.\w+|[a-z]+[A-Z]\w*)\b"
)


def _in_prop_spelling(message: str, path: str) -> str:
    """A parse_route message in the construct's spelling: "P.batchSize: ..." -> "P: batch_size: ..."."""

    def prop(match: re.Match[str]) -> str:
        key = match.group(0)
        return _POLLER_BOUND.get(key) or _JSON_TO_PROP.get(key, key)

    if message.startswith(f"{path}."):
        key, sep, rest = message[len(path) + 1 :].partition(": ")
        return (
            f"{path}: {_POLLER_BOUND.get(key) or _JSON_TO_PROP.get(key, key)}{sep}{_JSON_KEY.sub(prop, rest)}"
        )
    return _JSON_KEY.sub(prop, message)

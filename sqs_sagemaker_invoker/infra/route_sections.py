"""The nested objects of a route in cdk.json (`results`, `provisionedPollers`, `ledger`, `jobs`, `capacity`,
`scaling`): each parsed and checked on its own, its errors naming the setting's path."""

from __future__ import annotations

import re
from typing import Any

from invoker.contract import (
    CAPACITY_REFRESH_SECONDS_RANGE,
    CONCURRENCY_PER_INSTANCE_RANGE,
    ENDPOINT_NAME,
    JOB_MAX_BACKLOG_RANGE,
    JOB_WATCH_SECONDS_RANGE,
    LEDGER_DEDUPE_SECONDS_RANGE,
    LEDGER_EXPIRE_DAYS_RANGE,
    CapacityMode,
)

from sqs_sagemaker_invoker.infra.config import (
    CapacityConfig,
    JobsConfig,
    LedgerConfig,
    ProvisionedPollers,
    ResultsConfig,
    RouteConfigError,
)
from sqs_sagemaker_invoker.infra.json_object import JsonObject
from sqs_sagemaker_invoker.scaling import (
    MAX_CAPACITY_LIMIT,
    ScalingConfigError,
    ScalingPolicy,
    check_policy,
)

# InferenceComponentName's pattern in the sagemaker-runtime model (at most 63 characters).
_INFERENCE_COMPONENT_NAME = re.compile(r"(?=.{1,63}\Z)[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")


def parse_ledger(raw: Any, path: str) -> LedgerConfig:
    d = LedgerConfig()
    obj = JsonObject(raw, path, ("enabled", "dedupeSeconds", "expireDays"))
    ledger = LedgerConfig(
        enabled=obj.boolean("enabled", d.enabled),
        dedupe_seconds=obj.integer("dedupeSeconds", d.dedupe_seconds, *LEDGER_DEDUPE_SECONDS_RANGE),
        expire_days=obj.integer("expireDays", d.expire_days, *LEDGER_EXPIRE_DAYS_RANGE),
    )
    if ledger.dedupe_seconds > ledger.expire_days * 86_400:
        raise RouteConfigError(
            f"{path}.dedupeSeconds: {ledger.dedupe_seconds} outlasts expireDays ({ledger.expire_days} days):"
            " a request whose item has expired can no longer be recognised as a duplicate"
        )
    return ledger


def parse_jobs(raw: Any, path: str) -> JobsConfig:
    d = JobsConfig()
    obj = JsonObject(raw, path, ("enabled", "maxBacklog", "join", "watchSeconds", "timeoutSeconds"))
    max_backlog = obj.get("maxBacklog", None)
    return JobsConfig(
        enabled=obj.boolean("enabled", d.enabled),
        max_backlog=None if max_backlog is None else obj.integer("maxBacklog", 0, *JOB_MAX_BACKLOG_RANGE),
        join=obj.choice("join", d.join, ("input", "none")),  # type: ignore[arg-type]  # checked by choice()
        watch_seconds=obj.integer("watchSeconds", d.watch_seconds, *JOB_WATCH_SECONDS_RANGE),
        timeout_seconds=obj.integer("timeoutSeconds", d.timeout_seconds, 60, 900),
    )


_CAPACITY_KEYS = ("mode", "concurrencyPerInstance", "variantName", "inferenceComponentName", "refreshSeconds")
_CAPACITY_MODES = {"shared": CapacityMode.SHARED, "perInstance": CapacityMode.PER_INSTANCE}


def parse_capacity(raw: Any, path: str) -> CapacityConfig:
    d = CapacityConfig()
    obj = JsonObject(raw, path, _CAPACITY_KEYS)
    mode = _CAPACITY_MODES[obj.choice("mode", "shared", tuple(_CAPACITY_MODES))]
    variant = obj.optional_string("variantName")
    component = obj.optional_string("inferenceComponentName")
    for key, name, pattern in (
        ("variantName", variant, ENDPOINT_NAME),
        ("inferenceComponentName", component, _INFERENCE_COMPONENT_NAME),
    ):
        if name is not None and not pattern.fullmatch(name):
            raise RouteConfigError(
                f"{path}.{key}: {name!r} is not a SageMaker name (1-63 letters, digits, hyphens)"
            )
    if variant is not None and component is not None:
        raise RouteConfigError(
            f"{path}.variantName: give variantName (instances count) or inferenceComponentName (copies"
            " count), not both"
        )
    return CapacityConfig(
        mode=mode,
        concurrency_per_instance=obj.integer(
            "concurrencyPerInstance", d.concurrency_per_instance, *CONCURRENCY_PER_INSTANCE_RANGE
        ),
        variant_name=variant,
        inference_component_name=component,
        refresh_seconds=obj.integer("refreshSeconds", d.refresh_seconds, *CAPACITY_REFRESH_SECONDS_RANGE),
    )


_SCALING_KEYS = (
    "minCapacity", "maxCapacity", "targetBacklogPerInstance", "scaleOutCooldownSeconds",
    "scaleInCooldownSeconds", "scaleFromZeroStep", "provisioningSeconds",
)  # fmt: skip
_DAY_SECONDS = 86_400


def parse_scaling(raw: Any, path: str, capacity: CapacityConfig) -> ScalingPolicy | None:
    if raw is None:
        return None
    if not capacity.shared:
        raise RouteConfigError(
            f"{path}: needs capacity.mode shared (the policy tracks backlog per instance, and the shared"
            " budget is what reads and reports the endpoint's capacity)"
        )
    obj = JsonObject(raw, path, _SCALING_KEYS)
    target = obj.get("targetBacklogPerInstance", None)
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise RouteConfigError(f"{path}.targetBacklogPerInstance: required, a number above 0")
    policy = ScalingPolicy(
        unit=capacity.unit,
        min_capacity=obj.integer("minCapacity", 1, 0, MAX_CAPACITY_LIMIT),
        max_capacity=obj.integer("maxCapacity", 1, 1, MAX_CAPACITY_LIMIT),
        target_backlog_per_instance=float(target),
        scale_out_cooldown_seconds=obj.integer("scaleOutCooldownSeconds", 60, 0, _DAY_SECONDS),
        scale_in_cooldown_seconds=obj.integer("scaleInCooldownSeconds", 300, 0, _DAY_SECONDS),
        scale_from_zero_step=obj.integer("scaleFromZeroStep", 1, 1, MAX_CAPACITY_LIMIT),
        provisioning_seconds=obj.integer("provisioningSeconds", 600, 0, _DAY_SECONDS),
    )
    try:
        check_policy(policy, path=path)
    except ScalingConfigError as exc:
        raise RouteConfigError(str(exc)) from exc
    return policy


def parse_pollers(raw: Any, path: str) -> ProvisionedPollers:
    obj = JsonObject(raw, path, ("min", "max"))
    minimum = obj.integer("min", 2, 2, 200)
    maximum = obj.integer("max", 200, 2, 2000)
    if maximum < minimum:
        raise RouteConfigError(f"{path}.max: {maximum} is below min {minimum}")
    return ProvisionedPollers(minimum=minimum, maximum=maximum)


def parse_results(raw: Any, path: str) -> ResultsConfig:
    d = ResultsConfig()
    obj = JsonObject(raw, path, ("queue", "bucket", "expireDays"))
    return ResultsConfig(
        queue=obj.boolean("queue", d.queue),
        bucket=obj.boolean("bucket", d.bucket),
        expire_days=obj.integer("expireDays", d.expire_days, 1, 3650),
    )

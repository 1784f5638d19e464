"""A route's `capacity` and `scaling` settings (cdk.json), the scaling policy's checks, and the retry
schedule's floor that a scale-out from zero must fit in. Pure: no CDK, no AWS."""

from __future__ import annotations

from typing import Any

import pytest
from invoker.contract import CapacityMode, backoff_ceiling, capacity_wait_floor_seconds

from sqs_sagemaker_invoker.infra.config import CapacityConfig, RouteConfigError
from sqs_sagemaker_invoker.infra.config_loader import parse_route
from sqs_sagemaker_invoker.scaling import (
    ScalingConfigError,
    ScalingPolicy,
    check_policy,
    check_retries_outlast_scale_out,
)


def route(**overrides: Any) -> dict[str, Any]:
    return {"name": "r", "endpointName": "my-endpoint", **overrides}


def rejected(raw: dict[str, Any]) -> str:
    with pytest.raises(RouteConfigError) as raised:
        parse_route(raw, "routes[0]")
    return str(raised.value)


# -- capacity ---------------------------------------------------------------------------------------------


def test_capacity_defaults_to_a_shared_budget_of_four_calls_per_instance() -> None:
    parsed = parse_route(route(), "routes[0]")
    assert parsed.capacity == CapacityConfig(
        mode=CapacityMode.SHARED,
        concurrency_per_instance=4,
        variant_name=None,
        inference_component_name=None,
        refresh_seconds=10,
    )
    assert parsed.capacity.shared
    assert parsed.capacity.unit == "instances"
    assert parsed.scaling is None


def test_capacity_settings_are_read() -> None:
    parsed = parse_route(
        route(capacity={"mode": "perInstance", "concurrencyPerInstance": 2, "refreshSeconds": 30}),
        "routes[0]",
    )
    assert parsed.capacity.mode is CapacityMode.PER_INSTANCE
    assert (parsed.capacity.concurrency_per_instance, parsed.capacity.refresh_seconds) == (2, 30)
    component = parse_route(route(capacity={"inferenceComponentName": "ic-1"}), "routes[0]").capacity
    assert component.unit == "copies"


@pytest.mark.parametrize(
    ("capacity", "names"),
    [
        ({"mode": "per_instance"}, "routes[0].capacity.mode"),
        ({"concurrencyPerInstance": 0}, "routes[0].capacity.concurrencyPerInstance"),
        ({"refreshSeconds": 301}, "routes[0].capacity.refreshSeconds"),
        ({"variantName": "bad_name"}, "routes[0].capacity.variantName"),
        ({"inferenceComponentName": "-ic"}, "routes[0].capacity.inferenceComponentName"),
        ({"variantName": "v", "inferenceComponentName": "ic"}, "routes[0].capacity.variantName"),
        ({"size": 3}, "routes[0].capacity"),
    ],
)
def test_invalid_capacity_names_the_setting(capacity: dict[str, Any], names: str) -> None:
    assert rejected(route(capacity=capacity)).startswith(names)


# -- scaling ----------------------------------------------------------------------------------------------


def test_scaling_defaults() -> None:
    parsed = parse_route(
        route(capacity={"variantName": "AllTraffic"}, scaling={"targetBacklogPerInstance": 30}), "routes[0]"
    )
    assert parsed.scaling == ScalingPolicy(
        unit="instances",
        min_capacity=1,
        max_capacity=1,
        target_backlog_per_instance=30.0,
        scale_out_cooldown_seconds=60,
        scale_in_cooldown_seconds=300,
        scale_from_zero_step=1,
        provisioning_seconds=600,
    )


def test_scaling_an_inference_component_counts_copies_and_may_start_at_zero() -> None:
    parsed = parse_route(
        route(
            maxReceiveCount=11,  # 511 s + 450 s = 961 s of waits >= 120 s + 600 s
            capacity={"inferenceComponentName": "ic-1"},
            scaling={"minCapacity": 0, "maxCapacity": 5, "targetBacklogPerInstance": 12.5},
        ),
        "routes[0]",
    )
    assert parsed.scaling is not None
    assert (parsed.scaling.unit, parsed.scaling.min_capacity, parsed.scaling.scales_from_zero) == (
        "copies",
        0,
        True,
    )


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"scaling": {"maxCapacity": 2}}, "routes[0].scaling.targetBacklogPerInstance: required"),
        ({"scaling": {"targetBacklogPerInstance": 0}}, "routes[0].scaling.targetBacklogPerInstance"),
        (
            {"capacity": {"mode": "perInstance"}, "scaling": {"targetBacklogPerInstance": 5}},
            "routes[0].scaling: needs capacity.mode shared",
        ),
        ({"scaling": {"targetBacklogPerInstance": 5, "minCapacity": 0}}, "routes[0].scaling.minCapacity"),
        (
            {"scaling": {"targetBacklogPerInstance": 5, "minCapacity": 3, "maxCapacity": 2}},
            "routes[0].scaling.minCapacity (3) must not exceed maxCapacity (2)",
        ),
        ({"scaling": {"targetBacklogPerInstance": 5, "cooldown": 1}}, "routes[0].scaling"),
    ],
)
def test_invalid_scaling_names_the_setting(overrides: dict[str, Any], names: str) -> None:
    assert rejected(route(**overrides)).startswith(names)


# -- the policy's own checks -------------------------------------------------------------------------------


def policy(**overrides: Any) -> ScalingPolicy:
    values: dict[str, Any] = {
        "unit": "copies",
        "min_capacity": 0,
        "max_capacity": 4,
        "target_backlog_per_instance": 10.0,
        **overrides,
    }
    return ScalingPolicy(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"unit": "instances"}, "scaling.minCapacity: 0 instances is not allowed"),
        ({"min_capacity": -1}, "scaling.minCapacity: must not be negative"),
        ({"max_capacity": 0}, "scaling.maxCapacity: must be 1-1000"),
        ({"max_capacity": 1001}, "scaling.maxCapacity: must be 1-1000"),
        ({"min_capacity": 5}, "scaling.minCapacity (5) must not exceed maxCapacity (4)"),
        ({"target_backlog_per_instance": 0.0}, "scaling.targetBacklogPerInstance: must be above 0"),
        ({"scale_in_cooldown_seconds": -1}, "scaling.scaleInCooldownSeconds: must not be negative"),
        ({"provisioning_seconds": -5}, "scaling.provisioningSeconds: must not be negative"),
        ({"scale_from_zero_step": 5}, "scaling.scaleFromZeroStep: must be 1-4 (maxCapacity)"),
    ],
)
def test_check_policy_names_the_first_bad_setting(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ScalingConfigError) as raised:
        check_policy(policy(**overrides))
    assert str(raised.value).startswith(message)


def test_check_policy_accepts_a_valid_policy() -> None:
    check_policy(policy())
    check_policy(policy(unit="instances", min_capacity=1, max_capacity=1))


# -- the retry floor against a scale-out from zero ---------------------------------------------------------


def test_capacity_wait_floor_by_hand() -> None:
    # maxReceiveCount 10, base 2 s, max 900 s: deliveries 1-9 wait; ceilings 2, 4, ..., 512 s
    assert [backoff_ceiling(n, 2, 900) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 512]
    # equal jitter waits at least half of each: 1 + 2 + 4 + ... + 256 = 511 s (the 10th dead-letters)
    assert capacity_wait_floor_seconds(10, 2, 900) == 511
    # an 11th delivery adds the capped ceiling's half: 900 // 2 = 450 -> 961 s
    assert capacity_wait_floor_seconds(11, 2, 900) == 961
    # odd ceilings round down: base 3 -> ceilings 3, 6 -> 1 + 3
    assert capacity_wait_floor_seconds(3, 3, 100) == 4
    # one delivery never waits
    assert capacity_wait_floor_seconds(1, 2, 900) == 0


def test_retries_must_outlast_detection_plus_provisioning() -> None:
    # GIVEN copies that may reach zero and take 600 s to provision (+ 120 s until the alarm fires)
    zero = policy(provisioning_seconds=600)
    # WHEN messages retry 10 times from 2 s up to 900 s: 511 s < 720 s
    with pytest.raises(ScalingConfigError) as raised:
        check_retries_outlast_scale_out(
            zero, max_receive_count=10, retry_base_seconds=2, retry_max_seconds=900
        )
    # THEN the error names the setting and both figures
    message = str(raised.value)
    assert message.startswith(
        "scaling.provisioningSeconds: a message that finds no capacity waits at least 511 s"
    )
    assert "720 s" in message
    assert "raise maxReceiveCount or retryMaxSeconds" in message
    # AND 11 deliveries (961 s) are enough
    check_retries_outlast_scale_out(zero, max_receive_count=11, retry_base_seconds=2, retry_max_seconds=900)
    # AND a policy that never reaches zero is not held to it
    check_retries_outlast_scale_out(
        policy(min_capacity=1), max_receive_count=2, retry_base_seconds=1, retry_max_seconds=1
    )

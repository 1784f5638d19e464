"""The scaling policy's math and its decisions (sqs_sagemaker_invoker.scaling): what the stack deploys and
the local autoscaler applies, checked without waiting for any clock."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sqs_sagemaker_invoker.scaling import (
    Autoscaler,
    ScalingPolicy,
    backlog_per_instance,
    target_tracking_capacity,
)


def _policy(**changes: object) -> ScalingPolicy:
    values: dict[str, object] = {
        "unit": "copies",
        "min_capacity": 0,
        "max_capacity": 4,
        "target_backlog_per_instance": 10.0,
        "scale_out_cooldown_seconds": 30,
        "scale_in_cooldown_seconds": 60,
        "scale_from_zero_step": 1,
        "provisioning_seconds": 10,
    }
    values.update(changes)
    return ScalingPolicy(**values)  # type: ignore[arg-type]


# -- the metric and target tracking -------------------------------------------------------------------


def test_backlog_per_instance_counts_visible_and_in_flight_per_serving_instance() -> None:
    assert backlog_per_instance(30, 10, 4) == 10.0
    # Nothing serving: the backlog itself (the stack's metric math does the same, no division by zero)
    assert backlog_per_instance(7, 3, 0) == 10.0


def test_target_tracking_rounds_up_to_keep_the_backlog_per_instance_at_most_the_target() -> None:
    policy = _policy(max_capacity=10)
    # 2 serving at 25 each = 50 waiting; 50 / 10 = 5 instances
    assert target_tracking_capacity(2, 25.0, policy) == 5
    # 51 waiting needs a sixth
    assert target_tracking_capacity(3, 17.0, policy) == 6


def test_target_tracking_stays_within_min_and_max() -> None:
    assert target_tracking_capacity(2, 1000.0, _policy(max_capacity=4)) == 4
    assert target_tracking_capacity(3, 0.0, _policy(min_capacity=0)) == 0
    assert target_tracking_capacity(3, 0.0, _policy(unit="instances", min_capacity=1)) == 1


def test_target_tracking_asks_nothing_from_zero() -> None:
    # Zero times any metric is zero: scaling out from nothing is the step policy's job
    assert target_tracking_capacity(0, 500.0, _policy()) == 0


# -- decisions ----------------------------------------------------------------------------------------


def test_a_backlog_at_zero_capacity_takes_the_scale_from_zero_step() -> None:
    scaler = Autoscaler(_policy(scale_from_zero_step=2))
    decision = scaler.decide(0.0, serving=0, desired=0, visible=300, in_flight=0)
    assert decision is not None
    assert (decision.desired, decision.rule) == (2, "scale_from_zero")


def test_no_backlog_at_zero_capacity_stays_at_zero() -> None:
    assert Autoscaler(_policy()).decide(0.0, serving=0, desired=0, visible=0, in_flight=0) is None


def test_nothing_is_decided_while_the_first_copy_provisions() -> None:
    # GIVEN a scale-from-zero whose copy is still provisioning (desired 1, serving 0)
    scaler = Autoscaler(_policy(scale_out_cooldown_seconds=0))
    scaler.decide(0.0, serving=0, desired=0, visible=300, in_flight=0)
    # WHEN the backlog is read again, long after every cooldown
    # THEN no new decision: nothing serves, so target tracking has nothing to multiply
    assert scaler.decide(500.0, serving=0, desired=1, visible=300, in_flight=0) is None


def test_scale_out_waits_for_the_scale_out_cooldown() -> None:
    scaler = Autoscaler(_policy(scale_out_cooldown_seconds=30))
    first = scaler.decide(0.0, serving=1, desired=1, visible=20, in_flight=0)
    assert first is not None
    assert first.desired == 2
    # Still too much backlog for 2, but the cooldown has not passed
    assert scaler.decide(29.0, serving=2, desired=2, visible=40, in_flight=0) is None
    later = scaler.decide(30.0, serving=2, desired=2, visible=40, in_flight=0)
    assert later is not None
    assert later.desired == 4


def test_scale_in_to_the_minimum_waits_for_the_scale_in_cooldown_since_any_activity() -> None:
    scaler = Autoscaler(_policy(scale_out_cooldown_seconds=0, scale_in_cooldown_seconds=60))
    scaler.decide(0.0, serving=1, desired=1, visible=40, in_flight=0)  # out to 4 at t=0
    # The queue is empty at t=59: too soon after the scale-out
    assert scaler.decide(59.0, serving=4, desired=4, visible=0, in_flight=0) is None
    decision = scaler.decide(60.0, serving=4, desired=4, visible=0, in_flight=0)
    assert decision is not None
    assert decision.desired == 0  # down to minCapacity (0 copies)


def test_no_scale_in_while_capacity_is_still_provisioning() -> None:
    scaler = Autoscaler(_policy(scale_in_cooldown_seconds=0))
    # 2 serving, 2 more provisioning; an empty queue must not cancel them half-way (AWS waits too)
    assert scaler.decide(100.0, serving=2, desired=4, visible=0, in_flight=0) is None


def test_an_instance_backed_variant_never_scales_below_one() -> None:
    scaler = Autoscaler(_policy(unit="instances", min_capacity=1, scale_in_cooldown_seconds=0))
    decision = scaler.decide(0.0, serving=3, desired=3, visible=0, in_flight=0)
    assert decision is not None
    assert decision.desired == 1


# -- properties ---------------------------------------------------------------------------------------

policies = st.builds(
    _policy,
    min_capacity=st.integers(0, 3),
    max_capacity=st.integers(3, 50),
    target_backlog_per_instance=st.floats(0.5, 100.0),
    scale_out_cooldown_seconds=st.integers(0, 120),
    scale_in_cooldown_seconds=st.integers(0, 600),
    scale_from_zero_step=st.integers(1, 3),
)
readings = st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(0, 5000), st.integers(0, 5000))


@given(policies, st.lists(st.tuples(st.floats(0, 100), readings), min_size=1, max_size=20))
def test_every_decision_is_within_min_and_max_and_changes_the_capacity(
    policy: ScalingPolicy, steps: list[tuple[float, tuple[int, int, int, int]]]
) -> None:
    scaler = Autoscaler(policy)
    now = 0.0
    for gap, (serving, extra, visible, in_flight) in steps:
        now += gap
        desired = serving + extra if serving <= policy.max_capacity else serving
        decision = scaler.decide(now, serving=serving, desired=desired, visible=visible, in_flight=in_flight)
        if decision is None:
            continue
        assert policy.min_capacity <= decision.desired <= policy.max_capacity
        assert decision.desired != desired


@given(policies, st.integers(1, 50), st.integers(0, 10_000), st.integers(0, 10_000))
def test_target_tracking_capacity_is_enough_for_the_target_unless_capped(
    policy: ScalingPolicy, serving: int, backlog: int, more: int
) -> None:
    capacity = target_tracking_capacity(serving, backlog_per_instance(backlog, 0, serving), policy)
    if capacity < policy.max_capacity and capacity > 0:
        # The backlog per instance at the new capacity is at most the target (up to rounding)
        assert backlog / capacity <= policy.target_backlog_per_instance * (1 + 1e-9)
    # More backlog never asks for less
    bigger = target_tracking_capacity(serving, backlog_per_instance(backlog + more, 0, serving), policy)
    assert bigger >= capacity


@given(policies, st.integers(1, 10_000))
def test_from_zero_the_first_step_is_bounded_by_max(policy: ScalingPolicy, backlog: int) -> None:
    decision = Autoscaler(policy).decide(0.0, serving=0, desired=0, visible=backlog, in_flight=0)
    assert decision is not None
    assert decision.desired == max(policy.min_capacity, min(policy.scale_from_zero_step, policy.max_capacity))
    assert decision.desired == math.ceil(decision.desired)


def test_the_step_from_zero_never_goes_below_the_minimum() -> None:
    # GIVEN a policy whose minimum is above its step (an endpoint found with nothing, e.g. while created)
    scaler = Autoscaler(_policy(unit="instances", min_capacity=2, scale_from_zero_step=1))
    # WHEN there is a backlog and nothing serves
    decision = scaler.decide(0.0, serving=0, desired=0, visible=5, in_flight=0)
    # THEN it asks for the minimum at least (Application Auto Scaling never sets less than MinCapacity)
    assert decision is not None
    assert decision.desired == 2

"""How a route's endpoint follows its backlog: the policy, its checks and its math, written once.

The stack deploys it (Application Auto Scaling: a target-tracking policy on backlog per instance, and for
inference components a step policy that scales out from zero); the local autoscaler applies the same
decisions to the emulator, fed by the same numbers (the request queue's visible and in-flight messages, the
capacity the function reports). Pure standard library: the constructs and the local stack both import it.

The metric is `backlog per instance` = (visible + in flight) / instances (copies) serving. Target tracking
keeps it near the target: desired = ceil(serving x metric / target) = ceil(backlog / target). It cannot
act from zero (nothing to multiply), so a separate rule adds capacity when there is a backlog and none
serves: a step policy on an alarm, as AWS's own scale-from-zero example does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

from invoker.contract import capacity_wait_floor_seconds

ScalingUnit = Literal["instances", "copies"]

# CloudWatch metric math, with the ids the stack gives its metrics. `capacity` is the function's
# EndpointCapacity (instances or copies serving, as last read); FILL keeps its last value while the
# function is idle, so an empty queue still reads as zero backlog per instance and scales in.
METRIC_ID_VISIBLE: Final = "visible"
METRIC_ID_IN_FLIGHT: Final = "inFlight"
METRIC_ID_CAPACITY: Final = "capacity"
CAPACITY_FILLED: Final = f"FILL({METRIC_ID_CAPACITY}, REPEAT)"
BACKLOG: Final = f"({METRIC_ID_VISIBLE} + {METRIC_ID_IN_FLIGHT})"
BACKLOG_PER_INSTANCE_EXPRESSION: Final = (
    f"IF({CAPACITY_FILLED} > 0, {BACKLOG} / {CAPACITY_FILLED}, {BACKLOG})"
)
# 1 while messages wait and nothing serves: the alarm of the scale-from-zero step policy.
BACKLOG_WITHOUT_CAPACITY_EXPRESSION: Final = f"IF({CAPACITY_FILLED} == 0 AND {BACKLOG} > 0, 1, 0)"

# The period of the metrics and of the scale-from-zero alarm, and how many periods it must see.
METRIC_PERIOD_SECONDS: Final = 60
FROM_ZERO_EVALUATION_PERIODS: Final = 1
# SQS metrics reach CloudWatch about a period late; counted once more in the detection time.
METRIC_LAG_PERIODS: Final = 1

# What the service allows (Application Auto Scaling, namespace sagemaker).
MIN_INSTANCES: Final = 1  # an instance-backed variant never goes below one
MAX_CAPACITY_LIMIT: Final = 1000


class ScalingConfigError(ValueError):
    """A scaling setting is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One route's scaling settings (cdk.json `scaling`, camelCase there)."""

    unit: ScalingUnit
    min_capacity: int
    max_capacity: int
    # Messages waiting (visible + in flight) per instance or copy that the policy aims at.
    target_backlog_per_instance: float
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 300
    # Added by the step policy when there is a backlog and nothing serves (copies; inference components).
    scale_from_zero_step: int = 1
    # How long a new instance or copy takes to serve: what a message that finds none must outlast.
    provisioning_seconds: int = 600

    @property
    def detection_seconds(self) -> int:
        """How long after a backlog appears at zero capacity the step alarm fires, at the latest."""
        return METRIC_PERIOD_SECONDS * (FROM_ZERO_EVALUATION_PERIODS + METRIC_LAG_PERIODS)

    @property
    def scales_from_zero(self) -> bool:
        return self.min_capacity == 0


def check_policy(policy: ScalingPolicy, *, path: str = "scaling") -> None:
    """Raises ScalingConfigError naming the first bad setting."""
    if policy.unit == "instances" and policy.min_capacity < MIN_INSTANCES:
        raise ScalingConfigError(
            f"{path}.minCapacity: {policy.min_capacity} instances is not allowed; a production variant keeps"
            f" at least {MIN_INSTANCES} (scale to zero needs an inference component:"
            " set capacity.inferenceComponentName)"
        )
    if policy.min_capacity < 0:
        raise ScalingConfigError(f"{path}.minCapacity: must not be negative, got {policy.min_capacity}")
    if not 1 <= policy.max_capacity <= MAX_CAPACITY_LIMIT:
        raise ScalingConfigError(
            f"{path}.maxCapacity: must be 1-{MAX_CAPACITY_LIMIT}, got {policy.max_capacity}"
        )
    if policy.min_capacity > policy.max_capacity:
        raise ScalingConfigError(
            f"{path}.minCapacity ({policy.min_capacity}) must not exceed maxCapacity ({policy.max_capacity})"
        )
    if not policy.target_backlog_per_instance > 0:
        raise ScalingConfigError(
            f"{path}.targetBacklogPerInstance: must be above 0, got {policy.target_backlog_per_instance}"
        )
    for name, value in (
        ("scaleOutCooldownSeconds", policy.scale_out_cooldown_seconds),
        ("scaleInCooldownSeconds", policy.scale_in_cooldown_seconds),
        ("provisioningSeconds", policy.provisioning_seconds),
    ):
        if value < 0:
            raise ScalingConfigError(f"{path}.{name}: must not be negative, got {value}")
    if not 1 <= policy.scale_from_zero_step <= policy.max_capacity:
        raise ScalingConfigError(
            f"{path}.scaleFromZeroStep: must be 1-{policy.max_capacity} (maxCapacity),"
            f" got {policy.scale_from_zero_step}"
        )


def check_retries_outlast_scale_out(
    policy: ScalingPolicy,
    *,
    max_receive_count: int,
    retry_base_seconds: int,
    retry_max_seconds: int,
    path: str = "scaling",
) -> None:
    """A burst that arrives at zero capacity must not reach the DLQ while the endpoint scales out.

    Such a message is handed back (no_capacity) with a delay of at least half of each backoff ceiling
    (contract.capacity_wait_floor_seconds); over its deliveries that must outlast the alarm's detection
    plus the provisioning time. Checked only where capacity can be zero (minCapacity 0)."""
    if not policy.scales_from_zero:
        return
    needed = policy.detection_seconds + policy.provisioning_seconds
    floor = capacity_wait_floor_seconds(max_receive_count, retry_base_seconds, retry_max_seconds)
    if floor < needed:
        raise ScalingConfigError(
            f"{path}.provisioningSeconds: a message that finds no capacity waits at least {floor} s over its"
            f" {max_receive_count} deliveries (maxReceiveCount, retryBaseSeconds {retry_base_seconds},"
            f" retryMaxSeconds {retry_max_seconds}), less than the {needed} s a scale-out from zero can take"
            f" ({policy.detection_seconds} s to detect + {policy.provisioning_seconds} s to provision):"
            " raise maxReceiveCount or retryMaxSeconds"
        )


# -- the math -------------------------------------------------------------------------------------------


def backlog_per_instance(visible: int, in_flight: int, capacity: int) -> float:
    """BACKLOG_PER_INSTANCE_EXPRESSION in Python."""
    backlog = visible + in_flight
    return backlog / capacity if capacity > 0 else float(backlog)


def target_tracking_capacity(serving: int, metric: float, policy: ScalingPolicy) -> int:
    """What target tracking asks for: serving x metric / target, rounded up, within min and max. From zero
    it asks for nothing new (the step policy's job)."""
    if serving == 0:
        return max(policy.min_capacity, 0)
    wanted = math.ceil(round(serving * metric / policy.target_backlog_per_instance, 9))
    return max(policy.min_capacity, min(policy.max_capacity, wanted))


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int
    rule: Literal["target_tracking", "scale_from_zero"]
    why: str


@dataclass
class Autoscaler:
    """Both policies with their cooldowns, as Application Auto Scaling applies them: a scale-out waits for
    the scale-out cooldown since the last scale-out; a scale-in waits for the scale-in cooldown since the
    last scaling activity of either kind."""

    policy: ScalingPolicy
    last_scale_out: float | None = None
    last_scale_in: float | None = None
    history: list[Decision] = field(default_factory=list)

    def decide(
        self, now: float, *, serving: int, desired: int, visible: int, in_flight: int
    ) -> Decision | None:
        """The new desired capacity, or None to leave it. `desired` counts instances still provisioning."""
        policy = self.policy
        backlog = visible + in_flight
        if serving == 0 and desired == 0:
            if backlog == 0 or not self._cooled(now, self.last_scale_out, policy.scale_out_cooldown_seconds):
                return None
            # Never below the minimum: Application Auto Scaling keeps a target within its bounds.
            step = max(policy.min_capacity, min(policy.scale_from_zero_step, policy.max_capacity))
            decision = Decision(step, "scale_from_zero", f"backlog {backlog} and no capacity")
            return self._record(now, decision, previous=desired)
        metric = backlog_per_instance(visible, in_flight, serving)
        wanted = target_tracking_capacity(serving, metric, policy) if serving else desired
        if wanted > desired and self._cooled(now, self.last_scale_out, policy.scale_out_cooldown_seconds):
            why = f"backlog per instance {metric:.1f} > target {policy.target_backlog_per_instance:g}"
            return self._record(now, Decision(wanted, "target_tracking", why), previous=desired)
        latest = max((t for t in (self.last_scale_out, self.last_scale_in) if t is not None), default=None)
        if (
            wanted < desired
            and desired == serving
            and self._cooled(now, latest, policy.scale_in_cooldown_seconds)
        ):
            why = f"backlog per instance {metric:.1f} < target {policy.target_backlog_per_instance:g}"
            return self._record(now, Decision(wanted, "target_tracking", why), previous=desired)
        return None

    @staticmethod
    def _cooled(now: float, since: float | None, cooldown: int) -> bool:
        return since is None or now - since >= cooldown

    def _record(self, now: float, decision: Decision, *, previous: int) -> Decision:
        if decision.desired > previous:
            self.last_scale_out = now
        else:
            self.last_scale_in = now
        self.history.append(decision)
        return decision

"""The instances (or inference-component copies) of one emulated endpoint over time: which serve now, which
are still provisioning. Pure: every method takes the current time, so the scaling rules are checked without
waiting.

Rules (as SageMaker scales a variant or a component): a scale-in takes effect at once (the youngest
provisioning instances go first, then serving ones); a scale-out adds instances that start not ready and
serve once `provisioning_s` has passed. Requests already at the model finish; only new ones see the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

CapacityUnit = Literal["instances", "copies"]
CAPACITY_UNITS: Final[tuple[str, ...]] = get_args(CapacityUnit)


@dataclass
class Fleet:
    """`serving` instances take requests; `provisioning` holds, per instance being added, when it serves."""

    serving: int
    provisioning: list[float] = field(default_factory=list)

    def settle(self, now: float) -> None:
        """Instances whose provisioning time has passed start serving."""
        done = [ready_at for ready_at in self.provisioning if ready_at <= now]
        if done:
            self.serving += len(done)
            self.provisioning = [ready_at for ready_at in self.provisioning if ready_at > now]

    def current(self, now: float) -> int:
        self.settle(now)
        return self.serving

    @property
    def desired(self) -> int:
        return self.serving + len(self.provisioning)

    def scale_to(self, target: int, now: float, provisioning_s: float) -> None:
        """Ask for `target` instances: fewer at once, more after `provisioning_s` (those already provisioning
        keep their time)."""
        if target < 0:
            raise ValueError(f"the instance count must not be negative, got {target}")
        if provisioning_s < 0:
            raise ValueError(f"provisioning_s must not be negative, got {provisioning_s}")
        self.settle(now)
        if target <= self.serving:
            self.serving = target
            self.provisioning = []
            return
        keep = sorted(self.provisioning)[: target - self.serving]
        added = [now + provisioning_s] * (target - self.serving - len(keep))
        self.provisioning = keep + added

    def describe(self, unit: CapacityUnit, variant: str, now: float) -> dict[str, Any]:
        """The counts as AWS reports them: DescribeEndpoint's production variant (instances) or
        DescribeInferenceComponent's RuntimeConfig (copies)."""
        current = self.current(now)
        if unit == "copies":
            return {"RuntimeConfig": {"DesiredCopyCount": self.desired, "CurrentCopyCount": current}}
        return {
            "ProductionVariants": [
                {
                    "VariantName": variant,
                    "CurrentInstanceCount": current,
                    "DesiredInstanceCount": self.desired,
                }
            ]
        }

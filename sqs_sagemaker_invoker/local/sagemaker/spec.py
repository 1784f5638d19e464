"""Endpoint and fault configuration of the SageMaker Runtime emulator (plain data, JSON round-trip)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

from invoker.contract import ENDPOINT_NAME, ENDPOINT_NAME_SYNTAX, INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES

from sqs_sagemaker_invoker.local.sagemaker.fleet import CAPACITY_UNITS, CapacityUnit

ContainerKind = Literal["echo", "sklearn", "inline", "command"]
FaultKind = Literal[
    "model_error",
    "model_timeout",
    "model_not_ready",
    "throttled",
    "service_unavailable",
    "internal_failure",
    "internal_dependency",
    "validation_error",
    "no_capacity",
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
CONTAINER_KINDS: Final[tuple[str, ...]] = get_args(ContainerKind)
# Outcome counters of an endpoint: "ok" plus one per fault kind (natural or injected).
OUTCOMES: Final[tuple[str, ...]] = ("ok", *FAULT_KINDS)

ENDPOINT_NAME_RE: Final = ENDPOINT_NAME  # a variant name follows the same rule
MAX_PAYLOAD_BYTES: Final = INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES
DEFAULT_ACCOUNT_ID: Final = "123456789012"


class SpecError(ValueError):
    """A configuration value is out of range; the message names the field."""


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise SpecError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class FaultSpec:
    """Faults of one endpoint. Rates are probabilities per request drawn from one seeded RNG.

    The windows (`not_ready_for_s`, `throttle_for_s`) start when the spec is applied (at start-up or by
    `set_faults`). `capacity` and `model_timeout_s` override the endpoint's values when not None.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    model_error_rate: float = 0.0
    model_error_status: int = 500
    model_timeout_rate: float = 0.0
    model_not_ready_rate: float = 0.0
    throttle_rate: float = 0.0
    service_unavailable_rate: float = 0.0
    internal_failure_rate: float = 0.0
    internal_dependency_rate: float = 0.0
    validation_error_rate: float = 0.0
    not_ready_for_s: float = 0.0
    throttle_for_s: float = 0.0
    capacity: int | None = None
    model_timeout_s: float | None = None
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in RATE_FIELDS:
            _check_rate(name, getattr(self, name))
        total = sum(getattr(self, name) for name in RATE_FIELDS)
        if total > 1.0 + 1e-9:
            raise SpecError(f"the fault rates add up to {total:.3f}, more than 1")
        if not 400 <= self.model_error_status <= 599:
            raise SpecError(f"model_error_status must be a 4xx or 5xx status, got {self.model_error_status}")
        for name in ("latency_ms", "latency_jitter_ms", "not_ready_for_s", "throttle_for_s"):
            if getattr(self, name) < 0:
                raise SpecError(f"{name} must not be negative")
        if self.capacity is not None and self.capacity < 1:
            raise SpecError("capacity must be at least 1")
        if self.model_timeout_s is not None and self.model_timeout_s <= 0:
            raise SpecError("model_timeout_s must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSpec:
        return cls(**_known_fields(cls, data, "faults"))


# Rate field -> the fault it draws. Order matters only for reproducibility of a seeded run.
RATE_FIELDS: Final[dict[str, FaultKind]] = {
    "model_error_rate": "model_error",
    "model_timeout_rate": "model_timeout",
    "model_not_ready_rate": "model_not_ready",
    "throttle_rate": "throttled",
    "service_unavailable_rate": "service_unavailable",
    "internal_failure_rate": "internal_failure",
    "internal_dependency_rate": "internal_dependency",
    "validation_error_rate": "validation_error",
}


@dataclass(frozen=True)
class EndpointSpec:
    """One emulated endpoint.

    container: "echo" and "sklearn" run a model container process (the faithful mode); "inline" answers like
    echo inside the emulator (no process, for throughput benchmarks); "command" runs `command`, where
    "{port}" is replaced by a free port, and must follow the hosting contract (GET /ping, POST /invocations).
    latency_ms is the model's own processing time, added before the container is called and counted
    against model_timeout_s (FaultSpec latency adds to it).
    Capacity: `instances` instances (or inference-component copies, `capacity_unit="copies"`), each taking
    `concurrency_per_instance` requests at once (unset: `capacity`, the one-instance form); above
    instances x concurrency a request is throttled; 0 instances answer the no-capacity ValidationError.
    """

    name: str
    container: ContainerKind = "echo"
    startup_delay_s: float = 0.0
    capacity: int = 64
    model_timeout_s: float = 60.0
    latency_ms: float = 0.0
    faults: FaultSpec = field(default_factory=FaultSpec)
    variant: str = "AllTraffic"
    record_requests: bool = True
    record_limit: int = 256
    command: tuple[str, ...] | None = None
    instances: int = 1
    concurrency_per_instance: int | None = None
    capacity_unit: CapacityUnit = "instances"

    def __post_init__(self) -> None:
        if not ENDPOINT_NAME_RE.fullmatch(self.name):
            raise SpecError(f"endpoint name {self.name!r} must be 1-63 chars {ENDPOINT_NAME_SYNTAX}")
        if self.container not in CONTAINER_KINDS:
            raise SpecError(f"container must be one of {', '.join(CONTAINER_KINDS)}, got {self.container!r}")
        if self.container == "command" and not self.command:
            raise SpecError("container 'command' needs a command")
        if self.capacity < 1:
            raise SpecError("capacity must be at least 1")
        if self.model_timeout_s <= 0:
            raise SpecError("model_timeout_s must be positive")
        if self.startup_delay_s < 0 or self.latency_ms < 0:
            raise SpecError("startup_delay_s and latency_ms must not be negative")
        if not ENDPOINT_NAME_RE.fullmatch(self.variant):
            raise SpecError(f"variant {self.variant!r} must be 1-63 chars {ENDPOINT_NAME_SYNTAX}")
        if self.record_limit < 0:
            raise SpecError("record_limit must not be negative")
        if self.instances < 0:
            raise SpecError("instances must not be negative")
        if self.concurrency_per_instance is not None and self.concurrency_per_instance < 1:
            raise SpecError("concurrency_per_instance must be at least 1")
        if self.capacity_unit not in CAPACITY_UNITS:
            raise SpecError(f"capacity_unit must be one of {', '.join(CAPACITY_UNITS)}")

    @property
    def per_instance(self) -> int:
        """Concurrent requests one instance (copy) takes."""
        return self.concurrency_per_instance if self.concurrency_per_instance is not None else self.capacity

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["command"] = list(self.command) if self.command else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointSpec:
        values = _known_fields(cls, data, "endpoint")
        if isinstance(values.get("faults"), dict):
            values["faults"] = FaultSpec.from_dict(values["faults"])
        if values.get("command") is not None:
            values["command"] = tuple(str(part) for part in values["command"])
        return cls(**values)


def _known_fields(cls: type[Any], data: dict[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{what} must be a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(f"unknown {what} setting(s): {', '.join(unknown)}")
    return dict(data)


def fault_kind(value: str) -> FaultKind:
    if value not in FAULT_KINDS:
        raise SpecError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, got {value!r}")
    return cast("FaultKind", value)

"""The endpoint model: what one emulated SageMaker endpoint does with a validated InvokeEndpoint request
(health, capacity, latency, scripted and random faults, the model container) and what it counts."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqs_sagemaker_invoker.local.sagemaker.backends import (
    ContainerBroken,
    ContainerTimeout,
    ContainerUnavailable,
    InlineBackend,
    ProcessBackend,
)
from sqs_sagemaker_invoker.local.sagemaker.fleet import Fleet
from sqs_sagemaker_invoker.local.sagemaker.spec import (
    OUTCOMES,
    RATE_FIELDS,
    EndpointSpec,
    FaultKind,
    FaultSpec,
    SpecError,
)
from sqs_sagemaker_invoker.local.sagemaker.wire import (
    INVOKED_VARIANT_HEADER,
    RESPONSE_PASSTHROUGH_HEADERS,
    WireResponse,
    fault_response,
    model_error,
)

if TYPE_CHECKING:
    from pathlib import Path

    from sqs_sagemaker_invoker.local.sagemaker.control import RecordedRequest

log = logging.getLogger(__name__)

# Faults answered before the model is reached (no latency, no capacity slot).
_IMMEDIATE: Final = frozenset(
    {
        "model_not_ready",
        "throttled",
        "service_unavailable",
        "internal_failure",
        "internal_dependency",
        "validation_error",
        "no_capacity",
    }
)
_PASSTHROUGH_LOWER: Final = {name.lower(): name for name in RESPONSE_PASSTHROUGH_HEADERS}


@dataclass(frozen=True)
class _Scripted:
    kind: FaultKind
    original_status_code: int
    message: str | None


@dataclass
class Outcome:
    """What one request came to: the outcome counted (ok, throttled, ...) and the response to send."""

    name: str
    response: WireResponse


class Endpoint:
    """One endpoint: its model backend (inline or a container process), health, capacity, injected faults,
    counters and recorded requests. `invoke` is the request path once the server has validated a request."""

    def __init__(self, spec: EndpointSpec, account: str, log_dir: Path) -> None:
        self.spec = spec
        self.account = account
        self.log_path = log_dir / f"{spec.name}.log"
        self.backend: InlineBackend | ProcessBackend = (
            InlineBackend(spec) if spec.container == "inline" else ProcessBackend(spec, self.log_path)
        )
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._in_flight = 0
        self._max_in_flight = 0
        self._busy = 0
        self._scripted: deque[_Scripted] = deque()
        self._records: deque[RecordedRequest] = deque(maxlen=spec.record_limit or None)
        self._ready = False
        self._not_ready_until = 0.0
        self._throttle_until = 0.0
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.faults = FaultSpec()
        self._rng = random.Random(0)
        self._thresholds: list[tuple[float, FaultKind]] = []
        self._fleet = Fleet(spec.instances)

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.backend.start()
        self.apply_faults(self.spec.faults)
        if isinstance(self.backend, ProcessBackend):
            self._monitor = threading.Thread(
                target=self._monitor_loop, name=f"monitor-{self.spec.name}", daemon=True
            )
            self._monitor.start()

    def _monitor_loop(self) -> None:
        # Like SageMaker's health checks: the container takes traffic only while GET /ping answers 200.
        while not self._stop.is_set():
            if not self.backend.ensure_running():
                self._ready = False
                self._stop.wait(1.0)
                continue
            healthy = self.backend.ping()
            self._ready = healthy
            self._stop.wait(0.5 if healthy else 0.05)

    def stop(self) -> None:
        self._stop.set()
        self.backend.stop()
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    def healthy(self) -> bool:
        if isinstance(self.backend, InlineBackend):
            return self.backend.ping()
        return self._ready

    def is_ready(self) -> bool:
        return time.monotonic() >= self._not_ready_until and self.healthy()

    # configuration -------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Concurrent requests the endpoint takes now: serving instances x concurrency per instance (or the
        FaultSpec's override while any instance serves)."""
        serving = self._serving()
        if serving and self.faults.capacity is not None:
            return self.faults.capacity
        return serving * self.spec.per_instance

    def _serving(self) -> int:
        with self._lock:
            return self._fleet.current(time.monotonic())

    def set_capacity(self, instances: int, provisioning_s: float) -> dict[str, Any]:
        """Scale to `instances`: a scale-in at once, added instances serve after `provisioning_s`."""
        with self._lock:
            self._fleet.scale_to(instances, time.monotonic(), provisioning_s)
        return self.capacity_status()

    def capacity_status(self) -> dict[str, Any]:
        """Instances (copies) serving and asked for, what one takes, and the same as AWS's Describe* show it."""
        with self._lock:
            now = time.monotonic()
            serving = self._fleet.current(now)
            desired = self._fleet.desired
            describe = self._fleet.describe(self.spec.capacity_unit, self.spec.variant, now)
        return {
            "unit": self.spec.capacity_unit,
            "current": serving,
            "desired": desired,
            "concurrency_per_instance": self.spec.per_instance,
            "describe": describe,
        }

    @property
    def model_timeout_s(self) -> float:
        return (
            self.faults.model_timeout_s
            if self.faults.model_timeout_s is not None
            else self.spec.model_timeout_s
        )

    def apply_faults(self, faults: FaultSpec) -> None:
        thresholds: list[tuple[float, FaultKind]] = []
        cumulative = 0.0
        for name, kind in RATE_FIELDS.items():
            rate = float(getattr(faults, name))
            if rate > 0:
                cumulative += rate
                thresholds.append((cumulative, kind))
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._thresholds = thresholds
        if faults.not_ready_for_s > 0:
            self.not_ready_for(faults.not_ready_for_s)
        if faults.throttle_for_s > 0:
            self.throttle_for(faults.throttle_for_s)

    def not_ready_for(self, seconds: float) -> None:
        self._not_ready_until = time.monotonic() + seconds
        self.backend.set_not_ready(seconds)

    def throttle_for(self, seconds: float) -> None:
        self._throttle_until = time.monotonic() + seconds

    def kill_container(self) -> None:
        if not isinstance(self.backend, ProcessBackend):
            raise ValueError(f"endpoint {self.spec.name} has no container process")
        self.backend.kill()

    def inject(self, kind: FaultKind, count: int, original_status_code: int, message: str | None) -> None:
        if count < 1:
            raise SpecError("count must be at least 1")
        if kind == "model_error" and not 400 <= original_status_code <= 599:
            raise SpecError("original_status_code must be a 4xx or 5xx status")
        with self._lock:
            self._scripted.extend([_Scripted(kind, original_status_code, message)] * count)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(OUTCOMES, 0)
            self._max_in_flight = self._in_flight
            self._scripted.clear()
            self._records.clear()

    # observation ---------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
            counts["total"] = sum(self._counts.values())
            counts["in_flight"] = self._in_flight
            counts["max_in_flight"] = self._max_in_flight
            counts["scripted_pending"] = len(self._scripted)
            counts["container_restarts"] = self.backend.restarts
        return counts

    def records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "ready": self.is_ready(),
            "container": self.spec.container,
            "pid": self.backend.pid,
            "port": self.backend.port,
            "log": str(self.log_path) if isinstance(self.backend, ProcessBackend) else None,
            "capacity": self.capacity,
            "instances": self.capacity_status(),
            "model_timeout_s": self.model_timeout_s,
            "spec": self.spec.to_dict(),
            "faults": self.faults.to_dict(),
            "not_ready_remaining_s": max(0.0, self._not_ready_until - time.monotonic()),
            "throttle_remaining_s": max(0.0, self._throttle_until - time.monotonic()),
            "stats": self.stats(),
        }

    def record(self, request: RecordedRequest) -> None:
        if self.spec.record_requests and self.spec.record_limit:
            with self._lock:
                self._records.append(request)

    def count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    # the request path ----------------------------------------------------------------------------
    def invoke(self, headers: dict[str, str], body: bytes, region: str) -> Outcome:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            scripted = self._scripted.popleft() if self._scripted else None
        try:
            if scripted is not None:
                outcome = self._scripted_outcome(scripted, region)
            else:
                outcome = self._invoke(headers, body, region)
        except Exception:
            # A bug here must still answer the client (as AWS would: InternalFailure) and be counted.
            log.exception("endpoint %s failed to handle a request", self.spec.name)
            outcome = self._fault("internal_failure", region)
        with self._lock:
            self._in_flight -= 1
            self._counts[outcome.name] += 1
        return outcome

    def _fault(self, kind: str, region: str, status: int = 500, message: str | None = None) -> Outcome:
        response = fault_response(
            kind,
            region=region,
            account=self.account,
            endpoint_name=self.spec.name,
            original_status=status,
            message=message,
        )
        return Outcome(kind, response)

    def _scripted_outcome(self, scripted: _Scripted, region: str) -> Outcome:
        if scripted.kind == "model_timeout":
            time.sleep(self.model_timeout_s)
        return self._fault(scripted.kind, region, scripted.original_status_code, scripted.message)

    def _draw(self) -> FaultKind | None:
        if not self._thresholds:
            return None
        draw = self._rng.random()
        for threshold, kind in self._thresholds:
            if draw < threshold:
                return kind
        return None

    def _invoke(self, headers: dict[str, str], body: bytes, region: str) -> Outcome:
        if self._serving() == 0:
            return self._fault("no_capacity", region)
        now = time.monotonic()
        if now < self._throttle_until:
            return self._fault("throttled", region)
        if now < self._not_ready_until or not self.healthy():
            return self._fault("model_not_ready", region)
        kind = self._draw()
        if kind in _IMMEDIATE:
            return self._fault(kind, region)
        capacity = self.capacity
        with self._lock:
            if self._busy >= capacity:
                full = True
            else:
                full = False
                self._busy += 1
        if full:
            return self._fault("throttled", region)
        try:
            return self._at_model(kind, headers, body, region)
        finally:
            with self._lock:
                self._busy -= 1

    def _latency_s(self) -> float:
        faults = self.faults
        latency_ms = self.spec.latency_ms + faults.latency_ms
        if faults.latency_jitter_ms:
            latency_ms += self._rng.uniform(0.0, faults.latency_jitter_ms)
        return latency_ms / 1000.0

    def _at_model(self, kind: FaultKind | None, headers: dict[str, str], body: bytes, region: str) -> Outcome:
        timeout = self.model_timeout_s
        latency = self._latency_s()
        # Added latency stands for the model's processing time, so it counts against the model timeout.
        if latency >= timeout:
            time.sleep(timeout)
            return self._fault("model_timeout", region)
        if latency:
            time.sleep(latency)
        if kind == "model_error":
            return self._fault("model_error", region, self.faults.model_error_status)
        if kind == "model_timeout":
            time.sleep(timeout - latency)
            return self._fault("model_timeout", region)
        return self._invoke_container(headers, body, region, timeout - latency)

    def _invoke_container(self, headers: dict[str, str], body: bytes, region: str, timeout: float) -> Outcome:
        try:
            result = self.backend.invoke(headers, body, timeout)
        except ContainerTimeout:
            return self._fault("model_timeout", region)
        except ContainerUnavailable:
            self._ready = False
            return self._fault("model_not_ready", region)
        except ContainerBroken as exc:
            return self._fault("model_error", region, 0, f"The container closed the connection: {exc}")
        if 200 <= result.status < 300:
            out_headers: list[tuple[str, str]] = []
            if result.content_type:
                out_headers.append(("Content-Type", result.content_type))
            out_headers.append((INVOKED_VARIANT_HEADER, self.spec.variant))
            for name, value in result.headers:
                canonical = _PASSTHROUGH_LOWER.get(name.lower())
                if canonical is not None:
                    out_headers.append((canonical, value))
            return Outcome("ok", WireResponse(200, out_headers, result.body))
        text = result.body.decode("utf-8", "replace")
        response = model_error(
            region=region,
            account=self.account,
            endpoint_name=self.spec.name,
            original_status=result.status,
            original_message=text,
        )
        return Outcome("model_error", response)

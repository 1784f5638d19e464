"""The demo's fault phases: the model loading (not ready), then throttling, then transient errors, each
set on the SageMaker Runtime emulator while the workload is being sent; and the timeline they leave."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from sqs_sagemaker_invoker.local.demo.config import DemoConfig
    from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator


class Timeline:
    """What happened when, in seconds since the demo started, and the phase the endpoint is in now."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.events: list[tuple[float, str]] = []
        self._t0 = time.monotonic()

    def restart(self) -> float:
        self._t0 = time.monotonic()
        return self._t0

    def note(self, what: str) -> None:
        self.events.append((time.monotonic() - self._t0, what))

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.note(phase)


def run_fault_phases(
    emulator: SageMakerEmulator, endpoint: str, config: DemoConfig, timeline: Timeline, stop: threading.Event
) -> None:
    """Walk the endpoint through the phases; return early (faults cleared) once `stop` is set."""
    from sqs_sagemaker_invoker.local.sagemaker import FaultSpec  # noqa: PLC0415

    timeline.enter("model loading (not ready)")
    while not stop.is_set() and not emulator.is_ready(endpoint):
        stop.wait(0.1)
    timeline.enter("serving")
    if stop.wait(1.5):
        return
    timeline.enter("throttling")
    emulator.throttle_for(endpoint, config.throttle_s)
    if stop.wait(config.throttle_s + 1.0):
        return
    timeline.enter("transient errors")
    emulator.set_faults(
        endpoint,
        FaultSpec(
            service_unavailable_rate=0.15,
            internal_failure_rate=0.1,
            internal_dependency_rate=0.05,
            seed=3,
        ),
    )
    stopped = stop.wait(config.error_burst_s)
    emulator.set_faults(endpoint, FaultSpec())
    if not stopped:
        timeline.enter("serving")

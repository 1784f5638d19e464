"""The local Application Auto Scaling: a route's endpoint follows its backlog, by the deployed policy.

Every tick it reads what the deployed policy reads: the request queue's visible and in-flight messages
(moto) and the instances (copies) serving and asked for (the emulator, as Describe* reports them), asks
`scaling.Autoscaler.decide` (the same code and the same `RouteConfig.scaling` the stack deploys) and applies
a decision with the emulator's `set_capacity`, which provisions added capacity for the policy's
`provisioningSeconds`. What differs from AWS is only how soon a backlog is seen: a tick (1 s) instead of
CloudWatch's periods and alarm evaluation (`ScalingPolicy.detection_seconds`, minutes).

Each tick is recorded (`timeline`): the scaling demo charts it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from sqs_sagemaker_invoker.scaling import Autoscaler

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.sagemaker.control import EmulatorControl
    from sqs_sagemaker_invoker.scaling import Decision, ScalingPolicy

log = logging.getLogger(__name__)

DEFAULT_TICK_S = 1.0


@dataclass(frozen=True, slots=True)
class Tick:
    """One reading and what was decided on it (t: seconds since the autoscaler started)."""

    t: float
    serving: int
    desired: int
    visible: int
    in_flight: int
    decision: int | None = None
    rule: str | None = None
    why: str | None = None

    @property
    def backlog(self) -> int:
        return self.visible + self.in_flight


class LocalAutoscaler:
    """Scales one route's emulated endpoint (the variant's instances or the component's copies)."""

    def __init__(  # noqa: PLR0913 - what it reads, what it scales, and how often
        self,
        *,
        route: str,
        endpoint: str,
        policy: ScalingPolicy,
        sqs: SQSClient,
        queue_url: str,
        emulator: EmulatorControl,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        self.route = route
        self.endpoint = endpoint
        self.policy = policy
        self.tick_s = tick_s
        self.scaler = Autoscaler(policy)
        self.timeline: list[Tick] = []
        self._sqs = sqs
        self._queue_url = queue_url
        self._emulator = emulator
        self._t0 = time.monotonic()
        # Wall-clock time of t=0, to line the timeline up with SQS timestamps.
        self.started_at = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- one tick ---------------------------------------------------------------------------------

    def read(self) -> Tick:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        capacity = self._emulator.capacity(self.endpoint)
        return Tick(
            t=round(time.monotonic() - self._t0, 3),
            serving=int(capacity["current"]),
            desired=int(capacity["desired"]),
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def step(self) -> Tick:
        """Read, decide, apply; returns (and records) the tick."""
        tick = self.read()
        decision: Decision | None = self.scaler.decide(
            tick.t, serving=tick.serving, desired=tick.desired, visible=tick.visible, in_flight=tick.in_flight
        )
        if decision is not None:
            self._emulator.set_capacity(
                self.endpoint, decision.desired, provisioning_s=float(self.policy.provisioning_seconds)
            )
            log.info(
                "%s: %s -> %d (%s: %s)",
                self.endpoint,
                tick.desired,
                decision.desired,
                decision.rule,
                decision.why,
            )
            tick = dataclasses.replace(
                tick,
                desired=decision.desired,
                decision=decision.desired,
                rule=decision.rule,
                why=decision.why,
            )
        with self._lock:
            self.timeline.append(tick)
        return tick

    def ticks(self) -> list[Tick]:
        with self._lock:
            return list(self.timeline)

    # -- the loop ---------------------------------------------------------------------------------

    def start(self) -> LocalAutoscaler:
        self._t0 = time.monotonic()
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run, name=f"autoscaler-{self.route}", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except (BotoCoreError, ClientError, OSError, RuntimeError) as exc:
                # A missed reading is a missed tick, as a missing metric datapoint is on AWS.
                log.warning("autoscaler %s: tick failed: %s", self.route, exc)
            self._stop.wait(max(0.0, self.tick_s - (time.monotonic() - started)))

"""The demo's settings (``python -m sqs_sagemaker_invoker.local demo`` options)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DemoConfig:
    requests: int = 400
    rate: float = 40.0  # messages per second
    startup_delay_s: float = 2.0
    # The one setting the demo changes (cdk.json's default is 900 s): the backoff cap, so that a message
    # retried five times during the fault phases is not parked for minutes.
    retry_max_seconds: int = 8
    throttle_s: float = 3.0
    error_burst_s: float = 3.0
    timeout_s: float = 120.0
    route: str | None = None
    seed: int = 7


@dataclass
class ScalingDemoConfig:
    """The scaling scenario: a burst at an endpoint that has no copies, scaled by the local autoscaler.

    Provisioning takes seconds here (minutes on AWS), so the whole scale-out and scale-in fits in about
    a minute or two; every other setting goes through the same checks as a deployed route's."""

    requests: int = 300
    rate: float = 1000.0  # a burst: as fast as SendMessageBatch goes
    max_copies: int = 4
    concurrency_per_copy: int = 2
    latency_ms: float = 200.0
    latency_jitter_ms: float = 300.0  # each call takes 200-500 ms
    target_backlog_per_copy: float = 25.0
    provisioning_seconds: int = 10
    scale_out_cooldown_seconds: int = 5
    scale_in_cooldown_seconds: int = 10
    tick_s: float = 1.0
    # Retries that outlast a scale-out from zero on AWS too (checked when the route is parsed): at least
    # 135 s of waiting over 20 deliveries, against 120 s to detect + the provisioning time.
    max_receive_count: int = 20
    retry_base_seconds: int = 2
    retry_max_seconds: int = 16
    timeout_s: float = 240.0
    # How long after the last request settles the endpoint may take to get back to zero.
    scale_in_wait_s: float = 60.0
    seed: int = 7

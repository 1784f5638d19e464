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

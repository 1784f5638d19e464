"""Exponential backoff with full jitter, driven by how often SQS has delivered the message."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from invoker.contract import backoff_ceiling

__all__ = ["Pacing", "backoff_ceiling", "backoff_seconds"]


def backoff_seconds(
    receive_count: int,
    base_seconds: int,
    max_seconds: int,
    rng: random.Random | None = None,
    *,
    at_least_half: bool = False,
) -> int:
    """Full jitter spreads the retries of a burst over the whole window, so messages throttled together
    do not come back together. Whole seconds (SQS visibility is an integer), rounded up: a draw in
    (0, ceiling] gives 1..ceiling, so a failed message is never handed straight back (0 only when the
    ceiling itself is 0, i.e. RETRY_BASE_SECONDS=0).

    `at_least_half` ("equal jitter") draws from [ceiling // 2, ceiling] instead: a message waiting for
    capacity then waits at least contract.capacity_wait_floor_seconds over its deliveries, which the stack
    checks against the endpoint's provisioning time."""
    ceiling = backoff_ceiling(receive_count, base_seconds, max_seconds)
    floor = ceiling // 2 if at_least_half else 0
    draw = (rng or random).uniform(floor, ceiling)
    return min(ceiling, math.ceil(draw))


@dataclass(frozen=True, slots=True)
class Pacing:
    """Chance and waiting, for the backoff draws and the in-batch re-attempt pauses: tests replace them
    to make both repeatable and instant."""

    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

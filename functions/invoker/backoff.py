"""Exponential backoff with full jitter, driven by how often SQS has delivered the message."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def backoff_ceiling(receive_count: int, base_seconds: int, max_seconds: int) -> int:
    """The upper bound of the delay after the `receive_count`-th delivery failed."""
    attempt = max(receive_count, 1)
    # 2**k overflows nothing in Python, but bound the exponent so the float stays finite.
    return int(min(max_seconds, base_seconds * 2 ** min(attempt - 1, 32)))


def backoff_seconds(
    receive_count: int, base_seconds: int, max_seconds: int, rng: random.Random | None = None
) -> int:
    """Full jitter spreads the retries of a burst over the whole window, so messages throttled together
    do not come back together. Whole seconds (SQS visibility is an integer), rounded up: a draw in
    (0, ceiling] gives 1..ceiling, so a failed message is never handed straight back (0 only when the
    ceiling itself is 0, i.e. RETRY_BASE_SECONDS=0)."""
    ceiling = backoff_ceiling(receive_count, base_seconds, max_seconds)
    draw = (rng or random).uniform(0, ceiling)
    return min(ceiling, math.ceil(draw))


@dataclass(frozen=True, slots=True)
class Pacing:
    """Chance and waiting, for the backoff draws and the in-batch re-attempt pauses: tests replace them
    to make both repeatable and instant."""

    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

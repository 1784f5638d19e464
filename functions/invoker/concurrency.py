"""Adaptive concurrency: additive increase on success, multiplicative decrease on throttling (AIMD)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Permit:
    epoch: int


class Gate(Protocol):
    """What bounds one batch's calls in flight: the instance's AdaptiveLimiter, or a shared lease."""

    @property
    def limit(self) -> int: ...

    def acquire(self) -> Permit: ...

    def release(self, permit: Permit, *, throttled: bool = False, succeeded: bool = False) -> None: ...


class AdaptiveLimiter:
    """Bounds in-flight InvokeEndpoint calls. Lives at module level so a warm container keeps what it
    learnt about the endpoint's capacity between invocations."""

    def __init__(self, max_limit: int, *, decrease_factor: float = 0.5, min_limit: int = 1) -> None:
        if max_limit < 1:
            raise ValueError("max_limit must be at least 1")
        self.max_limit = max_limit
        self.min_limit = min(min_limit, max_limit)
        self._decrease_factor = decrease_factor
        self._limit = float(max_limit)
        self._in_flight = 0
        self._epoch = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> Permit:
        with self._cond:
            while self._in_flight >= int(self._limit):
                self._cond.wait()
            self._in_flight += 1
            return Permit(self._epoch)

    def release(self, permit: Permit, *, throttled: bool = False, succeeded: bool = False) -> None:
        with self._cond:
            self._in_flight -= 1
            if throttled:
                # One cut per window: the calls that were already in flight when the limit was cut
                # would otherwise each halve it again, collapsing it to the minimum after one burst.
                if permit.epoch == self._epoch:
                    self._limit = max(float(self.min_limit), self._limit * self._decrease_factor)
                    self._epoch += 1
            elif succeeded and self._limit < self.max_limit:
                # +1 per window of `limit` successes: a linear climb back to the configured maximum.
                self._limit = min(float(self.max_limit), self._limit + 1.0 / self._limit)
            free = int(self._limit) - self._in_flight
            if free > 0:
                self._cond.notify(free)

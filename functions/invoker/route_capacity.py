"""The route's shared budget, as pure decisions on one state (the DynamoDB item, see capacity_table): how
many slots a batch may lease, when a lease has lapsed, how the route's limit moves (AIMD) and how a new
reading of the endpoint's capacity changes it. Every method returns a new state one version on; the table
writes it only if nobody wrote since (optimistic concurrency), so no decision here needs a lock."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from invoker.endpoint_capacity import CapacityReading

# A throttle anywhere halves the route's limit (once per window), never below one call.
DECREASE_FACTOR = 0.5
MIN_LIMIT = 1.0
# A lease lapses this long after the Lambda's own timeout: a crashed or timed-out instance never holds
# slots past it, while clock skew between instances (milliseconds) cannot expire a live one.
LEASE_MARGIN_MS = 5_000


@dataclass(frozen=True, slots=True)
class Lease:
    slots: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class RouteState:
    """One route's budget. `ceiling`: calls the endpoint takes at once (instances or copies x concurrency
    per instance); `capacity`: the instances or copies as last read, at `checked_at_ms`; `limit`: what the
    route may have in flight (AIMD, at most the ceiling); `cut_epoch`: counts the limit's cuts, so that one
    throttle window cuts once; `version`: bumped by every write."""

    ceiling: int
    capacity: int
    checked_at_ms: int
    limit: float
    cut_epoch: int = 0
    version: int = 0
    leases: Mapping[str, Lease] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------------------
    def live_leases(self, now_ms: int) -> dict[str, Lease]:
        return {lease_id: lease for lease_id, lease in self.leases.items() if lease.expires_ms > now_ms}

    def leased(self, now_ms: int) -> int:
        return sum(lease.slots for lease in self.live_leases(now_ms).values())

    def free(self, now_ms: int) -> int:
        return max(0, math.floor(self.limit) - self.leased(now_ms))

    def stale(self, now_ms: int, refresh_seconds: int) -> bool:
        return now_ms - self.checked_at_ms >= refresh_seconds * 1000

    # -- deciding --------------------------------------------------------------------------------------
    def _next(self, now_ms: int, leases: dict[str, Lease] | None = None, **changes: object) -> RouteState:
        # Every write drops lapsed leases: that is what frees a crashed instance's slots for good.
        kept = self.live_leases(now_ms) if leases is None else leases
        return dataclasses.replace(self, version=self.version + 1, leases=kept, **changes)  # type: ignore[arg-type]

    def without(self, lease_ids: Collection[str], now_ms: int) -> RouteState:
        """These leases dropped (the same state when none of them is held)."""
        if not any(lease_id in self.leases for lease_id in lease_ids):
            return self
        leases = {k: lease for k, lease in self.live_leases(now_ms).items() if k not in lease_ids}
        return self._next(now_ms, leases)

    def with_lease(self, lease_id: str, want: int, expires_ms: int, now_ms: int) -> tuple[RouteState, int]:
        """Up to `want` slots, never more than are free; 0 slots writes nothing (the same state back)."""
        granted = min(want, self.free(now_ms))
        if granted <= 0:
            return self, 0
        leases = {**self.live_leases(now_ms), lease_id: Lease(granted, expires_ms)}
        return self._next(now_ms, leases), granted

    def topped_up(self, lease_id: str, want: int, now_ms: int) -> tuple[RouteState, int]:
        """A live lease grown towards `want` slots from what is free; 0 added writes nothing."""
        leases = self.live_leases(now_ms)
        held = leases.get(lease_id)
        added = min(want - held.slots, self.free(now_ms)) if held is not None else 0
        if held is None or added <= 0:
            return self, 0
        leases[lease_id] = Lease(held.slots + added, held.expires_ms)
        return self._next(now_ms, leases), added

    def resized(self, lease_id: str, slots: int, now_ms: int) -> RouteState:
        """A lease shrunk to what its batch may still have in flight (after a throttle)."""
        leases = self.live_leases(now_ms)
        if lease_id in leases:
            leases[lease_id] = Lease(min(slots, leases[lease_id].slots), leases[lease_id].expires_ms)
        return self._next(now_ms, leases)

    def cut(self, seen_epoch: int, now_ms: int) -> RouteState:
        """A throttle seen under `seen_epoch`: the first report of a window halves the limit; later ones of
        the same window (other calls, other instances) find the epoch moved on and leave it."""
        if self.cut_epoch != seen_epoch:
            return self._next(now_ms)
        limit = min(float(self.ceiling), max(MIN_LIMIT, self.limit * DECREASE_FACTOR))
        return self._next(now_ms, limit=limit, cut_epoch=self.cut_epoch + 1)

    def returned(self, lease_id: str, successes: int, now_ms: int) -> RouteState:
        """A batch's end: its lease given back, its successes grown into the limit."""
        leases = self.live_leases(now_ms)
        leases.pop(lease_id, None)
        return self._next(now_ms, leases, limit=grow(self.limit, successes, self.ceiling))

    def claimed(self, now_ms: int) -> RouteState:
        """The refresh claimed: the reading's time moves on now, so the other instances, seeing it fresh,
        do not Describe too; the values change when the claimant writes them."""
        return self._next(now_ms, checked_at_ms=now_ms)

    def refreshed(self, reading: CapacityReading, now_ms: int) -> RouteState:
        return self._next(
            now_ms,
            ceiling=reading.ceiling,
            capacity=reading.capacity,
            checked_at_ms=now_ms,
            limit=rescale(self.limit, self.ceiling, reading.ceiling),
        )


def first_state(reading: CapacityReading, now_ms: int) -> RouteState:
    """A route's first item: the limit starts at the ceiling (a throttle will teach it otherwise)."""
    return RouteState(
        ceiling=reading.ceiling,
        capacity=reading.capacity,
        checked_at_ms=now_ms,
        limit=float(reading.ceiling),
        version=1,
    )


def grow(limit: float, successes: int, ceiling: int) -> float:
    """Additive increase, in aggregate: each success adds 1/limit (one call per window of `limit`
    successes, as the per-instance limiter climbs), capped at the ceiling."""
    if ceiling <= 0:
        return 0.0
    limit = max(MIN_LIMIT, limit)
    for _ in range(successes):
        if limit >= ceiling:
            break
        limit += 1.0 / limit
    return min(float(ceiling), limit)


def rescale(limit: float, old_ceiling: int, new_ceiling: int) -> float:
    """The limit after the ceiling moves from `old_ceiling` to `new_ceiling`: it keeps its share of the
    ceiling. A scale-out then opens the route in proportion at once, rather than one call per window (the
    new instances are idle), while a limit cut by throttles stays cut by the same factor; a scale-in
    shrinks it at once, below the new ceiling. From zero (nothing learnt), the whole new ceiling."""
    if new_ceiling <= 0:
        return 0.0
    if old_ceiling <= 0:
        return float(new_ceiling)
    return min(float(new_ceiling), max(MIN_LIMIT, limit * new_ceiling / old_ceiling))

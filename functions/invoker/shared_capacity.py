"""CAPACITY_MODE=shared: every function instance of a route leases its batch's slots from one budget
(route_capacity, kept in capacity_table), so K instances together stay within what the endpoint serves.

Per batch: a lease at its start (a few DynamoDB calls, never one per message), at most one write per
throttle window while it runs, and the lease's return at its end. The budget is an optimisation: when the
table or the Describe call fails, the batch runs on the instance's own limiter and nothing is lost."""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoker.concurrency import Permit
from invoker.contract import Reason
from invoker.route_capacity import DECREASE_FACTOR, LEASE_MARGIN_MS, RouteState, first_state

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from invoker.capacity_table import CapacityTable
    from invoker.endpoint_capacity import CapacityReading

# No context (tests, local runs): a lease lasts at most Lambda's longest timeout.
_NO_CONTEXT_REMAINING_MS = 900_000
# The pauses between polls of a full route, jittered within 20-100 ms: slots given back are taken within a
# fraction of a typical call (each pause idles the slots it waits for). A poll is one consistent GetItem,
# about 17 a second per waiting instance: cheap beside the calls the slots carry.
POLL_FIRST_S = 0.02
POLL_MAX_S = 0.1
# A batch whose last calls are in flight gives back the slots it will not use, in at most this many
# writes, and only a chunk of at least a quarter of its grant at a time (not one write per call).
_GIVE_BACKS_PER_BATCH = 3


@dataclass(frozen=True, slots=True)
class RouteReport:
    """The route as one batch saw it, for the batch's metrics and log line."""

    capacity: int
    ceiling: int
    limit: float
    leased_slots: int
    waited_ms: int


@dataclass(frozen=True, slots=True)
class Admission:
    """What a batch may do: run under `lease` (shared), hand every record back (`hand_back`), or neither
    (the instance's own limiter: per-instance mode, or the fallback)."""

    lease: RouteLease | None = None
    hand_back: tuple[Reason, str] | None = None
    report: RouteReport | None = None


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


class RouteBudget:
    """One function instance's view of the route's budget; built once per cold start."""

    def __init__(  # noqa: PLR0913 - the table, the capacity source and the timing, by keyword
        self,
        table: CapacityTable,
        read_capacity: Callable[[], CapacityReading],
        *,
        refresh_seconds: int,
        max_concurrency: int,
        logger: Any,
        rng: random.Random,
        sleep: Callable[[float], None] = time.sleep,
        epoch_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._table = table
        self._read_capacity = read_capacity
        self._refresh_seconds = refresh_seconds
        self._max_concurrency = max_concurrency
        self._log = logger
        self._rng = rng
        self._sleep = sleep
        self._now = epoch_ms
        # Leases this instance could not return (a write that kept losing): its next lease write drops
        # them, so they do not hold the route's slots until they lapse (the Lambda's whole timeout).
        self._unreturned: set[str] = set()

    # -- a batch's start -------------------------------------------------------------------------------
    def admit(self, records: int, remaining_ms: Callable[[], int] | None, deadline_ms: int) -> Admission:
        """A lease for up to min(records, MAX_CONCURRENCY) slots, waiting (until the batch's deadline) while
        other instances hold every slot. Never raises: any failure falls back to the instance's limiter."""
        try:
            return self._admit(min(records, self._max_concurrency), remaining_ms, deadline_ms, records)
        except Exception as exc:
            self._log.warning(
                "shared capacity unavailable: this batch uses the instance's own limit",
                extra={"error_code": error_code(exc), "error": str(exc)[:500]},
            )
            return Admission()

    def _admit(
        self, want: int, remaining_ms: Callable[[], int] | None, deadline_ms: int, records: int
    ) -> Admission:
        started = time.monotonic()
        slept = 0.0
        remaining = remaining_ms() if remaining_ms is not None else _NO_CONTEXT_REMAINING_MS
        # Past this point no invocation may start anyway (Config.deadline_seconds): stop waiting there.
        wait_s = max(0, remaining - deadline_ms) / 1000
        lease_id = uuid.uuid4().hex
        polls = 0
        while True:
            state = self._current()
            now = self._now()
            # The pauses asked for count even when a test's sleep returns at once.
            waited_s = max(time.monotonic() - started, slept)
            waited_ms = int(waited_s * 1000)
            if state.ceiling <= 0:
                why = f"not invoked: the endpoint has no capacity (capacity {state.capacity}, as last read)"
                return Admission(hand_back=(Reason.NO_CAPACITY, why), report=_report(state, 0, waited_ms))
            # The lease lapses when the Lambda itself must have ended, plus a margin.
            left = remaining_ms() if remaining_ms is not None else _NO_CONTEXT_REMAINING_MS
            expires = now + left + LEASE_MARGIN_MS
            granted = 0

            def decide(current: RouteState | None, expires: int = expires) -> RouteState | None:
                nonlocal granted
                if current is None:
                    return None
                base = current.without(self._unreturned, self._now())
                new, granted = base.with_lease(lease_id, want, expires, self._now())
                return new

            written = self._table.update(state, decide)
            if written.wrote:
                self._unreturned.clear()  # that write dropped them, whether or not it granted a slot
            if written.wrote and written.state is not None and granted > 0:
                lease = RouteLease(self, lease_id, granted, written.state, wanted=want, records=records)
                self._log.info(
                    "capacity lease",
                    extra={
                        "granted": granted,
                        "wanted": want,
                        "waited_ms": waited_ms,
                        "limit": round(written.state.limit, 3),
                        "ceiling": written.state.ceiling,
                        "capacity": written.state.capacity,
                    },
                )
                return Admission(lease=lease, report=_report(written.state, granted, waited_ms))
            pause = self._rng.uniform(POLL_FIRST_S, min(POLL_MAX_S, POLL_FIRST_S * 1.5**polls + 0.1))
            if waited_s + pause > wait_s:
                why = (
                    f"not invoked: every slot of the route (limit {math.floor(state.limit)}) was leased by"
                    f" other instances for {waited_ms} ms"
                )
                return Admission(hand_back=(Reason.CAPACITY_BUSY, why), report=_report(state, 0, waited_ms))
            self._sleep(pause)
            slept += pause
            polls += 1

    def _current(self) -> RouteState:
        """The item, created from a Describe on the route's first use, refreshed by one instance per
        CAPACITY_REFRESH_SECONDS."""
        state = self._table.read()
        if state is None:
            reading = self._read_capacity()
            created = self._table.update(
                None, lambda cur: first_state(reading, self._now()) if cur is None else None
            )
            if created.state is None:
                raise LookupError("the route's capacity item vanished while it was created")
            return created.state
        if not state.stale(self._now(), self._refresh_seconds):
            return state
        claim = self._table.update(
            state,
            lambda cur: (
                cur.claimed(self._now())
                if cur is not None and cur.stale(self._now(), self._refresh_seconds)
                else None
            ),
        )
        if claim.state is None:
            raise LookupError("the route's capacity item vanished while its refresh was claimed")
        if not claim.wrote:
            return claim.state  # another instance claimed it: it Describes, this one goes on
        reading = self._read_capacity()
        refreshed = self._table.update(
            claim.state, lambda cur: cur.refreshed(reading, self._now()) if cur is not None else None
        )
        if refreshed.state is None:
            raise LookupError("the route's capacity item vanished while it was refreshed")
        return refreshed.state

    # -- while the batch runs, and at its end ----------------------------------------------------------
    def cut(self, lease: RouteLease, seen_epoch: int, slots: int) -> RouteState | None:
        """A throttle: halve the route's limit unless another report of this window already did, and shrink
        the lease to the batch's new cap. A failed write is logged: the batch's own cap already dropped."""
        try:
            written = self._table.update(
                lease.state,
                lambda cur: (
                    cur.cut(seen_epoch, self._now()).resized(lease.lease_id, slots, self._now())
                    if cur is not None
                    else None
                ),
            )
        except Exception as exc:
            self._log.warning(
                "route limit not cut (the batch's own cap was)",
                extra={"error_code": error_code(exc), "error": str(exc)[:500]},
            )
            return None
        return written.state

    def give_back(self, lease: RouteLease, slots: int) -> RouteState | None:
        """The lease shrunk to `slots`: the batch's last calls are in flight and the rest of its grant would
        sit idle while other instances wait. A failed write is logged; the slots come back at the return."""
        try:
            written = self._table.update(
                lease.state,
                lambda cur: cur.resized(lease.lease_id, slots, self._now()) if cur is not None else None,
            )
        except Exception as exc:
            self._log.warning(
                "capacity slots not given back (they are at the lease's return)",
                extra={"error_code": error_code(exc), "error": str(exc)[:500]},
            )
            return None
        return written.state

    def top_up(self, lease: RouteLease, want: int) -> tuple[RouteState, int] | None:
        """Once per batch, when its records wait for a slot: the lease grown from the route's free slots."""
        added = 0

        def decide(cur: RouteState | None) -> RouteState | None:
            nonlocal added
            if cur is None:
                return None
            new, added = cur.topped_up(lease.lease_id, want, self._now())
            return new

        try:
            # A fresh read: the lease's own view may show no slot free that has been returned since, and
            # deciding "nothing to add" from it would write (and so check) nothing.
            written = self._table.update(self._table.read(), decide)
        except Exception as exc:
            self._log.warning(
                "capacity lease not topped up", extra={"error_code": error_code(exc), "error": str(exc)[:500]}
            )
            return None
        if not written.wrote or written.state is None:
            return None
        return written.state, added

    def release(self, lease: RouteLease) -> RouteState | None:
        """The lease returned and the batch's successes grown into the limit, in one write. Never raises:
        an unreturned lease lapses by itself."""
        try:
            written = self._table.update(
                lease.state,
                lambda cur: (
                    cur.returned(lease.lease_id, lease.successes, self._now()) if cur is not None else None
                ),
            )
        except Exception as exc:
            self._unreturned.add(lease.lease_id)
            self._log.warning(
                "capacity lease not returned (this instance's next lease drops it)",
                extra={"error_code": error_code(exc), "error": str(exc)[:500]},
            )
            return None
        return written.state


class RouteLease:
    """A batch's slots: bounds its calls in flight (a Gate, like the instance's limiter). A throttle halves
    the batch's cap at once and the route's limit with it (one cut per window, like AdaptiveLimiter)."""

    def __init__(  # noqa: PLR0913 - the lease as written, and the batch's size, by keyword
        self, budget: RouteBudget, lease_id: str, slots: int, state: RouteState, *, wanted: int, records: int
    ) -> None:
        self._budget = budget
        self.wanted = wanted
        # Calls the batch will start (one per record); re-attempts start more, counted as they come.
        self._records = records
        self._started = 0
        self._give_backs = 0
        self._topped_up = False
        self.lease_id = lease_id
        self.granted = slots
        self.state = state
        self._cap = slots
        self._in_flight = 0
        self._epoch = 0
        self._route_epoch = state.cut_epoch
        self.successes = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return self._cap

    def acquire(self) -> Permit:
        self._top_up()
        with self._cond:
            while self._in_flight >= self._cap:
                self._cond.wait()
            self._in_flight += 1
            self._started += 1
            return Permit(self._epoch)

    def _top_up(self) -> None:
        """A record waits for a slot while the batch got fewer than it wanted: ask the route once for more
        (other instances may have returned theirs since). Not after a throttle: the cap was cut on purpose."""
        with self._cond:
            if self._topped_up or self._epoch > 0 or self._in_flight < self._cap or self._cap >= self.wanted:
                return
            self._topped_up = True
        grown = self._budget.top_up(self, self.wanted)
        if grown is None:
            return
        state, added = grown
        with self._cond:
            if state.version > self.state.version:
                self.state = state
            if added > 0 and self._epoch == 0:
                self._cap += added
                self.granted += added
                self._cond.notify(added)

    def release(self, permit: Permit, *, throttled: bool = False, succeeded: bool = False) -> None:
        cut: tuple[int, int] | None = None
        give_back: int | None = None
        with self._cond:
            self._in_flight -= 1
            if succeeded:
                self.successes += 1
            if throttled and permit.epoch == self._epoch:
                self._epoch += 1
                self._cap = max(1, int(self._cap * DECREASE_FACTOR))
                cut = (self._route_epoch, self._cap)
            else:
                give_back = self._surplus()
            free = self._cap - self._in_flight
            if free > 0:
                self._cond.notify(free)
        if give_back is not None:
            self._write(self._budget.give_back(self, give_back))
        if cut is not None:
            # Outside the lock: the other calls of the batch go on while the route is written.
            self._write(self._budget.cut(self, *cut))

    def _surplus(self) -> int | None:
        """The cap to shrink to when the slots the batch can still use are well below it (under the lock).
        Never below 1: a re-attempt of the last call must still find a slot."""
        if self._give_backs >= _GIVE_BACKS_PER_BATCH:
            return None
        to_start = max(0, self._records - self._started)
        keep = max(1, self._in_flight + to_start)
        if self._cap - keep < max(1, math.ceil(self.granted / 4)):
            return None
        self._give_backs += 1
        self._cap = keep
        return keep

    def _write(self, state: RouteState | None) -> None:
        if state is None:
            return
        with self._cond:
            if state.version <= self.state.version:
                return  # a later write of this batch already landed: keep the newer view
            self.state = state
            self._route_epoch = state.cut_epoch


def _report(state: RouteState, leased: int, waited_ms: int) -> RouteReport:
    return RouteReport(state.capacity, state.ceiling, state.limit, leased, waited_ms)

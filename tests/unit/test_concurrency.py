"""The AIMD limiter: halve once per window on throttling, climb back by one per window of successes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from invoker.concurrency import AdaptiveLimiter, Permit

pytestmark = pytest.mark.timeout(30)  # a deadlock fails here, not at the suite's 300 s

WAIT = 2.0  # generous upper bound for "it happens": a passing test never waits this long
BLOCKED = 0.15  # how long "it does not happen" is watched for


def throttle_once(limiter: AdaptiveLimiter) -> None:
    limiter.release(limiter.acquire(), throttled=True)


def succeed(limiter: AdaptiveLimiter, times: int = 1) -> None:
    for _ in range(times):
        limiter.release(limiter.acquire(), succeeded=True)


class Waiter:
    """A thread blocked in `acquire` until the limiter lets it through."""

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.permit: Permit | None = None
        self.acquired = threading.Event()
        self._limiter = limiter
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.permit = self._limiter.acquire()
        self.acquired.set()

    def join(self) -> None:
        self._thread.join(WAIT)
        assert not self._thread.is_alive()


@pytest.fixture
def waiters() -> Iterator[Callable[[AdaptiveLimiter], Waiter]]:
    started: list[tuple[AdaptiveLimiter, Waiter]] = []

    def start(limiter: AdaptiveLimiter) -> Waiter:
        waiter = Waiter(limiter)
        started.append((limiter, waiter))
        return waiter

    yield start
    # Even after a failed assertion, let every waiter through so no thread outlives its test: each
    # extra release frees one slot.
    for limiter, waiter in started:
        for _ in range(limiter.max_limit + 1):
            if waiter.acquired.wait(0.01):
                break
            limiter.release(Permit(epoch=-1))
        waiter.join()


def test_limit_starts_at_the_maximum() -> None:
    # GIVEN a new limiter WHEN nothing happened yet THEN all of the configured concurrency is allowed
    limiter = AdaptiveLimiter(16)
    assert (limiter.limit, limiter.in_flight) == (16, 0)


def test_a_throttle_halves_the_limit() -> None:
    # GIVEN a limiter at 16 WHEN one call is throttled THEN the limit is 8
    limiter = AdaptiveLimiter(16)
    throttle_once(limiter)
    assert limiter.limit == 8


def test_throttles_of_one_window_cut_once() -> None:
    # GIVEN 16 calls in flight, all started before any cut
    limiter = AdaptiveLimiter(16)
    permits = [limiter.acquire() for _ in range(16)]
    # WHEN every one of them comes back throttled
    for permit in permits:
        limiter.release(permit, throttled=True)
    # THEN the limit was halved once, not sixteen times
    assert (limiter.limit, limiter.in_flight) == (8, 0)


def test_concurrent_throttles_from_threads_cut_once() -> None:
    # GIVEN 12 threads holding permits of the same window
    limiter = AdaptiveLimiter(12)
    permits = [limiter.acquire() for _ in range(12)]
    start = threading.Barrier(12)

    def release(permit: Permit) -> None:
        start.wait(WAIT)
        limiter.release(permit, throttled=True)

    threads = [threading.Thread(target=release, args=(permit,)) for permit in permits]
    # WHEN they all report throttling at the same moment
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    # THEN one cut: 12 -> 6
    assert (limiter.limit, limiter.in_flight) == (6, 0)


def test_a_throttle_from_an_older_window_does_not_cut_again() -> None:
    # GIVEN a permit taken before a cut and one taken after it
    limiter = AdaptiveLimiter(16)
    old = limiter.acquire()
    throttle_once(limiter)  # 16 -> 8, a new window begins
    new = limiter.acquire()
    assert old.epoch != new.epoch
    # WHEN the old call reports throttling THEN the limit stays (that cut already happened)
    limiter.release(old, throttled=True)
    assert limiter.limit == 8
    # WHEN a call of the new window reports throttling THEN it cuts again
    limiter.release(new, throttled=True)
    assert limiter.limit == 4


def test_successes_climb_back_linearly_to_the_maximum_and_never_above() -> None:
    # GIVEN the limit halved from 16 to 8
    limiter = AdaptiveLimiter(16)
    throttle_once(limiter)
    # WHEN calls succeed one after the other
    successes_at: dict[int, int] = {}
    count = 0
    while limiter.limit < 16 and count < 1_000:
        succeed(limiter)
        count += 1
        successes_at.setdefault(limiter.limit, count)
    # THEN each step of +1 takes about `limit` successes (additive, not a doubling)
    steps = {limit: successes_at[limit + 1] - successes_at.get(limit, 0) for limit in range(8, 16)}
    assert all(limit <= taken <= limit + 1 for limit, taken in steps.items()), steps
    assert 92 <= count <= 100  # 8 + 9 + ... + 15 = 92
    # and further successes keep it at the maximum
    succeed(limiter, 50)
    assert limiter.limit == 16


def test_successes_at_the_maximum_change_nothing() -> None:
    # GIVEN a limiter that was never throttled WHEN calls succeed THEN it stays at its maximum
    limiter = AdaptiveLimiter(4)
    succeed(limiter, 20)
    assert limiter.limit == 4


def test_plain_release_neither_cuts_nor_climbs() -> None:
    # GIVEN a halved limit WHEN calls end without success or throttling (e.g. a model error)
    limiter = AdaptiveLimiter(16)
    throttle_once(limiter)
    for _ in range(40):
        limiter.release(limiter.acquire())
    # THEN the limit is unchanged
    assert limiter.limit == 8


@pytest.mark.parametrize(("max_limit", "min_limit", "floor"), [(16, 1, 1), (16, 3, 3), (2, 5, 2)])
def test_limit_never_goes_below_the_minimum(max_limit: int, min_limit: int, floor: int) -> None:
    # GIVEN repeated throttling, each from a new window
    limiter = AdaptiveLimiter(max_limit, min_limit=min_limit)
    seen = []
    for _ in range(10):
        throttle_once(limiter)
        seen.append(limiter.limit)
    # THEN the limit falls by halves to the floor (the minimum, clipped to the maximum) and stays
    assert seen[-1] == floor
    assert min(seen) == floor
    assert seen == sorted(seen, reverse=True)


def test_invalid_maximum_is_refused() -> None:
    # GIVEN a maximum below one WHEN constructed THEN refused
    with pytest.raises(ValueError, match="max_limit"):
        AdaptiveLimiter(0)


def test_acquire_blocks_at_the_limit_until_a_release(waiters: Callable[[AdaptiveLimiter], Waiter]) -> None:
    # GIVEN a limit of 2, both permits taken
    limiter = AdaptiveLimiter(2)
    held = [limiter.acquire(), limiter.acquire()]
    # WHEN a third caller asks
    waiter = waiters(limiter)
    # THEN it waits
    assert not waiter.acquired.wait(BLOCKED)
    assert limiter.in_flight == 2
    # WHEN one permit is released THEN it gets through
    limiter.release(held[0], succeeded=True)
    assert waiter.acquired.wait(WAIT)
    assert limiter.in_flight == 2


def test_a_cut_keeps_waiters_blocked_until_in_flight_is_below_the_new_limit(
    waiters: Callable[[AdaptiveLimiter], Waiter],
) -> None:
    # GIVEN a limit of 4, all taken, and a caller waiting
    limiter = AdaptiveLimiter(4)
    held = [limiter.acquire() for _ in range(4)]
    waiter = waiters(limiter)
    # WHEN one call is throttled (limit 4 -> 2, three still in flight)
    limiter.release(held[0], throttled=True)
    # THEN the waiter stays blocked
    assert not waiter.acquired.wait(BLOCKED)
    # WHEN one more ends (two in flight, limit two) THEN still blocked
    limiter.release(held[1])
    assert not waiter.acquired.wait(BLOCKED)
    # WHEN in flight drops below the new limit THEN it gets through
    limiter.release(held[2])
    assert waiter.acquired.wait(WAIT)
    assert (limiter.limit, limiter.in_flight) == (2, 2)


def test_releases_wake_as_many_waiters_as_there_is_room(
    waiters: Callable[[AdaptiveLimiter], Waiter],
) -> None:
    # GIVEN a limit of 3, all taken, and three callers waiting
    limiter = AdaptiveLimiter(3)
    held = [limiter.acquire() for _ in range(3)]
    blocked = [waiters(limiter) for _ in range(3)]
    assert not any(waiter.acquired.wait(BLOCKED / 3) for waiter in blocked)
    # WHEN all three permits are released
    for permit in held:
        limiter.release(permit, succeeded=True)
    # THEN every waiter gets through, and the limit holds
    assert all(waiter.acquired.wait(WAIT) for waiter in blocked)
    assert limiter.in_flight == 3

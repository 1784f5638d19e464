"""Exponential backoff with full jitter, in whole seconds."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from invoker.backoff import backoff_ceiling, backoff_seconds
from invoker.contract import SQS_MAX_VISIBILITY_SECONDS

MAX_VISIBILITY = SQS_MAX_VISIBILITY_SECONDS


@pytest.mark.parametrize(
    ("receive_count", "ceiling"),
    [(0, 2), (1, 2), (2, 4), (3, 8), (4, 16), (8, 256), (9, 512), (10, 900), (11, 900), (1000, 900)],
)
def test_ceiling_doubles_per_receive_from_base_up_to_max(receive_count: int, ceiling: int) -> None:
    # GIVEN the defaults (base 2 s, cap 900 s) WHEN the n-th delivery failed THEN the ceiling is
    # base * 2**(n-1), capped; a receive count of 0 (attribute missing) counts as the first delivery
    assert backoff_ceiling(receive_count, 2, 900) == ceiling


def test_huge_receive_counts_stay_at_the_cap() -> None:
    # GIVEN receive counts far beyond any float exponent WHEN the ceiling is computed
    for receive_count in (1_024, 10**6, 10**18):
        # THEN it neither overflows nor leaves the cap, and the draw works
        assert backoff_ceiling(receive_count, 2, MAX_VISIBILITY) == MAX_VISIBILITY
        assert 0 <= backoff_seconds(receive_count, 2, MAX_VISIBILITY, random.Random(1)) <= MAX_VISIBILITY


def test_zero_base_means_no_delay() -> None:
    # GIVEN base 0 WHEN any delivery failed THEN the message comes back at once
    assert backoff_ceiling(5, 0, 900) == 0
    assert backoff_seconds(5, 0, 900, random.Random(3)) == 0


def test_max_equal_to_base_is_a_constant_ceiling() -> None:
    # GIVEN base == max WHEN retried repeatedly THEN the ceiling never moves
    assert {backoff_ceiling(n, 30, 30) for n in range(0, 20)} == {30}


@settings(database=None, deadline=None)  # no example database in the checkout; loaded CI machines
@given(
    receive_count=st.integers(min_value=-5, max_value=10**6),
    base=st.integers(min_value=0, max_value=MAX_VISIBILITY),
    extra=st.integers(min_value=0, max_value=MAX_VISIBILITY),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_draw_is_a_whole_number_within_zero_and_the_ceiling(
    receive_count: int, base: int, extra: int, seed: int
) -> None:
    # GIVEN any valid configuration (base <= max <= 43,200) and any receive count
    max_seconds = min(MAX_VISIBILITY, base + extra)
    # WHEN the ceiling and a delay are computed
    ceiling = backoff_ceiling(receive_count, base, max_seconds)
    delay = backoff_seconds(receive_count, base, max_seconds, random.Random(seed))
    # THEN the ceiling is exactly base * 2**(attempt-1) capped at max (exact integer arithmetic)
    attempt = max(receive_count, 1)
    assert ceiling == min(max_seconds, base * 2 ** min(attempt - 1, 64))
    # and the delay is an int in [0, ceiling], never beyond the SQS visibility limit
    assert type(delay) is int
    assert type(ceiling) is int
    assert 0 <= delay <= ceiling <= MAX_VISIBILITY


def test_jitter_spreads_draws_over_the_whole_window() -> None:
    # GIVEN a seeded generator and a 900 s ceiling
    rng = random.Random(20261127)
    # WHEN many delays are drawn for the same receive count
    draws = [backoff_seconds(10, 2, 900, rng) for _ in range(5_000)]
    # THEN they cover the window: both ends reached, each tenth of it populated, mean near the middle
    assert min(draws) <= 5
    assert max(draws) >= 895
    assert all(0 <= draw <= 900 for draw in draws)
    deciles = Counter(min(draw * 10 // 901, 9) for draw in draws)
    assert all(350 <= deciles[decile] <= 650 for decile in range(10)), deciles
    assert 430 <= sum(draws) / len(draws) <= 470
    assert len(set(draws)) > 800


def test_small_window_uses_every_whole_second() -> None:
    # GIVEN a 4 s ceiling WHEN drawn many times THEN every whole second up to the ceiling occurs
    rng = random.Random(7)
    counts = Counter(backoff_seconds(2, 2, 900, rng) for _ in range(4_000))
    assert set(counts) <= {0, 1, 2, 3, 4}
    assert all(counts[second] > 800 for second in (1, 2, 3, 4)), counts


def test_same_seed_same_delays_and_global_random_by_default() -> None:
    # GIVEN two generators with the same seed WHEN drawn THEN they agree (reproducible in tests)
    first = [backoff_seconds(6, 2, 900, random.Random(42)) for _ in range(5)]
    second = [backoff_seconds(6, 2, 900, random.Random(42)) for _ in range(5)]
    assert first == second
    # GIVEN no generator WHEN drawn THEN the module's random is used and stays in bounds
    assert all(0 <= backoff_seconds(6, 2, 900) <= 64 for _ in range(100))

"""The route's shared budget: grants, leases and their expiry, route-level AIMD, the ceiling and its refresh,
over moto's in-process DynamoDB (real conditional writes) or on the pure state."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoker.capacity_table import CapacityTable
from invoker.config import SharedCapacityConfig
from invoker.endpoint_capacity import (
    CapacityReading,
    VariantNotFound,
    from_component,
    from_endpoint,
    read_capacity,
)
from invoker.route_capacity import Lease, RouteState, first_state, grow, rescale
from invoker.shared_capacity import POLL_FIRST_S, POLL_MAX_S
from moto import mock_aws

from tests.unit.capacity_support import KEY, TABLE, Clock, FakeSageMaker, create_table, dynamodb, make_budget

if TYPE_CHECKING:
    from invoker.concurrency import Permit
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["dynamodb"]  # the fixture, imported for the tests below

NOW = 1_800_000_000_000


def reading(instances: int, per_instance: int = 2) -> CapacityReading:
    return CapacityReading(instances, instances * per_instance)


def fixed(instances: int, per_instance: int = 2) -> Any:
    return lambda: reading(instances, per_instance)


# -- the ceiling from each Describe shape --------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "variant", "expected"),
    [
        # every variant's instances, summed
        (
            [
                {"VariantName": "a", "CurrentInstanceCount": 2},
                {"VariantName": "b", "CurrentInstanceCount": 3},
            ],
            None,
            (5, 20),
        ),
        # the named one only
        (
            [
                {"VariantName": "a", "CurrentInstanceCount": 2},
                {"VariantName": "b", "CurrentInstanceCount": 3},
            ],
            "b",
            (3, 12),
        ),
        # serverless: MaxConcurrency is already calls, not multiplied
        (
            [{"VariantName": "s", "CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 20}}],
            None,
            (20, 20),
        ),
        # scaled to zero, or still being created (no count yet)
        ([{"VariantName": "a", "CurrentInstanceCount": 0}, {"VariantName": "b"}], None, (0, 0)),
    ],
)
def test_the_ceiling_from_describe_endpoint(
    variants: list[dict[str, Any]], variant: str | None, expected: tuple[int, int]
) -> None:
    # GIVEN DescribeEndpoint's variants WHEN read with 4 calls per instance THEN capacity and ceiling
    got = from_endpoint(
        {"EndpointName": "e", "ProductionVariants": variants}, variant=variant, concurrency_per_instance=4
    )
    assert (got.capacity, got.ceiling) == expected


@pytest.mark.parametrize(("copies", "expected"), [(3, (3, 6)), (0, (0, 0))])
def test_the_ceiling_from_an_inference_components_copies(copies: int, expected: tuple[int, int]) -> None:
    got = from_component(
        {"RuntimeConfig": {"DesiredCopyCount": 5, "CurrentCopyCount": copies}}, concurrency_per_instance=2
    )
    assert (got.capacity, got.ceiling) == expected


def test_a_variant_the_endpoint_lacks_is_a_clear_error() -> None:
    description = {
        "EndpointName": "e",
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 1}],
    }
    with pytest.raises(
        VariantNotFound, match="endpoint e has no production variant Blue \\(it has: AllTraffic\\)"
    ):
        from_endpoint(description, variant="Blue", concurrency_per_instance=1)


def test_read_capacity_asks_the_component_when_one_is_named() -> None:
    # GIVEN a component named WHEN the capacity is read THEN the copies count, not the endpoint's instances
    sagemaker: Any = FakeSageMaker(instances=3)
    settings_ = SharedCapacityConfig(TABLE, KEY, concurrency_per_instance=5, inference_component="ic")
    assert read_capacity(sagemaker, "e", settings_) == CapacityReading(3, 15)


# -- the pure budget -----------------------------------------------------------------------------------


def test_a_grant_is_what_is_free_never_above_the_limit() -> None:
    # GIVEN a limit of 5.7 with 2 slots leased
    state = RouteState(ceiling=8, capacity=4, checked_at_ms=NOW, limit=5.7, leases={"a": Lease(2, NOW + 1)})
    # WHEN a batch wants 10 THEN it gets floor(5.7) - 2 = 3; then nothing is left
    after, granted = state.with_lease("b", 10, NOW + 1000, NOW)
    assert granted == 3
    assert after.version == state.version + 1
    assert after.free(NOW) == 0
    assert after.with_lease("c", 1, NOW + 1000, NOW) == (after, 0)


def test_an_expired_lease_frees_its_slots_and_the_next_write_drops_it() -> None:
    # GIVEN a lease of every slot, expiring at NOW + 1000 (its batch crashed: never returned)
    state = RouteState(
        ceiling=4, capacity=2, checked_at_ms=NOW, limit=4.0, leases={"crashed": Lease(4, NOW + 1000)}
    )
    assert state.free(NOW + 999) == 0
    # WHEN its expiry passes THEN its slots are free again, and the next lease removes it from the item
    assert state.free(NOW + 1000) == 4
    after, granted = state.with_lease("next", 3, NOW + 5000, NOW + 1000)
    assert granted == 3
    assert set(after.leases) == {"next"}


def test_one_cut_per_window() -> None:
    # GIVEN a limit of 8 at cut epoch 0
    state = first_state(reading(4), NOW)
    # WHEN two throttles of the same window report it (both saw epoch 0)
    once = state.cut(0, NOW)
    twice = once.cut(0, NOW)
    # THEN the limit halves once; a report from the next window halves it again, never below 1
    assert (once.limit, once.cut_epoch) == (4.0, 1)
    assert (twice.limit, twice.cut_epoch) == (4.0, 1)
    assert twice.cut(1, NOW).limit == 2.0
    floor = RouteState(ceiling=8, capacity=4, checked_at_ms=NOW, limit=1.0)
    assert floor.cut(0, NOW).limit == 1.0


def test_growth_is_additive_and_capped_at_the_ceiling() -> None:
    # 4 successes at a limit of 4 add one call; a thousand never pass the ceiling
    # (each success adds 1/limit: a little under one call, as the limit rises on the way)
    assert 4.9 < grow(4.0, 4, 16) < 5.0
    assert 5.8 < grow(4.0, 9, 16) < 6.0
    assert grow(4.0, 1000, 8) == 8.0
    assert grow(3.0, 0, 8) == 3.0
    # a returned lease applies the growth in the same write
    state = RouteState(ceiling=8, capacity=4, checked_at_ms=NOW, limit=7.5, leases={"b": Lease(2, NOW + 1)})
    returned = state.returned("b", 100, NOW)
    assert (returned.limit, dict(returned.leases)) == (8.0, {})


@pytest.mark.parametrize(
    ("limit", "old", "new", "expected"),
    [
        (4.0, 8, 16, 8.0),  # a scale-out keeps the limit's share of the ceiling
        (8.0, 8, 4, 4.0),  # a scale-in brings it under the new ceiling at once
        (1.0, 8, 2, 1.0),  # never below one call while anything serves
        (0.0, 0, 6, 6.0),  # from zero: the whole new ceiling
        (5.0, 8, 0, 0.0),  # to zero
    ],
)
def test_a_new_ceiling_rescales_the_limit(limit: float, old: int, new: int, expected: float) -> None:
    assert rescale(limit, old, new) == expected


# -- over the table --------------------------------------------------------------------------------------


def test_a_routes_first_use_creates_its_item_from_a_describe(dynamodb: DynamoDBClient) -> None:
    # GIVEN no item for the route
    clock, sagemaker = Clock(), FakeSageMaker(instances=2)
    client: Any = sagemaker
    budget = make_budget(
        dynamodb, lambda: read_capacity(client, "e", SharedCapacityConfig(TABLE, KEY, 4)), clock
    )
    # WHEN a batch of 10 records is admitted (MAX_CONCURRENCY 8)
    admission = budget.admit(10, None, 0)
    # THEN the item holds the reading (2 instances x 4), the full limit, and the batch's lease of 8
    assert admission.lease is not None
    assert admission.lease.granted == 8
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": KEY}}, ConsistentRead=True)["Item"]
    assert {name: item[name]["N"] for name in ("ceiling", "capacity", "limit", "checkedAt")} == {
        "ceiling": "8",
        "capacity": "2",
        "limit": "8.0",
        "checkedAt": str(clock.now_ms),
    }
    assert int(item["expiresAt"]["N"]) == clock.now_ms // 1000 + 86_400
    assert item["leases"]["M"][admission.lease.lease_id]["M"]["slots"] == {"N": "8"}
    assert sagemaker.calls == 1


def test_a_crashed_batchs_lease_frees_after_its_expiry(dynamodb: DynamoDBClient) -> None:
    # GIVEN instance A leased every slot and crashed (its lease is never returned); it had 60 s left
    clock = Clock()
    a, b = (make_budget(dynamodb, fixed(2), clock) for _ in range(2))
    assert a.admit(10, lambda: 60_000, 0).lease is not None
    # WHEN instance B asks before the expiry THEN nothing is free: it waits its whole bound, gets none
    busy = b.admit(3, lambda: 1_000, 0)
    assert busy.lease is None
    assert busy.hand_back is not None
    assert busy.hand_back[0] == "capacity_busy"
    # WHEN B asks after A's lease expired (60 s plus the margin) THEN it is granted
    clock.advance(65_001)
    granted = b.admit(3, lambda: 60_000, 0)
    assert granted.lease is not None
    assert granted.lease.granted == 3


def test_returning_a_lease_frees_its_slots_and_grows_the_limit(dynamodb: DynamoDBClient) -> None:
    clock = Clock()
    budget = make_budget(dynamodb, fixed(4), clock)  # ceiling 8
    table = CapacityTable(dynamodb, TABLE, KEY, epoch_s=lambda: clock() / 1000)
    # GIVEN a batch leased every slot
    admission = budget.admit(8, None, 0)
    assert admission.lease is not None
    lease = admission.lease
    state = table.read()
    assert state is not None
    assert state.leased(clock()) == 8
    # WHEN it succeeded 8 times and returns the lease
    lease.successes = 8
    after = budget.release(lease)
    # THEN no slot is leased and the limit stays at the ceiling (capped)
    assert after is not None
    assert after.leased(clock()) == 0
    assert after.limit == 8.0


def test_two_throttles_of_one_window_cut_the_route_once(dynamodb: DynamoDBClient) -> None:
    # GIVEN two instances each holding a lease of 4 under a limit of 8
    clock = Clock()
    a, b = (make_budget(dynamodb, fixed(4), clock) for _ in range(2))
    lease_a, lease_b = a.admit(4, None, 0).lease, b.admit(4, None, 0).lease
    assert lease_a is not None
    assert lease_b is not None
    # WHEN both see a throttle from the same window (both leased at cut epoch 0)
    # (A had two calls in flight when the endpoint throttled both)
    permits_a, permit_b = [lease_a.acquire(), lease_a.acquire()], lease_b.acquire()
    for permit in permits_a:
        lease_a.release(permit, throttled=True)
    lease_b.release(permit_b, throttled=True)
    # THEN the route's limit halved once, each batch's cap halved, each lease shrank to its cap
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert (state.limit, state.cut_epoch) == (4.0, 1)
    assert (lease_a.limit, lease_b.limit) == (2, 2)
    assert {lease.slots for lease in state.leases.values()} == {2}
    # AND a throttle of A's next window cuts again
    lease_a.release(lease_a.acquire(), throttled=True)
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert (state.limit, state.cut_epoch) == (2.0, 2)


def test_the_refresh_is_claimed_by_one_instance(dynamodb: DynamoDBClient) -> None:
    # GIVEN two instances of a route read 10 s ago (CAPACITY_REFRESH_SECONDS=10)
    clock = Clock()
    sagemaker_a, sagemaker_b = FakeSageMaker(2), FakeSageMaker(2)
    config = SharedCapacityConfig(TABLE, KEY, 4)
    a = make_budget(dynamodb, lambda: read_capacity(sagemaker_a, "e", config), clock)  # type: ignore[arg-type]
    b = make_budget(dynamodb, lambda: read_capacity(sagemaker_b, "e", config), clock)  # type: ignore[arg-type]
    a.release(a.admit(1, None, 0).lease)  # type: ignore[arg-type]
    clock.advance(10_000)
    sagemaker_a.instances = 3
    # WHEN A notices first and, while its Describe is under way, B starts a batch
    seen_by_b: list[Any] = []
    sagemaker_a.during = lambda: seen_by_b.append(b.admit(1, None, 0))
    a.admit(1, None, 0)
    # THEN only A described (its claim moved checkedAt), B went on with the old reading
    assert (sagemaker_a.calls, sagemaker_b.calls) == (2, 0)
    assert seen_by_b[0].report.ceiling == 8
    # AND the item now holds A's reading: 3 instances x 4
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert (state.capacity, state.ceiling) == (3, 12)


def test_no_capacity_is_handed_back_at_once(dynamodb: DynamoDBClient) -> None:
    # GIVEN an endpoint scaled to zero
    clock = Clock()
    budget = make_budget(dynamodb, fixed(0), clock)
    # WHEN a batch is admitted THEN it is handed back as no_capacity without waiting
    admission = budget.admit(5, lambda: 60_000, 0)
    assert admission.lease is None
    assert admission.hand_back is not None
    assert admission.hand_back[0] == "no_capacity"
    assert admission.report is not None
    assert admission.report.capacity == 0
    assert clock.slept == []


def test_busy_waits_within_the_deadline_then_hands_back(dynamodb: DynamoDBClient) -> None:
    # GIVEN every slot leased by another instance
    clock = Clock()
    other, budget = make_budget(dynamodb, fixed(1), clock), make_budget(dynamodb, fixed(1), clock)
    assert other.admit(5, lambda: 600_000, 0).lease is not None
    # WHEN a batch with 3 s to wait (5 s left, 2 s deadline margin) is admitted
    admission = budget.admit(5, lambda: 5_000, 2_000)
    # THEN it polled with jittered pauses (50-250 ms), within 3 s, and handed back capacity_busy
    assert admission.hand_back is not None
    assert admission.hand_back[0] == "capacity_busy"
    assert clock.slept
    assert all(POLL_FIRST_S <= pause <= POLL_MAX_S for pause in clock.slept)
    assert 2.5 <= sum(clock.slept) <= 3.0
    assert len(set(clock.slept)) > 1


def test_a_slot_freed_while_waiting_is_granted(dynamodb: DynamoDBClient) -> None:
    # GIVEN every slot leased by another batch, which returns its lease during the wait
    clock = Clock()
    other, budget = make_budget(dynamodb, fixed(1), clock), make_budget(dynamodb, fixed(1), clock)
    held = other.admit(5, None, 0).lease
    assert held is not None
    sleep = clock.sleep

    def sleep_then_return(seconds: float) -> None:
        sleep(seconds)
        if len(clock.slept) == 2:
            other.release(held)

    budget._sleep = sleep_then_return
    # WHEN a batch is admitted THEN it gets the freed slots after a few polls
    admission = budget.admit(5, lambda: 60_000, 0)
    assert admission.lease is not None
    assert admission.lease.granted == 2
    assert admission.report is not None
    assert admission.report.waited_ms >= 2 * POLL_FIRST_S * 1000


# -- contention ----------------------------------------------------------------------------------------

operation = st.one_of(
    st.tuples(st.just("lease"), st.integers(0, 2), st.integers(1, 6)),
    st.tuples(st.just("return"), st.integers(0, 2), st.integers(0, 20)),
    st.tuples(st.just("cut"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("refresh"), st.integers(0, 2), st.integers(0, 6)),
    st.tuples(st.just("tick"), st.just(0), st.integers(1, 3000)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=25))
def test_budgets_over_one_table_never_lease_more_than_the_limit_together(
    ops: list[tuple[str, int, int]],
) -> None:
    # GIVEN three writers of one route, each deciding from its own (often stale) view of the item
    with mock_aws():
        import boto3  # noqa: PLC0415 - the client must be built inside moto's mock

        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        clock = Clock()
        table = CapacityTable(client, TABLE, KEY, epoch_s=lambda: clock() / 1000)
        created = table.update(None, lambda cur: first_state(reading(3), clock()) if cur is None else None)
        views: list[RouteState | None] = [created.state] * 3
        held: list[dict[str, tuple[int, int]]] = [{}, {}, {}]  # writer -> lease id -> (slots, expiry)
        shrunk = False
        for index, (kind, who, amount) in enumerate(ops):
            # WHEN each writes its decision conditioned on the version it saw
            if kind == "tick":
                clock.advance(amount)
                continue
            lease_id = f"{who}-{index}"
            granted = 0

            def decide(
                cur: RouteState | None,
                kind: str = kind,
                who: int = who,
                amount: int = amount,
                lease_id: str = lease_id,
            ) -> RouteState | None:
                nonlocal granted
                if cur is None:
                    return None
                now = clock()
                if kind == "lease":
                    new, granted = cur.with_lease(lease_id, amount, now + 2000, now)
                    return new
                if kind == "return" and held[who]:
                    return cur.returned(next(iter(held[who])), amount, now)
                if kind == "cut":
                    return cur.cut(cur.cut_epoch, now)
                if kind == "refresh":
                    return cur.refreshed(reading(amount), now)
                return None

            written = table.update(views[who], decide)
            views[who] = written.state
            if kind == "lease" and written.wrote:
                assert 0 < granted <= amount
                held[who][lease_id] = (granted, clock() + 2000)
            elif kind == "return" and written.wrote and held[who]:
                held[who].pop(next(iter(held[who])))
            shrunk = shrunk or (kind in {"cut", "refresh"} and written.wrote)
            state = table.read()
            assert state is not None
            now = clock()
            # THEN a grant never takes the live leases above the limit, whatever view it was decided from
            if kind == "lease" and written.wrote:
                assert state.leased(now) <= math.floor(state.limit)
            # AND until a cut or a smaller ceiling, the leases never add up to more than the limit
            if not shrunk:
                assert state.leased(now) <= math.floor(state.limit)
            # AND the item holds exactly the live leases granted and not returned: none lost, none invented
            owned = {lease_id: lease for leases in held for lease_id, lease in leases.items()}
            assert all(
                owned.get(lease_id) == (lease.slots, lease.expires_ms)
                for lease_id, lease in state.leases.items()
            )
            assert {lease_id for lease_id, (_, expiry) in owned.items() if expiry > now} == set(
                state.live_leases(now)
            )


def test_a_short_lease_is_topped_up_once_when_records_wait(dynamodb: DynamoDBClient) -> None:
    # GIVEN a batch that wanted 4 slots but got 1 (another instance held 3 of the 4), which then returned them
    clock = Clock()
    other, budget = make_budget(dynamodb, fixed(2), clock), make_budget(dynamodb, fixed(2), clock)
    held = other.admit(3, None, 0).lease
    lease = budget.admit(4, None, 0).lease
    assert held is not None
    assert lease is not None
    assert (lease.granted, lease.limit) == (1, 1)
    other.release(held)
    # WHEN a second record asks for a slot while the first call is in flight
    first = lease.acquire()
    permits: list[Permit] = []
    waiting = threading.Thread(target=lambda: permits.append(lease.acquire()), daemon=True)
    waiting.start()
    waiting.join(timeout=5)
    # THEN it did not wait for the first call: the lease grew
    assert permits, "the second record waited for the first call's slot"
    second = permits[0]
    # AND to what the batch wanted, in the item too, and only once
    assert (lease.granted, lease.limit) == (4, 4)
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert state.leases[lease.lease_id].slots == 4
    # AND a third record finds the slot the top-up added, with no second top-up written
    third = lease.acquire()
    assert CapacityTable(dynamodb, TABLE, KEY).read() == state
    for permit in (first, second, third):
        lease.release(permit, succeeded=True)


def test_a_top_up_takes_only_free_slots() -> None:
    state = RouteState(
        ceiling=6,
        capacity=3,
        checked_at_ms=NOW,
        limit=6.0,
        leases={"a": Lease(1, NOW + 9), "b": Lease(3, NOW + 9)},
    )
    grown, added = state.topped_up("a", 8, NOW)
    assert added == 2
    assert grown.leases["a"] == Lease(3, NOW + 9)
    # a lapsed lease is not revived
    assert state.topped_up("a", 8, NOW + 9) == (state, 0)


def test_a_batch_gives_back_the_slots_its_last_calls_leave_idle(dynamodb: DynamoDBClient) -> None:
    # GIVEN a batch of 10 records that leased all 8 slots of the route, and another instance waiting
    clock = Clock()
    budget, other = make_budget(dynamodb, fixed(4), clock), make_budget(dynamodb, fixed(4), clock)
    lease = budget.admit(10, None, 0).lease
    assert lease is not None
    assert lease.granted == 8
    permits = [lease.acquire() for _ in range(8)]
    # WHEN two calls end and the batch's last two records start, then two more calls end
    for _ in range(2):
        lease.release(permits.pop(), succeeded=True)
        permits.append(lease.acquire())
    lease.release(permits.pop(), succeeded=True)
    lease.release(permits.pop(), succeeded=True)
    # THEN the batch keeps only the slots its calls in flight hold, in the item too
    assert lease.limit == 6
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert state.leases[lease.lease_id].slots == 6
    # AND the slots given back are granted to the other instance at once, before the batch ends
    waiting = other.admit(10, None, 0).lease
    assert waiting is not None
    assert waiting.granted == 2
    # AND the batch's cap never drops below one slot, so a re-attempt of its last call finds one
    while permits:
        lease.release(permits.pop(), succeeded=True)
    assert lease.limit >= 1
    again = lease.acquire()
    lease.release(again, succeeded=True)


def test_a_re_attempt_of_the_last_call_still_finds_a_slot(dynamodb: DynamoDBClient) -> None:
    # GIVEN a batch of 2 records holding 2 slots, both calls ended (the slots given back as they did),
    # and another instance that took every slot given back
    clock = Clock()
    budget, other = make_budget(dynamodb, fixed(1), clock), make_budget(dynamodb, fixed(1), clock)
    lease = budget.admit(2, None, 0).lease
    assert lease is not None
    first, second = lease.acquire(), lease.acquire()
    lease.release(first, succeeded=True)
    lease.release(second)
    assert other.admit(2, None, 0).lease is not None
    # WHEN the last call's transient failure is re-attempted in the batch
    permits: list[Permit] = []
    retry = threading.Thread(target=lambda: permits.append(lease.acquire()), daemon=True)
    retry.start()
    retry.join(timeout=5)
    # THEN it got a slot rather than waiting forever on a cap given back to zero
    assert permits, "the re-attempt found no slot"
    lease.release(permits[0], succeeded=True)

"""CAPACITY_MODE=shared under the batch processor: a batch leases its slots, is handed back when the
endpoint has no capacity or every slot is leased elsewhere, and falls back to the instance's own limiter
when the table or the Describe call fails (never losing a message)."""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from invoker.backoff import Pacing
from invoker.capacity_table import CapacityTable
from invoker.config import load_config
from invoker.contract import Metric
from invoker.endpoint_capacity import CapacityReading
from invoker.processor import Clients, ConcurrentSqsProcessor, build_processor

from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, sqs_event, sqs_record
from tests.support.factories import function_env
from tests.unit.capacity_support import KEY, TABLE, Clock, FakeSageMaker, client_error, dynamodb, make_budget
from tests.unit.fakes import FakeRuntime, FakeS3, FakeSqs, ok_response, service_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["dynamodb"]  # the fixture, imported for the tests below

SHARED = {
    "CAPACITY_MODE": "shared",
    "CAPACITY_TABLE": TABLE,
    "CAPACITY_KEY": KEY,
    "CONCURRENCY_PER_INSTANCE": "2",
    "MAX_CONCURRENCY": "8",
}


class RecordingMetrics:
    """The part of Powertools' Metrics that report_batch uses, recording what is added."""

    namespace = "Test"
    default_dimensions: dict[str, str] = {}

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values.setdefault(name, []).append(value)


class SharedHarness:
    def __init__(self, dynamodb: Any, sagemaker: FakeSageMaker, runtime: FakeRuntime, **env: str) -> None:
        self.config = load_config(function_env(**{**SHARED, **env}))
        self.runtime = runtime
        self.sagemaker = sagemaker
        self.sqs = FakeSqs()
        self.metrics = RecordingMetrics()
        self.log = ListLogger()
        s3 = FakeS3()
        self.processor: ConcurrentSqsProcessor = build_processor(
            self.config,
            Clients(runtime=runtime, sqs=self.sqs, s3=lambda: s3, dynamodb=dynamodb, sagemaker=sagemaker),  # type: ignore[arg-type,return-value]
            logger=self.log,
            metrics=self.metrics,  # type: ignore[arg-type]
            pacing=Pacing(random.Random(7), sleep=lambda _s: None),
        )

    def run(self, count: int, *, timeout_ms: int = 180_000) -> set[str]:
        records = [sqs_record(f'{{"bodyText": "{i}"}}', message_id=f"m-{i}") for i in range(count)]
        response = process_partial_response(
            event=sqs_event(records),
            record_handler=self.processor.handle,
            processor=self.processor,
            context=LambdaContext.starting_now(timeout_ms),  # type: ignore[arg-type]
        )
        return {str(failure["itemIdentifier"]) for failure in response["batchItemFailures"]}


class ListLogger(logging.Logger):
    """Keeps every line with its extra fields."""

    def __init__(self) -> None:
        super().__init__("test")
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _log(self, level: int, msg: object, args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.lines.append((logging.getLevelName(level), str(msg), dict(kwargs.get("extra") or {})))

    def reasons(self) -> list[str]:
        return [fields["reason"] for _, _, fields in self.lines if fields.get("disposition") == "retry"]

    def find(self, message: str) -> list[dict[str, Any]]:
        return [fields for _, line, fields in self.lines if line == message]


def test_a_shared_batch_leases_its_slots_runs_within_them_and_returns_them(dynamodb: DynamoDBClient) -> None:
    # GIVEN an endpoint of 2 instances x 2 calls and a batch of 10 (MAX_CONCURRENCY 8)
    runtime = FakeRuntime(delay=0.02)
    harness = SharedHarness(dynamodb, FakeSageMaker(2), runtime)
    # WHEN it runs
    failed = harness.run(10)
    # THEN all delivered, never more than the ceiling (4) in flight, and the lease is back in the item
    assert failed == set()
    assert len(runtime.calls) == 10
    assert runtime.max_in_flight <= 4
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert dict(state.leases) == {}
    [lease] = harness.log.find("capacity lease")
    assert lease.pop("waited_ms") < 1000  # the Describe and the table's calls only: no wait for slots
    assert lease == {"granted": 4, "wanted": 8, "limit": 4.0, "ceiling": 4, "capacity": 2}
    # AND the batch reports the route (EndpointCapacity feeds the scaling policy)
    values = harness.metrics.values
    assert values[Metric.ENDPOINT_CAPACITY] == [2]
    assert values[Metric.ROUTE_CEILING] == [4]
    assert values[Metric.ROUTE_LIMIT] == [4.0]
    assert values[Metric.LEASED_SLOTS] == [4]


def test_no_capacity_hands_the_batch_back_without_invoking(dynamodb: DynamoDBClient) -> None:
    # GIVEN an endpoint scaled to zero
    runtime = FakeRuntime()
    harness = SharedHarness(dynamodb, FakeSageMaker(0), runtime)
    # WHEN a batch of 5 arrives
    failed = harness.run(5)
    # THEN every record comes back as no_capacity and InvokeEndpoint was never called
    assert failed == {f"m-{i}" for i in range(5)}
    assert runtime.calls == []
    assert harness.log.reasons() == ["no_capacity"] * 5
    # AND the backoff is the capacity wait's (equal jitter: at least half of 2 s)
    assert all(entry["VisibilityTimeout"] >= 1 for entry in harness.sqs.visibility)
    # AND EndpointCapacity 0 is still reported: it is what starts a scale-out from zero
    assert harness.metrics.values[Metric.ENDPOINT_CAPACITY] == [0]
    assert harness.metrics.values[Metric.LEASED_SLOTS] == [0]


def test_capacity_busy_hands_the_batch_back_after_the_wait_bound(dynamodb: DynamoDBClient) -> None:
    # GIVEN another instance holds every slot of the route for longer than this batch can wait
    clock = Clock(now_ms=int(time.time() * 1000))
    other = make_budget(dynamodb, lambda: CapacityReading(1, 2), clock)
    assert other.admit(8, lambda: 600_000, 0).lease is not None
    runtime = FakeRuntime()
    harness = SharedHarness(
        dynamodb, FakeSageMaker(1), runtime, READ_TIMEOUT_SECONDS="1", DEADLINE_MARGIN_SECONDS="0"
    )
    # WHEN a batch arrives with 3 s left (1 s of deadline: 2 s to wait)
    failed = harness.run(4, timeout_ms=3_000)
    # THEN every record comes back as capacity_busy, none invoked
    assert failed == {f"m-{i}" for i in range(4)}
    assert runtime.calls == []
    assert harness.log.reasons() == ["capacity_busy"] * 4


@pytest.mark.parametrize(
    "failure",
    ["ProvisionedThroughputExceededException", "AccessDeniedException", "ResourceNotFoundException"],
)
def test_a_table_failure_falls_back_to_the_instance_limiter(dynamodb: DynamoDBClient, failure: str) -> None:
    # GIVEN a table that refuses every call
    class Refusing:
        def __getattr__(self, name: str) -> Any:
            def refuse(**_: Any) -> Any:
                raise client_error(failure)

            return refuse

    runtime = FakeRuntime()
    harness = SharedHarness(Refusing(), FakeSageMaker(2), runtime)
    # WHEN a batch arrives
    failed = harness.run(6)
    # THEN nothing is lost: every record invoked and delivered under the instance's own limit
    assert failed == set()
    assert len(runtime.calls) == 6
    # AND a warning names the error code; no route metric pretends to know the capacity
    warnings = harness.log.find("shared capacity unavailable: this batch uses the instance's own limit")
    assert [w["error_code"] for w in warnings] == [failure]
    assert Metric.ENDPOINT_CAPACITY not in harness.metrics.values


def test_a_describe_failure_or_a_missing_variant_falls_back_and_the_next_batch_tries_again(
    dynamodb: DynamoDBClient,
) -> None:
    # GIVEN a Describe that is throttled, then a variant name the endpoint lacks
    sagemaker = FakeSageMaker(2)
    sagemaker.error = client_error("ThrottlingException", "DescribeEndpoint")
    runtime = FakeRuntime()
    harness = SharedHarness(dynamodb, sagemaker, runtime)
    # WHEN batches arrive
    assert harness.run(3) == set()
    sagemaker.error = None
    sagemaker.variant = "Blue"
    wrong = SharedHarness(dynamodb, sagemaker, runtime, CAPACITY_VARIANT="Green")
    assert wrong.run(3) == set()
    # THEN each was delivered on the instance's limiter, with the cause logged
    codes = [
        w["error_code"]
        for w in harness.log.find("shared capacity unavailable: this batch uses the instance's own limit")
    ]
    assert codes == ["ThrottlingException"]
    missing = wrong.log.find("shared capacity unavailable: this batch uses the instance's own limit")
    assert missing[0]["error_code"] == "VariantNotFound"
    assert "has no production variant Green (it has: Blue)" in missing[0]["error"]
    # AND the next batch of the first instance uses the table again
    assert harness.run(3) == set()
    assert harness.log.find("capacity lease")


def test_a_lease_return_failure_is_logged_never_raised(dynamodb: DynamoDBClient) -> None:
    # GIVEN a table that answers the lease, then refuses the return
    calls: list[str] = []
    failing = [True]

    class FailsOnReturn:
        def __getattr__(self, name: str) -> Any:
            method = getattr(dynamodb, name)

            def call(**kwargs: Any) -> Any:
                calls.append(name)
                # created, leased, then every write of the batch (its give-back and its return) fails
                if failing[0] and name == "put_item" and calls.count("put_item") > 2:
                    raise client_error("InternalServerError", "PutItem")
                return method(**kwargs)

            return call

    harness = SharedHarness(FailsOnReturn(), FakeSageMaker(2), FakeRuntime())
    # WHEN the batch ends THEN it still succeeds, and the failure is logged with its code
    assert harness.run(2) == set()
    assert (
        harness.log.find("capacity lease not returned (this instance's next lease drops it)")[0]["error_code"]
        == "InternalServerError"
    )
    held = CapacityTable(dynamodb, TABLE, KEY).read()
    assert held is not None
    assert len(held.leases) == 1  # the unreturned lease still holds its slots
    # AND once the table answers again, the instance's next lease write drops it, rather than leaving it
    # to hold its slots until the Lambda's timeout
    failing[0] = False
    assert harness.run(2) == set()
    after = CapacityTable(dynamodb, TABLE, KEY).read()
    assert after is not None
    assert after.leases == {}


def test_a_throttle_halves_the_route_limit_and_the_batch_cap(dynamodb: DynamoDBClient) -> None:
    # GIVEN an endpoint of 4 instances x 2 (ceiling 8) that throttles the first call
    def behaviour(index: int, _kw: dict[str, Any]) -> dict[str, Any]:
        if index == 0:
            raise service_error("ThrottlingException")
        return ok_response()

    runtime = FakeRuntime(behaviour, delay=0.01)
    harness = SharedHarness(dynamodb, FakeSageMaker(4), runtime)
    # WHEN a batch of 8 runs
    assert harness.run(8) == set()
    # THEN the route's limit was cut once (8 -> 4) and grew back a little with the successes
    state = CapacityTable(dynamodb, TABLE, KEY).read()
    assert state is not None
    assert state.cut_epoch == 1
    assert 4.0 < state.limit < 6.0
    assert dict(state.leases) == {}


def test_per_instance_mode_touches_no_table(dynamodb: DynamoDBClient) -> None:
    # GIVEN the default mode with clients that would fail if used
    sagemaker = FakeSageMaker(2)
    harness = SharedHarness(dynamodb, sagemaker, FakeRuntime(), CAPACITY_MODE="per_instance")
    # WHEN a batch runs THEN no Describe, no item, no route metric
    assert harness.run(3) == set()
    assert harness.processor.budget is None
    assert sagemaker.calls == 0
    assert CapacityTable(dynamodb, TABLE, KEY).read() is None
    assert Metric.ENDPOINT_CAPACITY not in harness.metrics.values

"""Several function instances against one endpoint: with CAPACITY_MODE=shared they lease the route's slots
from one DynamoDB item (moto's server) and together stay within what the endpoint serves; per instance, each
fills its own MAX_CONCURRENCY and the endpoint throttles the excess.

Each instance is the real handler module imported afresh (its own processor, limiter and clients, as a cold
start builds them), driven from its own thread like an event source mapping's poller."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from invoker.contract import CAPACITY_TABLE_PARTITION_KEY

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec
from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, sqs_event, sqs_record_from_message
from tests.support.function_harness import REGION, load_handler

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator
    from sqs_sagemaker_invoker.local.stand_ins import MotoServer
    from tests.support.function_harness import FunctionRun

ROUTE_ENDPOINT = "shared-route"
INSTANCES = 4  # function instances
MAX_CONCURRENCY = 4  # each: 4 x 4 = 16 calls wanted, four times the endpoint's capacity
ENDPOINT_INSTANCES, PER_INSTANCE = 2, 2  # the endpoint: capacity 4
MESSAGES = 80
TABLE = "route-capacity"


@pytest.fixture
def route_endpoint(emulator: SageMakerEmulator) -> str:
    if ROUTE_ENDPOINT not in emulator.endpoint_names():
        emulator.add_endpoint(
            EndpointSpec(
                ROUTE_ENDPOINT,
                container="inline",
                instances=ENDPOINT_INSTANCES,
                concurrency_per_instance=PER_INSTANCE,
                latency_ms=40,
            )
        )
    emulator.reset(ROUTE_ENDPOINT)
    return ROUTE_ENDPOINT


@pytest.fixture
def capacity_table(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.url)
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto.url)
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return TABLE


def poller(fn: FunctionRun, handler: ModuleType, stop_at: float) -> Callable[[], None]:
    """An event source mapping's poller for one instance: receive, invoke, delete what succeeded."""

    def run() -> None:
        while time.monotonic() < stop_at:
            messages = fn.receive(10)
            if not messages:
                if fn.remaining() == 0:
                    return
                time.sleep(0.05)
                continue
            records = [sqs_record_from_message(m, fn.queues.requests_arn, REGION) for m in messages]
            response = process_partial_response(
                event=sqs_event(records),
                record_handler=handler.record_handler,
                processor=handler.processor,
                context=LambdaContext.starting_now(30_000),  # type: ignore[arg-type]
            )
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                fn.sqs.delete_message_batch(
                    QueueUrl=fn.queues.requests,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )

    return run


def run_instances(
    run_function: Callable[..., FunctionRun], monkeypatch: pytest.MonkeyPatch, emulator_url: str, **env: str
) -> tuple[FunctionRun, list[dict[str, Any]]]:
    """INSTANCES cold starts of the function on one queue, MESSAGES sent, every instance polling until the
    queue is empty: the results delivered."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", emulator_url)
    fn = run_function(
        max_receive_count=50,
        ENDPOINT_NAME=ROUTE_ENDPOINT,
        MAX_CONCURRENCY=str(MAX_CONCURRENCY),
        # A message that comes back is visible again at once: the test measures throttles, not backoff.
        RETRY_BASE_SECONDS="0",
        RETRY_MAX_SECONDS="0",
        READ_TIMEOUT_SECONDS="5",
        DEADLINE_MARGIN_SECONDS="1",
        **env,
    )
    handlers = [fn.handler] + [load_handler(monkeypatch, fn.env) for _ in range(INSTANCES - 1)]
    for handler in handlers:
        # The instances share this process, and Powertools' metric set is shared by every Metrics object:
        # their per-batch metrics (checked in the unit tests) would race here, where one process is one
        # instance on Lambda.
        handler.processor._metrics = None
    for start in range(0, MESSAGES, 10):
        fn.sqs.send_message_batch(
            QueueUrl=fn.queues.requests,
            Entries=[
                {"Id": str(i), "MessageBody": f'{{"bodyText": "{i}", "requestId": "r-{i}"}}'}
                for i in range(start, start + 10)
            ],
        )
    stop_at = time.monotonic() + 18
    threads = [threading.Thread(target=poller(fn, handler, stop_at)) for handler in handlers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return fn, fn.results()


def throttled_share(emulator: SageMakerEmulator) -> float:
    stats = emulator.stats(ROUTE_ENDPOINT)
    return stats["throttled"] / max(1, stats["total"])


def test_shared_capacity_keeps_instances_within_the_endpoint(
    run_function: Callable[..., FunctionRun],
    emulator: SageMakerEmulator,
    route_endpoint: str,
    capacity_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 4 instances of 4 calls each, sharing one route budget over an endpoint that serves 4 at once
    fn, results = run_instances(
        run_function,
        monkeypatch,
        emulator.url,
        CAPACITY_MODE="shared",
        CAPACITY_TABLE=capacity_table,
        CAPACITY_KEY=f"requests#{route_endpoint}#{time.time_ns()}",
        CONCURRENCY_PER_INSTANCE=str(PER_INSTANCE),
    )
    # THEN every message was delivered once, none dead-lettered
    assert sorted(r["requestId"] for r in results) == sorted(f"r-{i}" for i in range(MESSAGES))
    assert fn.dead_letters() == []
    # AND the endpoint never had more than its capacity at the model, and throttled almost nothing
    stats = emulator.stats(route_endpoint)
    assert stats["max_in_flight"] <= ENDPOINT_INSTANCES * PER_INSTANCE
    assert throttled_share(emulator) < 0.05, stats


def test_per_instance_limits_throttle_far_more(
    run_function: Callable[..., FunctionRun],
    emulator: SageMakerEmulator,
    route_endpoint: str,
    capacity_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the same instances and endpoint, shared first, then each instance limiting itself
    run_instances(
        run_function,
        monkeypatch,
        emulator.url,
        CAPACITY_MODE="shared",
        CAPACITY_TABLE=capacity_table,
        CAPACITY_KEY=f"requests#{route_endpoint}#{time.time_ns()}",
        CONCURRENCY_PER_INSTANCE=str(PER_INSTANCE),
    )
    shared = throttled_share(emulator)
    emulator.reset(route_endpoint)
    fn, results = run_instances(run_function, monkeypatch, emulator.url, CAPACITY_MODE="per_instance")
    per_instance = throttled_share(emulator)
    # THEN per instance every message still arrives, but a much larger share of the calls was throttled
    assert len({r["requestId"] for r in results}) == MESSAGES
    assert fn.dead_letters() == []
    assert per_instance > max(3 * shared, 0.15), (shared, per_instance)

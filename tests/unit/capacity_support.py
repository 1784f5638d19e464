"""Stand-ins for the shared-capacity tests: moto's in-process DynamoDB (real conditional writes), a
SageMaker control plane that answers Describe* from a count, and a clock the waits advance."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from invoker.capacity_table import CapacityTable
from invoker.contract import CAPACITY_TABLE_PARTITION_KEY
from invoker.shared_capacity import RouteBudget
from moto import mock_aws

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from invoker.endpoint_capacity import CapacityReading
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "route-capacity"
KEY = "requests#demo-classifier"


def create_table(client: DynamoDBClient, name: str = TABLE) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    """moto's DynamoDB in this process (no socket), with the capacity table created."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        yield client


@dataclass
class Clock:
    """Epoch milliseconds that only move when told to (or when a wait sleeps)."""

    now_ms: int = 1_800_000_000_000
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_ms += int(seconds * 1000)


class FakeSageMaker:
    """DescribeEndpoint with one instance-backed variant of `instances`, or DescribeInferenceComponent with
    `instances` copies; `error` makes both raise it. Calls are counted."""

    def __init__(self, instances: int = 2, *, variant: str = "AllTraffic") -> None:
        self.instances = instances
        self.variant = variant
        self.error: Exception | None = None
        self.calls = 0
        self.during: Callable[[], None] | None = None  # runs inside a Describe call (a race, on purpose)

    def _answer(self) -> None:
        self.calls += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if self.error is not None:
            raise self.error

    def describe_endpoint(self, *, EndpointName: str) -> dict[str, Any]:
        self._answer()
        return {
            "EndpointName": EndpointName,
            "ProductionVariants": [{"VariantName": self.variant, "CurrentInstanceCount": self.instances}],
        }

    def describe_inference_component(self, *, InferenceComponentName: str) -> dict[str, Any]:
        self._answer()
        return {
            "InferenceComponentName": InferenceComponentName,
            "RuntimeConfig": {"CurrentCopyCount": self.instances},
        }


def client_error(code: str, operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, operation)


def make_budget(
    dynamodb: Any,
    read: Callable[[], CapacityReading],
    clock: Clock,
    *,
    max_concurrency: int = 8,
    refresh_seconds: int = 10,
    logger: Any = None,
) -> RouteBudget:
    return RouteBudget(
        CapacityTable(dynamodb, TABLE, KEY, epoch_s=lambda: clock() / 1000),
        read,
        refresh_seconds=refresh_seconds,
        max_concurrency=max_concurrency,
        logger=logger or logging.getLogger("test"),
        rng=random.Random(3),
        sleep=clock.sleep,
        epoch_ms=clock,
    )

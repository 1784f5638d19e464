"""The local stack gives shared-capacity routes what the deployed stack gives them: the capacity table
(the stack's key schema and TTL), the route's item key in the function's environment, and endpoints that
make the function's own DynamoDB and SageMaker clients reach moto and the emulator. Per-instance routes
get none of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from invoker.contract import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_TTL_ATTRIBUTE, CapacityMode, Env

from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.local.aws import REGION, client_kwargs, needs_capacity_table
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_dynamodb import DynamoDBClient

# Only the shared budget reads the endpoint's capacity through the emulator's control plane. (moto's
# DynamoDB is in every client's environment: the ledger and the CLI's `request` use it too.)
CONTROL_PLANE_ENDPOINT = "AWS_ENDPOINT_URL_SAGEMAKER"


def _context(*routes: dict[str, Any]) -> dict[str, Any]:
    return {"invoker": {"stackName": "CapacityTest", "routes": list(routes)}}


SHARED = {"name": "shared", "endpointName": "shared-ep"}  # shared is the default
PER_INSTANCE = {"name": "alone", "endpointName": "alone-ep", "capacity": {"mode": "perInstance"}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(
        context=_context(SHARED, PER_INSTANCE),
        default_container="inline",
        moto_mode="thread",
        start_event_sources=False,
        state_dir=tmp_path_factory.mktemp("capacity"),
    )
    with LocalStack(options) as running:
        yield running


def _dynamodb(stack: LocalStack) -> DynamoDBClient:
    return boto3.client("dynamodb", **client_kwargs(stack.moto.url))


def test_the_capacity_table_has_the_stacks_key_schema_and_ttl(stack: LocalStack) -> None:
    # GIVEN a stack with a shared-capacity route
    dynamodb = _dynamodb(stack)
    # WHEN its capacity table is described
    assert stack.capacity_table is not None
    table = dynamodb.describe_table(TableName=stack.capacity_table)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=stack.capacity_table)["TimeToLiveDescription"]
    # THEN it is keyed by a string pk, expires items on expiresAt, and is in the outputs
    assert table["KeySchema"] == [{"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "AttributeType": "S"}
    ]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": CAPACITY_TABLE_TTL_ATTRIBUTE}
    assert stack.outputs["CapacityTableName"] == stack.capacity_table


def test_a_shared_route_function_reaches_its_item_and_the_emulator(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the shared route's function environment, as its worker processes get it
    env = stack.function_spec(stack.app.route("shared")).environment
    assert env[Env.CAPACITY_MODE] == CapacityMode.SHARED
    assert env[Env.CAPACITY_TABLE] == stack.capacity_table
    assert env[Env.CAPACITY_KEY] == "CapacityTest/shared"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == stack.moto.url
    assert stack.emulator is not None
    assert env["AWS_ENDPOINT_URL_SAGEMAKER"] == stack.emulator.url
    # WHEN a client built from nothing but that environment writes and reads the route's item
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    dynamodb = boto3.Session().client("dynamodb")
    key = {CAPACITY_TABLE_PARTITION_KEY: {"S": env[Env.CAPACITY_KEY]}}
    dynamodb.put_item(TableName=env[Env.CAPACITY_TABLE], Item={**key, "leased": {"N": "0"}})
    item = dynamodb.get_item(TableName=env[Env.CAPACITY_TABLE], Key=key).get("Item")
    # THEN it found the table in the local moto, not in AWS
    assert item is not None
    assert item["leased"] == {"N": "0"}


def test_a_per_instance_route_gets_no_table_and_no_control_plane_endpoints(stack: LocalStack) -> None:
    # GIVEN a per-instance route next to the shared one
    # WHEN its function environment is built
    env = stack.function_spec(stack.app.route("alone")).environment
    # THEN it says per_instance and names neither the table nor the control plane's endpoint
    assert env[Env.CAPACITY_MODE] == CapacityMode.PER_INSTANCE
    assert Env.CAPACITY_TABLE not in env
    assert Env.CAPACITY_KEY not in env
    assert CONTROL_PLANE_ENDPOINT not in env


def test_a_stack_of_per_instance_routes_has_no_capacity_table() -> None:
    # GIVEN a configuration whose only route limits itself per instance
    app = load_app_config(_context(PER_INSTANCE))
    # WHEN / THEN the local stack would create no table (the deployed stack creates none either)
    assert not needs_capacity_table(app)
    assert needs_capacity_table(load_app_config(_context(SHARED, PER_INSTANCE)))

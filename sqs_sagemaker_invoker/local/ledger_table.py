"""The request ledger's table in moto, as sqs_sagemaker_invoker/infra/ledger_table.py defines it: one per
stack, created only when a route enables the ledger."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import boto3
from invoker.contract import LEDGER_TABLE_PARTITION_KEY, LEDGER_TABLE_TTL_ATTRIBUTE

from sqs_sagemaker_invoker.local.aws import client_kwargs

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from sqs_sagemaker_invoker.infra.config import AppConfig


def ledger_table_name(app: AppConfig) -> str:
    # CloudFormation generates the deployed name; locally it is readable and stable.
    return f"{app.stack_name}-request-ledger"


def create_ledger_table(app: AppConfig, endpoint_url: str) -> str | None:
    """The table's name, or None when no route enables the ledger (then nothing is created)."""
    if not any(route.ledger.enabled for route in app.routes):
        return None
    dynamodb: DynamoDBClient = boto3.client("dynamodb", **client_kwargs(endpoint_url))
    name = ledger_table_name(app)
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": LEDGER_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": LEDGER_TABLE_PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": LEDGER_TABLE_TTL_ATTRIBUTE},
    )
    return name

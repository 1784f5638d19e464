"""The request ledger's table: one per stack, shared by the routes that enable the ledger (each route's
items under its own key prefix, to which its function's role is scoped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from invoker.contract import LEDGER_TABLE_PARTITION_KEY, LEDGER_TABLE_TTL_ATTRIBUTE, ledger_key_prefix

from sqs_sagemaker_invoker.infra import suppressions

if TYPE_CHECKING:
    from constructs import IConstruct

# The construct id on the stack: the first route that enables the ledger creates the table, the others
# find it there.
LEDGER_TABLE_ID = "RequestLedger"
# Only what the function calls: UpdateItem (every write is a conditional update), and GetItem, the read
# a refused conditional write makes when it returns the item as it was (ReturnValuesOnConditionCheckFailure).
FUNCTION_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:GetItem")


def ledger_table(scope: IConstruct) -> dynamodb.Table:
    """The stack's ledger table, created on first use: on demand, encrypted at rest with a key DynamoDB
    owns (as the stack's queues and buckets use their services' own keys), point-in-time recovery on,
    items removed by TTL on LEDGER_TABLE_TTL_ATTRIBUTE."""
    stack = cdk.Stack.of(scope)
    existing = stack.node.try_find_child(LEDGER_TABLE_ID)
    if isinstance(existing, dynamodb.Table):
        return existing
    table = dynamodb.Table(
        stack,
        LEDGER_TABLE_ID,
        partition_key=dynamodb.Attribute(name=LEDGER_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.DEFAULT,
        time_to_live_attribute=LEDGER_TABLE_TTL_ATTRIBUTE,
        # The ledger is what recognises a resent request: a table restored to a point in time keeps that
        # memory (and its cost is the table's size, small with TTL).
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        # An account of requests, not their results (those are in the results queue or bucket): a new
        # stack starts a new ledger.
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    suppressions.accept(table, suppressions.TABLE_OWNED_KEY)
    return table


def grant_route(table: dynamodb.ITable, role: iam.IRole, route_name: str) -> None:
    """The route's function may update and read its own items only (their keys start with its prefix)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="WriteOwnLedgerItems",
            actions=list(FUNCTION_ACTIONS),
            resources=[table.table_arn],
            conditions={
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ledger_key_prefix(route_name)}*"]}
            },
        )
    )

"""The request ledger's table in moto, as sqs_sagemaker_invoker/infra/ledger_table.py defines it: one per
stack, created only when a route enables the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoker.contract import LEDGER_TABLE_PARTITION_KEY, LEDGER_TABLE_TTL_ATTRIBUTE

from sqs_sagemaker_invoker.local.aws import create_table

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.config import AppConfig


def ledger_table_name(app: AppConfig) -> str:
    # CloudFormation generates the deployed name; locally it is readable and stable.
    return f"{app.stack_name}-request-ledger"


def create_ledger_table(app: AppConfig, endpoint_url: str) -> str | None:
    """The table's name, or None when no route enables the ledger (then nothing is created)."""
    if not any(route.ledger.enabled for route in app.routes):
        return None
    return create_table(
        endpoint_url,
        ledger_table_name(app),
        partition_key=LEDGER_TABLE_PARTITION_KEY,
        ttl_attribute=LEDGER_TABLE_TTL_ATTRIBUTE,
    )

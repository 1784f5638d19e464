"""Lambda entry point of a route's job function: `invoker.jobs.handler.lambda_handler`, fed by the route's
job control queue (batch size 1). Everything but `lambda_handler` runs once per cold start."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config as BotoConfig

from invoker.contract import DEFAULT_SERVICE_NAME, Env
from invoker.events import sqs_records
from invoker.jobs.assembler import Assembler
from invoker.jobs.config import load_jobs_config
from invoker.jobs.control import BadControlMessage, Controller, ControlMessage
from invoker.jobs.pacing import CapacityBound, Pacer
from invoker.jobs.splitter import SEND_CALLS, Splitter
from invoker.jobs.table import JobTable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

config = load_jobs_config()  # a bad setting fails the cold start, naming the variable
logger = Logger(service=(os.environ.get(Env.SERVICE_NAME) or DEFAULT_SERVICE_NAME) + "-jobs")
_retrying = BotoConfig(
    retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30
)
s3_client = boto3.client("s3", config=_retrying)
# The splitter's SendMessageBatch calls go out SEND_CALLS at once: one pooled connection each.
sqs_client = boto3.client("sqs", config=_retrying.merge(BotoConfig(max_pool_connections=SEND_CALLS + 2)))
dynamodb_client = boto3.client("dynamodb", config=_retrying)
events_client = boto3.client("events", config=_retrying)
table = JobTable.of(dynamodb_client, config)
controller = Controller(
    config,
    table,
    Splitter(
        config,
        table,
        s3_client,
        sqs_client,
        Pacer(
            sqs_client,
            config.request_queue_url,
            CapacityBound(
                dynamodb_client, config.capacity_table, config.capacity_key, fixed=config.max_backlog
            ),
        ),
        payload_s3_prefix=os.environ.get(Env.PAYLOAD_S3_PREFIX) or None,
    ),
    Assembler(config, table, s3_client, events_client),
    sqs=sqs_client,
    log=logger,
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in sqs_records(event):
        try:
            message = ControlMessage.parse(str(record.get("body") or ""))
        except BadControlMessage as exc:
            # Never valid, never retried: said once, and acknowledged.
            logger.error(
                "bad job control message", extra={"message_id": record.get("messageId"), "error": str(exc)}
            )
            continue
        try:
            controller.handle(message, context.get_remaining_time_in_millis)
        except Exception:
            logger.exception("job control message failed", extra={"job_id": message.job_id})
            failures.append({"itemIdentifier": str(record.get("messageId"))})
    return {"batchItemFailures": failures}

"""The textbook Powertools handler, for comparison only: a sequential `BatchProcessor`, one
`invoke_endpoint` per record, `process_partial_response`. It never delivers results anywhere.

The boto3 client has the invoker's settings (one attempt, same timeouts) except the connection pool,
which a sequential handler does not need. It logs one line per record, as the invoker does, so that
the two pay for the same amount of logging."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from botocore.config import Config

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

ENDPOINT_NAME = os.environ["ENDPOINT_NAME"]

processor = BatchProcessor(event_type=EventType.SQS)
logger = Logger()
runtime = boto3.client(
    "sagemaker-runtime",
    config=Config(read_timeout=70, connect_timeout=5, retries={"mode": "standard", "total_max_attempts": 1}),
)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    message = record.json_body
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT_NAME,
        Body=json.dumps(message["body"], separators=(",", ":")),
        ContentType="application/json",
    )
    result = response["Body"].read()
    logger.info("invoked", extra={"request_id": message.get("requestId"), "message_id": record.message_id})
    return {"requestId": message.get("requestId"), "bytes": len(result)}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

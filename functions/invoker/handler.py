"""Lambda entry point: `invoker.handler.lambda_handler`. Everything here runs once per cold start,
except `lambda_handler` and `record_handler`; the decisions live in the modules it wires together."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import process_partial_response
from botocore.config import Config as BotoConfig

from invoker.config import load_config
from invoker.contract import DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME, CapacityMode, Dimension, Env
from invoker.events import sqs_records
from invoker.processor import Clients, build_processor

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client

config = load_config()  # a bad setting fails the cold start, naming the variable
service = os.environ.get(Env.SERVICE_NAME) or DEFAULT_SERVICE_NAME
logger = Logger(service=service)
metrics = Metrics(
    namespace=os.environ.get(Env.METRICS_NAMESPACE) or DEFAULT_METRICS_NAMESPACE, service=service
)
metrics.set_default_dimensions(**{Dimension.ENDPOINT: config.endpoint_name})

# The queue is the retry mechanism: one SDK attempt, whatever botocore's default retry mode is in the
# runtime's version (legacy would retry ModelNotReady 429 five times, standard not at all). Transient
# errors get a short, deadline-aware re-attempt in invoker.invocation instead. Containers must answer
# within 60 s, so a 70 s read timeout only fires when the service itself hangs.
runtime_client = boto3.client(
    "sagemaker-runtime",
    config=BotoConfig(
        read_timeout=config.read_timeout_seconds,
        connect_timeout=5,
        retries={"mode": "standard", "total_max_attempts": 1},
        # invoker.envelope already checks every member (type, length, pattern, ASCII, control characters);
        # botocore's own pass over them would only cost CPU on every call.
        parameter_validation=False,
        # A pool smaller than the number of threads makes urllib3 discard connections.
        max_pool_connections=config.max_concurrency + 2,
    ),
)
sqs_client = boto3.client(
    "sqs",
    config=BotoConfig(
        retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=config.max_concurrency + 2
    ),
)
_s3_client: S3Client | None = None
# CAPACITY_MODE=shared only: the route's budget (DynamoDB) and the endpoint's capacity (control plane). A few
# calls per batch, each worth a short retry; short timeouts, because a slow table only costs the shared
# budget (the batch falls back to the instance's own limit), never a message.
_capacity_boto = BotoConfig(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5
)
shared = config.capacity_mode is CapacityMode.SHARED
dynamodb_client = boto3.client("dynamodb", config=_capacity_boto) if shared else None
sagemaker_client = boto3.client("sagemaker", config=_capacity_boto) if shared else None


def s3_client() -> S3Client:
    global _s3_client  # noqa: PLW0603 - created on first use, then kept for warm invocations
    if _s3_client is None:
        _s3_client = boto3.client("s3", config=BotoConfig(max_pool_connections=config.max_concurrency + 2))
    return _s3_client


processor = build_processor(
    config,
    Clients(
        runtime=runtime_client,
        sqs=sqs_client,
        s3=s3_client,
        dynamodb=dynamodb_client,
        sagemaker=sagemaker_client,
    ),
    logger=logger,
    metrics=metrics,
)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return processor.handle(record)


def _traced[F: Callable[..., Any]](handler: F) -> F:
    if not config.enable_tracing:
        return handler
    # Imported only when asked for: aws_xray_sdk costs cold-start time that most routes do not need.
    from aws_lambda_powertools import Tracer  # noqa: PLC0415

    return Tracer().capture_lambda_handler(handler)  # type: ignore[return-value]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@_traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # An event that is not an SQS batch raises NotAnSqsEvent here (see invoker.events); an empty batch
    # has nothing to do (Powertools would raise on it).
    if not sqs_records(event):
        return {"batchItemFailures": []}
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

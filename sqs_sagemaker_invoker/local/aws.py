"""The AWS side of the local stack: each route's queues, bucket and alarms as the stack defines them, on moto."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from invoker.contract import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_TTL_ATTRIBUTE

from sqs_sagemaker_invoker.infra.config import (
    DEAD_LETTER_BODY_EXPIRY_DAYS,
    DEAD_LETTERS_PREFIX,
    QUEUE_RETENTION_SECONDS,
    REQUEST_PAYLOAD_EXPIRY_DAYS,
    REQUESTS_PREFIX,
    RESULTS_PREFIX,
    capacity_key,
    function_environment,
    payload_s3_prefix,
    queue_name,
)
from sqs_sagemaker_invoker.infra.outputs_and_alarms import (
    TREAT_MISSING_DATA,
    RouteOutput,
    Watched,
    route_alarms,
    route_output_key,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import LifecycleRuleTypeDef
    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.infra.config import AppConfig, RouteConfig

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CREDENTIALS = ("testing", "testing")
# The local moto server serialises SQS (moto_sqs_lock), the one service whose races surfaced as HTTP 500;
# the local stack's own clients still retry, as any AWS client should.
MAX_ATTEMPTS = 6
RESULTS_EXPIRY_RULE = "expire-results"


def client_kwargs(endpoint_url: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint_url,
        "region_name": REGION,
        "aws_access_key_id": CREDENTIALS[0],
        "aws_secret_access_key": CREDENTIALS[1],
        "config": Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}),
    }


@dataclass(frozen=True)
class RouteResources:
    """A route's resources, named like the stack's outputs."""

    route: RouteConfig
    function_name: str
    request_queue_url: str
    request_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    results_queue_url: str | None
    results_bucket: str | None
    payload_s3_prefix: str | None
    dead_letter_bucket: str
    # The stack's capacity table and this route's item in it: set iff the route's capacity is shared.
    capacity_table: str | None = None
    capacity_key: str | None = None
    ledger_table: str | None = None  # the stack's, when this route enables the ledger

    def outputs(self) -> dict[str, str]:
        values = {
            RouteOutput.ENDPOINT_NAME: self.route.endpoint_name,
            RouteOutput.REQUEST_QUEUE_URL: self.request_queue_url,
            RouteOutput.REQUEST_QUEUE_ARN: self.request_queue_arn,
            RouteOutput.DEAD_LETTER_QUEUE_URL: self.dead_letter_queue_url,
            RouteOutput.RESULTS_QUEUE_URL: self.results_queue_url,
            RouteOutput.RESULTS_BUCKET_NAME: self.results_bucket,
            RouteOutput.PAYLOAD_S3_PREFIX: self.payload_s3_prefix,
            RouteOutput.FUNCTION_NAME: self.function_name,
            RouteOutput.LOG_GROUP_NAME: f"/aws/lambda/{self.function_name}",
            RouteOutput.LEDGER_TABLE_NAME: self.ledger_table,
        }
        return {route_output_key(self.route.name, k): v for k, v in values.items() if v is not None}

    def environment(self, app: AppConfig) -> dict[str, str]:
        """The function's environment: the same function as the CDK app uses."""
        return function_environment(
            self.route,
            dlq_url=self.dead_letter_queue_url,
            dead_letter_bucket=self.dead_letter_bucket,
            results_queue_url=self.results_queue_url,
            results_bucket=self.results_bucket,
            payload_s3_prefix=self.payload_s3_prefix,
            namespace=app.metrics_namespace,
            service=app.service_name,
            capacity_table=self.capacity_table,
            capacity_key=self.capacity_key,
            ledger_table=self.ledger_table,
        )


def _queue(sqs: SQSClient, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def capacity_table_name(app: AppConfig) -> str:
    # CloudFormation generates the deployed name (the function reads it from CAPACITY_TABLE); locally it
    # is readable and stable.
    return f"{app.stack_name}-capacity"


def needs_capacity_table(app: AppConfig) -> bool:
    """The stack has a capacity table iff one of its routes shares its endpoint's capacity."""
    return any(route.capacity.shared for route in app.routes)


def create_table(endpoint_url: str, name: str, *, partition_key: str, ttl_attribute: str) -> str:
    """A table as the stack makes its tables: a string partition key, on demand, TTL on one attribute
    (already there is fine: a restarted stack finds its moto state). Returns its name."""
    dynamodb: DynamoDBClient = boto3.client("dynamodb", **client_kwargs(endpoint_url))
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": partition_key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": partition_key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
    )
    return name


def create_capacity_table(app: AppConfig, endpoint_url: str) -> str:
    """The stack's capacity table (one item per shared route). Returns its name."""
    return create_table(
        endpoint_url,
        capacity_table_name(app),
        partition_key=CAPACITY_TABLE_PARTITION_KEY,
        ttl_attribute=CAPACITY_TABLE_TTL_ATTRIBUTE,
    )


def create_route_resources(
    app: AppConfig,
    route: RouteConfig,
    endpoint_url: str,
    *,
    capacity_table: str | None = None,
    ledger_table: str | None = None,
) -> RouteResources:
    """Create one route's queues, redrive policy, results queue/bucket and log group as sqs_sagemaker_invoker/infra/route_storage.py does.

    `capacity_table` (the stack's, see create_capacity_table) names the route's item in it when the
    route's capacity is shared; a per-instance route ignores it, as the function does.

    Not mirrored: the stack's TLS-only (aws:SecureTransport) policies. moto evaluates bucket policies and
    every local endpoint is plain HTTP on 127.0.0.1, so such a policy would deny the function everything.
    """
    sqs: SQSClient = boto3.client("sqs", **client_kwargs(endpoint_url))
    s3: S3Client = boto3.client("s3", **client_kwargs(endpoint_url))
    logs: CloudWatchLogsClient = boto3.client("logs", **client_kwargs(endpoint_url))
    base = {"MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"}
    # DLQ and results queue: the request queue's type, content-based deduplication when FIFO.
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if route.fifo else {}

    def name(kind: str) -> str:
        return queue_name(app.stack_name, route.name, kind, fifo=route.fifo)

    dlq_url, dlq_arn = _queue(sqs, name("dlq"), {**base, **fifo})
    request_fifo = (
        {**fifo, "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"}
        if route.fifo
        else {}
    )
    request_url, request_arn = _queue(
        sqs,
        name("requests"),
        {
            **base,
            **request_fifo,
            # Derived, never configured: a batch cannot become visible again while it still runs.
            "VisibilityTimeout": str(route.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": route.max_receive_count}
            ),
        },
    )
    results_url: str | None = None
    if route.results.queue:
        results_url, _ = _queue(sqs, name("results"), {**base, **fifo})
    bucket: str | None = None
    if route.results.bucket:
        bucket = _bucket_name(app, route)
        _create_bucket(s3, bucket, route)
    # As the stack does: the results bucket when there is one, else a small one of its own.
    dead_letter_bucket = bucket
    if dead_letter_bucket is None:
        dead_letter_bucket = _bucket_name(app, route, "dead-letters")
        _create_bucket(s3, dead_letter_bucket, route, results=False)
    function_name = _function_name(app, route)
    shared = route.capacity.shared and capacity_table is not None
    group = f"/aws/lambda/{function_name}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName=group, retentionInDays=route.log_retention_days)
    return RouteResources(
        route=route,
        function_name=function_name,
        request_queue_url=request_url,
        request_queue_arn=request_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        results_queue_url=results_url,
        results_bucket=bucket,
        payload_s3_prefix=payload_s3_prefix(bucket) if route.large_payloads and bucket else None,
        dead_letter_bucket=dead_letter_bucket,
        capacity_table=capacity_table if shared else None,
        capacity_key=capacity_key(app.stack_name, route.name) if shared else None,
        ledger_table=ledger_table if route.ledger.enabled else None,
    )


def _function_name(app: AppConfig, route: RouteConfig) -> str:
    # CloudFormation generates the deployed name; locally it is readable and stable (64 chars max).
    return f"{app.stack_name}-{route.name}-invoker"[-64:].lstrip("-")


def _bucket_name(app: AppConfig, route: RouteConfig, purpose: str = "") -> str:
    key = f"{app.stack_name}/{route.name}" + (f"/{purpose}" if purpose else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{app.stack_name.lower()[:30]}-{route.name}-{digest}".strip("-")


def _create_bucket(s3: S3Client, bucket: str, route: RouteConfig, *, results: bool = True) -> None:
    """A route's bucket: S3-managed encryption, public access blocked, owner-enforced, lifecycle rules
    (the results bucket's, or only the dead-letter bodies' of a dead-letter bucket)."""
    s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced")
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    rules: list[LifecycleRuleTypeDef] = [
        {
            "ID": "abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        },
        {
            "ID": "expire-dead-letter-bodies",
            "Status": "Enabled",
            "Filter": {"Prefix": DEAD_LETTERS_PREFIX},
            "Expiration": {"Days": DEAD_LETTER_BODY_EXPIRY_DAYS},
        },
    ]
    if results:
        rules.insert(
            0,
            {
                "ID": RESULTS_EXPIRY_RULE,
                "Status": "Enabled",
                "Filter": {"Prefix": RESULTS_PREFIX},
                "Expiration": {"Days": route.results.expire_days},
            },
        )
    if results and route.large_payloads:
        rules.append(
            {
                "ID": "expire-request-payloads",
                "Status": "Enabled",
                "Filter": {"Prefix": REQUESTS_PREFIX},
                "Expiration": {"Days": REQUEST_PAYLOAD_EXPIRY_DAYS},
            }
        )
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def create_alarms(app: AppConfig, resources: RouteResources, endpoint_url: str, topic_arn: str) -> list[str]:
    """The route's four alarms, from the table the stack builds its alarms from (moto stores them; it
    does not evaluate AWS/SQS or AWS/Lambda metrics, which nothing publishes locally)."""
    cloudwatch: CloudWatchClient = boto3.client("cloudwatch", **client_kwargs(endpoint_url))
    watched = {
        Watched.REQUEST_QUEUE: resources.request_queue_url.rsplit("/", 1)[-1],
        Watched.DEAD_LETTER_QUEUE: resources.dead_letter_queue_url.rsplit("/", 1)[-1],
        Watched.FUNCTION: resources.function_name,
    }
    alarms = route_alarms(app.stack_name, resources.route)
    for alarm in alarms:
        spec = alarm.spec
        optional: dict[str, Any] = {}
        if spec.datapoints_to_alarm is not None:
            optional["DatapointsToAlarm"] = spec.datapoints_to_alarm
        cloudwatch.put_metric_alarm(
            AlarmName=alarm.name,
            AlarmDescription=alarm.description,
            AlarmActions=[topic_arn],
            OKActions=[topic_arn],
            TreatMissingData=TREAT_MISSING_DATA,
            Namespace=spec.namespace,
            MetricName=spec.metric_name,
            Dimensions=[{"Name": alarm.dimension, "Value": watched[spec.watches]}],
            Statistic=spec.statistic,  # type: ignore[arg-type]  # the table holds CloudWatch's names
            Period=spec.period_seconds,
            EvaluationPeriods=spec.evaluation_periods,
            Threshold=alarm.threshold,
            ComparisonOperator=spec.comparison,  # type: ignore[arg-type]
            **optional,
        )
    return [alarm.name for alarm in alarms]

"""A route's queues and buckets (the construct's parts that hold messages and objects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from sqs_sagemaker_invoker.infra import nag, suppressions
from sqs_sagemaker_invoker.infra.config import (
    DEAD_LETTER_BODY_EXPIRY_DAYS,
    DEAD_LETTERS_PREFIX,
    QUEUE_RETENTION_SECONDS,
    REQUEST_PAYLOAD_EXPIRY_DAYS,
    REQUESTS_PREFIX,
    RESULTS_PREFIX,
    queue_name,
)

if TYPE_CHECKING:
    from constructs import Construct

    from sqs_sagemaker_invoker.infra.config import RouteConfig

QUEUE_RETENTION = cdk.Duration.seconds(QUEUE_RETENTION_SECONDS)


@dataclass(frozen=True)
class RouteQueues:
    request: sqs.Queue
    dead_letter: sqs.Queue
    results: sqs.Queue | None


@dataclass(frozen=True)
class RouteBuckets:
    results: s3.Bucket | None  # with results.bucket; also holds requests/ with largePayloads
    dead_letter: s3.Bucket  # the results bucket when there is one, else a bucket of its own


def _queue(scope: Construct, construct_id: str, **props: Any) -> sqs.Queue:
    """A route queue: SQS-managed encryption, TLS only, the route's retention, and the encryption
    decision recorded for the validators."""
    queue = sqs.Queue(
        scope,
        construct_id,
        retention_period=QUEUE_RETENTION,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        **props,
    )
    suppressions.accept(queue, suppressions.QUEUE_SQS_MANAGED_KEY)
    return queue


def add_queues(scope: Construct, route: RouteConfig, stack_name: str) -> RouteQueues:
    """Request queue, its dead-letter queue, and the results queue with results.queue."""
    dead_letter_queue = _queue(
        scope,
        "DeadLetterQueue",
        queue_name=queue_name(stack_name, route.name, "dlq", fifo=route.fifo),
        fifo=route.fifo or None,
        content_based_deduplication=route.fifo or None,
    )
    fifo_options: dict[str, object] = {}
    if route.fifo:
        # High-throughput FIFO: ordering and deduplication per message group.
        fifo_options = {
            "fifo": True,
            "content_based_deduplication": True,
            "deduplication_scope": sqs.DeduplicationScope.MESSAGE_GROUP,
            "fifo_throughput_limit": sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
        }
    request_queue = _queue(
        scope,
        "RequestQueue",
        queue_name=queue_name(stack_name, route.name, "requests", fifo=route.fifo),
        # Derived, never configured: a batch can never become visible again while it still runs.
        visibility_timeout=cdk.Duration.seconds(route.visibility_timeout_seconds),
        dead_letter_queue=sqs.DeadLetterQueue(
            queue=dead_letter_queue, max_receive_count=route.max_receive_count
        ),
        **fifo_options,
    )

    results_queue: sqs.Queue | None = None
    if route.results.queue:
        # Same type as the request queue, so a FIFO route keeps its results ordered per group.
        results_queue = _queue(
            scope,
            "ResultsQueue",
            queue_name=queue_name(stack_name, route.name, "results", fifo=route.fifo),
            fifo=route.fifo or None,
            content_based_deduplication=route.fifo or None,
        )
        nag.acknowledge(
            results_queue,
            "SQS3",
            "Output queue read by clients; the invoker never consumes it, so there is nothing to "
            "dead-letter (failed requests go to the route's DLQ).",
        )

    return RouteQueues(request=request_queue, dead_letter=dead_letter_queue, results=results_queue)


def add_buckets(scope: Construct, route: RouteConfig) -> RouteBuckets:
    """The results bucket (with results.bucket) and where oversized dead-letter bodies go."""
    bucket: s3.Bucket | None = None
    if route.results.bucket:
        rules = [
            s3.LifecycleRule(
                id="expire-results",
                prefix=RESULTS_PREFIX,
                expiration=cdk.Duration.days(route.results.expire_days),
            ),
            s3.LifecycleRule(
                id="abort-incomplete-uploads",
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            ),
            _dead_letter_expiry(),
        ]
        if route.large_payloads:
            rules.append(
                s3.LifecycleRule(
                    id="expire-request-payloads",
                    prefix=REQUESTS_PREFIX,
                    expiration=cdk.Duration.days(REQUEST_PAYLOAD_EXPIRY_DAYS),
                )
            )
        bucket = s3.Bucket(
            scope,
            "ResultsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=rules,
            # Kept on stack deletion: results may still be unread (objects expire on their own).
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        suppressions.accept(bucket, suppressions.BUCKET_ACCESS_LOGS, suppressions.BUCKET_NO_VERSIONING)
        # A dead-letter body too large for SQS is kept with its reason in the results bucket.
        return RouteBuckets(results=bucket, dead_letter=bucket)
    # Without results bucket, a small bucket of its own.
    dead_letter_bucket = s3.Bucket(
        scope,
        "DeadLetterBucket",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[
            _dead_letter_expiry(),
            s3.LifecycleRule(
                id="abort-incomplete-uploads",
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            ),
        ],
        # Kept on stack deletion, like the DLQ's letters it backs (objects expire on their own).
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    suppressions.accept(
        dead_letter_bucket, suppressions.BUCKET_ACCESS_LOGS, suppressions.BUCKET_NO_VERSIONING
    )
    return RouteBuckets(results=None, dead_letter=dead_letter_bucket)


def _dead_letter_expiry() -> s3.LifecycleRule:
    return s3.LifecycleRule(
        id="expire-dead-letter-bodies",
        prefix=DEAD_LETTERS_PREFIX,
        expiration=cdk.Duration.days(DEAD_LETTER_BODY_EXPIRY_DAYS),
    )

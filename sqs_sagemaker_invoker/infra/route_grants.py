"""The function's grants on its route's buckets: each statement scoped to one key prefix, with the reason
cdk-nag's wildcard finding is accepted beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_iam as iam

from sqs_sagemaker_invoker.infra import nag
from sqs_sagemaker_invoker.infra.config import DEAD_LETTERS_PREFIX, REQUESTS_PREFIX, RESULTS_PREFIX
from sqs_sagemaker_invoker.infra.jobs_function import JOBS_PREFIX

if TYPE_CHECKING:
    from aws_cdk import aws_s3 as s3

    from sqs_sagemaker_invoker.infra.config import RouteConfig


def grant_buckets(
    role: iam.Role, route: RouteConfig, *, bucket: s3.IBucket | None, dead_letter_bucket: s3.IBucket
) -> None:
    """Oversized dead-letter bodies; results, large job results and request payloads when the route has
    a bucket and uses them."""
    _grant_prefix(
        role,
        "WriteOversizedDeadLetters",
        action="s3:PutObject",
        bucket=dead_letter_bucket,
        prefix=DEAD_LETTERS_PREFIX,
        why="the function names each stored dead-letter body by its message id, so keys are not known in advance",
    )
    if bucket is None:
        return
    _grant_prefix(
        role,
        "WriteResults",
        action="s3:PutObject",
        bucket=bucket,
        prefix=RESULTS_PREFIX,
        why="the function names each result object by request, so keys are not known in advance",
    )
    if route.jobs.enabled:
        # A job line's result too large for its ledger item goes to jobs/<jobId>/results/.
        _grant_prefix(
            role,
            "WriteLargeJobResults",
            action="s3:PutObject",
            bucket=bucket,
            prefix=JOBS_PREFIX,
            why="a job line's large result is named by its job id and line",
        )
    if route.large_payloads:
        _grant_prefix(
            role,
            "ReadRequestPayloads",
            action="s3:GetObject",
            bucket=bucket,
            prefix=REQUESTS_PREFIX,
            why="clients choose each payload's key (bodyS3Uri), the function checks the prefix",
        )


def _grant_prefix(  # noqa: PLR0913 - the statement's parts and the reason for its wildcard
    role: iam.Role, sid: str, *, action: str, bucket: s3.IBucket, prefix: str, why: str
) -> None:
    """One action on the keys under one prefix of one bucket, and cdk-nag's wildcard finding accepted with
    the reason the keys cannot be named in advance."""
    role.add_to_policy(
        iam.PolicyStatement(sid=sid, actions=[action], resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    nag.acknowledge(
        role,
        "IAM5",
        f"{action} only, under {prefix} of this route's own bucket: {why}.",
        finding=f"Resource::{nag.arn_reference(bucket)}/{prefix}*",
    )

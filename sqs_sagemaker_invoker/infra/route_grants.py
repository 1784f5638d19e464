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
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOversizedDeadLetters",
            actions=["s3:PutObject"],
            resources=[dead_letter_bucket.arn_for_objects(f"{DEAD_LETTERS_PREFIX}*")],
        )
    )
    nag.acknowledge(
        role,
        "IAM5",
        f"s3:PutObject only, under {DEAD_LETTERS_PREFIX} of this route's own bucket: the function names "
        "each stored dead-letter body by its message id, so keys are not known in advance.",
        finding=f"Resource::{nag.arn_reference(dead_letter_bucket)}/{DEAD_LETTERS_PREFIX}*",
    )
    if bucket is not None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
            )
        )
        if route.jobs.enabled:
            # A job line's result too large for its ledger item goes to jobs/<jobId>/results/.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="WriteLargeJobResults",
                    actions=["s3:PutObject"],
                    resources=[bucket.arn_for_objects(f"{JOBS_PREFIX}*")],
                )
            )
            nag.acknowledge(
                role,
                "IAM5",
                f"s3:PutObject only, under {JOBS_PREFIX} of this route's own bucket: a job line's large "
                "result is named by its job id and line.",
                finding=f"Resource::{nag.arn_reference(bucket)}/{JOBS_PREFIX}*",
            )
        bucket_arn = nag.arn_reference(bucket)
        nag.acknowledge(
            role,
            "IAM5",
            f"s3:PutObject only, on result keys of this route's own bucket ({RESULTS_PREFIX}*): "
            "the function names each result object by request, so keys are not known in advance.",
            finding=f"Resource::{bucket_arn}/{RESULTS_PREFIX}*",
        )
        if route.large_payloads:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadRequestPayloads",
                    actions=["s3:GetObject"],
                    resources=[bucket.arn_for_objects(f"{REQUESTS_PREFIX}*")],
                )
            )
            nag.acknowledge(
                role,
                "IAM5",
                f"s3:GetObject only, on request payloads under {REQUESTS_PREFIX} of this route's own "
                "bucket: clients choose each payload's key (bodyS3Uri), the function checks the prefix.",
                finding=f"Resource::{bucket_arn}/{REQUESTS_PREFIX}*",
            )

"""Every finding of checkov and cfn-lint that the app accepts, and why: the one table of those decisions.

The tests run both tools on every synthesized shape (tests/infra/test_validators.py) and expect zero
findings. A decision is applied to the resources it concerns with `accept`, which writes it into each
resource's template Metadata (`checkov.skip` with the reason as comment, `cfn-lint.config.ignore_checks`),
so anyone who runs the tools on the deployed template sees the same result, and a new resource is
checked until someone decides for it. A decision that is also a cdk-nag finding names its AwsSolutions
rule, and `accept` acknowledges that rule with the same reason. cdk-nag findings without a checkov or
cfn-lint counterpart stay next to their resources (sqs_sagemaker_invoker/infra/route_construct.py and route_storage.py, `nag.acknowledge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk

from sqs_sagemaker_invoker.infra import nag

if TYPE_CHECKING:
    from constructs import IConstruct


@dataclass(frozen=True)
class Decision:
    reason: str
    checkov: tuple[str, ...] = ()
    cfn_lint: tuple[str, ...] = ()
    nag: tuple[str, ...] = ()  # the same decision as these AwsSolutions rules


# Queues (request, dead-letter, results).
QUEUE_SQS_MANAGED_KEY = Decision(
    checkov=("CKV_AWS_27",),
    reason=(
        "Encrypted at rest with SQS-managed keys (SSE-SQS; cdk-nag SQS2 accepts it); checkov's check "
        "accepts only a KMS key. A customer-managed key costs a monthly key fee plus KMS requests, and "
        "every producer, the function and the invoker CLI (send, dlq redrive) would need key-policy "
        "grants; use one where policy requires control of the key."
    ),
)

# Results bucket (results/ and, with largePayloads, requests/).
BUCKET_ACCESS_LOGS = Decision(
    checkov=("CKV_AWS_18",),
    nag=("S1",),
    reason=(
        "Only the route's function role uses the bucket (writes results/ and dead-letters/, reads "
        "requests/ with largePayloads) and every object expires by lifecycle; enable CloudTrail S3 data events where "
        "object-level audit is required (server access logs would need a log bucket of their own)."
    ),
)
BUCKET_NO_VERSIONING = Decision(
    checkov=("CKV_AWS_21",),
    reason=(
        "Objects are written once under a key per request and expire within days; versioning would keep "
        "every overwritten or expired object as a noncurrent version (paid storage, more lifecycle rules) "
        "and protects nothing the function can do: its role can put results/ and dead-letters/ and get "
        "requests/, never delete (a dead-letter body is written once, under its message id)."
    ),
)

# The stack's DynamoDB tables: the capacity table (one small item per shared route: the budget its
# function instances lease from) and the request ledger (one item per request).
TABLE_OWNED_KEY = Decision(
    checkov=("CKV_AWS_119",),
    reason=(
        "Encrypted at rest with a key DynamoDB owns, the same decision as the queues (SSE-SQS) and buckets "
        "(SSE-S3); checkov accepts only a customer-managed key. The capacity table holds slot counts, lease "
        "times and the endpoint's instance count; the ledger holds request ids, states, reasons and where "
        "results are; neither holds payloads. A customer-managed key would cost a key fee plus a KMS "
        "request on every lease and ledger write, and the CLI's readers would need key-policy grants."
    ),
)
CAPACITY_TABLE_NO_PITR = Decision(
    checkov=("CKV_AWS_28",),
    nag=("DDB3",),
    reason=(
        "No point-in-time recovery: the table holds only live coordination state (leases that expire "
        "within a function timeout, a capacity reading refreshed every few seconds) that the function "
        "writes again when an item is missing; a restored copy would hold stale leases, so there is "
        "nothing worth restoring."
    ),
)

# The function and its log group.
LOG_GROUP_DEFAULT_ENCRYPTION = Decision(
    checkov=("CKV_AWS_158",),
    reason=(
        "CloudWatch Logs encrypts log data at rest by default, and the function logs no payload-derived "
        "text unless LOG_PAYLOADS=true; a customer-managed key would need a key policy for the logs "
        "service principal."
    ),
)
FUNCTION_ENVIRONMENT_DEFAULT_KEY = Decision(
    checkov=("CKV_AWS_173",),
    reason=(
        "Lambda encrypts environment variables at rest with an AWS managed key; they hold queue URLs, "
        "bucket and endpoint names and tuning values, no secrets."
    ),
)
FUNCTION_NO_ASYNC_DLQ = Decision(
    checkov=("CKV_AWS_116",),
    reason=(
        "A function's DeadLetterConfig applies to asynchronous invocations only; the SQS event source "
        "mapping invokes synchronously, so failed messages go to the route's DLQ (the request queue's "
        "redrive policy, and the function dead-letters with a reason itself)."
    ),
)
FUNCTION_NO_RESERVED_CONCURRENCY = Decision(
    checkov=("CKV_AWS_115",),
    reason=(
        "Concurrency is capped by the event source mapping (maxConcurrency, or the provisioned pollers' "
        "maximum), as AWS recommends for SQS sources: reserved concurrency below the mapping's would "
        "throttle invocations, and throttled batches return to the queue and count towards "
        "maxReceiveCount."
    ),
)
FUNCTION_OUTSIDE_VPC = Decision(
    checkov=("CKV_AWS_117",),
    reason=(
        "The function calls only AWS APIs (SageMaker Runtime, SQS, S3; metrics and traces leave through "
        "Lambda itself) and no private resource; in a VPC it would need a NAT gateway or an interface "
        "endpoint per service, at an hourly cost, for no change in what it can reach."
    ),
)
FUNCTION_ROLE_DEPENDENCY = Decision(
    cfn_lint=("W3005",),
    reason=(
        "CDK's Function always adds DependsOn its role next to the GetAtt of the role's Arn (and on the "
        "role's default policy, which is needed); the duplicate is harmless and not ours to remove."
    ),
)

# The whole template.
CDK_JOIN_STYLE = Decision(
    cfn_lint=("I1022",),
    reason=(
        "Informational: prefer Fn::Sub to Fn::Join with an empty delimiter. CDK writes every ARN, URL and "
        "name it builds from tokens as Fn::Join; both mean the same to CloudFormation."
    ),
)

ALL: tuple[Decision, ...] = (
    CDK_JOIN_STYLE,
    QUEUE_SQS_MANAGED_KEY,
    BUCKET_ACCESS_LOGS,
    BUCKET_NO_VERSIONING,
    TABLE_OWNED_KEY,
    CAPACITY_TABLE_NO_PITR,
    LOG_GROUP_DEFAULT_ENCRYPTION,
    FUNCTION_ENVIRONMENT_DEFAULT_KEY,
    FUNCTION_NO_ASYNC_DLQ,
    FUNCTION_NO_RESERVED_CONCURRENCY,
    FUNCTION_OUTSIDE_VPC,
    FUNCTION_ROLE_DEPENDENCY,
)


def accept(scope: IConstruct, *decisions: Decision) -> None:
    """Write the decisions into the Metadata of scope's resource, or of the template for a stack.

    A decision naming cdk-nag rules also acknowledges them on scope, with the same reason.
    """
    checkov = [{"id": check, "comment": d.reason} for d in decisions for check in d.checkov]
    cfn_lint = [check for d in decisions for check in d.cfn_lint]
    for decision in decisions:
        for rule in decision.nag:
            nag.acknowledge(scope, rule, decision.reason)
    if isinstance(scope, cdk.Stack):
        # checkov has no template-wide skip: stacks take cfn-lint decisions only.
        if checkov:
            raise ValueError("checkov decisions apply to resources, not to a whole template")
        metadata = dict(scope.template_options.metadata or {})
        _add_cfn_lint(metadata, cfn_lint)
        scope.template_options.metadata = metadata
        return
    resource = scope if isinstance(scope, cdk.CfnResource) else scope.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource")
    if checkov:
        skip = (resource.get_metadata("checkov") or {}).get("skip", [])
        resource.add_metadata("checkov", {"skip": [*skip, *checkov]})
    if cfn_lint:
        metadata = {"cfn-lint": resource.get_metadata("cfn-lint")}
        _add_cfn_lint(metadata, cfn_lint)
        resource.add_metadata("cfn-lint", metadata["cfn-lint"])


def _add_cfn_lint(metadata: dict[str, Any], checks: list[str]) -> None:
    """cfn-lint reads Metadata["cfn-lint"]["config"]["ignore_checks"] on a resource or the template."""
    if not checks:
        return
    config = dict((metadata.get("cfn-lint") or {}).get("config", {}))
    ignored = list(config.get("ignore_checks", []))
    # Idempotent: every route in a host stack accepts the template-wide decisions again.
    config["ignore_checks"] = ignored + [check for check in checks if check not in ignored]
    metadata["cfn-lint"] = {"config": config}

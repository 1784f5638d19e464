"""A route's job machinery (cdk.json `jobs.enabled`): the job control queue (+ its DLQ) and the
splitter/assembler function it feeds, with a role scoped to the route's own keys, objects and queues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from invoker.contract import ledger_key_prefix

from sqs_sagemaker_invoker.infra import nag, suppressions
from sqs_sagemaker_invoker.infra.bundling import function_code
from sqs_sagemaker_invoker.infra.config import RESULTS_PREFIX, jobs_function_environment, queue_name
from sqs_sagemaker_invoker.infra.function_settings import RETENTION_DAYS, RUNTIMES
from sqs_sagemaker_invoker.infra.route_storage import _queue

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_s3 as s3
    from constructs import Construct

    from sqs_sagemaker_invoker.infra.config import RouteConfig

JOBS_HANDLER = "invoker.jobs.handler.lambda_handler"
JOBS_PREFIX = "jobs/"
# What the job function does on the ledger table: its job items and its lines' items, under the route's
# prefix (dynamodb:LeadingKeys): read, move state, count, record refused lines, read lines in order.
JOB_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:BatchGetItem")
# A control message that failed this often (a bug, an input that cannot be read) is kept for a look.
CONTROL_MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class RouteJobs:
    control_queue: sqs.Queue
    control_dead_letter_queue: sqs.Queue
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def add_jobs(  # noqa: PLR0913 - the route's resources the job function works with
    scope: Construct,
    route: RouteConfig,
    *,
    stack_name: str,
    request_queue: sqs.IQueue,
    bucket: s3.IBucket,
    ledger_table: dynamodb.ITable,
    capacity_table: dynamodb.ITable | None,
    capacity_key: str | None,
    payload_s3_prefix: str | None,
    service_name: str,
) -> RouteJobs:
    stack = cdk.Stack.of(scope)
    timeout = route.jobs.timeout_seconds
    dead_letters = _queue(
        scope,
        "JobControlDeadLetterQueue",
        queue_name=queue_name(stack_name, route.name, "jobs-dlq", fifo=False),
    )
    control = _queue(
        scope,
        "JobControlQueue",
        queue_name=queue_name(stack_name, route.name, "jobs", fifo=False),
        # Twice the function's timeout: a split that crashed is picked up again within minutes, not the
        # six timeouts the request queue waits (one control message per invocation: no batch to outlast).
        visibility_timeout=cdk.Duration.seconds(2 * timeout),
        dead_letter_queue=sqs.DeadLetterQueue(
            queue=dead_letters, max_receive_count=CONTROL_MAX_RECEIVE_COUNT
        ),
    )
    log_group = logs.LogGroup(
        scope,
        "JobFunctionLogGroup",
        retention=RETENTION_DAYS[route.log_retention_days],
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    suppressions.accept(log_group, suppressions.LOG_GROUP_DEFAULT_ENCRYPTION)
    role = iam.Role(
        scope,
        "JobFunctionRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"invoker route {route.name}: its jobs (split and assemble) only",
    )
    statements = [
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        ),
        # Inputs read, outputs and manifests written with multipart uploads (PutObject covers create,
        # upload part and complete), large job results read back.
        iam.PolicyStatement(
            sid="ReadAndWriteOwnJobs",
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[bucket.arn_for_objects(f"{JOBS_PREFIX}*")],
        ),
        iam.PolicyStatement(
            sid="SendJobRequests",
            actions=["sqs:SendMessage", "sqs:GetQueueAttributes"],
            resources=[request_queue.queue_arn],
        ),
        iam.PolicyStatement(sid="ContinueJobs", actions=["sqs:SendMessage"], resources=[control.queue_arn]),
        iam.PolicyStatement(
            sid="OwnJobAndLineItems",
            actions=list(JOB_TABLE_ACTIONS),
            resources=[ledger_table.table_arn],
            conditions={
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ledger_key_prefix(route.name)}*"]}
            },
        ),
        iam.PolicyStatement(
            sid="PublishJobEnds",
            actions=["events:PutEvents"],
            resources=[stack.format_arn(service="events", resource="event-bus", resource_name="default")],
        ),
    ]
    bucket_arn = nag.arn_reference(bucket)
    findings = [
        (
            f"Resource::{bucket_arn}/{JOBS_PREFIX}*",
            f"objects under {JOBS_PREFIX} of this route's own bucket: "
            "each job's input, output, manifest and large results are named by its job id, not known in advance.",
        )
    ]
    if not route.results.queue:
        # Bucket-only results: a large job result is the result document itself, under results/.
        statements.append(
            iam.PolicyStatement(
                sid="ReadLargeJobResults",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
            )
        )
        findings.append(
            (
                f"Resource::{bucket_arn}/{RESULTS_PREFIX}*",
                "s3:GetObject only, on result documents of this "
                "route's own bucket: the assembler reads a large result back by the key the function chose.",
            )
        )
    if capacity_table is not None and capacity_key is not None:
        statements.append(
            iam.PolicyStatement(
                sid="ReadRouteCapacity",
                actions=["dynamodb:GetItem"],
                resources=[capacity_table.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [capacity_key]}},
            )
        )
    for statement in statements:
        role.add_to_policy(statement)
    for finding, reason in findings:
        nag.acknowledge(role, "IAM5", reason, finding=finding)
    function = lambda_.Function(
        scope,
        "JobFunction",
        description=f"SQS -> SageMaker invoker, route {route.name}: job splitter and assembler",
        runtime=RUNTIMES[route.runtime],
        architecture=lambda_.Architecture.ARM_64,
        handler=JOBS_HANDLER,
        code=function_code(route.runtime),
        memory_size=512,
        timeout=cdk.Duration.seconds(timeout),
        environment=jobs_function_environment(
            route,
            request_queue_url=request_queue.queue_url,
            control_queue_url=control.queue_url,
            bucket=bucket.bucket_name,
            ledger_table=ledger_table.table_name,
            service=service_name,
            capacity_table=capacity_table.table_name if capacity_table is not None else None,
            capacity_key=capacity_key,
            payload_s3_prefix=payload_s3_prefix,
        ),
        role=role,
        log_group=log_group,
    )
    suppressions.accept(
        function,
        suppressions.FUNCTION_ENVIRONMENT_DEFAULT_KEY,
        suppressions.FUNCTION_NO_ASYNC_DLQ,
        suppressions.FUNCTION_NO_RESERVED_CONCURRENCY,
        suppressions.FUNCTION_OUTSIDE_VPC,
        suppressions.FUNCTION_ROLE_DEPENDENCY,
    )
    nag.acknowledge(
        function, "L1", f"The runtime is pinned on purpose ({route.runtime}), as the route's function."
    )
    # One control message per invocation: a split runs until its deadline, then continues in a new one.
    function.add_event_source(sources.SqsEventSource(control, batch_size=1, report_batch_item_failures=True))
    return RouteJobs(control, dead_letters, function, role, log_group)

"""One route: request queue -> function -> SageMaker endpoint, with its DLQ, results and alarms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sqs_sagemaker_invoker.infra import nag, suppressions
from sqs_sagemaker_invoker.infra.bundling import HANDLER
from sqs_sagemaker_invoker.infra.routes import (
    DEAD_LETTER_BODY_EXPIRY_DAYS,
    DEAD_LETTERS_PREFIX,
    QUEUE_RETENTION_SECONDS,
    REQUEST_PAYLOAD_EXPIRY_DAYS,
    REQUESTS_PREFIX,
    RESULTS_PREFIX,
    function_environment,
    payload_s3_prefix,
    queue_name,
)

if TYPE_CHECKING:
    from aws_cdk import aws_sns as sns

    from sqs_sagemaker_invoker.infra.routes import AppConfig, RouteConfig

QUEUE_RETENTION = cdk.Duration.seconds(QUEUE_RETENTION_SECONDS)

RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

RUNTIMES: dict[str, lambda_.Runtime] = {
    "python3.12": lambda_.Runtime.PYTHON_3_12,
    "python3.13": lambda_.Runtime.PYTHON_3_13,
}


class InvokerRoute(Construct):
    """Queues, optional results bucket, function, event source mapping, IAM and alarms of one route."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        route: RouteConfig,
        app_config: AppConfig,
        code: lambda_.Code,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.route = route
        cdk.Tags.of(self).add("invoker:route", route.name)

        self._add_queues(route, app_config)
        self._add_bucket(route)
        self._add_dead_letter_bucket()
        self._add_function(route, app_config, code)
        self._add_event_source(route)
        self._add_alarms(route, app_config, alarm_topic)

    def _add_queues(self, route: RouteConfig, app_config: AppConfig) -> None:
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=queue_name(app_config.stack_name, route.name, "dlq", fifo=route.fifo),
            fifo=route.fifo or None,
            content_based_deduplication=route.fifo or None,
            retention_period=QUEUE_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        suppressions.accept(self.dead_letter_queue, suppressions.QUEUE_SQS_MANAGED_KEY)
        fifo_options: dict[str, object] = {}
        if route.fifo:
            # High-throughput FIFO: ordering and deduplication per message group.
            fifo_options = {
                "fifo": True,
                "content_based_deduplication": True,
                "deduplication_scope": sqs.DeduplicationScope.MESSAGE_GROUP,
                "fifo_throughput_limit": sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            }
        self.request_queue = sqs.Queue(
            self,
            "RequestQueue",
            queue_name=queue_name(app_config.stack_name, route.name, "requests", fifo=route.fifo),
            # Derived, never configured: a batch can never become visible again while it still runs.
            visibility_timeout=cdk.Duration.seconds(route.visibility_timeout_seconds),
            retention_period=QUEUE_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=route.max_receive_count
            ),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            **fifo_options,  # type: ignore[arg-type]
        )
        suppressions.accept(self.request_queue, suppressions.QUEUE_SQS_MANAGED_KEY)

        self.results_queue: sqs.Queue | None = None
        if route.results.queue:
            # Same type as the request queue, so a FIFO route keeps its results ordered per group.
            self.results_queue = sqs.Queue(
                self,
                "ResultsQueue",
                queue_name=queue_name(app_config.stack_name, route.name, "results", fifo=route.fifo),
                fifo=route.fifo or None,
                content_based_deduplication=route.fifo or None,
                retention_period=QUEUE_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            suppressions.accept(self.results_queue, suppressions.QUEUE_SQS_MANAGED_KEY)
            nag.acknowledge(
                self.results_queue,
                "SQS3",
                "Output queue read by clients; the invoker never consumes it, so there is nothing to "
                "dead-letter (failed requests go to the route's DLQ).",
            )

    def _add_bucket(self, route: RouteConfig) -> None:
        self.bucket: s3.Bucket | None = None
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
            self.bucket = s3.Bucket(
                self,
                "ResultsBucket",
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                lifecycle_rules=rules,
                # Kept on stack deletion: results may still be unread (objects expire on their own).
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            suppressions.accept(
                self.bucket, suppressions.BUCKET_ACCESS_LOGS, suppressions.BUCKET_NO_VERSIONING
            )

    def _add_dead_letter_bucket(self) -> None:
        """Where the function keeps a dead-letter body too large for SQS with its reason: the results
        bucket when the route has one, else a small bucket of its own."""
        if self.bucket is not None:
            self.dead_letter_bucket = self.bucket
            return
        self.dead_letter_bucket = s3.Bucket(
            self,
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
            self.dead_letter_bucket, suppressions.BUCKET_ACCESS_LOGS, suppressions.BUCKET_NO_VERSIONING
        )

    def _add_function(self, route: RouteConfig, app_config: AppConfig, code: lambda_.Code) -> None:
        stack = cdk.Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "FunctionLogGroup",
            retention=RETENTION_DAYS[route.log_retention_days],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        suppressions.accept(self.log_group, suppressions.LOG_GROUP_DEFAULT_ENCRYPTION)
        # Own role with inline, scoped statements (no AWSLambdaBasicExecutionRole: it allows every
        # log group of the account).
        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"invoker route {route.name}: endpoint {route.endpoint_name} only",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # GetAtt Arn ends in ":*": this log group's streams only.
                resources=[self.log_group.log_group_arn],
            )
        )
        self.endpoint_arn = stack.format_arn(
            service="sagemaker",
            resource="endpoint",
            resource_name=route.endpoint_name_lower,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeOwnEndpoint",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[self.endpoint_arn],
            )
        )
        # The event source mapping grants receive/delete/change-visibility on the request queue; the
        # function calls ChangeMessageVisibility itself (backoff), so that grant is a dependency: say it.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="BackoffOnRequestQueue",
                actions=["sqs:ChangeMessageVisibility"],
                resources=[self.request_queue.queue_arn],
            )
        )
        send_to = [self.dead_letter_queue.queue_arn]
        if self.results_queue is not None:
            send_to.append(self.results_queue.queue_arn)
        self.role.add_to_policy(
            iam.PolicyStatement(sid="SendToOwnQueues", actions=["sqs:SendMessage"], resources=send_to)
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOversizedDeadLetters",
                actions=["s3:PutObject"],
                resources=[self.dead_letter_bucket.arn_for_objects(f"{DEAD_LETTERS_PREFIX}*")],
            )
        )
        nag.acknowledge(
            self.role,
            "IAM5",
            f"s3:PutObject only, under {DEAD_LETTERS_PREFIX} of this route's own bucket: the function names "
            "each stored dead-letter body by its message id, so keys are not known in advance.",
            finding=f"Resource::{nag.arn_reference(self.dead_letter_bucket)}/{DEAD_LETTERS_PREFIX}*",
        )
        if self.bucket is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="WriteResults",
                    actions=["s3:PutObject"],
                    resources=[self.bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
                )
            )
            bucket_arn = nag.arn_reference(self.bucket)
            nag.acknowledge(
                self.role,
                "IAM5",
                f"s3:PutObject only, on result keys of this route's own bucket ({RESULTS_PREFIX}*): "
                "the function names each result object by request, so keys are not known in advance.",
                finding=f"Resource::{bucket_arn}/{RESULTS_PREFIX}*",
            )
            if route.large_payloads:
                self.role.add_to_policy(
                    iam.PolicyStatement(
                        sid="ReadRequestPayloads",
                        actions=["s3:GetObject"],
                        resources=[self.bucket.arn_for_objects(f"{REQUESTS_PREFIX}*")],
                    )
                )
                nag.acknowledge(
                    self.role,
                    "IAM5",
                    f"s3:GetObject only, on request payloads under {REQUESTS_PREFIX} of this route's own "
                    "bucket: clients choose each payload's key (bodyS3Uri), the function checks the prefix.",
                    finding=f"Resource::{bucket_arn}/{REQUESTS_PREFIX}*",
                )

        self.payload_s3_prefix: str | None = (
            payload_s3_prefix(self.bucket.bucket_name)
            if self.bucket is not None and route.large_payloads
            else None
        )
        environment = function_environment(
            route,
            dlq_url=self.dead_letter_queue.queue_url,
            dead_letter_bucket=self.dead_letter_bucket.bucket_name,
            results_queue_url=self.results_queue.queue_url if self.results_queue else None,
            results_bucket=self.bucket.bucket_name if self.bucket else None,
            payload_s3_prefix=self.payload_s3_prefix,
            namespace=app_config.metrics_namespace,
            service=app_config.service_name,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=f"SQS -> SageMaker invoker, route {route.name}, endpoint {route.endpoint_name}",
            runtime=RUNTIMES[route.runtime],
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=code,
            memory_size=route.memory_mb,
            timeout=cdk.Duration.seconds(route.timeout_seconds),
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if route.tracing else lambda_.Tracing.DISABLED,
        )
        if route.tracing:
            nag.acknowledge(
                self.role,
                "IAM5",
                "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions, "
                "so active tracing needs Resource '*' for those two actions only.",
                finding="Resource::*",
            )
        suppressions.accept(
            self.function,
            suppressions.FUNCTION_ENVIRONMENT_DEFAULT_KEY,
            suppressions.FUNCTION_NO_ASYNC_DLQ,
            suppressions.FUNCTION_NO_RESERVED_CONCURRENCY,
            suppressions.FUNCTION_OUTSIDE_VPC,
            suppressions.FUNCTION_ROLE_DEPENDENCY,
        )
        nag.acknowledge(
            self.function,
            "L1",
            f"The runtime is pinned on purpose ({route.runtime}, set per route in cdk.json): it is the "
            "Python the function's tests and its bundled wheels target; upgrade it deliberately.",
        )

    def _add_event_source(self, route: RouteConfig) -> None:
        event_source = sources.SqsEventSource(
            self.request_queue,
            batch_size=route.batch_size,
            max_batching_window=(
                cdk.Duration.seconds(route.max_batching_window_seconds)
                if route.max_batching_window_seconds > 0
                else None
            ),
            # Without it Lambda ignores batchItemFailures and retries or deletes whole batches.
            report_batch_item_failures=True,
            max_concurrency=route.max_concurrency,
            provisioned_poller_config=(
                lambda_.ProvisionedPollerConfig(
                    minimum_pollers=route.provisioned_pollers.minimum,
                    maximum_pollers=route.provisioned_pollers.maximum,
                )
                if route.provisioned_pollers is not None
                else None
            ),
        )
        self.function.add_event_source(event_source)

    def _add_alarms(self, route: RouteConfig, app_config: AppConfig, alarm_topic: sns.ITopic) -> None:
        action = cw_actions.SnsAction(alarm_topic)
        prefix = f"{app_config.stack_name}-{route.name}"
        self.alarms = [
            cw.Alarm(
                self,
                "DeadLetterQueueNotEmpty",
                alarm_name=f"{prefix}-dead-letters",
                alarm_description=(
                    f"Route {route.name}: messages in the dead-letter queue. Query "
                    "'dead-letters-by-reason' in Logs Insights, fix, then redrive."
                ),
                metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(1), statistic="Maximum"
                ),
                threshold=0,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "OldestRequestAge",
                alarm_name=f"{prefix}-oldest-request-age",
                alarm_description=(
                    f"Route {route.name}: a request waited more than {route.oldest_message_alarm_seconds} s "
                    "(endpoint down or too slow, or the mapping's concurrency too low)."
                ),
                metric=self.request_queue.metric_approximate_age_of_oldest_message(
                    period=cdk.Duration.minutes(1), statistic="Maximum"
                ),
                threshold=route.oldest_message_alarm_seconds,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "FunctionErrors",
                alarm_name=f"{prefix}-function-errors",
                alarm_description=(
                    f"Route {route.name}: the function failed whole batches (exception or timeout); "
                    "see its log group."
                ),
                metric=self.function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "FunctionThrottles",
                alarm_name=f"{prefix}-function-throttles",
                alarm_description=(
                    f"Route {route.name}: Lambda throttled the function (account or reserved "
                    "concurrency exhausted)."
                ),
                metric=self.function.metric_throttles(period=cdk.Duration.minutes(5), statistic="Sum"),
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)


def _dead_letter_expiry() -> s3.LifecycleRule:
    return s3.LifecycleRule(
        id="expire-dead-letter-bodies",
        prefix=DEAD_LETTERS_PREFIX,
        expiration=cdk.Duration.days(DEAD_LETTER_BODY_EXPIRY_DAYS),
    )

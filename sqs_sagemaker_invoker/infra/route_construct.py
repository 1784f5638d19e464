"""SageMakerInvokerRoute, the reusable construct: request queue -> function -> SageMaker endpoint, with
its dead-letter queue, results, alarms and stack outputs. docs/construct.md shows how to use it from an
app of your own; this repository's stack builds each route of cdk.json through it too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct
from invoker.contract import DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME

from sqs_sagemaker_invoker.infra import capacity, nag, suppressions
from sqs_sagemaker_invoker.infra.bundling import HANDLER, function_code
from sqs_sagemaker_invoker.infra.config import (
    RouteConfigError,
    capacity_key,
    function_environment,
    payload_s3_prefix,
)
from sqs_sagemaker_invoker.infra.config_loader import check_metric_names
from sqs_sagemaker_invoker.infra.construct_props import (
    NESTED_PROP_KEYS,
    PROP_KEYS,
    ScalingProps,
    route_config_from_props,
)
from sqs_sagemaker_invoker.infra.function_settings import RETENTION_DAYS, RUNTIMES
from sqs_sagemaker_invoker.infra.jobs_function import RouteJobs, add_jobs
from sqs_sagemaker_invoker.infra.ledger_table import grant_route
from sqs_sagemaker_invoker.infra.ledger_table import ledger_table as ledger_table_of
from sqs_sagemaker_invoker.infra.outputs_and_alarms import (
    RouteOutput,
    Watched,
    route_alarms,
    route_output_description,
    route_output_key,
)
from sqs_sagemaker_invoker.infra.route_grants import grant_buckets
from sqs_sagemaker_invoker.infra.route_storage import add_buckets, add_queues

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_sns as sns
    from invoker.contract import CapacityMode

    from sqs_sagemaker_invoker.infra.config import RouteConfig

# The keyword props that are route settings (the rest wire the route into its host stack).
_ROUTE_SETTINGS = frozenset(PROP_KEYS) | frozenset(NESTED_PROP_KEYS)

_COMPARISONS = {
    "GreaterThanThreshold": cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
    "GreaterThanOrEqualToThreshold": cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
}


def kebab_case(construct_id: str) -> str:
    """ "BulkScoring" -> "bulk-scoring": a route's default name, from its construct id."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", construct_id).lower()


class SageMakerInvokerRoute(Construct):
    """One route: SQS request queue -> Lambda function (Powertools batch) -> SageMaker InvokeEndpoint.

    Creates the request queue, its dead-letter queue, the results queue and/or bucket, the function with
    its own least-privilege role and log group, the event source mapping, four alarms and the route's
    stack outputs (`Route<Name>RequestQueueUrl`, ...). Every prop is validated at synth by the same rules
    as a route of cdk.json (an invalid one raises RouteConfigError naming the prop). Physical names
    derive from the host stack's name, so two stacks never collide. Call `add_nag_checks(app)` once to run
    cdk-nag's AwsSolutions checks; this construct's accepted findings are acknowledged with reasons.
    """

    def __init__(  # noqa: PLR0913 - one keyword per route setting, as cdk.json has one key per setting
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        route_name: str | None = None,
        fifo: bool = False,
        batch_size: int = 10,
        max_batching_window_seconds: int = 0,
        max_concurrency: int | None = None,
        provisioned_pollers: tuple[int, int] | None = None,
        endpoint_calls_in_flight: int = 16,
        result_sends_in_flight: int = 4,
        memory_mb: int = 512,
        timeout_seconds: int = 180,
        visibility_timeout_multiplier: int = 6,
        max_receive_count: int = 10,
        retry_base_seconds: int = 2,
        retry_max_seconds: int = 900,
        message_format: Literal["envelope", "raw"] = "envelope",
        results_queue: bool = True,
        results_bucket: bool = False,
        results_expire_days: int = 14,
        large_payloads: bool = False,
        oldest_message_alarm_seconds: int = 1800,
        read_timeout_seconds: int = 70,
        deadline_margin_seconds: int = 5,
        log_retention_days: int = 30,
        log_level: str = "INFO",
        log_payloads: bool = False,
        tracing: bool = False,
        runtime: str = "python3.12",
        capacity_mode: CapacityMode | Literal["shared", "per_instance"] = "shared",
        concurrency_per_instance: int = 4,
        capacity_variant_name: str | None = None,
        inference_component_name: str | None = None,
        capacity_refresh_seconds: int = 10,
        scaling: ScalingProps | Mapping[str, Any] | None = None,
        capacity_table: dynamodb.ITable | None = None,
        alarm_topic: sns.ITopic | None = None,
        metrics_namespace: str = DEFAULT_METRICS_NAMESPACE,
        service_name: str = DEFAULT_SERVICE_NAME,
        ledger: bool = False,
        ledger_dedupe_seconds: int = 86_400,
        ledger_expire_days: int = 30,
        ledger_table: dynamodb.ITable | None = None,
        jobs: bool = False,
        jobs_max_backlog: int | None = None,
        jobs_join: Literal["input", "none"] = "none",
        jobs_watch_seconds: int = 10,
        jobs_timeout_seconds: int = 900,
    ) -> None:
        """`route_name` defaults to the construct id in kebab case ("BulkScoring" -> "bulk-scoring");
        `max_concurrency` (the event source mapping's cap on concurrent function instances) to 2, or no
        cap with `provisioned_pollers=(min, max)`; `alarm_topic` receives the alarms' state changes. A
        shared-capacity route (the default) keeps its budget in `capacity_table`, by default the host
        stack's own capacity table (created once per stack). `ledger=True` records each request in
        `ledger_table` (default: the stack's own, created once). See docs/construct.md for every prop."""
        # The route settings among the parameters, read before anything else is bound.
        settings: dict[str, Any] = {key: value for key, value in locals().items() if key in _ROUTE_SETTINGS}
        settings["route_name"] = route_name or kebab_case(construct_id)
        where = "SageMakerInvokerRoute " + "/".join(p for p in (scope.node.path, construct_id) if p)
        # Checked before the construct joins the tree: an invalid route leaves no half-built node behind.
        route = route_config_from_props(where, settings)
        check_metric_names(metrics_namespace, service_name, path=where)
        if capacity_table is not None and not route.capacity.shared:
            raise RouteConfigError(
                f"{where}: capacity_table is only used with capacity_mode shared, not {route.capacity.mode.value}"
            )
        stack = cdk.Stack.of(scope)
        if stack.node.try_find_child(route_output_key(route.name, RouteOutput.REQUEST_QUEUE_URL)) is not None:
            raise RouteConfigError(
                f"{where}: route_name {route.name!r} is already a route of stack {stack.stack_name} "
                f"(or shares its output prefix {route.output_prefix!r}); give each route its own name"
            )
        super().__init__(scope, construct_id)
        self.config: RouteConfig = route
        cdk.Tags.of(self).add("invoker:route", route.name)
        # The host stack's template: CDK writes its Fn::Join, every route agrees (idempotent).
        suppressions.accept(stack, suppressions.CDK_JOIN_STYLE)

        queues = add_queues(self, route, stack.stack_name)
        self.request_queue, self.dead_letter_queue = queues.request, queues.dead_letter
        self.results_queue = queues.results
        buckets = add_buckets(self, route)
        self.bucket, self.dead_letter_bucket = buckets.results, buckets.dead_letter
        # One item per route in a table the whole stack shares, unless the caller brings a table.
        self.capacity_table: dynamodb.ITable | None = None
        self.capacity_key: str | None = None
        if route.capacity.shared:
            self.capacity_table = capacity_table or capacity.stack_capacity_table(self)
            self.capacity_key = capacity_key(stack.stack_name, route.name)
        self.ledger_table: dynamodb.ITable | None = None
        if route.ledger.enabled:
            self.ledger_table = ledger_table if ledger_table is not None else ledger_table_of(self)
        self._add_function(route, metrics_namespace=metrics_namespace, service_name=service_name)
        self._add_event_source(route)
        self.jobs: RouteJobs | None = None
        if route.jobs.enabled:
            # The route schema requires both with jobs.
            assert self.bucket is not None
            assert self.ledger_table is not None
            self.jobs = add_jobs(
                self,
                route,
                stack_name=stack.stack_name,
                request_queue=self.request_queue,
                bucket=self.bucket,
                ledger_table=self.ledger_table,
                capacity_table=self.capacity_table,
                capacity_key=self.capacity_key,
                payload_s3_prefix=self.payload_s3_prefix,
                service_name=service_name,
            )
        self._add_alarms(route, stack.stack_name, alarm_topic)
        self.scaling: capacity.RouteScaling | None = None
        if route.scaling is not None:
            self.scaling = capacity.add_scaling(
                self,
                route,
                stack_name=stack.stack_name,
                request_queue_name=self.request_queue.queue_name,
                namespace=metrics_namespace,
                service=service_name,
            )
        self._add_outputs(route, stack)

    @staticmethod
    def add_nag_checks(scope: Construct) -> None:
        """Run cdk-nag's AwsSolutions checks on scope (your app) at synth: unacknowledged findings fail it."""
        nag.add_checks(scope)

    def _add_function(self, route: RouteConfig, *, metrics_namespace: str, service_name: str) -> None:
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
        grant_buckets(self.role, route, bucket=self.bucket, dead_letter_bucket=self.dead_letter_bucket)
        if self.capacity_table is not None and self.capacity_key is not None:
            capacity.grant_capacity(
                self.role,
                self.capacity_table,
                key=self.capacity_key,
                route=route,
                endpoint_arn=self.endpoint_arn,
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
            namespace=metrics_namespace,
            service=service_name,
            capacity_table=self.capacity_table.table_name if self.capacity_table is not None else None,
            capacity_key=self.capacity_key,
            ledger_table=self.ledger_table.table_name if self.ledger_table is not None else None,
        )
        if self.ledger_table is not None:
            grant_route(self.ledger_table, self.role, route.name)
        self.function = lambda_.Function(
            self,
            "Function",
            description=f"SQS -> SageMaker invoker, route {route.name}, endpoint {route.endpoint_name}",
            runtime=RUNTIMES[route.runtime],
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=function_code(route.runtime),
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
            f"The runtime is pinned on purpose ({route.runtime}, a route setting): it is the "
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

    def _add_alarms(self, route: RouteConfig, stack_name: str, alarm_topic: sns.ITopic | None) -> None:
        # Built from the table the local stack builds its alarms from too (outputs_and_alarms.ALARMS).
        watched = {
            Watched.REQUEST_QUEUE: self.request_queue.queue_name,
            Watched.DEAD_LETTER_QUEUE: self.dead_letter_queue.queue_name,
            Watched.FUNCTION: self.function.function_name,
        }
        self.alarms: list[cw.Alarm] = []
        for alarm in route_alarms(stack_name, route):
            spec = alarm.spec
            metric = cw.Metric(
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions_map={alarm.dimension: watched[spec.watches]},
                period=cdk.Duration.seconds(spec.period_seconds),
                statistic=spec.statistic,
            )
            self.alarms.append(
                cw.Alarm(
                    self,
                    spec.construct_id,
                    alarm_name=alarm.name,
                    alarm_description=alarm.description,
                    metric=metric,
                    threshold=alarm.threshold,
                    comparison_operator=_COMPARISONS[spec.comparison],
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        if alarm_topic is not None:
            action = cw_actions.SnsAction(alarm_topic)
            for created in self.alarms:
                created.add_alarm_action(action)
                created.add_ok_action(action)

    def _add_outputs(self, route: RouteConfig, stack: cdk.Stack) -> None:
        # On the stack, not this construct: output keys are `Route<Name><Output>` whatever the nesting
        # (the CLI and docs/design.md's "Stack outputs" look them up by those keys).
        values: dict[RouteOutput, str | None] = {
            RouteOutput.ENDPOINT_NAME: route.endpoint_name,
            RouteOutput.REQUEST_QUEUE_URL: self.request_queue.queue_url,
            RouteOutput.REQUEST_QUEUE_ARN: self.request_queue.queue_arn,
            RouteOutput.DEAD_LETTER_QUEUE_URL: self.dead_letter_queue.queue_url,
            RouteOutput.RESULTS_QUEUE_URL: self.results_queue.queue_url if self.results_queue else None,
            RouteOutput.RESULTS_BUCKET_NAME: self.bucket.bucket_name if self.bucket else None,
            RouteOutput.PAYLOAD_S3_PREFIX: self.payload_s3_prefix,
            RouteOutput.FUNCTION_NAME: self.function.function_name,
            RouteOutput.LOG_GROUP_NAME: self.log_group.log_group_name,
            RouteOutput.LEDGER_TABLE_NAME: self.ledger_table.table_name if self.ledger_table else None,
            RouteOutput.JOB_CONTROL_QUEUE_URL: self.jobs.control_queue.queue_url if self.jobs else None,
            RouteOutput.JOB_FUNCTION_NAME: self.jobs.function.function_name if self.jobs else None,
        }
        for output, value in values.items():
            if value is not None:
                cdk.CfnOutput(
                    stack,
                    route_output_key(route.name, output),
                    value=value,
                    description=route_output_description(route.name, output),
                )

"""The stack's outputs and each route's alarms, as data: one table that the CDK stack and the local stack
both build from, and that the CLI reads output keys from.

Pure Python on purpose (no CDK import): the local stack creates the same alarms in moto's CloudWatch and
writes the same outputs, so neither can drift from the deployed stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

# Defined beside the route schema, which names its outputs with it.
from sqs_sagemaker_invoker.infra.config import output_prefix

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.config import RouteConfig


class RouteOutput(StrEnum):
    """A route's stack output, keyed `<output_prefix(route)><value>` (e.g. RouteDemoRequestQueueUrl)."""

    ENDPOINT_NAME = "EndpointName"
    REQUEST_QUEUE_URL = "RequestQueueUrl"
    REQUEST_QUEUE_ARN = "RequestQueueArn"
    DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
    RESULTS_QUEUE_URL = "ResultsQueueUrl"  # only with results.queue
    RESULTS_BUCKET_NAME = "ResultsBucketName"  # only with results.bucket
    PAYLOAD_S3_PREFIX = "PayloadS3Prefix"  # only with largePayloads
    FUNCTION_NAME = "FunctionName"
    LOG_GROUP_NAME = "LogGroupName"
    LEDGER_TABLE_NAME = "LedgerTableName"  # only with ledger.enabled
    JOB_CONTROL_QUEUE_URL = "JobControlQueueUrl"  # only with jobs.enabled
    JOB_FUNCTION_NAME = "JobFunctionName"  # only with jobs.enabled


ROUTE_OUTPUT_DESCRIPTIONS: Final[dict[RouteOutput, str]] = {
    RouteOutput.ENDPOINT_NAME: "SageMaker endpoint the route invokes",
    RouteOutput.REQUEST_QUEUE_URL: "send requests here",
    RouteOutput.REQUEST_QUEUE_ARN: "request queue ARN",
    RouteOutput.DEAD_LETTER_QUEUE_URL: "dead-lettered requests",
    RouteOutput.RESULTS_QUEUE_URL: "results",
    RouteOutput.RESULTS_BUCKET_NAME: "results bucket (results/)",
    RouteOutput.PAYLOAD_S3_PREFIX: "bodyS3Uri must start with this",
    RouteOutput.FUNCTION_NAME: "invoker function",
    RouteOutput.LOG_GROUP_NAME: "the function's log group",
    RouteOutput.LEDGER_TABLE_NAME: "request ledger table (items keyed <route>/<request id>)",
    RouteOutput.JOB_CONTROL_QUEUE_URL: "job control queue (invoker job submit starts a job's split here)",
    RouteOutput.JOB_FUNCTION_NAME: "job splitter and assembler function",
}


class StackOutput(StrEnum):
    """Outputs of the whole stack (not of one route)."""

    DASHBOARD_NAME = "DashboardName"
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    CAPACITY_TABLE_NAME = "CapacityTableName"  # only with a shared-capacity route


STACK_OUTPUT_DESCRIPTIONS: Final[dict[StackOutput, str]] = {
    StackOutput.DASHBOARD_NAME: "CloudWatch dashboard",
    StackOutput.ALARM_TOPIC_ARN: "SNS topic of the alarms",
    StackOutput.CAPACITY_TABLE_NAME: "DynamoDB table of the shared-capacity routes' budgets",
}


def route_output_key(route_name: str, output: RouteOutput) -> str:
    return output_prefix(route_name) + output.value


def route_output_description(route_name: str, output: RouteOutput) -> str:
    return f"route={route_name}; {ROUTE_OUTPUT_DESCRIPTIONS[output]}"


# --------------------------------------------------------------------------------------------------
# Alarms


class Watched(StrEnum):
    """The route resource an alarm's metric belongs to."""

    REQUEST_QUEUE = "request_queue"
    DEAD_LETTER_QUEUE = "dead_letter_queue"
    FUNCTION = "function"


# The metric dimension that names the watched resource.
DIMENSION: Final[dict[Watched, str]] = {
    Watched.REQUEST_QUEUE: "QueueName",
    Watched.DEAD_LETTER_QUEUE: "QueueName",
    Watched.FUNCTION: "FunctionName",
}
# A quiet queue or an idle function publishes no data points: that is not a failure.
TREAT_MISSING_DATA: Final = "notBreaching"


@dataclass(frozen=True)
class AlarmSpec:
    construct_id: str  # the CDK construct id (its logical id is what deployed stacks know)
    name_suffix: str  # alarm name "<stack>-<route>-<suffix>"; the alarm topic admits "<stack>-*"
    watches: Watched
    namespace: str
    metric_name: str
    statistic: str
    period_seconds: int
    evaluation_periods: int
    comparison: str  # a CloudWatch ComparisonOperator
    threshold: int | None  # None: the route's oldest_message_alarm_seconds
    description: str  # str.format'ed with route=RouteConfig
    datapoints_to_alarm: int | None = None


ALARMS: Final[tuple[AlarmSpec, ...]] = (
    AlarmSpec(
        construct_id="DeadLetterQueueNotEmpty",
        name_suffix="dead-letters",
        watches=Watched.DEAD_LETTER_QUEUE,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        statistic="Maximum",
        period_seconds=60,
        evaluation_periods=1,
        comparison="GreaterThanThreshold",
        threshold=0,
        description=(
            "Route {route.name}: messages in the dead-letter queue. Query "
            "'dead-letters-by-reason' in Logs Insights, fix, then redrive."
        ),
    ),
    AlarmSpec(
        construct_id="OldestRequestAge",
        name_suffix="oldest-request-age",
        watches=Watched.REQUEST_QUEUE,
        namespace="AWS/SQS",
        metric_name="ApproximateAgeOfOldestMessage",
        statistic="Maximum",
        period_seconds=60,
        evaluation_periods=3,
        datapoints_to_alarm=3,
        comparison="GreaterThanThreshold",
        threshold=None,
        description=(
            "Route {route.name}: a request waited more than {route.oldest_message_alarm_seconds} s "
            "(endpoint down or too slow, or the mapping's concurrency too low)."
        ),
    ),
    AlarmSpec(
        construct_id="FunctionErrors",
        name_suffix="function-errors",
        watches=Watched.FUNCTION,
        namespace="AWS/Lambda",
        metric_name="Errors",
        statistic="Sum",
        period_seconds=300,
        evaluation_periods=1,
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        description=(
            "Route {route.name}: the function failed whole batches (exception or timeout); see its log group."
        ),
    ),
    AlarmSpec(
        construct_id="FunctionThrottles",
        name_suffix="function-throttles",
        watches=Watched.FUNCTION,
        namespace="AWS/Lambda",
        metric_name="Throttles",
        statistic="Sum",
        period_seconds=300,
        evaluation_periods=1,
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        description=(
            "Route {route.name}: Lambda throttled the function (account or reserved concurrency exhausted)."
        ),
    ),
)


@dataclass(frozen=True)
class RouteAlarm:
    """One alarm of one route, with its name, description and threshold resolved."""

    spec: AlarmSpec
    name: str
    description: str
    threshold: int

    @property
    def dimension(self) -> str:
        return DIMENSION[self.spec.watches]


def route_alarms(stack_name: str, route: RouteConfig) -> tuple[RouteAlarm, ...]:
    return tuple(
        RouteAlarm(
            spec=spec,
            name=f"{stack_name}-{route.name}-{spec.name_suffix}",
            description=spec.description.format(route=route),
            threshold=route.oldest_message_alarm_seconds if spec.threshold is None else spec.threshold,
        )
        for spec in ALARMS
    )

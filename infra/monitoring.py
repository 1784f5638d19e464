"""The stack's dashboard and Logs Insights saved queries.

The function's metrics (EMF, namespace POWERTOOLS_METRICS_NAMESPACE): Invocations, Succeeded, Retried,
DeadLettered, InvocationLatency (ms), InvocationReattempts, BatchSize, ConcurrencyLimit with dimensions
{endpoint, service}; Retried and DeadLettered also with {endpoint, reason, service}. Powertools adds the
`service` dimension (POWERTOOLS_SERVICE_NAME) to every metric, so the graphs name it too: CloudWatch
identifies a metric by its exact dimension set. Its logs are Powertools JSON lines with the fields
disposition, reason, request_id, message_id, endpoint, receive_count, latency_ms, original_status_code,
log_stream_arn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_logs as logs

if TYPE_CHECKING:
    from constructs import Construct

    from infra.route import InvokerRoute

ONE_MINUTE = cdk.Duration.minutes(1)
WIDTH = 8  # three widgets per 24-column row
HEIGHT = 6
ENDPOINT_DIMENSION = "endpoint"
REASON_DIMENSION = "reason"
SERVICE_DIMENSION = "service"


@dataclass(frozen=True)
class MetricNames:
    namespace: str  # POWERTOOLS_METRICS_NAMESPACE
    service: str  # POWERTOOLS_SERVICE_NAME, a dimension of every metric


def invoker_metric(
    names: MetricNames, endpoint: str, name: str, statistic: str, label: str | None = None
) -> cw.Metric:
    return cw.Metric(
        namespace=names.namespace,
        metric_name=name,
        dimensions_map={ENDPOINT_DIMENSION: endpoint, SERVICE_DIMENSION: names.service},
        statistic=statistic,
        period=ONE_MINUTE,
        label=label or name,
    )


def by_reason(names: MetricNames, endpoint: str, name: str) -> cw.MathExpression:
    """One line per reason value, found at view time (reasons are open-ended, so no fixed list here)."""
    # The schema {namespace, endpoint, reason, service} matches exactly the per-reason series.
    schema = f'{{"{names.namespace}",{ENDPOINT_DIMENSION},{REASON_DIMENSION},{SERVICE_DIMENSION}}}'
    terms = f'MetricName="{name}" {ENDPOINT_DIMENSION}="{endpoint}" {SERVICE_DIMENSION}="{names.service}"'
    return cw.MathExpression(
        expression=f"SEARCH('{schema} {terms}', 'Sum', 60)",
        using_metrics={},
        label="${PROP('Dim.reason')}",
        period=ONE_MINUTE,
    )


def route_widgets(route: InvokerRoute, names: MetricNames) -> list[list[cw.IWidget]]:
    cfg = route.route
    endpoint = cfg.endpoint_name
    fn = route.function
    header = cw.TextWidget(
        markdown=(
            f"## Route `{cfg.name}` → endpoint `{endpoint}`\n"
            f"{'FIFO' if cfg.fifo else 'standard'} queue, batch {cfg.batch_size}, "
            f"max receive count {cfg.max_receive_count}, function timeout {cfg.timeout_seconds} s"
        ),
        width=24,
        height=2,
    )
    queues = cw.GraphWidget(
        title=f"{cfg.name}: queue depth",
        left=[
            route.request_queue.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic="Maximum", label="requests waiting"
            ),
            route.request_queue.metric_approximate_number_of_messages_not_visible(
                period=ONE_MINUTE, statistic="Maximum", label="requests in flight or backing off"
            ),
            route.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic="Maximum", label="dead letters (DLQ)", color=cw.Color.RED
            ),
        ],
        width=WIDTH,
        height=HEIGHT,
    )
    age = cw.GraphWidget(
        title=f"{cfg.name}: age of oldest request (s)",
        left=[
            route.request_queue.metric_approximate_age_of_oldest_message(
                period=ONE_MINUTE, statistic="Maximum", label="oldest request"
            )
        ],
        left_annotations=[
            cw.HorizontalAnnotation(value=cfg.oldest_message_alarm_seconds, label="alarm", color=cw.Color.RED)
        ],
        width=WIDTH,
        height=HEIGHT,
    )
    outcomes = cw.GraphWidget(
        title=f"{cfg.name}: requests",
        left=[
            invoker_metric(names, endpoint, "Invocations", "Sum", "endpoint calls"),
            invoker_metric(names, endpoint, "Succeeded", "Sum", "succeeded"),
            invoker_metric(names, endpoint, "Retried", "Sum", "retried"),
            invoker_metric(names, endpoint, "DeadLettered", "Sum", "dead-lettered"),
        ],
        right=[invoker_metric(names, endpoint, "InvocationReattempts", "Sum", "SDK re-attempts")],
        width=WIDTH,
        height=HEIGHT,
    )
    latency = cw.GraphWidget(
        title=f"{cfg.name}: InvokeEndpoint latency (ms)",
        left=[invoker_metric(names, endpoint, "InvocationLatency", p, p) for p in ("p50", "p90", "p99")],
        width=WIDTH,
        height=HEIGHT,
    )
    retried = cw.GraphWidget(
        title=f"{cfg.name}: retried by reason",
        left=[by_reason(names, endpoint, "Retried")],
        width=WIDTH,
        height=HEIGHT,
    )
    dead = cw.GraphWidget(
        title=f"{cfg.name}: dead-lettered by reason",
        left=[by_reason(names, endpoint, "DeadLettered")],
        width=WIDTH,
        height=HEIGHT,
    )
    duration = cw.GraphWidget(
        title=f"{cfg.name}: function duration (ms)",
        left=[fn.metric_duration(period=ONE_MINUTE, statistic=s, label=s) for s in ("p50", "p99", "Maximum")],
        left_annotations=[
            cw.HorizontalAnnotation(value=cfg.timeout_seconds * 1000, label="timeout", color=cw.Color.RED)
        ],
        width=WIDTH,
        height=HEIGHT,
    )
    concurrency = cw.GraphWidget(
        title=f"{cfg.name}: concurrency",
        left=[
            fn.metric(
                "ConcurrentExecutions", period=ONE_MINUTE, statistic="Maximum", label="function instances"
            ),
        ],
        right=[
            invoker_metric(names, endpoint, "ConcurrencyLimit", "Maximum", "in-function limit"),
            invoker_metric(names, endpoint, "BatchSize", "Average", "batch size (avg)"),
        ],
        width=WIDTH,
        height=HEIGHT,
    )
    errors = cw.GraphWidget(
        title=f"{cfg.name}: function invocations, errors, throttles",
        left=[fn.metric_invocations(period=ONE_MINUTE, statistic="Sum", label="invocations")],
        right=[
            fn.metric_errors(period=ONE_MINUTE, statistic="Sum", label="errors", color=cw.Color.RED),
            fn.metric_throttles(period=ONE_MINUTE, statistic="Sum", label="throttles", color=cw.Color.ORANGE),
        ],
        width=WIDTH,
        height=HEIGHT,
    )
    return [[header], [queues, age, outcomes], [latency, retried, dead], [duration, concurrency, errors]]


def add_dashboard(
    scope: Construct, name: str, routes: list[InvokerRoute], names: MetricNames
) -> cw.Dashboard:
    dashboard = cw.Dashboard(scope, "Dashboard", dashboard_name=name, default_interval=cdk.Duration.hours(3))
    for route in routes:
        for row in route_widgets(route, names):
            dashboard.add_widgets(*row)
    return dashboard


QUERY_DEAD_LETTERS = "dead-letters-by-reason"
QUERY_SLOWEST = "slowest-requests"
QUERY_ONE_REQUEST = "one-request"
REQUEST_ID_PLACEHOLDER = "REPLACE-WITH-REQUEST-ID"
SLOWEST_FIELDS = [
    "@timestamp", "endpoint", "request_id", "message_id", "latency_ms", "disposition", "reason", "receive_count",
]  # fmt: skip
ONE_REQUEST_FIELDS = [
    "@timestamp", "level", "message", "disposition", "reason", "endpoint", "request_id", "message_id",
    "receive_count", "latency_ms", "original_status_code", "log_stream_arn", "@logStream",
]  # fmt: skip


def add_queries(
    scope: Construct, stack_name: str, log_groups: list[logs.ILogGroup]
) -> list[logs.QueryDefinition]:
    # Names with "/" show as folders in the Logs Insights console.
    specs = {
        QUERY_DEAD_LETTERS: logs.QueryString(
            filter_statements=['disposition = "dead_letter"'],
            stats_statements=[
                "count(*) as dead_letters, latest(request_id) as last_request_id, "
                "latest(message_id) as last_message_id, latest(original_status_code) as last_status_code, "
                "latest(log_stream_arn) as last_model_log_stream by endpoint, reason"
            ],
            sort="dead_letters desc",
        ),
        QUERY_SLOWEST: logs.QueryString(
            fields=SLOWEST_FIELDS,
            filter_statements=["ispresent(latency_ms)"],
            sort="latency_ms desc",
            limit=100,
        ),
        QUERY_ONE_REQUEST: logs.QueryString(
            fields=ONE_REQUEST_FIELDS,
            filter_statements=[
                f'request_id = "{REQUEST_ID_PLACEHOLDER}" or message_id = "{REQUEST_ID_PLACEHOLDER}"'
            ],
            sort="@timestamp asc",
            limit=1000,
        ),
    }
    return [
        logs.QueryDefinition(
            scope,
            f"Query{''.join(p.capitalize() for p in key.split('-'))}",
            query_definition_name=f"{stack_name}/{key}",
            query_string=query,
            log_groups=log_groups,
        )
        for key, query in specs.items()
    ]

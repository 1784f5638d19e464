"""The stack's CloudWatch dashboard body, as plain JSON data.

Pure Python on purpose (no CDK import): the CDK stack (sqs_sagemaker_invoker/infra/monitoring.py) renders it with CloudFormation
tokens for the names it does not know before deployment, and the local stack puts the same body to its
local CloudWatch with the names it created, so the two dashboards cannot drift apart.

The function's metrics (EMF, namespace POWERTOOLS_METRICS_NAMESPACE): Invocations, Succeeded, Retried,
DeadLettered, InvocationLatency (ms), InvocationReattempts, BatchSize, ConcurrencyLimit with dimensions
{endpoint, service}; Retried and DeadLettered also with {endpoint, reason, service}. Powertools adds the
`service` dimension (POWERTOOLS_SERVICE_NAME) to every metric, so the graphs name it too: CloudWatch
identifies a metric by its exact dimension set. Shared-capacity routes also report EndpointCapacity,
RouteCeiling, RouteLimit and LeasedSlots (same dimensions), shown in a row of their own with the backlog
per instance that the scaling policy tracks (the same metric math, capacity_metrics.backlog_metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from invoker.contract import Dimension, Metric

from sqs_sagemaker_invoker.infra.capacity_metrics import backlog_metrics
from sqs_sagemaker_invoker.scaling import BACKLOG_PER_INSTANCE_EXPRESSION

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqs_sagemaker_invoker.infra.config import RouteConfig

PERIOD_SECONDS: Final = 60
DEFAULT_START: Final = "-PT3H"  # the dashboard opens on the last three hours
FULL_WIDTH: Final = 24
WIDTH: Final = 8  # three widgets per 24-column row
HEIGHT: Final = 6
HEADER_HEIGHT: Final = 2
RED: Final = "#d62728"
ORANGE: Final = "#ff7f0e"
GREY: Final = "#7f7f7f"
ENDPOINT_DIMENSION: Final = Dimension.ENDPOINT
REASON_DIMENSION: Final = Dimension.REASON
SERVICE_DIMENSION: Final = Dimension.SERVICE

Widget = dict[str, Any]


@dataclass(frozen=True)
class DashboardRoute:
    """A route and the names its graphs need: real names locally, CloudFormation tokens in the CDK app."""

    route: RouteConfig
    request_queue_name: str
    dead_letter_queue_name: str
    function_name: str


def _options(label: str, stat: str, *, color: str | None = None, right: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if color is not None:
        options["color"] = color
    options["label"] = label
    options["period"] = PERIOD_SECONDS
    if stat != "Average":  # CloudWatch's default statistic, left out as the CDK leaves it out
        options["stat"] = stat
    if right:
        options["yAxis"] = "right"
    return options


def _invoker_metric(  # noqa: PLR0913 - a metric's identity, then how the widget shows it
    namespace: str, service: str, endpoint: str, name: str, *, stat: str, label: str, right: bool = False
) -> list[Any]:
    return [
        namespace, name, ENDPOINT_DIMENSION, endpoint, SERVICE_DIMENSION, service,
        _options(label, stat, right=right),
    ]  # fmt: skip


def _queue_metric(queue: str, name: str, label: str, *, color: str | None = None) -> list[Any]:
    return ["AWS/SQS", name, "QueueName", queue, _options(label, "Maximum", color=color)]


def _lambda_metric(  # noqa: PLR0913 - a metric's identity, then how the widget shows it
    function: str, name: str, stat: str, label: str, *, color: str | None = None, right: bool = False
) -> list[Any]:
    return ["AWS/Lambda", name, "FunctionName", function, _options(label, stat, color=color, right=right)]


def _by_reason(namespace: str, service: str, endpoint: str, name: str) -> list[Any]:
    """One line per reason value, found at view time (reasons are open-ended, so no fixed list here)."""
    # The schema {namespace, endpoint, reason, service} matches exactly the per-reason series.
    schema = f'{{"{namespace}",{ENDPOINT_DIMENSION},{REASON_DIMENSION},{SERVICE_DIMENSION}}}'
    terms = f'MetricName="{name}" {ENDPOINT_DIMENSION}="{endpoint}" {SERVICE_DIMENSION}="{service}"'
    return [
        {
            "label": "${PROP('Dim.reason')}",
            "expression": f"SEARCH('{schema} {terms}', 'Sum', {PERIOD_SECONDS})",
            "period": PERIOD_SECONDS,
        }
    ]


def _graph(
    title: str,
    region: str,
    metrics: list[list[Any]],
    annotation: tuple[float, str] | None = None,
    *,
    bounds: Sequence[tuple[float, str]] = (),
) -> Widget:
    """A time series; `annotation` is an alarm threshold (red), `bounds` are limits such as a scaling
    target's min and max (grey)."""
    properties: dict[str, Any] = {"view": "timeSeries", "title": title, "region": region, "metrics": metrics}
    lines = [(value, label, RED) for value, label in ([annotation] if annotation is not None else [])]
    lines += [(value, label, GREY) for value, label in bounds]
    if lines:
        properties["annotations"] = {
            "horizontal": [
                {"value": value, "color": color, "label": label, "yAxis": "left"}
                for value, label, color in lines
            ]
        }
    properties["yAxis"] = {}
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": properties}


def route_rows(names: DashboardRoute, *, namespace: str, service: str, region: str) -> list[list[Widget]]:
    """A route's widgets, row by row (positions are set by ``dashboard_body``)."""
    cfg = names.route
    endpoint = cfg.endpoint_name
    queue, dlq, fn = names.request_queue_name, names.dead_letter_queue_name, names.function_name

    def metric(name: str, stat: str, label: str, *, right: bool = False) -> list[Any]:
        return _invoker_metric(namespace, service, endpoint, name, stat=stat, label=label, right=right)

    header: Widget = {
        "type": "text",
        "width": FULL_WIDTH,
        "height": HEADER_HEIGHT,
        "properties": {
            "markdown": (
                f"## Route `{cfg.name}` → endpoint `{endpoint}`\n"
                f"{'FIFO' if cfg.fifo else 'standard'} queue, batch {cfg.batch_size}, "
                f"max receive count {cfg.max_receive_count}, function timeout {cfg.timeout_seconds} s"
            )
        },
    }
    queues = _graph(
        f"{cfg.name}: queue depth",
        region,
        [
            _queue_metric(queue, "ApproximateNumberOfMessagesVisible", "requests waiting"),
            _queue_metric(
                queue, "ApproximateNumberOfMessagesNotVisible", "requests in flight or backing off"
            ),
            _queue_metric(dlq, "ApproximateNumberOfMessagesVisible", "dead letters (DLQ)", color=RED),
        ],
    )
    age = _graph(
        f"{cfg.name}: age of oldest request (s)",
        region,
        [_queue_metric(queue, "ApproximateAgeOfOldestMessage", "oldest request")],
        (cfg.oldest_message_alarm_seconds, "alarm"),
    )
    outcomes = _graph(
        f"{cfg.name}: requests",
        region,
        [
            metric(Metric.INVOCATIONS, "Sum", "endpoint calls"),
            metric(Metric.SUCCEEDED, "Sum", "succeeded"),
            metric(Metric.RETRIED, "Sum", "retried"),
            metric(Metric.DEAD_LETTERED, "Sum", "dead-lettered"),
            metric(Metric.INVOCATION_REATTEMPTS, "Sum", "SDK re-attempts", right=True),
        ],
    )
    latency = _graph(
        f"{cfg.name}: InvokeEndpoint latency (ms)",
        region,
        [metric(Metric.INVOCATION_LATENCY, p, p) for p in ("p50", "p90", "p99")],
    )
    retried = _graph(
        f"{cfg.name}: retried by reason", region, [_by_reason(namespace, service, endpoint, Metric.RETRIED)]
    )
    dead = _graph(
        f"{cfg.name}: dead-lettered by reason",
        region,
        [_by_reason(namespace, service, endpoint, Metric.DEAD_LETTERED)],
    )
    duration = _graph(
        f"{cfg.name}: function duration (ms)",
        region,
        [_lambda_metric(fn, "Duration", s, s) for s in ("p50", "p99", "Maximum")],
        (cfg.timeout_seconds * 1000, "timeout"),
    )
    concurrency = _graph(
        f"{cfg.name}: concurrency",
        region,
        [
            _lambda_metric(fn, "ConcurrentExecutions", "Maximum", "function instances"),
            metric(Metric.CONCURRENCY_LIMIT, "Maximum", "in-function limit", right=True),
            metric(Metric.BATCH_SIZE, "Average", "batch size (avg)", right=True),
        ],
    )
    errors = _graph(
        f"{cfg.name}: function invocations, errors, throttles",
        region,
        [
            _lambda_metric(fn, "Invocations", "Sum", "invocations"),
            _lambda_metric(fn, "Errors", "Sum", "errors", color=RED, right=True),
            _lambda_metric(fn, "Throttles", "Sum", "throttles", color=ORANGE, right=True),
        ],
    )
    rows = [[header], [queues, age, outcomes], [latency, retried, dead], [duration, concurrency, errors]]
    if cfg.capacity.shared:
        rows.append(_capacity_row(names, namespace=namespace, service=service, region=region))
    return rows


def _capacity_row(names: DashboardRoute, *, namespace: str, service: str, region: str) -> list[Widget]:
    """Shared capacity: what serves, the route's budget, and the backlog per instance scaling tracks."""
    cfg = names.route
    endpoint = cfg.endpoint_name
    unit = cfg.capacity.unit
    policy = cfg.scaling

    def metric(name: str, stat: str, label: str, *, right: bool = False) -> list[Any]:
        return _invoker_metric(namespace, service, endpoint, name, stat=stat, label=label, right=right)

    served = _graph(
        f"{cfg.name}: endpoint capacity ({unit})",
        region,
        [metric(Metric.ENDPOINT_CAPACITY, "Maximum", f"{unit} serving (as the function read them)")],
        bounds=(
            [(policy.min_capacity, "scaling min"), (policy.max_capacity, "scaling max")] if policy else []
        ),
    )
    budget = _graph(
        f"{cfg.name}: route budget (calls in flight)",
        region,
        [
            metric(
                Metric.ROUTE_CEILING, "Maximum", f"ceiling ({unit} x {cfg.capacity.concurrency_per_instance})"
            ),
            metric(Metric.ROUTE_LIMIT, "Minimum", "limit (lowered on throttles)"),
            metric(Metric.LEASED_SLOTS, "Maximum", "slots leased by one batch", right=True),
        ],
    )
    queries = backlog_metrics(
        request_queue_name=names.request_queue_name,
        endpoint_name=endpoint,
        namespace=namespace,
        service=service,
    )
    backlog_lines: list[list[Any]] = [
        [
            {
                "expression": BACKLOG_PER_INSTANCE_EXPRESSION,
                "label": f"backlog per {unit[:-1]}",
                "id": "backlog",
            }
        ]
    ]
    for query in queries:
        identity: list[Any] = [query.namespace, query.metric_name]
        for name, value in query.dimensions:
            identity += [name, value]
        identity.append({"id": query.id, "stat": query.statistic, "period": PERIOD_SECONDS, "visible": False})
        backlog_lines.append(identity)
    backlog = _graph(
        f"{cfg.name}: backlog per {unit[:-1]} (messages)",
        region,
        backlog_lines,
        bounds=[(policy.target_backlog_per_instance, "scaling target")] if policy else [],
    )
    return [served, budget, backlog]


def dashboard_body(
    routes: Sequence[DashboardRoute], *, namespace: str, service: str, region: str
) -> dict[str, Any]:
    """The whole dashboard: every route's rows, one below the other, laid out left to right."""
    widgets: list[Widget] = []
    y = 0
    for names in routes:
        for row in route_rows(names, namespace=namespace, service=service, region=region):
            x = 0
            for widget in row:
                # Position keys after size, as CloudWatch's own JSON lists them.
                widgets.append(
                    {
                        "type": widget["type"],
                        "width": widget["width"],
                        "height": widget["height"],
                        "x": x,
                        "y": y,
                        "properties": widget["properties"],
                    }
                )
                x += widget["width"]
            y += max(widget["height"] for widget in row)
    return {"start": DEFAULT_START, "widgets": widgets}

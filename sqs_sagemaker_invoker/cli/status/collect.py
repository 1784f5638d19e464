"""`invoker status`: queue depths, dead letters by reason, alarms and the last hour's metrics of a route."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import Dimension, Metric

from sqs_sagemaker_invoker.cli.dlq.letters import DeadLetterQueue
from sqs_sagemaker_invoker.cli.errors import describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDataQueryTypeDef

    from sqs_sagemaker_invoker.cli.target import Route, Target

COUNT_METRICS = (Metric.INVOCATIONS, Metric.SUCCEEDED)
BY_REASON_METRICS = (Metric.RETRIED, Metric.DEAD_LETTERED)
LATENCY_METRIC = Metric.INVOCATION_LATENCY
DLQ_SAMPLE_VISIBILITY = 10


@dataclass
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.name,
            "visible": self.visible,
            "inFlight": self.in_flight,
            "delayed": self.delayed,
            "oldestAgeSeconds": self.oldest_age_s,
        }


@dataclass
class Series:
    label: str
    values: list[float | None]
    total: float | None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "total": self.total, "values": self.values}


@dataclass
class RouteStatus:
    route: Route
    queues: list[QueueDepth] = field(default_factory=list)
    dlq_reasons: Counter[str] = field(default_factory=Counter)
    dlq_sampled: int = 0
    alarms: list[dict[str, str]] = field(default_factory=list)
    metrics: list[Series] = field(default_factory=list)
    latency: dict[str, float | None] = field(default_factory=dict)
    latency_trend: list[float | None] = field(default_factory=list)  # of the higher statistic
    latency_note: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route.name,
            "endpoint": self.route.endpoint_name,
            "queues": [q.to_json() for q in self.queues],
            "deadLettersByReason": dict(self.dlq_reasons),
            "deadLettersSampled": self.dlq_sampled,
            "alarms": self.alarms,
            "metrics": [m.to_json() for m in self.metrics],
            "latencyMs": self.latency,
            "latencyTrendMs": self.latency_trend,
            "notes": self.notes,
        }


def queue_depth(target: Target, url: str) -> QueueDepth:
    attributes = target.sqs().get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueDepth(
        name=url.rsplit("/", 1)[-1],
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def oldest_age(cloudwatch: CloudWatchClient, queue: str, now: datetime) -> float | None:
    """SQS has no API for it: the AWS/SQS metric ApproximateAgeOfOldestMessage (none on the local stack)."""
    try:
        results = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "age",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": queue}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=now - timedelta(minutes=15),
            EndTime=now,
            ScanBy="TimestampDescending",
        )["MetricDataResults"]
    except (ClientError, BotoCoreError):
        return None
    values = results[0].get("Values", []) if results else []
    return float(values[0]) if values else None


def collect(  # noqa: PLR0913 - the status command's options, one keyword each
    target: Target,
    route: Route,
    *,
    namespace: str | None,
    minutes: int,
    period: int,
    dlq_sample: int,
) -> RouteStatus:
    status = RouteStatus(route)
    now = datetime.now(UTC).replace(microsecond=0)
    cloudwatch = target.cloudwatch()
    urls = [route.request_queue_url, route.dead_letter_queue_url]
    if route.results_queue_url:
        urls.append(route.results_queue_url)
    for url in urls:
        depth = queue_depth(target, url)
        if url == route.request_queue_url:
            depth.oldest_age_s = oldest_age(cloudwatch, depth.name, now)
        status.queues.append(depth)

    dlq_depth = status.queues[1]
    if dlq_depth.visible and dlq_sample > 0:
        dlq = DeadLetterQueue(target, route, visibility_timeout=DLQ_SAMPLE_VISIBILITY)
        try:
            letters = dlq.scan(limit=min(dlq_sample, dlq_depth.visible))
        finally:
            dlq.release()
        status.dlq_reasons = Counter(letter.reason for letter in letters)
        status.dlq_sampled = len(letters)

    status.alarms = alarms(target, route)
    info = target.function_info(route)
    window = _Window(namespace or info.namespace, info.service, now - timedelta(minutes=minutes), now, period)
    if route.endpoint_name:
        try:
            _metrics(target, route, status, window)
        except (ClientError, BotoCoreError) as exc:
            status.notes.append(f"metrics unavailable: {describe_aws_error(exc) or exc}")
    return status


def alarms(target: Target, route: Route) -> list[dict[str, str]]:
    prefix = target.alarm_prefix(route)
    if prefix is None:
        return []
    found: list[dict[str, str]] = []
    paginator = target.cloudwatch().get_paginator("describe_alarms")
    for page in paginator.paginate(AlarmNamePrefix=prefix):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            updated = alarm.get("StateUpdatedTimestamp")
            found.append(
                {
                    "name": alarm.get("AlarmName", ""),
                    "state": alarm.get("StateValue", "?"),
                    "reason": alarm.get("StateReason", ""),
                    "updated": updated.isoformat() if isinstance(updated, datetime) else str(updated or ""),
                }
            )
    return found


def _dims(dimensions: list[DimensionTypeDef]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in dimensions}


@dataclass(frozen=True)
class _Window:
    namespace: str
    service: str
    start: datetime
    end: datetime
    period: int

    @property
    def buckets(self) -> int:
        return max(1, int((self.end - self.start).total_seconds()) // self.period)

    def query(
        self, query_id: str, name: str, dims: list[DimensionTypeDef], *, stat: str, period: int
    ) -> MetricDataQueryTypeDef:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": name, "Dimensions": dims},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }


def _series(
    cloudwatch: CloudWatchClient, window: _Window, endpoint: str
) -> list[tuple[str, list[DimensionTypeDef]]]:
    """The series that exist for this endpoint (dimensions {service, endpoint} and {service, endpoint,
    reason}); found rather than assumed, so a stack publishing {endpoint} only is shown as well."""
    series: list[tuple[str, list[DimensionTypeDef]]] = []
    paginator = cloudwatch.get_paginator("list_metrics")
    for page in paginator.paginate(
        Namespace=window.namespace, Dimensions=[{"Name": Dimension.ENDPOINT, "Value": endpoint}]
    ):
        for metric in page.get("Metrics", []):
            dims: list[DimensionTypeDef] = [
                {"Name": d["Name"], "Value": d["Value"]} for d in metric.get("Dimensions", [])
            ]
            values = _dims(dims)
            if (
                values.get(Dimension.ENDPOINT) != endpoint
                or values.get(Dimension.SERVICE, window.service) != window.service
            ):
                continue
            if metric.get("Namespace", window.namespace) != window.namespace:
                continue
            series.append((metric.get("MetricName", ""), dims))
    return sorted(series, key=lambda s: (s[0], sorted(_dims(s[1]).items())))


def _metrics(target: Target, route: Route, status: RouteStatus, window: _Window) -> None:
    cloudwatch = target.cloudwatch()
    series = _series(cloudwatch, window, route.endpoint_name or "")
    queries: list[MetricDataQueryTypeDef] = []
    labels: dict[str, str] = {}
    for name, dims in series:
        reason = _dims(dims).get(Dimension.REASON)
        if name in COUNT_METRICS and reason is None:
            label = name
        elif name in BY_REASON_METRICS and reason is not None:
            label = f"{name} ({reason})"
        else:
            continue
        if label not in labels.values():
            query_id = f"q{len(queries)}"
            queries.append(window.query(query_id, name, dims, stat="Sum", period=window.period))
            labels[query_id] = label
    if queries:
        results = _get_metric_data(cloudwatch, queries, window.start, window.end)
        for query in queries:
            values = _bucketize(results.get(query["Id"], {}), window, missing=0.0)
            status.metrics.append(
                Series(labels[query["Id"]], values, sum(v for v in values if v is not None))
            )
    latency_dims = next(
        (d for n, d in series if n == LATENCY_METRIC and Dimension.REASON not in _dims(d)), None
    )
    if latency_dims is not None:
        _latency(target, status, window, latency_dims)


def _latency(target: Target, status: RouteStatus, window: _Window, dims: list[DimensionTypeDef]) -> None:
    whole = int((window.end - window.start).total_seconds())
    # One attempt: a service without percentiles (the local stack's moto) answers 500, then we fall back.
    cloudwatch = target.cloudwatch(attempts=1)
    for low, high, note in (("p50", "p99", None), ("Average", "Maximum", "percentiles unavailable here")):
        queries = [
            window.query("lo", LATENCY_METRIC, dims, stat=low, period=whole),
            window.query("hi", LATENCY_METRIC, dims, stat=high, period=whole),
            window.query("trend", LATENCY_METRIC, dims, stat=high, period=window.period),
        ]
        try:
            results = _get_metric_data(cloudwatch, queries, window.start, window.end)
        except (ClientError, BotoCoreError):
            continue
        status.latency = {low: _first(results.get("lo")), high: _first(results.get("hi"))}
        status.latency_trend = _bucketize(results.get("trend", {}), window, missing=None)
        status.latency_note = note
        return
    status.notes.append("latency statistics unavailable")


def _first(result: dict[str, Any] | None) -> float | None:
    values = (result or {}).get("Values") or []
    present = [float(v) for v in values if v is not None]
    return max(present) if present else None


def _get_metric_data(
    cloudwatch: CloudWatchClient, queries: list[MetricDataQueryTypeDef], start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for offset in range(0, len(queries), 500):
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries[offset : offset + 500],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            response = cloudwatch.get_metric_data(**kwargs)
            for result in response.get("MetricDataResults", []):
                merged = out.setdefault(result["Id"], {"Timestamps": [], "Values": []})
                merged["Timestamps"].extend(result.get("Timestamps", []))
                merged["Values"].extend(result.get("Values", []))
            token = response.get("NextToken")
            if not token:
                break
    return out


def _bucketize(result: dict[str, Any], window: _Window, *, missing: float | None) -> list[float | None]:
    values: list[float | None] = [missing] * window.buckets
    for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
        if value is None:
            continue
        when = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        index = int((when - window.start).total_seconds() // window.period)
        if 0 <= index < window.buckets:
            current = values[index]
            # Sums add up when a backend splits a bucket; other statistics keep the latest value.
            values[index] = float(value) + (current or 0.0) if missing is not None else float(value)
    return values

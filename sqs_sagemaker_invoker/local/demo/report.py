"""The demo's verdict: every request checked against where its kind must end up, the function's metrics
and log events read back from the local CloudWatch, and the summary table."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.table import Table

from sqs_sagemaker_invoker.local.demo.workload import KINDS, REDRIVE_POLICY, RESULT

if TYPE_CHECKING:
    from rich.console import Console

    from sqs_sagemaker_invoker.infra.config import RouteConfig
    from sqs_sagemaker_invoker.local.aws import RouteResources
    from sqs_sagemaker_invoker.local.demo.readback import Ledger
    from sqs_sagemaker_invoker.local.demo.workload import Request
    from sqs_sagemaker_invoker.local.stack import LocalStack


@dataclass
class Summary:
    sent: dict[str, int]
    delivered: int
    duplicates: dict[str, int]
    dead_lettered: dict[str, int]
    retried: dict[str, int]
    problems: list[str]
    latency_ms: dict[str, float]
    end_to_end_ms: dict[str, float]
    event_source: dict[str, Any]
    endpoint: dict[str, int]
    log_events: int
    metric_data_points: int
    elapsed_s: float
    timeline: list[tuple[float, str]]
    # The scaling scenario's figures (capacity over time, time to first result, ...); None in the mixed one.
    scaling: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Tally:
    """The ledger held against the requests: where each ended, and every way it went wrong."""

    problems: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    dead: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    latencies: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)

    def check(self, request: Request, ledger: Ledger) -> None:
        if not request.message_id:
            self.problems.append(f"{request.request_id or request.kind}: never sent")
            return
        outcomes = ledger.outcomes.get(request.message_id, [])
        label = request.request_id or request.message_id
        if not outcomes:
            self.problems.append(f"{label} ({request.kind}): no result and not in the DLQ (lost)")
            return
        places = {(o.place, o.reason) for o in outcomes}
        if len(places) > 1:
            self.problems.append(
                f"{label} ({request.kind}): in more than one place: {sorted(places, key=str)}"
            )
            return
        place, reason = outcomes[0].place, outcomes[0].reason
        if (place, reason) != request.expected:
            self.problems.append(
                f"{label} ({request.kind}): ended in {place} {reason or ''}, expected {request.expected}"
            )
        if len(outcomes) > 1:
            self.duplicates[label] = len(outcomes)
        if place == RESULT:
            self.delivered += 1
            self.latencies += [o.latency_ms for o in outcomes[:1] if o.latency_ms is not None]
            self.end_to_end += [o.end_to_end_ms for o in outcomes[:1] if o.end_to_end_ms is not None]
        else:
            self.dead[reason or "?"] += 1


def tally(requests: list[Request], ledger: Ledger, sent_message_ids: set[str]) -> Tally:
    result = Tally()
    for request in requests:
        result.check(request, ledger)
    unknown = set(ledger.outcomes) - sent_message_ids
    result.problems += [
        f"message {m}: an outcome for a message the demo did not send" for m in sorted(unknown)
    ]
    return result


def function_metrics(stack: LocalStack, route: RouteConfig) -> tuple[dict[str, int], dict[str, int], int]:
    """Retried and DeadLettered by reason, as the function's EMF metrics say (local CloudWatch)."""
    cloudwatch = stack.cloudwatch()
    namespace = stack.app.metrics_namespace
    now = datetime.now(UTC)
    found: dict[str, dict[str, int]] = {"Retried": {}, "DeadLettered": {}}
    points = 0
    for name, by_reason in found.items():
        for metric in cloudwatch.list_metrics(Namespace=namespace, MetricName=name)["Metrics"]:
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if "reason" not in dimensions or dimensions.get("endpoint") != route.endpoint_name:
                continue
            datapoints = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=name,
                Dimensions=metric["Dimensions"],
                StartTime=now - timedelta(hours=1),
                EndTime=now + timedelta(minutes=5),
                Period=3600,
                Statistics=["Sum", "SampleCount"],
            )["Datapoints"]
            by_reason[dimensions["reason"]] = int(sum(p.get("Sum", 0) for p in datapoints))
            points += int(sum(p.get("SampleCount", 0) for p in datapoints))
    return found["Retried"], found["DeadLettered"], points


def function_log_events(stack: LocalStack, route: RouteResources) -> int:
    logs = stack.logs()
    group = f"/aws/lambda/{route.function_name}"
    total = 0
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream["logStreamName"],
                "startFromHead": True,
            }
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            total += len(page["events"])
            if not page["events"] or page.get("nextForwardToken") == token:
                break
            token = page.get("nextForwardToken")
    return total


def metric_problems(dead: Counter[str], dead_metric: dict[str, int]) -> list[str]:
    """Dead letters the function's DeadLettered metric does not account for."""
    return [
        f"DeadLettered metric for {reason} is {dead_metric.get(reason, 0)}, DLQ holds {count}"
        for reason, count in dead.items()
        if dead_metric.get(reason, 0) < count and reason != REDRIVE_POLICY
    ]


def print_summary(console: Console, summary: Summary) -> None:
    print_table(console, summary)
    print_verdict(console, summary)


def print_table(console: Console, summary: Summary) -> None:
    table = Table(title="Demo summary", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count / value", justify="right")
    table.add_row("requests sent", str(sum(summary.sent.values())))
    for kind, count in sorted(summary.sent.items()):
        place, reason = KINDS[kind][1:]
        table.add_row(f"  {kind} (expected: {place}{' ' + reason if reason else ''})", str(count))
    table.add_row("[green]delivered[/] (results queue)", str(summary.delivered))
    for reason, count in sorted(summary.dead_lettered.items()):
        table.add_row(f"[red]dead-lettered[/]: {reason}", str(count))
    for reason, count in sorted(summary.retried.items()):
        table.add_row(f"[yellow]retried[/]: {reason}", str(count))
    table.add_row(
        "model call latency p50 / p99",
        f"{summary.latency_ms['p50']:.1f} / {summary.latency_ms['p99']:.1f} ms",
    )
    table.add_row(
        "end to end (send -> result) p50 / p99",
        f"{summary.end_to_end_ms['p50'] / 1000:.2f} / {summary.end_to_end_ms['p99'] / 1000:.2f} s",
    )
    source = summary.event_source
    table.add_row(
        "event source: batches / records / returned",
        f"{source['batches']} / {source['records']} / {source['returned_to_queue']}",
    )
    table.add_row("endpoint answers", ", ".join(f"{k}={v}" for k, v in sorted(summary.endpoint.items())))
    table.add_row(
        "function log events / metric values (local CloudWatch)",
        f"{summary.log_events} / {summary.metric_data_points}",
    )
    table.add_row("repeated results (at-least-once, not a loss)", str(len(summary.duplicates)))
    table.add_row("timeline", " · ".join(f"{t:.1f} s {what}" for t, what in summary.timeline))
    table.add_row("elapsed", f"{summary.elapsed_s:.1f} s")
    console.print(table)


def print_verdict(console: Console, summary: Summary) -> None:
    if summary.ok:
        console.print(
            f"[bold green]OK[/]: all {sum(summary.sent.values())} requests accounted for, each exactly once where expected."
        )
    else:
        console.print(f"[bold red]FAILED[/]: {len(summary.problems)} problem(s):")
        for problem in summary.problems[:30]:
            console.print(f"  - {problem}")

"""The people-facing view of one route's status: queues, dead-letter reasons, alarms, metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from sqs_sagemaker_invoker.cli.ui import format_age, sparkline

if TYPE_CHECKING:
    from rich.console import Console

    from sqs_sagemaker_invoker.cli.status.collect import RouteStatus

ALARM_COLOURS = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow"}


def print_status(out: Console, item: RouteStatus, minutes: int) -> None:
    route = item.route
    heading = f"route {escape(route.name)} → endpoint {escape(route.endpoint_name or '?')}"
    # A rule fills the console's width: on a terminal only (output that is not one is not cut to a width).
    out.print(Rule(heading) if out.is_terminal else f"── {heading} ──")
    out.print(_queues(item))
    if item.dlq_reasons:
        sampled = f" (from {item.dlq_sampled} read)" if item.dlq_sampled < item.queues[1].visible else ""
        reasons = ", ".join(f"{escape(r)} {n}" for r, n in item.dlq_reasons.most_common())
        out.print(f"[bold red]dead letters by reason{sampled}:[/] {reasons}")
    out.print(_alarms(item) if item.alarms else "alarms: none found")
    if item.metrics or item.latency:
        out.print(_metrics(item, minutes))
        if item.latency_note:
            out.print(f"[dim]latency: {escape(item.latency_note)}; showing Average/Maximum[/]")
    else:
        out.print(f"metrics: no data in the last {minutes} min")
    for note in item.notes:
        out.print(f"[dim]{escape(note)}[/]")


def _queues(item: RouteStatus) -> Table:
    queues = Table(title="Queues", title_justify="left")
    for column in ("queue", "waiting", "in flight", "delayed", "oldest"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for depth in item.queues:
        age = format_age(depth.oldest_age_s) if depth is item.queues[0] else ""
        queues.add_row(escape(depth.name), str(depth.visible), str(depth.in_flight), str(depth.delayed), age)
    return queues


def _alarms(item: RouteStatus) -> Table:
    alarms = Table(title="Alarms", title_justify="left")
    alarms.add_column("alarm")
    alarms.add_column("state")
    alarms.add_column("since")
    for alarm in item.alarms:
        state = alarm["state"]
        alarms.add_row(
            escape(alarm["name"]),
            f"[{ALARM_COLOURS.get(state, 'white')}]{escape(state)}[/]",
            escape(alarm["updated"][:19]),
        )
    return alarms


def _metrics(item: RouteStatus, minutes: int) -> Table:
    metrics = Table(title=f"Last {minutes} min", title_justify="left")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    metrics.add_column("trend")
    for series in item.metrics:
        total = "-" if series.total is None else f"{series.total:,.0f}"
        metrics.add_row(escape(series.label), total, sparkline(series.values))
    for index, (stat, value) in enumerate(item.latency.items()):
        trend = sparkline(item.latency_trend) if index == len(item.latency) - 1 else ""
        metrics.add_row(f"InvocationLatency {stat} (ms)", "-" if value is None else f"{value:,.1f}", trend)
    return metrics

"""The timeline of one request: a table of its log lines, the log streams, and the outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from sqs_sagemaker_invoker.cli.trace.search import LogLine, outcome
from sqs_sagemaker_invoker.cli.ui import format_ms_timestamp, stream_link

if TYPE_CHECKING:
    from rich.console import Console


def print_trace(out: Console, lines: list[LogLine], *, title: str, caption: str) -> None:
    """`title` and `caption` are Rich markup (escaped by the caller)."""
    table = Table(title=title, caption=caption)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("attempt", justify="right")
    table.add_column("event")
    table.add_column("reason")
    table.add_column("latency ms", justify="right")
    # ratio fills the terminal's width; elsewhere the table is as wide as its content (nothing folded).
    table.add_column("details", overflow="fold", ratio=1 if out.is_terminal else None)
    streams: list[str] = []
    for line in lines:
        document = line.document or {}
        if line.stream not in streams:
            streams.append(line.stream)
        latency = document.get("latency_ms")
        event = str(document.get("message", "") if document else line.message)
        table.add_row(
            format_ms_timestamp(line.timestamp_ms)[11:],
            escape(str(document.get("receive_count", ""))),
            escape(event[: 120 if out.is_terminal else None]),
            escape(str(document.get("reason") or "")),
            f"{latency:,.1f}" if isinstance(latency, int | float) else "",
            _details(document, streams.index(line.stream) + 1, terminal=out.is_terminal),
        )
    out.print(table)
    for number, stream in enumerate(streams, start=1):
        out.print(f"log stream #{number}: {escape(stream)}")
    out.print(f"[bold]outcome:[/] {escape(outcome(lines))}")


def _details(document: dict[str, Any], stream_number: int, *, terminal: bool) -> str:
    details = []
    if document.get("error"):
        details.append(str(document["error"])[: 160 if terminal else None])
    if document.get("original_status_code") is not None:
        details.append(f"status {document['original_status_code']}")
    if document.get("last_reason"):
        details.append(f"last reason {document['last_reason']}")
    details.append(f"log stream #{stream_number}")
    text = escape("; ".join(details))
    if isinstance(document.get("log_stream_arn"), str):
        text += "; model log: " + stream_link(document["log_stream_arn"])
    return text

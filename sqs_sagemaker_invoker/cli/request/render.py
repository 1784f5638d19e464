"""One request's record: its timeline as a table, its state, and its result or dead-letter reason."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from sqs_sagemaker_invoker.cli.ui import format_ms_timestamp

if TYPE_CHECKING:
    from rich.console import Console

    from sqs_sagemaker_invoker.cli.request.ledger import RequestRecord


def print_record(out: Console, record: RequestRecord, *, trace_command: str) -> None:
    title = f"Request {escape(record.request_id)} — route {escape(record.route)}"
    table = Table(title=title, caption=f"endpoint {escape(record.endpoint or '?')}")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("state")
    table.add_column("reason")
    table.add_column("message id", overflow="fold")
    for step in record.timeline:
        table.add_row(
            format_ms_timestamp(step.at_ms),
            escape(step.state),
            escape(step.reason or ""),
            escape(step.message_id or ""),
        )
    out.print(table)
    state = record.state + (f" ({record.reason})" if record.reason else "")
    out.print(f"[bold]state:[/] {escape(state)}; received {record.receive_count or '?'} time(s)")
    if record.job_id or record.line is not None:
        out.print(
            f"[bold]job:[/] {escape(record.job_id or '-')}, line {record.line if record.line is not None else '-'}"
        )
    if record.state == "dead_lettered":
        why = record.reason or "?"
        if record.last_reason:
            why += f", last reason {record.last_reason}"
        out.print(
            f"[bold]dead-lettered:[/] {escape(why)}" + (f": {escape(record.error)}" if record.error else "")
        )
        if record.dead_letter_message_id:
            out.print(
                f"letter {escape(record.dead_letter_message_id)}: `invoker dlq show` lists it with its body"
            )
    if record.state == "invoking" and record.claim_until is not None:
        out.print(
            f"[bold]in progress:[/] claimed until {format_ms_timestamp(int(record.claim_until * 1000))}"
        )
    if record.result is not None:
        text = record.result if isinstance(record.result, str) else json.dumps(record.result, indent=2)
        out.print("[bold]result:[/]")
        out.print(escape(text), soft_wrap=True)
    if record.result_note:
        out.print(f"[bold]result:[/] {escape(record.result_note)}")
    out.print(f"[bold]logs:[/] {escape(trace_command)}")

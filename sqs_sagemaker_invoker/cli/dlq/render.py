"""Dead letters for people: the list by reason, one letter, and a redrive's report (all Rich markup)."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from invoker.contract import LetterAttribute as Attr
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from sqs_sagemaker_invoker.cli.dlq.redrive import UNREADABLE
from sqs_sagemaker_invoker.cli.ui import format_ms_timestamp, log_stream_url, stream_link

if TYPE_CHECKING:
    from rich.console import Console

    from sqs_sagemaker_invoker.cli.dlq.letters import DeadLetter, ReasonSummary
    from sqs_sagemaker_invoker.cli.dlq.redrive import RedriveReport
    from sqs_sagemaker_invoker.cli.target import Route


def dead_letters_table(
    route: Route, summaries: list[ReasonSummary], *, read: int, approximate_total: int
) -> Table:
    table = Table(
        title=f"Dead letters of route {route.name} ({route.dead_letter_queue_name})",
        caption=f"read {read} of ~{approximate_total} message(s); listing consumes nothing",
    )
    table.add_column("Reason", style="bold")
    table.add_column("Count", justify="right")
    table.add_column("Original status codes")
    table.add_column("Model log streams", overflow="fold")
    table.add_column("Example request ids")
    for summary in summaries:
        reason = summary.reason
        if summary.last_reasons:
            reason += (
                "\n(last: " + ", ".join(f"{r} ({n})" for r, n in summary.last_reasons.most_common()) + ")"
            )
        codes = ", ".join(f"{code} ({n})" for code, n in summary.status_codes.most_common()) or "-"
        streams = "\n".join(stream_link(arn) for arn in summary.log_streams) or "-"
        table.add_row(
            escape(reason), str(summary.count), codes, streams, escape("\n".join(summary.request_ids))
        )
    return table


def print_dead_letter(  # noqa: PLR0913 - the letter's parts, each shown
    out: Console,
    route: Route,
    found: DeadLetter,
    attributes: dict[str, Any],
    body: str,
    *,
    shown_from_s3: bool,
) -> None:
    table = Table(title=f"Dead letter {found.message_id} (route {route.name})", show_header=False)
    table.add_column("attribute", style="bold")
    table.add_column("value", overflow="fold")
    system = found.message.get("Attributes", {})
    table.add_row("request id", escape(str(found.request_id)))
    if "SentTimestamp" in system:
        table.add_row("SentTimestamp", format_ms_timestamp(system["SentTimestamp"]))
    for name in ("ApproximateReceiveCount", "MessageGroupId"):
        if name in system:
            table.add_row(name, escape(str(system[name])))
    for name, value in attributes.items():
        shown = escape(str(value))
        if name == Attr.LOG_STREAM_ARN and isinstance(value, str):
            url = log_stream_url(value)
            shown = f"[link={url}]{shown}[/link]" if url else shown
        table.add_row(escape(name), shown)
    out.print(table)
    origin = f"the original, from {escape(found.body_s3_uri)}" if found.body_s3_uri and shown_from_s3 else ""
    try:
        pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        out.print(f"[bold]body[/] ({origin + ', ' if origin else ''}not JSON):")
        out.print(body, markup=False)  # markup off: printed as it is, no escaping
    else:
        if origin:
            out.print(f"[bold]body[/] ({origin}):")
        # Highlighting only on a terminal: Syntax pads every line to the console's width.
        out.print(Syntax(pretty, "json", word_wrap=True) if out.is_terminal else escape(pretty))


def print_redrive_report(
    err: Console, route: Route, report: RedriveReport, *, dry_run: bool, max_redrives: int
) -> None:
    """The people-facing report, on stderr: stdout holds the ids (or the JSON report) only."""
    verb = "would redrive" if dry_run else "redriven"
    table = Table(title=f"{'Dry run: r' if dry_run else 'R'}edrive of {route.name}", title_justify="left")
    table.add_column("Reason", style="bold")
    table.add_column(verb.capitalize(), justify="right")
    for name, count in report.by_reason.most_common():
        table.add_row(escape(name), str(count))
    if report.by_reason:
        err.print(table)
    destinations = ", ".join(f"{name} ({count})" for name, count in report.destinations.items())
    err.print(
        f"{verb} {len(report.redriven)} message(s)"
        + (f" to {destinations}" if destinations else "")
        + f"; skipped {len(report.skipped)}, held back {len(report.held_back)}"
        + f" (of {report.at_start} in the DLQ at the start)"
    )
    for why, count in Counter(why for _, why in report.skipped).most_common():
        if not why.startswith(UNREADABLE):
            err.print(f"skipped {count}: {escape(why)}")
    if report.held_back:
        err.print(
            f"held back {len(report.held_back)}: redriven {max_redrives} time(s) already "
            "(invoker.redrive_count); they stay in the DLQ (--force to redrive them anyway)"
        )
    for letter, why in report.duplicated:
        err.print(
            f"sent but not deleted from the DLQ (it will appear again: a duplicate): {letter.request_id} ({escape(why)})"
        )
    for letter, why in [*report.unreadable, *report.failed]:
        err.print(
            f"not redriven (still in the DLQ): {letter.request_id or letter.message_id} ({escape(why)})"
        )

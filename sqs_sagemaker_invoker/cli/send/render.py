"""What `invoker send` tells people (stderr): the summary, or what was not sent and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from rich.markup import escape

from sqs_sagemaker_invoker.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, CliError

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from sqs_sagemaker_invoker.cli.envelope import Request
    from sqs_sagemaker_invoker.cli.send.sending import SendReport
    from sqs_sagemaker_invoker.cli.target import Route


def print_sent(err: Console, report: SendReport, route: Route) -> None:
    via = f", {report.via_s3} payload(s) via S3" if report.via_s3 else ""
    err.print(f"sent {len(report.sent)} request(s) to route {route.name} ({route.request_queue_name}){via}")


def fail_unsent(  # noqa: PLR0913 - what was sent, and where the command writes
    err: Console,
    report: SendReport,
    requests: list[Request],
    *,
    planned: int,
    ids_out: Path | None,
    unsent_out: Path | None,
) -> NoReturn:
    """List every request not sent (or in doubt), keep their envelopes if asked, and fail."""
    for request, why in report.failed:
        err.print(f"not sent: {request} ({escape(why)})")
    for request in report.unknown:
        err.print(f"unknown (the call failed in flight; check the queue): {request}")
    for request in report.not_attempted:
        err.print(f"not sent: {request} (not attempted)")
    unsent_ids = {r for r, _ in report.failed} | set(report.unknown) | set(report.not_attempted)
    if unsent_out is not None:
        with unsent_out.open("w", encoding="utf-8") as handle:
            handle.writelines(f"{r.message_body()}\n" for r in requests if r.request_id in unsent_ids)
    sent_where = f"(ids in {ids_out})" if ids_out else "(ids on stdout)"
    raise CliError(
        f"{report.error}; sent {len(report.sent)} of {planned} request(s) {sent_where}, "
        f"not sent {len(report.failed) + len(report.not_attempted)}"
        + (f", unknown {len(report.unknown)}" if report.unknown else "")
        + " (listed above)",
        exit_code=EXIT_INTERRUPTED if report.interrupted else EXIT_ERROR,
    )

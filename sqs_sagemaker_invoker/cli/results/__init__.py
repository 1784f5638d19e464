"""`invoker results`: the route's results queue as JSON Lines; only what was written is deleted."""

import contextlib
import sys
from pathlib import Path
from typing import IO, Annotated

import typer
from invoker.contract import SQS_MAX_VISIBILITY_SECONDS
from rich.markup import escape

from sqs_sagemaker_invoker.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, CliError
from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.results.reader import ResultsReader
from sqs_sagemaker_invoker.cli.ui import stderr_console


@targeted
def results(  # noqa: PLR0913 - typer options
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Append JSON Lines to this file (default: stdout).", show_default=False
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep waiting for results (until the wanted ids are in, --max or --timeout).",
        ),
    ] = False,
    request_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--request-id",
            help="Only this request id (repeatable); others stay on the queue.",
            show_default=False,
        ),
    ] = None,
    ids: Annotated[
        Path | None,
        typer.Option(
            "--ids",
            help="Only the request ids in this file (one per line, as `send --ids-out` writes).",
            show_default=False,
        ),
    ] = None,
    max_results: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after this many results.", show_default=False)
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.1, help="With --follow: stop after this many seconds.", show_default=False),
    ] = None,
    wait_seconds: Annotated[
        int,
        typer.Option(
            min=0, max=20, help="Long-poll wait per receive (an empty one ends a read without --follow)."
        ),
    ] = 1,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            min=5,
            max=SQS_MAX_VISIBILITY_SECONDS,
            help="Seconds a message stays hidden while this command holds it.",
        ),
    ] = 60,
    no_fetch: Annotated[
        bool, typer.Option("--no-fetch", help="Leave S3-offloaded bodies as bodyS3Uri.")
    ] = False,
) -> None:
    """Read results from the route's results queue as JSON Lines; delete only what was written."""
    err = stderr_console()
    wanted = _wanted_ids(request_ids, ids)
    target, route = opts.open_route()
    handle: IO[str] = out.open("a", encoding="utf-8") if out is not None else sys.stdout
    try:
        reader = ResultsReader(
            target,
            route,
            handle,
            wanted=wanted,
            fetch=not no_fetch,
            visibility_timeout=visibility_timeout,
            note=lambda text: err.print(escape(text)),
        )
        run = reader.read(
            follow=follow,
            wait_seconds=wait_seconds if not follow else max(wait_seconds, 1),
            timeout=timeout,
            limit=max_results,
        )
    finally:
        if out is not None:
            with contextlib.suppress(OSError):  # the write error itself was raised already
                handle.close()
    where = f" to {out}" if out is not None else ""
    pending = sorted(reader.pending)
    err.print(
        f"wrote {run.written} result(s){where}"
        + (f"; {len(pending)} wanted id(s) not seen" if pending else "")
    )
    if (follow or run.interrupted) and pending:
        shown = ", ".join(pending[:5]) + (", ..." if len(pending) > 5 else "")
        why = "interrupted" if run.interrupted else "timed out"
        raise CliError(
            f"{why}: {len(pending)} of {len(wanted or ())} result(s) not received ({shown})",
            exit_code=EXIT_INTERRUPTED if run.interrupted else EXIT_ERROR,
        )


def _wanted_ids(request_ids: list[str] | None, ids: Path | None) -> set[str] | None:
    """The ids asked for (--request-id and --ids), or None for every result."""
    if not request_ids and ids is None:
        return None
    wanted = set(request_ids or [])
    if ids is not None:
        wanted |= {line.strip() for line in ids.read_text(encoding="utf-8").splitlines() if line.strip()}
    if not wanted:
        raise CliError(f"{ids}: no request ids in the file")
    return wanted

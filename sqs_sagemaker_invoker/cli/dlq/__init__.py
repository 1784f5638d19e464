"""`invoker dlq list|show|redrive`: the dead-letter queue, read without consuming and redriven without loss."""

import json
import sys
from typing import Annotated

import typer
from invoker.contract import SQS_MAX_VISIBILITY_SECONDS

from sqs_sagemaker_invoker.cli.dlq import letters as dlq_letters
from sqs_sagemaker_invoker.cli.dlq.move_task import redrive_with_move_task
from sqs_sagemaker_invoker.cli.dlq.redrive import Redriver
from sqs_sagemaker_invoker.cli.dlq.render import (
    dead_letters_table,
    print_dead_letter,
    print_redrive_report,
)
from sqs_sagemaker_invoker.cli.errors import CliError
from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.ui import progress, stderr_console, stdout_console

dlq = typer.Typer(
    help="The dead-letter queue: list by reason, show one message, redrive (nothing lost).",
    no_args_is_help=True,
)


@dlq.command("list")
@targeted
def dlq_list(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    max_messages: Annotated[
        int, typer.Option("--max", min=1, help="Read at most this many messages.")
    ] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            min=1, max=SQS_MAX_VISIBILITY_SECONDS, help="Seconds messages stay hidden while being read."
        ),
    ] = 30,
) -> None:
    """Dead letters by reason: counts, original status codes, model log streams, example request ids.

    Messages are read and then made visible again (ChangeMessageVisibility 0): listing consumes nothing.
    """
    target, route = opts.open_route()
    queue = dlq_letters.DeadLetterQueue(target, route, visibility_timeout=visibility_timeout)
    visible, in_flight = queue.depth()
    try:
        # Up to the depth seen now: messages arriving meanwhile wait for the next listing.
        letters = queue.scan(limit=min(max_messages, visible)) if visible else []
    finally:
        queue.release()
    summaries = dlq_letters.summarize(letters)
    if as_json:
        document = {
            "route": route.name,
            "queue": route.dead_letter_queue_name,
            "approximateVisible": visible,
            "approximateInFlight": in_flight,
            "read": len(letters),
            "reasons": [s.to_json() for s in summaries],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    out = stdout_console()
    if not letters:
        busy = f"; {in_flight} in flight (being read or redriven elsewhere)" if in_flight else ""
        out.print(
            f"No visible dead letters in route {route.name}'s DLQ ({route.dead_letter_queue_name}){busy}."
        )
        return
    out.print(dead_letters_table(route, summaries, read=len(letters), approximate_total=visible + in_flight))


@dlq.command("show")
@targeted
def dlq_show(  # noqa: PLR0913 - typer options
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    message: Annotated[str, typer.Argument(help="Request id or message id (the DLQ's or the original).")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the body only, byte for byte.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    max_messages: Annotated[
        int, typer.Option("--max", min=1, help="Search at most this many messages.")
    ] = 10_000,
) -> None:
    """One dead letter: its body and attributes (the message stays in the DLQ)."""
    target, route = opts.open_route()
    queue = dlq_letters.DeadLetterQueue(target, route, visibility_timeout=30)
    try:
        letters = queue.scan(limit=max_messages, stop=lambda letter: letter.matches(message))
    finally:
        queue.release()
    found = next((letter for letter in letters if letter.matches(message)), None)
    if found is None:
        raise CliError(
            f"no message with request id or message id {message!r} in the DLQ of route {route.name} "
            f"(read {len(letters)} message(s))"
        )
    attributes = {
        name: value.get("StringValue", value.get("BinaryValue"))
        for name, value in sorted(found.message.get("MessageAttributes", {}).items())
    }
    # A pointer letter (body kept in S3): show the original body; if it cannot be read, say so and show
    # the letter as it is. The letter stays in the DLQ either way.
    body, unavailable = found.body, None
    if found.body_s3_uri is not None:
        try:
            body = dlq_letters.original_body(found, target.s3())
        except dlq_letters.BodyUnavailable as exc:
            unavailable = str(exc)
    if raw:
        if unavailable is not None:
            raise CliError(f"{unavailable}; the letter stays in the DLQ")
        sys.stdout.write(body)
        sys.stdout.flush()
        return
    if as_json:
        document = {
            "messageId": found.message_id,
            "requestId": found.request_id,
            "reason": found.reason,
            "body": body,
            "bodyS3Uri": found.body_s3_uri,
            "bodyUnavailable": unavailable,
            "redriveCount": found.redrive_count,
            "messageAttributes": {k: v if isinstance(v, str) else repr(v) for k, v in attributes.items()},
            "attributes": found.message.get("Attributes", {}),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        print_dead_letter(stdout_console(), route, found, attributes, body, shown_from_s3=unavailable is None)
    if unavailable is not None:
        raise CliError(f"{unavailable}; shown as it is in the DLQ, where the letter stays")


@dlq.command("redrive")
@targeted
def dlq_redrive(  # noqa: PLR0913 - typer options
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    reason: Annotated[
        list[str] | None,
        typer.Option(
            "--reason", help="Only messages with this invoker.reason (repeatable).", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Redrive at most this many.", show_default=False)
    ] = None,
    max_redrives: Annotated[
        int,
        typer.Option(
            "--max-redrives",
            min=1,
            help="Hold back (leave in the DLQ) messages already redriven this many times (invoker.redrive_count).",
        ),
    ] = dlq_letters.DEFAULT_MAX_REDRIVES,
    force: Annotated[
        bool, typer.Option("--force", help="Redrive held-back messages too (and start a move task anyway).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be redriven; change nothing.")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.01, help="At most N messages per second (spare the endpoint).", show_default=False
        ),
    ] = None,
    move_task: Annotated[
        bool,
        typer.Option(
            "--move-task/--no-move-task",
            help="Hand the whole DLQ to one SQS message move task (no filter, no hold-back: see docs/operating.md, Redrive); default: message by message.",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for a move task to finish.")] = True,
    visibility_timeout: Annotated[
        int,
        typer.Option(
            min=1, max=SQS_MAX_VISIBILITY_SECONDS, help="Seconds a message stays hidden while being redriven."
        ),
    ] = 120,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of the request ids.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Send dead letters back to their request queue, each one sent before it is deleted from the DLQ.

    The original body goes back byte for byte (fetched from S3 for letters that point to it) with the producer's attributes, its FIFO group and invoker.redrive_count + 1. One run goes through what the DLQ held when it started and moves each message at most once. Prints the request ids moved, one per line; the report goes to stderr. An interruption can leave a duplicate, never a loss.
    """
    err = stderr_console()
    reasons = set(reason) if reason else None
    target, route = opts.open_route()
    if move_task and (reasons or limit is not None or dry_run):
        raise CliError(
            "--move-task moves the whole DLQ: it cannot be combined with --reason, --limit or --dry-run"
        )
    if move_task and redrive_with_move_task(
        target, route, max_redrives=max_redrives, force=force, rate=rate, wait=wait, as_json=as_json
    ):
        return
    queue = dlq_letters.DeadLetterQueue(target, route, visibility_timeout=visibility_timeout)
    visible, _ = queue.depth()
    total = min(visible, limit) if limit is not None else visible
    with progress(err, enabled=not quiet) as bar:
        task = bar.add_task(("dry run" if dry_run else "redrive") + f" {route.name}", total=total or None)
        redriver = Redriver(
            queue,
            reasons=reasons,
            limit=limit,
            dry_run=dry_run,
            rate=rate,
            max_redrives=max_redrives,
            force=force,
            on_progress=lambda n: bar.advance(task, n),
        )
        report = redriver.run(at_start=visible)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(dry_run=dry_run), indent=2) + "\n")
    else:
        sys.stdout.writelines(f"{letter.request_id or letter.message_id}\n" for letter in report.redriven)
    sys.stdout.flush()
    print_redrive_report(err, route, report, dry_run=dry_run, max_redrives=max_redrives)
    problems = len(report.failed) + len(report.unreadable)
    if problems:
        raise CliError(f"{problems} message(s) not redriven; they are still in the DLQ (listed above)")

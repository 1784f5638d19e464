"""The `invoker` command line: producers send and collect, operators inspect, trace and redrive.

Every command acts on one target, a deployed stack (`--stack NAME`, found through CloudFormation in the
usual AWS profile and region) or the local stack (`--local`, from .local-stack/outputs.json), through
the same code: both are a dict of stack outputs (see sqs_sagemaker_invoker.cli.target).
"""

import contextlib
import functools
import importlib.metadata
import inspect
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
import typer.rich_utils
from botocore.exceptions import BotoCoreError, ClientError
from invoker.contract import SQS_MAX_VISIBILITY_SECONDS, LetterAttribute
from rich.markup import escape
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table

from sqs_sagemaker_invoker.cli import dlq as dlq_ops
from sqs_sagemaker_invoker.cli import envelope as env
from sqs_sagemaker_invoker.cli import send as send_ops
from sqs_sagemaker_invoker.cli import status as status_ops
from sqs_sagemaker_invoker.cli import trace as trace_ops
from sqs_sagemaker_invoker.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CliError,
    describe_aws_error,
    handle_errors,
)
from sqs_sagemaker_invoker.cli.results import ResultsReader
from sqs_sagemaker_invoker.cli.target import Route, Target, open_target
from sqs_sagemaker_invoker.cli.ui import (
    format_age,
    format_ms_timestamp,
    log_stream_url,
    no_color,
    progress,
    sparkline,
    stderr_console,
    stdout_console,
    stream_short_name,
)

app = typer.Typer(
    name="invoker",
    help=(
        "Send requests to an SQS -> SageMaker invoker route, collect results, and inspect, trace and "
        "redrive failures, on a deployed stack (--stack NAME) or the local stack (--local)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
dlq_app = typer.Typer(
    help="The dead-letter queue: list by reason, show one message, redrive (nothing lost).",
    no_args_is_help=True,
)
local_app = typer.Typer(
    help="The local stack (moto, SageMaker emulator, the real function).", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")
app.add_typer(local_app, name="local")

TARGET_PANEL = "Target"
SPARK_POINTS = 30
DISTRIBUTION = "sqs-sagemaker-invoker"

if no_color():
    # Help and usage errors are rendered by Typer's own Rich console: no escape codes there either.
    typer.rich_utils.COLOR_SYSTEM = None


# ------------------------------------------------------------------------------------------------
# Target options: accepted before the command (`invoker --local send`) and after it (`invoker send --local`)

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="INVOKER_STACK",
        help="Deployed stack name (CloudFormation outputs, in the current AWS profile and region).",
        rich_help_panel=TARGET_PANEL,
        show_default=False,
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="The local stack (reads .local-stack/outputs.json; dummy credentials).",
        rich_help_panel=TARGET_PANEL,
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="INVOKER_STATE_DIR",
        help="Local stack state directory holding outputs.json (default: .local-stack in . or a parent). Implies --local.",
        rich_help_panel=TARGET_PANEL,
        show_default=False,
    ),
]
RouteOption = Annotated[
    str | None,
    typer.Option(
        "--route",
        "-r",
        envvar="INVOKER_ROUTE",
        help="Route name (default: the only route).",
        rich_help_panel=TARGET_PANEL,
        show_default=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", help="AWS profile (default: AWS_PROFILE or default).", rich_help_panel=TARGET_PANEL
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", help="AWS region (default: the profile's or AWS_REGION).", rich_help_panel=TARGET_PANEL
    ),
]


@dataclass(frozen=True)
class TargetOptions:
    stack: str | None = None
    local: bool = False
    state_dir: Path | None = None
    route: str | None = None
    profile: str | None = None
    region: str | None = None

    def merged(self, other: "TargetOptions") -> "TargetOptions":
        """`other` (given after the command) wins over self (given before it)."""
        return TargetOptions(
            stack=other.stack or self.stack,
            local=other.local or self.local,
            state_dir=other.state_dir or self.state_dir,
            route=other.route or self.route,
            profile=other.profile or self.profile,
            region=other.region or self.region,
        )

    def open(self) -> Target:
        return open_target(
            stack=self.stack,
            local=self.local,
            local_dir=self.state_dir,
            profile=self.profile,
            region=self.region,
        )


_TARGET_PARAMETERS = [
    inspect.Parameter("stack", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=StackOption),
    inspect.Parameter("local", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=LocalOption),
    inspect.Parameter("state_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=StateDirOption),
    inspect.Parameter("route", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=RouteOption),
    inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ProfileOption),
    inspect.Parameter("region", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=RegionOption),
]
_TARGET_NAMES = [p.name for p in _TARGET_PARAMETERS]


def targeted(func: Callable[..., None]) -> Callable[..., None]:
    """Adds the target options to a command; it receives them merged as `opts: TargetOptions`."""
    signature = inspect.signature(func, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "opts"]
    kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.name != "ctx" else p for p in kept]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        given = TargetOptions(**{name: kwargs.pop(name) for name in _TARGET_NAMES})
        ctx: typer.Context = kwargs["ctx"]
        before = ctx.obj if isinstance(ctx.obj, TargetOptions) else TargetOptions()
        func(opts=before.merged(given), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *_TARGET_PARAMETERS])  # type: ignore[attr-defined]
    return handle_errors(wrapper)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"invoker {importlib.metadata.version(DISTRIBUTION)}\n")
        raise typer.Exit


@app.callback()
def main(
    ctx: typer.Context,
    *,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    stack: StackOption = None,
    local: LocalOption = False,
    state_dir: StateDirOption = None,
    route: RouteOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
) -> None:
    ctx.obj = TargetOptions(stack, local, state_dir, route, profile, region)


def _open(opts: TargetOptions) -> tuple[Target, Route]:
    target = opts.open()
    return target, target.route(opts.route)


# ------------------------------------------------------------------------------------------------
# send


class MessageFormat(StrEnum):
    envelope = "envelope"
    raw = "raw"


ENVELOPE_PANEL = "Envelope (InvokeEndpoint options)"


@app.command()
@targeted
def send(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    payload: Annotated[
        str | None,
        typer.Argument(
            help="Payload file, or - for stdin (default: stdin when it is piped).", show_default=False
        ),
    ] = None,
    jsonl: Annotated[
        str | None,
        typer.Option(
            "--jsonl",
            help="JSON Lines file of envelopes, one request per line (- for stdin).",
            show_default=False,
        ),
    ] = None,
    content_type: Annotated[
        str | None, typer.Option(help="ContentType.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    accept: Annotated[str | None, typer.Option(help="Accept.", rich_help_panel=ENVELOPE_PANEL)] = None,
    target_model: Annotated[
        str | None, typer.Option(help="TargetModel.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    target_variant: Annotated[
        str | None, typer.Option(help="TargetVariant.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    target_container_hostname: Annotated[
        str | None, typer.Option(help="TargetContainerHostname.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    inference_component: Annotated[
        str | None, typer.Option(help="InferenceComponentName.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    inference_id: Annotated[
        str | None, typer.Option(help="InferenceId.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    custom_attributes: Annotated[
        str | None,
        typer.Option(help="CustomAttributes (ASCII, never logged).", rich_help_panel=ENVELOPE_PANEL),
    ] = None,
    session_id: Annotated[str | None, typer.Option(help="SessionId.", rich_help_panel=ENVELOPE_PANEL)] = None,
    prefix_aware_id: Annotated[
        str | None,
        typer.Option(help="PrefixAwareId (prefix-aware routing hint).", rich_help_panel=ENVELOPE_PANEL),
    ] = None,
    enable_explanations: Annotated[
        str | None, typer.Option(help="EnableExplanations.", rich_help_panel=ENVELOPE_PANEL)
    ] = None,
    request_id: Annotated[
        str | None,
        typer.Option(
            help="Request id of a single payload (default: a new UUID).", rich_help_panel=ENVELOPE_PANEL
        ),
    ] = None,
    raw_json: Annotated[
        bool,
        typer.Option(
            "--raw-json",
            help="The payload is JSON: send it as `body` (default: UTF-8 text as bodyText, other bytes as bodyBase64).",
            rich_help_panel=ENVELOPE_PANEL,
        ),
    ] = False,
    message_format: Annotated[
        MessageFormat,
        typer.Option("--format", help="Message format of the route (MESSAGE_FORMAT): envelope or raw."),
    ] = MessageFormat.envelope,
    group_id: Annotated[
        str | None, typer.Option(help="MessageGroupId (required by FIFO routes).", show_default=False)
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.01, help="Send at most N messages per second.", show_default=False)
    ] = None,
    ids_out: Annotated[
        Path | None,
        typer.Option(help="Write the request ids here (one per line) instead of stdout.", show_default=False),
    ] = None,
    unsent_out: Annotated[
        Path | None,
        typer.Option(
            help="On a failure, write the envelopes not sent here as JSON Lines (to retry with --jsonl).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Send one payload, or many envelopes from JSON Lines, to the route's request queue.

    Large payloads travel through S3 (bodyS3Uri) when the message would pass the queue's size limit; payloads over the endpoint's 6 MB are refused. Prints the request ids, one per line.
    """
    err = stderr_console()
    members = {
        key: value
        for key, value in {
            "contentType": content_type,
            "accept": accept,
            "targetModel": target_model,
            "targetVariant": target_variant,
            "targetContainerHostname": target_container_hostname,
            "inferenceComponentName": inference_component,
            "inferenceId": inference_id,
            "customAttributes": custom_attributes,
            "sessionId": session_id,
            "prefixAwareId": prefix_aware_id,
            "enableExplanations": enable_explanations,
        }.items()
        if value is not None
    }
    if jsonl is not None and payload is not None:
        raise CliError("give either a payload or --jsonl FILE, not both")
    if jsonl is not None and (request_id is not None or raw_json):
        raise CliError(
            "--request-id and --raw-json apply to a single payload; in --jsonl each line is an envelope"
        )
    if request_id is not None:
        try:
            env.check_request_id(request_id)
        except env.EnvelopeError as exc:
            raise CliError(f"--request-id: {exc}") from exc

    target, route = _open(opts)
    if route.fifo and not group_id:
        raise CliError(f"route {route.name} has a FIFO queue ({route.request_queue_name}): pass --group-id")
    if jsonl is not None:
        name = "stdin" if jsonl == "-" else jsonl
        text = sys.stdin.read() if jsonl == "-" else Path(jsonl).read_text(encoding="utf-8")
        requests = env.parse_jsonl(
            text.splitlines(), members=members, payload_s3_prefix=route.payload_s3_prefix, name=name
        )
    else:
        data, source = _read_payload(payload)
        requests = [
            env.from_payload(
                data,
                as_json=raw_json,
                members=members,
                request_id=request_id,
                payload_s3_prefix=route.payload_s3_prefix,
                source=source,
            )
        ]
    items = send_ops.plan(
        requests,
        route,
        max_message_bytes=send_ops.queue_message_limit(target, route),
        message_format=message_format.value,
    )
    ids_file: IO[str] | None = ids_out.open("w", encoding="utf-8") if ids_out is not None else None

    def sent(ids: list[str]) -> None:
        stream = ids_file or sys.stdout
        stream.writelines(f"{request}\n" for request in ids)
        stream.flush()  # an interruption still leaves the record of what was sent

    try:
        with progress(err, enabled=not quiet) as bar:
            task = bar.add_task(f"send → {route.name}", total=len(items))
            report = send_ops.send_all(
                target,
                route,
                items,
                group_id=group_id,
                rate=rate,
                on_sent=sent,
                on_progress=lambda n: bar.advance(task, n),
            )
    finally:
        if ids_file is not None:
            ids_file.close()
    if report.ok:
        if not quiet:
            via = f", {report.via_s3} payload(s) via S3" if report.via_s3 else ""
            err.print(
                f"sent {len(report.sent)} request(s) to route {route.name} ({route.request_queue_name}){via}"
            )
        return
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
        f"{report.error}; sent {len(report.sent)} of {len(items)} request(s) {sent_where}, "
        f"not sent {len(report.failed) + len(report.not_attempted)}"
        + (f", unknown {len(report.unknown)}" if report.unknown else "")
        + " (listed above)",
        exit_code=EXIT_INTERRUPTED if report.interrupted else EXIT_ERROR,
    )


def _read_payload(payload: str | None) -> tuple[bytes, str]:
    if payload is None:
        if sys.stdin.isatty():
            raise CliError("no payload: give a file, - for stdin, or --jsonl FILE")
        payload = "-"
    if payload == "-":
        stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
        data = stream.read() if stream is not None else sys.stdin.read().encode()
        return data, "stdin"
    path = Path(payload)
    size = path.stat().st_size
    if size > env.MAX_PAYLOAD_BYTES:
        raise CliError(
            f"{payload}: payload of {size:,} bytes is over the endpoint's limit of "
            f"{env.MAX_PAYLOAD_BYTES:,} bytes (6 MB); nothing sent"
        )
    return path.read_bytes(), payload


# ------------------------------------------------------------------------------------------------
# results


@app.command()
@targeted
def results(
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
    wanted: set[str] | None = None
    if request_ids or ids is not None:
        wanted = set(request_ids or [])
        if ids is not None:
            wanted |= {line.strip() for line in ids.read_text(encoding="utf-8").splitlines() if line.strip()}
        if not wanted:
            raise CliError(f"{ids}: no request ids in the file")
    target, route = _open(opts)
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


# ------------------------------------------------------------------------------------------------
# dlq


@dlq_app.command("list")
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
    target, route = _open(opts)
    queue = dlq_ops.DeadLetterQueue(target, route, visibility_timeout=visibility_timeout)
    visible, in_flight = queue.depth()
    try:
        # Up to the depth seen now: messages arriving meanwhile wait for the next listing.
        letters = queue.scan(limit=min(max_messages, visible)) if visible else []
    finally:
        queue.release()
    summaries = dlq_ops.summarize(letters)
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
    table = Table(
        title=f"Dead letters of route {route.name} ({route.dead_letter_queue_name})",
        caption=f"read {len(letters)} of ~{visible + in_flight} message(s); listing consumes nothing",
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
        streams = "\n".join(_stream_link(arn) for arn in summary.log_streams) or "-"
        table.add_row(
            escape(reason), str(summary.count), codes, streams, escape("\n".join(summary.request_ids))
        )
    out.print(table)


def _stream_link(arn: str) -> str:
    url = log_stream_url(arn)
    name = escape(stream_short_name(arn))
    return f"[link={url}]{name}[/link]" if url else name


@dlq_app.command("show")
@targeted
def dlq_show(
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
    target, route = _open(opts)
    queue = dlq_ops.DeadLetterQueue(target, route, visibility_timeout=30)
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
            body = dlq_ops.original_body(found, target.s3())
        except dlq_ops.BodyUnavailable as exc:
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
        _raise_unavailable(unavailable)
        return
    _print_dead_letter(route, found, attributes, body, shown_from_s3=unavailable is None)
    _raise_unavailable(unavailable)


def _print_dead_letter(
    route: Route, found: dlq_ops.DeadLetter, attributes: dict[str, Any], body: str, *, shown_from_s3: bool
) -> None:
    out = stdout_console()
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
        if name == LetterAttribute.LOG_STREAM_ARN and isinstance(value, str):
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


def _raise_unavailable(unavailable: str | None) -> None:
    if unavailable is not None:
        raise CliError(f"{unavailable}; shown as it is in the DLQ, where the letter stays")


@dlq_app.command("redrive")
@targeted
def dlq_redrive(
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
    ] = dlq_ops.DEFAULT_MAX_REDRIVES,
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
            help="Hand the whole DLQ to one SQS message move task (no filter, no hold-back: see the README); default: message by message.",
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
    target, route = _open(opts)
    if move_task and (reasons or limit is not None or dry_run):
        raise CliError(
            "--move-task moves the whole DLQ: it cannot be combined with --reason, --limit or --dry-run"
        )
    if move_task and _redrive_with_move_task(
        target, route, max_redrives=max_redrives, force=force, rate=rate, wait=wait, as_json=as_json
    ):
        return
    queue = dlq_ops.DeadLetterQueue(target, route, visibility_timeout=visibility_timeout)
    visible, _ = queue.depth()
    total = min(visible, limit) if limit is not None else visible
    with progress(err, enabled=not quiet) as bar:
        task = bar.add_task(("dry run" if dry_run else "redrive") + f" {route.name}", total=total or None)
        redriver = dlq_ops.Redriver(
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
    _print_redrive_report(err, route, report, dry_run=dry_run, max_redrives=max_redrives)
    problems = len(report.failed) + len(report.unreadable)
    if problems:
        raise CliError(f"{problems} message(s) not redriven; they are still in the DLQ (listed above)")


def _print_redrive_report(
    err: Any, route: Route, report: dlq_ops.RedriveReport, *, dry_run: bool, max_redrives: int
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
        if not why.startswith(dlq_ops.UNREADABLE):
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


def _redrive_with_move_task(
    target: Target,
    route: Route,
    *,
    max_redrives: int,
    force: bool,
    rate: float | None,
    wait: bool,
    as_json: bool,
) -> bool:
    """Redrive through StartMessageMoveTask; False when unavailable (the caller redrives message by message).

    The task moves every message as it is: it cannot hold back, fetch a body from S3 or add
    invoker.redrive_count (the function counts a redrive from the invoker.* attributes the letters keep).
    So the DLQ is read first, and the task is refused when it would do what a redrive must not.
    """
    err = stderr_console()
    check = dlq_ops.check_for_move_task(
        dlq_ops.DeadLetterQueue(target, route, visibility_timeout=60), max_redrives=max_redrives
    )
    if check.pointers:
        raise CliError(
            f"{check.pointers} of {check.read} dead letter(s) keep their body in S3: a move task would send "
            "the pointer, not the body; redrive without --move-task"
        )
    if check.held_back and not force:
        raise CliError(
            f"{check.held_back} of {check.read} dead letter(s) were redriven {max_redrives} time(s) already "
            "and a move task cannot hold them back; redrive without --move-task (holds them back), or --force"
        )
    try:
        handle = dlq_ops.start_move_task(target, route, rate=rate)
    except (ClientError, BotoCoreError) as exc:
        err.print(
            f"StartMessageMoveTask unavailable ({escape(describe_aws_error(exc) or str(exc))}); "
            "redriving message by message (send, then delete)"
        )
        return False
    err.print(
        f"started message move task {escape(handle)} from {route.dead_letter_queue_name} to {route.request_queue_name}"
    )
    final: dict[str, Any] = {}
    if wait:
        shown: list[tuple[Any, Any]] = []

        def on_status(task: dict[str, Any]) -> None:
            state = (task.get("Status"), task.get("ApproximateNumberOfMessagesMoved"))
            if state != (shown[-1] if shown else None):
                shown.append(state)
                err.print(f"move task {state[0] or 'starting'}: {state[1] or 0} message(s) moved")

        final = dlq_ops.wait_move_task(target, route, handle, on_status, timeout=3600)
        moved = final.get("ApproximateNumberOfMessagesMoved", "?")
        err.print(f"move task {final.get('Status', 'UNKNOWN')}: {moved} message(s) moved")
    document: dict[str, Any] = {"moveTask": handle}
    document.update({k: final[k] for k in ("Status", "ApproximateNumberOfMessagesMoved") if k in final})
    sys.stdout.write(json.dumps(document) + "\n" if as_json else f"{handle}\n")
    if final.get("Status") == "FAILED":
        raise CliError(f"message move task failed: {final.get('FailureReason', 'unknown reason')}")
    return True


# ------------------------------------------------------------------------------------------------
# status


@app.command()
@targeted
def status(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="Metrics namespace (default: the function's, else SqsSageMakerInvoker).", show_default=False
        ),
    ] = None,
    minutes: Annotated[int, typer.Option(min=5, max=1440, help="Metrics window.")] = 60,
    dlq_sample: Annotated[
        int, typer.Option(min=0, help="Dead letters read to count reasons (put back after).")
    ] = 100,
) -> None:
    """Per route: queue depth, in flight, oldest age, dead letters by reason, alarms and recent metrics."""
    target = opts.open()
    routes = target.selected_routes(opts.route)
    period = max(60, minutes * 60 // SPARK_POINTS // 60 * 60)  # about SPARK_POINTS points, whole minutes
    statuses = [
        status_ops.collect(
            target, r, namespace=namespace, minutes=minutes, period=period, dlq_sample=dlq_sample
        )
        for r in routes
    ]
    if as_json:
        sys.stdout.write(json.dumps([s.to_json() for s in statuses], indent=2, default=str) + "\n")
        return
    out = stdout_console()
    out.print(
        f"[bold]{escape(target.label)}[/]"
        + (f" — dashboard {escape(target.dashboard_name)}" if target.dashboard_name else "")
    )
    for item in statuses:
        _print_status(out, item, minutes)


def _print_status(out: Any, item: status_ops.RouteStatus, minutes: int) -> None:
    route = item.route
    heading = f"route {escape(route.name)} → endpoint {escape(route.endpoint_name or '?')}"
    # A rule fills the console's width: on a terminal only (output that is not one is not cut to a width).
    out.print(Rule(heading) if out.is_terminal else f"── {heading} ──")
    queues = Table(title="Queues", title_justify="left")
    for column in ("queue", "waiting", "in flight", "delayed", "oldest"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for depth in item.queues:
        age = format_age(depth.oldest_age_s) if depth is item.queues[0] else ""
        queues.add_row(escape(depth.name), str(depth.visible), str(depth.in_flight), str(depth.delayed), age)
    out.print(queues)
    if item.dlq_reasons:
        sampled = f" (from {item.dlq_sampled} read)" if item.dlq_sampled < item.queues[1].visible else ""
        reasons = ", ".join(f"{escape(r)} {n}" for r, n in item.dlq_reasons.most_common())
        out.print(f"[bold red]dead letters by reason{sampled}:[/] {reasons}")
    alarms = Table(title="Alarms", title_justify="left")
    alarms.add_column("alarm")
    alarms.add_column("state")
    alarms.add_column("since")
    colours = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow"}
    for alarm in item.alarms:
        state = alarm["state"]
        alarms.add_row(
            escape(alarm["name"]),
            f"[{colours.get(state, 'white')}]{escape(state)}[/]",
            escape(alarm["updated"][:19]),
        )
    if item.alarms:
        out.print(alarms)
    else:
        out.print("alarms: none found")
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
    if item.metrics or item.latency:
        out.print(metrics)
        if item.latency_note:
            out.print(f"[dim]latency: {escape(item.latency_note)}; showing Average/Maximum[/]")
    else:
        out.print(f"metrics: no data in the last {minutes} min")
    for note in item.notes:
        out.print(f"[dim]{escape(note)}[/]")


# ------------------------------------------------------------------------------------------------
# trace


class TraceMethod(StrEnum):
    auto = "auto"
    insights = "insights"
    filter = "filter"


_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def parse_duration(text: str) -> int:
    found = _DURATION.match(text.strip())
    if not found:
        raise CliError(f"--since {text!r}: use a number with s, m, h or d (e.g. 30m, 24h, 7d)")
    return int(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


@app.command()
@targeted
def trace(
    ctx: typer.Context,
    *,
    opts: TargetOptions,
    request_id: Annotated[str, typer.Argument(help="The request id (or the SQS message id).")],
    since: Annotated[str, typer.Option(help="How far back to search (30m, 24h, 7d).")] = "24h",
    method: Annotated[
        TraceMethod, typer.Option(help="Logs Insights, FilterLogEvents, or auto (Insights, else the filter).")
    ] = TraceMethod.auto,
    log_group: Annotated[
        str | None, typer.Option(help="Log group (default: the function's).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The log lines as JSON Lines.")] = False,
) -> None:
    """Everything the function's logs say about one request, as a timeline."""
    wanted = trace_ops.check_id(request_id)
    seconds = parse_duration(since)
    target, route = _open(opts)
    group = log_group or target.function_info(route).log_group
    if not group:
        raise CliError(f"route {route.name} has no FunctionName output; pass --log-group")
    used, lines = trace_ops.find(target, group, wanted, since_s=seconds, method=method.value)
    if not lines:
        raise CliError(f"no log line mentions {wanted} in {group} in the last {since} (searched with {used})")
    if as_json:
        sys.stdout.writelines(json.dumps(line.to_json()) + "\n" for line in lines)
        return
    out = stdout_console()
    table = Table(
        title=f"Trace of {escape(wanted)} — route {escape(route.name)}", caption=f"{used} on {escape(group)}"
    )
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
        details = []
        if document.get("error"):
            details.append(str(document["error"])[: 160 if out.is_terminal else None])
        if document.get("original_status_code") is not None:
            details.append(f"status {document['original_status_code']}")
        if document.get("last_reason"):
            details.append(f"last reason {document['last_reason']}")
        details.append(f"log stream #{streams.index(line.stream) + 1}")
        detail_text = escape("; ".join(details))
        if isinstance(document.get("log_stream_arn"), str):
            detail_text += "; model log: " + _stream_link(document["log_stream_arn"])
        latency = document.get("latency_ms")
        table.add_row(
            format_ms_timestamp(line.timestamp_ms)[11:],
            escape(str(document.get("receive_count", ""))),
            escape(
                str(document.get("message", "") if document else line.message)[
                    : 120 if out.is_terminal else None
                ]
            ),
            escape(str(document.get("reason") or "")),
            f"{latency:,.1f}" if isinstance(latency, int | float) else "",
            detail_text,
        )
    out.print(table)
    for number, stream in enumerate(streams, start=1):
        out.print(f"log stream #{number}: {escape(stream)}")
    out.print(f"[bold]outcome:[/] {escape(trace_ops.outcome(lines))}")


# ------------------------------------------------------------------------------------------------
# local


LocalStateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="INVOKER_STATE_DIR",
        help="State directory (default: .local-stack).",
        show_default=False,
    ),
]


def _run_local(argv: list[str], state_dir: Path | None) -> None:
    """Delegate to the local package's entry point (`python -m sqs_sagemaker_invoker.local ...`)."""
    # Absolute: the local package runs a detached stack from the repository root, not from here.
    full = ([f"--state-dir={state_dir.resolve()}"] if state_dir is not None else []) + argv
    try:
        from sqs_sagemaker_invoker.local.__main__ import main as local_main  # noqa: PLC0415 - the local stack only when asked
    except ImportError:  # not installed alongside: run it as a module of the current interpreter
        import subprocess  # noqa: PLC0415

        code = subprocess.call([sys.executable, "-m", "sqs_sagemaker_invoker.local", *full])
    else:
        code = local_main(full)
    if code:
        raise typer.Exit(code)


@local_app.command("up")
@handle_errors
def local_up(
    *,
    state_dir: LocalStateDir = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; stop with `invoker local down`.")
    ] = False,
    wait: Annotated[float, typer.Option(help="With --detach: seconds to wait for start-up.")] = 120.0,
    logs: Annotated[bool, typer.Option("--logs", help="Echo the function's log lines.")] = False,
    container: Annotated[str, typer.Option(help="Model container: sklearn or echo.")] = "sklearn",
    startup_delay: Annotated[float, typer.Option(help="Model container start-up delay (s).")] = 0.0,
) -> None:
    """Start the local stack (Ctrl-C stops it, or --detach and `invoker local down`)."""
    argv = ["up", f"--wait={wait}", f"--container={container}", f"--startup-delay={startup_delay}"]
    if detach:
        argv.append("--detach")
    if logs:
        argv.append("--logs")
    _run_local(argv, state_dir)


@local_app.command("down")
@handle_errors
def local_down(
    *,
    state_dir: LocalStateDir = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for it to stop.")] = 60.0,
) -> None:
    """Stop a local stack started with `invoker local up --detach`."""
    _run_local(["down", f"--wait={wait}"], state_dir)


@local_app.command("demo")
@handle_errors
def local_demo(
    *,
    state_dir: LocalStateDir = None,
    requests: Annotated[int, typer.Option(help="Number of requests.")] = 400,
    rate: Annotated[float, typer.Option(help="Messages sent per second.")] = 30.0,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 120.0,
    route: Annotated[
        str | None, typer.Option(help="Route (default: the first standard-queue route).")
    ] = None,
) -> None:
    """Run the end-to-end demo on a fresh local stack and print its summary."""
    argv = ["demo", f"--requests={requests}", f"--rate={rate}", f"--timeout={timeout}"]
    if route:
        argv.append(f"--route={route}")
    _run_local(argv, state_dir)

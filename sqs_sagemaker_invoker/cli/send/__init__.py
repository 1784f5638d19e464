"""`invoker send`: one payload, or many envelopes from JSON Lines, to the route's request queue."""

import sys
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from sqs_sagemaker_invoker.cli import envelope as env
from sqs_sagemaker_invoker.cli.errors import CliError
from sqs_sagemaker_invoker.cli.options import TargetOptions, targeted
from sqs_sagemaker_invoker.cli.send import sending
from sqs_sagemaker_invoker.cli.send.render import fail_unsent, print_sent
from sqs_sagemaker_invoker.cli.target import Route
from sqs_sagemaker_invoker.cli.ui import progress, stderr_console


class MessageFormat(StrEnum):
    envelope = "envelope"
    raw = "raw"


ENVELOPE_PANEL = "Envelope (InvokeEndpoint options)"


def _member(help_text: str) -> Any:
    """An InvokeEndpoint member's option, in the envelope panel."""
    return typer.Option(help=help_text, rich_help_panel=ENVELOPE_PANEL)


@targeted
def send(  # noqa: PLR0913 - typer options
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
    content_type: Annotated[str | None, _member("ContentType.")] = None,
    accept: Annotated[str | None, _member("Accept.")] = None,
    target_model: Annotated[str | None, _member("TargetModel.")] = None,
    target_variant: Annotated[str | None, _member("TargetVariant.")] = None,
    target_container_hostname: Annotated[str | None, _member("TargetContainerHostname.")] = None,
    inference_component: Annotated[str | None, _member("InferenceComponentName.")] = None,
    inference_id: Annotated[str | None, _member("InferenceId.")] = None,
    custom_attributes: Annotated[str | None, _member("CustomAttributes (ASCII, never logged).")] = None,
    session_id: Annotated[str | None, _member("SessionId.")] = None,
    prefix_aware_id: Annotated[str | None, _member("PrefixAwareId (prefix-aware routing hint).")] = None,
    enable_explanations: Annotated[str | None, _member("EnableExplanations.")] = None,
    request_id: Annotated[
        str | None, _member("Request id of a single payload (default: a new UUID).")
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
    given = {
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
    }
    members = {key: value for key, value in given.items() if value is not None}
    _check_inputs(payload=payload, jsonl=jsonl, request_id=request_id, raw_json=raw_json)
    target, route = opts.open_route()
    if route.fifo and not group_id:
        raise CliError(f"route {route.name} has a FIFO queue ({route.request_queue_name}): pass --group-id")
    requests = _requests(route, payload, jsonl, members=members, request_id=request_id, raw_json=raw_json)
    items = sending.plan(
        requests,
        route,
        max_message_bytes=sending.queue_message_limit(target, route),
        message_format=message_format.value,
    )
    err = stderr_console()
    ids_file: IO[str] | None = ids_out.open("w", encoding="utf-8") if ids_out is not None else None

    def sent(ids: list[str]) -> None:
        stream = ids_file or sys.stdout
        stream.writelines(f"{request}\n" for request in ids)
        stream.flush()  # an interruption still leaves the record of what was sent

    try:
        with progress(err, enabled=not quiet) as bar:
            task = bar.add_task(f"send → {route.name}", total=len(items))
            report = sending.send_all(
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
    if not report.ok:
        fail_unsent(err, report, requests, planned=len(items), ids_out=ids_out, unsent_out=unsent_out)
    if not quiet:
        print_sent(err, report, route)


def _check_inputs(*, payload: str | None, jsonl: str | None, request_id: str | None, raw_json: bool) -> None:
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


def _requests(  # noqa: PLR0913 - the send command's input options
    route: Route,
    payload: str | None,
    jsonl: str | None,
    *,
    members: dict[str, str],
    request_id: str | None,
    raw_json: bool,
) -> list[env.Request]:
    if jsonl is not None:
        name = "stdin" if jsonl == "-" else jsonl
        text = sys.stdin.read() if jsonl == "-" else Path(jsonl).read_text(encoding="utf-8")
        return env.parse_jsonl(
            text.splitlines(), members=members, payload_s3_prefix=route.payload_s3_prefix, name=name
        )
    data, source = _read_payload(payload)
    return [
        env.from_payload(
            data,
            as_json=raw_json,
            members=members,
            request_id=request_id,
            payload_s3_prefix=route.payload_s3_prefix,
            source=source,
        )
    ]


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

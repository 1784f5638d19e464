"""Request envelopes (docs/function.md, "The request envelope"): built from flags or read from JSON Lines, and
checked with the function's own parser (`invoker.envelope`), so a bad request is refused before anything
is sent instead of being dead-lettered as `invalid_message` later, by exactly the same rules."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoker import envelope as invoker_envelope
from invoker.contract import INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES
from invoker.outcomes import InvalidMessage

from sqs_sagemaker_invoker.cli.errors import CliError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# The function's own rules and limits: a request the CLI accepts is one the function accepts.
MAX_PAYLOAD_BYTES = INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES
REQUEST_ID = invoker_envelope.REQUEST_ID


class EnvelopeError(ValueError):
    """What is wrong with one envelope (the caller adds where it came from)."""


@dataclass
class Request:
    """One request to send: its envelope, and its payload when it may have to travel through S3."""

    request_id: str
    envelope: dict[str, Any]
    payload: bytes | None  # None for bodyS3Uri (already in S3)
    source: str  # "line 7", "stdin", a file name: for messages

    def message_body(self) -> str:
        return compact_json(self.envelope)

    def message_size(self) -> int:
        return len(self.message_body().encode())


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_request_id() -> str:
    return str(uuid.uuid4())


def check_request_id(value: str) -> str:
    if not REQUEST_ID.fullmatch(value):
        raise EnvelopeError(
            f"requestId {value!r} is not 1-128 characters of A-Z a-z 0-9 . _ : - (starting with a letter or digit)"
        )
    return value


def validate(
    envelope: Any, *, payload_s3_prefix: str | None, defaults: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], bytes | None]:
    """A checked copy of the envelope, with `defaults` filled in and a requestId (generated if absent),
    and the bytes the function will send to the endpoint (None for bodyS3Uri)."""
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"must be a JSON object (the request envelope), got {_kind(envelope)}")
    result: dict[str, Any] = {**(defaults or {}), **envelope}
    result.setdefault("requestId", new_request_id())
    try:
        parsed = invoker_envelope.parse_envelope(compact_json(result), "", payload_s3_prefix)
    except InvalidMessage as exc:
        raise EnvelopeError(exc.message) from exc
    return result, parsed.body


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def from_payload(  # noqa: PLR0913 - one keyword per envelope field
    payload: bytes,
    *,
    as_json: bool,
    members: Mapping[str, str],
    request_id: str | None,
    payload_s3_prefix: str | None,
    source: str,
) -> Request:
    """One envelope around raw bytes: `body` (--raw-json), else `bodyText` (UTF-8) or `bodyBase64`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CliError(
            f"{source}: payload of {len(payload):,} bytes is over the endpoint's limit of "
            f"{MAX_PAYLOAD_BYTES:,} bytes (6 MB); nothing sent"
        )
    envelope: dict[str, Any] = {}
    if request_id is not None:
        envelope["requestId"] = request_id
    if as_json:
        try:
            # The function's strict reading: a payload it would refuse (duplicate keys, a number that
            # cannot be sent exactly) is refused here, not altered by a lenient parse.
            envelope["body"] = invoker_envelope.loads_strict(payload.decode("utf-8"), "the payload")
        except UnicodeDecodeError as exc:
            raise CliError(f"{source}: --raw-json given but the payload is not UTF-8") from exc
        except InvalidMessage as exc:
            raise CliError(f"{source}: --raw-json given but {exc.message}") from exc
    else:
        try:
            envelope["bodyText"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            envelope["bodyBase64"] = base64.b64encode(payload).decode("ascii")
    envelope.update(members)
    try:
        checked, body = validate(envelope, payload_s3_prefix=payload_s3_prefix)
    except EnvelopeError as exc:
        raise CliError(f"{source}: {exc}") from exc
    return Request(checked["requestId"], checked, body, source)


def parse_jsonl(
    lines: Iterable[str], *, members: Mapping[str, str], payload_s3_prefix: str | None, name: str
) -> list[Request]:
    """Every line checked before anything is sent; the first bad line is the error."""
    requests: list[Request] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) carry no request
        try:
            # The function's own strict reading, so that what is checked below is what it will read.
            document = invoker_envelope.loads_strict(line, "the line")
        except InvalidMessage as exc:
            raise CliError(f"{name} line {number}: {exc.message}; nothing sent") from exc
        try:
            envelope, body = validate(document, payload_s3_prefix=payload_s3_prefix, defaults=members)
        except EnvelopeError as exc:
            raise CliError(f"{name} line {number}: {exc}; nothing sent") from exc
        request_id = envelope["requestId"]
        if request_id in first_line:
            raise CliError(
                f"{name} line {number}: requestId {request_id!r} repeats line {first_line[request_id]} "
                "(results are matched by request id); nothing sent"
            )
        first_line[request_id] = number
        requests.append(Request(request_id, envelope, body, f"line {number}"))
    if not requests:
        raise CliError(f"{name}: no requests (the file is empty)")
    return requests

"""Request envelopes (docs/readme/function.md, "The request envelope"): built from flags or read from
JSON Lines, and checked here with the function's own rules, so a bad request is refused before anything
is sent instead of being dead-lettered as `invalid_message` later."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoker_cli.errors import CliError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MAX_PAYLOAD_BYTES = 6_291_456  # InvokeEndpoint's request body limit
SQS_MAX_MESSAGE_BYTES = 1_048_576  # SendMessage, and the sum of one SendMessageBatch

BODY_KEYS = ("body", "bodyText", "bodyBase64", "bodyS3Uri")
# Envelope key -> (max length, ASCII only, min length), as the function checks them.
MEMBERS: dict[str, tuple[int, bool, int]] = {
    "contentType": (1024, False, 0),
    "accept": (1024, False, 0),
    "customAttributes": (1024, True, 0),
    "targetModel": (1024, False, 1),
    "targetVariant": (63, False, 1),
    "targetContainerHostname": (63, False, 1),
    "inferenceId": (64, False, 1),
    "enableExplanations": (64, False, 1),
    "inferenceComponentName": (63, False, 1),
    "sessionId": (256, False, 1),
}
ALLOWED_KEYS = frozenset((*BODY_KEYS, *MEMBERS, "requestId"))
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")


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


def payload_of(envelope: Mapping[str, Any]) -> bytes | None:
    """The bytes the function would send to the endpoint (None for bodyS3Uri)."""
    if "body" in envelope:
        return compact_json(envelope["body"]).encode()
    if "bodyText" in envelope:
        return str(envelope["bodyText"]).encode()
    if "bodyBase64" in envelope:
        return base64.b64decode(envelope["bodyBase64"], validate=True)
    return None


def validate(
    envelope: Any, *, payload_s3_prefix: str | None, defaults: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A checked copy of the envelope, with `defaults` filled in and a requestId (generated if absent)."""
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"must be a JSON object (the request envelope), got {_kind(envelope)}")
    unknown = sorted(set(envelope) - ALLOWED_KEYS)
    if unknown:
        raise EnvelopeError(
            f"unknown envelope keys: {', '.join(unknown)} (allowed: {', '.join(sorted(ALLOWED_KEYS))})"
        )
    present = [key for key in BODY_KEYS if key in envelope]
    if len(present) != 1:
        raise EnvelopeError(
            f"needs exactly one of {', '.join(BODY_KEYS)} (found: {', '.join(present) or 'none'})"
        )
    result: dict[str, Any] = {**(defaults or {}), **envelope}
    request_id = result.get("requestId")
    if request_id is None:
        result["requestId"] = new_request_id()
    elif not isinstance(request_id, str):
        raise EnvelopeError(f"requestId must be a string, got {_kind(request_id)}")
    else:
        check_request_id(request_id)
    for key, (limit, ascii_only, minimum) in MEMBERS.items():
        if key in result:
            check_member(key, result[key], limit, ascii_only, minimum)
    key = present[0]
    value = result[key]
    if key in ("bodyText", "bodyBase64", "bodyS3Uri") and not isinstance(value, str):
        raise EnvelopeError(f"{key} must be a string, got {_kind(value)}")
    if key == "bodyBase64":
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise EnvelopeError(f"bodyBase64 is not valid base64: {exc}") from exc
    if key == "bodyS3Uri":
        if not _S3_URI.match(value):
            raise EnvelopeError(f"bodyS3Uri {value!r} is not an s3://bucket/key URI")
        if payload_s3_prefix is None:
            raise EnvelopeError(
                "bodyS3Uri is refused by this route (it has no PayloadS3Prefix: largePayloads is off)"
            )
        if not value.startswith(payload_s3_prefix):
            raise EnvelopeError(f"bodyS3Uri must start with the route's PayloadS3Prefix {payload_s3_prefix}")
    try:
        payload = payload_of(result)
    except UnicodeEncodeError as exc:
        raise EnvelopeError(f"{key} holds text that is not valid Unicode (a lone surrogate)") from exc
    if payload is not None and len(payload) > MAX_PAYLOAD_BYTES:
        raise EnvelopeError(
            f"payload of {len(payload):,} bytes is over the endpoint's limit of {MAX_PAYLOAD_BYTES:,} bytes (6 MB)"
        )
    return result


def check_member(key: str, value: Any, limit: int, ascii_only: bool, minimum: int) -> None:
    if not isinstance(value, str):
        raise EnvelopeError(f"{key} must be a string, got {_kind(value)}")
    if not minimum <= len(value) <= limit:
        raise EnvelopeError(f"{key} must be {minimum}-{limit} characters, got {len(value)}")
    if ascii_only and not value.isascii():
        raise EnvelopeError(f"{key} must be ASCII")


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


def from_payload(
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
            envelope["body"] = json.loads(payload)
        except ValueError as exc:
            raise CliError(f"{source}: --raw-json given but the payload is not JSON ({exc})") from exc
    else:
        try:
            envelope["bodyText"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            envelope["bodyBase64"] = base64.b64encode(payload).decode("ascii")
    envelope.update(members)
    try:
        checked = validate(envelope, payload_s3_prefix=payload_s3_prefix)
    except EnvelopeError as exc:
        raise CliError(f"{source}: {exc}") from exc
    return Request(checked["requestId"], checked, payload_of(checked), source)


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
            document = json.loads(line)
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            column = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise CliError(f"{name} line {number}: not valid JSON ({detail}{column}); nothing sent") from exc
        try:
            envelope = validate(document, payload_s3_prefix=payload_s3_prefix, defaults=members)
        except EnvelopeError as exc:
            raise CliError(f"{name} line {number}: {exc}; nothing sent") from exc
        request_id = envelope["requestId"]
        if request_id in first_line:
            raise CliError(
                f"{name} line {number}: requestId {request_id!r} repeats line {first_line[request_id]} "
                "(results are matched by request id); nothing sent"
            )
        first_line[request_id] = number
        requests.append(Request(request_id, envelope, payload_of(envelope), f"line {number}"))
    if not requests:
        raise CliError(f"{name}: no requests (the file is empty)")
    return requests

"""Turns an SQS message body into an InvokeEndpoint request, or refuses it with a reason."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoker.outcomes import InvalidMessage

if TYPE_CHECKING:
    from collections.abc import Mapping

# InvokeEndpoint accepts request bodies of at most 6,291,456 bytes (6 MiB).
MAX_PAYLOAD_BYTES = 6_291_456

# Matched with fullmatch: `$` would also accept a trailing newline.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+)")
# Header values: a CR or LF (or any control character) would make botocore refuse to send the
# request, which looks like a transport error and would be retried instead of refused.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BODY_KEYS = ("body", "bodyText", "bodyBase64", "bodyS3Uri")

# Envelope key -> (InvokeEndpoint member, max length, ASCII only, min length). Limits from the
# sagemaker-runtime service model; checking them here dead-letters a bad message with a clear reason
# instead of letting botocore's parameter validation fail it later.
_MEMBERS: dict[str, tuple[str, int, bool, int]] = {
    "contentType": ("ContentType", 1024, True, 0),
    "accept": ("Accept", 1024, True, 0),
    "customAttributes": ("CustomAttributes", 1024, True, 0),
    "targetModel": ("TargetModel", 1024, False, 1),
    "targetVariant": ("TargetVariant", 63, False, 1),
    "targetContainerHostname": ("TargetContainerHostname", 63, False, 1),
    "inferenceId": ("InferenceId", 64, False, 1),
    "enableExplanations": ("EnableExplanations", 64, False, 1),
    "inferenceComponentName": ("InferenceComponentName", 63, False, 1),
    "sessionId": ("SessionId", 256, False, 1),
}
_ALLOWED_KEYS = frozenset(_BODY_KEYS) | frozenset(_MEMBERS) | {"requestId"}


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    request_id: str
    body: bytes | None
    s3_uri: tuple[str, str] | None = None  # (bucket, key) when the payload is fetched from S3
    members: dict[str, str] = field(default_factory=dict)  # ContentType, Accept, TargetModel, ...


def parse_envelope(raw_body: str, message_id: str, payload_s3_prefix: str | None) -> InvokeRequest:
    try:
        document = json.loads(raw_body, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"body is not JSON: {exc.msg} at position {exc.pos}") from exc
    except ValueError as exc:  # e.g. a lone surrogate
        raise InvalidMessage(f"body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidMessage(
            f"body is a JSON {type(document).__name__}, not an object (the request envelope)"
        )
    request_id = _request_id(document.get("requestId"), message_id)
    try:
        return _parse_document(document, request_id, payload_s3_prefix)
    except InvalidMessage as exc:
        exc.request_id = request_id
        raise


def _parse_document(
    document: dict[str, Any], request_id: str, payload_s3_prefix: str | None
) -> InvokeRequest:
    unknown = sorted(set(document) - _ALLOWED_KEYS)
    if unknown:
        raise InvalidMessage(f"unknown envelope keys: {', '.join(unknown)}")
    present = [key for key in _BODY_KEYS if key in document]
    if len(present) != 1:
        found = ", ".join(present) or "none"
        raise InvalidMessage(f"exactly one of {', '.join(_BODY_KEYS)} is required (found: {found})")
    members = {
        member: _member(document[key], key, limit, ascii_only, minimum)
        for key, (member, limit, ascii_only, minimum) in _MEMBERS.items()
        if key in document
    }
    key = present[0]
    try:
        payload = _payload(key, document[key], members)
    except UnicodeEncodeError as exc:
        raise InvalidMessage(f"{key} holds text that is not valid Unicode (a lone surrogate)") from exc
    if payload is None:
        return InvokeRequest(request_id, None, _s3_location(document[key], payload_s3_prefix), members)
    check_payload_size(len(payload))
    return InvokeRequest(request_id, payload, None, members)


def _payload(key: str, value: Any, members: dict[str, str]) -> bytes | None:
    """The request body for the envelope's body key; None for bodyS3Uri (fetched later)."""
    if key == "bodyS3Uri":
        return None
    if key == "body":
        members.setdefault("ContentType", "application/json")
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if not isinstance(value, str):
        raise InvalidMessage(f"{key} must be a string")
    if key == "bodyText":
        return value.encode()
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise InvalidMessage(f"bodyBase64 is not valid base64: {exc}") from exc


def parse_raw(raw_body: str, message_id: str, attributes: Mapping[str, Mapping[str, Any]]) -> InvokeRequest:
    """`MESSAGE_FORMAT=raw`: the body is the payload; ContentType/Accept/RequestId travel as attributes."""
    request_id = _request_id(_string_attribute(attributes, "RequestId"), message_id)
    members: dict[str, str] = {}
    try:
        for attribute, (member, limit, ascii_only, minimum) in {
            "ContentType": _MEMBERS["contentType"],
            "Accept": _MEMBERS["accept"],
        }.items():
            value = _string_attribute(attributes, attribute)
            if value is not None:
                members[member] = _member(value, attribute, limit, ascii_only, minimum)
        payload = raw_body.encode()
        check_payload_size(len(payload))
    except InvalidMessage as exc:
        exc.request_id = request_id
        raise
    return InvokeRequest(request_id, payload, None, members)


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and neither would most endpoints.
    raise InvalidMessage(f"body is not JSON: {name} is not a JSON value")


def check_payload_size(size: int) -> None:
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidMessage(f"payload is {size} bytes, above InvokeEndpoint's limit of {MAX_PAYLOAD_BYTES}")


def _string_attribute(attributes: Mapping[str, Mapping[str, Any]], name: str) -> str | None:
    attribute = attributes.get(name)
    if attribute is None:
        return None
    value = attribute.get("stringValue")
    if not isinstance(value, str):
        raise InvalidMessage(f"message attribute {name} must be a String attribute")
    return value


def _request_id(value: Any, message_id: str) -> str:
    if value is None:
        return message_id
    if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
        raise InvalidMessage(
            "requestId must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"
        )
    return value


def _member(value: Any, key: str, limit: int, ascii_only: bool, minimum: int) -> str:
    if not isinstance(value, str):
        raise InvalidMessage(f"{key} must be a string")
    if not minimum <= len(value) <= limit:
        raise InvalidMessage(f"{key} must be {minimum}-{limit} characters long (got {len(value)})")
    if ascii_only and not value.isascii():
        raise InvalidMessage(f"{key} must be ASCII")
    if _CONTROL.search(value):
        raise InvalidMessage(f"{key} must not contain control characters (line breaks, tabs, ...)")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidMessage(f"{key} is not valid Unicode (a lone surrogate)") from exc
    return value


def _s3_location(value: Any, payload_s3_prefix: str | None) -> tuple[str, str]:
    if payload_s3_prefix is None:
        raise InvalidMessage("bodyS3Uri is not enabled for this route (PAYLOAD_S3_PREFIX is not set)")
    if not isinstance(value, str):
        raise InvalidMessage("bodyS3Uri must be a string")
    match = _S3_URI.fullmatch(value)
    if match is None:
        raise InvalidMessage(f"bodyS3Uri {value!r} is not an s3://bucket/key URI")
    if not value.startswith(payload_s3_prefix):
        raise InvalidMessage(f"bodyS3Uri must start with {payload_s3_prefix}")
    return match.group(1), match.group(2)

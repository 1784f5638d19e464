"""The result document written for each successful invocation."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any


def is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _refuse_constant(name: str) -> Any:
    # NaN/Infinity would be written back out as-is and break consumers in other languages.
    raise ValueError(f"{name} is not JSON")


def encode_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """One of `body` (JSON value), `bodyText` or `bodyBase64`, so that a consumer can read it back exactly."""
    if is_json_content_type(content_type):
        try:
            return {"body": json.loads(body, parse_constant=_refuse_constant)}
        except ValueError:
            pass  # says JSON, is not (NaN included): keep it readable as text below
    try:
        return {"bodyText": body.decode()}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(body).decode()}


@dataclass(frozen=True, slots=True)
class ResultSource:
    """Which message and endpoint a result answers."""

    request_id: str
    message_id: str
    endpoint_name: str
    receive_count: int


def result_document(
    source: ResultSource,
    response: dict[str, Any],
    *,
    body: bytes | None,
    body_s3_uri: str | None,
    latency_ms: float,
) -> dict[str, Any]:
    content_type = response.get("ContentType")
    document: dict[str, Any] = {
        "requestId": source.request_id,
        "messageId": source.message_id,
        "endpointName": source.endpoint_name,
        "contentType": content_type,
    }
    if body_s3_uri is not None:
        document["bodyS3Uri"] = body_s3_uri
    elif body is not None:
        document.update(encode_body(body, content_type))
    document["invokedProductionVariant"] = response.get("InvokedProductionVariant")
    document["customAttributes"] = response.get("CustomAttributes")
    for member, key in (("NewSessionId", "newSessionId"), ("ClosedSessionId", "closedSessionId")):
        if response.get(member) is not None:
            document[key] = response[member]
    document["latencyMs"] = round(latency_ms, 3)
    document["receiveCount"] = source.receive_count
    return document

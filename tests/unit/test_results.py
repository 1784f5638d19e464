"""The result document written for each successful invocation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from invoker.results import ResultSource, encode_body, is_json_content_type, result_document


def response(**members: Any) -> dict[str, Any]:
    """An InvokeEndpoint response as boto3 returns it (the body is read separately)."""
    base: dict[str, Any] = {
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    base.update(members)
    return base


def document(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "request_id": "order-42",
        "message_id": "msg-1",
        "endpoint_name": "my-endpoint",
        "response": response(),
        "body": b'{"score":0.5}',
        "body_s3_uri": None,
        "latency_ms": 12.3456,
        "receive_count": 1,
    }
    arguments.update(overrides)
    source = ResultSource(
        *(arguments.pop(name) for name in ("request_id", "message_id", "endpoint_name", "receive_count"))
    )
    return result_document(source, **arguments)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON ; charset=UTF-8", True),
        ("application/vnd.api+json", True),
        ("application/problem+json; charset=utf-8", True),
        ("application/jsonlines", False),
        ("application/x-ndjson", False),
        ("text/plain", False),
        ("text/csv; header=present", False),
        ("application/octet-stream", False),
        ("", False),
        (None, False),
    ],
)
def test_json_content_types(content_type: str | None, expected: bool) -> None:
    # GIVEN a response content type WHEN checked THEN only JSON media types (and +json) count
    assert is_json_content_type(content_type) is expected


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/geo+json"]
)
def test_json_body_is_kept_as_a_json_value(content_type: str) -> None:
    # GIVEN a JSON response WHEN encoded THEN it is embedded as a value, not a string
    assert encode_body('{"labels": ["cat", "ü"], "p": [0.9, 0.1]}'.encode(), content_type) == {
        "body": {"labels": ["cat", "ü"], "p": [0.9, 0.1]}
    }


@pytest.mark.parametrize("raw", [b"not json", b"", b'{"a": 1', b"{'a': 1}"], ids=repr)
def test_invalid_json_under_a_json_content_type_is_kept_as_text(raw: bytes) -> None:
    # GIVEN a body that says JSON but is not WHEN encoded THEN it is kept readable and exact as text
    assert encode_body(raw, "application/json") == {"bodyText": raw.decode()}


def test_json_content_type_with_undecodable_bytes_falls_back_to_base64() -> None:
    # GIVEN bytes that are neither JSON nor UTF-8 under a JSON content type WHEN encoded THEN base64
    raw = b"\xff\xfe{"
    assert encode_body(raw, "application/json") == {"bodyBase64": base64.b64encode(raw).decode()}


@pytest.mark.parametrize("content_type", ["text/csv", "text/plain; charset=utf-8", None])
def test_text_body_is_kept_as_text(content_type: str | None) -> None:
    # GIVEN a UTF-8 body that is not declared JSON (even if it parses as JSON) WHEN encoded THEN text
    assert encode_body("0.5,ü\n".encode(), content_type) == {"bodyText": "0.5,ü\n"}
    assert encode_body(b"[1, 2]", content_type) == {"bodyText": "[1, 2]"}


@pytest.mark.parametrize(
    "raw", [b"\x89PNG\r\n\x1a\n\x00\x00", bytes(range(256)), b"ok\xc3"], ids=["png", "all-bytes", "cut-utf8"]
)
def test_binary_body_is_base64_and_round_trips(raw: bytes) -> None:
    # GIVEN bytes that are not UTF-8 WHEN encoded THEN base64, which decodes back to the same bytes
    encoded = encode_body(raw, "application/octet-stream")
    assert list(encoded) == ["bodyBase64"]
    assert base64.b64decode(encoded["bodyBase64"]) == raw


@pytest.mark.parametrize("raw", [b'{"score": NaN}', b"[Infinity]", b"-Infinity"], ids=repr)
def test_json_body_with_nan_or_infinity_stays_readable_by_any_json_consumer(raw: bytes) -> None:
    # GIVEN a model answering application/json with NaN/Infinity (Python's json accepts them;
    # JSON does not) WHEN the result document is written as JSON
    written = json.dumps(document(body=raw), allow_nan=True)
    # THEN it is still standard JSON (a consumer in another language can parse it), and the body
    # reads back exactly
    read = json.loads(written, parse_constant=lambda name: pytest.fail(f"{name} in the result document"))
    assert read.get("bodyText") == raw.decode()


def test_document_fields() -> None:
    # GIVEN a successful invocation with all response members
    doc = document(
        response=response(CustomAttributes="trace=abc", NewSessionId="sess-1; Expires=2026-11-27T08:00:00Z"),
        receive_count=3,
    )
    # THEN the document carries them, in the documented keys
    assert doc == {
        "requestId": "order-42",
        "messageId": "msg-1",
        "endpointName": "my-endpoint",
        "contentType": "application/json",
        "body": {"score": 0.5},
        "invokedProductionVariant": "AllTraffic",
        "customAttributes": "trace=abc",
        "newSessionId": "sess-1; Expires=2026-11-27T08:00:00Z",
        "latencyMs": 12.346,
        "receiveCount": 3,
    }
    assert json.loads(json.dumps(doc)) == doc


def test_closed_session_id_is_reported() -> None:
    # GIVEN a response closing a session WHEN documented THEN closedSessionId is there, newSessionId not
    doc = document(response=response(ClosedSessionId="sess-1"))
    assert doc["closedSessionId"] == "sess-1"
    assert "newSessionId" not in doc


def test_session_ids_absent_and_custom_attributes_null_when_not_returned() -> None:
    # GIVEN a plain response WHEN documented THEN no session keys, and customAttributes is null
    doc = document()
    assert "newSessionId" not in doc
    assert "closedSessionId" not in doc
    assert doc["customAttributes"] is None


def test_body_s3_uri_variant_replaces_the_inline_body() -> None:
    # GIVEN a result stored in S3 (too large for SQS)
    doc = document(body=b'{"big": true}', body_s3_uri="s3://results-bucket/results/order-42.json")
    # THEN the document points at it and holds no inline body
    assert doc["bodyS3Uri"] == "s3://results-bucket/results/order-42.json"
    assert not {"body", "bodyText", "bodyBase64"} & set(doc)


def test_no_body_and_no_uri_gives_no_body_key() -> None:
    # GIVEN neither a body nor a URI WHEN documented THEN no body key at all
    assert not {"body", "bodyText", "bodyBase64", "bodyS3Uri"} & set(document(body=None))


def test_content_type_of_the_response_decides_the_body_encoding() -> None:
    # GIVEN a CSV response WHEN documented THEN its content type is reported and the body is text
    doc = document(response=response(ContentType="text/csv"), body=b"1,2\n")
    assert (doc["contentType"], doc["bodyText"]) == ("text/csv", "1,2\n")
    # GIVEN a response without a content type THEN null, and the body is text
    doc = document(response={"Body": None}, body=b"x")
    assert (doc["contentType"], doc["bodyText"], doc["invokedProductionVariant"]) == (None, "x", None)


@pytest.mark.parametrize(
    ("latency_ms", "expected"), [(12.3456, 12.346), (0.0004, 0.0), (1500.0, 1500.0), (7.1235, 7.123)]
)
def test_latency_is_rounded_to_microseconds(latency_ms: float, expected: float) -> None:
    # GIVEN a measured latency WHEN documented THEN milliseconds with three decimals
    assert document(latency_ms=latency_ms)["latencyMs"] == expected

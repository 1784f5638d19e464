"""The request envelope (and raw mode): SQS body -> InvokeEndpoint request, or a dead-letter reason."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from invoker.envelope import MAX_PAYLOAD_BYTES, InvokeRequest, parse_envelope, parse_raw
from invoker.outcomes import Disposition, InvalidMessage, Reason

MESSAGE_ID = "0b5c3e2a-6f0d-4b8e-9d5a-1f2e3d4c5b6a"
PREFIX = "s3://payload-bucket/incoming/"


def envelope(**members: Any) -> str:
    return json.dumps(members)


def parse(raw_body: str, *, prefix: str | None = None) -> InvokeRequest:
    return parse_envelope(raw_body, MESSAGE_ID, prefix)


def refusal(raw_body: str, *, prefix: str | None = None) -> str:
    """Parses a body that must be refused; returns the reason text."""
    with pytest.raises(InvalidMessage) as raised:
        parse(raw_body, prefix=prefix)
    error = raised.value
    assert (error.reason, error.disposition) == (Reason.INVALID_MESSAGE, Disposition.DEAD_LETTER)
    return error.message


def string_attribute(value: str) -> dict[str, Any]:
    # The shape Lambda's SQS event gives a String message attribute.
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}


# -- the document ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_body",
    ["", "not json", '{"body": 1', "{'body': 1}", '{"body": 1} trailing', "\ufeff" + envelope(body=1)],
    ids=["empty", "text", "truncated", "single-quotes", "trailing-data", "bom"],
)
def test_body_that_is_not_json_is_refused(raw_body: str) -> None:
    # GIVEN a body that is not a JSON document WHEN parsed THEN it is refused as not JSON
    assert refusal(raw_body).startswith("body is not JSON")


@pytest.mark.parametrize("raw_body", ['{"body": NaN}', '{"body": [Infinity]}', '{"body": -Infinity}'])
def test_non_standard_json_constants_are_refused(raw_body: str) -> None:
    # GIVEN NaN/Infinity, which Python's json accepts but JSON (RFC 8259) does not: forwarded as is,
    # the model would receive a body that is not JSON under Content-Type application/json
    # WHEN parsed THEN the message is refused
    refusal(raw_body)


@pytest.mark.parametrize(
    ("raw_body", "key"),
    [
        ('{"bodyText": "\\ud800"}', "bodyText"),  # escaped lone surrogate: plain ASCII on the wire
        ('{"body": {"text": "a\\udfffb"}}', "body"),
        ('{"bodyText": "\ud800"}', "bodyText"),  # the character itself
    ],
    ids=["escaped-bodyText", "escaped-in-body", "literal"],
)
def test_lone_surrogate_in_payload_is_refused(raw_body: str, key: str) -> None:
    # GIVEN text that cannot be encoded as UTF-8 WHEN parsed THEN refused, naming the key
    assert refusal(raw_body).startswith(key)


def test_lone_surrogate_in_member_is_refused() -> None:
    # GIVEN a header member that cannot be encoded WHEN parsed THEN refused, naming it
    assert refusal('{"body": 1, "accept": "\\ud800"}').startswith("accept")


@pytest.mark.parametrize(
    ("raw_body", "kind"),
    [("[1, 2]", "list"), ('"text"', "str"), ("42", "int"), ("1.5", "float"), ("null", "NoneType"),
     ("true", "bool")],
)  # fmt: skip
def test_json_that_is_not_an_object_is_refused(raw_body: str, kind: str) -> None:
    # GIVEN valid JSON that is not an object WHEN parsed THEN refused, saying what it is
    message = refusal(raw_body)
    assert f"JSON {kind}" in message
    assert "not an object" in message


def test_no_body_key_is_refused() -> None:
    # GIVEN an envelope without any body key WHEN parsed THEN refused, listing the keys and "none"
    message = refusal(envelope(contentType="text/csv"))
    assert "exactly one of body, bodyText, bodyBase64, bodyS3Uri" in message
    assert "found: none" in message


@pytest.mark.parametrize(
    "keys",
    [("body", "bodyText"), ("bodyText", "bodyBase64"), ("body", "bodyS3Uri"),
     ("body", "bodyText", "bodyBase64", "bodyS3Uri")],
)  # fmt: skip
def test_two_body_keys_are_refused(keys: tuple[str, ...]) -> None:
    # GIVEN more than one body key (even with valid values)
    values = {"body": 1, "bodyText": "t", "bodyBase64": "dA==", "bodyS3Uri": PREFIX + "k"}
    # WHEN parsed THEN refused, naming the keys found
    message = refusal(envelope(**{key: values[key] for key in keys}), prefix=PREFIX)
    assert f"found: {', '.join(keys)}" in message


def test_unknown_keys_are_refused_and_named() -> None:
    # GIVEN typos next to a valid body WHEN parsed THEN refused, naming each unknown key
    message = refusal(envelope(body=1, content_type="text/csv", Accept="x"))
    assert message == "unknown envelope keys: Accept, content_type"


# -- body ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "payload"),
    [
        ({"instances": [[1.5, 2]], "k": "ü"}, '{"instances":[[1.5,2]],"k":"ü"}'.encode()),
        ([1, {"a": None}], b'[1,{"a":null}]'),
        ("a string", b'"a string"'),
        (42, b"42"),
        (-0.25, b"-0.25"),
        (True, b"true"),
        (None, b"null"),
        ({}, b"{}"),
    ],
    ids=["object", "array", "string", "int", "float", "bool", "null", "empty-object"],
)
def test_body_is_sent_as_compact_utf8_json(value: Any, payload: bytes) -> None:
    # GIVEN any JSON value under "body" WHEN parsed
    request = parse(envelope(body=value))
    # THEN the payload is that value as compact UTF-8 JSON, typed application/json
    assert request.body == payload
    assert request.members == {"ContentType": "application/json"}
    assert request.s3_uri is None


def test_explicit_content_type_wins_over_the_json_default() -> None:
    # GIVEN a JSON body with its own content type WHEN parsed THEN that content type is kept
    request = parse(envelope(body={"a": 1}, contentType="application/vnd+json; v=2"))
    assert request.members["ContentType"] == "application/vnd+json; v=2"


# -- bodyText ------------------------------------------------------------------------------------------


def test_body_text_is_sent_as_utf8_without_a_default_content_type() -> None:
    # GIVEN text, with non-ASCII characters WHEN parsed
    request = parse(envelope(bodyText="1,2,3\nnaïve,日本,🙂", contentType="text/csv"))
    # THEN its UTF-8 bytes are the payload and only the given content type is set
    assert request.body == "1,2,3\nnaïve,日本,🙂".encode()
    assert request.members == {"ContentType": "text/csv"}


def test_body_text_without_content_type_sets_none() -> None:
    # GIVEN text without a content type WHEN parsed THEN no ContentType member is sent
    assert parse(envelope(bodyText="x")).members == {}


@pytest.mark.parametrize("value", [1, None, ["a"], {"a": "b"}, True], ids=repr)
def test_body_text_that_is_not_a_string_is_refused(value: Any) -> None:
    # GIVEN bodyText that is not a string WHEN parsed THEN refused
    assert refusal(envelope(bodyText=value)) == "bodyText must be a string"


# -- bodyBase64 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"\x00\xff\xfe binary", bytes(range(256))], ids=["empty", "short", "all"]
)
def test_body_base64_is_decoded(data: bytes) -> None:
    # GIVEN base64 of arbitrary bytes WHEN parsed THEN the payload is those bytes, no default type
    request = parse(envelope(bodyBase64=base64.b64encode(data).decode()))
    assert request.body == data
    assert request.members == {}


@pytest.mark.parametrize(
    "value",
    ["aGVsbG8=!", "aGVs bG8=", "aGVsbG8", "aGVsbG8==", "aGVsbG8=\n", "-_-_"],
    ids=["bad-char", "space", "missing-padding", "extra-padding", "newline", "urlsafe-alphabet"],
)
def test_invalid_base64_is_refused(value: str) -> None:
    # GIVEN text that is not strict standard base64 WHEN parsed THEN refused as not valid base64
    assert refusal(envelope(bodyBase64=value)).startswith("bodyBase64 is not valid base64")


@pytest.mark.parametrize("value", [123, None, ["aGk="]], ids=repr)
def test_body_base64_that_is_not_a_string_is_refused(value: Any) -> None:
    # GIVEN bodyBase64 that is not a string WHEN parsed THEN refused
    assert refusal(envelope(bodyBase64=value)) == "bodyBase64 must be a string"


# -- bodyS3Uri -----------------------------------------------------------------------------------------


def test_body_s3_uri_is_returned_as_bucket_and_key() -> None:
    # GIVEN a URI under the route's allowed prefix WHEN parsed
    request = parse(envelope(bodyS3Uri=PREFIX + "2026/11/req-1.json", contentType="text/csv"), prefix=PREFIX)
    # THEN the payload is to be fetched from that bucket and key, members kept
    assert request.s3_uri == ("payload-bucket", "incoming/2026/11/req-1.json")
    assert request.body is None
    assert request.members == {"ContentType": "text/csv"}


def test_body_s3_uri_refused_when_the_route_has_no_prefix() -> None:
    # GIVEN PAYLOAD_S3_PREFIX unset WHEN a bodyS3Uri arrives THEN refused, saying it is not enabled
    assert "not enabled" in refusal(envelope(bodyS3Uri=PREFIX + "k"), prefix=None)


@pytest.mark.parametrize(
    "uri",
    [
        "s3://payload-bucket/other/k",
        "s3://payload-bucket/incomingX/k",
        "s3://other-bucket/incoming/k",
        "s3://payload-bucket-2/incoming/k",
    ],
)
def test_body_s3_uri_outside_the_prefix_is_refused(uri: str) -> None:
    # GIVEN a URI outside the allowed prefix WHEN parsed THEN refused, naming the prefix
    assert refusal(envelope(bodyS3Uri=uri), prefix=PREFIX) == f"bodyS3Uri must start with {PREFIX}"


@pytest.mark.parametrize(
    "uri",
    ["https://payload-bucket.s3.amazonaws.com/incoming/k", "payload-bucket/incoming/k", "s3://payload-bucket",
     "s3://payload-bucket/", "s3://Payload_Bucket/incoming/k", "s3:/payload-bucket/incoming/k"],
)  # fmt: skip
def test_body_s3_uri_that_is_not_an_s3_uri_is_refused(uri: str) -> None:
    # GIVEN something that is not s3://bucket/key WHEN parsed THEN refused as such
    assert "is not an s3://bucket/key URI" in refusal(envelope(bodyS3Uri=uri), prefix=PREFIX)


def test_body_s3_uri_that_is_not_a_string_is_refused() -> None:
    # GIVEN a non-string URI WHEN parsed THEN refused
    assert refusal(envelope(bodyS3Uri=["s3://x"]), prefix=PREFIX) == "bodyS3Uri must be a string"


def test_body_s3_uri_with_trailing_newline_is_not_silently_shortened() -> None:
    # GIVEN a URI ending in a newline (an S3 key may contain one, so this names another object)
    uri = PREFIX + "req-1.json\n"
    # WHEN parsed THEN it is either refused or kept exactly; never the key without its newline
    try:
        request = parse(envelope(bodyS3Uri=uri), prefix=PREFIX)
    except InvalidMessage:
        return
    assert request.s3_uri == ("payload-bucket", "incoming/req-1.json\n")


# -- payload size --------------------------------------------------------------------------------------


# Envelopes whose payload is exactly n bytes, one per body key that carries the payload inline.
SIZED_ENVELOPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "bodyText": lambda n: {"bodyText": "x" * n},
    "bodyText-2-byte-chars": lambda n: {"bodyText": "é" * (n // 2) + "x" * (n % 2)},  # bytes count
    "bodyBase64": lambda n: {"bodyBase64": base64.b64encode(b"\x00" * n).decode()},
    "body": lambda n: {"body": "x" * (n - 2)},  # the JSON string's two quotes are part of the payload
}


@pytest.mark.parametrize("kind", sorted(SIZED_ENVELOPES))
def test_payload_at_the_limit_is_accepted_and_one_byte_more_refused(kind: str) -> None:
    make = SIZED_ENVELOPES[kind]
    # GIVEN a payload of exactly 6,291,456 bytes WHEN parsed THEN accepted
    request = parse(json.dumps(make(6_291_456), ensure_ascii=False))
    assert request.body is not None
    assert len(request.body) == MAX_PAYLOAD_BYTES == 6_291_456
    # GIVEN one byte more WHEN parsed THEN refused, with the size and the limit
    assert refusal(json.dumps(make(6_291_457), ensure_ascii=False)) == (
        "payload is 6291457 bytes, above InvokeEndpoint's limit of 6291456"
    )


# -- requestId -----------------------------------------------------------------------------------------


def test_request_id_defaults_to_the_message_id() -> None:
    # GIVEN no requestId (or null) WHEN parsed THEN the SQS message id identifies the request
    assert parse(envelope(body=1)).request_id == MESSAGE_ID
    assert parse(envelope(body=1, requestId=None)).request_id == MESSAGE_ID


@pytest.mark.parametrize(
    "request_id", ["a", "0", "order-42", "A.b_c:d-e", "x" * 128, "9" + "-" * 127], ids=lambda v: v[:16]
)
def test_valid_request_ids_are_kept(request_id: str) -> None:
    # GIVEN a requestId within the pattern and 1-128 characters WHEN parsed THEN it is used
    assert parse(envelope(body=1, requestId=request_id)).request_id == request_id


@pytest.mark.parametrize(
    "request_id",
    ["", "x" * 129, "-leading-hyphen", ".dot", "has space", "slash/in", "ünïcode", "tab\tin", "new\nline",
     "trailing-newline\n", "x" * 128 + "\n", 42, ["a"], True],
    ids=repr,
)  # fmt: skip
def test_invalid_request_ids_are_refused(request_id: Any) -> None:
    # GIVEN a requestId outside the pattern, too long, or not a string WHEN parsed THEN refused
    assert refusal(envelope(body=1, requestId=request_id)).startswith("requestId must be 1-128 characters")


@pytest.mark.parametrize(
    ("raw_body", "request_id"),
    [
        (envelope(requestId="order-42", body=1, extra=True), "order-42"),
        (envelope(requestId="order-42", bodyText=1), "order-42"),
        (envelope(requestId="order-42", body=1, accept="a" * 1025), "order-42"),
        (envelope(body=1, bodyText="x"), MESSAGE_ID),
        (envelope(requestId="bad id", body=1), None),
        ("not json", None),
        ("[1]", None),
    ],
    ids=[
        "unknown-key",
        "bad-body",
        "bad-member",
        "no-request-id",
        "bad-request-id",
        "not-json",
        "not-object",
    ],
)
def test_refusal_carries_the_request_id_when_it_could_be_read(raw_body: str, request_id: str | None) -> None:
    # GIVEN a refused message WHEN parsed THEN the refusal names its request id, if it had a valid one
    # (or the message id it defaults to), so that the dead letter is traceable by it
    with pytest.raises(InvalidMessage) as raised:
        parse(raw_body)
    assert raised.value.request_id == request_id


# -- optional members ----------------------------------------------------------------------------------

# envelope key -> (InvokeEndpoint member, min length, max length)
MEMBERS = {
    "contentType": ("ContentType", 0, 1024),
    "accept": ("Accept", 0, 1024),
    "customAttributes": ("CustomAttributes", 0, 1024),
    "targetModel": ("TargetModel", 1, 1024),
    "targetVariant": ("TargetVariant", 1, 63),
    "targetContainerHostname": ("TargetContainerHostname", 1, 63),
    "inferenceId": ("InferenceId", 1, 64),
    "enableExplanations": ("EnableExplanations", 1, 64),
    "inferenceComponentName": ("InferenceComponentName", 1, 63),
    "sessionId": ("SessionId", 1, 256),
}


def test_all_members_together_are_mapped_to_their_invoke_endpoint_names() -> None:
    # GIVEN every optional member at once
    values = {key: f"v-{key}" for key in MEMBERS}
    # WHEN parsed
    request = parse(envelope(bodyText="x", **values))
    # THEN each appears under its InvokeEndpoint member name, and nothing else
    assert request.members == {member: values[key] for key, (member, _, _) in MEMBERS.items()}


@pytest.mark.parametrize("key", sorted(MEMBERS))
def test_member_lengths_at_the_limits_are_accepted(key: str) -> None:
    member, low, high = MEMBERS[key]
    for length in {low, max(low, 1), high}:
        # GIVEN the member at its minimum and maximum length WHEN parsed THEN it is passed on
        request = parse(envelope(body=1, **{key: "a" * length}))
        assert request.members[member] == "a" * length


@pytest.mark.parametrize("key", sorted(MEMBERS))
def test_member_lengths_outside_the_limits_are_refused(key: str) -> None:
    _, low, high = MEMBERS[key]
    # GIVEN the member one character above its maximum WHEN parsed THEN refused with the limits
    assert refusal(envelope(body=1, **{key: "a" * (high + 1)})) == (
        f"{key} must be {low}-{high} characters long (got {high + 1})"
    )
    if low > 0:
        # GIVEN an empty value where one character is the minimum WHEN parsed THEN refused
        assert refusal(envelope(body=1, **{key: ""})) == f"{key} must be {low}-{high} characters long (got 0)"


@pytest.mark.parametrize("key", sorted(MEMBERS))
@pytest.mark.parametrize("value", [1, None, ["a"], {"a": 1}], ids=repr)
def test_member_that_is_not_a_string_is_refused(key: str, value: Any) -> None:
    # GIVEN a non-string member WHEN parsed THEN refused, naming it
    assert refusal(envelope(body=1, **{key: value})) == f"{key} must be a string"


def test_custom_attributes_must_be_ascii() -> None:
    # GIVEN non-ASCII custom attributes WHEN parsed THEN refused (the header is ASCII only)
    assert refusal(envelope(body=1, customAttributes="trace=ü")) == "customAttributes must be ASCII"
    # and ASCII ones, including punctuation, pass
    assert parse(envelope(body=1, customAttributes='a=1; b="x,y"')).members["CustomAttributes"] == (
        'a=1; b="x,y"'
    )


@pytest.mark.parametrize("key", ["contentType", "accept"])
def test_content_type_and_accept_must_be_ascii(key: str) -> None:
    # GIVEN a non-ASCII media type: the service model gives ContentType and Accept the pattern
    # \p{ASCII}* as it does CustomAttributes WHEN parsed THEN refused before the call
    refusal(envelope(body=1, **{key: "text/plain; charset=ütf-8"}))


@pytest.mark.parametrize("key", sorted(MEMBERS))
def test_member_with_a_line_break_is_refused(key: str) -> None:
    # GIVEN a header member holding CR/LF: the HTTP client refuses such a header value, and botocore
    # raises HTTPClientError, which is classified as a transport error and retried until exhaustion
    # WHEN parsed THEN the message is refused at once instead
    refusal(envelope(body=1, **{key: "a\r\nX-Injected: 1"}))


# -- raw mode ------------------------------------------------------------------------------------------


def test_raw_body_is_the_payload_and_attributes_give_the_members() -> None:
    # GIVEN a raw message with ContentType, Accept and RequestId attributes as Lambda delivers them
    attributes = {
        "ContentType": string_attribute("text/csv"),
        "Accept": string_attribute("application/json"),
        "RequestId": string_attribute("batch-7:row-12"),
        "Unrelated": string_attribute("ignored"),
    }
    # WHEN parsed
    request = parse_raw("1,2,3\nü,5,6", MESSAGE_ID, attributes)
    # THEN the body bytes are the payload and the attributes become the members and request id
    assert request == InvokeRequest(
        "batch-7:row-12",
        "1,2,3\nü,5,6".encode(),
        None,
        {"ContentType": "text/csv", "Accept": "application/json"},
    )


def test_raw_body_that_looks_like_an_envelope_is_not_interpreted() -> None:
    # GIVEN raw mode and a body that happens to be an envelope WHEN parsed THEN it is sent verbatim
    body = envelope(body={"a": 1})
    request = parse_raw(body, MESSAGE_ID, {})
    assert (request.body, request.members, request.request_id) == (body.encode(), {}, MESSAGE_ID)


def test_raw_binary_attribute_is_refused() -> None:
    # GIVEN ContentType sent as a Binary attribute WHEN parsed THEN refused, naming the attribute
    attributes = {
        "ContentType": {
            "binaryValue": "dGV4dC9jc3Y=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        }
    }
    with pytest.raises(InvalidMessage) as raised:
        parse_raw("x", MESSAGE_ID, attributes)
    assert raised.value.message == "message attribute ContentType must be a String attribute"


@pytest.mark.parametrize(
    ("attributes", "start"),
    [
        ({"RequestId": string_attribute("bad id")}, "requestId must be"),
        ({"ContentType": string_attribute("t" * 1025)}, "ContentType must be 0-1024"),
        ({"Accept": string_attribute("a" * 1025)}, "Accept must be 0-1024"),
    ],
    ids=["request-id", "content-type", "accept"],
)
def test_raw_invalid_attribute_values_are_refused(attributes: dict[str, Any], start: str) -> None:
    # GIVEN an attribute value outside its rules WHEN parsed THEN refused
    with pytest.raises(InvalidMessage) as raised:
        parse_raw("x", MESSAGE_ID, attributes)
    assert raised.value.message.startswith(start)


def test_raw_payload_size_limit() -> None:
    # GIVEN a raw body at the limit THEN accepted; one byte more THEN refused
    assert parse_raw("x" * MAX_PAYLOAD_BYTES, MESSAGE_ID, {}).body == b"x" * MAX_PAYLOAD_BYTES
    with pytest.raises(InvalidMessage):
        parse_raw("x" * (MAX_PAYLOAD_BYTES + 1), MESSAGE_ID, {})

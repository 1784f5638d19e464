"""The request envelope (and raw mode): SQS body -> InvokeEndpoint request, or a dead-letter reason."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import botocore.session
import pytest
from invoker.contract import INVOKE_ENDPOINT_MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES
from invoker.contract import Disposition, Reason
from invoker.envelope import MEMBERS as PARSER_MEMBERS
from invoker.envelope import InvokeRequest, parse_envelope, parse_raw
from invoker.outcomes import InvalidMessage

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


@pytest.mark.parametrize(
    "raw_body",
    ['{"body": 1e999}', '{"body": [-1e999]}', '{"body": {"x": 1E400}}', '{"body": 1e-400}',
     '{"body": 0.1000000000000000000001}', '{"body": 12345678901234567890.5}',
     '{"bodyText": "x", "n": 1e999}'],
    ids=["inf", "minus-inf", "nested-inf", "underflow", "too-precise", "too-many-digits", "outside-body"],
)  # fmt: skip
def test_numbers_that_would_reach_the_endpoint_changed_are_refused(raw_body: str) -> None:
    # GIVEN a number a double cannot hold exactly: re-serialised it would become Infinity (not JSON),
    # 0.0 or another number WHEN parsed THEN refused, pointing at bodyText to keep the digits
    message = refusal(raw_body)
    assert "cannot be forwarded exactly" in message
    assert "bodyText" in message


@pytest.mark.parametrize(
    ("number", "sent"),
    [("0.1", "0.1"), ("1.0", "1.0"), ("1e2", "100.0"), ("1E+2", "100.0"), ("2.50", "2.5"),
     ("-0.0", "-0.0"), ("5e-324", "5e-324"), ("1.7976931348623157e308", "1.7976931348623157e+308"),
     ("123456789012345678901234567890", "123456789012345678901234567890"), ("-0", "0")],
)  # fmt: skip
def test_numbers_that_survive_the_round_trip_are_sent_as_the_same_number(number: str, sent: str) -> None:
    # GIVEN a number whose written value a double (or, for integers, Python's int) holds exactly
    # WHEN parsed THEN it is sent as the same number (its shortest form)
    assert parse(f'{{"body": [{number}]}}').body == f"[{sent}]".encode()


@pytest.mark.parametrize(
    ("raw_body", "named"),
    [('{"body": 1, "body": 2}', "the key 'body'"),
     ('{"body": {"a": 1, "a": 2}}', "a key"),
     ('{"body": [{"x": {"deep": 1, "deep": 1}}]}', "a key"),
     ('{"bodyText": "x", "accept": "a", "accept": "b"}', "the key 'accept'")],
    ids=["envelope", "body", "deep", "member"],
)  # fmt: skip
def test_duplicate_keys_at_any_depth_are_refused(raw_body: str, named: str) -> None:
    # GIVEN an object that repeats a key (Python keeps the last, other parsers the first or fail)
    # WHEN parsed THEN refused; an envelope key is named, a body key (payload text) is not
    assert refusal(raw_body) == (
        f"a JSON object in the message repeats {named} (ambiguous: JSON parsers differ on which counts)"
    )


@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_deeper_than_the_parser_allows_is_refused(depth: int, opener: str) -> None:
    # GIVEN a body nested past the parser's recursion limit (it raised RecursionError: unexpected_error,
    # retried until exhaustion) WHEN parsed THEN refused at once
    closer = "]" if opener == "[" else "}"
    assert refusal('{"body":' + opener * depth + "1" + closer * depth + "}") == (
        "body is JSON nested too deeply to parse"
    )


def test_json_nested_within_the_limit_is_sent() -> None:
    # GIVEN a body nested 500 levels deep WHEN parsed THEN sent unchanged
    body = "[" * 500 + "]" * 500
    assert parse('{"body":' + body + "}").body == body.encode()


def test_body_base64_with_non_ascii_characters_is_refused() -> None:
    # GIVEN base64 text with a non-ASCII character (the decoder raised ValueError, not binascii.Error)
    # WHEN parsed THEN refused as invalid base64
    assert refusal(envelope(bodyBase64="aGVsbG8é")).startswith("bodyBase64 is not valid base64")


def test_unknown_key_with_unprintable_text_is_named_escaped() -> None:
    # GIVEN an unknown key holding a lone surrogate and a line break WHEN parsed
    message = refusal('{"body": 1, "x\\ud800\\ny": 1}')
    # THEN the reason names it in printable ASCII (it becomes a log field and a message attribute)
    assert message == "unknown envelope keys: x\\ud800\\x0ay"
    assert message.isascii()
    assert message.isprintable()


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


@pytest.mark.parametrize("key", ["req\\u0001.json", "req\\u007f", "req\\uffff", "req\\ud800"])
def test_body_s3_uri_with_characters_sqs_cannot_carry_is_refused(key: str) -> None:
    # GIVEN a key with a control character, a noncharacter or a lone surrogate: the reason of a failed
    # read quotes the key, and SQS would refuse it in the dead-letter copy (dead_letter_failed on every
    # receive) WHEN parsed THEN refused at once
    refusal(f'{{"bodyS3Uri": "{PREFIX}{key}"}}', prefix=PREFIX)


def test_body_s3_uri_with_a_key_over_1024_bytes_is_refused() -> None:
    assert refusal(envelope(bodyS3Uri=PREFIX + "é" * 510), prefix=PREFIX) == (
        "bodyS3Uri names a key longer than S3's 1024 bytes"
    )
    assert parse(envelope(bodyS3Uri=PREFIX + "é" * 506), prefix=PREFIX).s3_uri is not None


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

# The model as botocore's client sees it (a different reading path than the parser's own).
_INPUT = (
    botocore.session.get_session()
    .get_service_model("sagemaker-runtime")
    .operation_model("InvokeEndpoint")
    .input_shape
)
assert _INPUT is not None
# envelope key -> (InvokeEndpoint member, min length, max length)
MEMBERS: dict[str, tuple[str, int, int]] = {
    name[0].lower() + name[1:]: (name, shape.metadata.get("min", 0), shape.metadata["max"])
    for name, shape in _INPUT.members.items()
    if shape.serialization.get("location") == "header"
}


def test_every_header_member_of_invoke_endpoint_is_an_envelope_key() -> None:
    # GIVEN botocore's service model WHEN its header members are listed THEN they are exactly the ones
    # docs/function.md documents (a new one in a botocore upgrade must be documented and given a CLI flag)
    assert sorted(MEMBERS) == sorted(
        ["contentType", "accept", "customAttributes", "targetModel", "targetVariant",
         "targetContainerHostname", "inferenceId", "enableExplanations", "inferenceComponentName",
         "sessionId", "prefixAwareId"]
    )  # fmt: skip
    # AND the parser knows each, under its InvokeEndpoint name
    assert {key: rule.member for key, rule in PARSER_MEMBERS.items()} == {k: v[0] for k, v in MEMBERS.items()}


def test_all_members_together_are_mapped_to_their_invoke_endpoint_names() -> None:
    # GIVEN every optional member at once, prefixAwareId included
    values = {key: f"v-{key}" for key in MEMBERS}
    # WHEN parsed
    request = parse(envelope(bodyText="x", **values))
    # THEN each appears under its InvokeEndpoint member name, and nothing else
    assert request.members == {member: values[key] for key, (member, _, _) in MEMBERS.items()}
    assert request.members["PrefixAwareId"] == "v-prefixAwareId"


@pytest.mark.parametrize("key", sorted(MEMBERS))
def test_member_lengths_at_the_limits_are_accepted(key: str) -> None:
    member, low, high = MEMBERS[key]
    for length in {max(low, 1), high}:
        # GIVEN the member at its minimum and maximum length WHEN parsed THEN it is passed on
        request = parse(envelope(body=1, **{key: "a" * length}))
        assert request.members[member] == "a" * length


@pytest.mark.parametrize("key", sorted(MEMBERS))
def test_member_lengths_outside_the_limits_are_refused(key: str) -> None:
    _, low, high = MEMBERS[key]
    bounds = f"{low}-{high}" if low else f"at most {high}"
    # GIVEN the member one character above its maximum WHEN parsed THEN refused with the limits
    assert refusal(envelope(body=1, **{key: "a" * (high + 1)})) == (
        f"{key} must be {bounds} characters long (got {high + 1})"
    )
    if low > 0:
        # GIVEN an empty value where one character is the minimum WHEN parsed THEN refused
        assert refusal(envelope(body=1, **{key: ""})) == f"{key} must be {bounds} characters long (got 0)"


@pytest.mark.parametrize(
    ("key", "accepted"),
    [("contentType", True), ("accept", True), ("customAttributes", True), ("targetModel", False),
     ("targetVariant", False), ("targetContainerHostname", False), ("inferenceId", False),
     ("enableExplanations", False), ("inferenceComponentName", False), ("sessionId", False),
     ("prefixAwareId", False)],
)  # fmt: skip
def test_empty_member_follows_the_model(key: str, accepted: bool) -> None:
    # GIVEN an empty value WHEN parsed THEN accepted only where the model's length and pattern allow it
    if accepted:
        assert parse(envelope(body=1, **{key: ""})).members[MEMBERS[key][0]] == ""
    else:
        refusal(envelope(body=1, **{key: ""}))


@pytest.mark.parametrize("key", sorted(MEMBERS))
@pytest.mark.parametrize("value", [1, None, ["a"], {"a": 1}], ids=repr)
def test_member_that_is_not_a_string_is_refused(key: str, value: Any) -> None:
    # GIVEN a non-string member WHEN parsed THEN refused, naming it
    assert refusal(envelope(body=1, **{key: value})) == f"{key} must be a string"


@pytest.mark.parametrize("key", sorted(MEMBERS))
@pytest.mark.parametrize("value", ["modèle.tar.gz", "caf\u00e9-1", "a\u00a0b", "\u65e5\u672c"], ids=repr)
def test_non_ascii_member_is_refused(key: str, value: str) -> None:
    # GIVEN a header member outside ASCII (targetModel "modèle.tar.gz", an inferenceId with an accent):
    # sent, it fails the request's SigV4 signature on every attempt WHEN parsed THEN refused at once
    value = value.encode().decode("unicode_escape") if "\\u" in value else value
    message = refusal(envelope(body=1, **{key: value}))
    assert message.startswith(f"{key} must be ASCII (it is sent as the HTTP header ")


def test_custom_attributes_may_hold_any_ascii_punctuation() -> None:
    assert parse(envelope(body=1, customAttributes='a=1; b="x,y"')).members["CustomAttributes"] == (
        'a=1; b="x,y"'
    )


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("targetVariant", "blue--green-2", True),
        ("targetVariant", "blue variant", False),
        ("targetVariant", "-blue", False),
        ("targetVariant", "blue-", False),
        ("targetVariant", "blue_2", False),
        ("targetContainerHostname", "container-1", True),
        ("targetContainerHostname", "container.1", False),
        ("inferenceComponentName", "ic-1", True),
        ("inferenceComponentName", "ic-", False),
        ("inferenceComponentName", "ic_1", False),
        ("sessionId", "NEW_SESSION", True),
        ("sessionId", "0a1b-2c3d", True),
        ("sessionId", "new_session", False),
        ("sessionId", "NEW_SESSION-2", False),
        ("targetModel", "models/v2/model.tar.gz", True),
        ("targetModel", "a b", True),
        ("targetModel", " leading-space", False),
        ("inferenceId", "order 42 / try #1", True),
        ("inferenceId", " x", False),
        ("prefixAwareId", "tenant-7:chat", True),
        ("prefixAwareId", " tenant", False),
        ("enableExplanations", "`true`", True),
    ],
)
def test_members_follow_the_model_patterns(key: str, value: str, accepted: bool) -> None:
    # GIVEN a value inside or outside its member's pattern in the service model WHEN parsed
    # THEN it is passed on, or refused naming the member and the pattern
    if accepted:
        assert parse(envelope(body=1, **{key: value})).members[MEMBERS[key][0]] == value
    else:
        message = refusal(envelope(body=1, **{key: value}))
        assert message.startswith(f"{key} must match InvokeEndpoint's pattern for {MEMBERS[key][0]}: ")


@pytest.mark.parametrize("key", sorted(MEMBERS))
@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\tb", "a\x00", "a\x7f"], ids=repr)
def test_member_with_a_control_character_is_refused(key: str, value: str) -> None:
    # GIVEN a header member holding CR/LF: the HTTP client refuses such a header value, and botocore
    # raises HTTPClientError, which is classified as a transport error and retried until exhaustion
    # (tabs and other controls are rewritten by SigV4's canonical form) WHEN parsed THEN refused at once
    value = value.encode().decode("unicode_escape")
    refusal(envelope(body=1, **{key: value}))


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
        ({"ContentType": string_attribute("t" * 1025)}, "ContentType must be at most 1024"),
        ({"Accept": string_attribute("a" * 1025)}, "Accept must be at most 1024"),
        ({"TargetModel": string_attribute("modèle.tar.gz")}, "TargetModel must be ASCII"),
        ({"InferenceId": string_attribute("café")}, "InferenceId must be ASCII"),
        ({"TargetVariant": string_attribute("blue variant")}, "TargetVariant must match"),
        ({"SessionId": string_attribute("new_session")}, "SessionId must match"),
        ({"PrefixAwareId": string_attribute("x" * 65)}, "PrefixAwareId must be 1-64"),
        ({"CustomAttributes": string_attribute("a\r\nb")}, "CustomAttributes must not contain"),
        ({"TargetModel": {"dataType": "String"}}, "message attribute TargetModel must be a String"),
        ({"Accept": "text/csv"}, "message attribute Accept must be a String"),
    ],
    ids=[
        "request-id",
        "content-type",
        "accept",
        "target-model-accent",
        "inference-id-accent",
        "variant-pattern",
        "session-pattern",
        "prefix-aware-id-long",
        "custom-crlf",
        "no-value",
        "not-an-attribute",
    ],
)
def test_raw_invalid_attribute_values_are_refused(attributes: dict[str, Any], start: str) -> None:
    # GIVEN an attribute value outside its rules WHEN parsed THEN refused
    with pytest.raises(InvalidMessage) as raised:
        parse_raw("x", MESSAGE_ID, attributes)
    assert raised.value.message.startswith(start)


def test_raw_every_header_member_travels_as_an_attribute_named_by_the_member() -> None:
    # GIVEN a raw message with a valid String attribute for every header member of InvokeEndpoint
    values = {member: f"v-{member}" for member, _, _ in MEMBERS.values()}
    attributes = {member: string_attribute(value) for member, value in values.items()}
    # WHEN parsed THEN each becomes its member, PrefixAwareId included
    request = parse_raw("x", MESSAGE_ID, attributes)
    assert request.members == values
    assert request.members["PrefixAwareId"] == "v-PrefixAwareId"


def test_raw_ignores_the_functions_own_and_the_producers_other_attributes() -> None:
    # GIVEN a redriven raw message: the function's invoker.* bookkeeping (even with values that would
    # be invalid as members), the producer's own attributes, and a member name in another case
    attributes = {
        "invoker.redrive_count": {"stringValue": "2", "dataType": "Number"},
        "invoker.reason": string_attribute("model_error"),
        "invoker.error": string_attribute("modèle\r\n"),
        "invoker.blob": {"binaryValue": "not base64!", "dataType": "Binary"},
        "traceparent": string_attribute("00-abc-01"),
        "targetModel": string_attribute("modèle"),  # not a member name: the producer's own
        "ContentType": string_attribute("text/csv"),
    }
    # WHEN parsed THEN only the member attribute is read
    request = parse_raw("x", MESSAGE_ID, attributes)
    assert request.members == {"ContentType": "text/csv"}


@pytest.mark.parametrize("attributes", [["ContentType"], "text", 42], ids=repr)
def test_raw_attributes_that_are_not_a_map_are_refused(attributes: Any) -> None:
    # GIVEN message attributes that are not a map WHEN parsed THEN refused, not a crash
    with pytest.raises(InvalidMessage):
        parse_raw("x", MESSAGE_ID, attributes)


def test_raw_body_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_raw("a\ud800", MESSAGE_ID, {})
    assert raised.value.message.startswith("body holds text that is not valid Unicode")


def test_raw_payload_size_limit() -> None:
    # GIVEN a raw body at the limit THEN accepted; one byte more THEN refused
    assert parse_raw("x" * MAX_PAYLOAD_BYTES, MESSAGE_ID, {}).body == b"x" * MAX_PAYLOAD_BYTES
    with pytest.raises(InvalidMessage):
        parse_raw("x" * (MAX_PAYLOAD_BYTES + 1), MESSAGE_ID, {})

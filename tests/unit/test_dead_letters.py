"""The dead-letter copy's size (as SQS counts it), its fitting under 1 MiB, and the redrive count."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st
from invoker import dead_letters
from invoker.contract import SQS_MAX_MESSAGE_BYTES
from invoker.contract import LetterAttribute as Attr
from invoker.sqs_batch import message_size

from tests.unit.fakes import sqs_size

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

LIMIT = SQS_MAX_MESSAGE_BYTES
sqs_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))


def ours(error: str = "the model said no") -> dict[str, MessageAttributeValueTypeDef]:
    return {
        Attr.REASON: dead_letters.text("model_error"),
        Attr.ERROR: dead_letters.text(error),
        Attr.REQUEST_ID: dead_letters.text("r-1"),
        Attr.MESSAGE_ID: dead_letters.text("00000000-0000-4000-8000-00000000000a"),
        Attr.RECEIVE_COUNT: dead_letters.number(1),
        Attr.SOURCE_QUEUE_ARN: dead_letters.text("arn:aws:sqs:us-east-1:123456789012:requests"),
    }


def test_size_counts_utf8_bytes_of_body_names_types_and_values() -> None:
    # GIVEN a non-ASCII body, a String attribute with a custom type label and a Binary attribute
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "note": {"DataType": "String.é", "StringValue": "ü"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
    }
    # WHEN sized THEN every part counts in UTF-8 bytes: 2 + (4+9+2) + (4+6+3)
    assert message_size("é", attributes) == 2 + 15 + 13


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(sqs_chars, max_size=50),
    attributes=st.dictionaries(
        st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
        st.one_of(
            st.builds(lambda v: {"DataType": "String", "StringValue": v}, st.text(sqs_chars, min_size=1)),
            st.builds(lambda v: {"DataType": "Binary", "BinaryValue": v}, st.binary(min_size=1)),
        ),
        max_size=10,
    ),
)
def test_size_agrees_with_an_independent_count(body: str, attributes: dict[str, Any]) -> None:
    assert message_size(body, attributes) == sqs_size({"MessageBody": body, "MessageAttributes": attributes})


@settings(max_examples=60, deadline=None)
@given(
    body_bytes=st.integers(min_value=LIMIT - 6000, max_value=LIMIT),
    error=st.text(sqs_chars, max_size=1024),
    # 6 of ours + 4: within SQS's 10 attributes, so any drop here is for size
    producer_values=st.lists(st.integers(min_value=1, max_value=3000), max_size=4),
)
def test_a_fitted_letter_never_exceeds_the_limit_and_keeps_the_reason(
    body_bytes: int, error: str, producer_values: list[int]
) -> None:
    # GIVEN a body near 1 MiB, our attributes with any error text, and producer attributes of any size
    body = "é" * (body_bytes // 2) + "x" * (body_bytes % 2)
    producer: dict[str, MessageAttributeValueTypeDef] = {
        f"attr{i}": {"DataType": "String", "StringValue": "v" * size}
        for i, size in enumerate(producer_values)
    }
    # WHEN fitted
    letter = dead_letters.fit(body, ours(error or "x"), producer)
    # THEN it is None (pointer needed) only when the body cannot fit with our mandatory attributes
    mandatory = {k: v for k, v in ours().items() if k != Attr.ERROR}
    if letter is None:
        assert message_size(body, mandatory) > LIMIT
        return
    # AND otherwise it fits as SQS counts, with every mandatory attribute and the body unchanged
    assert sqs_size({"MessageBody": letter.body, "MessageAttributes": letter.attributes}) <= LIMIT
    assert letter.body == body
    assert mandatory.items() <= letter.attributes.items()
    # AND a producer attribute is only dropped once our error text is gone entirely
    if letter.dropped:
        assert Attr.ERROR not in letter.attributes


def test_our_error_text_is_trimmed_before_any_producer_attribute_is_dropped() -> None:
    # GIVEN a body that fits with everything but 100 bytes of the error text
    producer: dict[str, MessageAttributeValueTypeDef] = {"tenant": dead_letters.text("acme")}
    full = message_size("", {**ours("e" * 1024), **producer})
    body = "b" * (LIMIT - full + 100)
    # WHEN fitted
    letter = dead_letters.fit(body, ours("e" * 1024), producer)
    # THEN the error lost exactly 100 bytes and the producer attribute is kept
    assert letter is not None
    assert letter.attributes[Attr.ERROR].get("StringValue") == "e" * 924
    assert letter.error_trimmed
    assert letter.dropped == ()
    assert letter.attributes["tenant"] == {"DataType": "String", "StringValue": "acme"}
    assert message_size(letter.body, letter.attributes) == LIMIT


def test_a_body_that_cannot_fit_with_the_reason_needs_a_pointer() -> None:
    body = "b" * (LIMIT - 20)
    assert dead_letters.fit(body, ours(), {}) is None
    # AND the pointer letter fits, whatever was around it
    uri = "s3://bucket/dead-letters/00000000-0000-4000-8000-00000000000a.body"
    pointer = dead_letters.fit(
        dead_letters.pointer_body(uri), {**ours(), Attr.BODY_S3_URI: dead_letters.text(uri)}, {}
    )
    assert pointer is not None
    assert (
        pointer.body
        == '{"invokerBodyS3Uri":"s3://bucket/dead-letters/00000000-0000-4000-8000-00000000000a.body"}'
    )


def test_at_most_ten_attributes_ours_first() -> None:
    producer = {f"p{i}": dead_letters.text("v") for i in range(10)}
    letter = dead_letters.fit("body", ours(), producer)
    assert letter is not None
    assert len(letter.attributes) == 10
    assert ours().keys() <= letter.attributes.keys()
    assert letter.dropped == ("p4", "p5", "p6", "p7", "p8", "p9")


def test_text_sqs_refuses_is_replaced() -> None:
    assert dead_letters.text("a\x00b\x1fc\ud800")["StringValue"] == "a\ufffdb\ufffdc\ufffd"


def test_producer_attributes_that_cannot_be_sent_are_dropped_by_name() -> None:
    # GIVEN the attributes of Powertools' sqsEvent.json fixture (a non-base64 binaryValue on a Number),
    # a Binary that is not base64, and values SendMessage would refuse
    incoming = {
        "testAttr": {"stringValue": "100", "binaryValue": "base64Str", "dataType": "Number"},
        "blob": {"binaryValue": "base64Str", "dataType": "Binary"},
        "good_blob": {"binaryValue": base64.b64encode(b"\x00\xff").decode(), "dataType": "Binary"},
        "nan": {"stringValue": "NaN", "dataType": "Number"},
        "empty": {"stringValue": "", "dataType": "String"},
        "control": {"stringValue": "a\x00", "dataType": "String"},
        "AWS.reserved": {"stringValue": "x", "dataType": "String"},
        "weird-type": {"stringValue": "x", "dataType": "Text"},
        "not-a-dict": "x",
        "invoker.reason": {"stringValue": "model_error", "dataType": "String"},
    }
    # WHEN converted
    kept, bad = dead_letters.producer_attributes(incoming)
    # THEN what SQS accepts is kept in SendMessage's shape; the rest is named; ours are left out
    assert kept == {
        "testAttr": {"DataType": "Number", "StringValue": "100"},
        "good_blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    assert sorted(bad) == sorted(
        ["blob", "nan", "empty", "control", "AWS.reserved", "weird-type", "not-a-dict"]
    )


def _number(value: str) -> dict[str, str]:
    return {"stringValue": value, "dataType": "Number"}


def test_redrive_count() -> None:
    reason = {"stringValue": "model_error", "dataType": "String"}
    # a letter moved back unchanged (SQS's move task keeps attributes): one more redrive
    assert dead_letters.redrive_count({"invoker.reason": reason}) == 1
    assert dead_letters.redrive_count({"invoker.reason": reason, "invoker.redrive_count": _number("2")}) == 3
    # the CLI's redrive strips ours and sets the count: kept as it is
    assert dead_letters.redrive_count({"invoker.redrive_count": _number("2")}) == 2
    # never redriven
    assert dead_letters.redrive_count({}) is None
    assert dead_letters.redrive_count({"invoker.redrive_count": _number("-1")}) is None

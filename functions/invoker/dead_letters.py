"""The dead-letter copy of a message: which attributes it carries, and how it is fitted under SQS's
size limit. Pure: no clients, no logging; the invoker stores the body and logs what this decides."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeGuard

from invoker.contract import LETTER_POINTER_KEY, SQS_MAX_MESSAGE_ATTRIBUTES, SQS_MAX_MESSAGE_BYTES
from invoker.contract import LetterAttribute as Attr
from invoker.sqs_batch import message_size

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# invoker.error is cut to this many characters, and further when the letter would not fit.
MAX_ERROR_TEXT = 1024

# Ours, most important first: when more than 10 would be set, the last ones are left out.
_PRIORITY = (
    Attr.REASON,
    Attr.MESSAGE_ID,
    Attr.REQUEST_ID,
    Attr.BODY_S3_URI,
    Attr.SOURCE_QUEUE_ARN,
    Attr.RECEIVE_COUNT,
    Attr.REDRIVE_COUNT,
    Attr.LAST_REASON,
    Attr.ORIGINAL_STATUS_CODE,
    Attr.LOG_STREAM_ARN,
    Attr.ERROR,
)

# SendMessage's rules: attribute names, and the characters a String value or a body may hold.
_ATTRIBUTE_NAME = re.compile(r"(?!\.)(?!.*\.\.)(?!.*\.\Z)(?i:(?!aws\.|amazon\.))[A-Za-z0-9_.-]{1,256}")
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Letter:
    body: str
    attributes: dict[str, MessageAttributeValueTypeDef]
    dropped: tuple[str, ...] = ()  # producer attributes left out to fit
    error_trimmed: bool = False


def sqs_text(text: str) -> str:
    """Text SQS accepts in a String attribute: characters it refuses become U+FFFD."""
    return _NOT_SQS_TEXT.sub("\ufffd", text)


def redrive_count(incoming: Mapping[str, Any]) -> int | None:
    """The `invoker.redrive_count` a new dead-letter copy carries, from the message's own attributes.

    A message still carrying `invoker.reason` is a letter moved back unchanged (SQS's own move task keeps
    attributes): one more redrive. The CLI's redrive strips ours and sets the count itself: keep it."""
    count = _lambda_number(incoming.get(Attr.REDRIVE_COUNT))
    if Attr.REASON in incoming:
        return (count or 0) + 1
    return count


def producer_attributes(
    incoming: Mapping[str, Any],
) -> tuple[dict[str, MessageAttributeValueTypeDef], list[str]]:
    """The message's own attributes in SendMessage's shape, and the names of those that cannot be
    copied (not SendMessage-valid, or a binary value that is not base64). Ours are left out."""
    kept: dict[str, MessageAttributeValueTypeDef] = {}
    bad: list[str] = []
    for name, attribute in incoming.items():
        if str(name).startswith(Attr.PREFIX):
            continue
        converted = _from_lambda_attribute(name, attribute)
        if converted is None:
            bad.append(str(name))
        else:
            kept[name] = converted
    return kept, bad


def fit(
    body: str,
    ours: Mapping[str, MessageAttributeValueTypeDef],
    producer: Mapping[str, MessageAttributeValueTypeDef],
    *,
    limit: int = SQS_MAX_MESSAGE_BYTES,
) -> Letter | None:
    """The letter for this body, at most `limit` bytes as SQS counts them; None when the body does not fit
    even with our attributes alone (then the body goes to the bucket and a pointer is sent instead).

    In order: our attributes (10 at most); our text trimmed (`invoker.error`, down to nothing); producer
    attributes dropped, largest first (a count above 10 drops the last ones)."""
    attributes = _ours(ours)
    dropped: list[str] = []
    for name, attribute in producer.items():
        if len(attributes) >= SQS_MAX_MESSAGE_ATTRIBUTES:
            dropped.append(name)
        else:
            attributes[name] = attribute
    excess = message_size(body, attributes) - limit
    trimmed = False
    if excess > 0 and Attr.ERROR in attributes:
        trimmed = True
        text = attributes[Attr.ERROR].get("StringValue", "")
        cut = _cut_utf8(text, len(text.encode("utf-8", "surrogatepass")) - excess)
        if cut:
            attributes[Attr.ERROR] = {"DataType": "String", "StringValue": cut}
        else:
            del attributes[Attr.ERROR]
        excess = message_size(body, attributes) - limit
    if excess > 0:
        theirs = sorted(
            (name for name in attributes if name in producer),
            key=lambda name: message_size("", {name: attributes[name]}),
            reverse=True,
        )
        for name in theirs:
            if excess <= 0:
                break
            excess -= message_size("", {name: attributes.pop(name)})
            dropped.append(name)
    if excess > 0:
        return None
    return Letter(body=body, attributes=attributes, dropped=tuple(dropped), error_trimmed=trimmed)


def pointer_body(s3_uri: str) -> str:
    return json.dumps({LETTER_POINTER_KEY: s3_uri}, separators=(",", ":"))


def pointer_of(body: str, incoming: Mapping[str, Any]) -> str | None:
    """The stored body's URI when this message is itself a pointer letter (with its attribute)."""
    attribute = incoming.get(Attr.BODY_S3_URI)
    uri = attribute.get("stringValue") if isinstance(attribute, dict) else None
    return uri if isinstance(uri, str) and body == pointer_body(uri) else None


def text(value: str) -> MessageAttributeValueTypeDef:
    return {"DataType": "String", "StringValue": sqs_text(value)}


def number(value: int) -> MessageAttributeValueTypeDef:
    return {"DataType": "Number", "StringValue": str(value)}


def _ours(ours: Mapping[str, MessageAttributeValueTypeDef]) -> dict[str, MessageAttributeValueTypeDef]:
    ranked = sorted(ours, key=lambda name: _PRIORITY.index(name) if name in _PRIORITY else len(_PRIORITY))
    keep = set(ranked[:SQS_MAX_MESSAGE_ATTRIBUTES])
    return {name: value for name, value in ours.items() if name in keep}  # in the caller's order


def _cut_utf8(text: str, max_bytes: int) -> str:
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")


def _lambda_number(attribute: Any) -> int | None:
    if not isinstance(attribute, dict):
        return None
    try:
        value = int(str(attribute.get("stringValue")))
    except ValueError:
        return None
    return value if value >= 0 else None


def _from_lambda_attribute(name: Any, attribute: Any) -> MessageAttributeValueTypeDef | None:
    """Lambda's record shape (`stringValue`, `binaryValue` base64, `dataType`) back to SendMessage's;
    None when SendMessage would refuse it."""
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name) or not isinstance(attribute, dict):
        return None
    data_type = attribute.get("dataType")
    if not isinstance(data_type, str) or len(data_type) > 256 or _NOT_SQS_TEXT.search(data_type):
        return None
    kind = data_type.split(".", 1)[0]
    if kind == "Binary":
        binary = _binary_value(attribute.get("binaryValue"))
        return {"DataType": data_type, "BinaryValue": binary} if binary else None
    string = attribute.get("stringValue")
    if kind not in {"String", "Number"} or not _is_sqs_string(string):
        return None
    if kind == "Number" and not _is_sqs_number(string):
        return None
    return {"DataType": data_type, "StringValue": string}


def _binary_value(encoded: Any) -> bytes | None:
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_sqs_string(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value) and not _NOT_SQS_TEXT.search(value)


def _is_sqs_number(value: str) -> bool:
    # SQS: up to 38 significant digits, from -10^128 to 10^126.
    try:
        number = Decimal(value)
    except InvalidOperation:
        return False
    return number.is_finite() and abs(number) < Decimal(10) ** 126 and len(number.as_tuple().digits) <= 38

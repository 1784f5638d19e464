"""Lambda's SQS event shape, built from SQS ReceiveMessage output (also the function tests' event factory)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

EVENT_SOURCE = "aws:sqs"

# The system attributes Lambda copies into a record, in Lambda's order; others SQS returns follow them.
_ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
)


def _b64(value: bytes | bytearray | str) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def message_attribute_to_lambda(attribute: Mapping[str, Any]) -> dict[str, Any]:
    """One SQS MessageAttributeValue in Lambda's camelCase shape (binary values base64-encoded)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in attribute:
        shaped["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        shaped["binaryValue"] = _b64(attribute["BinaryValue"])
    shaped["stringListValues"] = list(attribute.get("StringListValues", []))
    shaped["binaryListValues"] = [_b64(v) for v in attribute.get("BinaryListValues", [])]
    shaped["dataType"] = attribute["DataType"]
    return shaped


def sqs_record_from_message(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A Lambda SQS record for one message of a boto3 ``receive_message`` response."""
    returned = dict(message.get("Attributes", {}))
    attributes = {name: returned.pop(name) for name in _ATTRIBUTE_ORDER if name in returned}
    attributes.update(sorted(returned.items()))
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: message_attribute_to_lambda(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = EVENT_SOURCE
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def sqs_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": [dict(r) for r in records]}


def queue_arn_from_url(queue_url: str, region: str) -> str:
    """``https://host/123456789012/name`` -> ``arn:aws:sqs:<region>:123456789012:name``."""
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"

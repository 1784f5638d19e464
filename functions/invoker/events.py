"""What the handler accepts: a batch of SQS messages as the event source mapping delivers it.

Any other event is refused by raising, before a record is touched (docs/function.md): no
SQS message is at stake, and failing the invocation is what keeps another source's records from being
reported as handled (a stream or an asynchronous invocation would take a normal return as success) and
what makes the mistake visible on the function's error alarm."""

from __future__ import annotations

import re
from typing import Any

_REQUIRED_TEXT = ("messageId", "receiptHandle", "body", "eventSourceARN")
_SQS_ARN = re.compile(r"arn:[^:]+:sqs:[^:]+:[^:]+:[^:]+")


class NotAnSqsEvent(ValueError):
    """The event is not an SQS batch from an event source mapping."""


def sqs_records(event: Any) -> list[dict[str, Any]]:
    """The event's records (possibly none); raises NotAnSqsEvent, saying what is wrong, otherwise."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise NotAnSqsEvent(f'expected an SQS event {{"Records": [...]}}, got {_describe(event)}')
    for index, record in enumerate(records):
        if not isinstance(record, dict) or record.get("eventSource") != "aws:sqs":
            source = record.get("eventSource") if isinstance(record, dict) else None
            raise NotAnSqsEvent(f"record {index} is not an SQS message (eventSource {_shown(source)})")
        missing = [name for name in _REQUIRED_TEXT if not isinstance(record.get(name), str)]
        if not isinstance(record.get("attributes"), dict):
            missing.append("attributes")
        if not isinstance(record.get("messageAttributes", {}), dict):
            missing.append("messageAttributes")
        if missing:
            raise NotAnSqsEvent(f"record {index} has no valid {', '.join(missing)}")
        if not _SQS_ARN.fullmatch(record["eventSourceARN"]):
            raise NotAnSqsEvent(f"record {index} has an eventSourceARN that is not an SQS queue's")
    return records


def _describe(event: Any) -> str:
    if isinstance(event, dict):
        keys = ", ".join(_shown(key) for key in list(event)[:5])
        return f"an object with keys [{keys}]"
    return f"a JSON {type(event).__name__}"


def _shown(value: Any) -> str:
    return repr(value)[:40]

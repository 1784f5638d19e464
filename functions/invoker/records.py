"""One message's identity, as every log line, result and dead-letter copy names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


@dataclass(slots=True)
class RecordInfo:
    message_id: str
    receive_count: int
    source_arn: str
    group_id: str | None
    request_id: str  # the message id until the body names its own
    job_id: str | None = None  # a job's request: its job and line (the envelope's jobId / line)
    line: int | None = None

    @classmethod
    def of(cls, record: SQSRecord) -> RecordInfo:
        raw = record.raw_event
        attributes = raw.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        message_id = str(raw.get("messageId") or "")
        return cls(
            message_id=message_id,
            receive_count=_int(attributes.get("ApproximateReceiveCount"), 1),
            source_arn=str(raw.get("eventSourceARN") or ""),
            group_id=attributes.get("MessageGroupId"),
            request_id=message_id,
        )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

"""Factories for SQS events shaped like the Lambda event source mapping's, and for function config."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:requests"
FIFO_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:requests.fifo"
_ids = itertools.count(1)


def sqs_record(
    body: str | dict[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str = QUEUE_ARN,
    group_id: str | None = None,
    message_attributes: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One record as Lambda delivers it (`body` dicts are JSON-encoded as a producer would)."""
    text = body if isinstance(body, str) else json.dumps(body)
    number = next(_ids)
    now = str(int(time.time() * 1000))
    attributes: dict[str, str] = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": now,
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": now,
    }
    if group_id is not None:
        attributes.update(
            MessageGroupId=group_id,
            MessageDeduplicationId=f"dedup-{number}",
            SequenceNumber=str(10**19 + number),
        )
    return {
        "messageId": message_id or f"00000000-0000-4000-8000-{number:012d}",
        "receiptHandle": f"receipt-{number}",
        "body": text,
        "attributes": attributes,
        "messageAttributes": message_attributes or {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def string_attribute(value: str) -> dict[str, Any]:
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}


def function_env(**overrides: str) -> dict[str, str]:
    env = {
        "ENDPOINT_NAME": "demo-classifier",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq",
        "DEAD_LETTER_BUCKET": "requests-dead-letters",
        "RESULTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/results",
        "MAX_RECEIVE_COUNT": "5",
        "RETRY_BASE_SECONDS": "2",
        "RETRY_MAX_SECONDS": "900",
        "MAX_CONCURRENCY": "8",
    }
    env.update(overrides)
    return env


class FakeContext:
    """A LambdaContext whose remaining time runs down from `timeout_ms`."""

    function_name = "invoker-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:invoker-test"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/invoker-test"
    log_stream_name = "stream"

    def __init__(self, timeout_ms: int = 180_000) -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

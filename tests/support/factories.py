"""Test data for the function: message attributes in Lambda's shape, and the function's configuration.

SQS records and the Lambda context come from sqs_sagemaker_invoker.local.stand_ins (`sqs_record`,
`sqs_event`, `LambdaContext`), which the local stack and the benchmarks use too."""

from __future__ import annotations

from typing import Any

FIFO_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:requests.fifo"


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

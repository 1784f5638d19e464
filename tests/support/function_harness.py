"""Drives the real `lambda_handler` the way the event source mapping does, against moto's SQS/S3 server
and the SageMaker Runtime emulator, all on 127.0.0.1."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, sqs_event, sqs_record_from_message

if TYPE_CHECKING:
    from types import ModuleType

    import pytest
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
DEAD_LETTER_BUCKET = "requests-dead-letters"
ENDPOINT = "demo-classifier"


@dataclass
class Queues:
    requests: str
    dlq: str
    results: str
    requests_arn: str


@dataclass
class FunctionRun:
    """One deployed-like function: its queues, its environment, the imported handler module."""

    sqs: SQSClient
    s3: S3Client
    queues: Queues
    env: dict[str, str]
    handler: ModuleType
    responses: list[dict[str, Any]] = field(default_factory=list)

    def send(self, body: str | dict[str, Any], **kwargs: Any) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.sqs.send_message(QueueUrl=self.queues.requests, MessageBody=text, **kwargs)["MessageId"]

    def receive(self, max_messages: int = 10, wait: int = 0) -> list[Any]:
        return self.sqs.receive_message(
            QueueUrl=self.queues.requests,
            MaxNumberOfMessages=max_messages,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=wait,
        ).get("Messages", [])

    def poll_once(self, *, max_messages: int = 10, timeout_ms: int = 180_000) -> dict[str, Any]:
        """Receive a batch, invoke the handler, delete what it did not report failed: the ESM's contract."""
        messages = self.receive(max_messages)
        if not messages:
            return {"batchItemFailures": [], "received": 0}
        records = [sqs_record_from_message(m, self.queues.requests_arn, REGION) for m in messages]
        response: dict[str, Any] = self.handler.lambda_handler(
            sqs_event(records), LambdaContext.starting_now(timeout_ms)
        )
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queues.requests,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        self.responses.append(response)
        return {**response, "received": len(messages)}

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        out: list[Any] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return out
            out.extend(batch)
            self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.drain(self.queues.results)]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.drain(self.queues.dlq)

    def _counts(self) -> dict[Any, str]:
        return self.sqs.get_queue_attributes(
            QueueUrl=self.queues.requests,
            AttributeNames=["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessages"],
        )["Attributes"]

    def in_flight(self) -> int:
        return int(self._counts()["ApproximateNumberOfMessagesNotVisible"])

    def remaining(self) -> int:
        """Messages still on the request queue, visible or not."""
        counts = self._counts()
        return int(counts["ApproximateNumberOfMessages"]) + int(
            counts["ApproximateNumberOfMessagesNotVisible"]
        )


def create_queues(sqs: SQSClient, *, fifo: bool, max_receive_count: int, name: str = "requests") -> Queues:
    suffix = ".fifo" if fifo else ""
    fifo_attributes: dict[Any, str] = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    requests_url = sqs.create_queue(
        QueueName=f"{name}{suffix}",
        Attributes={
            **fifo_attributes,
            "VisibilityTimeout": "1080",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=requests_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    results = sqs.create_queue(QueueName=f"{name}-results{suffix}", Attributes=fifo_attributes)["QueueUrl"]
    return Queues(requests_url, dlq, results, arn)


def load_handler(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """Import `invoker.handler` afresh: a cold start with this environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # A cold start is a new process: boto3's default session (and the credentials it resolved from an
    # earlier test's environment) must not carry over into the clients the handler creates.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    sys.modules.pop("invoker.handler", None)
    return importlib.import_module("invoker.handler")


def start_function(
    monkeypatch: pytest.MonkeyPatch,
    aws_url: str,
    sagemaker_url: str,
    *,
    fifo: bool = False,
    max_receive_count: int = 3,
    **env: str,
) -> FunctionRun:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", aws_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", sagemaker_url)
    sqs = boto3.client("sqs", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    queues = create_queues(sqs, fifo=fifo, max_receive_count=max_receive_count)
    s3.create_bucket(Bucket=DEAD_LETTER_BUCKET)
    full_env = {
        "ENDPOINT_NAME": ENDPOINT,
        "DEAD_LETTER_QUEUE_URL": queues.dlq,
        "DEAD_LETTER_BUCKET": DEAD_LETTER_BUCKET,
        "RESULTS_QUEUE_URL": queues.results,
        "MAX_RECEIVE_COUNT": str(max_receive_count),
        "RETRY_BASE_SECONDS": "2",
        "RETRY_MAX_SECONDS": "60",
        "MAX_CONCURRENCY": "8",
        "POWERTOOLS_METRICS_NAMESPACE": "InvokerTest",
        "POWERTOOLS_SERVICE_NAME": "invoker-test",
        **env,
    }
    return FunctionRun(sqs, s3, queues, full_env, load_handler(monkeypatch, full_env))

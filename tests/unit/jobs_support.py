"""A route's job machinery in moto (in-process): the ledger table, the bucket, the request and control
queues, and the default event bus with a rule that keeps job events in a queue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from invoker.contract import LedgerAttribute as A
from invoker.contract import job_input_key
from invoker.jobs.assembler import Assembler
from invoker.jobs.config import JobsConfig
from invoker.jobs.control import Controller
from invoker.jobs.pacing import Pacer
from invoker.jobs.splitter import Splitter
from invoker.jobs.table import JobTable

if TYPE_CHECKING:
    from collections.abc import Callable

PREFIX = "demo/"
BUCKET = "results-bucket"


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")  # type: ignore[call-overload]


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, _level: str) -> Any:
        return lambda message, extra=None, **_kw: self.lines.append((message, dict(extra or {})))


class JobsWorld:
    """Call only inside mock_aws()."""

    def __init__(self, *, max_backlog: int | None = 1000, part_bytes: int = 5 * 1024 * 1024) -> None:
        self.dynamodb: Any = _client("dynamodb")
        self.s3: Any = _client("s3")
        self.sqs: Any = _client("sqs")
        self.events: Any = _client("events")
        self.dynamodb.create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": A.KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": A.KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.s3.create_bucket(Bucket=BUCKET)
        self.requests = self.sqs.create_queue(QueueName="requests")["QueueUrl"]
        self.control = self.sqs.create_queue(QueueName="control")["QueueUrl"]
        self.config = JobsConfig(
            endpoint_name="demo-classifier",
            table="ledger",
            key_prefix=PREFIX,
            expire_days=30,
            request_queue_url=self.requests,
            control_queue_url=self.control,
            bucket=BUCKET,
            max_backlog=max_backlog,
            part_bytes=part_bytes,
            watch_seconds=1,
        )
        self.table = JobTable.of(self.dynamodb, self.config)
        self.sleeps: list[float] = []
        self.pacer = Pacer(
            self.sqs, self.requests, lambda: max_backlog or 1000, sleep=self.sleeps.append, refresh_seconds=0
        )
        # One SendMessageBatch per send batch: 10 lines between checkpoints, so small inputs show several.
        self.splitter = Splitter(self.config, self.table, self.s3, self.sqs, self.pacer, send_calls=1)
        self.assembler = Assembler(self.config, self.table, self.s3, self.events)
        self.logs = Logs()
        self.controller = Controller(
            self.config, self.table, self.splitter, self.assembler, sqs=self.sqs, log=self.logs
        )

    def submit(self, job_id: str, lines: list[str] | bytes, join: str = "none") -> None:
        data = lines if isinstance(lines, bytes) else "".join(line + "\n" for line in lines).encode()
        key = job_input_key(job_id)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        self.table.create(job_id, input_key=key, input_bytes=len(data), join=join)

    def drain(self, url: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def output(self, job_id: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/output.jsonl")["Body"].read()
        return [json.loads(line) for line in body.decode().splitlines()]


def plenty() -> int:
    return 600_000


def after(calls: int) -> Callable[[], int]:
    """A Lambda clock with time for `calls` checks, then none."""
    left = [calls]

    def remaining() -> int:
        left[0] -= 1
        return 600_000 if left[0] >= 0 else 1

    return remaining

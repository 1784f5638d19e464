"""The benchmark's messages: envelope bodies of a fixed size, as Lambda SQS records.

Both handlers get byte-identical records for the same (count, size, seed), built in the Lambda process
before the clock starts."""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqs_sagemaker_invoker.local.stand_ins import sqs_event, sqs_record_from_message

if TYPE_CHECKING:
    from bench.protocol import MessagesRequest

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
QUEUE_NAME = "bench-requests"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE_NAME}"
ENDPOINT_NAME = "bench-endpoint"


@dataclass(frozen=True, slots=True)
class MessageSpec:
    count: int
    size: int = 1024
    seed: int = 0

    def to_wire(self) -> MessagesRequest:
        return {"count": self.count, "size": self.size, "seed": self.seed}

    @classmethod
    def from_wire(cls, wire: MessagesRequest) -> MessageSpec:
        return cls(wire["count"], wire["size"], wire["seed"])


def envelope(index: int, size: int, seed: int) -> str:
    """An envelope of exactly `size` bytes (when size allows): a small model input plus padding."""
    rng = random.Random(seed * 1_000_003 + index)
    document: dict[str, Any] = {
        "requestId": f"bench-{seed}-{index:06d}",
        "body": {"instances": [[round(rng.uniform(0, 8), 3) for _ in range(4)]], "pad": ""},
    }
    missing = size - len(json.dumps(document, separators=(",", ":")))
    document["body"]["pad"] = "x" * max(0, missing)
    return json.dumps(document, separators=(",", ":"))


def payload_of(body: str) -> bytes:
    """What both handlers send to the endpoint for an envelope: its `body`, serialised compactly."""
    return json.dumps(json.loads(body)["body"], separators=(",", ":")).encode()


def records(spec: MessageSpec, *, receive_count: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(spec.seed)
    now = str(int(time.time() * 1000))
    out = []
    for index in range(spec.count):
        body = envelope(index, spec.size, spec.seed)
        message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        message = {
            "MessageId": message_id,
            # Not a real receipt handle: a visibility change for it fails per entry, which the function
            # reports and survives (the message is still in batchItemFailures).
            "ReceiptHandle": f"bench-{spec.seed}-{index}",
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "Attributes": {
                "ApproximateReceiveCount": str(receive_count),
                "SentTimestamp": now,
                "SenderId": "AIDABENCHMARK",
                "ApproximateFirstReceiveTimestamp": now,
            },
        }
        out.append(sqs_record_from_message(message, QUEUE_ARN, REGION))
    return out


def redelivered(record: dict[str, Any]) -> dict[str, Any]:
    """The record as SQS hands it back: the receive count one higher."""
    again = dict(record)
    attributes = dict(record["attributes"])
    attributes["ApproximateReceiveCount"] = str(int(attributes["ApproximateReceiveCount"]) + 1)
    again["attributes"] = attributes
    return again


def event(batch: list[dict[str, Any]]) -> dict[str, Any]:
    return sqs_event(batch)

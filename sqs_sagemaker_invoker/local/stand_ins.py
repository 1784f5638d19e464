"""Stand-ins for what AWS provides, one of each, shared by the local stack, the benchmarks and the tests:
a moto server for the AWS APIs, the context object Lambda passes to a handler, and SQS records shaped as
the event source mapping delivers them.

Standard library only at import time (moto is imported only when a server runs in this process).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

# Defined beside the runtime stand-in, which runs as a bare script and so cannot import this module.
from sqs_sagemaker_invoker.local.lambda_runtime import LambdaContext

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "EVENT_SOURCE",
    "LambdaContext",
    "MotoServer",
    "message_attribute_to_lambda",
    "queue_arn_from_url",
    "reset_moto",
    "sqs_event",
    "sqs_record",
    "sqs_record_from_message",
]

REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:requests"

# -- moto ------------------------------------------------------------------------------------------------


class MotoServer:
    """A moto server on 127.0.0.1, in its own process (the default: it gets the second core) or a thread."""

    def __init__(self, *, mode: Literal["process", "thread"] = "process", host: str = "127.0.0.1") -> None:
        self.mode = mode
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._thread_server: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 60.0) -> MotoServer:
        self.launch()
        return self.wait_started(timeout)

    def launch(self) -> None:
        """Start the server without waiting for it (the caller may start other things meanwhile)."""
        self.port = 0
        if self.mode == "thread":
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy import, only when used

            from sqs_sagemaker_invoker.local.moto_sqs_lock import serialise_sqs  # noqa: PLC0415

            # moto's SQS is not thread-safe: one SQS call at a time (this process's moto, for good).
            serialise_sqs()
            self._thread_server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._thread_server.start()
            self.port = int(self._thread_server.get_host_and_port()[1])
            return
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sqs_sagemaker_invoker.local.moto_process", self.host],
            stdin=subprocess.PIPE,  # its EOF ends the server, even if we die without cleaning up
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=Path(__file__).resolve().parents[2],  # the repo root: importable uninstalled
        )

    def wait_started(self, timeout: float = 60.0) -> MotoServer:
        process = self._process
        if process is None or self.port:
            return self
        assert process.stdout is not None
        stdout = process.stdout
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError("moto server did not start")
        self.port = int(json.loads(line[0])["port"])
        return self

    def reset(self) -> None:
        reset_moto(self.url)

    def stop(self) -> None:
        if self._thread_server is not None:
            self._thread_server.stop()
            self._thread_server = None
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reset_moto(url: str) -> None:
    """Forget every resource of the moto server at `url` (its own API; much faster than a restart)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our loopback URL
        response.read()


# -- SQS records as the event source mapping delivers them ----------------------------------------------

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
_message_numbers = itertools.count(1)


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


def sqs_record(  # noqa: PLR0913 - one keyword per field a test may pin; all but the body have defaults
    body: str | Mapping[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str = QUEUE_ARN,
    group_id: str | None = None,
    message_attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A record for a message that never was on a queue, built the way a received one is.

    A mapping `body` is JSON-encoded as a producer would; `message_attributes` are in Lambda's shape."""
    text = body if isinstance(body, str) else json.dumps(body)
    number = next(_message_numbers)
    now = str(int(time.time() * 1000))
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": now,
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": now,
    }
    if group_id is not None:
        attributes |= {
            "MessageGroupId": group_id,
            "MessageDeduplicationId": f"dedup-{number}",
            "SequenceNumber": str(10**19 + number),
        }
    message = {
        "MessageId": message_id or f"00000000-0000-4000-8000-{number:012d}",
        "ReceiptHandle": f"receipt-{number}",
        "Body": text,
        "Attributes": attributes,
        "MD5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
    }
    record = sqs_record_from_message(message, queue_arn, queue_arn.split(":")[3])
    # As given, even malformed: tests feed the function attributes no producer could send.
    record["messageAttributes"] = dict(message_attributes or {})
    return record


def sqs_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": [dict(r) for r in records]}


def queue_arn_from_url(queue_url: str, region: str) -> str:
    """``https://host/123456789012/name`` -> ``arn:aws:sqs:<region>:123456789012:name``."""
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"

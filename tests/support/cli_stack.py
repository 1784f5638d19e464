"""What the `invoker` CLI tests drive: the routes' resources on moto as the CLI sees them (`CliStack`), a
fault-injecting HTTP proxy in front of moto, and a consumer that fails every message again. The fixtures
that build them are in tests/integration/cli/conftest.py."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from typer.testing import CliRunner

from sqs_sagemaker_invoker.cli.main import app

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef
    from typer.testing import Result

    from sqs_sagemaker_invoker.infra.config import AppConfig
    from sqs_sagemaker_invoker.local.aws import RouteResources

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "CliTest"
DEMO_ROUTE: dict[str, Any] = {
    "name": "demo",
    "endpointName": "demo-endpoint",
    "results": {"queue": True, "bucket": True},
    "largePayloads": True,
}
ORDERED_ROUTE: dict[str, Any] = {
    "name": "ordered",
    "endpointName": "ordered-endpoint",
    "fifo": True,
    "results": {"queue": True, "bucket": False},
}
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def client_kwargs(url: str) -> dict[str, Any]:
    return {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": Config(retries={"mode": "standard", "total_max_attempts": 2}),
    }


# ------------------------------------------------------------------------------------------------
# The fault proxy


@dataclass
class Fault:
    action: str  # e.g. "SendMessageBatch"
    call: int  # the n-th call of that action (1-based) is hit
    keep: int = 0  # "partial": entries kept; the rest answered as Failed
    kill: bool = False  # "kill": SIGKILL the client process instead of forwarding


@dataclass
class FaultProxy:
    """An HTTP proxy in front of moto: counts SQS actions, and can refuse part of a batch or kill the
    client process at an exact call (between a send and its delete, say)."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    victim_pid: int | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        proxy = self
        upstream = urlsplit(self.upstream)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                action = target.rsplit(".", 1)[-1] if target else ""
                with lock:
                    if action:
                        proxy.calls[action] += 1
                    count = proxy.calls[action]
                    fault = next((f for f in proxy.faults if f.action == action and f.call == count), None)
                if fault is not None and fault.kill:
                    deadline = time.monotonic() + 10
                    while proxy.victim_pid is None and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert proxy.victim_pid is not None
                    os.kill(proxy.victim_pid, signal.SIGKILL)
                    self.close_connection = True
                    return
                dropped: list[dict[str, Any]] = []
                if fault is not None:
                    request = json.loads(body)
                    dropped = request["Entries"][fault.keep :]
                    request["Entries"] = request["Entries"][: fault.keep]
                    body = json.dumps(request).encode()
                connection = http.client.HTTPConnection(
                    upstream.hostname or "127.0.0.1", upstream.port, timeout=60
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")
                }
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if dropped:
                    document = json.loads(payload)
                    document.setdefault("Failed", []).extend(
                        {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
                        for e in dropped
                    )
                    payload = json.dumps(document).encode()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in (
                        "content-length",
                        "connection",
                        "transfer-encoding",
                        "date",
                        "server",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# ------------------------------------------------------------------------------------------------
# The stack under test


@dataclass
class CliStack:
    moto_url: str
    state_dir: Path
    app: AppConfig
    routes: dict[str, RouteResources]
    outputs: dict[str, str]
    proxy: FaultProxy | None = None
    runner: CliRunner = field(default_factory=CliRunner)

    def route(self, name: str = "demo") -> RouteResources:
        return self.routes[name]

    def sqs(self) -> SQSClient:
        return boto3.client("sqs", **client_kwargs(self.moto_url))

    def s3(self) -> S3Client:
        return boto3.client("s3", **client_kwargs(self.moto_url))

    def cloudwatch(self) -> CloudWatchClient:
        return boto3.client("cloudwatch", **client_kwargs(self.moto_url))

    def logs(self) -> CloudWatchLogsClient:
        return boto3.client("logs", **client_kwargs(self.moto_url))

    def invoke(self, *args: str, input: str | bytes | None = None) -> Result:
        """Run `invoker --state-dir <dir> ARGS` in-process, stdout and stderr apart."""
        return self.runner.invoke(
            app,
            ["--state-dir", str(self.state_dir), *args],
            input=input,
            env={"COLUMNS": "200"},
            catch_exceptions=False,
        )

    def subprocess_command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sqs_sagemaker_invoker.cli", "--state-dir", str(self.state_dir), *args]

    # -- queues -----------------------------------------------------------------------------------

    def counts(self, url: str) -> tuple[int, int]:
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def peek(self, url: str) -> list[MessageTypeDef]:
        """Every visible message (body, attributes), left visible again afterwards."""
        sqs = self.sqs()
        seen: dict[str, MessageTypeDef] = {}
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                seen[message["MessageId"]] = message
        handles = [m["ReceiptHandle"] for m in seen.values()]
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(handles[start : start + 10])
                ],
            )
        return list(seen.values())

    def bodies(self, url: str) -> list[str]:
        return [m.get("Body", "") for m in self.peek(url)]

    def dead_letter(
        self,
        body: str,
        *,
        reason: str,
        request_id: str,
        route: str = "demo",
        status_code: int | None = None,
        log_stream_arn: str | None = None,
        extra: dict[str, Any] | None = None,
        group_id: str | None = None,
    ) -> str:
        """A DLQ message shaped as the function writes it (docs/function.md, "Dead-letter messages")."""
        resources = self.route(route)

        def text(value: str) -> dict[str, str]:
            return {"DataType": "String", "StringValue": value}

        attributes: dict[str, Any] = {
            "invoker.reason": text(reason),
            "invoker.error": text(f"{reason} happened"),
            "invoker.request_id": text(request_id),
            "invoker.message_id": text(f"orig-{request_id}"),
            "invoker.receive_count": {"DataType": "Number", "StringValue": "1"},
            "invoker.source_queue_arn": text(resources.request_queue_arn),
        }
        if status_code is not None:
            attributes["invoker.original_status_code"] = {
                "DataType": "Number",
                "StringValue": str(status_code),
            }
        if log_stream_arn is not None:
            attributes["invoker.log_stream_arn"] = text(log_stream_arn)
        attributes.update(extra or {})
        kwargs: dict[str, Any] = {}
        if resources.dead_letter_queue_url.endswith(".fifo"):
            kwargs = {
                "MessageGroupId": group_id or request_id,
                "MessageDeduplicationId": f"orig-{request_id}",
            }
        response = self.sqs().send_message(
            QueueUrl=resources.dead_letter_queue_url, MessageBody=body, MessageAttributes=attributes, **kwargs
        )
        return response["MessageId"]


# ------------------------------------------------------------------------------------------------
# A route whose function fails every message again


@dataclass
class FailingConsumer:
    """Dead-letters every request as the function does with a message it refuses (docs/function.md,
    "Dead-letter messages"): the body byte for byte, the invoker.* attributes, `invoker.redrive_count` kept from the
    message, the producer's attributes, the FIFO group; then deletes the request. Runs in a thread."""

    stack: CliStack
    route: str = "demo"
    reason: str = "invalid_message"
    received: Counter[str] = field(default_factory=Counter)  # body -> times received
    redrive_counts: dict[str, list[str | None]] = field(default_factory=dict)  # body -> counts seen
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FailingConsumer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def total(self) -> int:
        with self._lock:
            return sum(self.received.values())

    def _run(self) -> None:
        sqs = self.stack.sqs()
        resources = self.stack.route(self.route)
        fifo = resources.dead_letter_queue_url.endswith(".fifo")
        while not self._stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=resources.request_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=30,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            for message in messages:
                body = message.get("Body", "")
                incoming = message.get("MessageAttributes", {})
                kept = incoming.get("invoker.redrive_count")
                count = kept.get("StringValue") if kept is not None else None
                with self._lock:
                    self.received[body] += 1
                    self.redrive_counts.setdefault(body, []).append(count)
                attributes: dict[str, Any] = {
                    "invoker.reason": {"DataType": "String", "StringValue": self.reason},
                    "invoker.error": {"DataType": "String", "StringValue": "refused again"},
                    "invoker.request_id": {"DataType": "String", "StringValue": body[:64] or "none"},
                    "invoker.message_id": {"DataType": "String", "StringValue": message["MessageId"]},
                    "invoker.receive_count": {"DataType": "Number", "StringValue": "1"},
                    "invoker.source_queue_arn": {
                        "DataType": "String",
                        "StringValue": resources.request_queue_arn,
                    },
                }
                if count is not None:
                    attributes["invoker.redrive_count"] = {"DataType": "Number", "StringValue": count}
                for name, value in incoming.items():
                    if not name.startswith("invoker.") and len(attributes) < 10:
                        attributes[name] = {
                            k: v for k, v in value.items() if k in ("DataType", "StringValue")
                        }
                kwargs: dict[str, Any] = {}
                if fifo:
                    kwargs = {
                        "MessageGroupId": message["Attributes"]["MessageGroupId"],
                        "MessageDeduplicationId": message["MessageId"],
                    }
                sqs.send_message(
                    QueueUrl=resources.dead_letter_queue_url,
                    MessageBody=body,
                    MessageAttributes=attributes,
                    **kwargs,
                )
                sqs.delete_message(
                    QueueUrl=resources.request_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

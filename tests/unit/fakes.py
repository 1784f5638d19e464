"""In-memory stand-ins for the SageMaker Runtime and SQS clients: they behave, they do not mock."""

from __future__ import annotations

import io
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

_real_runtime = boto3.client(
    "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
)

STATUS = {
    "ModelNotReadyException": 429,
    "ThrottlingException": 400,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 530,
    "ModelError": 424,
    "ValidationError": 400,
}


def service_error(code: str, message: str = "boom", **fields: Any) -> ClientError:
    """The exception botocore raises for `code`: its modelled class where the model has one."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": STATUS.get(code, 400)},
        **fields,
    }
    cls = getattr(_real_runtime.exceptions, code, ClientError)
    error: ClientError = cls(response, "InvokeEndpoint")
    return error


def ok_response(body: bytes = b'{"ok":true}', content_type: str = "application/json") -> dict[str, Any]:
    return {
        "Body": io.BytesIO(body),
        "ContentType": content_type,
        "InvokedProductionVariant": "AllTraffic",
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }


class FakeRuntime:
    """`behaviour(call_index, kwargs)` returns a response or raises; calls and concurrency are recorded."""

    def __init__(
        self, behaviour: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None, delay: float = 0.0
    ) -> None:
        self.behaviour = behaviour or (lambda _i, _kw: ok_response())
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            index = len(self.calls)
            self.calls.append(kwargs)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self.behaviour(index, kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1


# SQS's limit on one message, and on the sum of one SendMessageBatch's entries.
SQS_LIMIT = 1_048_576


def sqs_size(entry: dict[str, Any]) -> int:
    """A SendMessageBatch entry's size as SQS counts it (written here independently of the function's
    own computation): body UTF-8 bytes, plus each attribute's name, data type and value."""
    size = len(entry["MessageBody"].encode())
    for name, attribute in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        if "StringValue" in attribute:
            size += len(attribute["StringValue"].encode())
        else:
            size += len(attribute["BinaryValue"])
    return size


class FakeSqs:
    """Records what is sent, and refuses what real SQS refuses on size: an entry over 1 MiB fails,
    a call whose entries add up to more than 1 MiB fails as a whole (moto counts neither)."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.refused: list[dict[str, Any]] = []
        self.visibility: list[dict[str, Any]] = []
        self.fail_queues: set[str] = set()
        self._lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if QueueUrl in self.fail_queues:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "SendMessageBatch")
        if sum(sqs_size(e) for e in Entries) > SQS_LIMIT:
            raise ClientError(
                {"Error": {"Code": "AWS.SimpleQueueService.BatchRequestTooLong", "Message": "too long"}},
                "SendMessageBatch",
            )
        ok = [e for e in Entries if sqs_size(e) <= SQS_LIMIT]
        failed = [e for e in Entries if sqs_size(e) > SQS_LIMIT]
        with self._lock:
            sent = self.sent.setdefault(QueueUrl, [])
            ids = [f"{QueueUrl.rsplit('/', 1)[-1]}-{len(sent) + i}" for i in range(len(ok))]
            sent.extend(ok)
            self.refused.extend(failed)
        return {
            "Successful": [{"Id": e["Id"], "MessageId": mid} for e, mid in zip(ok, ids, strict=True)],
            "Failed": [
                {"Id": e["Id"], "Code": "InvalidParameterValue", "Message": "too long", "SenderFault": True}
                for e in failed
            ],
        }

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self.visibility.extend({"QueueUrl": QueueUrl, **e} for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def bodies(self, queue_url: str) -> list[str]:
        return [entry["MessageBody"] for entry in self.sent.get(queue_url, [])]


class FakeS3:
    """put_object/get_object on a dict; `fail` makes every put raise AccessDenied."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.fail = False

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        if self.fail:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")
        self.objects[(Bucket, Key)] = Body
        return {}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            response: Any = {
                "Error": {"Code": "NoSuchKey", "Message": f"no such key {Key}"},
                "ResponseMetadata": {"HTTPStatusCode": 404},
            }
            raise ClientError(response, "GetObject")
        data = self.objects[(Bucket, Key)]
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}

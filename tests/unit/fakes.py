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


class FakeSqs:
    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.visibility: list[dict[str, Any]] = []
        self.fail_queues: set[str] = set()
        self._lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if QueueUrl in self.fail_queues:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "SendMessageBatch")
        with self._lock:
            self.sent.setdefault(QueueUrl, []).extend(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self.visibility.extend({"QueueUrl": QueueUrl, **e} for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def bodies(self, queue_url: str) -> list[str]:
        return [entry["MessageBody"] for entry in self.sent.get(queue_url, [])]

"""SendMessageBatch with group commit: concurrent senders share one API call without waiting for a timer."""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoker.contract import SQS_MAX_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef


def message_size(body: str, attributes: Mapping[str, MessageAttributeValueTypeDef] | None = None) -> int:
    """Bytes SQS counts towards a message's size: the body's UTF-8 bytes plus, for each attribute, its
    name, its data type and its value (string values as UTF-8, binary values as raw bytes)."""
    total = _utf8_len(body)
    for name, attribute in (attributes or {}).items():
        total += _utf8_len(name) + _utf8_len(attribute.get("DataType", ""))
        value = attribute.get("StringValue")
        if isinstance(value, str):
            total += _utf8_len(value)
        else:
            binary = attribute.get("BinaryValue", b"")
            total += len(binary) if isinstance(binary, bytes | bytearray) else _utf8_len(str(binary))
    return total


def _utf8_len(text: str) -> int:
    # surrogatepass: a size must never raise, whatever text it is asked about
    return len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    body: str
    attributes: dict[str, MessageAttributeValueTypeDef] | None = None
    group_id: str | None = None
    deduplication_id: str | None = None

    def size(self) -> int:
        return message_size(self.body, self.attributes)


class SendFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class SqsBatchSender:
    """Each `send` blocks until its message is written (or raises `SendFailed`).

    The first caller that finds no send in progress becomes the leader and sends what is queued, up to
    10 at a time, until the queue is empty; callers that arrive meanwhile just wait for their future.
    Under load the batches fill up by themselves; a lone message is sent at once."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._pending: deque[tuple[OutgoingMessage, int, Future[None]]] = deque()
        self._lock = threading.Lock()
        self._leader_active = False

    def send(self, message: OutgoingMessage) -> None:
        future: Future[None] = Future()
        size = message.size()  # outside the lock, and so that taking a batch cannot fail
        if size > SQS_MAX_MESSAGE_BYTES:
            # Refused here: in a SendMessageBatch call it could fail the other entries too.
            raise SendFailed("MessageTooLong", f"{size} bytes, above SQS's limit of {SQS_MAX_MESSAGE_BYTES}")
        with self._lock:
            self._pending.append((message, size, future))
            lead = not self._leader_active
            if lead:
                self._leader_active = True
        if lead:
            self._drain()
        future.result()

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch = self._take_batch()
                if not batch:
                    self._leader_active = False
                    return
            self._send_batch(batch)

    def _take_batch(self) -> list[tuple[OutgoingMessage, Future[None]]]:
        batch: list[tuple[OutgoingMessage, Future[None]]] = []
        size = 0
        while self._pending and len(batch) < SQS_MAX_BATCH_ENTRIES:
            message, entry_size, future = self._pending[0]
            # The sum of the entries' sizes is bounded by the one-message limit too.
            if batch and size + entry_size > SQS_MAX_MESSAGE_BYTES:
                break
            self._pending.popleft()
            batch.append((message, future))
            size += entry_size
        return batch

    def _send_batch(self, batch: list[tuple[OutgoingMessage, Future[None]]]) -> None:
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, (message, _) in enumerate(batch):
            entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": message.body}
            if message.attributes:
                entry["MessageAttributes"] = message.attributes
            if message.group_id is not None:
                entry["MessageGroupId"] = message.group_id
            if message.deduplication_id is not None:
                entry["MessageDeduplicationId"] = message.deduplication_id
            entries.append(entry)
        try:
            response: Any = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # any failure of the call fails every entry; the callers retry them
            for _, future in batch:
                future.set_exception(SendFailed(type(exc).__name__, str(exc)))
            return
        failed = {item["Id"]: item for item in response.get("Failed", [])}
        for index, (_, future) in enumerate(batch):
            failure = failed.get(str(index))
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(SendFailed(failure.get("Code", "Failed"), failure.get("Message", "")))

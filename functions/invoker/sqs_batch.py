"""SendMessageBatch with group commit: concurrent senders share one API call without waiting for a timer."""

from __future__ import annotations

import threading
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


@dataclass(frozen=True, slots=True)
class _Queued:
    message: OutgoingMessage
    size: int
    future: Future[str]


class SqsBatchSender:
    """Each `send` blocks until its message is written (or raises `SendFailed`).

    Group commit with several calls in flight: a caller that finds room (fewer than `max_in_flight`
    calls out) takes a batch of what is queued, up to 10, sends it, and keeps taking batches while there
    is room and work; callers that arrive meanwhile just wait for their future. With no call out, a
    batch goes at once whatever its size (a lone message is not delayed); beside calls already out, only
    a full batch (10 entries, or the byte limit) starts another call, so under light load batches still
    fill up as they did with one call at a time, and under load the calls overlap.

    FIFO order: a message group with a batch in flight sends nothing more until that call has
    answered, so a group's messages are never split over two calls in flight (SQS could otherwise write
    a later one first). Within one batch the entries keep the order they were queued in."""

    def __init__(self, sqs: SQSClient, queue_url: str, max_in_flight: int = 1) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._sqs = sqs
        self.queue_url = queue_url
        self.max_in_flight = max_in_flight
        self._pending: list[_Queued] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._groups_in_flight: set[str] = set()

    def send(self, message: OutgoingMessage) -> str:
        """The message id SQS gave the message (the request ledger records where a result went)."""
        future: Future[str] = Future()
        size = message.size()  # outside the lock, and so that taking a batch cannot fail
        if size > SQS_MAX_MESSAGE_BYTES:
            # Refused here: in a SendMessageBatch call it could fail the other entries too.
            raise SendFailed("MessageTooLong", f"{size} bytes, above SQS's limit of {SQS_MAX_MESSAGE_BYTES}")
        with self._lock:
            self._pending.append(_Queued(message, size, future))
        self._drain()
        return future.result()

    def _drain(self) -> None:
        """Sends batches while there is room and something to take; whoever finishes a call looks again,
        so nothing queued is left behind when this caller stops."""
        while True:
            with self._lock:
                batch = self._take_batch()
                if not batch:
                    return
                self._in_flight += 1
                groups = {q.message.group_id for q in batch if q.message.group_id is not None}
                self._groups_in_flight |= groups
            try:
                self._send_batch([(q.message, q.future) for q in batch])
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._groups_in_flight -= groups

    def _take_batch(self) -> list[_Queued]:
        """Under the lock: the next batch to send, or [] when there is no room or nothing worth a call."""
        if self._in_flight >= self.max_in_flight:
            return []
        chosen: list[int] = []
        size = 0
        full = False
        for index, queued in enumerate(self._pending):
            if queued.message.group_id in self._groups_in_flight:
                continue  # its group waits for the call in flight (and so do its later messages)
            # The sum of the entries' sizes is bounded by the one-message limit too.
            if chosen and size + queued.size > SQS_MAX_MESSAGE_BYTES:
                full = True
                break
            chosen.append(index)
            size += queued.size
            if len(chosen) == SQS_MAX_BATCH_ENTRIES:
                full = True
                break
        if not chosen or (self._in_flight > 0 and not full):
            return []
        taken = set(chosen)
        batch = [self._pending[index] for index in chosen]
        self._pending = [queued for index, queued in enumerate(self._pending) if index not in taken]
        return batch

    def _send_batch(self, batch: list[tuple[OutgoingMessage, Future[str]]]) -> None:
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
        sent = {item["Id"]: item.get("MessageId", "") for item in response.get("Successful", [])}
        for index, (_, future) in enumerate(batch):
            failure = failed.get(str(index))
            if failure is None:
                future.set_result(sent.get(str(index), ""))
            else:
                future.set_exception(SendFailed(failure.get("Code", "Failed"), failure.get("Message", "")))

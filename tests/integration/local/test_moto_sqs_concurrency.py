"""The local stack's moto server answers concurrent SQS calls without HTTP 500, and long polls still work.

moto's SQS backend is not thread-safe: a ReceiveMessage that walks a queue's in-flight set while another
request deletes or returns a message fails with "Set changed size during iteration", after marking some
messages received; those vanish for the visibility timeout (the mixed demo once reported five requests
lost that way). Under real load the race is rare, so the test widens its window: moto's walk of the
in-flight set is made slow (a pause per message), which turns a one-in-thousands race into a certain one
when nothing serialises the calls. The clients never retry: one 500 fails the test.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sqs_sagemaker_invoker.local.aws import client_kwargs

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest
    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.stand_ins import MotoServer


def _client(url: str) -> SQSClient:
    kwargs = client_kwargs(url)
    # No retries: a 500 must surface, not be ridden out.
    kwargs["config"] = Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=16)
    return boto3.client("sqs", **kwargs)


def _slow_in_flight_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's Queue.pending_message_groups, pausing at each in-flight message (the race window, widened)."""
    from moto.sqs import models  # noqa: PLC0415 - the server runs in this process (thread mode)

    def groups(queue: Any) -> set[str]:
        def walk() -> Iterator[str | None]:
            for message in queue._pending_messages:  # the set moto itself walks
                time.sleep(0.01)
                yield message.group_id

        return {group for group in walk() if group is not None}

    monkeypatch.setattr(models.Queue, "pending_message_groups", property(groups))


def test_receive_racing_deletes_of_in_flight_messages_never_fails(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queue with 20 messages in flight and 20 visible, and moto's walk of the in-flight set slow
    sqs = _client(moto.url)
    url = sqs.create_queue(QueueName="race")["QueueUrl"]
    for batch in range(4):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)]
        )
    in_flight = [
        message
        for _ in range(2)
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)[
            "Messages"
        ]
    ]
    _slow_in_flight_walk(monkeypatch)
    errors: list[str] = []
    received: list[int] = []

    def receive() -> None:
        try:
            response = _client(moto.url).receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            received.append(len(response.get("Messages", [])))
        except ClientError as exc:
            errors.append(str(exc))

    def delete(handles: list[str]) -> None:
        try:
            _client(moto.url).delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
            )
        except ClientError as exc:
            errors.append(str(exc))

    # WHEN two receives walk the in-flight set while two clients delete in-flight messages
    threads = [threading.Thread(target=receive) for _ in range(2)]
    handles = [m["ReceiptHandle"] for m in in_flight]
    threads += [threading.Thread(target=delete, args=(handles[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=30)
    # THEN every call succeeded: both receives got their ten, the in-flight ones were deleted
    assert errors == []
    assert received == [10, 10]
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "20"}


def test_a_long_poll_does_not_hold_up_other_sqs_calls(moto: MotoServer) -> None:
    # GIVEN a client long-polling an empty queue for 3 s (the event source mapping's slots do this)
    sqs = _client(moto.url)
    empty = sqs.create_queue(QueueName="empty")["QueueUrl"]
    busy = sqs.create_queue(QueueName="busy")["QueueUrl"]
    poller = threading.Thread(
        target=lambda: _client(moto.url).receive_message(QueueUrl=empty, WaitTimeSeconds=3)
    )
    poller.start()
    time.sleep(0.3)
    # WHEN another client sends and receives meanwhile
    started = time.monotonic()
    sqs.send_message(QueueUrl=busy, MessageBody="x")
    received = sqs.receive_message(QueueUrl=busy, WaitTimeSeconds=1).get("Messages", [])
    elapsed = time.monotonic() - started
    poller.join(timeout=10)
    # THEN those calls were not queued behind the long poll
    assert len(received) == 1
    assert elapsed < 1.5


def test_a_long_poll_wakes_when_a_message_arrives(moto: MotoServer) -> None:
    # GIVEN a long poll of 5 s on an empty queue
    sqs = _client(moto.url)
    url = sqs.create_queue(QueueName="wake")["QueueUrl"]
    waited: list[float] = []

    def poll() -> None:
        start = time.monotonic()
        if _client(moto.url).receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages"):
            waited.append(time.monotonic() - start)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    # WHEN a message is sent
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    poller.join(timeout=10)
    # THEN the poll returns it well before its wait ends
    assert waited
    assert waited[0] < 2.5


def test_a_long_poll_sees_a_delayed_message_when_its_delay_ends(moto: MotoServer) -> None:
    # GIVEN a message delayed 1 s and no other SQS call to wake the poll
    sqs = _client(moto.url)
    url = sqs.create_queue(QueueName="delayed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    # WHEN a long poll waits for it
    start = time.monotonic()
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
    # THEN it arrives about when its delay ends, not when the poll's wait does
    assert len(messages) == 1
    assert time.monotonic() - start < 3.0

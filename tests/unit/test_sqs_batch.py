"""SendMessageBatch with group commit, against a recording SQS stand-in (no network)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError
from invoker.contract import SQS_MAX_BATCH_ENTRIES as MAX_BATCH_ENTRIES
from invoker.contract import SQS_MAX_MESSAGE_BYTES as MAX_BATCH_BYTES
from invoker.sqs_batch import OutgoingMessage, SendFailed, SqsBatchSender

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/results"
pytestmark = pytest.mark.timeout(30)  # a sender that deadlocks fails here, not at the suite's 300 s

WAIT = 5.0  # upper bound for things that must happen; a passing test never waits this long

Entry = dict[str, Any]


class FakeSqs:
    """Records each SendMessageBatch call. The first call can be held on `gate` (a slow SQS) so that
    other senders queue up behind it; `answer` decides each call's response or raises."""

    def __init__(
        self, answer: Callable[[list[Entry]], dict[str, Any]] | None = None, *, hold_first: bool = False
    ):
        self.calls: list[list[Entry]] = []
        self.queue_urls: list[str] = []
        self.gate = threading.Event()
        self.first_call_started = threading.Event()
        self._hold_first = hold_first
        self._answer = answer or succeed_all
        self._lock = threading.Lock()

    def send_message_batch(self, *, QueueUrl: str, Entries: list[Entry]) -> dict[str, Any]:
        with self._lock:
            self.calls.append(list(Entries))
            self.queue_urls.append(QueueUrl)
            first = len(self.calls) == 1
        if first:
            self.first_call_started.set()
            if self._hold_first:
                assert self.gate.wait(WAIT), "test never opened the gate"
        return self._answer(Entries)

    def bodies(self) -> list[list[str]]:
        return [[entry["MessageBody"] for entry in call] for call in self.calls]


def succeed_all(entries: list[Entry]) -> dict[str, Any]:
    return {
        "Successful": [{"Id": e["Id"], "MessageId": f"m-{e['Id']}", "MD5OfMessageBody": ""} for e in entries]
    }


def fail_bodies(*bodies: str) -> Callable[[list[Entry]], dict[str, Any]]:
    """Answers with a per-entry failure for the entries carrying these bodies."""

    def answer(entries: list[Entry]) -> dict[str, Any]:
        failed = [e for e in entries if e["MessageBody"] in bodies]
        ok = [e for e in entries if e["MessageBody"] not in bodies]
        return {
            **succeed_all(ok),
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                for e in failed
            ],
        }

    return answer


def raise_for_body(body: str) -> Callable[[list[Entry]], dict[str, Any]]:
    """Fails the whole call when it carries this body, as botocore would on a 5xx after its retries."""

    def answer(entries: list[Entry]) -> dict[str, Any]:
        if any(e["MessageBody"] == body for e in entries):
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "busy"}},
                "SendMessageBatch",
            )
        return succeed_all(entries)

    return answer


def make_sender(fake: FakeSqs) -> SqsBatchSender:
    return SqsBatchSender(cast("SQSClient", fake), QUEUE_URL)


class Senders:
    """Each message sent from its own thread through one sender; `outcomes` maps body -> None (sent)
    or the exception its `send` raised."""

    def __init__(self, fake: FakeSqs) -> None:
        self.fake = fake
        self.sender = make_sender(fake)
        self.outcomes: dict[str, BaseException | None] = {}
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, message: OutgoingMessage) -> None:
        def run() -> None:
            try:
                self.sender.send(message)
                outcome: BaseException | None = None
            except BaseException as exc:
                outcome = exc
            with self._lock:
                self.outcomes[message.body] = outcome

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
        assert not any(thread.is_alive() for thread in self.threads), "a sender is still blocked"


@pytest.fixture
def senders() -> Iterator[Callable[[FakeSqs], Senders]]:
    created: list[Senders] = []

    def create(fake: FakeSqs) -> Senders:
        created.append(Senders(fake))
        return created[-1]

    yield create
    for group in created:
        # A failed assertion may leave the gate closed: open it so that no thread outlives the test.
        group.fake.gate.set()
        group.join()


def queue_behind_a_slow_call(group: Senders, messages: list[OutgoingMessage]) -> None:
    """The first message's call is held on the gate; the others queue up behind it; then the gate opens."""
    fake = group.fake
    group.start(messages[0])
    assert fake.first_call_started.wait(WAIT)
    for message in messages[1:]:
        group.start(message)
    # Wait until every later sender has queued its message (white-box: the sender's queue).
    deadline = time.monotonic() + WAIT
    while len(group.sender._pending) < len(messages) - 1:
        assert time.monotonic() < deadline, "senders did not queue up"
        time.sleep(0.001)
    # While the call is in flight, nobody's send has returned: each waits for its own write.
    assert group.outcomes == {}
    fake.gate.set()
    group.join()


def test_a_single_send_goes_out_at_once() -> None:
    # GIVEN an idle sender WHEN one message is sent
    fake = FakeSqs()
    make_sender(fake).send(OutgoingMessage(body='{"requestId":"r-1"}'))
    # THEN one call carries it immediately (no timer), with nothing but its body
    assert fake.calls == [[{"Id": "0", "MessageBody": '{"requestId":"r-1"}'}]]
    assert fake.queue_urls == [QUEUE_URL]


def test_sequential_sends_each_go_out_alone() -> None:
    # GIVEN sends that never overlap WHEN three are sent one after another THEN three calls of one
    fake = FakeSqs()
    sender = make_sender(fake)
    for index in range(3):
        sender.send(OutgoingMessage(body=f"m{index}"))
    assert fake.bodies() == [["m0"], ["m1"], ["m2"]]


def test_concurrent_sends_are_grouped_in_batches_of_at_most_ten(
    senders: Callable[[FakeSqs], Senders],
) -> None:
    # GIVEN 30 threads sending while the first call is slow
    fake = FakeSqs(hold_first=True)
    group = senders(fake)
    messages = [OutgoingMessage(body=f"m{index:02d}") for index in range(30)]
    # WHEN the slow call completes
    queue_behind_a_slow_call(group, messages)
    # THEN the 29 that waited went out in full batches of 10, in order, each exactly once
    assert [len(call) for call in fake.calls] == [1, 10, 10, 9]
    assert all(len(call) <= MAX_BATCH_ENTRIES for call in fake.calls)
    assert [body for call in fake.bodies() for body in call] == [m.body for m in messages]
    # and every sender returned without error, with entry ids unique within each call
    assert group.outcomes == dict.fromkeys((m.body for m in messages), None)
    assert all(len({e["Id"] for e in call}) == len(call) for call in fake.calls)


@pytest.mark.parametrize(
    ("body_size", "calls"),
    [(MAX_BATCH_BYTES // 4, [1, 4]), (MAX_BATCH_BYTES // 4 + 1, [1, 3, 1])],
    ids=["exactly-1MiB", "one-byte-over"],
)
def test_total_size_limit_splits_batches(
    senders: Callable[[FakeSqs], Senders], body_size: int, calls: list[int]
) -> None:
    # GIVEN four queued messages of a quarter MiB each (or one byte more)
    fake = FakeSqs(hold_first=True)
    group = senders(fake)
    messages = [OutgoingMessage(body="first")]
    messages += [OutgoingMessage(body=str(index) * body_size) for index in range(4)]
    # WHEN sent
    queue_behind_a_slow_call(group, messages)
    # THEN a batch is at most 1 MiB: exactly 1 MiB goes in one call, one byte more splits it
    assert [len(call) for call in fake.calls] == calls
    assert all(sum(len(e["MessageBody"]) for e in call) <= MAX_BATCH_BYTES for call in fake.calls)
    assert all(outcome is None for outcome in group.outcomes.values())


def test_attributes_count_towards_the_batch_size(senders: Callable[[FakeSqs], Senders]) -> None:
    # GIVEN four quarter-MiB messages whose size is reached only with their attribute
    attribute: dict[str, MessageAttributeValueTypeDef] = {
        "reason": {"DataType": "String", "StringValue": "model_error"}
    }  # 6 + 6 + 11 bytes
    fake = FakeSqs(hold_first=True)
    group = senders(fake)
    messages = [OutgoingMessage(body="first")]
    messages += [
        OutgoingMessage(body=str(index) * (MAX_BATCH_BYTES // 4 - 22), attributes=dict(attribute))
        for index in range(4)
    ]
    # WHEN sent
    queue_behind_a_slow_call(group, messages)
    # THEN they do not fit in one call (body alone would)
    assert [len(call) for call in fake.calls] == [1, 3, 1]


def test_per_entry_failure_raises_only_for_that_entry(senders: Callable[[FakeSqs], Senders]) -> None:
    # GIVEN SQS failing one entry of a batch
    fake = FakeSqs(fail_bodies("bad"), hold_first=True)
    group = senders(fake)
    messages = [OutgoingMessage(body=body) for body in ("first", "a", "bad", "b")]
    # WHEN the batch is sent
    queue_behind_a_slow_call(group, messages)
    assert fake.bodies() == [["first"], ["a", "bad", "b"]]
    # THEN only that sender gets SendFailed, with SQS's code; the others were written
    failure = group.outcomes.pop("bad")
    assert isinstance(failure, SendFailed)
    assert failure.code == "InternalError"
    assert str(failure) == "InternalError: try again"
    assert group.outcomes == {"first": None, "a": None, "b": None}


def test_a_failed_call_fails_each_of_its_entries_and_only_those(
    senders: Callable[[FakeSqs], Senders],
) -> None:
    # GIVEN 12 queued messages, the first batch of 10 carrying one that makes the whole call fail
    fake = FakeSqs(raise_for_body("m03"), hold_first=True)
    group = senders(fake)
    messages = [OutgoingMessage(body="first")] + [OutgoingMessage(body=f"m{i:02d}") for i in range(12)]
    # WHEN sent
    queue_behind_a_slow_call(group, messages)
    # THEN each of the 10 entries of the failed call raises SendFailed, the next batch is still sent
    assert [len(call) for call in fake.calls] == [1, 10, 2]
    failed = {body for body, outcome in group.outcomes.items() if outcome is not None}
    assert failed == {f"m{i:02d}" for i in range(10)}
    assert all(isinstance(group.outcomes[body], SendFailed) for body in failed)
    assert {cast("SendFailed", group.outcomes[body]).code for body in failed} == {"ClientError"}
    assert "busy" in str(group.outcomes["m00"])


def test_sender_recovers_after_a_failed_call(senders: Callable[[FakeSqs], Senders]) -> None:
    # GIVEN a call that failed as a whole
    fake = FakeSqs(raise_for_body("boom"))
    group = senders(fake)
    with pytest.raises(SendFailed):
        group.sender.send(OutgoingMessage(body="boom"))
    # WHEN the next message is sent (from a thread: a sender stuck as "busy" would block forever)
    group.start(OutgoingMessage(body="fine"))
    group.join()
    # THEN it goes out
    assert group.outcomes == {"fine": None}
    assert fake.bodies() == [["boom"], ["fine"]]


def test_fifo_fields_and_attributes_are_passed_through() -> None:
    # GIVEN a message for a FIFO queue with attributes
    attributes: dict[str, Any] = {
        "reason": {"DataType": "String", "StringValue": "model_error"},
        "receiveCount": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    message = OutgoingMessage(
        body="b", attributes=attributes, group_id="tenant-7", deduplication_id="msg-1:result"
    )
    fake = FakeSqs()
    # WHEN sent
    make_sender(fake).send(message)
    # THEN the entry carries the group, the deduplication id and the attributes unchanged
    assert fake.calls == [
        [
            {
                "Id": "0",
                "MessageBody": "b",
                "MessageAttributes": attributes,
                "MessageGroupId": "tenant-7",
                "MessageDeduplicationId": "msg-1:result",
            }
        ]
    ]


@pytest.mark.parametrize(
    ("message", "size"),
    [
        (OutgoingMessage(body="abc"), 3),
        (OutgoingMessage(body="é日🙂"), 2 + 3 + 4),  # UTF-8 bytes, not characters
        (OutgoingMessage(body="", attributes={}), 0),
        (OutgoingMessage(body="abc", attributes={"reason": {"DataType": "String", "StringValue": "x"}}), 3 + 6 + 6 + 1),
        (OutgoingMessage(body="", attributes={"k": {"DataType": "String", "StringValue": "ü"}}), 1 + 6 + 2),
        (OutgoingMessage(body="", attributes={"n": {"DataType": "Number", "StringValue": "42"}}), 1 + 6 + 2),
        (OutgoingMessage(body="", attributes={"b": {"DataType": "Binary", "BinaryValue": b"\x00" * 5}}), 1 + 6 + 5),
        (
            OutgoingMessage(
                body="xy",
                attributes={
                    "a": {"DataType": "String", "StringValue": "1"},
                    "bb": {"DataType": "Number.int", "StringValue": "22"},
                },
            ),
            2 + (1 + 6 + 1) + (2 + 10 + 2),
        ),
    ],
    ids=["ascii", "multibyte", "empty-attributes", "string-attr", "multibyte-attr", "number-attr", "binary-attr",
         "two-attrs"],
)  # fmt: skip
def test_outgoing_message_size_counts_body_and_attributes(message: OutgoingMessage, size: int) -> None:
    # GIVEN a message WHEN sized THEN body bytes plus each attribute's name, type and value bytes
    assert message.size() == size


def test_a_message_over_the_sqs_limit_is_refused_before_any_call() -> None:
    # GIVEN a message of 1 MiB + 1 byte counting its attribute (name 4 + type 6 + value 1)
    fake = FakeSqs()
    attribute: dict[str, MessageAttributeValueTypeDef] = {"note": {"DataType": "String", "StringValue": "x"}}
    oversized = OutgoingMessage(body="b" * (1_048_576 - 10), attributes=attribute)
    assert oversized.size() == 1_048_577
    # WHEN sent THEN it fails on its own, without a SendMessageBatch call that could fail others
    with pytest.raises(SendFailed) as raised:
        make_sender(fake).send(oversized)
    assert raised.value.code == "MessageTooLong"
    assert fake.calls == []

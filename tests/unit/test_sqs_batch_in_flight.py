"""Several SendMessageBatch calls in flight per queue: throughput scales with the bound, nothing is lost or
written twice, a FIFO group is never split over calls in flight. Against a slow SQS stand-in (no network)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import pytest
from invoker.config import load_config
from invoker.sqs_batch import OutgoingMessage, SendFailed, SqsBatchSender
from invoker.writing import Writer

from tests.support.factories import function_env

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/results.fifo"
pytestmark = pytest.mark.timeout(60)
WAIT = 5.0

Entry = dict[str, Any]


class SlowSqs:
    """Each SendMessageBatch call takes `delay(call number)` seconds, then writes its entries (in entry
    order) to `written`, except those whose body is in `failing` (a per-entry failure). Counts the most
    calls it ever had in flight at once."""

    def __init__(self, delay: Callable[[int], float], failing: frozenset[str] = frozenset()) -> None:
        self.calls: list[list[Entry]] = []
        self.written: list[Entry] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._delay = delay
        self._failing = failing
        self._lock = threading.Lock()

    def send_message_batch(self, *, QueueUrl: str, Entries: list[Entry]) -> dict[str, Any]:
        assert QueueUrl == QUEUE_URL
        with self._lock:
            self.calls.append(list(Entries))
            number = len(self.calls)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self._delay(number))
        ok = [e for e in Entries if e["MessageBody"] not in self._failing]
        with self._lock:
            self.written += ok
            self.in_flight -= 1
        return {
            "Successful": [{"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": ""} for e in ok],
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                for e in Entries
                if e["MessageBody"] in self._failing
            ],
        }


def send_all(
    sender: SqsBatchSender, messages: list[OutgoingMessage], threads: int
) -> dict[str, BaseException | None]:
    """Each message from a pool of `threads` concurrent senders; body -> None (written) or the error."""

    def one(message: OutgoingMessage) -> BaseException | None:
        try:
            sender.send(message)
        except SendFailed as exc:
            return exc
        return None

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(one, messages))
    return {message.body: outcome for message, outcome in zip(messages, outcomes, strict=True)}


def deliver(max_in_flight: int, messages: int) -> tuple[SlowSqs, dict[str, BaseException | None]]:
    fake = SlowSqs(lambda _: 0.020)  # every call takes 20 ms
    sender = SqsBatchSender(cast("SQSClient", fake), QUEUE_URL, max_in_flight)
    batch = [OutgoingMessage(body=f"m{index:04d}") for index in range(messages)]
    return fake, send_all(sender, batch, threads=64)


def test_calls_in_flight_are_bounded_and_used_and_nothing_is_lost_or_duplicated() -> None:
    # GIVEN an SQS whose SendMessageBatch takes 20 ms and 64 threads with results to send
    # WHEN 600 results go out with 1, then 4 calls in flight
    one_fake, one_outcomes = deliver(1, 600)
    four_fake, four_outcomes = deliver(4, 600)
    # THEN one call at a time never overlaps, and four calls overlap up to four, never more (what that
    # is worth in results per second is measured by `python -m bench --only round_trip`, not here)
    assert one_fake.most_in_flight == 1
    assert four_fake.most_in_flight == 4
    # and in both runs every result was written exactly once and every sender returned without error
    for fake, outcomes in ((one_fake, one_outcomes), (four_fake, four_outcomes)):
        bodies = [entry["MessageBody"] for entry in fake.written]
        assert sorted(bodies) == [f"m{index:04d}" for index in range(600)]
        assert set(outcomes.values()) == {None}


def test_per_entry_failures_fail_only_their_senders_with_calls_in_flight() -> None:
    # GIVEN 4 calls in flight and an SQS that fails 7 of 300 entries
    failing = frozenset(f"m{index:04d}" for index in (3, 50, 51, 120, 199, 250, 299))
    fake = SlowSqs(lambda _: 0.005, failing)
    sender = SqsBatchSender(cast("SQSClient", fake), QUEUE_URL, 4)
    # WHEN sent from 48 threads
    outcomes = send_all(sender, [OutgoingMessage(body=f"m{index:04d}") for index in range(300)], threads=48)
    # THEN exactly those 7 senders got SendFailed with SQS's code; the rest were written once each
    failed = {body: outcome for body, outcome in outcomes.items() if outcome is not None}
    assert set(failed) == failing
    assert {cast("SendFailed", outcome).code for outcome in failed.values()} == {"InternalError"}
    bodies = [entry["MessageBody"] for entry in fake.written]
    assert sorted(bodies) == sorted(set(outcomes) - failing)
    assert fake.most_in_flight > 1


def test_a_partial_batch_waits_beside_a_call_in_flight_and_goes_when_it_answers() -> None:
    # GIVEN 4 calls allowed and a first call held open
    gate = threading.Event()

    def delay(number: int) -> float:
        assert number > 1 or gate.wait(WAIT)
        return 0.0

    fake = SlowSqs(delay)
    sender = SqsBatchSender(cast("SQSClient", fake), QUEUE_URL, 4)
    first = threading.Thread(target=sender.send, args=(OutgoingMessage(body="first"),))
    first.start()
    deadline = time.monotonic() + WAIT
    while not fake.calls:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # WHEN three more messages queue up (a batch far from full)
    others = [threading.Thread(target=sender.send, args=(OutgoingMessage(body=f"m{i}"),)) for i in range(3)]
    for thread in others:
        thread.start()
    while len(sender._pending) < 3:  # white-box: the sender's queue
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # THEN no second call starts for them (it would spend a call on 3 entries) until the first answers
    time.sleep(0.05)
    assert len(fake.calls) == 1
    gate.set()
    for thread in [first, *others]:
        thread.join(WAIT)
    assert [[e["MessageBody"] for e in call] for call in fake.calls] == [["first"], ["m0", "m1", "m2"]]


def test_a_fifo_group_is_never_split_over_calls_in_flight() -> None:
    # GIVEN 4 calls allowed, an SQS where later calls answer sooner than earlier ones (a later call
    # could write its entries first), and a first call held open while 60 messages of 12 groups queue up
    # round-robin, so that every full batch holds messages of groups also queued behind it
    gate = threading.Event()

    def delay(number: int) -> float:
        if number == 1:
            assert gate.wait(WAIT)
            return 0.0
        return max(0.0, 0.05 - 0.01 * number)

    fake = SlowSqs(delay)
    sender = SqsBatchSender(cast("SQSClient", fake), QUEUE_URL, 4)
    messages = [OutgoingMessage(body="first", group_id="g00", deduplication_id="first")]
    messages += [
        OutgoingMessage(body=f"g{n % 12:02d}-{n // 12}", group_id=f"g{n % 12:02d}", deduplication_id=str(n))
        for n in range(60)
    ]
    threads = [threading.Thread(target=sender.send, args=(message,)) for message in messages]
    threads[0].start()
    deadline = time.monotonic() + WAIT
    while not fake.calls:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # WHEN each message is queued after the one before it (the order its group must keep)
    for thread in threads[1:]:
        queued = sum(len(call) for call in fake.calls) + len(sender._pending)
        thread.start()
        while sum(len(call) for call in fake.calls) + len(sender._pending) == queued:
            assert time.monotonic() < deadline, "a sender did not queue its message"
            time.sleep(0.0005)
    gate.set()
    for thread in threads:
        thread.join(WAIT)
    # THEN calls did overlap, yet each group's messages were written in the order they were queued
    assert fake.most_in_flight > 1
    bodies = [entry["MessageBody"] for entry in fake.written]
    assert sorted(bodies) == sorted(message.body for message in messages)
    for group in {message.group_id for message in messages}:
        queued_order = [m.body for m in messages if m.group_id == group]
        written_order = [e["MessageBody"] for e in fake.written if e["MessageGroupId"] == group]
        assert written_order == queued_order, group


def test_the_function_sends_to_each_queue_with_the_configured_bound() -> None:
    # GIVEN SQS_SENDS_IN_FLIGHT=3 WHEN the function's writer is built
    writer = Writer(
        load_config(function_env(SQS_SENDS_IN_FLIGHT="3")), cast("SQSClient", SlowSqs(lambda _: 0)), _no_s3
    )
    # THEN both its results and dead-letter senders allow 3 calls in flight (white-box: the senders)
    assert writer._results is not None
    assert (writer._results.max_in_flight, writer._dead_letters.max_in_flight) == (3, 3)


def _no_s3() -> S3Client:
    raise AssertionError("no S3 client is needed")

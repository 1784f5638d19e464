"""The event source emulator follows Lambda's SQS event source mapping rules (toy handlers, moto over HTTP)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.batch_response import parse_batch_response
from tests.support.local_stack import toy_events
from tests.support.polling import process_alive, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqs_sagemaker_invoker.local.esm import EventSourceEmulator
    from sqs_sagemaker_invoker.local.stand_ins import MotoServer
    from sqs_sagemaker_invoker.local.worker import FunctionSpec
    from tests.support.local_stack import ToyQueue


def _records(function: FunctionSpec) -> list[dict[str, Any]]:
    return [record for entry in toy_events(function) for record in entry["event"]["Records"]]


def _drained(queue: ToyQueue) -> bool:
    return queue.counts() == (0, 0)


# -- the event ------------------------------------------------------------------------------------


def test_standard_record_has_every_field_lambda_sends(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., Any],
) -> None:
    # GIVEN a message with String, Number and Binary attributes, and one without attributes
    queue = make_queue()
    with_attributes = queue.send(
        {"n": 1},
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "demo"},
            "size": {"DataType": "Number", "StringValue": "42"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffdata"},
        },
    )
    plain = queue.send("plain text")
    function = toy_function()

    # WHEN the mapping delivers them
    run_esm(queue, function)
    wait_for(lambda: len(_records(function)) == 2, what="both records")

    # THEN each record is shaped exactly like Lambda's
    by_id = {r["messageId"]: r for r in _records(function)}
    record = by_id[with_attributes]
    assert list(record) == [
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    ]  # fmt: skip
    assert record["body"] == '{"n": 1}'
    assert record["md5OfBody"] == hashlib.md5(b'{"n": 1}').hexdigest()
    assert list(record["attributes"]) == [
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    ]  # fmt: skip
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "demo", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "size": {"stringValue": "42", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\xffdata").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert len(record["md5OfMessageAttributes"]) == 32
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    assert by_id[plain]["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in by_id[plain]


def test_fifo_record_carries_group_deduplication_and_sequence(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., Any],
) -> None:
    # GIVEN a FIFO queue message
    queue = make_queue("toy.fifo", FifoQueue="true")
    queue.send({"n": 1}, MessageGroupId="g1", MessageDeduplicationId="d1")
    function = toy_function()

    # WHEN delivered
    run_esm(queue, function)
    wait_for(lambda: _records(function), what="the record")

    # THEN the FIFO attributes are there, in Lambda's order
    attributes = _records(function)[0]["attributes"]
    assert list(attributes) == [
        "ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId", "SenderId",
        "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp",
    ]  # fmt: skip
    assert attributes["MessageGroupId"] == "g1"
    assert attributes["MessageDeduplicationId"] == "d1"


# -- what gets deleted ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "failed", "invalid"),
    [
        (None, [], False),
        ({}, [], False),
        ({"batchItemFailures": []}, [], False),
        ({"batchItemFailures": None}, [], False),
        ({"other": 1}, [], False),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, ["a"], False),
        ("a string", [], True),
        ([{"itemIdentifier": "a"}], [], True),
        ({"batchItemFailures": "a"}, [], True),
        ({"batchItemFailures": [{"id": "a"}]}, [], True),
        ({"batchItemFailures": ["a"]}, [], True),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, [], True),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, [], True),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, [], True),
    ],
)
def test_batch_response_is_read_like_lambda(response: Any, failed: list[str], invalid: bool) -> None:
    # GIVEN a handler's return value; WHEN the mapping reads it
    result, problem = parse_batch_response(json.dumps(response), ["a", "b"])
    # THEN it is the failed ids, or the batch is invalid as a whole
    assert (problem is not None) == invalid
    assert result == failed


def test_only_messages_not_reported_failed_are_deleted(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN five messages, two of which the handler reports in batchItemFailures
    queue = make_queue(VisibilityTimeout="60")
    ids = queue.send_many([{"fail": True}, {}, {"fail": True}, {}, {}])
    function = toy_function()

    # WHEN a batch is processed
    esm = run_esm(queue, function)
    wait_for(lambda: esm.stats("toy").records == 5, what="five records")

    # THEN the three others are deleted and the two failed ones stay in flight (their visibility runs)
    assert queue.counts() == (0, 2)
    reports = list(esm.history)
    assert sorted(m for r in reports for m in r.item_failures) == sorted([ids[0], ids[2]])
    assert sorted(m for r in reports for m in r.deleted) == sorted([ids[1], ids[3], ids[4]])


def test_invalid_response_fails_the_whole_batch(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN a batch whose handler returns a string instead of a batch response
    queue = make_queue(VisibilityTimeout="60")
    queue.send_many([{"respond": {"value": "not a response"}}, {}])
    function = toy_function()

    # WHEN it is processed
    esm = run_esm(queue, function, max_concurrency=1)
    wait_for(lambda: esm.stats("toy").batches == 1, what="one batch")

    # THEN nothing is deleted
    assert esm.stats("toy").batch_failures == {"invalid_response": 1}
    assert queue.counts() == (0, 2)


def test_handler_error_fails_the_batch_and_the_messages_come_back(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN three messages, one of which makes the handler raise on its first delivery
    queue = make_queue(VisibilityTimeout="1")
    ids = queue.send_many([{}, {"raise": "boom", "once": "boom"}, {}])
    function = toy_function()

    # WHEN the mapping runs until the queue is empty
    esm = run_esm(queue, function, max_concurrency=1)
    wait_for(lambda: _drained(queue), what="the queue to drain")

    # THEN the failed batch deleted nothing: all three were delivered again after the visibility timeout
    first, *later = list(esm.history)
    assert first.failure == "error"
    assert "boom" in (first.failure_detail or "")
    assert first.deleted == []
    assert sorted(first.message_ids) == sorted(ids)
    redelivered = {m for report in later for m in report.deleted}
    assert redelivered == set(ids)
    assert all(count == 2 for report in later for count in report.receive_counts.values())


def test_timeout_kills_the_environment_and_fails_the_batch(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN a function with a 1.5 s timeout and a message that sleeps 30 s on its first delivery
    queue = make_queue(VisibilityTimeout="2")
    queue.send({"sleep": 30, "once": "slow"})
    function = toy_function(timeout_s=1.5)

    # WHEN it is processed
    esm = run_esm(queue, function, max_concurrency=1)
    wait_for(lambda: _drained(queue), timeout=30, what="the queue to drain")

    # THEN the first invocation timed out, its process was killed, and a fresh one processed the retry
    first, second = list(esm.history)[:2]
    assert first.failure == "timeout"
    assert first.deleted == []
    assert 1400 < first.outcome.duration_ms < 3000
    assert first.outcome.worker_pid is not None
    assert not process_alive(first.outcome.worker_pid)
    assert second.failure is None
    assert second.outcome.worker_pid != first.outcome.worker_pid
    # the context's remaining time counted down from the function timeout
    assert 1000 < toy_events(function)[0]["remaining_ms"] <= 1500


def test_crashed_runtime_fails_the_batch_and_the_messages_come_back(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN a batch in which the process is killed (SIGKILL) on the first delivery
    queue = make_queue(VisibilityTimeout="1")
    ids = queue.send_many([{}, {"crash": True, "once": "crash"}, {}])
    function = toy_function()

    # WHEN processed until the queue is empty
    esm = run_esm(queue, function, max_concurrency=1)
    wait_for(lambda: _drained(queue), what="the queue to drain")

    # THEN the crashed batch deleted nothing; every message was processed later by a new process
    first, *later = list(esm.history)
    assert first.failure == "crash"
    assert "signal: kill" in (first.failure_detail or "")
    assert first.deleted == []
    assert {m for report in later for m in report.deleted} == set(ids)
    assert all(report.outcome.worker_pid != first.outcome.worker_pid for report in later)


def test_the_function_visibility_change_is_honoured(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN a queue with a 3 s visibility timeout; the handler fails two messages, one made visible
    # again at once (0 s), the other hidden for 60 s
    queue = make_queue(VisibilityTimeout="3")
    soon = queue.send({"visibility": 0, "queue_url": queue.url, "once": "soon"})
    late = queue.send({"visibility": 60, "queue_url": queue.url, "once": "late"})
    function = toy_function()

    # WHEN the mapping runs for longer than the queue's visibility timeout
    esm = run_esm(queue, function, max_concurrency=1)
    started = time.monotonic()
    wait_for(lambda: soon in {m for r in esm.history for m in r.deleted}, what="the 0 s message again")
    soon_again = time.monotonic() - started
    time.sleep(max(0.0, 4.0 - (time.monotonic() - started)))

    # THEN the first came back well before 3 s, and the second has not come back at all
    assert soon_again < 2.5
    deliveries = [m for r in esm.history for m in r.message_ids]
    assert deliveries.count(late) == 1
    assert queue.counts() == (0, 1)


# -- batching and concurrency ---------------------------------------------------------------------


def test_batch_fills_up_to_batch_size_within_the_window(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN 25 waiting messages and a mapping with batch size 25 and a 2 s window
    queue = make_queue()
    queue.send_many([{} for _ in range(25)])
    function = toy_function()

    # WHEN it polls
    esm = run_esm(queue, function, batch_size=25, batching_window_s=2, max_concurrency=1)
    wait_for(lambda: esm.stats("toy").records == 25, what="25 records")

    # THEN one invocation got all 25 (ReceiveMessage returns at most 10 at a time)
    assert [len(r.message_ids) for r in esm.history] == [25]


def test_window_holds_a_small_batch_until_it_expires(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN three messages, batch size 100 and a 2 s window
    queue = make_queue()
    queue.send_many([{} for _ in range(3)])
    function = toy_function()

    # WHEN it polls
    started = time.time()
    esm = run_esm(queue, function, batch_size=100, batching_window_s=2, max_concurrency=1)
    wait_for(lambda: esm.stats("toy").records == 3, what="3 records")

    # THEN the batch was invoked once the window had passed, not before
    report = esm.history[0]
    assert len(report.message_ids) == 3
    assert report.started - started >= 1.9


def test_no_more_than_max_concurrency_batches_run_at_once(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN 9 slow messages, batch size 1 and a maximum concurrency of 3
    queue = make_queue()
    queue.send_many([{"sleep": 0.6} for _ in range(9)])
    function = toy_function()

    # WHEN they are processed
    esm = run_esm(queue, function, batch_size=1, max_concurrency=3)
    wait_for(lambda: esm.stats("toy").batches == 9, what="9 batches")

    # THEN three batches overlapped at most, each slot reusing its warm process
    edges = sorted([(r.started, 1) for r in esm.history] + [(r.ended, -1) for r in esm.history])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 3
    per_pid: dict[int, list[int]] = {}
    for entry in toy_events(function):
        per_pid.setdefault(entry["pid"], []).append(entry["invocation"])
    assert len(per_pid) == 3
    assert all(sorted(counts) == list(range(1, len(counts) + 1)) for counts in per_pid.values())


def test_batches_stay_under_the_6_mb_payload_limit(
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN eight messages of 900 KB (7.2 MB together)
    queue = make_queue()
    ids = [queue.send("x" * 900_000) for _ in range(8)]
    function = toy_function()

    # WHEN the mapping batches them with batch size 10
    esm = run_esm(queue, function, max_concurrency=1)
    wait_for(lambda: esm.stats("toy").deleted == 8, what="all deleted")

    # THEN no invocation payload went over 6 MB, and none was lost
    sizes = [len(json.dumps(entry["event"])) for entry in toy_events(function)]
    assert len(sizes) >= 2
    assert max(sizes) <= 6 * 1024 * 1024
    assert sorted(r["messageId"] for r in _records(function)) == sorted(ids)


# -- logs and metrics -----------------------------------------------------------------------------


def test_output_is_shipped_to_logs_and_emf_to_metrics(
    moto: MotoServer,
    make_queue: Callable[..., ToyQueue],
    toy_function: Callable[..., FunctionSpec],
    run_esm: Callable[..., EventSourceEmulator],
) -> None:
    # GIVEN a handler that prints a JSON log line and an EMF document per batch
    queue = make_queue()
    queue.send_many([{}, {}, {}])
    function = toy_function(name="toy-fn")

    # WHEN a batch is processed and the mapping stops (which flushes the shipper)
    esm = run_esm(queue, function, max_concurrency=1)
    wait_for(lambda: esm.stats("toy").deleted == 3, what="3 deleted")
    esm.stop()
    logs = boto3.client("logs", **client_kwargs(moto.url))
    cloudwatch = boto3.client("cloudwatch", **client_kwargs(moto.url))

    def messages() -> list[str]:
        streams = logs.describe_log_streams(logGroupName="/aws/lambda/toy-fn")["logStreams"]
        return [
            e["message"]
            for s in streams
            for e in logs.get_log_events(logGroupName="/aws/lambda/toy-fn", logStreamName=s["logStreamName"])[
                "events"
            ]
        ]

    # THEN the function's log group holds Lambda's START/END/REPORT lines around the handler's output
    lines = wait_for(lambda: len(messages()) >= 5 and messages(), what="log events")
    assert lines[0].startswith("START RequestId: ")
    assert json.loads(lines[1])["message"] == "toy batch"
    assert lines[-2].startswith("END RequestId: ")
    assert lines[-1].startswith("REPORT RequestId: ")
    assert "Init Duration" in lines[-1]
    # AND the EMF metrics are in CloudWatch with their namespace, dimensions and units
    stats = wait_for(
        lambda: cloudwatch.get_metric_statistics(
            Namespace="Toy",
            MetricName="Records",
            Dimensions=[{"Name": "service", "Value": "toy"}],
            StartTime=datetime.now(UTC) - timedelta(minutes=10),
            EndTime=datetime.now(UTC) + timedelta(minutes=10),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"],
        what="the Records metric",
    )
    assert stats[0]["Sum"] == 3
    assert stats[0]["Unit"] == "Count"
    latency = cloudwatch.get_metric_statistics(
        Namespace="Toy",
        MetricName="Latency",
        Dimensions=[{"Name": "service", "Value": "toy"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=10),
        Period=3600,
        Statistics=["SampleCount", "Maximum"],
    )["Datapoints"]
    assert latency[0]["SampleCount"] == 2
    assert latency[0]["Maximum"] == 2.5

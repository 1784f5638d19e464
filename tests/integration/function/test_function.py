"""The real lambda_handler, over real HTTP: moto's SQS/S3 and the SageMaker Runtime emulator."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from typing import Any

import pytest

from sqs_sagemaker_invoker.local.sagemaker import FaultSpec, SageMakerEmulator
from tests.support.function_harness import ENDPOINT


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {
        name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
    }


def test_delivers_results_with_the_exact_request_members(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    # GIVEN a function and a message using every optional InvokeEndpoint member
    fn = run_function()
    envelope = {
        "requestId": "req-1",
        "body": {"instances": [[5.1, 3.5, 1.4, 0.2]]},
        "accept": "application/json",
        "customAttributes": "trace=abc",
        "targetModel": "model-a.tar.gz",
        "targetVariant": "AllTraffic",
        "inferenceId": "inf-1",
        "enableExplanations": "`true`",
        "inferenceComponentName": "ic-1",
    }
    message_id = fn.send(envelope)
    # WHEN the event source hands it to the function
    response = fn.poll_once()
    # THEN it is acknowledged and its result is on the results queue
    assert response["batchItemFailures"] == []
    [result] = fn.results()
    assert result["requestId"] == "req-1"
    assert result["messageId"] == message_id
    assert result["body"] == {"instances": [[5.1, 3.5, 1.4, 0.2]]}  # the inline endpoint echoes
    assert result["receiveCount"] == 1
    assert result["latencyMs"] > 0
    # AND the endpoint received exactly the members of the envelope, signed
    [request] = emulator.requests(ENDPOINT)
    headers = request.headers
    assert request.body == b'{"instances":[[5.1,3.5,1.4,0.2]]}'
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
    assert headers["x-amzn-sagemaker-target-model"] == "model-a.tar.gz"
    assert headers["x-amzn-sagemaker-target-variant"] == "AllTraffic"
    assert headers["x-amzn-sagemaker-inference-id"] == "inf-1"
    assert headers["x-amzn-sagemaker-enable-explanations"] == "`true`"
    assert headers["x-amzn-sagemaker-inference-component"] == "ic-1"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256")
    # AND nothing is left anywhere else
    assert fn.receive() == []
    assert fn.dead_letters() == []


def test_tracing_can_be_switched_on(run_function: Any) -> None:
    # GIVEN a function with ENABLE_TRACING=true (tests/unit/test_handler_module.py checks the wiring)
    fn = run_function(ENABLE_TRACING="true")
    fn.send({"bodyText": "x"})
    # WHEN a batch runs THEN it is processed as without tracing
    assert fn.poll_once()["batchItemFailures"] == []
    assert len(fn.results()) == 1


def test_model_error_goes_to_the_dlq_with_its_wire_data(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    # GIVEN the model fails the next request with its own 503
    fn = run_function()
    emulator.inject(ENDPOINT, "model_error", count=1, original_status_code=503)
    body = '{"bodyText": "5.1,3.5",  "requestId": "r-model"}'
    fn.send(body)
    # WHEN processed
    assert fn.poll_once()["batchItemFailures"] == []
    # THEN the DLQ holds the original body byte for byte, with the reason and the model's data
    [dead] = fn.dead_letters()
    assert dead["Body"] == body
    attrs = attributes(dead)
    assert attrs["invoker.reason"] == "model_error"
    assert attrs["invoker.request_id"] == "r-model"
    assert attrs["invoker.original_status_code"] == "503"
    assert attrs["invoker.log_stream_arn"].startswith("arn:aws:logs:")
    assert attrs["invoker.source_queue_arn"] == fn.queues.requests_arn
    assert attrs["invoker.receive_count"] == "1"
    assert dead["MessageAttributes"]["invoker.original_status_code"]["DataType"] == "Number"
    # AND it was invoked once, never again
    assert len(emulator.requests(ENDPOINT)) == 1
    assert fn.results() == []
    assert fn.receive() == []


def test_validation_error_is_dead_lettered(run_function: Any, emulator: SageMakerEmulator) -> None:
    fn = run_function()
    emulator.inject(ENDPOINT, "validation_error", count=1)
    fn.send({"bodyText": "x"})
    assert fn.poll_once()["batchItemFailures"] == []
    [dead] = fn.dead_letters()
    assert attributes(dead)["invoker.reason"] == "validation_error"


@pytest.mark.parametrize(
    ("kind", "reason", "reattempts"),
    [
        ("model_not_ready", "model_not_ready", 0),
        ("throttled", "throttled", 4),
        ("service_unavailable", "service_unavailable", 1),
        ("internal_failure", "internal_failure", 1),
        ("internal_dependency", "internal_dependency", 0),
    ],
)
def test_transient_errors_put_the_message_back_with_a_backoff(
    run_function: Any, emulator: SageMakerEmulator, kind: str, reason: str, reattempts: int, caplog: Any
) -> None:
    # GIVEN an endpoint failing with `kind` for longer than the in-batch re-attempts last
    fn = run_function(RETRY_BASE_SECONDS="30", RETRY_MAX_SECONDS="30")
    emulator.inject(ENDPOINT, kind, count=10)
    message_id = fn.send({"bodyText": "x"})
    # WHEN processed
    response = fn.poll_once()
    # THEN the message is reported failed, stays hidden (backoff), and is neither delivered nor dead-lettered
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [message_id]
    assert len(emulator.requests(ENDPOINT)) == 1 + reattempts
    assert fn.receive() == []  # hidden by the visibility change ...
    assert fn.in_flight() == 1  # ... but not gone
    assert fn.results() == []
    assert fn.dead_letters() == []
    retry_lines = [r for r in caplog.records if getattr(r, "disposition", None) == "retry"]
    assert [getattr(r, "reason", None) for r in retry_lines] == [reason]


def test_the_backoff_outlasts_the_queue_visibility_timeout(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    # GIVEN a queue whose own visibility timeout is 1 s, and a 20-30 s backoff
    fn = run_function(RETRY_BASE_SECONDS="30", RETRY_MAX_SECONDS="30")
    fn.sqs.set_queue_attributes(QueueUrl=fn.queues.requests, Attributes={"VisibilityTimeout": "1"})
    emulator.inject(ENDPOINT, "model_not_ready", count=1)
    fn.send({"bodyText": "x"})
    # WHEN the endpoint is not ready
    assert len(fn.poll_once()["batchItemFailures"]) == 1
    # THEN after the queue's own timeout the message is still hidden: the function set its visibility
    time.sleep(1.5)
    assert fn.receive() == []
    assert fn.remaining() == 1


def test_a_retried_message_is_delivered_on_its_next_receive(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    # GIVEN an endpoint not ready for one request, and a zero backoff
    fn = run_function(RETRY_BASE_SECONDS="0", RETRY_MAX_SECONDS="0")
    emulator.inject(ENDPOINT, "model_not_ready", count=1)
    fn.send({"bodyText": "x", "requestId": "again"})
    # WHEN polled twice
    first = fn.poll_once()
    second = fn.poll_once()
    # THEN the second receive delivers it, and the result knows it was the second delivery
    assert len(first["batchItemFailures"]) == 1
    assert second["batchItemFailures"] == []
    [result] = fn.results()
    assert (result["requestId"], result["receiveCount"]) == ("again", 2)


def test_retries_exhausted_reach_the_dlq_with_the_last_reason(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    # GIVEN a retry budget of 2 deliveries and an endpoint that keeps throttling
    fn = run_function(max_receive_count=2, RETRY_BASE_SECONDS="0", RETRY_MAX_SECONDS="0")
    emulator.inject(ENDPOINT, "service_unavailable", count=100)
    fn.send({"bodyText": "x", "requestId": "tired"})
    # WHEN it is received twice
    fn.poll_once()
    fn.poll_once()
    # THEN the function dead-letters it itself (before SQS's redrive would, without a reason)
    [dead] = fn.dead_letters()
    attrs = attributes(dead)
    assert attrs["invoker.reason"] == "retries_exhausted"
    assert attrs["invoker.last_reason"] == "service_unavailable"
    assert attrs["invoker.receive_count"] == "2"
    assert fn.receive() == []
    assert fn.in_flight() == 0


def test_no_invocation_starts_past_the_deadline(run_function: Any, emulator: SageMakerEmulator) -> None:
    # GIVEN three messages and a function with 30 s left (read timeout 70 s + margin 5 s needed)
    fn = run_function()
    ids = {fn.send({"bodyText": str(i)}) for i in range(3)}
    # WHEN processed
    response = fn.poll_once(timeout_ms=30_000)
    # THEN nothing reached the endpoint and every message is back on the queue at once
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == ids
    assert emulator.requests(ENDPOINT) == []
    assert {m["MessageId"] for m in fn.receive()} == ids


def test_fifo_group_order_and_blocking(run_function: Any, emulator: SageMakerEmulator) -> None:
    # GIVEN a FIFO queue with three interleaved groups and groups running concurrently
    fn = run_function(fifo=True, MAX_CONCURRENCY="4")
    names = [f"{group}{i}" for i in range(1, 4) for group in "abc"]
    for name in names:
        fn.send({"bodyText": name}, MessageGroupId=name[0], MessageDeduplicationId=name)
    # WHEN processed as one batch
    assert fn.poll_once()["batchItemFailures"] == []
    # THEN within each group the endpoint saw the messages in order, and all were delivered
    bodies = [r.body.decode() for r in emulator.requests(ENDPOINT)]
    for group in "abc":
        assert [b for b in bodies if b.startswith(group)] == [f"{group}{i}" for i in range(1, 4)]
    assert sorted(r["bodyText"] for r in fn.results()) == sorted(names)


def test_fifo_failure_returns_the_rest_of_its_group_unprocessed(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    # GIVEN a FIFO group a1..a3 whose first request fails transiently (no in-batch re-attempt for 530)
    fn = run_function(fifo=True, RETRY_BASE_SECONDS="0", RETRY_MAX_SECONDS="0")
    for name in ["a1", "a2", "a3"]:
        fn.send({"bodyText": name}, MessageGroupId="a", MessageDeduplicationId=name)
    emulator.inject(ENDPOINT, "internal_dependency", count=1)
    # WHEN the batch is processed
    first = fn.poll_once()
    # THEN all three come back, and a2 and a3 were never invoked
    assert len(first["batchItemFailures"]) == 3
    assert [r.body.decode() for r in emulator.requests(ENDPOINT)] == ["a1"]
    assert fn.results() == []
    # AND the next receive processes a1, a2, a3 in order
    second = fn.poll_once()
    assert second["batchItemFailures"] == []
    assert [r.body.decode() for r in emulator.requests(ENDPOINT)] == ["a1", "a1", "a2", "a3"]
    assert [r["bodyText"] for r in fn.results()] == ["a1", "a2", "a3"]


def test_raw_mode_takes_headers_from_message_attributes(
    run_function: Any, emulator: SageMakerEmulator
) -> None:
    fn = run_function(MESSAGE_FORMAT="raw")
    fn.send(
        "5.1,3.5,1.4,0.2",
        MessageAttributes={
            "ContentType": {"DataType": "String", "StringValue": "text/csv"},
            "RequestId": {"DataType": "String", "StringValue": "raw-1"},
        },
    )
    assert fn.poll_once()["batchItemFailures"] == []
    [request] = emulator.requests(ENDPOINT)
    assert request.body == b"5.1,3.5,1.4,0.2"
    assert request.headers["content-type"] == "text/csv"
    [result] = fn.results()
    assert (result["requestId"], result["bodyText"]) == ("raw-1", "5.1,3.5,1.4,0.2")


def test_large_payloads_travel_through_s3_both_ways(run_function: Any, emulator: SageMakerEmulator) -> None:
    # GIVEN a route with a bucket for large payloads and results, and a 1.5 MB binary request
    fn = run_function(RESULTS_BUCKET="route-bucket", PAYLOAD_S3_PREFIX="s3://route-bucket/requests/")
    fn.s3.create_bucket(Bucket="route-bucket")
    payload = bytes(range(256)) * 6000
    fn.s3.put_object(Bucket="route-bucket", Key="requests/big.bin", Body=payload)
    fn.send(
        {
            "bodyS3Uri": "s3://route-bucket/requests/big.bin",
            "contentType": "application/octet-stream",
            "requestId": "big",
        }
    )
    # WHEN processed (the inline endpoint echoes 1.5 MB back: too large for an SQS result)
    assert fn.poll_once()["batchItemFailures"] == []
    # THEN the endpoint got the S3 object, and the result points at the body stored in the bucket
    assert emulator.requests(ENDPOINT)[0].body == payload
    [result] = fn.results()
    assert result["bodyS3Uri"] == "s3://route-bucket/results/big.body"
    stored = fn.s3.get_object(Bucket="route-bucket", Key="results/big.body")["Body"].read()
    assert stored == payload


def test_a_missing_s3_payload_is_an_invalid_message(run_function: Any) -> None:
    fn = run_function(RESULTS_BUCKET="route-bucket", PAYLOAD_S3_PREFIX="s3://route-bucket/requests/")
    fn.s3.create_bucket(Bucket="route-bucket")
    fn.send({"bodyS3Uri": "s3://route-bucket/requests/missing.json"})
    assert fn.poll_once()["batchItemFailures"] == []
    [dead] = fn.dead_letters()
    assert attributes(dead)["invoker.reason"] == "invalid_message"
    assert "NoSuchKey" in attributes(dead)["invoker.error"]


def test_bucket_only_results_are_objects_keyed_by_request_id(run_function: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("RESULTS_QUEUE_URL", raising=False)
    fn = run_function(RESULTS_QUEUE_URL="", RESULTS_BUCKET="results-only")
    fn.s3.create_bucket(Bucket="results-only")
    fn.send({"bodyBase64": base64.b64encode(b"\xff\xfebinary").decode(), "requestId": "bin-1"})
    assert fn.poll_once()["batchItemFailures"] == []
    document = json.loads(fn.s3.get_object(Bucket="results-only", Key="results/bin-1.json")["Body"].read())
    assert document["requestId"] == "bin-1"
    assert base64.b64decode(document["bodyBase64"]) == b"\xff\xfebinary"


def test_every_request_ends_in_exactly_one_place(run_function: Any, emulator: SageMakerEmulator) -> None:
    # GIVEN a mixed workload: good requests, malformed ones, model errors, transient errors
    fn = run_function(max_receive_count=4, RETRY_BASE_SECONDS="0", RETRY_MAX_SECONDS="0")
    expected: dict[str, str] = {}
    for i in range(30):
        expected[f"ok-{i}"] = "delivered"
        fn.send({"bodyText": str(i), "requestId": f"ok-{i}"})
    for i in range(5):
        fn.send(f'{{"requestId": "bad-{i}", "body": 1, "bodyText": "two bodies"}}')
        expected[f"bad-{i}"] = "invalid_message"
    emulator.set_faults(ENDPOINT, FaultSpec(throttle_rate=0.3, service_unavailable_rate=0.2, seed=11))
    # WHEN the event source polls until the queue is empty
    for _ in range(40):
        fn.poll_once(max_messages=10)
        if fn.remaining() == 0:
            break
    emulator.set_faults(ENDPOINT, FaultSpec())
    # THEN every request id is in the results or the DLQ, once, with the expected outcome
    outcome: Counter[str] = Counter()
    where: dict[str, str] = {}
    for result in fn.results():
        outcome[result["requestId"]] += 1
        where[result["requestId"]] = "delivered"
    for dead in fn.dead_letters():
        request_id = attributes(dead)["invoker.request_id"]
        outcome[request_id] += 1
        where[request_id] = attributes(dead)["invoker.reason"]
    assert set(outcome) == set(expected)
    duplicates = {k: v for k, v in outcome.items() if v > 1}
    assert duplicates == {}
    for request_id, place in where.items():
        if expected[request_id] == "delivered":
            assert place in {"delivered", "retries_exhausted"}
        else:
            assert place == expected[request_id]

"""The batch as a whole: Powertools' partial response, dispositions, FIFO, deadline, concurrency."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from botocore.exceptions import ReadTimeoutError
from invoker.backoff import Pacing
from invoker.config import load_config
from invoker.processor import Clients, build_processor, plan_lanes
from invoker.retries import queue_url_from_arn

from sqs_sagemaker_invoker.local.stand_ins import LambdaContext, sqs_event, sqs_record
from tests.support.factories import FIFO_QUEUE_ARN, function_env, string_attribute
from tests.unit.fakes import FakeRuntime, FakeS3, FakeSqs, ok_response, service_error

ENV = function_env()
RESULTS = ENV["RESULTS_QUEUE_URL"]
DLQ = ENV["DEAD_LETTER_QUEUE_URL"]
SOURCE_URL = queue_url_from_arn("arn:aws:sqs:us-east-1:123456789012:requests")


class Harness:
    def __init__(self, runtime: FakeRuntime, *, logger: Any = None, **env: str) -> None:
        self.config = load_config(function_env(**env))
        self.runtime = runtime
        self.sqs = FakeSqs()
        self.s3 = FakeS3()
        self.processor = build_processor(
            self.config,
            Clients(runtime=runtime, sqs=self.sqs, s3=lambda: self.s3),  # type: ignore[arg-type,return-value]
            logger=logger or logging.getLogger("test"),
            pacing=Pacing(random.Random(7), sleep=lambda _s: None),
        )
        self.limiter = self.processor.limiter

    def run(self, *records: dict[str, Any], context: LambdaContext | None = None) -> set[str]:
        response = process_partial_response(
            event=sqs_event(records),
            record_handler=self.processor.handle,
            processor=self.processor,
            context=context or LambdaContext.starting_now(),  # type: ignore[arg-type]
        )
        return {str(failure["itemIdentifier"]) for failure in response["batchItemFailures"]}

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.sqs.sent.get(DLQ, [])

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.sqs.bodies(RESULTS)]

    def visibility(self) -> dict[str, int]:
        return {entry["ReceiptHandle"]: entry["VisibilityTimeout"] for entry in self.sqs.visibility}


def raises(code: str, **fields: Any) -> FakeRuntime:
    def behaviour(_i: int, _kw: dict[str, Any]) -> dict[str, Any]:
        raise service_error(code, f"{code} happened", **fields)

    return FakeRuntime(behaviour)


def test_success_delivers_the_result_and_acknowledges() -> None:
    # GIVEN an endpoint that answers JSON
    harness = Harness(FakeRuntime(lambda _i, _kw: ok_response(b'{"label":"setosa"}')))
    record = sqs_record(
        {"body": {"instances": [[1, 2, 3, 4]]}, "requestId": "req-1", "accept": "application/json"}
    )
    # WHEN the batch is processed
    failures = harness.run(record)
    # THEN the message is acknowledged and exactly one result names it
    assert failures == set()
    [result] = harness.results()
    assert result["requestId"] == "req-1"
    assert result["messageId"] == record["messageId"]
    assert result["body"] == {"label": "setosa"}
    assert result["endpointName"] == "demo-classifier"
    assert result["receiveCount"] == 1
    assert result["invokedProductionVariant"] == "AllTraffic"
    # AND the request carried the envelope's members exactly
    [call] = harness.runtime.calls
    assert call == {
        "EndpointName": "demo-classifier",
        "Body": b'{"instances":[[1,2,3,4]]}',
        "ContentType": "application/json",
        "Accept": "application/json",
    }
    assert harness.dead_letters() == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("ModelNotReadyException", "model_not_ready"),
        ("ThrottlingException", "throttled"),
        ("ServiceUnavailable", "service_unavailable"),
        ("InternalFailure", "internal_failure"),
        ("InternalDependencyException", "internal_dependency"),
    ],
)
def test_retryable_errors_come_back_with_backoff(
    code: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an endpoint failing transiently, and a message on its third delivery
    harness = Harness(raises(code), RETRY_BASE_SECONDS="4", RETRY_MAX_SECONDS="900")
    record = sqs_record({"bodyText": "x"}, receive_count=3)
    # WHEN processed
    with caplog.at_level(logging.WARNING):
        failures = harness.run(record)
    # THEN it is reported failed, hidden for a jittered backoff within 4 * 2**2 seconds, and not dead-lettered
    assert failures == {record["messageId"]}
    [change] = harness.sqs.visibility
    assert change["QueueUrl"] == SOURCE_URL
    assert 0 <= change["VisibilityTimeout"] <= 16
    assert harness.dead_letters() == []
    assert [r.reason for r in caplog.records if getattr(r, "disposition", None) == "retry"] == [reason]  # type: ignore[attr-defined]


def test_model_error_is_dead_lettered_with_its_data_and_never_reinvoked() -> None:
    # GIVEN a model that fails with a 500 of its own
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/demo-classifier"
    harness = Harness(
        raises("ModelError", OriginalStatusCode=500, OriginalMessage="oops", LogStreamArn=arn),
    )
    body = ' {"bodyText": "x",   "requestId": "r-42"}\n'  # odd spacing: must survive byte for byte
    record = sqs_record(body, receive_count=2, message_attributes={"tenant": string_attribute("acme")})
    # WHEN processed
    failures = harness.run(record)
    # THEN it is acknowledged, and the DLQ holds the original body with the reason attached
    assert failures == set()
    assert len(harness.runtime.calls) == 1
    [dead] = harness.dead_letters()
    assert dead["MessageBody"] == body
    attrs = {name: value.get("StringValue") for name, value in dead["MessageAttributes"].items()}
    assert attrs == {
        "invoker.reason": "model_error",
        "invoker.error": "ModelError happened",
        "invoker.request_id": "r-42",
        "invoker.message_id": record["messageId"],
        "invoker.receive_count": "2",
        "invoker.source_queue_arn": record["eventSourceARN"],
        "invoker.original_status_code": "500",
        "invoker.log_stream_arn": arn,
        "tenant": "acme",
    }
    assert dead["MessageAttributes"]["invoker.original_status_code"]["DataType"] == "Number"
    assert "MessageGroupId" not in dead
    assert harness.sqs.visibility == []


def test_validation_error_is_dead_lettered() -> None:
    harness = Harness(raises("ValidationError"))
    record = sqs_record({"bodyText": "x"})
    assert harness.run(record) == set()
    [dead] = harness.dead_letters()
    assert dead["MessageAttributes"]["invoker.reason"]["StringValue"] == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        "null",
        '{"body": 1, "bodyText": "x"}',
        "{}",
        '{"bodyBase64": "***"}',
        '{"bodyText": "x", "surprise": true}',
        '{"bodyS3Uri": "s3://bucket/key"}',
        '{"bodyText": "\\udcff"}',
        '{"body": {"k": "\\ud800"}}',
        '{"bodyText": "x", "contentType": "\\udcff"}',
        "",
    ],
)
def test_malformed_messages_are_dead_lettered_as_invalid_and_never_invoked(body: str) -> None:
    # GIVEN a malformed message in a batch with a good one
    harness = Harness(FakeRuntime())
    bad, good = sqs_record(body), sqs_record({"bodyText": "fine"})
    # WHEN processed: the handler does not raise
    failures = harness.run(bad, good)
    # THEN the bad one is dead-lettered as invalid_message, the good one delivered
    assert failures == set()
    [dead] = harness.dead_letters()
    assert dead["MessageAttributes"]["invoker.reason"]["StringValue"] == "invalid_message"
    assert dead["MessageBody"] == body
    assert len(harness.runtime.calls) == 1
    assert len(harness.results()) == 1


def test_a_refused_message_keeps_the_request_id_it_declared() -> None:
    harness = Harness(FakeRuntime())
    record = sqs_record('{"requestId": "mine-1", "body": 1, "bodyBase64": "AA=="}')
    assert harness.run(record) == set()
    [dead] = harness.dead_letters()
    assert dead["MessageAttributes"]["invoker.request_id"]["StringValue"] == "mine-1"
    assert "exactly one of" in dead["MessageAttributes"]["invoker.error"]["StringValue"]


def test_retryable_error_at_the_last_receive_is_dead_lettered_as_exhausted() -> None:
    # GIVEN a throttled endpoint and a message on its last allowed delivery
    harness = Harness(raises("ThrottlingException"), MAX_RECEIVE_COUNT="3")
    record = sqs_record({"bodyText": "x"}, receive_count=3)
    # WHEN processed
    failures = harness.run(record)
    # THEN it is dead-lettered with reason retries_exhausted, and the last reason kept
    assert failures == set()
    [dead] = harness.dead_letters()
    attributes = dead["MessageAttributes"]
    assert attributes["invoker.reason"]["StringValue"] == "retries_exhausted"
    assert attributes["invoker.last_reason"]["StringValue"] == "throttled"
    # AND throttling was re-attempted inside the batch before giving up
    assert len(harness.runtime.calls) == 5


def test_a_throttling_blip_is_ridden_out_inside_the_batch() -> None:
    def behaviour(index: int, _kw: dict[str, Any]) -> dict[str, Any]:
        if index == 0:
            raise service_error("ThrottlingException")
        return ok_response()

    harness = Harness(FakeRuntime(behaviour), MAX_CONCURRENCY="1")
    assert harness.run(sqs_record({"bodyText": "x"})) == set()
    assert len(harness.results()) == 1
    assert harness.processor.batch.observed.reattempts == 1
    assert harness.limiter.limit == 1


def test_transport_errors_are_retried() -> None:
    def behaviour(_i: int, _kw: dict[str, Any]) -> dict[str, Any]:
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1/endpoints/x/invocations")

    harness = Harness(FakeRuntime(behaviour))
    record = sqs_record({"bodyText": "x"})
    assert harness.run(record) == {record["messageId"]}
    assert harness.processor.batch.observed.retried == {"transport_error": 1}


def test_model_not_ready_stops_the_rest_of_the_batch_from_invoking() -> None:
    # GIVEN an endpoint that is not ready, one invocation at a time
    harness = Harness(raises("ModelNotReadyException"), MAX_CONCURRENCY="1")
    records = [sqs_record({"bodyText": str(i)}) for i in range(6)]
    # WHEN the batch is processed
    failures = harness.run(*records)
    # THEN only the first message reached the endpoint; all come back as model_not_ready with backoff
    assert len(harness.runtime.calls) == 1
    assert failures == {r["messageId"] for r in records}
    assert harness.processor.batch.observed.retried == {"model_not_ready": 6}
    assert len(harness.sqs.visibility) == 6


def test_no_invocation_starts_past_the_deadline() -> None:
    # GIVEN less time left than the read timeout (70 s) plus margin (5 s)
    harness = Harness(FakeRuntime())
    records = [sqs_record({"bodyText": str(i)}) for i in range(3)]
    # WHEN processed
    failures = harness.run(*records, context=LambdaContext.starting_now(timeout_ms=74_000))
    # THEN nothing is invoked and every message comes back at once, reason deadline
    assert harness.runtime.calls == []
    assert failures == {r["messageId"] for r in records}
    assert set(harness.visibility().values()) == {0}
    assert harness.processor.batch.observed.retried == {"deadline": 3}


def test_deadline_allows_invocations_with_enough_time_left() -> None:
    harness = Harness(FakeRuntime())
    assert (
        harness.run(sqs_record({"bodyText": "x"}), context=LambdaContext.starting_now(timeout_ms=76_000))
        == set()
    )


def test_fifo_group_stops_at_its_first_failure_and_other_groups_go_on() -> None:
    # GIVEN a FIFO batch: group a fails at its second message, group b is fine
    def behaviour(_i: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs["Body"] == b"a2":
            raise service_error("ServiceUnavailable")
        return ok_response(kwargs["Body"], "text/plain")

    harness = Harness(
        FakeRuntime(behaviour),
        DEAD_LETTER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/dlq.fifo",
    )
    records = {
        name: sqs_record({"bodyText": name}, queue_arn=FIFO_QUEUE_ARN, group_id=name[0])
        for name in ["a1", "b1", "a2", "a3", "b2", "a4"]
    }
    # WHEN processed
    failures = harness.run(*records.values())
    # THEN a1 delivered, a2 retried, a3 and a4 returned unprocessed; b1 and b2 delivered in order
    assert failures == {records[n]["messageId"] for n in ["a2", "a3", "a4"]}
    invoked = [call["Body"].decode() for call in harness.runtime.calls]
    assert [n for n in invoked if n.startswith("a")] == ["a1", "a2", "a2"]  # one in-batch re-attempt
    assert [n for n in invoked if n.startswith("b")] == ["b1", "b2"]
    assert harness.processor.batch.observed.retried == {"service_unavailable": 1, "fifo_group_blocked": 2}
    visibility = harness.visibility()
    assert visibility[records["a3"]["receiptHandle"]] == 0
    assert visibility[records["a4"]["receiptHandle"]] == 0
    assert visibility[records["a2"]["receiptHandle"]] >= 0


def test_fifo_dead_letter_keeps_the_message_group_and_deduplicates() -> None:
    harness = Harness(
        raises("ModelError", OriginalStatusCode=400),
        DEAD_LETTER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/dlq.fifo",
    )
    record = sqs_record({"bodyText": "x"}, queue_arn=FIFO_QUEUE_ARN, group_id="tenant-7")
    assert harness.run(record) == set()
    [dead] = harness.sqs.sent["https://sqs.us-east-1.amazonaws.com/123456789012/dlq.fifo"]
    assert dead["MessageGroupId"] == "tenant-7"
    assert dead["MessageDeduplicationId"] == record["messageId"]


def test_a_failed_dead_letter_write_keeps_the_message() -> None:
    harness = Harness(raises("ModelError"))
    harness.sqs.fail_queues.add(DLQ)
    record = sqs_record({"bodyText": "x"})
    assert harness.run(record) == {record["messageId"]}
    assert harness.processor.batch.observed.retried == {"dead_letter_failed": 1}


def test_a_failed_result_write_keeps_the_message_and_does_not_dead_letter() -> None:
    harness = Harness(FakeRuntime())
    harness.sqs.fail_queues.add(RESULTS)
    record = sqs_record({"bodyText": "x"})
    assert harness.run(record) == {record["messageId"]}
    assert harness.processor.batch.observed.retried == {"result_delivery_failed": 1}
    assert harness.dead_letters() == []


def test_every_message_failing_is_still_a_partial_response_not_an_exception() -> None:
    harness = Harness(raises("InternalFailure"))
    records = [sqs_record({"bodyText": str(i)}) for i in range(4)]
    assert harness.run(*records) == {r["messageId"] for r in records}


def test_messages_are_invoked_concurrently_up_to_the_limit() -> None:
    # GIVEN a 20 ms endpoint and MAX_CONCURRENCY=8
    harness = Harness(FakeRuntime(delay=0.02), MAX_CONCURRENCY="8")
    records = [sqs_record({"bodyText": str(i)}) for i in range(40)]
    # WHEN a batch of 40 is processed
    assert harness.run(*records) == set()
    # THEN at most 8, and more than one, were in flight at once; every message has its result
    assert 1 < harness.runtime.max_in_flight <= 8
    assert sorted(r["messageId"] for r in harness.results()) == sorted(r["messageId"] for r in records)


def test_throttling_cuts_the_concurrency_limit_and_it_persists_across_batches() -> None:
    # GIVEN an endpoint that throttles every call in the first batch
    throttling = True

    def behaviour(_i: int, _kw: dict[str, Any]) -> dict[str, Any]:
        if throttling:
            raise service_error("ThrottlingException")
        return ok_response()

    harness = Harness(FakeRuntime(behaviour), MAX_CONCURRENCY="16")
    harness.run(*[sqs_record({"bodyText": str(i)}) for i in range(4)])
    cut = harness.limiter.limit
    assert cut < 16
    # WHEN the next batch (same warm processor) succeeds
    throttling = False
    harness.run(*[sqs_record({"bodyText": str(i)}) for i in range(4)])
    # THEN it starts from the reduced limit and grows back additively
    assert cut <= harness.limiter.limit < 16


def test_a_cut_limit_bounds_the_calls_in_flight_even_with_more_threads() -> None:
    # GIVEN a warm function whose limit was cut from 16 to 4 by throttling
    harness = Harness(FakeRuntime(delay=0.02), MAX_CONCURRENCY="16")
    for _ in range(2):
        permits = [harness.limiter.acquire() for _ in range(harness.limiter.limit)]
        for permit in permits:
            harness.limiter.release(permit, throttled=True)
    assert harness.limiter.limit == 4
    # WHEN a batch of 32 runs on the 16-thread pool
    assert harness.run(*[sqs_record({"bodyText": str(i)}) for i in range(32)]) == set()
    # THEN never more than the limit (which grew additively during the batch) were in flight
    assert harness.runtime.max_in_flight <= harness.limiter.limit < 16


def test_raw_mode_sends_the_body_as_is_with_attributes_as_headers() -> None:
    harness = Harness(FakeRuntime(), MESSAGE_FORMAT="raw")
    record = sqs_record(
        "5.1,3.5,1.4,0.2",
        message_attributes={
            "ContentType": string_attribute("text/csv"),
            "RequestId": string_attribute("csv-1"),
        },
    )
    assert harness.run(record) == set()
    assert harness.runtime.calls == [
        {"EndpointName": "demo-classifier", "Body": b"5.1,3.5,1.4,0.2", "ContentType": "text/csv"}
    ]
    assert harness.results()[0]["requestId"] == "csv-1"


def test_plan_lanes_groups_fifo_records_in_order() -> None:
    a1, b1, a2 = (sqs_record("x", queue_arn=FIFO_QUEUE_ARN, group_id=g) for g in "aba")
    plain = sqs_record("y")
    assert plan_lanes([a1, b1, a2, plain]) == [[a1, a2], [b1], [plain]]


def test_queue_url_from_arn() -> None:
    assert queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:q.fifo") == (
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo"
    )

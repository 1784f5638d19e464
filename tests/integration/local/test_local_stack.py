"""The real function in the local stack, over real HTTP: every fault end to end, FIFO order, the deadline
rule, a crash mid-batch, and what an operator sees (outputs, logs, metrics)."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions
from tests.support.local_stack import (
    OutcomeCollector,
    function_log_records,
    send_envelopes,
)
from tests.support.polling import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator


# Four routes, each with its own endpoint so that faults injected for one test touch no other. Retries
# come back at once (retryBaseSeconds 0) to keep the tests fast; everything else is as configured.
CONTEXT: dict[str, Any] = {
    "invoker": {
        "stackName": "LocalTest",
        "routes": [
            {
                "name": "faults",
                "endpointName": "faults-ep",
                "maxReceiveCount": 3,
                "retryBaseSeconds": 0,
                "retryMaxSeconds": 0,
                "results": {"queue": True, "bucket": True},
                "largePayloads": True,
            },
            {
                "name": "ordered",
                "endpointName": "ordered-ep",
                "fifo": True,
                "maxReceiveCount": 10,
                "retryBaseSeconds": 0,
                "retryMaxSeconds": 0,
            },
            {
                # A call may take 2 s; none starts with less than 2 + 1 s of the 6 s left.
                "name": "deadline",
                "endpointName": "deadline-ep",
                "timeoutSeconds": 6,
                "readTimeoutSeconds": 2,
                "deadlineMarginSeconds": 1,
                "endpointCallsInFlight": 1,
                "maxReceiveCount": 20,
                "retryBaseSeconds": 0,
                "retryMaxSeconds": 0,
            },
            {
                "name": "crash",
                "endpointName": "crash-ep",
                "timeoutSeconds": 20,
                "readTimeoutSeconds": 10,
                "deadlineMarginSeconds": 1,
                "retryBaseSeconds": 0,
                "retryMaxSeconds": 0,
            },
        ],
    }
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(
        context=CONTEXT,
        endpoints={
            # The model gives up after 1 s, so the model-timeout path is quick.
            "faults-ep": EndpointSpec(name="faults-ep", container="echo", model_timeout_s=1.0),
        },
        default_container="echo",
        moto_mode="thread",
        state_dir=tmp_path_factory.mktemp("local-stack"),
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def collector(stack: LocalStack) -> Iterator[OutcomeCollector]:
    running = OutcomeCollector(stack).start()
    try:
        yield running
    finally:
        running.stop()


def _envelope(request_id: str, **extra: Any) -> dict[str, Any]:
    return {"requestId": request_id, "body": {"instances": [[1, 2, 3, 4]]}, **extra}


def _retry_reasons(stack: LocalStack, route: str, request_id: str) -> list[str]:
    return [
        r["reason"]
        for r in function_log_records(stack, route)
        if r.get("message") == "retry later" and r.get("request_id") == request_id
    ]


# -- the stack as an operator finds it ------------------------------------------------------------


def test_outputs_and_resources_match_the_route_configuration(stack: LocalStack) -> None:
    # GIVEN the running stack; WHEN its outputs file and queues are read
    outputs = json.loads((stack.options.state_dir / "outputs.json").read_text())  # type: ignore[operator]
    sqs = stack.sqs()

    # THEN the outputs have the stack's keys, and the queues the stack's attributes
    for key in (
        "RouteFaultsEndpointName", "RouteFaultsRequestQueueUrl", "RouteFaultsRequestQueueArn",
        "RouteFaultsDeadLetterQueueUrl", "RouteFaultsResultsQueueUrl", "RouteFaultsResultsBucketName",
        "RouteFaultsPayloadS3Prefix", "RouteFaultsFunctionName", "RouteOrderedRequestQueueUrl",
        "DashboardName", "AlarmTopicArn", "AwsEndpointUrl", "SageMakerRuntimeUrl",
    ):  # fmt: skip
        assert outputs[key], key
    assert "RouteOrderedResultsBucketName" not in outputs
    requests = sqs.get_queue_attributes(
        QueueUrl=outputs["RouteFaultsRequestQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert requests["VisibilityTimeout"] == str(6 * 180)
    assert requests["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    redrive = json.loads(requests["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 3
    assert redrive["deadLetterTargetArn"].endswith(":LocalTest-faults-dlq")
    fifo = sqs.get_queue_attributes(QueueUrl=outputs["RouteOrderedRequestQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert fifo["FifoQueue"] == "true"
    assert fifo["ContentBasedDeduplication"] == "true"
    assert outputs["RouteOrderedDeadLetterQueueUrl"].endswith("LocalTest-ordered-dlq.fifo")
    # AND the function's environment is exactly function_environment's, plus the local endpoints
    assert stack.esm is not None
    environment = stack.esm.sources["faults"].function.environment
    assert environment["ENDPOINT_NAME"] == "faults-ep"
    assert environment["MAX_RECEIVE_COUNT"] == "3"
    assert environment["DEAD_LETTER_QUEUE_URL"] == outputs["RouteFaultsDeadLetterQueueUrl"]
    assert environment["PAYLOAD_S3_PREFIX"] == outputs["RouteFaultsPayloadS3Prefix"]
    assert environment["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == outputs["SageMakerRuntimeUrl"]
    alarms = stack.cloudwatch().describe_alarms(AlarmNamePrefix="LocalTest-faults-")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == [
        "LocalTest-faults-dead-letters", "LocalTest-faults-function-errors",
        "LocalTest-faults-function-throttles", "LocalTest-faults-oldest-request-age",
    ]  # fmt: skip


# -- each fault, end to end -----------------------------------------------------------------------

# (fault injected, times in a row, the reason the function retries with)
TRANSIENT = [
    ("model_not_ready", 1, "model_not_ready"),
    ("throttled", 5, "throttled"),  # the function re-attempts 4 times within the batch first
    ("service_unavailable", 2, "service_unavailable"),
    ("internal_failure", 2, "internal_failure"),
    ("internal_dependency", 1, "internal_dependency"),
    ("no_capacity", 1, "no_capacity"),  # AWS's ValidationError for zero copies: the one matched by message
]


@pytest.mark.parametrize(("fault", "count", "reason"), TRANSIENT)
def test_transient_fault_is_retried_then_delivered(
    stack: LocalStack, collector: OutcomeCollector, fault: str, count: int, reason: str
) -> None:
    # GIVEN the endpoint fails the next calls with a transient error
    assert stack.emulator is not None
    stack.emulator.inject("faults-ep", fault, count=count)
    request_id = f"transient-{fault}"

    # WHEN a request is sent
    send_envelopes(stack, "faults", [_envelope(request_id)])

    # THEN it is retried once with that reason, then delivered from its second delivery
    outcome = collector.wait([request_id])[request_id]
    assert outcome.place == "result"
    assert outcome.document["receiveCount"] == 2
    assert outcome.document["body"] == {"instances": [[1, 2, 3, 4]]}
    assert _retry_reasons(stack, "faults", request_id) == [reason]


# (fault, the dead-letter reason, the original status code attribute)
PERMANENT = [
    ("model_error", "model_error", "503"),
    ("model_timeout", "model_error", "0"),  # SageMaker reports a timed-out model as status 0
    ("validation_error", "validation_error", None),
]


@pytest.mark.parametrize(("fault", "reason", "status"), PERMANENT)
def test_permanent_fault_is_dead_lettered_at_once_with_its_reason(
    stack: LocalStack, collector: OutcomeCollector, fault: str, reason: str, status: str | None
) -> None:
    # GIVEN the endpoint fails the next call for good
    assert stack.emulator is not None
    stack.emulator.inject("faults-ep", fault, count=1, original_status_code=503)
    request_id = f"permanent-{fault}"

    # WHEN a request is sent
    body = json.dumps(_envelope(request_id))
    stack.sqs().send_message(QueueUrl=stack.route("faults").request_queue_url, MessageBody=body)

    # THEN it is in the DLQ after one delivery, byte for byte, with the reason and the model's status
    outcome = collector.wait([request_id])[request_id]
    assert outcome.place == "dlq"
    assert outcome.body == body
    assert outcome.document["invoker.reason"] == reason
    assert outcome.document["invoker.receive_count"] == "1"
    assert outcome.document.get("invoker.original_status_code") == status
    assert outcome.document["invoker.source_queue_arn"] == stack.route("faults").request_queue_arn


def test_real_model_timeout_and_container_error_are_model_errors(
    stack: LocalStack, collector: OutcomeCollector
) -> None:
    # GIVEN requests the echo container answers too slowly (over the 1 s model limit) or with a 400
    slow = _envelope("container-slow", customAttributes="echo-sleep-ms=1500")
    refused = _envelope("container-400", customAttributes="echo-status=400")

    # WHEN they are sent
    send_envelopes(stack, "faults", [slow, refused])

    # THEN both are dead-lettered as model errors, the refused one with the container's status
    outcomes = collector.wait(["container-slow", "container-400"])
    assert outcomes["container-slow"].document["invoker.reason"] == "model_error"
    assert "timed out" in (outcomes["container-slow"].document["invoker.error"] or "")
    assert outcomes["container-400"].document["invoker.reason"] == "model_error"
    assert outcomes["container-400"].document["invoker.original_status_code"] == "400"


def test_invalid_message_is_dead_lettered_byte_for_byte(
    stack: LocalStack, collector: OutcomeCollector
) -> None:
    # GIVEN a body that is not a request envelope
    body = "definitely { not json"
    message_id = stack.sqs().send_message(QueueUrl=stack.route("faults").request_queue_url, MessageBody=body)[
        "MessageId"
    ]

    # THEN it lands in the DLQ unchanged, with reason invalid_message, without calling the model
    outcome = collector.wait([message_id])[message_id]
    assert outcome.place == "dlq"
    assert outcome.body == body
    assert outcome.document["invoker.reason"] == "invalid_message"


def test_retries_exhausted_after_max_receive_count(stack: LocalStack, collector: OutcomeCollector) -> None:
    # GIVEN an endpoint that stays unavailable for longer than maxReceiveCount (3) deliveries allow
    assert stack.emulator is not None
    stack.emulator.inject("faults-ep", "service_unavailable", count=6)

    # WHEN a request is sent
    send_envelopes(stack, "faults", [_envelope("exhausted")])

    # THEN the function itself dead-letters it on the last delivery, naming the last reason
    outcome = collector.wait(["exhausted"])["exhausted"]
    assert outcome.place == "dlq"
    assert outcome.document["invoker.reason"] == "retries_exhausted"
    assert outcome.document["invoker.last_reason"] == "service_unavailable"
    assert outcome.document["invoker.receive_count"] == "3"


def test_large_payload_comes_from_s3(stack: LocalStack, collector: OutcomeCollector) -> None:
    # GIVEN a payload uploaded under the route's payload prefix
    route = stack.route("faults")
    assert route.payload_s3_prefix is not None
    bucket = route.payload_s3_prefix.removeprefix("s3://").split("/", 1)[0]
    key = "requests/big.json"
    stack.s3().put_object(Bucket=bucket, Key=key, Body=json.dumps({"instances": [[0.5] * 4] * 1000}).encode())

    # WHEN a request points at it
    send_envelopes(
        stack,
        "faults",
        [{"requestId": "from-s3", "bodyS3Uri": f"s3://{bucket}/{key}", "contentType": "application/json"}],
    )

    # THEN the model got the object's bytes and the result says so
    outcome = collector.wait(["from-s3"])["from-s3"]
    assert outcome.place == "result"
    assert len(outcome.document["body"]["instances"]) == 1000


# -- FIFO order -----------------------------------------------------------------------------------


def test_fifo_order_is_kept_within_each_group_through_retries(
    stack: LocalStack, collector: OutcomeCollector
) -> None:
    # GIVEN three groups of eight requests, and an endpoint that fails a few calls transiently
    assert stack.emulator is not None
    stack.emulator.inject("ordered-ep", "internal_dependency", count=3)
    envelopes = [_envelope(f"fifo-{group}-{seq:02d}") for seq in range(8) for group in "abc"]

    # WHEN they are sent in order, each group its own MessageGroupId
    send_envelopes(stack, "ordered", envelopes, group_of=lambda e: e["requestId"].split("-")[1])

    # THEN every request is delivered, and the results of each group arrive in the order sent
    ids = [e["requestId"] for e in envelopes]
    outcomes = collector.wait(ids, timeout=60)
    assert all(o.place == "result" for o in outcomes.values())
    order = [r for r in collector.order["ordered"] if r in set(ids)]
    for group in "abc":
        sequence = [r for r in order if r.startswith(f"fifo-{group}-")]
        assert sequence == sorted(sequence), f"group {group} out of order: {sequence}"
    assert any(outcome.document["receiveCount"] > 1 for outcome in outcomes.values())


# -- the deadline rule ----------------------------------------------------------------------------


def test_no_call_starts_too_close_to_the_deadline(stack: LocalStack, collector: OutcomeCollector) -> None:
    # GIVEN a function with 6 s per invocation, calls of 1.2 s, one at a time, and a 3 s deadline
    # reserve (readTimeout 2 + margin 1)
    ids = [f"deadline-{i}" for i in range(6)]
    envelopes = [_envelope(r, customAttributes="echo-sleep-ms=1200") for r in ids]

    # WHEN six requests arrive in one batch
    send_envelopes(stack, "deadline", envelopes)

    # THEN the function stops starting calls when less than 3 s are left, returns the rest at once
    # (reason "deadline"), never times out, and everything is delivered in later batches
    outcomes = collector.wait(ids, timeout=60)
    assert all(o.place == "result" for o in outcomes.values())
    assert stack.esm is not None
    assert stack.esm.stats("deadline").batch_failures == {}
    deferred = [r for r in function_log_records(stack, "deadline") if r.get("reason") == "deadline"]
    assert deferred
    first_batch = next(r for r in stack.esm.history if r.source == "deadline")
    assert 1 <= len(first_batch.deleted) <= 4
    assert first_batch.outcome.duration_ms < 6000


# -- a crash mid-batch ----------------------------------------------------------------------------


def test_crash_mid_batch_the_messages_reappear_and_are_processed(
    stack: LocalStack, collector: OutcomeCollector
) -> None:
    # GIVEN requests whose model calls take 2 s, and a short queue visibility timeout so that the
    # crashed batch's messages come back within the test (the stack derives 6 x 20 s)
    sqs = stack.sqs()
    route = stack.route("crash")
    sqs.set_queue_attributes(QueueUrl=route.request_queue_url, Attributes={"VisibilityTimeout": "3"})
    time.sleep(1.5)  # a long poll already waiting keeps the visibility it started with (1 s polls)
    ids = [f"crash-{i}" for i in range(4)]
    send_envelopes(stack, "crash", [_envelope(r, customAttributes="echo-sleep-ms=2000") for r in ids])
    assert stack.esm is not None
    esm = stack.esm

    # WHEN the worker process running the batch is killed mid-call
    busy = wait_for(lambda: [w for w in esm.workers("crash") if w.current_request], what="a batch in flight")
    time.sleep(0.5)  # into the model calls
    victim = busy[0].pid
    busy[0].kill(signal.SIGKILL)

    # THEN that batch failed as a whole, and every message came back and was delivered by a new process
    outcomes = collector.wait(ids, timeout=60)
    assert all(o.place == "result" for o in outcomes.values())
    crashed = [r for r in esm.history if r.source == "crash" and r.failure == "crash"]
    assert crashed
    assert crashed[0].outcome.worker_pid == victim
    assert crashed[0].deleted == []
    redelivered = {o.request_id for o in outcomes.values() if o.document["receiveCount"] >= 2}
    assert redelivered, "the crashed batch's messages were delivered again"


# -- logs and metrics -----------------------------------------------------------------------------


def test_function_logs_and_metrics_are_in_local_cloudwatch(
    stack: LocalStack, collector: OutcomeCollector
) -> None:
    # GIVEN a delivered and a dead-lettered request
    send_envelopes(stack, "faults", [_envelope("observed-ok")])
    bad = stack.sqs().send_message(QueueUrl=stack.route("faults").request_queue_url, MessageBody="[1, 2")
    collector.wait(["observed-ok", bad["MessageId"]])

    # WHEN an operator reads the function's log group and the metrics namespace
    records = function_log_records(stack, "faults")
    cloudwatch = stack.cloudwatch()
    now = datetime.now(UTC)

    def total(name: str, **dimensions: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace=stack.app.metrics_namespace,
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(p["Sum"] for p in points)

    # THEN the Powertools log lines are there with the request's fields and Lambda context
    delivered = [
        r for r in records if r.get("message") == "delivered" and r.get("request_id") == "observed-ok"
    ]
    assert delivered
    assert delivered[0]["function_name"] == stack.route("faults").function_name
    # AND the EMF metrics are in CloudWatch with their dimensions
    assert total("Succeeded", endpoint="faults-ep") >= 1
    assert total("DeadLettered", endpoint="faults-ep", reason="invalid_message") >= 1

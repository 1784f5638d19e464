"""An inference component with no copies: the one ValidationError that is "retry later", told apart by its
message (the rest of the table matches by code). botocore parses the wire shape the emulator and AWS send."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.awsrequest import AWSRequest, AWSResponse, HTTPHeaders
from invoker.contract import Disposition, Reason
from invoker.outcomes import REATTEMPT_IN_BATCH, classify

from sqs_sagemaker_invoker.local.sagemaker.wire import NO_CAPACITY_MESSAGE
from sqs_sagemaker_invoker.local.stand_ins import sqs_record
from tests.unit.fakes import FakeRuntime, service_error
from tests.unit.test_batch import Harness
from tests.unit.test_outcomes import Wire, _RawBody, invoke, make_client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient


@pytest.fixture
def runtime() -> Iterator[tuple[SageMakerRuntimeClient, Wire]]:
    client = make_client()
    wire = Wire()
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", wire)
    yield client, wire
    client.close()


def answer(runtime: tuple[SageMakerRuntimeClient, Wire], code: str, message: str) -> BaseException:
    """What botocore raises when the service answers HTTP 400 with this code and message."""
    client, wire = runtime

    def respond(request: AWSRequest) -> AWSResponse:
        headers = {
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/",
            "Content-Type": "application/json",
        }
        body = _RawBody(json.dumps({"Message": message}).encode())
        return AWSResponse(str(request.url), 400, HTTPHeaders.from_dict(headers), body)

    wire.respond = respond
    return invoke(client)


def test_no_capacity_validation_error_is_retried_with_its_own_reason(
    runtime: tuple[SageMakerRuntimeClient, Wire],
) -> None:
    # GIVEN the endpoint answers AWS's no-capacity ValidationError (the emulator sends AWS's words)
    exc = answer(runtime, "ValidationError", NO_CAPACITY_MESSAGE)
    assert type(exc) is runtime[0].exceptions.ValidationError
    # WHEN classified
    error = classify(exc)
    # THEN it is retried as no_capacity, with the service's code, status and message kept
    assert (error.disposition, error.reason) == (Disposition.RETRY, Reason.NO_CAPACITY)
    assert (error.error_code, error.http_status, error.message) == (
        "ValidationError",
        400,
        NO_CAPACITY_MESSAGE,
    )
    # AND it never burns in-batch re-attempts: provisioning takes minutes
    assert REATTEMPT_IN_BATCH.get(Reason.NO_CAPACITY, 0) == 0


@pytest.mark.parametrize(
    "message",
    [
        "Endpoint my-endpoint of account 123456789012 not found.",
        "Request for endpoint my-endpoint failed validation.",
        # a validator quoting a caller's value that happens to hold the phrase: not the service's verdict
        "Value 'x has no capacity to process this request' at 'customAttributes' failed to satisfy constraint",
        # another service's wording in another case is not the documented answer
        "Inference Component HAS NO CAPACITY TO PROCESS THIS REQUEST.",
    ],
)
def test_every_other_validation_error_is_still_dead_lettered(
    runtime: tuple[SageMakerRuntimeClient, Wire], message: str
) -> None:
    # GIVEN a ValidationError whose message is not the no-capacity answer WHEN classified
    error = classify(answer(runtime, "ValidationError", message))
    # THEN the message is dead-lettered as before
    assert (error.disposition, error.reason) == (Disposition.DEAD_LETTER, Reason.VALIDATION_ERROR)


def test_the_no_capacity_phrase_under_another_code_keeps_that_code_s_row(
    runtime: tuple[SageMakerRuntimeClient, Wire],
) -> None:
    # GIVEN the phrase under a code that is not ValidationError WHEN classified
    error = classify(answer(runtime, "ModelError", NO_CAPACITY_MESSAGE))
    # THEN the code decides: the message exception belongs to ValidationError alone
    assert (error.disposition, error.reason) == (Disposition.DEAD_LETTER, Reason.MODEL_ERROR)


def test_no_capacity_stops_the_rest_of_the_batch_from_invoking() -> None:
    # GIVEN an endpoint with no capacity, one invocation at a time
    def behaviour(_i: int, _kw: dict[str, Any]) -> dict[str, Any]:
        raise service_error("ValidationError", NO_CAPACITY_MESSAGE)

    harness = Harness(FakeRuntime(behaviour), MAX_CONCURRENCY="1")
    records = [sqs_record({"bodyText": str(i)}) for i in range(6)]
    # WHEN the batch is processed
    failures = harness.run(*records)
    # THEN only the first message reached the endpoint, once (no in-batch re-attempt); all six come back
    # as no_capacity with the route's backoff, none dead-lettered
    assert len(harness.runtime.calls) == 1
    assert harness.processor.batch.observed.reattempts == 0
    assert failures == {r["messageId"] for r in records}
    assert harness.processor.batch.observed.retried == {"no_capacity": 6}
    assert len(harness.sqs.visibility) == 6
    assert harness.dead_letters() == []

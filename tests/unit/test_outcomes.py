"""The error taxonomy, driven by botocore's own exception classes (Stubber and a parsed wire response)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import Stubber
from invoker.contract import Disposition, Reason
from invoker.outcomes import (
    ERROR_CODES,
    REATTEMPT_IN_BATCH,
    InvalidMessage,
    InvocationError,
    RetryLater,
    classify,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

MODEL_ERROR_FIELDS = {
    "OriginalStatusCode": 500,
    "OriginalMessage": "Traceback: ZeroDivisionError",
    "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/my-endpoint",
}


@dataclass(frozen=True)
class ErrorCase:
    code: str
    status: int
    disposition: Disposition
    reason: Reason
    modelled: bool = True  # False: not in the service model, so botocore raises a plain ClientError
    fields: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.code


# One case per row of ERROR_CODES (test_every_table_row_has_a_case keeps them in step).
TABLE_CASES = [
    ErrorCase("ModelNotReadyException", 429, Disposition.RETRY, Reason.MODEL_NOT_READY),
    ErrorCase("ThrottlingException", 400, Disposition.RETRY, Reason.THROTTLED, modelled=False),
    ErrorCase("ServiceUnavailable", 503, Disposition.RETRY, Reason.SERVICE_UNAVAILABLE),
    ErrorCase("InternalFailure", 500, Disposition.RETRY, Reason.INTERNAL_FAILURE),
    ErrorCase("InternalDependencyException", 530, Disposition.RETRY, Reason.INTERNAL_DEPENDENCY),
    ErrorCase("ModelError", 424, Disposition.DEAD_LETTER, Reason.MODEL_ERROR, fields=MODEL_ERROR_FIELDS),
    ErrorCase("ValidationError", 400, Disposition.DEAD_LETTER, Reason.VALIDATION_ERROR),
]


def make_client() -> SageMakerRuntimeClient:
    # One attempt: the function pins the SDK to one attempt, and a retry here would hide the status.
    return boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


class Wire:
    """The client's only way out: a `before-send` handler whose return value replaces the HTTP exchange.
    botocore parses what it returns with its real rest-json parser; no socket is ever opened."""

    def __init__(self) -> None:
        self.respond: Callable[[AWSRequest], AWSResponse] = self._refuse
        self.requests: list[str] = []

    @staticmethod
    def _refuse(request: AWSRequest) -> AWSResponse:
        raise AssertionError(f"a unit test tried to reach {request.url}")

    # Typed Any: botocore's stubs declare event handlers as returning None.
    def __call__(self, request: AWSRequest, **_: Any) -> Any:
        self.requests.append(str(request.url))
        return self.respond(request)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def runtime(wire: Wire) -> Iterator[SageMakerRuntimeClient]:
    client = make_client()
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", wire)
    yield client
    client.close()


def invoke(client: SageMakerRuntimeClient, **members: Any) -> BaseException:
    try:
        client.invoke_endpoint(EndpointName="my-endpoint", Body=b"{}", **members)
    except Exception as exc:
        return exc
    raise AssertionError("invoke_endpoint did not raise")


def error_via_stubber(client: SageMakerRuntimeClient, _wire: Wire, case: ErrorCase) -> BaseException:
    stubber = Stubber(client)
    stubber.add_client_error(
        method="invoke_endpoint",
        service_error_code=case.code,
        service_message=f"{case.code} message",
        http_status_code=case.status,
        modeled_fields=case.fields or None,
    )
    with stubber:
        exc = invoke(client)
    stubber.assert_no_pending_responses()
    return exc


class _RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def error_via_wire(client: SageMakerRuntimeClient, wire: Wire, case: ErrorCase) -> BaseException:
    payload = {"Message": f"{case.code} message", **case.fields}

    def respond(request: AWSRequest) -> AWSResponse:
        headers = {
            "x-amzn-ErrorType": f"{case.code}:http://internal.amazon.com/coral/com.amazon.sagemaker/",
            "Content-Type": "application/json",
        }
        body = _RawBody(json.dumps(payload).encode())
        return AWSResponse(str(request.url), case.status, HTTPHeaders.from_dict(headers), body)

    wire.respond = respond
    return invoke(client)


ERROR_SOURCES: dict[str, Callable[[SageMakerRuntimeClient, Wire, ErrorCase], BaseException]] = {
    "stubber": error_via_stubber,
    "wire": error_via_wire,
}


def test_every_table_row_has_a_case() -> None:
    # GIVEN the table and the cases below WHEN compared THEN a row added without a test shows up here
    assert {case.code for case in TABLE_CASES} == set(ERROR_CODES)


def test_every_modelled_error_of_invoke_endpoint_is_in_the_table() -> None:
    # GIVEN the service model botocore ships WHEN its InvokeEndpoint errors are listed
    service = botocore.session.get_session().get_service_model("sagemaker-runtime")
    errors = {shape.name for shape in service.operation_model("InvokeEndpoint").error_shapes}
    # THEN each has a deliberate disposition (a new service error would otherwise be an unknown code)
    assert errors <= set(ERROR_CODES)


@pytest.mark.parametrize("source", sorted(ERROR_SOURCES))
@pytest.mark.parametrize("case", TABLE_CASES, ids=str)
def test_table_row_arrives_as_botocore_class_and_is_classified(
    runtime: SageMakerRuntimeClient, wire: Wire, case: ErrorCase, source: str
) -> None:
    # GIVEN the endpoint answers with this error code and status
    exc = ERROR_SOURCES[source](runtime, wire, case)

    # THEN botocore raises its own class: the modelled shape, or a plain ClientError
    if case.modelled:
        assert type(exc) is getattr(runtime.exceptions, case.code)
    else:
        assert type(exc) is ClientError
    assert isinstance(exc, ClientError)

    # WHEN it is classified
    error = classify(exc)

    # THEN the row's disposition and reason apply, and the service's data is kept
    assert (error.disposition, error.reason) == (case.disposition, case.reason)
    assert error.error_code == case.code
    assert error.http_status == case.status
    assert error.message == f"{case.code} message"
    # and the SDK made one attempt only (a retry inside botocore would hide the first answer)
    assert len(wire.requests) == (1 if source == "wire" else 0)


@pytest.mark.parametrize("source", sorted(ERROR_SOURCES))
def test_model_error_keeps_original_status_message_and_log_stream(
    runtime: SageMakerRuntimeClient, wire: Wire, source: str
) -> None:
    # GIVEN a ModelError carrying the container's status, message and log stream
    case = next(case for case in TABLE_CASES if case.code == "ModelError")
    exc = ERROR_SOURCES[source](runtime, wire, case)
    assert isinstance(exc, ClientError)
    # botocore puts a modelled error's extra members at the top level of the response, not under Error
    assert exc.response["OriginalStatusCode"] == 500  # type: ignore[typeddict-item]
    assert "OriginalStatusCode" not in exc.response["Error"]

    # WHEN classified
    error = classify(exc)

    # THEN the fields an operator needs are kept
    assert error.original_status_code == 500
    assert error.original_message == MODEL_ERROR_FIELDS["OriginalMessage"]
    assert error.log_stream_arn == MODEL_ERROR_FIELDS["LogStreamArn"]


def test_errors_other_than_model_error_carry_no_model_fields(
    runtime: SageMakerRuntimeClient, wire: Wire
) -> None:
    # GIVEN a ValidationError WHEN classified THEN there is no original status to report
    case = next(case for case in TABLE_CASES if case.code == "ValidationError")
    error = classify(error_via_wire(runtime, wire, case))
    assert (error.original_status_code, error.original_message, error.log_stream_arn) == (None, None, None)


@pytest.mark.parametrize("source", sorted(ERROR_SOURCES))
def test_throttling_400_is_matched_by_code_not_taken_for_validation_error(
    runtime: SageMakerRuntimeClient, wire: Wire, source: str
) -> None:
    # GIVEN ThrottlingException, which shares HTTP 400 with ValidationError
    case = ErrorCase("ThrottlingException", 400, Disposition.RETRY, Reason.THROTTLED, modelled=False)

    # WHEN classified
    error = classify(ERROR_SOURCES[source](runtime, wire, case))

    # THEN it is retried as throttled, never dead-lettered as a validation error
    assert error.reason is Reason.THROTTLED
    assert error.disposition is Disposition.RETRY
    assert error.http_status == 400


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnrecognizedClientException", "SomeFutureError"])
@pytest.mark.parametrize("source", sorted(ERROR_SOURCES))
def test_unknown_error_code_is_retried_as_unexpected(
    runtime: SageMakerRuntimeClient, wire: Wire, code: str, source: str
) -> None:
    # GIVEN a code outside the table WHEN classified
    case = ErrorCase(code, 403, Disposition.RETRY, Reason.UNEXPECTED_ERROR, modelled=False)
    exc = ERROR_SOURCES[source](runtime, wire, case)
    error = classify(exc)

    # THEN it is retried (not a verdict on the message), with the code and status kept
    assert type(exc) is ClientError
    assert (error.disposition, error.reason) == (Disposition.RETRY, Reason.UNEXPECTED_ERROR)
    assert (error.error_code, error.http_status) == (code, 403)


TRANSPORT_ERRORS: dict[str, Callable[[str], Exception]] = {
    "ReadTimeoutError": lambda url: ReadTimeoutError(endpoint_url=url),
    "ConnectTimeoutError": lambda url: ConnectTimeoutError(endpoint_url=url),
    "EndpointConnectionError": lambda url: EndpointConnectionError(endpoint_url=url),
    "ConnectionClosedError": lambda url: ConnectionClosedError(endpoint_url=url),
}


@pytest.mark.parametrize("name", sorted(TRANSPORT_ERRORS))
def test_transport_errors_are_retried(runtime: SageMakerRuntimeClient, wire: Wire, name: str) -> None:
    # GIVEN the HTTP layer fails with this botocore exception while sending the request
    def fail(request: AWSRequest) -> AWSResponse:
        raise TRANSPORT_ERRORS[name](str(request.url))

    wire.respond = fail
    exc = invoke(runtime)
    assert type(exc).__name__ == name

    # WHEN classified
    error = classify(exc)

    # THEN it is a transport error, worth another attempt
    assert (error.disposition, error.reason) == (Disposition.RETRY, Reason.TRANSPORT_ERROR)
    assert error.message.startswith(f"{name}: ")


def test_param_validation_error_dead_letters_the_message(runtime: SageMakerRuntimeClient) -> None:
    # GIVEN botocore refuses to send a member of the wrong type (it checks types and required members,
    # not lengths or patterns: those are the envelope's job)
    exc = invoke(runtime, CustomAttributes=12345)
    assert isinstance(exc, ParamValidationError)

    # WHEN classified
    error = classify(exc)

    # THEN the message itself is at fault
    assert isinstance(error, InvalidMessage)
    assert (error.disposition, error.reason) == (Disposition.DEAD_LETTER, Reason.INVALID_MESSAGE)
    assert "CustomAttributes" in error.message


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyError("Body"), ValueError("bad")], ids=repr)
def test_arbitrary_exception_is_retried_as_unexpected(exc: Exception) -> None:
    # GIVEN an exception that is no botocore error WHEN classified
    error = classify(exc)
    # THEN it is retried, named after its type
    assert (error.disposition, error.reason) == (Disposition.RETRY, Reason.UNEXPECTED_ERROR)
    assert error.message.startswith(f"{type(exc).__name__}: ")
    assert error.error_code is None


@pytest.mark.parametrize(
    "error",
    [InvalidMessage("not JSON"), RetryLater(Reason.DEADLINE, "no time left")],
    ids=lambda error: type(error).__name__,
)
def test_an_invocation_error_is_passed_through_unchanged(error: InvocationError) -> None:
    # GIVEN an already classified outcome WHEN classified again THEN it is the same object
    assert classify(error) is error


def test_client_error_without_metadata_or_message_still_classifies() -> None:
    # GIVEN a ClientError with only a code (no status, no message)
    exc = ClientError({"Error": {"Code": "ModelError"}}, "InvokeEndpoint")
    # WHEN classified THEN the row applies, the status is unknown and the code stands in for the message
    error = classify(exc)
    assert (error.reason, error.http_status, error.message) == (Reason.MODEL_ERROR, None, "ModelError")


def test_in_batch_reattempts_only_for_retry_reasons() -> None:
    # GIVEN the reasons that get another attempt inside the batch
    retry_reasons = {
        reason for disposition, reason in ERROR_CODES.values() if disposition is Disposition.RETRY
    }
    retry_reasons |= {Reason.TRANSPORT_ERROR}
    # THEN each is a retried reason: re-invoking a dead-letter verdict (e.g. ModelError) would be wrong
    assert set(REATTEMPT_IN_BATCH) <= retry_reasons
    assert all(count >= 1 for count in REATTEMPT_IN_BATCH.values())

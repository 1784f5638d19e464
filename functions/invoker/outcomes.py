"""The error taxonomy: every InvokeEndpoint outcome maps, in one table, to one disposition and reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, ParamValidationError

from invoker.contract import Disposition, Reason

RETRY = Disposition.RETRY
DEAD_LETTER = Disposition.DEAD_LETTER

# The table. Keys are the service's error codes (`Error.Code`, which for modelled errors is the shape
# name): matched by code, never by message. ThrottlingException is not in the service model; it
# arrives as HTTP 400 with that code, so it would look like a ValidationError if matched by status.
ERROR_CODES: dict[str, tuple[Disposition, Reason]] = {
    "ModelNotReadyException": (RETRY, Reason.MODEL_NOT_READY),  # 429
    "ThrottlingException": (RETRY, Reason.THROTTLED),  # 400
    "ServiceUnavailable": (RETRY, Reason.SERVICE_UNAVAILABLE),  # 503
    "InternalFailure": (RETRY, Reason.INTERNAL_FAILURE),  # 500
    "InternalDependencyException": (RETRY, Reason.INTERNAL_DEPENDENCY),  # 530
    "ModelError": (DEAD_LETTER, Reason.MODEL_ERROR),  # 424: the model itself failed; never re-invoked
    "ValidationError": (DEAD_LETTER, Reason.VALIDATION_ERROR),  # 400, also "endpoint not found"
}

# The single exception to matching by code. An inference component with no copies (scaled to zero, or its
# first copy still provisioning) answers HTTP 400 ValidationError, "Inference Component has no capacity to
# process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase the
# capacity by invoking UpdateInferenceComponentRuntimeConfig API." (AWS's scale-to-zero announcement,
# https://aws.amazon.com/blogs/machine-learning/unlock-cost-savings-with-the-new-scale-down-to-zero-feature-in-amazon-sagemaker-inference/
# and https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html). The code
# is the generic one, so only the message tells it from a bad request. Matched: the code ValidationError,
# and a message that opens with a subject of plain words followed by the fact "has no capacity to process
# this request", case-sensitive as the service writes it. Not the subject or the advice after it (wording
# that may change), and not the phrase anywhere: a validator quoting a caller's value (after "Value '") must
# stay a validation error. A wrong match costs retries, never the message: once MAX_RECEIVE_COUNT is
# reached it is dead-lettered as retries_exhausted with this reason as the last.
NO_CAPACITY_CODE = "ValidationError"
NO_CAPACITY_PATTERN = re.compile(r"[A-Za-z ]*\bhas no capacity to process this request\b")
NO_CAPACITY = (RETRY, Reason.NO_CAPACITY)

# The endpoint cannot serve anyone for a while (minutes, not a blip): once one call of a batch sees one of
# these, no new invocation of that batch starts, and none is re-attempted in the batch.
STOPS_THE_BATCH = frozenset({Reason.MODEL_NOT_READY, Reason.NO_CAPACITY})

# Codes outside the table (AccessDenied, expired or unrecognised credentials, a code a future service
# version adds) are configuration or service trouble, not a verdict on the message: retry them, so
# that after exhaustion they reach the DLQ with the last reason rather than being dropped early.
UNKNOWN_CODE = (RETRY, Reason.UNEXPECTED_ERROR)

# Transient failures that are worth another attempt inside the same batch (deadline permitting)
# before the message goes back to the queue: the SDK itself is pinned to one attempt.
REATTEMPT_IN_BATCH: dict[Reason, int] = {
    Reason.THROTTLED: 4,
    Reason.SERVICE_UNAVAILABLE: 1,
    Reason.INTERNAL_FAILURE: 1,
    Reason.TRANSPORT_ERROR: 1,
}


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """What the service said about a failed call, as it said it."""

    error_code: str | None = None
    http_status: int | None = None
    original_status_code: int | None = None  # ModelError: the container's own status, message, log stream
    original_message: str | None = None
    log_stream_arn: str | None = None


_NO_ANSWER = ServiceAnswer()


class InvocationError(Exception):
    """A non-successful outcome of one message, with the data an operator needs."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        disposition: Disposition,
        answer: ServiceAnswer = _NO_ANSWER,
        summary: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        # `message` may quote the request (a model's error often does, a validator's may): it goes to the
        # dead-letter copy only. `summary` never holds payload-derived text: it is what logs carry.
        self.message = message
        self.summary = summary or answer.error_code or reason.value
        self.disposition = disposition
        self.error_code = answer.error_code
        self.http_status = answer.http_status
        self.original_status_code = answer.original_status_code
        self.original_message = answer.original_message
        self.log_stream_arn = answer.log_stream_arn


class InvalidMessage(InvocationError):
    def __init__(self, message: str, *, request_id: str | None = None, summary: str | None = None) -> None:
        # Without a summary, logs say only that the message was refused: the text may quote its values.
        super().__init__(
            Reason.INVALID_MESSAGE,
            message,
            disposition=DEAD_LETTER,
            summary=summary or "refused by the envelope parser (details in the dead-letter copy)",
        )
        # The message's own requestId when it could be read, so the refusal is traceable by it.
        self.request_id = request_id


class RetryLater(InvocationError):
    def __init__(self, reason: Reason, message: str, *, summary: str | None = None) -> None:
        super().__init__(reason, message, disposition=RETRY, summary=summary)


def classify(exc: BaseException) -> InvocationError:
    """Map an exception raised by `invoke_endpoint` to its disposition, keeping the service's data."""
    if isinstance(exc, InvocationError):
        return exc
    if isinstance(exc, ClientError):
        return _from_client_error(exc)
    if isinstance(exc, ParamValidationError):
        # botocore refused to build the request (a wrong type, a missing member): the message is at fault.
        return InvalidMessage(
            str(exc), summary="ParamValidationError: botocore refused the request's members"
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        # Connect/read timeouts, refused or reset connections.
        return RetryLater(Reason.TRANSPORT_ERROR, f"{type(exc).__name__}: {exc}", summary=type(exc).__name__)
    return RetryLater(Reason.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", summary=type(exc).__name__)


def _from_client_error(exc: ClientError) -> InvocationError:
    response: dict[str, Any] = dict(exc.response)
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(error.get("Message", ""))
    disposition, reason = _row(code, message)
    original = response.get("OriginalStatusCode")
    return InvocationError(
        reason,
        message or code,
        disposition=disposition,
        answer=ServiceAnswer(
            error_code=code,
            http_status=int(status) if status is not None else None,
            original_status_code=int(original) if original is not None else None,
            original_message=response.get("OriginalMessage"),
            log_stream_arn=response.get("LogStreamArn"),
        ),
    )


def _row(code: str, message: str) -> tuple[Disposition, Reason]:
    if code == NO_CAPACITY_CODE and NO_CAPACITY_PATTERN.match(message):
        return NO_CAPACITY
    return ERROR_CODES.get(code, UNKNOWN_CODE)

"""InvokeEndpoint wire shapes: member headers, limits and error responses as botocore parses them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

import botocore.session


def _request_header_members() -> dict[str, tuple[str, int]]:
    """InvokeEndpoint request members that travel in headers, read from botocore's service model
    (sagemaker-runtime 2017-05-13) rather than copied: member name -> (header, max length)."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpoint").input_shape
    assert shape is not None  # InvokeEndpoint has had an input since its first version
    members = shape.members
    return {
        name: (member.serialization["name"], int(member.metadata["max"]))
        for name, member in members.items()
        if member.serialization.get("location") == "header"
    }


# The emulator forwards these to the container.
REQUEST_HEADER_MEMBERS: Final[dict[str, tuple[str, int]]] = _request_header_members()
# Response members the container may set (besides Content-Type) and the emulator passes back.
CUSTOM_ATTRIBUTES_HEADER: Final = "X-Amzn-SageMaker-Custom-Attributes"
SESSION_ID_HEADER: Final = "X-Amzn-SageMaker-Session-Id"
NEW_SESSION_ID_HEADER: Final = "X-Amzn-SageMaker-New-Session-Id"
CLOSED_SESSION_ID_HEADER: Final = "X-Amzn-SageMaker-Closed-Session-Id"
INVOKED_VARIANT_HEADER: Final = "x-Amzn-Invoked-Production-Variant"
RESPONSE_PASSTHROUGH_HEADERS: Final = (
    CUSTOM_ATTRIBUTES_HEADER,
    NEW_SESSION_ID_HEADER,
    CLOSED_SESSION_ID_HEADER,
)

# Error type -> HTTP status, as in the service model (ThrottlingException is not modelled).
ERROR_STATUS: Final[dict[str, int]] = {
    "ValidationError": 400,
    "ThrottlingException": 400,
    "ModelNotReadyException": 429,
    "ModelError": 424,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
    "UnknownOperationException": 404,
}


@dataclass
class WireResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error_type: str | None = None


def error_response(error_type: str, message: str, **fields: object) -> WireResponse:
    """A JSON error the way AWS sends it: type in `x-amzn-ErrorType`, `Message` and extra fields in the body."""
    body = json.dumps({"Message": message, **fields}, separators=(",", ":")).encode()
    return WireResponse(
        status=ERROR_STATUS[error_type],
        headers=[("x-amzn-ErrorType", error_type), ("Content-Type", "application/json")],
        body=body,
        error_type=error_type,
    )


def log_group(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def log_stream_arn(region: str, account: str, endpoint_name: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{log_group(endpoint_name)}"


def model_error(
    *, region: str, account: str, endpoint_name: str, original_status: int, original_message: str
) -> WireResponse:
    """ModelError as SageMaker reports a container's 4xx/5xx (or 0 for a timeout)."""
    side = "client" if 400 <= original_status < 500 else "server"
    console = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group={log_group(endpoint_name)}"
    )
    message = (
        f'Received {side} error ({original_status}) from primary with message "{original_message}". '
        f"See {console} in account {account} for more information."
    )
    return error_response(
        "ModelError",
        message,
        OriginalStatusCode=original_status,
        OriginalMessage=original_message,
        LogStreamArn=log_stream_arn(region, account, endpoint_name),
    )


TIMEOUT_MESSAGE: Final = (
    "Your invocation timed out while waiting for a response from container primary. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)


def model_timeout(*, region: str, account: str, endpoint_name: str) -> WireResponse:
    return model_error(
        region=region,
        account=account,
        endpoint_name=endpoint_name,
        original_status=0,
        original_message=TIMEOUT_MESSAGE,
    )


def endpoint_not_found(endpoint_name: str, account: str) -> WireResponse:
    return error_response("ValidationError", f"Endpoint {endpoint_name} of account {account} not found.")


def fault_response(  # noqa: PLR0913 - the kind, then the error's wire fields, by keyword
    kind: str,
    *,
    region: str,
    account: str,
    endpoint_name: str,
    original_status: int = 500,
    message: str | None = None,
) -> WireResponse:
    """The response of a fault kind (see spec.FAULT_KINDS); `message` replaces the default text."""
    if kind == "model_error":
        return model_error(
            region=region,
            account=account,
            endpoint_name=endpoint_name,
            original_status=original_status,
            original_message=message if message is not None else "Injected model error",
        )
    if kind == "model_timeout":
        return model_timeout(region=region, account=account, endpoint_name=endpoint_name)
    error_type, default = _FAULT_ERRORS[kind]
    return error_response(error_type, message if message is not None else default.format(name=endpoint_name))


# What InvokeEndpoint answers when the inference component has no copies (scaled to zero, or still provisioning
# its first): HTTP 400 ValidationError with this message, quoted from AWS's announcement of scale-to-zero,
# https://aws.amazon.com/blogs/machine-learning/unlock-cost-savings-with-the-new-scale-down-to-zero-feature-in-amazon-sagemaker-inference/
# ("If we try to invoke our endpoint while instances are scaled down to zero, we get a validation error").
# Only endpoints hosting inference components can reach zero on AWS; the emulator gives a variant at zero
# instances the same answer.
NO_CAPACITY_MESSAGE: Final = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)

_FAULT_ERRORS: Final[dict[str, tuple[str, str]]] = {
    "model_not_ready": (
        "ModelNotReadyException",
        "Model for endpoint {name} is not ready: the container has not passed its health check yet.",
    ),
    "throttled": ("ThrottlingException", "Rate exceeded"),
    "service_unavailable": ("ServiceUnavailable", "Service Unavailable"),
    "internal_failure": ("InternalFailure", "An internal failure occurred."),
    "internal_dependency": ("InternalDependencyException", "An internal dependency failed."),
    "validation_error": ("ValidationError", "Request for endpoint {name} failed validation."),
    "no_capacity": ("ValidationError", NO_CAPACITY_MESSAGE),
}

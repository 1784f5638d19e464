"""The two SageMaker control-plane calls the function makes in CAPACITY_MODE=shared, answered from the
emulated endpoints' fleets: DescribeEndpoint and DescribeInferenceComponent (AWS JSON 1.1: `POST /` with
`X-Amz-Target: SageMaker.<Operation>`), so a plain boto3 `sagemaker` client pointed at the emulator
(AWS_ENDPOINT_URL_SAGEMAKER) reads the capacity it would read from AWS.

Naming: every endpoint answers DescribeEndpoint by its name. An endpoint whose capacity is counted in
copies (`EndpointSpec.capacity_unit="copies"`) stands for one inference component of the same name hosted
on it: DescribeInferenceComponent answers for that name, and DescribeEndpoint then shows the variant
without instance counts (the instances under the copies are not modelled)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from sqs_sagemaker_invoker.local.sagemaker.wire import WireResponse

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker.endpoint import Endpoint

TARGET_PREFIX: Final = "SageMaker."
_JSON_11: Final = "application/x-amz-json-1.1"
# Describe* report when the resource was created; the emulator's endpoints all date from its start-up.
_STARTED: Final = time.time()


def answer(
    target: str, body: bytes, *, find_endpoint: Callable[[str], Endpoint | None], region: str, account: str
) -> WireResponse:
    """The response to one control-plane request (`target`: the X-Amz-Target header's value)."""
    operation = _OPERATIONS.get(target.removeprefix(TARGET_PREFIX))
    if operation is None:
        return _error(400, "UnknownOperationException", f"The emulator does not serve {target}.")
    member, resource, describe = operation
    try:
        request: Any = json.loads(body or b"{}")
    except ValueError:
        return _error(400, "SerializationException", "The request body is not valid JSON.")
    name = request.get(member) if isinstance(request, dict) else None
    if not isinstance(name, str) or not name:
        return _error(
            400,
            "ValidationException",
            f"1 validation error detected: Value null at '{member[0].lower()}{member[1:]}' failed to satisfy "
            "constraint: Member must not be null",
        )
    arn = f"arn:aws:sagemaker:{region}:{account}"
    endpoint = find_endpoint(name)
    described = describe(endpoint, arn) if endpoint is not None else None
    if described is None:
        return _error(
            400,
            "ValidationException",
            f'Could not find {resource} "{arn}:{_ARN_PART[resource]}/{name.lower()}".',
        )
    return WireResponse(200, [("Content-Type", _JSON_11)], json.dumps(described).encode())


def describe_endpoint(endpoint: Endpoint, arn: str) -> dict[str, Any]:
    spec = endpoint.spec
    status = endpoint.capacity_status()
    if spec.capacity_unit == "copies":
        variants: list[dict[str, Any]] = [{"VariantName": spec.variant}]
    else:
        variants = status["describe"]["ProductionVariants"]
    return {
        "EndpointName": spec.name,
        "EndpointArn": f"{arn}:endpoint/{spec.name.lower()}",
        "EndpointConfigName": spec.name,
        "ProductionVariants": variants,
        "EndpointStatus": _status(status),
        "CreationTime": _STARTED,
        "LastModifiedTime": _STARTED,
    }


def describe_inference_component(endpoint: Endpoint, arn: str) -> dict[str, Any] | None:
    """None for an endpoint counted in instances: it hosts no inference component."""
    spec = endpoint.spec
    if spec.capacity_unit != "copies":
        return None
    status = endpoint.capacity_status()
    return {
        "InferenceComponentName": spec.name,
        "InferenceComponentArn": f"{arn}:inference-component/{spec.name.lower()}",
        "EndpointName": spec.name,
        "EndpointArn": f"{arn}:endpoint/{spec.name.lower()}",
        "VariantName": spec.variant,
        "RuntimeConfig": status["describe"]["RuntimeConfig"],
        "InferenceComponentStatus": _status(status),
        "CreationTime": _STARTED,
        "LastModifiedTime": _STARTED,
    }


def _status(capacity: dict[str, Any]) -> str:
    # While instances (copies) are being added or removed, AWS shows the resource Updating.
    return "InService" if capacity["current"] == capacity["desired"] else "Updating"


def as_json_11(error: WireResponse) -> WireResponse:
    """A refusal made for the runtime's REST-JSON protocol (a bad signature), reshaped for JSON 1.1:
    botocore's JSON 1.1 parser reads the code from the body's `__type` only."""
    try:
        message = str(json.loads(error.body).get("Message", ""))
    except ValueError:
        message = error.body.decode(errors="replace")
    return _error(error.status, error.error_type or "InternalFailure", message)


def _error(status: int, code: str, message: str) -> WireResponse:
    """An AWS JSON 1.1 error: botocore reads the code from `__type` (and the header), the text from
    `message`."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return WireResponse(status, [("x-amzn-ErrorType", code), ("Content-Type", _JSON_11)], body, code)


_ARN_PART: Final = {"endpoint": "endpoint", "inference component": "inference-component"}
# Operation -> (the request member naming the resource, the resource's name in errors, the answer).
_OPERATIONS: Final[dict[str, tuple[str, str, Callable[[Endpoint, str], dict[str, Any] | None]]]] = {
    "DescribeEndpoint": ("EndpointName", "endpoint", describe_endpoint),
    "DescribeInferenceComponent": (
        "InferenceComponentName",
        "inference component",
        describe_inference_component,
    ),
}

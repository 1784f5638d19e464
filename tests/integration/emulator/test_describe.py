"""The control plane's Describe* calls, answered by the emulator from its fleets: a real boto3 `sagemaker`
client (endpoint_url at the emulator, SigV4 checked) reads the capacity the function's shared mode reads."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec
from sqs_sagemaker_invoker.local.sagemaker.testing import ONE_ATTEMPT, REGION

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sagemaker import SageMakerClient

    from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator

ACCOUNT = "123456789012"


def sagemaker_client(url: str, **kwargs: Any) -> SageMakerClient:
    kwargs.setdefault("aws_access_key_id", "testing")
    kwargs.setdefault("aws_secret_access_key", "testing")
    client: SageMakerClient = boto3.client(
        "sagemaker", endpoint_url=url, region_name=REGION, config=ONE_ATTEMPT, **kwargs
    )
    return client


@pytest.fixture
def emulator(sagemaker_emulator_factory: Callable[..., SageMakerEmulator]) -> SageMakerEmulator:
    return sagemaker_emulator_factory(
        EndpointSpec("fleet", container="inline", instances=2, concurrency_per_instance=4, variant="Blue"),
        EndpointSpec(
            "llm", container="inline", instances=3, concurrency_per_instance=1, capacity_unit="copies"
        ),
        port=0,
    )


def test_describe_endpoint_shows_the_instances_serving(emulator: SageMakerEmulator) -> None:
    # GIVEN an endpoint of 2 instances, variant Blue WHEN described through boto3
    client = sagemaker_client(emulator.url)
    described = client.describe_endpoint(EndpointName="fleet")
    # THEN the variant shows its instance counts as AWS does, and the timestamps parse
    assert described["ProductionVariants"] == [
        {"VariantName": "Blue", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2}
    ]
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointArn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/fleet"
    assert described["CreationTime"].year >= 2024


def test_a_scale_out_shows_desired_before_current(emulator: SageMakerEmulator) -> None:
    # GIVEN a scale-out to 3 instances still provisioning
    client = sagemaker_client(emulator.url)
    emulator.set_capacity("fleet", 3, provisioning_s=0.5)
    # WHEN described now and after the provisioning THEN current follows desired, Updating meanwhile
    during = client.describe_endpoint(EndpointName="fleet")
    assert during["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert during["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    assert during["EndpointStatus"] == "Updating"
    time.sleep(0.6)
    after = client.describe_endpoint(EndpointName="fleet")
    assert after["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    assert after["EndpointStatus"] == "InService"


def test_describe_inference_component_shows_the_copies(emulator: SageMakerEmulator) -> None:
    # GIVEN an endpoint counted in copies: the inference component of the same name
    client = sagemaker_client(emulator.url)
    emulator.set_capacity("llm", 0)
    # WHEN described THEN RuntimeConfig gives its copies
    described = client.describe_inference_component(InferenceComponentName="llm")
    assert described["RuntimeConfig"] == {"DesiredCopyCount": 0, "CurrentCopyCount": 0}
    assert described["EndpointName"] == "llm"
    assert (
        described["InferenceComponentArn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/llm"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.describe_endpoint(EndpointName="nope"), 'Could not find endpoint "arn:aws:sagemaker:'),
        (
            lambda c: c.describe_inference_component(InferenceComponentName="nope"),
            'Could not find inference component "arn:aws:sagemaker:',
        ),
        # an endpoint counted in instances hosts no inference component
        (
            lambda c: c.describe_inference_component(InferenceComponentName="fleet"),
            "Could not find inference component",
        ),
    ],
)
def test_an_unknown_name_is_a_validation_exception(
    emulator: SageMakerEmulator, call: Callable[[Any], Any], message: str
) -> None:
    client = sagemaker_client(emulator.url)
    with pytest.raises(ClientError) as raised:
        call(client)
    # THEN botocore parses it as AWS sends it: code, message, HTTP 400
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["Error"]["Message"].startswith(message)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_describe_is_signed_like_every_call(emulator: SageMakerEmulator) -> None:
    # GIVEN a client with an unknown secret WHEN it describes THEN the signature is refused
    client = sagemaker_client(emulator.url, aws_secret_access_key="wrong")
    with pytest.raises(ClientError) as raised:
        client.describe_endpoint(EndpointName="fleet")
    assert raised.value.response["Error"]["Code"] in {
        "InvalidSignatureException",
        "UnrecognizedClientException",
    }


def test_the_client_finds_the_emulator_through_the_environment(
    emulator: SageMakerEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN AWS_ENDPOINT_URL_SAGEMAKER, as the local stack sets it for the function
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", emulator.url)
    client = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    # WHEN the function's client describes THEN it reaches the emulator
    assert client.describe_endpoint(EndpointName="fleet")["EndpointName"] == "fleet"

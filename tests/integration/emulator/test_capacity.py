"""An endpoint of N instances (or copies) x a concurrency each, scaled at run time through `EmulatorControl`
(in process and over HTTP), seen by a real boto3 client."""

from __future__ import annotations

import concurrent.futures
import time
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec
from sqs_sagemaker_invoker.local.sagemaker.testing import runtime_client
from sqs_sagemaker_invoker.local.sagemaker.wire import NO_CAPACITY_MESSAGE

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from sqs_sagemaker_invoker.local.sagemaker import EmulatorControl

NAME = "fleet"
LATENCY_MS = 800  # long enough for every concurrent request of a wave to be at the model together


def wave(client: SageMakerRuntimeClient, size: int) -> dict[str, int]:
    """`size` requests at once: how many were served and how many got each error code."""

    def call(_: int) -> str:
        try:
            client.invoke_endpoint(EndpointName=NAME, Body=b"{}")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        results = list(pool.map(call, range(size)))
    return {code: results.count(code) for code in sorted(set(results))}


def test_throttling_starts_exactly_above_instances_times_concurrency_and_follows_scaling(
    emulator_control: EmulatorControl,
) -> None:
    # GIVEN an endpoint of 2 copies taking 2 requests each
    emulator_control.add_endpoint(
        EndpointSpec(
            NAME,
            container="inline",
            latency_ms=LATENCY_MS,
            instances=2,
            concurrency_per_instance=2,
            capacity_unit="copies",
            record_requests=False,
        )
    )
    client = runtime_client(emulator_control.url)
    assert emulator_control.capacity(NAME)["describe"] == {
        "RuntimeConfig": {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
    }
    # WHEN 5 requests arrive at once THEN 4 are served and exactly 1 is throttled
    assert wave(client, 5) == {"ThrottlingException": 1, "ok": 4}

    # WHEN it scales out to 3 with a provisioning delay THEN the new copy is not serving yet
    scaled = emulator_control.set_capacity(NAME, 3, provisioning_s=2.5)
    assert (scaled["current"], scaled["desired"]) == (2, 3)
    assert wave(client, 7) == {"ThrottlingException": 3, "ok": 4}
    # AND after the delay it serves: 3 x 2 at once
    time.sleep(max(0.0, 2.6 - LATENCY_MS / 1000))
    assert emulator_control.capacity(NAME)["describe"]["RuntimeConfig"]["CurrentCopyCount"] == 3
    assert wave(client, 7) == {"ThrottlingException": 1, "ok": 6}

    # WHEN it scales in to 1 THEN at once: 2 served, the rest throttled
    assert emulator_control.set_capacity(NAME, 1)["current"] == 1
    assert wave(client, 3) == {"ThrottlingException": 1, "ok": 2}
    stats = emulator_control.stats(NAME)
    assert (stats["ok"], stats["throttled"]) == (16, 6)


def test_zero_copies_answer_the_no_capacity_validation_error_until_one_is_provisioned(
    emulator_control: EmulatorControl,
) -> None:
    # GIVEN an endpoint scaled to zero copies
    emulator_control.add_endpoint(
        EndpointSpec(NAME, container="inline", instances=1, capacity_unit="copies", record_requests=False)
    )
    client = runtime_client(emulator_control.url)
    assert emulator_control.set_capacity(NAME, 0)["describe"] == {
        "RuntimeConfig": {"DesiredCopyCount": 0, "CurrentCopyCount": 0}
    }
    # WHEN it is invoked THEN botocore parses AWS's answer: HTTP 400 ValidationError, the no-capacity message
    with pytest.raises(client.exceptions.ValidationError) as caught:
        client.invoke_endpoint(EndpointName=NAME, Body=b"{}")
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    assert error["Error"]["Message"] == NO_CAPACITY_MESSAGE
    # WHEN a copy is asked for with a provisioning delay THEN the answer stays the same meanwhile
    emulator_control.set_capacity(NAME, 1, provisioning_s=0.5)
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint(EndpointName=NAME, Body=b"{}")
    # AND once provisioned the copy serves
    time.sleep(0.6)
    assert client.invoke_endpoint(EndpointName=NAME, Body=b"{}")["Body"].read() == b"{}"
    stats = emulator_control.stats(NAME)
    assert (stats["no_capacity"], stats["ok"]) == (2, 1)


def test_instances_are_reported_as_describe_endpoint_does_and_bad_counts_are_refused(
    emulator_control: EmulatorControl,
) -> None:
    # GIVEN an instance-backed endpoint of 3 instances
    emulator_control.add_endpoint(
        EndpointSpec(NAME, container="inline", instances=3, concurrency_per_instance=4, variant="Blue")
    )
    capacity = emulator_control.capacity(NAME)
    assert capacity["describe"] == {
        "ProductionVariants": [{"VariantName": "Blue", "CurrentInstanceCount": 3, "DesiredInstanceCount": 3}]
    }
    assert (capacity["unit"], capacity["concurrency_per_instance"]) == ("instances", 4)
    assert emulator_control.status(NAME)["capacity"] == 12
    # WHEN a negative count is asked for THEN it is refused and nothing changes
    with pytest.raises((ValueError, RuntimeError)):
        emulator_control.set_capacity(NAME, -1)
    assert emulator_control.capacity(NAME)["current"] == 3

"""The local autoscaler scales an emulated endpoint with its route's backlog (moto's queue counts), by the
deployed policy: from zero on a backlog, out by target tracking, back in to the minimum when the queue is
empty. The local stack starts one for each route with `scaling`, and stops it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_sagemaker_invoker.local.autoscaler import LocalAutoscaler
from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, SageMakerEmulator
from sqs_sagemaker_invoker.local.stack import LocalStack, StackOptions
from sqs_sagemaker_invoker.scaling import ScalingPolicy
from tests.support.polling import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.stand_ins import MotoServer

POLICY = ScalingPolicy(
    unit="copies",
    min_capacity=0,
    max_capacity=4,
    target_backlog_per_instance=10.0,
    scale_out_cooldown_seconds=0,
    scale_in_cooldown_seconds=0,
    provisioning_seconds=1,
)


@pytest.fixture
def emulator() -> Iterator[SageMakerEmulator]:
    spec = EndpointSpec(
        name="scaled", container="inline", instances=0, capacity_unit="copies", concurrency_per_instance=2
    )
    with SageMakerEmulator([spec]) as running:
        yield running


def _send(sqs: SQSClient, url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": "x"} for i in range(min(10, count - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]


def test_a_backlog_scales_out_from_zero_and_an_empty_queue_scales_back_in(
    moto: MotoServer, emulator: SageMakerEmulator
) -> None:
    # GIVEN an endpoint at zero copies and 35 messages waiting (target 10 per copy: 4 copies wanted)
    sqs: SQSClient = boto3.client("sqs", **client_kwargs(moto.url))
    url = sqs.create_queue(QueueName="scaled-requests")["QueueUrl"]
    _send(sqs, url, 35)
    scaler = LocalAutoscaler(
        route="scaled",
        endpoint="scaled",
        policy=POLICY,
        sqs=sqs,
        queue_url=url,
        emulator=emulator,
        tick_s=0.1,
    ).start()
    try:
        # WHEN the autoscaler runs
        # THEN one copy is added from zero, then target tracking asks for 4, and they serve after 1 s
        wait_for(lambda: emulator.capacity("scaled")["current"] == 4, timeout=15, what="4 copies serving")
        # WHEN the queue empties
        sqs.purge_queue(QueueUrl=url)
        # THEN the endpoint goes back to the minimum (0 copies)
        wait_for(lambda: emulator.capacity("scaled")["desired"] == 0, timeout=15, what="scale in to 0")
    finally:
        scaler.stop()
    decisions = [(tick.rule, tick.decision) for tick in scaler.ticks() if tick.decision is not None]
    assert decisions[0] == ("scale_from_zero", 1)
    assert ("target_tracking", 4) in decisions
    assert decisions[-1] == ("target_tracking", 0)
    assert max(tick.desired for tick in scaler.ticks()) == POLICY.max_capacity
    # The timeline records the backlog the decisions were made on
    assert max(tick.backlog for tick in scaler.ticks()) == 35


ROUTES: list[dict[str, Any]] = [
    {
        "name": "scaled",
        "endpointName": "scaled-ep",
        "maxReceiveCount": 20,
        "retryBaseSeconds": 2,
        "retryMaxSeconds": 16,
        "capacity": {"inferenceComponentName": "scaled-ep", "concurrencyPerInstance": 3},
        "scaling": {
            "minCapacity": 0,
            "maxCapacity": 2,
            "targetBacklogPerInstance": 5,
            "provisioningSeconds": 1,
        },
    },
    {"name": "fixed", "endpointName": "fixed-ep"},
]


def test_the_stack_runs_an_autoscaler_for_each_scaled_route_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # GIVEN a stack with a scaled route (zero copies minimum) and a fixed one
    options = StackOptions(
        context={"invoker": {"stackName": "ScalingTest", "routes": ROUTES}},
        default_container="inline",
        moto_mode="thread",
        start_event_sources=False,
        autoscale_tick_s=0.1,
        state_dir=tmp_path_factory.mktemp("scaling"),
    )
    with LocalStack(options) as stack:
        assert stack.emulator is not None
        # THEN only the scaled route has one, and its endpoint starts at the policy's minimum, in copies
        assert set(stack.autoscalers) == {"scaled"}
        capacity = stack.emulator.capacity("scaled-ep")
        assert (capacity["unit"], capacity["current"], capacity["concurrency_per_instance"]) == (
            "copies",
            0,
            3,
        )
        # WHEN a request arrives
        stack.sqs().send_message(QueueUrl=stack.route("scaled").request_queue_url, MessageBody="{}")
        # THEN the endpoint scales out from zero
        wait_for(lambda: stack.emulator.capacity("scaled-ep")["desired"] >= 1, timeout=10, what="scale-out")  # type: ignore[union-attr]
        scaler = stack.autoscalers["scaled"]
        assert scaler.running
    # AND it stops with the stack
    assert scaler._thread is None

"""Fixtures of the local-stack tests: toy Lambda handlers, queues on the session's moto server and an
event source emulator running one against the other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_sagemaker_invoker.local.aws import client_kwargs
from sqs_sagemaker_invoker.local.esm import EventSourceEmulator, EventSourceSpec
from sqs_sagemaker_invoker.local.telemetry import TelemetryShipper
from sqs_sagemaker_invoker.local.worker import FunctionSpec
from tests.support.local_stack import TOY_HANDLER, ToyQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.local.stand_ins import MotoServer


@pytest.fixture
def toy_function(tmp_path: Path, moto: MotoServer) -> Callable[..., FunctionSpec]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "toy.py").write_text(TOY_HANDLER, encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()

    def make(timeout_s: float = 10.0, name: str = "toy") -> FunctionSpec:
        return FunctionSpec(
            name=name,
            environment={
                "TOY_STATE": str(state),
                "AWS_ENDPOINT_URL": moto.url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            },
            timeout_s=timeout_s,
            handler="toy.handler",
            code_root=code,
        )

    return make


@pytest.fixture
def make_queue(moto: MotoServer) -> Callable[..., ToyQueue]:
    sqs: SQSClient = boto3.client("sqs", **client_kwargs(moto.url))

    def make(name: str = "toy", **attributes: str) -> ToyQueue:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return ToyQueue(sqs, url, arn)

    return make


@pytest.fixture
def run_esm(moto: MotoServer) -> Iterator[Callable[..., EventSourceEmulator]]:
    """Start an emulator for one source; it (and its telemetry shipper) is stopped after the test."""
    started: list[tuple[EventSourceEmulator, TelemetryShipper]] = []

    def run(queue: ToyQueue, function: FunctionSpec, **spec: Any) -> EventSourceEmulator:
        shipper = TelemetryShipper(endpoint_url=moto.url).start()
        esm = EventSourceEmulator(
            [
                EventSourceSpec(
                    name="toy", queue_url=queue.url, queue_arn=queue.arn, function=function, **spec
                )
            ],
            endpoint_url=moto.url,
            log_sink=shipper,
        )
        started.append((esm, shipper))
        return esm.start()

    try:
        yield run
    finally:
        for esm, shipper in started:
            # Worker processes are stopped at once; idle slot threads end with their long poll.
            esm.stop(timeout=0)
            shipper.stop()

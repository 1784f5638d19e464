"""Fixtures of the function tests: the real handler against the session's moto server and one SageMaker
Runtime emulator per test module (an `inline` endpoint: no container process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, SageMakerEmulator
from tests.support.function_harness import ENDPOINT, FunctionRun, start_function

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqs_sagemaker_invoker.local.stand_ins import MotoServer


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator([EndpointSpec(name=ENDPOINT, container="inline")], port=0) as emu:
        emu.wait_ready(ENDPOINT, timeout=30)
        yield emu


@pytest.fixture
def run_function(
    moto: MotoServer, emulator: SageMakerEmulator, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., FunctionRun]:
    """`start(**env)`: fresh queues and bucket, the handler imported afresh with that environment."""
    emulator.reset(ENDPOINT)

    def start(**kwargs: Any) -> FunctionRun:
        return start_function(monkeypatch, moto.url, emulator.url, **kwargs)

    return start

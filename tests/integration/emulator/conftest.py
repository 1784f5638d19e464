"""Fixtures of the SageMaker Runtime emulator tests (build clients with
sqs_sagemaker_invoker.local.sagemaker.testing.runtime_client).

- `aws_test_env`: dummy credentials (testing/testing), region us-east-1, no profile/config files.
- `sagemaker_emulator`: a running emulator with one `inline` endpoint named DEFAULT_ENDPOINT (echo
  behaviour, no container process: fast) and AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME pointing at it, so plain
  `boto3.client("sagemaker-runtime")` reaches it. Stopped after the test.
- `sagemaker_emulator_factory`: `make(*specs, **emulator_kwargs)` starts more emulators (e.g. an `echo`
  or `sklearn` container endpoint); every one is stopped after the test.
- `sagemaker_runtime_client`: a boto3 client for `sagemaker_emulator`, retries pinned to one attempt.
- `emulator_control`: `sagemaker_emulator` behind `EmulatorControl`, twice: the emulator object itself and
  the HTTP client (a test using it runs against both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.local.sagemaker import (
    EmulatorClient,
    EmulatorControl,
    EndpointSpec,
    SageMakerEmulator,
)
from sqs_sagemaker_invoker.local.sagemaker.testing import DEFAULT_ENDPOINT, REGION, runtime_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient


@pytest.fixture
def aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def sagemaker_emulator_factory(aws_test_env: None) -> Iterator[Callable[..., SageMakerEmulator]]:
    started: list[SageMakerEmulator] = []

    def make(*specs: EndpointSpec, **kwargs: Any) -> SageMakerEmulator:
        emulator = SageMakerEmulator(specs, **kwargs)
        started.append(emulator)
        return emulator.start()

    try:
        yield make
    finally:
        for emulator in started:
            emulator.stop()


@pytest.fixture
def sagemaker_emulator(
    sagemaker_emulator_factory: Callable[..., SageMakerEmulator], monkeypatch: pytest.MonkeyPatch
) -> SageMakerEmulator:
    emulator = sagemaker_emulator_factory(EndpointSpec(DEFAULT_ENDPOINT, container="inline"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", emulator.url)
    return emulator


@pytest.fixture
def sagemaker_runtime_client(sagemaker_emulator: SageMakerEmulator) -> SageMakerRuntimeClient:
    return runtime_client(sagemaker_emulator.url)


@pytest.fixture(params=["in-process", "http"])
def emulator_control(
    request: pytest.FixtureRequest, sagemaker_emulator: SageMakerEmulator
) -> EmulatorControl:
    """The running emulator behind `EmulatorControl`: the emulator object itself, or the HTTP client."""
    if request.param == "http":
        return EmulatorClient(sagemaker_emulator.url)
    return sagemaker_emulator

"""Helpers for code that talks to the emulator with boto3 (tests, benchmarks, demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

DEFAULT_ENDPOINT: Final = "test-endpoint"
REGION: Final = "us-east-1"
# One attempt, so a test sees each response exactly as the emulator sent it; a pool for 64 threads.
ONE_ATTEMPT: Final = Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=64)


def runtime_client(
    url: str | None = None, config: Config = ONE_ATTEMPT, **kwargs: Any
) -> SageMakerRuntimeClient:
    """A sagemaker-runtime client with the dummy credentials testing/testing (override with
    aws_access_key_id/aws_secret_access_key); url None follows AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME."""
    kwargs.setdefault("aws_access_key_id", "testing")
    kwargs.setdefault("aws_secret_access_key", "testing")
    kwargs.setdefault("region_name", REGION)
    client: SageMakerRuntimeClient = boto3.client(
        "sagemaker-runtime", endpoint_url=url, config=config, **kwargs
    )
    return client

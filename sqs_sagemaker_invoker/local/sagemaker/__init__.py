"""Local SageMaker Runtime: an InvokeEndpoint emulator backed by model container processes.

Names are imported lazily so that the model containers (`python -m sqs_sagemaker_invoker.local.sagemaker.containers...`) start
without loading botocore.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.local.sagemaker.control import EmulatorControl, RecordedRequest
    from sqs_sagemaker_invoker.local.sagemaker.control_client import ControlError, EmulatorClient
    from sqs_sagemaker_invoker.local.sagemaker.emulator import SageMakerEmulator
    from sqs_sagemaker_invoker.local.sagemaker.process import EmulatorProcess
    from sqs_sagemaker_invoker.local.sagemaker.spec import (
        FAULT_KINDS,
        OUTCOMES,
        EndpointSpec,
        FaultSpec,
        SpecError,
    )

__all__ = [
    "FAULT_KINDS",
    "OUTCOMES",
    "ControlError",
    "EmulatorClient",
    "EmulatorControl",
    "EmulatorProcess",
    "EndpointSpec",
    "FaultSpec",
    "RecordedRequest",
    "SageMakerEmulator",
    "SpecError",
]

_HOMES = {
    "ControlError": "control_client",
    "EmulatorClient": "control_client",
    "EmulatorControl": "control",
    "EmulatorProcess": "process",
    "RecordedRequest": "control",
    "SageMakerEmulator": "emulator",
    "EndpointSpec": "spec",
    "FaultSpec": "spec",
    "SpecError": "spec",
    "FAULT_KINDS": "spec",
    "OUTCOMES": "spec",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

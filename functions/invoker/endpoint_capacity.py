"""The endpoint's serving capacity, read from SageMaker's control plane: how many calls the route may have
in flight at once (its ceiling). The arithmetic is pure; `read_capacity` makes the one Describe call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sagemaker import SageMakerClient

    from invoker.config import SharedCapacityConfig


@dataclass(frozen=True, slots=True)
class CapacityReading:
    """`capacity`: the instances (or copies) serving, as the scaling policy counts them; `ceiling`: the calls
    they take at once."""

    capacity: int
    ceiling: int


class VariantNotFound(LookupError):
    """CAPACITY_VARIANT names a production variant the endpoint does not have."""

    def __init__(self, endpoint: str, variant: str, present: list[str]) -> None:
        super().__init__(
            f"endpoint {endpoint} has no production variant {variant} (it has: {', '.join(present) or 'none'})"
        )
        self.endpoint = endpoint
        self.variant = variant
        self.present = present


def from_endpoint(
    description: Mapping[str, Any], *, variant: str | None, concurrency_per_instance: int
) -> CapacityReading:
    """DescribeEndpoint's answer: the named variant's instances, or every variant's. A serverless variant has
    no instances: its MaxConcurrency is already a number of calls, so it counts as that many units of one."""
    variants: list[Mapping[str, Any]] = list(description.get("ProductionVariants") or [])
    if variant is not None:
        chosen = [v for v in variants if v.get("VariantName") == variant]
        if not chosen:
            names = [str(v.get("VariantName")) for v in variants]
            raise VariantNotFound(str(description.get("EndpointName", "?")), variant, names)
        variants = chosen
    capacity = ceiling = 0
    for each in variants:
        serverless = each.get("CurrentServerlessConfig")
        if serverless is not None:
            slots = int(serverless.get("MaxConcurrency") or 0)
            capacity += slots
            ceiling += slots
        else:
            # Absent while the endpoint is being created: nothing serves yet.
            instances = int(each.get("CurrentInstanceCount") or 0)
            capacity += instances
            ceiling += instances * concurrency_per_instance
    return CapacityReading(capacity, ceiling)


def from_component(description: Mapping[str, Any], *, concurrency_per_instance: int) -> CapacityReading:
    """DescribeInferenceComponent's answer: the copies serving, each taking CONCURRENCY_PER_INSTANCE calls."""
    copies = int((description.get("RuntimeConfig") or {}).get("CurrentCopyCount") or 0)
    return CapacityReading(copies, copies * concurrency_per_instance)


def read_capacity(
    sagemaker: SageMakerClient, endpoint_name: str, settings: SharedCapacityConfig
) -> CapacityReading:
    """One Describe call; its errors (ClientError, BotoCoreError) and VariantNotFound propagate."""
    per_instance = settings.concurrency_per_instance
    if settings.inference_component is not None:
        component = sagemaker.describe_inference_component(
            InferenceComponentName=settings.inference_component
        )
        return from_component(component, concurrency_per_instance=per_instance)
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    return from_endpoint(endpoint, variant=settings.variant, concurrency_per_instance=per_instance)

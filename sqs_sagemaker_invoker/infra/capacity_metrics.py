"""The metrics behind a route's backlog per instance, as data: what the scaling policy, the
scale-from-zero alarm and the dashboard query, so the three read the same series.

Pure Python on purpose (no CDK import): the CDK constructs render these as CloudFormation metric queries,
the dashboard (shared with the local stack) as widget metrics. The expressions and metric ids themselves
are sqs_sagemaker_invoker.scaling's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from invoker.contract import Dimension, Metric

from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.scaling import METRIC_ID_CAPACITY, METRIC_ID_IN_FLIGHT, METRIC_ID_VISIBLE

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.config import RouteConfig

SQS_NAMESPACE: Final = "AWS/SQS"
# Queue depth is sampled once a minute; Maximum as the queue alarms and the dashboard's queue graph read it.
QUEUE_DEPTH_STATISTIC: Final = "Maximum"
# The function reports EndpointCapacity once per batch; the average of a period is what served during it.
CAPACITY_STATISTIC: Final = "Average"


@dataclass(frozen=True)
class MetricQuery:
    """One metric of a math expression: its id in the expression, and its identity."""

    id: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str

    @property
    def dimensions_map(self) -> dict[str, str]:
        return dict(self.dimensions)


def backlog_metrics(
    *, request_queue_name: str, endpoint_name: str, namespace: str, service: str
) -> tuple[MetricQuery, MetricQuery, MetricQuery]:
    """visible, inFlight (the request queue) and capacity (the function's EndpointCapacity).

    EndpointCapacity is an EMF metric of the function: dimensions {endpoint, service} (Powertools adds
    `service`), exactly as the dashboard's other function metrics are addressed; CloudWatch identifies a
    metric by its whole dimension set."""
    queue = (("QueueName", request_queue_name),)
    return (
        MetricQuery(
            METRIC_ID_VISIBLE,
            SQS_NAMESPACE,
            "ApproximateNumberOfMessagesVisible",
            queue,
            QUEUE_DEPTH_STATISTIC,
        ),
        MetricQuery(
            METRIC_ID_IN_FLIGHT,
            SQS_NAMESPACE,
            "ApproximateNumberOfMessagesNotVisible",
            queue,
            QUEUE_DEPTH_STATISTIC,
        ),
        MetricQuery(
            METRIC_ID_CAPACITY,
            namespace,
            Metric.ENDPOINT_CAPACITY,
            ((Dimension.ENDPOINT, endpoint_name), (Dimension.SERVICE, service)),
            CAPACITY_STATISTIC,
        ),
    )


def scalable_target(
    endpoint_name: str, variant_name: str | None, inference_component_name: str | None
) -> tuple[str, str]:
    """(ResourceId, ScalableDimension) of Application Auto Scaling, namespace sagemaker."""
    if inference_component_name is not None:
        return (
            f"inference-component/{inference_component_name}",
            "sagemaker:inference-component:DesiredCopyCount",
        )
    if variant_name is None:
        raise ValueError("a variant's scalable target needs the variant's name")
    return f"endpoint/{endpoint_name}/variant/{variant_name}", "sagemaker:variant:DesiredInstanceCount"


def check_deployable_scaling(route: RouteConfig, path: str) -> None:
    """What the scalable target needs beyond the policy's own checks (config_loader ran those): a variant to
    scale. Checked where the stack is built (the local autoscaler scales the emulator's endpoint as a
    whole, so cdk.json parsing leaves it to the stack)."""
    policy = route.scaling
    if policy is None:
        return
    capacity = route.capacity
    if capacity.inference_component_name is None and capacity.variant_name is None:
        raise RouteConfigError(
            f"{path}.capacity.variantName: required with scaling: Application Auto Scaling scales one"
            f" production variant (resource endpoint/{route.endpoint_name}/variant/<variantName>); or set"
            " capacity.inferenceComponentName to scale an inference component's copies"
        )

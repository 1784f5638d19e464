"""A route's shared capacity and scaling: the capacity table, the function's grants on its one item and
on the endpoint's capacity readings, and the opt-in Application Auto Scaling of the endpoint.

The table holds one small item per shared route (key CAPACITY_KEY): the budget the route's function
instances lease slots from. One table per stack serves every route (`stack_capacity_table`); a route may
be given another (`SageMakerInvokerRoute(capacity_table=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from invoker.contract import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_TTL_ATTRIBUTE

from sqs_sagemaker_invoker.infra import suppressions
from sqs_sagemaker_invoker.infra.capacity_metrics import MetricQuery, backlog_metrics, scalable_target
from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.infra.outputs_and_alarms import STACK_OUTPUT_DESCRIPTIONS, StackOutput
from sqs_sagemaker_invoker.scaling import (
    BACKLOG_PER_INSTANCE_EXPRESSION,
    BACKLOG_WITHOUT_CAPACITY_EXPRESSION,
    FROM_ZERO_EVALUATION_PERIODS,
    METRIC_PERIOD_SECONDS,
)

if TYPE_CHECKING:
    from constructs import Construct

    from sqs_sagemaker_invoker.infra.config import RouteConfig

# The stack-level construct id of the shared table (its logical id is what deployed stacks know).
CAPACITY_TABLE_ID: Final = "CapacityTable"
# The function's item operations: read the budget, lease and return slots (UpdateItem with conditions),
# create the item the first time (PutItem, attribute_not_exists).
# What the function calls on its item: a consistent read, then a whole-item write under a version check.
CAPACITY_ITEM_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:PutItem")
METRIC_ID_BACKLOG_PER_INSTANCE: Final = "backlogPerInstance"


def stack_capacity_table(scope: Construct) -> dynamodb.Table:
    """The capacity table of scope's stack, created (with its stack output) on first use."""
    stack = cdk.Stack.of(scope)
    existing = stack.node.try_find_child(CAPACITY_TABLE_ID)
    if existing is not None:
        if not isinstance(existing, dynamodb.Table):
            raise RouteConfigError(f"{stack.node.path}/{CAPACITY_TABLE_ID} exists and is no DynamoDB table")
        return existing
    table = dynamodb.Table(
        stack,
        CAPACITY_TABLE_ID,
        partition_key=dynamodb.Attribute(
            name=CAPACITY_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
        ),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=CAPACITY_TABLE_TTL_ATTRIBUTE,
        # Service-managed encryption, as the queues (SSE-SQS) and buckets (SSE-S3): no key grants needed.
        encryption=dynamodb.TableEncryption.DEFAULT,
        # Nothing to keep: leases expire by the times written in them, and the function writes the item
        # again when it is missing. Queues, which hold the messages, are deleted with the stack too.
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    suppressions.accept(table, suppressions.TABLE_OWNED_KEY, suppressions.CAPACITY_TABLE_NO_PITR)
    cdk.CfnOutput(
        stack,
        StackOutput.CAPACITY_TABLE_NAME.value,
        value=table.table_name,
        description=STACK_OUTPUT_DESCRIPTIONS[StackOutput.CAPACITY_TABLE_NAME],
    )
    return table


def grant_capacity(
    role: iam.IRole,
    table: dynamodb.ITable,
    *,
    key: str,
    route: RouteConfig,
    endpoint_arn: str,
) -> None:
    """The function's item in the table only (LeadingKeys), and the one Describe call that reads the
    capacity it counts: DescribeInferenceComponent on that component, else DescribeEndpoint on the route's
    endpoint."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ShareRouteCapacity",
            actions=list(CAPACITY_ITEM_ACTIONS),
            resources=[table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [key]}},
        )
    )
    if table.encryption_key is not None:
        table.encryption_key.grant_encrypt_decrypt(role)
    component = route.capacity.inference_component_name
    if component is not None:
        stack = cdk.Stack.of(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadInferenceComponentCapacity",
                actions=["sagemaker:DescribeInferenceComponent"],
                # SageMaker writes its ARNs in lower case whatever the name's case.
                resources=[
                    stack.format_arn(
                        service="sagemaker", resource="inference-component", resource_name=component.lower()
                    )
                ],
            )
        )
    else:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadEndpointCapacity",
                actions=["sagemaker:DescribeEndpoint"],
                resources=[endpoint_arn],
            )
        )


@dataclass(frozen=True)
class RouteScaling:
    target: appscaling.CfnScalableTarget
    tracking: appscaling.CfnScalingPolicy
    from_zero: appscaling.CfnScalingPolicy | None
    from_zero_alarm: cw.Alarm | None


@jsii.implements(cw.IAlarmAction)
class _PolicyAction:
    """An alarm action that runs an L1 scaling policy (the L2 action needs an L2 policy)."""

    def __init__(self, policy: appscaling.CfnScalingPolicy) -> None:
        self._policy = policy

    def bind(self, scope: Construct, alarm: cw.IAlarm) -> cw.AlarmActionConfig:
        return cw.AlarmActionConfig(alarm_action_arn=self._policy.ref)


def add_scaling(  # noqa: PLR0913 - the route, then the names its metrics need
    scope: Construct,
    route: RouteConfig,
    *,
    stack_name: str,
    request_queue_name: str,
    namespace: str,
    service: str,
) -> RouteScaling:
    """The endpoint's scalable target, target tracking on backlog per instance, and for an inference
    component that may reach zero, a step policy on an alarm that adds copies when messages wait."""
    policy = route.scaling
    if policy is None:
        raise ValueError(f"route {route.name} has no scaling")
    capacity = route.capacity
    resource_id, dimension = scalable_target(
        route.endpoint_name, capacity.variant_name, capacity.inference_component_name
    )
    # No RoleARN: Application Auto Scaling uses its service-linked role for SageMaker (it creates it on
    # first use, see docs/deploying.md).
    target = appscaling.CfnScalableTarget(
        scope,
        "ScalableTarget",
        service_namespace="sagemaker",
        resource_id=resource_id,
        scalable_dimension=dimension,
        min_capacity=policy.min_capacity,
        max_capacity=policy.max_capacity,
    )
    metrics = backlog_metrics(
        request_queue_name=request_queue_name,
        endpoint_name=route.endpoint_name,
        namespace=namespace,
        service=service,
    )
    # CDK's TargetTrackingScalingPolicy takes no metric math ("Only direct metrics are supported"): L1.
    cfn = appscaling.CfnScalingPolicy
    tracking = cfn(
        scope,
        "BacklogTracking",
        policy_name=f"{stack_name}-{route.name}-backlog-per-instance",
        policy_type="TargetTrackingScaling",
        scaling_target_id=target.ref,
        target_tracking_scaling_policy_configuration=cfn.TargetTrackingScalingPolicyConfigurationProperty(
            target_value=policy.target_backlog_per_instance,
            scale_out_cooldown=policy.scale_out_cooldown_seconds,
            scale_in_cooldown=policy.scale_in_cooldown_seconds,
            customized_metric_specification=cfn.CustomizedMetricSpecificationProperty(
                metrics=[
                    cfn.TargetTrackingMetricDataQueryProperty(
                        id=METRIC_ID_BACKLOG_PER_INSTANCE,
                        expression=BACKLOG_PER_INSTANCE_EXPRESSION,
                        label=f"{route.name}: messages waiting or in flight per {capacity.unit[:-1]}",
                        return_data=True,
                    ),
                    *(_tracking_query(query) for query in metrics),
                ]
            ),
        ),
    )
    from_zero: appscaling.CfnScalingPolicy | None = None
    alarm: cw.Alarm | None = None
    if policy.scales_from_zero:
        from_zero = cfn(
            scope,
            "ScaleFromZero",
            policy_name=f"{stack_name}-{route.name}-scale-from-zero",
            policy_type="StepScaling",
            scaling_target_id=target.ref,
            step_scaling_policy_configuration=cfn.StepScalingPolicyConfigurationProperty(
                adjustment_type="ChangeInCapacity",
                cooldown=policy.scale_out_cooldown_seconds,
                metric_aggregation_type="Maximum",
                step_adjustments=[
                    cfn.StepAdjustmentProperty(
                        metric_interval_lower_bound=0, scaling_adjustment=policy.scale_from_zero_step
                    )
                ],
            ),
        )
        period = cdk.Duration.seconds(METRIC_PERIOD_SECONDS)
        alarm = cw.Alarm(
            scope,
            "BacklogWithoutCapacity",
            alarm_name=f"{stack_name}-{route.name}-backlog-without-capacity",
            alarm_description=(
                f"Route {route.name}: messages wait and no {capacity.unit} serve; adds"
                f" {policy.scale_from_zero_step} (scaling policy {stack_name}-{route.name}-scale-from-zero)."
            ),
            metric=cw.MathExpression(
                expression=BACKLOG_WITHOUT_CAPACITY_EXPRESSION,
                using_metrics={query.id: _metric(query, period) for query in metrics},
                period=period,
                label="backlog without capacity",
            ),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=FROM_ZERO_EVALUATION_PERIODS,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(_PolicyAction(from_zero))
    return RouteScaling(target=target, tracking=tracking, from_zero=from_zero, from_zero_alarm=alarm)


def _tracking_query(query: MetricQuery) -> appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
    cfn = appscaling.CfnScalingPolicy
    return cfn.TargetTrackingMetricDataQueryProperty(
        id=query.id,
        metric_stat=cfn.TargetTrackingMetricStatProperty(
            metric=cfn.TargetTrackingMetricProperty(
                namespace=query.namespace,
                metric_name=query.metric_name,
                dimensions=[
                    cfn.TargetTrackingMetricDimensionProperty(name=name, value=value)
                    for name, value in query.dimensions
                ],
            ),
            stat=query.statistic,
        ),
        return_data=False,
    )


def _metric(query: MetricQuery, period: cdk.Duration) -> cw.Metric:
    return cw.Metric(
        namespace=query.namespace,
        metric_name=query.metric_name,
        dimensions_map=query.dimensions_map,
        statistic=query.statistic,
        period=period,
    )

"""The invoker stack: every configured route, one alarm topic, one dashboard, saved log queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from sqs_sagemaker_invoker.infra import monitoring, suppressions
from sqs_sagemaker_invoker.infra.config import output_prefix
from sqs_sagemaker_invoker.infra.construct_props import route_props
from sqs_sagemaker_invoker.infra.outputs_and_alarms import (
    STACK_OUTPUT_DESCRIPTIONS,
    StackOutput,
)
from sqs_sagemaker_invoker.infra.route_construct import SageMakerInvokerRoute

if TYPE_CHECKING:
    from constructs import Construct

    from sqs_sagemaker_invoker.infra.config import AppConfig


class InvokerStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        route_names = ", ".join(r.name for r in config.routes)
        super().__init__(
            scope,
            construct_id,
            stack_name=config.stack_name,
            description=f"SQS -> SageMaker invoker (routes: {route_names})",
            **kwargs,
        )
        self.config = config
        suppressions.accept(self, suppressions.CDK_JOIN_STYLE)
        for key, value in config.tags.items():
            cdk.Tags.of(self).add(key, value)

        self.alarm_topic = self._alarm_topic()

        # Each route of cdk.json through the public construct, so the two cannot differ.
        self.routes = [
            SageMakerInvokerRoute(
                self,
                output_prefix(route.name),
                **route_props(route),
                alarm_topic=self.alarm_topic,
                metrics_namespace=config.metrics_namespace,
                service_name=config.service_name,
            )
            for route in config.routes
        ]

        self.dashboard = monitoring.add_dashboard(
            self,
            config.stack_name,
            self.routes,
            monitoring.MetricNames(namespace=config.metrics_namespace, service=config.service_name),
        )
        self.queries = monitoring.add_queries(self, config.stack_name, [r.log_group for r in self.routes])
        self._outputs()

    def _alarm_topic(self) -> sns.Topic:
        # A customer managed key: CloudWatch cannot publish to a topic encrypted with the AWS managed
        # SNS key (its key policy cannot grant cloudwatch.amazonaws.com).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{self.config.stack_name}: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{self.config.stack_name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # The topic policy replaces SNS's default one, so say explicitly who may publish: this stack's
        # alarms (their names start with the stack name).
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=f"{self.config.stack_name}-*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        if self.config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(self.config.alarm_email))
        return topic

    def _outputs(self) -> None:
        # Each route writes its own outputs (SageMakerInvokerRoute); these are the stack's.
        values = {
            StackOutput.DASHBOARD_NAME: self.dashboard.dashboard_name,
            StackOutput.ALARM_TOPIC_ARN: self.alarm_topic.topic_arn,
        }
        for output, value in values.items():
            cdk.CfnOutput(self, output.value, value=value, description=STACK_OUTPUT_DESCRIPTIONS[output])

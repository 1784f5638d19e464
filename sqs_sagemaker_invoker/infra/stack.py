"""The invoker stack: every configured route, one alarm topic, one dashboard, saved log queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from sqs_sagemaker_invoker.infra import monitoring, suppressions
from sqs_sagemaker_invoker.infra.bundling import function_code
from sqs_sagemaker_invoker.infra.route import InvokerRoute
from sqs_sagemaker_invoker.infra.routes import output_prefix

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_
    from constructs import Construct

    from sqs_sagemaker_invoker.infra.routes import AppConfig


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

        codes: dict[str, lambda_.Code] = {}  # one asset per runtime, shared by the routes using it
        self.routes: list[InvokerRoute] = []
        for route in config.routes:
            code = codes.get(route.runtime)
            if code is None:
                code = codes[route.runtime] = function_code(route.runtime)
            self.routes.append(
                InvokerRoute(
                    self,
                    output_prefix(route.name),
                    route=route,
                    app_config=config,
                    code=code,
                    alarm_topic=self.alarm_topic,
                )
            )

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
        # Output ids are the contract of docs/design.md ("Stack outputs"); the CLI looks them up by name.
        for route in self.routes:
            cfg = route.route
            prefix = output_prefix(cfg.name)
            values: dict[str, tuple[str, str]] = {
                "EndpointName": (cfg.endpoint_name, "SageMaker endpoint the route invokes"),
                "RequestQueueUrl": (route.request_queue.queue_url, "send requests here"),
                "RequestQueueArn": (route.request_queue.queue_arn, "request queue ARN"),
                "DeadLetterQueueUrl": (route.dead_letter_queue.queue_url, "dead-lettered requests"),
            }
            if route.results_queue is not None:
                values["ResultsQueueUrl"] = (route.results_queue.queue_url, "results")
            if route.bucket is not None:
                values["ResultsBucketName"] = (route.bucket.bucket_name, "results bucket (results/)")
            if route.payload_s3_prefix is not None:
                values["PayloadS3Prefix"] = (route.payload_s3_prefix, "bodyS3Uri must start with this")
            values["FunctionName"] = (route.function.function_name, "invoker function")
            values["LogGroupName"] = (route.log_group.log_group_name, "the function's log group")
            for name, (value, what) in values.items():
                cdk.CfnOutput(
                    self,
                    f"{prefix}{name}",
                    value=value,
                    description=f"route={cfg.name}; {what}",
                )
        cdk.CfnOutput(
            self, "DashboardName", value=self.dashboard.dashboard_name, description="CloudWatch dashboard"
        )
        cdk.CfnOutput(
            self, "AlarmTopicArn", value=self.alarm_topic.topic_arn, description="SNS topic of the alarms"
        )

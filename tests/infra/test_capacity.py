"""Shared capacity and scaling: the capacity table, the function's grants and environment per capacity mode,
the endpoint's scalable target and policies, and the construct's capacity_table prop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms

from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.infra.construct_props import ScalingProps
from sqs_sagemaker_invoker.infra.route_construct import SageMakerInvokerRoute
from sqs_sagemaker_invoker.scaling import (
    BACKLOG_PER_INSTANCE_EXPRESSION,
    BACKLOG_WITHOUT_CAPACITY_EXPRESSION,
    FROM_ZERO_EVALUATION_PERIODS,
)
from tests.infra.test_stack import actions_on, arn, as_list, statements

if TYPE_CHECKING:
    from tests.infra.conftest import Synth

NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def sagemaker_arn(resource: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":sagemaker:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


def environment(synth: Synth, route: SageMakerInvokerRoute) -> dict[str, Any]:
    return synth.props(route.function)["Environment"]["Variables"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------ the table


def test_one_capacity_table_per_stack(two_routes: Synth) -> None:
    # GIVEN a stack of two shared routes
    tables = two_routes.resources("AWS::DynamoDB::Table")
    # THEN there is one table, on demand, keyed by the string pk, items expiring on expiresAt
    assert len(tables) == 1
    (logical_id, table) = next(iter(tables.items()))
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    # AND it is encrypted with DynamoDB's service-owned key (no KMS key to grant), the queues' decision
    assert props["SSESpecification"] == {"SSEEnabled": False}
    assert "KMSMasterKeyId" not in props["SSESpecification"]
    skipped = {s["id"] for s in table["Metadata"]["checkov"]["skip"]}
    assert skipped == {"CKV_AWS_119", "CKV_AWS_28"}
    # AND without point-in-time recovery, a decision acknowledged to cdk-nag with its reason
    assert "PointInTimeRecoverySpecification" not in props
    report = {r["pluginName"]: r for r in two_routes.report["pluginReports"]}["AwsSolutions"]
    pitr = [
        s for s in report["suppressedViolations"] if s["acknowledgedId"] == "AwsSolutions::AwsSolutions-DDB3"
    ]
    assert pitr
    assert all("nothing worth restoring" in s["reason"] for s in pitr)
    # AND it goes with the stack (nothing in it outlives the routes), as the queues do
    assert table["DeletionPolicy"] == "Delete"
    # AND each route names it with a key of its own
    keys = set()
    for route in two_routes.stack.routes:
        env = environment(two_routes, route)
        assert env["CAPACITY_TABLE"] == {"Ref": logical_id}
        keys.add(env["CAPACITY_KEY"])
    assert keys == {"SqsSageMakerInvoker/demo", "SqsSageMakerInvoker/bulk-scoring"}
    # AND its name is a stack output
    output = two_routes.json["Outputs"]["CapacityTableName"]
    assert output["Value"] == {"Ref": logical_id}


def test_per_instance_route_has_no_table_grant_or_capacity_environment(fifo: Synth) -> None:
    # GIVEN a stack whose only route limits calls per instance
    route = fifo.stack.routes[0]
    # THEN there is no table and no output for one
    assert fifo.resources("AWS::DynamoDB::Table") == {}
    assert "CapacityTableName" not in fifo.json["Outputs"]
    # AND the function neither reads capacity nor touches DynamoDB
    text = str(statements(fifo, route))
    assert "dynamodb:" not in text
    assert "sagemaker:Describe" not in text
    env = environment(fifo, route)
    assert env["CAPACITY_MODE"] == "per_instance"
    assert not {"CAPACITY_TABLE", "CAPACITY_KEY", "CONCURRENCY_PER_INSTANCE"} & set(env)


def test_mixed_stack_grants_each_route_its_own_item(scaled: Synth) -> None:
    variant, components, alone = scaled.stack.routes
    table = arn(scaled, variant.capacity_table)
    assert components.capacity_table is variant.capacity_table
    assert alone.capacity_table is None
    for route, key in ((variant, "ScaledInvoker/variant"), (components, "ScaledInvoker/components")):
        stmts = statements(scaled, route)
        # THEN exactly these item actions, on the table only, for the route's own key only
        on_table = [s for s in stmts if table in as_list(s["Resource"])]
        assert len(on_table) == 1
        assert on_table[0]["Resource"] == table
        # (the function reads its item, then writes it whole under a version check: no UpdateItem)
        assert set(as_list(on_table[0]["Action"])) == {"dynamodb:GetItem", "dynamodb:PutItem"}
        assert on_table[0]["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [key]}}
        assert environment(scaled, route)["CAPACITY_KEY"] == key
        assert not [a for s in stmts for a in as_list(s["Action"]) if a.startswith("kms:")]
    assert "dynamodb:" not in str(statements(scaled, alone))


def test_capacity_reading_is_scoped_to_the_endpoint_or_the_component(scaled: Synth) -> None:
    variant, components, _ = scaled.stack.routes
    # GIVEN a variant route: DescribeEndpoint on its endpoint's lower-case ARN only
    v_stmts = statements(scaled, variant)
    assert actions_on(v_stmts, sagemaker_arn("endpoint/variant-model")) == {
        "sagemaker:InvokeEndpoint",
        "sagemaker:DescribeEndpoint",
    }
    assert "DescribeInferenceComponent" not in str(v_stmts)
    assert environment(scaled, variant)["CAPACITY_VARIANT"] == "AllTraffic"
    # AND an inference component route: DescribeInferenceComponent on that component only
    c_stmts = statements(scaled, components)
    assert actions_on(c_stmts, sagemaker_arn("inference-component/ic-small")) == {
        "sagemaker:DescribeInferenceComponent"
    }
    assert "sagemaker:DescribeEndpoint" not in str(c_stmts)
    assert environment(scaled, components)["CAPACITY_INFERENCE_COMPONENT"] == "IC-Small"


# ------------------------------------------------------------------------------------------ scaling


def scaling_resources(synth: Synth, route: SageMakerInvokerRoute) -> dict[str, dict[str, Any]]:
    """The route's Application Auto Scaling resources, by logical id."""
    resources = synth.json["Resources"]
    ids = {
        str(synth.stack.resolve(synth.stack.get_logical_id(child)))
        for child in route.node.find_all()
        if isinstance(child, cdk.CfnResource)
    }
    return {
        k: v
        for k, v in resources.items()
        if k in ids and v["Type"].startswith("AWS::ApplicationAutoScaling::")
    }


def backlog_queries(
    synth: Synth, route: SageMakerInvokerRoute, service: str = "invoker"
) -> list[dict[str, Any]]:
    def stat(
        query_id: str, namespace: str, name: str, dims: list[dict[str, Any]], statistic: str
    ) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims},
                "Stat": statistic,
            },
            "ReturnData": False,
        }

    queue = [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.logical_id(route.request_queue), "QueueName"]}}
    ]
    return [
        stat("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum"),
        stat("inFlight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue, "Maximum"),
        stat(
            "capacity",
            "SqsSageMakerInvoker",
            "EndpointCapacity",
            [
                {"Name": "endpoint", "Value": route.config.endpoint_name},
                {"Name": "service", "Value": service},
            ],
            "Average",
        ),
    ]


def test_variant_scales_on_backlog_per_instance(scaled: Synth) -> None:
    # GIVEN the route whose variant scales between 1 and 6 instances at 40 messages per instance
    route = scaled.stack.routes[0]
    resources = scaling_resources(scaled, route)
    targets = {k: v for k, v in resources.items() if v["Type"].endswith("ScalableTarget")}
    policies = [v["Properties"] for v in resources.values() if v["Type"].endswith("ScalingPolicy")]
    # THEN one scalable target on the variant's instance count, using the service-linked role
    assert len(targets) == 1
    target_id, target = next(iter(targets.items()))
    assert target["Properties"] == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/Variant-Model/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 1,
        "MaxCapacity": 6,
        "Tags": [{"Key": "invoker:route", "Value": "variant"}],
    }
    # AND one target-tracking policy on the metric math, nothing that scales from zero
    assert len(policies) == 1
    assert policies[0]["PolicyType"] == "TargetTrackingScaling"
    assert policies[0]["ScalingTargetId"] == {"Ref": target_id}
    config = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 40
    assert config["ScaleOutCooldown"] == 120
    assert config["ScaleInCooldown"] == 600
    metrics = config["CustomizedMetricSpecification"]["Metrics"]
    assert metrics[0] == {
        "Id": "backlogPerInstance",
        "Expression": BACKLOG_PER_INSTANCE_EXPRESSION,
        "Label": "variant: messages waiting or in flight per instance",
        "ReturnData": True,
    }
    assert metrics[1:] == backlog_queries(scaled, route)
    alarm_names = [a["Properties"]["AlarmName"] for a in scaled.resources("AWS::CloudWatch::Alarm").values()]
    assert "ScaledInvoker-variant-backlog-without-capacity" not in alarm_names


def test_inference_component_scales_from_zero_on_an_alarm(scaled: Synth) -> None:
    # GIVEN the route whose inference component scales between 0 and 4 copies, 2 at a time from zero
    route = scaled.stack.routes[1]
    resources = scaling_resources(scaled, route)
    target_id, target = next((k, v) for k, v in resources.items() if v["Type"].endswith("ScalableTarget"))
    assert target["Properties"]["ResourceId"] == "inference-component/IC-Small"
    assert target["Properties"]["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (0, 4)
    by_type = {
        v["Properties"]["PolicyType"]: (k, v["Properties"])
        for k, v in resources.items()
        if v["Type"].endswith("ScalingPolicy")
    }
    assert set(by_type) == {"TargetTrackingScaling", "StepScaling"}
    tracking = by_type["TargetTrackingScaling"][1]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 25.5
    assert tracking["CustomizedMetricSpecification"]["Metrics"][1:] == backlog_queries(scaled, route)
    # THEN the step policy adds scaleFromZeroStep copies whenever its alarm fires
    step_id, step = by_type["StepScaling"]
    assert step["ScalingTargetId"] == {"Ref": target_id}
    assert step["PolicyName"] == "ScaledInvoker-components-scale-from-zero"
    assert step["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "Cooldown": 60,
        "MetricAggregationType": "Maximum",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}],
    }
    # AND the alarm fires on messages waiting with no capacity (the shared expression), for one period
    alarms = [
        a["Properties"]
        for a in scaled.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmActions") == [{"Ref": step_id}]
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["AlarmName"] == "ScaledInvoker-components-backlog-without-capacity"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["EvaluationPeriods"] == FROM_ZERO_EVALUATION_PERIODS
    assert alarm["TreatMissingData"] == "notBreaching"
    expression = [m for m in alarm["Metrics"] if "Expression" in m]
    assert [m["Expression"] for m in expression] == [BACKLOG_WITHOUT_CAPACITY_EXPRESSION]
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert set(stats) == {"visible", "inFlight", "capacity"}
    assert all(s["Period"] == 60 for s in stats.values())
    assert stats["capacity"]["Metric"]["MetricName"] == "EndpointCapacity"


def test_no_scaling_resources_without_scaling(standard: Synth, scaled: Synth) -> None:
    assert standard.resources("AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert standard.resources("AWS::ApplicationAutoScaling::ScalingPolicy") == {}
    assert scaling_resources(scaled, scaled.stack.routes[2]) == {}
    # AND in the mixed stack: two targets, three policies, no IAM role for Application Auto Scaling
    assert len(scaled.resources("AWS::ApplicationAutoScaling::ScalableTarget")) == 2
    assert len(scaled.resources("AWS::ApplicationAutoScaling::ScalingPolicy")) == 3
    assumed = str(
        [r["Properties"]["AssumeRolePolicyDocument"] for r in scaled.resources("AWS::IAM::Role").values()]
    )
    assert "application-autoscaling" not in assumed


def test_scaled_stack_is_nag_clean(scaled: Synth) -> None:
    report = {r["pluginName"]: r for r in scaled.report["pluginReports"]}["AwsSolutions"]
    assert report["conclusion"] == "success"
    assert report["violations"] == []


# ------------------------------------------------------------------------------------------ the construct


def test_construct_alone_creates_one_table_for_its_stack_or_takes_one_given() -> None:
    app = cdk.App(context=NO_BUNDLING)
    # GIVEN two routes in a stack of their own, without a table
    own = cdk.Stack(app, "Own")
    SageMakerInvokerRoute(own, "A", endpoint_name="a")
    SageMakerInvokerRoute(own, "B", endpoint_name="b")
    # AND a route given a table of the team's, encrypted with its own key
    theirs = cdk.Stack(app, "Theirs")
    key = kms.Key(theirs, "Key", enable_key_rotation=True)
    table = dynamodb.Table(
        theirs,
        "Budgets",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
    )
    given = SageMakerInvokerRoute(theirs, "C", endpoint_name="c", capacity_table=table)
    # THEN the first stack has one table and the second only its own
    own_template = assertions.Template.from_stack(own)
    own_template.resource_count_is("AWS::DynamoDB::Table", 1)
    assert "CapacityTableName" in own_template.to_json()["Outputs"]
    theirs_template = assertions.Template.from_stack(theirs)
    theirs_template.resource_count_is("AWS::DynamoDB::Table", 1)
    assert "CapacityTableName" not in theirs_template.to_json().get("Outputs", {})
    assert given.capacity_table is table
    # AND the given table's key is granted to the function (a customer key needs it)
    stmts = [
        s
        for p in theirs_template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    key_arn = {"Fn::GetAtt": [theirs.resolve(theirs.get_logical_id(key.node.default_child)), "Arn"]}  # type: ignore[arg-type]
    assert {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"} <= actions_on(stmts, key_arn)


def test_construct_takes_capacity_and_scaling_props() -> None:
    app = cdk.App(context=NO_BUNDLING)
    stack = cdk.Stack(app, "Props")
    route = SageMakerInvokerRoute(
        stack,
        "Scored",
        endpoint_name="scored",
        max_receive_count=12,
        inference_component_name="ic-1",
        concurrency_per_instance=2,
        capacity_refresh_seconds=5,
        scaling=ScalingProps(target_backlog_per_instance=10, min_capacity=0, max_capacity=3),
    )
    per_instance = SageMakerInvokerRoute(stack, "Alone", endpoint_name="alone", capacity_mode="per_instance")
    assert route.config.capacity.inference_component_name == "ic-1"
    assert route.config.scaling is not None
    assert (route.config.scaling.min_capacity, route.config.scaling.unit) == (0, "copies")
    assert route.scaling is not None
    assert route.scaling.from_zero is not None
    assert per_instance.capacity_table is None
    assert per_instance.scaling is None


@pytest.mark.parametrize(
    ("props", "message"),
    [
        pytest.param(
            {"scaling": {"target_backlog_per_instance": 5}},
            "SageMakerInvokerRoute Bad/R: capacity_variant_name: required with scaling",
            id="variant-missing",
        ),
        pytest.param(
            {
                "capacity_variant_name": "AllTraffic",
                "scaling": {"target_backlog_per_instance": 5, "min_capacity": 0},
            },
            "scaling.min_capacity: 0 instances is not allowed",
            id="zero-on-a-variant",
        ),
        pytest.param(
            {"capacity_mode": "per_instance", "scaling": ScalingProps(target_backlog_per_instance=5)},
            "scaling: needs capacity_mode shared",
            id="scaling-per-instance",
        ),
        pytest.param(
            {
                "inference_component_name": "ic",
                "scaling": {"target_backlog_per_instance": 5, "min_capacity": 0},
            },
            "scaling.provisioning_seconds: a message that finds no capacity waits at least 511 s",
            id="retries-too-short",
        ),
        pytest.param(
            {"capacity_mode": "per-instance"},
            "capacity_mode: must be one of shared, per_instance",
            id="mode-misspelt",
        ),
        pytest.param(
            {"scaling": {"target": 5}},
            "scaling: unknown keys target",
            id="scaling-unknown-key",
        ),
    ],
)
def test_construct_rejects_capacity_props_naming_them(props: dict[str, Any], message: str) -> None:
    stack = cdk.Stack(cdk.App(context=NO_BUNDLING), "Bad")
    with pytest.raises(RouteConfigError) as info:
        SageMakerInvokerRoute(stack, "R", endpoint_name="e", **props)
    assert message in str(info.value)
    assert str(info.value).startswith("SageMakerInvokerRoute Bad/R")


def test_capacity_table_with_a_per_instance_route_is_refused() -> None:
    stack = cdk.Stack(cdk.App(context=NO_BUNDLING), "Bad")
    table = dynamodb.Table(
        stack, "T", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
    )
    with pytest.raises(RouteConfigError, match="capacity_table is only used with capacity_mode shared"):
        SageMakerInvokerRoute(
            stack, "R", endpoint_name="e", capacity_mode="per_instance", capacity_table=table
        )


def test_dashboard_has_capacity_widgets_for_shared_routes_only(scaled: Synth) -> None:
    body = str(scaled.json["Resources"][scaled.logical_id(scaled.stack.dashboard)]["Properties"])
    assert body.count("EndpointCapacity") >= 2
    for title in ("variant: endpoint capacity", "components: endpoint capacity", "variant: route budget"):
        assert title in body
    assert "alone: endpoint capacity" not in body

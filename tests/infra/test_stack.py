"""Template assertions for a standard route, a FIFO route and a two-route stack."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import assertions

from sqs_sagemaker_invoker.infra.config import capacity_key, function_environment, queue_name
from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from tests.infra.conftest import FIFO_CONFIG, TWO_ROUTE_CONFIG

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.route_construct import SageMakerInvokerRoute
    from tests.infra.conftest import Synth

Match = assertions.Match
FOURTEEN_DAYS = 14 * 24 * 3600


def ref(synth: Synth, construct: Any) -> dict[str, str]:
    return {"Ref": synth.logical_id(construct)}


def arn(synth: Synth, construct: Any) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [synth.logical_id(construct), "Arn"]}


def statements(synth: Synth, route: SageMakerInvokerRoute) -> list[dict[str, Any]]:
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": synth.logical_id(route.role)} in p["Properties"]["Roles"]
    ]
    return [s for policy in policies for s in policy]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_on(stmts: list[dict[str, Any]], resource: Any) -> set[str]:
    return {
        a
        for s in stmts
        if s["Effect"] == "Allow" and resource in as_list(s["Resource"])
        for a in as_list(s["Action"])
    }


def expected_environment(synth: Synth, route: SageMakerInvokerRoute) -> dict[str, Any]:
    """sqs_sagemaker_invoker.infra.config.function_environment with the CloudFormation references the stack must use."""
    cfg = route.config
    config = synth.stack.config
    placeholders = {
        "@dlq": ref(synth, route.dead_letter_queue),
        "@dead-letter-bucket": ref(synth, route.dead_letter_bucket),
        "@results": ref(synth, route.results_queue) if route.results_queue else None,
        "@bucket": ref(synth, route.bucket) if route.bucket else None,
        "@payload": (
            {"Fn::Join": ["", ["s3://", ref(synth, route.bucket), "/requests/"]]}
            if route.bucket and cfg.large_payloads
            else None
        ),
        "@capacity-table": ref(synth, route.capacity_table) if route.capacity_table else None,
    }
    env = function_environment(
        cfg,
        dlq_url="@dlq",
        dead_letter_bucket="@dead-letter-bucket",
        results_queue_url="@results" if cfg.results.queue else None,
        results_bucket="@bucket" if cfg.results.bucket else None,
        payload_s3_prefix="@payload" if cfg.large_payloads else None,
        namespace=config.metrics_namespace,
        service=config.service_name,
        capacity_table="@capacity-table" if cfg.capacity.shared else None,
        capacity_key=capacity_key(synth.stack.stack_name, cfg.name) if cfg.capacity.shared else None,
    )
    return {k: placeholders.get(v, v) for k, v in env.items()}


# ------------------------------------------------------------------------------------ standard route


def test_standard_queues(standard: Synth) -> None:
    # GIVEN the committed cdk.json (route demo: standard queue, timeout 180 s, x6, maxReceiveCount 10)
    route = standard.stack.routes[0]
    cfg = route.config
    # THEN the request queue derives its visibility from the function timeout and redrives to the DLQ
    request = standard.props(route.request_queue)
    assert request["QueueName"] == "SqsSageMakerInvoker-demo-requests"
    assert request["VisibilityTimeout"] == 6 * 180 == cfg.visibility_timeout_seconds
    assert request["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert request["RedrivePolicy"] == {
        "deadLetterTargetArn": arn(standard, route.dead_letter_queue),
        "maxReceiveCount": 10,
    }
    assert request["SqsManagedSseEnabled"] is True
    assert "FifoQueue" not in request
    # AND the DLQ keeps messages 14 days, encrypted
    dlq = standard.props(route.dead_letter_queue)
    assert dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert dlq["SqsManagedSseEnabled"] is True
    assert "FifoQueue" not in dlq
    assert route.results_queue is not None
    assert standard.props(route.results_queue)["SqsManagedSseEnabled"] is True


def test_redrive_count_equals_function_max_receive_count(standard: Synth, fifo: Synth) -> None:
    for synth in (standard, fifo):
        route = synth.stack.routes[0]
        function = synth.props(route.function)
        redrive = synth.props(route.request_queue)["RedrivePolicy"]
        assert str(redrive["maxReceiveCount"]) == function["Environment"]["Variables"]["MAX_RECEIVE_COUNT"]


def test_every_queue_and_bucket_enforces_tls(standard: Synth, fifo: Synth, two_routes: Synth) -> None:
    for synth in (standard, fifo, two_routes):
        queues = synth.resources("AWS::SQS::Queue")
        policies = synth.resources("AWS::SQS::QueuePolicy").values()
        for logical_id in queues:
            denies = [
                s
                for p in policies
                if {"Ref": logical_id} in p["Properties"]["Queues"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]
                if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            ]
            assert denies, f"queue {logical_id} has no TLS-only policy"
            assert queues[logical_id]["Properties"]["SqsManagedSseEnabled"] is True
        for logical_id in synth.resources("AWS::S3::Bucket"):
            synth.template.has_resource_properties(
                "AWS::S3::BucketPolicy",
                {
                    "Bucket": {"Ref": logical_id},
                    "PolicyDocument": {
                        "Statement": Match.array_with(
                            [
                                Match.object_like(
                                    {
                                        "Effect": "Deny",
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    }
                                )
                            ]
                        )
                    },
                },
            )


def test_standard_results_bucket(standard: Synth) -> None:
    route = standard.stack.routes[0]
    assert route.bucket is not None
    resource = standard.json["Resources"][standard.logical_id(route.bucket)]
    props = resource["Properties"]
    # THEN it is encrypted, private, owner-enforced, retained, and expires results and payloads
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-results"]["Prefix"] == "results/"
    assert rules["expire-results"]["ExpirationInDays"] == 14
    assert rules["expire-request-payloads"]["Prefix"] == "requests/"
    assert rules["expire-request-payloads"]["ExpirationInDays"] == 15  # outlives the 14-day queue retention
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert resource["DeletionPolicy"] == "Retain"


def test_standard_function(standard: Synth) -> None:
    route = standard.stack.routes[0]
    props = standard.props(route.function)
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "invoker.handler.lambda_handler"
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 180
    assert props["LoggingConfig"] == {"LogGroup": ref(standard, route.log_group)}
    assert props.get("TracingConfig", {"Mode": "PassThrough"}) == {"Mode": "PassThrough"}
    assert props["Role"] == arn(standard, route.role)
    log_group = standard.props(route.log_group)
    assert log_group["RetentionInDays"] == 30


def test_function_environment_is_exactly_the_contract(
    standard: Synth, fifo: Synth, two_routes: Synth
) -> None:
    # GIVEN each stack shape
    for synth in (standard, fifo, two_routes):
        for route in synth.stack.routes:
            # THEN the deployed variables are function_environment's, with the stack's own references
            variables = synth.props(route.function)["Environment"]["Variables"]
            assert variables == expected_environment(synth, route), route.config.name


def test_standard_function_environment_values(standard: Synth) -> None:
    route = standard.stack.routes[0]
    variables = standard.props(route.function)["Environment"]["Variables"]
    assert variables["ENDPOINT_NAME"] == "demo-classifier"
    assert variables["DEAD_LETTER_QUEUE_URL"] == ref(standard, route.dead_letter_queue)
    assert variables["RESULTS_QUEUE_URL"] == ref(standard, route.results_queue)
    assert variables["RESULTS_BUCKET"] == ref(standard, route.bucket)
    assert variables["PAYLOAD_S3_PREFIX"] == {
        "Fn::Join": ["", ["s3://", ref(standard, route.bucket), "/requests/"]]
    }
    assert variables["POWERTOOLS_SERVICE_NAME"] == "invoker"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "SqsSageMakerInvoker"
    assert variables["MAX_RECEIVE_COUNT"] == "10"
    assert variables["READ_TIMEOUT_SECONDS"] == "70"


def test_standard_event_source_mapping(standard: Synth) -> None:
    route = standard.stack.routes[0]
    mappings = standard.resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1
    props = next(iter(mappings.values()))["Properties"]
    assert props["EventSourceArn"] == arn(standard, route.request_queue)
    assert props["FunctionName"] == ref(standard, route.function)
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert props["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert "MaximumBatchingWindowInSeconds" not in props
    assert "ProvisionedPollerConfig" not in props


def test_standard_iam_is_least_privilege(standard: Synth) -> None:
    route = standard.stack.routes[0]
    stmts = statements(standard, route)
    endpoint_arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":sagemaker:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":endpoint/demo-classifier",
            ],
        ]
    }
    bucket = arn(standard, route.bucket)
    # THEN each resource gets exactly the actions the function needs
    # (DescribeEndpoint: the shared capacity budget reads how many instances serve)
    assert actions_on(stmts, endpoint_arn) == {"sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"}
    # The route's own item of the capacity table only
    table = arn(standard, route.capacity_table)
    assert actions_on(stmts, table) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert [s["Condition"] for s in stmts if s["Resource"] == table] == [
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["SqsSageMakerInvoker/demo"]}}
    ]
    assert "sqs:ChangeMessageVisibility" in actions_on(stmts, arn(standard, route.request_queue))
    assert actions_on(stmts, arn(standard, route.request_queue)) == {
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
    }
    assert actions_on(stmts, arn(standard, route.dead_letter_queue)) == {"sqs:SendMessage"}
    assert actions_on(stmts, arn(standard, route.results_queue)) == {"sqs:SendMessage"}
    assert actions_on(stmts, {"Fn::Join": ["", [bucket, "/results/*"]]}) == {"s3:PutObject"}
    assert actions_on(stmts, {"Fn::Join": ["", [bucket, "/requests/*"]]}) == {"s3:GetObject"}
    # the results bucket doubles as the dead-letter bucket: put-object under its prefix only
    assert route.dead_letter_bucket is route.bucket
    assert actions_on(stmts, {"Fn::Join": ["", [bucket, "/dead-letters/*"]]}) == {"s3:PutObject"}
    assert actions_on(stmts, arn(standard, route.log_group)) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    # AND nothing else: no wildcard action, no Resource "*", no managed policy
    covered = [
        endpoint_arn,
        arn(standard, route.request_queue),
        arn(standard, route.dead_letter_queue),
        arn(standard, route.results_queue),
        {"Fn::Join": ["", [bucket, "/results/*"]]},
        {"Fn::Join": ["", [bucket, "/requests/*"]]},
        {"Fn::Join": ["", [bucket, "/dead-letters/*"]]},
        arn(standard, route.log_group),
        table,
    ]
    for s in stmts:
        assert s["Effect"] == "Allow"
        assert all("*" not in a for a in as_list(s["Action"])), s
        assert all(r in covered for r in as_list(s["Resource"])), s
    role = standard.props(route.role)
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }


def test_endpoint_arn_is_lowercase(fifo: Synth) -> None:
    # GIVEN endpoint "Orders-Model-V2": SageMaker endpoint ARNs are lowercase
    stmts = statements(fifo, fifo.stack.routes[0])
    resources = [json.dumps(s["Resource"]) for s in stmts if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert len(resources) == 1
    assert ":endpoint/orders-model-v2" in resources[0]
    assert "Orders-Model-V2" not in resources[0]


def test_standard_alarms(standard: Synth) -> None:
    route = standard.stack.routes[0]
    topic = ref(standard, standard.stack.alarm_topic)
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in standard.resources("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        "SqsSageMakerInvoker-demo-dead-letters",
        "SqsSageMakerInvoker-demo-oldest-request-age",
        "SqsSageMakerInvoker-demo-function-errors",
        "SqsSageMakerInvoker-demo-function-throttles",
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic]
        assert alarm["OKActions"] == [topic]
    dlq = alarms["SqsSageMakerInvoker-demo-dead-letters"]
    assert (dlq["Namespace"], dlq["MetricName"], dlq["Threshold"], dlq["ComparisonOperator"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        0,
        "GreaterThanThreshold",
    )
    assert dlq["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": {"Fn::GetAtt": [standard.logical_id(route.dead_letter_queue), "QueueName"]},
        }
    ]
    age = alarms["SqsSageMakerInvoker-demo-oldest-request-age"]
    assert (age["MetricName"], age["Threshold"]) == ("ApproximateAgeOfOldestMessage", 1800)
    assert age["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": [standard.logical_id(route.request_queue), "QueueName"]
    }
    errors = alarms["SqsSageMakerInvoker-demo-function-errors"]
    throttles = alarms["SqsSageMakerInvoker-demo-function-throttles"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert (throttles["Namespace"], throttles["MetricName"]) == ("AWS/Lambda", "Throttles")
    for alarm in (errors, throttles):
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": ref(standard, route.function)}]


def test_alarm_topic_is_encrypted_and_tls_only(standard: Synth) -> None:
    topic = standard.props(standard.stack.alarm_topic)
    key_ids = list(standard.resources("AWS::KMS::Key"))
    assert len(key_ids) == 1
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_ids[0], "Arn"]}
    key = standard.resources("AWS::KMS::Key")[key_ids[0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    key_statements = key["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and "kms:Decrypt" in s["Action"]
        for s in key_statements
    )
    policy = next(iter(standard.resources("AWS::SNS::TopicPolicy").values()))["Properties"]["PolicyDocument"]
    sids = {s.get("Sid"): s for s in policy["Statement"]}
    assert sids["AllowPublishThroughSSLOnly"]["Effect"] == "Deny"
    cloudwatch = sids["AllowThisStacksAlarms"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert "alarm:SqsSageMakerInvoker-*" in json.dumps(cloudwatch["Condition"]["ArnLike"])
    # No e-mail configured in cdk.json: no subscription
    assert standard.resources("AWS::SNS::Subscription") == {}


def dashboard_body(synth: Synth) -> str:
    dashboards = synth.resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    return json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])


def test_dashboard_graphs(standard: Synth) -> None:
    body = dashboard_body(standard)
    # Queue depth and age, DLQ depth
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
    ):
        assert metric in body
    # The function's EMF metrics, with the dimensions Powertools emits (endpoint + service)
    for metric in ("Invocations", "Succeeded", "Retried", "DeadLettered", "ConcurrencyLimit", "BatchSize"):
        assert re.search(
            rf'\[\\"SqsSageMakerInvoker\\",\\"{metric}\\",\\"endpoint\\",\\"demo-classifier\\",\\"service\\",\\"invoker\\"',
            body,
        ), metric
    for stat in ("p50", "p90", "p99"):
        assert f'\\"stat\\":\\"{stat}\\"' in body
    # Retried / dead-lettered by reason: SEARCH over the {endpoint, reason, service} series
    for metric in ("Retried", "DeadLettered"):
        expected = (
            f'SEARCH(\'{{\\\\\\"SqsSageMakerInvoker\\\\\\",endpoint,reason,service}} '
            f'MetricName=\\\\\\"{metric}\\\\\\"'
        )
        assert expected in body, metric
    # Lambda duration, concurrency, errors, throttles
    for metric in ("Duration", "ConcurrentExecutions", "Errors", "Throttles"):
        assert f'\\"AWS/Lambda\\",\\"{metric}\\"' in body, metric
    assert standard.props(standard.stack.dashboard)["DashboardName"] == "SqsSageMakerInvoker"


def test_saved_queries(standard: Synth, two_routes: Synth) -> None:
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in standard.resources("AWS::Logs::QueryDefinition").values()
    }
    assert set(queries) == {
        "SqsSageMakerInvoker/dead-letters-by-reason",
        "SqsSageMakerInvoker/slowest-requests",
        "SqsSageMakerInvoker/one-request",
    }
    dead = queries["SqsSageMakerInvoker/dead-letters-by-reason"]["QueryString"]
    assert 'filter disposition = "dead_letter"' in dead
    assert "by endpoint, reason" in dead
    slow = queries["SqsSageMakerInvoker/slowest-requests"]["QueryString"]
    assert "sort latency_ms desc" in slow
    one = queries["SqsSageMakerInvoker/one-request"]["QueryString"]
    assert 'request_id = "REPLACE-WITH-REQUEST-ID"' in one
    route = standard.stack.routes[0]
    for query in queries.values():
        assert query["LogGroupNames"] == [ref(standard, route.log_group)]
    # Two routes: every query covers both log groups
    for query in two_routes.resources("AWS::Logs::QueryDefinition").values():
        assert query["Properties"]["LogGroupNames"] == [
            ref(two_routes, r.log_group) for r in two_routes.stack.routes
        ]


ROUTE_OUTPUTS = (
    "EndpointName",
    "RequestQueueUrl",
    "RequestQueueArn",
    "DeadLetterQueueUrl",
    "FunctionName",
    "LogGroupName",
)


def test_standard_outputs(standard: Synth) -> None:
    outputs = standard.json["Outputs"]
    route = standard.stack.routes[0]
    expected = {f"RouteDemo{n}" for n in ROUTE_OUTPUTS} | {
        "RouteDemoResultsQueueUrl",
        "RouteDemoResultsBucketName",
        "RouteDemoPayloadS3Prefix",
        "DashboardName",
        "AlarmTopicArn",
        "CapacityTableName",
    }
    assert set(outputs) == expected
    assert outputs["RouteDemoEndpointName"]["Value"] == "demo-classifier"
    assert outputs["RouteDemoRequestQueueUrl"]["Value"] == ref(standard, route.request_queue)
    assert outputs["RouteDemoRequestQueueArn"]["Value"] == arn(standard, route.request_queue)
    assert outputs["RouteDemoDeadLetterQueueUrl"]["Value"] == ref(standard, route.dead_letter_queue)
    assert outputs["RouteDemoResultsQueueUrl"]["Value"] == ref(standard, route.results_queue)
    assert outputs["RouteDemoResultsBucketName"]["Value"] == ref(standard, route.bucket)
    assert outputs["RouteDemoFunctionName"]["Value"] == ref(standard, route.function)
    assert outputs["DashboardName"]["Value"] == ref(standard, standard.stack.dashboard)
    assert outputs["AlarmTopicArn"]["Value"] == ref(standard, standard.stack.alarm_topic)
    assert outputs["CapacityTableName"]["Value"] == ref(standard, route.capacity_table)
    for name, output in outputs.items():
        if name.startswith("Route"):
            assert output["Description"].startswith("route=demo;"), name


def test_tags(standard: Synth, fifo: Synth) -> None:
    standard.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Tags": Match.array_with(
                [
                    {"Key": "invoker:route", "Value": "demo"},
                    {"Key": "project", "Value": "sqs-sagemaker-invoker"},
                ]
            )
        },
    )
    fifo.template.has_resource_properties(
        "AWS::SQS::Queue", {"Tags": Match.array_with([{"Key": "team", "Value": "ml-platform"}])}
    )


def test_no_account_or_region_is_hard_coded(standard: Synth, fifo: Synth, two_routes: Synth) -> None:
    for synth in (standard, fifo, two_routes):
        text = json.dumps(synth.json)
        assert not re.search(r"(?<![0-9a-f])\d{12}(?![0-9a-f])", text)
        assert "us-east-1" not in text


# ----------------------------------------------------------------------------------------- FIFO route


def test_fifo_queues(fifo: Synth) -> None:
    route = fifo.stack.routes[0]
    request = fifo.props(route.request_queue)
    dlq = fifo.props(route.dead_letter_queue)
    # THEN the request queue and its DLQ are FIFO (a FIFO source needs a FIFO DLQ)
    assert request["FifoQueue"] is True
    assert dlq["FifoQueue"] is True
    assert request["QueueName"] == "OrderedInvoker-orders-requests.fifo"
    assert dlq["QueueName"] == "OrderedInvoker-orders-dlq.fifo"
    assert request["ContentBasedDeduplication"] is True
    assert request["DeduplicationScope"] == "messageGroup"
    assert request["FifoThroughputLimit"] == "perMessageGroupId"
    assert request["VisibilityTimeout"] == 8 * 300
    assert request["RedrivePolicy"]["maxReceiveCount"] == 5
    assert dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS
    # AND results go to the bucket only
    assert route.results_queue is None
    assert len(fifo.resources("AWS::SQS::Queue")) == 2


def test_fifo_event_source_mapping_uses_provisioned_pollers(fifo: Synth) -> None:
    props = next(iter(fifo.resources("AWS::Lambda::EventSourceMapping").values()))["Properties"]
    assert props["BatchSize"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ProvisionedPollerConfig"] == {"MinimumPollers": 2, "MaximumPollers": 40}
    assert "ScalingConfig" not in props
    assert "MaximumBatchingWindowInSeconds" not in props


def test_fifo_function(fifo: Synth) -> None:
    route = fifo.stack.routes[0]
    props = fifo.props(route.function)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == 1024
    assert props["Timeout"] == 300
    assert props["TracingConfig"] == {"Mode": "Active"}
    variables = props["Environment"]["Variables"]
    assert "RESULTS_QUEUE_URL" not in variables
    assert "PAYLOAD_S3_PREFIX" not in variables
    assert variables["RESULTS_BUCKET"] == ref(fifo, route.bucket)
    assert variables["RESULTS_MODE"] == "deliver"
    assert variables["ENABLE_TRACING"] == "true"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Ordered"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "ordered-invoker"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert fifo.props(route.log_group)["RetentionInDays"] == 90


def test_fifo_iam(fifo: Synth) -> None:
    route = fifo.stack.routes[0]
    stmts = statements(fifo, route)
    bucket = arn(fifo, route.bucket)
    assert actions_on(stmts, {"Fn::Join": ["", [bucket, "/results/*"]]}) == {"s3:PutObject"}
    # largePayloads is off: no read access to request payloads
    assert actions_on(stmts, {"Fn::Join": ["", [bucket, "/requests/*"]]}) == set()
    assert actions_on(stmts, arn(fifo, route.dead_letter_queue)) == {"sqs:SendMessage"}
    # Tracing: the two X-Ray actions are the only ones on Resource "*"
    assert actions_on(stmts, "*") == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_fifo_bucket_expiry_and_email(fifo: Synth) -> None:
    route = fifo.stack.routes[0]
    rules = fifo.props(route.bucket)["LifecycleConfiguration"]["Rules"]
    assert {r["Id"]: r.get("ExpirationInDays") for r in rules} == {
        "expire-results": 3,
        "abort-incomplete-uploads": None,
        "expire-dead-letter-bodies": 15,
    }
    fifo.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": ref(fifo, fifo.stack.alarm_topic)},
    )
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in fifo.resources("AWS::CloudWatch::Alarm").values()
    }
    assert alarms["OrderedInvoker-orders-oldest-request-age"]["Threshold"] == 600


def test_fifo_outputs(fifo: Synth) -> None:
    assert set(fifo.json["Outputs"]) == {f"RouteOrders{n}" for n in ROUTE_OUTPUTS} | {
        "RouteOrdersResultsBucketName",
        "DashboardName",
        "AlarmTopicArn",
    }


def test_fifo_dashboard_uses_configured_namespace_and_service(fifo: Synth) -> None:
    body = dashboard_body(fifo)
    assert (
        '\\"Ordered\\",\\"Invocations\\",\\"endpoint\\",\\"Orders-Model-V2\\",\\"service\\",\\"ordered-invoker\\"'
        in body
    )
    assert "SqsSageMakerInvoker" not in body


# ---------------------------------------------------------------------------------------- two routes


def test_two_routes_get_separate_resources(two_routes: Synth) -> None:
    demo, bulk = two_routes.stack.routes
    assert [r.config.name for r in (demo, bulk)] == ["demo", "bulk-scoring"]
    assert len(two_routes.resources("AWS::Lambda::Function")) == 2
    assert len(two_routes.resources("AWS::Lambda::EventSourceMapping")) == 2
    # demo: request, DLQ, results; bulk-scoring: request, DLQ (results discarded)
    assert len(two_routes.resources("AWS::SQS::Queue")) == 5
    # no results bucket: each route gets a dead-letter bucket of its own
    assert len(two_routes.resources("AWS::S3::Bucket")) == 2
    assert len(two_routes.resources("AWS::CloudWatch::Alarm")) == 8
    assert len(two_routes.resources("AWS::SNS::Topic")) == 1
    assert len(two_routes.resources("AWS::CloudWatch::Dashboard")) == 1


def test_a_route_without_results_bucket_gets_a_small_dead_letter_bucket(two_routes: Synth) -> None:
    # GIVEN a route with no results bucket
    demo = two_routes.stack.routes[0]
    # THEN its dead-letter bucket is encrypted, private, TLS-only, and expires bodies with their letters
    props = two_routes.props(demo.dead_letter_bucket)
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-dead-letter-bodies"]["Prefix"] == "dead-letters/"
    assert rules["expire-dead-letter-bodies"]["ExpirationInDays"] == 15  # the DLQ keeps letters 14 days
    # AND the function may only put objects under its prefix, and is told where
    stmts = statements(two_routes, demo)
    bucket = arn(two_routes, demo.dead_letter_bucket)
    assert actions_on(stmts, {"Fn::Join": ["", [bucket, "/dead-letters/*"]]}) == {"s3:PutObject"}
    variables = two_routes.props(demo.function)["Environment"]["Variables"]
    assert variables["DEAD_LETTER_BUCKET"] == ref(two_routes, demo.dead_letter_bucket)
    assert variables["DEAD_LETTER_PREFIX"] == "dead-letters/"


def test_two_routes_share_one_code_asset(two_routes: Synth) -> None:
    codes = [f["Properties"]["Code"] for f in two_routes.resources("AWS::Lambda::Function").values()]
    assert codes[0] == codes[1]


def test_batching_window_route(two_routes: Synth) -> None:
    bulk = two_routes.stack.routes[1]
    mapping = next(
        m["Properties"]
        for m in two_routes.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == ref(two_routes, bulk.function)
    )
    assert mapping["BatchSize"] == 100
    assert mapping["MaximumBatchingWindowInSeconds"] == 5
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 50}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = two_routes.props(bulk.function)["Environment"]["Variables"]
    assert variables["RESULTS_MODE"] == "discard"
    assert "RESULTS_QUEUE_URL" not in variables
    assert "RESULTS_BUCKET" not in variables


def test_each_route_role_reaches_only_its_own_resources(two_routes: Synth) -> None:
    demo, bulk = two_routes.stack.routes
    for mine, other in ((demo, bulk), (bulk, demo)):
        stmts = statements(two_routes, mine)
        text = json.dumps(stmts)
        for construct in (other.request_queue, other.dead_letter_queue, other.log_group, other.function):
            assert two_routes.logical_id(construct) not in text
        assert f":endpoint/{other.config.endpoint_name}" not in text
        assert f":endpoint/{mine.config.endpoint_name}" in text


def test_two_route_outputs(two_routes: Synth) -> None:
    outputs = two_routes.json["Outputs"]
    assert set(outputs) == (
        {f"RouteDemo{n}" for n in ROUTE_OUTPUTS}
        | {"RouteDemoResultsQueueUrl"}
        | {f"RouteBulkScoring{n}" for n in ROUTE_OUTPUTS}
        | {"DashboardName", "AlarmTopicArn", "CapacityTableName"}
    )
    for name, output in outputs.items():
        if name.startswith("RouteBulkScoring"):
            assert output["Description"].startswith("route=bulk-scoring;")


def test_two_route_dashboard_has_both_endpoints(two_routes: Synth) -> None:
    body = dashboard_body(two_routes)
    assert "demo-classifier" in body
    assert "bulk-scorer" in body


# ------------------------------------------------------------------------------------------- cdk-nag


def test_cdk_nag_finds_nothing_unacknowledged(standard: Synth, fifo: Synth, two_routes: Synth) -> None:
    for synth in (standard, fifo, two_routes):
        reports = {r["pluginName"]: r for r in synth.report["pluginReports"]}
        assert reports["AwsSolutions"]["conclusion"] == "success"
        assert reports["AwsSolutions"]["violations"] == []
        for suppressed in reports["AwsSolutions"]["suppressedViolations"]:
            # Every acknowledgment carries a specific reason (not a placeholder)
            assert len(suppressed["reason"]) > 60, suppressed


def test_acknowledgments_are_the_expected_ones(fifo: Synth) -> None:
    report = {r["pluginName"]: r for r in fifo.report["pluginReports"]}["AwsSolutions"]
    acknowledged = {s["acknowledgedId"] for s in report["suppressedViolations"]}
    bucket = fifo.logical_id(fifo.stack.routes[0].bucket)
    assert acknowledged == {
        "AwsSolutions::AwsSolutions-S1",
        "AwsSolutions::AwsSolutions-L1",
        f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket}.Arn>/results/*]",
        f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket}.Arn>/dead-letters/*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
    }


def test_queue_names_fit_sqs_limits() -> None:
    long_stack = "S" + "x" * 127
    names = {queue_name(long_stack, "r" * 31, kind, fifo=True) for kind in ("requests", "dlq", "results")}
    assert all(len(n) <= 80 and n.endswith(".fifo") for n in names)
    assert len(names) == 3
    # Two long stack names sharing a prefix still get different queue names
    assert queue_name(long_stack, "r", "dlq", fifo=False) != queue_name(
        long_stack[:-1] + "y", "r", "dlq", fifo=False
    )
    assert queue_name("Short", "demo", "requests", fifo=False) == "Short-demo-requests"


def test_fixture_configs_are_valid() -> None:
    for raw in (FIFO_CONFIG, TWO_ROUTE_CONFIG):
        load_app_config({"invoker": raw})


@pytest.mark.parametrize("shape", ["standard", "fifo", "two_routes"])
def test_templates_reference_only_their_own_log_groups(shape: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(shape)
    groups = synth.resources("AWS::Logs::LogGroup")
    assert len(groups) == len(synth.stack.routes)
    for group in groups.values():
        assert "LogGroupName" not in group["Properties"]  # generated: a redeploy after destroy cannot clash

"""The local stack's alarms are the deployed stack's: both are built from outputs_and_alarms.ALARMS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_sagemaker_invoker.infra.config_loader import load_app_config_file
from sqs_sagemaker_invoker.local.aws import ACCOUNT, REGION, RouteResources, client_kwargs, create_alarms
from sqs_sagemaker_invoker.local.stand_ins import MotoServer
from tests.infra.conftest import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from tests.infra.conftest import Synth

TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = MotoServer(mode="thread").start()
    try:
        yield server.url
    finally:
        server.stop()


def comparable(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """What an alarm decides and says; resource references differ by nature (tokens vs local names)."""
    return {
        "AlarmDescription": alarm["AlarmDescription"],
        "Namespace": alarm["Namespace"],
        "MetricName": alarm["MetricName"],
        "Dimensions": [d["Name"] for d in alarm["Dimensions"]],
        "Statistic": alarm["Statistic"],
        "Period": int(alarm["Period"]),
        "EvaluationPeriods": int(alarm["EvaluationPeriods"]),
        "DatapointsToAlarm": alarm.get("DatapointsToAlarm"),
        "Threshold": float(alarm["Threshold"]),
        "ComparisonOperator": alarm["ComparisonOperator"],
        "TreatMissingData": alarm["TreatMissingData"],
        "Actions": (len(alarm["AlarmActions"]), len(alarm["OKActions"])),
    }


def test_local_alarms_equal_the_synthesized_ones(standard: Synth, moto_url: str) -> None:
    # GIVEN cdk.json's route, synthesized by CDK, and the same route's resources in the local stack
    app = load_app_config_file(REPO / "cdk.json")
    route = app.routes[0]
    resources = RouteResources(
        route=route,
        function_name="local-demo-function",
        request_queue_url=f"{moto_url}/{ACCOUNT}/local-requests",
        request_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:local-requests",
        dead_letter_queue_url=f"{moto_url}/{ACCOUNT}/local-dlq",
        dead_letter_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:local-dlq",
        results_queue_url=None,
        results_bucket=None,
        payload_s3_prefix=None,
        dead_letter_bucket="local-dead-letters",
    )
    # WHEN the local stack creates its alarms in moto's CloudWatch
    names = create_alarms(app, resources, moto_url, TOPIC)
    cloudwatch = boto3.client("cloudwatch", **client_kwargs(moto_url))
    local = {
        a["AlarmName"]: comparable(a) for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    }
    synthesized = {
        r["Properties"]["AlarmName"]: comparable(r["Properties"])
        for r in standard.resources("AWS::CloudWatch::Alarm").values()
    }
    # THEN they are the same alarms, named, defined and described alike
    assert len(synthesized) == 4
    assert local == synthesized
    # AND each watches the local resource its metric names
    dimensions = {
        a["AlarmName"]: a["Dimensions"][0]["Value"]
        for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    }
    assert dimensions == {
        "SqsSageMakerInvoker-demo-dead-letters": "local-dlq",
        "SqsSageMakerInvoker-demo-oldest-request-age": "local-requests",
        "SqsSageMakerInvoker-demo-function-errors": "local-demo-function",
        "SqsSageMakerInvoker-demo-function-throttles": "local-demo-function",
    }

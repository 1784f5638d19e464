"""SageMakerInvokerRoute, the construct a team adds to its own CDK app (docs/construct.md)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from sqs_sagemaker_invoker.infra.config import RouteConfig, RouteConfigError
from sqs_sagemaker_invoker.infra.config_loader import parse_app_config
from sqs_sagemaker_invoker.infra.construct_props import route_config_from_props, route_props
from sqs_sagemaker_invoker.infra.route_construct import SageMakerInvokerRoute, kebab_case
from tests.infra.conftest import CDK_JSON, CONSTRUCT_EXAMPLE, FIFO_CONFIG, REPO, TWO_ROUTE_CONFIG

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

DOCS = REPO / "docs" / "construct.md"
NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


# Properties naming a resource in a namespace of the account and region (not a name inside a resource).
GLOBAL_NAMES = {
    "QueueName",
    "AlarmName",
    "BucketName",
    "FunctionName",
    "RoleName",
    "LogGroupName",
    "TopicName",
}


def physical_names(template: Mapping[str, Any]) -> set[str]:
    """Every account-wide name the template gives a resource itself (not left to CloudFormation)."""
    return {
        value
        for resource in template["Resources"].values()
        for key, value in resource.get("Properties", {}).items()
        if key in GLOBAL_NAMES and isinstance(value, str)
    }


def test_the_docs_show_the_example_file_that_the_tests_synthesize() -> None:
    # GIVEN docs/construct.md and the example app next to it
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    # THEN the docs' first Python block is that file, word for word (what readers copy is what is tested)
    assert blocks, "docs/construct.md has no Python block"
    assert blocks[0] == CONSTRUCT_EXAMPLE.read_text(encoding="utf-8")


def test_example_app_synthesizes_two_routes_nag_clean(construct_example: dict[str, Any]) -> None:
    # GIVEN the docs' example app synthesized with cdk-nag on (the fixture's synth raises on findings)
    template = construct_example
    # THEN both routes are there with their outputs, named after the host stack
    outputs = set(template["Outputs"])
    assert {"RouteOrdersRequestQueueUrl", "RouteBulkScoringRequestQueueUrl"} <= outputs
    assert "RouteOrdersResultsBucketName" in outputs
    assert "RouteOrdersResultsQueueUrl" not in outputs
    queues = {
        r["Properties"]["QueueName"] for r in template["Resources"].values() if r["Type"] == "AWS::SQS::Queue"
    }
    assert "ScoringService-orders-requests.fifo" in queues
    assert "ScoringService-bulk-scoring-requests" in queues
    mappings = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert sorted(m["BatchSize"] for m in mappings) == [10, 100]


def test_two_host_stacks_share_no_physical_name(tmp_path: Path) -> None:
    # GIVEN one app with two stacks that each add the same route
    app = cdk.App(context=NO_BUNDLING, outdir=str(tmp_path))
    stacks = [cdk.Stack(app, name) for name in ("TeamA", "TeamB")]
    for stack in stacks:
        SageMakerInvokerRoute(stack, "Orders", endpoint_name="orders-model", fifo=True)
    SageMakerInvokerRoute.add_nag_checks(app)
    # WHEN the app is synthesized
    app.synth()
    first, second = (physical_names(assertions.Template.from_stack(s).to_json()) for s in stacks)
    # THEN no queue or alarm name of one stack is a name of the other
    assert len(first) == len(second) == 7  # three queues, four alarms
    assert first.isdisjoint(second), first & second
    assert "TeamA-orders-requests.fifo" in first
    assert "TeamB-orders-requests.fifo" in second


def test_a_route_name_used_twice_in_one_stack_is_refused() -> None:
    # GIVEN a stack with a route named "orders" (from its id)
    stack = cdk.Stack(cdk.App(context=NO_BUNDLING), "Host")
    SageMakerInvokerRoute(stack, "Orders", endpoint_name="a")
    # WHEN another construct in the stack takes the same route name
    # THEN it is refused with a message naming the prop and the stack
    with pytest.raises(RouteConfigError, match="route_name 'orders' is already a route of stack Host"):
        SageMakerInvokerRoute(stack, "OrdersAgain", endpoint_name="b", route_name="orders")


def test_an_invalid_prop_is_refused_at_synth_in_the_props_spelling() -> None:
    # GIVEN a FIFO route with a batch too large for FIFO
    stack = cdk.Stack(cdk.App(context=NO_BUNDLING), "Host")
    # WHEN the construct is added
    # THEN the error names the construct and the prop as the caller wrote it (cdk.json's rule)
    with pytest.raises(RouteConfigError) as info:
        SageMakerInvokerRoute(stack, "Orders", endpoint_name="a", fifo=True, batch_size=11)
    assert str(info.value) == (
        "SageMakerInvokerRoute Host/Orders: batch_size: 11 is above 10, the limit for FIFO queues"
    )
    # AND nothing was added to the stack
    assert stack.node.try_find_child("Orders") is None


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"timeout_seconds": 60}, "timeout_seconds: 60 leaves no time for one endpoint call: it must be above "
         "read_timeout_seconds + deadline_margin_seconds"),
        ({"large_payloads": True}, "large_payloads: needs results_bucket true"),
        ({"provisioned_pollers": (5, 3)}, "provisioned_pollers[1]: 3 is below min 5"),
        ({"max_concurrency": 3, "provisioned_pollers": (2, 3)}, "max_concurrency: cannot be combined with provisioned_pollers"),
        ({"route_name": "Bad"}, "route_name: 'Bad' must be 1-31 chars"),
        ({"batch_size": "10"}, "batch_size: must be a whole number, got string '10'"),
        ({"endpont_name": "typo"}, "unknown props endpont_name"),
    ],
)  # fmt: skip
def test_props_are_checked_by_the_cdk_json_rules(props: dict[str, Any], message: str) -> None:
    # GIVEN keyword props that break one of cdk.json's rules
    # WHEN they are read
    with pytest.raises(RouteConfigError) as info:
        route_config_from_props("P", {"route_name": "r", "endpoint_name": "e", **props})
    # THEN the message names the props in Python spelling
    assert str(info.value).startswith(f"P: {message}"), str(info.value)


def test_keyword_defaults_are_the_route_defaults() -> None:
    # GIVEN the construct's keyword props and RouteConfig's defaults (what cdk.json's omitted keys mean)
    parameters = inspect.signature(SageMakerInvokerRoute.__init__).parameters
    defaults = RouteConfig(name="x", endpoint_name="x")
    # THEN every prop that is a route setting defaults to the same value
    for name, value in route_props(defaults).items():
        if name in {"route_name", "endpoint_name", "max_concurrency"}:
            continue  # required, derived from the id, or None meaning "2, or none with provisioned pollers"
        assert parameters[name].default == value, name
    assert parameters["max_concurrency"].default is None
    assert route_config_from_props("P", {"route_name": "x", "endpoint_name": "x"}) == defaults


@pytest.mark.parametrize("raw", [CDK_JSON["context"]["invoker"], FIFO_CONFIG, TWO_ROUTE_CONFIG])
def test_cdk_json_routes_pass_through_the_props_unchanged(raw: dict[str, Any]) -> None:
    # GIVEN the routes of a cdk.json configuration
    routes = parse_app_config(raw).routes
    # WHEN each becomes the construct's keyword props and is read back
    # THEN it is the same route (the cdk.json stack builds its routes through the construct)
    for route in routes:
        assert route_config_from_props("P", route_props(route)) == route
    # AND route_props covers every setting of RouteConfig
    covered = {
        "name",
        "endpoint_name",
        "results",
        "provisioned_pollers",
        "architecture",
        "capacity",
        "scaling",
    }
    assert {f.name for f in dataclasses.fields(RouteConfig)} - covered <= set(route_props(routes[0]))


def test_default_route_name_is_the_id_in_kebab_case() -> None:
    assert [kebab_case(i) for i in ("Orders", "BulkScoring", "Model2Scoring")] == [
        "orders",
        "bulk-scoring",
        "model2-scoring",
    ]

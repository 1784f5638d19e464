"""The request ledger in the stack: one table per stack for the routes that enable it, each route's
function scoped to its own items, its environment and output; a route without it gets none of that."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from invoker.contract import Env

from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.infra.construct_props import route_config_from_props
from tests.infra.conftest import Synth, synth

if TYPE_CHECKING:
    from pathlib import Path

LEDGER_CONFIG: dict[str, Any] = {
    "stackName": "LedgerInvoker",
    "routes": [
        {"name": "scoring", "endpointName": "scorer", "ledger": {"enabled": True, "dedupeSeconds": 3600}},
        {"name": "batch", "endpointName": "batcher", "ledger": {"enabled": True, "expireDays": 7}},
        {"name": "plain", "endpointName": "plain-model"},
    ],
}
# Per-instance capacity: the ledger is what these tests look at, and it needs no capacity table.
for _route in LEDGER_CONFIG["routes"]:
    _route["capacity"] = {"mode": "perInstance"}
_UNUSED: dict[str, Any] = {
    "routes": [],
}


@pytest.fixture(scope="module")
def ledger_stack(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    out: Path = tmp_path_factory.mktemp("ledger")
    return synth(LEDGER_CONFIG, out)


def _function_env(shape: Synth, route: str) -> dict[str, Any]:
    [function] = [
        r for r in shape.resources("AWS::Lambda::Function").values()
        if f"route {route}," in r["Properties"].get("Description", "")
    ]  # fmt: skip
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def _policy_statements(shape: Synth, route: str) -> list[dict[str, Any]]:
    prefix = {"scoring": "RouteScoring", "batch": "RouteBatch", "plain": "RoutePlain"}[route]
    policies = [p for k, p in shape.resources("AWS::IAM::Policy").items() if k.startswith(prefix)]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_one_on_demand_encrypted_table_with_ttl_for_the_whole_stack(ledger_stack: Synth) -> None:
    # GIVEN two routes with the ledger and one without WHEN synthesized THEN there is one table
    tables = ledger_stack.resources("AWS::DynamoDB::Table")
    assert len(tables) == 1
    [table] = tables.values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    # encrypted at rest with DynamoDB's own key (the default: no SSESpecification asks for KMS)
    assert props.get("SSESpecification", {}).get("SSEEnabled") in (None, False)
    assert table["DeletionPolicy"] == "Delete"


def test_each_ledger_route_gets_its_settings_and_only_its_own_items(ledger_stack: Synth) -> None:
    [table_id] = ledger_stack.resources("AWS::DynamoDB::Table")
    for route, dedupe, expire in (("scoring", "3600", "30"), ("batch", "86400", "7")):
        env = _function_env(ledger_stack, route)
        assert env[Env.LEDGER_TABLE] == {"Ref": table_id}
        assert env[Env.LEDGER_KEY_PREFIX] == f"{route}/"
        assert env[Env.LEDGER_DEDUPE_SECONDS] == dedupe
        assert env[Env.LEDGER_EXPIRE_DAYS] == expire
        [statement] = [
            s for s in _policy_statements(ledger_stack, route) if s.get("Sid") == "WriteOwnLedgerItems"
        ]
        assert sorted(statement["Action"]) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        assert statement["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{route}/*"]}}


def test_a_route_without_the_ledger_pays_nothing(ledger_stack: Synth) -> None:
    env = _function_env(ledger_stack, "plain")
    assert not [name for name in env if name.startswith("LEDGER_")]
    statements = _policy_statements(ledger_stack, "plain")
    assert not [s for s in statements if "dynamodb" in str(s.get("Action"))]
    outputs = ledger_stack.json["Outputs"]
    assert "RoutePlainLedgerTableName" not in outputs
    assert outputs["RouteScoringLedgerTableName"]["Description"].startswith("route=scoring;")


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        ({"enabled": "yes"}, "routes[0].ledger.enabled: must be true or false"),
        ({"dedupeSeconds": -1}, "routes[0].ledger.dedupeSeconds: -1 is below 0"),
        ({"expireDays": 0}, "routes[0].ledger.expireDays: 0 is below 1"),
        ({"dedupeSeconds": 8 * 86_400, "expireDays": 7}, "routes[0].ledger.dedupeSeconds: 691200 outlasts"),
        ({"enable": True}, "routes[0].ledger"),
    ],
)
def test_ledger_settings_are_checked_naming_the_setting(ledger: dict[str, Any], message: str) -> None:
    config = {"routes": [{"name": "demo", "endpointName": "demo-classifier", "ledger": ledger}]}
    with pytest.raises(RouteConfigError) as refused:
        load_app_config({"invoker": config})
    assert str(refused.value).startswith(message)


def test_the_construct_takes_the_ledger_as_props() -> None:
    route = route_config_from_props(
        "P", {"route_name": "x", "endpoint_name": "e", "ledger": True, "ledger_expire_days": 9}
    )
    assert route.ledger.enabled
    assert route.ledger.expire_days == 9
    with pytest.raises(RouteConfigError, match="P: ledger_expire_days: 0 is below 1"):
        route_config_from_props("P", {"route_name": "x", "endpoint_name": "e", "ledger_expire_days": 0})

"""Fixtures of the `invoker` CLI tests: the routes' resources on the session's moto server (created by the
local package, as the local stack creates them), an outputs.json in a temporary state directory, and a
fault-injecting proxy in front of moto when a test asks for one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from sqs_sagemaker_invoker.infra.config_loader import parse_app_config
from sqs_sagemaker_invoker.local.aws import create_route_resources
from tests.support.cli_stack import DEMO_ROUTE, STACK_NAME, CliStack, FaultProxy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sqs_sagemaker_invoker.local.stand_ins import MotoServer


@pytest.fixture
def make_cli_stack(moto: MotoServer, tmp_path: Path) -> Iterator[Callable[..., CliStack]]:
    """`make(routes=[...], proxy=False)`: fresh moto state, the routes' resources, an outputs.json."""
    proxies: list[FaultProxy] = []

    def make(routes: list[dict[str, Any]] | None = None, *, proxy: bool = False) -> CliStack:
        moto.reset()
        config = parse_app_config({"stackName": STACK_NAME, "routes": routes or [DEMO_ROUTE]})
        resources = {route.name: create_route_resources(config, route, moto.url) for route in config.routes}
        fault_proxy = FaultProxy(moto.url).start() if proxy else None
        if fault_proxy is not None:
            proxies.append(fault_proxy)
        outputs: dict[str, str] = {}
        for item in resources.values():
            outputs.update(item.outputs())
        outputs["DashboardName"] = STACK_NAME
        outputs["AwsEndpointUrl"] = fault_proxy.url if fault_proxy is not None else moto.url
        state_dir = tmp_path / ".local-stack"
        state_dir.mkdir(exist_ok=True)
        (state_dir / "outputs.json").write_text(json.dumps(outputs, indent=2), encoding="utf-8")
        return CliStack(moto.url, state_dir, config, resources, outputs, fault_proxy)

    try:
        yield make
    finally:
        for each in proxies:
            each.stop()


@pytest.fixture
def cli_stack(make_cli_stack: Callable[..., CliStack]) -> CliStack:
    return make_cli_stack()

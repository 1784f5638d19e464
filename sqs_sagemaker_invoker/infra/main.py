"""Builds the app from its context; shared by app.py and the tests so both synthesize the same thing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqs_sagemaker_invoker.infra import nag
from sqs_sagemaker_invoker.infra.capacity_metrics import check_deployable_scaling
from sqs_sagemaker_invoker.infra.config import CONTEXT_KEY
from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.infra.stack import InvokerStack

if TYPE_CHECKING:
    import aws_cdk as cdk


def build_stack(app: cdk.App, env: cdk.Environment | None = None) -> InvokerStack:
    """Validate the `invoker` context (raises RouteConfigError) and add the stack and cdk-nag."""
    config = load_app_config({CONTEXT_KEY: app.node.try_get_context(CONTEXT_KEY)})
    for i, route in enumerate(config.routes):
        check_deployable_scaling(route, f"routes[{i}]")
    stack = InvokerStack(app, "Invoker", config=config, env=env)
    nag.add_checks(app)
    return stack

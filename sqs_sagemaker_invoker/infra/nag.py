"""cdk-nag (v3) wiring: AwsSolutions checks on the whole app, acknowledgments with their reasons."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

if TYPE_CHECKING:
    from constructs import IConstruct


def add_checks(app: IConstruct) -> None:
    # Validation plugins run at synth; an unacknowledged finding makes synth fail.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))


def acknowledge(scope: IConstruct, rule: str, reason: str, *, finding: str | None = None) -> None:
    """Acknowledge AwsSolutions-<rule> for scope and its children, with a reason specific to it.

    Granular rules (IAM5) report one finding per wildcard, e.g. "Resource::<BucketLogicalId.Arn>/x/*";
    pass it as `finding` so only that wildcard is accepted, not every future one.
    """
    rule_id = f"AwsSolutions::AwsSolutions-{rule}" + (f"[{finding}]" if finding else "")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def arn_reference(resource: IConstruct) -> str:
    """How cdk-nag spells a resource's Arn attribute in findings: "<LogicalId.Arn>"."""
    stack = cdk.Stack.of(resource)
    default_child = resource.node.default_child
    if not isinstance(default_child, cdk.CfnElement):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource")
    return f"<{stack.resolve(stack.get_logical_id(default_child))}.Arn>"

#!/usr/bin/env python3
"""CDK entry point (cdk.json runs it with the project venv: `.venv/bin/python app.py`).

Configuration: cdk.json's context key `invoker` (override with `-c invoker='{...}'`), see
docs/deploying.md. Synth needs no AWS credentials: the account and region come from the CDK CLI's
CDK_DEFAULT_* variables when it has them, otherwise the stack is environment-agnostic.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from sqs_sagemaker_invoker.infra.config import RouteConfigError
from sqs_sagemaker_invoker.infra.main import build_stack


def main() -> None:
    app = cdk.App()
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    try:
        build_stack(app, env=env)
    except RouteConfigError as exc:
        print(f"Invalid configuration in cdk.json (context.invoker): {exc}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()

"""The rehearsal's shared pieces: its configuration, the cdk CLI runner, the AWS clients and small readers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from sqs_sagemaker_invoker.infra.bundling import export_requirements
from sqs_sagemaker_invoker.infra.config_loader import load_app_config, load_app_config_file

if TYPE_CHECKING:
    from sqs_sagemaker_invoker.infra.config import (
        AppConfig,
    )

REPO = Path(__file__).resolve().parents[2]

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
STACK_NAME = "InvokerRehearsal"
ARTIFACT = "Invoker"  # the stack's construct id: cloud assembly file names
FIFO_ROUTE: dict[str, Any] = {
    "name": "ordered",
    "endpointName": "Demo-Ordered",  # mixed case: the IAM resource must be the lowercase ARN
    "fifo": True,
    "batchSize": 5,
    "provisionedPollers": {"min": 2, "max": 20},
    "maxReceiveCount": 4,
    "timeoutSeconds": 120,
    "visibilityTimeoutMultiplier": 7,
    "results": {"queue": True, "bucket": False},
    "tracing": True,
    # Each instance limits itself: no grant on the capacity table, no capacity environment.
    "capacity": {"mode": "perInstance"},
}
# An inference component that scales from zero: the scalable target, both policies and the alarm.
SCALED_ROUTE: dict[str, Any] = {
    "name": "scaled",
    "endpointName": "demo-components",
    "maxReceiveCount": 12,  # its waits (1411 s) outlast detection + provisioning (720 s)
    "capacity": {"inferenceComponentName": "Demo-IC"},
    "scaling": {"minCapacity": 0, "maxCapacity": 3, "targetBacklogPerInstance": 20},
}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


class CommandFailed(RuntimeError):
    pass


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def equal(self, what: str, actual: object, expected: object) -> None:
        if actual == expected:
            self.passed += 1
            return
        self.failures.append(f"{what}: expected {expected!r}, got {actual!r}")
        print(f"  MISMATCH {what}\n    expected {expected!r}\n    actual   {actual!r}", flush=True)

    def true(self, what: str, condition: bool, detail: object = None) -> None:
        if condition:
            self.passed += 1
            return
        self.failures.append(what if detail is None else f"{what}: {detail!r}")
        print(f"  MISMATCH {what} {'' if detail is None else repr(detail)}", flush=True)


def log(message: str) -> None:
    print(f"[deploy-rehearsal {time.strftime('%H:%M:%S')}] {message}", flush=True)


def rehearsal_config() -> tuple[dict[str, Any], AppConfig]:
    load_app_config_file(REPO / "cdk.json")  # the committed configuration must be valid as it is
    raw = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]["invoker"]
    # No stack tags: moto's CloudFormation cannot create a tagged KMS key (it expects TagKey/TagValue).
    raw = {**raw, "stackName": STACK_NAME, "tags": {}, "routes": [*raw["routes"], FIFO_ROUTE, SCALED_ROUTE]}
    return raw, load_app_config({"invoker": raw})


def cdk_environment(endpoint: str, scratch: Path) -> dict[str, str]:
    # Never let a real profile, role, token or config file near the rehearsal.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_"))}
    empty = scratch / "aws-config"
    empty.write_text("", encoding="utf-8")
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's dummy credentials
        AWS_SESSION_TOKEN="testing",  # noqa: S106
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_ENDPOINT_URL=endpoint,
        # The CLI builds the template URL that CloudFormation fetches from this one.
        AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION=endpoint.replace("127.0.0.1", "localhost"),
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        CDK_DISABLE_VERSION_CHECK="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
        NODE_NO_WARNINGS="1",
    )
    return env


def cdk(args: list[str], env: dict[str, str], cwd: Path = REPO, timeout: int = 900) -> None:
    cli = REPO / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        raise CommandFailed("node_modules/.bin/cdk is missing: run `npm ci` first")
    shown = " ".join(a if len(a) < 70 else a[:67] + "..." for a in args)
    log(f"$ cdk {shown}")
    started = time.monotonic()
    # Own process group: if the rehearsal is interrupted, the CLI and the app it runs die with it.
    process = subprocess.Popen(
        [str(cli), *args, "--no-notices"],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if done.returncode != 0 or os.environ.get("REHEARSAL_VERBOSE"):
        sys.stdout.write(done.stdout[-12000:])
        sys.stdout.write(done.stderr[-12000:])
    if done.returncode != 0:
        raise CommandFailed(f"cdk {args[0]} failed with exit status {done.returncode}")
    log(f"  cdk {args[0]} ok in {time.monotonic() - started:.1f} s")


def locked_versions() -> dict[str, str]:
    # The same export the bundling's pins come from: the deployed zip must hold exactly these versions.
    exported = export_requirements(REPO)
    versions: dict[str, str] = {}
    for line in exported.splitlines():
        requirement = line.split(";")[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==")
            versions[normalize(name)] = version
    return versions


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Aws:
    def __init__(self, endpoint: str) -> None:
        kwargs: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.cfn = boto3.client("cloudformation", **kwargs)
        self.sqs = boto3.client("sqs", **kwargs)
        self.lam = boto3.client("lambda", **kwargs)
        self.iam = boto3.client("iam", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.autoscaling = boto3.client("application-autoscaling", **kwargs)


def stack_resources(aws: Aws) -> dict[str, tuple[str, str]]:
    """Logical id -> (type, physical id) of what moto's CloudFormation created."""
    out: dict[str, tuple[str, str]] = {}
    for page in aws.cfn.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME):
        for r in page["StackResourceSummaries"]:
            out[r["LogicalResourceId"]] = (r["ResourceType"], r.get("PhysicalResourceId", ""))
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(aws: Aws, role_name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for name in aws.iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document: Any = aws.iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements.extend(document["Statement"])
    return statements


def grants(statements: list[dict[str, Any]], service_prefix: str) -> set[tuple[str, str]]:
    """(action, resource) pairs of one service's Allow statements."""
    return {
        (action, resource)
        for s in statements
        if s.get("Effect") == "Allow"
        for action in as_list(s["Action"])
        if action.startswith(service_prefix)
        for resource in as_list(s["Resource"])
    }


@dataclass(frozen=True)
class Queues:
    request: str
    dlq: str
    results: str | None

    def arns(self) -> set[str]:
        return {self.request, self.dlq} | ({self.results} if self.results else set())


def actions_on(statements: list[dict[str, Any]], resource: str) -> set[str]:
    return {
        action
        for s in statements
        if s.get("Effect") == "Allow" and resource in as_list(s.get("Resource", []))
        for action in as_list(s.get("Action", []))
    }

"""Deploy rehearsal: the real CDK app bootstrapped, deployed and destroyed against a local moto server.

Run it through `scripts/deploy-rehearsal` (`make deploy-rehearsal`). Needs the project venv and the
pinned CDK CLI (`npm ci`); no AWS account, no Docker, no traffic beyond 127.0.0.1 (except the package
index when the uv cache lacks the function's wheels).

It deploys cdk.json's routes plus a FIFO route (so both queue shapes go through CloudFormation) with
the real asset bundling, then checks through the AWS APIs that what exists is what the configuration
says: queues, their encryption and redrive policy; the event source mapping (ReportBatchItemFailures,
batch size, concurrency); the function (runtime, handler, timeout, memory, environment exactly as
sqs_sagemaker_invoker.infra.routes.function_environment produces it); its IAM policy (least privilege); the deployed code
(its zip holds functions/invoker and exactly the dependency versions of uv.lock). Then `cdk destroy`
and a check that the stack and its queues are gone. Exit status 1 on any mismatch.

moto's CloudFormation skips some resource types (alarms, queue/bucket/topic policies, saved queries)
and bucket lifecycle/public-access settings; the rehearsal lists what it skipped, and tests/infra
asserts those properties on the template.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqs_sagemaker_invoker.infra.routes import (  # noqa: E402
    DEAD_LETTERS_PREFIX,
    REQUESTS_PREFIX,
    RESULTS_PREFIX,
    AppConfig,
    RouteConfig,
    function_environment,
    load_app_config,
    load_app_config_file,
    payload_s3_prefix,
    queue_name,
)
from sqs_sagemaker_invoker.local.stand_ins import MotoServer  # noqa: E402

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
    raw = {**raw, "stackName": STACK_NAME, "tags": {}, "routes": [*raw["routes"], FIFO_ROUTE]}
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
    uv = subprocess.run(
        [str(REPO / "scripts" / "ensure-uv")], capture_output=True, text=True, check=True
    ).stdout.strip()
    exported = subprocess.run(
        [
            uv, "export", "--frozen", "--no-default-groups", "--no-emit-project",
            "--no-hashes", "--no-header", "--no-annotate",
        ],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
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


class Rehearsal:
    def __init__(self, aws: Aws, template: dict[str, Any], checks: Checks) -> None:
        self.aws = aws
        self.template = template
        self.check = checks
        self.created = stack_resources(aws)

    def physical(self, logical_prefix: str, type_: str) -> list[str]:
        # CDK logical ids are the construct path plus a hash: "RouteDemo" + "RequestQueue" + "4E34..."
        return [
            pid
            for lid, (t, pid) in self.created.items()
            if t == type_ and re.fullmatch(rf"{logical_prefix}[0-9A-F]{{8}}", lid)
        ]

    def one(self, route: RouteConfig, construct: str, type_: str) -> str | None:
        found = self.physical(f"{route.output_prefix}{construct}", type_)
        self.check.equal(f"{route.name}: {construct} resources", len(found), 1)
        return found[0] if found else None

    def skipped_types(self) -> list[str]:
        created = set(self.created)
        return sorted({r["Type"] for lid, r in self.template["Resources"].items() if lid not in created})

    def queue(self, route: RouteConfig, construct: str, kind: str) -> tuple[str, dict[str, str]] | None:
        """(CloudFormation's queue URL, the queue's attributes), after checking the common settings."""
        url = self.one(route, construct, "AWS::SQS::Queue")
        if url is None:
            return None
        expected_name = queue_name(STACK_NAME, route.name, kind, fifo=route.fifo)
        self.check.equal(f"{route.name}: {construct} name", url.rsplit("/", 1)[-1], expected_name)
        # The URL CloudFormation hands out uses the real SQS host name; ask moto by name instead.
        local_url = self.aws.sqs.get_queue_url(QueueName=expected_name)["QueueUrl"]
        response = self.aws.sqs.get_queue_attributes(QueueUrl=local_url, AttributeNames=["All"])
        attrs: dict[str, str] = {str(k): v for k, v in response["Attributes"].items()}
        fifo = "true" if route.fifo else "false"
        self.check.equal(f"{expected_name} FifoQueue", attrs.get("FifoQueue", "false"), fifo)
        self.check.equal(f"{expected_name} retention", attrs["MessageRetentionPeriod"], str(14 * 86400))
        self.check.equal(f"{expected_name} SqsManagedSseEnabled", attrs.get("SqsManagedSseEnabled"), "true")
        return url, attrs

    def route(self, route: RouteConfig, config: AppConfig, locked: dict[str, str]) -> None:
        log(f"checking route {route.name} ({'FIFO' if route.fifo else 'standard'})")
        request = self.queue(route, "RequestQueue", "requests")
        dlq = self.queue(route, "DeadLetterQueue", "dlq")
        results = self.queue(route, "ResultsQueue", "results") if route.results.queue else None
        if request is None or dlq is None or (route.results.queue and results is None):
            return
        self.check.equal(
            f"{route.name}: request queue visibility timeout",
            request[1]["VisibilityTimeout"],
            str(route.visibility_timeout_seconds),
        )
        self.check.equal(
            f"{route.name}: redrive",
            json.loads(request[1].get("RedrivePolicy", "{}")),
            {"deadLetterTargetArn": dlq[1]["QueueArn"], "maxReceiveCount": route.max_receive_count},
        )
        bucket = self.one(route, "ResultsBucket", "AWS::S3::Bucket") if route.results.bucket else None
        if bucket is not None:
            encryption = self.aws.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
            algorithms = [
                r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in encryption["Rules"]
            ]
            self.check.equal(f"{route.name}: bucket encryption", algorithms, ["AES256"])
        # The results bucket doubles as the dead-letter bucket; without one the route has its own.
        dead_letter_bucket = bucket or self.one(route, "DeadLetterBucket", "AWS::S3::Bucket")
        function_name = self.one(route, "Function", "AWS::Lambda::Function")
        if function_name is None or dead_letter_bucket is None:
            return
        conf = self.aws.lam.get_function(FunctionName=function_name)["Configuration"]
        self.check.equal(f"{route.name}: runtime", conf["Runtime"], route.runtime)
        self.check.equal(f"{route.name}: handler", conf["Handler"], "invoker.handler.lambda_handler")
        self.check.equal(f"{route.name}: timeout", conf["Timeout"], route.timeout_seconds)
        self.check.equal(f"{route.name}: memory", conf["MemorySize"], route.memory_mb)
        expected_environment = function_environment(
            route,
            dlq_url=dlq[0],
            dead_letter_bucket=dead_letter_bucket,
            results_queue_url=results[0] if results else None,
            results_bucket=bucket,
            payload_s3_prefix=payload_s3_prefix(bucket) if bucket and route.large_payloads else None,
            namespace=config.metrics_namespace,
            service=config.service_name,
        )
        self.check.equal(
            f"{route.name}: function environment",
            conf.get("Environment", {}).get("Variables"),
            expected_environment,
        )
        self.code(route, conf["CodeSha256"], locked)
        self.mapping(route, function_name, request[1]["QueueArn"])
        queues = Queues(
            request[1]["QueueArn"], dlq[1]["QueueArn"], results[1]["QueueArn"] if results else None
        )
        self.iam(route, conf["Role"].rsplit("/", 1)[-1], queues, bucket, dead_letter_bucket)

    def mapping(self, route: RouteConfig, function_name: str, request_arn: str) -> None:
        check = self.check
        mappings = self.aws.lam.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
        check.equal(f"{route.name}: event source mappings", len(mappings), 1)
        for esm in mappings:
            check.equal(f"{route.name}: ESM source", esm["EventSourceArn"], request_arn)
            check.equal(
                f"{route.name}: ESM FunctionResponseTypes",
                esm.get("FunctionResponseTypes"),
                ["ReportBatchItemFailures"],
            )
            check.equal(f"{route.name}: ESM batch size", esm.get("BatchSize"), route.batch_size)
            check.equal(
                f"{route.name}: ESM batching window",
                esm.get("MaximumBatchingWindowInSeconds", 0),
                route.max_batching_window_seconds,
            )
            if route.provisioned_pollers is not None:
                check.equal(
                    f"{route.name}: ESM provisioned pollers",
                    esm.get("ProvisionedPollerConfig"),
                    {
                        "MinimumPollers": route.provisioned_pollers.minimum,
                        "MaximumPollers": route.provisioned_pollers.maximum,
                    },
                )
                check.true(f"{route.name}: no ScalingConfig with pollers", "ScalingConfig" not in esm, esm)
            else:
                check.equal(
                    f"{route.name}: ESM maximum concurrency",
                    esm.get("ScalingConfig"),
                    {"MaximumConcurrency": route.max_concurrency},
                )

    def iam(
        self, route: RouteConfig, role_name: str, queues: Queues, bucket: str | None, dead_letter_bucket: str
    ) -> None:
        check = self.check
        statements = role_statements(self.aws, role_name)
        attached = self.aws.iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
        check.equal(f"{route.name}: managed policies on the role", attached, [])
        endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{route.endpoint_name.lower()}"
        check.equal(
            f"{route.name}: SageMaker permissions",
            grants(statements, "sagemaker:"),
            {("sagemaker:InvokeEndpoint", endpoint_arn)},
        )
        sqs_resources = {resource for _, resource in grants(statements, "sqs:")}
        check.true(
            f"{route.name}: SQS actions only on its own queues", sqs_resources <= queues.arns(), sqs_resources
        )
        check.true(
            f"{route.name}: ChangeMessageVisibility on the request queue",
            "sqs:ChangeMessageVisibility" in actions_on(statements, queues.request),
        )
        check.true(
            f"{route.name}: no SendMessage to the request queue",
            "sqs:SendMessage" not in actions_on(statements, queues.request),
        )
        check.equal(
            f"{route.name}: actions on the DLQ", actions_on(statements, queues.dlq), {"sqs:SendMessage"}
        )
        if queues.results:
            check.equal(
                f"{route.name}: actions on the results queue",
                actions_on(statements, queues.results),
                {"sqs:SendMessage"},
            )
        expected_s3 = {("s3:PutObject", f"arn:aws:s3:::{dead_letter_bucket}/{DEAD_LETTERS_PREFIX}*")}
        if bucket:
            expected_s3.add(("s3:PutObject", f"arn:aws:s3:::{bucket}/{RESULTS_PREFIX}*"))
            if route.large_payloads:
                expected_s3.add(("s3:GetObject", f"arn:aws:s3:::{bucket}/{REQUESTS_PREFIX}*"))
        check.equal(f"{route.name}: S3 permissions", grants(statements, "s3:"), expected_s3)
        wildcard_actions = {a for s in statements for a in as_list(s["Action"]) if "*" in a}
        check.equal(f"{route.name}: wildcard actions", wildcard_actions, set())
        on_star = {a for s in statements if "*" in as_list(s["Resource"]) for a in as_list(s["Action"])}
        check.equal(
            f"{route.name}: actions on Resource '*'", on_star, XRAY_ACTIONS if route.tracing else set()
        )

    def code(self, route: RouteConfig, code_sha256: str, locked: dict[str, str]) -> None:
        """The zip Lambda runs is the bundle: functions/invoker plus exactly the locked versions."""
        s3_key = next(
            r["Properties"]["Code"]["S3Key"]
            for lid, r in self.template["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function" and lid.startswith(f"{route.output_prefix}Function")
        )
        bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
        data = self.aws.s3.get_object(Bucket=bucket, Key=s3_key)["Body"].read()
        self.check.equal(
            f"{route.name}: deployed code is the published asset",
            code_sha256,
            base64.b64encode(hashlib.sha256(data).digest()).decode(),
        )
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
        self.check.true(f"{route.name}: code holds invoker/handler.py", "invoker/handler.py" in names)
        installed = {
            normalize(m.group(1)): m.group(2)
            for n in names
            if (m := re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", n))
        }
        self.check.equal(f"{route.name}: bundled dependency versions (uv.lock)", installed, locked)
        self.check.true(
            f"{route.name}: no bytecode in the bundle", not any(n.endswith(".pyc") for n in names)
        )


def run() -> int:
    raw_config, config = rehearsal_config()
    locked = locked_versions()
    checks = Checks()
    started = time.monotonic()
    # moto logs every request and every resource type its CloudFormation skips (listed once below).
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
    server = MotoServer(mode="thread").start()
    try:
        endpoint = server.url
        log(f"moto server on {endpoint}")
        with tempfile.TemporaryDirectory(prefix="deploy-rehearsal-") as scratch_dir:
            scratch = Path(scratch_dir)
            env = cdk_environment(endpoint, scratch)
            assembly = scratch / "cdk.out"
            # From an empty directory: with cdk.json in reach the CLI would synthesize the app first.
            cdk(["bootstrap", f"aws://{ACCOUNT}/{REGION}"], env, cwd=scratch)
            context = ["-c", "invoker=" + json.dumps(raw_config, separators=(",", ":"))]
            cdk(["deploy", "--require-approval", "never", "--output", str(assembly), *context], env)
            aws = Aws(endpoint)
            status = aws.cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
            checks.equal("stack status", status, "CREATE_COMPLETE")
            template = json.loads((assembly / f"{ARTIFACT}.template.json").read_text(encoding="utf-8"))
            rehearsal = Rehearsal(aws, template, checks)
            log(
                "not created by moto's CloudFormation (asserted in tests/infra): "
                + ", ".join(rehearsal.skipped_types())
            )
            for route in config.routes:
                rehearsal.route(route, config, locked)
            # Destroy exactly the deployed assembly (no second synth).
            cdk(["destroy", "--force", "--all", "--app", str(assembly)], env, cwd=scratch)
            alive = [
                s["StackStatus"]
                for s in aws.cfn.list_stacks()["StackSummaries"]
                if s["StackName"] == STACK_NAME
            ]
            checks.true("stack deleted by cdk destroy", all(s == "DELETE_COMPLETE" for s in alive), alive)
            left = aws.sqs.list_queues(QueueNamePrefix=STACK_NAME).get("QueueUrls", [])
            checks.equal("queues left after destroy", left, [])
    except (CommandFailed, subprocess.SubprocessError) as exc:
        checks.failures.append(str(exc))
    finally:
        server.stop()
        log("moto server stopped")
    elapsed = time.monotonic() - started
    if checks.failures:
        log(f"FAILED: {len(checks.failures)} mismatch(es), {checks.passed} checks passed, {elapsed:.0f} s")
        for failure in checks.failures:
            print(f"  - {failure}")
        return 1
    log(f"OK: {checks.passed} checks passed in {elapsed:.0f} s")
    return 0


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM as an exception: `finally` stops the moto server, subprocess.run kills a running cdk.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run())

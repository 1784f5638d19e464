"""What the rehearsal checks of each deployed route, through the AWS APIs."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import re
import zipfile
from typing import Any

from scripts.deploy_rehearsal.harness import (
    ACCOUNT,
    REGION,
    STACK_NAME,
    XRAY_ACTIONS,
    Aws,
    Checks,
    Queues,
    actions_on,
    as_list,
    grants,
    log,
    normalize,
    role_statements,
    stack_resources,
)
from sqs_sagemaker_invoker.infra.config import (
    DEAD_LETTERS_PREFIX,
    REQUESTS_PREFIX,
    RESULTS_PREFIX,
    AppConfig,
    RouteConfig,
    capacity_key,
    function_environment,
    payload_s3_prefix,
    queue_name,
)


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

    @functools.cached_property
    def capacity_table(self) -> str | None:
        """The stack's capacity table (its shared routes' budgets), after checking its settings."""
        found = [
            pid
            for lid, (t, pid) in self.created.items()
            if t == "AWS::DynamoDB::Table" and re.fullmatch(r"CapacityTable[0-9A-F]{8}", lid)
        ]
        self.check.equal("capacity tables", len(found), 1)
        if not found:
            return None
        table = self.aws.dynamodb.describe_table(TableName=found[0])["Table"]
        self.check.equal(
            "capacity table key", table["KeySchema"], [{"AttributeName": "pk", "KeyType": "HASH"}]
        )
        self.check.equal(
            "capacity table billing",
            table.get("BillingModeSummary", {}).get("BillingMode"),
            "PAY_PER_REQUEST",
        )
        ttl = self.aws.dynamodb.describe_time_to_live(TableName=found[0])["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") == "DISABLED" and "AttributeName" not in ttl:
            # moto 5.2's CloudFormation creates the table without applying TimeToLiveSpecification (its
            # UpdateTimeToLive API works); the template's TTL is asserted in tests/infra/test_capacity.py.
            log(
                "capacity table TTL: not checked, moto's CloudFormation does not apply TimeToLiveSpecification"
            )
        else:
            self.check.equal("capacity table TTL attribute", ttl.get("AttributeName"), "expiresAt")
        return str(found[0])

    def scaling(self, route: RouteConfig) -> None:
        """The scalable target and policies Application Auto Scaling holds for a scaled route."""
        policy = route.scaling
        if policy is None:
            return
        missing = sorted(
            {
                r["Type"]
                for lid, r in self.template["Resources"].items()
                if r["Type"].startswith("AWS::ApplicationAutoScaling::")
                and lid.startswith(route.output_prefix)
                and lid not in self.created
            }
        )
        if missing:
            log(
                f"{route.name}: scaling not checked, moto's CloudFormation did not create {', '.join(missing)}"
            )
            return
        component = route.capacity.inference_component_name
        resource_id = (
            f"inference-component/{component}"
            if component
            else f"endpoint/{route.endpoint_name}/variant/{route.capacity.variant_name}"
        )
        targets = self.aws.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[resource_id]
        )["ScalableTargets"]
        self.check.equal(
            f"{route.name}: scalable target min/max",
            [(t["MinCapacity"], t["MaxCapacity"]) for t in targets],
            [(policy.min_capacity, policy.max_capacity)],
        )
        policies = self.aws.autoscaling.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=resource_id
        )["ScalingPolicies"]
        self.check.equal(
            f"{route.name}: scaling policies",
            sorted(p["PolicyType"] for p in policies),
            sorted(["TargetTrackingScaling"] + (["StepScaling"] if policy.scales_from_zero else [])),
        )

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
            capacity_table=self.capacity_table if route.capacity.shared else None,
            capacity_key=capacity_key(STACK_NAME, route.name) if route.capacity.shared else None,
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
        self.scaling(route)

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
        expected_sagemaker = {("sagemaker:InvokeEndpoint", endpoint_arn)}
        component = route.capacity.inference_component_name
        if route.capacity.shared and component:
            component_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/{component.lower()}"
            expected_sagemaker.add(("sagemaker:DescribeInferenceComponent", component_arn))
        elif route.capacity.shared:
            expected_sagemaker.add(("sagemaker:DescribeEndpoint", endpoint_arn))
        check.equal(
            f"{route.name}: SageMaker permissions", grants(statements, "sagemaker:"), expected_sagemaker
        )
        table = self.capacity_table if route.capacity.shared else None
        table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
        check.equal(
            f"{route.name}: DynamoDB permissions",
            grants(statements, "dynamodb:"),
            {(a, table_arn) for a in ("dynamodb:GetItem", "dynamodb:PutItem")} if table else set(),
        )
        if table:
            check.equal(
                f"{route.name}: DynamoDB only on its own item",
                [s.get("Condition") for s in statements if table_arn in as_list(s["Resource"])],
                [
                    {
                        "ForAllValues:StringEquals": {
                            "dynamodb:LeadingKeys": [capacity_key(STACK_NAME, route.name)]
                        }
                    }
                ],
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

"""The local stack: moto, the SageMaker Runtime emulator, each route's resources and its event source mapping.

Every process it starts is stopped by ``stop()`` (also when ``start()`` fails half-way), in the reverse
order of starting: event source slots and their workers first, so no handler is left calling a stopped
service.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3

from sqs_sagemaker_invoker.infra.config_loader import load_app_config
from sqs_sagemaker_invoker.infra.dashboard import DashboardRoute, dashboard_body
from sqs_sagemaker_invoker.infra.outputs_and_alarms import StackOutput
from sqs_sagemaker_invoker.local import jobs as local_jobs
from sqs_sagemaker_invoker.local.autoscaler import DEFAULT_TICK_S, LocalAutoscaler
from sqs_sagemaker_invoker.local.aws import (
    ACCOUNT,
    CREDENTIALS,
    REGION,
    RouteResources,
    client_kwargs,
    create_alarms,
    create_capacity_table,
    create_route_resources,
    needs_capacity_table,
)
from sqs_sagemaker_invoker.local.context import read_context, with_route_overrides
from sqs_sagemaker_invoker.local.esm import EventSourceEmulator, EventSourceSpec
from sqs_sagemaker_invoker.local.ledger_table import create_ledger_table
from sqs_sagemaker_invoker.local.stand_ins import MotoServer
from sqs_sagemaker_invoker.local.telemetry import TelemetryShipper
from sqs_sagemaker_invoker.local.worker import FunctionSpec
from sqs_sagemaker_invoker.project import find_project_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sqs import SQSClient

    from sqs_sagemaker_invoker.infra.config import AppConfig, RouteConfig
    from sqs_sagemaker_invoker.local.esm import BatchReport
    from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec, SageMakerEmulator

log = logging.getLogger(__name__)

# The project whose cdk.json, functions/ and .local-stack/ the stack uses: from the working directory
# upwards (or --project-dir); else the source checkout this module runs from, when run uninstalled.
ROOT = find_project_dir() or Path(__file__).resolve().parents[2]
STATE_DIR_NAME = ".local-stack"


@dataclass
class StackOptions:
    """How the local stack differs from a deployment; every default behaves like the deployed stack."""

    context: Mapping[str, Any] | None = None  # a cdk.json "context" object; default: the repo's cdk.json
    route_overrides: Mapping[str, Any] = field(default_factory=dict)
    endpoints: Mapping[str, EndpointSpec] = field(default_factory=dict)  # by endpoint name
    default_container: Literal["sklearn", "echo", "inline"] = "sklearn"
    startup_delay_s: float = 0.0
    handler: str = "invoker.handler.lambda_handler"
    code_root: Path = ROOT / "functions"
    context_timeout_s: float | None = None  # the invocations' time budget (default: timeoutSeconds)
    max_slots: int | None = None  # cap on concurrent batches per route (each one a worker process)
    moto_mode: Literal["process", "thread"] = "process"
    state_dir: Path | None = ROOT / STATE_DIR_NAME  # outputs.json and logs/; None writes nothing
    echo_logs: bool = False
    start_event_sources: bool = True
    on_batch: Callable[[BatchReport], None] | None = None
    # Loaded before the first invocation is timed: a cold start on a busy 2-core laptop can take seconds.
    prewarm: bool = False
    # Routes with `scaling`: their endpoint follows the backlog (local Application Auto Scaling).
    autoscale: bool = True
    autoscale_tick_s: float = DEFAULT_TICK_S


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        context = (
            self.options.context if self.options.context is not None else read_context(ROOT / "cdk.json")
        )
        if self.options.route_overrides:
            context = with_route_overrides(context, self.options.route_overrides)
        self.app: AppConfig = load_app_config(context)
        self.region = REGION
        self.moto = MotoServer(mode=self.options.moto_mode)
        self.emulator: SageMakerEmulator | None = None
        self.telemetry: TelemetryShipper | None = None
        self.esm: EventSourceEmulator | None = None
        self.autoscalers: dict[str, LocalAutoscaler] = {}
        self.routes: dict[str, RouteResources] = {}
        self.capacity_table: str | None = None
        self.ledger_table: str | None = None
        self.jobs: dict[str, local_jobs.JobResources] = {}  # routes with jobs.enabled
        self.outputs: dict[str, str] = {}
        self._exit = contextlib.ExitStack()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from sqs_sagemaker_invoker.local.sagemaker import SageMakerEmulator  # noqa: PLC0415 - the other half of the stack

        self.moto.launch()  # its start-up overlaps the emulator's and the model containers'
        self._exit.callback(self.moto.stop)
        self.emulator = SageMakerEmulator(
            self.endpoint_specs(),
            host="127.0.0.1",
            port=0,
            access_key=CREDENTIALS[0],
            secret_key=CREDENTIALS[1],
            # Model container logs next to the function's (kept after stop when there is a state dir).
            log_dir=self.options.state_dir / "sagemaker" if self.options.state_dir is not None else None,
        )
        self._exit.enter_context(self.emulator)
        self.moto.wait_started()
        if needs_capacity_table(self.app):
            self.capacity_table = create_capacity_table(self.app, self.moto.url)
        self.ledger_table = create_ledger_table(self.app, self.moto.url)
        for route in self.app.routes:
            self.routes[route.name] = create_route_resources(
                self.app,
                route,
                self.moto.url,
                capacity_table=self.capacity_table,
                ledger_table=self.ledger_table,
            )
        self.jobs = local_jobs.create_all_job_resources(self)
        self._create_stack_resources()
        mirror = self.options.state_dir / "logs" if self.options.state_dir is not None else None
        if mirror is not None:
            for resources in self.routes.values():
                # A fresh file per run: the mirror appends.
                (mirror / f"{resources.function_name}.log").unlink(missing_ok=True)
        self.telemetry = TelemetryShipper(
            endpoint_url=self.moto.url, region=self.region, mirror_dir=mirror, echo=self.options.echo_logs
        ).start()
        self._exit.callback(self.telemetry.stop)
        self._exit.callback(self.telemetry.flush)
        self.esm = EventSourceEmulator(
            [
                *(self.event_source_spec(route) for route in self.app.routes),
                *local_jobs.job_event_sources(self),
            ],
            endpoint_url=self.moto.url,
            region=self.region,
            credentials=CREDENTIALS,
            log_sink=self.telemetry,
            on_batch=self.options.on_batch,
            prewarm=self.options.prewarm,
        )
        if self.options.start_event_sources:
            self.esm.start()
            self._exit.callback(self.esm.stop)
        if self.options.autoscale:
            self._start_autoscalers()
        self.outputs = self._outputs()
        if self.options.state_dir is not None:
            self.options.state_dir.mkdir(parents=True, exist_ok=True)
            path = self.options.state_dir / "outputs.json"
            path.write_text(json.dumps(self.outputs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            self._exit.callback(path.unlink, missing_ok=True)

    def stop(self) -> None:
        self._exit.close()

    def _start_autoscalers(self) -> None:
        assert self.emulator is not None
        for route in self.app.routes:
            if route.scaling is None:
                continue
            scaler = LocalAutoscaler(
                route=route.name,
                endpoint=route.endpoint_name,
                policy=route.scaling,
                sqs=self.sqs(),
                queue_url=self.routes[route.name].request_queue_url,
                emulator=self.emulator,
                tick_s=self.options.autoscale_tick_s,
            ).start()
            self.autoscalers[route.name] = scaler
            # Stopped before the event sources and the emulator it scales.
            self._exit.callback(scaler.stop)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration ----------------------------------------------------------------------------

    def endpoint_specs(self) -> list[EndpointSpec]:

        specs: dict[str, EndpointSpec] = {}
        for route in self.app.routes:
            name = route.endpoint_name
            if name in specs:
                continue  # two routes may share one endpoint
            specs[name] = self.options.endpoints.get(name) or self._default_endpoint(route)
        return list(specs.values())

    def _default_endpoint(self, route: RouteConfig) -> EndpointSpec:
        from sqs_sagemaker_invoker.local.sagemaker import EndpointSpec  # noqa: PLC0415

        spec = EndpointSpec(
            name=route.endpoint_name,
            container=self.options.default_container,
            startup_delay_s=self.options.startup_delay_s,
        )
        if route.scaling is None:
            return spec
        # A scaled endpoint starts at the policy's minimum, in the policy's unit, each instance (copy)
        # taking what the route's capacity settings say it takes.
        return dataclasses.replace(
            spec,
            instances=route.scaling.min_capacity,
            capacity_unit=route.scaling.unit,
            concurrency_per_instance=route.capacity.concurrency_per_instance,
        )

    def function_spec(self, route: RouteConfig) -> FunctionSpec:
        resources = self.routes[route.name]
        assert self.emulator is not None
        environment = resources.environment(self.app)
        environment.update(self.service_environment())
        if route.capacity.shared:
            # The shared budget: its item in moto's DynamoDB, the endpoint's capacity from the emulator
            # (DescribeEndpoint / DescribeInferenceComponent on the `sagemaker` control plane).
            environment["AWS_ENDPOINT_URL_DYNAMODB"] = self.moto.url
            environment["AWS_ENDPOINT_URL_SAGEMAKER"] = self.emulator.url
        return FunctionSpec(
            name=resources.function_name,
            environment=environment,
            timeout_s=route.timeout_seconds,
            handler=self.options.handler,
            code_root=self.options.code_root,
            memory_mb=route.memory_mb,
            region=self.region,
            account=ACCOUNT,
            runtime=route.runtime,
        )

    def service_environment(self) -> dict[str, str]:
        """What makes an unmodified boto3 program talk to this stack (the function's extra variables)."""
        assert self.emulator is not None
        return {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ENDPOINT_URL_SQS": self.moto.url,
            "AWS_ENDPOINT_URL_S3": self.moto.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH": self.moto.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.moto.url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.moto.url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.emulator.url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS[0],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
        }

    def event_source_spec(self, route: RouteConfig) -> EventSourceSpec:
        resources = self.routes[route.name]
        if route.max_concurrency is not None:
            slots = route.max_concurrency
        else:
            # Provisioned pollers: each poller feeds invocations; the minimum is what is always there.
            assert route.provisioned_pollers is not None
            slots = route.provisioned_pollers.minimum
        if self.options.max_slots is not None:
            slots = min(slots, self.options.max_slots)
        return EventSourceSpec(
            name=route.name,
            queue_url=resources.request_queue_url,
            queue_arn=resources.request_queue_arn,
            function=self.function_spec(route),
            batch_size=route.batch_size,
            batching_window_s=route.max_batching_window_seconds,
            max_concurrency=slots,
            report_batch_item_failures=True,
            context_timeout_s=self.options.context_timeout_s,
        )

    def _create_stack_resources(self) -> None:
        sns = boto3.client("sns", **client_kwargs(self.moto.url))
        self.alarm_topic_arn = sns.create_topic(Name=f"{self.app.stack_name}-alarms")["TopicArn"]
        if self.app.alarm_email:
            sns.subscribe(TopicArn=self.alarm_topic_arn, Protocol="email", Endpoint=self.app.alarm_email)
        for resources in self.routes.values():
            create_alarms(self.app, resources, self.moto.url, self.alarm_topic_arn)
        self.dashboard_name = self.app.stack_name
        self.cloudwatch().put_dashboard(
            DashboardName=self.dashboard_name, DashboardBody=json.dumps(self.dashboard_body())
        )

    def dashboard_body(self) -> dict[str, Any]:
        """The deployed stack's dashboard (the same code builds it), with this stack's names."""
        return dashboard_body(
            [
                DashboardRoute(
                    route=resources.route,
                    # The queue name is the URL's last segment (SQS's own rule).
                    request_queue_name=resources.request_queue_url.rsplit("/", 1)[-1],
                    dead_letter_queue_name=resources.dead_letter_queue_url.rsplit("/", 1)[-1],
                    function_name=resources.function_name,
                )
                for resources in self.routes.values()
            ],
            namespace=self.app.metrics_namespace,
            service=self.app.service_name,
            region=self.region,
        )

    def _outputs(self) -> dict[str, str]:
        assert self.emulator is not None
        outputs: dict[str, str] = {}
        for resources in self.routes.values():
            outputs.update(resources.outputs())
        outputs.update(local_jobs.job_outputs(self))
        outputs[StackOutput.DASHBOARD_NAME] = self.dashboard_name
        outputs[StackOutput.ALARM_TOPIC_ARN] = self.alarm_topic_arn
        if self.capacity_table is not None:
            # The deployed stack's output of that name (only with a shared-capacity route).
            outputs["CapacityTableName"] = self.capacity_table
        outputs["AwsEndpointUrl"] = self.moto.url
        outputs["SageMakerRuntimeUrl"] = self.emulator.url
        return outputs

    # -- access -----------------------------------------------------------------------------------

    def route(self, name: str | None = None) -> RouteResources:
        if name is None:
            return next(iter(self.routes.values()))
        return self.routes[name]

    def sqs(self) -> SQSClient:
        return boto3.client("sqs", **client_kwargs(self.moto.url))

    def s3(self) -> S3Client:
        return boto3.client("s3", **client_kwargs(self.moto.url))

    def cloudwatch(self) -> CloudWatchClient:
        return boto3.client("cloudwatch", **client_kwargs(self.moto.url))

    def logs(self) -> CloudWatchLogsClient:
        return boto3.client("logs", **client_kwargs(self.moto.url))

    def dynamodb(self) -> DynamoDBClient:
        return boto3.client("dynamodb", **client_kwargs(self.moto.url))

    def sagemaker_runtime(self) -> SageMakerRuntimeClient:
        assert self.emulator is not None
        return boto3.client("sagemaker-runtime", **client_kwargs(self.emulator.url))

    def env_for_clients(self) -> dict[str, str]:
        """Variables for a shell or the CLI (dummy credentials, endpoints, region)."""
        return {**self.service_environment(), "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}


# A named profile makes the SDKs and the AWS CLI skip the credentials in the environment; a session token
# would be sent with the dummy keys. Neither belongs to the local stack.
UNSET_FOR_CLIENTS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def export_lines(env: Mapping[str, str]) -> str:
    """A file to ``source``: the stack's variables, and none of the user's that would override them."""
    lines = [f"unset {' '.join(UNSET_FOR_CLIENTS)}"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    return "\n".join(lines)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
